// Checkpoints: one safetensors file holding everything a run needs to continue exactly or a user
// needs to rebuild its model — the model's weights under `model.`, the optimiser's moment buffers
// under `optimizer.`, the averaged weights under `ema.` — and, in the header's metadata under
// `arpix`, one JSON object: the run's config, step and epoch, the data loader's position, the
// random generators' states, the optimiser's, scheduler's and average's JSON state, and the arpix
// version and model kind. Written to a temporary file and renamed, so a crash or a kill leaves the
// previous checkpoint or the new one, never half of one.

import { readFile } from 'node:fs/promises';
import { ArpixError, FormatError } from '../errors.js';
import type { GeneratorState } from '../tensor/random.js';
import type { Tensor } from '../tensor/tensor.js';
import { decodeSafetensors, encodeSafetensors } from './safetensors.js';
import { writeFileAtomic } from './atomic.js';

export const CHECKPOINT_FORMAT = 'arpix-checkpoint';
export const CHECKPOINT_VERSION = 1;
const META_KEY = 'arpix';
const PREFIXES = { model: 'model.', optimizer: 'optimizer.', ema: 'ema.' } as const;

/** Everything in a checkpoint that is not a tensor. */
export interface CheckpointMeta {
  format: typeof CHECKPOINT_FORMAT;
  version: number;
  arpixVersion: string;
  /** The model's kind ('gated-pixelcnn', …), also inside config.model. */
  modelKind: string;
  /** The run's resolved config: {preset, model, dataset, train}. */
  config: Record<string, unknown> & { model: Record<string, unknown> };
  /** Optimiser steps taken, and the epoch the next batch belongs to. */
  step: number;
  epoch: number;
  /** The training loader's position: where the next batch comes from. */
  loader: { epoch: number; step: number } | null;
  /** Random generators by role, e.g. the default (dropout) generator. */
  generators: Record<string, GeneratorState>;
  optimizer: Record<string, unknown> | null;
  scheduler: { stepCount: number } | null;
  ema: { decay: number; warmup: boolean; updates: number } | null;
  /** Training time and images seen so far (time budgets and throughput continue across resumes). */
  trainSeconds: number;
  imagesSeen: number;
  /** Free-form facts (best validation so far, …). */
  extra: Record<string, unknown>;
}

export interface Checkpoint {
  meta: CheckpointMeta;
  model: Record<string, Tensor>;
  optimizer: Record<string, Tensor>;
  ema: Record<string, Tensor>;
}

/** A checkpoint that does not fit what it is loaded into; names what differs. */
export class CheckpointMismatchError extends ArpixError {
  constructor(readonly file: string, readonly differences: readonly string[]) {
    super(`${file}: the checkpoint is for another model: ${differences.join('; ')}`);
  }
}

/** The file's bytes: tensors under their prefixes and the metadata as JSON. */
export function encodeCheckpoint(c: Checkpoint): Uint8Array {
  const tensors: Record<string, Tensor> = {};
  for (const part of ['model', 'optimizer', 'ema'] as const) {
    for (const [name, t] of Object.entries(c[part])) tensors[PREFIXES[part] + name] = t;
  }
  return encodeSafetensors(tensors, { [META_KEY]: JSON.stringify(c.meta) });
}

/** Writes a checkpoint atomically (temporary file in the same folder, fsync, rename). */
export async function saveCheckpoint(path: string, c: Checkpoint): Promise<void> {
  try {
    await writeFileAtomic(path, encodeCheckpoint(c));
  } catch (e) {
    // A failed write() names no file; say which one could not be written.
    if (e && typeof e === 'object' && !('path' in e)) Object.assign(e, { path });
    throw e;
  }
}

function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

export interface DecodeOptions {
  /**
   * Accept a checkpoint whose weights are in PyTorch's layout (`"layout": "pytorch"` in its
   * metadata: written by an exported train.py or by `arpix export`). Only the importer sets this;
   * everything else is told to import such a file first.
   */
  pytorchLayout?: boolean;
}

