// Splits and batches. The batch at (epoch, step) is a pure function of the dataset, the options
// and those two numbers: epoch e's order is a permutation keyed by (seed, e), and dynamic
// binarisation is keyed by (seed, e, image index). So a loader built from a saved `state()` gives
// exactly the batches the original would have given next, without replaying anything.

import { ArgumentError } from '../errors.js';
import { Tensor } from '../tensor/tensor.js';
import { imageSize, subset, type Dataset } from './dataset.js';
import { STREAM, permutation } from './rng.js';
import { checkRaw, checkTransform, levelsOf, lookupTable, transformImageInto, type PixelTransform } from './transforms.js';

export interface ValidationOptions {
  /** Number of training images to hold out, or a fraction in (0, 1). */
  size: number;
  seed?: number;
}

/**
 * Carves a validation split from a training set by a seeded permutation. Both parts keep the
 * original order of their images, so the split depends only on (N, size, seed).
 */
export function splitValidation(train: Dataset, opts: ValidationOptions): { train: Dataset; validation: Dataset } {
  const n = train.shape[0];
  const k = opts.size < 1 ? Math.round(opts.size * n) : opts.size;
  if (!(opts.size > 0) || !Number.isInteger(k) || k >= n) {
    throw new ArgumentError('splitValidation', 'size', `must be a count in 1..${n - 1} or a fraction in (0, 1), got ${opts.size}`);
  }
  const perm = permutation(n, opts.seed ?? 0, STREAM.validation);
  const val = perm.slice(0, k).sort();
  const rest = perm.slice(k).sort();
  return { train: subset(train, rest, 'train'), validation: subset(train, val, 'validation') };
}

export interface Batch {
  /** int32 [B, H, W, C], values 0..levels-1. */
  images: Tensor;
  /** int32 [B], or null for unlabelled data. */
  labels: Tensor | null;
  /** Position of this batch, and indices of its images in the dataset. */
  epoch: number;
  step: number;
  indices: Uint32Array;
}

/** Where a loader stands: the next batch it delivers is (epoch, step). JSON-serialisable. */
export interface LoaderState {
  epoch: number;
  step: number;
}

export interface LoaderOptions {
  batchSize: number;
  /** Seeds the shuffles and dynamic binarisation. Default 0. */
  seed?: number;
  /** Shuffle every epoch (default true); false gives the dataset order (evaluation). */
  shuffle?: boolean;
  /** Drop the last incomplete batch of each epoch (default: true when shuffling, else false). */
  dropLast?: boolean;
  transform?: PixelTransform;
  /** Batches prepared ahead of the consumer (default 4). */
  prefetch?: number;
  /** Start here instead of (0, 0), e.g. from a checkpoint. */
  state?: LoaderState;
}

export class BatchLoader {
  readonly batchSize: number;
  readonly seed: number;
  readonly shuffle: boolean;
  readonly dropLast: boolean;
  readonly transform: PixelTransform;
  readonly prefetch: number;
  /** Distinct pixel values the model must handle: 256, 2^bits, or 2 (from the transform, or the dataset's own). */
  readonly levels: number;
  readonly stepsPerEpoch: number;

  private readonly lut: Int32Array | null;
  private epoch: number;
  private step: number;
  /** Cached order of one epoch (the permutation is the only per-epoch cost). */
  private order: { epoch: number; perm: Uint32Array } | null = null;
  /** Prepared batches, in delivery order, starting at (this.epoch, this.step). */
  private ready: Batch[] = [];
  private fillScheduled = false;

  constructor(readonly dataset: Dataset, opts: LoaderOptions) {
    const n = dataset.shape[0];
    if (!Number.isInteger(opts.batchSize) || opts.batchSize < 1) throw new ArgumentError('BatchLoader', 'batchSize', `must be a positive integer, got ${opts.batchSize}`);
    this.batchSize = opts.batchSize;
    this.seed = opts.seed ?? 0;
    if (!Number.isInteger(this.seed) || this.seed < 0) throw new ArgumentError('BatchLoader', 'seed', `must be a non-negative integer, got ${this.seed}`);
    this.shuffle = opts.shuffle ?? true;
    this.dropLast = opts.dropLast ?? this.shuffle;
    this.transform = opts.transform ?? { kind: 'none' };
    checkTransform('BatchLoader', this.transform);
    this.prefetch = opts.prefetch ?? 4;
    if (this.transform.kind !== 'none') checkRaw('BatchLoader', dataset);
    this.levels = this.transform.kind === 'none' ? dataset.levels : levelsOf(this.transform);
    this.lut = lookupTable(this.transform);
    this.stepsPerEpoch = this.dropLast ? Math.floor(n / this.batchSize) : Math.ceil(n / this.batchSize);
    if (this.stepsPerEpoch === 0) {
      throw new ArgumentError('BatchLoader', 'batchSize', `${this.batchSize} is larger than the ${n} images of ${dataset.name}/${dataset.split} with dropLast`);
    }
    const s = opts.state ?? { epoch: 0, step: 0 };
    if (!Number.isInteger(s.epoch) || s.epoch < 0 || !Number.isInteger(s.step) || s.step < 0 || s.step > this.stepsPerEpoch) {
      throw new ArgumentError('BatchLoader', 'state', `{epoch: ${s.epoch}, step: ${s.step}} is not a position in epochs of ${this.stepsPerEpoch} steps`);
    }
    // A state saved right after an epoch's last batch points at the next epoch's start.
    this.epoch = s.step === this.stepsPerEpoch ? s.epoch + 1 : s.epoch;
    this.step = s.step === this.stepsPerEpoch ? 0 : s.step;
  }

