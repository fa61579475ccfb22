// The LSTM recurrence of PixelRNN (van den Oord et al. 2016, "Pixel Recurrent Neural Networks",
// §3.1–3.2) as one op: every step of a layer, for every image, with its backward through time
// inside one kernel call. The input-to-state part (a convolution over the whole map) is computed
// before by ordinary ops; this op adds the state-to-state convolution along the L positions of
// a step, the gates and the cell. `lstmScanComposed` builds the same recurrence from small ops:
// the fused kernels' oracle.

import { ArgumentError, ShapeError, fmtShape } from '../errors.js';
import type { RowLSTMStepPlan, StepDense } from '../kernels/contracts.js';
import type { Tensor } from '../tensor/tensor.js';
import { K, checkFloat, checkSameDType, empty, record } from './core.js';
import { zeros } from './creation.js';
import { add, mul, sigmoid, tanh } from './elementwise.js';
import { matmul } from './linalg.js';
import { concat, pad as padOp, reshape, slice, split } from './shape.js';

function checkScan(xg: Tensor, w: Tensor, h0: Tensor, c0: Tensor, pad: number): void {
  const op = 'lstmScan';
  for (const [name, t] of [['xg', xg], ['w', w], ['h0', h0], ['c0', c0]] as const) {
    checkFloat(op, name, t);
    checkSameDType(op, xg, t);
  }
  if (xg.rank !== 4 || xg.shape[3]! % 4 !== 0) throw new ShapeError(op, 'xg', `must be [T, B, L, 4H], got ${fmtShape(xg.shape)}`, [xg.shape]);
  const h = xg.shape[3]! / 4;
  if (w.rank !== 3 || w.shape[1] !== h || w.shape[2] !== 4 * h) throw new ShapeError(op, 'w', `must be [k, ${h}, ${4 * h}] for xg ${fmtShape(xg.shape)}, got ${fmtShape(w.shape)}`, [xg.shape, w.shape]);
  for (const [name, t] of [['h0', h0], ['c0', c0]] as const) {
    if (t.rank !== 1 || t.shape[0] !== h) throw new ShapeError(op, name, `must be [${h}], got ${fmtShape(t.shape)}`, [t.shape]);
  }
  if (!Number.isInteger(pad) || pad < 0 || pad >= w.shape[0]!) throw new ShapeError(op, 'pad', `must be an integer in 0 … ${w.shape[0]! - 1} (the kernel has ${w.shape[0]} taps), got ${pad}`, [w.shape]);
}

/**
 * h [T, B, L, H] of the LSTM whose step t reads xg[t] [B, L, 4H] (gate blocks o, f, i, g) and
 * the previous step's h at positions l − pad … l − pad + k − 1 through w [k, H, 4H]; h0 and c0
 * [H] are the states before the first step, at every position.
 */
export function lstmScan(xg: Tensor, w: Tensor, h0: Tensor, c0: Tensor, pad: number): Tensor {
  checkScan(xg, w, h0, c0, pad);
  const [t, b, l, g] = xg.shape as [number, number, number, number];
  const hs = empty([t, b, l, g / 4], xg.dtype);
  const cs = empty([t, b, l, g / 4], xg.dtype);
  const acts = empty(xg.shape, xg.dtype);
  K(xg, w).lstmScan(xg, w, h0, c0, hs, cs, acts, pad);
  return record(hs, 'lstmScan', [xg, w, h0, c0], (dhs) => {
    const dxg = empty(xg.shape, dhs.dtype);
    const dw = empty(w.shape, dhs.dtype);
    const dh0 = empty(h0.shape, dhs.dtype);
    const dc0 = empty(c0.shape, dhs.dtype);
    K(dhs, w).lstmScanBackward(w, h0, c0, hs, cs, acts, dhs, dxg, dw, dh0, dc0, pad);
    return [dxg, dw, dh0, dc0];
  });
}

/** The same recurrence from slices, matmuls and elementwise ops, step by step: lstmScan's oracle. */
export function lstmScanComposed(xg: Tensor, w: Tensor, h0: Tensor, c0: Tensor, pad: number): Tensor {
  checkScan(xg, w, h0, c0, pad);
  const [steps, b, l, g] = xg.shape as [number, number, number, number];
  const h = g / 4;
  const k = w.shape[0]!;
  let hPrev = add(zeros([b, l, h], xg.dtype), h0); // h0 at every position
  let cPrev = add(zeros([b, l, h], xg.dtype), c0);
  const out: Tensor[] = [];
  for (let t = 0; t < steps; t++) {
    let z = reshape(slice(xg, [t, 0, 0, 0], [1, b, l, g]), [b * l, g]);
    const padded = padOp(hPrev, [[0, 0], [pad, k - 1 - pad], [0, 0]]);
    for (let kk = 0; kk < k; kk++) {
      const taps = reshape(slice(padded, [0, kk, 0], [b, l, h]), [b * l, h]);
      z = add(z, matmul(taps, reshape(slice(w, [kk, 0, 0], [1, h, g]), [h, g])));
    }
    const [zo, zf, zi, zg] = split(z, [h, h, h, h], 1) as [Tensor, Tensor, Tensor, Tensor];
    const c = add(mul(sigmoid(zf), reshape(cPrev, [b * l, h])), mul(sigmoid(zi), tanh(zg)));
    const hNew = mul(sigmoid(zo), tanh(c));
    hPrev = reshape(hNew, [b, l, h]);
    cPrev = reshape(c, [b, l, h]);
    out.push(reshape(hNew, [1, b, l, h]));
  }
  return concat(out, 0);
}

