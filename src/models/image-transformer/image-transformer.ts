// Image Transformer (Parmar et al. 2018, "Image Transformer"), as the paper and tensor2tensor's
// image_transformer define it: self-attention over an image read as a sequence, with local
// attention to keep the cost linear in the image size.
//
// - Per-channel heads (categorical, bernoulli): every sub-pixel is a position, in raster order with
//   channels innermost (32×32×3 → 3,072 positions). Each channel has its own table of `levels`
//   embeddings (one [C·levels, D] parameter, channel c's table in rows c·levels …); one shared
//   linear head gives every position its channel's logits, which is exactly the head's
//   channel-major [N, H, W, C·levels] layout with no copy.
// - The discretised logistic mixture (the paper's second variant): one position per pixel, its C
//   values in [−1, 1] mapped to D by a linear layer; the head gives the pixel's mixture.
// - The sequence is shifted right by one position (zeros first), so position s carries the value
//   of s − 1 and the position encoding of s: it sees only earlier elements.
// - 2-D sinusoidal positions (tensor2tensor's timing signal over two axes): half the channels
//   encode the row, half the column (column·C + channel for sub-pixels).
// - Post-norm blocks (arpix/nn's TransformerBlock): x = LN(x + drop(attn(x))),
//   x = LN(x + drop(W₂ relu(W₁ x))).
// - A class embedding (and a linear map of a condition vector h) is added at every position.
//
// Attention (the fused attention op): 'local1d' — query blocks of blockLength
// positions reading their own block causally and the memoryLength positions before it; 'local2d'
// — the sequence as a grid of H rows × W·C columns cut into query blocks of blockHeight rows ×
// blockWidth columns, each reading a top flange of memoryHeight rows (left, above and right of the
// block), a left flange of memoryWidth columns and its own block, up to the query. The paper
// generates its tall blocks one after the other (block-raster order); arpix keeps the raster order
// its likelihood, samplers, completion and serve's row-by-row streaming share, so the blocks are
// the same rectangles visited in raster order (the op's order 'raster'): a query also sees the
// earlier rows of the right flange beside its block, which raster order has already generated.
// 'causal' — full causal attention; local1d falls back to it when the sequence fits in one block.

import { ArgumentError } from '../../errors.js';
import { Dropout, Embedding, Linear, ModuleList, TransformerBlock, sinusoidalPositionEncoding } from '../../nn/index.js';
import { add, embedding, reshape, rightShift, type AttentionPatternInput } from '../../ops/index.js';
import type { Generator } from '../../tensor/random.js';
import { Tensor } from '../../tensor/tensor.js';
import { ConditionProjection } from '../core/condition.js';
import { AutoregressiveModel, type BaseModelConfig, type Condition } from '../core/model.js';

export type ImageTransformerAttention = 'local1d' | 'local2d' | 'causal';

export interface ImageTransformerConfig extends BaseModelConfig {
  kind: 'image-transformer';
  /** Transformer blocks. */
  layers: number;
  /** Model width D (embeddings, attention, residual stream). */
  hiddenSize: number;
  /** Attention heads; must divide hiddenSize. */
  heads: number;
  /** Hidden width of the ReLU feed-forward. */
  ffSize: number;
  /** Dropout after the embeddings and on each sub-layer's output before the residual add. */
  dropout: number;
  /** Attention pattern: 'local1d', 'local2d' or 'causal'. */
  attention: ImageTransformerAttention;
  /** local1d: positions per query block (l_q). */
  blockLength: number;
  /** local1d: positions before the block that it also reads (l_m − l_q in the paper). */
  memoryLength: number;
  /** local2d: query block height in rows; divides H. */
  blockHeight: number;
  /** local2d: query block width in grid columns (sub-pixels for per-channel heads); divides W·C. */
  blockWidth: number;
  /** local2d: rows above the query block in the memory (the top flange). */
  memoryHeight: number;
  /** local2d: columns left (and right, in the rows above) of the query block in the memory. */
  memoryWidth: number;
}

export const imageTransformerDefaults: Omit<ImageTransformerConfig, 'height' | 'width' | 'channels' | 'likelihood'> = {
  kind: 'image-transformer',
  numClasses: 0,
  conditionDim: 0,
  layers: 6,
  hiddenSize: 256,
  heads: 4,
  ffSize: 1024,
  dropout: 0.1,
  attention: 'local1d',
  blockLength: 256,
  memoryLength: 256,
  blockHeight: 1,
  blockWidth: 32,
  memoryHeight: 4,
  memoryWidth: 16,
};

