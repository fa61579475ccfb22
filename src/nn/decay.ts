// Weight-decay parameter groups for AdamW: decay the weights of matrix products and convolutions,
// not norms' scales and shifts, biases, embeddings or position embeddings (GPT-2 / minGPT's rule).

import type { Tensor } from '../tensor/tensor.js';
import { ArgumentError } from '../errors.js';
import { Embedding, LayerNorm } from './layers.js';
import type { Module } from './module.js';
import { LearnedPositionEmbedding, RMSNorm } from './transformer.js';

/** Modules none of whose own parameters are decayed. */
const NO_DECAY_MODULES = [LayerNorm, RMSNorm, Embedding, LearnedPositionEmbedding];

export interface WeightDecayGroup {
  params: Tensor[];
  weightDecay: number;
}

/**
 * Two parameter groups for an optimiser: [decayed (weightDecay), not decayed (0)]. A parameter is
 * not decayed when it belongs to a norm, an embedding table or a position embedding, when its name
 * is `bias`, or when it has fewer than two axes; `noDecay` adds names (dotted, as namedParameters
 * gives them) to leave undecayed. Pass the result as `new AdamW(groups, …)`.
 */
export function weightDecayGroups(module: Module, weightDecay: number, opts: { noDecay?: (name: string, param: Tensor) => boolean } = {}): [WeightDecayGroup, WeightDecayGroup] {
  if (!(weightDecay >= 0)) throw new ArgumentError('weightDecayGroups', 'weightDecay', `must be ≥ 0, got ${weightDecay}`);
  const exempt = new Set<Tensor>();
  for (const [, m] of module.namedModules()) {
    if (!NO_DECAY_MODULES.some((cls) => m instanceof cls)) continue;
    for (const [name, p] of m.namedParameters()) if (!name.includes('.')) exempt.add(p);
  }
  const decay: WeightDecayGroup = { params: [], weightDecay };
  const keep: WeightDecayGroup = { params: [], weightDecay: 0 };
  for (const [name, p] of module.namedParameters()) {
    const last = name.slice(name.lastIndexOf('.') + 1);
    const g = exempt.has(p) || last === 'bias' || p.rank < 2 || opts.noDecay?.(name, p) ? keep : decay;
    g.params.push(p);
  }
  return [decay, keep];
}
