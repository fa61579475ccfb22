// What a model costs and sees: parameters, FLOPs per image from its convolutions' actual shapes,
// and the receptive field of the last pixel, measured from gradients rather than derived, so it
// also checks that the network is causal.

import { familyOf } from '../models/families.js';
import type { AutoregressiveModel } from '../models/core/model.js';
import { Conv2d, ConvTranspose2d } from '../nn/index.js';
import { noGrad, slice, sum } from '../ops/index.js';
import { ArgumentError } from '../errors.js';
import { Generator } from '../tensor/random.js';
import { Tensor } from '../tensor/tensor.js';

export interface ConvCost {
  name: string;
  kernel: readonly [number, number];
  outShape: readonly number[];
  /** 2 × multiply-adds computed for one image. */
  flops: number;
  /** Of those, the ones that multiply taps a mask always zeroes. */
  maskedFlops: number;
}

export interface ModelInfo {
  parameters: number;
  /** FLOPs per image the network computes (2 × multiply-adds of its convolutions, or the family's own count). */
  flops: number;
  /** Of `flops`, the ones spent on masked-out (always zero) weights. */
  maskedFlops: number;
  /**
   * For Gated PixelCNN, which skips masked taps by construction: the FLOPs the common masked
   * k×k formulation of the same network would compute. Null for other models.
   */
  maskedFormulationFlops: number | null;
  convs: ConvCost[];
  /**
   * Input pixels the last pixel's output depends on, of the pixels before it, and how it was
   * measured; null when not measured (a discrete-input network on more than 256 pixels, where
   * one forward pass per pixel would cost too much).
   */
  receptiveField: { pixels: number; of: number; measuredBy: 'gradients' | 'interventions' | 'structure' } | null;
}

/** Runs one forward pass on a one-image batch, recording every convolution's output shape. */
export function convCosts(model: AutoregressiveModel): ConvCost[] {
  const { height: h, width: w, channels: c, numClasses } = model.config;
  const costs: ConvCost[] = [];
  const patched: (Conv2d | ConvTranspose2d)[] = [];
  for (const [name, m] of model.namedModules()) {
    if (!(m instanceof Conv2d || m instanceof ConvTranspose2d)) continue;
    const conv = m;
    const count = (x: Tensor, y: Tensor): void => {
      const [kh, kw] = conv.kernelSize;
      const outPixels = y.shape[1]! * y.shape[2]!;
      // A transposed convolution does the same multiply-adds per input pixel as a convolution per output pixel.
      const perPixel = conv instanceof ConvTranspose2d ? x.shape[1]! * x.shape[2]! : outPixels;
      const flops = 2 * perPixel * kh * kw * conv.inChannels * conv.outChannels;
      let masked = 0;
      if (conv instanceof Conv2d && conv.mask) {
        let zeros = 0;
        for (const v of conv.mask.data) if (v === 0) zeros++;
        masked = (flops * zeros) / conv.mask.size;
      }
      costs.push({ name, kernel: [kh, kw], outShape: y.shape, flops, maskedFlops: masked });
    };
    const forward = conv.forward;
    patched.push(conv);
    conv.forward = (x: Tensor): Tensor => {
      const y = forward.call(conv, x);
      count(x, y);
      return y;
    };
    if (conv instanceof Conv2d) {
      // A layer used as one term of a conv2dSum: its output shape from running it alone.
      const term = conv.term;
      (conv as Conv2d).term = (x: Tensor) => {
        count(x, forward.call(conv, x));
        return term.call(conv, x);
      };
    }
  }
  try {
    const images = new Tensor(new Int32Array(h * w * c), [1, h, w, c]);
    const labels = numClasses > 0 ? new Tensor(new Int32Array(1), [1]) : null;
    const d = model.config.conditionDim;
    const hvec = d > 0 ? new Tensor(new Float32Array(d), [1, d]) : null;
    const was = model.training;
    model.eval();
    noGrad(() => model.params(images, { labels, h: hvec }));
    if (was) model.train();
  } finally {
    for (const conv of patched) {
      delete (conv as unknown as { forward?: unknown }).forward;
      delete (conv as unknown as { term?: unknown }).term;
    }
  }
  return costs;
}

/** What the parameters of one pixel depend on, measured from gradients. */
export interface PixelField {
  /** Σ over channels of |d(Σ parameters of the pixel) / d(input)|, per input pixel: [H·W]. */
  influence: Float32Array;
  /** Input pixels with a non-zero gradient. */
  pixels: number;
  /** Pixels before (y, x) in raster order: what a model without blind spots would see. */
  of: number;
}

/**
 * The receptive field of pixel (y, x): the gradient of the sum of its parameters with respect to
 * a random input, per input pixel. Non-zero exactly where the output depends on the input, so it
 * shows blind spots and checks causality (nothing at or after (y, x) but the pixel's own earlier
 * channels).
 */
