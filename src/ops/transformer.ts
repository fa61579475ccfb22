// The transformer core's ops: layer norm and RMS norm, GELU, and one fused multi-head attention
// under causal, local 1-D and local 2-D patterns, with a one-position step for cached sampling.
// Each fused op has its composed twin here (built from matmul, softmax, mean, …): the oracle the
// fused kernels are tested against.
//
// Layout. Activations are channels-last [N, L, C] (an [N, H, W, C] image seen without a copy).
// The attention op takes the output of one fused projection, qkv [N, L, 3C] = [q | k | v] along
// the last axis, each of C = heads·d channels, head-major (channel = head·d + t), and returns
// [N, L, C] in the same head-major order — so a transformer block goes x → linear → attention →
// linear with no transposes or copies between, and the backward writes the gradient of the whole
// packed qkv in one buffer.

import { ArgumentError, ShapeError, fmtShape } from '../errors.js';
import { attentionAllowed, local2dCoords, type AttentionAttrs, type AttentionPattern } from '../kernels/attention.js';
import { Tensor } from '../tensor/tensor.js';
import { K, checkFloat, checkSameDType, empty, record } from './core.js';
import { tensor } from './creation.js';
import { add, mul, rsqrt, square, sub, tanh } from './elementwise.js';
import { matmul } from './linalg.js';
import { mean, softmax } from './reduce.js';
import { permute, reshape, slice } from './shape.js';
import { productInBf16 } from './precision.js';

export type { AttentionPattern } from '../kernels/attention.js';

// ---- layer norm and RMS norm ----

function checkNorm(op: string, x: Tensor, weight: Tensor | null, bias: Tensor | null): void {
  checkFloat(op, 'x', x);
  if (x.rank < 1) throw new ShapeError(op, 'x', `must have at least one axis, got ${fmtShape(x.shape)}`, [x.shape]);
  const c = x.shape[x.rank - 1]!;
  for (const [name, t] of [['weight', weight], ['bias', bias]] as const) {
    if (!t) continue;
    if (t.rank !== 1 || t.shape[0] !== c) throw new ShapeError(op, name, `must be [${c}] for x ${fmtShape(x.shape)}, got ${fmtShape(t.shape)}`, [x.shape, t.shape]);
    checkSameDType(op, x, t);
  }
}

function norm(op: string, x: Tensor, weight: Tensor | null, bias: Tensor | null, eps: number, rms: boolean): Tensor {
  checkNorm(op, x, weight, bias);
  if (!(eps > 0)) throw new ArgumentError(op, 'eps', `must be positive, got ${eps}`);
  const rows = [x.size / Math.max(1, x.shape[x.rank - 1]!)];
  const y = empty(x.shape, x.dtype);
  const mu = empty(rows, x.dtype);
  const rstd = empty(rows, x.dtype);
  K(x, weight, bias).layerNorm(x, weight, bias, y, mu, rstd, eps, rms);
  return record(y, op, [x, weight, bias], (g) => {
    const gx = empty(x.shape, g.dtype);
    const gw = weight?.requiresGrad ? empty(weight.shape, g.dtype) : null;
    const gb = bias?.requiresGrad ? empty(bias.shape, g.dtype) : null;
    K(g, x).layerNormBackward(x, weight, mu, rstd, g, gx, gw, gb, rms);
    return [gx, gw, gb];
  });
}

/** Layer normalisation over the last axis: (x − mean) / √(var + eps) ⊙ weight + bias (biased variance, as PyTorch). Fused. */
export function layerNorm(x: Tensor, weight: Tensor | null = null, bias: Tensor | null = null, eps = 1e-5): Tensor {
  return norm('layerNorm', x, weight, bias, eps, false);
}

/** layerNorm composed from mean, sub, square, rsqrt, mul and add: the fused kernels' oracle. */
export function layerNormComposed(x: Tensor, weight: Tensor | null = null, bias: Tensor | null = null, eps = 1e-5): Tensor {
  checkNorm('layerNorm', x, weight, bias);
  const centred = sub(x, mean(x, -1, true));
  let y = mul(centred, rsqrt(add(mean(square(centred), -1, true), eps)));
  if (weight) y = mul(y, weight);
  if (bias) y = add(y, bias);
  return y;
}

