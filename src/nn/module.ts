// Module and Parameter: the named tree of parameters, buffers and child modules every layer and
// model is built from, with train / eval mode and state dicts, after PyTorch's torch.nn.Module.
//
// Registration is explicit (`this.weight = this.registerParameter('weight', …)`) rather than
// discovered by walking fields: a field holding a shared module, a cache or a back-reference can
// then never leak into the parameter tree, and the order of names is the order of registration.
// Loading a state dict and re-initialising write into the registered tensors in place, so a field
// and the registry never disagree.

import { ArgumentError, ArpixError, DTypeError, ShapeError, fmtShape } from '../errors.js';
import { noGrad } from '../tensor/autograd.js';
import { sameShape } from '../tensor/shape.js';
import { Tensor } from '../tensor/tensor.js';
import { fromPyTorchLayout, pytorchShape, toPyTorchLayout, type ParamLayout, type StateDictLayout } from './layout.js';

/** A tensor a module trains: a leaf that requires gradients. Shares the storage it is given. */
export class Parameter extends Tensor {
  constructor(data: Tensor) {
    super(data.storage, data.shape);
    if (!this.isFloat) throw new DTypeError('Parameter', 'data', this.dtype, 'float32 or float64');
    this.requiresGrad = true;
  }

  override toString(): string {
    return `Parameter(${fmtShape(this.shape)}, ${this.dtype})`;
  }
}

/** Name → tensor, in registration order (dotted names: `blocks.0.conv.weight`). */
export type StateDict = Record<string, Tensor>;

export interface StateDictOptions {
  /** 'pytorch' converts convolution weights to PyTorch's layouts (see layout.ts). */
  layout?: StateDictLayout;
}

export interface LoadStateDictOptions extends StateDictOptions {
  /** Refuse missing and unexpected keys (default true). Shape mismatches are always refused. */
  strict?: boolean;
}

export interface LoadStateDictResult {
  missingKeys: string[];
  unexpectedKeys: string[];
}

/** A state dict whose keys do not match the module's: lists every missing and unexpected key. */
export class StateDictError extends ArpixError {
  constructor(readonly op: string, readonly missingKeys: readonly string[], readonly unexpectedKeys: readonly string[]) {
    const parts: string[] = [];
    if (missingKeys.length > 0) parts.push(`missing key(s) ${missingKeys.map((k) => `'${k}'`).join(', ')}`);
    if (unexpectedKeys.length > 0) parts.push(`unexpected key(s) ${unexpectedKeys.map((k) => `'${k}'`).join(', ')}`);
    super(`${op}: the state dict does not match the module: ${parts.join('; ')}`);
  }
}

interface ParamEntry {
  value: Parameter | null;
  layout: ParamLayout;
}

interface BufferEntry {
  value: Tensor | null;
  layout: ParamLayout;
  persistent: boolean;
}

/** One tensor a state dict holds, with where it lives and how it is laid out. */
interface StateEntry {
  name: string;
  tensor: Tensor;
  layout: ParamLayout;
}

export abstract class Module {
  /** True in training mode (dropout active); set for the whole tree by train() / eval(). */
  training = true;

  readonly #params = new Map<string, ParamEntry>();
  readonly #buffers = new Map<string, BufferEntry>();
  readonly #modules = new Map<string, Module | null>();

