// Modules: output shapes, parameter names, initialisation, train/eval, state dicts and their errors.

import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { ArgumentError, DTypeError, ShapeError } from '../errors.js';
import { ones, randn, sum, tensor, zeros } from '../ops/index.js';
import { Generator } from '../tensor/random.js';
import type { Tensor } from '../tensor/tensor.js';
import {
  Conv2d, ConvTranspose2d, Dropout, Embedding, LayerNorm, Linear, Module, ModuleList, Parameter, Sequential,
  StateDictError, fromPyTorchLayout, toPyTorchLayout,
} from './index.js';
import { normal_, uniform_, withoutInitialisers } from './init.js';

const gen = (seed = 1) => new Generator(seed);

class Block extends Module {
  readonly conv: Conv2d;
  readonly norm: LayerNorm;
  constructor(c: number, g: Generator) {
    super();
    this.conv = this.registerModule('conv', new Conv2d(c, c, 3, { padding: 1, generator: g }));
    this.norm = this.registerModule('norm', new LayerNorm(c));
  }
  forward(x: Tensor): Tensor {
    return x.add(this.norm.forward(this.conv.forward(x)));
  }
}

class Net extends Module {
  readonly stem: Conv2d;
  readonly blocks: ModuleList<Block>;
  readonly head: Linear;
  readonly drop: Dropout;
  constructor(g: Generator = gen()) {
    super();
    this.stem = this.registerModule('stem', new Conv2d(3, 4, [1, 1], { generator: g }));
    this.blocks = this.registerModule('blocks', new ModuleList([new Block(4, g), new Block(4, g)]));
    this.head = this.registerModule('head', new Linear(4, 2, { generator: g }));
    this.drop = this.registerModule('drop', new Dropout(0.5));
  }
  forward(x: Tensor): Tensor {
    let h = this.stem.forward(x); // [N, H, W, 4]
    for (const b of this.blocks) h = b.forward(h);
    return this.head.forward(this.drop.forward(h)); // [N, H, W, 2]
  }
}

describe('layers: output shapes', () => {
  test('Linear [2, 5, 3] → [2, 5, 4], weight [out, in]', () => {
    const l = new Linear(3, 4, { generator: gen() });
    assert.deepEqual(l.weight.shape, [4, 3]);
    assert.deepEqual(l.forward(randn([2, 5, 3])).shape, [2, 5, 4]);
  });
  test('Conv2d [1, 8, 8, 3] → [1, 4, 4, 5] with stride 2, padding 1, weight HWIO', () => {
    const c = new Conv2d(3, 5, 3, { stride: 2, padding: 1, generator: gen() });
    assert.deepEqual(c.weight.shape, [3, 3, 3, 5]);
    assert.deepEqual(c.forward(randn([1, 8, 8, 3])).shape, [1, 4, 4, 5]);
  });
  test('ConvTranspose2d [1, 4, 4, 3] → [1, 8, 8, 2] (stride 2, padding 1, outputPadding 1), weight [kH, kW, Cout, Cin]', () => {
    const c = new ConvTranspose2d(3, 2, 3, { stride: 2, padding: 1, outputPadding: 1, generator: gen() });
    assert.deepEqual(c.weight.shape, [3, 3, 2, 3]);
    assert.deepEqual(c.forward(randn([1, 4, 4, 3])).shape, [1, 8, 8, 2]);
  });
  test('LayerNorm [2, 3, 6]: zero mean, unit variance per row', () => {
    const y = new LayerNorm(6).forward(randn([2, 3, 6], { generator: gen() }));
    const d = y.data;
    for (let r = 0; r < 6; r++) {
      const row = Array.from(d.slice(r * 6, r * 6 + 6));
      const mu = row.reduce((a, b) => a + b) / 6;
      const v = row.reduce((a, b) => a + (b - mu) ** 2, 0) / 6;
      assert.ok(Math.abs(mu) < 1e-5 && Math.abs(v - 1) < 1e-3, `row ${r}: mean ${mu}, var ${v}`);
    }
  });
  test('Embedding int32 [2, 3] → [2, 3, 4] picks rows', () => {
    const e = new Embedding(5, 4, { generator: gen() });
    const y = e.forward(tensor([[0, 1, 4], [4, 4, 2]], undefined, 'int32'));
    assert.deepEqual(y.shape, [2, 3, 4]);
    assert.deepEqual(Array.from(y.data.slice(8, 12)), Array.from(e.weight.data.slice(16, 20)));
  });
  test('Dropout zeroes about p of the elements in training and is the identity in eval', () => {
    const d = new Dropout(0.25, { generator: gen() });
    const x = ones([4000]);
    const y = d.forward(x);
    const zerosCount = y.toArray().filter((v) => v === 0).length;
    assert.ok(Math.abs(zerosCount / 4000 - 0.25) < 0.03, `${zerosCount} zeros`);
    assert.ok(y.toArray().every((v) => v === 0 || Math.abs(v - 4 / 3) < 1e-6));
    d.eval();
    assert.equal(d.forward(x), x);
  });
  test('a masked Conv2d applies its mask: a zero mask gives the bias alone', () => {
    const mask = zeros([3, 3, 2, 2]);
    const c = new Conv2d(2, 2, 3, { padding: 1, mask, generator: gen() });
    const y = c.forward(randn([1, 4, 4, 2]));
    for (let i = 0; i < y.size; i++) assert.ok(Math.abs(y.data[i]! - c.bias!.data[i % 2]!) < 1e-6);
    assert.deepEqual(c.namedBuffers().map(([n]) => n), ['mask']);
    assert.deepEqual(Object.keys(c.stateDict()), ['weight', 'bias'], 'the mask is rebuilt from config, not saved');
  });
});

