// The discretised logistic mixture of PixelCNN++ (Salimans et al. 2017, "PixelCNN++: Improving
// the PixelCNN with Discretized Logistic Mixture Likelihood and Other Modifications", eq. 2–3).
//
// Parameter layout per pixel, the order of openai/pixel-cnn and pclucas14/pixel-cnn-pp:
//   RGB (10·M values):  M mixture logits, then for each channel c = R, G, B in turn
//                       M means, M log-scales, M channel coefficients.
//   grey (3·M values):  M mixture logits, M means, M log-scales.
// Channel dependencies inside a pixel are linear in the already-known channels:
//   μ_G = μ'_G + α·x_R,   μ_B = μ'_B + β·x_R + γ·x_G,   (α, β, γ) = tanh(coefficients of R, G, B).

import { ArgumentError, ShapeError, fmtShape } from '../errors.js';
import {
  add, clamp, concat, exp, greater, less, log, logSoftmax, logsumexp, mul, neg, reshape,
  sigmoid, slice, softplus, sub, sum, tanh, where,
} from '../ops/index.js';
import type { Tensor } from '../tensor/tensor.js';

/** Log-scales are floored here, as in the reference code, so a bin never gets a zero width. */
export const MIN_LOG_SCALE = -7;

export function mixtureParamsPerPixel(channels: number, nrMix: number): number {
  if (channels === 1) return 3 * nrMix;
  if (channels === 3) return 10 * nrMix;
  throw new ArgumentError('logistic mixture', 'channels', `must be 1 or 3, got ${channels}`);
}

/** Splits [N, H, W, P] into mixture logits [N,H,W,M] and per-channel [N,H,W,C,M] means, log-scales, coefficients. */
export function splitMixtureParams(params: Tensor, channels: number, nrMix: number) {
  const [n, h, w, p] = params.shape as [number, number, number, number];
  const m = nrMix;
  if (params.rank !== 4 || p !== mixtureParamsPerPixel(channels, m)) {
    throw new ShapeError('logistic mixture', 'params', `must be [N, H, W, ${mixtureParamsPerPixel(channels, m)}] for ${channels} channel(s) and ${m} components, got ${fmtShape(params.shape)}`, [params.shape]);
  }
  const logits = slice(params, [0, 0, 0, 0], [n, h, w, m]);
  const per = channels === 3 ? 3 : 2;
  const rest = reshape(slice(params, [0, 0, 0, m], [n, h, w, p - m]), [n, h, w, channels, per * m]);
  const part = (k: number) => slice(rest, [0, 0, 0, 0, k * m], [n, h, w, channels, m]);
  return {
    logits,
    means: part(0),
    logScales: clamp(part(1), MIN_LOG_SCALE),
    coeffs: channels === 3 ? tanh(part(2)) : null,
  };
}

/**
 * log p(x) per image, in nats, under the discretised logistic mixture. `images` are integers in
 * [0, levels) of shape [N, H, W, C]; they are mapped to [−1, 1] with bins of width 2/(levels−1).
 * The computation follows the reference loss term for term, including its edge cases:
 *  - x = 0 takes all mass below the first bin edge (log σ(·)), x = levels−1 all mass above the
 *    last (log(1 − σ(·))), both computed as softplus forms so they never hit log(0);
 *  - when a bin's mass underflows (cdf difference < 1e−5, tiny scales) the log density at the
 *    bin centre times the bin width is used instead of log of a difference of two near-equal CDFs.
 * Branches are chosen with `where`, so the branch not taken contributes no NaN to the gradient.
 */
export function logisticMixtureLogProb(params: Tensor, images: Tensor, opts: { nrMix: number; levels?: number }): Tensor {
  const { logProbs, logMix } = componentLogProbs(params, images, opts);
  const perComponent = add(sum(logProbs, 3), logMix); // [N, H, W, M]
  return sum(logsumexp(perComponent, -1), [1, 2]); // [N]
}

/**
 * log p(x_c | x_<c of the pixel, earlier pixels) in nats for every element: [N, H, W, C]. The
 * mixture is joint over a pixel's channels, so channel c's conditional is log p(x_≤c) − log
 * p(x_<c), each a logsumexp over components of the channels' terms so far (a component's later
 * channels integrate to 1, since their means depend on earlier channels only). The channels of
 * a pixel sum to that pixel's term of logisticMixtureLogProb.
 */
export function logisticMixtureElementLogProb(params: Tensor, images: Tensor, opts: { nrMix: number; levels?: number }): Tensor {
  const { logProbs, logMix } = componentLogProbs(params, images, opts);
  const [n, h, w, c, m] = logProbs.shape as [number, number, number, number, number];
  const parts: Tensor[] = [];
  let prefix = logMix; // [N, H, W, M]
  let before: Tensor | null = null; // log p(x_<c) [N, H, W, 1]
  for (let ch = 0; ch < c; ch++) {
    prefix = add(prefix, reshape(slice(logProbs, [0, 0, 0, ch, 0], [n, h, w, 1, m]), [n, h, w, m]));
    const upTo = logsumexp(prefix, -1, true); // [N, H, W, 1]
    parts.push(before === null ? upTo : sub(upTo, before));
    before = upTo;
  }
  return parts.length === 1 ? parts[0]! : concat(parts, 3);
}

