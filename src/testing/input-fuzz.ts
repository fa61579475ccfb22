// The input families the fuzzer damages, each from real files arpix makes: PNG images (arpix's
// own grid writer), JPEG images (jpeg-js's encoder for colour, testing/jpeg.ts for grey), .npy
// arrays (arpix's writer), IDX files raw and gzipped (written as the MNIST files are), JSON configs
// (the presets), and `arpix` command lines run in-process against a tiny trained run.
//
// Each family says what counts as silently accepted damage for its format:
// - PNG: every byte is under a CRC, so a changed file that decodes to other pixels is silent
//   acceptance;
// - .npy and IDX: the header must explain the file exactly; a changed file that reads as another
//   shape or other values is silent acceptance, except a change inside the values alone, which
//   neither format can detect (it has no checksum);
// - gzipped IDX: gzip's CRC covers everything, so any other result is silent acceptance;
// - JPEG: no checksum either; a truncated file, or bytes after its end, read as an image is
//   silent acceptance, other changes that still decode are undetectable by the format;
// - configs: an accepted config must build its model;
// - command lines: exit 0 with an invalid flag value or override is silent acceptance.
// Every family also counts crashes, hangs, internal errors, and files changed by a failed command.

import { cpSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { gzipSync } from 'node:zlib';
import { encode as encodePng } from 'fast-png';
import jpeg from 'jpeg-js';
import { ConfigError } from '../config.js';
import { decodeImage } from '../data/decode.js';
import { readIdxImages } from '../data/idx.js';
import { readNpyImages } from '../data/npy.js';
import { ArpixError, FormatError } from '../errors.js';
import { encodeNpyUint8, imageGridPng } from '../io/images.js';
import { createModel } from '../models/index.js';
import { Tensor } from '../tensor/tensor.js';
import { configFileRaw, presetRaw, resolveRunConfig } from '../train/index.js';
import { presetNames } from '../models/presets.js';
import {
  FuzzRng, HOSTILE_TOKENS, INTERNAL_PHRASES, changedPaths, equalBytes, errorVerdict, mutateArgs, mutateBytes, mutateJson, runFuzz, snapshotDir,
  type FamilyOptions, type FuzzCase, type FuzzTally, type Verdict,
} from './fuzz.js';
import { encodeGreyJpeg } from './jpeg.js';
import { fuzzTorchSave } from './torch-fuzz.js';

export type { FamilyOptions } from './fuzz.js';

const isUserError = (e: unknown) => e instanceof ArpixError || e instanceof ConfigError;

function pattern(n: number, h: number, w: number, c: number, seed: number): Tensor {
  const rng = new FuzzRng(seed);
  const data = new Int32Array(n * h * w * c);
  for (let i = 0; i < data.length; i++) data[i] = (i * 37 + (rng.int(0, 4) << 6)) & 0xff;
  return new Tensor(data, [n, h, w, c]);
}

/** A temporary folder for one family, removed by the returned function. */
function scratch(): { dir: string; done: () => void } {
  const dir = mkdtempSync(join(tmpdir(), 'arpix-fuzz-'));
  return { dir, done: () => rmSync(dir, { recursive: true, force: true }) };
}

function sameImage(a: { width: number; height: number; channels: number; data: Uint8Array }, b: typeof a): boolean {
  return a.width === b.width && a.height === b.height && a.channels === b.channels && equalBytes(a.data, b.data);
}

// ---- images --------------------------------------------------------------------------------

/** The PNGs arpix writes (grey and colour sample grids) and a 16-bit and a palette PNG. */
function pngBases(): Uint8Array[] {
  const grey = imageGridPng(pattern(4, 8, 8, 1, 1), { levels: 256, scale: 1 });
  const rgb = imageGridPng(pattern(4, 8, 8, 3, 2), { levels: 256, scale: 1 });
  const deep = encodePng({ width: 8, height: 8, channels: 1, depth: 16, data: Uint16Array.from({ length: 64 }, (_, i) => i * 1000) });
  return [grey, rgb, deep];
}

function jpegBases(): { bytes: Uint8Array; dataStart: number }[] {
  const w = 16;
  const h = 16;
  const rgba = Buffer.alloc(w * h * 4);
  for (let i = 0; i < rgba.length; i++) rgba[i] = (i * 13) & 0xff;
  const colour = new Uint8Array(jpeg.encode({ width: w, height: h, data: rgba }, 90).data);
  const grey = encodeGreyJpeg(Uint8Array.from({ length: w * h }, (_, i) => (i * 7) & 0xff), w, h);
  return [colour, grey].map((bytes) => ({ bytes, dataStart: scanStart(bytes) }));
}

/** Offset of a JPEG's entropy-coded data (just after its SOS segment). */
function scanStart(b: Uint8Array): number {
  let i = 2;
  while (i + 4 <= b.length) {
    const len = (b[i + 2]! << 8) | b[i + 3]!;
    if (b[i + 1] === 0xda) return i + 2 + len;
    i += 2 + len;
  }
  return b.length;
}

/** Decodes like `arpix complete --images` and the folder loader: FormatError or an image. */
function decodeAsUser(bytes: Uint8Array): ReturnType<typeof decodeImage> {
  try {
    return decodeImage(bytes);
  } catch (e) {
    throw new FormatError('image.png', (e as Error).message);
  }
}

export async function fuzzPng(o: FamilyOptions = {}): Promise<FuzzTally> {
  const bases = pngBases();
  const decoded = bases.map((b) => decodeImage(b));
  return runFuzz({
    family: 'png', seed: o.seed ?? 1, count: o.count ?? 3000,
    make: (rng) => {
      const k = rng.int(0, bases.length);
      const m = mutateBytes(bases[k]!, rng);
      return {
        ops: [`base${k}`, ...m.ops],
        run: () => {
          let img;
          try {
            img = decodeAsUser(m.bytes);
          } catch (e) {
            return errorVerdict(e, isUserError);
          }
          // Every byte of a PNG is under a CRC: other pixels from a changed file went unnoticed.
          return sameImage(img, decoded[k]!) ? { verdict: 'accepted' } : { verdict: 'silent-acceptance', detail: `decoded ${img.width}×${img.height}×${img.channels}` };
        },
      };
    },
  });
}

export async function fuzzJpeg(o: FamilyOptions = {}): Promise<FuzzTally> {
  const bases = jpegBases();
  return runFuzz({
    family: 'jpeg', seed: o.seed ?? 2, count: o.count ?? 3000,
    make: (rng) => {
      const k = rng.int(0, bases.length);
      const base = bases[k]!;
      const m = mutateBytes(base.bytes, rng);
      return {
        ops: [`base${k}`, ...m.ops],
        run: () => {
          try {
            decodeAsUser(m.bytes);
          } catch (e) {
            return errorVerdict(e, isUserError);
          }
          // JPEG has no checksum: only a cut-off end or bytes after the end-of-image are detectable.
          const end = m.bytes.length;
          const endIntact = end >= 2 && m.bytes[end - 2] === 0xff && m.bytes[end - 1] === 0xd9;
          return endIntact ? { verdict: 'accepted' } : { verdict: 'silent-acceptance', detail: 'a JPEG without its end-of-image marker was read' };
        },
      };
    },
  });
}

// ---- .npy and IDX --------------------------------------------------------------------------

function firstDifference(a: Uint8Array, b: Uint8Array): number {
  let i = 0;
  while (i < a.length && i < b.length && a[i] === b[i]) i++;
  return i;
}

function idxBytes(images: Uint8Array, dims: number[]): Uint8Array {
  const out = new Uint8Array(4 + 4 * dims.length + images.length);
  out[2] = 0x08;
  out[3] = dims.length;
  const view = new DataView(out.buffer);
  dims.forEach((d, i) => view.setUint32(4 + 4 * i, d, false));
  out.set(images, 4 + 4 * dims.length);
  return out;
}

interface ArrayFormat {
  family: string;
  seed: number;
  bases: { bytes: Uint8Array; dataStart: number }[];
  ext: string;
  read: (file: string) => { images: Uint8Array; shape: number[] };
  /** Whether a change confined to the values is undetectable (no checksum). */
  valuesUnchecked: boolean;
}

async function fuzzArrays(f: ArrayFormat, o: FamilyOptions): Promise<FuzzTally> {
  const { dir, done } = scratch();
  try {
    const expected = f.bases.map((b, k) => {
      const file = join(dir, `base${k}${f.ext}`);
      writeFileSync(file, b.bytes);
      return f.read(file);
    });
    return await runFuzz({
      family: f.family, seed: o.seed ?? f.seed, count: o.count ?? 3000,
      make: (rng, i) => {
        const k = rng.int(0, f.bases.length);
        const base = f.bases[k]!;
        const m = mutateBytes(base.bytes, rng);
        return {
          ops: [`base${k}`, ...m.ops],
          run: () => {
            const file = join(dir, `case${i % 8}${f.ext}`);
            writeFileSync(file, m.bytes);
            let got;
            try {
              got = f.read(file);
            } catch (e) {
              return errorVerdict(e, isUserError);
            }
            const want = expected[k]!;
            const sameShape = got.shape.length === want.shape.length && got.shape.every((d, j) => d === want.shape[j]);
            if (sameShape && equalBytes(got.images, want.images)) return { verdict: 'accepted' };
            const onlyValues = f.valuesUnchecked && sameShape && m.bytes.length === base.bytes.length && firstDifference(m.bytes, base.bytes) >= base.dataStart;
            return onlyValues ? { verdict: 'accepted' } : { verdict: 'silent-acceptance' as Verdict, detail: `read as [${got.shape.join(', ')}]` };
          },
        };
      },
    });
  } finally {
    done();
  }
}

export function fuzzNpy(o: FamilyOptions = {}): Promise<FuzzTally> {
  const bases = [pattern(3, 6, 5, 1, 3), pattern(2, 4, 4, 3, 4)].map((t) => {
    const bytes = encodeNpyUint8(t);
    return { bytes, dataStart: bytes.length - t.size };
  });
  return fuzzArrays({ family: 'npy', seed: 3, bases, ext: '.npy', read: (f) => readNpyImages(f), valuesUnchecked: true }, o);
}

export function fuzzIdx(o: FamilyOptions = {}): Promise<FuzzTally> {
  const bases = [[3, 6, 5], [2, 4, 4, 3]].map((dims) => {
    const n = dims.reduce((a, b) => a * b, 1);
    const bytes = idxBytes(Uint8Array.from({ length: n }, (_, i) => (i * 29) & 0xff), dims);
    return { bytes, dataStart: 4 + 4 * dims.length };
  });
  return fuzzArrays({ family: 'idx', seed: 4, bases, ext: '-idx3-ubyte', read: (f) => readIdxImages(f), valuesUnchecked: true }, o);
}

export function fuzzIdxGz(o: FamilyOptions = {}): Promise<FuzzTally> {
  const dims = [3, 6, 5];
  const raw = idxBytes(Uint8Array.from({ length: 90 }, (_, i) => (i * 29) & 0xff), dims);
  const bytes = new Uint8Array(gzipSync(raw));
  // gzip's CRC covers the values too: no change is undetectable.
  return fuzzArrays({ family: 'idx.gz', seed: 5, bases: [{ bytes, dataStart: bytes.length }], ext: '-idx3-ubyte.gz', read: (f) => readIdxImages(f), valuesUnchecked: false }, o);
}

// ---- configs -------------------------------------------------------------------------------

/** Model sizes a test can build in milliseconds; larger accepted configs are counted apart. */
function smallEnough(model: Record<string, unknown>): boolean {
  const nums: number[] = [];
  const walk = (v: unknown) => {
    if (typeof v === 'number') nums.push(Math.abs(v));
    else if (Array.isArray(v)) v.forEach(walk);
    else if (v && typeof v === 'object') Object.values(v).forEach(walk);
  };
  walk(model);
  const dims = ['height', 'width', 'hiddenChannels', 'filters'].map((k) => Number(model[k] ?? 1));
  // The transformers' widths: their CIFAR and paper-sized presets take seconds to build.
  const widths = ['embedDim', 'hiddenSize'].map((k) => Number(model[k] ?? 1));
  return nums.every((n) => n <= 4096) && dims.every((d) => d <= 64) && widths.every((d) => d <= 128) && Number(model.layers ?? 1) <= 8
    && (Array.isArray(model.dilations) ? model.dilations.length <= 16 : true);
}

export interface ConfigTally extends FuzzTally {
  /** Accepted configs whose model is too large to build in a test (left to the memory estimate). */
  tooLargeToBuild: number;
}

export async function fuzzConfigs(o: FamilyOptions = {}): Promise<ConfigTally> {
  const bases = presetNames().map((n) => presetRaw(n));
  const { dir, done } = scratch();
  let tooLarge = 0;
  try {
    const tally = await runFuzz({
      family: 'config', seed: o.seed ?? 6, count: o.count ?? 3000,
      make: (rng, i): FuzzCase => {
        const k = rng.int(0, bases.length);
        const text = JSON.stringify(bases[k], null, 2);
        let bytes: Uint8Array;
        let ops: string[];
        if (rng.next() < 0.5) {
          const m = mutateJson(bases[k], rng);
          bytes = Buffer.from(JSON.stringify(m.value) ?? 'null');
          ops = m.ops;
        } else {
          const m = mutateBytes(Buffer.from(text), rng);
          bytes = m.bytes;
          ops = m.ops;
        }
        return {
          ops: [`preset ${k}`, ...ops],
          run: () => {
            const file = join(dir, `config${i % 8}.json`);
            writeFileSync(file, bytes);
            try {
              const config = resolveRunConfig(configFileRaw(file));
              if (!smallEnough(config.model as unknown as Record<string, unknown>)) {
                tooLarge++;
                return { verdict: 'accepted' };
              }
              createModel(config.model);
              return { verdict: 'accepted' };
            } catch (e) {
              return errorVerdict(e, isUserError);
            }
          },
        };
      },
    });
    return { ...tally, tooLargeToBuild: tooLarge };
  } finally {
    done();
  }
}

// ---- command lines -------------------------------------------------------------------------

/** Flags whose values must parse: their checks, as the CLI documents them. */
const NUMERIC_FLAGS: Record<string, (v: string) => boolean> = {
  '--n': (v) => Number.isInteger(Number(v)) && Number(v) >= 1,
  '--seed': (v) => Number.isInteger(Number(v)) && Number(v) >= 0,
  '--limit': (v) => Number.isInteger(Number(v)) && Number(v) >= 1,
  '--batch-size': (v) => Number.isInteger(Number(v)) && Number(v) >= 1,
  '--keep-rows': (v) => Number.isInteger(Number(v)) && Number(v) >= 0,
  '--samples': (v) => Number.isInteger(Number(v)) && Number(v) >= 1,
  '--temperature': (v) => Number(v) > 0 && Number.isFinite(Number(v)),
};
/** Overrides among the hostile tokens that no command may accept. */
const BAD_OVERRIDES = HOSTILE_TOKENS.filter((t) => /^--(model|train|dataset)\.\S*=/.test(t) || t === '--model.');

/** Flags that take the next token as their value, whatever it looks like. */
const VALUE_FLAGS = new Set([...Object.keys(NUMERIC_FLAGS), '--out', '--config', '--preset', '--resume', '--images', '--split', '--label']);

/** Why an argument list that exited 0 should not have, or null. */
function shouldHaveFailed(args: readonly string[]): string | null {
  for (let i = 0; i < args.length; i++) {
    if (i > 0 && VALUE_FLAGS.has(args[i - 1]!) && !(i > 1 && VALUE_FLAGS.has(args[i - 2]!))) continue; // a flag's value
    const check = NUMERIC_FLAGS[args[i]!];
    if (check && i + 1 < args.length && !args[i + 1]!.startsWith('--') && !check(args[i + 1]!.trim() === '' ? 'x' : args[i + 1]!)) return `${args[i]} ${JSON.stringify(args[i + 1]).slice(0, 40)} was accepted`;
    if (BAD_OVERRIDES.includes(args[i]!)) return `${args[i]} was accepted`;
  }
  return null;
}

/** Runs `main(args)` in `cwd`, capturing stdout and stderr. */
async function runMain(args: readonly string[], cwd: string): Promise<{ code: number; stderr: string }> {
  const { main } = await import('../cli/main.js');
  const writes = { out: process.stdout.write, err: process.stderr.write };
  let stderr = '';
  const here = process.cwd();
  process.stdout.write = (() => true) as typeof process.stdout.write;
  process.stderr.write = ((s: string | Uint8Array) => {
    stderr += typeof s === 'string' ? s : Buffer.from(s).toString();
    return true;
  }) as typeof process.stderr.write;
  try {
    process.chdir(cwd);
    const code = await main(args);
    return { code, stderr };
  } finally {
    process.chdir(here);
    process.stdout.write = writes.out;
    process.stderr.write = writes.err;
  }
}

/** A tiny trained run to aim commands at: 8×8 grey images from a .npy file, a few hundred parameters. */
async function tinyRun(root: string): Promise<{ config: string; run: string; png: string; npy: string }> {
  const data = join(root, 'data');
  mkdirSync(data);
  const npy = join(data, 'images.npy');
  writeFileSync(npy, encodeNpyUint8(pattern(64, 8, 8, 1, 7)));
  const png = join(data, 'image.png');
  writeFileSync(png, imageGridPng(pattern(1, 8, 8, 1, 8), { levels: 256, scale: 1 }));
  const config = join(data, 'config.json');
  writeFileSync(config, JSON.stringify({
    model: { kind: 'gated-pixelcnn', height: 8, width: 8, channels: 1, hiddenChannels: 2, dilations: [1], likelihood: { kind: 'categorical', levels: 4 } },
    dataset: { name: npy, bits: 2 },
    train: { batchSize: 4, steps: 2, validationSize: 8, validateEvery: 0, checkpointEvery: 0, logEvery: 1 },
  }));
  const run = join(data, 'run');
  const r = await runMain(['train', '--config', config, '--out', run, '--no-bar'], root);
  if (r.code !== 0) throw new Error(`the tiny run did not train: ${r.stderr}`);
  return { config, run, png, npy };
}

export async function fuzzCli(o: FamilyOptions = {}): Promise<FuzzTally> {
  const { dir: root, done } = scratch();
  try {
    const t = await tinyRun(root);
    const pristine = join(root, 'pristine');
    mkdirSync(pristine);
    cpSync(t.run, join(pristine, 'run'), { recursive: true });
    const work = join(root, 'work');
    const bases = (w: string): string[][] => [
      ['info', join(w, 'run')],
      ['info', '--config', t.config, '--model.hiddenChannels=3', '--json'],
      ['eval', join(w, 'run'), '--limit', '4', '--batch-size', '2', '--json'],
      ['sample', join(w, 'run', 'checkpoint.safetensors'), '--n', '2', '--seed', '1', '--out', join(w, 'out')],
      ['complete', join(w, 'run'), '--images', t.png, '--keep-rows', '2', '--samples', '1', '--out', join(w, 'out')],
      ['complete', join(w, 'run'), '--images', t.npy, '--keep-rows', '3', '--limit', '2', '--out', join(w, 'out')],
      ['plot', join(w, 'run'), '--out', join(w, 'out', 'curves.png')],
      ['train', '--config', t.config, '--out', join(w, 'new'), '--no-bar', '--train.steps=1'],
      ['train', '--resume', join(w, 'run'), '--no-bar', '--train.steps=3'],
    ];
    let unhandled = 0;
    const onUnhandled = () => void unhandled++;
    process.on('unhandledRejection', onUnhandled);
    try {
      return await runFuzz({
        family: 'cli', seed: o.seed ?? 7, count: Math.max(1, Math.round((o.count ?? 3000) / 4)), hangMs: 10_000,
        make: (rng) => {
          const all = bases(work);
          const k = rng.int(0, all.length);
          const m = mutateArgs(all[k]!, rng);
          return {
            ops: [`${all[k]![0]}#${k}`, ...m.ops],
            run: async () => {
              rmSync(work, { recursive: true, force: true });
              cpSync(pristine, work, { recursive: true });
              const before = snapshotDir(root);
              const seen = unhandled;
              const r = await runMain(m.args, work);
              if (unhandled !== seen) return { verdict: 'crash', detail: 'an unhandled rejection' };
              const errorLines = r.stderr.split('\n').filter((l) => l.startsWith('arpix: '));
              if (r.code !== 0) {
                if (m.args.length === 0 && r.code === 2) return { verdict: 'clean-error' }; // the help, for no arguments
                if (INTERNAL_PHRASES.test(errorLines.join(' ')) || errorLines.length !== 1) return { verdict: 'internal-error', detail: r.stderr.trim().slice(0, 300) };
                const changed = changedPaths(before, snapshotDir(root));
                if (changed.length > 0) return { verdict: 'file-changed', detail: `exit ${r.code}, changed ${changed.slice(0, 4).join(', ')}: ${errorLines[0]}` };
                return { verdict: 'clean-error' };
              }
              const why = shouldHaveFailed(m.args);
              return why === null ? { verdict: 'accepted' } : { verdict: 'silent-acceptance', detail: why };
            },
          };
        },
      });
    } finally {
      process.off('unhandledRejection', onUnhandled);
    }
  } finally {
    done();
  }
}

/** Every family, in order; the CLI family last (it trains a tiny run first). */
export async function fuzzAll(o: FamilyOptions = {}): Promise<FuzzTally[]> {
  return [await fuzzPng(o), await fuzzJpeg(o), await fuzzNpy(o), await fuzzIdx(o), await fuzzIdxGz(o), await fuzzConfigs(o), await fuzzTorchSave(o), await fuzzCli(o), await (await import('./serve-fuzz.js')).fuzzServe(o), await (await import('./verify-fuzz.js')).fuzzVerify({ seed: o.seed, count: Math.ceil((o.count ?? 900) / 3) }), ...(await (await import('./trainpy-fuzz.js')).fuzzTrainPy({ ...o, count: Math.ceil((o.count ?? 900) / 3) }))];
}
