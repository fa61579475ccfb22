// The training loop as a library: train(config, {runDir, resume, onProgress, signal}).
//
// A run folder holds config.json, metrics.jsonl and checkpoint.safetensors (plus samples/ when
// train.sampleEvery is set). The checkpoint carries everything the loop's future depends on —
// weights, optimiser moments, the schedule's step, the average, the loader's position and the
// dropout generator's state — so a run resumed from it takes exactly the steps the uninterrupted
// run would have taken, bit for bit.

import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { mkdir, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { ArpixError } from '../errors.js';
import { BatchLoader } from '../data/index.js';
import { checkModelConfig, configDifferences, loadCheckpoint, saveCheckpoint, CHECKPOINT_FORMAT, CHECKPOINT_VERSION, type Checkpoint } from '../io/checkpoint.js';
import { writeFileAtomic } from '../io/atomic.js';
import { createModel } from '../models/index.js';
import type { AutoregressiveModel } from '../models/model.js';
import { Adam, AdamW, EMA, LRScheduler, RMSProp, SGD, clipGradNorm, constant, cosineDecay, exponentialDecay, withWarmup, type Optimizer, type BaseOptions, type Schedule, type OptimizerJSONState } from '../optim/index.js';
import { getDefaultGenerator, manualSeed } from '../tensor/random.js';
import type { RunConfig, TrainConfig } from './config.js';
import { checkDataFits, loadTrainData, type RunData } from './data.js';
import { evaluate, type Evaluation } from './evaluate.js';
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
  | { kind: 'samples'; step: number; path: string };

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
  /** Why a diverged run stopped. */
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
  const after = s.decay === 'exponential' ? exponentialDecay(s.gamma)
    : s.decay === 'cosine' ? cosineDecay(t.steps - s.warmup, s.minFactor)
      : constant();
  return s.warmup > 0 ? withWarmup(s.warmup, after) : after;
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

/** The training loop. See the file header for what the run folder holds. */
export async function train(config: RunConfig, opts: TrainOptions): Promise<TrainResult> {
  const t = config.train;
  const dir = opts.runDir;
  const ckptPath = join(dir, CHECKPOINT_FILE);
  const metricsPath = join(dir, METRICS_FILE);

  // ---- the run folder ----------------------------------------------------------------------
  let resumed: Checkpoint | null = null;
  if (opts.resume) {
    if (!existsSync(ckptPath)) throw new TrainError(`${dir} holds no ${CHECKPOINT_FILE} to resume from; start a new run without --resume`);
    resumed = await loadCheckpoint(ckptPath);
    checkResumeConfig(ckptPath, resumed, config);
  } else if (existsSync(ckptPath)) {
    throw new TrainError(`${dir} already holds a run (${CHECKPOINT_FILE}); continue it with --resume ${dir}, or choose another --out`);
  }

  // ---- model and data, checked before anything is written ----------------------------------
  // A config that cannot train (data missing, levels that do not fit the likelihood) fails here,
  // leaving no run folder behind.
  const model = createModel(config.model, { seed: t.seed });
  checkDataFits(model, config.dataset);
  const data = opts.data ?? await loadTrainData(config.dataset, t.validationSize);
  checkDataFits(model, config.dataset, data.train);

  await mkdir(dir, { recursive: true });
  await removeStaleTemps(dir);
  await writeFileAtomic(join(dir, CONFIG_FILE), JSON.stringify(config, null, 2) + '\n');

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
  if (resumed) {
    const m = resumed.meta;
    model.loadStateDict(resumed.model);
    // An imported state dict has no optimiser state: the moments then start at zero.
    if (m.optimizer) optimizer.loadStateDict({ tensors: resumed.optimizer, state: m.optimizer as unknown as OptimizerJSONState });
    if (m.scheduler) scheduler.loadStateDict(m.scheduler);
    if (ema && m.ema) ema.loadStateDict({ tensors: resumed.ema, state: m.ema });
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
    await truncateMetrics(metricsPath, step);
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

  const metrics = await MetricsLog.open(metricsPath);
  let lastCheckpoint: string | null = resumed ? ckptPath : null;
  let checkpointStep = resumed ? step : -1;

  const writeCheckpoint = async (): Promise<void> => {
    const opt = optimizer.stateDict();
    const e = ema?.stateDict() ?? null;
    const sd = model.stateDict();
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
  };

  const validate = async (): Promise<void> => {
    const started = performance.now();
    const run = () => evaluate(model, data.validation, { batchSize: Math.max(t.batchSize, 64), transform: data.transform });
    lastValidation = ema ? await withAveraged(ema, model, run) : await run();
    trainSeconds += (performance.now() - started) / 1000;
    metrics.append({ type: 'validation', step, epoch: loader.state().epoch, bitsPerDim: lastValidation.bitsPerDim, stderr: lastValidation.stderr, ema: ema !== null, seconds: trainSeconds });
    opts.onEvent?.({ kind: 'validation', step, evaluation: lastValidation, ema: ema !== null });
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

  const done = () => (totalSteps !== null && step >= totalSteps) || trainSeconds >= budget;
  let status: TrainResult['status'] = 'done';
  let message: string | undefined;
  let smoothLoss = NaN;
  let windowLoss = 0;
  let windowNorm = 0;
  let windowSteps = 0;
  let rate = NaN; // images per second, smoothed
  const iter = loader[Symbol.asyncIterator]();
  try {
    model.train();
    while (!done()) {
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
      if (t.checkpointEvery > 0 && step % t.checkpointEvery === 0 && !last) await writeCheckpoint();
    }
    if (status === 'done') {
      await validate();
      await writeCheckpoint();
    } else if (status === 'interrupted') {
      if (checkpointStep !== step) await writeCheckpoint();
    }
  } finally {
    await metrics.close();
  }
  return { status, step, epoch: loader.state().epoch, checkpoint: lastCheckpoint, validation: lastValidation, imagesSeen, seconds: trainSeconds, message, model, ema };
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
  const model = createModel(c.meta.config.model);
  model.loadStateDict(c.model);
  if ((opts.useEma ?? true) && Object.keys(c.ema).length > 0) {
    const named = new Map(model.namedParameters());
    for (const [name, t] of Object.entries(c.ema)) {
      const p = named.get(name);
      if (!p) throw new TrainError(`the checkpoint's averaged weights name '${name}', which the model lacks`);
      p.data.set(t.data);
      p.bumpVersion();
    }
  }
  model.eval();
  return model;
}

