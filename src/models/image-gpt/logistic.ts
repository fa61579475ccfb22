// Multinomial logistic regression with an L2 penalty, fitted full-batch by L-BFGS (Nocedal &
// Wright 2006, algorithm 7.4, with a backtracking Armijo line search): the linear probe's
// classifier. The loss and its gradient run on arpix's engine (one matmul each way); the
// optimiser's few vectors live in float64.
//
// Objective: mean over examples of −log softmax(x·W + b)[y] + (l2 / 2)·‖W‖² (the bias unpenalised).

import { ArgumentError } from '../../errors.js';
import { add, crossEntropy, matmul, mul, noGrad, square, sum } from '../../ops/index.js';
import { Tensor } from '../../tensor/tensor.js';

export interface LogisticOptions {
  /** The L2 penalty on the weights. */
  l2: number;
  /** Maximum L-BFGS iterations (default 200). */
  maxIterations?: number;
  /** Stop when the gradient's largest entry falls below this (default 1e-5). */
  tolerance?: number;
  /** L-BFGS memory (default 10). */
  memory?: number;
  /** Start from these parameters (warm start), as returned by an earlier fit. */
  init?: LogisticModel;
}

export interface LogisticModel {
  features: number;
  classes: number;
  /** [features · classes], row-major (feature-major). */
  weight: Float64Array;
  /** [classes] */
  bias: Float64Array;
}

export interface LogisticFit extends LogisticModel {
  loss: number;
  iterations: number;
  /** Largest absolute entry of the gradient at the end. */
  gradientMax: number;
}

/** A problem: x float32 [n · d] and labels in 0..classes−1. */
export interface LogisticData {
  x: Float32Array;
  labels: Int32Array;
  features: number;
  classes: number;
}

function checkData(op: string, data: LogisticData): number {
  const { x, labels, features: d, classes: k } = data;
  if (!Number.isInteger(d) || d < 1) throw new ArgumentError(op, 'features', `must be a positive integer, got ${d}`);
  if (!Number.isInteger(k) || k < 2) throw new ArgumentError(op, 'classes', `must be an integer ≥ 2, got ${k}`);
  if (x.length !== labels.length * d) throw new ArgumentError(op, 'x', `must hold labels × features = ${labels.length} × ${d} values, got ${x.length}`);
  for (const l of labels) if (l < 0 || l >= k) throw new ArgumentError(op, 'labels', `contain ${l}, outside 0..${k - 1}`);
  return labels.length;
}

/** Loss and gradient ([weight | bias], float64) at parameters theta. */
function lossAndGradient(xT: Tensor, yT: Tensor, d: number, k: number, l2: number, theta: Float64Array): [number, Float64Array] {
  const w = new Tensor(Float32Array.from(theta.subarray(0, d * k)), [d, k]).requireGrad();
  const b = new Tensor(Float32Array.from(theta.subarray(d * k)), [k]).requireGrad();
  const loss = add(crossEntropy(add(matmul(xT, w), b), yT, 'mean'), mul(sum(square(w)), l2 / 2));
  loss.backward();
  const g = new Float64Array(d * k + k);
  g.set(w.grad!.data);
  g.set(b.grad!.data, d * k);
  return [loss.data[0]!, g];
}

const dot = (a: Float64Array, b: Float64Array) => {
  let s = 0;
  for (let i = 0; i < a.length; i++) s += a[i]! * b[i]!;
  return s;
};
const maxAbs = (a: Float64Array) => a.reduce((m, v) => Math.max(m, Math.abs(v)), 0);

