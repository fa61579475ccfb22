// The transformer's modules: RMSNorm, MultiHeadAttention (one fused q/k/v projection, the fused
// attention op, an output projection) with a key/value cache for sampling, TransformerBlock (pre-
// or post-norm), and learned and sinusoidal position encodings (Vaswani et al. 2017, "Attention
// Is All You Need"; tensor2tensor's layer_preprocess / layer_postprocess conventions).
//
// Activations are channels-last [N, L, C]: an [N, H, W, C] image reshaped without a copy.

import { ArgumentError, ShapeError, fmtShape } from '../errors.js';
import type { DType } from '../kernels/contracts.js';
import { cos, exp, log, sin } from '../backends/ts/portable-math.js';
import { add, attention, attentionStep, gelu, kvCacheWrite, noGrad, relu, reshape, rmsNorm, slice, zeros, type AttentionPatternInput } from '../ops/index.js';
import { getDefaultGenerator, type Generator } from '../tensor/random.js';
import { Tensor } from '../tensor/tensor.js';
import { checkFloatDType, checkPositiveInt } from './check.js';
import { constant_, normal_ } from './init.js';
import { Dropout, LayerNorm } from './layers.js';
import { Linear } from './linear.js';
import { Module, Parameter } from './module.js';

export interface RMSNormOptions {
  eps?: number;
  dtype?: DType;
}

/** RMS normalisation over the last axis with a learned scale and no bias (Image GPT's norm). */
export class RMSNorm extends Module {
  readonly normalizedShape: number;
  readonly eps: number;
  /** [C] */
  readonly weight: Parameter;

  constructor(normalizedShape: number, opts: RMSNormOptions = {}) {
    super();
    this.normalizedShape = checkPositiveInt('RMSNorm', 'normalizedShape', normalizedShape);
    this.eps = opts.eps ?? 1e-5;
    if (!(this.eps > 0)) throw new ArgumentError('RMSNorm', 'eps', `must be positive, got ${this.eps}`);
    this.weight = this.registerParameter('weight', new Parameter(zeros([normalizedShape], checkFloatDType('RMSNorm', opts.dtype))));
    this.resetParameters();
  }

  /** Scale 1. */
  resetParameters(): void {
    constant_(this.weight, 1);
  }

  /** [..., C] → [..., C] */
  forward(x: Tensor): Tensor {
    return rmsNorm(x, this.weight, this.eps);
  }

  override extraRepr(): string {
    return `${this.normalizedShape}, eps=${this.eps}`;
  }
}

/** Keys and values of every position so far, for one attention layer: [N, T, C] each, head-major. */
export class KVCache {
  readonly k: Tensor;
  readonly v: Tensor;
  constructor(readonly batch: number, readonly length: number, readonly channels: number, dtype: DType = 'float32') {
    this.k = zeros([batch, length, channels], dtype);
    this.v = zeros([batch, length, channels], dtype);
  }

  /** Stores position `position`'s keys and values from a packed qkv row [N, 3C] (the kvCacheWrite op, which bumps the caches' versions). */
  write(position: number, qkv: Tensor): void {
    const c = this.channels;
    if (qkv.rank !== 2 || qkv.shape[0] !== this.batch || qkv.shape[1] !== 3 * c) {
      throw new ShapeError('KVCache.write', 'qkv', `must be [${this.batch}, ${3 * c}], got ${fmtShape(qkv.shape)}`, [qkv.shape]);
    }
    if (!Number.isInteger(position) || position < 0 || position >= this.length) {
      throw new ArgumentError('KVCache.write', 'position', `must be an integer in 0..${this.length - 1}, got ${position}`);
    }
    kvCacheWrite(qkv, this.k, this.v, position);
  }
}

export interface MultiHeadAttentionOptions {
  heads: number;
  /** Which keys each query sees (default causal); see the attention op. */
  pattern?: AttentionPatternInput;
  /** Biases on the projections (default true). */
  bias?: boolean;
  generator?: Generator;
  dtype?: DType;
}

/**
 * Multi-head self-attention: qkv = x Wqkvᵀ (one [3C, C] projection, output [q | k | v]), the fused
 * attention op, then y = a Woᵀ. [N, L, C] → [N, L, C].
 */
