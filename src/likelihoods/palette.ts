// Colour palettes for Image GPT (Chen et al. 2020, "Generative Pretraining from Pixels"): each
// pixel becomes one token, the index of its nearest palette colour. A palette is k colours of C
// integer channels in 0..255, stored flat ([k·C], colour-major) in the model's config, so a
// checkpoint carries its own palette.
//
// - k-means (the paper's 512 colours for RGB): k-means++ seeding (Arthur & Vassilvitskii 2007),
//   then full Lloyd iterations or mini-batch updates (Sculley 2010), seeded, on a sample of the
//   training pixels.
// - grey: k evenly spaced grey levels.
// - the identity grey palette (all 256 levels) is not a palette head at all: it is arpix's
//   categorical head, one token per 8-bit grey value.
//
// The palette head's likelihood is of the TOKEN sequence: a pixel's probability is its token's,
// so −log p / (H·W) is nats per token as the paper reports, not bits/dim of the 8-bit image.

import { ArgumentError } from '../errors.js';
import { Generator } from '../tensor/random.js';

export interface Palette {
  /** Colours k. */
  readonly k: number;
  /** Channels C of each colour (1 grey, 3 RGB). */
  readonly channels: number;
  /** [k·C] integer values 0..255, colour-major. */
  readonly colours: Int32Array;
}

/** Checks a flat colour list against k and C and returns it as a palette. */
export function makePalette(colours: ArrayLike<number>, channels: number, k = colours.length / channels): Palette {
  if (!Number.isInteger(channels) || channels < 1) throw new ArgumentError('palette', 'channels', `must be a positive integer, got ${channels}`);
  if (colours.length % channels !== 0) throw new ArgumentError('palette', 'colours', `must hold k·C values, a multiple of C = ${channels}; got ${colours.length}`);
  if (!Number.isInteger(k) || k < 2) throw new ArgumentError('palette', 'k', `must be an integer ≥ 2, got ${k}`);
  if (colours.length !== k * channels) throw new ArgumentError('palette', 'colours', `must hold k·C = ${k}·${channels} = ${k * channels} values, got ${colours.length}`);
  const out = new Int32Array(colours.length);
  for (let i = 0; i < colours.length; i++) {
    const v = colours[i]!;
    if (!Number.isInteger(v) || v < 0 || v > 255) throw new ArgumentError('palette', 'colours', `must be integers in 0..255, got ${v} at ${i}`);
    out[i] = v;
  }
  return { k, channels, colours: out };
}

/** k evenly spaced grey levels from 0 to 255. */
export function greyPalette(k: number): Palette {
  if (!Number.isInteger(k) || k < 2 || k > 256) throw new ArgumentError('greyPalette', 'k', `must be an integer in 2..256, got ${k}`);
  return makePalette(Array.from({ length: k }, (_, i) => Math.round((i * 255) / (k - 1))), 1);
}

/** Index of the colour nearest (squared Euclidean; ties to the lowest index) to values[at..at+C). */
function nearestOf(centres: ArrayLike<number>, k: number, c: number, values: ArrayLike<number>, at: number): [number, number] {
  let best = 0;
  let bestD = Infinity;
  for (let j = 0; j < k; j++) {
    let d = 0;
    for (let ch = 0; ch < c; ch++) {
      const e = values[at + ch]! - centres[j * c + ch]!;
      d += e * e;
    }
    if (d < bestD) {
      bestD = d;
      best = j;
    }
  }
  return [best, bestD];
}

/**
 * Nearest-colour lookup for 8-bit pixels. A pixel's token depends only on its C values, so
 * answers are remembered in a table over all 256^C values (filled lazily; 32 MB for RGB), which
 * makes tokenising a dataset cost one search per distinct colour.
 */
export class PaletteIndex {
  readonly #table: Int16Array;

  constructor(readonly palette: Palette) {
    if (palette.channels > 3) throw new ArgumentError('PaletteIndex', 'channels', `must be 1..3, got ${palette.channels}`);
    this.#table = new Int16Array(256 ** palette.channels).fill(-1);
  }

