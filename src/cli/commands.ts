// What each `arpix` sub-command does, apart from parsing its flags (main.ts).

import { existsSync, rmSync, statSync } from 'node:fs';
import { mkdir } from 'node:fs/promises';
import { basename, dirname, join, resolve } from 'node:path';
import { ConfigError } from '../config.js';
import { choosePrecision, cpuCapabilities, type PrecisionSetting } from '../train/precision.js';
import { loadDataset } from '../data/index.js';
import { writeFileAtomic, writeFileExclusive } from '../io/atomic.js';
import { checkOutputFolder, makeFolder } from '../io/files.js';
import type { Checkpoint } from '../io/checkpoint.js';
import { loadRunCheckpoint, type CheckpointPolicy, type UsableCheckpoint } from '../train/checkpoint.js';
import { encodeNpyUint8, imageGridPng } from '../io/images.js';
import { modelFromCheckpoint } from '../models/checkpoint.js';
import { checkModelMemory, costOfConfig, createModel, familyOf, memoryNeeded } from '../models/index.js';
import { loadPreset } from '../models/presets.js';
import { formatBytes } from '../models/memory.js';
import type { AutoregressiveModel } from '../models/core/model.js';
import { createLikelihood } from '../likelihoods/index.js';
import { Tensor } from '../tensor/tensor.js';
import {
  applyOverrides, configFileRaw, describeData, evaluate, loadEvalData, modelInfo,
  checkResumableChanges, presetRaw, readMetrics, resolveRunConfig, train, transformFor, CHECKPOINT_FILE, CONFIG_FILE, METRICS_FILE,
  type Evaluation, type RunConfig, type TrainResult,
} from '../train/index.js';
import { readImages } from './inputs.js';
import { plotMetrics } from './plot.js';
import { createReporter, formatDuration, rowReporter } from './progress.js';

/** An error whose message is meant for the user as is, with the exit code to leave with. */
export class CliError extends Error {
  constructor(message: string, readonly exitCode = 1) {
    super(message);
  }
}

export const EXIT = { ok: 0, error: 1, usage: 2, diverged: 3, interrupted: 130 } as const;

/** The help of --allow-unverified, on every command that loads a checkpoint. */
export const ALLOW_UNVERIFIED = 'use an arpix checkpoint that has no SHA-256 sums (from an older arpix, or edited): its integrity cannot be verified';

export const out = (line = '') => process.stdout.write(line + '\n');

/** Creates `dir` (and parents); fails with a one-line reason when it cannot be written. */
async function ensureDir(dir: string): Promise<void> {
  checkOutputFolder(dir);
  await makeFolder(dir);
}

/**
 * Writes an output file atomically; an error names the file. Without `force` the file must not
 * exist, checked in the same step as the write (another command writing it meanwhile is refused,
 * not overwritten).
 */
export async function writeOut(path: string, data: Uint8Array | string, force = true): Promise<void> {
  try {
    if (force) await writeFileAtomic(path, data);
    else await writeFileExclusive(path, data);
  } catch (e) {
    if (e && typeof e === 'object' && !('path' in e)) Object.assign(e, { path });
    if ((e as NodeJS.ErrnoException).code === 'EEXIST') throw new CliError(`${path} already exists (another command wrote it meanwhile?); pass --force to replace it, or choose another --out`, EXIT.error);
    throw e;
  }
}

/** Writes a command's output files, each refused if it exists without `force`; all or none stay. */
async function writeOutputs(files: readonly [string, Uint8Array | string][], force: boolean): Promise<void> {
  const written: string[] = [];
  try {
    for (const [path, data] of files) {
      await writeOut(path, data, force);
      written.push(path);
    }
  } catch (e) {
    // Files this call created exclusively are its own; without them nothing has changed.
    if (!force) for (const p of written) rmSync(p, { force: true });
    throw e;
  }
}

/** Refuses to replace existing files unless --force. */
export function refuseExisting(paths: readonly string[], force: boolean): void {
  if (force) return;
  const existing = paths.filter((p) => existsSync(p));
  if (existing.length > 0) throw new CliError(`${existing.join(', ')} already exists; pass --force to replace it, or choose another --out`, EXIT.usage);
}

