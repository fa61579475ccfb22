// What both samplers take, what they need of a model, and the checks and set-up they share.

import { ArgumentError, ShapeError, fmtShape } from '../../errors.js';
import type { Likelihood } from '../../likelihoods/index.js';
import { Tensor } from '../../tensor/tensor.js';

/** What a network is conditioned on besides the image. */
export interface Condition {
  /** int32 [N] class labels, when the model has numClasses > 0. */
  labels?: Tensor | null;
  /** float [N, conditionDim], when the model has conditionDim > 0. */
  h?: Tensor | null;
}

export interface Stepper {
  /** Called once before the pixels of row y (all earlier rows are final). */
  beginRow(y: number): void;
  /**
   * Likelihood parameters [n · P] of pixel (y, x) given everything sampled so far (for a
   * per-channel head, pass `pass` = the channel about to be drawn).
   */
  pixel(y: number, x: number, pass: number): Float32Array;
  /** Told each newly sampled value, to update any input cache. */
  sampled(y: number, x: number, channel: number, values: Int32Array): void;
}

/**
 * What the samplers need of a model. Every SamplingModel (models/core/model.ts) is one; the
 * samplers name only this surface, so they sit below the models that use them.
 */
export interface SamplingModel {
  readonly config: { readonly kind: string; readonly height: number; readonly width: number; readonly channels: number; readonly numClasses: number };
  readonly likelihood: Likelihood;
  /** Training mode (dropout on); sampling runs in eval mode and restores it. */
  readonly training: boolean;
  train(mode?: boolean): unknown;
  eval(): unknown;
  /** Checks an integer image batch and its condition; returns N. */
  checkInputs(op: string, images: Tensor, cond?: Condition): number;
  /** Likelihood parameters [N, H, W, P] for an integer image batch: what the naive sampler reruns. */
  params(images: Tensor, cond?: Condition): Tensor;
  /** The family's cached stepper, or null when it has none. */
  cachedStepper(setup: SampleSetup): Stepper | null;
}

export interface SampleOptions {
  /** Number of images. */
  n: number;
  /** Seed of the sampling stream: the same seed gives the same images. */
  seed?: number;
  /** Divides logits (and scales mixture widths); 1 samples the model as trained. */
  temperature?: number;
  /** Class label(s) for a class-conditional model: one for all images, or one per image. */
  labels?: number | readonly number[] | Tensor | null;
  /** Condition vectors [n, conditionDim] for a model with conditionDim > 0. */
  h?: Tensor | null;
  /**
   * Completion: images [n, H, W, C] whose first `keepRows` rows are kept and the rest sampled;
   * with `mask` (H·W values, 1 = keep that pixel of every image), any kept pixel after those rows
   * is taken from the images too, in raster order, so it conditions everything sampled after it.
   */
  complete?: { images: Tensor; keepRows?: number; mask?: ArrayLike<number> | null } | null;
  /** Called with each finished row: its index and the values [n, W, C]. */
  onRow?: (row: number, values: Int32Array) => void;
  /** Called with each finished pixel (sampled or kept): its position and the values [n, C]. */
  onPixel?: (y: number, x: number, values: Int32Array) => void;
  /** Sampler: 'cached' (default, fast) or 'naive' (the whole network per element; the oracle). */
  method?: 'cached' | 'naive';
  /**
   * Chooses the values of pixel (y, x) instead of drawing them, with the head's parameters of its
   * `rows` images: what the codec does (codec/), whose encoder takes the image's values and whose
   * decoder reads them from its stream. Called as the head's sample would be (per channel for a
   * per-channel head, `pass` = the channel), writing out[r·C + channel].
   */
  draw?: (params: Float32Array, rows: number, pass: number, out: Int32Array, y: number, x: number) => void;
}

export interface SampleSetup {
  n: number;
  h: number;
  w: number;
  c: number;
  temperature: number;
  cond: Condition;
  /** The canvas: int32 [n, H, W, C], pre-filled with the kept rows for completion. */
  canvas: Tensor;
  /** First row to sample. */
  startRow: number;
  /** H·W flags, 1 where a pixel after startRow is kept from the completed images; null for none. */
  keep: Uint8Array | null;
}

