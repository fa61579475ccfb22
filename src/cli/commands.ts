// What each `arpix` sub-command does, apart from parsing its flags (main.ts).

import { existsSync, statSync } from 'node:fs';
import { mkdir } from 'node:fs/promises';
import { basename, dirname, join, resolve } from 'node:path';
import { ConfigError } from '../config.js';
import { loadDataset } from '../data/index.js';
import { writeFileAtomic } from '../io/atomic.js';
import { loadCheckpoint, type Checkpoint } from '../io/checkpoint.js';
import { createModel, loadPreset } from '../models/index.js';
import type { AutoregressiveModel } from '../models/model.js';
import { Tensor } from '../tensor/tensor.js';
import {
  applyOverrides, configFileRaw, describeData, encodeNpyUint8, evaluate, imageGridPng, loadEvalData, modelInfo, modelFromCheckpoint,
  presetRaw, readMetrics, resolveRunConfig, train, transformFor, CHECKPOINT_FILE, METRICS_FILE,
  type Evaluation, type RunConfig, type TrainResult,
} from '../train/index.js';
import { readImages } from './inputs.js';
import { plotMetrics } from './plot.js';
import { createReporter, formatDuration } from './progress.js';

/** An error whose message is meant for the user as is, with the exit code to leave with. */
export class CliError extends Error {
  constructor(message: string, readonly exitCode = 1) {
    super(message);
  }
}

export const EXIT = { ok: 0, error: 1, usage: 2, diverged: 3, interrupted: 130 } as const;

const out = (line = '') => process.stdout.write(line + '\n');

/** Creates `dir` (and parents); fails with a one-line reason when it cannot be written. */
async function ensureDir(dir: string): Promise<void> {
  await mkdir(dir, { recursive: true });
}

/** Writes an output file atomically; an error names the file. */
async function writeOut(path: string, data: Uint8Array | string): Promise<void> {
  try {
    await writeFileAtomic(path, data);
  } catch (e) {
    if (e && typeof e === 'object' && !('path' in e)) Object.assign(e, { path });
    throw e;
  }
}

/** Refuses to replace existing files unless --force. */
function refuseExisting(paths: readonly string[], force: boolean): void {
  if (force) return;
  const existing = paths.filter((p) => existsSync(p));
  if (existing.length > 0) throw new CliError(`${existing.join(', ')} already exists; pass --force to replace it, or choose another --out`, EXIT.usage);
}

async function readCheckpoint(path: string): Promise<Checkpoint> {
  const file = existsSync(path) && statSync(path).isDirectory() ? join(path, CHECKPOINT_FILE) : path;
  return loadCheckpoint(file);
}

function describeModel(config: RunConfig['model']): string {
  const lik = config.likelihood;
  const levels = lik.kind === 'bernoulli' ? 2 : lik.levels ?? 256;
  return `${config.kind}, ${config.height}×${config.width}×${config.channels}, ${lik.kind} likelihood over ${levels} levels${config.numClasses > 0 ? `, ${config.numClasses} classes` : ''}`;
}

// ---- train ---------------------------------------------------------------------------------

export interface TrainArgs {
  preset?: string;
  config?: string;
  resume?: string;
  out?: string;
  overrides: string[];
  bar: boolean;
}

function timestamp(): string {
  return new Date().toISOString().replace(/\..*$/, '').replace(/:/g, '-');
}

/** The resolved config and the run folder a `train` invocation means. */
export async function planRun(a: TrainArgs): Promise<{ config: RunConfig; runDir: string; resume: boolean }> {
  const given = [a.preset, a.config, a.resume].filter((x) => x !== undefined).length;
  if (given !== 1) throw new CliError('give exactly one of --preset NAME, --config FILE or --resume RUN_DIR', EXIT.usage);
  if (a.resume !== undefined) {
    if (a.out !== undefined) throw new CliError('--out cannot be combined with --resume: the run continues in its own folder', EXIT.usage);
    const ckpt = await readCheckpoint(a.resume);
    const raw = ckpt.meta.config as Record<string, unknown>;
    return { config: resolveRunConfig(applyOverrides(raw, a.overrides)), runDir: resolve(a.resume), resume: true };
  }
  const raw = a.preset !== undefined ? presetRaw(a.preset) : configFileRaw(a.config!);
  const config = resolveRunConfig(applyOverrides(raw, a.overrides), a.preset ?? '');
  const name = a.preset ?? basename(a.config!).replace(/\.json$/, '');
  return { config, runDir: resolve(a.out ?? join('runs', `${timestamp()}-${name}`)), resume: false };
}

