// Convolutions in NHWC with HWIO weights: conv2d (stride, padding, dilation, optional fixed
// mask) and convTranspose2d (the up-sampling of PixelCNN++).

import type { ConvParams } from '../kernels/contracts.js';
import { ArgumentError, ShapeError, fmtShape } from '../errors.js';
import { Tensor } from '../tensor/tensor.js';
import { sameShape } from '../tensor/shape.js';
import { K, checkFloat, checkRank, checkSameDType, empty, record } from './core.js';
import { add, mul } from './elementwise.js';
import { pad, permute, reshape } from './shape.js';
import { sum } from './reduce.js';

/** [top, bottom, left, right], or one number for all four. */
export type Padding = number | readonly [number, number, number, number];
export type Pair = number | readonly [number, number];

export interface Conv2dOptions {
  bias?: Tensor | null;
  stride?: Pair;
  padding?: Padding;
  dilation?: Pair;
  /** A fixed 0/1 tensor of the weight's shape, multiplied into it (PixelCNN's masks). */
  mask?: Tensor | null;
}

export interface ConvTranspose2dOptions {
  bias?: Tensor | null;
  stride?: Pair;
  padding?: Padding;
  dilation?: Pair;
  /** Extra rows / columns at the bottom / right of the output, to choose among sizes. */
  outputPadding?: Pair;
}

function pair(op: string, arg: string, v: Pair | undefined, dflt: number, min: number): [number, number] {
  const p: [number, number] = v === undefined ? [dflt, dflt] : typeof v === 'number' ? [v, v] : [v[0], v[1]];
  if (!p.every((x) => Number.isInteger(x) && x >= min)) throw new ArgumentError(op, arg, `must be integers ≥ ${min}, got ${JSON.stringify(v)}`);
  return p;
}

function pads(op: string, v: Padding | undefined): [number, number, number, number] {
  const p: [number, number, number, number] = v === undefined ? [0, 0, 0, 0] : typeof v === 'number' ? [v, v, v, v] : [v[0], v[1], v[2], v[3]];
  if (!p.every((x) => Number.isInteger(x) && x >= 0)) throw new ArgumentError(op, 'padding', `must be non-negative integers [top, bottom, left, right], got ${JSON.stringify(v)}`);
  return p;
}

function checkBias(op: string, bias: Tensor | null | undefined, channels: number): void {
  if (bias && (bias.rank !== 1 || bias.shape[0] !== channels)) {
    throw new ShapeError(op, 'bias', `must be [${channels}], got ${fmtShape(bias.shape)}`, [bias.shape]);
  }
}

/** Output extent of a convolution along one axis. */
export function convOutSize(size: number, k: number, stride: number, padBefore: number, padAfter: number, dilation: number): number {
  return Math.floor((size + padBefore + padAfter - dilation * (k - 1) - 1) / stride) + 1;
}

function biasGrad(g: Tensor): Tensor {
  return sum(g, [0, 1, 2]);
}

function weightGrad(x: Tensor, g: Tensor, shape: readonly number[], p: ConvParams): Tensor {
  const gw = empty(shape, x.dtype);
  K(x, g).conv2dBackwardWeights(x, g, gw, p);
  return gw;
}

function dilated(p: ConvParams): boolean {
  return (p.dilationH > 1 || p.dilationW > 1) && p.strideH === 1 && p.strideW === 1;
}

/** [N, H, W, C] → [dh·dw·N, H/dh, W/dw, C]: the dh×dw interleaved phases of the image as a batch. */
function spaceToBatch(t: Tensor, dh: number, dw: number): Tensor {
  const [n, h, w, c] = t.shape as [number, number, number, number];
  const phases = permute(reshape(t, [n, h / dh, dh, w / dw, dw, c]), [2, 4, 0, 1, 3, 5]);
  return reshape(phases, [dh * dw * n, h / dh, w / dw, c]);
}

/**
 * The weight gradient of a dilated, stride-1 convolution as the gradient of an undilated one on
 * the dilation phases of the input and output (space-to-batch, as atrous convolution is often
 * computed): output rows oy ≡ r (mod dh) read only padded input rows ≡ r, so each phase is an
 * ordinary convolution, and the phases' gradients add up in one batched call. oneDNN 2.6 runs
 * dilated backward-weights through an im2col + gemm implementation that corrupted the heap on
 * Gated PixelCNN's layers; undilated it uses its JIT kernels, which are also faster.
 */
function weightGradBySpaceToBatch(x: Tensor, g: Tensor, shape: readonly number[], p: ConvParams): Tensor {
  const [kh, kw] = shape as [number, number];
  const { dilationH: dh, dilationW: dw } = p;
  const [, h, w] = x.shape as [number, number, number];
  const [, oh, ow] = g.shape as [number, number, number];
  const jh = Math.ceil(oh / dh);
  const jw = Math.ceil(ow / dw);
  // Zero rows of g add nothing to the gradient: pad g to whole phases, and x to what they read.
  const gp = pad(g, [[0, 0], [0, jh * dh - oh], [0, jw * dw - ow], [0, 0]]);
  const hp = dh * (jh + kh - 1);
  const wp = dw * (jw + kw - 1);
  const xp = pad(x, [[0, 0], [p.padTop, hp - h - p.padTop], [p.padLeft, wp - w - p.padLeft], [0, 0]]);
  const plain: ConvParams = { strideH: 1, strideW: 1, padTop: 0, padLeft: 0, dilationH: 1, dilationW: 1 };
  return weightGrad(spaceToBatch(xp, dh, dw), spaceToBatch(gp, dh, dw), shape, plain);
}

