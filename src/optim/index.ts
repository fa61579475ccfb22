// arpix/optim: optimisers, gradient clipping, learning-rate schedules and weight averaging.

export { Optimizer } from './optimizer.js';
export type { BaseOptions, ParamGroup, ParamGroupInput, ParamsInput, ParamState, OptimizerStateDict, OptimizerJSONState } from './optimizer.js';
export { SGD } from './sgd.js';
export type { SGDOptions } from './sgd.js';
export { Adam, AdamW } from './adam.js';
export { RMSProp } from './rmsprop.js';
export type { RMSPropOptions } from './rmsprop.js';
export type { AdamOptions } from './adam.js';
export { clipGradNorm, clipGradValue } from './clip.js';
export type { ClipGradNormOptions } from './clip.js';
export { LRScheduler, constant, linearWarmup, exponentialDecay, cosineDecay, withWarmup, cosineWithWarmup, noam, product } from './schedules.js';
export type { Schedule } from './schedules.js';
export { EMA } from './ema.js';
export type { EMAOptions, EMAStateDict } from './ema.js';
