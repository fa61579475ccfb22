// Reference kernels of the transformer core: layer / RMS norm, GELU and the attention kernels, as
// plain loops in float64 arithmetic. The composed twins in src/ops (layerNormComposed,
// attentionComposed, …) are the oracle these are tested against. With AttentionAttrs.bf16 the
// attention kernels first round the operands that BF16_OPERANDS names to bfloat16: the oracle of
// the native bf16 attention.

import type { AttentionAttrs, View } from '../../kernels/contracts.js';
import { attentionAllowed } from '../../kernels/attention.js';
import { roundBf16, roundedBf16 } from '../../kernels/bf16.js';
import { exp, log, tanh } from './portable-math.js';

export function layerNorm(x: View, weight: View | null, bias: View | null, out: View, mean: View, rstd: View, eps: number, rms: boolean): void {
  const c = x.shape[x.shape.length - 1]!;
  const xd = x.data, o = out.data;
  const rows = c === 0 ? 0 : xd.length / c;
  for (let r = 0; r < rows; r++) {
    const base = r * c;
    let mu = 0;
    if (!rms) {
      for (let i = 0; i < c; i++) mu += xd[base + i]!;
      mu /= c;
      mean.data[r] = mu;
    }
    let sq = 0;
    for (let i = 0; i < c; i++) sq += (xd[base + i]! - mu) * (xd[base + i]! - mu);
    const rs = 1 / Math.sqrt(sq / c + eps);
    rstd.data[r] = rs;
    for (let i = 0; i < c; i++) {
      let y = (xd[base + i]! - mu) * rs;
      if (weight) y *= weight.data[i]!;
      if (bias) y += bias.data[i]!;
      o[base + i] = y;
    }
  }
}

export function layerNormBackward(x: View, weight: View | null, mean: View, rstd: View, g: View, dx: View, dweight: View | null, dbias: View | null, rms: boolean): void {
  const c = x.shape[x.shape.length - 1]!;
  const xd = x.data, gd = g.data, o = dx.data;
  const rows = c === 0 ? 0 : xd.length / c;
  dweight?.data.fill(0);
  dbias?.data.fill(0);
  for (let r = 0; r < rows; r++) {
    const base = r * c;
    const mu = rms ? 0 : mean.data[r]!;
    const rs = rstd.data[r]!;
    // dx = rstd · (ĝ − mean(ĝ) − x̂ · mean(ĝ ⊙ x̂)) with ĝ = g ⊙ weight; RMS norm drops the mean(ĝ) term.
    let gMean = 0, gxMean = 0;
    for (let i = 0; i < c; i++) {
      const xh = (xd[base + i]! - mu) * rs;
      const gh = gd[base + i]! * (weight ? weight.data[i]! : 1);
      gMean += gh;
      gxMean += gh * xh;
      if (dweight) dweight.data[i] += gd[base + i]! * xh;
      if (dbias) dbias.data[i] += gd[base + i]!;
    }
    gMean = rms ? 0 : gMean / c;
    gxMean /= c;
    for (let i = 0; i < c; i++) {
      const xh = (xd[base + i]! - mu) * rs;
      const gh = gd[base + i]! * (weight ? weight.data[i]! : 1);
      o[base + i] = rs * (gh - gMean - xh * gxMean);
    }
  }
}

/**
 * erf to about 1e-14 absolute: its Maclaurin series below |x| = 3 (the largest term there is ~170,
 * so cancellation costs two digits of float64's sixteen), and erfc's continued fraction above.
 */
export function erf(x: number): number {
  const a = Math.abs(x);
  if (a < 3) {
    let term = x, sum = x;
    for (let n = 1; n < 60; n++) {
      term *= (-x * x) / n;
      const t = term / (2 * n + 1);
      sum += t;
      if (Math.abs(t) < 1e-17 * Math.abs(sum)) break;
    }
    return (2 / Math.sqrt(Math.PI)) * sum;
  }
  // erfc(a) = e^{−a²}/√π · 1/(a + (1/2)/(a + 1/(a + (3/2)/(a + 2/(a + …))))), evaluated from the bottom.
  let f = a;
  for (let k = 60; k >= 1; k--) f = a + k / 2 / f;
  const erfc = exp(-a * a) / Math.sqrt(Math.PI) / f;
  return Math.sign(x) * (1 - erfc);
}

