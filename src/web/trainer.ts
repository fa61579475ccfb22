// The page's trainer: a fresh model of a run's config trained on the images an exported page holds
// (train-data.ts), one step at a time through the step `arpix train` takes (src/train/step.ts).
// Everything else a run's start decides is decided as train.ts decides it — the initial weights
// (createModel with train.seed), the batches (the BatchLoader with train.seed), the optimiser, the
// schedule, the clipping and the average — so the page's first steps are the run's first steps on
// the same images, bit for bit (a Node test holds the two together). The page's Web Worker drives
// it (train-worker.ts). Imports no `node:` module.

import type { Dataset } from '../data/dataset.js';
import { BatchLoader } from '../data/loader.js';
import { ArpixError } from '../errors.js';
import { encodeCheckpoint, type CheckpointMeta } from '../io/checkpoint.js';
import type { AutoregressiveModel } from '../models/core/model.js';
import { createModel } from '../models/index.js';
import { manualSeed } from '../tensor/random.js';
import type { Tensor } from '../tensor/tensor.js';
import { checkDataFits } from '../train/data-fit.js';
import { evaluate, type Evaluation } from '../train/evaluate.js';
import type { RunConfig } from '../train/run-config.js';
import { makeStepper, optimisationStep, withAveraged, type Stepper, type StepResult } from '../train/step.js';
import { pageTrainingRefusal } from './train-data.js';

export interface PageTrainingData {
  train: Dataset;
  heldOut: Dataset;
}

export class PageTrainer {
  readonly model: AutoregressiveModel;
  readonly stepper: Stepper;
  readonly loader: BatchLoader;
  /** Steps applied, and the images they took. */
  step = 0;
  imagesSeen = 0;

  /** `batchSize`: the run's train.batchSize unless the page's user chose another. */
  constructor(readonly config: RunConfig, readonly data: PageTrainingData, readonly batchSize = config.train.batchSize) {
    const t = config.train;
    this.model = createModel(config.model, { seed: t.seed });
    const refusal = pageTrainingRefusal({ levels: this.model.likelihood.levels, parameters: this.model.numParameters() });
    if (refusal !== null) throw new ArpixError(`this run cannot train in the page: ${refusal}`);
    checkDataFits(this.model, config.dataset, data.train);
    if (!Number.isInteger(batchSize) || batchSize < 1 || batchSize > data.train.shape[0]) {
      throw new ArpixError(`the batch size must be an integer in 1..${data.train.shape[0]} (the page's training images), got ${batchSize}`);
    }
    this.stepper = makeStepper(this.model, t);
    manualSeed(t.seed); // dropout draws from the default generator, as in train.ts
    this.loader = new BatchLoader(data.train, { batchSize, seed: t.seed, prefetch: 0 });
    this.model.train();
  }

  /** The learning rate of the next step. */
  get lr(): number {
    return this.stepper.optimizer.paramGroups[0]!.lr;
  }

  /** One step on the next batch; when it is not applied (the run diverged), the step count stays. */
  next(): StepResult {
    const batch = this.loader.next();
    const r = optimisationStep(this.stepper, batch, 'fp32');
    if (r.applied) {
      this.step++;
      this.imagesSeen += batch.images.shape[0]!;
    }
    return r;
  }

  /** Bits/dim of the held-out images, with the averaged weights when there are any (as a run validates). */
  heldOut(): Promise<Evaluation> {
    const run = () => evaluate(this.model, this.data.heldOut, { batchSize: Math.max(this.batchSize, 64) });
    return this.stepper.ema ? withAveraged(this.stepper.ema, this.model, run) : run();
  }

  /** The weights sampling uses: the averaged ones when there are any, as the exported page's. */
  samplingWeights(): Record<string, Tensor> {
    const weights = this.model.stateDict();
    return this.stepper.ema ? { ...weights, ...this.stepper.ema.stateDict().tensors } : weights;
  }

  /**
   * The model as it is now, as a checkpoint every reader accepts (the page's sampling workers load
   * it as they load exported weights): `meta` is the exported weights' metadata, which says what
   * the run is; the step, the images and the weights are this trainer's.
   */
  checkpoint(meta: CheckpointMeta, trainSeconds: number): Uint8Array {
    return encodeCheckpoint({
      meta: {
        ...meta, step: this.step, epoch: this.loader.state().epoch, imagesSeen: this.imagesSeen, trainSeconds,
        optimizer: null, scheduler: null, loader: null, ema: null, generators: {},
        extra: { ...meta.extra, importedFrom: 'a fresh model trained in the page', weights: this.stepper.ema ? 'ema' : 'raw' },
      },
      model: this.samplingWeights(), optimizer: {}, ema: {},
    });
  }
}