/**
 * tensor2tensor's 2-D timing signal: [rows · cols, d] with channels [0, 2k) the 1-D sinusoidal
 * encoding (sines then cosines at k geometric timescales from 1 to 10⁴) of the row, [2k, 4k)
 * that of the column, the rest 0 (k = ⌊d/4⌋).
 */
export function positionEncoding2d(rows: number, cols: number, d: number): Float32Array {
  const k = Math.floor(d / 4);
  const byRow = sinusoidalPositionEncoding(rows, 2 * k).data;
  const byCol = sinusoidalPositionEncoding(cols, 2 * k).data;
  const out = new Float32Array(rows * cols * d);
  for (let r = 0; r < rows; r++) {
    for (let c = 0; c < cols; c++) {
      out.set(byRow.subarray(r * 2 * k, (r + 1) * 2 * k), (r * cols + c) * d);
      out.set(byCol.subarray(c * 2 * k, (c + 1) * 2 * k), (r * cols + c) * d + 2 * k);
    }
  }
  return out;
}

function positiveInt(name: string, v: number): void {
  if (!Number.isInteger(v) || v < 1) throw new ArgumentError('image-transformer', name, `must be a positive integer, got ${v}`);
}

export class ImageTransformer extends AutoregressiveModel<ImageTransformerConfig> {
  /** Positions per pixel: C for per-channel heads (sub-pixels), 1 for the mixture. */
  readonly subPositions: number;
  /** Sequence length H·W·subPositions. */
  readonly length: number;
  /** Per-channel heads: value embeddings [C·levels, D]; else null. */
  readonly embed: Embedding | null;
  /** The mixture: a pixel's C values → D; else null. */
  readonly inputProj: Linear | null;
  readonly cond: ConditionProjection;
  readonly inputDrop: Dropout;
  readonly blocks: ModuleList<TransformerBlock>;
  /** D → a position's parameters (levels logits, one Bernoulli logit, or a pixel's mixture). */
  readonly head: Linear;
  /** The 2-D position encodings [L, D] (constant, not state). */
  readonly positions: Tensor;
  /** The attention pattern of the full sequence. */
  readonly pattern: AttentionPatternInput;

  constructor(config: ImageTransformerConfig, generator?: Generator) {
    super(config);
    const { height: h, width: w, channels: c, layers, hiddenSize: d, heads, ffSize } = config;
    for (const [name, v] of [['layers', layers], ['hiddenSize', d], ['heads', heads], ['ffSize', ffSize]] as const) positiveInt(name, v);
    if (d % heads !== 0) throw new ArgumentError('image-transformer', 'heads', `(${heads}) must divide hiddenSize (${d})`);
    if (d < 4) throw new ArgumentError('image-transformer', 'hiddenSize', `must be at least 4 (two axes of sines and cosines in the position encoding), got ${d}`);
    if (!(config.dropout >= 0 && config.dropout < 1)) throw new ArgumentError('image-transformer', 'dropout', `must be in [0, 1), got ${config.dropout}`);
    const perChannel = this.likelihood.perChannel;
    this.subPositions = perChannel ? c : 1;
    this.length = h * w * this.subPositions;
    this.pattern = this.patternFor(config);
    this.embed = this.registerModule('embed', perChannel ? new Embedding(c * this.likelihood.levels, d, { generator }) : null);
    this.inputProj = this.registerModule('inputProj', perChannel ? null : new Linear(c, d, { generator }));
    this.cond = this.registerModule('cond', new ConditionProjection(config.numClasses, config.conditionDim, d, generator));
    this.inputDrop = this.registerModule('inputDrop', new Dropout(config.dropout));
    const block = { heads, ffDim: ffSize, pattern: this.pattern, norm: 'post', activation: 'relu', dropout: config.dropout, generator } as const;
    this.blocks = this.registerModule('blocks', new ModuleList(Array.from({ length: layers }, () => new TransformerBlock(d, block))));
    this.head = this.registerModule('head', new Linear(d, this.paramsPerPixel / this.subPositions, { generator }));
    this.positions = new Tensor(positionEncoding2d(h, w * this.subPositions, d), [this.length, d]);
  }