export class MultiHeadAttention extends Module {
  readonly dim: number;
  readonly heads: number;
  readonly pattern: AttentionPatternInput;
  /** [3C, C]: rows 0..C−1 make q, C..2C−1 k, 2C..3C−1 v (head-major within each) */
  readonly qkv: Linear;
  readonly out: Linear;

  constructor(dim: number, opts: MultiHeadAttentionOptions) {
    super();
    this.dim = checkPositiveInt('MultiHeadAttention', 'dim', dim);
    this.heads = checkPositiveInt('MultiHeadAttention', 'heads', opts.heads);
    if (dim % this.heads !== 0) throw new ArgumentError('MultiHeadAttention', 'heads', `(${this.heads}) must divide dim (${dim})`);
    this.pattern = opts.pattern ?? { kind: 'causal' };
    const lin = { bias: opts.bias ?? true, generator: opts.generator, dtype: opts.dtype };
    this.qkv = this.registerModule('qkv', new Linear(dim, 3 * dim, lin));
    this.out = this.registerModule('out', new Linear(dim, dim, lin));
  }

  /** [N, L, C] → [N, L, C] */
  forward(x: Tensor): Tensor {
    if (x.rank !== 3 || x.shape[2] !== this.dim) throw new ShapeError('MultiHeadAttention', 'x', `must be [N, L, ${this.dim}], got ${fmtShape(x.shape)}`, [x.shape]);
    const a = attention(this.qkv.forward(x), { heads: this.heads, pattern: this.pattern }); // [N, L, C]
    return this.out.forward(a);
  }

  /** A cache for `batch` sequences of up to `length` positions. */
  newCache(batch: number, length: number): KVCache {
    return new KVCache(checkPositiveInt('MultiHeadAttention.newCache', 'batch', batch), checkPositiveInt('MultiHeadAttention.newCache', 'length', length), this.dim, this.qkv.weight.dtype);
  }

  /**
   * Position `position` only, given its input x [N, C] and the cache holding positions before it
   * (which this call extends): row `position` of forward() over the whole sequence, for the cost
   * of one position. No gradients.
   */
  step(x: Tensor, cache: KVCache, position: number): Tensor {
    return noGrad(() => {
      if (x.rank !== 2 || x.shape[1] !== this.dim) throw new ShapeError('MultiHeadAttention.step', 'x', `must be [N, ${this.dim}], got ${fmtShape(x.shape)}`, [x.shape]);
      const qkv = this.qkv.forward(x); // [N, 3C]
      cache.write(position, qkv);
      const q = slice(qkv, [0, 0], [x.shape[0]!, this.dim]);
      const a = attentionStep(q, cache.k, cache.v, position, { heads: this.heads, pattern: this.pattern, length: cache.length });
      return this.out.forward(a);
    });
  }

  override extraRepr(): string {
    return `dim=${this.dim}, heads=${this.heads}, pattern=${this.pattern.kind}`;
  }
}

export type Activation = 'relu' | 'gelu' | 'gelu-tanh';

export interface TransformerBlockOptions {
  heads: number;
  /** Feed-forward width (default 4·dim). */
  ffDim?: number;
  pattern?: AttentionPatternInput;
  /** 'pre' (GPT-2, Image GPT: x + f(norm(x))) or 'post' (the original and Image Transformer: norm(x + f(x))); default 'pre'. */
  norm?: 'pre' | 'post';
  /** 'layer' (LayerNorm, default) or 'rms' (RMSNorm). */
  normKind?: 'layer' | 'rms';
  /** Feed-forward activation (default 'relu'). */
  activation?: Activation;
  /** Dropout on each branch's output before the residual add (default 0). */
  dropout?: number;
  eps?: number;
  generator?: Generator;
  dtype?: DType;
}

/** One transformer layer: self-attention and a two-layer feed-forward, each with a residual and a norm. [N, L, C] → [N, L, C]. */
export class TransformerBlock extends Module {
  readonly dim: number;
  readonly ffDim: number;
  readonly normPosition: 'pre' | 'post';
  readonly activation: Activation;
  readonly attn: MultiHeadAttention;
  readonly norm1: LayerNorm | RMSNorm;
  readonly norm2: LayerNorm | RMSNorm;
  readonly ff1: Linear;
  readonly ff2: Linear;
  readonly drop: Dropout;