/** RMS norm over the last axis (Zhang & Sennrich 2019; Image GPT's norm): x / √(mean(x²) + eps) ⊙ weight, no centring, no bias. Fused. */
export function rmsNorm(x: Tensor, weight: Tensor | null = null, eps = 1e-5): Tensor {
  return norm('rmsNorm', x, weight, null, eps, true);
}

/** rmsNorm composed from mean, square, rsqrt and mul: the fused kernels' oracle. */
export function rmsNormComposed(x: Tensor, weight: Tensor | null = null, eps = 1e-5): Tensor {
  checkNorm('rmsNorm', x, weight, null);
  const y = mul(x, rsqrt(add(mean(square(x), -1, true), eps)));
  return weight ? mul(y, weight) : y;
}

// ---- GELU ----

export type GeluApproximation = 'none' | 'tanh';

function checkApproximate(op: string, approximate: GeluApproximation): boolean {
  if (approximate !== 'none' && approximate !== 'tanh') throw new ArgumentError(op, 'approximate', `must be 'none' or 'tanh', got '${String(approximate)}'`);
  return approximate === 'tanh';
}

/**
 * GELU (Hendrycks & Gimpel 2016): x·Φ(x) with Φ the standard normal CDF, or with approximate
 * 'tanh' the form 0.5·x·(1 + tanh(√(2/π)(x + 0.044715x³))) of GPT-2 and Image GPT. Fused.
 */
export function gelu(x: Tensor, approximate: GeluApproximation = 'none'): Tensor {
  const useTanh = checkApproximate('gelu', approximate);
  checkFloat('gelu', 'x', x);
  const y = empty(x.shape, x.dtype);
  K(x).gelu(x, y, useTanh);
  return record(y, 'gelu', [x], (g) => {
    const gx = empty(x.shape, g.dtype);
    K(x, g).geluBackward(x, g, gx, useTanh);
    return [gx];
  });
}

/**
 * The tanh form of GELU composed from elementwise ops: the fused kernel's oracle (the exact form
 * needs erf, which no basic op provides; its oracle is the float64 reference with its own erf).
 */
export function geluTanhComposed(x: Tensor): Tensor {
  const inner = mul(add(x, mul(mul(mul(x, x), x), 0.044715)), Math.sqrt(2 / Math.PI));
  return mul(mul(x, 0.5), add(tanh(inner), 1));
}

// ---- attention ----

/** A pattern as the caller gives it: memory sizes default to one block. */
export type AttentionPatternInput =
  | { kind: 'causal' }
  | { kind: 'full' }
  | { kind: 'local1d'; block: number; memory?: number }
  | { kind: 'local2d'; height: number; width: number; blockHeight: number; blockWidth: number; memoryHeight?: number; memoryWidth?: number; order?: 'block' | 'raster' };

export interface AttentionOptions {
  /** Heads h; the channels C of q, k and v must be a multiple of it (d = C / h per head). */
  heads: number;
  /** Which keys each query sees (default causal). */
  pattern?: AttentionPatternInput;
  /** The logits' scale (default 1/√d). */
  scale?: number;
}

function positiveInt(op: string, name: string, v: unknown): number {
  if (!Number.isInteger(v) || (v as number) < 1) throw new ArgumentError(op, name, `must be a positive integer, got ${String(v)}`);
  return v as number;
}

function nonNegativeInt(op: string, name: string, v: unknown): number {
  if (!Number.isInteger(v) || (v as number) < 0) throw new ArgumentError(op, name, `must be a non-negative integer, got ${String(v)}`);
  return v as number;
}

function orderOf(op: string, v: unknown): 'block' | 'raster' {
  if (v === undefined || v === 'block') return 'block';
  if (v === 'raster') return 'raster';
  throw new ArgumentError(op, 'pattern.order', `must be 'block' (blocks in raster order, the paper's) or 'raster' (the grid in raster order), got ${String(v)}`);
}

