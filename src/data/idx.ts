// IDX files, the format of MNIST, Fashion-MNIST, KMNIST and EMNIST (LeCun et al.,
// http://yann.lecun.com/exdb/mnist/): a 4-byte magic (0, 0, type code, number of dimensions),
// big-endian uint32 dimensions, then the values in row-major order. Gzipped or not.

import path from 'node:path';
import { FormatError } from '../errors.js';
import { makeDataset, type Dataset } from './dataset.js';
import { readMaybeGzip } from './read.js';

/** Type codes of the IDX format and their sizes in bytes. */
const IDX_TYPES: Record<number, { name: string; bytes: number }> = {
  0x08: { name: 'unsigned byte', bytes: 1 },
  0x09: { name: 'signed byte', bytes: 1 },
  0x0b: { name: 'int16', bytes: 2 },
  0x0c: { name: 'int32', bytes: 4 },
  0x0d: { name: 'float32', bytes: 4 },
  0x0e: { name: 'float64', bytes: 8 },
};

export interface IdxArray {
  /** Type code (0x08 = unsigned byte). */
  readonly type: number;
  readonly dims: readonly number[];
  /** The values, still raw bytes (big-endian for multi-byte types). */
  readonly data: Uint8Array;
}

/** Parses IDX bytes; `file` names the file in errors. */
export function parseIdx(bytes: Uint8Array, file: string): IdxArray {
  if (bytes.length < 4) throw new FormatError(file, `is too short to be an IDX file (${bytes.length} bytes)`);
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const type = bytes[2];
  const ndim = bytes[3];
  if (bytes[0] !== 0 || bytes[1] !== 0 || !(type in IDX_TYPES) || ndim === 0) {
    const magic = Array.from(bytes.subarray(0, 4), (b) => b.toString(16).padStart(2, '0')).join(' ');
    throw new FormatError(file, `wrong magic number ${magic}: not an IDX file (expected 00 00 <type 08..0e> <dimensions>)`);
  }
  const headerBytes = 4 + 4 * ndim;
  if (bytes.length < headerBytes) throw new FormatError(file, `is truncated inside its header (${bytes.length} of ${headerBytes} bytes)`);
  const dims: number[] = [];
  for (let i = 0; i < ndim; i++) dims.push(view.getUint32(4 + 4 * i, false));
  const count = dims.reduce((a, b) => a * b, 1);
  const expected = headerBytes + count * IDX_TYPES[type].bytes;
  if (bytes.length < expected) {
    throw new FormatError(file, `is truncated: its header announces [${dims.join(', ')}] ${IDX_TYPES[type].name}s (${expected} bytes) but the file has ${bytes.length}`);
  }
  if (bytes.length > expected) {
    throw new FormatError(file, `has ${bytes.length - expected} bytes after the [${dims.join(', ')}] ${IDX_TYPES[type].name}s its header announces`);
  }
  return { type, dims, data: bytes.subarray(headerBytes, expected) };
}

export function readIdx(file: string): IdxArray {
  return parseIdx(readMaybeGzip(file), file);
}

/** Images from an IDX file as [N, H, W, C]: 3-d files are grey, 4-d ones carry C last. */
export function readIdxImages(file: string, opts: { transpose?: boolean } = {}): { images: Uint8Array; shape: [number, number, number, number] } {
  const a = readIdx(file);
  if (a.type !== 0x08) throw new FormatError(file, `holds ${IDX_TYPES[a.type].name}s; images must be unsigned bytes (type 08)`);
  if (a.dims.length !== 3 && a.dims.length !== 4) {
    throw new FormatError(file, `has ${a.dims.length} dimensions [${a.dims.join(', ')}]; images need 3 ([N, H, W]) or 4 ([N, H, W, C])`);
  }
  const [n, h, w] = a.dims;
  const c = a.dims.length === 4 ? a.dims[3] : 1;
  let images = a.data;
  if (opts.transpose) {
    // EMNIST stores each image transposed (column-major), a leftover of its MATLAB origin.
    if (c !== 1) throw new FormatError(file, 'transpose is only defined for grey [N, H, W] images');
    images = new Uint8Array(a.data.length);
    const size = h * w;
    for (let i = 0; i < n; i++) {
      const src = a.data.subarray(i * size, (i + 1) * size);
      const dst = images.subarray(i * size, (i + 1) * size);
      for (let r = 0; r < h; r++) for (let col = 0; col < w; col++) dst[col * h + r] = src[r * w + col];
    }
  } else if (a.data.byteOffset !== 0 || a.data.length !== a.data.buffer.byteLength) {
    // Keep the images in a block of their own rather than pinning the whole decoded file.
    images = a.data.slice();
  }
  return { images, shape: opts.transpose ? [n, w, h, c] : [n, h, w, c] };
}

/** Labels from a 1-d unsigned-byte IDX file. */
export function readIdxLabels(file: string): Int32Array {
  const a = readIdx(file);
  if (a.type !== 0x08) throw new FormatError(file, `holds ${IDX_TYPES[a.type].name}s; labels must be unsigned bytes (type 08)`);
  if (a.dims.length !== 1) throw new FormatError(file, `has ${a.dims.length} dimensions [${a.dims.join(', ')}]; labels need 1`);
  return Int32Array.from(a.data);
}

export interface IdxPairOptions {
  name?: string;
  split?: string;
  /** Fixed number of classes (10 for the MNIST family); default: largest label + 1. */
  numClasses?: number;
  classNames?: readonly string[];
  /** Transpose each image (EMNIST). */
  transpose?: boolean;
}

/** An image file and its label file (null for none) as one Dataset; counts must agree. */
export function loadIdxPair(imagesFile: string, labelsFile: string | null, opts: IdxPairOptions = {}): Dataset {
  const { images, shape } = readIdxImages(imagesFile, { transpose: opts.transpose });
  let labels: Int32Array | null = null;
  if (labelsFile !== null) {
    labels = readIdxLabels(labelsFile);
    if (labels.length !== shape[0]) {
      throw new FormatError(imagesFile, `holds ${shape[0]} images but ${labelsFile} holds ${labels.length} labels`);
    }
    if (opts.numClasses !== undefined) {
      for (let i = 0; i < labels.length; i++) {
        if (labels[i] >= opts.numClasses) throw new FormatError(labelsFile, `label ${i} is ${labels[i]}, outside 0..${opts.numClasses - 1}`);
      }
    }
  }
  return makeDataset({
    name: opts.name ?? path.basename(imagesFile).replace(/[-.]images.*$/, ''),
    split: opts.split ?? 'all',
    images, shape, labels,
    numClasses: opts.numClasses,
    classNames: opts.classNames,
    source: imagesFile,
  });
}
