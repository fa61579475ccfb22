// Convolutions in NHWC with HWIO weights: conv2d (stride, padding, dilation, optional fixed
// mask) and convTranspose2d (the up-sampling of PixelCNN++).

import type { ConvParams } from '../kernels/contracts.js';
import { ArgumentError, ShapeError, fmtShape } from '../errors.js';
import { Tensor } from '../tensor/tensor.js';
import { sameShape } from '../tensor/shape.js';
import { K, checkFloat, checkRank, checkSameDType, empty, isGradEnabled, record } from './core.js';
import { add, mul } from './elementwise.js';
import { productInBf16 } from './precision.js';

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
  /** Allow 1-D Winograd along rows (ConvParams.rowWinograd says when that is sound). */
  rowWinograd?: boolean;
  /**
   * A tensor of the output's shape added to it as the convolution writes (conv2d only): a residual
   * connection x + f(x) with no separate add. Its gradient is the output's.
   */
  residual?: Tensor | null;
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

/** A validated convolution: the (masked) weight, bias, kernel parameters and output shape. */
interface PreparedConv {
  x: Tensor;
  weight: Tensor;
  bias: Tensor | null;
  p: ConvParams;
  outShape: number[];
}

function prepareConv(op: string, x: Tensor, w: Tensor, opts: Conv2dOptions): PreparedConv {
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
  return {
    x,
    weight: opts.mask ? mul(w, opts.mask) : w,
    bias: opts.bias ?? null,
    p: { strideH: sh, strideW: sw, padTop: pt, padLeft: pl, dilationH: dh, dilationW: dw, rowWinograd: opts.rowWinograd === true, bf16: productInBf16(n * oh * ow * co * kh * kw * ci) },
    outShape: [n, oh, ow, co],
  };
}

/**
 * Runs one convolution of a forward pass into y (adding to it when accumulate). When a backward
 * pass will need x for the weight gradient, the backend may keep the copy of x it made in its own
 * layout (the native Winograd plans reorder x into nChw16c) and returns a handle to it, which
 * convGrads hands back; a graph dropped before its backward pass releases it when y is collected.
 */
function runConv(c: PreparedConv, y: Tensor, accumulate: boolean, residual: Tensor | null = null): number {
  const keep = isGradEnabled() && c.weight.requiresGrad;
  const saved = K(c.x, c.weight).conv2d(c.x, c.weight, c.bias, y, c.p, accumulate, keep, residual);
  if (saved !== 0) keptInputs.register(y, { kernels: K(c.x, c.weight), saved });
  return saved;
}

const keptInputs = new FinalizationRegistry<{ kernels: ReturnType<typeof K>; saved: number }>(({ kernels, saved }) => kernels.releaseConvInput(saved));

/** The gradients [x, weight, bias] of one convolution for the output gradient g, in one kernel call. */
function convGrads(c: PreparedConv, g: Tensor, saved: number): [Tensor | null, Tensor | null, Tensor | null] {
  const { x, weight, bias, p } = c;
  const gx = x.requiresGrad ? empty(x.shape, x.dtype) : null;
  const gw = weight.requiresGrad ? empty(weight.shape, x.dtype) : null;
  const gb = bias !== null && bias.requiresGrad ? empty([weight.shape[3]!], x.dtype) : null;
  K(x, g).conv2dBackward(x, g, weight, gx, gw, gb, p, saved);
  return [gx, gw, gb];
}

/** x [N, H, W, Cin] ⊛ w [kH, kW, Cin, Cout] (+ bias [Cout]) → [N, OH, OW, Cout]. */
export function conv2d(x: Tensor, w: Tensor, opts: Conv2dOptions = {}): Tensor {
  const op = 'conv2d';
  const c = prepareConv(op, x, w, opts);
  const r = opts.residual ?? null;
  if (r) {
    checkSameDType(op, x, r);
    if (!sameShape(r.shape, c.outShape)) {
      throw new ShapeError(op, 'residual', `shape ${fmtShape(r.shape)} must equal the output's ${fmtShape(c.outShape)}`, [r.shape, c.outShape]);
    }
  }
  const y = empty(c.outShape, x.dtype);
  const saved = runConv(c, y, false, r);
  if (!r) return record(y, op, [x, c.weight, c.bias], (g) => convGrads(c, g, saved));
  // The residual's gradient is the output's, passed on as add passes it.
  return record(y, op, [x, c.weight, c.bias, r], (g) => [...convGrads(c, g, saved), g]);
}

