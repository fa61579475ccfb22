// The samplers' draws as an op: the arguments are checked here, the arithmetic is the
// categoricalDraw kernel's (src/kernels/contracts.ts), the same on every backend.

import { ArgumentError, DTypeError, ShapeError, fmtShape } from '../errors.js';
import type { Tensor } from '../tensor/tensor.js';
import { K, checkFloat, empty } from './core.js';

/**
 * One draw per row of logits [..., P]: from softmax(logits[..., at … at + levels) / temperature),
 * by inverting its CDF at the row's uniform in u (float32, one per row, in [0, 1)). Returns the
 * indices 0 … levels − 1, int32 of logits' shape without its last axis.
 */
export function categoricalDraw(logits: Tensor, u: Tensor, at: number, levels: number, temperature: number): Tensor {
  const op = 'categoricalDraw';
  checkFloat(op, 'logits', logits);
  if (logits.rank < 1) throw new ShapeError(op, 'logits', 'must have at least one axis (the logits of a row), got a scalar', [logits.shape]);
  if (u.dtype !== 'float32') throw new DTypeError(op, 'u', u.dtype, 'float32 (uniforms drawn by Generator.uniform are exact in float32)');
  const p = logits.shape[logits.rank - 1]!;
  const rowsShape = logits.shape.slice(0, -1);
  const rows = p === 0 ? 0 : logits.size / p;
  if (u.size !== rows) throw new ShapeError(op, 'u', `must hold one uniform per row of logits (${rows} rows of ${fmtShape(logits.shape)}), got ${fmtShape(u.shape)}`, [u.shape, logits.shape]);
  if (!Number.isInteger(levels) || levels < 1) throw new ArgumentError(op, 'levels', `must be a positive integer, got ${levels}`);
  if (!Number.isInteger(at) || at < 0 || at + levels > p) {
    throw new ArgumentError(op, 'at', `(${at}) must be an integer with at + levels ≤ ${p}, the row length of logits (levels = ${levels})`);
  }
  if (!(temperature > 0) || !Number.isFinite(temperature)) throw new ArgumentError(op, 'temperature', `must be a positive number, got ${temperature}`);
  const out = empty(rowsShape, 'int32');
  K(logits).categoricalDraw(logits, u, out, at, levels, temperature);
  return out;
}
