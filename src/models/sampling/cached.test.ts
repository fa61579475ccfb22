// The cached samplers against the naive oracle: every logit within 1e-4 and every sampled value
// identical, for every model family with a cached sampler, grey and colour, with and without
// labels, and for completion.

import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import * as ax from '../../ops/index.js';
import { Generator } from '../../tensor/random.js';
import { createModel } from '../index.js';
import { cachedStepper } from './sample.js';
import { runSampler } from './driver.js';
import { sampleNaive, pixelParams } from './naive.js';
import { prepareSampling, type SampleOptions } from './options.js';
import { familyCases, tinyConfig, type CaseTemplate } from '../../testing/families.js';
import { familyOf } from '../index.js';

const templates: CaseTemplate[] = [
  { name: 'categorical grey', height: 8, width: 4, channels: 1, likelihood: { kind: 'categorical', levels: 16 } },
  { name: 'categorical RGB with labels', height: 5, width: 4, channels: 3, likelihood: { kind: 'categorical', levels: 8 }, numClasses: 3 },
  { name: 'mixture RGB with labels', height: 4, width: 8, channels: 3, likelihood: { kind: 'logistic-mixture', nrMix: 3 }, numClasses: 3 },
  { name: 'bernoulli grey with vector h', height: 8, width: 8, channels: 1, likelihood: { kind: 'bernoulli' }, conditionDim: 2 },
  { name: 'palette RGB with labels', height: 5, width: 4, channels: 3, likelihood: { kind: 'palette', k: 5, colours: [0, 0, 0, 200, 30, 30, 30, 200, 30, 30, 30, 200, 255, 255, 255] }, numClasses: 3 },
];
const cases = familyCases(templates);

function optionsFor(model: ReturnType<typeof createModel>, extra: Partial<SampleOptions> = {}): SampleOptions {
  const n = 3;
  const opts: SampleOptions = { n, seed: 11, ...extra };
  if (model.config.numClasses > 0) opts.labels = [0, 2, 1];
  if (model.config.conditionDim > 0) opts.h = ax.randn([n, model.config.conditionDim], { generator: new Generator(4) });
  return opts;
}

describe('cached sampler = naive sampler', () => {
  test('every family has a cached sampler', () => {
    for (const [name, cfg] of cases) {
      const model = createModel(cfg);
      assert.notEqual(model.cachedStepper(prepareSampling(model, optionsFor(model))), null, `${name} samples naively only`);
    }
  });
  for (const [name, base] of cases) {
    // Completion keeps 2 rows and then a mask's pixels: both kinds of kept element in one case.
    for (const completion of ['none', 'mask'] as const) {
      const label = { none: '', mask: ', completion of 2 kept rows and a mask' }[completion];
      test(`${name}${label}`, () => {
        const model = createModel(base, { seed: 5 });
        for (const p of model.parameters()) p.data.set(ax.mul(p, 2).data); // sharper distributions
        const { height: h, width: w, channels: c } = model.config;
        const levels = model.likelihood.levels;
        const images = ax.randint(0, levels, [3, h, w, c], { generator: new Generator(6) });
        const mask = completion === 'mask' ? Array.from({ length: h * w }, (_, q) => ((q * 7) % 3 === 0 ? 1 : 0)) : null;
        const extra: Partial<SampleOptions> = completion === 'none' ? {} : { complete: { images, keepRows: 2, mask } };
        const pixels: string[] = [];
        const opts = optionsFor(model, { ...extra, onPixel: (y, x, v) => { pixels.push(`${y},${x}`); assert.equal(v.length, 3 * c); } });
        const start = completion === 'none' ? 0 : 2;
        const naive = sampleNaive(model, opts);
        // Run the cached sampler while recording the parameters it hands to the head.
        const s = prepareSampling(model, opts);
        const seen: { y: number; x: number; pass: number; params: Float32Array }[] = [];
        const cached = runSampler(model, s, opts, (setup) => {
          const inner = cachedStepper(model, setup)!;
          return { ...inner, pixel: (y, x, pass) => { const p = inner.pixel(y, x, pass); seen.push({ y, x, pass, params: p.slice() }); return p; } };
        });
        assert.deepEqual(Array.from(cached.data), Array.from(naive.data), 'sampled values differ');
        // Parameters of element (pixel, channel) depend only on earlier elements, so one forward
        // pass on the finished canvas gives what the naive sampler saw at every step.
        const full = ax.noGrad(() => { model.eval(); return model.params(cached, s.cond); });
        const per = model.paramsPerPixel / (model.likelihood.perChannel ? c : 1);
        for (const { y, x, pass, params } of seen) {
          const want = pixelParams(full, y * w + x);
          for (let i = 0; i < opts.n; i++) {
            for (let k = pass * (model.likelihood.perChannel ? per : 0); k < (model.likelihood.perChannel ? (pass + 1) * per : model.paramsPerPixel); k++) {
              const a = params[i * model.paramsPerPixel + k]!;
              const b = want[i * model.paramsPerPixel + k]!;
              assert.ok(Math.abs(a - b) <= 1e-4 * Math.max(1, Math.abs(b)), `(${y}, ${x}) pass ${pass} image ${i} param ${k}: cached ${a} vs naive ${b}`);
            }
          }
        }
        const passes = model.likelihood.perChannel ? c : 1;
        let steps = 0;
        for (let q = start * w; q < h * w; q++) steps += mask?.[q] ? 1 : passes;
        assert.equal(seen.filter((e) => e.y >= start).length, steps);
        assert.equal(pixels.length, 2 * (h - start) * w, 'onPixel: twice per pixel after the kept rows (two samplers)');
        assert.deepEqual(pixels.slice(0, 3), [`${start},0`, `${start},1`, `${start},2`]);
        for (let i = 0; i < 3; i++) {
          for (let q = 0; q < h * w; q++) {
            if (q >= start * w && !mask?.[q]) continue;
            for (let ch = 0; ch < c; ch++) assert.equal(cached.data[(i * h * w + q) * c + ch], images.data[(i * h * w + q) * c + ch], `kept pixel ${q} of image ${i}`);
          }
        }
      });
    }
  }
});

describe('model.sample', () => {
  test('uses the cached sampler by default and gives the naive sampler\'s images; a bad method is an error', () => {
    const model = createModel(tinyConfig(familyOf('gated-pixelcnn')!, { name: '', height: 4, width: 4, channels: 1, likelihood: { kind: 'categorical', levels: 4 } }), { seed: 2 });
    let rows = 0;
    const a = model.sample({ n: 2, seed: 3, onRow: () => rows++ });
    assert.equal(rows, 4);
    assert.deepEqual(a.toArray(), model.sample({ n: 2, seed: 3, method: 'naive' }).toArray());
    assert.throws(() => model.sample({ n: 2, method: 'fast' as 'naive' }), /method must be 'cached' or 'naive'/);
  });
});
