// Forward values on small hand-checked cases, autograd mechanics, and the errors every check raises.

import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import * as ax from './index.js';
import { ArgumentError, AxisError, DTypeError, ShapeError } from '../errors.js';
import { Generator, philox } from '../tensor/random.js';
import { recycledBytes, type Tensor } from '../tensor/tensor.js';
import { assertClose } from '../testing/gradcheck.js';

const t = (v: Parameters<typeof ax.tensor>[0], s?: number[]) => ax.tensor(v, s);

describe('forward values', () => {
  test('broadcasting add [2, 1] + [3]', () => {
    assert.deepEqual(ax.add(t([[1], [2]]), t([10, 20, 30])).toNested(), [[11, 21, 31], [12, 22, 32]]);
  });
  test('int32 arithmetic stays int32 and division truncates', () => {
    const a = ax.tensor([7, -7], undefined, 'int32');
    const y = ax.div(a, 2);
    assert.equal(y.dtype, 'int32');
    assert.deepEqual(y.toArray(), [3, -3]);
  });
  test('sum, max and argmax over axes', () => {
    const x = t([[1, 5, 3], [4, 2, 6]]);
    assert.deepEqual(ax.sum(x, 0).toArray(), [5, 7, 9]);
    assert.deepEqual(ax.max(x, 1, true).shape, [2, 1]);
    assert.deepEqual(ax.max(x, 1).toArray(), [5, 6]);
    assert.deepEqual(ax.argmax(x, 1).toArray(), [1, 2]);
    assert.deepEqual(ax.argmax(x, 0).toArray(), [1, 0, 1]);
  });
  test('int32 max and min of negative values', () => {
    const x = ax.tensor([-5, -3, -9], undefined, 'int32');
    assert.deepEqual(ax.max(x).toArray(), [-3]);
    assert.deepEqual(ax.min(ax.neg(ax.cast(x, 'float32')).cast('int32')).toArray(), [3]);
  });
  test('softmax rows sum to 1 and survive huge logits', () => {
    const y = ax.softmax(t([[1000, 1000, -1000], [0, 1, 2]]));
    assertClose(y.toArray().slice(0, 3), [0.5, 0.5, 0]);
    assertClose(ax.sum(y, -1).toArray(), [1, 1]);
    assert.ok(ax.logSoftmax(t([[1e30, 0]])).toArray().every(Number.isFinite));
  });
  test('logsumexp of -Infinity rows is -Infinity, not NaN', () => {
    assert.deepEqual(ax.logsumexp(t([[-Infinity, -Infinity]]), -1).toArray(), [-Infinity]);
  });
  test('softplus and sigmoid are stable at ±100', () => {
    assertClose(ax.softplus(t([-100, 100])).toArray(), [Math.exp(-100), 100]);
    assertClose(ax.sigmoid(t([-100, 100])).toArray(), [Math.exp(-100), 1], { atol: 1e-30 });
  });
  test('conv2d 3x3 of ones with padding 1 counts neighbours', () => {
    const y = ax.conv2d(ax.ones([1, 3, 3, 1]), ax.ones([3, 3, 1, 1]), { padding: 1 });
    assert.deepEqual(y.toArray(), [4, 6, 4, 6, 9, 6, 4, 6, 4]);
  });
  test('convTranspose2d stride 2 is the adjoint of conv2d stride 2', () => {
    // <conv(x), y> = <x, convT(y)> for the same weight.
    const x = ax.randn([1, 6, 6, 2], { generator: new Generator(1), dtype: 'float64' });
    const w = ax.randn([3, 3, 2, 3], { generator: new Generator(2), dtype: 'float64' });
    const y = ax.randn([1, 3, 3, 3], { generator: new Generator(3), dtype: 'float64' });
    const lhs = ax.sum(ax.mul(ax.conv2d(x, w, { stride: 2, padding: [1, 0, 1, 0] }), y)).item();
    const rhs = ax.sum(ax.mul(x, ax.convTranspose2d(y, w, { stride: 2, padding: [1, 0, 1, 0] }))).item();
    assert.ok(Math.abs(lhs - rhs) < 1e-9, `${lhs} vs ${rhs}`);
  });
  test('downShift moves rows down and zero-fills the top', () => {
    const x = ax.reshape(ax.cast(ax.arange(6), 'float32'), [1, 3, 2, 1]);
    assert.deepEqual(ax.downShift(x).toArray(), [0, 0, 0, 1, 2, 3]);
    assert.deepEqual(ax.rightShift(x).toArray(), [0, 0, 0, 2, 0, 4]);
  });
  test('gather, oneHot, where, cast', () => {
    const table = t([[1, 2], [3, 4], [5, 6]]);
    assert.deepEqual(ax.embedding(table, ax.tensor([2, 0], undefined, 'int32')).toNested(), [[5, 6], [1, 2]]);
    assert.deepEqual(ax.oneHot(ax.tensor([1, 0], undefined, 'int32'), 3).toNested(), [[0, 1, 0], [1, 0, 0]]);
    assert.deepEqual(ax.where(t([1, 0, 1]), t([1, 2, 3]), -1).toArray(), [1, -1, 3]);
    assert.deepEqual(ax.cast(t([1.7, -1.7]), 'int32').toArray(), [1, -1]);
  });
  test('layerNorm has zero mean and unit variance', () => {
    const y = ax.layerNorm(ax.randn([4, 16], { generator: new Generator(3) }));
    assertClose(ax.mean(y, -1).toArray(), [0, 0, 0, 0], { atol: 1e-6 });
    assertClose(ax.mean(ax.square(y), -1).toArray(), [1, 1, 1, 1], { atol: 1e-3 });
  });
  test('crossEntropy equals −log softmax at the target', () => {
    const logits = t([[1, 2, 3]]);
    const expected = -(3 - Math.log(Math.exp(1) + Math.exp(2) + Math.exp(3)));
    assertClose([ax.crossEntropy(logits, ax.tensor([2], undefined, 'int32')).item()], [expected]);
  });
  test('dropout keeps the expectation and is off in eval', () => {
    const x = ax.ones([10000]);
    const y = ax.dropout(x, 0.25, true, new Generator(5));
    const kept = y.toArray().filter((v) => v !== 0);
    assert.ok(Math.abs(kept.length / 10000 - 0.75) < 0.02);
    assertClose([kept[0]!], [4 / 3]);
    assert.equal(ax.dropout(x, 0.25, false), x);
  });
  test('dropout draws its mask from the generator as a uniform draw of that size would', () => {
    const a = new Generator(9, 4), b = new Generator(9, 4);
    const y = ax.dropout(ax.ones([3, 7]), 0.4, true, a);
    const u = new Float32Array(21);
    b.uniform(u);
    assert.deepEqual(y.toArray(), Array.from(u, (v) => (v >= 0.4 ? Math.fround(1 / 0.6) : 0)));
    assert.deepEqual(a.state(), b.state(), 'both streams moved on by the same blocks');
  });
});