/** x [N, H, W, Cin] ⊛ w [kH, kW, Cin, Cout] (+ bias [Cout]) → [N, OH, OW, Cout]. */
export function conv2d(x: Tensor, w: Tensor, opts: Conv2dOptions = {}): Tensor {
  const op = 'conv2d';
  checkFloat(op, 'x', x);
  checkRank(op, 'x', x, 4);
  checkRank(op, 'weight', w, 4);
  checkSameDType(op, x, w);
  const [sh, sw] = pair(op, 'stride', opts.stride, 1, 1);
  const [dh, dw] = pair(op, 'dilation', opts.dilation, 1, 1);
  const [pt, pb, pl, pr] = pads(op, opts.padding);
  const [n, h, wd, ci] = x.shape as [number, number, number, number];
  const [kh, kw, wci, co] = w.shape as [number, number, number, number];
  if (ci !== wci) {
    throw new ShapeError(op, 'x', `channels (${ci}) must equal weight in-channels (${wci}); x ${fmtShape(x.shape)}, weight ${fmtShape(w.shape)} is [kH, kW, Cin, Cout]`, [x.shape, w.shape]);
  }
  checkBias(op, opts.bias, co);
  if (opts.mask && !sameShape(opts.mask.shape, w.shape)) {
    throw new ShapeError(op, 'mask', `shape ${fmtShape(opts.mask.shape)} must equal the weight's ${fmtShape(w.shape)}`, [opts.mask.shape, w.shape]);
  }
  const oh = convOutSize(h, kh, sh, pt, pb, dh);
  const ow = convOutSize(wd, kw, sw, pl, pr, dw);
  if (oh <= 0 || ow <= 0) {
    throw new ShapeError(op, 'x', `${fmtShape(x.shape)} is too small for a ${kh}×${kw} kernel with dilation ${dh}×${dw} and padding [${pt}, ${pb}, ${pl}, ${pr}]`, [x.shape, w.shape]);
  }
  const weight = opts.mask ? mul(w, opts.mask) : w;
  const bias = opts.bias ?? null;
  const p: ConvParams = { strideH: sh, strideW: sw, padTop: pt, padLeft: pl, dilationH: dh, dilationW: dw };
  const y = empty([n, oh, ow, co], x.dtype);
  K(x, weight).conv2d(x, weight, bias, y, p);
  return record(y, op, [x, weight, bias], (g) => {
    let gx: Tensor | null = null;
    let gw: Tensor | null = null;
    if (x.requiresGrad) {
      gx = empty(x.shape, x.dtype);
      K(g, weight).conv2dBackwardData(g, weight, gx, p);
    }
    if (weight.requiresGrad) gw = dilated(p) ? weightGradBySpaceToBatch(x, g, weight.shape, p) : weightGrad(x, g, weight.shape, p);
    return [gx, gw, bias?.requiresGrad ? biasGrad(g) : null];
  });
}

/**
 * The transpose (adjoint) of conv2d: x [N, H, W, Cin] → [N, OH, OW, Cout] with
 * w [kH, kW, Cout, Cin] — the weight of the convolution it transposes, which maps Cout → Cin.
 * OH = (H − 1)·stride − padTop − padBottom + dilation·(kH − 1) + outputPadding + 1.
 */
export function convTranspose2d(x: Tensor, w: Tensor, opts: ConvTranspose2dOptions = {}): Tensor {
  const op = 'convTranspose2d';
  checkFloat(op, 'x', x);
  checkRank(op, 'x', x, 4);
  checkRank(op, 'weight', w, 4);
  checkSameDType(op, x, w);
  const [sh, sw] = pair(op, 'stride', opts.stride, 1, 1);
  const [dh, dw] = pair(op, 'dilation', opts.dilation, 1, 1);
  const [oph, opw] = pair(op, 'outputPadding', opts.outputPadding, 0, 0);
  const [pt, pb, pl, pr] = pads(op, opts.padding);
  if (oph >= sh && oph >= dh) throw new ArgumentError(op, 'outputPadding', `(${oph}) must be smaller than the stride (${sh}) or the dilation (${dh})`);
  const [n, h, wd, ci] = x.shape as [number, number, number, number];
  const [kh, kw, co, wci] = w.shape as [number, number, number, number];
  if (ci !== wci) {
    throw new ShapeError(op, 'x', `channels (${ci}) must equal the weight's last axis (${wci}); x ${fmtShape(x.shape)}, weight ${fmtShape(w.shape)} is [kH, kW, Cout, Cin]`, [x.shape, w.shape]);
  }
  checkBias(op, opts.bias, co);
  const oh = (h - 1) * sh - pt - pb + dh * (kh - 1) + oph + 1;
  const ow = (wd - 1) * sw - pl - pr + dw * (kw - 1) + opw + 1;
  if (oh <= 0 || ow <= 0) throw new ShapeError(op, 'x', `${fmtShape(x.shape)} gives an empty output with padding [${pt}, ${pb}, ${pl}, ${pr}]`, [x.shape, w.shape]);
  const bias = opts.bias ?? null;
  const p: ConvParams = { strideH: sh, strideW: sw, padTop: pt, padLeft: pl, dilationH: dh, dilationW: dw };
  const y = empty([n, oh, ow, co], x.dtype);
  K(x, w).conv2dBackwardData(x, w, y, p);
  record(y, op, [x, w], (g) => {
    let gx: Tensor | null = null;
    let gw: Tensor | null = null;
    if (x.requiresGrad) {
      gx = empty(x.shape, x.dtype);
      K(g, w).conv2d(g, w, null, gx, p);
    }
    if (w.requiresGrad) {
      gw = empty(w.shape, w.dtype);
      K(g, x).conv2dBackwardWeights(g, x, gw, p);
    }
    return [gx, gw];
  });
  return bias ? add(y, bias) : y;
}
