import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { ArgumentError } from '../errors.js';
import { makeDataset, type Dataset } from './dataset.js';
import { BatchLoader, evaluationLoader, splitValidation, type Batch } from './loader.js';
import { permutation } from './rng.js';
import { binarise, dynamicBinarise, quantise } from './transforms.js';

/** N images of 2×2×1 whose four pixels all equal the image's index (mod 256); label = index mod 3. */
function indexed(n: number): Dataset {
  const images = new Uint8Array(n * 4);
  for (let i = 0; i < n; i++) images.fill(i % 256, i * 4, i * 4 + 4);
  return makeDataset({ name: 'indexed', split: 'train', images, shape: [n, 2, 2, 1], labels: Int32Array.from({ length: n }, (_, i) => i % 3), source: 'memory' });
}

function summary(b: Batch): string {
  return JSON.stringify([b.epoch, b.step, [...b.indices], b.images.toArray(), b.labels?.toArray()]);
}

describe('seeded permutations', () => {
  test('are permutations, fixed by (seed, counters), and differ otherwise', () => {
    const a = permutation(1000, 7, 2, 0);
    assert.deepEqual([...a].sort((x, y) => x - y), Array.from({ length: 1000 }, (_, i) => i));
    assert.deepEqual(a, permutation(1000, 7, 2, 0));
    assert.notDeepEqual(a, permutation(1000, 7, 2, 1));
    assert.notDeepEqual(a, permutation(1000, 8, 2, 0));
    assert.notDeepEqual(permutation(100, 1), permutation(100, 1 + 2 ** 32));
  });

  test('put each element in the first slot about equally often', () => {
    const counts = new Array(4).fill(0);
    for (let e = 0; e < 4000; e++) counts[permutation(4, 1, e)[0]]++;
    for (const c of counts) assert.ok(c > 850 && c < 1150, `counts ${counts}`);
  });
});