describe('autograd', () => {
  test('gradients accumulate across backward calls and noGrad records nothing', () => {
    const x = t([1, 2]).requireGrad();
    ax.sum(ax.mul(x, 3)).backward();
    ax.sum(ax.mul(x, 3)).backward();
    assert.deepEqual(x.grad!.toArray(), [6, 6]);
    const y = ax.noGrad(() => ax.mul(x, 2));
    assert.equal(y.requiresGrad, false);
  });
  test('each leaf owns its gradient: no storage shared with another leaf or the caller', () => {
    const a = t([1, 2]).requireGrad();
    const b = t([3, 4]).requireGrad();
    ax.sum(ax.add(a, b)).backward();
    assert.notEqual(a.grad!.storage, b.grad!.storage);
    const c = t([1, 2]).requireGrad();
    const g = t([5, 6]);
    ax.reshape(c, [2, 1]).backward(ax.reshape(g, [2, 1]));
    assert.notEqual(c.grad!.storage, g.storage);
  });
  test('backward recycles the gradients it has used up, never one still pending nor the caller\'s', () => {
    const n = 4096;
    const gen = new Generator(9);
    const x = ax.randn([n], { generator: gen }).requireGrad();
    const w = ax.randn([n], { generator: gen }).requireGrad();
    // add hands the same gradient to both inputs, reshape passes on a view of it.
    const y = ax.add(ax.reshape(ax.mul(x, w), [64, 64]), ax.reshape(ax.tanh(x), [64, 64]));
    const g = ax.randn([64, 64], { generator: gen });
    const gBefore = g.toArray();
    const pooled = recycledBytes();
    y.backward(g);
    assert.ok(recycledBytes() > pooled, 'used-up gradients went back to the pool');
    assert.deepEqual(g.toArray(), gBefore, "the caller's gradient is untouched");
    const expected = Float32Array.from(x.data, (v, i) => g.data[i]! * (w.data[i]! + 1 - Math.tanh(v) ** 2));
    assertClose(x.grad!.data, expected, { atol: 1e-5, rtol: 1e-5 });
    assertClose(w.grad!.data, Float32Array.from(x.data, (v, i) => g.data[i]! * v), { atol: 1e-6, rtol: 1e-6 });
    // Later allocations take the recycled buffers: the leaves' gradients are their own.
    const xg = x.grad!.toArray();
    for (let i = 0; i < 8; i++) ax.mul(ax.randn([n], { generator: gen }), 2);
    assert.deepEqual(x.grad!.toArray(), xg);
  });
  test('backward with releaseGraph reuses the intermediates\' memory, never a leaf\'s, an input\'s or the root\'s', () => {
    const n = 4096;
    const gen = new Generator(11);
    const x = ax.randn([n], { generator: gen }).requireGrad();
    const w = ax.randn([n], { generator: gen }).requireGrad();
    const c = ax.randn([n], { generator: gen });
    // An op whose output is its untracked input: a node of the graph sharing that input's storage.
    const passC = ax.defineOp<undefined>({ name: 'passC', forward: ([, k]) => k!, backward: ({ grad }) => [ax.mul(grad, 0), null] });
    const build = () => {
      // reshape(w) is a node sharing the leaf's storage; reshape(c) is untracked.
      const h = ax.tanh(ax.mul(ax.reshape(w, [64, 64]), ax.reshape(passC([x, c], undefined), [64, 64])));
      return { h, loss: ax.sum(ax.mul(h, ax.reshape(x, [64, 64]))) };
    };
    build().loss.backward();
    const [gx, gw] = [x.grad!.toArray(), w.grad!.toArray()];
    x.grad = w.grad = null;
    const { h, loss } = build();
    const hBuffer = h.data.buffer;
    const [xs, ws, cs, value] = [x.toArray(), w.toArray(), c.toArray(), loss.item()];
    loss.backward({ releaseGraph: true });
    assert.deepEqual(x.grad!.toArray(), gx);
    assert.deepEqual(w.grad!.toArray(), gw);
    assert.throws(() => h.toArray(), /intermediate result of a graph whose memory backward\(\{ releaseGraph: true \}\) handed back/);
    assert.throws(() => loss.backward(), /already released/);
    // Later allocations of the same size take the released buffers, and only those.
    const later = Array.from({ length: 64 }, () => ax.mul(ax.randn([n], { generator: gen }), 2));
    assert.ok(later.some((t) => t.data.buffer === hBuffer), 'an intermediate buffer was reused');
    assert.deepEqual([x.toArray(), w.toArray(), c.toArray(), loss.item()], [xs, ws, cs, value]);
  });
  test('a tensor used twice gets both contributions', () => {
    const x = t([3]).requireGrad();
    ax.mul(x, x).backward();
    assert.deepEqual(x.grad!.toArray(), [6]);
  });
  test('backward() on a non-scalar without a gradient is an error', () => {
    const x = t([1, 2]).requireGrad();
    assert.throws(() => ax.mul(x, 2).backward(), ShapeError);
    assert.throws(() => t([1]).backward(), ArgumentError);
  });
  test('a deep chain does not overflow the stack', () => {
    let x = t([1]).requireGrad();
    const leaf = x;
    for (let i = 0; i < 20000; i++) x = ax.add(x, 1);
    x.backward();
    assert.deepEqual(leaf.grad!.toArray(), [1]);
  });
  test('conv2dSum of one-row convolutions (one product, earlier gradients added as it writes) matches the composed convolutions', () => {
    const gen = new Generator(5);
    // Large enough (≥ 4 kB) for the pass to recycle and reuse their gradients' memory.
    const leaves = () => [[2, 8, 16, 6], [2, 8, 16, 12], [1, 2, 6, 10], [1, 1, 12, 10], [10]].map((s) => ax.randn(s, { generator: gen }));
    const run = (fused: boolean, [h, v, w1, w2, b]: Tensor[]) => {
      const vPre = ax.mul(v!, 2);
      const terms = [{ x: h!, weight: w1!, options: { padding: [0, 0, 2, 0] as const, dilation: 2, bias: b! } }, { x: vPre, weight: w2! }];
      const y = fused ? ax.conv2dSum(terms) : ax.add(ax.conv2d(terms[0]!.x, terms[0]!.weight, terms[0]!.options), ax.conv2d(vPre, w2!));
      // Consumers created after the sum (as Gated PixelCNN's gate of vPre): their gradients are there first.
      const gated = ax.tanh(vPre);
      ax.add(ax.add(ax.sum(ax.mul(y, y)), ax.sum(ax.mul(gated, gated))), ax.sum(ax.exp(h!))).backward();
      return y;
    };
    const a = leaves().map((t) => t.requireGrad());
    const c = a.map((t) => t.detach().requireGrad());
    assertClose(run(true, a).toArray(), run(false, c).toArray(), { atol: 1e-4, rtol: 1e-4 });
    a.forEach((t, i) => assertClose(t.grad!.toArray(), c[i]!.grad!.toArray(), { atol: 1e-3, rtol: 1e-4, label: `gradient ${i}` }));
  });
  test('conv2dSum adds into an earlier gradient in place only when no other pending gradient shares it', () => {
    // add hands one gradient to both its inputs: h's is shared with q's while q's backward has not
    // run, and with the loss built in this order it runs after the sum's (the graph is walked in
    // reverse depth-first order of the inputs: z, then y, then sum(q) and q). Writing into h's
    // gradient would change q's. Tensors of ≥ 4 kB: smaller ones are not the pass's to reuse.
    const gen = new Generator(6);
    const leaves = () => [[2, 8, 16, 8], [1, 2, 8, 4], [2, 8, 16, 8]].map((s) => ax.randn(s, { generator: gen }));
    const run = (fused: boolean, [h0, w, u]: Tensor[]) => {
      const h = ax.mul(h0!, 1.5);
      const q = ax.mul(h, u!);
      const options = { padding: [0, 0, 1, 0] as const };
      const y = fused ? ax.conv2dSum([{ x: h, weight: w!, options }]) : ax.conv2d(h, w!, options);
      const z = ax.add(h, q);
      ax.add(ax.add(ax.sum(q), ax.sum(ax.mul(y, y))), ax.sum(ax.mul(z, z))).backward();
    };
    const a = leaves().map((t) => t.requireGrad());
    const c = a.map((t) => t.detach().requireGrad());
    run(true, a);
    run(false, c);
    a.forEach((t, i) => assertClose(t.grad!.toArray(), c[i]!.grad!.toArray(), { atol: 1e-3, rtol: 1e-4, label: `gradient ${i}` }));
  });
  test('defineOp: a fused gated activation matches the composed one, forward and backward', () => {
    // tanh(a)·σ(b) with hand-written backward, against the same function composed from ops.
    const gate = ax.defineOp<undefined>({
      name: 'gate',
      forward: ([a, b]) => ax.mul(ax.tanh(a!), ax.sigmoid(b!)),
      backward: ({ grad, inputs: [a, b] }) => {
        const th = ax.tanh(a!);
        const sg = ax.sigmoid(b!);
        return [ax.mul(grad, ax.mul(ax.sub(1, ax.square(th)), sg)), ax.mul(grad, ax.mul(th, ax.mul(sg, ax.sub(1, sg))))];
      },
    });
    const a1 = ax.randn([3, 4], { generator: new Generator(1) }).requireGrad();
    const b1 = ax.randn([3, 4], { generator: new Generator(2) }).requireGrad();
    const a2 = a1.detach().requireGrad();
    const b2 = b1.detach().requireGrad();
    const fused = gate([a1, b1], undefined);
    const composed = ax.mul(ax.tanh(a2), ax.sigmoid(b2));
    assertClose(fused.toArray(), composed.toArray());
    ax.sum(ax.mul(fused, fused)).backward();
    ax.sum(ax.mul(composed, composed)).backward();
    assertClose(a1.grad!.toArray(), a2.grad!.toArray());
    assertClose(b1.grad!.toArray(), b2.grad!.toArray());
  });
});

