// The checkpoint family of the fuzz suite: real checkpoints written by arpix's training loop (one
// tiny model per family in the table, with Adam moments and averaged weights), damaged three ways,
// and read the way every command reads them (verify, decode, run config, exact tensors, the
// model with its averaged weights, a log-likelihood) — and, for one case in eight, resumed in a
// run folder, which must not change a file when it fails.
//
// - bytes:  random edits of the file (harness mutateBytes). SHA-256 covers the tensor table, the
//           data and the metadata, so any accepted file must decode to exactly the original
//           (only JSON whitespace in the header may change); anything else is silent acceptance.
// - meta:   the metadata edited as JSON (hostile values, removed and unknown keys, deep nesting)
//           and re-written with valid sums, as a buggy or hostile writer would: what passes the
//           schema must then give a usable model with finite log-likelihoods.
// - tensor: a tensor reshaped (same element count), retyped, removed, added, doubled, or given a
//           NaN or an infinity, re-written with valid sums: always damage, so always refused.

import { mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { ArpixError, FormatError } from '../errors.js';
import { CheckpointMismatchError, decodeCheckpoint, encodeCheckpoint, type Checkpoint } from '../io/checkpoint.js';
import { modelFromCheckpoint } from '../models/checkpoint.js';
import { FAMILIES, MemoryLimitError } from '../models/index.js';
import { setBackend } from '../backends/registry.js';
import { Tensor } from '../tensor/tensor.js';
import { checkpointRunConfig, validateCheckpoint } from '../train/checkpoint.js';
import type { RunConfig } from '../train/config.js';
import type { RunData } from '../train/data.js';
import { train } from '../train/train.js';
import { trainedCheckpoint } from './checkpoints.js';
import { changedPaths, errorVerdict, mutateBytes, mutateJson, runFuzz, snapshotDir, type FuzzRng, type FuzzTally, type Verdict } from './fuzz.js';

const FILE = 'checkpoint.safetensors';

/** A refusal a user can act on: names the file (or says how much memory a too-large config would need). */
function isUserError(e: unknown): boolean {
  if (e instanceof MemoryLimitError || e instanceof CheckpointMismatchError) return true;
  return e instanceof FormatError && e.message.includes(FILE);
}

/** What a checkpoint holds, as comparable text: every tensor's dtype, shape and bytes, and the metadata. */
function contents(c: Checkpoint): string {
  const parts: string[] = [JSON.stringify(c.meta)];
  for (const g of ['model', 'optimizer', 'ema'] as const) {
    for (const name of Object.keys(c[g]).sort()) {
      const t = c[g][name]!;
      parts.push(`${g}.${name} ${t.dtype} ${t.shape.join(',')} ${Buffer.from(t.data.buffer, t.data.byteOffset, t.data.byteLength).toString('base64')}`);
    }
  }
  return parts.join('\n');
}

/** Reads as every command does (the one check, validateCheckpoint); returns the checkpoint, or throws what a command would report. */
function use(bytes: Uint8Array, file: string, data: RunData): Checkpoint {
  const c = validateCheckpoint(decodeCheckpoint(bytes, file));
  const model = modelFromCheckpoint(c);
  const n = 1;
  const [, h, w, ch] = data.validation.shape;
  const images = new Tensor(Int32Array.from(data.validation.images.subarray(0, n * h * w * ch)), [n, h, w, ch]);
  for (const v of model.logProb(images).data) {
    if (!Number.isFinite(v)) throw new Error(`accepted, but the model gives a log-likelihood of ${v}`);
  }
  return c;
}

type Kind = 'bytes' | 'meta' | 'tensor';

/** A structural edit of one tensor; every one is damage. */
export function damageTensor(c: Checkpoint, rng: FuzzRng): string {
  const groups = (['model', 'optimizer', 'ema'] as const).filter((g) => Object.keys(c[g]).length > 0);
  const g = rng.pick(groups);
  const name = rng.pick(Object.keys(c[g]).sort());
  const t = c[g][name]!;
  const kind = rng.pick(['reshape', 'retype', 'remove', 'add', 'double', 'nan', 'inf'] as const);
  switch (kind) {
    case 'reshape': {
      // The same element count in another shape: reversed, flattened, or with a unit axis.
      const options = [[...t.shape].reverse(), [t.size], [...t.shape, 1], [1, ...t.shape]].filter((s) => s.join() !== t.shape.join());
      c[g][name] = new Tensor(t.data, options.length > 0 ? rng.pick(options) : [t.size, 1]);
      break;
    }
    case 'retype': c[g][name] = new Tensor(t.dtype === 'int32' ? Float32Array.from(t.data) : rng.next() < 0.5 ? Int32Array.from(t.data, Math.round) : Float64Array.from(t.data), t.shape); break;
    case 'remove': delete c[g][name]; break;
    case 'add': c[g][`${name}.fuzz`] = new Tensor(new Float32Array(3), [3]); break;
    case 'double': c[g][name] = new Tensor(new Float32Array(2 * t.size), [2 * t.size]); break;
    case 'nan': case 'inf': {
      const d = Float32Array.from(t.data);
      d[rng.int(0, d.length)] = kind === 'nan' ? NaN : rng.next() < 0.5 ? Infinity : -Infinity;
      c[g][name] = new Tensor(d, t.shape);
      break;
    }
  }
  return `${kind}:${g}.${name}`;
}

export interface CheckpointFuzzOptions {
  /** Cases per family. */
  count: number;
  seed?: number;
  /** Where the real checkpoints and the resume folders are made (removed by the caller). */
  root: string;
}

/**
 * One tally per family in the table: `checkpoint <kind>`. Runs on the ts backend: the cases test
 * reading, not kernels, and thousands of tiny forward passes are cheaper there than native
 * threads started for each on a busy machine.
 */
export async function fuzzCheckpoints(o: CheckpointFuzzOptions): Promise<FuzzTally[]> {
  setBackend('ts');
  const tallies: FuzzTally[] = [];
  for (const family of FAMILIES) {
    const made = await trainedCheckpoint(family.kind, join(o.root, `base-${family.kind.replace(/\W/g, '_')}`));
    const { bytes: base, data } = made;
    const config: RunConfig = made.config;
    const original = decodeCheckpoint(base, FILE);
    const originalContents = contents(original);
    const resumeDir = join(o.root, `resume-${family.kind.replace(/\W/g, '_')}`);
    tallies.push(await runFuzz({
      family: `checkpoint ${family.kind}`,
      seed: o.seed ?? 14,
      count: o.count,
      hangMs: 5000,
      make: (rng, index) => {
        const r = rng.next();
        const kind: Kind = r < 0.5 ? 'bytes' : r < 0.75 ? 'meta' : 'tensor';
        let bytes: Uint8Array;
        let ops: string[];
        if (kind === 'bytes') {
          ({ bytes, ops } = mutateBytes(base, rng));
        } else {
          const c = decodeCheckpoint(base, FILE);
          if (kind === 'meta') {
            const m = mutateJson(c.meta, rng);
            ops = m.ops;
            c.meta = m.value as Checkpoint['meta'];
          } else {
            ops = [damageTensor(c, rng)];
          }
          try {
            bytes = encodeCheckpoint(c);
          } catch {
            // Too deep for JSON.stringify to write: such metadata can only come from a damaged file.
            ({ bytes, ops } = mutateBytes(base, rng));
          }
        }
        const resume = index % 8 === 0;
        return {
          ops: [kind, ...ops],
          run: async (): Promise<{ verdict: Verdict; detail?: string }> => {
            let verdict: { verdict: Verdict; detail?: string };
            try {
              const c = use(bytes, FILE, data);
              const same = contents(c) === originalContents;
              if (kind === 'tensor') verdict = { verdict: 'silent-acceptance', detail: 'a damaged tensor was accepted' };
              else if (kind === 'bytes' && !same) verdict = { verdict: 'silent-acceptance', detail: 'changed bytes decoded to other contents' };
              else verdict = { verdict: 'accepted' };
            } catch (e) {
              verdict = e instanceof Error && e.message.startsWith('accepted, but') ? { verdict: 'silent-acceptance', detail: e.message } : errorVerdict(e, isUserError);
            }
            if (!resume) return verdict;
            // The same file resumed in a run folder: a refusal must leave every file as it was.
            rmSync(resumeDir, { recursive: true, force: true });
            mkdirSync(resumeDir, { recursive: true });
            writeFileSync(join(resumeDir, FILE), bytes);
            writeFileSync(join(resumeDir, 'config.json'), JSON.stringify(config, null, 2) + '\n');
            const before = snapshotDir(resumeDir);
            let runConfig = config;
            try {
              runConfig = checkpointRunConfig(decodeCheckpoint(bytes, FILE));
            } catch {
              // refused above too; resumed with the run's own config
            }
            try {
              await train({ ...runConfig, train: { ...runConfig.train, steps: Math.min(runConfig.train.steps, 1e6) } }, { runDir: resumeDir, data, resume: true, signal: AbortSignal.abort() });
            } catch (e) {
              const changed = changedPaths(before, snapshotDir(resumeDir));
              if (changed.length > 0) return { verdict: 'file-changed', detail: `${changed.join(', ')} changed by a resume that failed: ${(e as Error).message}` };
              if (!(e instanceof ArpixError) && verdict.verdict !== 'internal-error') return errorVerdict(e, isUserError);
            }
            return verdict;
          },
        };
      },
    }));
  }
  return tallies;
}
