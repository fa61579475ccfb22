// The training loop as a library: train(config, {runDir, resume, onProgress, signal}).
//
// A run folder holds config.json, metrics.jsonl and checkpoint.safetensors (plus samples/ when
// train.sampleEvery is set). The checkpoint carries everything the loop's future depends on —
// weights, optimiser moments, the schedule's step, the average, the loader's position and the
// dropout generator's state — so a run resumed from it takes exactly the steps the uninterrupted
// run would have taken, bit for bit.

import { existsSync, readdirSync } from 'node:fs';
import { mkdir, rm } from 'node:fs/promises';
import { totalmem } from 'node:os';
import { join } from 'node:path';
import { ArpixError } from '../errors.js';
import { BatchLoader, type Batch, type LoaderState } from '../data/index.js';
import { checkModelConfig, configDifferences, CHECKPOINT_FORMAT, CHECKPOINT_VERSION, type Checkpoint } from '../io/checkpoint.js';
import { saveCheckpoint } from '../io/disk.js';
import { writeFileAtomic, writeFileExclusive } from '../io/atomic.js';
import { imageGridPng } from '../io/images.js';
import { checkOutputFolder, formatBytes, makeFolder } from '../io/files.js';
import { lockFolder, type FolderLock } from '../io/lock.js';
import { checkCheckpointTensors } from '../models/checkpoint.js';
import { checkModelMemory, createModel } from '../models/index.js';
import type { AutoregressiveModel } from '../models/core/model.js';
import type { EMA, LRScheduler, Optimizer, BaseOptions, OptimizerJSONState } from '../optim/index.js';
import { Conv2d, ConvTranspose2d } from '../nn/index.js';
import { getDefaultGenerator, manualSeed } from '../tensor/random.js';
import type { Tensor } from '../tensor/tensor.js';
import type { RunConfig, TrainConfig } from './config.js';
import { loadRunCheckpoint, loadingFrom, type CheckpointPolicy } from './checkpoint.js';
import { divergedMessage, makeStepper, optimisationStep, withAveraged, type Stepper } from './step.js';
import { checkDataFits, loadTrainData, type RunData } from './data.js';
import { adoptPalette, fitConfigPalette, needsPalette } from './palette.js';
import { EvaluationAborted, evaluate, type Evaluation } from './evaluate.js';
import { MetricsLog, truncateMetrics } from './metrics.js';
import { choosePrecision, type PrecisionChoice } from './precision.js';
import { ARPIX_VERSION } from '../version.js';

export const CHECKPOINT_FILE = 'checkpoint.safetensors';
export const CONFIG_FILE = 'config.json';
export const METRICS_FILE = 'metrics.jsonl';

/** The arpix version, written into checkpoints. */
export { ARPIX_VERSION };

/** A run that cannot start or continue; the message says what to do. */
export class TrainError extends ArpixError {}

/** Train keys a resumed run may change: when to stop and how often to report. */
export const RESUMABLE_KEYS = ['steps', 'epochs', 'minutes', 'validateEvery', 'checkpointEvery', 'sampleEvery', 'logEvery', 'precision'] as const;

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
  | {
    kind: 'start'; step: number; resumed: boolean; parameters: number; trainImages: number; validationImages: number;
    /** The products' precision and why (train.precision); on a resumed run that trained in another, which. */
    precision: PrecisionChoice; precisionBefore: string | null;
  }
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
  /** Resume from a checkpoint without SHA-256 sums (--allow-unverified). */
  allowUnverified?: boolean;
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
  checkResumableChanges(c.meta.config as unknown as RunConfig, config, false);
}

/**
 * Refuses a config that differs from a run's saved one outside RESUMABLE_KEYS (the model too, when
 * `withModel`: a run restarted from its config.json has no checkpoint to check the model against).
 */