/** Checks a pattern for sequences of `length` positions and fills in its defaults. */
export function attentionPattern(op: string, input: AttentionPatternInput | undefined, length: number): AttentionPattern {
  const p = input ?? { kind: 'causal' };
  switch (p.kind) {
    case 'causal': return { kind: 'causal' };
    case 'full': return { kind: 'full' };
    case 'local1d': {
      const block = positiveInt(op, 'pattern.block', p.block);
      return { kind: 'local1d', block, memory: nonNegativeInt(op, 'pattern.memory', p.memory ?? block) };
    }
    case 'local2d': {
      const height = positiveInt(op, 'pattern.height', p.height);
      const width = positiveInt(op, 'pattern.width', p.width);
      const blockHeight = positiveInt(op, 'pattern.blockHeight', p.blockHeight);
      const blockWidth = positiveInt(op, 'pattern.blockWidth', p.blockWidth);
      if (height % blockHeight !== 0 || width % blockWidth !== 0) {
        throw new ArgumentError(op, 'pattern', `blocks of ${blockHeight}×${blockWidth} must tile the ${height}×${width} grid exactly (pad the grid to a multiple of the block)`);
      }
      if (height * width !== length) throw new ArgumentError(op, 'pattern', `grid ${height}×${width} has ${height * width} positions but the sequence has ${length}`);
      return {
        kind: 'local2d', height, width, blockHeight, blockWidth,
        memoryHeight: nonNegativeInt(op, 'pattern.memoryHeight', p.memoryHeight ?? blockHeight),
        memoryWidth: nonNegativeInt(op, 'pattern.memoryWidth', p.memoryWidth ?? blockWidth),
        order: orderOf(op, p.order),
      };
    }
    default: throw new ArgumentError(op, 'pattern.kind', `must be 'causal', 'full', 'local1d' or 'local2d', got '${String((p as { kind: unknown }).kind)}'`);
  }
}

function attentionAttrs(op: string, channels: number, length: number, opts: AttentionOptions): AttentionAttrs {
  const heads = positiveInt(op, 'heads', opts.heads);
  if (channels % heads !== 0) throw new ArgumentError(op, 'heads', `(${heads}) must divide the channels of q, k and v (${channels})`);
  const scale = opts.scale ?? 1 / Math.sqrt(channels / heads);
  if (!Number.isFinite(scale)) throw new ArgumentError(op, 'scale', `must be a finite number, got ${scale}`);
  return { heads, scale, pattern: attentionPattern(op, opts.pattern, length) };
}

function checkQkv(op: string, qkv: Tensor): [number, number, number] {
  checkFloat(op, 'qkv', qkv);
  if (qkv.rank !== 3 || qkv.shape[2]! % 3 !== 0 || qkv.shape[2] === 0) {
    throw new ShapeError(op, 'qkv', `must be [N, L, 3C] (q, k and v side by side on the last axis), got ${fmtShape(qkv.shape)}`, [qkv.shape]);
  }
  return [qkv.shape[0]!, qkv.shape[1]!, qkv.shape[2]! / 3];
}

/**
 * Multi-head attention softmax(scale·Q Kᵀ + mask)·V, fused: qkv [N, L, 3C] = [q | k | v] on the
 * last axis (each head-major) → [N, L, C], head-major. Never forms the L×L matrix; the backward
 * recomputes the probabilities from a saved log-sum-exp per query. Under withPrecision('bf16')
 * its products take bf16 operands and its softmax stays fp32 (BF16_OPERANDS in kernels/contracts.ts).
 */
export function attention(qkv: Tensor, opts: AttentionOptions): Tensor {
  const [n, l, c] = checkQkv('attention', qkv);
  // The precision scope's choice for the products (Q·Kᵀ has n·l·l·c multiply-accumulates before the
  // pattern masks any), captured here: the backward below computes in the forward's precision.
  const a: AttentionAttrs = { ...attentionAttrs('attention', c, l, opts), bf16: productInBf16(n * l * l * c) };
  const y = empty([n, l, c], qkv.dtype);
  const lse = empty([n, a.heads, l], qkv.dtype);
  K(qkv).attention(qkv, y, lse, a);
  return record(y, 'attention', [qkv], (g) => {
    const gq = empty(qkv.shape, g.dtype);
    K(qkv, g).attentionBackward(qkv, y, lse, g, gq, a);
    return [gq];
  });
}

/** The pattern as an [L, L] float mask: 1 where query i (row) may read key j (column), else 0. */
export function attentionMask(pattern: AttentionPatternInput, length: number): Tensor {
  const p = attentionPattern('attentionMask', pattern, length);
  const m = new Float32Array(length * length);
  for (let i = 0; i < length; i++) for (let j = 0; j < length; j++) m[i * length + j] = attentionAllowed(p, i, j) ? 1 : 0;
  return new Tensor(m, [length, length]);
}

/**
 * attention composed from permute, matmul, an additive mask (−1e9 where masked: an exact 0 after
 * softmax in float32 and float64) and softmax: the fused kernels' oracle. Forms the L×L matrix.
 */