/**
 * A run's checkpoint, put through the one check every command runs (validateCheckpoint in
 * src/train/checkpoint.ts). A file without sums is refused unless --allow-unverified; allowed, it
 * gets one line of warning.
 */
export async function readCheckpoint(path: string, policy: CheckpointPolicy = {}): Promise<UsableCheckpoint> {
  const c = await loadRunCheckpoint(path, policy);
  if (c.integrity === 'unverified') process.stderr.write(`arpix: warning: ${c.file} has no SHA-256 sums; used as --allow-unverified asks, its integrity is not verified\n`);
  return c;
}

function describeModel(config: RunConfig['model']): string {
  const lik = config.likelihood;
  const over = lik.kind === 'palette'
    ? `a palette of ${lik.k} colours (log-likelihood of the token sequence, one token per pixel)`
    : `${lik.kind === 'bernoulli' ? 2 : lik.levels ?? 256} levels`;
  return `${config.kind}, ${config.height}×${config.width}×${config.channels}, ${lik.kind} likelihood over ${over}${config.numClasses > 0 ? `, ${config.numClasses} classes` : ''}`;
}

// ---- train ---------------------------------------------------------------------------------

export interface TrainArgs {
  preset?: string;
  config?: string;
  resume?: string;
  out?: string;
  overrides: string[];
  bar: boolean;
  /** Replace the config.json and metrics.jsonl of a run that wrote no checkpoint. */
  force?: boolean;
  /** --resume from a checkpoint without SHA-256 sums. */
  allowUnverified?: boolean;
}

function timestamp(): string {
  return new Date().toISOString().replace(/\..*$/, '').replace(/:/g, '-');
}

/** What a `train` invocation means: the resolved config, the run folder, and how the run begins. */
export interface RunPlan {
  config: RunConfig;
  runDir: string;
  resume: boolean;
  /** --resume of a run killed before its first checkpoint: it starts again from its config.json. */
  restart: boolean;
}

/** The run of a --resume folder that holds no checkpoint: its saved config, or one line saying what is there. */
function restartPlan(dir: string, overrides: readonly string[]): RunPlan {
  if (!existsSync(join(dir, CONFIG_FILE))) {
    throw new CliError(`${dir} holds no run to resume: neither ${CHECKPOINT_FILE} nor ${CONFIG_FILE} is there; start one with arpix train --preset NAME --out ${dir}`, EXIT.error);
  }
  const saved = resolveRunConfig(configFileRaw(join(dir, CONFIG_FILE)));
  const config = resolveRunConfig(applyOverrides(saved as unknown as Record<string, unknown>, overrides));
  checkResumableChanges(saved, config, true);
  return { config, runDir: dir, resume: false, restart: true };
}

/** The resolved config and the run folder a `train` invocation means. */
export async function planRun(a: TrainArgs): Promise<RunPlan> {
  const given = [a.preset, a.config, a.resume].filter((x) => x !== undefined).length;
  if (given !== 1) throw new CliError('give exactly one of --preset NAME, --config FILE or --resume RUN_DIR', EXIT.usage);
  if (a.resume !== undefined) {
    if (a.out !== undefined) throw new CliError('--out cannot be combined with --resume: the run continues in its own folder', EXIT.usage);
    if (a.force) throw new CliError('--force cannot be combined with --resume: a resume replaces nothing', EXIT.usage);
    const dir = resolve(a.resume);
    if (existsSync(dir) && statSync(dir).isDirectory() && !existsSync(join(dir, CHECKPOINT_FILE))) return restartPlan(dir, a.overrides);
    const ckpt = await readCheckpoint(a.resume, a);
    const raw = ckpt.meta.config as Record<string, unknown>;
    return { config: resolveRunConfig(applyOverrides(raw, a.overrides)), runDir: resolve(a.resume), resume: true, restart: false };
  }
  const raw = a.preset !== undefined ? presetRaw(a.preset) : configFileRaw(a.config!);
  const config = resolveRunConfig(applyOverrides(raw, a.overrides), a.preset ?? '');
  const name = a.preset ?? basename(a.config!).replace(/\.json$/, '');
  const runDir = resolve(a.out ?? join('runs', `${timestamp()}-${name}`));
  checkOutputFolder(runDir);
  return { config, runDir, resume: false, restart: false };
}