describe('initialisation', () => {
  test('Conv2d(4, 8, 3): weights and bias within ±1/sqrt(Cin·kH·kW), kaiming-uniform a=√5', () => {
    const c = new Conv2d(4, 8, 3, { generator: gen(7) });
    const bound = 1 / Math.sqrt(36);
    const w = c.weight.toArray();
    assert.ok(w.every((v) => Math.abs(v) <= bound));
    assert.ok(Math.max(...w.map(Math.abs)) > 0.9 * bound, 'fills the range');
    assert.ok(c.bias!.toArray().every((v) => Math.abs(v) <= bound));
  });
  test('ConvTranspose2d(2, 6, 2) uses PyTorch\'s fanIn = Cout·kH·kW', () => {
    const c = new ConvTranspose2d(2, 6, 2, { generator: gen() });
    const bound = 1 / Math.sqrt(24);
    const w = c.weight.toArray();
    assert.ok(w.every((v) => Math.abs(v) <= bound) && Math.max(...w.map(Math.abs)) > 0.8 * bound);
  });
  test('the same seed builds the same weights; resetParameters bumps the version', () => {
    const a = new Net(gen(3));
    const b = new Net(gen(3));
    for (const [[na, pa], [nb, pb]] of a.namedParameters().map((e, i) => [e, b.namedParameters()[i]!] as const)) {
      assert.equal(na, nb);
      assert.deepEqual(pa.toArray(), pb.toArray());
    }
    const v = a.head.weight.version;
    a.head.resetParameters(gen(9));
    assert.ok(a.head.weight.version > v);
  });
  test('LayerNorm starts at scale 1, shift 0; no bias or no affine leave null', () => {
    const n = new LayerNorm(3);
    assert.deepEqual(n.weight!.toArray(), [1, 1, 1]);
    assert.deepEqual(n.bias!.toArray(), [0, 0, 0]);
    assert.equal(new LayerNorm(3, { bias: false }).bias, null);
    assert.deepEqual(new LayerNorm(3, { elementwiseAffine: false }).parameters(), []);
  });
});

