// A run's configuration, the part that reads no file: the `model`, `dataset` and `train`
// sections, their defaults, and resolveRunConfig, which fills the defaults and checks every key,
// type and range. Runs anywhere JavaScript runs (the page exported by `arpix export --web` checks
// a checkpoint's config with it); reading config files and presets is in config.ts.

import { ConfigError, resolveConfig } from '../config.js';
import { resolveModelConfig, type ModelConfig } from '../models/index.js';
import type { ComputePrecision } from '../ops/precision.js';

export type PrecisionSetting = ComputePrecision | 'auto';
export const PRECISION_SETTINGS: readonly PrecisionSetting[] = ['auto', 'fp32', 'bf16'];

export interface ScheduleConfig {
  /** Steps of linear warm-up from lr/warmup to lr. */
  warmup: number;
  /**
   * After the warm-up: constant, exponential (gamma per step), cosine (to minFactor·lr at
   * train.steps) or noam (the Transformer's: lr·√(warmup/step), with the warm-up built in).
   */
  decay: 'constant' | 'exponential' | 'cosine' | 'noam';
  /** Exponential decay: factor per step. */
  gamma: number;
  /** Cosine decay: the final factor. */
  minFactor: number;
}

export interface TrainConfig {
  batchSize: number;
  /** adam, adamw, sgd or rmsprop (PixelRNN's). */
  optimizer: 'adam' | 'adamw' | 'sgd' | 'rmsprop';
  lr: number;
  betas: number[];
  eps: number;
  weightDecay: number;
  /** SGD and RMSProp. */
  momentum: number;
  /** RMSProp only: smoothing of the squared-gradient average. */
  alpha: number;
  schedule: ScheduleConfig;
  /** Maximum joint gradient norm; 0 turns clipping off. */
  gradClip: number;
  /** Decay of the exponential moving average of the weights; 0 turns it off. */
  ema: number;
  /** Stop after this many optimiser steps (0: no step limit). */
  steps: number;
  /** Stop after this many epochs (0: no epoch limit). */
  epochs: number;
  /** Stop after this much training time in minutes (0: no time limit). */
  minutes: number;
  /** Validate every N steps (0: only at the end). */
  validateEvery: number;
  /** Training images held out for validation. */
  validationSize: number;
  /** Write a checkpoint every N steps (0: only at the end). */
  checkpointEvery: number;
  /** Seeds the initial weights, the data order and dropout. */
  seed: number;
  /** Write a grid of samples every N steps (0: never). */
  sampleEvery: number;
  /** Append a training-metrics line every N steps. */
  logEvery: number;
  /**
   * The products' precision (src/train/precision.ts): fp32; bf16 (bf16 operands, fp32 accumulation,
   * fp32 weights, optimiser and loss); or auto (default): bf16 where the CPU multiplies bf16 natively.
   */
  precision: PrecisionSetting;
}

export interface DatasetConfig {
  /** A dataset name (fashion-mnist, cifar10, …) or a path loadDataset understands. */
  name: string;
  /** Bits per value the model sees (8 = 256 levels; fewer quantise). */
  bits: number;
  /** none, fixed (threshold at 128) or dynamic (Bernoulli(v/255), redrawn every epoch). */
  binarize: 'none' | 'fixed' | 'dynamic';
}

export interface RunConfig {
  /** Preset the run started from, or '' for a config file. */
  preset: string;
  model: ModelConfig;
  dataset: DatasetConfig;
  train: TrainConfig;
}

export const trainDefaults: TrainConfig = {
  batchSize: 32,
  optimizer: 'adam',
  lr: 1e-3,
  betas: [0.9, 0.999],
  eps: 1e-8,
  weightDecay: 0,
  momentum: 0.9,
  alpha: 0.99,
  schedule: { warmup: 0, decay: 'constant', gamma: 1, minFactor: 0 },
  gradClip: 0,
  ema: 0,
  steps: 1000,
  epochs: 0,
  minutes: 0,
  validateEvery: 500,
  validationSize: 5000,
  checkpointEvery: 500,
  seed: 0,
  sampleEvery: 0,
  logEvery: 10,
  precision: 'auto',
};

export const datasetDefaults: DatasetConfig = { name: '', bits: 8, binarize: 'none' };

export const SECTIONS = ['model', 'dataset', 'train'] as const;

export type Raw = Record<string, unknown>;

