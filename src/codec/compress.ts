// Files of images coded by a model (format.ts), and back: what `arpix compress` and `arpix
// decompress` run. A file names the model (a digest of its config and the weights used), the pixel
// transform, and the numeric setup that computed its probabilities; decoding checks each before it
// starts, and the decoded values against the file's digest of them before it returns them.

import { sha256 } from '../env.js';
import { ArgumentError, FormatError } from '../errors.js';
import { backendName, nativeBackend, registeredBackend, setBackend } from '../backends/registry.js';
import { lookupTable, type PixelTransform } from '../data/transforms.js';
import { isPaletteHead } from '../likelihoods/index.js';
import type { AutoregressiveModel } from '../models/core/model.js';
import { Tensor } from '../tensor/tensor.js';
import { ARPIX_VERSION } from '../version.js';
import { DEFAULT_BLOCK, decodeImages, encodeImages, valuesDigest } from './codec.js';
import { readCompressed, writeCompressed, type CodecMode, type CompressedHeader, type NumericSetup } from './format.js';

export { CODEC_MODES, type CodecMode } from './format.js';

/** Values a file may decode to at once (int32 each): 4 GiB. */
const MAX_ELEMENTS = 2 ** 30;

/** The first 128 bits (32 hex digits) of the SHA-256 of the model's config and its weights (sorted by name): a file decodes only with these. */
export function modelDigest(model: AutoregressiveModel): string {
  const h = sha256();
  h.update(JSON.stringify(model.config));
  const sd = model.stateDict();
  for (const key of Object.keys(sd).sort()) {
    const t = sd[key]!;
    h.update(`\0${key}\0${t.dtype}\0${t.shape.join(',')}\0`);
    h.update(new Uint8Array(t.data.buffer, t.data.byteOffset, t.data.byteLength));
  }
  return h.hex().slice(0, 32);
}

/** What the native backend tells of itself: its OpenMP threads and oneDNN's ISA. */
interface NativeControl {
  threads(): number;
  setThreads(n: number): void;
  cpuCapabilities?(): { isa: string };
}

/** The native backend's own controls, or null where it is not loaded. */
function nativeControl(): NativeControl | null {
  const b = nativeBackend() as Partial<NativeControl> | null;
  return b && typeof b.threads === 'function' && typeof b.setThreads === 'function' ? (b as NativeControl) : null;
}

/** The numbers of this process for a mode: what a file records, and what a decoder must match. */
export function numericSetup(mode: CodecMode, block: number): NumericSetup {
  if (mode === 'portable') return { mode, isa: null, block, threads: 0, arpixVersion: ARPIX_VERSION };
  if (mode === 'wasm') {
    if (registeredBackend('wasm') === null) throw new ArgumentError('compress', 'mode', 'wasm needs the WebAssembly backend, which is not loaded here: build it with `npm run build:wasm`, or use --portable');
    // Single-threaded, and the same bits on every machine: only the kernels' version matters.
    return { mode, isa: null, block, threads: 0, arpixVersion: ARPIX_VERSION };
  }
  if (backendName() !== 'native') throw new ArgumentError('compress', 'mode', 'native needs the native backend, which is not loaded here; use --portable');
  const native = nativeControl();
  return { mode, isa: native?.cpuCapabilities?.().isa ?? 'unknown', block, threads: Math.min(255, native?.threads() ?? 1), arpixVersion: ARPIX_VERSION };
}

/**
 * Runs fn on the backend a mode computes with (a native file's decoder with its encoder's thread
 * count: a kernel may divide its work by the threads), and restores the backend and threads before.
 */
function inMode<T>(mode: CodecMode, fn: () => T, threads = 0): T {
  const before = backendName();
  setBackend(mode === 'portable' ? 'ts' : mode);
  const omp = mode === 'native' && threads > 0 ? nativeControl() : null;
  const threadsBefore = omp?.threads() ?? 0;
  if (omp && threads !== threadsBefore) omp.setThreads(threads);
  try {
    return fn();
  } finally {
    if (omp && threads !== threadsBefore) omp.setThreads(threadsBefore);
    setBackend(before);
  }
}

