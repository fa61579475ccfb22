// Likelihood heads shared by every model. A model's network maps an image to `paramsPerPixel`
// values per pixel; the head turns them into log p(x) and draws samples from them.
//
// - bernoulli:   one logit per channel (binarised images, levels = 2).
// - categorical: `levels` logits per channel, channel-major ([C, levels] per pixel). The network
//                must make channel c's logits depend on the pixel's channels < c only.
// - logistic-mixture: PixelCNN++'s discretised mixture; channel dependencies live in the head,
//                so the network's output at a pixel sees none of that pixel's channels.

import { ArgumentError, ShapeError, fmtShape } from '../errors.js';
import { binaryCrossEntropyWithLogits, cast, crossEntropy, mul, neg, reshape, sum } from '../ops/index.js';
import type { Generator } from '../tensor/random.js';
import type { Tensor } from '../tensor/tensor.js';
import { logisticMixtureElementLogProb, logisticMixtureLogProb, mixtureParamsPerPixel, sampleLogisticMixture } from './mixture.js';

export { logisticMixtureLogProb, logisticMixtureElementLogProb, sampleLogisticMixture, splitMixtureParams, mixtureParamsPerPixel, MIN_LOG_SCALE } from './mixture.js';

export type LikelihoodConfig =
  | { kind: 'bernoulli' }
  | { kind: 'categorical'; levels: number }
  | { kind: 'logistic-mixture'; nrMix: number; levels?: number };

export interface Likelihood {
  readonly config: LikelihoodConfig;
  readonly channels: number;
  /** Number of values each channel takes: 2 for Bernoulli, else the quantisation levels. */
  readonly levels: number;
  readonly paramsPerPixel: number;
  /** True when channel c's parameters may depend on the pixel's earlier channels (sampled one channel at a time). */
  readonly perChannel: boolean;
  /** log p(x) per image in nats: params [N, H, W, P], images int32 [N, H, W, C] → [N]. */
  logProb(params: Tensor, images: Tensor): Tensor;
  /**
   * log p(x_i | x_<i) in nats for every element (pixel and channel, in the model's order): [N, H,
   * W, C]. Sums over H, W and C to logProb.
   */
  elementLogProb(params: Tensor, images: Tensor): Tensor;
  /**
   * Draws values for `rows` pixels from their parameters (P per row). For a perChannel head only
   * `channel` is drawn and written to out[r·C + channel]; otherwise all channels of the pixel.
   */
  sample(params: Float32Array | Float64Array, rows: number, channel: number, generator: Generator, temperature: number, out: Int32Array): void;
}

function uniforms(generator: Generator): (n: number) => Float64Array {
  return (n) => {
    const u = new Float64Array(n);
    generator.uniform(u);
    return u;
  };
}

function checkImages(op: string, params: Tensor, images: Tensor, channels: number, p: number): void {
  if (images.dtype !== 'int32' || images.rank !== 4 || images.shape[3] !== channels) {
    throw new ShapeError(op, 'images', `must be int32 [N, H, W, ${channels}], got ${images.dtype} ${fmtShape(images.shape)}`, [images.shape]);
  }
  const [n, h, w] = images.shape;
  if (params.rank !== 4 || params.shape[0] !== n || params.shape[1] !== h || params.shape[2] !== w || params.shape[3] !== p) {
    throw new ShapeError(op, 'params', `must be [${n}, ${h}, ${w}, ${p}], got ${fmtShape(params.shape)}`, [params.shape, images.shape]);
  }
}

function checkRange(op: string, images: Tensor, levels: number): void {
  const d = images.data;
  for (let i = 0; i < d.length; i++) {
    if (d[i]! < 0 || d[i]! >= levels) {
      throw new ArgumentError(op, 'images', `contain the value ${d[i]} but this model has ${levels} levels (0..${levels - 1}); quantise or binarise the data to match`);
    }
  }
}

