// The PyTorch mirrors against arpix, for every kind of arpix's family table: the same weights
// (random, and trained a few steps) give the same per-image log-likelihood within 1e-5 relative,
// grey and colour, with labels; one optimiser step on the same batch gives the same loss. Skipped
// only when no Python on this machine imports torch.

import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, test } from 'node:test';
import { loadSafetensorsSync, saveSafetensorsSync } from '../io/disk.js';
import { createModel, MODEL_KINDS } from '../models/index.js';
import type { AutoregressiveModel } from '../models/core/model.js';
import { noGrad } from '../ops/index.js';
import { Adam, clipGradNorm } from '../optim/index.js';
import { Generator } from '../tensor/random.js';
import { Tensor } from '../tensor/tensor.js';
import { PYTHON_DIR } from './export.js';
import { findTorchPython } from './python.js';

const python = findTorchPython();
const skip = python === null ? 'no Python here imports torch (apt-get install python3-torch): the PyTorch mirrors cannot be checked' : false;
const tmp = mkdtempSync(join(tmpdir(), 'arpix-torch-'));
after(() => rmSync(tmp, { recursive: true, force: true }));

const TRAIN = { optimizer: 'adam', lr: 3e-3, betas: [0.9, 0.999], eps: 1e-8, weightDecay: 0, gradClip: 0.5 };

/** Small configs of every family: grey and colour, with and without labels, each head it supports. */
const CASES: Record<string, Record<string, unknown>[]> = {
  'pixelcnn': [
    { channels: 1, likelihood: { kind: 'bernoulli' }, numClasses: 3 },
    { channels: 3, likelihood: { kind: 'categorical', levels: 4 }, numClasses: 0 },
    { channels: 3, likelihood: { kind: 'logistic-mixture', nrMix: 2, levels: 16 }, numClasses: 2 },
  ].map((c) => ({ kind: 'pixelcnn', height: 6, width: 5, hiddenChannels: 6, residualBlocks: 2, firstKernelSize: 5, kernelSize: 3, outputHidden: 8, ...c })),
  'gated-pixelcnn': [
    { channels: 1, likelihood: { kind: 'categorical', levels: 256 }, numClasses: 0 },
    { channels: 3, likelihood: { kind: 'categorical', levels: 4 }, numClasses: 3 },
    { channels: 1, likelihood: { kind: 'bernoulli' }, numClasses: 2 },
  ].map((c) => ({ kind: 'gated-pixelcnn', height: 6, width: 5, hiddenChannels: 6, kernelSize: 3, firstKernelSize: 5, dilations: [1, 2], ...c })),
  'pixelcnn++': [
    { channels: 3, likelihood: { kind: 'logistic-mixture', nrMix: 2 }, numClasses: 3 },
    { channels: 1, likelihood: { kind: 'logistic-mixture', nrMix: 3, levels: 16 }, numClasses: 0 },
  ].map((c) => ({ kind: 'pixelcnn++', height: 8, width: 8, filters: 4, resnetBlocks: 1, resolutions: 2, dropout: 0, ...c })),
  // Every attention pattern, across blocks and flanges, and every head.
  'image-transformer': [
    { height: 4, width: 4, channels: 3, likelihood: { kind: 'categorical', levels: 256 }, numClasses: 3, attention: 'local1d', blockLength: 8, memoryLength: 8 },
    { height: 6, width: 6, channels: 1, likelihood: { kind: 'categorical', levels: 16 }, numClasses: 0, attention: 'local2d', blockWidth: 2, memoryHeight: 2, memoryWidth: 1 },
    { height: 6, width: 4, channels: 3, likelihood: { kind: 'categorical', levels: 8 }, numClasses: 0, attention: 'local2d', blockHeight: 3, blockWidth: 4, memoryHeight: 1, memoryWidth: 2 },
    { height: 5, width: 5, channels: 3, likelihood: { kind: 'logistic-mixture', nrMix: 3 }, numClasses: 2, attention: 'local1d', blockLength: 6, memoryLength: 3 },
    { height: 4, width: 4, channels: 1, likelihood: { kind: 'bernoulli' }, numClasses: 2, attention: 'causal' },
  ].map((c) => ({ kind: 'image-transformer', layers: 2, hiddenSize: 16, heads: 2, ffSize: 24, dropout: 0, ...c })),
  'image-gpt': [
    { channels: 1, likelihood: { kind: 'categorical', levels: 256 }, numClasses: 0, norm: 'rms', gelu: 'tanh' },
    { channels: 3, likelihood: { kind: 'palette', k: 5, colours: [0, 0, 0, 200, 30, 30, 30, 200, 30, 30, 30, 200, 255, 255, 255] }, numClasses: 3, norm: 'layer', gelu: 'exact' },
  ].map((c) => ({ kind: 'image-gpt', height: 5, width: 4, embedDim: 8, layers: 2, heads: 2, mlpRatio: 2, ...c })),
  ...Object.fromEntries((['row-lstm', 'diagonal-bilstm'] as const).map((kind) => [kind, [
    { channels: 1, likelihood: { kind: 'categorical', levels: 256 }, numClasses: 0 },
    { channels: 3, likelihood: { kind: 'categorical', levels: 4 }, numClasses: 3, hiddenChannels: 5 },
    { channels: 1, likelihood: { kind: 'bernoulli' }, numClasses: 2 },
    { channels: 3, likelihood: { kind: 'logistic-mixture', nrMix: 2, levels: 16 }, numClasses: 0 },
  ].map((c) => ({ kind, height: 6, width: 5, hiddenChannels: 4, layers: 2, firstKernelSize: 5, outputHidden: 8, ...c }))])),
};

