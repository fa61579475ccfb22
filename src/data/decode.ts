// Decoding one PNG or JPEG file into a fixed-size grey or RGB uint8 image: decode (fast-png,
// jpeg-js), convert to 8-bit grey or RGB, centre-crop to a square, resize. Pure functions of the
// file's bytes, shared by the folder loader's worker threads and its in-thread fallback.

import { decode as decodePng, convertIndexedToRgb } from 'fast-png';
import jpeg from 'jpeg-js';

/** A decoded image, 8 bits per value, channels last, alpha already dropped. */
export interface RawImage {
  width: number;
  height: number;
  channels: 1 | 3;
  data: Uint8Array;
}

export type ImageKind = 'png' | 'jpeg';

export function sniffImage(bytes: Uint8Array): ImageKind | null {
  if (bytes.length >= 8 && bytes[0] === 0x89 && bytes[1] === 0x50 && bytes[2] === 0x4e && bytes[3] === 0x47) return 'png';
  if (bytes.length >= 3 && bytes[0] === 0xff && bytes[1] === 0xd8 && bytes[2] === 0xff) return 'jpeg';
  return null;
}

/**
 * Decodes PNG or JPEG bytes (recognised by content, not by name). Throws a plain Error with a short
 * reason; the caller adds the file name.
 */
export function decodeImage(bytes: Uint8Array): RawImage {
  const kind = sniffImage(bytes);
  if (kind === 'png') return fromPng(bytes);
  if (kind === 'jpeg') {
    // The limits keep a hostile or huge file from exhausting memory inside a worker.
    const img = jpeg.decode(bytes, { useTArray: true, formatAsRGBA: false, maxResolutionInMP: 100, maxMemoryUsageInMB: 1024 });
    return { width: img.width, height: img.height, channels: 3, data: img.data };
  }
  throw new Error('is neither a PNG nor a JPEG (unknown signature)');
}

function fromPng(bytes: Uint8Array): RawImage {
  const png = decodePng(bytes);
  const { width, height } = png;
  if (png.palette) {
    const rgb = convertIndexedToRgb(png);
    const per = png.palette[0]?.length ?? 3;
    return dropAlpha(rgb, width, height, per, 8);
  }
  let data: Uint8Array | Uint16Array | Uint8ClampedArray = png.data;
  if (png.depth < 8) data = unpackBits(png.data, width, height, png.channels, png.depth);
  return dropAlpha(data, width, height, png.channels, png.depth === 16 ? 16 : 8);
}

/** Grey PNGs of depth 1, 2 or 4 come packed, rows padded to whole bytes; spread them to 0..255. */
function unpackBits(packed: ArrayLike<number>, width: number, height: number, channels: number, depth: number): Uint8Array {
  const out = new Uint8Array(width * height * channels);
  const rowBytes = Math.ceil((width * channels * depth) / 8);
  const max = (1 << depth) - 1;
  for (let y = 0; y < height; y++) {
    for (let i = 0; i < width * channels; i++) {
      const bit = i * depth;
      const byte = packed[y * rowBytes + (bit >> 3)];
      const v = (byte >> (8 - depth - (bit & 7))) & max;
      out[y * width * channels + i] = Math.round((v * 255) / max);
    }
  }
  return out;
}

/** Keeps grey or RGB, drops an alpha channel, and brings 16-bit values to 8 bits. */
function dropAlpha(data: ArrayLike<number>, width: number, height: number, channels: number, depth: 8 | 16): RawImage {
  const keep = channels >= 3 ? 3 : 1;
  const n = width * height;
  const out = new Uint8Array(n * keep);
  const scale = depth === 16 ? 1 / 257 : 1;
  for (let p = 0; p < n; p++) {
    for (let c = 0; c < keep; c++) out[p * keep + c] = Math.round(data[p * channels + c] * scale);
  }
  return { width, height, channels: keep, data: out };
}

