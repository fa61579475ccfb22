// The Image GPT family's entry in the family table (src/models/families.ts): its defaults, the
// ranges of its fields, the tiny cases the tests build, its cost from the config alone, its PyTorch
// mirror.

import { imageGPTStepper } from './cached.js';
import type { ModelFamily } from '../core/family.js';
import { ImageGPT, imageGPTDefaults, type ImageGPTConfig } from './image-gpt.js';

/** Multiply-adds ×2 of one image's forward pass: the linear layers and the attention products. */
function imageGPTFlops(c: ImageGPTConfig, vocab: number): number {
  const l = c.height * c.width;
  const d = c.embedDim;
  const perBlock = 2 * l * d * (3 * d + d + 2 * c.mlpRatio * d) + 2 * 2 * d * (l * (l + 1)) / 2;
  return c.layers * perBlock + 2 * l * d * vocab;
}

export const imageGPTFamily: ModelFamily<ImageGPTConfig> = {
  kind: 'image-gpt',
  paper: 'Chen et al. 2020, "Generative Pretraining from Pixels" (openai/image-gpt)',
  mirror: 'image_gpt',
  defaults: imageGPTDefaults,
  build: (config, generator) => new ImageGPT(config, generator).withCachedStepper(imageGPTStepper),
  ranges: { embedDim: { min: 1, max: 16384 }, layers: { min: 1, max: 256 }, heads: { min: 1, max: 256 }, mlpRatio: { min: 1, max: 64 } },
  differentiableInput: false,
  // One token per pixel: the categorical head is the identity palette of grey levels, so colour
  // needs a palette head.
  supports: (c) => (c.likelihood === 'categorical' && c.channels === 1) || c.likelihood === 'palette',
  tiny: () => ({ embedDim: 8, layers: 2, heads: 2, mlpRatio: 2 }),
  flops: (config, model) => imageGPTFlops(config, (model as ImageGPT).vocab),
};
