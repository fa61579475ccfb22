// One optimisation step, the arithmetic a training run is made of: the model's negative
// log-likelihood in bits/dim on a batch, its gradient, the gradient's norm clipped to
// train.gradClip, the optimiser's step at the schedule's learning rate, and the average's update.
// train.ts's loop and the page's trainer (src/web/trainer.ts) both step through here, so the page
// trains exactly as `arpix train` does. Imports no `node:` module.

import type { AutoregressiveModel } from '../models/core/model.js';
import { EMA, LRScheduler, clipGradNorm, type BaseOptions, type Optimizer } from '../optim/index.js';
import { withPrecision, type ComputePrecision } from '../ops/precision.js';
import type { Tensor } from '../tensor/tensor.js';
import type { TrainConfig } from './config.js';
import { makeOptimizer, makeSchedule } from './optimizers.js';

/** What a step changes: the model, its optimiser and schedule, the average, and the clipping bound. */
export interface Stepper {
  model: AutoregressiveModel;
  params: Tensor[];
  optimizer: Optimizer<BaseOptions>;
  scheduler: LRScheduler;
  ema: EMA | null;
  /** train.gradClip, or Infinity when it is 0 (no clipping). */
  maxGradNorm: number;
}

/** A fresh optimiser, schedule and average for `model`, as train config `t` asks. */
export function makeStepper(model: AutoregressiveModel, t: TrainConfig): Stepper {
  const optimizer = makeOptimizer(model, t);
  return {
    model, params: model.parameters(), optimizer, scheduler: new LRScheduler(optimizer, makeSchedule(t)),
    // With warm-up the average follows min(decay, (1 + n) / (10 + n)) after n updates, so a short run
    // is not evaluated on weights still mostly at their random initialisation.
    ema: t.ema > 0 ? new EMA(model, { decay: t.ema, warmup: true }) : null,
    maxGradNorm: t.gradClip > 0 ? t.gradClip : Infinity,
  };
}

export interface StepResult {
  /** The batch's loss (bits/dim) before the step. */
  loss: number;
  /** The gradient's norm before clipping. */
  gradNorm: number;
  /** False when the loss or the norm was not finite: then nothing of the step was applied. */
  applied: boolean;
}

/** One step on a batch, its products computed in `precision` (the loss, the weights and their gradients stay fp32). */
export function optimisationStep(s: Stepper, batch: { images: Tensor; labels: Tensor | null }, precision: ComputePrecision): StepResult {
  const { model, optimizer } = s;
  const loss = withPrecision(precision, () => {
    const l = model.loss(batch.images, model.config.numClasses > 0 ? { labels: batch.labels } : {});
    const value = l.item();
    l.backward({ releaseGraph: true });
    return value;
  });
  const gradNorm = clipGradNorm(s.params, s.maxGradNorm);
  if (!Number.isFinite(loss) || !Number.isFinite(gradNorm)) {
    // Nothing of this step is applied: the weights (and a run's last checkpoint) stay good.
    optimizer.zeroGrad();
    return { loss, gradNorm, applied: false };
  }
  optimizer.step();
  s.scheduler.step();
  s.ema?.update(model);
  optimizer.zeroGrad();
  return { loss, gradNorm, applied: true };
}

/** What a run says when step `step` (1-based) was not applied. */
export function divergedMessage(step: number, r: StepResult): string {
  return `training diverged at step ${step}: the loss is ${r.loss} and the gradient norm ${r.gradNorm}`;
}

/** Runs an async fn with the model holding the averaged weights, then swaps them back. */
export async function withAveraged<T>(ema: EMA, model: AutoregressiveModel, fn: () => Promise<T>): Promise<T> {
  ema.swap(model);
  try {
    return await fn();
  } finally {
    ema.swap(model);
  }
}
