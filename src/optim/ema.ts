// Exponential moving average of a module's parameters (Polyak averaging), the weights PixelCNN++
// and Image GPT are evaluated and sampled with:  shadow = decay·shadow + (1 − decay)·param.

import { ArgumentError, ShapeError, fmtShape } from '../errors.js';
import type { Module } from '../nn/module.js';
import { sameShape } from '../tensor/shape.js';
import { Tensor } from '../tensor/tensor.js';

export interface EMAOptions {
  /** Default 0.999. */
  decay?: number;
  /**
   * Use min(decay, (1 + n) / (10 + n)) after n updates, so early averages are not dominated by
   * the random initialisation (TensorFlow's ExponentialMovingAverage num_updates). Default false.
   */
  warmup?: boolean;
}

export interface EMAStateDict {
  /** The averaged parameters by name. */
  tensors: Record<string, Tensor>;
  state: { decay: number; warmup: boolean; updates: number };
}

function copyInto(op: string, name: string, dst: Tensor, src: Tensor): void {
  if (!sameShape(dst.shape, src.shape)) throw new ShapeError(op, `'${name}'`, `has shape ${fmtShape(src.shape)}, expected ${fmtShape(dst.shape)}`, [src.shape, dst.shape]);
  dst.data.set(src.data);
  dst.bumpVersion();
}

export class EMA {
  readonly decay: number;
  readonly warmup: boolean;
  /** Updates applied so far. */
  updates = 0;
  /** The averaged copy of each parameter, by dotted name. */
  readonly shadow = new Map<string, Tensor>();

  constructor(module: Module, opts: EMAOptions = {}) {
    this.decay = opts.decay ?? 0.999;
    this.warmup = opts.warmup ?? false;
    if (!(this.decay >= 0 && this.decay <= 1)) throw new ArgumentError('EMA', 'decay', `must be in [0, 1], got ${this.decay}`);
    for (const [name, p] of module.namedParameters()) this.shadow.set(name, new Tensor(p.data.slice(), p.shape));
  }

  /** The decay the next update uses. */
  currentDecay(): number {
    return this.warmup ? Math.min(this.decay, (1 + this.updates) / (10 + this.updates)) : this.decay;
  }

  #params(op: string, module: Module): [string, Tensor, Tensor][] {
    const named = new Map(module.namedParameters());
    const out: [string, Tensor, Tensor][] = [];
    for (const [name, s] of this.shadow) {
      const p = named.get(name);
      if (p === undefined) throw new ArgumentError(op, 'module', `has no parameter '${name}' (the average was built from another module)`);
      if (!sameShape(p.shape, s.shape)) throw new ShapeError(op, `'${name}'`, `has shape ${fmtShape(p.shape)}, the average ${fmtShape(s.shape)}`, [p.shape, s.shape]);
      out.push([name, p, s]);
    }
    if (named.size !== this.shadow.size) {
      const extra = [...named.keys()].filter((k) => !this.shadow.has(k));
      throw new ArgumentError(op, 'module', `has parameter(s) the average lacks: ${extra.map((k) => `'${k}'`).join(', ')}`);
    }
    return out;
  }

  /** Moves the average towards the module's current parameters (after each optimiser step). */
  update(module: Module): void {
    const d = this.currentDecay();
    for (const [, p, s] of this.#params('EMA.update', module)) {
      const sd = s.data;
      const pd = p.data;
      for (let i = 0; i < sd.length; i++) sd[i] = d * sd[i]! + (1 - d) * pd[i]!;
      s.bumpVersion();
    }
    this.updates++;
  }

  /** Overwrites the module's parameters with the average. */
  copyTo(module: Module): void {
    for (const [name, p, s] of this.#params('EMA.copyTo', module)) copyInto('EMA.copyTo', name, p, s);
  }

  /** Exchanges the module's parameters and the average; a second swap undoes the first. */
  swap(module: Module): void {
    for (const [, p, s] of this.#params('EMA.swap', module)) {
      const pd = p.data;
      const sd = s.data;
      for (let i = 0; i < pd.length; i++) {
        const t = pd[i]!;
        pd[i] = sd[i]!;
        sd[i] = t;
      }
      p.bumpVersion();
      s.bumpVersion();
    }
  }

  /** Runs fn with the module holding the averaged weights (evaluation, sampling), then restores it. */
  withAveraged<T>(module: Module, fn: () => T): T {
    this.swap(module);
    try {
      return fn();
    } finally {
      this.swap(module);
    }
  }

  stateDict(): EMAStateDict {
    const tensors: Record<string, Tensor> = {};
    for (const [name, s] of this.shadow) tensors[name] = new Tensor(s.data.slice(), s.shape);
    return { tensors, state: { decay: this.decay, warmup: this.warmup, updates: this.updates } };
  }

  /** Restores the average and the update count; the decay stays the one this EMA was built with. */
  loadStateDict(sd: EMAStateDict): void {
    const op = 'EMA.loadStateDict';
    const keys = Object.keys(sd.tensors);
    const missing = [...this.shadow.keys()].filter((k) => !(k in sd.tensors));
    const extra = keys.filter((k) => !this.shadow.has(k));
    if (missing.length > 0 || extra.length > 0) {
      throw new ArgumentError(op, 'tensors', `do not match the averaged parameters: missing ${JSON.stringify(missing)}, unexpected ${JSON.stringify(extra)}`);
    }
    for (const [name, s] of this.shadow) {
      const t = sd.tensors[name]!;
      if (!sameShape(t.shape, s.shape)) throw new ShapeError(op, `'${name}'`, `has shape ${fmtShape(t.shape)}, expected ${fmtShape(s.shape)}`, [t.shape, s.shape]);
    }
    const updates = sd.state.updates;
    if (!Number.isInteger(updates) || updates < 0) throw new ArgumentError(op, 'state.updates', `must be a non-negative integer, got ${updates}`);
    for (const [name, s] of this.shadow) copyInto(op, name, s, sd.tensors[name]!);
    this.updates = updates;
  }
}
