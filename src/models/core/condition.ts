// Conditioning shared by the models: a class label through a learned embedding and an arbitrary
// vector h through a linear map, both added per image to a layer's activations (the V·h term of
// van den Oord et al. 2016, "Conditional Image Generation with PixelCNN Decoders", eq. 4).

import { Embedding, Linear, Module } from '../../nn/index.js';
import { add, reshape } from '../../ops/index.js';
import type { Generator } from '../../tensor/random.js';
import type { Tensor } from '../../tensor/tensor.js';
import type { Condition } from './model.js';

/** Adds a per-image conditioning term [N, C] to activations [N, H, W, C]. */
export function addCondition(x: Tensor, c: Tensor | null): Tensor {
  return c === null ? x : add(x, reshape(c, [c.shape[0]!, 1, 1, c.shape[1]!]));
}

/** Label and vector conditioning of one stack: V·h in the paper's eq. 4. */
export class ConditionProjection extends Module {
  readonly embed: Embedding | null;
  readonly project: Linear | null;

  constructor(numClasses: number, conditionDim: number, out: number, generator?: Generator) {
    super();
    this.embed = this.registerModule('embed', numClasses > 0 ? new Embedding(numClasses, out, { generator }) : null);
    this.project = this.registerModule('project', conditionDim > 0 ? new Linear(conditionDim, out, { bias: false, generator }) : null);
  }

  forward(cond: Condition): Tensor | null {
    let c: Tensor | null = null;
    if (this.embed && cond.labels) c = this.embed.forward(cond.labels);
    if (this.project && cond.h) c = c === null ? this.project.forward(cond.h) : add(c, this.project.forward(cond.h));
    return c;
  }
}
