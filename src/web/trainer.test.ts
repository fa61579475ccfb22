// The page's trainer is the project's training: k steps of PageTrainer on the images of a page's
// training file give the losses, weights, average and held-out figure `arpix train` (train.ts's
// loop) gives on the same images with the same config — exactly, not within a tolerance. And the
// file round-trips: the images and labels packed are the ones unpacked; a damaged file is one line.

import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, test } from 'node:test';
import '../backends/node.js';
import { FAMILIES } from '../models/families.js';
import { Generator } from '../tensor/random.js';
import { resolveRunConfig, train, type RunConfig } from '../train/index.js';
import { decodeCheckpoint } from '../io/checkpoint.js';
import { validatedModel } from '../train/validate.js';
import { packTrainingImages, unpackTrainingImages, pageTrainingRefusal, PAGE_TRAINING_MAX_PARAMETERS, type TrainingImages } from './train-data.js';
import { PageTrainer } from './trainer.js';

const H = 8;
const W = 8;

function spec(n: number, m: number, numClasses: number): TrainingImages {
  return { file: 'runs/x/train-images.bin', bytes: 0, sha256: '', train: n, heldOut: m, height: H, width: W, channels: 1, numClasses, dataset: 'fashion-mnist' };
}

/** n + m random binary images (and labels), packed and unpacked as the page gets them. */
function pageData(n: number, m: number, numClasses: number) {
  const g = new Generator(3);
  const values = new Int32Array((n + m) * H * W);
  g.randint(values, 0, 2);
  const labels = numClasses > 0 ? new Int32Array(n + m) : null;
  if (labels) g.randint(labels, 0, numClasses);
  const bytes = packTrainingImages(values, labels);
  return { values, labels, bytes, data: unpackTrainingImages(bytes, spec(n, m, numClasses)) };
}

function config(numClasses: number): RunConfig {
  const tiny = FAMILIES.find((f) => f.kind === 'pixelcnn')!.tiny(H, W);
  return resolveRunConfig({
    model: { kind: 'pixelcnn', height: H, width: W, channels: 1, numClasses, likelihood: { kind: 'bernoulli' }, ...tiny },
    dataset: { name: 'fashion-mnist', binarize: 'dynamic' },
    train: {
      steps: 7, batchSize: 5, lr: 0.01, gradClip: 0.5, ema: 0.9, schedule: { warmup: 3, decay: 'exponential', gamma: 0.9 },
      validateEvery: 0, checkpointEvery: 0, logEvery: 1, precision: 'fp32', seed: 11, validationSize: 1,
    },
  });
}

