// A model read from a checkpoint is built without drawing its initial weights (withoutInitialisers),
// then loaded: for every family of the table it must compute exactly what the model it was saved
// from computes, and the build must say when a tensor its initialisers fill was left unloaded.

import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { withoutInitialisers } from '../nn/init.js';
import { Generator } from '../tensor/random.js';
import { Tensor } from '../tensor/tensor.js';
import { familyCases, type CaseTemplate } from '../testing/families.js';
import { createModel } from './index.js';

const templates: CaseTemplate[] = [
  { name: 'categorical grey 6×5', height: 6, width: 5, channels: 1, likelihood: { kind: 'categorical', levels: 16 } },
  { name: 'mixture RGB with labels', height: 5, width: 4, channels: 3, likelihood: { kind: 'logistic-mixture', nrMix: 2 }, numClasses: 3 },
  { name: 'bernoulli grey', height: 6, width: 6, channels: 1, likelihood: { kind: 'bernoulli' } },
];

describe('a model built without its initialisers, then loaded, computes what the saved model computes', () => {
  for (const [name, cfg] of familyCases(templates)) {
    test(name, () => {
      const saved = createModel(cfg, { seed: 5 }).eval();
      const { value: built, loaded } = withoutInitialisers(() => createModel(cfg, { seed: 5 }));
      assert.equal(loaded(), false, 'nothing is loaded yet');
      built.loadStateDict(saved.stateDict());
      assert.equal(loaded(), true);
      built.eval();
      const { height: h, width: w, channels: c } = saved.config;
      const levels = saved.likelihood.levels;
      const g = new Generator(9);
      const values = new Int32Array(3 * h * w * c);
      g.randint(values, 0, levels);
      const images = new Tensor(values, [3, h, w, c]);
      const cond = saved.config.numClasses > 0 ? { labels: new Tensor(new Int32Array([0, 1, 2]), [3]) } : {};
      assert.deepEqual(Array.from(built.logProb(images, cond).data), Array.from(saved.logProb(images, cond).data));
    });
  }
});

test('a build whose initialised tensors are not all loaded says so', () => {
  const [, cfg] = familyCases(templates)[0]!;
  const saved = createModel(cfg, { seed: 1 });
  const { value: built, loaded } = withoutInitialisers(() => createModel(cfg, { seed: 1 }));
  const sd = saved.stateDict();
  const names = Object.keys(sd);
  // Every weight but the last: one initialised tensor stays unfilled.
  built.loadStateDict(Object.fromEntries(names.slice(0, -1).map((k) => [k, sd[k]!])), { strict: false });
  assert.equal(loaded(), false);
  built.loadStateDict(sd);
  assert.equal(loaded(), true);
});
