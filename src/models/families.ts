// The family table: one entry per model family. The factory, `arpix info`, the invariant and
// sampler tests and the export read it; adding a family is its own files plus one line here (and
// its config in the ModelConfig union of index.ts).

import type { ModelFamily } from './family.js';
import { gatedPixelCNNFamily } from './gated-pixelcnn.js';
import { imageTransformerFamily } from './image-transformer.js';
import { imageGPTFamily } from './image-gpt.js';
import type { BaseModelConfig } from './model.js';
import { pixelCNNFamily } from './pixelcnn.js';
import { pixelCNNPPFamily } from './pixelcnnpp.js';
import { rowLSTMFamily } from './row-lstm.js';
import { diagonalBiLSTMFamily } from './diagonal-bilstm.js';

export const FAMILIES: readonly ModelFamily[] = [
  pixelCNNFamily,
  gatedPixelCNNFamily,
  pixelCNNPPFamily,
  imageTransformerFamily,
  imageGPTFamily,
  rowLSTMFamily,
  diagonalBiLSTMFamily,
] as unknown as readonly ModelFamily[];

const byKind = new Map(FAMILIES.map((f) => [f.kind, f]));

/** The family of a kind, or undefined for an unknown one. */
export function familyOf(kind: string): ModelFamily<BaseModelConfig> | undefined {
  return byKind.get(kind);
}
