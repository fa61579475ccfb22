// `arpix import`: checkpoints from PyTorch into arpix runs. Reads, without Python,
//   - arpix checkpoints in either weight layout (an exported train.py writes PyTorch's), with their
//     optimiser state and average, so training continues where PyTorch left it;
//   - a plain state dict saved by torch.save (zip + pickle, through the restricted unpickler), a
//     PyTorch Lightning .ckpt wrapping one, or a safetensors file of tensors — these carry no
//     architecture, so the config comes from --preset or --config;
//   - for the convolutional families, the masked formulation (see masked.ts).
// Every mismatch is one line naming the first key that does not fit.

import { constants as bufferConstants } from 'node:buffer';
import { existsSync, statSync } from 'node:fs';
import { rm } from 'node:fs/promises';
import { dirname, join, resolve } from 'node:path';
import { ArpixError, FormatError, fmtShape } from '../errors.js';
import { decodeCheckpoint, encodeCheckpoint, configDifferences, CHECKPOINT_FORMAT, CHECKPOINT_VERSION, type Checkpoint } from '../io/checkpoint.js';
import { writeFilesAtomic } from '../io/atomic.js';
import { checkOutputFolder, makeFolder, readRegularFile, refuseExistingOutputs, MAX_DATA_FILE } from '../io/files.js';
import { lockFolder } from '../io/lock.js';
import { decodeSafetensors } from '../io/safetensors.js';
import { createModel } from '../models/index.js';
import type { AutoregressiveModel } from '../models/core/model.js';
import { Tensor } from '../tensor/tensor.js';
import type { RunConfig } from '../train/config.js';
import { validateCheckpoint, type CheckpointPolicy } from '../train/checkpoint.js';
import { ARPIX_VERSION, CHECKPOINT_FILE, CONFIG_FILE, METRICS_FILE } from '../train/train.js';
import { checkpointFromPyTorch } from './convert.js';
import { MASKED_FORMULATIONS, type StateMap } from './masked.js';
import { readTorchSave, type PyValue, type TorchSaveLimits } from './pickle.js';
import { isZip } from './zip.js';

/** A file that does not fit the architecture it is imported as; the message names the first key. */
export class ImportMismatchError extends ArpixError {}

export type ImportFormat = 'arpix checkpoint' | 'arpix checkpoint (PyTorch layout)' | 'safetensors state dict' | 'torch.save state dict' | 'Lightning checkpoint';

export interface Imported {
  checkpoint: Checkpoint;
  format: ImportFormat;
  /** Set when the weights came in the masked formulation (taps dropped or masks applied). */
  masked: boolean;
}

/**
 * Whether the file is laid out as safetensors: a plausible header length first. What follows is
 * left to the reader, which says exactly what is wrong (a header not starting with '{', …).
 */
function isSafetensors(bytes: Uint8Array): boolean {
  if (bytes.length < 10 || isZip(bytes)) return false;
  const n = Number(new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength).getBigUint64(0, true));
  return n >= 2 && n + 8 <= bytes.length;
}

/**
 * What a torch.save file may cost when imported as `model`, checked before anything is inflated or
 * copied: tensors of at most 16 times the model's weights (room for an optimiser's two moments, an
 * average, and a masked formulation's full kernels) plus 65,536; storages of at most 8 bytes per
 * such element (float64); a pickle of at most 1 MiB plus 64 KiB per model tensor.
 */
export function torchSaveLimits(model: AutoregressiveModel): TorchSaveLimits {
  const sd = Object.values(model.stateDict({ layout: 'pytorch' }));
  const weights = sd.reduce((a, t) => a + t.size, 0);
  const maxElements = 16 * weights + 65536;
  return {
    maxElements, maxStorageBytes: 8 * maxElements, maxPickleBytes: 2 ** 20 + 65536 * sd.length,
    reason: `the config's ${model.config.kind} model (${weights.toLocaleString('en')} weights)`,
  };
}

function isTensorMap(v: PyValue): v is Map<string, Tensor> {
  return v instanceof Map && v.size > 0 && [...v].every(([k, t]) => typeof k === 'string' && t instanceof Tensor);
}

/** The state dict inside what torch.save wrote: the object itself, or Lightning's `state_dict`. */
function findStateDict(v: PyValue, file: string): { sd: StateMap; lightning: boolean } {
  if (isTensorMap(v)) return { sd: v, lightning: false };
  if (v instanceof Map) {
    const sd = v.get('state_dict');
    if (sd !== undefined && isTensorMap(sd)) return { sd, lightning: v.has('pytorch-lightning_version') || v.has('global_step') };
    for (const key of ['model_state_dict', 'model', 'net']) {
      const m = v.get(key);
      if (m !== undefined && isTensorMap(m)) return { sd: m, lightning: false };
    }
    const keys = [...v.keys()].slice(0, 8).map(String).join(', ');
    throw new FormatError(file, `holds a dict (${keys}) with no state dict of tensors in it (looked at state_dict, model_state_dict, model, net)`);
  }
  throw new FormatError(file, 'holds no state dict: torch.save(model.state_dict(), PATH) writes the file arpix imports');
}

