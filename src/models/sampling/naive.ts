// The naive sampler: the whole network runs once per pixel (and per channel, for heads that
// condition channels on each other). Simple and slow — the oracle the cached sampler must match.

import type { Tensor } from '../../tensor/tensor.js';
import { runSampler, type Stepper } from './driver.js';
import { prepareSampling, type SampleOptions, type SampleSetup, type SamplingModel } from './options.js';

/** Copies the parameters of one pixel for every image into rows [n, P]. */
export function pixelParams(params: Tensor, pixel: number): Float32Array {
  const [n, h, w, p] = params.shape as [number, number, number, number];
  const out = new Float32Array(n * p);
  for (let i = 0; i < n; i++) out.set(params.data.subarray((i * h * w + pixel) * p, (i * h * w + pixel + 1) * p), i * p);
  return out;
}

export function naiveStepper(model: SamplingModel, s: SampleSetup): Stepper {
  return {
    beginRow: () => {},
    pixel: (y, x) => pixelParams(model.params(s.canvas, s.cond), y * s.w + x),
    sampled: () => {},
  };
}

export function sampleNaive(model: SamplingModel, opts: SampleOptions): Tensor {
  const s = prepareSampling(model, opts);
  return runSampler(model, s, opts, () => naiveStepper(model, s));
}