  /** Integer images [N, H, W, C] → per-channel heads' embedding rows [N, L] (channel c's table starts at c·levels). */
  valueIndices(images: Tensor): Tensor {
    const { channels: c } = this.config;
    const levels = this.likelihood.levels;
    const src = images.data;
    const idx = new Int32Array(src.length);
    for (let i = 0; i < src.length; i++) idx[i] = (i % c) * levels + src[i]!;
    return new Tensor(idx, [images.shape[0]!, this.length]);
  }

  /**
   * The blocks' input: the shifted-right embeddings plus positions and condition, [N, L, D]. Per-channel
   * heads embed `images` (int32; x only gives the batch size), the mixture projects x.
   */
  inputs(images: Tensor | null, x: Tensor, cond: Condition): Tensor {
    const n = x.shape[0]!;
    const d = this.config.hiddenSize;
    const e = this.embed
      ? embedding(this.embed.weight, this.valueIndices(images ?? this.levelsOf(x))) // [N, L, D]
      : reshape(this.inputProj!.forward(x), [n, this.length, d]);
    let h = reshape(rightShift(reshape(e, [n, 1, this.length, d])), [n, this.length, d]);
    h = add(h, this.positions);
    const c = this.cond.forward(cond); // [N, D] or null
    if (c !== null) h = add(h, reshape(c, [n, 1, d]));
    return this.inputDrop.forward(h);
  }

  /** Floats in [−1, 1] back to the integer levels they scale (the embedding reads integers). */
  private levelsOf(x: Tensor): Tensor {
    const k = (this.likelihood.levels - 1) / 2;
    const v = new Int32Array(x.size);
    for (let i = 0; i < v.length; i++) v[i] = Math.round((x.data[i]! + 1) * k);
    return new Tensor(v, x.shape);
  }

  private run(images: Tensor | null, x: Tensor, cond: Condition): Tensor {
    const { height: h, width: w } = this.config;
    let seq = this.inputs(images, x, cond);
    for (const block of this.blocks) seq = block.forward(seq); // [N, L, D]
    return reshape(this.head.forward(seq), [x.shape[0]!, h, w, this.paramsPerPixel]); // [N, H, W, P]
  }

  network(x: Tensor, cond: Condition): Tensor {
    return this.run(null, x, cond);
  }

  /** Per-channel heads embed the integer levels directly, with no round trip through floats. */
  override params(images: Tensor, cond: Condition = {}): Tensor {
    this.checkInputs('params', images, cond);
    return this.run(this.embed ? images : null, this.embed ? images : this.scaleInput(images), cond);
  }

  private patternFor(cfg: ImageTransformerConfig): AttentionPatternInput {
    const gridWidth = cfg.width * this.subPositions;
    switch (cfg.attention) {
      case 'causal': return { kind: 'causal' };
      case 'local1d':
        positiveInt('blockLength', cfg.blockLength);
        if (!Number.isInteger(cfg.memoryLength) || cfg.memoryLength < 0) throw new ArgumentError('image-transformer', 'memoryLength', `must be a non-negative integer, got ${cfg.memoryLength}`);
        return this.length <= cfg.blockLength ? { kind: 'causal' } : { kind: 'local1d', block: cfg.blockLength, memory: cfg.memoryLength };
      case 'local2d':
        positiveInt('blockHeight', cfg.blockHeight);
        positiveInt('blockWidth', cfg.blockWidth);
        if (cfg.height % cfg.blockHeight !== 0) {
          throw new ArgumentError('image-transformer', 'blockHeight', `(${cfg.blockHeight}) must divide the image's height, ${cfg.height} rows`);
        }
        for (const k of ['memoryHeight', 'memoryWidth'] as const) {
          if (!Number.isInteger(cfg[k]) || cfg[k] < 0) throw new ArgumentError('image-transformer', k, `must be a non-negative integer, got ${cfg[k]}`);
        }
        if (gridWidth % cfg.blockWidth !== 0) {
          throw new ArgumentError('image-transformer', 'blockWidth', `(${cfg.blockWidth}) must divide the grid's width, ${gridWidth} columns (width ${cfg.width} × ${this.subPositions} positions per pixel)`);
        }
        return { kind: 'local2d', height: cfg.height, width: gridWidth, blockHeight: cfg.blockHeight, blockWidth: cfg.blockWidth, memoryHeight: cfg.memoryHeight, memoryWidth: cfg.memoryWidth, order: 'raster' };
      default:
        throw new ArgumentError('image-transformer', 'attention', `must be 'local1d', 'local2d' or 'causal', got '${String(cfg.attention)}'`);
    }
  }
}