/** Why this process cannot compute a file's probabilities and what to do, or null when it can. */
export function setupMismatch(file: NumericSetup): string | null {
  if (file.mode === 'portable') return null;
  if (file.mode === 'wasm') {
    if (registeredBackend('wasm') === null) return 'it was written in wasm mode, and the WebAssembly backend is not loaded here; build it with `npm run build:wasm`, or decode the file where it is loaded';
    if (file.arpixVersion !== ARPIX_VERSION) return `it was written in wasm mode by arpix ${file.arpixVersion}, and this is arpix ${ARPIX_VERSION}, whose WebAssembly kernels may round differently; decode it with arpix ${file.arpixVersion}`;
    return null;
  }
  const fix = 'decode it on a machine like the encoder\'s, or compress with --portable';
  if (backendName() !== 'native') return `it was written in native mode, and the native backend is not loaded here; ${fix}`;
  const here = numericSetup('native', file.block);
  if (here.isa !== file.isa) return `it was written in native mode where oneDNN ran ${file.isa ?? 'an unknown ISA'}, and here it runs ${here.isa ?? 'an unknown ISA'}, whose kernels round differently; ${fix}`;
  if (here.arpixVersion !== file.arpixVersion) return `it was written in native mode by arpix ${file.arpixVersion}, and this is arpix ${here.arpixVersion}, whose kernels may round differently; ${fix}`;
  return null;
}

/** The transform a file codes with: dynamic binarisation is random, so its files threshold instead. */
export function codecTransform(t: PixelTransform): PixelTransform {
  return t.kind === 'dynamic-binarise' ? { kind: 'binarise' } : t;
}

/** 8-bit pixels → the values the model codes. */
export function toValues(pixels: Uint8Array, t: PixelTransform): Int32Array {
  const lut = lookupTable(codecTransform(t));
  return lut ? Int32Array.from(pixels, (v) => lut[v]!) : Int32Array.from(pixels);
}

/** The values a model codes → 8-bit pixels: v << (8 − bits) for quantised, 0/255 for binarised. */
export function fromValues(values: Int32Array, t: PixelTransform): Uint8Array {
  const c = codecTransform(t);
  if (c.kind === 'quantise') return Uint8Array.from(values, (v) => v << (8 - c.bits));
  if (c.kind === 'binarise') return Uint8Array.from(values, (v) => v * 255);
  return Uint8Array.from(values);
}

/** The first pixel the transform does not keep, or -1 when it maps these pixels back exactly. */
export function firstLossyPixel(pixels: Uint8Array, t: PixelTransform): number {
  const back = fromValues(toValues(pixels, t), t);
  for (let i = 0; i < pixels.length; i++) if (back[i] !== pixels[i]) return i;
  return -1;
}

/**
 * For a palette head, the images as its nearest colours, and the first pixel (index over N·H·W)
 * that is not a palette colour (-1 when all are): a palette model codes colours only, so only
 * those round-trip.
 */
export function paletteColours(model: AutoregressiveModel, values: Tensor): { nearest: Tensor; firstOff: number } | null {
  const head = model.likelihood;
  if (!isPaletteHead(head) || head.palette === null) return null;
  const tokens = head.tokens(values).data as Int32Array;
  const c = model.config.channels;
  const colours = head.palette.colours;
  const out = new Int32Array(values.size);
  let firstOff = -1;
  for (let q = 0; q < tokens.length; q++) {
    for (let ch = 0; ch < c; ch++) {
      out[q * c + ch] = colours[tokens[q]! * c + ch]!;
      if (firstOff < 0 && out[q * c + ch] !== values.data[q * c + ch]) firstOff = q;
    }
  }
  return { nearest: new Tensor(out, values.shape), firstOff };
}

