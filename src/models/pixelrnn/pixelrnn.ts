// PixelRNN (van den Oord et al. 2016, "Pixel Recurrent Neural Networks", §3 and Table 1): what
// the Row LSTM and the Diagonal BiLSTM share. A 7×7 mask-A convolution to 2h features, L
// recurrent layers each wrapped in one residual connection (the layer reads 2h features, its
// LSTM works on h, a 1×1 convolution brings h back to 2h and adds it to the layer's input — once
// around the whole layer, both directions of a BiLSTM included), a learnable 1×1 skip connection
// from every layer to the output, two masked 1×1 ReLU layers and the likelihood head.
//
// Colour: the mask-A/B convolutions order R → G → B inside a pixel. The LSTM's gate blocks
// [o, f, i, g] are each h wide and channel j of every block belongs to group j mod 3 (the groups
// are assigned within each gate's block, so c_j and h_j = o_j·tanh(c_j) combine one group's gates
// whatever h is); the state-to-state convolutions are unmasked, because they read only earlier
// pixels' states. Each layer's recurrence is one lstmScan op (src/ops/lstm.ts).

import { ArgumentError } from '../../errors.js';
import { Conv2d, Module, ModuleList, Parameter, uniform_ } from '../../nn/index.js';
import { conv2dSum, lstmScan, relu, reshape, zeros } from '../../ops/index.js';
import type { Generator } from '../../tensor/random.js';
import { getDefaultGenerator } from '../../tensor/random.js';
import type { Tensor } from '../../tensor/tensor.js';
import { ConditionProjection, addCondition } from '../core/condition.js';
import { blockGroups, causalMask, cyclicGroups } from '../core/masks.js';
import { AutoregressiveModel, type BaseModelConfig, type Condition } from '../core/model.js';
import { conditionParameters, costOf, type ConvShape, type ModelCost } from '../core/family.js';
import { createLikelihood } from '../../likelihoods/index.js';

export interface PixelRNNConfig extends BaseModelConfig {
  /** LSTM state channels h; the residual stream between layers carries 2h. */
  hiddenChannels: number;
  /** Number of recurrent layers L. */
  layers: number;
  /** Kernel of the first, mask-A convolution (odd). */
  firstKernelSize: number;
  /** Channels of the hidden 1×1 output layer (the paper's 1,024 for CIFAR-10, 32 for MNIST). */
  outputHidden: number;
  /** Initial bias of the forget gates (1 keeps the cell's memory at the start of training). */
  forgetBias: number;
}

export const pixelRNNDefaults = {
  numClasses: 0,
  conditionDim: 0,
  hiddenChannels: 16,
  layers: 7,
  firstKernelSize: 7,
  outputHidden: 32,
  forgetBias: 1,
};

/** Ranges of the shared fields, checked before anything is built (the family table's `ranges`). */
export const pixelRNNRanges = {
  hiddenChannels: { min: 1, max: 4096 },
  layers: { min: 1, max: 64 },
  firstKernelSize: { min: 1, max: 63, odd: true },
  outputHidden: { min: 1, max: 16384 },
  forgetBias: { min: -100, max: 100, integer: false },
};

/** How a PixelRNN kind's layers are shaped, for its cost. */
export interface RecurrenceShape {
  /** Width of the input-to-state kernel (1 × this). */
  inputWidth: number;
  /** LSTMs per layer (2 for the BiLSTM). */
  directions: number;
  /** Taps of the state-to-state kernel. */
  stateTaps: number;
  /** Positions each direction's scan computes, per image (the skewed map's for the BiLSTM). */
  positions: number;
}

/** The recurrences' state-to-state products per image: 2 × taps × h × 4h at every position of every direction of every layer. */
export function pixelRNNRecurrentFlops(c: PixelRNNConfig, r: RecurrenceShape): number {
  const h = c.hiddenChannels;
  return c.layers * r.directions * r.positions * 2 * r.stateTaps * h * 4 * h;
}

