// The family table: one entry per model kind, each from its family's folder. The factory, the
// ModelConfig type, `arpix info`, the invariant and sampler tests, the export and the import read
// it; adding a family is its folder plus one line here (and its PyTorch mirror, which a test checks
// against this table).

import type { ModelFamily } from './core/family.js';
import type { BaseModelConfig } from './core/model.js';
import { gatedPixelCNNFamily } from './gated-pixelcnn/family.js';
import { imageGPTFamily } from './image-gpt/family.js';
import { imageTransformerFamily } from './image-transformer/family.js';
import { pixelCNNFamily } from './pixelcnn/family.js';
import { pixelCNNPPFamily } from './pixelcnnpp/family.js';
import { diagonalBiLSTMFamily, rowLSTMFamily } from './pixelrnn/family.js';

const TABLE = [
  pixelCNNFamily,
  gatedPixelCNNFamily,
  pixelCNNPPFamily,
  imageTransformerFamily,
  imageGPTFamily,
  rowLSTMFamily,
  diagonalBiLSTMFamily,
] as const;

/** The config of any kind in the table: the union of every family's config type. */
export type ModelConfig = (typeof TABLE)[number] extends infer F ? (F extends ModelFamily<infer C> ? C : never) : never;

export const FAMILIES = TABLE as unknown as readonly ModelFamily[];

const byKind = new Map(FAMILIES.map((f) => [f.kind, f]));

/** The family of a kind, or undefined for an unknown one. */
export function familyOf(kind: string): ModelFamily<BaseModelConfig> | undefined {
  return byKind.get(kind);
}
