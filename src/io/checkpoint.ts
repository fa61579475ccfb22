// Checkpoints: one safetensors file holding everything a run needs to continue exactly or a user
// needs to rebuild its model — the model's weights under `model.`, the optimiser's moment buffers
// under `optimizer.`, the averaged weights under `ema.` — and, in the header's metadata under
// `arpix`, one JSON object: the run's config, step and epoch, the data loader's position, the
// random generators' states, the optimiser's, scheduler's and average's JSON state, and the arpix
// version and model kind. Written to a temporary file and renamed, so a crash or a kill leaves the
// previous checkpoint or the new one, never half of one.
//
// Integrity: the header's metadata also holds, under `arpix.sha256`, the SHA-256 of the tensor
// table and data section and the SHA-256 of the `arpix` JSON. Every reader checks both before it
// parses anything further, then checks the metadata against one schema (types and ranges) and
// refuses non-finite floats, so a damaged file is refused with a line saying what is wrong rather
// than evaluated, sampled from or trained on. A file without sums decodes as 'unverified'; every
// command refuses it unless the user passes --allow-unverified (validateCheckpoint in
// src/train/checkpoint.ts, the one check all of them and `arpix verify` run).

import * as v from 'valibot';
import { sha256 } from '../env.js';
import { ArpixError, FormatError } from '../errors.js';
import type { GeneratorState } from '../tensor/random.js';
import type { Tensor } from '../tensor/tensor.js';
import { decodeSafetensors, encodeSafetensors, fileBytesOf, inspectSafetensors, safetensorsLayout, type TensorPlacement } from './safetensors.js';

export const CHECKPOINT_FORMAT = 'arpix-checkpoint';
export const CHECKPOINT_VERSION = 1;
const META_KEY = 'arpix';
const SUM_KEY = 'arpix.sha256';
const PREFIXES = { model: 'model.', optimizer: 'optimizer.', ema: 'ema.' } as const;

/** Everything in a checkpoint that is not a tensor. */
export interface CheckpointMeta {
  format: typeof CHECKPOINT_FORMAT;
  version: number;
  arpixVersion: string;
  /** The model's kind ('gated-pixelcnn', …), also inside config.model. */
  modelKind: string;
  /** 'pytorch' for weights in PyTorch's layout (arpix export, an exported train.py); absent for arpix's. */
  layout?: 'arpix' | 'pytorch';
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
  /** Set by the reader: 'verified' when the file's SHA-256 sums matched, 'unverified' for a file without them. */
  integrity?: 'verified' | 'unverified';
  /** Set by the reader: the file it came from, for errors found later. */
  file?: string;
}

// ---- the metadata schema: every field, its type and its range --------------------------------

/** Upper bound of steps, epochs and counters: far beyond any run, far below where doubles stop being integers. */
const MAX_COUNT = 1e12;
const count = v.pipe(v.number(), v.integer(), v.minValue(0), v.maxValue(MAX_COUNT));
const seconds = v.pipe(v.number(), v.finite(), v.minValue(0), v.maxValue(1e10));
const plainObject = v.record(v.string(), v.unknown());

const evaluationSchema = v.looseObject({
  bitsPerDim: v.pipe(v.number(), v.finite()),
  stderr: v.pipe(v.number(), v.finite(), v.minValue(0)),
  n: count,
});

/** The schema of the `arpix` metadata; the run config inside is checked by its own resolver. */
export const checkpointMetaSchema = v.strictObject({
  format: v.literal(CHECKPOINT_FORMAT),
  version: v.pipe(v.number(), v.integer(), v.minValue(1), v.maxValue(CHECKPOINT_VERSION)),
  arpixVersion: v.pipe(v.string(), v.maxLength(100)),
  modelKind: v.pipe(v.string(), v.minLength(1), v.maxLength(100)),
  config: v.looseObject({ model: plainObject }),
  layout: v.optional(v.picklist(['arpix', 'pytorch'])),
  step: count,
  epoch: count,
  loader: v.nullable(v.strictObject({ epoch: count, step: count })),
  generators: v.record(v.string(), v.strictObject({ seed: v.pipe(v.number(), v.safeInteger(), v.minValue(0)), offset: v.pipe(v.number(), v.safeInteger(), v.minValue(0)) })),
  optimizer: v.nullable(v.strictObject({
    kind: v.string(),
    groups: v.pipe(v.array(v.looseObject({ params: v.array(count) })), v.minLength(1)),
    steps: v.record(v.pipe(v.string(), v.regex(/^\d+$/)), count),
  })),
  scheduler: v.nullable(v.strictObject({ stepCount: count })),
  ema: v.nullable(v.strictObject({ decay: v.pipe(v.number(), v.minValue(0), v.maxValue(1)), warmup: v.boolean(), updates: count })),
  trainSeconds: seconds,
  imagesSeen: v.pipe(v.number(), v.integer(), v.minValue(0), v.maxValue(1e15)),
  extra: v.looseObject({ validation: v.optional(v.nullable(evaluationSchema)) }),
});

