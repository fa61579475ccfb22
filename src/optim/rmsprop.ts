// RMSProp (Tieleman & Hinton 2012), the optimiser PixelRNN was trained with (van den Oord et al.
// 2016, §5.2), with PyTorch's torch.optim.RMSprop update (not centred):
//   d = g + wd·p;  v = α·v + (1 − α)·d²;  step = d / (√v + eps);
//   with momentum: buf = momentum·buf + step, p −= lr·buf;  else p −= lr·step.

import { ArgumentError } from '../errors.js';
import type { Tensor } from '../tensor/tensor.js';
import { Optimizer, type BaseOptions, type ParamGroup, type ParamState, type ParamsInput } from './optimizer.js';

export interface RMSPropOptions extends BaseOptions {
  /** Smoothing of the squared-gradient average (PyTorch's alpha). */
  alpha: number;
  eps: number;
  momentum: number;
  weightDecay: number;
}

export class RMSProp extends Optimizer<RMSPropOptions> {
  protected readonly bufferNames: readonly string[];

  constructor(params: ParamsInput<RMSPropOptions>, opts: Partial<RMSPropOptions> & { lr: number }) {
    super(params, { alpha: 0.99, eps: 1e-8, momentum: 0, weightDecay: 0, ...opts });
    this.bufferNames = this.paramGroups.some((g) => g.momentum !== 0) ? ['square_avg', 'momentum_buffer'] : ['square_avg'];
  }

  protected override checkOptions(o: RMSPropOptions): void {
    super.checkOptions(o);
    if (!(o.alpha >= 0 && o.alpha < 1)) throw new ArgumentError(this.name, 'alpha', `must be in [0, 1), got ${o.alpha}`);
    if (!(o.eps > 0)) throw new ArgumentError(this.name, 'eps', `must be positive, got ${o.eps}`);
    if (!(o.momentum >= 0)) throw new ArgumentError(this.name, 'momentum', `must be ≥ 0, got ${o.momentum}`);
    if (!(o.weightDecay >= 0)) throw new ArgumentError(this.name, 'weightDecay', `must be ≥ 0, got ${o.weightDecay}`);
  }

  protected update(p: Tensor, grad: Tensor, s: ParamState, group: ParamGroup<RMSPropOptions>): void {
    const { lr, alpha, eps, momentum, weightDecay } = group;
    const w = p.data;
    const g = grad.data;
    const v = s.buffers['square_avg']!.data;
    const buf = momentum !== 0 ? s.buffers['momentum_buffer']!.data : null;
    for (let i = 0; i < w.length; i++) {
      const d = g[i]! + weightDecay * w[i]!;
      v[i] = alpha * v[i]! + (1 - alpha) * d * d;
      const step = d / (Math.sqrt(v[i]!) + eps);
      if (buf) {
        buf[i] = momentum * buf[i]! + step;
        w[i] = w[i]! - lr * buf[i]!;
      } else {
        w[i] = w[i]! - lr * step;
      }
    }
  }
}
