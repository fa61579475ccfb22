// PixelCNN++ (Salimans et al. 2017, "PixelCNN++: Improving the PixelCNN with Discretized Logistic
// Mixture Likelihood and Other Modifications"). Causality by construction, with no masks: a
// "down" stream u sees only rows above (down-shifted convolutions), a "down-right" stream ul sees
// rows above and the pixels to the left (down-right-shifted convolutions). Gated ResNet blocks
// with concat_elu; a pass that halves the resolution twice with stride-2 convolutions, then a pass
// that doubles it back with transposed convolutions, taking a shortcut from every block of the
// first pass (Figure 2); dropout; optional class conditioning.

import { ArgumentError } from '../../errors.js';
import { Conv2d, ConvTranspose2d, Dropout, Module, ModuleList } from '../../nn/index.js';
import { add, concat, concatElu, downShift, elu, gatedResidual, ones, rightShift, slice } from '../../ops/index.js';
import type { Generator } from '../../tensor/random.js';
import type { Tensor } from '../../tensor/tensor.js';
import { ConditionProjection, addCondition } from '../core/condition.js';
import { AutoregressiveModel, type BaseModelConfig, type Condition } from '../core/model.js';

export interface PixelCNNPPConfig extends BaseModelConfig {
  kind: 'pixelcnn++';
  /** Filters in every layer (the paper: 160). */
  filters: number;
  /** Gated ResNet blocks per resolution (the paper: 5). */
  resnetBlocks: number;
  /** Number of resolutions (the paper: 3 — 32, 16, 8). Each halving needs an even size. */
  resolutions: number;
  /** Dropout inside each gated ResNet block (the paper: 0.5). */
  dropout: number;
}

export const pixelCNNPPDefaults: Omit<PixelCNNPPConfig, 'height' | 'width' | 'channels' | 'likelihood'> = {
  kind: 'pixelcnn++',
  numClasses: 0,
  conditionDim: 0,
  filters: 160,
  resnetBlocks: 5,
  resolutions: 3,
  dropout: 0.5,
};

type Shift = 'down' | 'downRight';

/** Each halving of the resolution needs an even height and width. */
export function checkResolutions(config: PixelCNNPPConfig): void {
  for (let r = 1; r < config.resolutions; r++) {
    const div = 2 ** r;
    if (config.height % div !== 0 || config.width % div !== 0) {
      throw new ArgumentError('pixelcnn++', 'resolutions', `${config.resolutions} needs height and width divisible by ${div}, got ${config.height}×${config.width}`);
    }
  }
}

/**
 * A convolution that sees only rows above-or-at (down: kernel 2×3, centred horizontally) or also
 * only columns left-or-at (downRight: kernel 2×2), by padding the top (and left) before a plain
 * convolution.
 */
export class ShiftedConv extends Module {
  readonly conv: Conv2d;
  constructor(cin: number, cout: number, shift: Shift, kernel: [number, number], stride: number, generator?: Generator) {
    super();
    const [kh, kw] = kernel;
    const padding: [number, number, number, number] = shift === 'down'
      ? [kh - 1, 0, (kw - 1) >> 1, (kw - 1) >> 1]
      : [kh - 1, 0, kw - 1, 0];
    // A down-shifted output reads whole rows that are all above the pixels it feeds, so those rows'
    // columns may mix: rows by Winograd (ConvParams.rowWinograd).
    const rowWinograd = shift === 'down' && stride === 1;
    this.conv = this.registerModule('conv', new Conv2d(cin, cout, kernel, { stride, padding, rowWinograd, generator }));
  }
  forward(x: Tensor): Tensor {
    return this.conv.forward(x);
  }
}

