// The two invariants every model must satisfy, as invariants: for random weights the
// probabilities of all images of a tiny size sum to 1 (normalisation), and the parameters of
// element i do not depend on any element j ≥ i (causality, via exact zero gradients).

import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import * as ax from '../ops/index.js';
import { Generator } from '../tensor/random.js';
import { Tensor } from '../tensor/tensor.js';
import { Conv2d } from '../nn/index.js';
import { createModel, familyOf, type ModelConfig } from './index.js';
import { loadPreset, presetNames } from './presets.js';
import { familyCases, tinyConfig, type CaseTemplate, type TinyConfig } from '../testing/families.js';
import type { Condition } from './core/model.js';
import { backendName } from '../backends/registry.js';
import { loadNativeBackend } from '../backends/native/index.js';

type Tiny = TinyConfig;

/** A tiny config of a family by kind, for the few tests about one family's own behaviour. */
function tinyOf(kind: string, h: number, w: number, c: number, likelihood: CaseTemplate['likelihood'], extra: Record<string, unknown> = {}): Tiny {
  return tinyConfig(familyOf(kind)!, { name: '', height: h, width: w, channels: c, likelihood }, extra);
}

/** Every image of shape [H, W, C] with `levels` values, as one int32 batch. */
function allImages(h: number, w: number, c: number, levels: number): Tensor {
  const d = h * w * c;
  const count = levels ** d;
  const data = new Int32Array(count * d);
  for (let i = 0; i < count; i++) {
    let v = i;
    for (let j = d - 1; j >= 0; j--) {
      data[i * d + j] = v % levels;
      v = Math.floor(v / levels);
    }
  }
  return new Tensor(data, [count, h, w, c]);
}

function conditionFor(cfg: Tiny, n: number): Condition {
  const cond: Condition = {};
  if ((cfg.numClasses as number | undefined) ?? 0 > 0) cond.labels = ax.full([n], 1, 'int32');
  const dim = (cfg.conditionDim as number | undefined) ?? 0;
  if (dim > 0) cond.h = ax.add(ax.zeros([n, dim]), ax.randn([1, dim], { generator: new Generator(5) }));
  return cond;
}

// Every image of each template must fit in one batch (levels^(H·W·C) ≤ 5000).
const normalisationTemplates: CaseTemplate[] = [
  { name: 'bernoulli 3×3 grey', height: 3, width: 3, channels: 1, likelihood: { kind: 'bernoulli' } },
  { name: 'bernoulli 3×3 grey with a label', height: 3, width: 3, channels: 1, likelihood: { kind: 'bernoulli' }, numClasses: 2 },
  { name: 'categorical(2) 2×2 RGB', height: 2, width: 2, channels: 3, likelihood: { kind: 'categorical', levels: 2 } },
  { name: 'categorical(4) 1×2 RGB with a label', height: 1, width: 2, channels: 3, likelihood: { kind: 'categorical', levels: 4 }, numClasses: 3 },
  { name: 'categorical(4) 2×2 grey with vector h', height: 2, width: 2, channels: 1, likelihood: { kind: 'categorical', levels: 4 }, conditionDim: 2 },
  { name: 'mixture(4 levels) 1×2 RGB', height: 1, width: 2, channels: 3, likelihood: { kind: 'logistic-mixture', nrMix: 2, levels: 4 } },
  { name: 'mixture(2 levels) 2×2 RGB', height: 2, width: 2, channels: 3, likelihood: { kind: 'logistic-mixture', nrMix: 2, levels: 2 } },
  { name: 'mixture(4 levels) 2×2 grey with label and vector h', height: 2, width: 2, channels: 1, likelihood: { kind: 'logistic-mixture', nrMix: 3, levels: 4 }, numClasses: 2, conditionDim: 3 },
];
const normalisationCases = familyCases(normalisationTemplates);

const causalityTemplates: CaseTemplate[] = [
  { name: 'categorical RGB', height: 4, width: 4, channels: 3, likelihood: { kind: 'categorical', levels: 4 } },
  { name: 'categorical RGB with label', height: 5, width: 5, channels: 3, likelihood: { kind: 'categorical', levels: 4 }, numClasses: 2 },
  { name: 'mixture RGB', height: 4, width: 4, channels: 3, likelihood: { kind: 'logistic-mixture', nrMix: 2 } },
  { name: 'bernoulli grey with vector h', height: 5, width: 5, channels: 1, likelihood: { kind: 'bernoulli' }, conditionDim: 2 },
  { name: 'categorical grey 8×8', height: 8, width: 8, channels: 1, likelihood: { kind: 'categorical', levels: 4 } },
  { name: 'palette RGB with label', height: 4, width: 4, channels: 3, likelihood: { kind: 'palette', k: 4, colours: [0, 0, 0, 250, 10, 10, 10, 250, 10, 255, 255, 255] }, numClasses: 2 },
];