export function pixelField(model: AutoregressiveModel, y: number, x: number, seed = 0): PixelField {
  const { height: h, width: w, channels: c, numClasses, conditionDim } = model.config;
  if (!Number.isInteger(y) || !Number.isInteger(x) || y < 0 || y >= h || x < 0 || x >= w) {
    throw new ArgumentError('pixelField', 'pixel', `(${y}, ${x}) is outside the ${h}×${w} image`);
  }
  if (familyOf(model.config.kind)?.differentiableInput === false) return pixelFieldByIntervention(model, y, x, seed);
  const input = new Tensor(new Float32Array(h * w * c), [1, h, w, c]);
  new Generator(seed).uniform(input.data as Float32Array);
  for (let i = 0; i < input.size; i++) input.data[i] = input.data[i]! * 2 - 1;
  input.requireGrad();
  const labels = numClasses > 0 ? new Tensor(new Int32Array(1), [1]) : null;
  const hvec = conditionDim > 0 ? new Tensor(new Float32Array(conditionDim), [1, conditionDim]) : null;
  const was = model.training;
  model.eval();
  try {
    const out = model.network(input, { labels, h: hvec });
    const p = out.shape[3]!;
    sum(slice(out, [0, y, x, 0], [1, 1, 1, p])).backward();
  } finally {
    if (was) model.train();
  }
  const g = input.grad!.data;
  const influence = new Float32Array(h * w);
  let pixels = 0;
  for (let q = 0; q < h * w; q++) {
    for (let ch = 0; ch < c; ch++) influence[q] = influence[q]! + Math.abs(g[q * c + ch]!);
    if (influence[q]! > 0) pixels++;
  }
  model.zeroGrad();
  return { influence, pixels, of: y * w + x };
}

/** Pixels of the input that the output at the last pixel depends on, of the pixels before it. */
export function receptiveField(model: AutoregressiveModel, seed = 0): { pixels: number; of: number } {
  const { height: h, width: w } = model.config;
  const { pixels, of } = pixelField(model, h - 1, w - 1, seed);
  return { pixels, of };
}

/**
 * The field of one pixel for a family whose input is discrete (no gradient reaches it): each
 * earlier pixel is changed in an image of its own, in batches, and counted when the pixel's
 * parameters move; the influence is how far they move.
 */
function pixelFieldByIntervention(model: AutoregressiveModel, y: number, x: number, seed: number): PixelField {
  const { height: h, width: w, channels: c, numClasses, conditionDim } = model.config;
  const levels = model.likelihood.levels;
  const d = h * w * c;
  const target = y * w + x;
  const base = new Int32Array(d);
  new Generator(seed).randint(base, 0, levels);
  const influence = new Float32Array(h * w);
  const was = model.training;
  model.eval();
  try {
    const chunk = 32;
    let reference: Float32Array | null = null;
    // Image 0 of the first batch is the unchanged one; then one image per earlier pixel q.
    for (let first = -1; first < target; first += chunk) {
      const qs = Array.from({ length: Math.min(chunk, target - first) }, (_, i) => first + i);
      const n = qs.length;
      const data = new Int32Array(n * d);
      qs.forEach((q, i) => {
        data.set(base, i * d);
        if (q >= 0) for (let ch = 0; ch < c; ch++) data[i * d + q * c + ch] = (base[q * c + ch]! + Math.max(1, Math.floor(levels / 2))) % levels;
      });
      const labels = numClasses > 0 ? new Tensor(new Int32Array(n), [n]) : null;
      const hvec = conditionDim > 0 ? new Tensor(new Float32Array(n * conditionDim), [n, conditionDim]) : null;
      const out = noGrad(() => model.params(new Tensor(data, [n, h, w, c]), { labels, h: hvec }));
      const p = out.shape[3]!;
      const at = (img: number) => out.data.subarray((img * h * w + target) * p, (img * h * w + target + 1) * p) as Float32Array;
      reference ??= Float32Array.from(at(0));
      qs.forEach((q, i) => {
        if (q < 0) return;
        const row = at(i);
        let moved = 0;
        for (let k = 0; k < p; k++) moved += Math.abs(row[k]! - reference![k]!);
        influence[q] = moved;
      });
    }
  } finally {
    if (was) model.train();
  }
  let pixels = 0;
  for (const v of influence) if (v > 0) pixels++;
  return { influence, pixels, of: target };
}

/**
 * The receptive field of the last pixel for a discrete-input family; null past 256 pixels, where
 * one forward pass per pixel would cost too much for `info`.
 */
function receptiveFieldByIntervention(model: AutoregressiveModel, seed = 0): ModelInfo['receptiveField'] {
  const { height: h, width: w } = model.config;
  if (h * w > 256) return null;
  const { pixels, of } = pixelFieldByIntervention(model, h - 1, w - 1, seed);
  return { pixels, of, measuredBy: 'interventions' };
}

export function modelInfo(model: AutoregressiveModel): ModelInfo {
  const family = familyOf(model.config.kind);
  const structural = family?.structuralCost?.(model);
  if (structural) {
    return { parameters: model.numParameters(), flops: structural.flops, maskedFlops: 0, maskedFormulationFlops: null, convs: [], receptiveField: { ...structural.receptiveField, measuredBy: 'structure' } };
  }
  const convs = convCosts(model);
  const flops = family?.flops?.(model.config, model) ?? convs.reduce((a, c) => a + c.flops, 0) + (family?.recurrentFlops?.(model.config) ?? 0);
  return {
    parameters: model.numParameters(),
    flops,
    maskedFlops: convs.reduce((a, c) => a + c.maskedFlops, 0),
    maskedFormulationFlops: familyOf(model.config.kind)?.maskedFormulationFlops?.(model.config, convs) ?? null,
    convs,
    receptiveField: family?.differentiableInput === false ? receptiveFieldByIntervention(model) : { ...receptiveField(model), measuredBy: 'gradients' },
  };
}
