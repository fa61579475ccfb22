// The naive sampler: the whole network runs once per pixel (and per channel, for heads that
// condition channels on each other). Simple and slow — the oracle the cached sampler must match.

import type { AutoregressiveModel } from '../models/model.js';
import { noGrad } from '../ops/index.js';
import { Generator } from '../tensor/random.js';
import type { Tensor } from '../tensor/tensor.js';
import { inEvalMode, prepareSampling, rowValues, type SampleOptions } from './options.js';

/** Copies the parameters of one pixel for every image into rows [n, P]. */
export function pixelParams(params: Tensor, pixel: number): Float32Array {
  const [n, h, w, p] = params.shape as [number, number, number, number];
  const out = new Float32Array(n * p);
  for (let i = 0; i < n; i++) out.set(params.data.subarray((i * h * w + pixel) * p, (i * h * w + pixel + 1) * p), i * p);
  return out;
}

export function sampleNaive(model: AutoregressiveModel, opts: SampleOptions): Tensor {
  const s = prepareSampling(model, opts);
  const head = model.likelihood;
  const generator = new Generator(opts.seed ?? 0);
  const pixelOut = new Int32Array(s.n * s.c);
  return inEvalMode(model, () => noGrad(() => {
    const canvas = s.canvas.data as Int32Array;
    for (let y = s.startRow; y < s.h; y++) {
      for (let x = 0; x < s.w; x++) {
        const pixel = y * s.w + x;
        for (let ch = 0; ch < (head.perChannel ? s.c : 1); ch++) {
          const rows = pixelParams(model.params(s.canvas, s.cond), pixel);
          head.sample(rows, s.n, ch, generator, s.temperature, pixelOut);
          for (let i = 0; i < s.n; i++) {
            for (let cc = head.perChannel ? ch : 0; cc < (head.perChannel ? ch + 1 : s.c); cc++) {
              canvas[(i * s.h * s.w + pixel) * s.c + cc] = pixelOut[i * s.c + cc]!;
            }
          }
        }
      }
      opts.onRow?.(y, rowValues(s.canvas, y));
    }
    return s.canvas;
  }));
}
