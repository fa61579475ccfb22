// Conv2d and ConvTranspose2d on channels-last images [N, H, W, C].
// Weights: Conv2d [kH, kW, Cin, Cout] (HWIO), ConvTranspose2d [kH, kW, Cout, Cin] — the layouts
// the kernels read (see src/ops/conv.ts); they become PyTorch's OIHW / [Cin, Cout, kH, kW] only in
// a state dict asked for with `{ layout: 'pytorch' }`.

import { ArgumentError, DTypeError, ShapeError, fmtShape } from '../errors.js';
import type { DType } from '../kernels/contracts.js';
import { conv2d, convTranspose2d, zeros, type Conv2dOptions as Conv2dOpOptions, type ConvTerm } from '../ops/index.js';
import { sameShape } from '../tensor/shape.js';
import { getDefaultGenerator, type Generator } from '../tensor/random.js';
import type { Tensor } from '../tensor/tensor.js';
import { checkFloatDType, checkPositiveInt, pairOf, padsOf } from './check.js';
import { kaimingUniformBound, uniform_ } from './init.js';
import { Module, Parameter } from './module.js';

export type Pair = number | readonly [number, number];
/** One number for all sides, or [top, bottom, left, right]. */
export type Padding = number | readonly [number, number, number, number];

export interface Conv2dOptions {
  stride?: Pair;
  padding?: Padding;
  dilation?: Pair;
  /** Learn an additive bias (default true). */
  bias?: boolean;
  /**
   * A fixed 0/1 tensor of the weight's shape [kH, kW, Cin, Cout] multiplied into the weight
   * (PixelCNN's masks). Kept as a non-persistent buffer: it is rebuilt from the configuration,
   * not loaded from a checkpoint.
   */
  mask?: Tensor | null;
  generator?: Generator;
  dtype?: DType;
  /**
   * Allow 1-D Winograd along rows for this layer (3-wide kernels, stride 1; see
   * ConvParams.rowWinograd): only for layers whose outputs may see every column of the rows they
   * read.
   */
  rowWinograd?: boolean;
}

/** Kaiming-uniform (a = √5) weights and a bias uniform in ±1/√fanIn, as PyTorch initialises convolutions. */
function resetConv(weight: Parameter, bias: Parameter | null, fanIn: number, generator: Generator): void {
  const bound = kaimingUniformBound(fanIn, Math.sqrt(5));
  uniform_(weight, -bound, bound, generator);
  if (bias) {
    const b = 1 / Math.sqrt(fanIn);
    uniform_(bias, -b, b, generator);
  }
}

function padRepr(p: readonly number[]): string {
  return p.every((x) => x === p[0]) ? String(p[0]) : fmtShape(p);
}

export class Conv2d extends Module {
  readonly inChannels: number;
  readonly outChannels: number;
  readonly kernelSize: readonly [number, number];
  readonly stride: readonly [number, number];
  readonly padding: readonly [number, number, number, number];
  readonly dilation: readonly [number, number];
  /** [kH, kW, Cin, Cout] */
  readonly weight: Parameter;
  /** [Cout], or null without bias */
  readonly bias: Parameter | null;
  /** [kH, kW, Cin, Cout] of 0 / 1, or null */
  readonly mask: Tensor | null;
  readonly rowWinograd: boolean;

  constructor(inChannels: number, outChannels: number, kernelSize: Pair, opts: Conv2dOptions = {}) {
    super();
    const op = 'Conv2d';
    this.inChannels = checkPositiveInt(op, 'inChannels', inChannels);
    this.outChannels = checkPositiveInt(op, 'outChannels', outChannels);
    this.kernelSize = pairOf(op, 'kernelSize', kernelSize, 1, 1);
    this.stride = pairOf(op, 'stride', opts.stride, 1, 1);
    this.padding = padsOf(op, opts.padding);
    this.dilation = pairOf(op, 'dilation', opts.dilation, 1, 1);
    const dtype = checkFloatDType(op, opts.dtype);
    const [kh, kw] = this.kernelSize;
    const wShape = [kh, kw, inChannels, outChannels];
    const mask = opts.mask ?? null;
    if (mask) {
      if (!sameShape(mask.shape, wShape)) {
        throw new ShapeError(op, 'mask', `shape ${fmtShape(mask.shape)} must equal the weight's ${fmtShape(wShape)} [kH, kW, Cin, Cout]`, [mask.shape, wShape]);
      }
      if (mask.dtype !== dtype) throw new DTypeError(op, 'mask', mask.dtype, `${dtype} (the weight's)`);
      if (mask.data.some((v) => v !== 0 && v !== 1)) throw new ArgumentError(op, 'mask', 'must hold only 0 and 1');
    }
    this.weight = this.registerParameter('weight', new Parameter(zeros(wShape, dtype)), { layout: 'conv2d' });
    this.bias = this.registerParameter('bias', opts.bias ?? true ? new Parameter(zeros([outChannels], dtype)) : null);
    this.mask = this.registerBuffer('mask', mask, { persistent: false, layout: 'conv2d' });
    this.rowWinograd = opts.rowWinograd === true;
    this.resetParameters(opts.generator);
  }

  /** PyTorch's default: kaiming-uniform (a = √5) weights, bias uniform in ±1/sqrt(fanIn), fanIn = Cin·kH·kW. */
  resetParameters(generator: Generator = getDefaultGenerator()): void {
    resetConv(this.weight, this.bias, this.inChannels * this.kernelSize[0] * this.kernelSize[1], generator);
  }

