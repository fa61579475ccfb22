// A head's conditional distribution as the entropy coder's integer frequencies. Encoder and
// decoder turn the same float parameters into the same table by one deterministic procedure:
// float64 arithmetic in a fixed order, with the exponential of arpix's own (drawExp: additions,
// multiplications and a table of powers of two, so no engine's or CPU's Math.exp enters) — the
// same bits on every machine that gives the same parameters.
//
// quantise(): weights w (any positive scale) → frequencies f_k = 1 + ⌊w_k · (M − K) / Σw⌋ with
// M = 2^PROB_BITS, so every symbol can be coded; what the floors leave is given to the first
// largest. The cost over the model's own −log₂ p is at most K/M of mass per symbol (256 levels:
// 1.5·10⁻⁵, i.e. ~2·10⁻⁵ bits), plus the floors' share.

import { drawExp } from '../likelihoods/index.js';
import { MIN_LOG_SCALE, mixtureParamsPerPixel } from '../likelihoods/mixture.js';
import { PROB_TOTAL } from './rans.js';

/**
 * Cumulative frequencies cum[0..k] (cum[0] = 0, cum[k] = 2^PROB_BITS, each step ≥ 1) from the
 * non-negative weights w[0..k). Weights that are all zero or not finite give the uniform table.
 */
export function quantise(w: Float64Array, k: number, cum: Float64Array): void {
  let total = 0;
  for (let i = 0; i < k; i++) total += w[i]!;
  const avail = PROB_TOTAL - k;
  cum[0] = 0;
  if (!(total > 0) || !Number.isFinite(total)) {
    // Uniform, the remainder to the first symbols.
    const each = Math.floor(PROB_TOTAL / k);
    const extra = PROB_TOTAL - each * k;
    for (let i = 0; i < k; i++) cum[i + 1] = cum[i]! + each + (i < extra ? 1 : 0);
    return;
  }
  const scale = avail / total;
  let sum = 0;
  let top = 0;
  for (let i = 0; i < k; i++) {
    const wi = w[i]! > 0 ? w[i]! : 0;
    const f = 1 + Math.min(Math.floor(wi * scale), avail);
    cum[i + 1] = f; // frequencies for now
    sum += f;
    if (wi > w[top]!) top = i;
  }
  cum[top + 1] = cum[top + 1]! + (PROB_TOTAL - sum);
  if (cum[top + 1]! < 1) {
    // Only reachable with pathological rounding: fall back to the uniform table rather than code an empty interval.
    quantise(w.fill(0, 0, k), k, cum);
    return;
  }
  for (let i = 0; i < k; i++) cum[i + 1] = cum[i]! + cum[i + 1]!;
}

/** Weights exp(l_k − max l) of logits l[at .. at+k) into w. */
export function softmaxWeights(logits: Float32Array | Float64Array, at: number, k: number, w: Float64Array): void {
  let mx = -Infinity;
  for (let i = 0; i < k; i++) if (logits[at + i]! > mx) mx = logits[at + i]!;
  for (let i = 0; i < k; i++) w[i] = drawExp(logits[at + i]! - mx);
}

/** σ(z) = 1 / (1 + e^−z), with arpix's exponential (of a non-positive argument only). */
export function sigmoid(z: number): number {
  if (z >= 0) return 1 / (1 + drawExp(-z));
  const e = drawExp(z);
  return e / (1 + e);
}

/** tanh(a), with arpix's exponential. */
export function tanh(a: number): number {
  const e = drawExp(-2 * Math.abs(a));
  const t = (1 - e) / (1 + e);
  return a < 0 ? -t : t;
}

/**
 * PixelCNN++'s discretised logistic mixture, one channel at a time: the weights of the `levels`
 * values of channel `ch` of one pixel, given its earlier channels' values (xs, as levels). The
 * components' weights are their mixture weights times the earlier channels' bin masses (the
 * posterior over components), and channel ch's means move with the earlier channels as in
 * likelihoods/mixture.ts.
 */
