// Learning-rate schedules: functions from the number of optimiser steps already taken to a factor
// of the initial learning rate, composed with withWarmup / product, and an LRScheduler that
// applies one to an optimiser (PyTorch's LambdaLR).

import { ArgumentError } from '../errors.js';
import type { BaseOptions, Optimizer } from './optimizer.js';

/** step (0, 1, …: optimiser steps taken so far) → factor of the initial learning rate. */
export type Schedule = (step: number) => number;

function checkSteps(op: string, arg: string, n: number, min = 1): void {
  if (!Number.isInteger(n) || n < min) throw new ArgumentError(op, arg, `must be an integer ≥ ${min}, got ${n}`);
}

export const constant = (factor = 1): Schedule => () => factor;

/** Linear warm-up: (step + 1) / steps for the first `steps` steps, then 1. */
export function linearWarmup(steps: number): Schedule {
  checkSteps('linearWarmup', 'steps', steps, 0);
  return (step) => (step < steps ? (step + 1) / steps : 1);
}

/** gamma^⌊step / every⌋. */
export function exponentialDecay(gamma: number, every = 1): Schedule {
  if (!(gamma > 0 && gamma <= 1)) throw new ArgumentError('exponentialDecay', 'gamma', `must be in (0, 1], got ${gamma}`);
  checkSteps('exponentialDecay', 'every', every);
  return (step) => gamma ** Math.floor(step / every);
}

/**
 * Half a cosine from 1 down to `minFactor` over `steps` steps (Loshchilov & Hutter's SGDR without
 * restarts), then `minFactor`.
 */
export function cosineDecay(steps: number, minFactor = 0): Schedule {
  checkSteps('cosineDecay', 'steps', steps);
  if (!(minFactor >= 0 && minFactor <= 1)) throw new ArgumentError('cosineDecay', 'minFactor', `must be in [0, 1], got ${minFactor}`);
  return (step) => {
    const t = Math.min(Math.max(step, 0), steps) / steps;
    return minFactor + (1 - minFactor) * 0.5 * (1 + Math.cos(Math.PI * t));
  };
}

/**
 * The Transformer's "noam" schedule (Vaswani et al. 2017, eq. 3): d^−0.5 · min(n^−0.5, n · w^−1.5)
 * at step n = step + 1, scaled so the peak, at n = w, is 1 — a linear warm-up over `warmupSteps`,
 * then decay as 1/√n. The initial learning rate is then the peak one.
 */
export function noam(warmupSteps: number): Schedule {
  checkSteps('noam', 'warmupSteps', warmupSteps);
  return (step) => {
    const n = step + 1;
    return Math.min(n / warmupSteps, Math.sqrt(warmupSteps / n));
  };
}

/** Linear warm-up for `warmupSteps`, then `after` counted from the end of the warm-up. */
export function withWarmup(warmupSteps: number, after: Schedule): Schedule {
  const warm = linearWarmup(warmupSteps);
  return (step) => (step < warmupSteps ? warm(step) : after(step - warmupSteps));
}

/** Cosine decay over `totalSteps` including a linear warm-up of `warmupSteps`. */
export function cosineWithWarmup(warmupSteps: number, totalSteps: number, minFactor = 0): Schedule {
  checkSteps('cosineWithWarmup', 'totalSteps', totalSteps);
  if (!(warmupSteps < totalSteps)) throw new ArgumentError('cosineWithWarmup', 'warmupSteps', `(${warmupSteps}) must be below totalSteps (${totalSteps})`);
  return withWarmup(warmupSteps, cosineDecay(totalSteps - warmupSteps, minFactor));
}

/** The product of several schedules (e.g. warm-up × exponential decay). */
export function product(...schedules: Schedule[]): Schedule {
  return (step) => schedules.reduce((f, s) => f * s(step), 1);
}

/**
 * Applies a schedule to an optimiser: sets every group's lr to initialLr · schedule(step) now and
 * after each step(). Call `scheduler.step()` right after `optimizer.step()`.
 */
export class LRScheduler {
  /** Optimiser steps taken so far. */
  stepCount: number;

  constructor(readonly optimizer: Optimizer<BaseOptions>, readonly schedule: Schedule, startStep = 0) {
    checkSteps('LRScheduler', 'startStep', startStep, 0);
    this.stepCount = startStep;
    this.apply();
  }

  /** The factor in force now. */
  get factor(): number {
    return this.schedule(this.stepCount);
  }

  step(): void {
    this.stepCount++;
    this.apply();
  }

  private apply(): void {
    const f = this.factor;
    if (!Number.isFinite(f) || f < 0) throw new ArgumentError('LRScheduler', 'schedule', `gave ${f} at step ${this.stepCount}; a factor must be finite and ≥ 0`);
    this.optimizer.setLrFactor(f);
  }

  stateDict(): { stepCount: number } {
    return { stepCount: this.stepCount };
  }

  loadStateDict(s: { stepCount: number }): void {
    checkSteps('LRScheduler.loadStateDict', 'stepCount', s.stepCount, 0);
    this.stepCount = s.stepCount;
    this.apply();
  }
}
