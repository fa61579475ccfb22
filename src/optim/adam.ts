// Adam (Kingma & Ba 2015) and AdamW (Loshchilov & Hutter 2019), with PyTorch's formulas so a few
// steps match torch.optim value for value:
//   Adam adds L2 decay to the gradient: g += wd·p.  AdamW decays the weight apart: p −= lr·wd·p.
//   m = β1·m + (1 − β1)·g;  v = β2·v + (1 − β2)·g²
//   p −= lr / (1 − β1^t) · m / (sqrt(v) / sqrt(1 − β2^t) + eps)      (eps outside the sqrt)

import { ArgumentError } from '../errors.js';
import { K as kernelsFor } from '../ops/core.js';
import type { Tensor } from '../tensor/tensor.js';
import { Optimizer, type BaseOptions, type ParamGroup, type ParamState, type ParamsInput } from './optimizer.js';

export interface AdamOptions extends BaseOptions {
  betas: readonly [number, number];
  eps: number;
  weightDecay: number;
}

export class Adam extends Optimizer<AdamOptions> {
  protected readonly bufferNames = ['exp_avg', 'exp_avg_sq'] as const;
  /** AdamW's decoupled weight decay rather than Adam's L2 term in the gradient. */
  protected readonly decoupled: boolean = false;

  constructor(params: ParamsInput<AdamOptions>, opts: Partial<AdamOptions> = {}) {
    super(params, { lr: 1e-3, betas: [0.9, 0.999], eps: 1e-8, weightDecay: 0, ...opts });
  }

  protected override checkOptions(o: AdamOptions): void {
    super.checkOptions(o);
    const b = o.betas;
    if (!Array.isArray(b) || b.length !== 2 || !b.every((x) => x >= 0 && x < 1)) {
      throw new ArgumentError(this.name, 'betas', `must be two numbers in [0, 1), got ${JSON.stringify(b)}`);
    }
    if (!(o.eps >= 0)) throw new ArgumentError(this.name, 'eps', `must be ≥ 0, got ${o.eps}`);
    if (!(o.weightDecay >= 0)) throw new ArgumentError(this.name, 'weightDecay', `must be ≥ 0, got ${o.weightDecay}`);
  }

  protected update(p: Tensor, grad: Tensor, s: ParamState, group: ParamGroup<AdamOptions>): void {
    const { lr, eps, weightDecay } = group;
    const [beta1, beta2] = group.betas;
    kernelsFor(p, grad).adamUpdate(p, grad, s.buffers['exp_avg']!, s.buffers['exp_avg_sq']!, {
      beta1, beta2, eps,
      stepSize: lr / (1 - beta1 ** s.step),
      bc2Sqrt: Math.sqrt(1 - beta2 ** s.step),
      decay: this.decoupled ? 1 - lr * weightDecay : 1,
      l2: this.decoupled ? 0 : weightDecay,
    });
  }
}

/** Adam with decoupled weight decay (default 0.01, as PyTorch's AdamW). */
export class AdamW extends Adam {
  protected override readonly decoupled: boolean = true;

  constructor(params: ParamsInput<AdamOptions>, opts: Partial<AdamOptions> = {}) {
    super(params, { weightDecay: 1e-2, ...opts });
  }
}
