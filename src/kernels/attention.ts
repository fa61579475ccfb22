// Attention patterns: which keys j a query at sequence position i may read. Declared once, below
// the op layer, so the reference kernels, the composed oracle's mask and the op's checks agree on
// one definition (the native kernels implement the same predicate in native/attention.cc, and tests
// hold them to it).
//
// Every pattern contains the diagonal (j = i), so no query row is ever fully masked.
//
// - causal: j ≤ i (GPT-style full causal attention).
// - local1d: the sequence is cut into query blocks of `block` positions; a query in block b sees
//   the keys of its own block up to itself and the `memory` positions before the block
//   (tensor2tensor's masked local_attention_1d; memory = block there, one previous block).
// - local2d: the sequence is a height × width grid in BLOCK-RASTER order — blocks of
//   blockHeight × blockWidth taken in raster order, positions inside a block in raster order (the
//   generation order of Image Transformer's 2-D local attention; blockRasterOrder() gives the
//   permutation from image raster order). A query in block (by, bx) sees the keys of the memory
//   rectangle — rows [by·bh − memoryHeight, (by+1)·bh), columns [bx·bw − memoryWidth,
//   (bx+1)·bw + memoryWidth) — that come no later than itself in that order: the flange above
//   (top-left, top, top-right), the flange to the left, and its own block up to itself; never the
//   right flange beside it (tensor2tensor's masked local_attention_2d with its raster mask).
//   With order 'raster' the sequence is the grid in plain raster order (the order every arpix
//   model generates in) and the same rectangles are the query blocks and their memory: a query
//   sees the keys of its block's rectangle that come no later than itself in raster order — the
//   top flange, the left flange and its own block up to its own row, and also the earlier rows of
//   the right flange beside its block (earlier in raster order, so still causal). With blocks one
//   row high the two orders are the same sequence and the same pattern.
// - full: every key (no mask; not autoregressive).

export type AttentionPattern =
  | { readonly kind: 'causal' }
  | { readonly kind: 'full' }
  | { readonly kind: 'local1d'; readonly block: number; readonly memory: number }
  | {
      readonly kind: 'local2d';
      readonly height: number;
      readonly width: number;
      readonly blockHeight: number;
      readonly blockWidth: number;
      readonly memoryHeight: number;
      readonly memoryWidth: number;
      /** The sequence's order: blocks in raster order ('block', the paper's), or the grid in raster order. */
      readonly order: 'block' | 'raster';
    };

/** (row, column) of sequence position i of a local2d pattern. */
export function local2dCoords(p: Extract<AttentionPattern, { kind: 'local2d' }>, i: number): [number, number] {
  if (p.order === 'raster') return [Math.floor(i / p.width), i % p.width];
  const blockSize = p.blockHeight * p.blockWidth;
  const blocksPerRow = p.width / p.blockWidth;
  const b = Math.floor(i / blockSize);
  const r = i - b * blockSize;
  const by = Math.floor(b / blocksPerRow);
  const bx = b - by * blocksPerRow;
  return [by * p.blockHeight + Math.floor(r / p.blockWidth), bx * p.blockWidth + (r % p.blockWidth)];
}

/** Whether the query at sequence position i may attend to the key at position j. */
export function attentionAllowed(p: AttentionPattern, i: number, j: number): boolean {
  switch (p.kind) {
    case 'full': return true;
    case 'causal': return j <= i;
    case 'local1d': return j <= i && j >= Math.floor(i / p.block) * p.block - p.memory;
    case 'local2d': {
      if (j > i) return false;
      const [yi, xi] = local2dCoords(p, i);
      const [yj, xj] = local2dCoords(p, j);
      const by = Math.floor(yi / p.blockHeight) * p.blockHeight;
      const bx = Math.floor(xi / p.blockWidth) * p.blockWidth;
      return yj >= by - p.memoryHeight && yj < by + p.blockHeight && xj >= bx - p.memoryWidth && xj < bx + p.blockWidth + p.memoryWidth;
    }
  }
}

/** The pattern's kind and sizes as integers, the form the native addon takes. */
export function patternCode(p: AttentionPattern): number[] {
  switch (p.kind) {
    case 'causal': return [0];
    case 'full': return [1];
    case 'local1d': return [2, p.block, p.memory];
    case 'local2d': return [3, p.height, p.width, p.blockHeight, p.blockWidth, p.memoryHeight, p.memoryWidth, p.order === 'raster' ? 1 : 0];
  }
}

/** Attributes of the attention kernels. */
export interface AttentionAttrs {
  /** Heads h; the channels C = h·d of q, k, v and the output are head-major (channel = head·d + t). */
  readonly heads: number;
  /** The logits are scale · q·k (1/√d by default in the op). */
  readonly scale: number;
  readonly pattern: AttentionPattern;
  /**
   * Mixed precision (BF16_OPERANDS in contracts.ts says which values are rounded): attention and
   * attentionBackward take bf16 operands in their products and keep the softmax in fp32.
   * attentionStep (cached sampling) ignores it and computes in fp32.
   */
  readonly bf16?: boolean;
}
