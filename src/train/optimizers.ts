// The optimiser and learning-rate schedule a run config asks for. Training builds them to step
// the model; checking a checkpoint builds them to load its optimiser and schedule state into, so
// `arpix verify` refuses exactly the state a resumed run would refuse.

import type { AutoregressiveModel } from '../models/core/model.js';
import { Adam, AdamW, RMSProp, SGD, constant, cosineDecay, exponentialDecay, noam, withWarmup, type BaseOptions, type Optimizer, type Schedule } from '../optim/index.js';
import type { TrainConfig } from './config.js';

export function makeOptimizer(model: AutoregressiveModel, t: TrainConfig): Optimizer<BaseOptions> {
  const params = model.parameters();
  const betas = [t.betas[0]!, t.betas[1]!] as const;
  switch (t.optimizer) {
    case 'adam': return new Adam(params, { lr: t.lr, betas, eps: t.eps, weightDecay: t.weightDecay });
    case 'adamw': return new AdamW(params, { lr: t.lr, betas, eps: t.eps, weightDecay: t.weightDecay });
    case 'sgd': return new SGD(params, { lr: t.lr, momentum: t.momentum, weightDecay: t.weightDecay });
    case 'rmsprop': return new RMSProp(params, { lr: t.lr, alpha: t.alpha, eps: t.eps, momentum: t.momentum, weightDecay: t.weightDecay });
  }
}

export function makeSchedule(t: TrainConfig): Schedule {
  const s = t.schedule;
  if (s.decay === 'noam') return noam(s.warmup);
  const after = s.decay === 'exponential' ? exponentialDecay(s.gamma)
    : s.decay === 'cosine' ? cosineDecay(t.steps - s.warmup, s.minFactor)
      : constant();
  return s.warmup > 0 ? withWarmup(s.warmup, after) : after;
}
