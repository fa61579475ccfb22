// Decoding one PNG or JPEG file into a fixed-size grey or RGB uint8 image: decode (fast-png,
// jpeg-js), convert to 8-bit grey or RGB, centre-crop to a square, resize. Pure functions of the
// file's bytes, shared by the folder loader's worker threads and its in-thread fallback. The size
// a file declares is read and bounded before anything is decoded: a few hundred kilobytes of
// compressed zeros can declare gigabytes of pixels.

import { inflateSync } from 'node:zlib';
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

/** Pixels (width · height) an image may declare unless the caller asks for fewer. */
export const MAX_IMAGE_PIXELS = 100_000_000;

export interface DecodeOptions {
  /** Refuse, before decoding, an image that declares more pixels than this (default MAX_IMAGE_PIXELS). */
  maxPixels?: number;
}

export function sniffImage(bytes: Uint8Array): ImageKind | null {
  if (bytes.length >= 8 && bytes[0] === 0x89 && bytes[1] === 0x50 && bytes[2] === 0x4e && bytes[3] === 0x47) return 'png';
  if (bytes.length >= 3 && bytes[0] === 0xff && bytes[1] === 0xd8 && bytes[2] === 0xff) return 'jpeg';
  return null;
}

/**
 * Decodes PNG or JPEG bytes (recognised by content, not by name). Throws a plain Error with a short
 * reason; the caller adds the file name.
 */
export function decodeImage(bytes: Uint8Array, opts: DecodeOptions = {}): RawImage {
  const kind = sniffImage(bytes);
  const maxPixels = opts.maxPixels ?? MAX_IMAGE_PIXELS;
  try {
    if (kind === 'png') return fromPng(bytes, maxPixels);
    if (kind === 'jpeg') return fromJpeg(bytes, maxPixels);
  } catch (e) {
    // The decoders' own slips on damaged data (reading past a table, a missing segment) mean the
    // file is damaged, not that arpix failed; their wording is not for users.
    if (e instanceof TypeError || e instanceof RangeError) throw new Error(`is a damaged ${kind === 'png' ? 'PNG' : 'JPEG'} (its data do not decode)`, { cause: e });
    throw e;
  }
  throw new Error('is neither a PNG nor a JPEG (unknown signature)');
}

/** What a PNG's IHDR or a JPEG's frame header declares, read without decoding any pixel. */
export interface ImageHeader {
  kind: ImageKind;
  width: number;
  height: number;
}

/**
 * The kind and size an image file declares. Throws a plain Error with a short reason when the
 * header is missing or cut off; the caller adds the file name.
 */
export function readImageHeader(bytes: Uint8Array): ImageHeader {
  const kind = sniffImage(bytes);
  if (kind === 'png') {
    const { width, height } = pngHeader(bytes);
    return { kind, width, height };
  }
  if (kind === 'jpeg') {
    const frame = jpegFrame(bytes);
    if (frame === null) throw new Error('is a damaged JPEG (no readable frame header before its image data)');
    return { kind, width: frame.width, height: frame.height };
  }
  throw new Error('is neither a PNG nor a JPEG (unknown signature)');
}

/**
 * The size and colour components a JPEG's frame header (SOF0..SOF15, except DHT, JPG and DAC)
 * declares, walking the marker segments from the start; null when no frame header is found.
 */
function jpegFrame(bytes: Uint8Array): { width: number; height: number; components: number } | null {
  let i = 2;
  while (i + 4 <= bytes.length) {
    if (bytes[i] !== 0xff) return null;
    const marker = bytes[i + 1]!;
    if (marker === 0xff) {
      i++; // fill byte
      continue;
    }
    const len = (bytes[i + 2]! << 8) | bytes[i + 3]!;
    if (marker >= 0xc0 && marker <= 0xcf && marker !== 0xc4 && marker !== 0xc8 && marker !== 0xcc) {
      if (i + 9 >= bytes.length) return null;
      return { height: (bytes[i + 5]! << 8) | bytes[i + 6]!, width: (bytes[i + 7]! << 8) | bytes[i + 8]!, components: bytes[i + 9]! };
    }
    if (marker === 0xda) return null; // the scan started before any frame header
    i += 2 + len;
  }
  return null;
}

/** Refuses, before any decoding, an image larger than `maxPixels`. */
function checkPixels(width: number, height: number, maxPixels: number): void {
  if (width * height > maxPixels) throw new Error(`declares ${width}×${height} pixels, more than the ${maxPixels} allowed here`);
}

function fromJpeg(bytes: Uint8Array, maxPixels: number): RawImage {
  // jpeg-js pads a cut-off file with grey; a whole JPEG ends with its EOI marker.
  if (bytes.length < 4 || bytes[bytes.length - 2] !== 0xff || bytes[bytes.length - 1] !== 0xd9) throw new Error('is a truncated JPEG (no end-of-image marker)');
  const frame = jpegFrame(bytes);
  const components = frame?.components ?? null;
  if (components !== 1 && components !== 3) throw new Error(`is a JPEG with ${components ?? 'no readable'} colour components; grey (1) or YCbCr (3) are read`);
  checkPixels(frame!.width, frame!.height, maxPixels);
  // The limits keep a hostile or huge file from exhausting memory inside a worker; tolerant decoding
  // off, so a damaged marker is an error rather than a guess.
  const img = jpeg.decode(bytes, { useTArray: true, formatAsRGBA: false, tolerantDecoding: false, maxResolutionInMP: 100, maxMemoryUsageInMB: 1024 });
  if (components === 3) return { width: img.width, height: img.height, channels: 3, data: img.data };
  // jpeg-js repeats a grey JPEG's one component three times.
  const grey = new Uint8Array(img.width * img.height);
  for (let p = 0; p < grey.length; p++) grey[p] = img.data[3 * p]!;
  return { width: img.width, height: img.height, channels: 1, data: grey };
}

