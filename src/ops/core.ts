// What every op shares: allocating outputs, choosing kernels, checking arguments, and reducing a
// broadcast gradient back to an input's shape.

import type { DType, Kernels } from '../kernels/contracts.js';
import { kernels } from '../backends/registry.js';
import { DTypeError, ShapeError, fmtShape } from '../errors.js';
import { Tensor, uninitArrayFor } from '../tensor/tensor.js';
import { shapeSize } from '../tensor/shape.js';

export { record, noGrad, isGradEnabled } from '../tensor/autograd.js';

/**
 * A new tensor for a kernel to write: its contents are unspecified (kernels fully overwrite their
 * outputs). Use `zeros` where zeros are meant.
 */
export function empty(shape: readonly number[], dtype: DType = 'float32'): Tensor {
  return new Tensor(uninitArrayFor(dtype, shapeSize(shape)), shape);
}

/** The kernels for these inputs: float64 anywhere means the reference backend. */
export function K(...inputs: readonly (Tensor | null | undefined)[]): Kernels {
  return kernels(inputs.some((t) => t?.dtype === 'float64'));
}

/** The float dtype of a result computed from these inputs (float64 wins, else float32). */
export function floatType(...inputs: readonly Tensor[]): DType {
  return inputs.some((t) => t.dtype === 'float64') ? 'float64' : 'float32';
}

export function checkFloat(op: string, arg: string, t: Tensor): void {
  if (!t.isFloat) throw new DTypeError(op, arg, t.dtype, 'float32 or float64');
}

export function checkInt(op: string, arg: string, t: Tensor): void {
  if (t.dtype !== 'int32') throw new DTypeError(op, arg, t.dtype, 'int32');
}

export function checkRank(op: string, arg: string, t: Tensor, rank: number | readonly number[]): void {
  const ok = typeof rank === 'number' ? t.rank === rank : rank.includes(t.rank);
  if (!ok) {
    const want = typeof rank === 'number' ? String(rank) : rank.join(' or ');
    throw new ShapeError(op, arg, `must have rank ${want}, got shape ${fmtShape(t.shape)}`, [t.shape]);
  }
}

/** Tensors mixed in one arithmetic op must agree in dtype (no silent promotion). */
export function checkSameDType(op: string, a: Tensor, b: Tensor): void {
  if (a.dtype !== b.dtype) throw new DTypeError(op, 'b', b.dtype, `${a.dtype} (the dtype of a); cast one of them first`);
}