export function prepareSampling(model: SamplingModel, opts: SampleOptions): SampleSetup {
  const { height: h, width: w, channels: c, numClasses } = model.config;
  const n = opts.n;
  if (!Number.isInteger(n) || n < 1) throw new ArgumentError('sample', 'n', `must be a positive integer, got ${n}`);
  const temperature = opts.temperature ?? 1;
  if (!(temperature > 0) || !Number.isFinite(temperature)) throw new ArgumentError('sample', 'temperature', `must be a positive number, got ${temperature}`);
  const cond: Condition = {};
  if (opts.labels !== undefined && opts.labels !== null) {
    if (numClasses === 0) throw new ArgumentError('sample', 'labels', 'were given but this model is unconditional');
    let labels: Tensor;
    if (opts.labels instanceof Tensor) labels = opts.labels;
    else if (typeof opts.labels === 'number') labels = new Tensor(new Int32Array(n).fill(opts.labels), [n]);
    else labels = new Tensor(Int32Array.from(opts.labels), [opts.labels.length]);
    cond.labels = labels;
  } else if (numClasses > 0) {
    throw new ArgumentError('sample', 'labels', `are required: this model is conditioned on ${numClasses} classes (pass a label, e.g. labels: 0)`);
  }
  if (opts.h) cond.h = opts.h;
  const canvas = new Tensor(new Int32Array(n * h * w * c), [n, h, w, c]);
  let startRow = 0;
  let keep: Uint8Array | null = null;
  if (opts.complete) {
    const { images, mask } = opts.complete;
    const keepRows = opts.complete.keepRows ?? 0;
    if (images.dtype !== 'int32' || images.rank !== 4 || images.shape[0] !== n || images.shape[1] !== h || images.shape[2] !== w || images.shape[3] !== c) {
      throw new ShapeError('complete', 'images', `must be int32 [${n}, ${h}, ${w}, ${c}], got ${images.dtype} ${fmtShape(images.shape)}`, [images.shape]);
    }
    if (!Number.isInteger(keepRows) || keepRows < 0 || keepRows > h) throw new ArgumentError('complete', 'keepRows', `must be an integer in 0..${h}, got ${keepRows}`);
    const rowSize = w * c;
    for (let i = 0; i < n; i++) {
      canvas.data.set(images.data.subarray(i * h * rowSize, i * h * rowSize + keepRows * rowSize), i * h * rowSize);
    }
    startRow = keepRows;
    if (mask) {
      if (mask.length !== h * w) throw new ArgumentError('complete', 'mask', `must hold H·W = ${h * w} values (1 = keep the pixel), got ${mask.length}`);
      keep = new Uint8Array(h * w);
      for (let q = keepRows * w; q < h * w; q++) {
        if (mask[q] !== 0 && mask[q] !== 1) throw new ArgumentError('complete', 'mask', `values must be 0 or 1, got ${mask[q]} at pixel ${q}`);
        if (mask[q] === 0) continue;
        keep[q] = 1;
        for (let i = 0; i < n; i++) canvas.data.set(images.data.subarray((i * h * w + q) * c, (i * h * w + q + 1) * c), (i * h * w + q) * c);
      }
    }
  }
  model.checkInputs('sample', canvas, cond);
  return { n, h, w, c, temperature, cond, canvas, startRow, keep };
}

/** The values of one row of the canvas, [n, W, C]. */
export function rowValues(canvas: Tensor, row: number): Int32Array {
  const [n, h, w, c] = canvas.shape as [number, number, number, number];
  const out = new Int32Array(n * w * c);
  for (let i = 0; i < n; i++) out.set(canvas.data.subarray((i * h + row) * w * c, (i * h + row + 1) * w * c), i * w * c);
  return out;
}

/** Runs fn in evaluation mode (no dropout) and restores the mode after. */
export function inEvalMode<T>(model: SamplingModel, fn: () => T): T {
  const was = model.training;
  model.eval();
  try {
    return fn();
  } finally {
    if (was) model.train();
  }
}