  constructor(dim: number, opts: TransformerBlockOptions) {
    super();
    this.dim = checkPositiveInt('TransformerBlock', 'dim', dim);
    this.ffDim = checkPositiveInt('TransformerBlock', 'ffDim', opts.ffDim ?? 4 * dim);
    this.normPosition = opts.norm ?? 'pre';
    if (this.normPosition !== 'pre' && this.normPosition !== 'post') throw new ArgumentError('TransformerBlock', 'norm', `must be 'pre' or 'post', got '${String(opts.norm)}'`);
    this.activation = opts.activation ?? 'relu';
    if (!['relu', 'gelu', 'gelu-tanh'].includes(this.activation)) throw new ArgumentError('TransformerBlock', 'activation', `must be 'relu', 'gelu' or 'gelu-tanh', got '${String(opts.activation)}'`);
    const normKind = opts.normKind ?? 'layer';
    if (normKind !== 'layer' && normKind !== 'rms') throw new ArgumentError('TransformerBlock', 'normKind', `must be 'layer' or 'rms', got '${String(opts.normKind)}'`);
    const makeNorm = () => (normKind === 'rms' ? new RMSNorm(dim, { eps: opts.eps, dtype: opts.dtype }) : new LayerNorm(dim, { eps: opts.eps, dtype: opts.dtype }));
    const lin = { generator: opts.generator, dtype: opts.dtype };
    this.attn = this.registerModule('attn', new MultiHeadAttention(dim, { heads: opts.heads, pattern: opts.pattern, ...lin }));
    this.norm1 = this.registerModule('norm1', makeNorm());
    this.ff1 = this.registerModule('ff1', new Linear(dim, this.ffDim, lin));
    this.ff2 = this.registerModule('ff2', new Linear(this.ffDim, dim, lin));
    this.norm2 = this.registerModule('norm2', makeNorm());
    this.drop = this.registerModule('drop', new Dropout(opts.dropout ?? 0, { generator: opts.generator }));
  }

  /** The position-wise feed-forward, [..., C] → [..., C]. */
  feedForward(x: Tensor): Tensor {
    const h = this.ff1.forward(x);
    const a = this.activation === 'relu' ? relu(h) : gelu(h, this.activation === 'gelu-tanh' ? 'tanh' : 'none');
    return this.ff2.forward(a);
  }

  #block(x: Tensor, attend: (h: Tensor) => Tensor): Tensor {
    if (this.normPosition === 'pre') {
      const h = add(x, this.drop.forward(attend(this.norm1.forward(x))));
      return add(h, this.drop.forward(this.feedForward(this.norm2.forward(h))));
    }
    const h = this.norm1.forward(add(x, this.drop.forward(attend(x))));
    return this.norm2.forward(add(h, this.drop.forward(this.feedForward(h))));
  }

  /** [N, L, C] → [N, L, C] */
  forward(x: Tensor): Tensor {
    return this.#block(x, (h) => this.attn.forward(h));
  }

  /** Position `position` only (x [N, C]), extending the attention's cache: row `position` of forward() in eval mode. */
  step(x: Tensor, cache: KVCache, position: number): Tensor {
    return noGrad(() => this.#block(x, (h) => this.attn.step(h, cache, position)));
  }

  newCache(batch: number, length: number): KVCache {
    return this.attn.newCache(batch, length);
  }

  override extraRepr(): string {
    return `dim=${this.dim}, ffDim=${this.ffDim}, norm=${this.normPosition}, activation=${this.activation}, dropout=${this.drop.p}`;
  }
}

export interface PositionEmbeddingOptions {
  /** Standard deviation of the initial values (default 0.02, as GPT-2 and Image GPT). */
  std?: number;
  generator?: Generator;
  dtype?: DType;
}

/** A learned vector per position, added to [N, L, C] activations (L ≤ length). */
export class LearnedPositionEmbedding extends Module {
  readonly length: number;
  readonly dim: number;
  readonly std: number;
  /** [length, dim] */
  readonly weight: Parameter;

  constructor(length: number, dim: number, opts: PositionEmbeddingOptions = {}) {
    super();
    this.length = checkPositiveInt('LearnedPositionEmbedding', 'length', length);
    this.dim = checkPositiveInt('LearnedPositionEmbedding', 'dim', dim);
    this.std = opts.std ?? 0.02;
    this.weight = this.registerParameter('weight', new Parameter(zeros([length, dim], checkFloatDType('LearnedPositionEmbedding', opts.dtype))));
    this.resetParameters(opts.generator);
  }

