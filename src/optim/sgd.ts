// Stochastic gradient descent with momentum, dampening, Nesterov and L2 weight decay, with
// PyTorch's torch.optim.SGD update:
//   d = g + wd·p;  buf = d on the first step, else momentum·buf + (1 − dampening)·d;
//   d = nesterov ? d + momentum·buf : buf;  p −= lr·d.

import { ArgumentError } from '../errors.js';
import type { Tensor } from '../tensor/tensor.js';
import { Optimizer, type BaseOptions, type ParamGroup, type ParamState, type ParamsInput } from './optimizer.js';

export interface SGDOptions extends BaseOptions {
  momentum: number;
  dampening: number;
  weightDecay: number;
  nesterov: boolean;
}

export class SGD extends Optimizer<SGDOptions> {
  protected readonly bufferNames: readonly string[];

  constructor(params: ParamsInput<SGDOptions>, opts: Partial<SGDOptions> & { lr: number }) {
    super(params, { momentum: 0, dampening: 0, weightDecay: 0, nesterov: false, ...opts });
    this.bufferNames = this.paramGroups.some((g) => g.momentum !== 0) ? ['momentum_buffer'] : [];
  }

  protected override checkOptions(o: SGDOptions): void {
    super.checkOptions(o);
    if (!(o.momentum >= 0)) throw new ArgumentError(this.name, 'momentum', `must be ≥ 0, got ${o.momentum}`);
    if (!(o.weightDecay >= 0)) throw new ArgumentError(this.name, 'weightDecay', `must be ≥ 0, got ${o.weightDecay}`);
    if (!(o.dampening >= 0 && o.dampening <= 1)) throw new ArgumentError(this.name, 'dampening', `must be in [0, 1], got ${o.dampening}`);
    if (o.nesterov && (o.momentum <= 0 || o.dampening !== 0)) {
      throw new ArgumentError(this.name, 'nesterov', `needs momentum > 0 and dampening 0, got momentum ${o.momentum}, dampening ${o.dampening}`);
    }
  }

  protected update(p: Tensor, grad: Tensor, s: ParamState, group: ParamGroup<SGDOptions>): void {
    const { lr, momentum, dampening, weightDecay, nesterov } = group;
    const w = p.data;
    const g = grad.data;
    const buf = momentum !== 0 ? s.buffers['momentum_buffer']!.data : null;
    const first = s.step === 1;
    for (let i = 0; i < w.length; i++) {
      let d = g[i]! + weightDecay * w[i]!;
      if (buf) {
        buf[i] = first ? d : momentum * buf[i]! + (1 - dampening) * d;
        d = nesterov ? d + momentum * buf[i]! : buf[i]!;
      }
      w[i] = w[i]! - lr * d;
    }
  }
}