describe('BatchLoader', () => {
  test('batches are int32 NHWC [32, 2, 2, 1] tensors with int32 [32] labels', () => {
    const l = new BatchLoader(indexed(100), { batchSize: 32, seed: 1 });
    const b = l.next();
    assert.equal(b.images.dtype, 'int32');
    assert.deepEqual(b.images.shape, [32, 2, 2, 1]);
    assert.equal(b.labels!.dtype, 'int32');
    assert.deepEqual(b.labels!.shape, [32]);
    for (let k = 0; k < 32; k++) {
      assert.equal(b.images.data[k * 4], b.indices[k]);
      assert.equal(b.labels!.data[k], b.indices[k] % 3);
    }
  });

  test('an epoch visits every image once (dropLast: false) in a new order each epoch', () => {
    const l = new BatchLoader(indexed(10), { batchSize: 4, seed: 5, dropLast: false });
    assert.equal(l.stepsPerEpoch, 3);
    const epoch0 = [...l.epochBatches()].flatMap((b) => [...b.indices]);
    assert.deepEqual([...epoch0].sort((a, b) => a - b), [0, 1, 2, 3, 4, 5, 6, 7, 8, 9]);
    assert.deepEqual(l.state(), { epoch: 1, step: 0 });
    const epoch1 = [...l.epochBatches()].flatMap((b) => [...b.indices]);
    assert.notDeepEqual(epoch0, epoch1);
  });

  test('dropLast (the default when shuffling) drops the incomplete batch', () => {
    const l = new BatchLoader(indexed(10), { batchSize: 4 });
    assert.equal(l.stepsPerEpoch, 2);
    const sizes = [l.next(), l.next(), l.next()].map((b) => b.images.shape[0]);
    assert.deepEqual(sizes, [4, 4, 4]);
  });

  test('same seed, same batches; another seed, other batches', () => {
    const a = new BatchLoader(indexed(64), { batchSize: 8, seed: 3 });
    const b = new BatchLoader(indexed(64), { batchSize: 8, seed: 3 });
    const c = new BatchLoader(indexed(64), { batchSize: 8, seed: 4 });
    const sa = Array.from({ length: 20 }, () => summary(a.next()));
    assert.deepEqual(Array.from({ length: 20 }, () => summary(b.next())), sa);
    assert.notDeepEqual(Array.from({ length: 20 }, () => summary(c.next())), sa);
  });

  test('a loader built from state() continues with the identical batches, across epochs, with dynamic binarisation', async () => {
    const ds = indexed(50);
    const opts = { batchSize: 8, seed: 11, transform: { kind: 'dynamic-binarise' } as const };
    const full = new BatchLoader(ds, opts);
    const reference = Array.from({ length: 30 }, () => summary(full.next()));
    const first = new BatchLoader(ds, opts);
    for (let i = 0; i < 13; i++) first.next();
    await new Promise((r) => setImmediate(r)); // let the prefetcher run ahead
    const saved = JSON.parse(JSON.stringify(first.state()));
    assert.deepEqual(saved, { epoch: 2, step: 1 });
    const resumed = new BatchLoader(ds, { ...opts, state: saved });
    assert.deepEqual(Array.from({ length: 17 }, () => summary(resumed.next())), reference.slice(13));
    assert.deepEqual(Array.from({ length: 17 }, () => summary(first.next())), reference.slice(13));
  });

  test('a state at the end of an epoch resumes at the next epoch', () => {
    const l = new BatchLoader(indexed(16), { batchSize: 8, seed: 2, state: { epoch: 3, step: 2 } });
    assert.deepEqual(l.state(), { epoch: 4, step: 0 });
  });

  test('the async iterator yields the same stream as next()', async () => {
    const a = new BatchLoader(indexed(40), { batchSize: 8, seed: 9, prefetch: 3 });
    const b = new BatchLoader(indexed(40), { batchSize: 8, seed: 9, prefetch: 0 });
    const got: string[] = [];
    for await (const batch of a) {
      got.push(summary(batch));
      if (got.length === 12) break;
    }
    assert.deepEqual(got, Array.from({ length: 12 }, () => summary(b.next())));
  });

  test('quantise and binarise transforms map values through their tables', () => {
    const q = new BatchLoader(indexed(256), { batchSize: 256, shuffle: false, transform: { kind: 'quantise', bits: 3 } });
    assert.equal(q.levels, 8);
    const qb = q.next();
    for (let i = 0; i < 256; i++) assert.equal(qb.images.data[i * 4], i >> 5);
    const bin = new BatchLoader(indexed(256), { batchSize: 256, shuffle: false, transform: { kind: 'binarise', threshold: 100 } });
    assert.equal(bin.levels, 2);
    const bb = bin.next();
    for (let i = 0; i < 256; i++) assert.equal(bb.images.data[i * 4], i >= 100 ? 1 : 0);
  });

  test('evaluationLoader gives every image once in dataset order, last batch partial', () => {
    const l = evaluationLoader(indexed(10), 4);
    const batches = [...l.epochBatches()];
    assert.deepEqual(batches.map((b) => [...b.indices]), [[0, 1, 2, 3], [4, 5, 6, 7], [8, 9]]);
  });

  test('throws when batchSize, seed, state or transform are bad', () => {
    const ds = indexed(10);
    assert.throws(() => new BatchLoader(ds, { batchSize: 0 }), ArgumentError);
    assert.throws(() => new BatchLoader(ds, { batchSize: 11 }), /larger than the 10 images/);
    assert.throws(() => new BatchLoader(ds, { batchSize: 2, seed: -1 }), /seed must be a non-negative integer/);
    assert.throws(() => new BatchLoader(ds, { batchSize: 2, state: { epoch: 0, step: 6 } }), /not a position in epochs of 5 steps/);
    assert.throws(() => new BatchLoader(ds, { batchSize: 2, transform: { kind: 'quantise', bits: 9 } }), /bits must be an integer in 1..8/);
  });
});

