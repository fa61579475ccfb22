// What a run's `dataset` section means for its model, without loading any data: the pixel
// transform that gives the model its levels, what a result was measured on, and whether the
// section fits the model. Runs anywhere JavaScript runs; the loaders are in data.ts.

import { ConfigError } from '../config.js';
import type { Dataset } from '../data/dataset.js';
import type { PixelTransform } from '../data/transforms.js';
import type { AutoregressiveModel } from '../models/core/model.js';
import type { DatasetConfig } from './run-config.js';

/** The loader transform for a dataset section. */
export function transformFor(d: DatasetConfig): PixelTransform {
  if (d.binarize === 'dynamic') return { kind: 'dynamic-binarise' };
  if (d.binarize === 'fixed') return { kind: 'binarise' };
  return d.bits < 8 ? { kind: 'quantise', bits: d.bits } : { kind: 'none' };
}

/** Which binarisation a result used: `dynamic` (Bernoulli(v/255) draws), `threshold` (v ≥ 128), or none. */
export type Binarisation = 'none' | 'dynamic' | 'threshold';

export interface DataDescription {
  name: string;
  /** Values per pixel the model sees. */
  levels: number;
  binarisation: Binarisation;
  /** One line for outputs, saying what the figure is comparable with. */
  text: string;
}

/**
 * What a result was measured on, said in every output that reports one: binarised-MNIST figures
 * are only comparable under the same binarisation. The static binarisation of Larochelle & Murray
 * (2011) — one fixed Bernoulli draw, the set the PixelRNN paper's 79.20 nats is on — is not what
 * either of arpix's binarisations is.
 */
export function describeData(d: DatasetConfig): DataDescription {
  const levels = levelsFor(d);
  if (d.binarize === 'dynamic') {
    return {
      name: d.name, levels, binarisation: 'dynamic',
      text: `${d.name}, dynamically binarised (each pixel Bernoulli(v/255), redrawn every epoch; evaluated on the fixed draw of seed 0) — not the static binarisation on which the PixelRNN paper's 79.20 nats is reported`,
    };
  }
  if (d.binarize === 'fixed') {
    return {
      name: d.name, levels, binarisation: 'threshold',
      text: `${d.name}, binarised at a fixed threshold (v ≥ 128 → 1) — neither dynamic binarisation nor the static binarised MNIST of the papers`,
    };
  }
  return { name: d.name, levels, binarisation: 'none', text: `${d.name}, ${d.bits}-bit (${levels} levels), not binarised` };
}

/**
 * For evaluation and completion: dynamic binarisation is evaluated on one fixed draw (the loader's
 * draw for seed 0, epoch 0), the usual protocol for binarised MNIST.
 */
export function levelsFor(d: DatasetConfig): number {
  return d.binarize === 'none' ? 2 ** d.bits : 2;
}

/** Refuses a dataset section whose levels or image size the model cannot take. */
export function checkDataFits(model: AutoregressiveModel, d: DatasetConfig, ds?: Dataset): void {
  const levels = levelsFor(d);
  if (levels !== model.likelihood.levels) {
    const want = model.likelihood.levels === 2 ? 'dataset.binarize=fixed or dynamic' : `dataset.bits=${Math.log2(model.likelihood.levels)} and dataset.binarize=none`;
    throw new ConfigError('dataset', `gives ${levels} levels per value but the model's ${model.config.likelihood.kind} likelihood has ${model.likelihood.levels}; set ${want}`);
  }
  if (ds) {
    const [, h, w, c] = ds.shape;
    const m = model.config;
    if (h !== m.height || w !== m.width || c !== m.channels) {
      throw new ConfigError('dataset', `${ds.name} has ${h}×${w}×${c} images but the model takes ${m.height}×${m.width}×${m.channels}; set model.height, model.width and model.channels to match`);
    }
    if (m.numClasses > 0 && (ds.labels === null || ds.numClasses > m.numClasses)) {
      throw new ConfigError('model.numClasses', `is ${m.numClasses} but ${ds.name} has ${ds.labels ? `${ds.numClasses} classes` : 'no labels'}`);
    }
  }
}
