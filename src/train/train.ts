// The training loop as a library: train(config, {runDir, resume, onProgress, signal}).
//
// A run folder holds config.json, metrics.jsonl and checkpoint.safetensors (plus samples/ when
// train.sampleEvery is set). The checkpoint carries everything the loop's future depends on —
// weights, optimiser moments, the schedule's step, the average, the loader's position and the
// dropout generator's state — so a run resumed from it takes exactly the steps the uninterrupted
// run would have taken, bit for bit.

import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { mkdir, rm } from 'node:fs/promises';
import { totalmem } from 'node:os';
import { join } from 'node:path';
import { ArgumentError, ArpixError, FormatError } from '../errors.js';
import { ConfigError } from '../config.js';
import { BatchLoader } from '../data/index.js';
import { checkModelConfig, configDifferences, saveCheckpoint, CHECKPOINT_FORMAT, CHECKPOINT_VERSION, type Checkpoint } from '../io/checkpoint.js';
import { writeFileAtomic, writeFileExclusive } from '../io/atomic.js';
import { checkOutputFolder, formatBytes, makeFolder } from '../io/files.js';
import { lockFolder, type FolderLock } from '../io/lock.js';
import { checkModelMemory, createModel } from '../models/index.js';
import type { AutoregressiveModel } from '../models/core/model.js';
import { Adam, AdamW, EMA, LRScheduler, RMSProp, SGD, clipGradNorm, constant, cosineDecay, exponentialDecay, noam, withWarmup, type Optimizer, type BaseOptions, type Schedule, type OptimizerJSONState } from '../optim/index.js';
import { Conv2d, ConvTranspose2d } from '../nn/index.js';
import { getDefaultGenerator, manualSeed } from '../tensor/random.js';
import type { Tensor } from '../tensor/tensor.js';
import type { RunConfig, TrainConfig } from './config.js';
import { checkCheckpointTensors, loadRunCheckpoint, loadingFrom } from './checkpoint.js';
import { checkDataFits, loadTrainData, type RunData } from './data.js';
import { adoptPalette, fitConfigPalette, needsPalette } from './palette.js';
import { EvaluationAborted, evaluate, type Evaluation } from './evaluate.js';
import { imageGridPng } from './images.js';
import { MetricsLog, truncateMetrics } from './metrics.js';

export const CHECKPOINT_FILE = 'checkpoint.safetensors';
export const CONFIG_FILE = 'config.json';
export const METRICS_FILE = 'metrics.jsonl';

/** The arpix version, written into checkpoints. */
export const ARPIX_VERSION: string = (JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as { version: string }).version;

/** A run that cannot start or continue; the message says what to do. */
export class TrainError extends ArpixError {}

/** Train keys a resumed run may change: when to stop and how often to report. */
export const RESUMABLE_KEYS = ['steps', 'epochs', 'minutes', 'validateEvery', 'checkpointEvery', 'sampleEvery', 'logEvery'] as const;

export interface Progress {
  step: number;
  /** The step the run stops at, when it is bounded by steps or epochs. */
  totalSteps: number | null;
  epoch: number;
  /** Training loss (bits/dim) smoothed over recent steps. */
  loss: number;
  /** The latest validation bits/dim, or null before the first validation. */
  validation: number | null;
  imagesPerSec: number;
  /** Seconds left by the nearest bound (steps, epochs or minutes), or null when unknown. */
  etaSeconds: number | null;
  lr: number;
  seconds: number;
}

export type TrainEvent =
  | { kind: 'start'; step: number; resumed: boolean; parameters: number; trainImages: number; validationImages: number }
  | { kind: 'validation'; step: number; evaluation: Evaluation; ema: boolean }
  | { kind: 'checkpoint'; step: number; path: string }
  | { kind: 'samples'; step: number; path: string }
  | { kind: 'palette'; k: number; inertia: number; seconds: number };

export interface TrainOptions {
  runDir: string;
  /** Continue from runDir's checkpoint. */
  resume?: boolean;
  onProgress?: (p: Progress) => void;
  onEvent?: (e: TrainEvent) => void;
  /** Aborting finishes the current step, writes a checkpoint and returns 'interrupted'. */
  signal?: AbortSignal;
  /** Data to train on instead of loading the config's dataset (tests, benchmarks). */
  data?: RunData;
  /** Start a new run over the config.json and metrics.jsonl an earlier run without a checkpoint left. */
  force?: boolean;
}