export interface CompressOptions {
  mode?: CodecMode;
  block?: number;
  weights: 'ema' | 'raw';
  transform: PixelTransform;
  labels?: Int32Array | null;
  onBlock?: (done: number, total: number) => void;
}

export interface Compressed {
  bytes: Uint8Array;
  header: CompressedHeader;
  /** Σ −log₂ of the coded probabilities: the stream's ideal length in bits. */
  idealBits: number;
}

/** Codes model-domain values int32 [N, H, W, C] into a file's bytes. */
export function compressValues(model: AutoregressiveModel, values: Tensor, o: CompressOptions): Compressed {
  const mode = o.mode ?? 'native';
  const block = o.block ?? DEFAULT_BLOCK;
  if (model.config.conditionDim > 0) throw new ArgumentError('compress', 'model', 'is conditioned on vectors (conditionDim > 0), which a file would have to carry; compress works with unconditional and class-conditional models');
  const numeric = numericSetup(mode, block);
  const [n, h, w, c] = values.shape as [number, number, number, number];
  const off = paletteColours(model, values)?.firstOff ?? -1;
  if (off >= 0) {
    const colour = Array.from(values.data.subarray(off * c, (off + 1) * c)).join(', ');
    throw new ArgumentError('compress', 'images', `hold (${colour}) at pixel ${off % (h * w)} of image ${Math.floor(off / (h * w))}, which is not a colour of the model's palette: a palette model codes its colours only (map the images to their nearest colours first: arpix compress --quantize does)`);
  }
  const { stream, idealBits } = inMode(mode, () => encodeImages(model, values, { block, labels: o.labels, onBlock: o.onBlock }));
  const header: CompressedHeader = {
    model: { digest: modelDigest(model), kind: model.config.kind, weights: o.weights, height: h, width: w, channels: c },
    images: { count: n, labeled: o.labels != null, transform: codecTransform(o.transform), values: valuesDigest(values, o.labels) },
    numeric,
  };
  return { bytes: writeCompressed(header, stream), header, idealBits };
}

/** Reads and checks a file, then decodes its values with `model`; refuses anything it cannot decode exactly. */
export function decompressBytes(bytes: Uint8Array, file: string, model: AutoregressiveModel, onBlock?: (done: number, total: number) => void): { values: Tensor; labels: Int32Array | null; header: CompressedHeader } {
  const { header, stream } = readCompressed(bytes, file);
  const m = header.model;
  const cfg = model.config;
  if (m.height !== cfg.height || m.width !== cfg.width || m.channels !== cfg.channels || m.kind !== cfg.kind || m.digest !== modelDigest(model)) {
    throw new FormatError(file, `was written with another model (${m.kind}, ${m.weights} weights, digest ${m.digest.slice(0, 12)}…); decode it with the run it was compressed with${m.weights === 'raw' ? ' and --raw' : ''}`);
  }
  const why = setupMismatch(header.numeric);
  if (why !== null) throw new FormatError(file, `cannot be decoded exactly here: ${why}`);
  if (header.images.labeled !== cfg.numClasses > 0) throw new FormatError(file, `carries ${header.images.labeled ? 'class labels, but the model is unconditional' : 'no class labels, but the model is class-conditional'}; the file is damaged`);
  const elements = header.images.count * cfg.height * cfg.width * cfg.channels;
  if (elements > MAX_ELEMENTS) throw new FormatError(file, `declares ${header.images.count} images (${elements} values), more than arpix decodes at once (${MAX_ELEMENTS}); the file is damaged, or split the images into several files`);
  const { images: values, labels } = inMode(header.numeric.mode, () => decodeImages(model, stream, header.images.count, file, { block: header.numeric.block, onBlock }), header.numeric.threads);
  if (valuesDigest(values, labels) !== header.images.values) {
    throw new FormatError(file, 'decoded to values whose SHA-256 differs from the one it was written with: the probabilities here differ from the encoder\'s; nothing was written — compress with --portable to decode anywhere');
  }
  return { values, labels, header };
}
