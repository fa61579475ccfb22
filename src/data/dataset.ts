// The in-memory dataset every format loads into: one contiguous uint8 block of NHWC images,
// optional int32 labels, and the few facts a model needs (classes, value levels).

import { ArgumentError, FormatError, fmtShape } from '../errors.js';

export type DatasetShape = readonly [n: number, h: number, w: number, c: number];

export interface Dataset {
  /** 'fashion-mnist', 'cifar10', the folder's name, … */
  readonly name: string;
  /** 'train', 'test', 'validation', or 'all' for sources without a published split. */
  readonly split: string;
  /** [N, H, W, C] uint8, row-major, channels last. */
  readonly images: Uint8Array;
  readonly shape: DatasetShape;
  /** One class index per image, or null when the source has no labels. */
  readonly labels: Int32Array | null;
  /** Number of classes (labels lie in 0..numClasses-1); 0 when unlabelled. */
  readonly numClasses: number;
  /** Class names when the source has them (folder names, CIFAR's meta file). */
  readonly classNames: readonly string[] | null;
  /** Distinct pixel values: 256 as loaded, 2^bits after quantise(), 2 after binarise(). */
  readonly levels: number;
  /** Where the data came from, for messages. */
  readonly source: string;
}

export interface DatasetInit {
  name: string;
  split: string;
  images: Uint8Array;
  shape: readonly number[];
  labels?: Int32Array | null;
  numClasses?: number;
  classNames?: readonly string[] | null;
  levels?: number;
  source: string;
}

/**
 * Builds a Dataset and checks that its parts agree; a mismatch is a FormatError naming `source`,
 * because it always means the files were wrong, never the caller.
 */
export function makeDataset(init: DatasetInit): Dataset {
  const { shape, images, source } = init;
  if (shape.length !== 4 || shape.some((d) => !Number.isInteger(d) || d < 0)) {
    throw new FormatError(source, `images must have shape [N, H, W, C], got ${fmtShape(shape)}`);
  }
  const [n, h, w, c] = shape as DatasetShape;
  if (images.length !== n * h * w * c) {
    throw new FormatError(source, `${images.length} pixel values do not fill shape ${fmtShape(shape)} (${n * h * w * c})`);
  }
  const labels = init.labels ?? null;
  let numClasses = 0;
  if (labels) {
    if (labels.length !== n) throw new FormatError(source, `${n} images but ${labels.length} labels`);
    let max = -1;
    for (let i = 0; i < labels.length; i++) {
      const l = labels[i];
      if (l < 0) throw new FormatError(source, `label ${i} is negative (${l})`);
      if (l > max) max = l;
    }
    numClasses = init.numClasses ?? max + 1;
    if (max >= numClasses) throw new FormatError(source, `label ${max} is out of range for ${numClasses} classes`);
  }
  const classNames = init.classNames ?? null;
  if (classNames && labels && classNames.length !== numClasses) {
    throw new FormatError(source, `${classNames.length} class names for ${numClasses} classes`);
  }
  return { name: init.name, split: init.split, images, shape: [n, h, w, c], labels, numClasses, classNames, levels: init.levels ?? 256, source };
}

/** Pixels per image (H·W·C). */
export function imageSize(ds: Dataset): number {
  return ds.shape[1] * ds.shape[2] * ds.shape[3];
}

/** The images at `indices` (in that order) as a new dataset with its own memory. */
export function subset(ds: Dataset, indices: ArrayLike<number>, split = ds.split): Dataset {
  const size = imageSize(ds);
  const n = ds.shape[0];
  const images = new Uint8Array(indices.length * size);
  const labels = ds.labels ? new Int32Array(indices.length) : null;
  for (let k = 0; k < indices.length; k++) {
    const i = indices[k];
    if (!Number.isInteger(i) || i < 0 || i >= n) throw new ArgumentError('subset', 'indices', `holds ${i}, outside 0..${n - 1}`);
    images.set(ds.images.subarray(i * size, (i + 1) * size), k * size);
    if (labels) labels[k] = ds.labels![i];
  }
  return {
    ...ds, split, images, labels,
    shape: [indices.length, ds.shape[1], ds.shape[2], ds.shape[3]],
  };
}

/** One line for logs: `fashion-mnist/train: 60000 × 28×28×1, 10 classes`. */
export function describeDataset(ds: Dataset): string {
  const [n, h, w, c] = ds.shape;
  const cls = ds.labels ? `, ${ds.numClasses} classes` : ', unlabelled';
  return `${ds.name}/${ds.split}: ${n} × ${h}×${w}×${c}${cls} (${ds.source})`;
}
