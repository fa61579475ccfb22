// The linear probe of Image GPT (Chen et al. 2020, section 3.4): run the trained model over the
// training and test images, average-pool one layer's hidden state over positions, and fit a
// multinomial logistic regression on the training features; its test accuracy says how linearly
// the representation separates the classes. The L2 penalty is chosen on a held-out part of the
// training features, and the same regression on raw pixels is the baseline (about 84 % on
// Fashion-MNIST). `bands` > 1 pools each of that many horizontal bands of rows separately and
// concatenates them (bands · d features) — not the paper's probe, which averages every position:
// a small model's d features lose the layout that the raw pixels keep.

import { ArgumentError } from '../../errors.js';
import type { Dataset } from '../../data/index.js';
import { ImageGPT } from './image-gpt.js';
import type { AutoregressiveModel } from '../core/model.js';
import { mean, noGrad } from '../../ops/index.js';
import { Generator } from '../../tensor/random.js';
import { Tensor } from '../../tensor/tensor.js';
import { accuracy, fitLogistic, standardiser, type LogisticData, type LogisticModel } from './logistic.js';

export interface ProbeOptions {
  /** Layers to probe (1..layers: the output of that block; 0: the embeddings), 'all', or the middle one (default). */
  layers?: number[] | 'all';
  /** L2 penalties tried (default 1e-4, 1e-3, 1e-2, 1e-1). */
  l2?: number[];
  /** Fraction of the training features held out to choose the penalty (default 0.1). */
  validationFraction?: number;
  /** Use at most this many training / test images (default: all). */
  trainImages?: number;
  testImages?: number;
  /** Images per forward pass (default 64). */
  batchSize?: number;
  /** L-BFGS iterations per fit (default 200). */
  maxIterations?: number;
  /** Horizontal bands of rows pooled separately and concatenated (default 1: every position averaged, the paper's). */
  bands?: number;
  /** Also fit on raw pixels (default true). */
  rawPixels?: boolean;
  /** Progress: what is being done, with a count when there is one. */
  onProgress?: (what: string, done: number, total: number) => void;
}

export interface ProbeLayerResult {
  /** 0 = embeddings, l = after block l; -1 for raw pixels. */
  layer: number;
  features: number;
  l2: number;
  validationAccuracy: number;
  testAccuracy: number;
  trainAccuracy: number;
}

export interface ProbeResult {
  layers: ProbeLayerResult[];
  /** The same regression on raw pixels (values / 255), or null when not asked. */
  raw: ProbeLayerResult | null;
  /** The layer of highest validation accuracy (chosen without looking at the test set). */
  best: ProbeLayerResult;
  trainImages: number;
  testImages: number;
}

/** The middle block, as the authors recommend for the probe. */
export function middleLayer(layers: number): number {
  return Math.max(1, Math.ceil(layers / 2));
}

function take(ds: Dataset, max: number | undefined): { images: Uint8Array; labels: Int32Array; n: number } {
  if (ds.labels === null) throw new ArgumentError('probe', 'dataset', `${ds.name} (${ds.split}) has no labels; a linear probe needs a labelled dataset`);
  const n = Math.min(ds.shape[0], max ?? Infinity);
  const size = ds.shape[1] * ds.shape[2] * ds.shape[3];
  return { images: ds.images.subarray(0, n * size), labels: ds.labels.subarray(0, n), n };
}

/**
 * Average-pooled hidden states [n · bands · d] of each requested layer: with one band the mean over
 * every position, with k bands the means over rows ⌊b·H/k⌋ … ⌊(b+1)·H/k⌋ − 1 of each band b, side by side.
 */
export function poolFeatures(model: ImageGPT, images: Uint8Array, n: number, layers: readonly number[], batchSize = 64, onBatch?: (done: number) => void, bands = 1): Float32Array[] {
  const { height: h, width: w, channels: c, embedDim: d } = model.config;
  if (!Number.isInteger(bands) || bands < 1 || bands > h) throw new ArgumentError('probe', 'bands', `must be an integer in 1..${h} (the image's rows), got ${bands}`);
  const size = h * w * c;
  const top = Math.max(...layers);
  const out = layers.map(() => new Float32Array(n * bands * d));
  const was = model.training;
  model.eval();
  try {
    for (let start = 0; start < n; start += batchSize) {
      const b = Math.min(batchSize, n - start);
      const batch = new Tensor(Int32Array.from(images.subarray(start * size, (start + b) * size)), [b, h, w, c]);
      noGrad(() => {
        model.checkInputs('probe', batch);
        const states = model.hidden(model.tokens(batch), {}, top);
        layers.forEach((l, i) => {
          if (bands === 1) return out[i]!.set(mean(states[l]!, 1).data, start * d);
          const st = states[l]!.data;
          const positions = states[l]!.shape[1]!; // one per token, in raster order
          const perRow = positions / h;
          for (let k = 0; k < b; k++) {
            for (let band = 0; band < bands; band++) {
              const from = Math.floor((band * h) / bands) * perRow, to = Math.floor(((band + 1) * h) / bands) * perRow;
              const o = ((start + k) * bands + band) * d;
              for (let p = from; p < to; p++) for (let j = 0; j < d; j++) out[i]![o + j] += st[(k * positions + p) * d + j]!;
              for (let j = 0; j < d; j++) out[i]![o + j] /= to - from;
            }
          }
        });
      });
      onBatch?.(start + b);
    }
  } finally {
    if (was) model.train();
  }
  return out;
}

