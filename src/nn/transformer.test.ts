// The transformer modules: MultiHeadAttention against its composition, cached steps of a block
// against its full forward (every pattern, pre- and post-norm, each activation and norm), the
// causality of a stack, dropout, position encodings and AdamW's weight-decay groups.

import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import * as ax from '../ops/index.js';
import { AdamW } from '../optim/index.js';
import { Generator } from '../tensor/random.js';
import { Tensor } from '../tensor/tensor.js';
import { assertClose, rnd64 } from '../testing/gradcheck.js';
import { Embedding, LayerNorm, Linear, LearnedPositionEmbedding, MultiHeadAttention, RMSNorm, Sequential, SinusoidalPositionEncoding, TransformerBlock, sinusoidalPositionEncoding, weightDecayGroups } from './index.js';
import type { AttentionPatternInput } from '../ops/index.js';
import { Module } from './module.js';

const PATTERNS: [string, number, AttentionPatternInput][] = [
  ['causal', 9, { kind: 'causal' }],
  ['local1d block 3', 10, { kind: 'local1d', block: 3 }],
  ['local2d 4×4, blocks 2×2', 16, { kind: 'local2d', height: 4, width: 4, blockHeight: 2, blockWidth: 2, memoryHeight: 1, memoryWidth: 1 }],
];

describe('MultiHeadAttention', () => {
  test('[2, 7, 8], 2 heads = projection, composed attention, projection', () => {
    const m = new MultiHeadAttention(8, { heads: 2, dtype: 'float64', generator: new Generator(1) });
    const x = rnd64([2, 7, 8], 2);
    const want = m.out.forward(ax.attentionComposed(m.qkv.forward(x), { heads: 2 }));
    assertClose(m.forward(x).toArray(), want.toArray(), { atol: 1e-12 });
  });
  test('throws when heads do not divide dim, or on a wrong input', () => {
    assert.throws(() => new MultiHeadAttention(10, { heads: 4 }), /MultiHeadAttention: heads \(4\) must divide dim \(10\)/);
    assert.throws(() => new MultiHeadAttention(8, { heads: 2 }).forward(ax.zeros([2, 3, 6])), /MultiHeadAttention: x must be \[N, L, 8\], got \[2, 3, 6\]/);
  });
});

describe('TransformerBlock', () => {
  const variants = [
    { norm: 'pre', activation: 'gelu', normKind: 'layer' },
    { norm: 'post', activation: 'relu', normKind: 'layer' },
    { norm: 'pre', activation: 'gelu-tanh', normKind: 'rms' },
  ] as const;
  for (const [name, l, pattern] of PATTERNS) {
    for (const v of variants) {
      test(`${name}, ${v.norm}-norm, ${v.activation}, ${v.normKind}: cached steps of two blocks = the forward's rows`, () => {
        const g = new Generator(3);
        const blocks = [0, 1].map(() => new TransformerBlock(8, { heads: 2, ffDim: 12, pattern, dropout: 0.3, generator: g, dtype: 'float64', ...v }));
        blocks.forEach((b) => b.eval());
        const x = rnd64([2, l, 8], 4);
        const full = blocks.reduce((h, b) => b.forward(h), x);
        const caches = blocks.map((b) => b.newCache(2, l));
        for (let i = 0; i < l; i++) {
          let h = ax.reshape(ax.slice(x, [0, i, 0], [2, 1, 8]), [2, 8]);
          blocks.forEach((b, k) => (h = b.step(h, caches[k]!, i)));
          assertClose(h.toArray(), ax.slice(full, [0, i, 0], [2, 1, 8]).toArray(), { atol: 1e-10, label: `position ${i}` });
        }
      });
    }
    test(`${name}: a stack of two blocks is causal (zero gradient from output i to input j > i)`, () => {
      const g = new Generator(5);
      const net = new Sequential(...[0, 1].map(() => new TransformerBlock(8, { heads: 2, ffDim: 8, pattern, norm: 'post', generator: g })));
      const x0 = ax.randn([1, l, 8], { generator: g });
      const w = ax.randn([8], { generator: g });
      for (let i = 0; i < l; i++) {
        const x = new Tensor(x0.data.slice(), x0.shape).requireGrad();
        // A random weighting: a plain sum of a post-norm output is constant (the norm centres it).
        ax.sum(ax.mul(ax.slice(net.forward(x), [0, i, 0], [1, 1, 8]), w)).backward();
        const gd = x.grad!.data;
        for (let j = i + 1; j < l; j++) for (let c = 0; c < 8; c++) assert.equal(gd[j * 8 + c], 0, `output ${i} depends on input ${j}`);
        assert.ok(Array.from(gd.subarray(i * 8, i * 8 + 8)).some((d) => d !== 0), `output ${i} has no gradient to its own input`);
      }
    });
  }
  test('dropout acts in training mode only, and a seed repeats it', () => {
    const make = () => new TransformerBlock(8, { heads: 2, dropout: 0.5, generator: new Generator(7) });
    const x = ax.randn([2, 5, 8], { generator: new Generator(8) });
    const [a, b] = [make(), make()];
    const ya = a.forward(x).toArray(), yb = b.forward(x).toArray();
    assert.deepEqual(ya, yb);
    a.eval();
    const e1 = a.forward(x).toArray();
    assert.notDeepEqual(ya, e1);
    assert.deepEqual(a.forward(x).toArray(), e1);
  });
  test('throws on a bad option', () => {
    assert.throws(() => new TransformerBlock(8, { heads: 2, norm: 'middle' as 'pre' }), /TransformerBlock: norm must be 'pre' or 'post', got 'middle'/);
    assert.throws(() => new TransformerBlock(8, { heads: 2, activation: 'swish' as 'relu' }), /TransformerBlock: activation must be 'relu', 'gelu' or 'gelu-tanh'/);
  });
});

