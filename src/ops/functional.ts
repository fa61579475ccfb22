// Network-level functions: dropout, the losses and the fused activations (layer norm lives in
// transformer.ts with the rest of the transformer core).
// Composition gives their gradients for free; a fused kernel can replace one when a benchmark
// shows it hot, with this version kept as its test oracle.

import { ArgumentError, ShapeError, fmtShape } from '../errors.js';
import { Generator, getDefaultGenerator } from '../tensor/random.js';
import { Tensor } from '../tensor/tensor.js';
import { K, checkFloat, checkInt, checkSameDType, empty, record } from './core.js';
import { add, elu, mul, neg, sigmoid, softplus, sub, tanh } from './elementwise.js';
import { chunk, concat } from './shape.js';
import { logSoftmax, mean, sum } from './reduce.js';

export type Reduction = 'mean' | 'sum' | 'none';

function reduceLoss(op: string, loss: Tensor, reduction: Reduction): Tensor {
  switch (reduction) {
    case 'none': return loss;
    case 'sum': return sum(loss);
    case 'mean': return mean(loss);
    default: throw new ArgumentError(op, 'reduction', `must be 'mean', 'sum' or 'none', got '${String(reduction)}'`);
  }
}

/** Inverted dropout: zeroes each element with probability p and scales the rest by 1/(1−p). */
export function dropout(x: Tensor, p: number, training: boolean, generator: Generator = getDefaultGenerator()): Tensor {
  if (!(p >= 0 && p < 1)) throw new ArgumentError('dropout', 'p', `must be in [0, 1), got ${p}`);
  if (!training || p === 0) return x;
  checkFloat('dropout', 'x', x);
  const keep = empty(x.shape, x.dtype);
  K(keep).dropoutMask(keep, generator.seed, generator.skipUniform(keep.size), p);
  return mul(x, keep);
}

function checkTargets(op: string, x: Tensor, targets: Tensor): void {
  checkInt(op, 'targets', targets);
  const k = x.shape[x.rank - 1]!;
  if (targets.rank !== x.rank - 1 || targets.shape.some((d, i) => d !== x.shape[i])) {
    throw new ShapeError(op, 'targets', `shape ${fmtShape(targets.shape)} must equal the input's shape without its last axis, ${fmtShape(x.shape.slice(0, -1))}`, [x.shape, targets.shape]);
  }
  const td = targets.data;
  for (let i = 0; i < td.length; i++) {
    if (td[i]! < 0 || td[i]! >= k) throw new ArgumentError(op, 'targets', `contain ${td[i]}, outside 0..${k - 1} (the number of classes is ${k})`);
  }
}

/** x[..., targets[...]] over the last axis. */
export function pickLast(x: Tensor, targets: Tensor): Tensor {
  checkTargets('pickLast', x, targets);
  const y = empty(targets.shape, x.dtype);
  K(x).pickLast(x, targets, y);
  return record(y, 'pickLast', [x, null], (g) => {
    const gx = empty(x.shape, g.dtype);
    K(g).pickLastBackward(g, targets, gx);
    return [gx, null];
  });
}

/** −log softmax(logits)[target] over the last axis; targets are int32 class indices. */
export function crossEntropy(logits: Tensor, targets: Tensor, reduction: Reduction = 'mean'): Tensor {
  checkFloat('crossEntropy', 'logits', logits);
  checkTargets('crossEntropy', logits, targets);
  // Fused: one pass computes the loss and keeps softmax(logits); the backward is g·(p − onehot).
  const loss = empty(targets.shape, logits.dtype);
  const probs = empty(logits.shape, logits.dtype);
  K(logits).softmaxCrossEntropy(logits, targets, loss, probs);
  record(loss, 'crossEntropy', [logits, null], (g) => {
    const gx = empty(logits.shape, g.dtype);
    K(g).softmaxCrossEntropyBackward(probs, targets, g, gx);
    return [gx, null];
  });
  return reduceLoss('crossEntropy', loss, reduction);
}

