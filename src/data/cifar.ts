// The binary versions of CIFAR-10 and CIFAR-100 (Krizhevsky 2009,
// https://www.cs.toronto.edu/~kriz/cifar.html). Each record is its label byte(s) — one for
// CIFAR-10, coarse then fine for CIFAR-100 — followed by a 32×32 image stored plane by plane
// (1024 red, 1024 green, 1024 blue bytes), which we interleave into channels-last order.

import fs from 'node:fs';
import path from 'node:path';
import { ArgumentError, FormatError } from '../errors.js';
import { makeDataset, type Dataset } from './dataset.js';
import { readMaybeGzip } from './read.js';

export type CifarVariant = 'cifar10' | 'cifar100';

const SIDE = 32;
const PLANE = SIDE * SIDE;
const PIXELS = 3 * PLANE;

export const CIFAR_LAYOUT = {
  cifar10: {
    folder: 'cifar-10-batches-bin',
    train: ['data_batch_1.bin', 'data_batch_2.bin', 'data_batch_3.bin', 'data_batch_4.bin', 'data_batch_5.bin'],
    test: ['test_batch.bin'],
    labelBytes: 1,
    classes: { fine: 10, coarse: 10 },
    names: { fine: 'batches.meta.txt', coarse: 'batches.meta.txt' },
  },
  cifar100: {
    folder: 'cifar-100-binary',
    train: ['train.bin'],
    test: ['test.bin'],
    labelBytes: 2,
    classes: { fine: 100, coarse: 20 },
    names: { fine: 'fine_label_names.txt', coarse: 'coarse_label_names.txt' },
  },
} as const;

export interface CifarRecords {
  images: Uint8Array;
  labels: Int32Array;
}

/** Parses one CIFAR binary file. `label` picks CIFAR-100's fine (default) or coarse labels. */
export function parseCifar(bytes: Uint8Array, file: string, variant: CifarVariant, label: 'fine' | 'coarse' = 'fine'): CifarRecords {
  const layout = CIFAR_LAYOUT[variant];
  const record = layout.labelBytes + PIXELS;
  if (bytes.length === 0) throw new FormatError(file, 'is empty');
  if (bytes.length % record !== 0) {
    const hint = bytes.length % (PIXELS + (3 - layout.labelBytes)) === 0 ? ` (its size fits ${variant === 'cifar10' ? 'CIFAR-100' : 'CIFAR-10'} records: wrong variant?)` : ' (truncated?)';
    throw new FormatError(file, `has ${bytes.length} bytes, not a whole number of ${record}-byte ${variant} records${hint}`);
  }
  const n = bytes.length / record;
  const images = new Uint8Array(n * PIXELS);
  const labels = new Int32Array(n);
  const labelOffset = variant === 'cifar100' && label === 'fine' ? 1 : 0;
  const numClasses = layout.classes[label];
  for (let i = 0; i < n; i++) {
    const r = i * record;
    const l = bytes[r + labelOffset];
    if (l >= numClasses) throw new FormatError(file, `record ${i} has label ${l}, outside 0..${numClasses - 1}: not a ${variant} file, or corrupt`);
    labels[i] = l;
    const src = r + layout.labelBytes;
    const dst = i * PIXELS;
    for (let p = 0; p < PLANE; p++) {
      images[dst + 3 * p] = bytes[src + p];
      images[dst + 3 * p + 1] = bytes[src + PLANE + p];
      images[dst + 3 * p + 2] = bytes[src + 2 * PLANE + p];
    }
  }
  return { images, labels };
}

/** The folder holding the batch files: `dir` itself or its standard sub-folder. */
export function cifarFolder(dir: string, variant: CifarVariant): string | null {
  const layout = CIFAR_LAYOUT[variant];
  for (const d of [path.join(dir, layout.folder), dir]) {
    if (layout.test.every((f) => fs.existsSync(path.join(d, f)))) return d;
  }
  return null;
}

export interface CifarOptions {
  split?: 'train' | 'test';
  /** CIFAR-100 only: 'fine' (100 classes, default) or 'coarse' (20 super-classes). */
  label?: 'fine' | 'coarse';
}

/** Loads a split of CIFAR-10/100 from `dir` (the extracted archive's parent or its folder). */
export function loadCifar(dir: string, variant: CifarVariant, opts: CifarOptions = {}): Dataset {
  const split = opts.split ?? 'train';
  if (split !== 'train' && split !== 'test') throw new ArgumentError('loadCifar', 'split', `must be 'train' or 'test', got '${split}'`);
  const label = opts.label ?? 'fine';
  const layout = CIFAR_LAYOUT[variant];
  const folder = cifarFolder(dir, variant) ?? path.join(dir, layout.folder);
  const parts = layout[split].map((f) => parseCifar(readMaybeGzip(path.join(folder, f)), path.join(folder, f), variant, label));
  const n = parts.reduce((a, p) => a + p.labels.length, 0);
  const images = new Uint8Array(n * PIXELS);
  const labels = new Int32Array(n);
  let k = 0;
  for (const p of parts) {
    images.set(p.images, k * PIXELS);
    labels.set(p.labels, k);
    k += p.labels.length;
  }
  return makeDataset({
    name: variant, split, images, labels,
    shape: [n, SIDE, SIDE, 3],
    numClasses: layout.classes[label],
    classNames: readClassNames(path.join(folder, layout.names[label]), layout.classes[label]),
    source: folder,
  });
}

/** Class names from the meta text file, or null when it is absent or does not fit. */
function readClassNames(file: string, count: number): string[] | null {
  if (!fs.existsSync(file)) return null;
  const names = fs.readFileSync(file, 'utf8').split(/\r?\n/).map((s) => s.trim()).filter((s) => s.length > 0);
  return names.length === count ? names : null;
}