  resetParameters(generator: Generator = getDefaultGenerator()): void {
    normal_(this.weight, 0, this.std, generator);
  }

  /** x [N, L, C] + the first L positions' vectors. */
  forward(x: Tensor): Tensor {
    return addPositions('LearnedPositionEmbedding', x, this.weight);
  }

  /** The vector of one position, [C] (for cached sampling). */
  at(position: number): Tensor {
    return positionRow('LearnedPositionEmbedding.at', this.weight, position);
  }

  override extraRepr(): string {
    return `${this.length}, ${this.dim}`;
  }
}

/** x [N, L, C] + the first L rows of a [length, C] table of position vectors. */
function addPositions(op: string, x: Tensor, table: Tensor): Tensor {
  const [length, dim] = table.shape as [number, number];
  if (x.rank !== 3 || x.shape[2] !== dim || x.shape[1]! > length) {
    throw new ShapeError(op, 'x', `must be [N, L ≤ ${length}, ${dim}], got ${fmtShape(x.shape)}`, [x.shape]);
  }
  const l = x.shape[1]!;
  return add(x, l === length ? table : slice(table, [0, 0], [l, dim]));
}

/** Row `position` of a [length, C] table, as [C]. */
function positionRow(op: string, table: Tensor, position: number): Tensor {
  const [length, dim] = table.shape as [number, number];
  if (!Number.isInteger(position) || position < 0 || position >= length) throw new ArgumentError(op, 'position', `must be an integer in 0..${length - 1}, got ${position}`);
  return reshape(slice(table, [position, 0], [1, dim]), [dim]);
}

/**
 * Sinusoidal position encodings [length, dim] as tensor2tensor's get_timing_signal_1d: for
 * timescales τ_k = minTimescale·(maxTimescale/minTimescale)^(k/(dim/2 − 1)), k < dim/2, position p
 * has sin(p/τ_k) in channel k and cos(p/τ_k) in channel dim/2 + k (sines then cosines, not
 * interleaved); an odd dim gets a zero last channel. With arpix's own exp, log, sin and cos: the
 * table enters every activation, so it must be the same bits on every machine (portable-math.ts).
 */
export function sinusoidalPositionEncoding(length: number, dim: number, opts: { minTimescale?: number; maxTimescale?: number; dtype?: DType } = {}): Tensor {
  checkPositiveInt('sinusoidalPositionEncoding', 'length', length);
  checkPositiveInt('sinusoidalPositionEncoding', 'dim', dim);
  const lo = opts.minTimescale ?? 1, hi = opts.maxTimescale ?? 1e4;
  if (!(lo > 0 && hi >= lo)) throw new ArgumentError('sinusoidalPositionEncoding', 'timescales', `must satisfy 0 < minTimescale ≤ maxTimescale, got ${lo}, ${hi}`);
  const half = Math.floor(dim / 2);
  const logStep = log(hi / lo) / Math.max(half - 1, 1);
  const t = zeros([length, dim], checkFloatDType('sinusoidalPositionEncoding', opts.dtype));
  const d = t.data;
  for (let p = 0; p < length; p++) {
    for (let k = 0; k < half; k++) {
      const angle = p / (lo * exp(k * logStep));
      d[p * dim + k] = sin(angle);
      d[p * dim + half + k] = cos(angle);
    }
  }
  return t;
}

/** Adds fixed sinusoidal encodings (sinusoidalPositionEncoding) to [N, L, C] activations; nothing is learned. */
export class SinusoidalPositionEncoding extends Module {
  readonly length: number;
  readonly dim: number;
  readonly table: Tensor;

  constructor(length: number, dim: number, opts: { minTimescale?: number; maxTimescale?: number; dtype?: DType } = {}) {
    super();
    this.length = length;
    this.dim = dim;
    this.table = this.registerBuffer('table', sinusoidalPositionEncoding(length, dim, opts), { persistent: false });
  }

  forward(x: Tensor): Tensor {
    return addPositions('SinusoidalPositionEncoding', x, this.table);
  }

  /** The encoding of one position, [C]. */
  at(position: number): Tensor {
    return positionRow('SinusoidalPositionEncoding.at', this.table, position);
  }

  override extraRepr(): string {
    return `${this.length}, ${this.dim}`;
  }
}
