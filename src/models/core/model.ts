// What every autoregressive image model shares: a network that maps an image (and an optional
// class label or condition vector) to likelihood parameters for every pixel, and the likelihood
// head that turns those into log p(x) = Σ_i log p(x_i | x_<i) and into samples.

import { ArgumentError, ShapeError, fmtShape } from '../../errors.js';
import { createLikelihood, type Likelihood, type LikelihoodConfig } from '../../likelihoods/index.js';
import { Module } from '../../nn/index.js';
import { cast, mean, mul, sub } from '../../ops/index.js';
import type { Tensor } from '../../tensor/tensor.js';
import { sample } from '../sampling/sample.js';
import type { Condition, SampleOptions, SampleSetup, Stepper } from '../sampling/options.js';

export type { Condition } from '../sampling/options.js';

export interface BaseModelConfig {
  kind: string;
  height: number;
  width: number;
  /** Image channels: 1 (grey) or 3 (RGB). */
  channels: number;
  likelihood: LikelihoodConfig;
  /** Number of classes for class-conditional models; 0 for unconditional. */
  numClasses: number;
  /** Size of an arbitrary conditioning vector h (the paper's conditional form); 0 for none. */
  conditionDim: number;
}

export abstract class AutoregressiveModel<C extends BaseModelConfig = BaseModelConfig> extends Module {
  readonly likelihood: Likelihood;

  constructor(readonly config: C) {
    super();
    const { height, width, channels } = config;
    for (const [k, v] of [['height', height], ['width', width], ['channels', channels]] as const) {
      if (!Number.isInteger(v) || v < 1) throw new ArgumentError(config.kind, k, `must be a positive integer, got ${v}`);
    }
    for (const [k, v] of [['numClasses', config.numClasses], ['conditionDim', config.conditionDim]] as const) {
      if (!Number.isInteger(v) || v < 0) throw new ArgumentError(config.kind, k, `must be an integer ≥ 0 (0: none), got ${v}`);
    }
    this.likelihood = createLikelihood(config.likelihood, channels);
  }

  /** Values per pixel the network must produce for the head. */
  get paramsPerPixel(): number {
    return this.likelihood.paramsPerPixel;
  }

  /**
   * The denominator of bits/dim: dimensions of one image (H·W·C) when log p is of the 8-bit
   * image, or tokens (H·W) when it is of a palette's token sequence (likelihood.measures).
   */
  get dims(): number {
    const { height, width, channels } = this.config;
    return height * width * (this.likelihood.measures === 'tokens' ? 1 : channels);
  }

  /**
   * The network: x float [N, H, W, C] scaled to [−1, 1] → parameters [N, H, W, P]. Output at a
   * pixel (and, for per-channel heads, at channel c) must depend on earlier elements only.
   */
  abstract network(x: Tensor, cond: Condition): Tensor;

  /** Checks an integer image batch and its condition; returns N. */
  checkInputs(op: string, images: Tensor, cond: Condition = {}): number {
    const { height, width, channels, numClasses, conditionDim } = this.config;
    if (images.dtype !== 'int32' || images.rank !== 4 || images.shape[1] !== height || images.shape[2] !== width || images.shape[3] !== channels) {
      throw new ShapeError(op, 'images', `must be int32 [N, ${height}, ${width}, ${channels}] for this model, got ${images.dtype} ${fmtShape(images.shape)}`, [images.shape]);
    }
    const n = images.shape[0]!;
    const labels = cond.labels ?? null;
    if (numClasses > 0) {
      if (labels === null) throw new ArgumentError(op, 'labels', `are required: this model is conditioned on ${numClasses} classes`);
      if (labels.dtype !== 'int32' || labels.rank !== 1 || labels.shape[0] !== n) {
        throw new ShapeError(op, 'labels', `must be int32 [${n}], got ${labels.dtype} ${fmtShape(labels.shape)}`, [labels.shape]);
      }
      for (const l of labels.data) if (l < 0 || l >= numClasses) throw new ArgumentError(op, 'labels', `contain ${l}, outside 0..${numClasses - 1}`);
    } else if (labels !== null) {
      throw new ArgumentError(op, 'labels', 'were given but this model is unconditional (numClasses is 0)');
    }
    const h = cond.h ?? null;
    if (conditionDim > 0) {
      if (h === null || !h.isFloat || h.rank !== 2 || h.shape[0] !== n || h.shape[1] !== conditionDim) {
        throw new ShapeError(op, 'h', `must be a float [${n}, ${conditionDim}] condition vector, got ${h ? fmtShape(h.shape) : 'none'}`, h ? [h.shape] : []);
      }
    } else if (h !== null) {
      throw new ArgumentError(op, 'h', 'was given but this model has no condition vector (conditionDim is 0)');
    }
    return n;
  }

  /** Integer levels → floats in [−1, 1], the network's input. */
  scaleInput(images: Tensor): Tensor {
    return sub(mul(cast(images, 'float32'), 2 / (this.likelihood.levels - 1)), 1);
  }

  /** Likelihood parameters [N, H, W, P] for an integer image batch. */
  params(images: Tensor, cond: Condition = {}): Tensor {
    this.checkInputs('params', images, cond);
    return this.network(this.scaleInput(images), cond);
  }

  /** log p(x) in nats for each image: [N]. */
  logProb(images: Tensor, cond: Condition = {}): Tensor {
    return this.likelihood.logProb(this.params(images, cond), images);
  }

  /**
   * log p(x_i | x_<i) in nats for every element, [N, H, W, C]: where in an image the model's bits
   * go. Sums over H, W and C to logProb.
   */
  elementLogProb(images: Tensor, cond: Condition = {}): Tensor {
    return this.likelihood.elementLogProb(this.params(images, cond), images);
  }

  /** Negative log-likelihood in bits per dimension for each image: [N]. */
  bitsPerDim(images: Tensor, cond: Condition = {}): Tensor {
    return mul(this.logProb(images, cond), -1 / (this.dims * Math.LN2));
  }

  /** The training loss: mean bits/dim over the batch (a scalar). */
  loss(images: Tensor, cond: Condition = {}): Tensor {
    return mean(this.bitsPerDim(images, cond));
  }

  /**
   * Draws images [n, H, W, C] (int32) from the model; the same seed gives the same images.
   * With `complete`, keeps the first rows of given images and samples the rest. Uses the cached
   * sampler (each layer updates only what the new element changes) unless `method: 'naive'`.
   */
  sample(opts: SampleOptions): Tensor {
    return sample(this, opts);
  }

  /** The family's cached stepper, given by its family entry when it builds the model. */
  private stepper: ((setup: SampleSetup) => Stepper) | null = null;

  /**
   * Gives the model its family's cached stepper, which the family entry's `build` does: the stepper
   * (the family folder's cached.ts) reads the network's public layers, so the network itself needs
   * no import of it. Returns the model.
   */
  withCachedStepper(stepper: (model: this, setup: SampleSetup) => Stepper): this {
    this.stepper = (setup) => stepper(this, setup);
    return this;
  }

  /**
   * The family's cached stepper (each layer keeps what it computed and does only what the next
   * element changes), or null when the family has none and sampling falls back to the naive one.
   */
  cachedStepper(setup: SampleSetup): Stepper | null {
    return this.stepper === null ? null : this.stepper(setup);
  }
}
