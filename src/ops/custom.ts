// The public way to define an op with hand-written forward and backward kernels (used for fused
// ops such as the gated activation and the logistic-mixture loss).

import { Tensor } from '../tensor/tensor.js';
import { noGrad, record } from './core.js';

export interface CustomOpDefinition<A> {
  name: string;
  /** Computes the output; runs with gradient recording off. */
  forward(inputs: readonly Tensor[], attrs: A): Tensor;
  /**
   * Gradient for each input (null where none), given the output's gradient. `grad` and the
   * returned gradients belong to the backward pass: it recycles their memory once they are used
   * up, so keep no reference to them after returning (copy what must outlive the call).
   */
  backward(ctx: { grad: Tensor; inputs: readonly Tensor[]; output: Tensor; attrs: A }): readonly (Tensor | null)[];
}

/** Returns a function running the op and recording it on the tape like any built-in op. */
export function defineOp<A = undefined>(def: CustomOpDefinition<A>): (inputs: readonly Tensor[], attrs: A) => Tensor {
  return (inputs, attrs) => {
    const output = noGrad(() => def.forward(inputs, attrs));
    // A forward that returned one of its inputs would alias it on the tape: give it its own node.
    const out = inputs.includes(output) ? new Tensor(output.storage, output.shape) : output;
    return record(out, def.name, inputs, (grad) => def.backward({ grad, inputs, output: out, attrs }));
  };
}
