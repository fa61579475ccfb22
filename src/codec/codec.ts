// The model as a lossless codec: an image's values, element by element in the model's order, coded
// with the model's conditionals p(x_i | x_<i) by rANS (rans.ts). Encoder and decoder run the same
// cached stepper (what sampling runs) with the same inputs in the same layout, so both compute the
// same parameters bit for bit, and turn them into the same integer frequencies (frequencies.ts):
//
// - images go through the stepper in blocks of a fixed size (`block`, recorded in the file), the
//   last block padded with images that are not coded, so the numbers never depend on how many
//   images a call holds;
// - the encoder codes the blocks last first (rANS is last-in first-out), so it holds one block's
//   symbols at a time, and the decoder reads them first to last from one stream.
//
// The decoder's end state must equal the encoder's start (RansDecoder.end), and the caller checks a
// digest of the decoded values (format.ts): a stream decoded with other numbers is refused, never
// returned.

import { sha256 } from '../env.js';
import { ArgumentError } from '../errors.js';
import { drawExp, isPaletteHead, type Likelihood } from '../likelihoods/index.js';
import type { AutoregressiveModel } from '../models/core/model.js';
import { sample } from '../models/sampling/index.js';
import { Tensor } from '../tensor/tensor.js';
import { MixtureTables, quantise, softmaxWeights } from './frequencies.js';
import { RansDecoder, RansEncoder, symbolOf } from './rans.js';

/** Images per stepper call, unless the file says otherwise. */
export const DEFAULT_BLOCK = 16;

/** Chooses a symbol from a cumulative table cum[0..k]: the encoder's is the known value, the decoder's the stream's. */
type Pick = (cum: Float64Array, k: number, row: number, channel: number) => number;

/**
 * The draw of one pixel for every row of a block: fills out[r·C + ch] with the values `pick`
 * chooses from the head's tables. Rows at or past `rows` are padding: set to 0, not coded.
 */
type PixelCoder = (params: Float32Array, count: number, pass: number, out: Int32Array, pick: Pick) => void;

function pixelCoder(head: Likelihood): PixelCoder {
  const C = head.channels;
  const cfg = head.config;
  switch (cfg.kind) {
    case 'bernoulli': {
      const w = new Float64Array(2);
      const cum = new Float64Array(3);
      return (params, count, pass, out, pick) => {
        for (let r = 0; r < count; r++) {
          const logit = params[r * C + pass]!;
          // p(1) / p(0) = e^logit, as two weights whose larger is 1.
          if (logit > 0) { w[0] = drawExp(-logit); w[1] = 1; } else { w[0] = 1; w[1] = drawExp(logit); }
          quantise(w, 2, cum);
          out[r * C + pass] = pick(cum, 2, r, pass);
        }
      };
    }
    case 'categorical': {
      const levels = cfg.levels;
      const w = new Float64Array(levels);
      const cum = new Float64Array(levels + 1);
      return (params, count, pass, out, pick) => {
        for (let r = 0; r < count; r++) {
          softmaxWeights(params, r * C * levels + pass * levels, levels, w);
          quantise(w, levels, cum);
          out[r * C + pass] = pick(cum, levels, r, pass);
        }
      };
    }
    case 'logistic-mixture': {
      const levels = cfg.levels ?? 256;
      const tables = new MixtureTables(C, cfg.nrMix, levels);
      const w = new Float64Array(levels);
      const cum = new Float64Array(levels + 1);
      const P = head.paramsPerPixel;
      return (params, count, _pass, out, pick) => {
        for (let r = 0; r < count; r++) {
          const xs = out.subarray(r * C, r * C + C);
          for (let ch = 0; ch < C; ch++) {
            tables.weights(params, r * P, ch, xs, w);
            quantise(w, levels, cum);
            xs[ch] = pick(cum, levels, r, ch);
          }
        }
      };
    }
    case 'palette': {
      if (!isPaletteHead(head) || head.palette === null) throw new ArgumentError('codec', 'palette', 'is not fitted: the model has no colours to code');
      const { k, colours } = { k: cfg.k, colours: head.palette.colours };
      const w = new Float64Array(k);
      const cum = new Float64Array(k + 1);
      return (params, count, _pass, out, pick) => {
        for (let r = 0; r < count; r++) {
          softmaxWeights(params, r * k, k, w);
          quantise(w, k, cum);
          const t = pick(cum, k, r, 0);
          for (let ch = 0; ch < C; ch++) out[r * C + ch] = colours[t * C + ch]!;
        }
      };
    }
  }
}

/** What the values of each coded element are: the image's values, or for a palette head its tokens. */
interface Source {
  /** The value (or token) of element (image i, pixel q, channel ch). */
  at(i: number, q: number, ch: number): number;
}

function sourceOf(head: Likelihood, images: Tensor): Source {
  const [, h, w, c] = images.shape as [number, number, number, number];
  if (isPaletteHead(head)) {
    const tokens = head.tokens(images).data as Int32Array;
    return { at: (i, q) => tokens[i * h * w + q]! };
  }
  const d = images.data as Int32Array;
  return { at: (i, q, ch) => d[(i * h * w + q) * c + ch]! };
}

export interface CodecOptions {
  /** Images per stepper call (the numeric layout; the decoder must use the encoder's). */
  block?: number;
  /** Class labels, one per image, for a class-conditional model: coded at the stream's start, each uniform over the classes. */
  labels?: Int32Array | null;
  /** Called after each block with the images done so far. */
  onBlock?: (done: number, total: number) => void;
}

