// Likelihood heads shared by every model. A model's network maps an image to `paramsPerPixel`
// values per pixel; the head turns them into log p(x) and draws samples from them.
//
// - bernoulli:   one logit per channel (binarised images, levels = 2).
// - categorical: `levels` logits per channel, channel-major ([C, levels] per pixel). The network
//                must make channel c's logits depend on the pixel's channels < c only.
// - logistic-mixture: PixelCNN++'s discretised mixture; channel dependencies live in the head,
//                so the network's output at a pixel sees none of that pixel's channels.
// - palette:     Image GPT's: k logits per pixel over a palette of k colours; a pixel is one
//                token (its nearest colour), so log p is that of the token sequence and a
//                sample is a token decoded to its colour (see palette.ts).

import { ArgumentError, ShapeError, fmtShape } from '../errors.js';
import { binaryCrossEntropyWithLogits, cast, categoricalDraw, crossEntropy, mul, neg, reshape, sum } from '../ops/index.js';
import type { Generator } from '../tensor/random.js';
import { logisticMixtureElementLogProb, logisticMixtureLogProb, mixtureParamsPerPixel, sampleLogisticMixture } from './mixture.js';
import { makePalette, PaletteIndex, type Palette } from './palette.js';
import { Tensor } from '../tensor/tensor.js';

export { drawExp } from '../backends/ts/sampling.js';
export { fitPalette, greyPalette, makePalette, PaletteIndex } from './palette.js';
export type { KMeansOptions, KMeansResult, Palette } from './palette.js';
export { logisticMixtureLogProb, logisticMixtureElementLogProb, sampleLogisticMixture, splitMixtureParams, mixtureParamsPerPixel, MIN_LOG_SCALE } from './mixture.js';

export type LikelihoodConfig =
  | { kind: 'bernoulli' }
  | { kind: 'categorical'; levels: number }
  | { kind: 'logistic-mixture'; nrMix: number; levels?: number }
  /** k colours of C channels, flat [k·C] in 0..255; [] until fitted (arpix palette fit, or train). */
  | { kind: 'palette'; k: number; colours: number[] };

export interface Likelihood {
  readonly config: LikelihoodConfig;
  readonly channels: number;
  /** Number of values each channel takes: 2 for Bernoulli, else the quantisation levels. */
  readonly levels: number;
  readonly paramsPerPixel: number;
  /** True when channel c's parameters may depend on the pixel's earlier channels (sampled one channel at a time). */
  readonly perChannel: boolean;
  /**
   * What log p is of: 'image' — the 8-bit values, so bits/dim counts H·W·C dimensions and compares
   * across models; 'tokens' — a palette's token sequence, one per pixel (nats per token).
   */
  readonly measures: 'image' | 'tokens';
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

/**
 * One categorical draw per row of params [rows, p] over params[at … at + levels) at this
 * temperature (the categoricalDraw op: the same indices on every backend); one uniform per row.
 */
function drawCategorical(params: Float32Array | Float64Array, rows: number, p: number, at: number, levels: number, temperature: number, generator: Generator): Int32Array {
  const u = new Float32Array(rows);
  generator.uniform(u);
  const logits = new Tensor(params.subarray(0, rows * p), [rows, p]);
  return categoricalDraw(logits, new Tensor(u, [rows]), at, levels, temperature).data as Int32Array;
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
        config, channels, levels: 2, paramsPerPixel: channels, perChannel: true, measures: 'image',
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
        config, channels, levels, paramsPerPixel: channels * levels, perChannel: true, measures: 'image',
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
          const drawn = drawCategorical(params, rows, channels * levels, channel * levels, levels, temperature, generator);
          for (let r = 0; r < rows; r++) out[r * channels + channel] = drawn[r]!;
        },
      };
    }
    case 'logistic-mixture': {
      const levels = config.levels ?? 256;
      const nrMix = config.nrMix;
      if (!Number.isInteger(nrMix) || nrMix < 1) throw new ArgumentError('logistic mixture', 'nrMix', `must be a positive integer, got ${nrMix}`);
      const p = mixtureParamsPerPixel(channels, nrMix);
      return {
        config, channels, levels, paramsPerPixel: p, perChannel: false, measures: 'image',
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
    case 'palette':
      return createPaletteHead(config, channels);
    default:
      throw new ArgumentError('likelihood', 'kind', `must be 'bernoulli', 'categorical', 'logistic-mixture' or 'palette', got '${(config as { kind: string }).kind}'`);
  }
}

