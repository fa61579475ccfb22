// Reference fused kernels. Their composed twins (chunk/tanh/sigmoid/mul; logSoftmax/pickLast)
// live in src/ops and are the oracle these are tested against.

import type { AdamHyper, View } from '../../kernels/contracts.js';
import { Generator } from '../../tensor/random.js';
import { exp, expm1, log, sigmoid, tanh } from './portable-math.js';

export function gate(x: View, out: View): void {
  const c = out.shape[out.shape.length - 1]!;
  const xd = x.data;
  const o = out.data;
  const rows = c === 0 ? 0 : o.length / c;
  for (let r = 0; r < rows; r++) {
    for (let i = 0; i < c; i++) o[r * c + i] = tanh(xd[2 * r * c + i]!) * sigmoid(xd[2 * r * c + c + i]!);
  }
}

export function gateBackward(x: View, g: View, dx: View): void {
  const c = g.shape[g.shape.length - 1]!;
  const xd = x.data;
  const gd = g.data;
  const o = dx.data;
  const rows = c === 0 ? 0 : gd.length / c;
  for (let r = 0; r < rows; r++) {
    for (let i = 0; i < c; i++) {
      const t = tanh(xd[2 * r * c + i]!);
      const s = sigmoid(xd[2 * r * c + c + i]!);
      const gi = gd[r * c + i]!;
      o[2 * r * c + i] = gi * s * (1 - t * t);
      o[2 * r * c + c + i] = gi * t * s * (1 - s);
    }
  }
}

export function softmaxCrossEntropy(logits: View, targets: View, loss: View, probs: View): void {
  const k = logits.shape[logits.shape.length - 1]!;
  const x = logits.data;
  const t = targets.data;
  const l = loss.data;
  const p = probs.data;
  for (let j = 0; j < t.length; j++) {
    const base = j * k;
    let m = -Infinity;
    for (let i = 0; i < k; i++) m = Math.max(m, x[base + i]!);
    let s = 0;
    for (let i = 0; i < k; i++) s += p[base + i] = exp(x[base + i]! - m);
    for (let i = 0; i < k; i++) p[base + i] = p[base + i]! / s;
    l[j] = m + log(s) - x[base + t[j]!]!;
  }
}

export function softmaxCrossEntropyBackward(probs: View, targets: View, g: View, dx: View): void {
  const k = probs.shape[probs.shape.length - 1]!;
  const p = probs.data;
  const t = targets.data;
  const gd = g.data;
  const o = dx.data;
  for (let j = 0; j < t.length; j++) {
    const gj = gd[j]!;
    for (let i = 0; i < k; i++) o[j * k + i] = gj * p[j * k + i]!;
    o[j * k + t[j]!] = o[j * k + t[j]!]! - gj;
  }
}

export function dropoutMask(out: View, seed: number, offset: number, p: number): void {
  const o = out.data;
  new Generator(seed, offset).uniform(o as Float32Array);
  const scale = 1 / (1 - p);
  for (let i = 0; i < o.length; i++) o[i] = o[i]! >= p ? scale : 0;
}

const elu = (z: number): number => (z > 0 ? z : expm1(z));
const eluGrad = (z: number): number => (z > 0 ? 1 : exp(z));

export function concatElu(x: View, out: View): void {
  const c = x.shape[x.shape.length - 1]!;
  const xd = x.data;
  const o = out.data;
  const rows = c === 0 ? 0 : xd.length / c;
  for (let r = 0; r < rows; r++) {
    for (let i = 0; i < c; i++) {
      const v = xd[r * c + i]!;
      o[2 * r * c + i] = elu(v);
      o[2 * r * c + c + i] = elu(-v);
    }
  }
}

export function concatEluBackward(x: View, g: View, dx: View): void {
  const c = x.shape[x.shape.length - 1]!;
  const xd = x.data;
  const gd = g.data;
  const o = dx.data;
  const rows = c === 0 ? 0 : xd.length / c;
  for (let r = 0; r < rows; r++) {
    for (let i = 0; i < c; i++) {
      const v = xd[r * c + i]!;
      o[r * c + i] = gd[2 * r * c + i]! * eluGrad(v) - gd[2 * r * c + c + i]! * eluGrad(-v);
    }
  }
}

export function gatedResidual(x: View, h: View, out: View): void {
  const c = x.shape[x.shape.length - 1]!;
  const xd = x.data;
  const hd = h.data;
  const o = out.data;
  const rows = c === 0 ? 0 : xd.length / c;
  for (let r = 0; r < rows; r++) {
    for (let i = 0; i < c; i++) o[r * c + i] = xd[r * c + i]! + hd[2 * r * c + i]! * sigmoid(hd[2 * r * c + c + i]!);
  }
}

export function gatedResidualBackward(h: View, g: View, dh: View): void {
  const c = g.shape[g.shape.length - 1]!;
  const hd = h.data;
  const gd = g.data;
  const o = dh.data;
  const rows = c === 0 ? 0 : gd.length / c;
  for (let r = 0; r < rows; r++) {
    for (let i = 0; i < c; i++) {
      const a = hd[2 * r * c + i]!, s = sigmoid(hd[2 * r * c + c + i]!), gi = gd[r * c + i]!;
      o[2 * r * c + i] = gi * s;
      o[2 * r * c + c + i] = gi * a * s * (1 - s);
    }
  }
}

export function adamUpdate(p: View, g: View, m: View, v: View, h: AdamHyper): void {
  const w = p.data, gd = g.data, md = m.data, vd = v.data;
  const { beta1: b1, beta2: b2, eps, stepSize, bc2Sqrt, decay, l2 } = h;
  for (let i = 0; i < w.length; i++) {
    const wi = w[i]! * decay;
    const gi = gd[i]! + l2 * wi;
    md[i] = b1 * md[i]! + (1 - b1) * gi;
    vd[i] = b2 * vd[i]! + (1 - b2) * gi * gi;
    w[i] = wi - (stepSize * md[i]!) / (Math.sqrt(vd[i]!) / bc2Sqrt + eps);
  }
}
