// Reductions over axes (sum, mean, max, min, logsumexp), softmax and log-softmax over an axis,
// and argmax.

import { Tensor } from '../tensor/tensor.js';
import { normAxes, normAxis } from '../tensor/shape.js';
import { K, checkFloat, empty, noGrad, record } from './core.js';
import { add, div, equal, exp, log, mul, sub } from './elementwise.js';
import { droppedShape, reduceOp, sum, type Axes } from './broadcast.js';

export { broadcastTo, sum, type Axes } from './broadcast.js';
import { permute, reshape } from './shape.js';

export function mean(x: Tensor, axes?: Axes, keepDims = false): Tensor {
  checkFloat('mean', 'x', x);
  const ax = normAxes('mean', axes, x.rank);
  const count = ax.reduce((n, a) => n * x.shape[a]!, 1);
  return div(sum(x, ax, keepDims), count);
}

function extremum(op: 'max' | 'min', x: Tensor, axes: Axes | undefined, keepDims: boolean): Tensor {
  const { y, kept, ax } = reduceOp(op, x, axes, keepDims);
  // The gradient goes to the elements that attain the extremum, shared evenly between ties.
  return record(y, op, [x], (g) => {
    const hit = equal(x, kept);
    const share = div(hit, sum(hit, ax, true));
    return [mul(share, reshape(g, kept.shape))];
  });
}

export const max = (x: Tensor, axes?: Axes, keepDims = false) => extremum('max', x, axes, keepDims);
export const min = (x: Tensor, axes?: Axes, keepDims = false) => extremum('min', x, axes, keepDims);

/** log Σ exp(x) over axes, stable: the maximum is subtracted first (and carries no gradient). */
export function logsumexp(x: Tensor, axes?: Axes, keepDims = false): Tensor {
  checkFloat('logsumexp', 'x', x);
  const ax = normAxes('logsumexp', axes, x.rank);
  const m = noGrad(() => {
    const mk = max(x, ax, true);
    // An all -Infinity slice would give -Inf - -Inf = NaN; shifting by 0 there keeps it -Inf.
    const d = mk.data;
    for (let i = 0; i < d.length; i++) if (!Number.isFinite(d[i]!)) d[i] = 0;
    return mk;
  });
  const s = add(log(sum(exp(sub(x, m)), ax, true)), m);
  return keepDims ? s : reshape(s, droppedShape(x.shape, ax));
}

/** Runs a last-axis kernel on any axis by moving that axis last and back. */
function onAxis(x: Tensor, axis: number, f: (t: Tensor) => Tensor): Tensor {
  const last = x.rank - 1;
  if (axis === last) return f(x);
  const perm = Array.from({ length: x.rank }, (_, i) => i);
  perm[axis] = last;
  perm[last] = axis;
  return permute(f(permute(x, perm)), perm);
}

export function softmax(x: Tensor, axis = -1): Tensor {
  checkFloat('softmax', 'x', x);
  return onAxis(x, normAxis('softmax', axis, x.rank), (t) => {
    const y = empty(t.shape, t.dtype);
    K(t).softmaxLast(t, y, false);
    // dL/dx = y ⊙ (g − Σ g ⊙ y)
    return record(y, 'softmax', [t], (g) => [mul(y, sub(g, sum(mul(g, y), -1, true)))]);
  });
}

export function logSoftmax(x: Tensor, axis = -1): Tensor {
  checkFloat('logSoftmax', 'x', x);
  return onAxis(x, normAxis('logSoftmax', axis, x.rank), (t) => {
    const y = empty(t.shape, t.dtype);
    K(t).softmaxLast(t, y, true);
    // dL/dx = g − softmax(x) · Σ g
    return record(y, 'logSoftmax', [t], (g) => [sub(g, mul(exp(y), sum(g, -1, true)))]);
  });
}

/** Index of the maximum along an axis (int32, no gradient). */
export function argmax(x: Tensor, axis = -1): Tensor {
  const a = normAxis('argmax', axis, x.rank);
  // Move the axis last, keeping the others in order, so the result needs no permuting back.
  const others = [...Array(x.rank).keys()].filter((i) => i !== a);
  const moved = a === x.rank - 1 ? x : permute(x, [...others, a]);
  const out = empty(moved.shape.slice(0, -1), 'int32');
  K(moved).argmaxLast(moved, out);
  return out;
}
