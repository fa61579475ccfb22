// Reference cached-sampling steps (rowLstmStep): the arithmetic of one pixel of every layer as
// plain loops in float64, the definition the native kernel is held to.

import type { RowLSTMStepPlan, StepDense } from '../../kernels/contracts.js';
import { sigmoid, tanh } from './portable-math.js';

/** out [n, cout] = a [n, cin] · d.weight + d.bias. */
function dense(d: StepDense, a: Float64Array, n: number): Float64Array {
  const out = new Float64Array(n * d.cout);
  for (let i = 0; i < n; i++) {
    for (let j = 0; j < d.cout; j++) {
      let s = d.bias[j]!;
      for (let k = 0; k < d.cin; k++) s += a[i * d.cin + k]! * d.weight[k * d.cout + j]!;
      out[i * d.cout + j] = s;
    }
  }
  return out;
}

const relu = (a: Float64Array): Float64Array => a.map((v) => Math.max(v, 0));

export function rowLstmStep(plan: RowLSTMStepPlan, y: number, x: number): void {
  const { n, height: H, width: W, channels: C, hidden: h, kernel: k } = plan;
  const f2 = 2 * h, g4 = 4 * h, r = Math.floor(k / 2), L = plan.layers.length;
  // The first convolution: its open taps of the image, zero off the map.
  const t0 = plan.firstTaps.length / 2;
  const x0 = new Float64Array(n * t0 * C);
  for (let i = 0; i < n; i++) {
    for (let t = 0; t < t0; t++) {
      const yy = y + plan.firstTaps[2 * t]!, xx = x + plan.firstTaps[2 * t + 1]!;
      if (yy < 0 || yy >= H || xx < 0 || xx >= W) continue;
      for (let c = 0; c < C; c++) x0[(i * t0 + t) * C + c] = plan.image[((i * H + yy) * W + xx) * C + c]!;
    }
  }
  let f = dense(plan.first, x0, n);
  const skipIn = new Float64Array(n * L * f2);
  plan.layers.forEach((layer, l) => {
    const input = plan.rows[l]!;
    for (let i = 0; i < n; i++) for (let c = 0; c < f2; c++) input[(i * W + x) * f2 + c] = f[i * f2 + c]!;
    const ti = layer.inputTaps.length;
    const K = ti * f2 + k * h;
    const z = new Float64Array(n * g4);
    for (let i = 0; i < n; i++) {
      const taps = new Float64Array(K);
      for (let t = 0; t < ti; t++) {
        const xx = x + layer.inputTaps[t]!;
        if (xx >= 0) for (let c = 0; c < f2; c++) taps[t * f2 + c] = input[(i * W + xx) * f2 + c]!;
      }
      for (let kk = 0; kk < k; kk++) {
        const xx = x - r + kk;
        if (xx >= 0 && xx < W) for (let c = 0; c < h; c++) taps[ti * f2 + kk * h + c] = layer.prevH[(i * W + xx) * h + c]!;
      }
      for (let j = 0; j < g4; j++) {
        let s = layer.gateBias[i * g4 + j]!;
        for (let q = 0; q < K; q++) s += taps[q]! * layer.gates[q * g4 + j]!;
        z[i * g4 + j] = s;
      }
    }
    const hx = new Float64Array(n * h);
    for (let i = 0; i < n; i++) {
      const at = (i * W + x) * h;
      for (let j = 0; j < h; j++) {
        const zi = i * g4;
        const o = sigmoid(z[zi + j]!), fg = sigmoid(z[zi + h + j]!), ig = sigmoid(z[zi + 2 * h + j]!), g = tanh(z[zi + 3 * h + j]!);
        const c = fg * layer.prevC[at + j]! + ig * g;
        layer.curC[at + j] = c;
        layer.curH[at + j] = o * tanh(c);
        hx[i * h + j] = layer.curH[at + j]!;
      }
    }
    const out = dense(layer.output, hx, n);
    for (let i = 0; i < n; i++) {
      for (let c = 0; c < f2; c++) {
        const v = input[(i * W + x) * f2 + c]! + out[i * f2 + c]!;
        out[i * f2 + c] = v;
        skipIn[(i * L + l) * f2 + c] = v;
      }
    }
    f = out;
  });
  const logits = dense(plan.out, relu(dense(plan.outHidden, relu(dense(plan.skip, skipIn, n)), n)), n);
  plan.logits.set(logits);
}