/** One convolution of a conv2dSum. */
export interface ConvTerm {
  x: Tensor;
  weight: Tensor;
  options?: Conv2dOptions;
}

/**
 * Σ conv2d(x, weight, options) over the terms, in one output buffer: every convolution after the
 * first adds its result to it as it writes (oneDNN's sum post-op), so a sum of convolutions — Gated
 * PixelCNN's horizontal convolution plus its vertical-to-horizontal link — costs no separate add
 * and no intermediate tensors. The terms must give the same output shape.
 */
export function conv2dSum(terms: readonly ConvTerm[]): Tensor {
  const op = 'conv2dSum';
  if (terms.length === 0) throw new ArgumentError(op, 'terms', 'must hold at least one convolution');
  if (terms.some((t) => t.options?.residual)) {
    throw new ArgumentError(op, 'terms', 'take no residual option: add the residual as a term, or use conv2d with residual');
  }
  const convs = terms.map((t) => prepareConv(op, t.x, t.weight, t.options ?? {}));
  const shape = convs[0]!.outShape;
  for (const [k, c] of convs.entries()) {
    if (!sameShape(c.outShape, shape)) {
      throw new ShapeError(op, `terms[${k}]`, `gives an output of shape ${fmtShape(c.outShape)}, but terms[0] gives ${fmtShape(shape)}`, [c.outShape, shape]);
    }
    checkSameDType(op, convs[0]!.x, c.x);
  }
  // rowConvSumBackward computes in fp32 only: a sum in bf16 takes the general path.
  if (convs.every((c) => isRowConv(c) && !c.p.bf16)) return rowConvSumOf(op, convs, shape);
  const y = empty(shape, convs[0]!.x.dtype);
  const saved = convs.map((c, k) => runConv(c, y, k > 0));
  return record(y, op, convs.flatMap((c) => [c.x, c.weight, c.bias]), (g) => convs.flatMap((c, k) => convGrads(c, g, saved[k]!)));
}

/** A convolution one row high: kH = 1, stride 1, no vertical padding (the kind rowConvSumBackward takes). */
function isRowConv(c: PreparedConv): boolean {
  return c.weight.shape[0] === 1 && c.p.strideH === 1 && c.p.strideW === 1 && c.p.padTop === 0 && c.outShape[1] === c.x.shape[1];
}

/**
 * A conv2dSum of one-row convolutions: the forward pass as every conv2dSum; the backward pass one
 * kernel (rowConvSumBackward) that reads the output gradient once for all terms and adds each
 * input's earlier gradient as it writes (GradFn.accumulates): the gradient a horizontal feature
 * has from its residual path, and a vertical pre-activation from its gate, need no separate add.
 */
function rowConvSumOf(op: string, convs: readonly PreparedConv[], shape: number[]): Tensor {
  const y = empty(shape, convs[0]!.x.dtype);
  const saved = convs.map((c, k) => runConv(c, y, k > 0));
  const inputs = convs.flatMap((c) => [c.x, c.weight, c.bias]);
  return record(y, op, inputs, (g, prior, owned) => {
    const grads: (Tensor | null)[] = [];
    const db = convs.some((c) => c.bias?.requiresGrad) ? empty([shape[3]!], g.dtype) : null;
    const terms = convs.map((c, t) => {
      // A gradient the pass owns takes this term's part in place (no copy of it into a new dx).
      const dx = !c.x.requiresGrad ? null : owned?.[3 * t] ? prior![3 * t]! : empty(c.x.shape, g.dtype);
      const dw = c.weight.requiresGrad ? empty(c.weight.shape, g.dtype) : null;
      grads.push(dx, dw, c.bias?.requiresGrad ? db : null);
      return { x: c.x, w: c.weight, p: c.p, dx, dw, addend: (dx && prior?.[3 * t]) || null };
    });
    K(g, ...inputs).rowConvSumBackward(terms, g, db);
    saved.forEach((s) => s !== 0 && K(g).releaseConvInput(s));
    return grads;
  }, inputs.map((_, i) => i % 3 === 0));
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
  // The products of the convolution this transposes: N·H·W input pixels, each Cin × kH·kW × Cout.
  const p: ConvParams = { strideH: sh, strideW: sw, padTop: pt, padLeft: pl, dilationH: dh, dilationW: dw, bf16: productInBf16(n * h * wd * ci * kh * kw * co) };
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
