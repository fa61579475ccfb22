// What every optimiser shares: parameter groups with their own hyper-parameters, per-parameter
// state (step count and moment buffers), zeroGrad, and a state dict for exact resumption.
//
// Updates are plain loops over the typed arrays, in place, inside noGrad; after writing a
// parameter an optimiser bumps its storage version, because the native backend caches reordered
// weights by (storage, version).

import { ArgumentError, DTypeError, ShapeError, fmtShape } from '../errors.js';
import { noGrad } from '../tensor/autograd.js';
import { sameShape } from '../tensor/shape.js';
import { Tensor, arrayFor } from '../tensor/tensor.js';

/** The hyper-parameters every optimiser has. */
export interface BaseOptions {
  lr: number;
}

/** A group of parameters sharing hyper-parameters; `lr` is what schedules change. */
export type ParamGroup<O extends BaseOptions> = O & {
  readonly params: readonly Tensor[];
  /** The learning rate the group started with; schedules multiply it. */
  initialLr: number;
};

/** Parameters with hyper-parameters overriding the optimiser's defaults for them. */
export type ParamGroupInput<O extends BaseOptions> = Partial<O> & { params: Iterable<Tensor> };

export type ParamsInput<O extends BaseOptions> = Iterable<Tensor> | readonly ParamGroupInput<O>[];

/** The state of one parameter: steps taken and named buffers of its shape. */
export interface ParamState {
  step: number;
  buffers: Record<string, Tensor>;
}

/** JSON-able part of an optimiser state dict. */
export interface OptimizerJSONState {
  kind: string;
  groups: (Record<string, unknown> & { params: number[] })[];
  /** Steps taken by parameter index (parameters that have state only). */
  steps: Record<string, number>;
}

/** An optimiser's state: buffers as tensors (`<param index>.<buffer>`) plus JSON. */
export interface OptimizerStateDict {
  tensors: Record<string, Tensor>;
  state: OptimizerJSONState;
}

function isGroupList<O extends BaseOptions>(p: ParamsInput<O>): p is readonly ParamGroupInput<O>[] {
  return Array.isArray(p) && p.length > 0 && !(p[0] instanceof Tensor);
}

export abstract class Optimizer<O extends BaseOptions> {
  readonly paramGroups: ParamGroup<O>[] = [];
  readonly state = new Map<Tensor, ParamState>();
  protected readonly name: string;

  constructor(params: ParamsInput<O>, defaults: O) {
    this.name = new.target.name;
    this.checkOptions(defaults);
    const groups: ParamGroupInput<O>[] = isGroupList(params) ? [...params] : [{ params } as ParamGroupInput<O>];
    const seen = new Set<Tensor>();
    for (const [gi, g] of groups.entries()) {
      const list = [...g.params];
      for (const [pi, p] of list.entries()) {
        const where = groups.length > 1 ? `parameter ${pi} of group ${gi}` : `parameter ${pi}`;
        if (!(p instanceof Tensor)) throw new ArgumentError(this.name, where, 'is not a Tensor');
        if (!p.isFloat) throw new DTypeError(this.name, where, p.dtype, 'float32 or float64');
        if (!p.requiresGrad) throw new ArgumentError(this.name, where, `${fmtShape(p.shape)} does not require gradients`);
        if (seen.has(p)) throw new ArgumentError(this.name, where, 'appears more than once');
        seen.add(p);
      }
      const { params: _params, ...overrides } = g;
      const options = { ...defaults, ...overrides } as O;
      this.checkOptions(options);
      this.paramGroups.push({ ...options, params: list, initialLr: options.lr });
    }
    if (seen.size === 0) throw new ArgumentError(this.name, 'params', 'is empty: give at least one parameter');
  }

  /** Throws an ArgumentError naming the hyper-parameter that is out of range. */
  protected checkOptions(o: O): void {
    if (!(o.lr >= 0)) throw new ArgumentError(this.name, 'lr', `must be ≥ 0, got ${o.lr}`);
  }

  /** The buffers a parameter's state holds, created zero on its first step. */
  protected abstract readonly bufferNames: readonly string[];

  /** Updates one parameter in place from its gradient; `s.step` is already incremented. */
  protected abstract update(p: Tensor, grad: Tensor, s: ParamState, group: ParamGroup<O>): void;