/** The stride-2 transposed counterpart, cropped so the output stays causal. */
export class ShiftedDeconv extends Module {
  readonly deconv: ConvTranspose2d;
  constructor(cin: number, cout: number, readonly shift: Shift, readonly kernel: [number, number], generator?: Generator) {
    super();
    this.deconv = this.registerModule('deconv', new ConvTranspose2d(cin, cout, kernel, { stride: 2, outputPadding: 1, generator }));
  }
  forward(x: Tensor): Tensor {
    const y = this.deconv.forward(x); // [N, 2H + kh − 1, 2W + kw − 1, C]
    const [n, h, w, c] = y.shape as [number, number, number, number];
    const [kh, kw] = this.kernel;
    const left = this.shift === 'down' ? (kw - 1) >> 1 : 0;
    const width = this.shift === 'down' ? w - 2 * ((kw - 1) >> 1) : w - kw + 1;
    return slice(y, [0, 0, left, 0], [n, h - kh + 1, width, c]);
  }
}

/** Gated ResNet block: x + a ⊙ σ(b) (one fused kernel), [a, b] = conv(dropout(concat_elu(conv(concat_elu(x)) + nin(concat_elu(skip))))). */
export class GatedResnet extends Module {
  readonly convIn: ShiftedConv;
  readonly skip: Conv2d | null;
  readonly dropout: Dropout;
  readonly convOut: ShiftedConv;
  readonly cond: ConditionProjection;

  constructor(f: number, shift: Shift, skipInputs: number, cfg: PixelCNNPPConfig, generator?: Generator) {
    super();
    const kernel: [number, number] = shift === 'down' ? [2, 3] : [2, 2];
    this.convIn = this.registerModule('convIn', new ShiftedConv(2 * f, f, shift, kernel, 1, generator));
    this.skip = this.registerModule('skip', skipInputs > 0 ? new Conv2d(2 * skipInputs * f, f, 1, { generator }) : null);
    this.dropout = this.registerModule('dropout', new Dropout(cfg.dropout));
    this.convOut = this.registerModule('convOut', new ShiftedConv(2 * f, 2 * f, shift, kernel, 1, generator));
    this.cond = this.registerModule('cond', new ConditionProjection(cfg.numClasses, cfg.conditionDim, 2 * f, generator));
  }

  forward(x: Tensor, skip: Tensor | null, cond: Condition): Tensor {
    let h = this.convIn.forward(concatElu(x)); // [N, H, W, f]
    if (this.skip && skip) h = add(h, this.skip.forward(concatElu(skip)));
    h = this.convOut.forward(this.dropout.forward(concatElu(h))); // [N, H, W, 2f]
    return gatedResidual(x, addCondition(h, this.cond.forward(cond)));
  }
}

export class PixelCNNPP extends AutoregressiveModel<PixelCNNPPConfig> {
  readonly uInit: ShiftedConv;
  readonly ulInitDown: ShiftedConv;
  readonly ulInitRight: ShiftedConv;
  readonly upU: ModuleList<GatedResnet>;
  readonly upUl: ModuleList<GatedResnet>;
  readonly downsizeU: ModuleList<ShiftedConv>;
  readonly downsizeUl: ModuleList<ShiftedConv>;
  readonly downU: ModuleList<GatedResnet>;
  readonly downUl: ModuleList<GatedResnet>;
  readonly upsizeU: ModuleList<ShiftedDeconv>;
  readonly upsizeUl: ModuleList<ShiftedDeconv>;
  readonly out: Conv2d;