/** The layers of PixelRNN's constructor, counted rather than built (recurrent FLOPs included). */
export function pixelRNNCost(c: PixelRNNConfig, r: RecurrenceShape): ModelCost {
  const { channels: ch, hiddenChannels: h, firstKernelSize: k0, outputHidden: oh } = c;
  const px = c.height * c.width;
  const lik = createLikelihood(c.likelihood, ch);
  const convs: ConvShape[] = [{ name: 'first', kernel: [k0, k0], cin: ch, cout: 2 * h, pixels: px }];
  for (let l = 0; l < c.layers; l++) {
    convs.push(
      { name: `layers.${l}.inputToState`, kernel: [1, r.inputWidth], cin: 2 * h, cout: 4 * h * r.directions, pixels: px },
      { name: `layers.${l}.output`, kernel: [1, 1], cin: h, cout: 2 * h, pixels: px },
      { name: `skips.${l}`, kernel: [1, 1], cin: 2 * h, cout: 2 * h, pixels: px },
    );
  }
  convs.push(
    { name: 'outHidden', kernel: [1, 1], cin: 2 * h, cout: oh, pixels: px },
    { name: 'out', kernel: [1, 1], cin: oh, cout: lik.paramsPerPixel, pixels: px },
  );
  // Each direction's state-to-state weights and learned h0, c0; each layer's condition projection.
  const states = c.layers * (r.directions * (r.stateTaps * h * 4 * h + 2 * h) + conditionParameters(c, 4 * h * r.directions));
  const cost = costOf(convs, states);
  return { ...cost, flops: cost.flops + pixelRNNRecurrentFlops(c, r) };
}

/** Groups of the gate channels [o, f, i, g] × `directions`, assigned within each h-wide block. */
export function gateGroups(h: number, directions: number, groups: number): number[] {
  return cyclicGroups(4 * h * directions, groups, h);
}

/** One direction's recurrent state: state-to-state weights [kH, kW, h, 4h] and learned h0, c0. */
export class LSTMState extends Module {
  readonly weight: Parameter;
  readonly h0: Parameter;
  readonly c0: Parameter;

  constructor(readonly h: number, kernel: readonly [number, number], generator: Generator = getDefaultGenerator()) {
    super();
    this.weight = this.registerParameter('weight', new Parameter(zeros([kernel[0], kernel[1], h, 4 * h])), { layout: 'conv2d' });
    this.h0 = this.registerParameter('h0', new Parameter(zeros([h])));
    this.c0 = this.registerParameter('c0', new Parameter(zeros([h])));
    // PyTorch's LSTM initialisation: every weight uniform in ±1/√h; states start at zero and are learned.
    uniform_(this.weight, -1 / Math.sqrt(h), 1 / Math.sqrt(h), generator);
  }

  /** h [T, B, L, h] of this direction's recurrence over gates xg [T, B, L, 4h], reading positions l − pad … of the previous step. */
  scan(xg: Tensor, pad: number): Tensor {
    const [kh, kw, h, g] = this.weight.shape as [number, number, number, number];
    return lstmScan(xg, reshape(this.weight, [kh * kw, h, g]), this.h0, this.c0, pad);
  }
}

/** Sets the forget-gate block of an input-to-state bias (blocks [o, f, i, g] per direction). */
export function initForgetBias(bias: Parameter | null, h: number, value: number): void {
  if (!bias) return;
  for (let d = 0; d < bias.shape[0]! / (4 * h); d++) bias.data.fill(value, d * 4 * h + h, d * 4 * h + 2 * h);
}

/** What a recurrent layer does: [N, H, W, 2h] → [N, H, W, 2h], its residual included. */
export interface RecurrentLayer extends Module {
  forward(x: Tensor, cond: Condition): Tensor;
}

export abstract class PixelRNN<C extends PixelRNNConfig> extends AutoregressiveModel<C> {
  /** Channel groups ordered inside a pixel: C for per-channel heads in colour, else 1. */
  readonly groups: number;
  readonly first: Conv2d;
  readonly layers: ModuleList<RecurrentLayer>;
  readonly skips: ModuleList<Conv2d>;
  readonly outHidden: Conv2d;
  readonly out: Conv2d;