/** Runs training with a progress display and SIGINT/SIGTERM handling; returns the result. */
export async function runTraining(config: RunConfig, runDir: string, resume: boolean, bar: boolean): Promise<TrainResult> {
  const reporter = createReporter(process.stderr, { bar });
  const controller = new AbortController();
  let interrupts = 0;
  const onSignal = (sig: NodeJS.Signals) => {
    interrupts++;
    if (interrupts > 1) {
      reporter.stop();
      process.stderr.write(`arpix: ${sig} again: stopping now; the last checkpoint in ${runDir} is intact\n`);
      process.exit(EXIT.interrupted);
    }
    reporter.log(`${sig}: finishing the step and writing a checkpoint (press Ctrl-C again to stop at once)`);
    controller.abort();
  };
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);
  try {
    return await train(config, {
      runDir, resume, signal: controller.signal,
      onProgress: (p) => reporter.progress(p),
      onEvent: (e) => reporter.event(e),
    });
  } finally {
    reporter.stop();
    process.off('SIGINT', onSignal);
    process.off('SIGTERM', onSignal);
  }
}

export async function trainCommand(a: TrainArgs): Promise<number> {
  const { config, runDir, resume } = await planRun(a);
  out('config:');
  out(JSON.stringify(config, null, 2));
  out(`run folder: ${runDir}`);
  out(`data: ${describeData(config.dataset).text}`);
  // train() creates the folder (and its parents) once the model and data have been checked.
  const r = await runTraining(config, runDir, resume, a.bar);
  return reportTraining(r, runDir);
}

function reportTraining(r: TrainResult, runDir: string): number {
  if (r.status === 'diverged') {
    const where = r.checkpoint ? `the last good checkpoint is ${r.checkpoint}` : 'no checkpoint had been written yet';
    process.stderr.write(`arpix: ${r.message}; ${where}; start again with a lower --train.lr or with --train.gradClip=1\n`);
    return EXIT.diverged;
  }
  const v = r.validation ? `, validation ${r.validation.bitsPerDim.toFixed(4)} ± ${r.validation.stderr.toFixed(4)} bits/dim` : '';
  if (r.status === 'interrupted') {
    out(`interrupted at step ${r.step}${v}; checkpoint ${r.checkpoint}`);
    out(`continue with: arpix train --resume ${runDir}`);
    return EXIT.interrupted;
  }
  out(`done: ${r.step} steps, ${r.imagesSeen} images in ${formatDuration(r.seconds)}${v}`);
  out(`checkpoint: ${r.checkpoint}`);
  out(`next: arpix eval ${r.checkpoint} · arpix sample ${r.checkpoint} · arpix plot ${runDir}`);
  return EXIT.ok;
}

// ---- eval ----------------------------------------------------------------------------------

export interface EvalArgs {
  checkpoint: string;
  split: 'test' | 'validation';
  raw: boolean;
  batchSize: number;
  limit?: number;
  json: boolean;
}

export async function evalCommand(a: EvalArgs): Promise<number> {
  const ckpt = await readCheckpoint(a.checkpoint);
  const config = ckpt.meta.config as unknown as RunConfig;
  const model = modelFromCheckpoint(ckpt, { useEma: !a.raw });
  let ds = await loadEvalData(config.dataset, a.split, config.train.validationSize);
  if (a.limit !== undefined && a.limit < ds.shape[0]) {
    const { subset } = await import('../data/index.js');
    ds = subset(ds, Array.from({ length: a.limit }, (_, i) => i));
  }
  const weights = a.raw || Object.keys(ckpt.ema).length === 0 ? 'trained weights' : 'EMA weights';
  const e = await evaluate(model, ds, { batchSize: a.batchSize, transform: transformFor(config.dataset) });
  const data = describeData(config.dataset);
  if (a.json) {
    out(JSON.stringify({ split: a.split, weights, step: ckpt.meta.step, data: { name: data.name, levels: data.levels, binarisation: data.binarisation }, ...e }));
  } else {
    out(`data: ${data.text}`);
    out(`${a.split}: ${e.bitsPerDim.toFixed(4)} ± ${e.stderr.toFixed(4)} bits/dim over ${e.n} images (${weights}, step ${ckpt.meta.step})`);
    if (model.likelihood.levels === 2) out(`${a.split}: ${e.natsPerImage.toFixed(2)} ± ${e.natsStderr.toFixed(2)} nats/image (negative log-likelihood)`);
  }
  return EXIT.ok;
}

