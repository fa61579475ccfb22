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
  if (major < 1 || major > 3 || bytes[7] !== 0) throw new FormatError(file, `has .npy version ${major}.${bytes[7]}; versions 1.0, 2.0 and 3.0 are known`);
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const lenBytes = major === 1 ? 2 : 4;
  if (bytes.length < 8 + lenBytes) throw new FormatError(file, 'is truncated inside its header');
  const headerLen = major === 1 ? view.getUint16(8, true) : view.getUint32(8, true);
  const start = 8 + lenBytes;
  if (bytes.length < start + headerLen) throw new FormatError(file, `is truncated inside its header (${bytes.length} of ${start + headerLen} bytes)`);
  const header = new TextDecoder(major === 3 ? 'utf-8' : 'latin1').decode(bytes.subarray(start, start + headerLen));
  const parsed = parseHeader(header);
  if (typeof parsed === 'string') throw new FormatError(file, `has a damaged header (${parsed}): ${JSON.stringify(header.trim().slice(0, 120))}`);
  const { descr, fortran, shape } = parsed;
  if (fortran) throw new FormatError(file, 'is stored in Fortran order; save it with numpy.ascontiguousarray first');
  if (shape.some((d) => !Number.isSafeInteger(d))) throw new FormatError(file, `has a bad shape (${shape.join(', ')})`);
  const itemSize = Number(/(\d+)$/.exec(descr)?.[1] ?? NaN);
  if (!Number.isInteger(itemSize)) throw new FormatError(file, `has dtype '${descr}', which arpix cannot read`);
  const count = shape.reduce((a, b) => a * b, 1);
  const dataStart = start + headerLen;
  const expected = dataStart + count * itemSize;
  if (!Number.isSafeInteger(expected)) throw new FormatError(file, `has a shape (${shape.join(', ')}) too large for any file`);
  if (bytes.length < expected) throw new FormatError(file, `is truncated: shape (${shape.join(', ')}) of '${descr}' needs ${expected} bytes, the file has ${bytes.length}`);
  if (bytes.length > expected) throw new FormatError(file, `has ${bytes.length - expected} bytes after the array its header announces`);
  return { descr, shape, data: bytes.subarray(dataStart, expected) };
}

/**
 * The header dict, read strictly as NumPy writes it: a Python literal
 * `{'descr': '<u1', 'fortran_order': False, 'shape': (2, 3), }` (keys in any order, each once),
 * padded with spaces and ending in a newline. Returns what is wrong as a string otherwise.
 */
function parseHeader(text: string): { descr: string; fortran: boolean; shape: number[] } | string {
  let i = 0;
  const ws = () => {
    while (i < text.length && (text[i] === ' ' || text[i] === '\t')) i++;
  };
  const eat = (s: string): boolean => {
    ws();
    if (!text.startsWith(s, i)) return false;
    i += s.length;
    return true;
  };
  const str = (): string | null => {
    ws();
    const m = /^'([^'\\\n]*)'/.exec(text.slice(i));
    if (!m) return null;
    i += m[0].length;
    return m[1]!;
  };
  if (!eat('{')) return "no '{'";
  const found = new Map<string, unknown>();
  while (!eat('}')) {
    const key = str();
    if (key === null) return 'a key is not a quoted string';
    if (found.has(key)) return `'${key}' appears twice`;
    if (!eat(':')) return `no ':' after '${key}'`;
    if (key === 'descr') {
      const v = str();
      if (v === null) return "'descr' is not a string";
      found.set(key, v);
    } else if (key === 'fortran_order') {
      if (eat('True')) found.set(key, true);
      else if (eat('False')) found.set(key, false);
      else return "'fortran_order' is not True or False";
    } else if (key === 'shape') {
      if (!eat('(')) return "'shape' is not a tuple";
      const dims: number[] = [];
      let comma = false;
      for (;;) {
        if (eat(')')) break;
        ws();
        const m = /^[0-9]+/.exec(text.slice(i));
        if (!m || (dims.length > 0 && !comma)) return "'shape' is not a tuple of integers";
        i += m[0].length;
        dims.push(Number(m[0]));
        comma = eat(',');
      }
      if (dims.length === 1 && !comma) return "'shape' of one dimension needs a trailing comma: (n,)";
      found.set(key, dims);
    } else {
      return `unknown key '${key}'`;
    }
    if (!eat(',')) {
      if (eat('}')) break;
      return "no ',' between entries";
    }
  }
  ws();
  if (text.slice(i) !== '\n') return 'bytes after the dict, or no final newline';
  for (const k of ['descr', 'fortran_order', 'shape']) if (!found.has(k)) return `'${k}' is missing`;
  return { descr: found.get('descr') as string, fortran: found.get('fortran_order') as boolean, shape: found.get('shape') as number[] };
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