export interface TrainResult {
  status: 'done' | 'interrupted' | 'diverged';
  step: number;
  epoch: number;
  /** The last checkpoint written (for 'diverged', the last good one), or null. */
  checkpoint: string | null;
  validation: Evaluation | null;
  imagesSeen: number;
  seconds: number;
  /** Why a diverged run stopped, or that a resumed run had already finished (nothing was written). */
  message?: string;
  model: AutoregressiveModel;
  ema: EMA | null;
}

function makeOptimizer(model: AutoregressiveModel, t: TrainConfig): Optimizer<BaseOptions> {
  const params = model.parameters();
  const betas = [t.betas[0]!, t.betas[1]!] as const;
  switch (t.optimizer) {
    case 'adam': return new Adam(params, { lr: t.lr, betas, eps: t.eps, weightDecay: t.weightDecay });
    case 'adamw': return new AdamW(params, { lr: t.lr, betas, eps: t.eps, weightDecay: t.weightDecay });
    case 'sgd': return new SGD(params, { lr: t.lr, momentum: t.momentum, weightDecay: t.weightDecay });
    case 'rmsprop': return new RMSProp(params, { lr: t.lr, alpha: t.alpha, eps: t.eps, momentum: t.momentum, weightDecay: t.weightDecay });
  }
}

function makeSchedule(t: TrainConfig): Schedule {
  const s = t.schedule;
  if (s.decay === 'noam') return noam(s.warmup);
  const after = s.decay === 'exponential' ? exponentialDecay(s.gamma)
    : s.decay === 'cosine' ? cosineDecay(t.steps - s.warmup, s.minFactor)
      : constant();
  return s.warmup > 0 ? withWarmup(s.warmup, after) : after;
}

/**
 * Refuses a batch whose activations alone cannot fit in this machine's memory, before the first
 * step tries (and the kernel's OOM killer ends the process without a word). The estimate is a
 * lower bound — every convolution's output at full resolution, kept for backward, plus its
 * gradient, in float32 — so a batch that fits is never refused.
 */
function checkBatchFits(model: AutoregressiveModel, batchSize: number): void {
  const { height, width } = model.config;
  let channels = 0;
  for (const [, m] of model.namedModules()) if (m instanceof Conv2d || m instanceof ConvTranspose2d) channels += m.outChannels;
  const perImage = height * width * channels * 4 * 2;
  const need = batchSize * perImage;
  const have = Math.min(totalmem(), process.constrainedMemory?.() || Infinity);
  if (need > have) {
    const fits = Math.max(1, Math.floor(have / perImage / 2));
    throw new TrainError(`train.batchSize ${batchSize} needs at least ${formatBytes(need)} for the activations of one step, more than this machine's ${formatBytes(have)}; use a batch of at most about ${fits}`);
  }
}

/** Removes temporary files a killed write may have left (`.name.pid.rand.tmp`). */
async function removeStaleTemps(dir: string): Promise<void> {
  for (const d of [dir, join(dir, 'samples')]) {
    if (!existsSync(d)) continue;
    for (const f of readdirSync(d)) if (f.startsWith('.') && f.endsWith('.tmp')) await rm(join(d, f), { force: true });
  }
}

/** Checks that a resumed run's config differs from its checkpoint's only where that is allowed. */
function checkResumeConfig(file: string, c: Checkpoint, config: RunConfig): void {
  checkModelConfig(file, c, config.model as unknown as Record<string, unknown>);
  const saved = c.meta.config as unknown as RunConfig;
  const strip = (t: TrainConfig) => Object.fromEntries(Object.entries(t).filter(([k]) => !(RESUMABLE_KEYS as readonly string[]).includes(k)));
  const diffs = [
    ...configDifferences(saved.dataset, config.dataset, 'dataset'),
    ...configDifferences(strip(saved.train), strip(config.train), 'train'),
  ];
  if (diffs.length > 0) {
    throw new TrainError(`cannot resume with a changed config (${diffs.join('; ')}); only train.${RESUMABLE_KEYS.join(', train.')} may change on --resume`);
  }
}

