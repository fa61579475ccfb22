// A model family is its own files — the network, its cached stepper, its presets, its PyTorch
// mirror — plus one entry of this shape in the family table (src/models/families.ts). The model
// factory, `arpix info`, the invariant and sampler tests and the export read the table; nothing
// else names a kind, so adding a family edits no switch statement anywhere.

import type { Generator } from '../tensor/random.js';
import type { AutoregressiveModel, BaseModelConfig } from './model.js';

/** The fields of a config that a family's defaults fill (everything but the image and head). */
export type FamilyDefaults<C extends BaseModelConfig> = Omit<C, 'height' | 'width' | 'channels' | 'likelihood'>;

/** What a test or a tool asks of a family: may it build a model of this shape and head? */
export interface FamilyCase {
  height: number;
  width: number;
  channels: number;
  likelihood: 'bernoulli' | 'categorical' | 'logistic-mixture' | 'palette';
  numClasses: number;
  conditionDim: number;
}

export interface ModelFamily<C extends BaseModelConfig = BaseModelConfig> {
  /** The config's `kind`. */
  readonly kind: C['kind'];
  /** The paper that defines the family, for `arpix info` and the docs. */
  readonly paper: string;
  /** Defaults of every field but height, width, channels and likelihood. */
  readonly defaults: FamilyDefaults<C>;
  /** Builds the network; the config is resolved (every field present and typed). */
  build(config: C, generator: Generator): AutoregressiveModel<C>;
  /**
   * True when `network(x)` is differentiable in its float input x, so gradients show exactly which
   * inputs an output reads. Families that embed discrete values say false; their causality and
   * receptive fields are measured by changing inputs instead.
   */
  readonly differentiableInput: boolean;
  /** Whether the family can model this case (image shape, head, conditioning); tests skip the rest. */
  supports(c: FamilyCase): boolean;
  /** The smallest sensible architecture for an image of this size, for tests (fields of C only). */
  tiny(height: number, width: number): Partial<FamilyDefaults<C>>;
  /**
   * For families that skip taps a mask would zero: FLOPs per image of the common masked
   * formulation, from the convolutions' actual costs. Omitted otherwise.
   */
  /** FLOPs per image (2 × multiply-adds) for families whose work is not in convolutions. */
  flops?(config: C, model: AutoregressiveModel<C>): number;
  maskedFormulationFlops?(config: C, convs: readonly { name: string; kernel: readonly [number, number]; flops: number }[]): number;
}
