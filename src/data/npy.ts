// NumPy's .npy format (https://numpy.org/doc/stable/reference/generated/numpy.lib.format.html):
// the magic "\x93NUMPY", a version, a little-endian header length (2 bytes in v1, 4 in v2/v3),
// a Python-literal dict {'descr', 'fortran_order', 'shape'}, then the raw array. Images must be
// uint8 [N, H, W] or [N, H, W, C] in C order; labels may be any integer type.

import path from 'node:path';
import { FormatError } from '../errors.js';
import { makeDataset, type Dataset } from './dataset.js';
import { readMaybeGzip } from './read.js';

const MAGIC = [0x93, 0x4e, 0x55, 0x4d, 0x50, 0x59]; // \x93NUMPY

export interface NpyArray {
  /** NumPy's type string, e.g. '|u1' or '<i8'. */
  readonly descr: string;
  readonly shape: readonly number[];
  readonly data: Uint8Array;
}

export function parseNpy(bytes: Uint8Array, file: string): NpyArray {
  if (bytes.length < 10 || MAGIC.some((b, i) => bytes[i] !== b)) throw new FormatError(file, 'wrong magic number: not a .npy file (expected \\x93NUMPY)');
  const major = bytes[6];
  if (major < 1 || major > 3) throw new FormatError(file, `has .npy version ${major}.${bytes[7]}; versions 1 to 3 are known`);
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const lenBytes = major === 1 ? 2 : 4;
  if (bytes.length < 8 + lenBytes) throw new FormatError(file, 'is truncated inside its header');
  const headerLen = major === 1 ? view.getUint16(8, true) : view.getUint32(8, true);
  const start = 8 + lenBytes;
  if (bytes.length < start + headerLen) throw new FormatError(file, `is truncated inside its header (${bytes.length} of ${start + headerLen} bytes)`);
  const header = new TextDecoder(major === 3 ? 'utf-8' : 'latin1').decode(bytes.subarray(start, start + headerLen));
  const descr = /'descr'\s*:\s*'([^']*)'/.exec(header)?.[1];
  const fortran = /'fortran_order'\s*:\s*(True|False)/.exec(header)?.[1];
  const shapeText = /'shape'\s*:\s*\(([^)]*)\)/.exec(header)?.[1];
  if (descr === undefined || fortran === undefined || shapeText === undefined) throw new FormatError(file, `has a header that is not a .npy dict: ${header.trim()}`);
  if (fortran === 'True') throw new FormatError(file, 'is stored in Fortran order; save it with numpy.ascontiguousarray first');
  const shape = shapeText.split(',').map((s) => s.trim()).filter((s) => s.length > 0).map(Number);
  if (shape.some((d) => !Number.isInteger(d) || d < 0)) throw new FormatError(file, `has a bad shape (${shapeText})`);
  const itemSize = Number(/(\d+)$/.exec(descr)?.[1] ?? NaN);
  if (!Number.isInteger(itemSize)) throw new FormatError(file, `has dtype '${descr}', which arpix cannot read`);
  const count = shape.reduce((a, b) => a * b, 1);
  const dataStart = start + headerLen;
  const expected = dataStart + count * itemSize;
  if (bytes.length < expected) throw new FormatError(file, `is truncated: shape (${shape.join(', ')}) of '${descr}' needs ${expected} bytes, the file has ${bytes.length}`);
  if (bytes.length > expected) throw new FormatError(file, `has ${bytes.length - expected} bytes after the array its header announces`);
  return { descr, shape, data: bytes.subarray(dataStart, expected) };
}

function isUint8(descr: string): boolean {
  return descr === '|u1' || descr === 'u1' || descr === '<u1' || descr === '>u1' || descr === '|b1';
}

/** Images from a .npy file: uint8 [N, H, W] (grey) or [N, H, W, C] with C = 1 or 3. */
export function readNpyImages(file: string): { images: Uint8Array; shape: [number, number, number, number] } {
  const a = parseNpy(readMaybeGzip(file), file);
  if (!isUint8(a.descr)) throw new FormatError(file, `has dtype '${a.descr}'; images must be uint8 ('|u1')`);
  if (a.shape.length !== 3 && a.shape.length !== 4) throw new FormatError(file, `has shape (${a.shape.join(', ')}); images need [N, H, W] or [N, H, W, C]`);
  const [n, h, w] = a.shape;
  const c = a.shape.length === 4 ? a.shape[3] : 1;
  if (c !== 1 && c !== 3) throw new FormatError(file, `has ${c} channels; images need 1 (grey) or 3 (RGB)`);
  return { images: a.data.slice(), shape: [n, h, w, c] };
}

/** Labels from a 1-d integer .npy file (any width, either byte order). */
export function readNpyLabels(file: string): Int32Array {
  const a = parseNpy(readMaybeGzip(file), file);
  const m = /^([<>|=]?)([iu])(\d)$/.exec(a.descr);
  if (!m) throw new FormatError(file, `has dtype '${a.descr}'; labels must be integers`);
  if (a.shape.length !== 1) throw new FormatError(file, `has shape (${a.shape.join(', ')}); labels need one dimension`);
  const little = m[1] !== '>';
  const signed = m[2] === 'i';
  const size = Number(m[3]);
  const view = new DataView(a.data.buffer, a.data.byteOffset, a.data.byteLength);
  const out = new Int32Array(a.shape[0]);
  for (let i = 0; i < out.length; i++) {
    const o = i * size;
    let v: number;
    switch (size) {
      case 1: v = signed ? view.getInt8(o) : view.getUint8(o); break;
      case 2: v = signed ? view.getInt16(o, little) : view.getUint16(o, little); break;
      case 4: v = signed ? view.getInt32(o, little) : view.getUint32(o, little); break;
      case 8: v = Number(signed ? view.getBigInt64(o, little) : view.getBigUint64(o, little)); break;
      default: throw new FormatError(file, `has dtype '${a.descr}'; labels must be 1, 2, 4 or 8-byte integers`);
    }
    if (v < 0 || v > 0x7fffffff) throw new FormatError(file, `label ${i} is ${v}, not a class index`);
    out[i] = v;
  }
  return out;
}

/** A .npy image file, and optionally a .npy label file, as one Dataset. */
export function loadNpy(imagesFile: string, opts: { labelsFile?: string | null; name?: string; split?: string; numClasses?: number } = {}): Dataset {
  const { images, shape } = readNpyImages(imagesFile);
  const labels = opts.labelsFile ? readNpyLabels(opts.labelsFile) : null;
  if (labels && labels.length !== shape[0]) throw new FormatError(imagesFile, `holds ${shape[0]} images but ${opts.labelsFile} holds ${labels.length} labels`);
  return makeDataset({
    name: opts.name ?? path.basename(imagesFile).replace(/\.npy(\.gz)?$/, ''),
    split: opts.split ?? 'all',
    images, shape, labels, numClasses: opts.numClasses,
    source: imagesFile,
  });
}
