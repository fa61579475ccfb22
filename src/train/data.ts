// The data a run trains and evaluates on, from its `dataset` section: the training split minus a
// seeded validation split, the published test split, and the pixel transform that gives the
// model its levels (2^bits, or 2 when binarised).

import { ConfigError } from '../config.js';
import { loadDataset, splitValidation, type Dataset, type PixelTransform } from '../data/index.js';
import type { DatasetConfig } from './config.js';
import { transformFor } from './data-fit.js';

export * from './data-fit.js';

export interface RunData {
  train: Dataset;
  validation: Dataset;
  transform: PixelTransform;
}

/** Training and validation splits: the validation images are a seeded subset of the training files. */
export async function loadTrainData(d: DatasetConfig, validationSize: number): Promise<RunData> {
  const full = await loadDataset(d.name, { split: 'train' });
  const n = full.shape[0];
  if (validationSize >= n) throw new ConfigError('train.validationSize', `(${validationSize}) must be smaller than the ${n} training images of ${d.name}`);
  const { train, validation } = splitValidation(full, { size: validationSize, seed: 0 });
  return { train, validation, transform: transformFor(d) };
}

/** The split `eval` reports on: the published test set, or the run's validation split. */
export async function loadEvalData(d: DatasetConfig, split: 'test' | 'validation', validationSize: number): Promise<Dataset> {
  if (split === 'test') return loadDataset(d.name, { split: 'test' });
  return (await loadTrainData(d, validationSize)).validation;
}