/** Keys without a wrapper's prefix (DataParallel's module., a Lightning module's model., torch.compile's _orig_mod.). */
function stripPrefixes(sd: StateMap, want: ReadonlySet<string>): StateMap {
  let cur = sd;
  for (;;) {
    const hits = [...cur.keys()].filter((k) => want.has(k)).length;
    const prefix = ['module.', 'model.', '_orig_mod.', 'net.'].find((p) => [...cur.keys()].every((k) => k.startsWith(p)));
    if (!prefix || hits === cur.size) return cur;
    cur = new Map([...cur].map(([k, t]) => [k.slice(prefix.length), t]));
  }
}

/** The first key that does not fit, as one line; null when every key fits. */
function mismatch(model: AutoregressiveModel, sd: StateMap, layout: 'arpix' | 'pytorch' = 'pytorch'): string | null {
  const want = model.stateDict({ layout });
  const missing = Object.keys(want).filter((k) => !sd.has(k));
  const extra = [...sd.keys()].filter((k) => !(k in want));
  const counts = `(${missing.length} missing, ${extra.length} unexpected of ${Object.keys(want).length} keys)`;
  if (missing.length > 0) return `key '${missing[0]}' [${want[missing[0]!]!.shape.join(', ')}] of the ${model.config.kind} config is missing ${counts}`;
  if (extra.length > 0) return `key '${extra[0]}' is not in the ${model.config.kind} config ${counts}`;
  for (const [k, t] of Object.entries(want)) {
    const got = sd.get(k)!;
    if (got.shape.join() !== t.shape.join()) return `key '${k}' has shape ${fmtShape(got.shape)} but the config's model has ${fmtShape(t.shape)} (${layout === 'pytorch' ? "PyTorch's" : "arpix's"} layout)`;
    if (!got.isFloat) return `key '${k}' holds ${got.dtype} values; weights must be floating point`;
  }
  return null;
}

/** Loads a PyTorch-layout state dict into `model`, through a masked-formulation adapter when needed. */
export function loadPyTorchStateDict(model: AutoregressiveModel, given: StateMap, file: string): { masked: boolean } {
  const sd = stripPrefixes(given, new Set(Object.keys(model.stateDict())));
  let fitted = sd;
  let masked = false;
  let problem = mismatch(model, sd);
  const adapter = MASKED_FORMULATIONS[model.config.kind];
  if (problem !== null && adapter) {
    const adapted = adapter(sd, model, file);
    const second = mismatch(model, adapted);
    if (second === null) {
      fitted = adapted;
      masked = true;
      problem = null;
    }
  } else if (problem === null && adapter && [...sd.keys()].some((k) => k.endsWith('.mask'))) {
    fitted = adapter(sd, model, file);
    masked = true;
  }
  if (problem !== null) {
    throw new ImportMismatchError(`${file}: the state dict does not fit the config: ${problem}; give the --preset or --config this network was trained with`);
  }
  model.loadStateDict(fitted, { layout: 'pytorch' });
  return { masked };
}

function freshMeta(config: RunConfig, extra: Record<string, unknown>): Checkpoint['meta'] {
  return {
    format: CHECKPOINT_FORMAT, version: CHECKPOINT_VERSION, arpixVersion: ARPIX_VERSION, modelKind: config.model.kind,
    config: config as unknown as Checkpoint['meta']['config'], step: 0, epoch: 0, loader: null, generators: {},
    optimizer: null, scheduler: null, ema: null, trainSeconds: 0, imagesSeen: 0, extra,
  };
}

/**
 * Reads `path` (a file, or a run folder holding checkpoint.safetensors) as an arpix checkpoint in
 * arpix's layout. `config` is needed for files that carry no architecture; for those that do, it
 * must agree with theirs.
 */