  constructor(config: PixelCNNPPConfig, generator?: Generator) {
    super(config);
    const { channels: c, filters: f, resnetBlocks: nr, resolutions: levels } = config;
    for (const [name, v, min] of [['filters', f, 1], ['resnetBlocks', nr, 0], ['resolutions', levels, 1]] as const) {
      if (!Number.isInteger(v) || v < min) throw new ArgumentError('pixelcnn++', name, `must be an integer ≥ ${min}, got ${v}`);
    }
    if (this.likelihood.perChannel && c > 1) {
      throw new ArgumentError('pixelcnn++', 'likelihood', `'${config.likelihood.kind}' conditions channels inside a pixel, which PixelCNN++'s unmasked streams cannot do in colour; use 'logistic-mixture'`);
    }
    checkResolutions(config);
    const g = generator;
    // The input gets a channel of ones so the network can tell zero padding from black pixels.
    this.uInit = this.registerModule('uInit', new ShiftedConv(c + 1, f, 'down', [2, 3], 1, g));
    this.ulInitDown = this.registerModule('ulInitDown', new ShiftedConv(c + 1, f, 'down', [1, 3], 1, g));
    this.ulInitRight = this.registerModule('ulInitRight', new ShiftedConv(c + 1, f, 'downRight', [2, 1], 1, g));
    const blocks = (count: number, shift: Shift, skip: number) => Array.from({ length: count }, () => new GatedResnet(f, shift, skip, config, g));
    this.upU = this.registerModule('upU', new ModuleList(blocks(nr * levels, 'down', 0)));
    this.upUl = this.registerModule('upUl', new ModuleList(blocks(nr * levels, 'downRight', 1)));
    this.downsizeU = this.registerModule('downsizeU', new ModuleList(Array.from({ length: levels - 1 }, () => new ShiftedConv(f, f, 'down', [2, 3], 2, g))));
    this.downsizeUl = this.registerModule('downsizeUl', new ModuleList(Array.from({ length: levels - 1 }, () => new ShiftedConv(f, f, 'downRight', [2, 2], 2, g))));
    // The second pass has nr blocks at the lowest resolution and nr + 1 at the others (one more
    // shortcut there: the output of the stride-2 layer).
    const downCount = nr + (levels - 1) * (nr + 1);
    this.downU = this.registerModule('downU', new ModuleList(blocks(downCount, 'down', 1)));
    this.downUl = this.registerModule('downUl', new ModuleList(blocks(downCount, 'downRight', 2)));
    this.upsizeU = this.registerModule('upsizeU', new ModuleList(Array.from({ length: levels - 1 }, () => new ShiftedDeconv(f, f, 'down', [2, 3], g))));
    this.upsizeUl = this.registerModule('upsizeUl', new ModuleList(Array.from({ length: levels - 1 }, () => new ShiftedDeconv(f, f, 'downRight', [2, 2], g))));
    this.out = this.registerModule('out', new Conv2d(f, this.paramsPerPixel, 1, { generator: g }));
  }

  network(x: Tensor, cond: Condition): Tensor {
    const { resnetBlocks: nr, resolutions: levels } = this.config;
    const [n, h, w] = x.shape as [number, number, number, number];
    const xin = concat([x, ones([n, h, w, 1])], -1);
    // First pass: every output is kept as a shortcut for the second.
    const us: Tensor[] = [downShift(this.uInit.forward(xin))];
    const uls: Tensor[] = [add(downShift(this.ulInitDown.forward(xin)), rightShift(this.ulInitRight.forward(xin)))];
    for (let r = 0; r < levels; r++) {
      for (let i = 0; i < nr; i++) {
        const u = this.upU.at(r * nr + i).forward(us.at(-1)!, null, cond);
        const ul = this.upUl.at(r * nr + i).forward(uls.at(-1)!, u, cond);
        us.push(u);
        uls.push(ul);
      }
      if (r < levels - 1) {
        us.push(this.downsizeU.at(r).forward(us.at(-1)!));
        uls.push(this.downsizeUl.at(r).forward(uls.at(-1)!));
      }
    }
    // Second pass, consuming the shortcuts in reverse.
    let u = us.pop()!;
    let ul = uls.pop()!;
    let b = 0;
    for (let r = 0; r < levels; r++) {
      const count = r === 0 ? nr : nr + 1;
      for (let i = 0; i < count; i++, b++) {
        u = this.downU.at(b).forward(u, us.pop()!, cond);
        ul = this.downUl.at(b).forward(ul, concat([u, uls.pop()!], -1), cond);
      }
      if (r < levels - 1) {
        u = this.upsizeU.at(r).forward(u);
        ul = this.upsizeUl.at(r).forward(ul);
      }
    }
    return this.out.forward(elu(ul)); // [N, H, W, P]
  }
}
