// The cached sampler: dispatches to the model family's stepper.

import type { Tensor } from '../../tensor/tensor.js';
import { runSampler, type Stepper } from './driver.js';
import { naiveStepper } from './naive.js';
import { ArgumentError } from '../../errors.js';
import { prepareSampling, type SampleOptions, type SampleSetup, type SamplingModel } from './options.js';

/** The cached stepper for a model, or null when its family has none. */
export function cachedStepper(model: SamplingModel, s: SampleSetup): Stepper | null {
  return model.cachedStepper(s);
}

export function sampleCached(model: SamplingModel, opts: SampleOptions): Tensor {
  const s = prepareSampling(model, opts);
  const stepper = cachedStepper(model, s);
  if (stepper === null) throw new Error(`sampleCached: no cached sampler for ${model.config.kind}`);
  return runSampler(model, s, opts, () => stepper);
}

/** Samples with the requested method: cached by default, naive when asked or when none exists. */
export function sample(model: SamplingModel, opts: SampleOptions): Tensor {
  const s = prepareSampling(model, opts);
  const method = opts.method ?? 'cached';
  if (method !== 'cached' && method !== 'naive') throw new ArgumentError('sample', 'method', `must be 'cached' or 'naive', got '${String(method)}'`);
  const stepper = method === 'cached' ? cachedStepper(model, s) : null;
  return runSampler(model, s, opts, () => stepper ?? naiveStepper(model, s));
}
