// Each family's analytic cost (parameters, FLOPs, activations from the config alone) against the
// counts of the model actually built: numParameters() and the convolutions a forward pass runs.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { convCosts, modelInfo } from '../train/info.js';
import { FAMILIES } from './families.js';
import { createModel, resolveModelConfig } from './index.js';
import { MemoryLimitError, checkMemory, costOfConfig, memoryLimit, memoryNeeded } from './memory.js';

const grey256 = { channels: 1, likelihood: { kind: 'categorical', levels: 256 } };
const CASES: Record<string, Record<string, unknown>[]> = {
  'pixelcnn': [
    { height: 8, width: 8, ...grey256 },
    { height: 6, width: 10, channels: 3, likelihood: { kind: 'categorical', levels: 16 }, hiddenChannels: 6, residualBlocks: 3, firstKernelSize: 5, outputHidden: 12, numClasses: 4 },
    { height: 7, width: 5, channels: 1, likelihood: { kind: 'bernoulli' }, residualBlocks: 0, kernelSize: 5, conditionDim: 3 },
  ],
  'gated-pixelcnn': [
    { height: 8, width: 8, ...grey256 },
    { height: 6, width: 9, channels: 3, likelihood: { kind: 'categorical', levels: 8 }, hiddenChannels: 6, kernelSize: 5, firstKernelSize: 3, dilations: [1, 2, 4], numClasses: 3, conditionDim: 2 },
    { height: 5, width: 5, channels: 1, likelihood: { kind: 'logistic-mixture', nrMix: 3 }, hiddenChannels: 4, dilations: [2] },
  ],
  'pixelcnn++': [
    { height: 8, width: 8, channels: 1, likelihood: { kind: 'logistic-mixture', nrMix: 2 }, filters: 6, resnetBlocks: 1 },
    { height: 8, width: 12, channels: 3, likelihood: { kind: 'logistic-mixture', nrMix: 3 }, filters: 4, resnetBlocks: 2, resolutions: 3, numClasses: 5 },
    { height: 6, width: 6, channels: 1, likelihood: { kind: 'categorical', levels: 4 }, filters: 3, resnetBlocks: 2, resolutions: 1, conditionDim: 4 },
  ],
  'row-lstm': [
    { height: 6, width: 7, ...grey256, hiddenChannels: 4, layers: 2, firstKernelSize: 3, outputHidden: 8, kernelSize: 5 },
    { height: 5, width: 4, channels: 3, likelihood: { kind: 'categorical', levels: 8 }, hiddenChannels: 5, layers: 1, firstKernelSize: 5, outputHidden: 6, numClasses: 3, conditionDim: 2 },
  ],
  'diagonal-bilstm': [
    { height: 6, width: 7, ...grey256, hiddenChannels: 4, layers: 2, firstKernelSize: 3, outputHidden: 8 },
    { height: 5, width: 4, channels: 3, likelihood: { kind: 'logistic-mixture', nrMix: 2 }, hiddenChannels: 5, layers: 3, firstKernelSize: 5, outputHidden: 6, numClasses: 2 },
  ],
};

test('PixelRNN FLOPs: the convolutions plus every state-to-state product of the recurrences', () => {
  // Row LSTM, 4×5 grey, h = 2, k = 3, one layer: the scan does 4·5 positions × 3 taps × 2 × 8 multiply-adds.
  const row = resolveModelConfig({ kind: 'row-lstm', height: 4, width: 5, ...grey256, hiddenChannels: 2, layers: 1, firstKernelSize: 3, outputHidden: 4, kernelSize: 3 });
  const convs = convCosts(createModel(row)).reduce((a, c) => a + c.flops, 0);
  assert.equal(modelInfo(createModel(row)).flops - convs, 20 * (2 * 3 * 2 * 8));
  // Diagonal BiLSTM, 4×5: two directions over the skewed 4 × 8 map, 2 taps each.
  const diag = resolveModelConfig({ kind: 'diagonal-bilstm', height: 4, width: 5, ...grey256, hiddenChannels: 2, layers: 1, firstKernelSize: 3, outputHidden: 4 });
  const dconvs = convCosts(createModel(diag)).reduce((a, c) => a + c.flops, 0);
  assert.equal(modelInfo(createModel(diag)).flops - dconvs, 2 * 32 * (2 * 2 * 2 * 8));
});

