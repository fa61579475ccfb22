// Samplers draw from the distribution the model defines: frequencies of all tiny images match
// exp(logProb); seeds, labels, temperature and completion behave as documented.

import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import * as ax from '../../ops/index.js';
import { Generator } from '../../tensor/random.js';
import { Tensor } from '../../tensor/tensor.js';
import { createModel } from '../index.js';
import { sampleNaive } from './naive.js';

function tiny(kind: string, likelihood: Record<string, unknown>, extra: Record<string, unknown> = {}) {
  const arch: Record<string, Record<string, unknown>> = {
    'pixelcnn': { hiddenChannels: 6, residualBlocks: 1, firstKernelSize: 3, outputHidden: 8 },
    'gated-pixelcnn': { hiddenChannels: 6, firstKernelSize: 3, dilations: [1] },
    'pixelcnn++': { filters: 4, resnetBlocks: 1, resolutions: 1, dropout: 0 },
  };
  const model = createModel({ kind, height: 1, width: 2, channels: 3, likelihood, ...arch[kind], ...extra }, { seed: 2 });
  // Sharpen the random initial distribution so the frequencies differ visibly between images.
  for (const p of model.parameters()) p.data.set(ax.mul(p, 3).data);
  return model;
}

describe('naive sampler', () => {
  const cases: [string, ReturnType<typeof tiny>][] = [
    ['gated-pixelcnn categorical RGB', tiny('gated-pixelcnn', { kind: 'categorical', levels: 2 })],
    ['pixelcnn mixture RGB', tiny('pixelcnn', { kind: 'logistic-mixture', nrMix: 2, levels: 2 })],
    ['pixelcnn++ mixture RGB with a label', tiny('pixelcnn++', { kind: 'logistic-mixture', nrMix: 2, levels: 2 }, { numClasses: 2 })],
  ];
  for (const [name, model] of cases) {
    test(`${name}: sample frequencies match exp(logProb) over all 64 images`, () => {
      const labels = model.config.numClasses > 0 ? 1 : null;
      const n = 12000;
      const samples = sampleNaive(model, { n, seed: 5, labels });
      const counts = new Float64Array(64);
      for (let i = 0; i < n; i++) {
        let key = 0;
        for (let j = 0; j < 6; j++) key = key * 2 + samples.data[i * 6 + j]!;
        counts[key]!++;
      }
      const all = new Int32Array(64 * 6);
      for (let k = 0; k < 64; k++) for (let j = 0; j < 6; j++) all[k * 6 + j] = (k >> (5 - j)) & 1;
      const cond = labels === null ? {} : { labels: ax.full([64], labels, 'int32') };
      const probs = ax.exp(ax.noGrad(() => model.logProb(new Tensor(all, [64, 1, 2, 3]), cond))).toArray();
      for (let k = 0; k < 64; k++) {
        const sd = Math.sqrt((probs[k]! * (1 - probs[k]!)) / n);
        assert.ok(Math.abs(counts[k]! / n - probs[k]!) < 5 * sd + 2e-3, `image ${k}: frequency ${counts[k]! / n} vs p ${probs[k]}`);
      }
    });
  }

  test('the same seed gives the same images; another seed other images', () => {
    const model = cases[0]![1];
    const a = sampleNaive(model, { n: 50, seed: 1 }).toArray();
    assert.deepEqual(sampleNaive(model, { n: 50, seed: 1 }).toArray(), a);
    assert.notDeepEqual(sampleNaive(model, { n: 50, seed: 2 }).toArray(), a);
  });

  test('completion keeps the given rows and reports each sampled row', () => {
    const model = createModel({ kind: 'gated-pixelcnn', height: 4, width: 3, channels: 1, likelihood: { kind: 'categorical', levels: 8 }, hiddenChannels: 4, firstKernelSize: 3, dilations: [1] });
    const images = ax.randint(0, 8, [2, 4, 3, 1], { generator: new Generator(3) });
    const rows: number[] = [];
    const out = sampleNaive(model, { n: 2, seed: 4, complete: { images, keepRows: 2 }, onRow: (r, v) => { rows.push(r); assert.equal(v.length, 2 * 3); } });
    assert.deepEqual(rows, [2, 3]);
    for (let i = 0; i < 2; i++) {
      assert.deepEqual(Array.from(out.data.subarray(i * 12, i * 12 + 6)), Array.from(images.data.subarray(i * 12, i * 12 + 6)));
    }
  });

  test('a low temperature concentrates samples on the most likely values', () => {
    const model = cases[0]![1];
    const cold = sampleNaive(model, { n: 400, seed: 3, temperature: 0.05 });
    const distinct = new Set<string>();
    for (let i = 0; i < 400; i++) distinct.add(Array.from(cold.data.subarray(i * 6, i * 6 + 6)).join(''));
    assert.ok(distinct.size <= 3, `${distinct.size} distinct images at temperature 0.05`);
  });

  test('bad options are clear errors', () => {
    const model = cases[2]![1];
    assert.throws(() => sampleNaive(model, { n: 2 }), /labels are required/);
    assert.throws(() => sampleNaive(cases[0]![1], { n: 2, labels: 1 }), /unconditional/);
    assert.throws(() => sampleNaive(cases[0]![1], { n: 0 }), /n must be a positive integer/);
    assert.throws(() => sampleNaive(cases[0]![1], { n: 1, temperature: 0 }), /temperature/);
    assert.throws(() => sampleNaive(cases[0]![1], { n: 1, complete: { images: ax.zeros([1, 2, 2, 3], 'int32'), keepRows: 1 } }), /complete: images must be int32 \[1, 1, 2, 3\]/);
  });
});
