// The verify family of the fuzz suite: checkpoints damaged byte by byte, re-signed over wrong
// content (metadata edited, tensors reshaped, retyped, removed, added, made non-finite) or written
// without sums, each put to `arpix verify` and to every command that loads a checkpoint — sample,
// eval, complete, info, train --resume, import, export, and serve's model loader. verify must say
// "ok" exactly when every one of them takes the file, and refuse it when any one of them does; a
// re-signed file is refused by all of them with verify's own line. A refusal must change no file.
//
// A command may also stop for reasons that are not the checkpoint's — the data a config names is
// not there, a batch too large for this machine — and such a line does not start with the file's
// name: it counts for neither verdict, but it must still be one clean line that changes nothing.

import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setBackend } from '../backends/registry.js';
import { decodeCheckpoint, encodeCheckpoint, type Checkpoint } from '../io/checkpoint.js';
import { encodeNpyUint8 } from '../io/images.js';
import { encodeSafetensors } from '../io/safetensors.js';
import { modelFromCheckpoint } from '../models/checkpoint.js';
import { Tensor } from '../tensor/tensor.js';
import { loadRunCheckpoint } from '../train/checkpoint.js';
import { resolveRunConfig, type RunConfig } from '../train/config.js';
import { train } from '../train/train.js';
import { damageTensor } from './checkpoint-fuzz.js';
import { INTERNAL_PHRASES, changedPaths, mutateBytes, mutateJson, runFuzz, snapshotDir, type FuzzRng, type FuzzTally, type Verdict } from './fuzz.js';

export interface CliRun {
  code: number;
  stdout: string;
  stderr: string;
}

/** Runs `arpix …` in this process (main(), as bin/arpix.js does), capturing what it writes. */
export async function runArpix(args: readonly string[]): Promise<CliRun> {
  const { main } = await import('../cli/main.js');
  const writes = { out: process.stdout.write, err: process.stderr.write };
  let stdout = '';
  let stderr = '';
  const capture = (add: (s: string) => void) => ((s: string | Uint8Array) => {
    add(typeof s === 'string' ? s : Buffer.from(s).toString());
    return true;
  }) as typeof process.stdout.write;
  process.stdout.write = capture((s) => (stdout += s));
  process.stderr.write = capture((s) => (stderr += s));
  try {
    const code = await main(args);
    return { code, stdout, stderr };
  } finally {
    process.stdout.write = writes.out;
    process.stderr.write = writes.err;
  }
}

/** Every command that loads a checkpoint, aimed at the run folder `dir`; outputs under `outs`. */
export function loaderCommands(dir: string, outs: string, images: string, extra: readonly string[] = []): string[][] {
  return [
    ['sample', dir, '--n', '1', '--out', join(outs, 'sample')],
    ['eval', dir, '--split', 'validation', '--limit', '2', '--batch-size', '2'],
    ['complete', dir, '--images', images, '--keep-rows', '4', '--samples', '1', '--limit', '1', '--out', join(outs, 'complete')],
    ['info', dir],
    ['import', dir, '--out', join(outs, 'import')],
    ['export', dir, '--torch', join(outs, 'export'), '--no-data'],
    // Last: accepted, it trains on (to step 4 at most, whatever steps the file asks for) and rewrites the folder.
    ['train', '--resume', dir, '--no-bar', '--train.steps=4'],
  ].map((a) => [...a, ...extra]);
}

/** 48 patterned 8×8 grey images as a .npy file: the data of the fixture run. */
export function writeFixtureImages(file: string): void {
  writeFileSync(file, encodeNpyUint8(new Tensor(Int32Array.from({ length: 48 * 64 }, (_, i) => (i * 53) & 0xff), [48, 8, 8, 1])));
}

/** A tiny run config over `images`: Adam, an average, 3 steps, one checkpoint at the end. */
export function fixtureRunConfig(images: string): RunConfig {
  return resolveRunConfig({
    model: { kind: 'gated-pixelcnn', height: 8, width: 8, channels: 1, hiddenChannels: 2, dilations: [1], likelihood: { kind: 'categorical', levels: 4 } },
    dataset: { name: images, bits: 2 },
    train: { batchSize: 4, steps: 3, validationSize: 8, validateEvery: 0, checkpointEvery: 0, logEvery: 1, ema: 0.9 },
  });
}

type Kind = 'bytes' | 'meta' | 'tensor' | 'unsigned';

/** The checkpoint's tensors by their file names, written without the `arpix.sha256` sums. */
function unsigned(c: Checkpoint): Uint8Array {
  const tensors: Record<string, Tensor> = {};
  for (const part of ['model', 'optimizer', 'ema'] as const) for (const [k, t] of Object.entries(c[part])) tensors[`${part}.${k}`] = t;
  return encodeSafetensors(tensors, { arpix: JSON.stringify(c.meta) });
}

export interface VerifyFuzzOptions {
  /** Cases (default 300: each runs nine commands). */
  count?: number;
  seed?: number;
  /** Where the fixture run and the cases are made (removed by the caller); a temporary folder, removed after, by default. */
  root?: string;
}