describe('Module tree', () => {
  test('namedParameters gives dotted names in registration order', () => {
    const names = new Net().namedParameters().map(([n]) => n);
    assert.deepEqual(names, [
      'stem.weight', 'stem.bias',
      'blocks.0.conv.weight', 'blocks.0.conv.bias', 'blocks.0.norm.weight', 'blocks.0.norm.bias',
      'blocks.1.conv.weight', 'blocks.1.conv.bias', 'blocks.1.norm.weight', 'blocks.1.norm.bias',
      'head.weight', 'head.bias',
    ]);
  });
  test('parameters are Parameters that require grad; numParameters counts scalars', () => {
    const l = new Linear(3, 2);
    assert.ok(l.parameters().every((p) => p instanceof Parameter && p.requiresGrad));
    assert.equal(l.numParameters(), 8);
    assert.equal(new Linear(3, 2, { bias: false }).numParameters(), 6);
  });
  test('a module shared twice is visited once and its parameters appear once', () => {
    const shared = new Linear(2, 2);
    const seq = new Sequential(shared, shared);
    assert.equal(seq.parameters().length, 2);
    assert.deepEqual(seq.namedParameters().map(([n]) => n), ['0.weight', '0.bias']);
  });
  test('train() / eval() reach every descendant', () => {
    const n = new Net();
    n.eval();
    assert.ok(n.modules().every((m) => !m.training));
    n.train();
    assert.ok(n.modules().every((m) => m.training));
  });
  test('forward and backward through the whole net reach every parameter', () => {
    const n = new Net();
    sum(n.forward(randn([2, 3, 3, 3], { generator: gen(5) }))).backward();
    for (const [name, p] of n.namedParameters()) assert.ok(p.grad !== null, `${name} has a gradient`);
    n.zeroGrad();
    assert.ok(n.parameters().every((p) => p.grad === null));
  });
  test('Sequential chains forward; ModuleList indexes', () => {
    const s = new Sequential(new Linear(3, 5), new Linear(5, 2));
    assert.deepEqual(s.forward(randn([4, 3])).shape, [4, 2]);
    assert.equal(s.length, 2);
    assert.equal(s.at(-1), [...s][1]);
    assert.throws(() => s.at(2), ArgumentError);
  });
  test('toString shows the tree', () => {
    const s = String(new Sequential(new Conv2d(3, 8, 3, { padding: 1 }), new Linear(8, 2, { bias: false })));
    assert.equal(s, 'Sequential(\n  (0): Conv2d(3, 8, kernel=[3, 3], padding=1)\n  (1): Linear(in=8, out=2, bias=false)\n)');
  });
  test('registering a name twice, a dotted name or a plain tensor as a parameter throws', () => {
    class Bad extends Module {
      constructor(kind: number) {
        super();
        if (kind === 0) { this.registerParameter('w', new Parameter(zeros([1]))); this.registerBuffer('w', zeros([1])); }
        if (kind === 1) this.registerModule('a.b', new Linear(1, 1));
        if (kind === 2) this.registerParameter('w', zeros([1]) as Parameter);
      }
    }
    for (const k of [0, 1, 2]) assert.throws(() => new Bad(k), ArgumentError);
    assert.throws(() => new Parameter(zeros([2], 'int32')), DTypeError);
  });
});

