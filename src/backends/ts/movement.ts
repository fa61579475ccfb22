// Reference data-movement kernels: permute, pad, slice, concat, gathers and scatters, one-hot.

import type { View } from '../../kernels/contracts.js';
import { stridesOf } from '../../tensor/shape.js';
import { forEachBroadcast } from './elementwise.js';

export function permute(x: View, out: View, perm: readonly number[]): void {
  const xs = stridesOf(x.shape);
  const src = perm.map((p) => xs[p]!);
  const xd = x.data;
  const o = out.data;
  forEachBroadcast(out.shape, [src], (i, [j]) => {
    o[i] = xd[j!]!;
  });
}

export function pad(x: View, out: View, before: readonly number[], value: number): void {
  const o = out.data;
  o.fill(value);
  const os = stridesOf(out.shape);
  const base = before.reduce((acc, b, ax) => acc + b * os[ax]!, 0);
  const xd = x.data;
  forEachBroadcast(x.shape, [os], (i, [j]) => {
    o[base + j!] = xd[i]!;
  });
}

export function slice(x: View, out: View, begin: readonly number[]): void {
  const xs = stridesOf(x.shape);
  const base = begin.reduce((acc, b, ax) => acc + b * xs[ax]!, 0);
  const xd = x.data;
  const o = out.data;
  forEachBroadcast(out.shape, [xs], (i, [j]) => {
    o[i] = xd[base + j!]!;
  });
}

export function concat(xs: readonly View[], out: View, axis: number): void {
  // Viewed as [outer, axisSize·inner]: each input contributes a contiguous run per outer index.
  const outer = out.shape.slice(0, axis).reduce((a, d) => a * d, 1);
  const inner = out.shape.slice(axis + 1).reduce((a, d) => a * d, 1);
  const rowOut = out.shape[axis]! * inner;
  const o = out.data;
  let offset = 0;
  for (const x of xs) {
    const run = x.shape[axis]! * inner;
    const xd = x.data;
    for (let r = 0; r < outer; r++) {
      for (let i = 0; i < run; i++) o[r * rowOut + offset + i] = xd[r * run + i]!;
    }
    offset += run;
  }
}

export function gatherRows(table: View, idx: View, out: View): void {
  const d = table.shape.slice(1).reduce((a, b) => a * b, 1);
  const t = table.data;
  const ix = idx.data;
  const o = out.data;
  for (let j = 0; j < ix.length; j++) {
    const row = ix[j]!;
    for (let c = 0; c < d; c++) o[j * d + c] = t[row * d + c]!;
  }
}

export function scatterAddRows(g: View, idx: View, out: View): void {
  const d = out.shape.slice(1).reduce((a, b) => a * b, 1);
  const gd = g.data;
  const ix = idx.data;
  const o = out.data;
  o.fill(0);
  for (let j = 0; j < ix.length; j++) {
    const row = ix[j]!;
    for (let c = 0; c < d; c++) o[row * d + c] += gd[j * d + c]!;
  }
}

export function pickLast(x: View, idx: View, out: View): void {
  const k = x.shape[x.shape.length - 1]!;
  const xd = x.data;
  const ix = idx.data;
  const o = out.data;
  for (let j = 0; j < o.length; j++) o[j] = xd[j * k + ix[j]!]!;
}

export function pickLastBackward(g: View, idx: View, out: View): void {
  const k = out.shape[out.shape.length - 1]!;
  const gd = g.data;
  const ix = idx.data;
  const o = out.data;
  o.fill(0);
  for (let j = 0; j < ix.length; j++) o[j * k + ix[j]!] = gd[j]!;
}

export function oneHot(idx: View, out: View): void {
  const depth = out.shape[out.shape.length - 1]!;
  const ix = idx.data;
  const o = out.data;
  o.fill(0);
  for (let j = 0; j < ix.length; j++) o[j * depth + ix[j]!] = 1;
}