/** What a PNG's IHDR declares. */
interface PngHeader {
  width: number;
  height: number;
  depth: number;
  colourType: number;
  interlaced: boolean;
}

/** Samples per pixel of each PNG colour type (grey, RGB, palette, grey + alpha, RGBA). */
const PNG_SAMPLES: Record<number, number> = { 0: 1, 2: 3, 3: 1, 4: 2, 6: 4 };

/** The IHDR chunk, which a PNG must begin with (its CRC is checked by the decoder). */
function pngHeader(bytes: Uint8Array): PngHeader {
  if (bytes.length < 33) throw new Error(`is a truncated PNG (${bytes.length} bytes, less than a PNG header)`);
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  if (view.getUint32(8, false) !== 13 || String.fromCharCode(...bytes.subarray(12, 16)) !== 'IHDR') throw new Error('is a damaged PNG (it does not begin with a 13-byte IHDR chunk)');
  const width = view.getUint32(16, false);
  const height = view.getUint32(20, false);
  if (width === 0 || height === 0 || width > 0x7fffffff || height > 0x7fffffff) throw new Error(`is a damaged PNG (its header declares ${width}×${height} pixels)`);
  return { width, height, depth: bytes[24]!, colourType: bytes[25]!, interlaced: bytes[28] !== 0 };
}

/**
 * Walks a PNG's chunks: each must fit in the file, the first must be IHDR, and the file must end
 * exactly with IEND — a cut-off file, or bytes after its end, are refused. (The decoder checks
 * each chunk's CRC.) Returns the IDAT chunks' data, the compressed image.
 */
function checkPngChunks(bytes: Uint8Array): Uint8Array[] {
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const idat: Uint8Array[] = [];
  let i = 8;
  let first = true;
  for (;;) {
    if (i + 12 > bytes.length) throw new Error(`is a truncated PNG (it ends inside a chunk at byte ${i}, before IEND)`);
    const len = view.getUint32(i, false);
    // Printable or not: a damaged type must not break the one-line message.
    const type = String.fromCharCode(...Array.from(bytes.subarray(i + 4, i + 8), (b) => (b >= 0x20 && b < 0x7f ? b : 0x3f)));
    if (first && type !== 'IHDR') throw new Error(`is a damaged PNG (its first chunk is '${type}', not IHDR)`);
    first = false;
    if (len > 0x7fffffff || i + 12 + len > bytes.length) throw new Error(`is a truncated PNG (chunk '${type}' at byte ${i} needs ${len} bytes)`);
    if (type === 'IDAT') idat.push(bytes.subarray(i + 8, i + 8 + len));
    i += 12 + len;
    if (type === 'IEND') break;
  }
  if (i !== bytes.length) throw new Error(`is a damaged PNG (${bytes.length - i} bytes after its IEND chunk)`);
  return idat;
}

/** Bytes a PNG's image data inflate to: each row of each (Adam7) pass, plus its filter byte. */
function pngRawBytes(h: PngHeader): number {
  const samples = PNG_SAMPLES[h.colourType];
  if (samples === undefined) throw new Error(`is a damaged PNG (colour type ${h.colourType} does not exist)`);
  const rowBytes = (w: number) => 1 + Math.ceil((w * samples * h.depth) / 8);
  if (!h.interlaced) return h.height * rowBytes(h.width);
  // Adam7: [x0, y0, dx, dy] of the seven passes.
  const passes = [[0, 0, 8, 8], [4, 0, 8, 8], [0, 4, 4, 8], [2, 0, 4, 4], [0, 2, 2, 4], [1, 0, 2, 2], [0, 1, 1, 2]] as const;
  let total = 0;
  for (const [x0, y0, dx, dy] of passes) {
    const pw = Math.ceil((h.width - x0) / dx);
    const ph = Math.ceil((h.height - y0) / dy);
    if (pw > 0 && ph > 0) total += ph * rowBytes(pw);
  }
  return total;
}

/**
 * Inflates the image data with an output limit of the size the header declares, so a stream that
 * inflates to more (a zip bomb behind a small header) is refused having allocated no more than a
 * valid image needs. The decoder itself inflates without a limit.
 */
function checkPngInflate(idat: Uint8Array[], h: PngHeader): void {
  const need = pngRawBytes(h);
  const data = idat.length === 1 ? idat[0]! : Buffer.concat(idat);
  try {
    inflateSync(data, { maxOutputLength: need });
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ERR_BUFFER_TOO_LARGE') throw new Error(`is a damaged PNG (its image data inflate to more than the ${need} bytes its ${h.width}×${h.height} header declares)`, { cause: e });
    throw new Error(`is a damaged PNG (its image data do not inflate: ${(e as Error).message})`, { cause: e });
  }
}

function fromPng(bytes: Uint8Array, maxPixels: number): RawImage {
  const idat = checkPngChunks(bytes);
  const header = pngHeader(bytes);
  checkPixels(header.width, header.height, maxPixels);
  checkPngInflate(idat, header);
  const png = decodePng(bytes, { checkCrc: true });
  const { width, height } = png;
  // A zlib stream that ends early leaves the image short; the decoder would pad it silently.
  const need = png.depth < 8 ? height * Math.ceil((width * png.channels * png.depth) / 8) : width * height * png.channels;
  if (png.data.length < need) throw new Error(`is a damaged PNG (its image data hold ${png.data.length} of ${need} values)`);
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