/** Nesting deeper than this in a checkpoint's or a config's JSON is refused (no real one comes close). */
export const MAX_JSON_DEPTH = 32;

/** The depth of a JSON value, counted without recursion (so a hostile one cannot overflow the stack). */
export function jsonDepth(value: unknown, stopAt = Infinity): number {
  let deepest = 0;
  const stack: [unknown, number][] = [[value, 0]];
  while (stack.length > 0) {
    const [x, d] = stack.pop()!;
    if (x === null || typeof x !== 'object') continue;
    const depth = d + 1;
    deepest = Math.max(deepest, depth);
    if (deepest > stopAt) return deepest;
    for (const y of Object.values(x)) stack.push([y, depth]);
  }
  return deepest;
}

/** The first problem valibot found, as `field: what` with a dotted field path. */
function firstIssue(issues: readonly v.BaseIssue<unknown>[]): string {
  const i = issues[0]!;
  const path = v.getDotPath(i) ?? '(top level)';
  if (i.received === 'undefined') return `field '${path}' is missing`;
  return `field '${path}' ${i.expected !== null ? `must be ${i.expected}` : 'is invalid'}, got ${i.received}`;
}

/** Checks parsed `arpix` metadata against the schema; a FormatError names the file and the field. */
export function checkCheckpointMeta(file: string, meta: unknown): CheckpointMeta {
  if (jsonDepth(meta, MAX_JSON_DEPTH) > MAX_JSON_DEPTH) throw new FormatError(file, `has checkpoint metadata nested deeper than ${MAX_JSON_DEPTH} levels; the file is damaged`);
  const isObj = typeof meta === 'object' && meta !== null;
  if (!isObj || (meta as { format?: unknown }).format !== CHECKPOINT_FORMAT) throw new FormatError(file, 'is not an arpix checkpoint (wrong format tag)');
  const version = (meta as { version?: unknown }).version;
  if (typeof version === 'number' && version > CHECKPOINT_VERSION) {
    throw new FormatError(file, `is checkpoint format version ${String(version)}; this arpix reads version ${CHECKPOINT_VERSION} and older (upgrade arpix)`);
  }
  const r = v.safeParse(checkpointMetaSchema, meta);
  if (!r.success) throw new FormatError(file, `has bad checkpoint metadata: ${firstIssue(r.issues)}`);
  const m = r.output as unknown as CheckpointMeta;
  if (m.config.model.kind === undefined) throw new FormatError(file, "has bad checkpoint metadata: field 'config.model.kind' is missing");
  if (m.config.model.kind !== m.modelKind) {
    throw new FormatError(file, `has bad checkpoint metadata: modelKind '${m.modelKind}' differs from config.model.kind ${JSON.stringify(m.config.model.kind)}`);
  }
  return m;
}

// ---- integrity ----------------------------------------------------------------------------

interface Sums {
  tensors: string;
  meta: string;
}

/** SHA-256 of the tensor table (names, dtypes, shapes, offsets) and then the data section's bytes. */
function tensorSum(placements: readonly TensorPlacement[], data: Iterable<Uint8Array>): string {
  const h = sha256();
  const table = [...placements].sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
  for (const e of table) h.update(`${e.name}\t${e.dtype}\t${e.shape.join(',')}\t${e.begin}\t${e.end}\n`);
  for (const chunk of data) h.update(chunk);
  return h.hex();
}

const metaSum = (text: string): string => sha256().update(text).hex();