const SQRT_2_OVER_PI = Math.sqrt(2 / Math.PI);
const GELU_C = 0.044715;

function geluValue(v: number, tanhForm: boolean): number {
  if (tanhForm) return 0.5 * v * (1 + tanh(SQRT_2_OVER_PI * (v + GELU_C * v * v * v)));
  return 0.5 * v * (1 + erf(v / Math.SQRT2));
}

function geluGrad(v: number, tanhForm: boolean): number {
  if (tanhForm) {
    const t = tanh(SQRT_2_OVER_PI * (v + GELU_C * v * v * v));
    return 0.5 * (1 + t) + 0.5 * v * (1 - t * t) * SQRT_2_OVER_PI * (1 + 3 * GELU_C * v * v);
  }
  // Φ(v) + v·φ(v)
  return 0.5 * (1 + erf(v / Math.SQRT2)) + (v * exp(-0.5 * v * v)) / Math.sqrt(2 * Math.PI);
}

export function gelu(x: View, out: View, tanhForm: boolean): void {
  const xd = x.data, o = out.data;
  for (let i = 0; i < xd.length; i++) o[i] = geluValue(xd[i]!, tanhForm);
}

export function geluBackward(x: View, g: View, dx: View, tanhForm: boolean): void {
  const xd = x.data, gd = g.data, o = dx.data;
  for (let i = 0; i < xd.length; i++) o[i] = gd[i]! * geluGrad(xd[i]!, tanhForm);
}

/** Sizes of packed attention: qkv [N, L, 3C], C = heads·d. */
function dims(qkv: View, a: AttentionAttrs): { n: number; l: number; c: number; d: number } {
  const [n, l, c3] = qkv.shape as [number, number, number];
  const c = c3 / 3;
  return { n, l, c, d: c / a.heads };
}

/** A product operand's values: rounded to bfloat16 (a copy) in mixed precision, else as they are. */
function operand(v: View, bf16: boolean | undefined): ArrayLike<number> {
  return bf16 ? roundedBf16(v.data as Float32Array | Float64Array) : v.data;
}

/**
 * The scaled logits of query row i (q at qOff) over keys 0 … last (k rows at kOff + j·kStride)
 * into s, −∞ where the pattern masks j; returns their maximum.
 */
function rowLogits(q: ArrayLike<number>, qOff: number, k: ArrayLike<number>, kOff: number, kStride: number, i: number, last: number, d: number, a: AttentionAttrs, s: Float64Array): number {
  let m = -Infinity;
  for (let j = 0; j <= last; j++) {
    if (!attentionAllowed(a.pattern, i, j)) {
      s[j] = -Infinity;
      continue;
    }
    let dot = 0;
    for (let t = 0; t < d; t++) dot += q[qOff + t]! * k[kOff + j * kStride + t]!;
    s[j] = dot * a.scale;
    m = Math.max(m, s[j]!);
  }
  return m;
}

/** The log-sum-exp of logits s[0 … last] whose maximum is m. */
function logSumExp(s: Float64Array, last: number, m: number): number {
  let sum = 0;
  for (let j = 0; j <= last; j++) sum += exp(s[j]! - m);
  return m + log(sum);
}

/** rowLogits, then p[j] = exp(s[j] − lse) in place (0 where masked); returns the log-sum-exp. */
function rowProbabilities(q: ArrayLike<number>, qOff: number, k: ArrayLike<number>, kOff: number, kStride: number, i: number, last: number, d: number, a: AttentionAttrs, p: Float64Array): number {
  const lse = logSumExp(p, last, rowLogits(q, qOff, k, kOff, kStride, i, last, d, a, p));
  for (let j = 0; j <= last; j++) p[j] = exp(p[j]! - lse);
  return lse;
}