// ---- sample / complete -----------------------------------------------------------------------

export interface SampleArgs {
  checkpoint: string;
  n: number;
  seed: number;
  temperature: number;
  label?: number;
  out?: string;
  raw: boolean;
  force: boolean;
}

function outDirFor(checkpointArg: string, outArg: string | undefined): string {
  if (outArg !== undefined) return resolve(outArg);
  const base = existsSync(checkpointArg) && statSync(checkpointArg).isDirectory() ? checkpointArg : dirname(checkpointArg);
  return resolve(base, 'samples');
}

function rowProgress(total: number, what: string): ((row: number) => void) | undefined {
  if (!process.stderr.isTTY) return undefined;
  return (row) => {
    process.stderr.write(`\r${what}: row ${row + 1}/${total}`);
    if (row + 1 === total) process.stderr.write('\n');
  };
}

export async function sampleCommand(a: SampleArgs): Promise<number> {
  const ckpt = await readCheckpoint(a.checkpoint);
  const model = modelFromCheckpoint(ckpt, { useEma: !a.raw });
  const dir = outDirFor(a.checkpoint, a.out);
  const stem = join(dir, `samples-seed${a.seed}${a.temperature !== 1 ? `-t${a.temperature}` : ''}${a.label !== undefined ? `-label${a.label}` : ''}`);
  refuseExisting([`${stem}.png`, `${stem}.npy`], a.force);
  await ensureDir(dir);
  const started = performance.now();
  const images = model.sample({ n: a.n, seed: a.seed, temperature: a.temperature, labels: a.label ?? null, onRow: rowProgress(model.config.height, 'sampling') });
  await writeOut(`${stem}.png`, imageGridPng(images, { levels: model.likelihood.levels }));
  await writeOut(`${stem}.npy`, encodeNpyUint8(images));
  out(`${a.n} samples in ${formatDuration((performance.now() - started) / 1000)}: ${stem}.png, ${stem}.npy`);
  return EXIT.ok;
}

export interface CompleteArgs {
  checkpoint: string;
  images: string;
  keepRows: number;
  samples: number;
  seed: number;
  temperature: number;
  limit: number;
  out?: string;
  raw: boolean;
  force: boolean;
}

/** Completes each image `samples` times; returns the grid rows: original, occluded, completions. */
export function completeImages(model: AutoregressiveModel, images: Tensor, keepRows: number, samples: number, seed: number, temperature = 1): { completions: Tensor; grid: Tensor } {
  const [n, h, w, c] = images.shape as [number, number, number, number];
  if (!Number.isInteger(keepRows) || keepRows < 0 || keepRows > h) throw new CliError(`--keep-rows must be an integer in 0..${h}, got ${keepRows}`, EXIT.usage);
  const size = h * w * c;
  const repeated = new Int32Array(n * samples * size);
  for (let i = 0; i < n; i++) for (let s = 0; s < samples; s++) repeated.set(images.data.subarray(i * size, (i + 1) * size), (i * samples + s) * size);
  const completions = model.sample({
    n: n * samples, seed, temperature, complete: { images: new Tensor(repeated, [n * samples, h, w, c]), keepRows },
    onRow: rowProgress(h, 'completing'),
  });
  const cols = samples + 2;
  const grid = new Int32Array(n * cols * size);
  for (let i = 0; i < n; i++) {
    const img = images.data.subarray(i * size, (i + 1) * size);
    grid.set(img, (i * cols) * size);
    grid.set(img, (i * cols + 1) * size);
    for (let s = 0; s < samples; s++) grid.set(completions.data.subarray((i * samples + s) * size, (i * samples + s + 1) * size), (i * cols + 2 + s) * size);
  }
  return { completions, grid: new Tensor(grid, [n * cols, h, w, c]) };
}

export function completionGridPng(model: AutoregressiveModel, grid: Tensor, samples: number, keepRows: number): Uint8Array {
  const cols = samples + 2;
  return imageGridPng(grid, { levels: model.likelihood.levels, columns: cols, shadeFromRow: (i) => (i % cols === 1 ? keepRows : null) });
}