  /** One update of every parameter that has a gradient. */
  step(): void {
    noGrad(() => {
      for (const group of this.paramGroups) {
        for (const p of group.params) {
          const g = p.grad;
          if (g === null) continue;
          if (!sameShape(g.shape, p.shape)) {
            throw new ShapeError(`${this.name}.step`, 'grad', `shape ${fmtShape(g.shape)} differs from its parameter's ${fmtShape(p.shape)}`, [g.shape, p.shape]);
          }
          if (g.dtype !== p.dtype) throw new DTypeError(`${this.name}.step`, 'grad', g.dtype, `${p.dtype} (its parameter's)`);
          let s = this.state.get(p);
          if (s === undefined) {
            s = { step: 0, buffers: {} };
            for (const b of this.bufferNames) s.buffers[b] = new Tensor(arrayFor(p.dtype, p.size), p.shape);
            this.state.set(p, s);
          }
          s.step++;
          this.update(p, g, s, group);
          p.bumpVersion();
        }
      }
    });
  }

  /** Drops every gradient (PyTorch's set_to_none), so the next backward starts afresh. */
  zeroGrad(): void {
    for (const group of this.paramGroups) for (const p of group.params) p.grad = null;
  }

  /** Sets every group's learning rate to its initial one times `factor` (what schedules call). */
  setLrFactor(factor: number): void {
    for (const g of this.paramGroups) g.lr = g.initialLr * factor;
  }

  /** Step counts, buffers and hyper-parameters; parameters are referred to by index, in group order. */
  stateDict(): OptimizerStateDict {
    const tensors: Record<string, Tensor> = {};
    const steps: Record<string, number> = {};
    const groups: OptimizerJSONState['groups'] = [];
    let index = 0;
    for (const group of this.paramGroups) {
      const { params, ...hyper } = group;
      const indices: number[] = [];
      for (const p of params) {
        const s = this.state.get(p);
        if (s) {
          steps[index] = s.step;
          for (const [b, t] of Object.entries(s.buffers)) tensors[`${index}.${b}`] = new Tensor(t.data.slice(), t.shape);
        }
        indices.push(index++);
      }
      groups.push({ ...JSON.parse(JSON.stringify(hyper)), params: indices });
    }
    return { tensors, state: { kind: this.name, groups, steps } };
  }

  /**
   * Restores a state dict from stateDict(), for this optimiser built over the same parameters in
   * the same order. Everything is checked before anything changes.
   */
  loadStateDict(sd: OptimizerStateDict): void {
    const op = `${this.name}.loadStateDict`;
    const { state, tensors } = sd;
    if (state.kind !== this.name) throw new ArgumentError(op, 'kind', `is '${state.kind}', this optimiser is ${this.name}`);
    if (state.groups.length !== this.paramGroups.length) {
      throw new ArgumentError(op, 'groups', `has ${state.groups.length} parameter groups, this optimiser has ${this.paramGroups.length}`);
    }
    const params = this.paramGroups.flatMap((g) => g.params);
    state.groups.forEach((g, gi) => {
      const mine = this.paramGroups[gi]!;
      if (g.params.length !== mine.params.length) {
        throw new ArgumentError(op, `group ${gi}`, `has ${g.params.length} parameters, this optimiser's has ${mine.params.length}`);
      }
    });
    const newState = new Map<Tensor, ParamState>();
    const used = new Set<string>();
    for (const [key, step] of Object.entries(state.steps)) {
      const p = params[Number(key)];
      if (p === undefined || !Number.isInteger(Number(key))) throw new ArgumentError(op, 'steps', `names parameter '${key}', but there are ${params.length}`);
      if (!Number.isInteger(step) || step < 0) throw new ArgumentError(op, `steps.${key}`, `must be a non-negative integer, got ${step}`);
      const s: ParamState = { step, buffers: {} };
      for (const b of this.bufferNames) {
        const name = `${key}.${b}`;
        const t = tensors[name];
        if (t === undefined) throw new ArgumentError(op, 'tensors', `lack '${name}'`);
        if (!sameShape(t.shape, p.shape)) {
          throw new ShapeError(op, `'${name}'`, `has shape ${fmtShape(t.shape)} but its parameter has ${fmtShape(p.shape)}`, [t.shape, p.shape]);
        }
        if (!t.isFloat) throw new DTypeError(op, `'${name}'`, t.dtype, p.dtype);
        const copy = new Tensor(arrayFor(p.dtype, p.size), p.shape);
        copy.data.set(t.data);
        s.buffers[b] = copy;
        used.add(name);
      }
      newState.set(p, s);
    }
    const extra = Object.keys(tensors).filter((k) => !used.has(k));
    if (extra.length > 0) throw new ArgumentError(op, 'tensors', `hold unexpected key(s) ${extra.map((k) => `'${k}'`).join(', ')}`);
    const hyper = state.groups.map((g) => {
      const { params: _p, ...h } = g;
      const merged = { ...h } as unknown as O & { initialLr: number };
      this.checkOptions(merged);
      return merged;
    });
    this.state.clear();
    for (const [p, s] of newState) this.state.set(p, s);
    hyper.forEach((h, gi) => Object.assign(this.paramGroups[gi]!, h));
  }
}