/**
 * Standardises the features on the training set, picks the L2 penalty of best validation accuracy
 * (fits on the rest of the training set), refits on all training features and scores the test set.
 */
export function probeFeatures(train: LogisticData, test: LogisticData, opts: { l2?: number[]; validationFraction?: number; maxIterations?: number; seed?: number } = {}): Omit<ProbeLayerResult, 'layer'> {
  const d = train.features;
  const scale = standardiser(train.x, d);
  const xTrain = scale(train.x);
  const xTest = scale(test.x);
  const n = train.labels.length;
  const nVal = Math.max(1, Math.round(n * (opts.validationFraction ?? 0.1)));
  const order = new Int32Array(n).map((_, i) => i);
  const u = new Float64Array(n);
  new Generator(opts.seed ?? 0).uniform(u);
  order.sort((a, b) => u[a]! - u[b]!);
  const pick = (idx: Int32Array): LogisticData => {
    const x = new Float32Array(idx.length * d);
    idx.forEach((i, r) => x.set(xTrain.subarray(i * d, (i + 1) * d), r * d));
    return { x, labels: Int32Array.from(idx, (i) => train.labels[i]!), features: d, classes: train.classes };
  };
  const fitPart = pick(order.subarray(nVal));
  const valPart = pick(order.subarray(0, nVal));
  let best = { l2: NaN, acc: -1, model: null as LogisticModel | null };
  for (const l2 of opts.l2 ?? [1e-4, 1e-3, 1e-2, 1e-1]) {
    const m = fitLogistic(fitPart, { l2, maxIterations: opts.maxIterations, init: best.model ?? undefined });
    const acc = accuracy(m, valPart.x, valPart.labels);
    if (acc > best.acc) best = { l2, acc, model: m };
  }
  const all = { x: xTrain, labels: train.labels, features: d, classes: train.classes };
  const final = fitLogistic(all, { l2: best.l2, maxIterations: opts.maxIterations, init: best.model! });
  return {
    features: d, l2: best.l2, validationAccuracy: best.acc,
    trainAccuracy: accuracy(final, xTrain, train.labels),
    testAccuracy: accuracy(final, xTest, test.labels),
  };
}

/** The linear probe of an Image GPT model on a labelled dataset's train and test splits. */
export function probe(model: AutoregressiveModel, data: { train: Dataset; test: Dataset }, opts: ProbeOptions = {}): ProbeResult {
  if (!(model instanceof ImageGPT)) throw new ArgumentError('probe', 'model', `is a ${model.config.kind}; the linear probe reads an image-gpt model's hidden states`);
  if (model.config.numClasses > 0 || model.config.conditionDim > 0) throw new ArgumentError('probe', 'model', 'is conditioned on its labels; probe an unconditional model, whose features have not seen the class');
  const depth = model.config.layers;
  const layers = opts.layers === 'all' ? [...Array(depth + 1).keys()] : opts.layers ?? [middleLayer(depth)];
  for (const l of layers) if (!Number.isInteger(l) || l < 0 || l > depth) throw new ArgumentError('probe', 'layer', `must be an integer in 0..${depth} (0: the embeddings; ${depth}: the last block), got ${l}`);
  const train = take(data.train, opts.trainImages);
  const test = take(data.test, opts.testImages);
  const classes = Math.max(data.train.numClasses, data.test.numClasses, 2);
  const progress = opts.onProgress;
  const bands = opts.bands ?? 1;
  const fTrain = poolFeatures(model, train.images, train.n, layers, opts.batchSize, (k) => progress?.('features of the training images', k, train.n), bands);
  const fTest = poolFeatures(model, test.images, test.n, layers, opts.batchSize, (k) => progress?.('features of the test images', k, test.n), bands);
  const d = model.config.embedDim * bands;
  const fitOpts = { l2: opts.l2, validationFraction: opts.validationFraction, maxIterations: opts.maxIterations };
  const results = layers.map((layer, i) => {
    progress?.(`logistic regression on layer ${layer}`, i, layers.length);
    return { layer, ...probeFeatures({ x: fTrain[i]!, labels: train.labels, features: d, classes }, { x: fTest[i]!, labels: test.labels, features: d, classes }, fitOpts) };
  });
  let raw: ProbeLayerResult | null = null;
  if (opts.rawPixels ?? true) {
    progress?.('logistic regression on raw pixels', 0, 1);
    const size = data.train.shape[1] * data.train.shape[2] * data.train.shape[3];
    const pixels = (images: Uint8Array) => Float32Array.from(images, (v) => v / 255);
    raw = { layer: -1, ...probeFeatures({ x: pixels(train.images), labels: train.labels, features: size, classes }, { x: pixels(test.images), labels: test.labels, features: size, classes }, fitOpts) };
  }
  const best = results.reduce((a, b) => (b.validationAccuracy > a.validationAccuracy ? b : a));
  return { layers: results, raw, best, trainImages: train.n, testImages: test.n };
}