describe('random', () => {
  test('the same seed gives the same stream, and draws continue it', () => {
    const g1 = new Generator(42);
    const g2 = new Generator(42);
    assert.deepEqual(ax.rand([5], { generator: g1 }).toArray(), ax.rand([5], { generator: g2 }).toArray());
    const next = ax.rand([5], { generator: g1 }).toArray();
    const restored = Generator.fromState(g2.state());
    assert.deepEqual(ax.rand([5], { generator: restored }).toArray(), next);
  });
  test('uniform, normal and randint have the right moments and ranges', () => {
    const u = ax.rand([20000], { generator: new Generator(1) }).toArray();
    assert.ok(u.every((v) => v >= 0 && v < 1));
    assert.ok(Math.abs(u.reduce((a, b) => a + b) / u.length - 0.5) < 0.01);
    const n = ax.randn([20000], { generator: new Generator(2) }).toArray();
    const m = n.reduce((a, b) => a + b) / n.length;
    const v = n.reduce((a, b) => a + (b - m) ** 2, 0) / n.length;
    assert.ok(Math.abs(m) < 0.03 && Math.abs(v - 1) < 0.05, `mean ${m} var ${v}`);
    const r = ax.randint(3, 7, [1000], { generator: new Generator(3) }).toArray();
    assert.deepEqual([...new Set(r)].sort(), [3, 4, 5, 6]);
  });
  test('Philox4x32-10 matches the published known-answer vector', () => {
    // Random123's known-answer vector for philox4x32-10 with counter 0 and key 0.
    const out = new Uint32Array(4);
    philox(0, 0, 0, 0, 0, 0, out);
    assert.deepEqual([...out].map((x) => x.toString(16).padStart(8, '0')), ['6627e8d5', 'e169c58d', 'bc57ac4c', '9b00dbd8']);
  });
});