export async function completeCommand(a: CompleteArgs): Promise<number> {
  const ckpt = await readCheckpoint(a.checkpoint);
  const config = ckpt.meta.config as unknown as RunConfig;
  const model = modelFromCheckpoint(ckpt, { useEma: !a.raw });
  const { height, width, channels } = model.config;
  if (!Number.isInteger(a.keepRows) || a.keepRows < 0 || a.keepRows > height) {
    throw new CliError(`--keep-rows must be an integer in 0..${height} (the model's images have ${height} rows), got ${a.keepRows}`, EXIT.usage);
  }
  if (model.config.numClasses > 0) throw new CliError('complete: class-conditional models are not supported yet; sample them with --label', EXIT.usage);
  const images = readImages(a.images, { height, width, channels }, transformFor(config.dataset), a.limit);
  const dir = outDirFor(a.checkpoint, a.out);
  const stem = join(dir, `completions-seed${a.seed}-keep${a.keepRows}`);
  refuseExisting([`${stem}.png`, `${stem}.npy`], a.force);
  await ensureDir(dir);
  const started = performance.now();
  const { completions, grid } = completeImages(model, images, a.keepRows, a.samples, a.seed, a.temperature);
  await writeOut(`${stem}.png`, completionGridPng(model, grid, a.samples, a.keepRows));
  await writeOut(`${stem}.npy`, encodeNpyUint8(completions));
  out(`${images.shape[0]} images × ${a.samples} completions in ${formatDuration((performance.now() - started) / 1000)}: ${stem}.png (original | occluded | completions), ${stem}.npy`);
  return EXIT.ok;
}

// ---- info ----------------------------------------------------------------------------------

export interface InfoArgs {
  checkpoint?: string;
  preset?: string;
  config?: string;
  overrides: string[];
  json: boolean;
}

export async function infoCommand(a: InfoArgs): Promise<number> {
  const given = [a.checkpoint, a.preset, a.config].filter((x) => x !== undefined).length;
  if (given !== 1) throw new CliError('give a CHECKPOINT, or --preset NAME, or --config FILE', EXIT.usage);
  let model: AutoregressiveModel;
  let source: string;
  if (a.checkpoint !== undefined) {
    const ckpt = await readCheckpoint(a.checkpoint);
    model = modelFromCheckpoint(ckpt);
    source = `checkpoint ${a.checkpoint} (step ${ckpt.meta.step})`;
  } else {
    const raw = a.preset !== undefined ? presetRaw(a.preset) : configFileRaw(a.config!);
    const config = resolveRunConfig(applyOverrides(raw, a.overrides));
    model = createModel(config.model);
    source = a.preset !== undefined ? `preset ${a.preset}: ${loadPreset(a.preset).description}` : `config ${a.config}`;
  }
  const info = modelInfo(model);
  if (a.json) {
    out(JSON.stringify({ ...info, convs: undefined, convolutions: info.convs.length }));
    return EXIT.ok;
  }
  const g = (f: number) => `${(f / 1e9).toFixed(3)} GFLOP`;
  const rf = info.receptiveField;
  out(source);
  out(`model: ${describeModel(model.config as RunConfig['model'])}`);
  out(`parameters: ${info.parameters.toLocaleString('en')}`);
  out(`receptive field of the last pixel: ${rf.pixels} of the ${rf.of} pixels before it (${((100 * rf.pixels) / rf.of).toFixed(1)}%), measured from gradients`);
  out(`FLOPs per image: ${g(info.flops)} computed (2 × multiply-adds of ${info.convs.length} convolutions)`);
  if (info.maskedFlops > 0) out(`  of which ${g(info.maskedFlops)} (${((100 * info.maskedFlops) / info.flops).toFixed(1)}%) multiply weights a mask always zeroes`);
  if (info.maskedFormulationFlops !== null) {
    const m = info.maskedFormulationFlops;
    out(`  the masked ${(model.config as unknown as { kernelSize: number }).kernelSize}×${(model.config as unknown as { kernelSize: number }).kernelSize} formulation of this network would compute ${g(m)}: the ${((100 * (m - info.flops)) / m).toFixed(1)}% of its taps that masks zero are skipped here by construction`);
  }
  return EXIT.ok;
}

// ---- plot ----------------------------------------------------------------------------------