describe('the page trains as arpix train does', () => {
  for (const numClasses of [0, 3]) {
    test(`${numClasses ? 'class-conditional' : 'unconditional'}: 7 steps give train.ts's losses, weights, average and held-out bits/dim, bit for bit`, async () => {
      const c = config(numClasses);
      const { data } = pageData(23, 6, numClasses);
      const dir = mkdtempSync(join(tmpdir(), 'arpix-page-train-'));
      try {
        const run = await train(c, { runDir: join(dir, 'run'), data: { train: data.train, validation: data.heldOut, transform: { kind: 'none' } } });
        assert.equal(run.status, 'done');
        const records = readFileSync(join(dir, 'run', 'metrics.jsonl'), 'utf8').trim().split('\n').map((l) => JSON.parse(l) as { type: string; loss: number; lr: number });
        const losses = records.filter((r) => r.type === 'train').map((r) => r.loss);
        assert.equal(losses.length, 7);

        const page = new PageTrainer(c, data);
        const got: number[] = [];
        for (let k = 0; k < 7; k++) {
          const r = page.next();
          assert.ok(r.applied);
          got.push(r.loss);
        }
        assert.deepEqual(got, losses, 'the losses of every step');
        assert.equal(page.step, 7);
        assert.equal(page.imagesSeen, run.imagesSeen);
        const want = run.model.stateDict();
        const have = page.model.stateDict();
        assert.deepEqual(Object.keys(have), Object.keys(want));
        for (const k of Object.keys(want)) assert.deepEqual(have[k]!.data, want[k]!.data, `weight ${k}`);
        const wantEma = run.ema!.stateDict().tensors;
        const haveEma = page.stepper.ema!.stateDict().tensors;
        for (const k of Object.keys(wantEma)) assert.deepEqual(haveEma[k]!.data, wantEma[k]!.data, `averaged weight ${k}`);
        assert.equal(page.lr, records.filter((r) => r.type === 'train').at(-1)!.lr, 'the schedule is where the run\'s is');
        const held = await page.heldOut();
        assert.equal(held.bitsPerDim, run.validation!.bitsPerDim, 'the held-out figure is the run\'s validation');
        assert.ok(page.model.training, 'back in training mode after the held-out figure');

        // The page's snapshot is a checkpoint every reader accepts, holding the averaged weights.
        const meta = { ...decodeCheckpoint(readFileSync(join(dir, 'run', 'checkpoint.safetensors')), 'checkpoint').meta };
        const { model } = validatedModel(decodeCheckpoint(page.checkpoint(meta, 1.5), 'snapshot'));
        for (const [k, t] of Object.entries(model.stateDict())) assert.deepEqual(t.data, (haveEma[k] ?? have[k])!.data, `snapshot ${k}`);
      } finally {
        rmSync(dir, { recursive: true, force: true });
      }
    });
  }
});

describe('the page\'s training file', () => {
  test('packs 0/1 images and their labels into bits and bytes and unpacks them as they were', () => {
    const { values, labels, bytes, data } = pageData(5, 2, 10);
    assert.equal(bytes.length, Math.ceil((7 * H * W) / 8) + 7);
    assert.deepEqual(Array.from(data.train.images), Array.from(values.subarray(0, 5 * H * W)));
    assert.deepEqual(Array.from(data.heldOut.images), Array.from(values.subarray(5 * H * W)));
    assert.deepEqual(data.train.labels, labels!.subarray(0, 5));
    assert.deepEqual(data.heldOut.labels, labels!.subarray(5));
    assert.deepEqual([data.train.levels, data.heldOut.shape], [2, [2, H, W, 1]]);
    const plain = pageData(3, 1, 0);
    assert.equal(plain.data.train.labels, null);
    assert.equal(plain.bytes.length, Math.ceil((4 * H * W) / 8));
  });

  test('a file of the wrong length, a value that is not a bit and an unfit model are each one line', () => {
    const { bytes } = pageData(5, 2, 0);
    assert.throws(() => unpackTrainingImages(bytes.subarray(1), spec(5, 2, 0)), /^FormatError: runs\/x\/train-images\.bin: holds 55 bytes, but 7 images of 8×8×1 take 56; export the page again$/m);
    assert.throws(() => packTrainingImages([0, 1, 2], null), /value 2 is 2; binarised images hold 0 and 1 only/);
    assert.equal(pageTrainingRefusal({ levels: 2, parameters: 1000 }), null);
    assert.match(pageTrainingRefusal({ levels: 256, parameters: 1000 })!, /binary-likelihood models only \(this one has 256 levels/);
    assert.match(pageTrainingRefusal({ levels: 2, parameters: PAGE_TRAINING_MAX_PARAMETERS + 1 })!, /at most 50,000 parameters \(this one has 50,001\)/);
    const big = config(0);
    big.model = { ...big.model, hiddenChannels: 128 } as RunConfig['model'];
    assert.throws(() => new PageTrainer(big, pageData(5, 2, 0).data), /^ArpixError: this run cannot train in the page: the page trains models of at most 50,000 parameters/m);
    assert.throws(() => new PageTrainer(config(0), pageData(5, 2, 0).data, 6), /the batch size must be an integer in 1\.\.5/);
  });
});
