// Matrix products: matmul (2-D and batched, with transposes) and linear.

import { ShapeError, fmtShape } from '../errors.js';
import { Tensor } from '../tensor/tensor.js';
import { K, checkFloat, checkSameDType, empty, record } from './core.js';
import { add } from './elementwise.js';
import { sum } from './reduce.js';
import { reshape } from './shape.js';
import { productInBf16, withPrecision } from './precision.js';

export interface MatmulOptions {
  transA?: boolean;
  transB?: boolean;
}

/**
 * op(a) @ op(b), op transposing the last two axes when asked. a and b are 2-D or batched (any
 * number of leading batch axes, equal in both, e.g. [N, heads, L, d]); a 2-D operand is shared by
 * every batch of the other.
 */
export function matmul(a: Tensor, b: Tensor, opts: MatmulOptions = {}): Tensor {
  // Several batch axes ([N, heads, L, d] in attention) are one batch axis to the kernel.
  if (a.rank > 3 || b.rank > 3) return batchedMatmul(a, b, opts);
  const transA = opts.transA ?? false;
  const transB = opts.transB ?? false;
  checkFloat('matmul', 'a', a);
  checkSameDType('matmul', a, b);
  for (const [name, t] of [['a', a], ['b', b]] as const) {
    if (t.rank !== 2 && t.rank !== 3) throw new ShapeError('matmul', name, `must be 2-D or batched, got ${fmtShape(t.shape)}`, [t.shape]);
  }
  const [ra, ca] = a.shape.slice(-2) as [number, number];
  const [rb, cb] = b.shape.slice(-2) as [number, number];
  const [m, k] = transA ? [ca, ra] : [ra, ca];
  const [k2, n] = transB ? [cb, rb] : [rb, cb];
  if (k !== k2) {
    throw new ShapeError('matmul', 'b', `inner sizes differ: a${transA ? 'ᵀ' : ''} ${fmtShape(a.shape)} has ${k} columns, b${transB ? 'ᵀ' : ''} ${fmtShape(b.shape)} has ${k2} rows`, [a.shape, b.shape]);
  }
  if (a.rank === 3 && b.rank === 3 && a.shape[0] !== b.shape[0]) {
    throw new ShapeError('matmul', 'b', `batch ${b.shape[0]} differs from a's batch ${a.shape[0]} (${fmtShape(a.shape)} vs ${fmtShape(b.shape)})`, [a.shape, b.shape]);
  }
  const batch = a.rank === 3 ? a.shape[0]! : b.rank === 3 ? b.shape[0]! : 0;
  const y = empty(batch ? [batch, m, n] : [m, n], a.dtype);
  const bf16 = productInBf16(Math.max(batch, 1) * m * n * k);
  K(a, b).matmul(a, b, y, transA, transB, bf16);
  // The backward products (as many multiply-accumulates) in the precision of the forward one.
  return record(y, 'matmul', [a, b], (g) => withPrecision(bf16 ? 'bf16' : 'fp32', () => {
    // d(op(a)) = g op(b)ᵀ and d(op(b)) = op(a)ᵀ g, expressed with the transpose flags so no
    // operand is ever materialised transposed.
    const ga = a.requiresGrad
      ? transA ? matmul(b, g, { transA: transB, transB: true }) : matmul(g, b, { transB: !transB })
      : null;
    const gb = b.requiresGrad
      ? transB ? matmul(g, a, { transA: true, transB: transA }) : matmul(a, g, { transA: !transA })
      : null;
    // A 2-D operand shared by every batch collects the gradient of all of them.
    return [ga && ga.rank > a.rank ? sum(ga, 0) : ga, gb && gb.rank > b.rank ? sum(gb, 0) : gb];
  }));
}

/** matmul over operands with more than one batch axis: equal batch axes, or one operand 2-D. */
function batchedMatmul(a: Tensor, b: Tensor, opts: MatmulOptions): Tensor {
  const batchA = a.shape.slice(0, -2), batchB = b.shape.slice(0, -2);
  const batch = a.rank > 2 ? batchA : batchB;
  if (a.rank > 2 && b.rank > 2 && (batchA.length !== batchB.length || batchA.some((d, i) => d !== batchB[i]))) {
    throw new ShapeError('matmul', 'b', `batch axes ${fmtShape(batchB)} differ from a's ${fmtShape(batchA)} (${fmtShape(a.shape)} vs ${fmtShape(b.shape)}); batch axes must be equal, or one operand 2-D`, [a.shape, b.shape]);
  }
  const flat = (t: Tensor) => (t.rank > 2 ? reshape(t, [-1, ...t.shape.slice(-2)]) : t);
  const y = matmul(flat(a), flat(b), opts);
  return reshape(y, [...batch, ...y.shape.slice(-2)]);
}

/** x [..., in] @ weightᵀ + bias, with weight [out, in] as in PyTorch. */
export function linear(x: Tensor, weight: Tensor, bias: Tensor | null = null): Tensor {
  if (weight.rank !== 2) throw new ShapeError('linear', 'weight', `must be [out, in], got ${fmtShape(weight.shape)}`, [weight.shape]);
  const inF = weight.shape[1]!;
  if (x.shape[x.rank - 1] !== inF) {
    throw new ShapeError('linear', 'x', `last axis (${x.shape[x.rank - 1]}) must equal weight in-features (${inF}); x ${fmtShape(x.shape)}, weight ${fmtShape(weight.shape)}`, [x.shape, weight.shape]);
  }
  if (bias && (bias.rank !== 1 || bias.shape[0] !== weight.shape[0])) {
    throw new ShapeError('linear', 'bias', `must be [${weight.shape[0]}], got ${fmtShape(bias.shape)}`, [bias.shape, weight.shape]);
  }
  const flat = reshape(x, [-1, inF]);
  let y = matmul(flat, weight, { transB: true });
  if (bias) y = add(y, bias);
  return reshape(y, [...x.shape.slice(0, -1), weight.shape[0]!]);
}