for (const family of FAMILIES) {
  test(`${family.kind}: cost(config) gives the built model's parameters, FLOPs and convolutions`, { skip: family.cost ? false : 'no cost slot' }, () => {
    const cases = CASES[family.kind] ?? [{ height: 8, width: 8, ...grey256, ...family.tiny(8, 8) }];
    for (const given of cases) {
      const config = resolveModelConfig({ kind: family.kind, ...given });
      const cost = family.cost!(config);
      const model = createModel(config);
      const info = modelInfo(model);
      const what = JSON.stringify(given);
      assert.equal(cost.parameters, model.numParameters(), `parameters of ${what}`);
      assert.equal(cost.flops, info.flops, `FLOPs of ${what}`);
      const measured = convCosts(model);
      assert.deepEqual(cost.convs.map((c) => c.flops).sort((a, b) => a - b), measured.map((c) => c.flops).sort((a, b) => a - b), `convolutions of ${what}`);
      const outputs = measured.reduce((a, c) => a + c.outShape.slice(1).reduce((x, y) => x * y, 1), 0);
      // Transposed convolutions are cropped after they write; the cost counts the cropped output.
      assert.ok(cost.activations <= outputs && cost.activations >= 0.5 * outputs, `activations of ${what}: ${cost.activations} vs ${outputs}`);
      if (family.maskedFormulationFlops) {
        assert.equal(family.maskedFormulationFlops(config, cost.convs), info.maskedFormulationFlops, `masked formulation of ${what}`);
      }
    }
  });
}

test('configs outside their ranges are refused before a model is built, naming the field', () => {
  const bad: [Record<string, unknown>, RegExp][] = [
    [{ kind: 'pixelcnn', hiddenChannels: 1e9 }, /hiddenChannels must be an integer in 1\.\.8192, got 1000000000/],
    [{ kind: 'pixelcnn', residualBlocks: -1 }, /residualBlocks must be an integer in 0\.\.1024/],
    [{ kind: 'pixelcnn', firstKernelSize: 100001 }, /firstKernelSize must be an odd integer in 1\.\.255/],
    [{ kind: 'pixelcnn', numClasses: -2 }, /numClasses must be an integer in 0\.\.100000/],
    [{ kind: 'gated-pixelcnn', height: 1e6 }, /height must be an integer in 1\.\.4096/],
    [{ kind: 'gated-pixelcnn', dilations: [1, 0] }, /dilations must be a list, each an integer in 1\.\.4096, got \[1,0\]/],
    [{ kind: 'gated-pixelcnn', conditionDim: -1 }, /conditionDim must be an integer in 0\.\.65536/],
    [{ kind: 'pixelcnn++', dropout: 1 }, /dropout must be a number in 0\.\.0\.99/],
    [{ kind: 'pixelcnn', likelihood: { kind: 'categorical', levels: 1 } }, /likelihood\.levels must be an integer in 2\.\.65536/],
  ];
  for (const [given, re] of bad) {
    assert.throws(() => resolveModelConfig({ height: 8, width: 8, channels: 1, likelihood: { kind: 'logistic-mixture', nrMix: 2 }, ...given }, 'model.'), (e: unknown) => e instanceof Error && /^config: model\./.test(e.message) && re.test(e.message), JSON.stringify(given));
  }
});

test('memory is checked before allocation: a model, a training batch and a sample request past the limit are refused with what they would need', () => {
  const limit = memoryLimit('1G');
  assert.equal(limit.bytes, 2 ** 30);
  assert.equal(memoryLimit('off').bytes, Infinity);
  assert.throws(() => memoryLimit('lots'), /ARPIX_MEMORY_LIMIT must be a size such as 8G/);
  const config = resolveModelConfig({ kind: 'gated-pixelcnn', height: 28, width: 28, channels: 1, likelihood: { kind: 'categorical', levels: 256 } });
  const cost = costOfConfig(config)!;
  // 622k parameters: weights fit, a batch of 32 fits, a batch of 20,000 does not.
  assert.ok(memoryNeeded(cost, 'train', 32) < 2 ** 30);
  assert.ok(memoryNeeded(cost, 'train', 20_000) > 2 ** 30);
  assert.ok(memoryNeeded(cost, 'sample', 1000) > memoryNeeded(cost, 'sample', 10));
  assert.throws(() => checkMemory('training with train.batchSize=20000', memoryNeeded(cost, 'train', 20_000), limit),
    (e: unknown) => e instanceof MemoryLimitError && /^training with train\.batchSize=20000 would need about [\d.]+ GiB, more than the memory limit of 1\.0 GiB \(ARPIX_MEMORY_LIMIT=1G\)/.test(e.message));
  const saved = process.env.ARPIX_MEMORY_LIMIT;
  process.env.ARPIX_MEMORY_LIMIT = '64M';
  try {
    // 8192 channels (and the default first kernel of 7): 9.9 billion parameters, refused before a single weight is allocated.
    assert.throws(() => createModel({ ...config, hiddenChannels: 8192 }), (e: unknown) => e instanceof MemoryLimitError && /a gated-pixelcnn model of 9,867,714,816 parameters .* would need about 36\.8 GiB/.test(e.message));
    assert.equal(createModel({ ...config, hiddenChannels: 8 }).numParameters(), costOfConfig({ ...config, hiddenChannels: 8 } as typeof config)!.parameters);
  } finally {
    if (saved === undefined) delete process.env.ARPIX_MEMORY_LIMIT;
    else process.env.ARPIX_MEMORY_LIMIT = saved;
  }
});
