import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, describe, test } from 'node:test';
import { encode as encodePng } from 'fast-png';
import jpeg from 'jpeg-js';
import { FormatError } from '../errors.js';
import { cropResize, decodeImage } from './decode.js';
import { loadImageFolder } from './folder.js';

const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'arpix-folder-'));
after(() => fs.rmSync(tmp, { recursive: true, force: true }));

function png(width: number, height: number, channels: number, fill: (x: number, y: number, c: number) => number, depth: 8 | 16 = 8): Uint8Array {
  const data = depth === 16 ? new Uint16Array(width * height * channels) : new Uint8Array(width * height * channels);
  for (let y = 0; y < height; y++) for (let x = 0; x < width; x++) for (let c = 0; c < channels; c++) data[(y * width + x) * channels + c] = fill(x, y, c);
  return encodePng({ width, height, data, channels, depth });
}

function put(file: string, bytes: Uint8Array): string {
  fs.mkdirSync(path.dirname(file), { recursive: true });
  fs.writeFileSync(file, bytes);
  return file;
}

describe('decoding and resizing', () => {
  test('RGBA PNG drops alpha; grey from RGB uses BT.601 luma', () => {
    const img = decodeImage(png(2, 1, 4, (x, _y, c) => [200, 100, 50, 7][c] + x));
    assert.equal(img.channels, 3);
    assert.deepEqual([...img.data], [200, 100, 50, 201, 101, 51]);
  });

  test('16-bit PNG values are scaled to 8 bits', () => {
    const img = decodeImage(png(1, 1, 1, () => 65535, 16));
    assert.deepEqual([...img.data], [255]);
  });

  test('JPEG decodes to RGB of the right size', () => {
    const data = new Uint8Array(8 * 8 * 4).fill(128);
    const img = decodeImage(jpeg.encode({ width: 8, height: 8, data }, 95).data);
    assert.equal(img.width, 8);
    assert.equal(img.channels, 3);
    assert.ok(Math.abs(img.data[0] - 128) <= 2);
  });

  test('centre crop of a 6×2 image keeps the middle 2×2', () => {
    const img = { width: 6, height: 2, channels: 1 as const, data: Uint8Array.from([0, 0, 1, 2, 0, 0, 0, 0, 3, 4, 0, 0]) };
    assert.deepEqual([...cropResize(img, 2).data], [1, 2, 3, 4]);
  });

  test('shrinking 4×4 → 2×2 averages each 2×2 block (area filter)', () => {
    const img = { width: 4, height: 4, channels: 1 as const, data: Uint8Array.from([0, 2, 10, 10, 4, 6, 10, 10, 100, 100, 0, 0, 100, 100, 0, 255]) };
    assert.deepEqual([...cropResize(img, 2).data], [3, 10, 100, 64]);
  });

  test('growing keeps a constant image constant', () => {
    const img = { width: 3, height: 3, channels: 3 as const, data: new Uint8Array(27).fill(77) };
    assert.ok(cropResize(img, 7).data.every((v) => v === 77));
  });

  test('throws a short reason for bytes that are not an image', () => {
    assert.throws(() => decodeImage(Buffer.from('hello')), /neither a PNG nor a JPEG/);
  });
});

