// Elementwise ops: unary maps, broadcasting binary arithmetic and comparisons, where, clamp, cast.
// Each backward sits beside its forward and is itself composed from ops.

import type { BinaryOp, DType, UnaryGradOp, UnaryOp } from '../kernels/contracts.js';
import { DTypeError } from '../errors.js';
import { Tensor } from '../tensor/tensor.js';
import { broadcastShapes } from '../tensor/shape.js';
import { K, checkFloat, checkSameDType, empty, record } from './core.js';
import { sumTo } from './broadcast.js';

export { sumTo } from './broadcast.js';

export type Scalarish = Tensor | number;

/** A number becomes a rank-0 tensor of `like`'s dtype. */
export function lift(x: Scalarish, like: Tensor): Tensor {
  if (x instanceof Tensor) return x;
  const t = empty([], like.dtype);
  t.data[0] = x;
  return t;
}

// ---- unary -------------------------------------------------------------------------------

/** The backward of an op with a fused gradient kernel: one pass over x, y and g. */
function fusedGrad(op: UnaryGradOp): (g: Tensor, x: Tensor, y: Tensor) => Tensor {
  return (g, x, y) => {
    const dx = empty(x.shape, x.dtype);
    K(x, g).unaryBackward(x, y, g, dx, op);
    return dx;
  };
}

function unaryOp(op: UnaryOp, x: Tensor, grad: ((g: Tensor, x: Tensor, y: Tensor) => Tensor) | null): Tensor {
  checkFloat(op, 'x', x);
  const y = empty(x.shape, x.dtype);
  K(x).unary(x, y, op);
  if (grad === null) return y;
  return record(y, op, [x], (g) => [grad(g, x, y)]);
}

export const neg = (x: Tensor): Tensor => unaryOp('neg', x, (g) => neg(g));
export const exp = (x: Tensor): Tensor => unaryOp('exp', x, fusedGrad('exp'));
export const log = (x: Tensor): Tensor => unaryOp('log', x, (g, x) => div(g, x));
export const sqrt = (x: Tensor): Tensor => unaryOp('sqrt', x, (g, _x, y) => div(mul(g, 0.5), y));
export const rsqrt = (x: Tensor): Tensor => unaryOp('rsqrt', x, (g, _x, y) => mul(g, mul(pow(y, 3), -0.5)));
export const abs = (x: Tensor): Tensor => unaryOp('abs', x, (g, x) => mul(g, sign(x)));
export const sign = (x: Tensor): Tensor => unaryOp('sign', x, null);
export const square = (x: Tensor): Tensor => unaryOp('square', x, (g, x) => mul(g, mul(x, 2)));
export const reciprocal = (x: Tensor): Tensor => unaryOp('reciprocal', x, (g, _x, y) => neg(mul(g, square(y))));
// The activations' derivatives (the kernel contract spells them out) run as one fused kernel.
export const tanh = (x: Tensor): Tensor => unaryOp('tanh', x, fusedGrad('tanh'));
export const sigmoid = (x: Tensor): Tensor => unaryOp('sigmoid', x, fusedGrad('sigmoid'));
export const relu = (x: Tensor): Tensor => unaryOp('relu', x, fusedGrad('relu'));
/** elu with alpha = 1: d/dx = 1 for x > 0, else e^x = y + 1. */
export const elu = (x: Tensor): Tensor => unaryOp('elu', x, fusedGrad('elu'));
export const softplus = (x: Tensor): Tensor => unaryOp('softplus', x, fusedGrad('softplus'));
export const logSigmoid = (x: Tensor): Tensor => unaryOp('logSigmoid', x, fusedGrad('logSigmoid'));

export function clamp(x: Tensor, lo = -Infinity, hi = Infinity): Tensor {
  checkFloat('clamp', 'x', x);
  const y = empty(x.shape, x.dtype);
  K(x).clamp(x, y, lo, hi);
  // The gradient passes where the input was inside [lo, hi].
  return record(y, 'clamp', [x], (g) => [mul(g, mul(greaterEqual(x, lo), lessEqual(x, hi)))]);
}

// ---- binary ------------------------------------------------------------------------------

function binaryOp(op: BinaryOp, a: Scalarish, b: Scalarish, outType?: DType): Tensor {
  if (!(a instanceof Tensor) && !(b instanceof Tensor)) {
    throw new DTypeError(op, 'a', 'number', 'a Tensor (at least one operand must be a tensor)');
  }
  const ta = a instanceof Tensor ? a : lift(a, b as Tensor);
  const tb = lift(b, ta);
  checkSameDType(op, ta, tb);
  const shape = broadcastShapes(op, ta.shape, tb.shape);
  const out = empty(shape, outType ?? ta.dtype);
  K(ta, tb).binary(ta, tb, out, op);
  return out;
}

