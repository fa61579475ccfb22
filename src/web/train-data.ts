// The images an exported page trains on (`arpix export --web --train-images N`): binarised images
// of the run's training split, and some of its validation split held out, one bit per pixel —
// 2000 Fashion-MNIST images are 196 KB where their JSON would be megabytes. The file is the bits of
// every image in order (training images first, each H·W·C bits, row-major, the first pixel in a
// byte's highest bit; the last byte padded with zeros), then one byte per image for its label when
// the page's config says it has labels. Written by src/export/web.ts, read by the page's trainer.

import { makeDataset, type Dataset } from '../data/dataset.js';
import { FormatError } from '../errors.js';

/** The largest model a page trains: a step of 32 images of the 16k-parameter pixelcnn-binary-fmnist-small takes 1.3 s in Chromium on WebAssembly. */
export const PAGE_TRAINING_MAX_PARAMETERS = 50_000;

/** Training images per run unless --train-images says otherwise. */
export const DEFAULT_TRAIN_IMAGES = 2000;

/** Images held out of N training images: a quarter, at most 500. */
export function heldOutCount(trainImages: number): number {
  return Math.min(500, Math.ceil(trainImages / 4));
}

/** The page's config entry for a run's training images (beside its weights, checked the same way). */
export interface TrainingImages {
  file: string;
  bytes: number;
  sha256: string;
  /** Images to train on, then images held out for the held-out figure. */
  train: number;
  heldOut: number;
  /** Image size. */
  height: number;
  width: number;
  channels: number;
  /** Classes of the labels that follow the pixels, or 0 when there are none. */
  numClasses: number;
  /** The run's data set, for messages. */
  dataset: string;
}

/** Why a model cannot train in a page, in one line; null when it can. */
export function pageTrainingRefusal(model: { levels: number; parameters: number }): string | null {
  if (model.levels !== 2) return `the page trains binary-likelihood models only (this one has ${model.levels} levels per value)`;
  if (model.parameters > PAGE_TRAINING_MAX_PARAMETERS) return `the page trains models of at most ${PAGE_TRAINING_MAX_PARAMETERS.toLocaleString('en')} parameters (this one has ${model.parameters.toLocaleString('en')})`;
  return null;
}

/** The file's bytes: `values` (0 or 1, every image's pixels in order), then the labels when given. */
export function packTrainingImages(values: ArrayLike<number>, labels: ArrayLike<number> | null): Uint8Array {
  const bitBytes = Math.ceil(values.length / 8);
  const out = new Uint8Array(bitBytes + (labels?.length ?? 0));
  for (let i = 0; i < values.length; i++) {
    const v = values[i]!;
    if (v !== 0 && v !== 1) throw new RangeError(`packTrainingImages: value ${i} is ${v}; binarised images hold 0 and 1 only`);
    if (v) out[i >> 3]! |= 0x80 >> (i & 7);
  }
  if (labels) {
    for (let i = 0; i < labels.length; i++) {
      const l = labels[i]!;
      if (!Number.isInteger(l) || l < 0 || l > 255) throw new RangeError(`packTrainingImages: label ${i} is ${l}; labels are bytes`);
      out[bitBytes + i] = l;
    }
  }
  return out;
}

/** The training and held-out images of a file `spec` describes, checked against it (a damaged file names itself). */
export function unpackTrainingImages(bytes: Uint8Array, spec: TrainingImages): { train: Dataset; heldOut: Dataset } {
  const d = spec.height * spec.width * spec.channels;
  const n = spec.train + spec.heldOut;
  const bitBytes = Math.ceil((n * d) / 8);
  const want = bitBytes + (spec.numClasses > 0 ? n : 0);
  if (bytes.length !== want) throw new FormatError(spec.file, `holds ${bytes.length} bytes, but ${n} images of ${spec.height}×${spec.width}×${spec.channels}${spec.numClasses > 0 ? ' with labels' : ''} take ${want}; export the page again`);
  const values = new Uint8Array(n * d);
  for (let i = 0; i < values.length; i++) values[i] = (bytes[i >> 3]! >> (7 - (i & 7))) & 1;
  const labels = spec.numClasses > 0 ? Int32Array.from(bytes.subarray(bitBytes)) : null;
  const part = (split: string, from: number, to: number) => makeDataset({
    name: spec.dataset, split, images: values.subarray(from * d, to * d), shape: [to - from, spec.height, spec.width, spec.channels],
    labels: labels ? labels.subarray(from, to) : null, numClasses: spec.numClasses || undefined, levels: 2, source: spec.file,
  });
  return { train: part('train', 0, spec.train), heldOut: part('validation', spec.train, n) };
}