export class MixtureTables {
  private readonly per: number;
  private readonly comp: Float64Array;
  private readonly cdf: Float64Array;

  constructor(readonly channels: number, readonly nrMix: number, readonly levels: number) {
    mixtureParamsPerPixel(channels, nrMix); // checks channels
    this.per = channels === 3 ? 3 : 2;
    this.comp = new Float64Array(nrMix);
    this.cdf = new Float64Array(levels + 1);
  }

  /** The mean of channel ch for component m, moved by the earlier channels' values (on [−1, 1]). */
  private mean(params: Float32Array | Float64Array, base: number, ch: number, m: number, xs: ArrayLike<number>): number {
    const M = this.nrMix;
    let mean = params[base + M + ch * this.per * M + m]!;
    if (this.channels === 3 && ch > 0) {
      const coef = (c: number) => tanh(params[base + M + c * this.per * M + 2 * M + m]!);
      const x = (c: number) => (2 * xs[c]!) / (this.levels - 1) - 1;
      mean += ch === 1 ? coef(0) * x(0) : coef(1) * x(0) + coef(2) * x(1);
    }
    return mean;
  }

  /** Component m's channel ch: its mean (moved by the earlier channels) and inverse scale. */
  private shape(params: Float32Array | Float64Array, base: number, ch: number, m: number, xs: ArrayLike<number>): [number, number] {
    const M = this.nrMix;
    const logScale = Math.max(params[base + M + ch * this.per * M + M + m]!, MIN_LOG_SCALE);
    // e^−logScale, from drawExp's non-positive arguments only.
    return [this.mean(params, base, ch, m, xs), logScale >= 0 ? drawExp(-logScale) : 1 / drawExp(logScale)];
  }

  /** P(value < j) at bin edge j (0 and 1 at the ends) for a component of this mean and inverse scale. */
  private cdfAt(j: number, mean: number, inv: number): number {
    if (j <= 0) return 0;
    if (j >= this.levels) return 1;
    return sigmoid(((2 * j) / (this.levels - 1) - 1 - 1 / (this.levels - 1) - mean) * inv);
  }

  /** cdf[j] at every bin edge j = 0..levels of component m's channel ch. */
  private edges(params: Float32Array | Float64Array, base: number, ch: number, m: number, xs: ArrayLike<number>): void {
    const [mean, inv] = this.shape(params, base, ch, m, xs);
    for (let j = 0; j <= this.levels; j++) this.cdf[j] = this.cdfAt(j, mean, inv);
  }

  /** Bin mass of value v of component m's channel ch: two edges, not all of them. */
  private mass(params: Float32Array | Float64Array, base: number, ch: number, m: number, xs: ArrayLike<number>, v: number): number {
    const [mean, inv] = this.shape(params, base, ch, m, xs);
    return Math.max(this.cdfAt(v + 1, mean, inv) - this.cdfAt(v, mean, inv), 0);
  }

  /**
   * Weights w[0..levels) of channel `ch` of the pixel whose parameters start at params[base], given
   * the values xs[0..ch) of its earlier channels.
   */
  weights(params: Float32Array | Float64Array, base: number, ch: number, xs: ArrayLike<number>, w: Float64Array): void {
    const M = this.nrMix;
    const comp = this.comp;
    softmaxWeights(params, base, M, comp);
    for (let m = 0; m < M; m++) {
      for (let c = 0; c < ch; c++) comp[m] = comp[m]! * this.mass(params, base, c, m, xs, xs[c]!);
    }
    // Components whose earlier bins all but vanished must not leave the table empty: quantise
    // falls back to uniform when every weight is 0.
    w.fill(0, 0, this.levels);
    for (let m = 0; m < M; m++) {
      if (!(comp[m]! > 0)) continue;
      this.edges(params, base, ch, m, xs);
      for (let v = 0; v < this.levels; v++) w[v] = w[v]! + comp[m]! * Math.max(this.cdf[v + 1]! - this.cdf[v]!, 0);
    }
  }
}