describe('errors name the op, the argument and the shapes', () => {
  test('conv2d channel mismatch', () => {
    assert.throws(() => ax.conv2d(ax.zeros([1, 4, 4, 3]), ax.zeros([3, 3, 4, 8])), (e: unknown) => e instanceof ShapeError && /conv2d: x channels \(3\) must equal weight in-channels \(4\)/.test(e.message) && e.message.includes('[1, 4, 4, 3]'));
  });
  test('every check throws its typed error before computing', () => {
    assert.throws(() => ax.add(ax.zeros([2, 3]), ax.zeros([4])), ShapeError);
    assert.throws(() => ax.add(ax.zeros([2]), ax.zeros([2], 'int32')), DTypeError);
    assert.throws(() => ax.sum(ax.zeros([2]), 1), AxisError);
    assert.throws(() => ax.softmax(ax.zeros([2]), 3), AxisError);
    assert.throws(() => ax.exp(ax.zeros([2], 'int32')), DTypeError);
    assert.throws(() => ax.matmul(ax.zeros([2, 3]), ax.zeros([4, 5])), /matmul: b inner sizes differ/);
    assert.throws(() => ax.matmul(ax.zeros([2, 2, 3]), ax.zeros([3, 3, 5])), /batch/);
    assert.throws(() => ax.matmul(ax.zeros([3]), ax.zeros([3, 5])), ShapeError);
    assert.throws(() => ax.conv2d(ax.zeros([4, 4, 3]), ax.zeros([3, 3, 3, 8])), /conv2d: x must have rank 4/);
    assert.throws(() => ax.conv2d(ax.zeros([1, 2, 2, 1]), ax.zeros([3, 3, 1, 1])), /too small/);
    assert.throws(() => ax.conv2d(ax.zeros([1, 4, 4, 1]), ax.zeros([3, 3, 1, 2]), { bias: ax.zeros([3]) }), /conv2d: bias must be \[2\]/);
    assert.throws(() => ax.conv2dSum([]), /conv2dSum: terms must hold at least one convolution/);
    assert.throws(() => ax.conv2dSum([{ x: ax.zeros([1, 4, 4, 1]), weight: ax.zeros([3, 3, 1, 2]) }, { x: ax.zeros([1, 4, 4, 1]), weight: ax.zeros([1, 1, 1, 2]) }]),
      (e: unknown) => e instanceof ShapeError && /conv2dSum: terms\[1\] gives an output of shape \[1, 4, 4, 2\], but terms\[0\] gives \[1, 2, 2, 2\]/.test(e.message));
    assert.throws(() => ax.conv2dSum([{ x: ax.zeros([1, 4, 4, 3]), weight: ax.zeros([1, 1, 1, 2]) }]), /conv2dSum: x channels \(3\) must equal weight in-channels \(1\)/);
    assert.throws(() => ax.conv2d(ax.zeros([1, 4, 4, 3]), ax.zeros([1, 1, 3, 2]), { residual: ax.zeros([1, 4, 4, 3]) }),
      (e: unknown) => e instanceof ShapeError && /conv2d: residual shape \[1, 4, 4, 3\] must equal the output's \[1, 4, 4, 2\]/.test(e.message));
    assert.throws(() => ax.conv2dSum([{ x: ax.zeros([1, 4, 4, 3]), weight: ax.zeros([1, 1, 3, 2]), options: { residual: ax.zeros([1, 4, 4, 2]) } }]),
      /conv2dSum: terms take no residual option/);
    assert.throws(() => ax.conv2d(ax.zeros([1, 4, 4, 1]), ax.zeros([3, 3, 1, 2]), { mask: ax.zeros([3, 3, 1, 1]) }), /mask/);
    assert.throws(() => ax.conv2d(ax.zeros([1, 4, 4, 1]), ax.zeros([3, 3, 1, 2]), { stride: 0 }), ArgumentError);
    assert.throws(() => ax.convTranspose2d(ax.zeros([1, 4, 4, 2]), ax.zeros([3, 3, 1, 3])), /convTranspose2d: x channels \(2\)/);
    assert.throws(() => ax.reshape(ax.zeros([2, 3]), [4, 2]), /reshape/);
    assert.throws(() => ax.permute(ax.zeros([2, 3]), [0, 0]), /permutation/);
    assert.throws(() => ax.slice(ax.zeros([2, 3]), [1, 2], [2, 1]), /slice: axis 0/);
    assert.throws(() => ax.pad(ax.zeros([2]), [[1, 1], [0, 0]]), ShapeError);
    assert.throws(() => ax.concat([ax.zeros([2, 3]), ax.zeros([3, 3])], 1), /concat: xs\[1\]/);
    assert.throws(() => ax.split(ax.zeros([5]), [2, 2]), /add up/);
    assert.throws(() => ax.chunk(ax.zeros([5]), 2), /chunk/);
    assert.throws(() => ax.embedding(ax.zeros([3, 2]), ax.tensor([3], undefined, 'int32')), /embedding: indices contain 3/);
    assert.throws(() => ax.embedding(ax.zeros([3, 2]), ax.zeros([1])), DTypeError);
    assert.throws(() => ax.oneHot(ax.tensor([5], undefined, 'int32'), 3), /oneHot/);
    assert.throws(() => ax.crossEntropy(ax.zeros([2, 3]), ax.tensor([0, 3], undefined, 'int32')), /outside 0..2/);
    assert.throws(() => ax.crossEntropy(ax.zeros([2, 3]), ax.tensor([0], undefined, 'int32')), ShapeError);
    assert.throws(() => ax.layerNorm(ax.zeros([2, 3]), ax.zeros([4])), /layerNorm: weight must be \[3\]/);
    assert.throws(() => ax.dropout(ax.zeros([2]), 1, true), /dropout: p/);
    assert.throws(() => ax.linear(ax.zeros([2, 3]), ax.zeros([4, 5])), /linear: x last axis \(3\)/);
    assert.throws(() => ax.tensor([[1, 2], [3]]), /ragged/);
    assert.throws(() => ax.zeros([2]).requireGrad().item(), /item/);
    assert.throws(() => ax.zeros([2], 'int32').requireGrad(), /cannot require gradients/);
  });
});
