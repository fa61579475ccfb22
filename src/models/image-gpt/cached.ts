// Image GPT's cached sampler: each layer keeps the keys and values of the positions sampled so
// far (a KV cache, [n, L, d] per layer), so a token costs one position per layer — its query
// against the cache (attentionStep), its MLP — instead of the whole sequence.
//
// Position p's input is the embedding of token p−1 (the start-of-sequence vector at p = 0), read
// from the canvas when pixel p is asked for; so completion needs no special case, and `sampled`
// has nothing to do.

import { isPaletteHead } from '../../likelihoods/index.js';
import type { ImageGPT } from './image-gpt.js';
import { add, reshape, zeros } from '../../ops/index.js';
import { Tensor } from '../../tensor/tensor.js';
import type { Stepper } from '../sampling/options.js';
import type { SampleSetup } from '../sampling/options.js';

export function imageGPTStepper(model: ImageGPT, s: SampleSetup): Stepper {
  const { embedDim: d } = model.config;
  const { n, c } = s;
  const head = model.likelihood;
  const blocks = [...model.blocks];
  const caches = blocks.map((b) => b.newCache(n, model.length));
  const condition = model.cond.forward(s.cond); // [n, d] or null
  const canvas = s.canvas.data as Int32Array;
  const hw = s.h * s.w;
  let last = -1;
  let lastLogits = new Float32Array(0);

  /** Tokens [n] of pixel p of every canvas image. */
  const tokensAt = (p: number): Tensor => {
    const values = new Int32Array(n * c);
    for (let i = 0; i < n; i++) for (let ch = 0; ch < c; ch++) values[i * c + ch] = canvas[(i * hw + p) * c + ch]!;
    return isPaletteHead(head) ? reshape(head.tokens(new Tensor(values, [n, 1, 1, c])), [n]) : new Tensor(values, [n]);
  };

  return {
    beginRow: () => {},
    pixel(y, x) {
      const p = y * s.w + x;
      if (p === last) return lastLogits;
      let h = p === 0 ? add(zeros([n, d]), model.sos) : model.tokenEmbed.forward(tokensAt(p - 1)); // [n, d]
      h = add(h, model.posEmbed.at(p));
      if (condition !== null) h = add(h, condition);
      blocks.forEach((block, b) => {
        h = block.step(h, caches[b]!, p);
      });
      last = p;
      lastLogits = Float32Array.from(model.head.forward(model.normOut.forward(h)).data);
      return lastLogits;
    },
    sampled: () => {},
  };
}
