// lstmScan, the fused recurrence: equal to its composed form (slices, matmuls, gates) forward and
// backward, gradients against finite differences, and a clear error for every bad argument.

import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import * as ax from './index.js';
import { assertClose, gradcheck, rnd64 } from '../testing/gradcheck.js';
import type { Tensor } from '../tensor/tensor.js';

/** xg, w, h0, c0 for T steps, B images, L positions, H channels and a k-tap state-to-state kernel. */
function inputs(t: number, b: number, l: number, h: number, k: number, seed: number): Tensor[] {
  return [rnd64([t, b, l, 4 * h], seed), ax.mul(rnd64([k, h, 4 * h], seed + 1), 0.5), rnd64([h], seed + 2), rnd64([h], seed + 3)];
}

// Row LSTM: k = 3 centred (pad 1); Diagonal BiLSTM: k = 2 reading l − 1 and l (pad 1); and k = 1.
const geometries: [string, number, number][] = [['k = 3, pad 1', 3, 1], ['k = 2, pad 1', 2, 1], ['k = 1, pad 0', 1, 0], ['k = 3, pad 0', 3, 0]];

describe('lstmScan', () => {
  for (const [name, k, pad] of geometries) {
    test(`fused = composed, forward and every gradient: [T 4, B 2, L 5, H 3], ${name}`, () => {
      const xs = inputs(4, 2, 5, 3, k, 7);
      const run = (f: typeof ax.lstmScan) => {
        const leaves = xs.map((x) => x.detach().requireGrad());
        const y = f(leaves[0]!, leaves[1]!, leaves[2]!, leaves[3]!, pad);
        ax.sum(ax.mul(y, rnd64(y.shape, 99))).backward();
        return [y, ...leaves.map((x) => x.grad!)];
      };
      const fused = run(ax.lstmScan);
      const composed = run(ax.lstmScanComposed);
      fused.forEach((a, i) => assertClose(a.data, composed[i]!.data, { atol: 1e-12, rtol: 1e-10, label: ['h', 'dxg', 'dw', 'dh0', 'dc0'][i] }));
    });
    test(`gradcheck [T 3, B 2, L 4, H 2], ${name}`, () => {
      gradcheck((xg, w, h0, c0) => ax.lstmScan(xg!, w!, h0!, c0!, pad), inputs(3, 2, 4, 2, k, 3), { label: `lstmScan ${name}` });
    });
  }
  test('step t reads exactly the previous step\'s positions l − pad … l − pad + k − 1', () => {
    // Perturb h at step 0, position 2: at step 1 only positions 2 + pad − kk (kk < k) may move.
    const [xg, w, h0, c0] = inputs(2, 1, 6, 2, 2, 5);
    const base = ax.lstmScan(xg!, w!, h0!, c0!, 1).data;
    const bumped = xg!.detach();
    for (let j = 0; j < 8; j++) bumped.data[(0 * 6 + 2) * 8 + j] = bumped.data[(0 * 6 + 2) * 8 + j]! + 1;
    const moved = ax.lstmScan(bumped, w!, h0!, c0!, 1).data;
    // Step 1 of h [2, 1, 6, 2] starts at element 12.
    const changed = [...Array(6).keys()].filter((l) => [0, 1].some((i) => moved[12 + l * 2 + i] !== base[12 + l * 2 + i]));
    assert.deepEqual(changed, [2, 3]);
  });
  test('throws when shapes do not fit', () => {
    const [xg, w, h0, c0] = inputs(2, 1, 3, 2, 3, 1);
    assert.throws(() => ax.lstmScan(ax.reshape(xg!, [2, 3, 8]), w!, h0!, c0!, 1), /lstmScan: xg must be \[T, B, L, 4H\]/);
    assert.throws(() => ax.lstmScan(xg!, ax.reshape(w!, [3, 8, 2]), h0!, c0!, 1), /lstmScan: w must be \[k, 2, 8\]/);
    assert.throws(() => ax.lstmScan(xg!, w!, rnd64([3], 1), c0!, 1), /lstmScan: h0 must be \[2\]/);
    assert.throws(() => ax.lstmScan(xg!, w!, h0!, c0!, 3), /lstmScan: pad must be an integer in 0 … 2/);
  });
});
