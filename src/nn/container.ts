// Containers: ModuleList (children named 0, 1, …) and Sequential (a ModuleList that chains forward).

import { ArgumentError } from '../errors.js';
import type { Tensor } from '../tensor/tensor.js';
import { Module, type Forward } from './module.js';

/** An ordered list of child modules, named by position: `blocks.0.conv.weight`. */
export class ModuleList<M extends Module = Module> extends Module implements Iterable<M> {
  readonly #items: M[] = [];

  constructor(modules: Iterable<M> = []) {
    super();
    for (const m of modules) this.push(m);
  }

  /** Appends a module (its name is its index); returns it. */
  push(m: M): M {
    if (!(m instanceof Module)) throw new ArgumentError(this.constructor.name, `item ${this.#items.length}`, 'must be a Module');
    this.registerModule(String(this.#items.length), m);
    this.#items.push(m);
    return m;
  }

  get length(): number {
    return this.#items.length;
  }

  /** The module at index i (negative counts from the end). */
  at(i: number): M {
    const m = this.#items.at(i);
    if (m === undefined) throw new ArgumentError(this.constructor.name, 'index', `${i} is out of range for ${this.#items.length} modules`);
    return m;
  }

  [Symbol.iterator](): Iterator<M> {
    return this.#items[Symbol.iterator]();
  }
}

/** Modules applied in order, each to the output of the one before. */
export class Sequential extends ModuleList<Module & Forward> implements Forward {
  constructor(...modules: (Module & Forward)[]) {
    super(modules);
  }

  forward(x: Tensor): Tensor {
    let h = x;
    for (const m of this) h = m.forward(h);
    return h;
  }
}