describe('position encodings', () => {
  test('sinusoidal: sines then cosines over geometric timescales 1 … 10⁴', () => {
    const t = sinusoidalPositionEncoding(50, 10, { dtype: 'float64' });
    const d = t.data;
    for (const p of [0, 1, 7, 49]) {
      assert.ok(Math.abs(d[p * 10]! - Math.sin(p)) < 1e-12);
      assert.ok(Math.abs(d[p * 10 + 5]! - Math.cos(p)) < 1e-12);
      assert.ok(Math.abs(d[p * 10 + 4]! - Math.sin(p / 1e4)) < 1e-12);
      assert.ok(Math.abs(d[p * 10 + 9]! - Math.cos(p / 1e4)) < 1e-12);
    }
    const m = new SinusoidalPositionEncoding(50, 10);
    assert.equal(m.parameters().length, 0);
    assert.deepEqual(Object.keys(m.stateDict()), []);
    assertClose(m.forward(ax.zeros([2, 3, 10])).toArray().slice(30), t.toArray().slice(0, 30));
  });
  test('learned: adds its first L rows, and trains only those', () => {
    const pe = new LearnedPositionEmbedding(6, 4, { generator: new Generator(1) });
    const y = pe.forward(ax.zeros([2, 3, 4]));
    assertClose(y.toArray().slice(0, 12), pe.weight.toArray().slice(0, 12));
    ax.sum(y).backward();
    assert.deepEqual(pe.weight.grad!.toArray(), [...Array(12).fill(2), ...Array(12).fill(0)]);
    assertClose(pe.at(2).toArray(), pe.weight.toArray().slice(8, 12));
    assert.throws(() => pe.forward(ax.zeros([1, 7, 4])), /LearnedPositionEmbedding: x must be \[N, L ≤ 6, 4\], got \[1, 7, 4\]/);
  });
});

describe('weight-decay groups', () => {
  class Tiny extends Module {
    readonly emb = this.registerModule('emb', new Embedding(5, 8));
    readonly pos = this.registerModule('pos', new LearnedPositionEmbedding(4, 8));
    readonly block = this.registerModule('block', new TransformerBlock(8, { heads: 2, ffDim: 8, normKind: 'layer' }));
    readonly norm = this.registerModule('norm', new RMSNorm(8));
    readonly head = this.registerModule('head', new Linear(8, 5));
    forward(x: Tensor): Tensor { return x; }
  }
  test('decay only the weights of linear layers; AdamW then leaves the rest undecayed', () => {
    const m = new Tiny();
    const [decay, keep] = weightDecayGroups(m, 0.1);
    const names = new Map(m.namedParameters().map(([n, p]) => [p as Tensor, n]));
    assert.deepEqual(decay.params.map((p) => names.get(p)).sort(), ['block.attn.out.weight', 'block.attn.qkv.weight', 'block.ff1.weight', 'block.ff2.weight', 'head.weight']);
    assert.equal(decay.params.length + keep.params.length, m.parameters().length);
    assert.ok(keep.params.includes(m.emb.weight) && keep.params.includes(m.pos.weight) && keep.params.includes(m.norm.weight) && keep.params.includes((m.block.norm1 as LayerNorm).bias!));
    const opt = new AdamW([decay, keep], { lr: 0.1 });
    const before = [m.head.weight.toArray(), m.emb.weight.toArray()];
    for (const p of m.parameters()) p.grad = ax.zerosLike(p);
    opt.step();
    // Zero gradients: only decoupled decay moves a parameter, by the factor 1 − lr·wd.
    assertClose(m.head.weight.toArray(), before[0]!.map((w) => w * (1 - 0.1 * 0.1)), { atol: 1e-7 });
    assert.deepEqual(m.emb.weight.toArray(), before[1]);
  });
});
