// The small layers: LayerNorm, Embedding, Dropout.

import { ArgumentError, ShapeError, fmtShape } from '../errors.js';
import type { DType } from '../kernels/contracts.js';
import { dropout, embedding, layerNorm, zeros } from '../ops/index.js';
import { getDefaultGenerator, type Generator } from '../tensor/random.js';
import type { Tensor } from '../tensor/tensor.js';
import { checkFloatDType, checkPositiveInt } from './check.js';
import { constant_, normal_ } from './init.js';
import { Module, Parameter } from './module.js';

export interface LayerNormOptions {
  eps?: number;
  /** Learn a per-channel scale and shift (default true). */
  elementwiseAffine?: boolean;
  /** With elementwiseAffine, also learn the shift (default true). */
  bias?: boolean;
  dtype?: DType;
}

/** Layer normalisation (Ba et al. 2016) over the last axis, the channels of an [N, H, W, C] image. */
export class LayerNorm extends Module {
  readonly normalizedShape: number;
  readonly eps: number;
  /** [C], or null without affine */
  readonly weight: Parameter | null;
  /** [C], or null */
  readonly bias: Parameter | null;

  constructor(normalizedShape: number, opts: LayerNormOptions = {}) {
    super();
    this.normalizedShape = checkPositiveInt('LayerNorm', 'normalizedShape', normalizedShape);
    this.eps = opts.eps ?? 1e-5;
    if (!(this.eps > 0)) throw new ArgumentError('LayerNorm', 'eps', `must be positive, got ${this.eps}`);
    const dtype = checkFloatDType('LayerNorm', opts.dtype);
    const affine = opts.elementwiseAffine ?? true;
    this.weight = this.registerParameter('weight', affine ? new Parameter(zeros([normalizedShape], dtype)) : null);
    this.bias = this.registerParameter('bias', affine && (opts.bias ?? true) ? new Parameter(zeros([normalizedShape], dtype)) : null);
    this.resetParameters();
  }

  /** Scale 1, shift 0. */
  resetParameters(): void {
    if (this.weight) constant_(this.weight, 1);
    if (this.bias) constant_(this.bias, 0);
  }

  /** [..., C] → [..., C] */
  forward(x: Tensor): Tensor {
    if (x.rank === 0 || x.shape[x.rank - 1] !== this.normalizedShape) {
      throw new ShapeError('LayerNorm', 'x', `last axis must be ${this.normalizedShape}, got shape ${fmtShape(x.shape)}`, [x.shape, [this.normalizedShape]]);
    }
    return layerNorm(x, this.weight, this.bias, this.eps);
  }

  override extraRepr(): string {
    return `${this.normalizedShape}, eps=${this.eps}, affine=${this.weight !== null}`;
  }
}

export interface EmbeddingOptions {
  generator?: Generator;
  dtype?: DType;
}

/** A table of `numEmbeddings` learned vectors of size `embeddingDim`, looked up by int32 index. */
export class Embedding extends Module {
  readonly numEmbeddings: number;
  readonly embeddingDim: number;
  /** [numEmbeddings, embeddingDim] */
  readonly weight: Parameter;

  constructor(numEmbeddings: number, embeddingDim: number, opts: EmbeddingOptions = {}) {
    super();
    this.numEmbeddings = checkPositiveInt('Embedding', 'numEmbeddings', numEmbeddings);
    this.embeddingDim = checkPositiveInt('Embedding', 'embeddingDim', embeddingDim);
    const dtype = checkFloatDType('Embedding', opts.dtype);
    this.weight = this.registerParameter('weight', new Parameter(zeros([numEmbeddings, embeddingDim], dtype)));
    this.resetParameters(opts.generator);
  }

  /** PyTorch's default: standard normal. */
  resetParameters(generator: Generator = getDefaultGenerator()): void {
    normal_(this.weight, 0, 1, generator);
  }

  /** int32 [...] → [..., embeddingDim] */
  forward(indices: Tensor): Tensor {
    return embedding(this.weight, indices);
  }

  override extraRepr(): string {
    return `${this.numEmbeddings}, ${this.embeddingDim}`;
  }
}

export interface DropoutOptions {
  /** Draws the masks (default: the global generator at each call). */
  generator?: Generator;
}

/** Inverted dropout in training mode; the identity in evaluation mode. */
export class Dropout extends Module {
  readonly p: number;
  readonly generator: Generator | null;

  constructor(p = 0.5, opts: DropoutOptions = {}) {
    super();
    if (!(p >= 0 && p < 1)) throw new ArgumentError('Dropout', 'p', `must be in [0, 1), got ${p}`);
    this.p = p;
    this.generator = opts.generator ?? null;
  }

  forward(x: Tensor): Tensor {
    return dropout(x, this.p, this.training, this.generator ?? getDefaultGenerator());
  }

  override extraRepr(): string {
    return `p=${this.p}`;
  }
}
