// The transformer core's ops on the ts reference: fused kernels against their composed twins
// (values and gradients), finite-difference gradient checks, the attention patterns against an
// independent statement of their geometry, causality (exact zero gradient to the future), and the
// cached one-position step against the full op's row.

import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import * as ax from './index.js';
import { ArgumentError, ShapeError } from '../errors.js';
import { assertClose, gradcheck, rnd64 } from '../testing/gradcheck.js';
import { erf } from '../backends/ts/transformer.js';
import { Tensor } from '../tensor/tensor.js';
import type { AttentionPatternInput } from './transformer.js';
import { PATTERNS, checkCausality } from '../testing/attention.js';

/** Values and input gradients of two functions of the same inputs, for a fixed random output weighting. */
function sameFunction(f: (...xs: Tensor[]) => Tensor, g: (...xs: Tensor[]) => Tensor, inputs: readonly Tensor[], tol = { atol: 1e-10, rtol: 1e-9 }, label = ''): void {
  const run = (fn: (...xs: Tensor[]) => Tensor) => {
    const xs = inputs.map((t) => new Tensor(new Float64Array(t.data), t.shape).requireGrad());
    const y = fn(...xs);
    ax.sum(ax.mul(y, rnd64(y.shape, 99))).backward();
    return { y: y.toArray(), grads: xs.map((x) => x.grad!.toArray()) };
  };
  const a = run(f), b = run(g);
  assertClose(a.y, b.y, { ...tol, label: `${label} values` });
  a.grads.forEach((ga, k) => assertClose(ga, b.grads[k]!, { ...tol, label: `${label} gradient ${k}` }));
}

describe('layer norm and RMS norm', () => {
  test('layerNorm [3, 5] with weight and bias: fused = composed, and its gradients check', () => {
    const ins = [rnd64([3, 5], 1), rnd64([5], 2), rnd64([5], 3)];
    sameFunction((x, w, b) => ax.layerNorm(x!, w!, b!), (x, w, b) => ax.layerNormComposed(x!, w!, b!), ins);
    gradcheck((x, w, b) => ax.layerNorm(x!, w!, b!), ins);
    gradcheck((x) => ax.layerNorm(x!), [rnd64([2, 3, 4], 4)]);
  });
  test('rmsNorm [2, 3, 6] with weight: fused = composed, and its gradients check', () => {
    const ins = [rnd64([2, 3, 6], 5), rnd64([6], 6)];
    sameFunction((x, w) => ax.rmsNorm(x!, w!), (x, w) => ax.rmsNormComposed(x!, w!), ins);
    gradcheck((x, w) => ax.rmsNorm(x!, w!, 1e-3), ins);
  });
  test('rmsNorm divides by the root mean square', () => {
    const y = ax.rmsNorm(ax.tensor([[3, 4]], undefined, 'float64'), null, 1e-12);
    assertClose(y.toArray(), [3 / Math.sqrt(12.5), 4 / Math.sqrt(12.5)], { atol: 1e-9 });
  });
  test('throws when weight does not match the channels', () => {
    assert.throws(() => ax.rmsNorm(ax.zeros([2, 4]), ax.zeros([3])), (e: unknown) => e instanceof ShapeError && /rmsNorm: weight must be \[4\]/.test(e.message));
    assert.throws(() => ax.layerNorm(ax.zeros([2, 4]), null, null, 0), /layerNorm: eps must be positive/);
  });
});

describe('GELU', () => {
  test('erf matches known values to 1e-13', () => {
    const known: [number, number][] = [[0, 0], [0.1, 0.1124629160182849], [0.5, 0.5204998778130465], [1, 0.8427007929497149], [2, 0.9953222650189527], [2.9, 0.9999589021219005], [3.5, 0.9999992569016276], [-1.5, -0.9661051464753108], [6, 1]];
    for (const [x, want] of known) assert.ok(Math.abs(erf(x) - want) < 1e-13, `erf(${x}) = ${erf(x)}, expected ${want}`);
  });
  test('exact GELU values x·Φ(x)', () => {
    const y = ax.gelu(ax.tensor([-2, -0.5, 0, 1, 3], undefined, 'float64'));
    assertClose(y.toArray(), [-0.04550026389635842, -0.15426876936299347, 0, 0.8413447460685429, 2.995950669387465], { atol: 1e-12 });
  });
  test('tanh GELU = its composition, and both forms check', () => {
    const x = rnd64([4, 5], 7);
    sameFunction((t) => ax.gelu(t!, 'tanh'), (t) => ax.geluTanhComposed(t!), [x]);
    gradcheck((t) => ax.gelu(t!), [x]);
    gradcheck((t) => ax.gelu(t!, 'tanh'), [x]);
  });
  test('throws on an unknown approximation', () => {
    assert.throws(() => ax.gelu(ax.zeros([2]), 'erf' as 'none'), (e: unknown) => e instanceof ArgumentError && /gelu: approximate must be 'none' or 'tanh'/.test(e.message));
  });
});