/** Signals that stop a training run after its step, with a checkpoint: Ctrl-C, kill, a closed terminal. */
const STOP_SIGNALS = ['SIGINT', 'SIGTERM', 'SIGHUP'] as const;

/** What a run stopped at once leaves: its last checkpoint (written atomically, so whole), or none yet. */
function lastCheckpointNote(runDir: string): string {
  return existsSync(join(runDir, CHECKPOINT_FILE))
    ? `the last checkpoint in ${runDir} is intact; continue with: arpix train --resume ${runDir}`
    : `no checkpoint had been written yet; start again with: arpix train --resume ${runDir}`;
}

/** Runs training with a progress display and SIGINT/SIGTERM/SIGHUP handling; returns the result. */
export async function runTraining(config: RunConfig, runDir: string, resume: boolean, bar: boolean, force = false, policy: CheckpointPolicy = {}): Promise<TrainResult> {
  const reporter = createReporter(process.stderr, { bar });
  const controller = new AbortController();
  let interrupts = 0;
  const onSignal = (sig: NodeJS.Signals) => {
    interrupts++;
    // A closed terminal (SIGHUP) turns every later write to it into EIO: the run finishes its step
    // and checkpoint all the same, without a terminal to report to.
    if (sig === 'SIGHUP') for (const s of [process.stdout, process.stderr]) s.on('error', () => {});
    if (interrupts > 1) {
      reporter.stop();
      process.stderr.write(`arpix: ${sig} again: stopping now; ${lastCheckpointNote(runDir)}\n`);
      process.exit(EXIT.interrupted);
    }
    reporter.log(`${sig}: finishing the step and writing a checkpoint (press Ctrl-C again to stop at once)`);
    controller.abort();
  };
  for (const sig of STOP_SIGNALS) process.on(sig, onSignal);
  try {
    return await train(config, {
      runDir, resume, force, allowUnverified: policy.allowUnverified, signal: controller.signal,
      onProgress: (p) => reporter.progress(p),
      onEvent: (e) => reporter.event(e),
    });
  } finally {
    reporter.stop();
    for (const sig of STOP_SIGNALS) process.off(sig, onSignal);
    // Interrupted: the checkpoint is written and the command is on its way out with 130; a second
    // Ctrl-C in that window must not kill the process by the signal (no exit code at all).
    if (interrupts > 0) {
      const exitNow = () => process.exit(EXIT.interrupted);
      for (const sig of STOP_SIGNALS) process.on(sig, exitNow);
    }
  }
}

export async function trainCommand(a: TrainArgs): Promise<number> {
  const { config, runDir, resume, restart } = await planRun(a);
  const precision = choosePrecision(config.train.precision);
  out(`precision: ${precision.precision} — ${precision.reason}`);
  if (restart) out(`${runDir} holds no ${CHECKPOINT_FILE}: the run stopped before its first one, so it starts again from its ${CONFIG_FILE}`);
  out('config:');
  out(JSON.stringify(config, null, 2));
  out(`run folder: ${runDir}`);
  out(`data: ${describeData(config.dataset).text}`);
  // train() creates the folder (and its parents) once the model and data have been checked.
  const r = await runTraining(config, runDir, resume, a.bar, a.force || restart, a);
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
  if (r.message !== undefined) {
    out(`${runDir}: ${r.message}`);
    return EXIT.ok;
  }
  out(`done: ${r.step} steps, ${r.imagesSeen} images in ${formatDuration(r.seconds)}${v}`);
  out(`checkpoint: ${r.checkpoint}`);
  out(`next: arpix eval ${r.checkpoint} · arpix sample ${r.checkpoint} · arpix plot ${runDir}`);
  return EXIT.ok;
}

// ---- eval ----------------------------------------------------------------------------------

export interface EvalArgs extends CheckpointPolicy {
  checkpoint: string;
  split: 'test' | 'validation';
  raw: boolean;
  batchSize: number;
  limit?: number;
  json: boolean;
}