  /** Tokens [n] of n pixels given as values [n·C] in 0..255. */
  tokens(values: ArrayLike<number>, out = new Int32Array(values.length / this.palette.channels)): Int32Array {
    const { k, channels: c, colours } = this.palette;
    for (let i = 0; i < out.length; i++) {
      let code = 0;
      for (let ch = 0; ch < c; ch++) {
        const v = values[i * c + ch]!;
        if (!(v >= 0 && v <= 255 && Number.isInteger(v))) throw new ArgumentError('palette', 'images', `contain the value ${v}; a palette maps 8-bit values 0..255`);
        code = code * 256 + v;
      }
      let t = this.#table[code]!;
      if (t < 0) t = this.#table[code] = nearestOf(colours, k, c, values, i * c)[0];
      out[i] = t;
    }
    return out;
  }
}

export interface KMeansOptions {
  /** Colours k. */
  k: number;
  /** Seeds the pixel sample, the k-means++ draws and the mini-batches (default 0). */
  seed?: number;
  /** Pixels sampled (with replacement) from the data to fit on (default 200 000; 0 = all). */
  samplePixels?: number;
  /** Iterations: Lloyd passes over the sample, or mini-batch steps (default 30 / 300). */
  iterations?: number;
  /** 'lloyd' (full passes) or 'minibatch' (default lloyd). */
  method?: 'lloyd' | 'minibatch';
  /** Mini-batch size (default 4096). */
  batchSize?: number;
  /** Called after every iteration with its index (1-based), the total and the mean squared distance. */
  onIteration?: (iteration: number, total: number, inertia: number) => void;
}

export interface KMeansResult {
  /** Centres [k·C] as floats (before rounding). */
  centres: Float64Array;
  /** The palette: centres rounded to integers, sorted by brightness (sum of channels). */
  palette: Palette;
  /** Mean squared distance of the sample to its nearest centre, at the end. */
  inertia: number;
  iterations: number;
}

function uniformDraws(g: Generator, n: number): Float64Array {
  const u = new Float64Array(n);
  g.uniform(u);
  return u;
}

/** k-means++: the first centre uniformly, each next one with probability ∝ squared distance to the nearest centre so far. */
function kmeansPlusPlus(x: Float64Array, n: number, c: number, k: number, g: Generator): Float64Array {
  const centres = new Float64Array(k * c);
  const d2 = new Float64Array(n).fill(Infinity);
  const u = uniformDraws(g, k);
  let pick = Math.min(n - 1, Math.floor(u[0]! * n));
  for (let j = 0; j < k; j++) {
    for (let ch = 0; ch < c; ch++) centres[j * c + ch] = x[pick * c + ch]!;
    let total = 0;
    for (let i = 0; i < n; i++) {
      let d = 0;
      for (let ch = 0; ch < c; ch++) {
        const e = x[i * c + ch]! - centres[j * c + ch]!;
        d += e * e;
      }
      if (d < d2[i]!) d2[i] = d;
      total += d2[i]!;
    }
    if (j + 1 === k) break;
    if (total === 0) {
      // Fewer distinct points than centres: the rest start on uniformly drawn points.
      pick = Math.min(n - 1, Math.floor(u[j + 1]! * n));
      continue;
    }
    let r = u[j + 1]! * total;
    pick = n - 1;
    for (let i = 0; i < n; i++) {
      r -= d2[i]!;
      if (r < 0) {
        pick = i;
        break;
      }
    }
  }
  return centres;
}

/**
 * Fits a palette of k colours to pixels [n·C] (values 0..255) by k-means: k-means++ seeding, then
 * Lloyd or mini-batch iterations. The same seed gives the same palette.
 */