/** Verifies the sums recorded in a checkpoint's header against its bytes; false when it has none. */
function verifySums(file: string, bytes: Uint8Array, info: ReturnType<typeof inspectSafetensors>): boolean {
  const recorded = info.metadata[SUM_KEY];
  if (recorded === undefined) return false;
  let sums: Sums;
  try {
    sums = JSON.parse(recorded) as Sums;
  } catch {
    throw new FormatError(file, `is damaged: its recorded checksums ('${SUM_KEY}') are not valid JSON`);
  }
  const hex = /^[0-9a-f]{64}$/;
  if (typeof sums !== 'object' || sums === null || !hex.test(String(sums.tensors)) || !hex.test(String(sums.meta))) {
    throw new FormatError(file, `is damaged: its recorded checksums ('${SUM_KEY}') are malformed`);
  }
  if (metaSum(info.metadata[META_KEY]!) !== sums.meta) {
    throw new FormatError(file, 'is damaged: its metadata does not match the SHA-256 recorded when it was written; use an earlier checkpoint');
  }
  const sorted = [...info.placements].sort((a, b) => a.begin - b.begin);
  const chunks = sorted.map((e) => bytes.subarray(info.dataStart + e.begin, info.dataStart + e.end));
  if (tensorSum(info.placements, chunks) !== sums.tensors) {
    throw new FormatError(file, 'is damaged: its tensors do not match the SHA-256 recorded when it was written; use an earlier checkpoint');
  }
  return true;
}

/** The first non-finite value of every float tensor, as a FormatError naming the tensor. */
function checkFinite(file: string, c: Checkpoint): void {
  for (const part of ['model', 'optimizer', 'ema'] as const) {
    for (const [name, t] of Object.entries(c[part])) {
      if (!t.isFloat) continue;
      const d = t.data;
      for (let i = 0; i < d.length; i++) {
        if (!Number.isFinite(d[i]!)) throw new FormatError(file, `tensor '${PREFIXES[part]}${name}' holds ${d[i]} at flat index ${i}; a checkpoint with non-finite values cannot be used`);
      }
    }
  }
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
  const text = JSON.stringify(c.meta);
  const placements = safetensorsLayout(tensors);
  const sums: Sums = { tensors: tensorSum(placements, placements.map((e) => fileBytesOf(tensors[e.name]!))), meta: metaSum(text) };
  return encodeSafetensors(tensors, { [META_KEY]: text, [SUM_KEY]: JSON.stringify(sums) });
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
  /**
   * These exact bytes matched a SHA-256 of the whole file taken when it was written from a checked
   * checkpoint (an exported page lists one per run): the sums recorded inside are not computed
   * again, and the file counts as verified.
   */
  digestChecked?: boolean;
}

/**
 * Parses checkpoint bytes; every problem — structure, checksums, metadata fields, non-finite
 * values — is a FormatError naming `file`. Nothing is decoded before the sums are checked.
 */
export function decodeCheckpoint(bytes: Uint8Array, file: string, opts: DecodeOptions = {}): Checkpoint {
  const info = inspectSafetensors(bytes, file);
  const text = info.metadata[META_KEY];
  if (text === undefined) throw new FormatError(file, 'is a safetensors file but not an arpix checkpoint (no arpix metadata)');
  const verified = opts.digestChecked === true || verifySums(file, bytes, info);
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch (e) {
    throw new FormatError(file, `has corrupt checkpoint metadata: ${(e as Error).message}`, { cause: e });
  }
  const meta = checkCheckpointMeta(file, parsed);
  if (meta.layout === 'pytorch' && !opts.pytorchLayout) {
    throw new FormatError(file, `is a checkpoint in PyTorch's weight layout (from an exported train.py or arpix export); make it an arpix run first: arpix import ${file} --out RUN_DIR`);
  }
  const { tensors } = decodeSafetensors(bytes, file);
  const out: Checkpoint = { meta, model: {}, optimizer: {}, ema: {}, integrity: verified ? 'verified' : 'unverified', file };
  for (const [name, t] of Object.entries(tensors)) {
    const part = (Object.keys(PREFIXES) as (keyof typeof PREFIXES)[]).find((p) => name.startsWith(PREFIXES[p]));
    if (!part) throw new FormatError(file, `holds tensor '${name}' outside the model., optimizer. and ema. groups`);
    out[part][name.slice(PREFIXES[part].length)] = t;
  }
  if (Object.keys(out.model).length === 0) throw new FormatError(file, 'holds no model weights');
  if (meta.optimizer === null && Object.keys(out.optimizer).length > 0) throw new FormatError(file, 'holds optimizer tensors but its metadata has no optimizer state');
  if (meta.ema === null && Object.keys(out.ema).length > 0) throw new FormatError(file, 'holds averaged (ema.) weights but its metadata has no EMA state');
  if (meta.ema !== null && Object.keys(out.ema).length === 0) throw new FormatError(file, 'has EMA state in its metadata but no averaged (ema.) weights');
  checkFinite(file, out);
  return out;
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