/** The per-component, per-channel log-probabilities [N, H, W, C, M] and the log mixture weights [N, H, W, M]. */
function componentLogProbs(params: Tensor, images: Tensor, opts: { nrMix: number; levels?: number }): { logProbs: Tensor; logMix: Tensor } {
  const levels = opts.levels ?? 256;
  const channels = images.shape[3]!;
  if (images.rank !== 4 || images.dtype !== 'int32') {
    throw new ShapeError('logistic mixture', 'images', `must be int32 [N, H, W, C], got ${images.dtype} ${fmtShape(images.shape)}`, [images.shape]);
  }
  const [n, h, w] = images.shape as [number, number, number, number];
  if (params.shape[0] !== n || params.shape[1] !== h || params.shape[2] !== w) {
    throw new ShapeError('logistic mixture', 'params', `${fmtShape(params.shape)} must match the images ${fmtShape(images.shape)} on N, H, W`, [params.shape, images.shape]);
  }
  const m = opts.nrMix;
  const { logits, means, logScales, coeffs } = splitMixtureParams(params, channels, m);
  const f = params.dtype;
  // x in [−1, 1], broadcast over the mixture axis: [N, H, W, C, 1].
  const x = reshape(sub(mul(images.cast(f), 2 / (levels - 1)), 1), [n, h, w, channels, 1]);
  let mu = means;
  if (coeffs !== null) {
    const ch = (t: Tensor, c: number) => slice(t, [0, 0, 0, c, 0], [n, h, w, 1, t.shape[4]!]);
    const muG = add(ch(means, 1), mul(ch(coeffs, 0), ch(x, 0)));
    const muB = add(add(ch(means, 2), mul(ch(coeffs, 1), ch(x, 0))), mul(ch(coeffs, 2), ch(x, 1)));
    mu = concat([ch(means, 0), muG, muB], 3);
  }
  const halfBin = 1 / (levels - 1);
  const centred = sub(x, mu);
  const invScale = exp(neg(logScales));
  const plusIn = mul(invScale, add(centred, halfBin));
  const minIn = mul(invScale, sub(centred, halfBin));
  const cdfDelta = sub(sigmoid(plusIn), sigmoid(minIn));
  const logCdfPlus = sub(plusIn, softplus(plusIn)); // log σ(plusIn), for x at the lowest level
  const logOneMinusCdfMin = neg(softplus(minIn)); // log(1 − σ(minIn)), for x at the highest level
  const midIn = mul(invScale, centred);
  // log of the logistic density at the bin centre, times the bin width 2/(levels−1).
  const logPdfMid = sub(sub(midIn, logScales), mul(softplus(midIn), 2));
  const logBinApprox = sub(logPdfMid, Math.log((levels - 1) / 2));
  const interior = where(greater(cdfDelta, 1e-5), log(clamp(cdfDelta, 1e-12)), logBinApprox);
  const upper = where(greater(x, 0.999), logOneMinusCdfMin, interior);
  const logProbs = where(less(x, -0.999), logCdfPlus, upper); // [N, H, W, C, M]
  return { logProbs, logMix: logSoftmax(logits, -1) };
}

/**
 * Samples whole pixels from mixture parameters given as plain rows (P values per row), writing
 * C integers per row. Draws 1 + C uniforms per row from `uniform`: the component by inverse CDF,
 * then each channel by the logistic's inverse CDF, rounded to the nearest level and clipped.
 * Temperature T divides the mixture logits and multiplies the scales.
 */
export function sampleLogisticMixture(
  params: Float32Array | Float64Array, rows: number, channels: number, nrMix: number, levels: number,
  uniform: (n: number) => Float64Array, temperature: number, out: Int32Array,
): void {
  const m = nrMix;
  const p = mixtureParamsPerPixel(channels, m);
  const per = channels === 3 ? 3 : 2;
  const u = uniform(rows * (1 + channels));
  const weights = new Float64Array(m);
  for (let r = 0; r < rows; r++) {
    const base = r * p;
    let mx = -Infinity;
    for (let k = 0; k < m; k++) mx = Math.max(mx, params[base + k]! / temperature);
    let total = 0;
    for (let k = 0; k < m; k++) total += weights[k] = Math.exp(params[base + k]! / temperature - mx);
    let pick = u[r * (1 + channels)]! * total;
    let comp = 0;
    while (comp < m - 1 && pick >= weights[comp]!) pick -= weights[comp++]!;
    const xs: number[] = [];
    for (let c = 0; c < channels; c++) {
      const at = base + m + c * per * m;
      let mean = params[at + comp]!;
      const logScale = Math.max(params[at + m + comp]!, MIN_LOG_SCALE);
      if (channels === 3 && c > 0) {
        // G uses α = tanh(coefficient slot of R); B uses β (slot of G) and γ (slot of B).
        const coef = (ch: number) => Math.tanh(params[base + m + ch * per * m + 2 * m + comp]!);
        mean += c === 1 ? coef(0) * xs[0]! : coef(1) * xs[0]! + coef(2) * xs[1]!;
      }
      // Inverse CDF of the logistic, with u kept inside (0, 1).
      const uu = Math.min(Math.max(u[r * (1 + channels) + 1 + c]!, 1e-5), 1 - 1e-5);
      const v = mean + Math.exp(logScale) * temperature * (Math.log(uu) - Math.log1p(-uu));
      const level = Math.min(Math.max(Math.round(((v + 1) * (levels - 1)) / 2), 0), levels - 1);
      out[r * channels + c] = level;
      xs.push((2 * level) / (levels - 1) - 1);
    }
  }
}