/** Parses checkpoint bytes; every structural problem is a FormatError naming `file`. */
export function decodeCheckpoint(bytes: Uint8Array, file: string, opts: DecodeOptions = {}): Checkpoint {
  const { tensors, metadata } = decodeSafetensors(bytes, file);
  const text = metadata[META_KEY];
  if (text === undefined) throw new FormatError(file, 'is a safetensors file but not an arpix checkpoint (no arpix metadata)');
  let meta: CheckpointMeta;
  try {
    meta = JSON.parse(text) as CheckpointMeta;
  } catch (e) {
    throw new FormatError(file, `has corrupt checkpoint metadata: ${(e as Error).message}`, { cause: e });
  }
  if (!isObject(meta) || meta.format !== CHECKPOINT_FORMAT) throw new FormatError(file, 'is not an arpix checkpoint (wrong format tag)');
  if (typeof meta.version !== 'number' || meta.version > CHECKPOINT_VERSION) {
    throw new FormatError(file, `is checkpoint format version ${String(meta.version)}; this arpix reads version ${CHECKPOINT_VERSION} and older (upgrade arpix)`);
  }
  if (!isObject(meta.config) || !isObject(meta.config.model) || typeof meta.modelKind !== 'string') {
    throw new FormatError(file, 'has checkpoint metadata without a model config');
  }
  if (!Number.isInteger(meta.step) || meta.step < 0) throw new FormatError(file, `has a bad step (${String(meta.step)})`);
  if ((meta as { layout?: string }).layout === 'pytorch' && !opts.pytorchLayout) {
    throw new FormatError(file, `is a checkpoint in PyTorch's weight layout (from an exported train.py or arpix export); make it an arpix run first: arpix import ${file} --out RUN_DIR`);
  }
  const out: Checkpoint = { meta, model: {}, optimizer: {}, ema: {} };
  for (const [name, t] of Object.entries(tensors)) {
    const part = (Object.keys(PREFIXES) as (keyof typeof PREFIXES)[]).find((p) => name.startsWith(PREFIXES[p]));
    if (!part) throw new FormatError(file, `holds tensor '${name}' outside the model., optimizer. and ema. groups`);
    out[part][name.slice(PREFIXES[part].length)] = t;
  }
  if (Object.keys(out.model).length === 0) throw new FormatError(file, 'holds no model weights');
  return out;
}

/** Reads and parses a checkpoint file. */
export async function loadCheckpoint(file: string, opts: DecodeOptions = {}): Promise<Checkpoint> {
  let bytes: Uint8Array;
  try {
    bytes = await readFile(file);
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    if (code === 'ENOENT') throw new FormatError(file, 'does not exist');
    if (code === 'EISDIR') throw new FormatError(file, 'is a folder, not a checkpoint file');
    throw new FormatError(file, `cannot be read (${code ?? String(e)})`, { cause: e });
  }
  return decodeCheckpoint(bytes, file, opts);
}

/**
 * The differences between two configs as `key: a ≠ b` lines, with dotted keys; empty when they
 * agree. Used to say exactly why a checkpoint does not fit a model.
 */
export function configDifferences(found: unknown, expected: unknown, prefix = ''): string[] {
  if (isObject(found) && isObject(expected)) {
    const keys = [...new Set([...Object.keys(expected), ...Object.keys(found)])];
    return keys.flatMap((k) => configDifferences(found[k], expected[k], prefix ? `${prefix}.${k}` : k));
  }
  if (JSON.stringify(found) === JSON.stringify(expected)) return [];
  return [`${prefix || 'config'} is ${JSON.stringify(found) ?? 'absent'} in the checkpoint but ${JSON.stringify(expected) ?? 'absent'} here`];
}

/** Throws CheckpointMismatchError when the checkpoint's model config differs from `expected`. */
export function checkModelConfig(file: string, c: Checkpoint, expected: Record<string, unknown>): void {
  const diffs = configDifferences(c.meta.config.model, expected, 'model');
  if (diffs.length > 0) throw new CheckpointMismatchError(file, diffs);
}