/** One tally, `checkpoint verify`. Runs on the ts backend, as the checkpoint family does. */
export async function fuzzVerify(o: VerifyFuzzOptions = {}): Promise<FuzzTally> {
  if (o.root === undefined) {
    const root = mkdtempSync(join(tmpdir(), 'arpix-verify-fuzz-'));
    try {
      return await fuzzVerify({ ...o, root });
    } finally {
      rmSync(root, { recursive: true, force: true });
    }
  }
  const root = o.root;
  setBackend('ts');
  const images = join(root, 'images.npy');
  writeFixtureImages(images);
  const config = fixtureRunConfig(images);
  const base = join(root, 'base');
  const r = await train(config, { runDir: base });
  if (r.status !== 'done') throw new Error(`the fixture run ended ${r.status}`);
  const bytes = readFileSync(join(base, 'checkpoint.safetensors'));
  const dir = join(root, 'case');
  const file = join(dir, 'checkpoint.safetensors');
  const outs = join(root, 'outs');
  const caseFiles = (b: Uint8Array) => {
    rmSync(dir, { recursive: true, force: true });
    rmSync(outs, { recursive: true, force: true });
    mkdirSync(dir, { recursive: true });
    writeFileSync(file, b);
    writeFileSync(join(dir, 'config.json'), JSON.stringify(config, null, 2) + '\n');
  };
  // A user's line about the checkpoint names it first; any other refusal is about something else.
  const aboutFile = (line: string) => line.startsWith(`arpix: ${file}: `);
  return runFuzz({
    family: 'checkpoint verify',
    seed: o.seed ?? 25,
    count: o.count ?? 300,
    hangMs: 30_000,
    keep: 10,
    make: (rng: FuzzRng) => {
      const x = rng.next();
      const kind: Kind = x < 0.3 ? 'bytes' : x < 0.6 ? 'meta' : x < 0.9 ? 'tensor' : 'unsigned';
      let caseBytes: Uint8Array;
      let ops: string[];
      let tensorDamaged = false;
      if (kind === 'bytes') {
        ({ bytes: caseBytes, ops } = mutateBytes(bytes, rng));
      } else {
        const c = decodeCheckpoint(bytes, file);
        ops = [];
        if (kind === 'meta' || (kind === 'unsigned' && rng.next() < 0.5)) {
          const m = mutateJson(c.meta, rng);
          ops.push(...m.ops);
          c.meta = m.value as Checkpoint['meta'];
        }
        if (kind === 'tensor' || (kind === 'unsigned' && rng.next() < 0.3)) {
          ops.push(damageTensor(c, rng));
          tensorDamaged = true;
        }
        try {
          caseBytes = kind === 'unsigned' ? unsigned(c) : encodeCheckpoint(c);
        } catch {
          // Metadata too deep for JSON.stringify: such a file can only come from damage.
          ({ bytes: caseBytes, ops } = mutateBytes(bytes, rng));
          tensorDamaged = false;
        }
      }
      const allow = kind === 'unsigned' && rng.next() < 0.5 ? ['--allow-unverified'] : [];
      return {
        ops: [kind, ...allow, ...ops],
        run: async (): Promise<{ verdict: Verdict; detail?: string }> => {
          caseFiles(caseBytes);
          const verify = await runArpix(['verify', dir, ...allow]);
          const verifyLine = verify.stderr.split('\n').filter((l) => l.startsWith('arpix: ') && !l.startsWith('arpix: warning: '));
          if (verify.code !== 0 && (verifyLine.length !== 1 || !aboutFile(verifyLine[0]!) || INTERNAL_PHRASES.test(verifyLine[0]!))) {
            return { verdict: 'internal-error', detail: `verify: ${verify.stderr.trim().slice(0, 300)}` };
          }
          const resigned = kind !== 'bytes';
          for (const args of loaderCommands(dir, outs, images, allow)) {
            const before = snapshotDir(root);
            const got = await runArpix(args);
            const lines = got.stderr.split('\n').filter((l) => l.startsWith('arpix: ') && !l.startsWith('arpix: warning: '));
            const what = `${args[0]}${args[0] === 'train' ? ' --resume' : ''}`;
            if (got.code === 0) {
              if (verify.code !== 0) return { verdict: 'silent-acceptance', detail: `verify refused (${verifyLine[0]}) but ${what} took the file` };
              continue;
            }
            if (lines.length !== 1 || INTERNAL_PHRASES.test(lines[0]!)) return { verdict: 'internal-error', detail: `${what}: ${got.stderr.trim().slice(0, 300)}` };
            const changed = changedPaths(before, snapshotDir(root));
            if (changed.length > 0) return { verdict: 'file-changed', detail: `${what} refused (${lines[0]}) but changed ${changed.slice(0, 4).join(', ')}` };
            if (!aboutFile(lines[0]!)) continue; // not about the checkpoint: no verdict on it
            if (verify.code === 0) return { verdict: 'silent-acceptance', detail: `verify said ok but ${what} refused: ${lines[0]}` };
            if (resigned && lines[0] !== verifyLine[0]) return { verdict: 'internal-error', detail: `${what} refused with another line than verify: '${lines[0]}' vs '${verifyLine[0]}'` };
          }
          // serve's model worker: the same two calls it makes.
          try {
            modelFromCheckpoint(await loadRunCheckpoint(file, { allowUnverified: allow.length > 0 }));
            if (verify.code !== 0) return { verdict: 'silent-acceptance', detail: `verify refused (${verifyLine[0]}) but serve's loader took the file` };
          } catch (e) {
            if (verify.code === 0) return { verdict: 'silent-acceptance', detail: `verify said ok but serve's loader refused: ${(e as Error).message}` };
            if (!verifyLine[0]!.includes((e as Error).message)) return { verdict: 'internal-error', detail: `serve's loader refused with another message than verify: '${(e as Error).message}'` };
          }
          // Every tensor edit is damage (see damageTensor): taken by all, it was taken silently.
          if (verify.code === 0 && tensorDamaged) return { verdict: 'silent-acceptance', detail: 'a damaged tensor was taken by verify and every loader' };
          return { verdict: verify.code === 0 ? 'accepted' : 'clean-error' };
        },
      };
    },
  });
}