export function attentionComposed(qkv: Tensor, opts: AttentionOptions): Tensor {
  const [n, l, c] = checkQkv('attention', qkv);
  const a = attentionAttrs('attention', c, l, opts);
  const h = a.heads, d = c / h;
  const heads = permute(reshape(qkv, [n, l, 3, h, d]), [2, 0, 3, 1, 4]); // [3, N, h, L, d]
  const part = (k: number) => reshape(slice(heads, [k, 0, 0, 0, 0], [1, n, h, l, d]), [n * h, l, d]);
  const maskData = attentionMask(a.pattern as AttentionPatternInput, l).data;
  const bias = new Float64Array(l * l);
  for (let i = 0; i < bias.length; i++) bias[i] = maskData[i] ? 0 : -1e9;
  const logits = add(mul(matmul(part(0), part(1), { transB: true }), a.scale), tensor(qkv.dtype === 'float64' ? bias : Float32Array.from(bias), [l, l]));
  const out = matmul(softmax(logits, -1), part(2)); // [N·h, L, d]
  return reshape(permute(reshape(out, [n, h, l, d]), [0, 2, 1, 3]), [n, l, c]);
}

export interface AttentionStepOptions extends AttentionOptions {
  /** The full sequence's length, which a local2d pattern checks its grid against (default: the caches' T). */
  length?: number;
}

/**
 * One step of cached attention (sampling): q [N, C] is the query at sequence position
 * `position`; kCache and vCache [N, T, C] (T > position) hold the keys and values of positions
 * 0 … position, head-major as attention's. Returns [N, C]: row `position` of attention over the
 * same sequence. Reads only the keys the pattern lets that position see (for local patterns, the
 * memory block's). Not differentiable (it is for sampling).
 */
export function attentionStep(q: Tensor, kCache: Tensor, vCache: Tensor, position: number, opts: AttentionStepOptions): Tensor {
  const op = 'attentionStep';
  checkFloat(op, 'q', q);
  checkSameDType(op, q, kCache);
  checkSameDType(op, q, vCache);
  if (q.rank !== 2) throw new ShapeError(op, 'q', `must be [N, C], got ${fmtShape(q.shape)}`, [q.shape]);
  const [n, c] = q.shape as [number, number];
  for (const [name, t] of [['kCache', kCache], ['vCache', vCache]] as const) {
    if (t.rank !== 3 || t.shape[0] !== n || t.shape[2] !== c) throw new ShapeError(op, name, `must be [${n}, T, ${c}] for q ${fmtShape(q.shape)}, got ${fmtShape(t.shape)}`, [q.shape, t.shape]);
  }
  const t = kCache.shape[1]!;
  if (vCache.shape[1] !== t) throw new ShapeError(op, 'vCache', `must hold as many positions as kCache (${t}), got ${fmtShape(vCache.shape)}`, [kCache.shape, vCache.shape]);
  if (!Number.isInteger(position) || position < 0 || position >= t) throw new ArgumentError(op, 'position', `must be an integer in 0..${t - 1} (the caches hold ${t} positions), got ${position}`);
  const a = attentionAttrs(op, c, opts.length ?? t, opts);
  if (a.pattern.kind === 'full') throw new ArgumentError(op, 'pattern', "is 'full': a position then reads later keys, which a cache does not hold yet; cached steps need a causal or local pattern");
  const y = empty([n, c], q.dtype);
  K(q, kCache, vCache).attentionStep(q, kCache, vCache, y, position, a);
  return y;
}

/**
 * The block-raster order of a height × width grid in blocks of blockHeight × blockWidth, which a
 * local2d pattern's sequence follows: order[s] is the raster index (row·width + column) of the
 * grid cell at sequence position s. Gather an image's positions by it before attention, and
 * scatter back (the inverse permutation) after.
 */
export function blockRasterOrder(height: number, width: number, blockHeight: number, blockWidth: number): Int32Array {
  const p = attentionPattern('blockRasterOrder', { kind: 'local2d', height, width, blockHeight, blockWidth }, height * width);
  const order = new Int32Array(height * width);
  for (let s = 0; s < order.length; s++) {
    const [y, x] = local2dCoords(p as Extract<AttentionPattern, { kind: 'local2d' }>, s);
    order[s] = y * width + x;
  }
  return order;
}