export async function evalCommand(a: EvalArgs): Promise<number> {
  const ckpt = await readCheckpoint(a.checkpoint, a);
  const config = ckpt.meta.config as unknown as RunConfig;
  checkModelMemory(config.model, 'eval', a.batchSize, `evaluating with --batch-size ${a.batchSize}`);
  const model = modelFromCheckpoint(ckpt, { useEma: !a.raw });
  let ds = await loadEvalData(config.dataset, a.split, config.train.validationSize);
  if (a.limit !== undefined && a.limit < ds.shape[0]) {
    const { subset } = await import('../data/index.js');
    ds = subset(ds, Array.from({ length: a.limit }, (_, i) => i));
  }
  const weights = a.raw || Object.keys(ckpt.ema).length === 0 ? 'trained weights' : 'EMA weights';
  const e = await evaluate(model, ds, { batchSize: a.batchSize, transform: transformFor(config.dataset) });
  if (!Number.isFinite(e.bitsPerDim) || !Number.isFinite(e.stderr)) {
    throw new CliError(`${ckpt.file}: the model gives ${e.bitsPerDim} bits/dim on the ${a.split} images (${weights}); its weights overflow — use an earlier checkpoint${a.raw ? '' : ', or try --raw'}`);
  }
  const data = describeData(config.dataset);
  if (a.json) {
    out(JSON.stringify({ split: a.split, weights, step: ckpt.meta.step, data: { name: data.name, levels: data.levels, binarisation: data.binarisation }, measures: model.likelihood.measures, ...e }));
  } else {
    out(`data: ${data.text}`);
    if (model.likelihood.measures === 'tokens') {
      // A palette head's likelihood is of its token sequence: per token, not per 8-bit dimension.
      const perToken = e.bitsPerDim * Math.LN2;
      out(`${a.split}: ${perToken.toFixed(4)} ± ${(e.stderr * Math.LN2).toFixed(4)} nats/token (${e.bitsPerDim.toFixed(4)} bits/token) over ${e.n} images (${weights}, step ${ckpt.meta.step}) — the likelihood of the palette's token sequence, not bits/dim of the 8-bit image`);
      return EXIT.ok;
    }
    out(`${a.split}: ${e.bitsPerDim.toFixed(4)} ± ${e.stderr.toFixed(4)} bits/dim over ${e.n} images (${weights}, step ${ckpt.meta.step})`);
    if (model.likelihood.levels === 2) out(`${a.split}: ${e.natsPerImage.toFixed(2)} ± ${e.natsStderr.toFixed(2)} nats/image (negative log-likelihood)`);
  }
  return EXIT.ok;
}

// ---- sample / complete -----------------------------------------------------------------------