describe('loadImageFolder', () => {
  // Two classes of 28×28 grey PNGs whose pixels all hold the image number, plus bad files.
  const root = path.join(tmp, 'classes');
  const n = 150; // more than two chunks, so the worker pool is used
  for (let i = 0; i < n; i++) {
    const cls = i % 2 === 0 ? 'cat' : 'dog';
    put(path.join(root, cls, `img${String(i).padStart(3, '0')}.png`), png(28, 28, 1, () => i));
  }
  put(path.join(root, 'dog', 'broken.png'), Buffer.from('\x89PNG\r\n\x1a\n this is not really a png'));
  put(path.join(root, 'dog', 'notes.txt'), Buffer.from('ignored: not an image name'));
  put(path.join(root, 'cat', 'big.png'), png(56, 40, 3, () => 9));
  put(path.join(root, 'stray.png'), png(28, 28, 1, () => 1));

  test('labels come from sorted sub-folder names; bad files are skipped with one warning', async () => {
    const warnings: string[] = [];
    const ds = await loadImageFolder(root, { channels: 1, onWarning: (m) => warnings.push(m) });
    assert.deepEqual(ds.shape, [n, 28, 28, 1]);
    assert.deepEqual(ds.classNames, ['cat', 'dog']);
    assert.equal(ds.numClasses, 2);
    for (let k = 0; k < n; k++) {
      const value = ds.images[k * 784];
      assert.equal(ds.labels![k], value % 2, `image ${k}`);
    }
    assert.equal(warnings.length, 1);
    assert.match(warnings[0], /skipped 3 of 153 image files/);
    assert.match(warnings[0], /broken\.png/);
    assert.match(warnings[0], /big\.png \(is 56×40, most images are 28×28/);
    assert.match(warnings[0], /stray\.png \(sits beside the class folders/);
    assert.equal(ds.skipped.length, 3);
  });

  test('worker threads and the calling thread give identical data', async () => {
    const a = await loadImageFolder(root, { channels: 3, size: 14, workers: 2, onWarning: () => {} });
    const b = await loadImageFolder(root, { channels: 3, size: 14, workers: 0, onWarning: () => {} });
    assert.deepEqual(a.shape, [n + 1, 14, 14, 3]); // with a size, the 56×40 image is cropped and resized
    assert.deepEqual(a.images, b.images);
    assert.deepEqual(a.labels, b.labels);
  });

  test('two folders decoding at once on the shared worker pool each get their own images', async () => {
    const [a, b] = await Promise.all([
      loadImageFolder(root, { channels: 1, size: 28, workers: 2, onWarning: () => {} }),
      loadImageFolder(root, { channels: 3, size: 7, workers: 2, onWarning: () => {} }),
    ]);
    assert.deepEqual(a.shape, [n + 1, 28, 28, 1]);
    assert.deepEqual(b.shape, [n + 1, 7, 7, 3]);
    const c = await loadImageFolder(root, { channels: 3, size: 7, workers: 0, onWarning: () => {} });
    assert.deepEqual(b.images, c.images);
  });

  test('a folder without sub-folders is unlabelled; mixed sizes without a size are skipped', async () => {
    const flat = path.join(tmp, 'flat');
    put(path.join(flat, 'a.png'), png(8, 8, 3, (x) => x * 30));
    put(path.join(flat, 'b.jpg'), jpeg.encode({ width: 8, height: 8, data: new Uint8Array(256).fill(200) }, 90).data);
    put(path.join(flat, 'c.png'), png(9, 8, 3, () => 0));
    const warnings: string[] = [];
    const ds = await loadImageFolder(flat, { onWarning: (m) => warnings.push(m) });
    assert.equal(ds.labels, null);
    assert.deepEqual(ds.shape, [2, 8, 8, 3]);
    assert.match(warnings[0], /c\.png \(is 9×8/);
  });

  test('throws when no file can be used, naming the folder and the first files', async () => {
    const bad = path.join(tmp, 'allbad');
    for (let i = 0; i < 7; i++) put(path.join(bad, `x${i}.png`), Buffer.from('garbage'));
    await assert.rejects(loadImageFolder(bad), (e: unknown) => e instanceof FormatError && e.file === bad && /none of its 7 image files could be used; first: x0\.png \(is neither a PNG nor a JPEG/.test(e.message) && /and 2 more/.test(e.message));
  });

  test('throws when the folder is missing or has no images', async () => {
    await assert.rejects(loadImageFolder(path.join(tmp, 'missing')), /does not exist/);
    fs.mkdirSync(path.join(tmp, 'empty'));
    await assert.rejects(loadImageFolder(path.join(tmp, 'empty')), /holds no PNG or JPEG images/);
  });

  test('throws when channels or size are bad', async () => {
    await assert.rejects(loadImageFolder(root, { channels: 2 as 1 }), /channels must be 1 or 3/);
    await assert.rejects(loadImageFolder(root, { size: 0 }), /size must be a positive integer/);
  });
});
