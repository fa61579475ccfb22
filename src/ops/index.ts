// The op layer's public surface, and the chainable Tensor methods (`h.add(block(h))`).

import { backward, installAutogradHelpers, type BackwardOptions } from '../tensor/autograd.js';
import { Tensor } from '../tensor/tensor.js';
import type { DType } from '../kernels/contracts.js';
import * as ew from './elementwise.js';
import * as red from './reduce.js';
import * as shp from './shape.js';
import * as la from './linalg.js';
import * as cv from './conv.js';
import { onesLike } from './creation.js';

export * from './elementwise.js';
export * from './reduce.js';
export * from './shape.js';
export * from './linalg.js';
export * from './conv.js';
export * from './lstm.js';
export * from './functional.js';
export * from './transformer.js';
export * from './creation.js';
export * from './custom.js';
export * from './precision.js';
export * from './sampling.js';
export { noGrad, isGradEnabled } from '../tensor/autograd.js';

installAutogradHelpers((a, b) => ew.add(a, b), onesLike);

type S = ew.Scalarish;
type Axes = red.Axes;

declare module '../tensor/tensor.js' {
  interface Tensor {
    /** Back-propagates (see `backward`); `options` may come first when there is no gradient. */
    backward(grad?: Tensor | BackwardOptions, options?: BackwardOptions): void;
    add(b: S): Tensor; sub(b: S): Tensor; mul(b: S): Tensor; div(b: S): Tensor; pow(b: S): Tensor;
    maximum(b: S): Tensor; minimum(b: S): Tensor;
    greater(b: S): Tensor; greaterEqual(b: S): Tensor; less(b: S): Tensor; lessEqual(b: S): Tensor;
    equal(b: S): Tensor; notEqual(b: S): Tensor;
    neg(): Tensor; exp(): Tensor; log(): Tensor; sqrt(): Tensor; rsqrt(): Tensor; abs(): Tensor;
    sign(): Tensor; square(): Tensor; reciprocal(): Tensor; tanh(): Tensor; sigmoid(): Tensor;
    relu(): Tensor; elu(): Tensor; softplus(): Tensor; logSigmoid(): Tensor;
    clamp(lo?: number, hi?: number): Tensor;
    cast(dtype: DType): Tensor;
    sum(axes?: Axes, keepDims?: boolean): Tensor; mean(axes?: Axes, keepDims?: boolean): Tensor;
    max(axes?: Axes, keepDims?: boolean): Tensor; min(axes?: Axes, keepDims?: boolean): Tensor;
    logsumexp(axes?: Axes, keepDims?: boolean): Tensor;
    softmax(axis?: number): Tensor; logSoftmax(axis?: number): Tensor; argmax(axis?: number): Tensor;
    reshape(shape: readonly number[]): Tensor; permute(perm: readonly number[]): Tensor;
    transpose(a?: number, b?: number): Tensor; flatten(startAxis?: number): Tensor;
    unsqueeze(axis: number): Tensor; squeeze(axis: number): Tensor;
    slice(begin: readonly number[], size?: readonly number[]): Tensor;
    pad(pads: readonly (readonly [number, number])[], value?: number): Tensor;
    matmul(b: Tensor, opts?: la.MatmulOptions): Tensor;
    conv2d(w: Tensor, opts?: cv.Conv2dOptions): Tensor;
  }
}

const P = Tensor.prototype;
P.backward = function (gradOrOptions?: Tensor | BackwardOptions, options?: BackwardOptions) {
  if (gradOrOptions instanceof Tensor || gradOrOptions === undefined) backward(this, gradOrOptions, options);
  else backward(this, undefined, gradOrOptions);
};
for (const name of ['add', 'sub', 'mul', 'div', 'pow', 'maximum', 'minimum', 'greater', 'greaterEqual', 'less', 'lessEqual', 'equal', 'notEqual'] as const) {
  const f = ew[name];
  P[name] = function (b: S) { return f(this, b); };
}
for (const name of ['neg', 'exp', 'log', 'sqrt', 'rsqrt', 'abs', 'sign', 'square', 'reciprocal', 'tanh', 'sigmoid', 'relu', 'elu', 'softplus', 'logSigmoid'] as const) {
  const f = ew[name];
  P[name] = function () { return f(this); };
}
P.clamp = function (lo?: number, hi?: number) { return ew.clamp(this, lo, hi); };
P.cast = function (dtype: DType) { return ew.cast(this, dtype); };
for (const name of ['sum', 'mean', 'max', 'min', 'logsumexp'] as const) {
  const f = red[name];
  P[name] = function (axes?: Axes, keepDims?: boolean) { return f(this, axes, keepDims); };
}
P.softmax = function (axis?: number) { return red.softmax(this, axis); };
P.logSoftmax = function (axis?: number) { return red.logSoftmax(this, axis); };
P.argmax = function (axis?: number) { return red.argmax(this, axis); };
P.reshape = function (shape: readonly number[]) { return shp.reshape(this, shape); };
P.permute = function (perm: readonly number[]) { return shp.permute(this, perm); };
P.transpose = function (a?: number, b?: number) { return shp.transpose(this, a, b); };
P.flatten = function (startAxis?: number) { return shp.flatten(this, startAxis); };
P.unsqueeze = function (axis: number) { return shp.unsqueeze(this, axis); };
P.squeeze = function (axis: number) { return shp.squeeze(this, axis); };
P.slice = function (begin: readonly number[], size?: readonly number[]) { return shp.slice(this, begin, size); };
P.pad = function (pads: readonly (readonly [number, number])[], value?: number) { return shp.pad(this, pads, value); };
P.matmul = function (b: Tensor, opts?: la.MatmulOptions) { return la.matmul(this, b, opts); };
P.conv2d = function (w: Tensor, opts?: cv.Conv2dOptions) { return cv.conv2d(this, w, opts); };