describe('batched matmul with several batch axes', () => {
  test('[2, 3, 4, 5] @ [2, 3, 6, 5]ᵀ = per-batch products, with gradients', () => {
    const a = rnd64([2, 3, 4, 5], 1), b = rnd64([2, 3, 6, 5], 2);
    sameFunction((x, y) => ax.matmul(x!, y!, { transB: true }), (x, y) => ax.reshape(ax.matmul(ax.reshape(x!, [6, 4, 5]), ax.reshape(y!, [6, 6, 5]), { transB: true }), [2, 3, 4, 6]), [a, b]);
    gradcheck((x, y) => ax.matmul(x!, y!, { transB: true }), [a, b]);
  });
  test('throws when batch axes differ', () => {
    assert.throws(() => ax.matmul(ax.zeros([2, 3, 4, 5]), ax.zeros([3, 2, 5, 4])), /matmul: b batch axes \[3, 2\] differ from a's \[2, 3\]/);
  });
});

// ---- attention ----

/**
 * The local2d pattern restated from tensor2tensor's geometry, independently of sequence order: in
 * block-raster generation, a query sees the flange rows above its block (left, top, right of it), the
 * left flange beside its block, and its own block up to itself in raster order within the block.
 */
function local2dRule(height: number, width: number, bh: number, bw: number, mh: number, mw: number): (i: number, j: number) => boolean {
  const order = ax.blockRasterOrder(height, width, bh, bw);
  return (i, j) => {
    const [yi, xi] = [Math.floor(order[i]! / width), order[i]! % width];
    const [yj, xj] = [Math.floor(order[j]! / width), order[j]! % width];
    const by = Math.floor(yi / bh) * bh, bx = Math.floor(xi / bw) * bw;
    const aboveBlock = yj >= by - mh && yj < by && xj >= bx - mw && xj < bx + bw + mw;
    const besideLeft = yj >= by && yj < by + bh && xj >= bx - mw && xj < bx;
    const ownBlock = yj >= by && yj < by + bh && xj >= bx && xj < bx + bw && (yj - by) * bw + (xj - bx) <= (yi - by) * bw + (xi - bx);
    return aboveBlock || besideLeft || ownBlock;
  };
}

describe('attention patterns', () => {
  test('block-raster order of a 4×4 grid in 2×2 blocks', () => {
    assert.deepEqual(Array.from(ax.blockRasterOrder(4, 4, 2, 2)), [0, 1, 4, 5, 2, 3, 6, 7, 8, 9, 12, 13, 10, 11, 14, 15]);
  });
  test('local1d block 2, memory 2 over 6 positions', () => {
    assert.deepEqual(ax.attentionMask({ kind: 'local1d', block: 2 }, 6).toNested(), [
      [1, 0, 0, 0, 0, 0],
      [1, 1, 0, 0, 0, 0],
      [1, 1, 1, 0, 0, 0],
      [1, 1, 1, 1, 0, 0],
      [0, 0, 1, 1, 1, 0],
      [0, 0, 1, 1, 1, 1],
    ]);
  });
  for (const [h, w, bh, bw, mh, mw] of [[4, 6, 2, 2, 1, 2], [6, 6, 2, 3, 2, 1], [4, 4, 2, 2, 2, 2], [2, 8, 1, 4, 1, 4]] as const) {
    test(`local2d in raster order ${h}×${w}, blocks ${bh}×${bw}, flanges ${mh}×${mw}: the block's rectangle up to the query in raster order`, () => {
      // Restated from the geometry: key (yj, xj) is in the rectangle of rows [by − mh, by + bh) and
      // columns [bx − mw, bx + bw + mw) around the query's block, and not after the query in raster order.
      const m = ax.attentionMask({ kind: 'local2d', height: h, width: w, blockHeight: bh, blockWidth: bw, memoryHeight: mh, memoryWidth: mw, order: 'raster' }, h * w).data;
      for (let i = 0; i < h * w; i++) {
        const [yi, xi] = [Math.floor(i / w), i % w];
        const by = yi - (yi % bh), bx = xi - (xi % bw);
        for (let j = 0; j < h * w; j++) {
          const [yj, xj] = [Math.floor(j / w), j % w];
          const want = j <= i && yj >= by - mh && xj >= bx - mw && xj < bx + bw + mw;
          assert.equal(m[i * h * w + j], want ? 1 : 0, `query ${i}, key ${j}`);
        }
      }
    });
    test(`local2d ${h}×${w}, blocks ${bh}×${bw}, flanges ${mh}×${mw} = tensor2tensor's geometry`, () => {
      const rule = local2dRule(h, w, bh, bw, mh, mw);
      const m = ax.attentionMask({ kind: 'local2d', height: h, width: w, blockHeight: bh, blockWidth: bw, memoryHeight: mh, memoryWidth: mw }, h * w).data;
      for (let i = 0; i < h * w; i++) for (let j = 0; j < h * w; j++) assert.equal(m[i * h * w + j], rule(i, j) ? 1 : 0, `query ${i}, key ${j}`);
    });
  }
});

describe('fused attention on the reference backend', () => {
  for (const [name, l, pattern] of PATTERNS) {
    test(`${name}: fused = composed (values and gradients), [2, ${l}, 3·6], 2 heads`, () => {
      sameFunction((x) => ax.attention(x!, { heads: 2, pattern }), (x) => ax.attentionComposed(x!, { heads: 2, pattern }), [rnd64([2, l, 18], l)], { atol: 1e-10, rtol: 1e-8 }, name);
    });
    test(`${name}: gradient check, [1, ${l}, 3·4], 2 heads`, () => {
      gradcheck((x) => ax.attention(x!, { heads: 2, pattern }), [rnd64([1, l, 12], l + 1)], { label: name });
    });
    if (pattern.kind !== 'full') test(`${name}: the cached step equals the full op's row at every position`, () => {
      const qkv = rnd64([2, l, 18], 3);
      const full = ax.attention(qkv, { heads: 3, pattern });
      const [q, k, v] = ax.chunk(qkv, 3, -1);
      for (let i = 0; i < l; i++) {
        const row = ax.attentionStep(ax.reshape(ax.slice(q!, [0, i, 0], [2, 1, 6]), [2, 6]), k!, v!, i, { heads: 3, pattern });
        assertClose(row.toArray(), ax.slice(full, [0, i, 0], [2, 1, 6]).toArray(), { atol: 1e-12, label: `position ${i}` });
      }
    });
  }
  test('scale option multiplies the logits', () => {
    const qkv = rnd64([1, 5, 6], 8);
    sameFunction((x) => ax.attention(x!, { heads: 1, scale: 0.3 }), (x) => ax.attentionComposed(x!, { heads: 1, scale: 0.3 }), [qkv]);
  });
  test('throws on a bad qkv, heads, pattern or step position', () => {
    assert.throws(() => ax.attention(ax.zeros([2, 4, 8]), { heads: 2 }), (e: unknown) => e instanceof ShapeError && /attention: qkv must be \[N, L, 3C\]/.test(e.message) && e.message.includes('[2, 4, 8]'));
    assert.throws(() => ax.attention(ax.zeros([2, 4, 9]), { heads: 2 }), /attention: heads \(2\) must divide the channels of q, k and v \(3\)/);
    assert.throws(() => ax.attention(ax.zeros([1, 12, 6]), { heads: 1, pattern: { kind: 'local2d', height: 3, width: 4, blockHeight: 2, blockWidth: 2 } }), /must tile the 3×4 grid exactly/);
    assert.throws(() => ax.attention(ax.zeros([1, 8, 6]), { heads: 1, pattern: { kind: 'local2d', height: 2, width: 4, blockHeight: 2, blockWidth: 2, order: 'zigzag' as 'raster' } }), /pattern.order must be 'block' .* or 'raster' .*, got zigzag/);
    assert.throws(() => ax.attention(ax.zeros([1, 12, 6]), { heads: 1, pattern: { kind: 'local2d', height: 2, width: 4, blockHeight: 2, blockWidth: 2 } }), /grid 2×4 has 8 positions but the sequence has 12/);
    assert.throws(() => ax.attention(ax.zeros([1, 4, 6]), { heads: 1, pattern: { kind: 'local1d', block: 0 } }), /attention: pattern.block must be a positive integer, got 0/);
    assert.throws(() => ax.attention(ax.zeros([1, 4, 6]), { heads: 1, pattern: { kind: 'window' } as unknown as AttentionPatternInput }), /pattern.kind must be 'causal', 'full', 'local1d' or 'local2d', got 'window'/);
    assert.throws(() => ax.attentionStep(ax.zeros([2, 4]), ax.zeros([2, 3, 4]), ax.zeros([2, 3, 4]), 3, { heads: 2 }), /attentionStep: position must be an integer in 0..2/);
    assert.throws(() => ax.attentionStep(ax.zeros([2, 4]), ax.zeros([2, 3, 4]), ax.zeros([2, 3, 4]), 0, { heads: 2, pattern: { kind: 'full' } }), /attentionStep: pattern is 'full'/);
    assert.throws(() => ax.attentionStep(ax.zeros([2, 4]), ax.zeros([2, 3, 5]), ax.zeros([2, 3, 4]), 0, { heads: 2 }), /attentionStep: kCache must be \[2, T, 4\]/);
  });
});

describe('causality of attention', () => {
  test('fused, float64 reference: no gradient from output i to any input j > i', () => {
    checkCausality((x, pattern) => ax.attention(x, { heads: 2, pattern }), 'float64', 'fused');
  });
  test('composed oracle, float64: the same', () => {
    checkCausality((x, pattern) => ax.attentionComposed(x, { heads: 2, pattern }), 'float64', 'composed');
  });
});