export async function plotCommand(runDir: string, outFile: string | undefined, force: boolean): Promise<number> {
  const metrics = join(runDir, METRICS_FILE);
  if (!existsSync(metrics)) throw new CliError(`${runDir} has no ${METRICS_FILE}; give the folder of a training run`, EXIT.usage);
  const records = await readMetrics(metrics);
  const target = resolve(outFile ?? join(runDir, 'curves.png'));
  // The default curves.png is the run's own derived file and is redrawn; any other file is protected.
  if (outFile !== undefined) refuseExisting([target], force);
  let png: Uint8Array;
  try {
    png = plotMetrics(records, { title: basename(resolve(runDir)) });
  } catch (e) {
    throw new CliError(`${metrics}: ${(e as Error).message}; plot again once training has logged a few steps`);
  }
  await ensureDir(dirname(target));
  await writeOut(target, png);
  out(`curves: ${target}`);
  return EXIT.ok;
}

// ---- demo (npm start) ------------------------------------------------------------------------

export interface DemoArgs {
  minutes: number;
  out?: string;
  overrides: string[];
  bar: boolean;
}

/**
 * `npm start`: trains the small Gated PixelCNN on Fashion-MNIST for a few minutes, then writes its
 * test bits/dim, samples, completions of test images and the training curve into one folder.
 */
export async function demoCommand(a: DemoArgs): Promise<number> {
  const preset = 'gated-pixelcnn-fmnist';
  const overrides = [`train.minutes=${a.minutes}`, 'train.steps=0', ...a.overrides];
  const runDir = resolve(a.out ?? join('runs', `${timestamp()}-${preset}`));
  const { config } = await planRun({ preset, overrides, out: runDir, bar: a.bar });
  out(`arpix demo: ${a.minutes} minutes of training ${preset} on Fashion-MNIST, then test bits/dim, samples, completions and curves`);
  out('config:');
  out(JSON.stringify(config, null, 2));
  out(`run folder: ${runDir}`);
  const r = await runTraining(config, runDir, false, a.bar);
  if (r.status !== 'done') return reportTraining(r, runDir);
  out(`trained ${r.step} steps (${r.imagesSeen} images) in ${formatDuration(r.seconds)}`);
  const model = r.model;
  if (r.ema) r.ema.copyTo(model);
  model.eval();

  const test = await loadDataset(config.dataset.name, { split: 'test' });
  out(`evaluating on the ${test.shape[0]} test images…`);
  const e: Evaluation = await evaluate(model, test, { batchSize: 100, transform: transformFor(config.dataset) });
  const summary = { preset, steps: r.step, images: r.imagesSeen, trainSeconds: r.seconds, test: e, validation: r.validation };
  await writeOut(join(runDir, 'test.json'), JSON.stringify(summary, null, 2) + '\n');
  out(`test: ${e.bitsPerDim.toFixed(4)} ± ${e.stderr.toFixed(4)} bits/dim over ${e.n} images`);

  await mkdir(join(runDir, 'samples'), { recursive: true });
  let t0 = performance.now();
  const samples = model.sample({ n: 8, seed: 0, onRow: rowProgress(model.config.height, 'sampling') });
  await writeOut(join(runDir, 'samples', 'samples-seed0.png'), imageGridPng(samples, { levels: model.likelihood.levels, scale: 3, columns: 4 }));
  await writeOut(join(runDir, 'samples', 'samples-seed0.npy'), encodeNpyUint8(samples));
  out(`8 samples in ${formatDuration((performance.now() - t0) / 1000)}`);

  t0 = performance.now();
  const keepRows = Math.floor(model.config.height / 2);
  const firstTest = new Tensor(Int32Array.from(test.images.subarray(0, 4 * model.dims)), [4, model.config.height, model.config.width, model.config.channels]);
  const { completions, grid } = completeImages(model, firstTest, keepRows, 2, 0);
  await writeOut(join(runDir, 'samples', `completions-seed0-keep${keepRows}.png`), completionGridPng(model, grid, 2, keepRows));
  await writeOut(join(runDir, 'samples', `completions-seed0-keep${keepRows}.npy`), encodeNpyUint8(completions));
  out(`completions of 4 test images in ${formatDuration((performance.now() - t0) / 1000)}`);

  await plotCommand(runDir, undefined, false);
  out('');
  out(`everything is in ${runDir}:`);
  out('  config.json, metrics.jsonl, checkpoint.safetensors, test.json, curves.png,');
  out(`  samples/samples-seed0.png, samples/completions-seed0-keep${keepRows}.png (original | occluded | 2 completions)`);
  return EXIT.ok;
}

export { ConfigError };