  #checkName(op: string, name: string): void {
    if (typeof name !== 'string' || name === '' || name.includes('.')) {
      throw new ArgumentError(op, 'name', `must be a non-empty string without '.', got '${String(name)}'`);
    }
    if (this.#params.has(name) || this.#buffers.has(name) || this.#modules.has(name)) {
      throw new ArgumentError(op, 'name', `'${name}' is already registered on ${this.constructor.name}`);
    }
  }

  /**
   * Registers a trained tensor under `name` (null reserves the name, as an absent bias) and returns
   * it, for `this.weight = this.registerParameter('weight', …)`. `layout` tells how a convolution
   * weight converts to PyTorch's layout.
   */
  protected registerParameter<P extends Parameter | null>(name: string, param: P, opts: { layout?: ParamLayout } = {}): P {
    this.#checkName('registerParameter', name);
    if (param !== null && !(param instanceof Parameter)) {
      throw new ArgumentError('registerParameter', name, 'must be a Parameter (wrap the tensor: new Parameter(t))');
    }
    this.#params.set(name, { value: param, layout: opts.layout ?? 'plain' });
    return param;
  }

  /**
   * Registers a tensor that is not trained (a mask, running statistics). Persistent buffers go
   * into the state dict; non-persistent ones are rebuilt from the configuration.
   */
  protected registerBuffer<T extends Tensor | null>(name: string, tensor: T, opts: { persistent?: boolean; layout?: ParamLayout } = {}): T {
    this.#checkName('registerBuffer', name);
    if (tensor !== null && !(tensor instanceof Tensor)) throw new ArgumentError('registerBuffer', name, 'must be a Tensor or null');
    this.#buffers.set(name, { value: tensor, layout: opts.layout ?? 'plain', persistent: opts.persistent ?? true });
    return tensor;
  }

  /** Registers a child module under `name` and returns it. */
  protected registerModule<M extends Module | null>(name: string, module: M): M {
    this.#checkName('registerModule', name);
    if (module !== null && !(module instanceof Module)) throw new ArgumentError('registerModule', name, 'must be a Module or null');
    this.#modules.set(name, module);
    return module;
  }

  /** Direct children with their names. */
  namedChildren(): [string, Module][] {
    const out: [string, Module][] = [];
    for (const [name, m] of this.#modules) if (m !== null) out.push([name, m]);
    return out;
  }

  children(): Module[] {
    return this.namedChildren().map(([, m]) => m);
  }

  /** This module (named '') and every descendant, depth first; a shared module appears once. */
  namedModules(prefix = ''): [string, Module][] {
    const out: [string, Module][] = [];
    const seen = new Set<Module>();
    const visit = (m: Module, name: string): void => {
      if (seen.has(m)) return;
      seen.add(m);
      out.push([name, m]);
      for (const [child, c] of m.namedChildren()) visit(c, name === '' ? child : `${name}.${child}`);
    };
    visit(this, prefix);
    return out;
  }

  modules(): Module[] {
    return this.namedModules().map(([, m]) => m);
  }

  #namedEntries(kind: 'params' | 'buffers'): [string, Tensor, ParamLayout, boolean][] {
    const out: [string, Tensor, ParamLayout, boolean][] = [];
    const seen = new Set<Tensor>(); // a tied parameter is trained once
    for (const [prefix, m] of this.namedModules()) {
      const map: Map<string, ParamEntry | BufferEntry> = kind === 'params' ? m.#params : m.#buffers;
      for (const [name, e] of map) {
        if (e.value === null || seen.has(e.value)) continue;
        seen.add(e.value);
        out.push([prefix === '' ? name : `${prefix}.${name}`, e.value, e.layout, 'persistent' in e ? e.persistent : true]);
      }
    }
    return out;
  }

  /** Every parameter of the tree with its dotted name, in registration order, each once. */
  namedParameters(): [string, Parameter][] {
    return this.#namedEntries('params').map(([n, t]) => [n, t as Parameter]);
  }

  parameters(): Parameter[] {
    return this.namedParameters().map(([, p]) => p);
  }

  /** Every buffer of the tree with its dotted name (persistent or not). */
  namedBuffers(): [string, Tensor][] {
    return this.#namedEntries('buffers').map(([n, t]) => [n, t]);
  }

  buffers(): Tensor[] {
    return this.namedBuffers().map(([, t]) => t);
  }

  /** The number of trained scalars. */
  numParameters(): number {
    return this.parameters().reduce((n, p) => n + p.size, 0);
  }

  #stateEntries(): StateEntry[] {
    const params = this.#namedEntries('params').map(([name, tensor, layout]) => ({ name, tensor, layout }));
    const buffers = this.#namedEntries('buffers')
      .filter(([, , , persistent]) => persistent)
      .map(([name, tensor, layout]) => ({ name, tensor, layout }));
    return [...params, ...buffers];
  }

  /** The layout of every state-dict entry that is not plain (convolution weights, their masks). */
  stateLayouts(): Record<string, ParamLayout> {
    const out: Record<string, ParamLayout> = {};
    for (const e of this.#stateEntries()) if (e.layout !== 'plain') out[e.name] = e.layout;
    return out;
  }

  /**
   * Parameters and persistent buffers by dotted name. In arpix's layout the tensors share storage
   * with the module (as PyTorch's); in PyTorch's layout convolution weights are converted copies.
   */
  stateDict(opts: StateDictOptions = {}): StateDict {
    const layout = checkLayout('stateDict', opts.layout);
    const out: StateDict = {};
    for (const e of this.#stateEntries()) {
      out[e.name] = layout === 'pytorch' ? toPyTorchLayout(e.tensor, e.layout, e.name) : e.tensor.detach();
    }
    return out;
  }

  /**
   * Copies a state dict into the module's tensors in place. Every key and shape is checked before
   * anything is written, so a failed load leaves the module as it was.
   */
  loadStateDict(sd: StateDict | ReadonlyMap<string, Tensor>, opts: LoadStateDictOptions = {}): LoadStateDictResult {
    const op = 'loadStateDict';
    const layout = checkLayout(op, opts.layout);
    const strict = opts.strict ?? true;
    const source = sd instanceof Map ? sd : new Map(Object.entries(sd as StateDict));
    const entries = this.#stateEntries();
    const expected = new Set(entries.map((e) => e.name));
    const missingKeys = entries.filter((e) => !source.has(e.name)).map((e) => e.name);
    const unexpectedKeys = [...source.keys()].filter((k) => !expected.has(k));
    if (strict && (missingKeys.length > 0 || unexpectedKeys.length > 0)) throw new StateDictError(op, missingKeys, unexpectedKeys);

    const plan: [Tensor, Tensor][] = [];
    for (const e of entries) {
      let src = source.get(e.name);
      if (src === undefined) continue;
      if (!(src instanceof Tensor)) throw new ArgumentError(op, `'${e.name}'`, 'must be a Tensor');
      if (src.isFloat !== e.tensor.isFloat) throw new DTypeError(op, `'${e.name}'`, src.dtype, `${e.tensor.dtype} (the module's)`);
      if (layout === 'pytorch' && e.layout !== 'plain') {
        // Compared in PyTorch's layout, the one the caller's tensors are in.
        const want = pytorchShape(e.tensor.shape, e.layout);
        if (!sameShape(src.shape, want)) {
          throw new ShapeError(op, `'${e.name}'`, `has shape ${fmtShape(src.shape)} in the state dict but ${fmtShape(want)} in the module (PyTorch's layout; ${fmtShape(e.tensor.shape)} in arpix's)`, [src.shape, want]);
        }
        src = fromPyTorchLayout(src, e.layout, e.name);
      }
      if (!sameShape(src.shape, e.tensor.shape)) {
        throw new ShapeError(op, `'${e.name}'`, `has shape ${fmtShape(src.shape)} in the state dict but ${fmtShape(e.tensor.shape)} in the module`, [src.shape, e.tensor.shape]);
      }
      plan.push([e.tensor, src]);
    }
    noGrad(() => {
      for (const [dst, src] of plan) {
        if (dst.storage === src.storage) continue;
        dst.data.set(src.data); // converts float64 ↔ float32 element by element
        dst.bumpVersion();
      }
    });
    return { missingKeys, unexpectedKeys };
  }

  /** Sets training mode on this module and every descendant; returns this. */
  train(mode = true): this {
    for (const m of this.modules()) m.training = mode;
    return this;
  }

  /** Evaluation mode (dropout off); returns this. */
  eval(): this {
    return this.train(false);
  }

  /** Drops every parameter's gradient. */
  zeroGrad(): void {
    for (const p of this.parameters()) p.grad = null;
  }

  /** The constructor arguments worth showing in toString(), e.g. `3, 16, kernel=[3, 3]`. */
  extraRepr(): string {
    return '';
  }

  toString(): string {
    const head = `${this.constructor.name}(${this.extraRepr()}`;
    const kids = this.namedChildren();
    if (kids.length === 0) return `${head})`;
    const lines = kids.map(([name, m]) => `  (${name}): ${m.toString().split('\n').join('\n  ')}`);
    return `${head}${this.extraRepr() === '' ? '' : ','}\n${lines.join('\n')}\n)`;
  }
}

function checkLayout(op: string, layout: StateDictLayout | undefined): StateDictLayout {
  const l = layout ?? 'arpix';
  if (l !== 'arpix' && l !== 'pytorch') throw new ArgumentError(op, 'layout', `must be 'arpix' or 'pytorch', got '${String(l)}'`);
  return l;
}

/** A module whose forward maps one tensor to one tensor (what Sequential chains). */
export interface Forward {
  forward(x: Tensor): Tensor;
}
