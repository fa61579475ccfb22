// Cached sampling for the Image Transformer: each layer keeps the keys and values of the positions
// its next queries may read (a sliding window, where TransformerBlock.step keeps the whole sequence:
// the paper's CIFAR-10 model at batch 16 would hold 2.4 GB of keys and values, its window 0.4 GB), so a new position (a sub-pixel, or a pixel for the mixture) costs
// one position's projections, feed-forward and one attention row per layer — not a forward pass
// over the whole sequence.
//
// The caches hold a window of the sequence, positions [base, base + T): the whole sequence for
// causal attention, the query block and its memory for local 1-D (T = block + memory), the query
// row and its top flange for local 2-D (T = (memoryHeight + 1) grid rows). When the next position
// leaves the window the kept part slides to the front. Inside the window every cached key the
// original pattern allows is exactly the window's own pattern at position p − base: causal for
// local 1-D (every key of the window up to p), and the same local 2-D grid pattern, fewer rows.
// For local 2-D the window starts at a block boundary — ⌈memoryHeight / blockHeight⌉ block rows
// above the query's block — so the window's blocks are the grid's blocks and its top flange reaches
// no row outside the window.

import type { ImageTransformer } from './image-transformer.js';
import { add, attentionStep, kvCacheWrite, type AttentionPatternInput } from '../../ops/index.js';
import { Tensor, arrayFor } from '../../tensor/tensor.js';
import type { Stepper } from '../sampling/options.js';
import type { SampleSetup } from '../sampling/options.js';

interface Window {
  /** Positions the caches hold. */
  size: number;
  /** First position held while computing position p. */
  base(p: number): number;
  /** The pattern inside the window. */
  pattern: AttentionPatternInput;
}

function windowOf(model: ImageTransformer): Window {
  const length = model.length;
  const p = model.pattern;
  switch (p.kind) {
    case 'local1d': {
      const memory = p.memory ?? p.block;
      return { size: Math.min(length, p.block + memory), base: (q) => Math.max(0, Math.floor(q / p.block) * p.block - memory), pattern: { kind: 'causal' } };
    }
    case 'local2d': {
      if (p.blockHeight > 1 && p.order !== 'raster') throw new Error('image-transformer cached sampler: local2d blocks taller than a row must be in raster order');
      const mh = p.memoryHeight ?? p.blockHeight;
      const above = Math.ceil(mh / p.blockHeight) * p.blockHeight; // rows kept above the block
      const rows = Math.min(p.height, above + p.blockHeight);
      return {
        size: rows * p.width,
        base: (q) => {
          const row = Math.floor(q / p.width);
          return Math.max(0, row - (row % p.blockHeight) - above) * p.width;
        },
        pattern: { ...p, height: rows },
      };
    }
    default:
      return { size: length, base: () => 0, pattern: { kind: 'causal' } };
  }
}

export function transformerCachedStepper(model: ImageTransformer, s: SampleSetup): Stepper {
  const { n, h, w, c } = s;
  const d = model.config.hiddenSize;
  const heads = model.config.heads;
  const sub = model.subPositions;
  const levels = model.likelihood.levels;
  const pp = model.paramsPerPixel;
  const perPosition = pp / sub;
  const blocks = [...model.blocks];
  const win = windowOf(model);
  const t = win.size;
  // Written only through kvCacheWrite and slide, both of which bump the versions (a backend may keep a copy).
  const dtype = blocks[0]?.attn.qkv.weight.dtype ?? 'float32';
  const kTensors = blocks.map(() => new Tensor(arrayFor(dtype, n * t * d), [n, t, d]));
  const vTensors = blocks.map(() => new Tensor(arrayFor(dtype, n * t * d), [n, t, d]));
  const positions = model.positions.data;
  const condition = model.cond.forward(s.cond); // [n, D] or null
  const canvas = Int32Array.from(s.canvas.data); // kept rows for completion, then each sampled value
  const table = model.embed?.weight.data ?? null;
  let base = 0;
  let next = 0; // the next position to compute
  let last: Float32Array | null = null;

  /** The blocks' input at position p: the previous element's embedding, p's position, the condition. */
  function input(p: number): Tensor {
    const x = new Float32Array(n * d);
    if (p > 0 && table) {
      const pixel = Math.floor((p - 1) / sub);
      const ch = (p - 1) % sub;
      for (let i = 0; i < n; i++) {
        const row = ch * levels + canvas[(i * h * w + pixel) * c + ch]!;
        x.set(table.subarray(row * d, (row + 1) * d), i * d);
      }
    }
    let e = new Tensor(x, [n, d]);
    if (p > 0 && !table) {
      const px = new Float32Array(n * c);
      for (let i = 0; i < n * c; i++) px[i] = (2 * canvas[(Math.floor(i / c) * h * w + p - 1) * c + (i % c)]!) / (levels - 1) - 1;
      e = model.inputProj!.forward(new Tensor(px, [n, c]));
    }
    e = add(e, new Tensor(positions.subarray(p * d, (p + 1) * d), [d]));
    return condition ? add(e, condition) : e;
  }

  /** Slides every cache so that position p is inside the window. */
  function slide(p: number): void {
    const nb = win.base(p);
    if (nb === base) return;
    const shift = nb - base;
    for (const cache of [...kTensors, ...vTensors]) {
      const data = cache.data;
      for (let i = 0; i < n; i++) data.copyWithin(i * t * d, (i * t + shift) * d, (i + 1) * t * d);
      cache.bumpVersion(); // every row moved: a backend's copy of the cache is stale
    }
    base = nb;
  }

  /** Runs position p through every layer, filling the caches; returns its parameters [n, P / sub]. */
  function step(p: number): Float32Array {
    slide(p);
    const at = p - base;
    let x = input(p);
    blocks.forEach((block, l) => {
      // The block's post-norm forward at one position, attention read from the window.
      const qkvT = block.attn.qkv.forward(x); // [n, 3D]
      const qkv = qkvT.data;
      const q = arrayFor(dtype, n * d);
      for (let i = 0; i < n; i++) q.set(qkv.subarray(i * 3 * d, i * 3 * d + d), i * d);
      kvCacheWrite(qkvT, kTensors[l]!, vTensors[l]!, at);
      const a = attentionStep(new Tensor(q, [n, d]), kTensors[l]!, vTensors[l]!, at, { heads, pattern: win.pattern });
      x = block.norm1.forward(add(x, block.attn.out.forward(a)));
      x = block.norm2.forward(add(x, block.feedForward(x)));
    });
    return model.head.forward(x).data as Float32Array;
  }

  return {
    beginRow() {},
    pixel(y, x, pass) {
      const p = (y * w + x) * sub + (sub > 1 ? pass : 0);
      if (p < next - 1) throw new Error(`image-transformer cached sampler: position ${p} was asked after ${next - 1}; positions come in order`);
      while (next <= p) last = step(next++);
      const out = new Float32Array(n * pp);
      const offset = sub > 1 ? pass * perPosition : 0;
      for (let i = 0; i < n; i++) out.set(last!.subarray(i * perPosition, (i + 1) * perPosition), i * pp + offset);
      return out;
    },
    sampled(y, x, ch, vals) {
      for (let i = 0; i < n; i++) canvas[((i * h + y) * w + x) * c + ch] = vals[i]!;
    },
  };
}