  /** [N, H, W, Cin] → [N, OH, OW, Cout], plus `residual` (of the output's shape) when given. */
  forward(x: Tensor, residual?: Tensor): Tensor {
    return conv2d(x, this.weight, residual ? { ...this.options(), residual } : this.options());
  }

  /** This layer applied to x as one term of a conv2dSum (several convolutions into one output). */
  term(x: Tensor): ConvTerm {
    return { x, weight: this.weight, options: this.options() };
  }

  private options(): Conv2dOpOptions {
    return { bias: this.bias, stride: this.stride, padding: this.padding, dilation: this.dilation, mask: this.mask, rowWinograd: this.rowWinograd };
  }

  override extraRepr(): string {
    let s = `${this.inChannels}, ${this.outChannels}, kernel=${fmtShape(this.kernelSize)}`;
    if (this.stride.some((v) => v !== 1)) s += `, stride=${padRepr(this.stride)}`;
    if (this.padding.some((v) => v !== 0)) s += `, padding=${padRepr(this.padding)}`;
    if (this.dilation.some((v) => v !== 1)) s += `, dilation=${padRepr(this.dilation)}`;
    if (!this.bias) s += ', bias=false';
    if (this.mask) s += ', masked';
    return s;
  }
}

export interface ConvTranspose2dOptions {
  stride?: Pair;
  padding?: Padding;
  /** Extra rows / columns at the bottom / right of the output; each below the stride or the dilation. */
  outputPadding?: Pair;
  dilation?: Pair;
  bias?: boolean;
  generator?: Generator;
  dtype?: DType;
}

export class ConvTranspose2d extends Module {
  readonly inChannels: number;
  readonly outChannels: number;
  readonly kernelSize: readonly [number, number];
  readonly stride: readonly [number, number];
  readonly padding: readonly [number, number, number, number];
  readonly outputPadding: readonly [number, number];
  readonly dilation: readonly [number, number];
  /** [kH, kW, Cout, Cin] */
  readonly weight: Parameter;
  /** [Cout], or null without bias */
  readonly bias: Parameter | null;

  constructor(inChannels: number, outChannels: number, kernelSize: Pair, opts: ConvTranspose2dOptions = {}) {
    super();
    const op = 'ConvTranspose2d';
    this.inChannels = checkPositiveInt(op, 'inChannels', inChannels);
    this.outChannels = checkPositiveInt(op, 'outChannels', outChannels);
    this.kernelSize = pairOf(op, 'kernelSize', kernelSize, 1, 1);
    this.stride = pairOf(op, 'stride', opts.stride, 1, 1);
    this.padding = padsOf(op, opts.padding);
    this.outputPadding = pairOf(op, 'outputPadding', opts.outputPadding, 0, 0);
    this.dilation = pairOf(op, 'dilation', opts.dilation, 1, 1);
    for (let a = 0; a < 2; a++) {
      if (this.outputPadding[a]! >= this.stride[a]! && this.outputPadding[a]! >= this.dilation[a]!) {
        throw new ArgumentError(op, 'outputPadding', `(${fmtShape(this.outputPadding)}) must be smaller than the stride (${fmtShape(this.stride)}) or the dilation (${fmtShape(this.dilation)}) on each axis`);
      }
    }
    const dtype = checkFloatDType(op, opts.dtype);
    const [kh, kw] = this.kernelSize;
    this.weight = this.registerParameter('weight', new Parameter(zeros([kh, kw, outChannels, inChannels], dtype)), { layout: 'convTranspose2d' });
    this.bias = this.registerParameter('bias', opts.bias ?? true ? new Parameter(zeros([outChannels], dtype)) : null);
    this.resetParameters(opts.generator);
  }

  /**
   * PyTorch's default. PyTorch computes fanIn from its weight [Cin, Cout, kH, kW] as for a conv,
   * i.e. from axis 1: fanIn = Cout·kH·kW; kept so the weight scale matches PyTorch's.
   */
  resetParameters(generator: Generator = getDefaultGenerator()): void {
    resetConv(this.weight, this.bias, this.outChannels * this.kernelSize[0] * this.kernelSize[1], generator);
  }

  /** [N, H, W, Cin] → [N, OH, OW, Cout], OH = (H − 1)·stride − padding + dilation·(kH − 1) + outputPadding + 1 */
  forward(x: Tensor): Tensor {
    return convTranspose2d(x, this.weight, {
      bias: this.bias, stride: this.stride, padding: this.padding, outputPadding: this.outputPadding, dilation: this.dilation,
    });
  }

  override extraRepr(): string {
    let s = `${this.inChannels}, ${this.outChannels}, kernel=${fmtShape(this.kernelSize)}`;
    if (this.stride.some((v) => v !== 1)) s += `, stride=${padRepr(this.stride)}`;
    if (this.padding.some((v) => v !== 0)) s += `, padding=${padRepr(this.padding)}`;
    if (this.outputPadding.some((v) => v !== 0)) s += `, outputPadding=${padRepr(this.outputPadding)}`;
    if (this.dilation.some((v) => v !== 1)) s += `, dilation=${padRepr(this.dilation)}`;
    if (!this.bias) s += ', bias=false';
    return s;
  }
}
