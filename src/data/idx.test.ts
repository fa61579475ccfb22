import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import zlib from 'node:zlib';
import { after, describe, test } from 'node:test';
import { FormatError } from '../errors.js';
import { loadIdxPair, parseIdx, readIdxImages } from './idx.js';
import { loadDataset } from './sources.js';

const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'arpix-idx-'));
after(() => fs.rmSync(tmp, { recursive: true, force: true }));
const FASHION = '/usr/share/datasets/fashion-mnist';
const haveFashion = fs.existsSync(path.join(FASHION, 'train-images-idx3-ubyte.gz'));

/** IDX bytes: magic 00 00 type ndim, big-endian dims, then the values. */
function idx(type: number, dims: number[], values: Uint8Array): Buffer {
  const head = Buffer.alloc(4 + 4 * dims.length);
  head[2] = type;
  head[3] = dims.length;
  dims.forEach((d, i) => head.writeUInt32BE(d, 4 + 4 * i));
  return Buffer.concat([head, values]);
}

function write(name: string, bytes: Uint8Array): string {
  const p = path.join(tmp, name);
  fs.writeFileSync(p, bytes);
  return p;
}

const pixels = Uint8Array.from({ length: 3 * 4 * 5 }, (_, i) => i * 4);
const imagesIdx = idx(0x08, [3, 4, 5], pixels);
const labelsIdx = idx(0x08, [3], Uint8Array.of(2, 0, 1));

function throwsFormat(fn: () => unknown, file: string, pattern: RegExp): void {
  assert.throws(fn, (e: unknown) => {
    assert.ok(e instanceof FormatError, `expected a FormatError, got ${String(e)}`);
    assert.equal(e.file, file);
    assert.match(e.message, pattern);
    return true;
  });
}