test('every family of the table is tested: each has normalisation and causality cases', () => {
  for (const kind of new Set(familyCases(causalityTemplates).map(([, cfg]) => cfg.kind))) assert.ok(normalisationCases.some(([, cfg]) => cfg.kind === kind), kind);
  assert.ok(familyCases(causalityTemplates).length >= 3 * 3);
});

describe('normalisation: probabilities of all tiny images sum to 1', () => {
  for (const [name, cfg] of normalisationCases) {
    test(name, () => {
      const model = createModel(cfg, { seed: 3 });
      model.eval();
      // Random weights far from initialisation make a sloppy model visibly unnormalised.
      for (const p of model.parameters()) {
        const noise = ax.randn(p.shape, { generator: new Generator(p.size) });
        p.data.set(ax.add(p, ax.mul(noise, 0.3)).data);
      }
      const c = model.config;
      const levels = model.likelihood.levels;
      const images = allImages(c.height, c.width, c.channels, levels);
      if (images.shape[0]! > 5000) throw new Error('test case too large');
      const logp = ax.noGrad(() => model.logProb(images, conditionFor(cfg, images.shape[0]!)));
      const total = logp.toArray().reduce((s, v) => s + Math.exp(v), 0);
      assert.ok(Math.abs(total - 1) < 1e-4, `${name}: Σ p = ${total}`);
    });
  }
});

describe('elementLogProb: every element\'s conditional sums to 1 over its values, and the elements sum to logProb', () => {
  for (const [name, cfg] of normalisationCases) {
    test(name, () => {
      const model = createModel(cfg, { seed: 4 });
      model.eval();
      for (const p of model.parameters()) p.data.set(ax.add(p, ax.mul(ax.randn(p.shape, { generator: new Generator(p.size + 1) }), 0.3)).data);
      const c = model.config;
      const levels = model.likelihood.levels;
      const images = allImages(c.height, c.width, c.channels, levels);
      const cond = conditionFor(cfg, images.shape[0]!);
      const { elem, logp } = ax.noGrad(() => ({ elem: model.elementLogProb(images, cond), logp: model.logProb(images, cond) }));
      const d = model.dims;
      assert.deepEqual(elem.shape, [images.shape[0], c.height, c.width, c.channels]);
      const e = elem.data;
      for (let i = 0; i < images.shape[0]!; i++) {
        let total = 0;
        for (let j = 0; j < d; j++) total += e[i * d + j]!;
        assert.ok(Math.abs(total - logp.data[i]!) < 1e-4 * Math.max(1, Math.abs(total)), `${name}: image ${i}: Σ elements ${total} vs logProb ${logp.data[i]}`);
      }
      // allImages enumerates in lexicographic order: changing element j to v moves by (v − x_j)·levels^(d−1−j).
      for (let i = 0; i < images.shape[0]!; i += 3) {
        for (let j = 0; j < d; j++) {
          const stride = levels ** (d - 1 - j);
          const xj = images.data[i * d + j]!;
          let mass = 0;
          for (let v = 0; v < levels; v++) mass += Math.exp(e[(i + (v - xj) * stride) * d + j]!);
          assert.ok(Math.abs(mass - 1) < 1e-4, `${name}: image ${i}, element ${j}: Σ_v p(x_j = v | x_<j) = ${mass}`);
        }
      }
    });
  }
});

/**
 * d(projection of the parameters of element (pixel p, channel c)) / d(input) for every element.
 * Returns |gradient| per input element [H·W·C].
 */
function sensitivity(model: ReturnType<typeof createModel>, x: Tensor, pixel: number, channel: number | null, cond: Condition): Float32Array {
  const xin = x.detach().requireGrad();
  const params = model.network(xin, cond); // [1, H, W, P]
  const pcount = params.shape[3]!;
  const proj = new Float32Array(params.size);
  const per = channel === null ? pcount : pcount / model.config.channels;
  const start = channel === null ? 0 : channel * per;
  const r = ax.randn([per], { generator: new Generator(pixel * 7 + (channel ?? 0)) }).data;
  for (let k = 0; k < per; k++) proj[pixel * pcount + start + k] = r[k]! + 2;
  ax.sum(ax.mul(params, new Tensor(proj, params.shape))).backward();
  return Float32Array.from(xin.grad!.data, Math.abs);
}