export function checkResumableChanges(saved: RunConfig, config: RunConfig, withModel: boolean): void {
  const strip = (t: TrainConfig) => Object.fromEntries(Object.entries(t).filter(([k]) => !(RESUMABLE_KEYS as readonly string[]).includes(k)));
  const diffs = [
    ...(withModel ? configDifferences(saved.model, config.model, 'model') : []),
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

/** The run's phases in order: everything is checked before the first one that writes. */
async function trainLocked(config: RunConfig, opts: TrainOptions, held: { lock: FolderLock | null }): Promise<TrainResult> {
  const resumed = opts.resume ? await openResumed(config, opts.runDir, held, opts) : null;
  if (!resumed) checkNewRun(opts.runDir, opts.force);
  const { model, data } = await prepare(config, opts, resumed);
  const state = trainingState(config, model, data, resumed);
  if (resumed && isDone(state)) return alreadyFinished(config.train, state, join(opts.runDir, CHECKPOINT_FILE));
  // Now the folder is written.
  if (resumed) await rewindRunFolder(config, opts.runDir, state.step);
  else await createRunFolder(config, opts, held);
  const run = await begin(config, opts, data, state, resumed !== null);
  try {
    await loop(run);
    await finish(run);
  } finally {
    await run.metrics.close();
  }
  return resultOf(run);
}

// ---- the run folder -------------------------------------------------------------------------

/** Files a new run writes that an earlier one (killed before its first checkpoint) may have left. */
const RUN_FILES = [CONFIG_FILE, METRICS_FILE];

/** Refuses a folder that holds a run, or (unless forced) the files of one that wrote no checkpoint. */
function checkNoRunIn(dir: string, force: boolean | undefined): void {
  if (existsSync(join(dir, CHECKPOINT_FILE))) throw new TrainError(`${dir} already holds a run (${CHECKPOINT_FILE}); continue it with --resume ${dir}, or choose another --out`);
  const left = RUN_FILES.filter((f) => existsSync(join(dir, f)));
  if (left.length > 0 && !force) {
    throw new TrainError(`${dir} already holds ${left.join(' and ')} (a run that wrote no checkpoint, or files of your own); start that run again with --resume ${dir}, pass --force to replace them, or choose another --out`);
  }
}

function checkNewRun(dir: string, force: boolean | undefined): void {
  checkOutputFolder(dir);
  checkNoRunIn(dir, force);
}

/** A resumed run's checkpoint, read under the folder's lock and checked against the config. */
async function openResumed(config: RunConfig, dir: string, held: { lock: FolderLock | null }, policy: CheckpointPolicy): Promise<Checkpoint> {
  const ckptPath = join(dir, CHECKPOINT_FILE);
  if (!existsSync(ckptPath)) throw new TrainError(`${dir} holds no ${CHECKPOINT_FILE} to resume from; start a new run without --resume`);
  // Locked before the checkpoint is read, so a run still writing it cannot change it meanwhile.
  held.lock = lockFolder(dir, 'arpix train --resume');
  // Checked as every reader checks it, the training state a resume needs included (validateCheckpoint).
  const resumed = await loadRunCheckpoint(ckptPath, policy);
  adoptPalette(config.model, (resumed.meta.config as unknown as RunConfig).model);
  checkResumeConfig(ckptPath, resumed, config);
  // A run trained by an exported train.py carries torch's generators, not arpix's, so dropout
  // restarts from train.seed when the default generator's state is absent.
  return resumed;
}

/** A resumed run's folder, brought back to its checkpoint: the config rewritten, later metrics dropped. */
async function rewindRunFolder(config: RunConfig, dir: string, step: number): Promise<void> {
  await removeStaleTemps(dir);
  await writeFileAtomic(join(dir, CONFIG_FILE), JSON.stringify(config, null, 2) + '\n');
  // The records after the checkpoint's step are about to be written again.
  await truncateMetrics(join(dir, METRICS_FILE), step);
}

/** A new run's folder, locked, with its config. */
async function createRunFolder(config: RunConfig, opts: TrainOptions, held: { lock: FolderLock | null }): Promise<void> {
  const dir = opts.runDir;
  await makeFolder(dir);
  held.lock = lockFolder(dir, 'arpix train');
  checkNoRunIn(dir, opts.force); // again, now that no other arpix can write here
  await removeStaleTemps(dir);
  const configText = JSON.stringify(config, null, 2) + '\n';
  if (opts.force) await writeFileAtomic(join(dir, CONFIG_FILE), configText);
  else await writeFileExclusive(join(dir, CONFIG_FILE), configText);
}

// ---- model, data and the state the loop carries ---------------------------------------------

/**
 * The model and its data, checked before anything is written: a config that cannot train (data
 * missing, levels that do not fit the likelihood) fails here, leaving no run folder behind.
 */
async function prepare(config: RunConfig, opts: TrainOptions, resumed: Checkpoint | null): Promise<{ model: AutoregressiveModel; data: RunData }> {
  const t = config.train;
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
  return { model, data };
}

/**
 * What the loop carries from step to step — a checkpoint saves it, a resume restores it — and its
 * bounds: the stepper (model, optimiser, schedule, average), the loader, and where the run stands.
 */
interface TrainingState extends Stepper {
  loader: BatchLoader;
  step: number;
  /** Seconds spent training, validating and sampling, over every session of the run. */
  trainSeconds: number;
  imagesSeen: number;
  lastValidation: Evaluation | null;
  /** The reported loss and speed, with the log window a checkpoint carries. */
  stats: StepStats;
  /** The step the run stops at when train.steps or train.epochs bound it, else null. */
  totalSteps: number | null;
  /** train.minutes in seconds, or Infinity. */
  budget: number;
  /** What the products compute in (train.precision resolved on this machine). */
  precision: PrecisionChoice;
  /** The precision a resumed run's checkpoint was trained in, when it is not this one (else null). */
  precisionBefore: string | null;
}

/** How far a run has come, besides its weights and its optimiser's state. */
interface RunPosition {
  step: number;
  trainSeconds: number;
  imagesSeen: number;
  loader: LoaderState;
  lastValidation: Evaluation | null;
  /** The steps since the last metrics record, whose mean loss and norm the next record gives. */
  logWindow: LogWindow;
}

/** Sums of the steps since the last train record of metrics.jsonl; a checkpoint carries them (extra.logWindow). */
interface LogWindow {
  loss: number;
  gradNorm: number;
  steps: number;
}

const EMPTY_WINDOW: LogWindow = { loss: 0, gradNorm: 0, steps: 0 };

/** A checkpoint's log window; an older checkpoint has none, and its first record averages the resumed steps only. */
function logWindowOf(v: unknown): LogWindow {
  const w = v as Partial<LogWindow> | undefined;
  const ok = typeof w === 'object' && w !== null && Number.isFinite(w.loss) && Number.isFinite(w.gradNorm) && Number.isInteger(w.steps) && w.steps! >= 0;
  return ok ? { loss: w.loss!, gradNorm: w.gradNorm!, steps: w.steps! } : { ...EMPTY_WINDOW };
}

/** The optimiser, schedule, average and loader: fresh, or as a resumed run's checkpoint left them. */
function trainingState(config: RunConfig, model: AutoregressiveModel, data: RunData, resumed: Checkpoint | null): TrainingState {
  const t = config.train;
  const stepper = makeStepper(model, t);
  manualSeed(t.seed); // dropout draws from the default generator
  // Everything of a resumed run's state is loaded (and so checked) before the folder is touched.
  const at: RunPosition = resumed ? restore(resumed, model, stepper.optimizer, stepper.scheduler, stepper.ema)
    : { step: 0, trainSeconds: 0, imagesSeen: 0, loader: { epoch: 0, step: 0 }, lastValidation: null, logWindow: { ...EMPTY_WINDOW } };
  const loader = new BatchLoader(data.train, { batchSize: t.batchSize, seed: t.seed, transform: data.transform, state: at.loader });
  const bounds: number[] = [];
  if (t.steps > 0) bounds.push(t.steps);
  if (t.epochs > 0) bounds.push(t.epochs * loader.stepsPerEpoch);
  const precision = choosePrecision(t.precision);
  const before = resumed?.meta.extra.precision;
  return {
    precision, precisionBefore: typeof before === 'string' && before !== precision.precision ? before : null,
    ...stepper, loader,
    step: at.step, trainSeconds: at.trainSeconds, imagesSeen: at.imagesSeen, lastValidation: at.lastValidation,
    stats: new StepStats(at.logWindow),
    totalSteps: bounds.length > 0 ? Math.min(...bounds) : null,
    budget: t.minutes > 0 ? t.minutes * 60 : Infinity,
  };
}

/** Loads a checkpoint's weights, optimiser, schedule, average and dropout generator; returns its position. */
function restore(c: Checkpoint, model: AutoregressiveModel, optimizer: Optimizer<BaseOptions>, scheduler: LRScheduler, ema: EMA | null): RunPosition {
  const m = c.meta;
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
  return {
    step: m.step, trainSeconds: m.trainSeconds, imagesSeen: m.imagesSeen, loader: m.loader ?? { epoch: 0, step: 0 },
    lastValidation: (m.extra.validation as Evaluation | undefined) ?? null,
    logWindow: logWindowOf(m.extra.logWindow),
  };
}

function isDone(s: TrainingState): boolean {
  return (s.totalSteps !== null && s.step >= s.totalSteps) || s.trainSeconds >= s.budget;
}

/** A finished run resumed with the same bounds: nothing to do, and nothing is rewritten. */
function alreadyFinished(t: TrainConfig, s: TrainingState, ckptPath: string): TrainResult {
  const bound = s.totalSteps !== null && s.step >= s.totalSteps ? `train.steps ${t.steps}${t.epochs > 0 ? ` / train.epochs ${t.epochs}` : ''}` : `train.minutes ${t.minutes}`;
  return {
    status: 'done', step: s.step, epoch: s.loader.state().epoch, checkpoint: ckptPath, validation: s.lastValidation, imagesSeen: s.imagesSeen, seconds: s.trainSeconds, model: s.model, ema: s.ema,
    message: `the run already finished at step ${s.step} (${bound}); nothing was changed — raise that bound to train further`,
  };
}

// ---- the loop -------------------------------------------------------------------------------

/** A run under way: its state, where it writes, and how it is going. */
interface Run extends TrainingState {
  config: RunConfig;
  opts: TrainOptions;
  data: RunData;
  ckptPath: string;
  metrics: MetricsLog;
  status: TrainResult['status'];
  message: string | undefined;
  /** The last checkpoint written (or resumed from), and its step (-1: none yet). */
  lastCheckpoint: string | null;
  checkpointStep: number;
}

/** Opens the metrics log and announces the start. */
async function begin(config: RunConfig, opts: TrainOptions, data: RunData, state: TrainingState, resumed: boolean): Promise<Run> {
  const ckptPath = join(opts.runDir, CHECKPOINT_FILE);
  const metrics = await MetricsLog.open(join(opts.runDir, METRICS_FILE), { truncate: !resumed });
  const run: Run = {
    ...state, config, opts, data, ckptPath, metrics, status: 'done', message: undefined,
    lastCheckpoint: resumed ? ckptPath : null, checkpointStep: resumed ? state.step : -1,
  };
  opts.onEvent?.({
    kind: 'start', step: run.step, resumed, parameters: run.model.numParameters(), trainImages: data.train.shape[0], validationImages: data.validation.shape[0],
    precision: run.precision, precisionBefore: run.precisionBefore,
  });
  return run;
}

/** Steps until a bound is reached, an interrupt arrives or the run diverges. */
async function loop(run: Run): Promise<void> {
  const stats = run.stats;
  const iter = run.loader[Symbol.asyncIterator]();
  run.model.train();
  while (!isDone(run)) {
    // One turn of the event loop per step: a signal's handler runs here, so Ctrl-C takes effect
    // after the step in progress whatever the checkpoint and validation intervals are.
    await new Promise<void>((r) => setImmediate(r));
    if (run.opts.signal?.aborted) {
      run.status = 'interrupted';
      break;
    }
    const batch = (await iter.next()).value!;
    if (!trainStep(run, batch, stats)) break;
    report(run, batch.epoch, stats);
    if (!(await periodic(run))) break;
  }
}

/** The loss and speed a run reports: smoothed for progress, averaged over train.logEvery steps for metrics.jsonl. */
class StepStats {
  smoothLoss = NaN;
  /** Images per second, smoothed. */
  rate = NaN;
  windowLoss: number;
  windowNorm: number;
  windowSteps: number;

  /** A resumed run goes on with its checkpoint's window, so its records equal the uninterrupted run's. */
  constructor(window: LogWindow) {
    this.windowLoss = window.loss;
    this.windowNorm = window.gradNorm;
    this.windowSteps = window.steps;
  }

  get window(): LogWindow {
    return { loss: this.windowLoss, gradNorm: this.windowNorm, steps: this.windowSteps };
  }

  add(imagesPerSec: number, loss: number, norm: number): void {
    this.rate = Number.isNaN(this.rate) ? imagesPerSec : 0.9 * this.rate + 0.1 * imagesPerSec;
    this.smoothLoss = Number.isNaN(this.smoothLoss) ? loss : 0.95 * this.smoothLoss + 0.05 * loss;
    this.windowLoss += loss;
    this.windowNorm += norm;
    this.windowSteps++;
  }

  resetWindow(): void {
    this.windowLoss = this.windowNorm = this.windowSteps = 0;
  }
}

/** One optimiser step on a batch; false, with nothing applied, when the loss or the gradient is not finite. */
function trainStep(run: Run, batch: Batch, stats: StepStats): boolean {
  const t0 = performance.now();
  const r = optimisationStep(run, batch, run.precision.precision);
  if (!r.applied) {
    run.status = 'diverged';
    run.message = divergedMessage(run.step + 1, r);
    return false;
  }
  run.step++;
  const b = batch.images.shape[0]!;
  run.imagesSeen += b;
  const dt = (performance.now() - t0) / 1000;
  run.trainSeconds += dt;
  stats.add(b / dt, r.loss, r.gradNorm);
  return true;
}

/** The step's record in metrics.jsonl (every train.logEvery steps) and its progress report. */
function report(run: Run, epoch: number, stats: StepStats): void {
  const t = run.config.train;
  const lr = run.optimizer.paramGroups[0]!.lr;
  if (run.step % t.logEvery === 0) {
    run.metrics.append({ type: 'train', step: run.step, epoch, loss: stats.windowLoss / stats.windowSteps, lr, gradNorm: stats.windowNorm / stats.windowSteps, imagesPerSec: stats.rate, seconds: run.trainSeconds });
    stats.resetWindow();
  }
  if (run.opts.onProgress) {
    const etas: number[] = [];
    if (run.totalSteps !== null) etas.push(((run.totalSteps - run.step) * t.batchSize) / stats.rate);
    if (run.budget < Infinity) etas.push(run.budget - run.trainSeconds);
    run.opts.onProgress({
      step: run.step, totalSteps: run.totalSteps, epoch, loss: stats.smoothLoss, validation: run.lastValidation?.bitsPerDim ?? null, imagesPerSec: stats.rate,
      etaSeconds: etas.length > 0 ? Math.max(0, Math.min(...etas)) : null, lr, seconds: run.trainSeconds,
    });
  }
}

/**
 * The validation, samples and checkpoint due after a step (the last step's validation and
 * checkpoint are finish's); false when the checkpoint found the run diverged.
 */
async function periodic(run: Run): Promise<boolean> {
  const t = run.config.train;
  const step = run.step;
  const last = isDone(run);
  if (t.validateEvery > 0 && step % t.validateEvery === 0 && !last) await validate(run);
  if (t.sampleEvery > 0 && step % t.sampleEvery === 0) await writeSamples(run);
  if (t.checkpointEvery > 0 && step % t.checkpointEvery === 0 && !last) return writeCheckpoint(run);
  return true;
}

/** A run that reached its bound validates and checkpoints; an interrupted one checkpoints unless it just did. */
async function finish(run: Run): Promise<void> {
  if (run.status === 'done') {
    if (!(await validate(run))) run.status = 'interrupted';
    await writeCheckpoint(run);
  } else if (run.status === 'interrupted') {
    if (run.checkpointStep !== run.step) await writeCheckpoint(run);
  }
}

function resultOf(run: Run): TrainResult {
  return {
    status: run.status, step: run.step, epoch: run.loader.state().epoch, checkpoint: run.lastCheckpoint, validation: run.lastValidation,
    imagesSeen: run.imagesSeen, seconds: run.trainSeconds, message: run.message, model: run.model, ema: run.ema,
  };
}

// ---- validation, samples, checkpoints -------------------------------------------------------

/** Validates and logs the result; false when an interrupt stopped it first. */
async function validate(run: Run): Promise<boolean> {
  const { model, ema, data, opts } = run;
  const started = performance.now();
  const evaluateNow = () => evaluate(model, data.validation, { batchSize: Math.max(run.config.train.batchSize, 64), transform: data.transform, signal: opts.signal });
  let result: Evaluation | null;
  try {
    result = ema ? await withAveraged(ema, model, evaluateNow) : await evaluateNow();
  } catch (e) {
    // An interrupt stops a validation between batches; the run then ends as after a step.
    if (!(e instanceof EvaluationAborted)) throw e;
    result = null;
  }
  run.trainSeconds += (performance.now() - started) / 1000;
  if (result === null) return false;
  run.lastValidation = result;
  run.metrics.append({ type: 'validation', step: run.step, epoch: run.loader.state().epoch, bitsPerDim: result.bitsPerDim, stderr: result.stderr, ema: ema !== null, seconds: run.trainSeconds });
  opts.onEvent?.({ kind: 'validation', step: run.step, evaluation: result, ema: ema !== null });
  return true;
}

/** Draws 16 images (labels cycling through the classes) into samples/step-NNNNNNN.png. */
async function writeSamples(run: Run): Promise<void> {
  const { model, ema } = run;
  const started = performance.now();
  const n = 16;
  const labels = model.config.numClasses > 0 ? Array.from({ length: n }, (_, i) => i % model.config.numClasses) : undefined;
  const draw = () => model.sample({ n, seed: 0, labels });
  const images = ema ? ema.withAveraged(model, draw) : draw();
  const dir = join(run.opts.runDir, 'samples');
  await mkdir(dir, { recursive: true });
  const path = join(dir, `step-${String(run.step).padStart(7, '0')}.png`);
  await writeFileAtomic(path, imageGridPng(images, { levels: model.likelihood.levels }));
  run.trainSeconds += (performance.now() - started) / 1000;
  run.opts.onEvent?.({ kind: 'samples', step: run.step, path });
}

/** Writes a checkpoint, unless a weight, moment or average has gone non-finite: then the run has diverged, and false. */
async function writeCheckpoint(run: Run): Promise<boolean> {
  const { model, optimizer, ema, loader, step } = run;
  const opt = optimizer.stateDict();
  const e = ema?.stateDict() ?? null;
  const sd = model.stateDict();
  const bad = firstNonFinite({ weight: sd, 'optimizer moment': opt.tensors, 'averaged weight': e?.tensors ?? {} });
  if (bad !== null) {
    run.status = 'diverged';
    run.message = `training diverged by step ${step}: ${bad}, so no checkpoint was written`;
    return false;
  }
  await run.metrics.flush();
  await saveCheckpoint(run.ckptPath, {
    meta: {
      format: CHECKPOINT_FORMAT, version: CHECKPOINT_VERSION, arpixVersion: ARPIX_VERSION,
      modelKind: model.config.kind, config: run.config as unknown as Checkpoint['meta']['config'],
      step, epoch: loader.state().epoch, loader: loader.state(),
      generators: { default: getDefaultGenerator().state() },
      optimizer: opt.state as unknown as Record<string, unknown>, scheduler: run.scheduler.stateDict(), ema: e?.state ?? null,
      trainSeconds: run.trainSeconds, imagesSeen: run.imagesSeen, extra: { validation: run.lastValidation, precision: run.precision.precision, logWindow: run.stats.window },
    },
    model: sd, optimizer: opt.tensors, ema: e?.tensors ?? {},
  });
  run.lastCheckpoint = run.ckptPath;
  run.checkpointStep = step;
  run.opts.onEvent?.({ kind: 'checkpoint', step, path: run.ckptPath });
  return true;
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