export function attention(qkv: View, out: View, lse: View, a: AttentionAttrs): void {
  const { n, l, c, d } = dims(qkv, a);
  const x = operand(qkv, a.bf16), o = out.data;
  const p = new Float64Array(l);
  for (let b = 0; b < n; b++) {
    for (let h = 0; h < a.heads; h++) {
      for (let i = 0; i < l; i++) {
        const m = rowLogits(x, (b * l + i) * 3 * c + h * d, x, b * l * 3 * c + c + h * d, 3 * c, i, l - 1, d, a, p);
        const rowLse = logSumExp(p, l - 1, m);
        lse.data[(b * a.heads + h) * l + i] = rowLse;
        if (a.bf16) {
          // P·V takes exp(S − m̂), m̂ = m rounded up to a multiple of ln 2, rounded to bf16; the
          // division by the row sum exp(lse − m̂) follows the product (BF16_OPERANDS).
          const shift = Math.LN2 * Math.ceil(m / Math.LN2);
          const norm = exp(shift - rowLse);
          for (let j = 0; j < l; j++) p[j] = roundBf16(exp(p[j]! - shift)) * norm;
        } else {
          for (let j = 0; j < l; j++) p[j] = exp(p[j]! - rowLse);
        }
        for (let t = 0; t < d; t++) {
          let s = 0;
          for (let j = 0; j < l; j++) s += p[j]! * x[(b * l + j) * 3 * c + 2 * c + h * d + t]!;
          o[(b * l + i) * c + h * d + t] = s;
        }
      }
    }
  }
}

export function attentionBackward(qkv: View, out: View, _lse: View, g: View, dqkv: View, a: AttentionAttrs): void {
  const { n, l, c, d } = dims(qkv, a);
  const x = operand(qkv, a.bf16), o = out.data, gd = g.data, dx = dqkv.data;
  // g as the operand of dV's and dP's products; the row dots take g and out as they are.
  const gb = operand(g, a.bf16);
  const r = a.bf16 ? roundBf16 : (v: number) => v;
  dx.fill(0);
  const p = new Float64Array(l);
  const at = (b: number, j: number, part: number, h: number) => (b * l + j) * 3 * c + part * c + h * d;
  for (let b = 0; b < n; b++) {
    for (let h = 0; h < a.heads; h++) {
      for (let i = 0; i < l; i++) {
        rowProbabilities(x, at(b, i, 0, h), x, at(b, 0, 1, h), 3 * c, i, l - 1, d, a, p);
        const gi = (b * l + i) * c + h * d;
        // With P the softmax: dV_j += p_j·g_i; dS_j = scale·p_j·(g_i·v_j − g_i·o_i); dq_i += Σ dS_j k_j; dk_j += dS_j q_i.
        let rowDot = 0;
        for (let t = 0; t < d; t++) rowDot += gd[gi + t]! * o[gi + t]!;
        for (let j = 0; j < l; j++) {
          if (p[j] === 0) continue;
          const pj = r(p[j]!);
          let dp = 0;
          for (let t = 0; t < d; t++) {
            dp += gb[gi + t]! * x[at(b, j, 2, h) + t]!;
            dx[at(b, j, 2, h) + t] += pj * gb[gi + t]!;
          }
          const ds = r(p[j]! * (dp - rowDot) * a.scale);
          for (let t = 0; t < d; t++) {
            dx[at(b, i, 0, h) + t] += ds * x[at(b, j, 1, h) + t]!;
            dx[at(b, j, 1, h) + t] += ds * x[at(b, i, 0, h) + t]!;
          }
        }
      }
    }
  }
}

export function attentionStep(q: View, k: View, v: View, out: View, position: number, a: AttentionAttrs): void {
  const [n, c] = q.shape as [number, number];
  const t = k.shape[1]!;
  const d = c / a.heads;
  const p = new Float64Array(position + 1);
  for (let b = 0; b < n; b++) {
    for (let h = 0; h < a.heads; h++) {
      rowProbabilities(q.data, b * c + h * d, k.data, b * t * c + h * d, c, position, position, d, a, p);
      for (let e = 0; e < d; e++) {
        let s = 0;
        for (let j = 0; j <= position; j++) s += p[j]! * v.data[(b * t + j) * c + h * d + e]!;
        out.data[b * c + h * d + e] = s;
      }
    }
  }
}