describe('transforms on whole datasets', () => {
  const ramp = makeDataset({ name: 'ramp', split: 'train', images: Uint8Array.from({ length: 256 }, (_, i) => i), shape: [1, 16, 16, 1], source: 'memory' });

  test('quantise(bits) keeps floor(v · 2^bits / 256), values 0..2^bits-1', () => {
    for (const bits of [1, 2, 5, 8]) {
      const q = quantise(ramp, bits);
      assert.equal(Math.max(...q.images), 2 ** bits - 1);
      assert.equal(q.images[200], Math.floor((200 * 2 ** bits) / 256));
    }
  });

  test('transformed datasets carry their levels, and refuse a second transform', () => {
    const q = quantise(ramp, 3);
    assert.equal(q.levels, 8);
    assert.equal(new BatchLoader(q, { batchSize: 1 }).levels, 8);
    assert.throws(() => quantise(q, 2), /already has 8 levels/);
    assert.throws(() => new BatchLoader(binarise(ramp), { batchSize: 1, transform: { kind: 'dynamic-binarise' } }), /already has 2 levels/);
  });

  test('binarise is 1 at and above the threshold', () => {
    const b = binarise(ramp);
    assert.equal(b.images[127], 0);
    assert.equal(b.images[128], 1);
  });

  test('dynamic binarisation is Bernoulli(v/255): 0 stays 0, 255 stays 1, means match, epochs differ', () => {
    const n = 4000;
    const images = new Uint8Array(n * 4);
    for (let i = 0; i < n; i++) images.set([0, 255, 64, 191], i * 4);
    const ds = makeDataset({ name: 'p', split: 'train', images, shape: [n, 2, 2, 1], source: 'memory' });
    const e0 = dynamicBinarise(ds, 1, 0);
    const sums = [0, 0, 0, 0];
    for (let i = 0; i < n; i++) for (let p = 0; p < 4; p++) sums[p] += e0.images[i * 4 + p];
    assert.equal(sums[0], 0);
    assert.equal(sums[1], n);
    assert.ok(Math.abs(sums[2] / n - 64 / 255) < 0.03, `mean ${sums[2] / n}`);
    assert.ok(Math.abs(sums[3] / n - 191 / 255) < 0.03, `mean ${sums[3] / n}`);
    assert.deepEqual(dynamicBinarise(ds, 1, 0).images, e0.images);
    assert.notDeepEqual(dynamicBinarise(ds, 1, 1).images, e0.images);
  });
});

describe('splitValidation', () => {
  test('carves a seeded, disjoint validation set; both parts keep dataset order', () => {
    const ds = indexed(100);
    const a = splitValidation(ds, { size: 20, seed: 4 });
    const b = splitValidation(ds, { size: 0.2, seed: 4 });
    const c = splitValidation(ds, { size: 20, seed: 5 });
    const ids = (d: Dataset) => Array.from({ length: d.shape[0] }, (_, i) => d.images[i * 4]);
    assert.equal(a.validation.shape[0], 20);
    assert.equal(a.train.shape[0], 80);
    assert.deepEqual(ids(a.validation), ids(b.validation));
    assert.notDeepEqual(ids(a.validation), ids(c.validation));
    assert.deepEqual([...ids(a.train), ...ids(a.validation)].sort((x, y) => x - y), Array.from({ length: 100 }, (_, i) => i));
    assert.deepEqual(ids(a.train), [...ids(a.train)].sort((x, y) => x - y));
    assert.deepEqual([...a.train.labels!], ids(a.train).map((i) => i % 3));
    assert.equal(a.validation.split, 'validation');
  });

  test('throws when the size is not a count or fraction below the dataset size', () => {
    assert.throws(() => splitValidation(indexed(10), { size: 10 }), /must be a count in 1..9/);
    assert.throws(() => splitValidation(indexed(10), { size: 0 }), ArgumentError);
  });
});
