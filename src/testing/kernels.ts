// Helpers of the kernel tests (native and bf16 against the ts reference): seeded inputs, and
// running one kernel on two backends to compare every output.

import assert from 'node:assert/strict';
import type { DType, Kernels } from '../kernels/contracts.js';
import { Tensor, arrayFor } from '../tensor/tensor.js';
import { assertClose } from './gradcheck.js';

/** mulberry32: a tiny seeded generator so every case is reproducible. */
export function rng(seed: number): () => number {
  let s = seed >>> 0;
  return () => {
    s = (s + 0x6d2b79f5) >>> 0;
    let t = s;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

export const size = (shape: readonly number[]) => shape.reduce((a, b) => a * b, 1);

export function uniform(shape: readonly number[], lo = -1, hi = 1, seed = 1): Tensor {
  const r = rng(seed);
  const a = new Float32Array(size(shape));
  for (let i = 0; i < a.length; i++) a[i] = lo + (hi - lo) * r();
  return new Tensor(a, shape);
}

export function ints(shape: readonly number[], lo: number, hi: number, seed = 2): Tensor {
  const r = rng(seed);
  const a = new Int32Array(size(shape));
  for (let i = 0; i < a.length; i++) a[i] = lo + Math.floor((hi - lo + 1) * r());
  return new Tensor(a, shape);
}

export function empty(shape: readonly number[], dtype: DType = 'float32'): Tensor {
  return new Tensor(arrayFor(dtype, size(shape)), shape);
}

/**
 * Runs one kernel on both backends with fresh outputs (pre-filled with garbage, since outputs
 * must be fully overwritten) and compares every output.
 */
export function agreement(ref: Kernels, nat: Kernels) {
  return function agree(run: (k: Kernels, outs: Tensor[]) => void, outs: readonly [readonly number[], DType][], tol: { atol?: number; rtol?: number } = {}, label = ''): void {
  const make = () =>
    outs.map(([shape, dtype]) => {
      const t = empty(shape, dtype);
      t.data.fill(dtype === 'int32' ? -7 : 123.5);
      return t;
    });
  const expected = make();
  const actual = make();
  run(ref, expected);
  run(nat, actual);
  actual.forEach((a, i) => {
    if (a.dtype === 'int32') assert.deepEqual(Array.from(a.data), Array.from(expected[i]!.data), `${label} output ${i}`);
    else assertClose(a.data, expected[i]!.data, { atol: tol.atol ?? 1e-6, rtol: tol.rtol ?? 1e-5, label: `${label} output ${i}` });
  });
  };
}

/** Tolerance for sums of k products of O(scale) terms (float32 vs float64 accumulation). */
export const sumTol = (k: number, scale = 1) => ({ atol: 1e-5 * Math.sqrt(k) * scale, rtol: 1e-4 * Math.sqrt(k) });

