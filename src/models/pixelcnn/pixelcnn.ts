// PixelCNN (van den Oord et al. 2016, "Pixel Recurrent Neural Networks", §3.5 and Table 1): a
// 7×7 convolution with mask A, residual blocks of 1×1 → 3×3 mask B → 1×1 (Figure 5), then two
// 1×1 output layers. In colour, the masks also order the R, G, B channel groups (Figure 2).
// This original form has the known blind spot to the upper right; Gated PixelCNN removes it.

import { ArgumentError } from '../../errors.js';
import { Conv2d, Module, ModuleList } from '../../nn/index.js';
import { add, relu } from '../../ops/index.js';
import type { Generator } from '../../tensor/random.js';
import type { Tensor } from '../../tensor/tensor.js';
import { blockGroups, causalMask, cyclicGroups } from '../core/masks.js';
import { AutoregressiveModel, type BaseModelConfig, type Condition } from '../core/model.js';
import { ConditionProjection, addCondition } from '../core/condition.js';

export interface PixelCNNConfig extends BaseModelConfig {
  kind: 'pixelcnn';
  /** Feature channels h; the residual stream carries 2h. */
  hiddenChannels: number;
  /** Number of residual blocks. */
  residualBlocks: number;
  /** Kernel of the first, mask-A layer (odd). */
  firstKernelSize: number;
  /** Kernel of the blocks' mask-B layer (odd). */
  kernelSize: number;
  /** Channels of the hidden 1×1 output layer. */
  outputHidden: number;
}

export const pixelCNNDefaults: Omit<PixelCNNConfig, 'height' | 'width' | 'channels' | 'likelihood'> = {
  kind: 'pixelcnn',
  numClasses: 0,
  conditionDim: 0,
  hiddenChannels: 64,
  residualBlocks: 7,
  firstKernelSize: 7,
  kernelSize: 3,
  outputHidden: 256,
};

/** 1×1 → k×k mask B → 1×1 with ReLUs, added to its input (the paper's Figure 5). */
class ResidualBlock extends Module {
  readonly reduce: Conv2d;
  readonly conv: Conv2d;
  readonly expand: Conv2d;
  readonly cond: ConditionProjection;

  constructor(h: number, k: number, groups: number, cfg: PixelCNNConfig, generator?: Generator) {
    super();
    const g = (n: number) => cyclicGroups(n, groups);
    const m1 = (cin: number, cout: number) => (groups > 1 ? causalMask(1, 1, g(cin), g(cout), 'B') : null);
    this.reduce = this.registerModule('reduce', new Conv2d(2 * h, h, 1, { mask: m1(2 * h, h), generator }));
    this.conv = this.registerModule('conv', new Conv2d(h, h, k, { padding: Math.floor(k / 2), mask: causalMask(k, k, g(h), g(h), 'B'), generator }));
    this.expand = this.registerModule('expand', new Conv2d(h, 2 * h, 1, { mask: m1(h, 2 * h), generator }));
    this.cond = this.registerModule('cond', new ConditionProjection(cfg.numClasses, cfg.conditionDim, h, generator));
  }

  forward(x: Tensor, cond: Condition): Tensor {
    const a = this.reduce.forward(relu(x)); // [N, H, W, h]
    const b = this.conv.forward(relu(addCondition(a, this.cond.forward(cond))));
    return add(x, this.expand.forward(relu(b))); // [N, H, W, 2h]
  }
}

export class PixelCNN extends AutoregressiveModel<PixelCNNConfig> {
  readonly groups: number;
  readonly first: Conv2d;
  readonly blocks: ModuleList<ResidualBlock>;
  readonly outHidden: Conv2d;
  readonly out: Conv2d;

  constructor(config: PixelCNNConfig, generator?: Generator) {
    super(config);
    const { channels: c, hiddenChannels: h, firstKernelSize: k0, kernelSize: k, outputHidden: oh } = config;
    for (const [name, v] of [['kernelSize', k], ['firstKernelSize', k0]] as const) {
      if (!Number.isInteger(v) || v < 1 || v % 2 === 0) throw new ArgumentError('pixelcnn', name, `must be an odd positive integer, got ${v}`);
    }
    if (!Number.isInteger(config.residualBlocks) || config.residualBlocks < 0) {
      throw new ArgumentError('pixelcnn', 'residualBlocks', `must be an integer ≥ 0, got ${config.residualBlocks}`);
    }
    this.groups = this.likelihood.perChannel ? c : 1;
    const g = (n: number) => cyclicGroups(n, this.groups);
    this.first = this.registerModule('first', new Conv2d(c, 2 * h, k0, { padding: Math.floor(k0 / 2), mask: causalMask(k0, k0, g(c), g(2 * h), 'A'), generator }));
    this.blocks = this.registerModule('blocks', new ModuleList(Array.from({ length: config.residualBlocks }, () => new ResidualBlock(h, k, this.groups, config, generator))));
    const m1 = (cin: number, gout: number[]) => (this.groups > 1 ? causalMask(1, 1, g(cin), gout, 'B') : null);
    this.outHidden = this.registerModule('outHidden', new Conv2d(2 * h, oh, 1, { mask: m1(2 * h, g(oh)), generator }));
    this.out = this.registerModule('out', new Conv2d(oh, this.paramsPerPixel, 1, { mask: m1(oh, blockGroups(this.groups, this.paramsPerPixel / this.groups)), generator }));
  }

  network(x: Tensor, cond: Condition): Tensor {
    let h = this.first.forward(x); // [N, H, W, 2h]
    for (const block of this.blocks) h = block.forward(h, cond);
    return this.out.forward(relu(this.outHidden.forward(relu(h)))); // [N, H, W, P]
  }
}
