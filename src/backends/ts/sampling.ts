// The samplers' kernels: the categorical draw — e^x for its weights (drawExp) and categoricalDraw,
// whose every operation the other backends repeat (wasm/sampling.c), so that a seed gives the same
// images on each of them — and a KV cache's write (kvCacheWrite).

import type { View } from '../../kernels/contracts.js';

// 2^n for n = −1075 … 0: the scale of drawExp.
const POW2 = Float64Array.from({ length: 1076 }, (_, i) => 2 ** (i - 1075));

/**
 * e^x for x ≤ 0, to ~1e-10 relative: x = n·ln2 + r with |r| ≤ ln2/2, a degree-9 Taylor
 * polynomial of e^r, times 2^n. A sampler draws from 256 levels of 16 images at every pixel, and
 * Math.exp (V8's fdlibm port) was a third of a cached PixelRNN step; this is a fraction of it.
 * Only additions, multiplications, divisions and Math.round: the same bits wherever JavaScript
 * runs (the codec's frequencies depend on it).
 */
export function drawExp(x: number): number {
  if (x < -745) return 0;
  const n = Math.round(x * Math.LOG2E);
  const r = (x - n * 0.6931471803691238) - n * 1.9082149292705877e-10;
  const p = 1 + r * (1 + r * (1 / 2 + r * (1 / 6 + r * (1 / 24 + r * (1 / 120 + r * (1 / 720 + r * (1 / 5040 + r * (1 / 40320 + r / 362880))))))));
  return p * POW2[n + 1075]!;
}

/** One row's draw: the index where the CDF of softmax(logits[at..at+levels) / temperature) passes u. */
function drawRow(logits: ArrayLike<number>, at: number, levels: number, temperature: number, u: number, weights: Float64Array): number {
  // At temperature 1 the division is skipped: x / 1 is x, so the draws are the same either way.
  const plain = temperature === 1;
  let mx = -Infinity;
  for (let k = 0; k < levels; k++) {
    const v = plain ? logits[at + k]! : logits[at + k]! / temperature;
    if (v > mx) mx = v;
  }
  let total = 0;
  for (let k = 0; k < levels; k++) total += weights[k] = drawExp((plain ? logits[at + k]! : logits[at + k]! / temperature) - mx);
  let pick = u * total;
  let k = 0;
  while (k < levels - 1 && pick >= weights[k]!) pick -= weights[k++]!;
  return k;
}

export function categoricalDraw(logits: View, u: View, out: View, at: number, levels: number, temperature: number): void {
  const p = logits.shape.length === 0 ? 1 : logits.shape[logits.shape.length - 1]!;
  const x = logits.data, ud = u.data, o = out.data;
  const weights = new Float64Array(levels);
  for (let j = 0; j < o.length; j++) o[j] = drawRow(x, j * p + at, levels, temperature, ud[j]!, weights);
}

export function kvCacheWrite(qkv: View, k: View, v: View, position: number): void {
  const [n, t, c] = k.shape as [number, number, number];
  const src = qkv.data, kd = k.data, vd = v.data;
  for (let b = 0; b < n; b++) {
    const from = b * 3 * c, at = (b * t + position) * c;
    kd.set(src.subarray(from + c, from + 2 * c), at);
    vd.set(src.subarray(from + 2 * c, from + 3 * c), at);
  }
}
