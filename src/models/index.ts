// createModel: any model from a plain JSON config, and the presets shipped as JSON files.

import { readdirSync, readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { ConfigError, resolveConfig } from '../config.js';
import type { LikelihoodConfig } from '../likelihoods/index.js';
import { Generator } from '../tensor/random.js';
import { FAMILIES, familyOf } from './families.js';
import { GatedPixelCNN, type GatedPixelCNNConfig } from './gated-pixelcnn.js';
import type { AutoregressiveModel, BaseModelConfig } from './model.js';
import { PixelCNN, type PixelCNNConfig } from './pixelcnn.js';
import { PixelCNNPP, type PixelCNNPPConfig } from './pixelcnnpp.js';
import { RowLSTM, type RowLSTMConfig } from './row-lstm.js';
import { DiagonalBiLSTM, type DiagonalBiLSTMConfig } from './diagonal-bilstm.js';

export { AutoregressiveModel } from './model.js';
export type { BaseModelConfig, Condition } from './model.js';
export { FAMILIES, familyOf } from './families.js';
export type { FamilyCase, ModelFamily } from './family.js';
export { DiagonalBiLSTM, GatedPixelCNN, PixelCNN, PixelCNNPP, RowLSTM };
export type { DiagonalBiLSTMConfig, GatedPixelCNNConfig, PixelCNNConfig, PixelCNNPPConfig, RowLSTMConfig };

export type ModelConfig = GatedPixelCNNConfig | PixelCNNConfig | PixelCNNPPConfig | RowLSTMConfig | DiagonalBiLSTMConfig;
export type ModelKind = ModelConfig['kind'];

export const MODEL_KINDS = FAMILIES.map((f) => f.kind) as ModelKind[];

const LIKELIHOOD_DEFAULTS: Record<LikelihoodConfig['kind'], Record<string, unknown>> = {
  'bernoulli': { kind: 'bernoulli' },
  'categorical': { kind: 'categorical', levels: 256 },
  'logistic-mixture': { kind: 'logistic-mixture', nrMix: 5, levels: 256 },
};

function resolveLikelihood(given: unknown): LikelihoodConfig {
  const kind = (given as { kind?: unknown } | null)?.kind;
  if (typeof kind !== 'string' || !(kind in LIKELIHOOD_DEFAULTS)) {
    throw new ConfigError('likelihood.kind', `must be one of ${Object.keys(LIKELIHOOD_DEFAULTS).join(', ')}, got ${JSON.stringify(kind)}`);
  }
  return resolveConfig(LIKELIHOOD_DEFAULTS[kind as LikelihoodConfig['kind']], given as Record<string, unknown>, 'likelihood') as unknown as LikelihoodConfig;
}

/** Fills a partial config with its kind's defaults, refusing unknown keys and wrong types. */
export function resolveModelConfig(given: Record<string, unknown>): ModelConfig {
  const kind = given.kind;
  const family = typeof kind === 'string' ? familyOf(kind) : undefined;
  if (family === undefined) {
    throw new ConfigError('kind', `must be one of ${MODEL_KINDS.join(', ')}, got ${JSON.stringify(kind)}`);
  }
  for (const key of ['height', 'width', 'channels', 'likelihood'] as const) {
    if (!(key in given)) throw new ConfigError(key, `is required (kind ${kind})`);
  }
  const defaults = { ...family.defaults, height: 0, width: 0, channels: 0, likelihood: {} } as Record<string, unknown>;
  const resolved = resolveConfig(defaults, given, '', ['likelihood']) as unknown as ModelConfig;
  resolved.likelihood = resolveLikelihood(given.likelihood);
  return resolved;
}

/** Builds any model from a plain JSON config; `seed` fixes its initial weights. */
export function createModel(config: Record<string, unknown> | ModelConfig, opts: { seed?: number } = {}): AutoregressiveModel<BaseModelConfig> & { config: ModelConfig } {
  const resolved = resolveModelConfig(config as Record<string, unknown>);
  const generator = new Generator(opts.seed ?? 0);
  return familyOf(resolved.kind)!.build(resolved, generator) as AutoregressiveModel<BaseModelConfig> & { config: ModelConfig };
}

// ---- presets -------------------------------------------------------------------------------

export interface Preset {
  name: string;
  description: string;
  /** Which data the preset trains on (read by the training loop). */
  dataset: Record<string, unknown>;
  model: ModelConfig;
  /** Training hyper-parameters (read by src/train, which checks them). */
  train: Record<string, unknown>;
}

const presetDir = fileURLToPath(new URL('./presets/', import.meta.url));

export function presetNames(): string[] {
  return readdirSync(presetDir).filter((f) => f.endsWith('.json')).map((f) => f.slice(0, -5)).sort();
}

export function loadPreset(name: string): Preset {
  const names = presetNames();
  if (!names.includes(name)) throw new ConfigError('preset', `'${name}' does not exist; presets: ${names.join(', ')}`);
  const raw = JSON.parse(readFileSync(`${presetDir}${name}.json`, 'utf8')) as Omit<Preset, 'name'>;
  return { name, description: raw.description, dataset: raw.dataset, model: resolveModelConfig(raw.model as unknown as Record<string, unknown>), train: raw.train ?? {} };
}
