// Helpers of the kernel tests (native and bf16 against the ts reference): seeded inputs, and
// running one kernel on two backends to compare every output.

import assert from 'node:assert/strict';
import type { DType, Kernels, RowLSTMStepPlan } from '../kernels/contracts.js';
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


/**
 * Row LSTM's cached step on a backend against the reference: two rows of pixels, edges included,
 * for odd h, k = 1, 3, 5, masked and unmasked taps, with the sampler's write of each pixel's value
 * into the image between steps. Every array sits on its own ArrayBuffer, as the sampler makes them.
 */
export function checkRowLstmStep(step: Kernels['rowLstmStep'], ref: Kernels['rowLstmStep']): void {
  // [n, H, W, C, h, k, input taps, first taps, outHidden, params]
  const cases: [number, number, number, number, number, number, number[], number[], number, number][] = [
    [3, 3, 4, 1, 5, 3, [-1, 0], [-1, -1, -1, 0, -1, 1, 0, -1], 7, 16],
    [2, 2, 5, 3, 4, 1, [-2, -1], [-1, 0, 0, -1, 0, 0], 9, 3],
    [1, 2, 3, 2, 3, 5, [-1], [0, -2, 0, -1], 4, 6],
    [16, 2, 28, 1, 16, 3, [-1, 0], [-3, -3, -2, 0, -1, 2, 0, -3, 0, -1], 64, 256],
  ];
  cases.forEach(([n, H, W, C, h, k, inputTaps, firstTaps, oh, P], ci) => {
    const L = 3, f2 = 2 * h, g4 = 4 * h;
    let seed = 300 + 20 * ci;
    const floats = (count: number, lo = -1, hi = 1) => {
      const a = new Float32Array(new ArrayBuffer(4 * count));
      a.set(uniform([count], lo, hi, seed++).data as Float32Array);
      return a;
    };
    const dense = (cin: number, cout: number) => ({ weight: floats(cin * cout, -0.5, 0.5), bias: floats(cout), cin, cout });
    const make = (): RowLSTMStepPlan => {
      seed = 300 + 20 * ci; // both plans get the same values
      return {
        n, height: H, width: W, channels: C, hidden: h, kernel: k, image: floats(n * H * W * C),
        firstTaps: Int32Array.from(firstTaps), first: dense((firstTaps.length / 2) * C, f2),
        rows: Array.from({ length: L }, () => floats(n * W * f2, 5, 6)), // garbage the step must overwrite before reading
        layers: Array.from({ length: L }, () => ({
          inputTaps: Int32Array.from(inputTaps), gates: floats((inputTaps.length * f2 + k * h) * g4, -0.5, 0.5), gateBias: floats(n * g4),
          output: dense(h, f2), prevH: floats(n * W * h), prevC: floats(n * W * h, -2, 2), curH: floats(n * W * h, 5, 6), curC: floats(n * W * h, 5, 6),
        })),
        skip: dense(L * f2, f2), outHidden: dense(f2, oh), out: dense(oh, P), logits: floats(n * P, 5, 6),
      };
    };
    const a = make(), b = make();
    for (let y = 0; y < H; y++) {
      if (y > 0) for (const p of [a, b]) for (const l of p.layers) { l.prevH.set(l.curH); l.prevC.set(l.curC); }
      for (let x = 0; x < W; x++) {
        // The sampler writes the pixel's value into the image between steps.
        if (y > 0 || x > 0) for (const p of [a, b]) for (let i = 0; i < n; i++) p.image[((i * H + y) * W + x) * C] = (x - y) / 10;
        step(a, y, x);
        ref(b, y, x);
        const label = `case ${ci} (${y}, ${x})`;
        assertClose(a.logits, b.logits, { ...sumTol(L * f2 + oh), label: `${label} logits` });
        a.layers.forEach((l, i) => {
          const at = (q: Float32Array) => Array.from({ length: n }, (_, j) => Array.from(q.subarray((j * W + x) * h, (j * W + x + 1) * h))).flat();
          assertClose(at(l.curH), at(b.layers[i]!.curH), { atol: 1e-5, rtol: 1e-4, label: `${label} layer ${i} h` });
          assertClose(at(l.curC), at(b.layers[i]!.curC), { atol: 1e-5, rtol: 1e-4, label: `${label} layer ${i} c` });
        });
      }
      a.rows.forEach((r, i) => assertClose(r, b.rows[i]!, { atol: 1e-5, rtol: 1e-4, label: `case ${ci} row ${y} input row of layer ${i}` }));
    }
  });
}

/**
 * Batched matmul on a backend against the reference (`agree` from agreement()): [4, ·, ·] with each
 * transpose, a 2-D operand shared across the batch on either side, and a large odd-sized product.
 */
export function checkBatchedMatmul(agree: ReturnType<typeof agreement>): void {
  const [B, m, kk, n] = [4, 5, 9, 6];
  for (const ta of [false, true]) {
    for (const tb of [false, true]) {
      const sa = ta ? [kk, m] : [m, kk];
      const sb = tb ? [n, kk] : [kk, n];
      for (const [aBatched, bBatched] of [[true, true], [false, true], [true, false]]) {
        const a = uniform(aBatched ? [B, ...sa] : sa, -1, 1, 16);
        const b = uniform(bBatched ? [B, ...sb] : sb, -1, 1, 17);
        agree((k, [o]) => k.matmul(a, b, o!, ta, tb), [[[B, m, n], 'float32']], sumTol(kk), `ta=${ta} tb=${tb} a3=${aBatched} b3=${bBatched}`);
      }
    }
  }
  const a = uniform([300, 257]);
  const b = uniform([257, 129]);
  agree((k, [o]) => k.matmul(a, b, o!, false, false), [[[300, 129], 'float32']], sumTol(257));
}