/** Grey from RGB by ITU-R BT.601 luma, the weights PIL's convert('L') uses. */
export function toChannels(img: RawImage, channels: 1 | 3): RawImage {
  if (img.channels === channels) return img;
  const n = img.width * img.height;
  const out = new Uint8Array(n * channels);
  if (channels === 1) {
    for (let p = 0; p < n; p++) out[p] = Math.round(0.299 * img.data[3 * p] + 0.587 * img.data[3 * p + 1] + 0.114 * img.data[3 * p + 2]);
  } else {
    for (let p = 0; p < n; p++) out[3 * p] = out[3 * p + 1] = out[3 * p + 2] = img.data[p];
  }
  return { ...img, channels, data: out };
}

/** Source taps and weights of each output position along one axis. */
interface Taps { index: Int32Array[]; weight: Float32Array[] }

/**
 * Resampling weights from `src` samples to `dst`: when shrinking, each output averages the source
 * interval it covers (area / box filter, which does not alias); when growing, bilinear with pixel
 * centres aligned, edges clamped.
 */
function taps(src: number, dst: number): Taps {
  const index: Int32Array[] = [];
  const weight: Float32Array[] = [];
  const scale = src / dst;
  for (let o = 0; o < dst; o++) {
    if (scale >= 1) {
      const a = o * scale;
      const b = a + scale;
      const first = Math.floor(a);
      const last = Math.min(src - 1, Math.ceil(b) - 1);
      const idx = new Int32Array(last - first + 1);
      const w = new Float32Array(last - first + 1);
      for (let s = first; s <= last; s++) {
        idx[s - first] = s;
        w[s - first] = (Math.min(b, s + 1) - Math.max(a, s)) / scale;
      }
      index.push(idx);
      weight.push(w);
    } else {
      const x = Math.min(src - 1, Math.max(0, (o + 0.5) * scale - 0.5));
      const i0 = Math.floor(x);
      const i1 = Math.min(src - 1, i0 + 1);
      const f = x - i0;
      index.push(Int32Array.of(i0, i1));
      weight.push(Float32Array.of(1 - f, f));
    }
  }
  return { index, weight };
}

/** Centre-crops to a square (when `size` is given) and resizes to size×size. */
export function cropResize(img: RawImage, size: number): RawImage {
  const m = Math.min(img.width, img.height);
  const x0 = (img.width - m) >> 1;
  const y0 = (img.height - m) >> 1;
  if (m === size && img.width === img.height) return img;
  const c = img.channels;
  const tx = taps(m, size);
  const ty = taps(m, size);
  // Horizontal pass over the cropped rows, then vertical; floats in between so rounding happens once.
  const mid = new Float32Array(m * size * c);
  for (let y = 0; y < m; y++) {
    const row = (y0 + y) * img.width;
    for (let x = 0; x < size; x++) {
      const idx = tx.index[x];
      const w = tx.weight[x];
      for (let ch = 0; ch < c; ch++) {
        let acc = 0;
        for (let k = 0; k < idx.length; k++) acc += w[k] * img.data[(row + x0 + idx[k]) * c + ch];
        mid[(y * size + x) * c + ch] = acc;
      }
    }
  }
  const out = new Uint8Array(size * size * c);
  for (let y = 0; y < size; y++) {
    const idx = ty.index[y];
    const w = ty.weight[y];
    for (let x = 0; x < size * c; x++) {
      let acc = 0;
      for (let k = 0; k < idx.length; k++) acc += w[k] * mid[idx[k] * size * c + x];
      out[y * size * c + x] = Math.min(255, Math.max(0, Math.round(acc)));
    }
  }
  return { width: size, height: size, channels: img.channels, data: out };
}

export interface PrepareOptions {
  /** Output side in pixels (centre crop + resize); null keeps each image's own size. */
  size: number | null;
  channels: 1 | 3;
}

/** Bytes of a PNG/JPEG file → the image the dataset stores. */
export function prepareImage(bytes: Uint8Array, opts: PrepareOptions): RawImage {
  const img = toChannels(decodeImage(bytes), opts.channels);
  return opts.size === null ? img : cropResize(img, opts.size);
}