  /** The position of the next batch; save it with a checkpoint to resume exactly. */
  state(): LoaderState {
    return { epoch: this.epoch, step: this.step };
  }

  /** The image indices of epoch `epoch` in delivery order. */
  epochOrder(epoch: number): Uint32Array {
    if (this.order?.epoch !== epoch) {
      const n = this.dataset.shape[0];
      const perm = this.shuffle ? permutation(n, this.seed, STREAM.shuffle, epoch) : Uint32Array.from({ length: n }, (_, i) => i);
      this.order = { epoch, perm };
    }
    return this.order.perm;
  }

  /** The batch at (epoch, step), computed from scratch: the definition the loader delivers. */
  batchAt(epoch: number, step: number): Batch {
    const ds = this.dataset;
    const order = this.epochOrder(epoch);
    const start = step * this.batchSize;
    const b = Math.min(this.batchSize, order.length - start);
    const indices = order.slice(start, start + b);
    const size = imageSize(ds);
    const pixels = new Int32Array(b * size);
    for (let k = 0; k < b; k++) transformImageInto(ds, indices[k], this.transform, this.lut, this.seed, epoch, pixels, k * size);
    let labels: Tensor | null = null;
    if (ds.labels) {
      const l = new Int32Array(b);
      for (let k = 0; k < b; k++) l[k] = ds.labels[indices[k]];
      labels = new Tensor(l, [b]);
    }
    return { images: new Tensor(pixels, [b, ds.shape[1], ds.shape[2], ds.shape[3]]), labels, epoch, step, indices };
  }

  private positionAfter(epoch: number, step: number): [number, number] {
    return step + 1 >= this.stepsPerEpoch ? [epoch + 1, 0] : [epoch, step + 1];
  }

  /** Tops the queue up to `prefetch` batches. */
  private fill(): void {
    this.fillScheduled = false;
    let [e, s] = [this.epoch, this.step];
    for (let k = 0; k < this.ready.length; k++) [e, s] = this.positionAfter(e, s);
    while (this.ready.length < this.prefetch) {
      this.ready.push(this.batchAt(e, s));
      [e, s] = this.positionAfter(e, s);
    }
  }

  /** Prepares the next batches in a later turn of the event loop, while the trainer awaits. */
  private scheduleFill(): void {
    if (this.fillScheduled || this.prefetch === 0) return;
    this.fillScheduled = true;
    setImmediate(() => this.fill());
  }

  /** The next batch (epochs roll over forever); prepared ahead when the consumer awaits between calls. */
  next(): Batch {
    const batch = this.ready.shift() ?? this.batchAt(this.epoch, this.step);
    [this.epoch, this.step] = this.positionAfter(this.epoch, this.step);
    this.scheduleFill();
    return batch;
  }

  /** The rest of the current epoch, then stops (the state then points at the next epoch). */
  *epochBatches(): Generator<Batch> {
    const epoch = this.epoch;
    while (this.epoch === epoch) yield this.next();
  }

  /** Endless stream of batches; awaiting it gives the prefetcher a turn. */
  async *[Symbol.asyncIterator](): AsyncGenerator<Batch> {
    for (;;) {
      if (this.ready.length === 0 && this.prefetch > 0) this.fill();
      yield this.next();
    }
  }
}

/** A loader over `ds` in dataset order, every image once, for evaluation. */
export function evaluationLoader(ds: Dataset, batchSize: number, transform?: PixelTransform): BatchLoader {
  return new BatchLoader(ds, { batchSize, shuffle: false, dropLast: false, transform, prefetch: 0 });
}
