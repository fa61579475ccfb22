// The two invariants every model must satisfy, as invariants: for random weights the
// probabilities of all images of a tiny size sum to 1 (normalisation), and the parameters of
// element i do not depend on any element j ≥ i (causality, via exact zero gradients).

import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import * as ax from '../ops/index.js';
import { Generator } from '../tensor/random.js';
import { Tensor } from '../tensor/tensor.js';
import { createModel, loadPreset, presetNames, type ModelConfig } from './index.js';
import type { Condition } from './model.js';
import { backendName } from '../backends/registry.js';
import { loadNativeBackend } from '../backends/native/index.js';

type Tiny = Record<string, unknown> & { kind: string };

const tinyArch: Record<string, Record<string, unknown>> = {
  'pixelcnn': { hiddenChannels: 6, residualBlocks: 2, firstKernelSize: 3, kernelSize: 3, outputHidden: 8 },
  'gated-pixelcnn': { hiddenChannels: 6, kernelSize: 3, firstKernelSize: 3, dilations: [1, 2] },
  'pixelcnn++': { filters: 4, resnetBlocks: 1, resolutions: 2, dropout: 0 },
};

function tinyConfig(kind: string, h: number, w: number, c: number, likelihood: Record<string, unknown>, extra: Record<string, unknown> = {}): Tiny {
  return { kind, height: h, width: w, channels: c, likelihood, ...tinyArch[kind], ...extra };
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

const normalisationCases: [string, Tiny][] = [];
for (const kind of ['pixelcnn', 'gated-pixelcnn']) {
  normalisationCases.push([`${kind} bernoulli 3×3 grey`, tinyConfig(kind, 3, 3, 1, { kind: 'bernoulli' })]);
  normalisationCases.push([`${kind} categorical(2) 2×2 RGB`, tinyConfig(kind, 2, 2, 3, { kind: 'categorical', levels: 2 })]);
  normalisationCases.push([`${kind} categorical(4) 1×2 RGB with a label`, tinyConfig(kind, 1, 2, 3, { kind: 'categorical', levels: 4 }, { numClasses: 3 })]);
  normalisationCases.push([`${kind} mixture(4 levels) 1×2 RGB`, tinyConfig(kind, 1, 2, 3, { kind: 'logistic-mixture', nrMix: 2, levels: 4 })]);
  normalisationCases.push([`${kind} mixture(4 levels) 2×2 grey with label and vector h`, tinyConfig(kind, 2, 2, 1, { kind: 'logistic-mixture', nrMix: 3, levels: 4 }, { numClasses: 2, conditionDim: 3 })]);
}
normalisationCases.push(['pixelcnn++ mixture(2 levels) 2×2 RGB', tinyConfig('pixelcnn++', 2, 2, 3, { kind: 'logistic-mixture', nrMix: 2, levels: 2 }, { resolutions: 2 })]);
normalisationCases.push(['pixelcnn++ bernoulli 3×3 grey with a label', tinyConfig('pixelcnn++', 3, 3, 1, { kind: 'bernoulli' }, { resolutions: 1, numClasses: 2 })]);
normalisationCases.push(['pixelcnn++ categorical(4) 2×2 grey with vector h', tinyConfig('pixelcnn++', 2, 2, 1, { kind: 'categorical', levels: 4 }, { conditionDim: 2 })]);

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
  const cases: [string, Tiny][] = [
    ['pixelcnn categorical RGB', tinyConfig('pixelcnn', 4, 4, 3, { kind: 'categorical', levels: 4 })],
    ['pixelcnn mixture RGB', tinyConfig('pixelcnn', 4, 4, 3, { kind: 'logistic-mixture', nrMix: 2 })],
    ['gated-pixelcnn categorical RGB with label', tinyConfig('gated-pixelcnn', 5, 5, 3, { kind: 'categorical', levels: 4 }, { numClasses: 2 })],
    ['gated-pixelcnn bernoulli grey', tinyConfig('gated-pixelcnn', 5, 5, 1, { kind: 'bernoulli' })],
    ['gated-pixelcnn mixture RGB', tinyConfig('gated-pixelcnn', 4, 4, 3, { kind: 'logistic-mixture', nrMix: 2 })],
    ['pixelcnn++ mixture RGB', tinyConfig('pixelcnn++', 4, 4, 3, { kind: 'logistic-mixture', nrMix: 2 }, { resolutions: 2 })],
    ['pixelcnn++ categorical grey, 3 resolutions', tinyConfig('pixelcnn++', 8, 8, 1, { kind: 'categorical', levels: 4 }, { resolutions: 3 })],
  ];
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
    const cfg = tinyConfig('gated-pixelcnn', 5, 5, 1, { kind: 'categorical', levels: 4 }, { dilations: [1, 1, 1] });
    const model = createModel(cfg, { seed: 4 });
    const x = ax.mul(ax.randn([1, 5, 5, 1], { generator: new Generator(3) }), 0.5);
    for (const p of [12, 24]) {
      const g = sensitivity(model, x, p, 0, {});
      for (let q = 0; q < p; q++) assert.ok(g[q]! > 0, `pixel ${p} does not see earlier pixel ${q}`);
    }
  });
});

describe('models', () => {
  test('every preset builds; gated-pixelcnn-fmnist has the masked formulation\'s 852k parameters minus its skipped taps', () => {
    for (const name of presetNames()) assert.ok(loadPreset(name).model.kind);
    const m = createModel(loadPreset('gated-pixelcnn-fmnist').model);
    // 852,160 in the masked 3×3 formulation; skipping the always-zero taps leaves 622,272.
    assert.equal(m.numParameters(), 622272);
  });
  test('bad configs and inputs are clear errors', () => {
    const ok = tinyConfig('gated-pixelcnn', 4, 4, 1, { kind: 'bernoulli' });
    assert.throws(() => createModel({ ...ok, hiddenChanels: 4 }), /hiddenChanels is not a known key/);
    assert.throws(() => createModel({ ...ok, hiddenChannels: '4' }), /hiddenChannels must be a number/);
    assert.throws(() => createModel({ ...ok, kind: 'pixelrnn' }), /kind must be one of/);
    assert.throws(() => createModel({ ...ok, likelihood: { kind: 'categorical', levls: 4 } }), /likelihood.levls is not a known key/);
    assert.throws(() => createModel(tinyConfig('pixelcnn++', 6, 6, 3, { kind: 'categorical', levels: 4 })), /use 'logistic-mixture'/);
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
      const { height: h, width: w, channels: c, numClasses } = model.config;
      const images = ax.randint(0, model.likelihood.levels, [2, h, w, c], { generator: new Generator(1) });
      const labels = numClasses > 0 ? ax.randint(0, numClasses, [2], { generator: new Generator(2) }) : undefined;
      model.train();
      model.loss(images, { labels }).backward();
      model.eval();
      // PixelCNN++ on CIFAR-10 (53.6M parameters) shares its layer types with the small preset.
      if (name !== 'pixelcnnpp-cifar10') model.sample({ n: 2, seed: 1, labels });
      const all = nb!.convImplementations();
      assert.ok(all.length > 0, `${name}: convolutions were recorded`);
      assert.deepEqual(all.filter((x) => x.impl.startsWith('ref')).map((x) => x.what), [], `${name}: layers on ref:any`);
    }
  });
});
