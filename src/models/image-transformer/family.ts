// The Image Transformer family's entry in the family table (src/models/families.ts): its defaults, the
// ranges of its fields, the tiny cases the tests build, its cost from the config alone, its PyTorch
// mirror.

import { transformerCachedStepper } from './cached.js';
import type { ModelFamily } from '../core/family.js';
import { attentionPattern } from '../../ops/index.js';
import { attentionAllowed, type AttentionPattern } from '../../kernels/attention.js';
import { ImageTransformer, imageTransformerDefaults, type ImageTransformerConfig } from './image-transformer.js';

/** The first key position a query at i may read under p (every allowed key is at or after it). */
function firstKey(p: AttentionPattern, i: number): number {
  if (p.kind === 'local1d') return Math.max(0, Math.floor(i / p.block) * p.block - p.memory);
  if (p.kind === 'local2d') {
    const row = Math.floor(i / p.width);
    return Math.max(0, row - (row % p.blockHeight) - p.memoryHeight) * p.width;
  }
  return 0;
}

/**
 * FLOPs per image (2 × multiply-adds of the projections, feed-forwards, head and attention's two
 * products over the keys each query reads) and the receptive field of the last pixel, followed
 * through the attention pattern layer by layer (position s carries the value of s − 1).
 */
function transformerCost(model: ImageTransformer): { flops: number; receptiveField: { pixels: number; of: number } } {
  const { layers, hiddenSize: d, ffSize: f, height: h, width: w } = model.config;
  const l = model.length;
  const p = attentionPattern('image-transformer', model.pattern, l);
  let keys = 0;
  for (let i = 0; i < l; i++) for (let j = firstKey(p, i); j <= i; j++) if (attentionAllowed(p, i, j)) keys++;
  const perLayer = l * 2 * (4 * d * d + 2 * d * f) + 2 * 2 * keys * d;
  const input = model.embed ? 0 : l * 2 * model.config.channels * d;
  const flops = layers * perLayer + input + l * 2 * d * (model.paramsPerPixel / model.subPositions);
  // Positions that reach the last pixel's outputs through `layers` attention layers.
  let reach = new Set<number>(Array.from({ length: model.subPositions }, (_, k) => l - 1 - k));
  for (let layer = 0; layer < layers; layer++) {
    const next = new Set<number>();
    for (const i of reach) for (let j = firstKey(p, i); j <= i; j++) if (attentionAllowed(p, i, j)) next.add(j);
    reach = next;
  }
  const last = h * w - 1;
  const pixels = new Set<number>();
  for (const s of reach) if (s > 0 && Math.floor((s - 1) / model.subPositions) < last) pixels.add(Math.floor((s - 1) / model.subPositions));
  return { flops, receptiveField: { pixels: pixels.size, of: last } };
}

/** The smallest divisor ≥ 2 of n (n itself when prime), a block width that tiles a tiny grid. */
function smallBlock(n: number): number {
  for (let k = 2; k < n; k++) if (n % k === 0) return k;
  return n;
}

const tinyTransformer = { layers: 2, hiddenSize: 8, heads: 2, ffSize: 12, dropout: 0 };

export const imageTransformerFamily: ModelFamily<ImageTransformerConfig> = {
  kind: 'image-transformer',
  paper: 'Parmar et al. 2018, "Image Transformer"',
  mirror: 'image_transformer',
  defaults: imageTransformerDefaults,
  build: (config, generator) => new ImageTransformer(config, generator).withCachedStepper(transformerCachedStepper),
  ranges: {
    layers: { min: 1, max: 256 }, hiddenSize: { min: 1, max: 16384 }, heads: { min: 1, max: 256 }, ffSize: { min: 1, max: 65536 },
    blockLength: { min: 1, max: 65536 }, memoryLength: { min: 0, max: 65536 },
    blockHeight: { min: 1, max: 4096 }, blockWidth: { min: 1, max: 65536 }, memoryHeight: { min: 0, max: 4096 }, memoryWidth: { min: 0, max: 65536 },
  },
  differentiableInput: false,
  supports: () => true,
  structuralCost: (model) => transformerCost(model as ImageTransformer),
  // Blocks of 4 positions with one block of memory: the tiny images' sequences span several.
  tiny: () => ({ ...tinyTransformer, attention: 'local1d', blockLength: 4, memoryLength: 4 }),
  variants: (h, w) => ({
    // Query blocks narrower than the grid, so left and right flanges both matter.
    local2d: { ...tinyTransformer, attention: 'local2d', blockWidth: smallBlock(w), memoryHeight: 1, memoryWidth: 1 },
    // Blocks taller than a row: rows of a block see different parts of its rectangle.
    'local2d-tall': { ...tinyTransformer, attention: 'local2d', blockHeight: smallBlock(h), blockWidth: smallBlock(w), memoryHeight: 1, memoryWidth: 1 },
    causal: { ...tinyTransformer, attention: 'causal' },
    // Memory shorter than a block, and a block that does not divide the sequence.
    'local1d-short-memory': { ...tinyTransformer, attention: 'local1d', blockLength: 3, memoryLength: 2 },
  }),
};
