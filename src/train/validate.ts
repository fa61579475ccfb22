// The one check every reader of a checkpoint runs (validateCheckpoint; see checkpoint.ts for who
// calls it), on a checkpoint already decoded from its bytes. Reads no file, so the page exported
// by `arpix export --web` runs the same check on the weights it fetched.

import { ConfigError } from '../config.js';
import { ArpixError, FormatError } from '../errors.js';
import type { Checkpoint } from '../io/checkpoint.js';
import { modelFromCheckpoint } from '../models/checkpoint.js';
import type { AutoregressiveModel } from '../models/core/model.js';
import { EMA, LRScheduler, type BaseOptions, type Optimizer, type OptimizerJSONState } from '../optim/index.js';
import { checkDataFits } from './data-fit.js';
import { makeOptimizer, makeSchedule } from './optimizers.js';
import { resolveRunConfig, type RunConfig } from './run-config.js';

/**
 * The checkpoint's run config, resolved and range-checked as a config file's would be; a problem
 * is a FormatError naming the file and the field.
 */
export function checkpointRunConfig(c: Checkpoint): RunConfig {
  const file = c.file ?? '<checkpoint>';
  try {
    return resolveRunConfig(c.meta.config);
  } catch (e) {
    if (e instanceof ArpixError) throw new FormatError(file, `has a bad run config in its metadata: ${e.message}`, { cause: e });
    throw e;
  }
}

/** Runs a load step (optimiser, scheduler, average) and names the file when its state is refused. */
export function loadingFrom<T>(c: Checkpoint, what: string, fn: () => T): T {
  try {
    return fn();
  } catch (e) {
    if (e instanceof ArpixError && !(e instanceof FormatError)) {
      throw new FormatError(c.file ?? '<checkpoint>', `has ${what} that does not fit its model: ${e.message}`, { cause: e });
    }
    throw e;
  }
}

export interface CheckpointPolicy {
  /**
   * Use an arpix checkpoint that carries no SHA-256 sums (`--allow-unverified`): written before
   * checkpoints had them, or by a writer that left them out — or edited, which no sum can tell.
   */
  allowUnverified?: boolean;
}

/** An arpix checkpoint without sums, refused unless the user allows it; the message says how. */
export class UnverifiedCheckpointError extends FormatError {
  constructor(file: string) {
    super(file, "has no SHA-256 sums ('arpix.sha256'), so arpix cannot tell it from an edited or damaged file; if you trust where it came from, pass --allow-unverified (and save it again, e.g. with arpix import, to give it sums)");
  }
}

/** A checkpoint that every reader can use, with its run config resolved. */
export type UsableCheckpoint = Checkpoint & { config: RunConfig };

/**
 * Training state a run resumes from: a checkpoint `train` wrote has all of it; an imported state
 * dict (extra.importedFrom) or a new run's first checkpoint (step 0, no state at all, as `arpix
 * export --preset` writes) starts its optimiser, schedule, average and data afresh. Anything
 * between is damage.
 */
function checkTrainingState(c: Checkpoint, config: RunConfig): void {
  const m = c.meta;
  const imported = typeof m.extra.importedFrom === 'string';
  const fresh = m.step === 0 && m.optimizer === null && m.scheduler === null && m.loader === null && m.ema === null;
  if (imported || fresh) return;
  const lacking = m.optimizer === null ? 'optimizer state' : m.scheduler === null ? 'scheduler state'
    : m.loader === null ? "the data loader's position" : config.train.ema > 0 && m.ema === null ? 'EMA state (train.ema is set)' : null;
  if (lacking !== null) throw new FormatError(c.file ?? '<checkpoint>', `has no ${lacking} to resume from; the file is damaged or was not written by train`);
}

/**
 * Every hyper-parameter the config's optimiser keeps per group is in the saved groups (the
 * optimiser itself checks their values). initialLr may be absent: the config's lr is the same.
 */
function checkOptimizerGroups(c: Checkpoint, optimizer: Optimizer<BaseOptions>, kind: string): void {
  const saved = (c.meta.optimizer as { groups: Record<string, unknown>[] }).groups;
  optimizer.paramGroups.forEach((group, gi) => {
    const lacking = Object.keys(group).filter((k) => k !== 'params' && k !== 'initialLr' && saved[gi] !== undefined && !(k in saved[gi]!));
    if (lacking.length > 0) throw new FormatError(c.file ?? '<checkpoint>', `has optimizer state whose group ${gi} lacks ${lacking.map((k) => `'${k}'`).join(', ')}, which its train config's ${kind} optimiser keeps`);
  });
}

/**
 * The one check of a decoded checkpoint (see the file header): its sums were verified (or the user
 * allowed a file without them); its run config resolves within the ranges; the model that config
 * builds takes every weight and averaged weight exactly (names, shapes, dtypes); its dataset fits
 * the model's likelihood; and its optimiser, schedule and average state load into the ones that
 * config makes, as a resumed run loads them. `c.meta.config` becomes the resolved config.
 */
export function validateCheckpoint(c: Checkpoint, policy: CheckpointPolicy = {}): UsableCheckpoint {
  return validatedModel(c, policy).ckpt;
}

/**
 * validateCheckpoint, and the model the check built from it — the one modelFromCheckpoint gives
 * (averaged weights when there are any, eval mode; the optimiser and average loaded beside it only
 * copy from it) — so a reader that wants the model builds it once.
 */
export function validatedModel(c: Checkpoint, policy: CheckpointPolicy = {}): { ckpt: UsableCheckpoint; model: AutoregressiveModel } {
  const file = c.file ?? '<checkpoint>';
  if (c.integrity !== 'verified' && !policy.allowUnverified) throw new UnverifiedCheckpointError(file);
  const config = checkpointRunConfig(c);
  c.meta.config = config as unknown as Checkpoint['meta']['config'];
  const model = modelFromCheckpoint(c);
  try {
    checkDataFits(model, config.dataset);
  } catch (e) {
    if (e instanceof ConfigError) throw new FormatError(file, `has a run config whose data does not fit its model: ${e.message}`, { cause: e });
    throw e;
  }
  checkTrainingState(c, config);
  const m = c.meta;
  const t = config.train;
  // The optimiser, schedule and average its train config makes, as a resumed run makes them.
  let made: { optimizer: Optimizer<BaseOptions>; scheduler: LRScheduler; ema: EMA | null };
  try {
    const optimizer = makeOptimizer(model, t);
    made = { optimizer, scheduler: new LRScheduler(optimizer, makeSchedule(t)), ema: t.ema > 0 ? new EMA(model, { decay: t.ema, warmup: true }) : null };
  } catch (e) {
    if (e instanceof ArpixError) throw new FormatError(file, `has a train config its optimiser, schedule or average refuses: ${e.message}`, { cause: e });
    throw e;
  }
  if (m.optimizer) checkOptimizerGroups(c, made.optimizer, t.optimizer);
  if (m.optimizer) loadingFrom(c, 'optimizer state', () => made.optimizer.loadStateDict({ tensors: c.optimizer, state: m.optimizer as unknown as OptimizerJSONState }));
  if (m.scheduler) loadingFrom(c, 'scheduler state', () => made.scheduler.loadStateDict(m.scheduler!));
  if (made.ema && m.ema) loadingFrom(c, 'EMA state', () => made.ema!.loadStateDict({ tensors: c.ema, state: m.ema! }));
  return { ckpt: Object.assign(c, { config }), model };
}