describe('causality: exactly zero gradient to every later element', () => {
  const cases = familyCases(causalityTemplates, (f) => f.differentiableInput);
  for (const [name, cfg] of cases) {
    test(name, () => {
      const model = createModel(cfg, { seed: 1 });
      model.eval();
      const { height: h, width: w, channels: c } = model.config;
      const x = ax.mul(ax.randn([1, h, w, c], { generator: new Generator(2) }), 0.5);
      const cond = conditionFor(cfg, 1);
      const perChannel = model.likelihood.perChannel;
      for (let p = 0; p < h * w; p++) {
        for (const ch of perChannel ? [...Array(c).keys()] : [null]) {
          const g = sensitivity(model, x, p, ch, cond);
          for (let q = 0; q < h * w; q++) {
            for (let cc = 0; cc < c; cc++) {
              // Element (q, cc) is "later" than (p, ch) when it is a later pixel, the same pixel for
              // a whole-pixel head, or the same pixel at a channel ≥ ch for a per-channel head.
              const later = q > p || (q === p && (ch === null || cc >= ch));
              if (later) assert.equal(g[q * c + cc], 0, `${name}: params of pixel ${p}${ch === null ? '' : ` channel ${ch}`} depend on pixel ${q} channel ${cc}`);
            }
          }
        }
      }
    });
  }

  test('gated-pixelcnn has no blind spot: every earlier pixel in the receptive field matters', () => {
    // Receptive field of a first layer (k = 3) and 3 blocks (k = 3) covers 4 rows up and 4 columns left and right.
    const cfg = tinyOf('gated-pixelcnn', 5, 5, 1, { kind: 'categorical', levels: 4 }, { firstKernelSize: 3, dilations: [1, 1, 1] });
    const model = createModel(cfg, { seed: 4 });
    const x = ax.mul(ax.randn([1, 5, 5, 1], { generator: new Generator(3) }), 0.5);
    for (const p of [12, 24]) {
      const g = sensitivity(model, x, p, 0, {});
      for (let q = 0; q < p; q++) assert.ok(g[q]! > 0, `pixel ${p} does not see earlier pixel ${q}`);
    }
  });
});

describe('causality by intervention: changing every element from i on leaves the parameters of elements ≤ i exactly as they were', () => {
  // Gradients cannot see through a discrete input (an embedding): this test changes the integer
  // image instead, so it holds every family to the same definition.
  for (const [name, cfg] of familyCases(causalityTemplates)) {
    test(name, () => {
      const model = createModel(cfg, { seed: 1 });
      model.eval();
      const { height: h, width: w, channels: c } = model.config;
      const levels = model.likelihood.levels;
      const perChannel = model.likelihood.perChannel;
      const d = h * w * c;
      const rng = new Generator(8);
      const base = ax.randint(0, levels, [1, h, w, c], { generator: rng }).data as Int32Array;
      // Element e = (pixel, channel) in raster order, channels innermost; a whole-pixel head's
      // element is a pixel, so its interventions start at a pixel's first channel.
      const starts = perChannel ? [...Array(d).keys()] : [...Array(h * w).keys()].map((p) => p * c);
      const batch = new Int32Array((starts.length + 1) * d);
      batch.set(base);
      const shifts = ax.randint(1, Math.max(2, levels), [starts.length, d], { generator: rng }).data as Int32Array;
      starts.forEach((e, k) => {
        const img = batch.subarray((k + 1) * d, (k + 2) * d);
        img.set(base);
        for (let j = e; j < d; j++) img[j] = (base[j]! + shifts[k * d + j]!) % levels;
      });
      const n = starts.length + 1;
      // One image per forward pass: a kernel may sum in another (equally right) order for some
      // rows of a batch (oneDNN's AVX2 convolutions do, by a last ulp), so each image is the
      // same computation on different data.
      const cond = conditionFor(cfg, 1);
      const params = new Float64Array(n * h * w * model.paramsPerPixel);
      for (let k = 0; k < n; k++) {
        const one = ax.noGrad(() => model.params(new Tensor(batch.slice(k * d, (k + 1) * d), [1, h, w, c]), cond)).data;
        params.set(one, k * one.length);
      }
      const pp = model.paramsPerPixel;
      const per = perChannel ? pp / c : pp;
      starts.forEach((e, k) => {
        const pixel = Math.floor(e / c);
        // Parameters of every element up to and including e: pixels before, and at the pixel the
        // channels up to e's own (all of it for a whole-pixel head).
        const upto = pixel * pp + (perChannel ? ((e % c) + 1) * per : pp);
        for (let i = 0; i < upto; i++) {
          const a = params[i]!;
          const b = params[(k + 1) * h * w * pp + i]!;
          if (a !== b) assert.fail(`${name}: changing elements from ${e} on moved parameter ${i % pp} of pixel ${Math.floor(i / pp)}: ${a} → ${b}`);
        }
      });
    });
  }
});

