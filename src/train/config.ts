// A run's configuration: the preset's `model` and `dataset` sections plus a `train` section, all
// plain JSON, with `--section.key=value` overrides type-checked against the defaults (nanoGPT's
// configurator): an unknown key is refused with the list of known ones, a value must parse as its
// default's type.

import { PRECISION_SETTINGS, type PrecisionSetting } from './precision.js';
import { readFileSync } from 'node:fs';
import { ConfigError, resolveConfig } from '../config.js';
import { MAX_CONFIG_FILE, readRegularFile } from '../io/files.js';
import { loadPreset, resolveModelConfig, type ModelConfig } from '../models/index.js';

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

const SECTIONS = ['model', 'dataset', 'train'] as const;

type Raw = Record<string, unknown>;

function isObject(v: unknown): v is Raw {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

const clone = <T>(v: T): T => JSON.parse(JSON.stringify(v)) as T;

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

/** The raw sections of a preset (model unresolved, so overrides merge into what the file says). */
export function presetRaw(name: string): Raw {
  const p = loadPreset(name); // checks the name, lists the presets when unknown
  return { preset: name, model: clone(p.model), dataset: clone(p.dataset), train: clone(p.train) };
}

/** A JSON config file: {model, dataset, train?}. */
export function configFileRaw(file: string): Raw {
  let text: string;
  try {
    text = readRegularFile(file, MAX_CONFIG_FILE, 'a JSON config').toString('utf8');
  } catch (e) {
    throw new ConfigError('--config', (e as Error).message);
  }
  let raw: Raw;
  try {
    raw = JSON.parse(text) as Raw;
  } catch (e) {
    throw new ConfigError('--config', `'${file}' is not valid JSON: ${(e as Error).message.replace(/\s+/g, ' ')}`);
  }
  if (!isObject(raw) || Array.isArray(raw)) {
    const got = raw === null ? 'null' : Array.isArray(raw) ? 'a list' : `a ${typeof raw}`;
    throw new ConfigError('--config', `'${file}' holds ${got}; a config is a JSON object with model, dataset and train sections`);
  }
  const depth = nestingDepth(raw, MAX_CONFIG_DEPTH);
  if (depth > MAX_CONFIG_DEPTH) throw new ConfigError('--config', `'${file}' nests objects and lists more than ${MAX_CONFIG_DEPTH} levels deep; a config needs 4`);
  return raw;
}

/** A config is a few levels deep; far deeper is damage (and would exhaust the checks' stack). */
const MAX_CONFIG_DEPTH = 32;

/** How deep `v` nests objects and lists, counted up to just past `limit` (iteratively: no recursion to overflow). */
function nestingDepth(v: unknown, limit: number): number {
  let deepest = 0;
  const stack: [unknown, number][] = [[v, 0]];
  while (stack.length > 0) {
    const [x, d] = stack.pop()!;
    if (x === null || typeof x !== 'object') continue;
    deepest = Math.max(deepest, d + 1);
    if (deepest > limit) return deepest;
    for (const child of Object.values(x as Record<string, unknown>)) stack.push([child, d + 1]);
  }
  return deepest;
}

/** The value at a dotted path of a resolved config, or undefined. */
function lookup(obj: unknown, path: readonly string[]): unknown {
  let cur = obj;
  for (const k of path) {
    if (!isObject(cur) || !(k in cur)) return undefined;
    cur = cur[k];
  }
  return cur;
}

/** Parses the text of an override as the type of the value it replaces. */
function parseValue(key: string, text: string, like: unknown): unknown {
  if (typeof like === 'number') {
    const v = Number(text);
    if (text.trim() === '' || !Number.isFinite(v)) throw new ConfigError(key, `must be a number (like the default ${like}), got '${text}'`);
    return v;
  }
  if (typeof like === 'boolean') {
    if (text !== 'true' && text !== 'false') throw new ConfigError(key, `must be true or false, got '${text}'`);
    return text === 'true';
  }
  if (typeof like === 'string') return text;
  if (Array.isArray(like) && text.startsWith('@')) {
    // A list from a JSON file: the file's list, or its `colours` (a palette from `arpix palette fit`).
    const file = text.slice(1);
    let v: unknown;
    try {
      v = JSON.parse(readFileSync(file, 'utf8'));
    } catch (e) {
      throw new ConfigError(key, `could not read the JSON list in ${file}: ${(e as Error).message}`);
    }
    const list = isObject(v) && Array.isArray(v.colours) ? v.colours : v;
    if (!Array.isArray(list)) throw new ConfigError(key, `must be a JSON list, but ${file} holds neither a list nor an object with 'colours'`);
    return list;
  }
  try {
    return JSON.parse(text);
  } catch {
    if (Array.isArray(like)) throw new ConfigError(key, `must be a JSON list (like ${JSON.stringify(like)}), got '${text}'`);
    return text;
  }
}

/**
 * Applies `section.key=value` overrides to a raw config. Values are parsed as the type the key has
 * in the resolved config (so `--train.lr=3e-4` is a number); keys the config lacks are left for
 * resolveRunConfig to refuse with the list of known keys.
 */
export function applyOverrides(raw: Raw, overrides: readonly string[]): Raw {
  const out = clone(raw);
  const resolved = resolveRunConfig(raw, typeof raw.preset === 'string' ? raw.preset : '') as unknown as Raw;
  for (const o of overrides) {
    const eq = o.indexOf('=');
    if (eq < 1) throw new ConfigError(o, 'is not an override: write section.key=value, e.g. train.lr=3e-4');
    const key = o.slice(0, eq);
    const path = key.split('.');
    if (!(SECTIONS as readonly string[]).includes(path[0]!) || path.length < 2 || path.some((p) => p === '')) {
      throw new ConfigError(key, `is not a known key: overrides look like ${SECTIONS.map((s) => `--${s}.KEY=VALUE`).join(', ')}`);
    }
    const like = lookup(resolved, path);
    const value = parseValue(key, o.slice(eq + 1), like);
    let cur = out;
    for (const k of path.slice(0, -1)) {
      if (!isObject(cur[k])) cur[k] = {};
      cur = cur[k] as Raw;
    }
    cur[path.at(-1)!] = value;
  }
  return out;
}