function arith(op: BinaryOp, a: Scalarish, b: Scalarish, grad: (g: Tensor, a: Tensor, b: Tensor, y: Tensor) => [Tensor | null, Tensor | null]): Tensor {
  const y = binaryOp(op, a, b);
  const ta = a instanceof Tensor ? a : lift(a, y);
  const tb = b instanceof Tensor ? b : lift(b, y);
  return record(y, op, [ta, tb], (g) => {
    const [ga, gb] = grad(g, ta, tb, y);
    return [ga && ta.requiresGrad ? sumTo(ga, ta.shape) : null, gb && tb.requiresGrad ? sumTo(gb, tb.shape) : null];
  });
}

export const add = (a: Scalarish, b: Scalarish): Tensor => arith('add', a, b, (g) => [g, g]);
export const sub = (a: Scalarish, b: Scalarish): Tensor => arith('sub', a, b, (g) => [g, neg(g)]);
export const mul = (a: Scalarish, b: Scalarish): Tensor => arith('mul', a, b, (g, a, b) => [mul(g, b), mul(g, a)]);
export const div = (a: Scalarish, b: Scalarish): Tensor =>
  arith('div', a, b, (g, a, b) => [div(g, b), neg(div(mul(g, a), square(b)))]);
export const pow = (a: Scalarish, b: Scalarish): Tensor =>
  arith('pow', a, b, (g, a, b, y) => [
    mul(g, mul(b, pow(a, sub(b, 1)))),
    // d/db a^b = a^b log a; only asked for when the exponent is a tensor that requires grad.
    b.requiresGrad ? mul(g, mul(y, log(a))) : null,
  ]);
// Ties split the gradient evenly, as PyTorch does.
const tieShare = (a: Tensor, b: Tensor) => add(greater(a, b), mul(equal(a, b), 0.5));
export const maximum = (a: Scalarish, b: Scalarish): Tensor =>
  arith('maximum', a, b, (g, a, b) => [mul(g, tieShare(a, b)), mul(g, tieShare(b, a))]);
export const minimum = (a: Scalarish, b: Scalarish): Tensor =>
  arith('minimum', a, b, (g, a, b) => [mul(g, tieShare(b, a)), mul(g, tieShare(a, b))]);

// Comparisons return 1 / 0 in the operands' dtype and carry no gradient.
export const greater = (a: Scalarish, b: Scalarish): Tensor => binaryOp('greater', a, b);
export const greaterEqual = (a: Scalarish, b: Scalarish): Tensor => binaryOp('greaterEqual', a, b);
export const less = (a: Scalarish, b: Scalarish): Tensor => binaryOp('less', a, b);
export const lessEqual = (a: Scalarish, b: Scalarish): Tensor => binaryOp('lessEqual', a, b);
export const equal = (a: Scalarish, b: Scalarish): Tensor => binaryOp('equal', a, b);
export const notEqual = (a: Scalarish, b: Scalarish): Tensor => binaryOp('notEqual', a, b);

/** cond ? a : b elementwise, broadcasting all three. */
export function where(cond: Tensor, a: Scalarish, b: Scalarish): Tensor {
  const like = a instanceof Tensor ? a : b instanceof Tensor ? b : empty([], 'float32');
  const ta = lift(a, like);
  const tb = lift(b, ta);
  checkSameDType('where', ta, tb);
  const shape = broadcastShapes('where', broadcastShapes('where', cond.shape, ta.shape), tb.shape);
  const out = empty(shape, ta.dtype);
  K(cond, ta, tb).where(cond, ta, tb, out);
  return record(out, 'where', [ta, tb], (g) => {
    const zero = lift(0, g);
    return [
      ta.requiresGrad ? sumTo(where(cond, g, zero), ta.shape) : null,
      tb.requiresGrad ? sumTo(where(cond, zero, g), tb.shape) : null,
    ];
  });
}

/** Converts to another dtype; float → int32 truncates toward zero. */
export function cast(x: Tensor, dtype: DType): Tensor {
  if (x.dtype === dtype) return x;
  const y = empty(x.shape, dtype);
  K(x, y).cast(x, y);
  if (!x.isFloat || dtype === 'int32') return y;
  return record(y, 'cast', [x], (g) => [cast(g, x.dtype)]);
}