function blockLabels(labels: Int32Array | null | undefined, start: number, count: number, block: number): Int32Array | null {
  if (!labels) return null;
  const out = new Int32Array(block);
  out.set(labels.subarray(start, start + count));
  return out;
}

function checkBlock(block: number): void {
  if (!Number.isInteger(block) || block < 1 || block > 4096) throw new ArgumentError('codec', 'block', `must be an integer in 1..4096, got ${block}`);
}

/**
 * Runs the model's cached stepper over one block, `coder` choosing every value; returns the block's
 * values [block, H, W, C]. `at` is told the pixel each call is about.
 */
function runBlock(model: AutoregressiveModel, block: number, count: number, labels: Int32Array | null, coder: PixelCoder, pick: Pick, at: (y: number, x: number) => void): Tensor {
  return sample(model, {
    n: block, labels: labels ? Array.from(labels) : null, method: 'cached',
    draw: (params, _rows, pass, out, y, x) => {
      at(y, x);
      // Padding rows stay 0 on both sides, and a pixel's channels start from 0.
      if (pass === 0) out.fill(0);
      coder(params, count, pass, out, pick);
    },
  });
}

export interface Encoded {
  stream: Uint8Array;
  /** Σ −log₂ of the quantised probabilities of every coded element: the stream's ideal length in bits. */
  idealBits: number;
}

/** Codes images int32 [N, H, W, C] (values the model takes) with the model's conditionals. */
export function encodeImages(model: AutoregressiveModel, images: Tensor, opts: CodecOptions = {}): Encoded {
  const block = opts.block ?? DEFAULT_BLOCK;
  checkBlock(block);
  const [n, , w] = images.shape as [number, number, number, number];
  model.checkInputs('compress', images, opts.labels ? { labels: new Tensor(opts.labels, [n]) } : {});
  const head = model.likelihood;
  const coder = pixelCoder(head);
  const source = sourceOf(head, images);
  const enc = new RansEncoder();
  const blocks = Math.ceil(n / block);
  let done = 0;
  // Last block first: rANS decodes in reverse, so the decoder reads block 0 first.
  for (let b = blocks - 1; b >= 0; b--) {
    const start = b * block;
    const count = Math.min(block, n - start);
    let q = 0;
    const pick: Pick = (cum, _k, r, ch) => {
      const v = source.at(start + r, q, ch);
      enc.put(cum[v]!, cum[v + 1]! - cum[v]!);
      return v;
    };
    runBlock(model, block, count, blockLabels(opts.labels, start, count, block), coder, pick, (y, x) => (q = y * w + x));
    enc.flushBlock();
    done += count;
    opts.onBlock?.(done, n);
  }
  if (opts.labels) {
    // Flushed last, so decoded first: the decoder knows every block's labels before its pixels.
    const cum = uniformTable(model.config.numClasses);
    for (const l of opts.labels) enc.put(cum[l]!, cum[l + 1]! - cum[l]!);
    enc.flushBlock();
  }
  return { stream: enc.finish(), idealBits: enc.idealBits };
}

/** The cumulative table of k equally likely symbols. */
function uniformTable(k: number): Float64Array {
  const cum = new Float64Array(k + 1);
  quantise(new Float64Array(k).fill(1), k, cum);
  return cum;
}

export interface Decoded {
  images: Tensor;
  /** The class labels the stream carried (class-conditional models), else null. */
  labels: Int32Array | null;
}

/**
 * Decodes `n` images of the model's shape (and their labels, for a class-conditional model) from a
 * stream `encodeImages` wrote with the same model and block. `file` names the stream in errors.
 * The caller checks the values' digest.
 */
export function decodeImages(model: AutoregressiveModel, stream: Uint8Array, n: number, file: string, opts: Omit<CodecOptions, 'labels'> = {}): Decoded {
  const block = opts.block ?? DEFAULT_BLOCK;
  checkBlock(block);
  const { height: h, width: w, channels: c } = model.config;
  const coder = pixelCoder(model.likelihood);
  const dec = new RansDecoder(stream, file);
  const images = new Int32Array(n * h * w * c);
  const pick: Pick = (cum, k) => {
    const s = symbolOf(cum, k, dec.peek());
    dec.advance(cum[s]!, cum[s + 1]! - cum[s]!);
    return s;
  };
  let labels: Int32Array | null = null;
  const classes = model.config.numClasses;
  if (classes > 0) {
    const cum = uniformTable(classes);
    labels = Int32Array.from({ length: n }, () => pick(cum, classes, 0, 0));
  }
  for (let start = 0; start < n; start += block) {
    const count = Math.min(block, n - start);
    const values = runBlock(model, block, count, blockLabels(labels, start, count, block), coder, pick, () => {});
    images.set(values.data.subarray(0, count * h * w * c), start * h * w * c);
    opts.onBlock?.(start + count, n);
  }
  dec.end();
  return { images: new Tensor(images, [n, h, w, c]), labels };
}

/** 128 bits of the SHA-256 of image values as bytes (every value is below 256), then of the labels: what a file records of what it holds. */
export function valuesDigest(images: Tensor, labels?: Int32Array | null): string {
  const h = sha256().update(Uint8Array.from(images.data as Int32Array));
  if (labels) h.update(new Uint8Array(labels.buffer, labels.byteOffset, labels.byteLength));
  return h.hex().slice(0, 32);
}
