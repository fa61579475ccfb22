// A model family is one folder under src/models/ — its network, its cached stepper, its presets
// and its entry of this shape — plus its PyTorch mirror in python/arpix_torch/, and one line in the
// family table (src/models/families.ts). The model factory, the config types, `arpix info`, the
// invariant and sampler tests, the export and the import read the table; nothing else names a
// kind, so adding a family edits no switch statement anywhere.

import type { Generator } from '../../tensor/random.js';
import type { StateMap } from './masked.js';
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

/**
 * The values a numeric config field may take: integers (unless `integer: false`) in [min, max],
 * odd ones when `odd`. For a list of numbers, every element, and at most `maxLength` of them.
 * Checked by resolveModelConfig for configs from files, flags and checkpoints alike, before any
 * model is built.
 */
export interface FieldRange {
  min: number;
  max: number;
  integer?: boolean;
  odd?: boolean;
  maxLength?: number;
}

/**
 * What a model costs, computed from its config alone — no weights allocated — so `arpix info`
 * answers for any size and every command can say how much memory a request would need before
 * it allocates. Each family's tests compare it with the counts of a model actually built.
 */
export interface ModelCost {
  /** Trained scalars: what model.numParameters() gives. */
  parameters: number;
  /** FLOPs per image of one forward pass: 2 × multiply-adds of every convolution, as direct convolution. */
  flops: number;
  /**
   * Floats per image the forward pass writes as layer outputs (the convolutions' outputs): a
   * forward pass kept for backward needs a small multiple of this per image of a batch, and a
   * cached sampler about this per image it draws.
   */
  activations: number;
  /** The convolutions behind the counts: name, kernel and FLOPs, as convCosts measures them. */
  convs: { name: string; kernel: readonly [number, number]; flops: number }[];
}

export interface ModelFamily<C extends BaseModelConfig = BaseModelConfig> {
  /** The config's `kind`. */
  readonly kind: C['kind'];
  /** The paper that defines the family, for `arpix info` and the docs. */
  readonly paper: string;
  /**
   * The module of python/arpix_torch that mirrors the family in PyTorch (its FAMILIES entry for
   * this kind): what `arpix export --torch` writes and `arpix import` reads back. A test checks
   * the Python registry against the table.
   */
  readonly mirror: string;
  /**
   * How a PyTorch state dict in the masked formulation (full kernels with mask buffers, as most
   * PyTorch code writes the convolutional families) becomes this family's weights (see
   * core/masked.ts). Omitted when PyTorch code stores the family as arpix names it.
   */
  maskedImport?(sd: StateMap, model: AutoregressiveModel<C>, file: string): StateMap;
  /** Defaults of every field but height, width, channels and likelihood. */
  readonly defaults: FamilyDefaults<C>;
  /** Ranges of the family's numeric fields (see FieldRange); fields left out are not range-checked. */
  readonly ranges?: Readonly<Record<string, FieldRange>>;
  /**
   * Optional: parameters, FLOPs and activations from the config alone (see ModelCost). A family
   * that has it gets `arpix info` at any size and memory checks before anything is allocated; one
   * without it is measured by building the model, which info and the memory checks allow only
   * while a generic size bound (image pixels × widest field) stays small.
   */
  cost?(config: C): ModelCost;
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
   * Further tiny architectures, by name, that the invariant and sampler tests run besides `tiny`
   * (e.g. each attention pattern of a transformer). Omitted when `tiny` covers the family.
   */
  variants?(height: number, width: number): Record<string, Partial<FamilyDefaults<C>>>;
  /**
   * For families whose cost is not in convolutions (the transformers): FLOPs per image of one
   * forward pass, and the earlier pixels the last pixel's output depends on (from the network's
   * structure, where gradients cannot see through an embedded input). Omitted otherwise.
   */
  structuralCost?(model: AutoregressiveModel<C>): { flops: number; receptiveField: { pixels: number; of: number } };
  /**
   * FLOPs per image that a forward pass spends outside its convolutions, added to theirs: a
   * recurrence's state-to-state products (2 × multiply-adds; the gates' elementwise work is not
   * counted). Omitted for families whose work is all in convolutions.
   */
  recurrentFlops?(config: C): number;
  /** FLOPs per image (2 × multiply-adds) for families whose work is not in convolutions. */
  flops?(config: C, model: AutoregressiveModel<C>): number;
  /**
   * For families that skip taps a mask would zero: FLOPs per image of the common masked
   * formulation, from the convolutions' actual costs. Omitted otherwise.
   */
  maskedFormulationFlops?(config: C, convs: readonly { name: string; kernel: readonly [number, number]; flops: number }[]): number;
}

/** One convolution as a cost needs it. `pixels`: where its multiply-adds happen — the output's pixels, or the input's for a transposed convolution. */
export interface ConvShape {
  name: string;
  kernel: readonly [number, number];
  cin: number;
  cout: number;
  pixels: number;
  /** Pixels of its output, when not `pixels` (a transposed convolution's). */
  outPixels?: number;
  bias?: boolean;
}

/** The cost of a list of convolutions plus `extraParameters` (embeddings, projections). */
export function costOf(convs: readonly ConvShape[], extraParameters = 0): ModelCost {
  let parameters = extraParameters;
  let flops = 0;
  let activations = 0;
  const list: ModelCost['convs'] = [];
  for (const c of convs) {
    const [kh, kw] = c.kernel;
    const f = 2 * c.pixels * kh * kw * c.cin * c.cout;
    parameters += kh * kw * c.cin * c.cout + (c.bias === false ? 0 : c.cout);
    flops += f;
    activations += (c.outPixels ?? c.pixels) * c.cout;
    list.push({ name: c.name, kernel: c.kernel, flops: f });
  }
  return { parameters, flops, activations, convs: list };
}

/** Parameters of one ConditionProjection onto `dim` channels (a label embedding, a bias-free projection of h). */
export function conditionParameters(c: BaseModelConfig, dim: number): number {
  return c.numClasses * dim + c.conditionDim * dim;
}
