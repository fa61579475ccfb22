// The PyTorch mirror (python/arpix_torch/image_transformer.py) against arpix: the same weights,
// saved in PyTorch's layout, give the same log-likelihood within 1e-5 relative, for each
// attention pattern and head, with labels. Skipped only when torch cannot be imported.

import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, test } from 'node:test';
import * as ax from '../ops/index.js';
import { loadSafetensorsSync, saveSafetensorsSync } from '../io/safetensors.js';
import { Generator } from '../tensor/random.js';
import type { Tensor } from '../tensor/tensor.js';
import { createModel } from './index.js';

const pythonDir = fileURLToPath(new URL('../../python/', import.meta.url));
// The first Python that imports torch (Debian's python3-torch lives in the system Python).
const python = [process.env.ARPIX_PYTHON, 'python3', '/usr/bin/python3']
  .filter((p): p is string => !!p)
  .find((p) => spawnSync(p, ['-c', 'import torch'], { encoding: 'utf8' }).status === 0);
const hasTorch = python !== undefined;

const tiny = { layers: 2, hiddenSize: 16, heads: 2, ffSize: 24, dropout: 0.1 };
const cases: [string, Record<string, unknown>][] = [
  ['categorical RGB, local 1-D across blocks, labels', { height: 4, width: 4, channels: 3, likelihood: { kind: 'categorical', levels: 256 }, numClasses: 3, attention: 'local1d', blockLength: 8, memoryLength: 8 }],
  ['categorical grey, local 2-D with flanges', { height: 6, width: 6, channels: 1, likelihood: { kind: 'categorical', levels: 16 }, attention: 'local2d', blockWidth: 2, memoryHeight: 2, memoryWidth: 1 }],
  ['mixture RGB, local 1-D', { height: 5, width: 5, channels: 3, likelihood: { kind: 'logistic-mixture', nrMix: 3 }, attention: 'local1d', blockLength: 6, memoryLength: 3 }],
  ['bernoulli grey, causal, labels', { height: 4, width: 4, channels: 1, likelihood: { kind: 'bernoulli' }, numClasses: 2, attention: 'causal' }],
];

describe('image-transformer PyTorch mirror', { skip: hasTorch ? false : 'torch cannot be imported' }, () => {
  for (const [name, cfg] of cases) {
    test(`${name}: same log-likelihood within 1e-5 relative`, () => {
      const model = createModel({ kind: 'image-transformer', ...tiny, ...cfg }, { seed: 2 });
      for (const p of model.parameters()) p.data.set(ax.add(p, ax.mul(ax.randn(p.shape, { generator: new Generator(p.size) }), 0.2)).data);
      model.eval();
      const { height: h, width: w, channels: c, numClasses } = model.config;
      const images = ax.randint(0, model.likelihood.levels, [3, h, w, c], { generator: new Generator(4) });
      const labels = numClasses > 0 ? ax.randint(0, numClasses, [3], { generator: new Generator(5) }) : undefined;
      const want = ax.noGrad(() => model.logProb(images, { labels })).toArray();
      const dir = mkdtempSync(join(tmpdir(), 'arpix-it-torch-'));
      try {
        const tensors: Record<string, Tensor> = { images };
        if (labels) tensors.labels = labels;
        for (const [k, v] of Object.entries(model.stateDict({ layout: 'pytorch' }))) tensors[`model.${k}`] = v;
        saveSafetensorsSync(join(dir, 'in.safetensors'), tensors, { config: JSON.stringify(model.config) });
        const r = spawnSync(python!, ['-m', 'arpix_torch.tool', 'logprob', join(dir, 'in.safetensors'), join(dir, 'out.safetensors')], { cwd: pythonDir, encoding: 'utf8' });
        assert.equal(r.status, 0, r.stderr);
        const got = Array.from(loadSafetensorsSync(join(dir, 'out.safetensors')).tensors.logprob!.data);
        want.forEach((v, i) => assert.ok(Math.abs(got[i]! - v) <= 1e-5 * Math.abs(v), `image ${i}: PyTorch ${got[i]} vs arpix ${v}`));
      } finally {
        rmSync(dir, { recursive: true, force: true });
      }
    });
  }
});