  constructor(config: C, makeLayer: (groups: number) => RecurrentLayer, generator?: Generator) {
    super(config);
    const { channels: c, hiddenChannels: h, firstKernelSize: k0, layers, outputHidden: oh } = config;
    const kind = config.kind;
    for (const [name, v] of [['hiddenChannels', h], ['layers', layers], ['outputHidden', oh]] as const) {
      if (!Number.isInteger(v) || v < 1) throw new ArgumentError(kind, name, `must be a positive integer, got ${v}`);
    }
    if (!Number.isInteger(k0) || k0 < 1 || k0 % 2 === 0) throw new ArgumentError(kind, 'firstKernelSize', `must be an odd positive integer, got ${k0}`);
    if (!Number.isFinite(config.forgetBias)) throw new ArgumentError(kind, 'forgetBias', `must be a finite number, got ${config.forgetBias}`);
    this.groups = this.likelihood.perChannel ? c : 1;
    const g = (n: number) => cyclicGroups(n, this.groups);
    const m1 = (cin: number, gout: number[]) => (this.groups > 1 ? causalMask(1, 1, g(cin), gout, 'B') : null);
    this.first = this.registerModule('first', new Conv2d(c, 2 * h, k0, { padding: Math.floor(k0 / 2), mask: causalMask(k0, k0, g(c), g(2 * h), 'A'), generator }));
    this.layers = this.registerModule('layers', new ModuleList(Array.from({ length: layers }, () => makeLayer(this.groups))));
    this.skips = this.registerModule('skips', new ModuleList(Array.from({ length: layers }, () => new Conv2d(2 * h, 2 * h, 1, { mask: m1(2 * h, g(2 * h)), generator }))));
    this.outHidden = this.registerModule('outHidden', new Conv2d(2 * h, oh, 1, { mask: m1(2 * h, g(oh)), generator }));
    this.out = this.registerModule('out', new Conv2d(oh, this.paramsPerPixel, 1, { mask: m1(oh, blockGroups(this.groups, this.paramsPerPixel / this.groups)), generator }));
  }

  network(x: Tensor, cond: Condition): Tensor {
    let h = this.first.forward(x); // [N, H, W, 2h]
    const skips = [...this.skips];
    const terms = [...this.layers].map((layer, l) => {
      h = layer.forward(h, cond); // the residual is inside the layer
      return skips[l]!.term(h);
    });
    const s = conv2dSum(terms); // Σ_l skip_l(layer_l) [N, H, W, 2h]
    return this.out.forward(relu(this.outHidden.forward(relu(s)))); // [N, H, W, P]
  }
}

/** The layers' shared parts: masked input-to-state (gates of `directions` LSTMs), output 1×1 with the residual, conditioning. */
export class RecurrentLayerBase extends Module {
  readonly inputToState: Conv2d;
  readonly output: Conv2d;
  readonly cond: ConditionProjection;

  constructor(cfg: PixelRNNConfig, groups: number, directions: number, kernelWidth: number, generator?: Generator) {
    super();
    const h = cfg.hiddenChannels;
    const r = kernelWidth - 1;
    // Input-to-state: columns x − r … x of the layer's input; the current pixel's tap is
    // channel-masked (mask B) in colour, later taps are not computed at all.
    const inMask = groups > 1 ? causalMask(1, kernelWidth, cyclicGroups(2 * h, groups), gateGroups(h, directions, groups), 'B', [0, r]) : null;
    this.inputToState = this.registerModule('inputToState', new Conv2d(2 * h, 4 * h * directions, [1, kernelWidth], { padding: [0, 0, r, 0], mask: inMask, generator }));
    initForgetBias(this.inputToState.bias, h, cfg.forgetBias);
    const outMask = groups > 1 ? causalMask(1, 1, cyclicGroups(h, groups), cyclicGroups(2 * h, groups), 'B') : null;
    this.output = this.registerModule('output', new Conv2d(h, 2 * h, 1, { mask: outMask, generator }));
    this.cond = this.registerModule('cond', new ConditionProjection(cfg.numClasses, cfg.conditionDim, 4 * h * directions, generator));
  }

  /** Input-to-state pre-activations with the condition added: [N, H, W, 4h · directions]. */
  gates(x: Tensor, cond: Condition): Tensor {
    return addCondition(this.inputToState.forward(x), this.cond.forward(cond));
  }
}
