// Reference reductions: sum / max / min over axes, argmax and softmax over the last axis.

import type { ReduceOp, View } from '../../kernels/contracts.js';
import { broadcastStrides, forEachBroadcast } from './elementwise.js';
import { exp, log } from './portable-math.js';

export function reduce(x: View, out: View, _axes: readonly number[], op: ReduceOp): void {
  // out has x's shape with the reduced axes set to 1, so walking x's shape with out's broadcast
  // strides lands every element of x on the output element it reduces into.
  const o = out.data;
  // ±Infinity does not fit an Int32Array (it stores 0), so integer extrema start from the limits.
  const int = out.dtype === 'int32';
  const init = op === 'sum' ? 0 : op === 'max' ? (int ? -2147483648 : -Infinity) : (int ? 2147483647 : Infinity);
  o.fill(init);
  const xd = x.data;
  const so = broadcastStrides(out.shape, x.shape);
  const combine = op === 'sum' ? (a: number, b: number) => a + b : op === 'max' ? Math.max : Math.min;
  forEachBroadcast(x.shape, [so], (i, [io]) => {
    o[io!] = combine(o[io!]!, xd[i]!);
  });
}

export function argmaxLast(x: View, out: View): void {
  const k = x.shape[x.shape.length - 1]!;
  const xd = x.data;
  const o = out.data;
  for (let j = 0; j < o.length; j++) {
    let best = 0;
    for (let i = 1; i < k; i++) if (xd[j * k + i]! > xd[j * k + best]!) best = i;
    o[j] = best;
  }
}

export function softmaxLast(x: View, out: View, logOut: boolean): void {
  const k = x.shape[x.shape.length - 1]!;
  const xd = x.data;
  const o = out.data;
  const rows = k === 0 ? 0 : xd.length / k;
  for (let j = 0; j < rows; j++) {
    const base = j * k;
    let m = -Infinity;
    for (let i = 0; i < k; i++) m = Math.max(m, xd[base + i]!);
    let s = 0;
    for (let i = 0; i < k; i++) s += exp(xd[base + i]! - m);
    if (logOut) {
      const ls = log(s);
      for (let i = 0; i < k; i++) o[base + i] = xd[base + i]! - m - ls;
    } else {
      for (let i = 0; i < k; i++) o[base + i] = exp(xd[base + i]! - m) / s;
    }
  }
}
