// Test helpers of the attention op: a set of patterns over short sequences that cross block
// boundaries and flanges, and the causality check every backend's attention must pass.

import assert from 'node:assert/strict';
import * as ax from '../ops/index.js';
import type { AttentionPatternInput } from '../ops/index.js';
import { Tensor } from '../tensor/tensor.js';

/** [name, sequence length, pattern]. */
export const PATTERNS: [string, number, AttentionPatternInput][] = [
  ['causal', 7, { kind: 'causal' }],
  ['full', 5, { kind: 'full' }],
  ['local1d block 3, memory 3', 10, { kind: 'local1d', block: 3 }],
  ['local1d block 4, memory 2', 11, { kind: 'local1d', block: 4, memory: 2 }],
  ['local2d 4×6 grid, 2×2 blocks, flanges 1×2', 24, { kind: 'local2d', height: 4, width: 6, blockHeight: 2, blockWidth: 2, memoryHeight: 1, memoryWidth: 2 }],
  ['local2d 4×4 grid, 2×2 blocks', 16, { kind: 'local2d', height: 4, width: 4, blockHeight: 2, blockWidth: 2 }],
  ['local2d raster order, 6×4 grid, 3×2 blocks, flanges 2×1', 24, { kind: 'local2d', height: 6, width: 4, blockHeight: 3, blockWidth: 2, memoryHeight: 2, memoryWidth: 1, order: 'raster' }],
];

/**
 * Causality: the gradient of output row i with respect to every input row j > i is exactly zero,
 * for every head and every autoregressive pattern, on whatever backend is active.
 */
export function checkCausality(attentionFn: (qkv: Tensor, pattern: AttentionPatternInput) => Tensor, dtype: 'float32' | 'float64', label: string): void {
  for (const [name, l, pattern] of PATTERNS) {
    if (pattern.kind === 'full') continue;
    const base = ax.randn([2, l, 24], { dtype });
    // Forward: changing every input after position i leaves outputs 0 … i bit for bit the same.
    const before: number[] = ax.noGrad((): Tensor => attentionFn(base, pattern)).toArray();
    for (const i of [0, Math.floor(l / 2), l - 2]) {
      const changed = new Tensor(base.data.slice(), base.shape);
      for (let n = 0; n < 2; n++) for (let k = (n * l + i + 1) * 24; k < (n + 1) * l * 24; k++) changed.data[k] = 5 * Math.sin(k);
      const after: number[] = ax.noGrad((): Tensor => attentionFn(changed, pattern)).toArray();
      for (let n = 0; n < 2; n++) {
        for (let k = n * l * 8; k < (n * l + i + 1) * 8; k++) assert.equal(after[k], before[k], `${label} ${name}: output ${Math.floor(k / 8) % l} changed with inputs after ${i}`);
      }
    }
    for (let i = 0; i < l; i++) {
      const qkv = new Tensor(base.data.slice(), base.shape).requireGrad();
      const y = attentionFn(qkv, pattern);
      ax.sum(ax.slice(y, [0, i, 0], [2, 1, 8])).backward();
      const g = qkv.grad!.data;
      for (let n = 0; n < 2; n++) {
        for (let j = i + 1; j < l; j++) {
          for (let c = 0; c < 24; c++) assert.equal(g[(n * l + j) * 24 + c], 0, `${label} ${name}: output ${i} depends on input ${j} (channel ${c})`);
        }
      }
      // …and it does depend on itself (the test could fail).
      let own = 0;
      for (let c = 0; c < 24; c++) own += Math.abs(g[i * 24 + c]!);
      assert.ok(own > 0, `${label} ${name}: output ${i} has no gradient to its own input`);
    }
  }
}