function randomBatch(model: AutoregressiveModel, n: number, seed: number): { images: Tensor; labels: Tensor | null } {
  const g = new Generator(seed);
  const { height, width, channels, numClasses } = model.config;
  const u = new Float64Array(n * height * width * channels + n);
  g.uniform(u);
  const levels = model.likelihood.levels;
  const images = new Tensor(Int32Array.from(u.subarray(0, n * height * width * channels), (v) => Math.floor(v * levels)), [n, height, width, channels]);
  const labels = numClasses > 0 ? new Tensor(Int32Array.from(u.subarray(-n), (v) => Math.floor(v * numClasses)), [n]) : null;
  return { images, labels };
}

/** A few Adam steps on random data, so the weights are no longer at their initial distribution. */
function trainAFew(model: AutoregressiveModel): void {
  const opt = new Adam(model.parameters(), { lr: 2e-2 });
  for (let s = 0; s < 4; s++) {
    const { images, labels } = randomBatch(model, 4, 100 + s);
    const loss = model.loss(images, labels ? { labels } : {});
    loss.backward();
    opt.step();
    opt.zeroGrad();
  }
}

function lossOf(model: AutoregressiveModel, images: Tensor, labels: Tensor | null): number {
  return noGrad(() => model.loss(images, labels ? { labels } : {})).item();
}

/** arpix's one step on the batch: the loss before and after, as the mirror's tool computes it. */
function arpixStep(model: AutoregressiveModel, images: Tensor, labels: Tensor | null): [number, number] {
  const opt = new Adam(model.parameters(), { lr: TRAIN.lr, betas: [0.9, 0.999], eps: TRAIN.eps, weightDecay: 0 });
  model.train();
  const loss = model.loss(images, labels ? { labels } : {});
  const l0 = loss.item();
  loss.backward();
  clipGradNorm(model.parameters(), TRAIN.gradClip);
  opt.step();
  return [l0, lossOf(model, images, labels)];
}

const relErr = (a: number, b: number) => Math.abs(a - b) / Math.max(Math.abs(b), 1e-30);

describe('PyTorch mirrors (python/arpix_torch) compute what arpix computes', { skip }, () => {
  test('the family table has a case for every kind', () => {
    assert.deepEqual([...MODEL_KINDS].sort(), Object.keys(CASES).sort());
  });

  for (const kind of MODEL_KINDS) {
    test(`${kind}: same log-likelihood per image (random and trained weights) and same loss after one step`, () => {
      const jobs: { file: string; label: string; model: AutoregressiveModel; images: Tensor; labels: Tensor | null; step?: [number, number] }[] = [];
      for (const [i, cfg] of (CASES[kind] ?? []).entries()) {
        for (const trained of [false, true]) {
          const model = createModel(cfg, { seed: 7 + i });
          if (trained) trainAFew(model);
          model.eval();
          const { images, labels } = randomBatch(model, 5, 11 + i);
          const file = join(tmp, `${kind}-${i}-${trained ? 'trained' : 'random'}.safetensors`);
          const tensors: Record<string, Tensor> = { images };
          if (labels) tensors.labels = labels;
          for (const [k, t] of Object.entries(model.stateDict({ layout: 'pytorch' }))) tensors[`model.${k}`] = t;
          saveSafetensorsSync(file, tensors, { config: JSON.stringify(model.config), ...(trained ? { train: JSON.stringify(TRAIN) } : {}) });
          jobs.push({ file, label: `${JSON.stringify(cfg.likelihood)} C=${String(cfg.channels)} classes=${String(cfg.numClasses)} ${trained ? 'trained' : 'random'}`, model, images, labels });
        }
      }
      const r = spawnSync(python!, ['-m', 'arpix_torch.tool', 'logprob', ...jobs.map((j) => j.file)], { cwd: PYTHON_DIR, encoding: 'utf8', env: { ...process.env, OMP_NUM_THREADS: '1' } });
      assert.equal(r.status, 0, r.stderr);
      for (const j of jobs) {
        const got = loadSafetensorsSync(`${j.file}.out`).tensors;
        const ours = noGrad(() => j.model.logProb(j.images, j.labels ? { labels: j.labels } : {})).data;
        const theirs = got.logprob!.data;
        assert.equal(theirs.length, ours.length);
        for (let i = 0; i < ours.length; i++) {
          assert.ok(relErr(ours[i]!, theirs[i]!) < 1e-5, `${kind} ${j.label}: image ${i}: arpix ${ours[i]} vs PyTorch ${theirs[i]}`);
        }
        if (got.loss0) {
          const [l0, l1] = arpixStep(j.model, j.images, j.labels);
          assert.ok(relErr(l0, got.loss0.data[0]!) < 1e-5, `${kind} ${j.label}: loss before the step: arpix ${l0} vs PyTorch ${got.loss0.data[0]}`);
          assert.ok(relErr(l1, got.loss1!.data[0]!) < 1e-4, `${kind} ${j.label}: loss after one step: arpix ${l1} vs PyTorch ${got.loss1!.data[0]}`);
          assert.notEqual(l0, l1, 'the step must change the loss');
        }
      }
    });
  }
});