export function fitPalette(pixels: ArrayLike<number>, channels: number, opts: KMeansOptions): KMeansResult {
  const op = 'fitPalette';
  const { k } = opts;
  const c = channels;
  if (!Number.isInteger(k) || k < 2) throw new ArgumentError(op, 'k', `must be an integer ≥ 2, got ${k}`);
  if (!Number.isInteger(c) || c < 1 || pixels.length % c !== 0) throw new ArgumentError(op, 'channels', `(${c}) must be a positive integer dividing the ${pixels.length} values`);
  const total = pixels.length / c;
  if (total < k) throw new ArgumentError(op, 'pixels', `are ${total}, fewer than the k = ${k} colours asked for`);
  const method = opts.method ?? 'lloyd';
  if (method !== 'lloyd' && method !== 'minibatch') throw new ArgumentError(op, 'method', `must be 'lloyd' or 'minibatch', got '${String(method)}'`);
  const iterations = opts.iterations ?? (method === 'lloyd' ? 30 : 300);
  if (!Number.isInteger(iterations) || iterations < 0) throw new ArgumentError(op, 'iterations', `must be a non-negative integer, got ${iterations}`);
  const g = new Generator(opts.seed ?? 0);

  // The sample the centres are fitted on.
  const want = opts.samplePixels ?? 200_000;
  const n = want > 0 && want < total ? want : total;
  const x = new Float64Array(n * c);
  if (n === total) for (let i = 0; i < n * c; i++) x[i] = pixels[i]!;
  else {
    const picks = new Int32Array(n);
    g.randint(picks, 0, total);
    for (let i = 0; i < n; i++) for (let ch = 0; ch < c; ch++) x[i * c + ch] = pixels[picks[i]! * c + ch]!;
  }

  const centres = kmeansPlusPlus(x, n, c, k, g);
  const assign = new Int32Array(n);
  const assignAll = (): number => {
    let inertia = 0;
    for (let i = 0; i < n; i++) {
      const [j, d] = nearestOf(centres, k, c, x, i * c);
      assign[i] = j;
      inertia += d;
    }
    return inertia / n;
  };
  let inertia = assignAll();
  if (method === 'lloyd') {
    const sums = new Float64Array(k * c);
    const counts = new Float64Array(k);
    for (let it = 1; it <= iterations; it++) {
      sums.fill(0);
      counts.fill(0);
      for (let i = 0; i < n; i++) {
        const j = assign[i]!;
        counts[j]!++;
        for (let ch = 0; ch < c; ch++) sums[j * c + ch]! += x[i * c + ch]!;
      }
      // An empty cluster restarts on the point farthest from its centre, so no colour is wasted.
      for (let j = 0; j < k; j++) {
        if (counts[j]! > 0) {
          for (let ch = 0; ch < c; ch++) centres[j * c + ch] = sums[j * c + ch]! / counts[j]!;
          continue;
        }
        let far = 0;
        let farD = -1;
        for (let i = 0; i < n; i++) {
          const [, d] = nearestOf(centres, k, c, x, i * c);
          if (d > farD) {
            farD = d;
            far = i;
          }
        }
        for (let ch = 0; ch < c; ch++) centres[j * c + ch] = x[far * c + ch]!;
      }
      const before = inertia;
      inertia = assignAll();
      opts.onIteration?.(it, iterations, inertia);
      if (inertia === before) {
        opts.onIteration?.(iterations, iterations, inertia);
        break;
      }
    }
  } else {
    const batch = Math.min(n, opts.batchSize ?? 4096);
    const counts = new Float64Array(k);
    const picks = new Int32Array(batch);
    const nearest = new Int32Array(batch);
    for (let it = 1; it <= iterations; it++) {
      g.randint(picks, 0, n);
      for (let b = 0; b < batch; b++) nearest[b] = nearestOf(centres, k, c, x, picks[b]! * c)[0];
      // Each centre moves toward its points with a per-centre learning rate 1/count (Sculley 2010).
      for (let b = 0; b < batch; b++) {
        const j = nearest[b]!;
        const eta = 1 / ++counts[j]!;
        for (let ch = 0; ch < c; ch++) centres[j * c + ch]! += eta * (x[picks[b]! * c + ch]! - centres[j * c + ch]!);
      }
      if (it % 50 === 0 || it === iterations) opts.onIteration?.(it, iterations, assignAll());
    }
    inertia = assignAll();
  }

  // Round to 8-bit colours and order by brightness (then by channel values) for display.
  const order = [...Array(k).keys()].map((j) => Array.from({ length: c }, (_, ch) => Math.min(255, Math.max(0, Math.round(centres[j * c + ch]!)))));
  const brightness = (v: number[]) => v.reduce((s, x) => s + x, 0);
  order.sort((a, b) => {
    if (brightness(a) !== brightness(b)) return brightness(a) - brightness(b);
    const i = a.findIndex((v, ch) => v !== b[ch]);
    return i < 0 ? 0 : a[i]! - b[i]!;
  });
  return { centres, palette: makePalette(order.flat(), c), inertia, iterations };
}
