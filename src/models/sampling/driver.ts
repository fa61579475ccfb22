// The sampling loop shared by both samplers: raster order over pixels and, for heads that
// condition channels on each other, over channels inside a pixel. A stepper supplies the
// likelihood parameters of the next element; the naive stepper reruns the whole network, the
// cached ones update their layers' caches. Both draw from one Philox stream in the same order,
// so the same seed gives the same images.

import { noGrad } from '../../ops/index.js';
import { Generator } from '../../tensor/random.js';
import type { Tensor } from '../../tensor/tensor.js';
import { inEvalMode, rowValues, type SampleSetup, type SampleOptions, type SamplingModel, type Stepper } from './options.js';

export type { Stepper } from './options.js';

/** The values of one pixel of every image, [n, C]. */
function pixelValues(s: SampleSetup, pixel: number): Int32Array {
  const out = new Int32Array(s.n * s.c);
  const canvas = s.canvas.data as Int32Array;
  for (let i = 0; i < s.n; i++) out.set(canvas.subarray((i * s.h * s.w + pixel) * s.c, (i * s.h * s.w + pixel + 1) * s.c), i * s.c);
  return out;
}

export function runSampler(model: SamplingModel, s: SampleSetup, opts: SampleOptions, stepper: (s: SampleSetup) => Stepper): Tensor {
  const head = model.likelihood;
  const generator = new Generator(opts.seed ?? 0);
  const passes = head.perChannel ? s.c : 1;
  const out = new Int32Array(s.n * s.c);
  const values = new Int32Array(s.n);
  return inEvalMode(model, () => noGrad(() => {
    const step = stepper(s);
    const canvas = s.canvas.data as Int32Array;
    // Completion: the kept rows are known; run them through the stepper so every layer's cache
    // holds their activations before the first sampled row reads them.
    for (let y = 0; y < s.startRow; y++) {
      step.beginRow(y);
      for (let x = 0; x < s.w; x++) step.pixel(y, x, passes - 1);
    }
    for (let y = s.startRow; y < s.h; y++) {
      step.beginRow(y);
      for (let x = 0; x < s.w; x++) {
        const pixel = y * s.w + x;
        if (s.keep?.[pixel]) {
          // A kept pixel: its layers still run (the caches need them), its values come from the canvas.
          step.pixel(y, x, passes - 1);
          for (let ch = 0; ch < s.c; ch++) {
            for (let i = 0; i < s.n; i++) values[i] = canvas[(i * s.h * s.w + pixel) * s.c + ch]!;
            step.sampled(y, x, ch, values);
          }
          if (opts.onPixel) opts.onPixel(y, x, pixelValues(s, pixel));
          continue;
        }
        for (let pass = 0; pass < passes; pass++) {
          if (opts.draw) opts.draw(step.pixel(y, x, pass), s.n, pass, out, y, x);
          else head.sample(step.pixel(y, x, pass), s.n, pass, generator, s.temperature, out);
          for (let ch = head.perChannel ? pass : 0; ch < (head.perChannel ? pass + 1 : s.c); ch++) {
            for (let i = 0; i < s.n; i++) values[i] = canvas[(i * s.h * s.w + pixel) * s.c + ch] = out[i * s.c + ch]!;
            step.sampled(y, x, ch, values);
          }
        }
        if (opts.onPixel) opts.onPixel(y, x, pixelValues(s, pixel));
      }
      opts.onRow?.(y, rowValues(s.canvas, y));
    }
    return s.canvas;
  }));
}
