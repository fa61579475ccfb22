// Reference elementwise kernels: unary maps, clamp, broadcasting binary ops, where, cast.

import type { BinaryOp, UnaryGradOp, UnaryOp, View } from '../../kernels/contracts.js';
import { stridesOf } from '../../tensor/shape.js';
import { exp, expm1, log, sigmoid, softplus, tanh } from './portable-math.js';

// The transcendental functions are arpix's own (portable-math.ts), not the engine's Math.*: the
// same bits on every machine, which the codec's portable mode relies on.

export const UNARY: Record<UnaryOp, (x: number) => number> = {
  neg: (x) => -x,
  exp,
  log,
  sqrt: Math.sqrt,
  rsqrt: (x) => 1 / Math.sqrt(x),
  abs: Math.abs,
  sign: (x) => (x > 0 ? 1 : x < 0 ? -1 : 0),
  square: (x) => x * x,
  reciprocal: (x) => 1 / x,
  tanh,
  sigmoid,
  relu: (x) => (x > 0 ? x : 0),
  elu: (x) => (x > 0 ? x : expm1(x)),
  softplus,
  logSigmoid: (x) => -softplus(-x),
};

export function unary(x: View, out: View, op: UnaryOp): void {
  const f = UNARY[op];
  const a = x.data;
  const o = out.data;
  for (let i = 0; i < o.length; i++) o[i] = f(a[i]!);
}

const UNARY_GRAD: Record<UnaryGradOp, (x: number, y: number, g: number) => number> = {
  exp: (_x, y, g) => g * y,
  tanh: (_x, y, g) => g * (1 - y * y),
  sigmoid: (_x, y, g) => g * (y * (1 - y)),
  relu: (x, _y, g) => g * (x > 0 ? 1 : 0),
  elu: (x, y, g) => g * (x > 0 ? 1 : y + 1),
  softplus: (x, _y, g) => g * sigmoid(x),
  logSigmoid: (x, _y, g) => g * sigmoid(-x),
};

export function unaryBackward(x: View, y: View, g: View, dx: View, op: UnaryGradOp): void {
  const f = UNARY_GRAD[op];
  const a = x.data;
  const b = y.data;
  const c = g.data;
  const o = dx.data;
  for (let i = 0; i < o.length; i++) o[i] = f(a[i]!, b[i]!, c[i]!);
}

export function clamp(x: View, out: View, lo: number, hi: number): void {
  const a = x.data;
  const o = out.data;
  for (let i = 0; i < o.length; i++) o[i] = Math.min(Math.max(a[i]!, lo), hi);
}

const BINARY_FLOAT: Record<BinaryOp, (a: number, b: number) => number> = {
  add: (a, b) => a + b,
  sub: (a, b) => a - b,
  mul: (a, b) => a * b,
  div: (a, b) => a / b,
  // The engine's pow, not a portable one: no model's forward pass raises to a power (only the
  // gradients of rsqrt and pow do), so no probability the codec codes depends on it.
  pow: Math.pow,
  maximum: Math.max,
  minimum: Math.min,
  greater: (a, b) => (a > b ? 1 : 0),
  greaterEqual: (a, b) => (a >= b ? 1 : 0),
  less: (a, b) => (a < b ? 1 : 0),
  lessEqual: (a, b) => (a <= b ? 1 : 0),
  equal: (a, b) => (a === b ? 1 : 0),
  notEqual: (a, b) => (a !== b ? 1 : 0),
};

/** Strides of `shape` seen at out's rank, with 0 on broadcast axes. */
export function broadcastStrides(shape: readonly number[], outShape: readonly number[]): number[] {
  const rank = outShape.length;
  const own = stridesOf(shape);
  const s = new Array<number>(rank).fill(0);
  for (let i = 0; i < shape.length; i++) {
    const j = rank - shape.length + i;
    s[j] = shape[i] === 1 ? 0 : own[i]!;
  }
  return s;
}

/**
 * Visits every index of outShape in row-major order, handing the callback the flat offsets into
 * each operand (given by its broadcast strides). Plain and general: the reference, not fast.
 */
export function forEachBroadcast(outShape: readonly number[], strides: readonly (readonly number[])[], fn: (o: number, offs: readonly number[]) => void): void {
  const rank = outShape.length;
  let total = 1;
  for (const d of outShape) total *= d;
  if (total === 0) return;
  const idx = new Array<number>(rank).fill(0);
  const offs = strides.map(() => 0);
  for (let o = 0; o < total; o++) {
    fn(o, offs);
    for (let ax = rank - 1; ax >= 0; ax--) {
      idx[ax]!++;
      for (let k = 0; k < offs.length; k++) offs[k]! += strides[k]![ax]!;
      if (idx[ax]! < outShape[ax]!) break;
      for (let k = 0; k < offs.length; k++) offs[k]! -= strides[k]![ax]! * outShape[ax]!;
      idx[ax] = 0;
    }
  }
}

export function binary(a: View, b: View, out: View, op: BinaryOp): void {
  const intDiv = op === 'div' && out.dtype === 'int32';
  const f = intDiv ? (x: number, y: number) => Math.trunc(x / y) : BINARY_FLOAT[op];
  const ad = a.data;
  const bd = b.data;
  const o = out.data;
  const sa = broadcastStrides(a.shape, out.shape);
  const sb = broadcastStrides(b.shape, out.shape);
  forEachBroadcast(out.shape, [sa, sb], (i, [ia, ib]) => {
    o[i] = f(ad[ia!]!, bd[ib!]!);
  });
}

export function where(cond: View, a: View, b: View, out: View): void {
  const c = cond.data;
  const ad = a.data;
  const bd = b.data;
  const o = out.data;
  const strides = [cond, a, b].map((v) => broadcastStrides(v.shape, out.shape));
  forEachBroadcast(out.shape, strides, (i, [ic, ia, ib]) => {
    o[i] = c[ic!] !== 0 ? ad[ia!]! : bd[ib!]!;
  });
}

export function cast(x: View, out: View): void {
  const a = x.data;
  const o = out.data;
  if (out.dtype === 'int32') for (let i = 0; i < o.length; i++) o[i] = Math.trunc(a[i]!);
  else for (let i = 0; i < o.length; i++) o[i] = a[i]!;
}
