// A batch split into parts, each sampled on its own (as a page's workers do), gives the images the
// whole batch gives: every family, every head, with labels, condition vectors and completion.

import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import * as ax from '../../ops/index.js';
import { Generator } from '../../tensor/random.js';
import { createModel } from '../index.js';
import { familyCases, type CaseTemplate } from '../../testing/families.js';
import type { SampleOptions } from './options.js';
import { sample } from './sample.js';
import { samplePart } from './part.js';

const templates: CaseTemplate[] = [
  { name: 'categorical grey', height: 6, width: 4, channels: 1, likelihood: { kind: 'categorical', levels: 16 } },
  { name: 'categorical RGB with labels', height: 4, width: 4, channels: 3, likelihood: { kind: 'categorical', levels: 8 }, numClasses: 3 },
  { name: 'mixture RGB with labels', height: 4, width: 6, channels: 3, likelihood: { kind: 'logistic-mixture', nrMix: 3 }, numClasses: 3 },
  { name: 'bernoulli grey with vector h', height: 6, width: 6, channels: 1, likelihood: { kind: 'bernoulli' }, conditionDim: 2 },
  { name: 'palette RGB', height: 4, width: 4, channels: 3, likelihood: { kind: 'palette', k: 5, colours: [0, 0, 0, 200, 30, 30, 30, 200, 30, 30, 30, 200, 255, 255, 255] } },
];
const N = 5;
const SPLITS = [[[0, 2], [2, 5]], [[0, 1], [1, 4], [4, 5]]] as const;

function optionsFor(model: ReturnType<typeof createModel>): SampleOptions {
  const opts: SampleOptions = { n: N, seed: 23, temperature: 0.8 };
  if (model.config.numClasses > 0) opts.labels = [0, 2, 1, 1, 0];
  if (model.config.conditionDim > 0) opts.h = ax.randn([N, model.config.conditionDim], { generator: new Generator(4) });
  return opts;
}

function joined(model: ReturnType<typeof createModel>, opts: SampleOptions, split: readonly (readonly [number, number])[]): number[] {
  return split.flatMap(([from, to]) => Array.from(samplePart(model, opts, { from, to }).data));
}

describe('samplePart', () => {
  for (const [name, cfg] of familyCases(templates)) {
    test(`${name}: the parts of a batch are the batch`, () => {
      const model = createModel(cfg, { seed: 3 });
      const opts = optionsFor(model);
      const whole = Array.from(sample(model, opts).data);
      for (const split of SPLITS) assert.deepEqual(joined(model, opts, split), whole, `split ${JSON.stringify(split)}`);
      // Another seed changes the images (the parts do follow the seed).
      assert.notDeepEqual(joined(model, { ...opts, seed: 24 }, SPLITS[0]), whole);
    });
  }

  for (const [name, cfg] of familyCases(templates.slice(0, 1))) {
    test(`${name}: completion (kept rows and a mask) split into parts is the batch's completion`, () => {
      const model = createModel(cfg, { seed: 3 });
      const { height: h, width: w } = model.config;
      const images = ax.randint(0, 16, [N, h, w, 1], { generator: new Generator(9) });
      const mask = Array.from({ length: h * w }, (_, i) => (i % 5 === 0 ? 1 : 0));
      const opts: SampleOptions = { n: N, seed: 5, complete: { images, keepRows: 2, mask } };
      const whole = Array.from(sample(model, opts).data);
      for (const split of SPLITS) assert.deepEqual(joined(model, opts, split), whole);
    });
  }

  test('a part outside the batch, per-image options of another length and a draw hook are refused', () => {
    const model = createModel(familyCases(templates.slice(1, 2))[0]![1], { seed: 3 });
    const opts = optionsFor(model);
    assert.throws(() => samplePart(model, opts, { from: 3, to: 3 }), /0 ≤ from < to ≤ 5/);
    assert.throws(() => samplePart(model, opts, { from: 0, to: 6 }), /0 ≤ from < to ≤ 5/);
    assert.throws(() => samplePart(model, opts, { from: 0.5, to: 2 }), /0 ≤ from < to ≤ 5/);
    assert.throws(() => samplePart(model, { ...opts, labels: [0, 1, 2] }, { from: 0, to: 2 }), /must hold 5 labels/);
    assert.throws(() => samplePart(model, { ...opts, draw: () => {} }, { from: 0, to: 2 }), /cannot be combined/);
  });
});