export interface SampleArgs extends CheckpointPolicy {
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

function rowProgress(total: number, what: string): (row: number) => void {
  return rowReporter(process.stderr, total, what);
}

export async function sampleCommand(a: SampleArgs): Promise<number> {
  const ckpt = await readCheckpoint(a.checkpoint, a);
  checkModelMemory((ckpt.meta.config as unknown as RunConfig).model, 'sample', a.n, `sampling --n ${a.n}`);
  const model = modelFromCheckpoint(ckpt, { useEma: !a.raw });
  const dir = outDirFor(a.checkpoint, a.out);
  const stem = join(dir, `samples-seed${a.seed}${a.temperature !== 1 ? `-t${a.temperature}` : ''}${a.label !== undefined ? `-label${a.label}` : ''}`);
  refuseExisting([`${stem}.png`, `${stem}.npy`], a.force);
  await ensureDir(dir);
  const started = performance.now();
  const images = model.sample({ n: a.n, seed: a.seed, temperature: a.temperature, labels: a.label ?? null, onRow: rowProgress(model.config.height, 'sampling') });
  await writeOutputs([[`${stem}.png`, imageGridPng(images, { levels: model.likelihood.levels })], [`${stem}.npy`, encodeNpyUint8(images)]], a.force);
  out(`${a.n} samples in ${formatDuration((performance.now() - started) / 1000)}: ${stem}.png, ${stem}.npy`);
  return EXIT.ok;
}

export interface CompleteArgs extends CheckpointPolicy {
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
  const ckpt = await readCheckpoint(a.checkpoint, a);
  const config = ckpt.meta.config as unknown as RunConfig;
  checkModelMemory(config.model, 'sample', a.limit * a.samples, `completing up to --limit ${a.limit} images × --samples ${a.samples}`);
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
  await writeOutputs([[`${stem}.png`, completionGridPng(model, grid, a.samples, a.keepRows)], [`${stem}.npy`, encodeNpyUint8(completions)]], a.force);
  out(`${images.shape[0]} images × ${a.samples} completions in ${formatDuration((performance.now() - started) / 1000)}: ${stem}.png (original | occluded | completions), ${stem}.npy`);
  return EXIT.ok;
}

// ---- info ----------------------------------------------------------------------------------

export interface InfoArgs extends CheckpointPolicy {
  checkpoint?: string;
  preset?: string;
  config?: string;
  overrides: string[];
  json: boolean;
}

/** Building a model to measure its receptive field is allowed up to this much memory. */
const MEASURE_LIMIT = 512 * 2 ** 20;

/**
 * Parameters and FLOPs from the family's analytic cost, without allocating weights; the receptive
 * field (and the FLOPs spent on masked taps) measured on a built model when that is small. A
 * family without a cost is measured, when a generic bound says the model is small.
 */
export async function infoCommand(a: InfoArgs): Promise<number> {
  const given = [a.checkpoint, a.preset, a.config].filter((x) => x !== undefined).length;
  if (given !== 1) throw new CliError('give a CHECKPOINT, or --preset NAME, or --config FILE', EXIT.usage);
  let config: RunConfig['model'];
  let setting: PrecisionSetting;
  let ckpt: Checkpoint | null = null;
  let source: string;
  if (a.checkpoint !== undefined) {
    ckpt = await readCheckpoint(a.checkpoint, a);
    config = (ckpt.meta.config as unknown as RunConfig).model;
    setting = (ckpt.meta.config as unknown as Partial<RunConfig>).train?.precision ?? 'auto';
    source = `checkpoint ${a.checkpoint} (step ${ckpt.meta.step})`;
  } else {
    const raw = a.preset !== undefined ? presetRaw(a.preset) : configFileRaw(a.config!);
    const resolved = resolveRunConfig(applyOverrides(raw, a.overrides));
    config = resolved.model;
    setting = resolved.train.precision;
    source = a.preset !== undefined ? `preset ${a.preset}: ${loadPreset(a.preset).description}` : `config ${a.config}`;
  }
  const family = familyOf(config.kind)!;
  const cost = costOfConfig(config);
  const small = cost !== null ? memoryNeeded(cost, 'eval', 1) <= MEASURE_LIMIT : genericSize(config) <= MEASURE_LIMIT;
  const measured = small ? modelInfo(ckpt ? modelFromCheckpoint(ckpt) : createModel(config)) : null;
  const info = {
    parameters: cost?.parameters ?? measured!.parameters,
    flops: cost?.flops ?? measured!.flops,
    maskedFlops: measured?.maskedFlops ?? null,
    maskedFormulationFlops: cost && family.maskedFormulationFlops ? family.maskedFormulationFlops(config as never, cost.convs) : measured?.maskedFormulationFlops ?? null,
    convolutions: cost?.convs.length ?? measured!.convs.length,
    receptiveField: measured?.receptiveField ?? null,
    training: { precisionSetting: setting, ...choosePrecision(setting), isa: cpuCapabilities()?.isa ?? null },
  };
  if (cost === null && measured === null) {
    throw new CliError(`${source}: ${config.kind} has no analytic cost and the model is too large to build for counting; make it smaller`);
  }
  if (a.json) {
    out(JSON.stringify(info));
    return EXIT.ok;
  }
  const g = (f: number) => `${(f / 1e9).toFixed(3)} GFLOP`;
  const rf = info.receptiveField;
  out(source);
  out(`model: ${describeModel(config)}`);
  out(`parameters: ${info.parameters.toLocaleString('en')}${cost ? ` (${formatBytes(4 * info.parameters)} of float32 weights)` : ''}`);
  if (rf) out(`receptive field of the last pixel: ${rf.pixels} of the ${rf.of} pixels before it (${((100 * rf.pixels) / rf.of).toFixed(1)}%), ${rf.measuredBy === 'structure' ? 'followed through the attention pattern' : `measured from ${rf.measuredBy}`}`);
  else if (measured === null) out(`receptive field of the last pixel: not measured (building this model for it would need about ${formatBytes(memoryNeeded(cost!, 'eval', 1))})`);
  else out('receptive field of the last pixel: not measured (a discrete-input network on more than 256 pixels)');
  const recurrent = family.recurrentFlops ? ` and the recurrences' state-to-state products (${g(family.recurrentFlops(config as never))})` : '';
  out(`FLOPs per image: ${g(info.flops)} computed (2 × multiply-adds of ${info.convolutions > 0 ? `${info.convolutions} convolutions${recurrent}` : 'the linear layers and attention products'})`);
  out(`likelihood: ${createLikelihood(config.likelihood, config.channels).measures === 'tokens' ? `of the palette's token sequence (nats per token; not bits/dim of the 8-bit image)` : 'of the 8-bit image (bits/dim comparable across arpix models)'}`);
  if (info.maskedFlops !== null && info.maskedFlops > 0) out(`  of which ${g(info.maskedFlops)} (${((100 * info.maskedFlops) / info.flops).toFixed(1)}%) multiply weights a mask always zeroes`);
  if (info.maskedFormulationFlops !== null) {
    const m = info.maskedFormulationFlops;
    const k = (config as unknown as { kernelSize: number }).kernelSize;
    out(`  the masked ${k}×${k} formulation of this network would compute ${g(m)}: the ${((100 * (m - info.flops)) / m).toFixed(1)}% of its taps that masks zero are skipped here by construction`);
  }
  out(`training precision here: ${info.training.precision} — ${info.training.reason}`);
  return EXIT.ok;
}

/** A generic estimate of a model's bytes without a family cost: image pixels × its widest numeric field × 64 layers' worth of floats. */
function genericSize(config: RunConfig['model']): number {
  const numbers = Object.values(config).flatMap((v) => (Array.isArray(v) ? v : [v])).filter((v): v is number => typeof v === 'number');
  const widest = Math.max(1, ...numbers.filter((v) => v !== config.height && v !== config.width));
  return config.height * config.width * widest * 64 * 4;
}

// ---- verify --------------------------------------------------------------------------------

/**
 * Runs on a checkpoint exactly the check every command that loads one runs (readCheckpoint):
 * exit 0 when each of them can use it; otherwise the line any of them would refuse it with, exit 1.
 */
export async function verifyCommand(path: string, json: boolean, policy: CheckpointPolicy = {}): Promise<number> {
  const c = await readCheckpoint(path, policy);
  const tensors = [c.model, c.optimizer, c.ema].reduce((n, g) => n + Object.keys(g).length, 0);
  const bytes = [c.model, c.optimizer, c.ema].reduce((n, g) => n + Object.values(g).reduce((a, t) => a + t.data.byteLength, 0), 0);
  if (json) {
    out(JSON.stringify({ file: c.file, integrity: c.integrity, step: c.meta.step, kind: c.meta.modelKind, tensors, bytes }));
  } else {
    const how = c.integrity === 'verified' ? 'SHA-256 of tensors and metadata verified' : 'no checksums to verify (--allow-unverified)';
    out(`${c.file}: ok — ${how}; weights, average, optimiser state and run config fit its model; ${c.meta.modelKind} at step ${c.meta.step}, ${tensors} tensors, ${(bytes / 2 ** 20).toFixed(1)} MiB`);
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
  await writeOut(target, png, outFile === undefined || force);
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
  out('');
  out(`next: watch it in the browser: arpix serve ${dirname(runDir)}   (in a checkout: npx arpix serve ${dirname(runDir)})`);
  return EXIT.ok;
}

export { ConfigError };
