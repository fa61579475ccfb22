// Gated PixelCNN (van den Oord et al. 2016, "Conditional Image Generation with PixelCNN
// Decoders"): a vertical stack that sees every row above, a horizontal stack that sees the pixels
// to the left in the current row, gated tanh·sigmoid units, a vertical-to-horizontal link, a
// residual horizontal stack, and optional conditioning on a class label or a vector h (eq. 4).
//
// No blind spot, and no masked-out taps computed: the vertical stack at row y is built from rows
// strictly above y (its first layer reads rows y−k..y−1 of a down-shifted image, later layers
// rows y−d·k..y of the previous vertical features), so it links to the horizontal stack at the
// same row without a shift; the horizontal stack uses 1×(k+1) kernels whose last tap is the
// current pixel. This is the common masked 3×3 formulation with its zeroed taps skipped.

import { ArgumentError } from '../../errors.js';
import { Conv2d, Module, ModuleList } from '../../nn/index.js';
import { add, conv2dSum, downShift, elu, gatedActivation, rightShift } from '../../ops/index.js';
import type { Generator } from '../../tensor/random.js';
import type { Tensor } from '../../tensor/tensor.js';
import { blockGroups, causalMask, cyclicGroups } from '../core/masks.js';
import { ConditionProjection, addCondition } from '../core/condition.js';
import { AutoregressiveModel, type BaseModelConfig, type Condition } from '../core/model.js';

export interface GatedPixelCNNConfig extends BaseModelConfig {
  kind: 'gated-pixelcnn';
  /** Feature channels p of each stack (gates see 2p). */
  hiddenChannels: number;
  /** Kernel size k of the gated blocks (odd). */
  kernelSize: number;
  /** Kernel size of the first vertical and horizontal layer, whose centre is masked (odd). */
  firstKernelSize: number;
  /** One dilation per gated block; the number of blocks is its length. */
  dilations: number[];
}

export const gatedPixelCNNDefaults: Omit<GatedPixelCNNConfig, 'height' | 'width' | 'channels' | 'likelihood'> = {
  kind: 'gated-pixelcnn',
  numClasses: 0,
  conditionDim: 0,
  hiddenChannels: 64,
  kernelSize: 3,
  firstKernelSize: 7,
  dilations: [1, 1, 1, 1, 1, 1, 1],
};

/** tanh(a) ⊙ σ(b) for [a, b] = the two halves of the last axis (one fused kernel). */
const gate = gatedActivation;

/** One gated block: both stacks, the vertical-to-horizontal link and the horizontal residual. */
class GatedBlock extends Module {
  readonly vConv: Conv2d;
  readonly hConv: Conv2d;
  readonly link: Conv2d;
  readonly residual: Conv2d;
  readonly condV: ConditionProjection;
  readonly condH: ConditionProjection;

  constructor(p: number, k: number, dilation: number, groups: number, cfg: GatedPixelCNNConfig, generator?: Generator) {
    super();
    const r = Math.floor(k / 2);
    const d = dilation;
    // Vertical: rows y−r·d … y of the vertical features (which already exclude row y of the image).
    // Every column of those rows is above the current pixel, so rows may be computed by Winograd.
    this.vConv = this.registerModule('vConv', new Conv2d(p, 2 * p, [r + 1, k], { dilation: d, padding: [r * d, 0, r * d, r * d], rowWinograd: true, generator }));
    // Horizontal: columns x−r·d … x; the current-pixel tap is channel-masked in colour.
    const hMask = groups > 1 ? causalMask(1, r + 1, cyclicGroups(p, groups), cyclicGroups(2 * p, groups, p), 'B', [0, r]) : null;
    this.hConv = this.registerModule('hConv', new Conv2d(p, 2 * p, [1, r + 1], { dilation: d, padding: [0, 0, r * d, 0], mask: hMask, generator }));
    this.link = this.registerModule('link', new Conv2d(2 * p, 2 * p, 1, { generator }));
    const resMask = groups > 1 ? causalMask(1, 1, cyclicGroups(p, groups), cyclicGroups(p, groups), 'B') : null;
    this.residual = this.registerModule('residual', new Conv2d(p, p, 1, { mask: resMask, generator }));
    this.condV = this.registerModule('condV', new ConditionProjection(cfg.numClasses, cfg.conditionDim, 2 * p, generator));
    this.condH = this.registerModule('condH', new ConditionProjection(cfg.numClasses, cfg.conditionDim, 2 * p, generator));
  }