describe('constructor checks', () => {
  test('throws when sizes are not positive integers', () => {
    assert.throws(() => new Linear(0, 2), /Linear: inFeatures must be a positive integer, got 0/);
    assert.throws(() => new Conv2d(3, 2.5, 3), /Conv2d: outChannels/);
    assert.throws(() => new Conv2d(3, 2, [3, 0]), /Conv2d: kernelSize/);
    assert.throws(() => new Conv2d(3, 2, 3, { padding: -1 }), /Conv2d: padding/);
    assert.throws(() => new Conv2d(3, 2, 3, { stride: 0 }), /Conv2d: stride/);
    assert.throws(() => new Embedding(3, 0), /Embedding: embeddingDim/);
    assert.throws(() => new LayerNorm(4, { eps: 0 }), /LayerNorm: eps/);
    assert.throws(() => new Dropout(1), /Dropout: p must be in \[0, 1\)/);
    assert.throws(() => new Linear(2, 2, { dtype: 'int32' }), /Linear: dtype/);
  });
  test('throws when a mask has the wrong shape (naming both) or values other than 0 / 1', () => {
    assert.throws(() => new Conv2d(2, 3, 3, { mask: ones([3, 3, 3, 2]) }), (e: unknown) =>
      e instanceof ShapeError && /Conv2d: mask shape \[3, 3, 3, 2\] must equal the weight's \[3, 3, 2, 3\]/.test(e.message));
    assert.throws(() => new Conv2d(1, 1, 1, { mask: tensor([0.5], [1, 1, 1, 1]) }), /only 0 and 1/);
    assert.throws(() => new Conv2d(1, 1, 1, { mask: ones([1, 1, 1, 1], 'float64') }), (e: unknown) =>
      e instanceof DTypeError && e.message === "Conv2d: mask has dtype float64, expected float32 (the weight's)");
  });
  test('throws when outputPadding is not below stride or dilation', () => {
    assert.throws(() => new ConvTranspose2d(2, 2, 3, { stride: 2, outputPadding: 2 }), /ConvTranspose2d: outputPadding/);
  });
  test('throws at forward when the input does not fit, naming the op and both shapes', () => {
    assert.throws(() => new Conv2d(3, 4, 3).forward(randn([1, 5, 5, 2])), (e: unknown) =>
      e instanceof ShapeError && /conv2d: x channels \(2\) must equal weight in-channels \(3\).*\[1, 5, 5, 2\].*\[3, 3, 3, 4\]/.test(e.message));
    assert.throws(() => new LayerNorm(4, { elementwiseAffine: false }).forward(randn([2, 3])), /LayerNorm: x last axis must be 4, got shape \[2, 3\]/);
    assert.throws(() => new Linear(3, 2).forward(randn([2, 4])), /linear: x last axis \(4\)/);
  });
});

describe('state dicts', () => {
  test('round trip: a fresh net loads another\'s state and computes the same', () => {
    const a = new Net(gen(1)).eval();
    const b = new Net(gen(2)).eval();
    const x = randn([1, 3, 3, 3], { generator: gen(4) });
    assert.notDeepEqual(a.forward(x).toArray(), b.forward(x).toArray());
    const versions = b.parameters().map((p) => p.version);
    const r = b.loadStateDict(a.stateDict());
    assert.deepEqual(r, { missingKeys: [], unexpectedKeys: [] });
    assert.deepEqual(a.forward(x).toArray(), b.forward(x).toArray());
    assert.ok(b.parameters().every((p, i) => p.version > versions[i]!), 'loading bumps versions');
  });
  test('stateDict shares storage in arpix layout and holds persistent buffers only', () => {
    class WithBuffers extends Module {
      constructor() {
        super();
        this.registerParameter('w', new Parameter(zeros([2])));
        this.registerBuffer('running', ones([2]));
        this.registerBuffer('scratch', ones([3]), { persistent: false });
      }
    }
    const m = new WithBuffers();
    const sd = m.stateDict();
    assert.deepEqual(Object.keys(sd), ['w', 'running']);
    assert.equal(sd['w']!.storage, m.parameters()[0]!.storage);
    assert.equal(sd['w']!.requiresGrad, false);
  });
  test('strict load names missing and unexpected keys and changes nothing', () => {
    const n = new Net();
    const sd = n.stateDict();
    const before = n.head.weight.toArray();
    const bad = { ...sd, 'head.extra': zeros([1]) } as Record<string, Tensor>;
    delete bad['blocks.1.norm.bias'];
    bad['head.weight'] = zeros([2, 4]);
    assert.throws(() => n.loadStateDict(bad), (e: unknown) =>
      e instanceof StateDictError && e.missingKeys.join() === 'blocks.1.norm.bias' && e.unexpectedKeys.join() === 'head.extra' &&
      /missing key\(s\) 'blocks.1.norm.bias'; unexpected key\(s\) 'head.extra'/.test(e.message));
    assert.deepEqual(n.head.weight.toArray(), before);
  });
  test('non-strict load reports keys and loads the rest', () => {
    const a = new Net(gen(1));
    const b = new Net(gen(2));
    const sd = a.stateDict();
    delete sd['stem.bias'];
    const r = b.loadStateDict({ ...sd, junk: zeros([1]) }, { strict: false });
    assert.deepEqual(r, { missingKeys: ['stem.bias'], unexpectedKeys: ['junk'] });
    assert.deepEqual(b.head.weight.toArray(), a.head.weight.toArray());
    assert.notDeepEqual(b.stem.bias!.toArray(), a.stem.bias!.toArray());
  });
  test('a shape mismatch names the key and both shapes, before anything is written', () => {
    const n = new Net();
    const sd = n.stateDict();
    const before = n.stem.weight.toArray();
    sd['stem.weight'] = zeros([1, 1, 3, 4]).add(1);
    sd['head.weight'] = zeros([3, 4]);
    assert.throws(() => n.loadStateDict(sd), (e: unknown) =>
      e instanceof ShapeError && e.message === "loadStateDict: 'head.weight' has shape [3, 4] in the state dict but [2, 4] in the module");
    assert.deepEqual(n.stem.weight.toArray(), before);
  });
  test('an int32 tensor for a float parameter is a DTypeError; float64 converts', () => {
    const l = new Linear(2, 1);
    assert.throws(() => l.loadStateDict({ weight: zeros([1, 2], 'int32'), bias: zeros([1]) }), DTypeError);
    l.loadStateDict({ weight: tensor([[0.5, 0.25]], undefined, 'float64'), bias: zeros([1]) });
    assert.deepEqual(l.weight.toArray(), [0.5, 0.25]);
  });
  test("layout 'pytorch' gives OIHW conv weights and [Cin, Cout, kH, kW] transpose weights, and loads back", () => {
    class Both extends Module {
      readonly c = this.registerModule('c', new Conv2d(2, 3, [4, 5], { generator: gen() }));
      readonly t = this.registerModule('t', new ConvTranspose2d(2, 3, [4, 5], { generator: gen() }));
    }
    const m = new Both();
    assert.deepEqual(m.stateLayouts(), { 'c.weight': 'conv2d', 't.weight': 'convTranspose2d' });
    const sd = m.stateDict({ layout: 'pytorch' });
    assert.deepEqual(sd['c.weight']!.shape, [3, 2, 4, 5]);
    assert.deepEqual(sd['t.weight']!.shape, [2, 3, 4, 5]);
    // element [o, i, y, x] of OIHW is element [y, x, i, o] of HWIO
    const hwio = m.c.weight.data;
    assert.equal(sd['c.weight']!.data[((2 * 2 + 1) * 4 + 3) * 5 + 4], hwio[((3 * 5 + 4) * 2 + 1) * 3 + 2]);
    const fresh = new Both();
    fresh.loadStateDict(sd, { layout: 'pytorch' });
    assert.deepEqual(fresh.c.weight.toArray(), m.c.weight.toArray());
    assert.deepEqual(fresh.t.weight.toArray(), m.t.weight.toArray());
    assert.throws(() => fresh.loadStateDict(m.stateDict(), { layout: 'pytorch' }), /loadStateDict: 'c.weight' has shape \[4, 5, 2, 3\] in the state dict but \[3, 2, 4, 5\] in the module \(PyTorch's layout; \[4, 5, 2, 3\] in arpix's\)/);
  });
  test('toPyTorchLayout and fromPyTorchLayout are inverse and reject rank ≠ 4', () => {
    const w = randn([3, 2, 4, 5], { generator: gen() });
    for (const k of ['conv2d', 'convTranspose2d'] as const) {
      assert.deepEqual(fromPyTorchLayout(toPyTorchLayout(w, k), k).toArray(), w.toArray());
    }
    assert.throws(() => toPyTorchLayout(zeros([2, 2]), 'conv2d', 'w'), /toPyTorchLayout: w is a convolution weight and must have rank 4, got shape \[2, 2\]/);
  });
});

test('withoutInitialisers: uniform_ and normal_ fill nothing but move their generator on as a draw does', () => {
  for (const fill of [(t: Tensor, g: Generator) => uniform_(t, -1, 1, g), (t: Tensor, g: Generator) => normal_(t, 0, 1, g)]) {
    const drawn = new Generator(4);
    const a = zeros([7, 3]);
    fill(a, drawn);
    const skipped = new Generator(4);
    const b = zeros([7, 3]);
    const { loaded } = withoutInitialisers(() => fill(b, skipped));
    assert.ok(Array.from(a.data).some((v) => v !== 0), 'the draw filled a');
    assert.ok(Array.from(b.data).every((v) => v === 0), 'b was left unfilled');
    assert.equal(skipped.offset, drawn.offset);
    assert.equal(loaded(), false);
    b.data.set(a.data);
    b.bumpVersion();
    assert.equal(loaded(), true);
    // What draws next is what would have been drawn next.
    const x = new Float32Array(5);
    const y = new Float32Array(5);
    drawn.uniform(x);
    skipped.uniform(y);
    assert.deepEqual(y, x);
  }
});
