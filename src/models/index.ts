// createModel: any model from a plain JSON config, and the presets shipped as JSON files.

import { ConfigError, resolveConfig } from '../config.js';
import type { LikelihoodConfig } from '../likelihoods/index.js';
import { Generator } from '../tensor/random.js';
import { FAMILIES, familyOf, type ModelConfig } from './families.js';
import type { FieldRange } from './core/family.js';
import { checkModelMemory } from './memory.js';
import { GatedPixelCNN, type GatedPixelCNNConfig } from './gated-pixelcnn/gated-pixelcnn.js';
import { ImageTransformer, type ImageTransformerConfig } from './image-transformer/image-transformer.js';
import { ImageGPT, type ImageGPTConfig } from './image-gpt/image-gpt.js';
import type { AutoregressiveModel, BaseModelConfig } from './core/model.js';
import { PixelCNN, type PixelCNNConfig } from './pixelcnn/pixelcnn.js';
import { PixelCNNPP, type PixelCNNPPConfig } from './pixelcnnpp/pixelcnnpp.js';
import { RowLSTM, type RowLSTMConfig } from './pixelrnn/row-lstm.js';
import { DiagonalBiLSTM, type DiagonalBiLSTMConfig } from './pixelrnn/diagonal-bilstm.js';

export { AutoregressiveModel } from './core/model.js';
export type { BaseModelConfig, Condition } from './core/model.js';
export { FAMILIES, familyOf } from './families.js';
export type { ModelConfig } from './families.js';
export type { FamilyCase, FieldRange, ModelCost, ModelFamily } from './core/family.js';
export { MemoryLimitError, checkMemory, checkModelMemory, costOfConfig, memoryLimit, memoryNeeded } from './memory.js';
export { DiagonalBiLSTM, GatedPixelCNN, ImageGPT, ImageTransformer, PixelCNN, PixelCNNPP, RowLSTM };
export type { DiagonalBiLSTMConfig, GatedPixelCNNConfig, ImageGPTConfig, ImageTransformerConfig, PixelCNNConfig, PixelCNNPPConfig, RowLSTMConfig };

export type ModelKind = ModelConfig['kind'];

export const MODEL_KINDS = FAMILIES.map((f) => f.kind) as ModelKind[];

const LIKELIHOOD_DEFAULTS: Record<LikelihoodConfig['kind'], Record<string, unknown>> = {
  'bernoulli': { kind: 'bernoulli' },
  'categorical': { kind: 'categorical', levels: 256 },
  'logistic-mixture': { kind: 'logistic-mixture', nrMix: 5, levels: 256 },
  'palette': { kind: 'palette', k: 512, colours: [] },
};

/** Ranges every family shares: the image, the head and the conditioning. */
const BASE_RANGES: Record<string, FieldRange> = {
  height: { min: 1, max: 4096 },
  width: { min: 1, max: 4096 },
  channels: { min: 1, max: 4 },
  numClasses: { min: 0, max: 100_000 },
  conditionDim: { min: 0, max: 65_536 },
};
const LIKELIHOOD_RANGES: Record<string, FieldRange> = { levels: { min: 2, max: 65_536 }, nrMix: { min: 1, max: 256 } };

/** Refuses a value outside its range, naming the field as `prefix + key`. */
export function checkRanges(obj: Record<string, unknown>, ranges: Readonly<Record<string, FieldRange>>, prefix: string): void {
  for (const [key, r] of Object.entries(ranges)) {
    const value = obj[key];
    if (value === undefined) continue;
    const list = Array.isArray(value);
    const values = list ? value : [value];
    const what = `${r.integer === false ? 'a number' : r.odd ? 'an odd integer' : 'an integer'} in ${r.min}..${r.max}`;
    if (list && r.maxLength !== undefined && values.length > r.maxLength) {
      throw new ConfigError(prefix + key, `may hold at most ${r.maxLength} values, got ${values.length}`);
    }
    for (const v of values) {
      const ok = typeof v === 'number' && v >= r.min && v <= r.max && (r.integer === false ? Number.isFinite(v) : Number.isInteger(v)) && (!r.odd || v % 2 === 1);
      if (!ok) throw new ConfigError(prefix + key, `must be ${list ? `a list, each ${what}` : what}, got ${JSON.stringify(list ? value : v)}`);
    }
  }
}

function resolveLikelihood(given: unknown, prefix: string): LikelihoodConfig {
  const kind = (given as { kind?: unknown } | null)?.kind;
  if (typeof kind !== 'string' || !(kind in LIKELIHOOD_DEFAULTS)) {
    throw new ConfigError(`${prefix}likelihood.kind`, `must be one of ${Object.keys(LIKELIHOOD_DEFAULTS).join(', ')}, got ${kind === undefined ? 'none (the key is missing)' : JSON.stringify(kind)}`);
  }
  const resolved = resolveConfig(LIKELIHOOD_DEFAULTS[kind as LikelihoodConfig['kind']], given as Record<string, unknown>, `${prefix}likelihood`);
  checkRanges(resolved, LIKELIHOOD_RANGES, `${prefix}likelihood.`);
  return resolved as unknown as LikelihoodConfig;
}

/**
 * Fills a partial config with its kind's defaults, refusing unknown keys, wrong types and values
 * outside their ranges (the family's and the shared ones). `prefix` names the section in errors.
 */
export function resolveModelConfig(given: Record<string, unknown>, prefix = ''): ModelConfig {
  const kind = given.kind;
  const family = typeof kind === 'string' ? familyOf(kind) : undefined;
  if (family === undefined) {
    throw new ConfigError(`${prefix}kind`, `must be one of ${MODEL_KINDS.join(', ')}, got ${kind === undefined ? 'none (the key is missing)' : JSON.stringify(kind)}`);
  }
  for (const key of ['height', 'width', 'channels', 'likelihood'] as const) {
    if (!(key in given)) throw new ConfigError(`${prefix}${key}`, `is required (kind ${kind})`);
  }
  const defaults = { ...family.defaults, height: 0, width: 0, channels: 0, likelihood: {} } as Record<string, unknown>;
  const section = prefix.replace(/\.$/, '');
  const resolved = resolveConfig(defaults, given, section, [`${prefix}likelihood`]) as unknown as ModelConfig;
  checkRanges(resolved as unknown as Record<string, unknown>, { ...BASE_RANGES, ...family.ranges }, prefix);
  resolved.likelihood = resolveLikelihood(given.likelihood, prefix);
  return resolved;
}

/** Builds any model from a plain JSON config; `seed` fixes its initial weights. */
export function createModel(config: Record<string, unknown> | ModelConfig, opts: { seed?: number } = {}): AutoregressiveModel<BaseModelConfig> & { config: ModelConfig } {
  const resolved = resolveModelConfig(config as Record<string, unknown>);
  checkModelMemory(resolved, 'model');
  const generator = new Generator(opts.seed ?? 0);
  return familyOf(resolved.kind)!.build(resolved, generator) as AutoregressiveModel<BaseModelConfig> & { config: ModelConfig };
}
