// Linear: y = x Wᵀ + b over the last axis, with W [out, in] as in PyTorch.

import type { DType } from '../kernels/contracts.js';
import { linear, zeros } from '../ops/index.js';
import { getDefaultGenerator, type Generator } from '../tensor/random.js';
import type { Tensor } from '../tensor/tensor.js';
import { checkFloatDType, checkPositiveInt } from './check.js';
import { kaimingUniformBound, uniform_ } from './init.js';
import { Module, Parameter } from './module.js';

export interface LinearOptions {
  /** Learn an additive bias (default true). */
  bias?: boolean;
  /** Draws the initial weights (default: the global generator). */
  generator?: Generator;
  dtype?: DType;
}

export class Linear extends Module {
  readonly inFeatures: number;
  readonly outFeatures: number;
  /** [out, in] */
  readonly weight: Parameter;
  /** [out], or null without bias */
  readonly bias: Parameter | null;

  constructor(inFeatures: number, outFeatures: number, opts: LinearOptions = {}) {
    super();
    this.inFeatures = checkPositiveInt('Linear', 'inFeatures', inFeatures);
    this.outFeatures = checkPositiveInt('Linear', 'outFeatures', outFeatures);
    const dtype = checkFloatDType('Linear', opts.dtype);
    this.weight = this.registerParameter('weight', new Parameter(zeros([outFeatures, inFeatures], dtype)));
    this.bias = this.registerParameter('bias', opts.bias ?? true ? new Parameter(zeros([outFeatures], dtype)) : null);
    this.resetParameters(opts.generator);
  }

  /** PyTorch's default: kaiming-uniform (a = √5) weights, bias uniform in ±1/sqrt(in). */
  resetParameters(generator: Generator = getDefaultGenerator()): void {
    const bound = kaimingUniformBound(this.inFeatures, Math.sqrt(5));
    uniform_(this.weight, -bound, bound, generator);
    if (this.bias) {
      const b = 1 / Math.sqrt(this.inFeatures);
      uniform_(this.bias, -b, b, generator);
    }
  }

  /** [..., in] → [..., out] */
  forward(x: Tensor): Tensor {
    return linear(x, this.weight, this.bias);
  }

  override extraRepr(): string {
    return `in=${this.inFeatures}, out=${this.outFeatures}, bias=${this.bias !== null}`;
  }
}
