// `arpix export --web OUT RUN…`: a static folder that samples, completes and explains each run in
// the browser, with nothing computed on a server — the page of `arpix serve` computing its panels
// in a Web Worker with the same engine:
//   index.html                the page, told its runs (PageConfig) in its HTML
//   app.js, worker.js         the page and its Web Worker, bundled for browsers (no Node built-in)
//   arpix.wasm                the WebAssembly backend, when it was built (else the page says it runs on TypeScript)
//   arpix-threads.wasm, wasm-helper.js   its threads build and helper worker, used where the host sends COOP and COEP
//   app.css, vendor/, favicon.ico
//   runs/<name>/weights.safetensors   an arpix checkpoint holding what sampling needs: the
//                             averaged weights (or the trained ones) and the metadata, with its
//                             SHA-256 sums; the page checks it as every reader does
//   runs/<name>/test-images.json      the first test images of the run's data, in the model's levels
//   runs/<name>/metrics.json          the run's curves, when it has any
//   runs/<name>/train-images.bin      binarised images of the run's training data, one bit a pixel,
//                             for the page to train a fresh model on (--train-images; src/web/train-data.ts)
//   arpix-web.json            what this folder is (so --force replaces only an export)
// The folder is built beside OUT and renamed into place, so OUT is the whole export or untouched.

import { existsSync, readdirSync, readFileSync, renameSync, rmSync, statSync } from 'node:fs';
import { mkdir, rename, rm, writeFile } from 'node:fs/promises';
import { basename, dirname, join, resolve } from 'node:path';
import { createRequire } from 'node:module';
import { BatchLoader, evaluationLoader } from '../data/loader.js';
import { fixedLookupTable } from '../data/transforms.js';
import { sha256 } from '../env.js';
import { ArpixError } from '../errors.js';
import { decodeCheckpoint, encodeCheckpoint, type Checkpoint } from '../io/checkpoint.js';
import { checkOutputFolder, makeFolder } from '../io/files.js';
import { bundleHelper, bundlePage, bundleWorker, favicon, wasmModule, wasmThreadsModule } from '../serve/assets.js';
import { summarise } from '../serve/runs.js';
import { loadEvalData, loadTrainData, METRICS_FILE, transformFor } from '../train/index.js';
import type { AutoregressiveModel } from '../models/core/model.js';
import { validatedModel, type UsableCheckpoint } from '../train/validate.js';
import { withConfig, type PageConfig, type StaticRun } from '../web/page-config.js';
import { DEFAULT_TRAIN_IMAGES, heldOutCount, packTrainingImages, pageTrainingRefusal, type TrainingImages } from '../web/train-data.js';

export const WEB_MARKER = 'arpix-web.json';
const PAGE_DIR = new URL('../serve/page/', import.meta.url);

export interface WebRun {
  /** The run folder (its name names the run in the page). */
  dir: string;
  /** Its checkpoint, already through validateCheckpoint. */
  ckpt: UsableCheckpoint;
}

export interface WebExportOptions {
  /** Replace OUT when it is an earlier web export (never another folder). */
  force?: boolean;
  /** Test images per run (default 16). */
  testImages?: number;
  /** Metric records kept per run (the last ones; default 20000). */
  maxRecords?: number;
  /**
   * Training images per run for the page's trainer: absent, DEFAULT_TRAIN_IMAGES for each run that
   * can train in a page (the others get none); 0, none; N, N for every run, and a run that cannot
   * train in a page is refused.
   */
  trainImages?: number;
}

export interface WebExportResult {
  dir: string;
  runs: { name: string; kind: string; weightsBytes: number; testImages: number; trainImages: number }[];
  /** Bytes of the page's files: app.js, worker.js, arpix.wasm (0 when not built). */
  bundleBytes: number;
  workerBytes: number;
  wasmBytes: number;
  /** Why there is no arpix.wasm, or null. */
  wasmReason: string | null;
}

/**
 * The weights sampling needs, as an arpix checkpoint with its sums: the averaged weights in place
 * of the trained ones when the run has them (buffers from the model), and no optimiser, schedule,
 * loader or average state. Marked as imported from the run (extra.importedFrom), as a state
 * dict brought into arpix is, so every reader accepts it without training state.
 */
