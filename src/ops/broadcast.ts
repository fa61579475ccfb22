// Summing over axes and broadcasting to a shape: each is the other's gradient, so they live
// together, below both the elementwise ops (whose backward sums a broadcast gradient back down)
// and the other reductions (whose backward broadcasts).

import type { ReduceOp } from '../kernels/contracts.js';
import { Tensor } from '../tensor/tensor.js';
import { normAxes, sameShape } from '../tensor/shape.js';
import { K, empty, record } from './core.js';
import { zeros } from './creation.js';
import { reshape } from './shape.js';

export type Axes = number | readonly number[];

export function keptShape(shape: readonly number[], axes: readonly number[]): number[] {
  return shape.map((d, i) => (axes.includes(i) ? 1 : d));
}

export function droppedShape(shape: readonly number[], axes: readonly number[]): number[] {
  return shape.filter((_, i) => !axes.includes(i));
}

/** Materialises `x` broadcast to `shape` (x's rank may be lower): x + 0 written at every position. */
export function broadcastTo(x: Tensor, shape: readonly number[]): Tensor {
  const zero = zeros(shape, x.dtype);
  const out = empty(shape, x.dtype);
  K(x, zero).binary(x, zero, out, 'add');
  return record(out, 'broadcastTo', [x], (g) => [sumTo(g, x.shape)]);
}

export function reduceOp(op: ReduceOp, x: Tensor, axes: Axes | undefined, keepDims: boolean): { y: Tensor; kept: Tensor; ax: number[] } {
  const ax = normAxes(op, axes, x.rank);
  const kept = empty(keptShape(x.shape, ax), x.dtype);
  K(x).reduce(x, kept, ax, op);
  const y = keepDims ? kept : new Tensor(kept.storage, droppedShape(x.shape, ax));
  return { y, kept, ax };
}

export function sum(x: Tensor, axes?: Axes, keepDims = false): Tensor {
  const { y, ax } = reduceOp('sum', x, axes, keepDims);
  return record(y, 'sum', [x], (g) => [broadcastTo(reshape(g, keptShape(x.shape, ax)), x.shape)]);
}

/** Sums a gradient of the broadcast shape back down to `shape` (the input's own). */
export function sumTo(g: Tensor, shape: readonly number[]): Tensor {
  if (sameShape(g.shape, shape)) return g;
  const lead = g.rank - shape.length;
  const axes: number[] = [];
  for (let i = 0; i < g.rank; i++) {
    if (i < lead || shape[i - lead] === 1) axes.push(i);
  }
  return reshape(sum(g, axes, true), shape);
}