export async function importCheckpoint(path: string, opts: { config?: RunConfig } & CheckpointPolicy = {}): Promise<Imported> {
  const file = existsSync(path) && statSync(path).isDirectory() ? join(path, CHECKPOINT_FILE) : path;
  // A regular file only: a FIFO or /dev/zero is refused at once, not read forever.
  const bytes: Uint8Array = readRegularFile(file, bufferConstants.MAX_LENGTH, 'a checkpoint');
  let sd: StateMap;
  let format: ImportFormat;
  let model: AutoregressiveModel | undefined;
  if (isSafetensors(bytes)) {
    const { tensors, metadata } = decodeSafetensors(bytes, file);
    if (metadata.arpix !== undefined) {
      const raw = decodeCheckpoint(bytes, file, { pytorchLayout: true });
      const pytorch = (raw.meta as { layout?: string }).layout === 'pytorch';
      if (opts.config) {
        const diffs = configDifferences(raw.meta.config.model, opts.config.model, 'model');
        if (diffs.length > 0) throw new ImportMismatchError(`${file}: the checkpoint carries its own architecture, which differs from the one given: ${diffs[0]}; leave out --preset/--config`);
      }
      let checkpoint: Checkpoint;
      try {
        checkpoint = checkpointFromPyTorch(raw);
      } catch (e) {
        if (e instanceof ArpixError && !(e instanceof FormatError)) throw new FormatError(file, `has weights that do not convert from PyTorch's layout: ${e.message}`, { cause: e });
        throw e;
      }
      delete (checkpoint.meta as { layout?: string }).layout;
      checkpoint.meta.generators ??= {};
      // The one check every command runs on a checkpoint, with the same message for the same fault.
      validateCheckpoint(Object.assign(checkpoint, { integrity: raw.integrity, file }), opts);
      return { checkpoint, format: pytorch ? 'arpix checkpoint (PyTorch layout)' : 'arpix checkpoint', masked: false };
    }
    sd = new Map(Object.entries(tensors));
    format = 'safetensors state dict';
  } else if (isZip(bytes)) {
    // The config comes first: the model it builds bounds what the archive may make arpix allocate.
    if (!opts.config) throw new ImportMismatchError(`${file}: a torch.save file carries no architecture; give --preset NAME or --config FILE for the network it holds`);
    model = createModel(opts.config.model);
    const found = findStateDict(readTorchSave(bytes, file, torchSaveLimits(model)), file);
    sd = found.sd;
    format = found.lightning ? 'Lightning checkpoint' : 'torch.save state dict';
  } else {
    throw new FormatError(file, 'is neither a safetensors file nor a torch.save zip archive (a legacy torch.save file? re-save it with a current PyTorch)');
  }
  if (!opts.config) throw new ImportMismatchError(`${file}: a ${format} carries no architecture; give --preset NAME or --config FILE for the network it holds`);
  model ??= createModel(opts.config.model);
  const { masked } = loadPyTorchStateDict(model, sd, file);
  const meta = freshMeta(opts.config, { importedFrom: file, importFormat: format, masked });
  return { checkpoint: { meta, model: model.stateDict(), optimizer: {}, ema: {} }, format, masked };
}

/**
 * Writes an imported checkpoint as a run folder: config.json, checkpoint.safetensors and the
 * source's metrics.jsonl when it has one. Like every output: a folder on a pseudo-filesystem is
 * refused at once; any run file already there is refused without `force` (all are checked before
 * any is written); the folder's lock is held while writing, so a training run writing the folder
 * refuses this import and the other way round; each file is written atomically.
 */
export async function writeImportedRun(imported: Imported, source: string, outDir: string, force = false): Promise<string> {
  checkOutputFolder(outDir);
  const dir = resolve(existsSync(source) && statSync(source).isDirectory() ? source : dirname(source));
  const inPlace = dir === resolve(outDir);
  const metricsFrom = join(dir, METRICS_FILE);
  const files: [string, Uint8Array | string][] = [
    [join(outDir, CONFIG_FILE), JSON.stringify(imported.checkpoint.meta.config, null, 2) + '\n'],
    [join(outDir, CHECKPOINT_FILE), encodeCheckpoint(imported.checkpoint)],
  ];
  if (!inPlace && existsSync(metricsFrom)) files.push([join(outDir, METRICS_FILE), readRegularFile(metricsFrom, MAX_DATA_FILE, 'a metrics file')]);
  // Every file of a run counts, written here or not: a metrics.jsonl left beside an imported checkpoint is another run's.
  const runFiles = [CONFIG_FILE, CHECKPOINT_FILE, METRICS_FILE].map((f) => join(outDir, f));
  refuseExistingOutputs(runFiles, force, '--out');
  await makeFolder(outDir);
  const lock = lockFolder(outDir, 'arpix import');
  try {
    refuseExistingOutputs(runFiles, force, '--out'); // again, now that no other arpix writes here
    await writeFilesAtomic(files, { exclusive: !force });
    if (force && !inPlace && files.length === 2) await rm(join(outDir, METRICS_FILE), { force: true });
  } finally {
    lock.release();
  }
  return join(outDir, CHECKPOINT_FILE);
}