export function createLikelihood(config: LikelihoodConfig, channels: number): Likelihood {
  switch (config.kind) {
    case 'bernoulli':
      return {
        config, channels, levels: 2, paramsPerPixel: channels, perChannel: true,
        logProb(params, images) {
          checkImages('bernoulli', params, images, channels, channels);
          checkRange('bernoulli', images, 2);
          const nll = binaryCrossEntropyWithLogits(params, cast(images, params.dtype), 'none');
          return neg(sum(nll, [1, 2, 3]));
        },
        elementLogProb(params, images) {
          checkImages('bernoulli', params, images, channels, channels);
          checkRange('bernoulli', images, 2);
          return neg(binaryCrossEntropyWithLogits(params, cast(images, params.dtype), 'none'));
        },
        sample(params, rows, channel, generator, temperature, out) {
          const u = uniforms(generator)(rows);
          for (let r = 0; r < rows; r++) {
            const logit = params[r * channels + channel]! / temperature;
            out[r * channels + channel] = u[r]! < 1 / (1 + Math.exp(-logit)) ? 1 : 0;
          }
        },
      };
    case 'categorical': {
      const levels = config.levels;
      if (!Number.isInteger(levels) || levels < 2) throw new ArgumentError('categorical', 'levels', `must be an integer ≥ 2, got ${levels}`);
      return {
        config, channels, levels, paramsPerPixel: channels * levels, perChannel: true,
        logProb(params, images) {
          checkImages('categorical', params, images, channels, channels * levels);
          checkRange('categorical', images, levels);
          const [n, h, w] = images.shape as [number, number, number];
          const logits = reshape(params, [n, h, w, channels, levels]);
          return neg(sum(crossEntropy(logits, images, 'none'), [1, 2, 3]));
        },
        elementLogProb(params, images) {
          checkImages('categorical', params, images, channels, channels * levels);
          checkRange('categorical', images, levels);
          const [n, h, w] = images.shape as [number, number, number];
          return neg(crossEntropy(reshape(params, [n, h, w, channels, levels]), images, 'none'));
        },
        sample(params, rows, channel, generator, temperature, out) {
          const u = uniforms(generator)(rows);
          const p = channels * levels;
          const weights = new Float64Array(levels);
          for (let r = 0; r < rows; r++) {
            const at = r * p + channel * levels;
            let mx = -Infinity;
            for (let k = 0; k < levels; k++) mx = Math.max(mx, params[at + k]! / temperature);
            let total = 0;
            for (let k = 0; k < levels; k++) total += weights[k] = Math.exp(params[at + k]! / temperature - mx);
            let pick = u[r]! * total;
            let k = 0;
            while (k < levels - 1 && pick >= weights[k]!) pick -= weights[k++]!;
            out[r * channels + channel] = k;
          }
        },
      };
    }
    case 'logistic-mixture': {
      const levels = config.levels ?? 256;
      const nrMix = config.nrMix;
      if (!Number.isInteger(nrMix) || nrMix < 1) throw new ArgumentError('logistic mixture', 'nrMix', `must be a positive integer, got ${nrMix}`);
      const p = mixtureParamsPerPixel(channels, nrMix);
      return {
        config, channels, levels, paramsPerPixel: p, perChannel: false,
        logProb(params, images) {
          checkImages('logistic mixture', params, images, channels, p);
          checkRange('logistic mixture', images, levels);
          return logisticMixtureLogProb(params, images, { nrMix, levels });
        },
        elementLogProb(params, images) {
          checkImages('logistic mixture', params, images, channels, p);
          checkRange('logistic mixture', images, levels);
          return logisticMixtureElementLogProb(params, images, { nrMix, levels });
        },
        sample(params, rows, _channel, generator, temperature, out) {
          sampleLogisticMixture(params, rows, channels, nrMix, levels, uniforms(generator), temperature, out);
        },
      };
    }
    default:
      throw new ArgumentError('likelihood', 'kind', `must be 'bernoulli', 'categorical' or 'logistic-mixture', got '${(config as { kind: string }).kind}'`);
  }
}

/** Bits per dimension from per-image log-likelihoods in nats. */
export function bitsPerDim(logProb: Tensor, dims: number): Tensor {
  return mul(logProb, -1 / (dims * Math.LN2));
}
