// The samplers' ops: the categorical draw, whose arithmetic is the categoricalDraw kernel's
// (src/kernels/contracts.ts), the same on every backend, and a KV cache's write. Arguments are
// checked here.

import { ArgumentError, DTypeError, ShapeError, fmtShape } from '../errors.js';
import type { Tensor } from '../tensor/tensor.js';
import { K, checkFloat, checkSameDType, empty } from './core.js';

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

/**
 * Writes position `position`'s keys and values from qkv [N, 3C] (a packed [q | k | v] row per
 * sequence) into row `position` of the caches k and v [N, T, C], in place, and bumps their versions
 * (a backend may keep a copy of a cache and update only that row). Returns nothing.
 */
export function kvCacheWrite(qkv: Tensor, k: Tensor, v: Tensor, position: number): void {
  const op = 'kvCacheWrite';
  checkFloat(op, 'qkv', qkv);
  checkSameDType(op, qkv, k);
  checkSameDType(op, qkv, v);
  if (k.rank !== 3) throw new ShapeError(op, 'k', `must be [N, T, C], got ${fmtShape(k.shape)}`, [k.shape]);
  const [n, t, c] = k.shape as [number, number, number];
  if (v.rank !== 3 || v.shape[0] !== n || v.shape[1] !== t || v.shape[2] !== c) throw new ShapeError(op, 'v', `must be k's shape ${fmtShape(k.shape)}, got ${fmtShape(v.shape)}`, [k.shape, v.shape]);
  if (qkv.rank !== 2 || qkv.shape[0] !== n || qkv.shape[1] !== 3 * c) throw new ShapeError(op, 'qkv', `must be [${n}, ${3 * c}] for caches ${fmtShape(k.shape)}, got ${fmtShape(qkv.shape)}`, [qkv.shape, k.shape]);
  if (k.storageId === v.storageId) throw new ArgumentError(op, 'v', 'shares its storage with k; keys and values need caches of their own');
  if (!Number.isInteger(position) || position < 0 || position >= t) throw new ArgumentError(op, 'position', `must be an integer in 0..${t - 1} (the caches hold ${t} positions), got ${position}`);
  K(qkv, k, v).kvCacheWrite(qkv, k, v, position);
  k.bumpVersion();
  v.bumpVersion();
}