export function fitLogistic(data: LogisticData, opts: LogisticOptions): LogisticFit {
  const op = 'fitLogistic';
  const n = checkData(op, data);
  const { features: d, classes: k } = data;
  const l2 = opts.l2;
  if (!(l2 >= 0) || !Number.isFinite(l2)) throw new ArgumentError(op, 'l2', `must be a non-negative number, got ${l2}`);
  const maxIt = opts.maxIterations ?? 200;
  const tol = opts.tolerance ?? 1e-5;
  const m = opts.memory ?? 10;
  const xT = new Tensor(data.x, [n, d]);
  const yT = new Tensor(data.labels, [n]);
  let theta = new Float64Array(d * k + k);
  if (opts.init) {
    if (opts.init.features !== d || opts.init.classes !== k) throw new ArgumentError(op, 'init', `is for ${opts.init.features} features and ${opts.init.classes} classes, not ${d} and ${k}`);
    theta.set(opts.init.weight);
    theta.set(opts.init.bias, d * k);
  }
  let [f, g] = lossAndGradient(xT, yT, d, k, l2, theta);
  const ss: Float64Array[] = [];
  const ys: Float64Array[] = [];
  let it = 0;
  while (it < maxIt && maxAbs(g) > tol) {
    it++;
    // Two-loop recursion: direction = −H·g with H the L-BFGS inverse-Hessian estimate.
    const q = Float64Array.from(g);
    const alphas: number[] = [];
    for (let i = ss.length - 1; i >= 0; i--) {
      const a = dot(ss[i]!, q) / dot(ys[i]!, ss[i]!);
      alphas[i] = a;
      for (let j = 0; j < q.length; j++) q[j]! -= a * ys[i]![j]!;
    }
    const gamma = ss.length > 0 ? dot(ss[ss.length - 1]!, ys[ys.length - 1]!) / dot(ys[ys.length - 1]!, ys[ys.length - 1]!) : 1 / Math.max(1, Math.sqrt(dot(g, g)));
    for (let j = 0; j < q.length; j++) q[j]! *= gamma;
    for (let i = 0; i < ss.length; i++) {
      const bta = dot(ys[i]!, q) / dot(ys[i]!, ss[i]!);
      for (let j = 0; j < q.length; j++) q[j]! += (alphas[i]! - bta) * ss[i]![j]!;
    }
    const dir = q.map((v) => -v);
    let slope = dot(g, dir);
    if (!(slope < 0)) { // not a descent direction (numerical trouble): restart from steepest descent
      ss.length = 0;
      ys.length = 0;
      for (let j = 0; j < dir.length; j++) dir[j] = -g[j]!;
      slope = -dot(g, g);
    }
    // Backtracking line search on the Armijo condition.
    let step = 1;
    let next = theta;
    let fNext = f;
    let gNext = g;
    let accepted = false;
    for (let tries = 0; tries < 30; tries++) {
      next = theta.map((v, j) => v + step * dir[j]!);
      [fNext, gNext] = lossAndGradient(xT, yT, d, k, l2, next);
      if (fNext <= f + 1e-4 * step * slope) {
        accepted = true;
        break;
      }
      step /= 2;
    }
    if (!accepted) break; // no decrease at float32 precision: at the optimum as far as it can tell
    const s = next.map((v, j) => v - theta[j]!);
    const y = gNext.map((v, j) => v - g[j]!);
    if (dot(s, y) > 1e-12) {
      ss.push(s);
      ys.push(y);
      if (ss.length > m) {
        ss.shift();
        ys.shift();
      }
    }
    theta = next;
    f = fNext;
    g = gNext;
  }
  return { features: d, classes: k, weight: theta.slice(0, d * k), bias: theta.slice(d * k), loss: f, iterations: it, gradientMax: maxAbs(g) };
}

/** Predicted classes [n] of x [n · d]. */
export function predictLogistic(model: LogisticModel, x: Float32Array): Int32Array {
  const { features: d, classes: k } = model;
  const n = x.length / d;
  const logits = noGrad(() => add(matmul(new Tensor(x, [n, d]), new Tensor(Float32Array.from(model.weight), [d, k])), new Tensor(Float32Array.from(model.bias), [k]))).data;
  const out = new Int32Array(n);
  for (let i = 0; i < n; i++) {
    let best = 0;
    for (let c = 1; c < k; c++) if (logits[i * k + c]! > logits[i * k + best]!) best = c;
    out[i] = best;
  }
  return out;
}

/** Fraction of labels predicted right. */
export function accuracy(model: LogisticModel, x: Float32Array, labels: Int32Array): number {
  const pred = predictLogistic(model, x);
  let right = 0;
  for (let i = 0; i < labels.length; i++) if (pred[i] === labels[i]) right++;
  return right / labels.length;
}

/** Per-feature mean and standard deviation of x [n · d] (1 where a feature is constant). */
export function standardiser(x: Float32Array, d: number): (y: Float32Array) => Float32Array {
  const n = x.length / d;
  const mean = new Float64Array(d);
  const sq = new Float64Array(d);
  for (let i = 0; i < n; i++) for (let j = 0; j < d; j++) mean[j]! += x[i * d + j]! / n;
  for (let i = 0; i < n; i++) for (let j = 0; j < d; j++) sq[j]! += (x[i * d + j]! - mean[j]!) ** 2 / n;
  const std = sq.map((v) => (v > 1e-12 ? Math.sqrt(v) : 1));
  return (y) => y.map((v, i) => (v - mean[i % d]!) / std[i % d]!);
}