export function isObject(v: unknown): v is Raw {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

export const clone = <T>(v: T): T => JSON.parse(JSON.stringify(v)) as T;

function oneOf(key: string, value: string, allowed: readonly string[]): void {
  if (!allowed.includes(value)) throw new ConfigError(key, `must be one of ${allowed.join(', ')}, got '${value}'`);
}

function positiveInt(key: string, v: number, min = 1): void {
  if (!Number.isInteger(v) || v < min) throw new ConfigError(key, `must be an integer ≥ ${min}, got ${v}`);
}

/** Range checks the types alone cannot express. */
function checkTrain(t: TrainConfig): void {
  oneOf('train.optimizer', t.optimizer, ['adam', 'adamw', 'sgd', 'rmsprop']);
  oneOf('train.precision', t.precision, PRECISION_SETTINGS);
  if (!(t.alpha >= 0 && t.alpha < 1)) throw new ConfigError('train.alpha', `must be in [0, 1), got ${t.alpha}`);
  oneOf('train.schedule.decay', t.schedule.decay, ['constant', 'exponential', 'cosine', 'noam']);
  positiveInt('train.batchSize', t.batchSize);
  for (const k of ['steps', 'epochs', 'validateEvery', 'checkpointEvery', 'seed', 'sampleEvery'] as const) positiveInt(`train.${k}`, t[k], 0);
  positiveInt('train.logEvery', t.logEvery);
  if (!Number.isSafeInteger(t.seed)) throw new ConfigError('train.seed', `must be an integer in 0..${Number.MAX_SAFE_INTEGER}, got ${t.seed}`);
  positiveInt('train.validationSize', t.validationSize);
  positiveInt('train.schedule.warmup', t.schedule.warmup, 0);
  if (!(t.lr > 0)) throw new ConfigError('train.lr', `must be positive, got ${t.lr}`);
  if (!(t.minutes >= 0)) throw new ConfigError('train.minutes', `must be ≥ 0, got ${t.minutes}`);
  if (!(t.gradClip >= 0)) throw new ConfigError('train.gradClip', `must be ≥ 0 (0 turns clipping off), got ${t.gradClip}`);
  if (!(t.ema >= 0 && t.ema < 1)) throw new ConfigError('train.ema', `must be in [0, 1) (0 turns the average off), got ${t.ema}`);
  if (!(t.eps >= 0) || (t.optimizer === 'rmsprop' && !(t.eps > 0))) throw new ConfigError('train.eps', `must be ${t.optimizer === 'rmsprop' ? 'positive for rmsprop' : '≥ 0'}, got ${t.eps}`);
  if (!(t.weightDecay >= 0)) throw new ConfigError('train.weightDecay', `must be ≥ 0, got ${t.weightDecay}`);
  if (!(t.momentum >= 0)) throw new ConfigError('train.momentum', `must be ≥ 0, got ${t.momentum}`);
  if (t.betas.length !== 2 || !t.betas.every((b) => b >= 0 && b < 1)) throw new ConfigError('train.betas', `must be two numbers in [0, 1), got ${JSON.stringify(t.betas)}`);
  if (!(t.schedule.gamma > 0 && t.schedule.gamma <= 1)) throw new ConfigError('train.schedule.gamma', `must be in (0, 1], got ${t.schedule.gamma}`);
  if (t.steps === 0 && t.epochs === 0 && t.minutes === 0) {
    throw new ConfigError('train', 'has no stopping point: set train.steps, train.epochs or train.minutes');
  }
  if (t.schedule.decay === 'noam' && t.schedule.warmup < 1) {
    throw new ConfigError('train.schedule.warmup', `must be ≥ 1 with decay 'noam' (its warm-up is part of the schedule), got ${t.schedule.warmup}`);
  }
  if (t.schedule.decay === 'cosine' && t.steps <= t.schedule.warmup) {
    throw new ConfigError('train.schedule.decay', `'cosine' decays to train.steps, which must then exceed the warm-up (${t.schedule.warmup}); got ${t.steps}`);
  }
}

function checkDataset(d: DatasetConfig): void {
  if (d.name === '') throw new ConfigError('dataset.name', 'is required (a dataset name such as fashion-mnist, or a path)');
  positiveInt('dataset.bits', d.bits);
  if (d.bits > 8) throw new ConfigError('dataset.bits', `must be in 1..8, got ${d.bits}`);
  oneOf('dataset.binarize', d.binarize, ['none', 'fixed', 'dynamic']);
}

/** Resolves a raw `{model, dataset, train}` object: defaults filled, every key and type checked. */
export function resolveRunConfig(raw: Raw, preset = ''): RunConfig {
  if (!isObject(raw)) throw new ConfigError('config', 'must be a JSON object with model, dataset and train sections');
  for (const key of Object.keys(raw)) {
    if (!(SECTIONS as readonly string[]).includes(key) && key !== 'description' && key !== 'preset') {
      throw new ConfigError(key, `is not a known section; known sections: ${SECTIONS.join(', ')}`);
    }
  }
  if (!isObject(raw.model)) throw new ConfigError('model', 'section is required (an object with kind, height, width, channels, likelihood, …)');
  if (!isObject(raw.dataset)) throw new ConfigError('dataset', 'section is required (an object with name, bits, binarize)');
  const model = resolveModelConfig(raw.model, 'model.');
  const dataset = resolveConfig(datasetDefaults as unknown as Raw, raw.dataset, 'dataset') as unknown as DatasetConfig;
  checkDataset(dataset);
  const train = resolveConfig(trainDefaults as unknown as Raw, (raw.train ?? {}) as Raw, 'train') as unknown as TrainConfig;
  checkTrain(train);
  return { preset: typeof raw.preset === 'string' ? raw.preset : preset, model, dataset, train };
}