/**
 * The training loop. See the file header for what the run folder holds. The folder is locked
 * while the loop writes it (a second train or resume on it fails at once, naming this process),
 * and nothing in it is written until the config, the checkpoint, the model and the data have all
 * been checked: a run that cannot start leaves the folder as it found it.
 */
export async function train(config: RunConfig, opts: TrainOptions): Promise<TrainResult> {
  const held: { lock: FolderLock | null } = { lock: null };
  try {
    return await trainLocked(config, opts, held);
  } finally {
    held.lock?.release();
  }
}

/** Files a new run writes that an earlier one (killed before its first checkpoint) may have left. */
const RUN_FILES = [CONFIG_FILE, METRICS_FILE];

async function trainLocked(config: RunConfig, opts: TrainOptions, held: { lock: FolderLock | null }): Promise<TrainResult> {
  const t = config.train;
  const dir = opts.runDir;
  const ckptPath = join(dir, CHECKPOINT_FILE);
  const metricsPath = join(dir, METRICS_FILE);
  const newRunChecks = () => {
    if (existsSync(ckptPath)) throw new TrainError(`${dir} already holds a run (${CHECKPOINT_FILE}); continue it with --resume ${dir}, or choose another --out`);
    const left = RUN_FILES.filter((f) => existsSync(join(dir, f)));
    if (left.length > 0 && !opts.force) {
      throw new TrainError(`${dir} already holds ${left.join(' and ')} (a run that wrote no checkpoint, or files of your own); pass --force to replace them, or choose another --out`);
    }
  };

  // ---- the run folder ----------------------------------------------------------------------
  let resumed: Checkpoint | null = null;
  if (opts.resume) {
    if (!existsSync(ckptPath)) throw new TrainError(`${dir} holds no ${CHECKPOINT_FILE} to resume from; start a new run without --resume`);
    // Locked before the checkpoint is read, so a run still writing it cannot change it meanwhile.
    held.lock = lockFolder(dir, 'arpix train --resume');
    resumed = await loadRunCheckpoint(ckptPath);
    adoptPalette(config.model, (resumed.meta.config as unknown as RunConfig).model);
    checkResumeConfig(ckptPath, resumed, config);
    const m = resumed.meta;
    // An imported state dict (arpix import) starts its optimiser, schedule and data afresh; a run
    // trained by an exported train.py carries torch's generators, not arpix's, so dropout restarts
    // from train.seed when the default generator's state is absent.
    const imported = typeof m.extra.importedFrom === 'string';
    const lacking = imported ? null : m.optimizer === null ? 'optimizer state' : m.scheduler === null ? 'scheduler state'
      : m.loader === null ? "the data loader's position" : t.ema > 0 && m.ema === null ? 'EMA state (train.ema is set)' : null;
    if (lacking !== null) throw new FormatError(ckptPath, `has no ${lacking} to resume from; the file is damaged or was not written by train`);
  } else {
    checkOutputFolder(dir);
    newRunChecks();
  }

  // ---- model and data, checked before anything is written ----------------------------------
  // A config that cannot train (data missing, levels that do not fit the likelihood) fails here,
  // leaving no run folder behind.
  checkModelMemory(config.model, 'train', t.batchSize, `training with train.batchSize=${t.batchSize}`);
  let model = createModel(config.model, { seed: t.seed });
  if (resumed) checkCheckpointTensors(resumed, model);
  checkDataFits(model, config.dataset);
  checkBatchFits(model, t.batchSize);
  const data = opts.data ?? await loadTrainData(config.dataset, t.validationSize);
  checkDataFits(model, config.dataset, data.train);
  if (needsPalette(config.model)) {
    const started = performance.now();
    const fit = fitConfigPalette(config.model, data.train, { seed: t.seed });
    opts.onEvent?.({ kind: 'palette', k: fit.palette.k, inertia: fit.inertia, seconds: (performance.now() - started) / 1000 });
    model = createModel(config.model, { seed: t.seed }); // the same weights, now with its palette
  }

  // ---- optimiser, schedule, averaging --------------------------------------------------------
  const optimizer = makeOptimizer(model, t);
  const scheduler = new LRScheduler(optimizer, makeSchedule(t));
  // With warm-up the average follows min(decay, (1 + n) / (10 + n)) after n updates, so a short run
  // is not evaluated on weights still mostly at their random initialisation.
  const ema = t.ema > 0 ? new EMA(model, { decay: t.ema, warmup: true }) : null;
  manualSeed(t.seed); // dropout draws from the default generator
  let step = 0;
  let trainSeconds = 0;
  let imagesSeen = 0;
  let loaderState = { epoch: 0, step: 0 };
  let lastValidation: Evaluation | null = null;
  // Everything of a resumed run's state is loaded (and so checked) before the folder is touched.
  if (resumed) {
    const m = resumed.meta;
    const c = resumed;
    model.loadStateDict(c.model);
    // An imported state dict has no optimiser state: the moments then start at zero.
    if (m.optimizer) loadingFrom(c, 'optimizer state', () => optimizer.loadStateDict({ tensors: c.optimizer, state: m.optimizer as unknown as OptimizerJSONState }));
    if (m.scheduler) loadingFrom(c, 'scheduler state', () => scheduler.loadStateDict(m.scheduler!));
    if (ema && m.ema) loadingFrom(c, 'EMA state', () => ema.loadStateDict({ tensors: c.ema, state: m.ema! }));
    const g = m.generators.default;
    if (g) {
      manualSeed(g.seed);
      getDefaultGenerator().offset = g.offset;
    }
    step = m.step;
    trainSeconds = m.trainSeconds;
    imagesSeen = m.imagesSeen;
    if (m.loader) loaderState = m.loader;
    lastValidation = (m.extra.validation as Evaluation | undefined) ?? null;
  }
  const loader = new BatchLoader(data.train, { batchSize: t.batchSize, seed: t.seed, transform: data.transform, state: loaderState });
  const conditional = model.config.numClasses > 0;
  const params = model.parameters();

  const totalSteps = (() => {
    const bounds: number[] = [];
    if (t.steps > 0) bounds.push(t.steps);
    if (t.epochs > 0) bounds.push(t.epochs * loader.stepsPerEpoch);
    return bounds.length > 0 ? Math.min(...bounds) : null;
  })();
  const budget = t.minutes > 0 ? t.minutes * 60 : Infinity;
  const done = () => (totalSteps !== null && step >= totalSteps) || trainSeconds >= budget;

  // ---- now the folder is written -----------------------------------------------------------
  if (resumed && done()) {
    // A finished run resumed with the same bounds: nothing to do, and nothing is rewritten.
    const bound = totalSteps !== null && step >= totalSteps ? `train.steps ${t.steps}${t.epochs > 0 ? ` / train.epochs ${t.epochs}` : ''}` : `train.minutes ${t.minutes}`;
    return {
      status: 'done', step, epoch: loader.state().epoch, checkpoint: ckptPath, validation: lastValidation, imagesSeen, seconds: trainSeconds, model, ema,
      message: `the run already finished at step ${step} (${bound}); nothing was changed — raise that bound to train further`,
    };
  }
  if (resumed) {
    await removeStaleTemps(dir);
    await writeFileAtomic(join(dir, CONFIG_FILE), JSON.stringify(config, null, 2) + '\n');
    // The records after the checkpoint's step are about to be written again.
    await truncateMetrics(metricsPath, step);
  } else {
    await makeFolder(dir);
    held.lock = lockFolder(dir, 'arpix train');
    newRunChecks(); // again, now that no other arpix can write here
    await removeStaleTemps(dir);
    const configText = JSON.stringify(config, null, 2) + '\n';
    if (opts.force) await writeFileAtomic(join(dir, CONFIG_FILE), configText);
    else await writeFileExclusive(join(dir, CONFIG_FILE), configText);
  }

  let status: TrainResult['status'] = 'done';
  let message: string | undefined;
  const metrics = await MetricsLog.open(metricsPath, { truncate: !resumed });
  let lastCheckpoint: string | null = resumed ? ckptPath : null;
  let checkpointStep = resumed ? step : -1;

  /** Writes a checkpoint, unless a weight, moment or average has gone non-finite: then the run has diverged, and false. */
  const writeCheckpoint = async (): Promise<boolean> => {
    const opt = optimizer.stateDict();
    const e = ema?.stateDict() ?? null;
    const sd = model.stateDict();
    const bad = firstNonFinite({ weight: sd, 'optimizer moment': opt.tensors, 'averaged weight': e?.tensors ?? {} });
    if (bad !== null) {
      status = 'diverged';
      message = `training diverged by step ${step}: ${bad}, so no checkpoint was written`;
      return false;
    }
    await metrics.flush();
    await saveCheckpoint(ckptPath, {
      meta: {
        format: CHECKPOINT_FORMAT, version: CHECKPOINT_VERSION, arpixVersion: ARPIX_VERSION,
        modelKind: model.config.kind, config: config as unknown as Checkpoint['meta']['config'],
        step, epoch: loader.state().epoch, loader: loader.state(),
        generators: { default: getDefaultGenerator().state() },
        optimizer: opt.state as unknown as Record<string, unknown>, scheduler: scheduler.stateDict(), ema: e?.state ?? null,
        trainSeconds, imagesSeen, extra: { validation: lastValidation },
      },
      model: sd, optimizer: opt.tensors, ema: e?.tensors ?? {},
    });
    lastCheckpoint = ckptPath;
    checkpointStep = step;
    opts.onEvent?.({ kind: 'checkpoint', step, path: ckptPath });
    return true;
  };

  /** Validates and logs the result; false when an interrupt stopped it first. */
  const validate = async (): Promise<boolean> => {
    const started = performance.now();
    const run = () => evaluate(model, data.validation, { batchSize: Math.max(t.batchSize, 64), transform: data.transform, signal: opts.signal });
    let result: Evaluation | null;
    try {
      result = ema ? await withAveraged(ema, model, run) : await run();
    } catch (e) {
      // An interrupt stops a validation between batches; the run then ends as after a step.
      if (!(e instanceof EvaluationAborted)) throw e;
      result = null;
    }
    trainSeconds += (performance.now() - started) / 1000;
    if (result === null) return false;
    lastValidation = result;
    metrics.append({ type: 'validation', step, epoch: loader.state().epoch, bitsPerDim: lastValidation.bitsPerDim, stderr: lastValidation.stderr, ema: ema !== null, seconds: trainSeconds });
    opts.onEvent?.({ kind: 'validation', step, evaluation: lastValidation, ema: ema !== null });
    return true;
  };

  const writeSamples = async (): Promise<void> => {
    const started = performance.now();
    const n = 16;
    const labels = conditional ? Array.from({ length: n }, (_, i) => i % model.config.numClasses) : undefined;
    const draw = () => model.sample({ n, seed: 0, labels });
    const images = ema ? ema.withAveraged(model, draw) : draw();
    await mkdir(join(dir, 'samples'), { recursive: true });
    const path = join(dir, 'samples', `step-${String(step).padStart(7, '0')}.png`);
    await writeFileAtomic(path, imageGridPng(images, { levels: model.likelihood.levels }));
    trainSeconds += (performance.now() - started) / 1000;
    opts.onEvent?.({ kind: 'samples', step, path });
  };

  opts.onEvent?.({ kind: 'start', step, resumed: resumed !== null, parameters: model.numParameters(), trainImages: data.train.shape[0], validationImages: data.validation.shape[0] });

  let smoothLoss = NaN;
  let windowLoss = 0;
  let windowNorm = 0;
  let windowSteps = 0;
  let rate = NaN; // images per second, smoothed
  const iter = loader[Symbol.asyncIterator]();
  try {
    model.train();
    while (!done()) {
      // One turn of the event loop per step: a signal's handler runs here, so Ctrl-C takes effect
      // after the step in progress whatever the checkpoint and validation intervals are.
      await new Promise<void>((r) => setImmediate(r));
      if (opts.signal?.aborted) {
        status = 'interrupted';
        break;
      }
      const batch = (await iter.next()).value!;
      const t0 = performance.now();
      const loss = model.loss(batch.images, conditional ? { labels: batch.labels } : {});
      const lossValue = loss.item();
      loss.backward({ releaseGraph: true });
      const norm = clipGradNorm(params, t.gradClip > 0 ? t.gradClip : Infinity);
      if (!Number.isFinite(lossValue) || !Number.isFinite(norm)) {
        // Nothing of this step is applied: the weights and the last checkpoint stay good.
        optimizer.zeroGrad();
        status = 'diverged';
        message = `training diverged at step ${step + 1}: the loss is ${lossValue} and the gradient norm ${norm}`;
        break;
      }
      optimizer.step();
      scheduler.step();
      ema?.update(model);
      optimizer.zeroGrad();
      step++;
      const b = batch.images.shape[0]!;
      imagesSeen += b;
      const dt = (performance.now() - t0) / 1000;
      trainSeconds += dt;
      rate = Number.isNaN(rate) ? b / dt : 0.9 * rate + 0.1 * (b / dt);
      smoothLoss = Number.isNaN(smoothLoss) ? lossValue : 0.95 * smoothLoss + 0.05 * lossValue;
      windowLoss += lossValue;
      windowNorm += norm;
      windowSteps++;
      if (step % t.logEvery === 0) {
        metrics.append({ type: 'train', step, epoch: batch.epoch, loss: windowLoss / windowSteps, lr: optimizer.paramGroups[0]!.lr, gradNorm: windowNorm / windowSteps, imagesPerSec: rate, seconds: trainSeconds });
        windowLoss = windowNorm = windowSteps = 0;
      }
      if (opts.onProgress) {
        const etas: number[] = [];
        if (totalSteps !== null) etas.push(((totalSteps - step) * t.batchSize) / rate);
        if (budget < Infinity) etas.push(budget - trainSeconds);
        opts.onProgress({
          step, totalSteps, epoch: batch.epoch, loss: smoothLoss, validation: lastValidation?.bitsPerDim ?? null, imagesPerSec: rate,
          etaSeconds: etas.length > 0 ? Math.max(0, Math.min(...etas)) : null, lr: optimizer.paramGroups[0]!.lr, seconds: trainSeconds,
        });
      }
      const last = done();
      if (t.validateEvery > 0 && step % t.validateEvery === 0 && !last) await validate();
      if (t.sampleEvery > 0 && step % t.sampleEvery === 0) await writeSamples();
      if (t.checkpointEvery > 0 && step % t.checkpointEvery === 0 && !last && !(await writeCheckpoint())) break;
    }
    if (status === 'done') {
      if (!(await validate())) status = 'interrupted';
      await writeCheckpoint();
    } else if (status === 'interrupted') {
      if (checkpointStep !== step) await writeCheckpoint();
    }
  } finally {
    await metrics.close();
  }
  return { status, step, epoch: loader.state().epoch, checkpoint: lastCheckpoint, validation: lastValidation, imagesSeen, seconds: trainSeconds, message, model, ema };
}

