// Images a user hands to `arpix complete` or `arpix compress`: one PNG or JPEG, a .npy array of
// uint8 images, an IDX file (MNIST's format, gzipped or not), or a folder of PNG / JPEG files
// (sorted by name). Nothing is resized or converted behind the user's
// back: an image of the wrong size or colour is an error that says what the model takes.

import { readdirSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { decodeImage } from '../data/decode.js';
import { readIdxImages } from '../data/idx.js';
import { parseNpy } from '../data/npy.js';
import { fixedLookupTable, type PixelTransform } from '../data/transforms.js';
import { FormatError } from '../errors.js';
import { MAX_DATA_FILE, MAX_IMAGE_FILE, readRegularFile } from '../io/files.js';
import { Tensor } from '../tensor/tensor.js';

/** An IDX image file as MNIST ships it (t10k-images-idx3-ubyte, optionally gzipped), or *.idx. */
const IDX_NAME = /(-idx[34]-ubyte|\.idx[34]?)(\.gz)?$/i;

export interface ImageSpec {
  height: number;
  width: number;
  channels: number;
}

function describe(s: ImageSpec): string {
  return `${s.height}×${s.width} ${s.channels === 1 ? 'grey' : 'RGB'} images`;
}


function fromImageFile(file: string, spec: ImageSpec): Uint8Array {
  let img;
  try {
    img = decodeImage(readRegularFile(file, MAX_IMAGE_FILE, 'a PNG or JPEG image'));
  } catch (e) {
    if (e instanceof FormatError) throw e;
    throw new FormatError(file, `${(e as Error).message}; give a PNG, a JPEG or a .npy file`);
  }
  if (img.height !== spec.height || img.width !== spec.width) {
    throw new FormatError(file, `is ${img.height}×${img.width} but the model takes ${describe(spec)}; resize or crop it first`);
  }
  if (img.channels !== spec.channels) {
    throw new FormatError(file, `is ${img.channels === 1 ? 'grey' : 'RGB'} but the model takes ${describe(spec)}; convert it first`);
  }
  return img.data;
}

function fromNpy(file: string, spec: ImageSpec): { data: Uint8Array; n: number } {
  const a = parseNpy(readRegularFile(file, MAX_DATA_FILE, 'a .npy file'), file);
  if (a.descr !== '|u1' && a.descr !== '<u1') throw new FormatError(file, `holds dtype ${a.descr}; images must be uint8`);
  const s = a.shape;
  const [n, h, w, c] = s.length === 3 ? [s[0]!, s[1]!, s[2]!, 1] : s.length === 4 ? [s[0]!, s[1]!, s[2]!, s[3]!] : [0, 0, 0, 0];
  if (s.length < 3 || s.length > 4 || h !== spec.height || w !== spec.width || c !== spec.channels) {
    throw new FormatError(file, `has shape [${s.join(', ')}] but the model takes ${describe(spec)}: [N, ${spec.height}, ${spec.width}${spec.channels === 1 ? '' : `, ${spec.channels}`}]`);
  }
  if (n === 0) throw new FormatError(file, 'holds no images');
  return { data: a.data, n };
}

/**
 * Reads images for completion as int32 [N, H, W, C] in the model's levels (the 8-bit values mapped
 * by the run's deterministic transform: quantised, or thresholded for binarised data).
 */
export function readImages(path: string, spec: ImageSpec, transform: PixelTransform, limit = Infinity): Tensor {
  let stat;
  try {
    stat = statSync(path);
  } catch {
    throw new FormatError(path, 'does not exist; give a PNG, a JPEG, a .npy file or a folder of images');
  }
  const size = spec.height * spec.width * spec.channels;
  let raw: Uint8Array;
  let n: number;
  if (stat.isDirectory()) {
    const files = readdirSync(path).filter((f) => /\.(png|jpe?g)$/i.test(f)).sort().slice(0, limit);
    if (files.length === 0) throw new FormatError(path, 'holds no .png or .jpg images');
    n = files.length;
    raw = new Uint8Array(n * size);
    files.forEach((f, i) => raw.set(fromImageFile(join(path, f), spec), i * size));
  } else if (/\.npy$/i.test(path)) {
    const a = fromNpy(path, spec);
    n = Math.min(a.n, limit);
    raw = a.data.subarray(0, n * size);
  } else if (IDX_NAME.test(path)) {
    const a = readIdxImages(path);
    const [an, h, w, c] = a.shape;
    if (h !== spec.height || w !== spec.width || c !== spec.channels) {
      throw new FormatError(path, `holds [${a.shape.join(', ')}] images but the model takes ${describe(spec)}`);
    }
    n = Math.min(an, limit);
    raw = a.images.subarray(0, n * size);
  } else {
    n = 1;
    raw = fromImageFile(path, spec);
  }
  const lut = fixedLookupTable(transform);
  const out = new Int32Array(n * size);
  for (let i = 0; i < out.length; i++) out[i] = lut[raw[i]!]!;
  return new Tensor(out, [n, spec.height, spec.width, spec.channels]);
}
