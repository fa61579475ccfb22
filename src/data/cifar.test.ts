import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, describe, test } from 'node:test';
import { FormatError } from '../errors.js';
import { loadCifar, parseCifar } from './cifar.js';

const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'arpix-cifar-'));
after(() => fs.rmSync(tmp, { recursive: true, force: true }));

/** One record: label byte(s), then the R, G and B planes; pixel p of plane c holds (p + 7c + seed) mod 256. */
function record(labels: number[], seed: number): Uint8Array {
  const r = new Uint8Array(labels.length + 3072);
  r.set(labels);
  for (let c = 0; c < 3; c++) for (let p = 0; p < 1024; p++) r[labels.length + c * 1024 + p] = (p + 7 * c + seed) % 256;
  return r;
}

function records(list: Uint8Array[]): Uint8Array {
  const out = new Uint8Array(list.reduce((a, r) => a + r.length, 0));
  let o = 0;
  for (const r of list) { out.set(r, o); o += r.length; }
  return out;
}

describe('CIFAR binary files', () => {
  test('CIFAR-10 records become HWC [2, 32, 32, 3] with their labels', () => {
    const { images, labels } = parseCifar(records([record([3], 0), record([9], 1)]), 'mem', 'cifar10');
    assert.deepEqual([...labels], [3, 9]);
    assert.equal(images.length, 2 * 3072);
    // Pixel (y=1, x=2) of image 1: plane index p = 34, channels interleaved.
    const p = 34;
    assert.deepEqual([...images.subarray(3072 + 3 * p, 3072 + 3 * p + 3)], [(p + 1) % 256, (p + 8) % 256, (p + 15) % 256]);
  });

  test('CIFAR-100 gives fine labels by default and coarse ones on request', () => {
    const bytes = records([record([4, 77], 0), record([19, 3], 0)]);
    assert.deepEqual([...parseCifar(bytes, 'mem', 'cifar100').labels], [77, 3]);
    assert.deepEqual([...parseCifar(bytes, 'mem', 'cifar100', 'coarse').labels], [4, 19]);
  });

  test('loadCifar reads the batches folder, concatenates the five train files and reads class names', () => {
    const dir = path.join(tmp, 'c10', 'cifar-10-batches-bin');
    fs.mkdirSync(dir, { recursive: true });
    for (let b = 1; b <= 5; b++) fs.writeFileSync(path.join(dir, `data_batch_${b}.bin`), records([record([b], b), record([0], 0)]));
    fs.writeFileSync(path.join(dir, 'test_batch.bin'), records([record([7], 2)]));
    fs.writeFileSync(path.join(dir, 'batches.meta.txt'), 'airplane\nautomobile\nbird\ncat\ndeer\ndog\nfrog\nhorse\nship\ntruck\n\n');
    const train = loadCifar(path.join(tmp, 'c10'), 'cifar10', { split: 'train' });
    assert.deepEqual(train.shape, [10, 32, 32, 3]);
    assert.deepEqual([...train.labels!], [1, 0, 2, 0, 3, 0, 4, 0, 5, 0]);
    assert.equal(train.classNames![9], 'truck');
    const testSplit = loadCifar(dir, 'cifar10', { split: 'test' });
    assert.deepEqual(testSplit.shape, [1, 32, 32, 3]);
    assert.equal(testSplit.numClasses, 10);
  });

  test('throws when the size is not a whole number of records, naming the file', () => {
    assert.throws(() => parseCifar(new Uint8Array(3073 * 2 - 5), 'short.bin', 'cifar10'), (e: unknown) => e instanceof FormatError && e.file === 'short.bin' && /not a whole number of 3073-byte cifar10 records/.test(e.message));
  });

  test('throws with a wrong-variant hint when CIFAR-100 records are read as CIFAR-10', () => {
    assert.throws(() => parseCifar(records([record([1, 2], 0), record([1, 2], 0), record([1, 2], 0)]), 'c100.bin', 'cifar10'), /fits CIFAR-100 records: wrong variant/);
  });

  test('throws when a label is out of range', () => {
    assert.throws(() => parseCifar(record([10], 0), 'bad.bin', 'cifar10'), /record 0 has label 10, outside 0..9/);
  });

  test('throws when a file is empty or missing', () => {
    assert.throws(() => parseCifar(new Uint8Array(0), 'empty.bin', 'cifar10'), /empty\.bin: is empty/);
    assert.throws(() => loadCifar(path.join(tmp, 'none'), 'cifar100', { split: 'test' }), /test\.bin: does not exist/);
  });
});