  /** The next vertical and horizontal features; the vertical ones only when `last` is false. */
  forward(v: Tensor, h: Tensor, cond: Condition, last = false): [Tensor | null, Tensor] {
    const vPre = addCondition(this.vConv.forward(v), this.condV.forward(cond)); // [N, H, W, 2p]
    // hConv(h) + link(vPre), the link accumulated into the same buffer.
    const hPre = addCondition(conv2dSum([this.hConv.term(h), this.link.term(vPre)]), this.condH.forward(cond));
    return [last ? null : gate(vPre), this.residual.forward(gate(hPre), h)];
  }
}

export class GatedPixelCNN extends AutoregressiveModel<GatedPixelCNNConfig> {
  /** Channel groups ordered inside a pixel: C for per-channel heads in colour, else 1. */
  readonly groups: number;
  readonly vFirst: Conv2d;
  readonly hFirst: Conv2d;
  /** The current pixel's earlier channels, for per-channel heads in colour (mask A); else null. */
  readonly hFirstCentre: Conv2d | null;
  readonly blocks: ModuleList<GatedBlock>;
  readonly out: Conv2d;

  constructor(config: GatedPixelCNNConfig, generator?: Generator) {
    super(config);
    const { channels: c, hiddenChannels: p, kernelSize: k, firstKernelSize: k0 } = config;
    for (const [name, v] of [['kernelSize', k], ['firstKernelSize', k0]] as const) {
      if (!Number.isInteger(v) || v < 3 || v % 2 === 0) throw new ArgumentError('gated-pixelcnn', name, `must be an odd integer ≥ 3, got ${v}`);
    }
    if (!Number.isInteger(p) || p < 1) throw new ArgumentError('gated-pixelcnn', 'hiddenChannels', `must be a positive integer, got ${p}`);
    if (!Array.isArray(config.dilations) || config.dilations.some((d) => !Number.isInteger(d) || d < 1)) {
      throw new ArgumentError('gated-pixelcnn', 'dilations', `must be a list of positive integers, got ${JSON.stringify(config.dilations)}`);
    }
    this.groups = this.likelihood.perChannel ? c : 1;
    const r0 = Math.floor(k0 / 2);
    // First layer, on the down-shifted image: rows y−r0 … y−1; on the right-shifted image: x−r0 … x−1.
    this.vFirst = this.registerModule('vFirst', new Conv2d(c, p, [r0, k0], { padding: [r0 - 1, 0, r0, r0], generator }));
    this.hFirst = this.registerModule('hFirst', new Conv2d(c, p, [1, r0], { padding: [0, 0, r0 - 1, 0], generator }));
    this.hFirstCentre = this.registerModule('hFirstCentre', this.groups > 1
      ? new Conv2d(c, p, 1, { bias: false, mask: causalMask(1, 1, cyclicGroups(c, c), cyclicGroups(p, c), 'A'), generator })
      : null);
    this.blocks = this.registerModule('blocks', new ModuleList(config.dilations.map((d) => new GatedBlock(p, k, d, this.groups, config, generator))));
    const outMask = this.groups > 1 ? causalMask(1, 1, cyclicGroups(p, c), blockGroups(c, this.paramsPerPixel / c), 'B') : null;
    this.out = this.registerModule('out', new Conv2d(p, this.paramsPerPixel, 1, { mask: outMask, generator }));
  }

  network(x: Tensor, cond: Condition): Tensor {
    let v = this.vFirst.forward(downShift(x)); // [N, H, W, p]
    let h = this.hFirst.forward(rightShift(x));
    if (this.hFirstCentre) h = add(h, this.hFirstCentre.forward(x));
    const blocks = [...this.blocks];
    blocks.forEach((block, i) => {
      // The last block's vertical output would feed nothing.
      const [nv, nh] = block.forward(v, h, cond, i === blocks.length - 1);
      v = nv ?? v;
      h = nh;
    });
    return this.out.forward(elu(h)); // [N, H, W, P]
  }
}
