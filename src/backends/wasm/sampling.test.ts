// Cached sampling of every family on the wasm backend: the same seed gives the same images and the
// same parameters bit for bit (WebAssembly is deterministic), and every step's parameters agree
// with one forward pass of the ts reference over the finished canvas (each step's parameters
// depend only on the pixels before it, so that pass holds what every step should have seen).
// Skipped, saying why, when the module is not built.

import assert from 'node:assert/strict';
import { after, describe, test } from 'node:test';
import * as ax from '../../ops/index.js';
import { createModel } from '../../models/index.js';
import { cachedStepper } from '../../models/sampling/sample.js';
import { runSampler } from '../../models/sampling/driver.js';
import { pixelParams } from '../../models/sampling/naive.js';
import { prepareSampling, type SampleOptions } from '../../models/sampling/options.js';
import { familyCases, type CaseTemplate } from '../../testing/families.js';
import { uniform } from '../../testing/kernels.js';
import { createLikelihood } from '../../likelihoods/index.js';
import { Generator } from '../../tensor/random.js';
import '../node.js'; // registers the wasm backend
import { backendName, setBackend } from '../registry.js';
import { wasmBackend, wasmLoadError } from './node.js';

const skip = wasmBackend ? false : `wasm backend not built (${wasmLoadError}): run \`npm run build:wasm\` (needs \`apt-get install -y clang-14 lld-14\`)`;

const templates: CaseTemplate[] = [
  { name: 'categorical grey', height: 8, width: 5, channels: 1, likelihood: { kind: 'categorical', levels: 16 } },
  { name: 'mixture RGB with labels', height: 4, width: 8, channels: 3, likelihood: { kind: 'logistic-mixture', nrMix: 3 }, numClasses: 3 },
];

describe('cached sampling on the wasm backend', { skip }, () => {
  const before = backendName();
  after(() => setBackend(before));

  for (const [name, cfg] of familyCases(templates)) {
    test(`${name}: the same images twice, and every step's parameters as the ts reference's`, () => {
      const model = createModel(cfg, { seed: 5 });
      for (const p of model.parameters()) p.data.set(ax.mul(p, 2).data); // sharper distributions
      const n = 4;
      const opts: SampleOptions = { n, seed: 11 };
      if (model.config.numClasses > 0) opts.labels = [0, 2, 1, 1];
      const { width: w, channels: c } = model.config;

      setBackend('wasm');
      const run = () => {
        const s = prepareSampling(model, opts);
        const seen: { y: number; x: number; pass: number; params: Float32Array }[] = [];
        const images = runSampler(model, s, opts, (setup) => {
          const inner = cachedStepper(model, setup)!;
          return { ...inner, pixel: (y, x, pass) => { const p = inner.pixel(y, x, pass); seen.push({ y, x, pass, params: p.slice() }); return p; } };
        });
        return { images, seen, cond: s.cond };
      };
      wasmBackend!.clearCaches();
      const first = run();
      assert.ok(wasmBackend!.residentSize().blocks > 0, 'weights or a step plan became resident: the kernels ran on wasm');
      const second = run();
      assert.deepEqual(Array.from(second.images.data), Array.from(first.images.data), 'the same seed gave other images');
      assert.equal(second.seen.length, first.seen.length);
      first.seen.forEach((e, i) => assert.deepEqual(second.seen[i]!.params, e.params, `step (${e.y}, ${e.x}) pass ${e.pass}: other parameters the second time`));

      setBackend('ts');
      const full = ax.noGrad(() => { model.eval(); return model.params(first.images, first.cond); });
      const per = model.paramsPerPixel / (model.likelihood.perChannel ? c : 1);
      for (const { y, x, pass, params } of first.seen) {
        const want = pixelParams(full, y * w + x);
        const [from, to] = model.likelihood.perChannel ? [pass * per, (pass + 1) * per] : [0, model.paramsPerPixel];
        for (let i = 0; i < n; i++) {
          for (let k = from; k < to; k++) {
            const a = params[i * model.paramsPerPixel + k]!;
            const b = want[i * model.paramsPerPixel + k]!;
            assert.ok(Math.abs(a - b) <= 1e-4 * Math.max(1, Math.abs(b)), `(${y}, ${x}) pass ${pass} image ${i} param ${k}: wasm ${a} vs ts ${b}`);
          }
        }
      }
    });
  }

  test('the categorical and palette heads draw the ts reference\'s images from the same parameters, at any temperature', () => {
    const heads = [
      ['categorical RGB, 256 levels', createLikelihood({ kind: 'categorical', levels: 256 }, 3)],
      ['categorical grey, 16 levels', createLikelihood({ kind: 'categorical', levels: 16 }, 1)],
      ['palette of 512 colours', createLikelihood({ kind: 'palette', k: 512, colours: Array.from({ length: 512 * 3 }, (_, i) => (i * 37) % 256) }, 3)],
    ] as const;
    const n = 16, pixels = 6 * 7;
    for (const [name, head] of heads) {
      for (const temperature of [1, 0.8, 1.7]) {
        const passes = head.perChannel ? head.channels : 1;
        const params = Array.from({ length: pixels * passes }, (_, i) => {
          const p = uniform([n * head.paramsPerPixel], -6, 6, 40 + i).data as Float32Array;
          for (let j = 0; j < n; j++) p[j * head.paramsPerPixel + ((i * 7 + j * 13) % head.paramsPerPixel)]! += 8; // a likely value per row
          return p;
        });
        const image = (backend: 'wasm' | 'ts'): { values: number[]; offset: number } => {
          setBackend(backend);
          const generator = new Generator(21);
          const values: number[] = [];
          const out = new Int32Array(n * head.channels);
          for (let px = 0; px < pixels; px++) {
            for (let pass = 0; pass < passes; pass++) head.sample(params[px * passes + pass]!, n, pass, generator, temperature, out);
            values.push(...out);
          }
          return { values, offset: generator.offset };
        };
        const a = image('wasm'), b = image('ts');
        assert.deepEqual(a.values, b.values, `${name} at temperature ${temperature}: other values on wasm`);
        assert.equal(a.offset, b.offset, 'the same uniforms were drawn');
        assert.ok(new Set(a.values).size >= 8, `${name}: the draws vary`);
      }
    }
  });

  test('a seeded sample of a model on wasm draws from its distribution: a label-conditioned model is not the unconditioned one', () => {
    const [, cfg] = familyCases([templates[1]!])[0]!;
    const model = createModel(cfg, { seed: 7 });
    setBackend('wasm');
    const a = model.sample({ n: 3, seed: 2, labels: [0, 1, 2] });
    const b = model.sample({ n: 3, seed: 2, labels: [2, 1, 0] });
    assert.notDeepEqual(Array.from(a.data), Array.from(b.data));
    assert.deepEqual(Array.from(model.sample({ n: 3, seed: 2, labels: [0, 1, 2] }).data), Array.from(a.data));
  });
});