export function samplingCheckpoint(c: UsableCheckpoint, name: string): { bytes: Uint8Array; which: 'ema' | 'raw' } {
  const which = Object.keys(c.ema).length > 0 ? 'ema' : 'raw';
  const meta: Checkpoint['meta'] = {
    ...c.meta, optimizer: null, scheduler: null, loader: null, ema: null, generators: {},
    extra: { ...c.meta.extra, importedFrom: `${name}/checkpoint.safetensors`, importFormat: 'arpix-web', weights: which },
  };
  return { bytes: encodeCheckpoint({ meta, model: { ...c.model, ...c.ema }, optimizer: {}, ema: {} }), which };
}

/** The serve page's HTML for a folder: its files named relative to the page, which may live under any path of a host. */
function staticHtml(html: string): string {
  return html.replace('<title>arpix serve</title>', '<title>arpix</title>').replace(/(href|src)="\//g, '$1="');
}

/** A run's last `max` metric records (train and validation), or null when it has none. */
function metricRecords(dir: string, max: number): unknown[] | null {
  let text: string;
  try {
    text = readFileSync(join(dir, METRICS_FILE), 'utf8');
  } catch {
    return null;
  }
  const out: unknown[] = [];
  for (const line of text.split('\n')) {
    if (line.trim() === '') continue;
    try {
      const r = JSON.parse(line) as { type?: unknown };
      if (r.type === 'train' || r.type === 'validation') out.push(r);
    } catch {
      // a line being written or damaged
    }
  }
  return out.length > 0 ? out.slice(-max) : null;
}

/** The most training images a page is given per run (50,000 of 28×28 are 4.9 MB). */
export const MAX_TRAIN_IMAGES = 50_000;

/**
 * The page's training file of a run: the first `count` images of its training split (as the run
 * splits off validation) in the binarisation its loader gives them in epoch 0, then images of its
 * validation split held out, binarised as the run validates them (seed 0), and labels when the
 * model takes them. Null with why not when the model cannot train in a page.
 */
async function trainingImages(ckpt: UsableCheckpoint, model: AutoregressiveModel, base: string, count: number, explicit: boolean, dir: string): Promise<{ file: Uint8Array; spec: TrainingImages } | { file: null; why: string }> {
  const refusal = pageTrainingRefusal({ levels: model.likelihood.levels, parameters: model.numParameters() });
  if (refusal !== null) {
    if (explicit) throw new ArpixError(`${dir} cannot be given training images (--train-images ${count}): ${refusal}; leave --train-images out to give them only to the runs that can train in a page`);
    return { file: null, why: refusal };
  }
  const { dataset, train: t } = ckpt.config;
  const data = await loadTrainData(dataset, t.validationSize);
  const n = Math.min(count, data.train.shape[0]);
  const m = Math.min(heldOutCount(n), data.validation.shape[0]);
  const train = new BatchLoader(data.train, { batchSize: n, shuffle: false, transform: data.transform, seed: t.seed }).batchAt(0, 0);
  const held = evaluationLoader(data.validation, m, data.transform).batchAt(0, 0);
  const values = new Int32Array(train.images.data.length + held.images.data.length);
  values.set(train.images.data as Int32Array);
  values.set(held.images.data as Int32Array, train.images.data.length);
  const numClasses = model.config.numClasses;
  const labels = numClasses > 0 ? [...train.labels!.data, ...held.labels!.data] : null;
  const file = packTrainingImages(values, labels);
  const { height, width, channels } = model.config;
  return {
    file,
    spec: { file: `${base}/train-images.bin`, bytes: file.length, sha256: sha256().update(file).hex(), train: n, heldOut: m, height, width, channels, numClasses, dataset: dataset.name },
  };
}

/** Names for the runs' folders: their folder names, made unique and safe in a URL. */
function runNames(dirs: readonly string[]): string[] {
  const used = new Set<string>();
  return dirs.map((d) => {
    const base = basename(resolve(d)).replace(/[^A-Za-z0-9._-]/g, '_').replace(/^\.+/, '_') || 'run';
    let name = base;
    for (let k = 2; used.has(name); k++) name = `${base}-${k}`;
    used.add(name);
    return name;
  });
}

/** Refuses OUT when it exists, unless --force and it is an earlier web export. */
function checkOut(out: string, force: boolean): void {
  checkOutputFolder(out);
  if (!existsSync(out)) return;
  if (!statSync(out).isDirectory()) throw new ArpixError(`${out} is a file; choose a folder that does not exist`);
  const empty = readdirSync(out).length === 0;
  if (!force) throw new ArpixError(`${out} already exists; pass --force to replace an earlier web export, or choose another folder`);
  if (!empty && !existsSync(join(out, WEB_MARKER))) throw new ArpixError(`${out} exists and is not a web export of arpix (it has no ${WEB_MARKER}); --force replaces only an export, so choose another folder`);
}

/** Signals that end the command: the folder being written is removed before the process goes. */
const STOP_SIGNALS = ['SIGINT', 'SIGTERM', 'SIGHUP'] as const;

/**
 * Writes `files` (paths relative to the folder) as the folder `out`, whole or not at all: built
 * beside it as OUT.tmp-*, then renamed into place; an earlier folder is moved aside to OUT.old-*
 * first and removed last. On an error, and on Ctrl-C, kill or a closed terminal while it writes,
 * the temporary folder is removed and an earlier folder is put back; after a signal, once the file
 * being written is closed, the signal is raised again and ends the process as it would have.
 */
export async function writeFolder(out: string, files: readonly (readonly [string, Uint8Array | string])[]): Promise<void> {
  await makeFolder(dirname(out));
  const stamp = `${process.pid}-${Date.now()}`;
  const tmp = `${out}.tmp-${stamp}`;
  const old = `${out}.old-${stamp}`;
  let signal: NodeJS.Signals | null = null;
  let failure: unknown = null;
  // The first signal stops the writing after the file in hand (a second one ends the process at once).
  const onSignal = (sig: NodeJS.Signals) => {
    signal = sig;
    for (const s of STOP_SIGNALS) process.off(s, onSignal);
  };
  for (const s of STOP_SIGNALS) process.on(s, onSignal);
  const step = async (op: () => Promise<unknown>) => {
    if (signal) throw new ArpixError(`${signal}: stopped writing ${out}`);
    await op();
  };
  try {
    for (const [rel, data] of files) {
      const p = join(tmp, rel);
      await step(() => mkdir(dirname(p), { recursive: true }));
      await step(() => writeFile(p, data));
    }
    if (existsSync(out)) {
      await step(() => rename(out, old));
      await rename(tmp, out);
      await rm(old, { recursive: true, force: true });
    } else {
      await step(() => rename(tmp, out));
    }
  } catch (e) {
    rmSync(tmp, { recursive: true, force: true });
    if (existsSync(old)) {
      if (existsSync(out)) rmSync(old, { recursive: true, force: true });
      else renameSync(old, out);
    }
    failure = e;
  } finally {
    for (const s of STOP_SIGNALS) process.off(s, onSignal);
  }
  // Stopped (or finished while being stopped): the signal ends the process now that the disk is in order.
  if (signal) process.kill(process.pid, signal);
  if (failure !== null) throw failure;
}

/** Writes the folder (see the file's header). Every run was validated by the caller. */
export async function exportWeb(runs: readonly WebRun[], outDir: string, opts: WebExportOptions = {}): Promise<WebExportResult> {
  const out = resolve(outDir);
  const force = opts.force ?? false;
  const testCount = opts.testImages ?? 16;
  if (!Number.isInteger(testCount) || testCount < 1 || testCount > 1000) throw new ArpixError(`--test-images must be an integer in 1..1000, got ${testCount}`);
  const trainCount = opts.trainImages ?? DEFAULT_TRAIN_IMAGES;
  if (!Number.isInteger(trainCount) || trainCount < 0 || trainCount > MAX_TRAIN_IMAGES) throw new ArpixError(`--train-images must be an integer in 0..${MAX_TRAIN_IMAGES}, got ${trainCount}`);
  if (runs.length === 0) throw new ArpixError('give at least one run folder to export');
  checkOut(out, force);

  // Everything is made in memory first: a run whose data cannot be read stops the export before any file is written.
  const names = runNames(runs.map((r) => r.dir));
  const files: [string, Uint8Array | string][] = [];
  const staticRuns: StaticRun[] = [];
  const summaries: WebExportResult['runs'] = [];
  for (let i = 0; i < runs.length; i++) {
    const { dir, ckpt } = runs[i]!;
    const name = names[i]!;
    const { bytes, which } = samplingCheckpoint(ckpt, name);
    // The file the page will fetch passes the check every reader runs, and builds the run's model.
    const m = validatedModel(decodeCheckpoint(bytes, `runs/${name}/weights.safetensors`)).model;
    const config = ckpt.config;
    const ds = await loadEvalData(config.dataset, 'test', config.train.validationSize);
    const [count, h, w, c] = ds.shape;
    if (h !== m.config.height || w !== m.config.width || c !== m.config.channels) {
      throw new ArpixError(`${dir}: the test images of ${config.dataset.name} are ${h}×${w}×${c} but the run's model takes ${m.config.height}×${m.config.width}×${m.config.channels}`);
    }
    const lut = fixedLookupTable(transformFor(config.dataset));
    const d = m.dims;
    const k = Math.min(testCount, count);
    const values: number[][] = [];
    for (let j = 0; j < k; j++) values.push(Array.from(ds.images.subarray(j * d, (j + 1) * d), (v) => lut[v]!));
    const labels = ds.labels ? Array.from(ds.labels.subarray(0, k)) : null;
    const tests = { dataset: config.dataset.name, count: k, height: h, width: w, channels: c, values, labels };
    const records = metricRecords(dir, opts.maxRecords ?? 20_000);
    const base = `runs/${name}`;
    files.push([`${base}/weights.safetensors`, bytes], [`${base}/test-images.json`, JSON.stringify(tests)]);
    if (records) files.push([`${base}/metrics.json`, JSON.stringify(records)]);
    const training = trainCount > 0 ? await trainingImages(ckpt, m, base, trainCount, opts.trainImages !== undefined, dir) : { file: null, why: 'the page was exported with --train-images 0' };
    if (training.file) files.push([training.spec.file, training.file]);
    const summary = { ...summarise({ id: name, dir }), id: name, metricsAge: null, hasCheckpoint: true, parameters: m.numParameters() };
    staticRuns.push({
      summary, weights: { file: `${base}/weights.safetensors`, bytes: bytes.length, sha256: sha256().update(bytes).hex(), which },
      tests: `${base}/test-images.json`, metrics: records ? `${base}/metrics.json` : null, lut: Array.from(lut),
      ...(training.file ? { training: training.spec } : { training: null, noTraining: training.why }),
    });
    summaries.push({ name, kind: m.config.kind, weightsBytes: bytes.length, testImages: k, trainImages: training.file ? training.spec.train : 0 });
  }

  const wasm = wasmModule();
  const threadsFile = wasm.file ? wasmThreadsModule() : null;
  const [app, worker, helper] = await Promise.all([bundlePage(), bundleWorker(), threadsFile ? bundleHelper() : null]);
  const wasmBytes = wasm.file ? readFileSync(wasm.file) : null;
  const page: PageConfig = { mode: 'static', compute: 'page', allowUnverified: false, worker: 'worker.js', wasm: wasmBytes ? 'arpix.wasm' : null, wasmReason: wasm.reason, compressModes: [], runs: staticRuns };
  const require = createRequire(import.meta.url);
  files.push(
    ['index.html', withConfig(staticHtml(readFileSync(new URL('index.html', PAGE_DIR), 'utf8')), page)],
    ['app.js', app], ['worker.js', worker],
    ['app.css', readFileSync(new URL('style.css', PAGE_DIR), 'utf8')],
    ['vendor/uPlot.min.css', readFileSync(require.resolve('uplot/dist/uPlot.min.css'), 'utf8')],
    ['favicon.ico', favicon()],
    [WEB_MARKER, JSON.stringify({ format: 'arpix-web', version: 1, runs: summaries }, null, 2) + '\n'],
  );
  if (wasmBytes) files.push(['arpix.wasm', new Uint8Array(wasmBytes)]);
  // The threads build, which the page uses where its host makes it cross-origin isolated.
  if (threadsFile && helper) files.push(['arpix-threads.wasm', new Uint8Array(readFileSync(threadsFile))], ['wasm-helper.js', helper]);

  await writeFolder(out, files);
  return { dir: out, runs: summaries, bundleBytes: Buffer.byteLength(app), workerBytes: Buffer.byteLength(worker), wasmBytes: wasmBytes?.length ?? 0, wasmReason: wasm.reason };
}
