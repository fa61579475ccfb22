// Pixel transforms: what integer values a model sees. Quantising to 2^b levels (PixelCNN++'s
// reduced-bit CIFAR, Glow's 5-bit images) keeps floor(v · 2^b / 256); fixed binarisation
// thresholds intensity; dynamic binarisation (Salakhutdinov & Murray 2008, the usual protocol for
// binarised MNIST) redraws every pixel as Bernoulli(v / 255) each epoch, from counter-based
// randomness keyed by (seed, epoch, image index), so resuming reproduces the same draws.

import { ArgumentError } from '../errors.js';
import { imageSize, type Dataset } from './dataset.js';
import { STREAM, hashKey, uniformU32 } from './rng.js';

export type PixelTransform =
  | { kind: 'none' }
  | { kind: 'quantise'; bits: number }
  | { kind: 'binarise'; threshold?: number }
  | { kind: 'dynamic-binarise' };

/** Number of distinct values after the transform (256, 2^bits, or 2). */
export function levelsOf(t: PixelTransform): number {
  switch (t.kind) {
    case 'none': return 256;
    case 'quantise': return 2 ** t.bits;
    case 'binarise':
    case 'dynamic-binarise': return 2;
  }
}

export function checkTransform(op: string, t: PixelTransform): void {
  if (t.kind === 'quantise' && (!Number.isInteger(t.bits) || t.bits < 1 || t.bits > 8)) {
    throw new ArgumentError(op, 'transform.bits', `must be an integer in 1..8, got ${t.bits}`);
  }
  if (t.kind === 'binarise' && t.threshold !== undefined && (!Number.isInteger(t.threshold) || t.threshold < 1 || t.threshold > 255)) {
    throw new ArgumentError(op, 'transform.threshold', `must be an integer in 1..255 (pixels >= threshold become 1), got ${t.threshold}`);
  }
  if (!['none', 'quantise', 'binarise', 'dynamic-binarise'].includes(t.kind)) {
    throw new ArgumentError(op, 'transform.kind', `must be none, quantise, binarise or dynamic-binarise, got '${(t as { kind: string }).kind}'`);
  }
}

/**
 * The value each uint8 maps to, for the deterministic transforms: a 256-entry table, so a batch is
 * one lookup per pixel. Null for dynamic binarisation, which is random.
 */
export function lookupTable(t: PixelTransform): Int32Array | null {
  const lut = new Int32Array(256);
  switch (t.kind) {
    case 'none': for (let v = 0; v < 256; v++) lut[v] = v; return lut;
    case 'quantise': for (let v = 0; v < 256; v++) lut[v] = v >> (8 - t.bits); return lut;
    case 'binarise': { const th = t.threshold ?? 128; for (let v = 0; v < 256; v++) lut[v] = v >= th ? 1 : 0; return lut; }
    case 'dynamic-binarise': return null;
  }
}

/**
 * The table for images a user hands in (completion, the web app): a transform's deterministic
 * counterpart, where dynamic binarisation (random) becomes the fixed threshold it averages to.
 */
export function fixedLookupTable(t: PixelTransform): Int32Array {
  return lookupTable(t.kind === 'dynamic-binarise' ? { kind: 'binarise' } : t)!;
}

/** P(1) = v / 255 as a uint32 threshold: a draw u ∈ [0, 2^32) gives 1 when u < THRESH[v]. */
const BERNOULLI_THRESH = Float64Array.from({ length: 256 }, (_, v) => Math.round((v / 255) * 0x100000000));

/**
 * Writes image `index` of `ds`, transformed, into out[offset..]. Dynamic binarisation draws from
 * (seed, epoch, index); the deterministic transforms use `lut`. Each kind has its own loop so
 * that each stays monomorphic and fast (the loader's throughput is this function).
 */
export function transformImageInto(
  ds: Dataset, index: number, t: PixelTransform, lut: Int32Array | null,
  seed: number, epoch: number, out: Int32Array, offset: number,
): void {
  const size = imageSize(ds);
  const base = index * size;
  if (t.kind === 'none') out.set(ds.images.subarray(base, base + size), offset); // widening copy, done natively
  else if (lut) lutInto(ds.images, base, size, lut, out, offset);
  else bernoulliInto(ds.images, base, size, hashKey(seed, STREAM.binarise, epoch, index), out, offset);
}

function lutInto(src: Uint8Array, base: number, size: number, lut: Int32Array, out: Int32Array, offset: number): void {
  for (let p = 0; p < size; p++) out[offset + p] = lut[src[base + p]];
}

function bernoulliInto(src: Uint8Array, base: number, size: number, key: number, out: Int32Array, offset: number): void {
  for (let p = 0; p < size; p++) out[offset + p] = uniformU32(key, p) < BERNOULLI_THRESH[src[base + p]] ? 1 : 0;
}

/** Transforms are defined on raw 8-bit images; applying one twice would silently mangle them. */
export function checkRaw(op: string, ds: Dataset): void {
  if (ds.levels !== 256) throw new ArgumentError(op, 'dataset', `${ds.name}/${ds.split} already has ${ds.levels} levels; transforms apply to raw 8-bit images only`);
}

function mapDataset(ds: Dataset, levels: number, fn: (v: number) => number): Dataset {
  const images = new Uint8Array(ds.images.length);
  for (let i = 0; i < images.length; i++) images[i] = fn(ds.images[i]);
  return { ...ds, images, levels };
}

/** The whole dataset quantised to 2^bits levels (values 0..2^bits-1). */
export function quantise(ds: Dataset, bits: number): Dataset {
  checkTransform('quantise', { kind: 'quantise', bits });
  checkRaw('quantise', ds);
  return mapDataset(ds, 2 ** bits, (v) => v >> (8 - bits));
}

/** The whole dataset binarised at a fixed threshold: v >= threshold → 1, else 0. */
export function binarise(ds: Dataset, threshold = 128): Dataset {
  checkTransform('binarise', { kind: 'binarise', threshold });
  checkRaw('binarise', ds);
  return mapDataset(ds, 2, (v) => (v >= threshold ? 1 : 0));
}

/** One epoch's dynamic binarisation of the whole dataset (the loader does the same per batch). */
export function dynamicBinarise(ds: Dataset, seed: number, epoch: number): Dataset {
  checkRaw('dynamicBinarise', ds);
  const size = imageSize(ds);
  const out = new Int32Array(size);
  const images = new Uint8Array(ds.images.length);
  for (let i = 0; i < ds.shape[0]; i++) {
    transformImageInto(ds, i, { kind: 'dynamic-binarise' }, null, seed, epoch, out, 0);
    images.set(out, i * size);
  }
  return { ...ds, images, levels: 2 };
}