/** Bits per dimension from per-image log-likelihoods in nats. */
export function bitsPerDim(logProb: Tensor, dims: number): Tensor {
  return mul(logProb, -1 / (dims * Math.LN2));
}

/** The palette head: the likelihood of a token sequence, decoded to colours when sampling. */
export interface PaletteHead extends Likelihood {
  readonly measures: 'tokens';
  /** The palette, or null until fitted. */
  readonly palette: Palette | null;
  /** Tokens int32 [N, H, W] (nearest colours) of images int32 [N, H, W, C]. */
  tokens(images: Tensor): Tensor;
  /** log p of token sequences in nats: logits [N, H, W, k], tokens int32 [N, H, W] → [N]. */
  tokenLogProb(params: Tensor, tokens: Tensor): Tensor;
}

export function isPaletteHead(l: Likelihood): l is PaletteHead {
  return l.config.kind === 'palette';
}

function createPaletteHead(config: Extract<LikelihoodConfig, { kind: 'palette' }>, channels: number): PaletteHead {
  const k = config.k;
  if (!Number.isInteger(k) || k < 2 || k > 32767) throw new ArgumentError('palette', 'k', `must be an integer in 2..32767, got ${k}`);
  if (!Array.isArray(config.colours) || (config.colours.length !== 0 && config.colours.length !== k * channels)) {
    throw new ArgumentError('palette', 'colours', `must be k·C = ${k * channels} values (or [] before fitting), got ${Array.isArray(config.colours) ? config.colours.length : typeof config.colours}`);
  }
  const palette = config.colours.length > 0 ? makePalette(config.colours, channels, k) : null;
  let index: PaletteIndex | null = null;
  const fitted = (op: string): Palette => {
    if (palette === null) throw new ArgumentError(op, 'palette', `is not fitted yet (likelihood.colours is []); run \`arpix palette fit\` and pass --model.likelihood.colours=@FILE, or train, which fits it on the training pixels`);
    return palette;
  };
  const tokenLogProb = (params: Tensor, tokens: Tensor): Tensor => {
    const [n, h, w] = tokens.shape as [number, number, number];
    if (params.rank !== 4 || params.shape[0] !== n || params.shape[1] !== h || params.shape[2] !== w || params.shape[3] !== k) {
      throw new ShapeError('palette', 'params', `must be [${n}, ${h}, ${w}, ${k}], got ${fmtShape(params.shape)}`, [params.shape, tokens.shape]);
    }
    return neg(sum(crossEntropy(params, tokens, 'none'), [1, 2]));
  };
  return {
    config, channels, levels: 256, paramsPerPixel: k, perChannel: false, measures: 'tokens', palette,
    tokens(images) {
      const p = fitted('palette');
      if (images.dtype !== 'int32' || images.rank !== 4 || images.shape[3] !== channels) {
        throw new ShapeError('palette', 'images', `must be int32 [N, H, W, ${channels}], got ${images.dtype} ${fmtShape(images.shape)}`, [images.shape]);
      }
      index ??= new PaletteIndex(p);
      const [n, h, w] = images.shape as [number, number, number];
      return new Tensor(index.tokens(images.data as Int32Array), [n, h, w]);
    },
    tokenLogProb,
    logProb(params, images) {
      checkImages('palette', params, images, channels, k);
      return tokenLogProb(params, this.tokens(images));
    },
    // A token is a whole pixel: its log p goes to the pixel's first channel, the others hold 0,
    // so the elements still sum to logProb.
    elementLogProb(params, images) {
      checkImages('palette', params, images, channels, k);
      const perPixel = neg(crossEntropy(params, this.tokens(images), 'none')).data; // [N, H, W]
      const [n, h, w] = images.shape as [number, number, number];
      const out = new Float32Array(n * h * w * channels);
      for (let i = 0; i < n * h * w; i++) out[i * channels] = perPixel[i]!;
      return new Tensor(out, [n, h, w, channels]);
    },
    sample(params, rows, _channel, generator, temperature, out) {
      const { colours } = fitted('sample');
      const drawn = drawCategorical(params, rows, k, 0, k, temperature, generator);
      for (let r = 0; r < rows; r++) {
        const j = drawn[r]!;
        for (let ch = 0; ch < channels; ch++) out[r * channels + ch] = colours[j * channels + ch]!;
      }
    },
  };
}