describe('IDX files', () => {
  test('plain [3, 4, 5] images and labels load as NHWC [3, 4, 5, 1]', () => {
    const ds = loadIdxPair(write('a-images', imagesIdx), write('a-labels', labelsIdx), { name: 'tiny', split: 'train' });
    assert.deepEqual(ds.shape, [3, 4, 5, 1]);
    assert.deepEqual([...ds.images], [...pixels]);
    assert.deepEqual([...ds.labels!], [2, 0, 1]);
    assert.equal(ds.numClasses, 3);
    assert.equal(ds.split, 'train');
  });

  test('gzipped files load the same, whatever their name', () => {
    const ds = loadIdxPair(write('b-images.gz', zlib.gzipSync(imagesIdx)), write('b-labels', zlib.gzipSync(labelsIdx)));
    assert.deepEqual([...ds.images], [...pixels]);
    assert.deepEqual([...ds.labels!], [2, 0, 1]);
  });

  test('4-d [2, 2, 2, 3] IDX images keep their channels', () => {
    const a = readIdxImages(write('c4', idx(0x08, [2, 2, 2, 3], new Uint8Array(24).fill(7))));
    assert.deepEqual(a.shape, [2, 2, 2, 3]);
  });

  test('EMNIST transpose turns each stored column into a row', () => {
    // One 2×3 image stored transposed (as 3×2): stored rows are the true columns.
    const stored = Uint8Array.of(1, 4, 2, 5, 3, 6);
    const a = readIdxImages(write('emnist', idx(0x08, [1, 3, 2], stored)), { transpose: true });
    assert.deepEqual(a.shape, [1, 2, 3, 1]);
    assert.deepEqual([...a.images], [1, 2, 3, 4, 5, 6]);
  });

  test('throws when the magic number is wrong', () => {
    const bad = Buffer.from(imagesIdx);
    bad[0] = 0x50;
    const f = write('badmagic', bad);
    throwsFormat(() => readIdxImages(f), f, /wrong magic number 50 00 08 03/);
  });

  test('throws when the type code is unknown', () => {
    const bad = Buffer.from(imagesIdx);
    bad[2] = 0x07;
    const f = write('badtype', bad);
    throwsFormat(() => readIdxImages(f), f, /wrong magic number/);
  });

  test('throws when the file is truncated inside the header', () => {
    const f = write('shorthead', imagesIdx.subarray(0, 9));
    throwsFormat(() => readIdxImages(f), f, /truncated inside its header/);
  });

  test('throws when the pixel data is truncated', () => {
    const f = write('short', imagesIdx.subarray(0, imagesIdx.length - 1));
    throwsFormat(() => readIdxImages(f), f, /truncated: its header announces \[3, 4, 5\]/);
  });

  test('throws when bytes follow the announced array', () => {
    const f = write('long', Buffer.concat([imagesIdx, Buffer.of(0)]));
    throwsFormat(() => readIdxImages(f), f, /1 bytes after/);
  });

  test('throws when a gzip file is truncated', () => {
    const gz = zlib.gzipSync(Buffer.concat([imagesIdx, Buffer.from(Array.from({ length: 5000 }, (_, i) => (i * 7919) % 251))]));
    const f = write('trunc.gz', gz.subarray(0, gz.length >> 1));
    throwsFormat(() => readIdxImages(f), f, /truncated gzip/);
  });

  test('throws when a gzip file is corrupt', () => {
    const gz = Buffer.from(zlib.gzipSync(imagesIdx));
    gz[gz.length - 6] ^= 0xff; // inside the CRC-32
    const f = write('corrupt.gz', gz);
    throwsFormat(() => readIdxImages(f), f, /corrupt gzip/);
  });

  test('throws when image and label counts differ, naming both files', () => {
    const imgs = write('n3-images', imagesIdx);
    const lbls = write('n2-labels', idx(0x08, [2], Uint8Array.of(0, 1)));
    throwsFormat(() => loadIdxPair(imgs, lbls), imgs, /holds 3 images but .*n2-labels holds 2 labels/);
  });

  test('throws when images are not unsigned bytes', () => {
    const f = write('int32-images', idx(0x0c, [1, 1, 1], new Uint8Array(4)));
    throwsFormat(() => readIdxImages(f), f, /int32s; images must be unsigned bytes/);
  });

  test('throws when images have the wrong number of dimensions', () => {
    const f = write('2d-images', idx(0x08, [3, 4], new Uint8Array(12)));
    throwsFormat(() => readIdxImages(f), f, /2 dimensions \[3, 4\]/);
  });

  test('throws when labels exceed the known number of classes', () => {
    const imgs = write('d-images', imagesIdx);
    const lbls = write('d-labels', idx(0x08, [3], Uint8Array.of(0, 10, 1)));
    throwsFormat(() => loadIdxPair(imgs, lbls, { numClasses: 10 }), lbls, /label 1 is 10, outside 0..9/);
  });

  test('throws when the file does not exist', () => {
    const f = path.join(tmp, 'nope');
    throwsFormat(() => readIdxImages(f), f, /does not exist/);
  });

  test('parseIdx returns the raw big-endian payload of other types', () => {
    const a = parseIdx(idx(0x0b, [2], Uint8Array.of(1, 2, 3, 4)), 'mem');
    assert.deepEqual(a.dims, [2]);
    assert.deepEqual([...a.data], [1, 2, 3, 4]);
  });
});

describe('Fashion-MNIST from the Debian package', { skip: !haveFashion && 'dataset-fashion-mnist is not installed' }, () => {
  test('train is 60000 × 28×28×1 with 6000 images per class', async () => {
    const ds = await loadDataset('fashion-mnist', { split: 'train', env: {} });
    assert.deepEqual(ds.shape, [60000, 28, 28, 1]);
    assert.equal(ds.numClasses, 10);
    assert.equal(ds.classNames![9], 'Ankle boot');
    const counts = new Array(10).fill(0);
    for (const l of ds.labels!) counts[l]++;
    assert.deepEqual(counts, new Array(10).fill(6000));
    assert.equal(ds.labels![0], 9); // the first training image is an ankle boot
    let max = 0;
    for (const v of ds.images) max = Math.max(max, v);
    assert.equal(max, 255);
  });

  test('test is the published 10000-image t10k set', async () => {
    const ds = await loadDataset('fashion-mnist', { split: 'test', env: {} });
    assert.deepEqual(ds.shape, [10000, 28, 28, 1]);
    assert.equal(ds.split, 'test');
    const counts = new Array(10).fill(0);
    for (const l of ds.labels!) counts[l]++;
    assert.deepEqual(counts, new Array(10).fill(1000));
  });

  test('validation is carved from train: 55000 + 5000', async () => {
    const tr = await loadDataset('fashion-mnist', { split: 'train', validation: { size: 5000, seed: 3 }, env: {} });
    const va = await loadDataset('fashion-mnist', { split: 'validation', validation: { size: 5000, seed: 3 }, env: {} });
    assert.equal(tr.shape[0], 55000);
    assert.equal(va.shape[0], 5000);
    assert.equal(va.split, 'validation');
  });
});