describe('models', () => {
  test('every preset builds; gated-pixelcnn-fmnist has the masked formulation\'s 852k parameters minus its skipped taps', () => {
    for (const name of presetNames()) assert.ok(loadPreset(name).model.kind);
    const m = createModel(loadPreset('gated-pixelcnn-fmnist').model);
    // 852,160 in the masked 3×3 formulation; skipping the always-zero taps leaves 622,272.
    assert.equal(m.numParameters(), 622272);
  });
  test('bad configs and inputs are clear errors', () => {
    const ok = tinyOf('gated-pixelcnn', 4, 4, 1, { kind: 'bernoulli' });
    assert.throws(() => createModel({ ...ok, hiddenChanels: 4 }), /hiddenChanels is not a known key/);
    assert.throws(() => createModel({ ...ok, hiddenChannels: '4' }), /hiddenChannels must be a number/);
    assert.throws(() => createModel({ ...ok, kind: 'pixelrnn' }), /kind must be one of/);
    assert.throws(() => createModel({ ...ok, likelihood: { kind: 'categorical', levls: 4 } }), /likelihood.levls is not a known key/);
    assert.throws(() => createModel(tinyOf('pixelcnn++', 6, 6, 3, { kind: 'categorical', levels: 4 })), /use 'logistic-mixture'/);
    const model = createModel(ok);
    assert.throws(() => model.logProb(ax.zeros([1, 4, 4, 1], 'int32').cast('float32')), /images must be int32 \[N, 4, 4, 1\]/);
    assert.throws(() => model.logProb(ax.full([1, 4, 4, 1], 2, 'int32')), /contain the value 2 but this model has 2 levels/);
    assert.throws(() => model.logProb(ax.zeros([1, 4, 4, 1], 'int32'), { labels: ax.zeros([1], 'int32') }), /unconditional/);
    const cond = createModel({ ...ok, numClasses: 3 });
    assert.throws(() => cond.logProb(ax.zeros([1, 4, 4, 1], 'int32')), /labels are required/);
    assert.throws(() => cond.logProb(ax.zeros([1, 4, 4, 1], 'int32'), { labels: ax.full([1], 3, 'int32') }), /outside 0..2/);
  });
  test('the same seed builds the same weights; bits/dim of an untrained categorical model is near 8', () => {
    const cfg = loadPreset('gated-pixelcnn-fmnist').model as ModelConfig;
    const a = createModel(cfg, { seed: 9 });
    const b = createModel(cfg, { seed: 9 });
    assert.deepEqual(a.parameters()[3]!.toArray(), b.parameters()[3]!.toArray());
  });
});

describe('native convolutions behind every preset', () => {
  const nb = loadNativeBackend();
  const skip = nb && backendName() === 'native' ? false : 'the native backend is not in use';
  test('a training step and cached sampling of each preset never run on oneDNN\'s reference loops', { skip }, () => {
    for (const name of presetNames()) {
      nb!.clearCaches();
      const model = createModel(loadPreset(name).model, { seed: 0 });
      // Families without convolutions (the transformers) have nothing to run on oneDNN's convolutions.
      if (!model.modules().some((m) => m instanceof Conv2d)) continue;
      const { height: h, width: w, channels: c, numClasses } = model.config;
      const images = ax.randint(0, model.likelihood.levels, [2, h, w, c], { generator: new Generator(1) });
      const labels = numClasses > 0 ? ax.randint(0, numClasses, [2], { generator: new Generator(2) }) : undefined;
      model.train();
      model.loss(images, { labels }).backward();
      model.eval();
      // The CIFAR-10 PixelCNN++ (53.6M parameters) and PixelRNNs (12 layers of h = 128) share their
      // layer types with the small presets; sampling them here would take minutes.
      if (!['pixelcnnpp-cifar10', 'row-lstm-cifar10', 'diagonal-bilstm-cifar10'].includes(name)) model.sample({ n: 2, seed: 1, labels });
      const all = nb!.convImplementations();
      assert.ok(all.length > 0, `${name}: convolutions were recorded`);
      assert.deepEqual(all.filter((x) => x.impl.startsWith('ref')).map((x) => x.what), [], `${name}: layers on ref:any`);
    }
  });
});