/** crossEntropy composed from logSoftmax and pickLast: the fused kernel's test oracle. */
export function crossEntropyComposed(logits: Tensor, targets: Tensor, reduction: Reduction = 'mean'): Tensor {
  checkFloat('crossEntropy', 'logits', logits);
  return reduceLoss('crossEntropy', mul(pickLast(logSoftmax(logits, -1), targets), -1), reduction);
}

/** elu of [x, −x] along the last axis: keeps both signs' information (PixelCNN++, §2.4 of its code). One fused kernel each way. */
export function concatElu(x: Tensor): Tensor {
  checkFloat('concatElu', 'x', x);
  if (x.rank < 1) throw new ShapeError('concatElu', 'x', `must have at least one axis, got ${fmtShape(x.shape)}`, [x.shape]);
  const y = empty([...x.shape.slice(0, -1), 2 * x.shape[x.rank - 1]!], x.dtype);
  K(x).concatElu(x, y);
  return record(y, 'concatElu', [x], (g) => {
    const gx = empty(x.shape, g.dtype);
    K(x, g).concatEluBackward(x, g, gx);
    return [gx];
  });
}

/** x + a ⊙ σ(b) for h = [a, b] the two halves of its last axis (PixelCNN++'s gated residual), fused. */
export function gatedResidual(x: Tensor, h: Tensor): Tensor {
  checkFloat('gatedResidual', 'x', x);
  checkFloat('gatedResidual', 'h', h);
  checkSameDType('gatedResidual', x, h);
  const c = x.shape[x.rank - 1]!;
  if (x.rank < 1 || h.rank !== x.rank || h.shape[h.rank - 1] !== 2 * c || h.shape.some((d, i) => i < h.rank - 1 && d !== x.shape[i])) {
    throw new ShapeError('gatedResidual', 'h', `must be x's shape ${fmtShape(x.shape)} with the last axis doubled, got ${fmtShape(h.shape)}`, [x.shape, h.shape]);
  }
  const y = empty(x.shape, x.dtype);
  K(x, h).gatedResidual(x, h, y);
  return record(y, 'gatedResidual', [x, h], (g) => {
    const gh = empty(h.shape, g.dtype);
    K(h, g).gatedResidualBackward(h, g, gh);
    return [g, gh];
  });
}

/** The gated residual composed from chunk, sigmoid, mul and add: the fused kernels' oracle. */
export function gatedResidualComposed(x: Tensor, h: Tensor): Tensor {
  const [a, b] = chunk(h, 2, -1);
  return add(x, mul(a!, sigmoid(b!)));
}

/** concat_elu composed from neg, concat and elu: the fused kernels' oracle. */
export function concatEluComposed(x: Tensor): Tensor {
  return elu(concat([x, neg(x)], -1));
}

/** Gated activation tanh(a) ⊙ σ(b) for [a, b] the two halves of the last axis, fused. */
export function gatedActivation(x: Tensor): Tensor {
  checkFloat('gatedActivation', 'x', x);
  const c2 = x.shape[x.rank - 1]!;
  if (x.rank < 1 || c2 % 2 !== 0) throw new ShapeError('gatedActivation', 'x', `last axis must have an even size, got ${fmtShape(x.shape)}`, [x.shape]);
  const y = empty([...x.shape.slice(0, -1), c2 / 2], x.dtype);
  K(x).gate(x, y);
  return record(y, 'gatedActivation', [x], (g) => {
    const gx = empty(x.shape, g.dtype);
    K(x, g).gateBackward(x, g, gx);
    return [gx];
  });
}

/** The gated activation composed from chunk, tanh, sigmoid and mul: the fused kernel's oracle. */
export function gatedActivationComposed(x: Tensor): Tensor {
  const [a, b] = chunk(x, 2, -1);
  return mul(tanh(a!), sigmoid(b!));
}

/** Binary cross-entropy on logits, stable for any magnitude: softplus(x) − x·t. */
export function binaryCrossEntropyWithLogits(logits: Tensor, targets: Tensor, reduction: Reduction = 'mean'): Tensor {
  checkFloat('binaryCrossEntropyWithLogits', 'logits', logits);
  checkFloat('binaryCrossEntropyWithLogits', 'targets', targets);
  const loss = sub(softplus(logits), mul(logits, targets));
  return reduceLoss('binaryCrossEntropyWithLogits', loss, reduction);
}

