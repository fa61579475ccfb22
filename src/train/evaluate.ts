// Exact negative log-likelihood of a model on a dataset: every image once, in evaluation mode,
// reported as bits per dimension and nats per image, each with the standard error of its mean
// over images (the spread a reader needs to tell two models apart). Imports no `node:` module:
// the page's trainer (src/web/trainer.ts) measures its held-out images with it.

import type { Dataset } from '../data/dataset.js';
import { evaluationLoader } from '../data/loader.js';
import type { PixelTransform } from '../data/transforms.js';
import { nextTurn } from '../env.js';
import type { AutoregressiveModel } from '../models/core/model.js';
import { noGrad } from '../ops/index.js';

export interface EvaluateOptions {
  batchSize?: number;
  /** The pixel transform the model was trained with (quantise, binarise…); default none. */
  transform?: PixelTransform;
  /** Called after each batch with the images done so far. */
  onBatch?: (done: number, total: number) => void;
  /** Aborting stops the evaluation after the batch in progress, with EvaluationAborted. */
  signal?: AbortSignal;
}

/** An evaluation stopped by its abort signal (an interrupted training run's validation). */
export class EvaluationAborted extends Error {}

export interface Evaluation {
  /** Mean negative log-likelihood in bits per dimension, and its standard error. */
  bitsPerDim: number;
  stderr: number;
  /** Mean negative log-likelihood in nats per image (the usual figure for binarised MNIST). */
  natsPerImage: number;
  natsStderr: number;
  /** Images evaluated. */
  n: number;
}

/** Mean and standard error of the mean (sample standard deviation / √n). */
function meanAndStderr(xs: Float64Array): [number, number] {
  const n = xs.length;
  let sum = 0;
  for (const x of xs) sum += x;
  const mean = sum / n;
  let sq = 0;
  for (const x of xs) sq += (x - mean) ** 2;
  return [mean, n > 1 ? Math.sqrt(sq / (n - 1) / n) : 0];
}

/** Evaluates `model` on every image of `dataset` (the model's mode is restored after). */
export async function evaluate(model: AutoregressiveModel, dataset: Dataset, opts: EvaluateOptions = {}): Promise<Evaluation> {
  const loader = evaluationLoader(dataset, opts.batchSize ?? 64, opts.transform);
  if (loader.levels !== model.likelihood.levels) {
    throw new Error(`evaluate: the data have ${loader.levels} levels but the model ${model.likelihood.levels}; pass the transform the model was trained with`);
  }
  const total = dataset.shape[0];
  const nats = new Float64Array(total);
  const wasTraining = model.training;
  model.eval();
  try {
    let done = 0;
    for (const batch of loader.epochBatches()) {
      const cond = model.config.numClasses > 0 ? { labels: batch.labels } : {};
      const lp = noGrad(() => model.logProb(batch.images, cond)).data;
      for (let i = 0; i < lp.length; i++) nats[done + i] = -lp[i]!;
      done += lp.length;
      opts.onBatch?.(done, total);
      await nextTurn(); // lets a progress bar and signals through
      if (opts.signal?.aborted && done < total) throw new EvaluationAborted(`evaluation stopped after ${done} of ${total} images`);
    }
  } finally {
    if (wasTraining) model.train();
  }
  const [natsPerImage, natsStderr] = meanAndStderr(nats);
  const perDim = model.dims * Math.LN2;
  return { bitsPerDim: natsPerImage / perDim, stderr: natsStderr / perDim, natsPerImage, natsStderr, n: total };
}