/** The first non-finite value among groups of tensors, as `weight 'name' holds NaN at flat index i`, or null. */
function firstNonFinite(groups: Record<string, Record<string, Tensor>>): string | null {
  for (const [what, tensors] of Object.entries(groups)) {
    for (const [name, t] of Object.entries(tensors)) {
      if (!t.isFloat) continue;
      const d = t.data;
      for (let i = 0; i < d.length; i++) if (!Number.isFinite(d[i]!)) return `${what} '${name}' holds ${d[i]} at flat index ${i}`;
    }
  }
  return null;
}

/** Runs an async fn with the model holding the averaged weights, then swaps them back. */
async function withAveraged<T>(ema: EMA, model: AutoregressiveModel, fn: () => Promise<T>): Promise<T> {
  ema.swap(model);
  try {
    return await fn();
  } finally {
    ema.swap(model);
  }
}

/** The model in a checkpoint, with the averaged weights when there are any and `useEma` is set. */
export function modelFromCheckpoint(c: Checkpoint, opts: { useEma?: boolean } = {}): AutoregressiveModel {
  let model: AutoregressiveModel;
  try {
    model = createModel(c.meta.config.model);
  } catch (e) {
    // A config the ranges let through but the family's constructor refuses is still the file's fault.
    if (e instanceof ArgumentError || e instanceof ConfigError) throw new FormatError(c.file ?? 'the checkpoint', `has a model config its family refuses: ${e.message}`, { cause: e });
    throw e;
  }
  // Names, shapes and dtypes of the weights, the averaged weights and the moments, exactly.
  checkCheckpointTensors(c, model);
  model.loadStateDict(c.model);
  if ((opts.useEma ?? true) && Object.keys(c.ema).length > 0) model.loadStateDict(c.ema, { strict: false });
  model.eval();
  return model;
}