/** Checks a Row LSTM step plan's sizes against its dimensions (each error names the field). */
function checkRowLSTMPlan(p: RowLSTMStepPlan): void {
  const op = 'rowLstmStep';
  for (const name of ['n', 'height', 'width', 'channels', 'hidden', 'kernel'] as const) {
    if (!Number.isInteger(p[name]) || p[name] < 1) throw new ArgumentError(op, name, `must be a positive integer, got ${p[name]}`);
  }
  if (p.kernel % 2 === 0) throw new ArgumentError(op, 'kernel', `must be odd, got ${p.kernel}`);
  const { n, height: H, width: W, channels: C, hidden: h } = p;
  const L = p.layers.length;
  const size = (name: string, a: ArrayLike<number>, want: number) => {
    if (a.length !== want) throw new ArgumentError(op, name, `holds ${a.length} values, expected ${want}`);
  };
  const dense = (name: string, d: StepDense, cin: number | null, cout: number | null) => {
    if ((cin !== null && d.cin !== cin) || (cout !== null && d.cout !== cout)) throw new ArgumentError(op, name, `is ${d.cin} → ${d.cout}, expected ${cin ?? d.cin} → ${cout ?? d.cout}`);
    size(`${name}.weight`, d.weight, d.cin * d.cout);
    size(`${name}.bias`, d.bias, d.cout);
  };
  size('image', p.image, n * H * W * C);
  if (p.firstTaps.length % 2 !== 0) throw new ArgumentError(op, 'firstTaps', 'must hold (dy, dx) pairs');
  for (let t = 0; t < p.firstTaps.length; t += 2) {
    const dy = p.firstTaps[t]!, dx = p.firstTaps[t + 1]!;
    if (dy > 0 || (dy === 0 && dx > 0)) throw new ArgumentError(op, 'firstTaps', `has the tap (${dy}, ${dx}), which reads a later pixel`);
  }
  dense('first', p.first, (p.firstTaps.length / 2) * C, 2 * h);
  if (L < 1 || p.rows.length !== L) throw new ArgumentError(op, 'rows', `must hold one row per layer (${L} layers), got ${p.rows.length}`);
  p.layers.forEach((l, i) => {
    size(`rows[${i}]`, p.rows[i]!, n * W * 2 * h);
    if (l.inputTaps.some((dx) => dx > 0)) throw new ArgumentError(op, `layers[${i}].inputTaps`, 'must be ≤ 0 (a later column is not causal)');
    size(`layers[${i}].gates`, l.gates, (l.inputTaps.length * 2 * h + p.kernel * h) * 4 * h);
    size(`layers[${i}].gateBias`, l.gateBias, n * 4 * h);
    dense(`layers[${i}].output`, l.output, h, 2 * h);
    for (const s of ['prevH', 'prevC', 'curH', 'curC'] as const) size(`layers[${i}].${s}`, l[s], n * W * h);
  });
  dense('skip', p.skip, L * 2 * h, null);
  dense('outHidden', p.outHidden, p.skip.cout, null);
  dense('out', p.out, p.outHidden.cout, null);
  size('logits', p.logits, n * p.out.cout);
}

const checkedPlans = new WeakSet<RowLSTMStepPlan>();

/**
 * One pixel (y, x) of a Row LSTM's cached sampler through every layer, in place on the plan
 * (the rowLstmStep kernel: src/kernels/contracts.ts). The plan is checked the first time it is used.
 */
export function rowLstmStep(plan: RowLSTMStepPlan, y: number, x: number): void {
  if (!checkedPlans.has(plan)) {
    checkRowLSTMPlan(plan);
    checkedPlans.add(plan);
  }
  if (!Number.isInteger(y) || !Number.isInteger(x) || y < 0 || y >= plan.height || x < 0 || x >= plan.width) {
    throw new ArgumentError('rowLstmStep', 'pixel', `(${y}, ${x}) is off the ${plan.height}×${plan.width} image`);
  }
  K().rowLstmStep(plan, y, x);
}
