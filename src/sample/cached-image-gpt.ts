// Image GPT's cached sampler: each layer keeps the keys and values of the positions sampled so
// far (a KV cache, [n, L, d] per layer), so a token costs one position per layer — its query
// against the cache (attentionStep), its MLP — instead of the whole sequence.
//
// Position p's input is the embedding of token p−1 (the start-of-sequence vector at p = 0), read
// from the canvas when pixel p is asked for; so completion needs no special case, and `sampled`
// has nothing to do.

import { isPaletteHead } from '../likelihoods/index.js';
import type { ImageGPT } from '../models/image-gpt.js';
import { add, attentionStep, reshape, slice, zeros } from '../ops/index.js';
import { Tensor } from '../tensor/tensor.js';
import type { Stepper } from './driver.js';
import type { SampleSetup } from './options.js';

export function imageGPTStepper(model: ImageGPT, s: SampleSetup): Stepper {
  const { embedDim: d, layers, heads } = model.config;
  const { n, c } = s;
  const length = model.length;
  const head = model.likelihood;
  const kCache = Array.from({ length: layers }, () => zeros([n, length, d]));
  const vCache = Array.from({ length: layers }, () => zeros([n, length, d]));
  const condition = model.cond.forward(s.cond); // [n, d] or null
  const blocks = [...model.blocks];
  const canvas = s.canvas.data as Int32Array;
  const hw = s.h * s.w;
  let last = -1;
  let lastLogits = new Float32Array(0);

  /** Tokens [n] of pixel p of every canvas image. */
  const tokensAt = (p: number): Tensor => {
    const values = new Int32Array(n * c);
    for (let i = 0; i < n; i++) for (let ch = 0; ch < c; ch++) values[i * c + ch] = canvas[(i * hw + p) * c + ch]!;
    const pixels = new Tensor(values, [n, 1, 1, c]);
    return isPaletteHead(head) ? reshape(head.tokens(pixels), [n]) : new Tensor(values, [n]);
  };

  /** Writes rows [n, d] of `part` (a [n, 3d] slice at column `at`) into position p of a cache. */
  const store = (cache: Tensor, qkv: Tensor, at: number, p: number): void => {
    const src = qkv.data;
    const dst = cache.data;
    for (let i = 0; i < n; i++) dst.set(src.subarray(i * 3 * d + at, i * 3 * d + at + d), (i * length + p) * d);
  };

  return {
    beginRow: () => {},
    pixel(y, x) {
      const p = y * s.w + x;
      if (p === last) return lastLogits;
      let h = p === 0 ? add(zeros([n, d]), model.sos) : model.tokenEmbed.forward(tokensAt(p - 1)); // [n, d]
      h = add(h, slice(model.posEmbed.weight, [p, 0], [1, d]));
      if (condition !== null) h = add(h, condition);
      blocks.forEach((block, b) => {
        const qkv = block.qkv.forward(block.norm1.forward(h)); // [n, 3d]
        store(kCache[b]!, qkv, d, p);
        store(vCache[b]!, qkv, 2 * d, p);
        const a = attentionStep(slice(qkv, [0, 0], [n, d]), kCache[b]!, vCache[b]!, p, { heads, pattern: { kind: 'causal' } });
        h = add(h, block.proj.forward(a));
        h = add(h, block.mlp(h));
      });
      last = p;
      lastLogits = Float32Array.from(model.head.forward(model.normOut.forward(h)).data);
      return lastLogits;
    },
    sampled: () => {},
  };
}
