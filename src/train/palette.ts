// A run whose model has a palette head with no colours yet fits its palette on the training
// pixels before the first step (k-means, seeded by train.seed), and keeps it in the run's config —
// so the checkpoint, which holds the config, carries the palette its tokens refer to.

import type { Dataset } from '../data/index.js';
import { fitPalette, type KMeansOptions, type KMeansResult } from '../likelihoods/index.js';
import type { ModelConfig } from '../models/index.js';

/** True when the config's palette head still has to be fitted. */
export function needsPalette(model: ModelConfig): boolean {
  return model.likelihood.kind === 'palette' && model.likelihood.colours.length === 0;
}

/** Fits the k colours of a palette head on `data` and writes them into the config. */
export function fitConfigPalette(model: ModelConfig, data: Dataset, opts: Omit<KMeansOptions, 'k'> = {}): KMeansResult {
  const lik = model.likelihood;
  if (lik.kind !== 'palette') throw new Error(`fitConfigPalette: the model's likelihood is '${lik.kind}', not 'palette'`);
  const result = fitPalette(data.images, data.shape[3], { ...opts, k: lik.k });
  lik.colours = Array.from(result.palette.colours);
  return result;
}

/** On resume: a config whose palette is unfitted takes the checkpoint's fitted one. */
export function adoptPalette(model: ModelConfig, saved: ModelConfig): void {
  if (needsPalette(model) && saved.likelihood.kind === 'palette' && model.likelihood.kind === 'palette' && saved.likelihood.k === model.likelihood.k) {
    model.likelihood.colours = saved.likelihood.colours;
  }
}
