import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, describe, test } from 'node:test';
import { FormatError } from '../errors.js';
import { loadNpy, parseNpy, readNpyImages, readNpyLabels } from './npy.js';

const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'arpix-npy-'));
after(() => fs.rmSync(tmp, { recursive: true, force: true }));

/** A version-1 .npy file, header padded to a multiple of 64 as NumPy writes it. */
function npy(descr: string, shape: number[], data: Uint8Array, fortran = false): Buffer {
  const shapeText = shape.length === 1 ? `(${shape[0]},)` : `(${shape.join(', ')})`;
  let header = `{'descr': '${descr}', 'fortran_order': ${fortran ? 'True' : 'False'}, 'shape': ${shapeText}, }`;
  const total = 10 + header.length + 1;
  header += ' '.repeat((64 - (total % 64)) % 64) + '\n';
  const pre = Buffer.from([0x93, 0x4e, 0x55, 0x4d, 0x50, 0x59, 1, 0, 0, 0]);
  pre.writeUInt16LE(header.length, 8);
  return Buffer.concat([pre, Buffer.from(header, 'latin1'), data]);
}

function write(name: string, bytes: Uint8Array): string {
  const p = path.join(tmp, name);
  fs.writeFileSync(p, bytes);
  return p;
}

const grey = Uint8Array.from({ length: 2 * 3 * 3 }, (_, i) => i);

describe('.npy files', () => {
  test('uint8 [2, 3, 3] loads as [2, 3, 3, 1]', () => {
    const a = readNpyImages(write('g.npy', npy('|u1', [2, 3, 3], grey)));
    assert.deepEqual(a.shape, [2, 3, 3, 1]);
    assert.deepEqual([...a.images], [...grey]);
  });

  test('uint8 [1, 2, 2, 3] keeps its RGB channels', () => {
    const a = readNpyImages(write('rgb.npy', npy('|u1', [1, 2, 2, 3], new Uint8Array(12).fill(9))));
    assert.deepEqual(a.shape, [1, 2, 2, 3]);
  });

  test('int64 labels load beside the images', () => {
    const lbl = Buffer.alloc(16);
    lbl.writeBigInt64LE(4n, 0);
    lbl.writeBigInt64LE(1n, 8);
    const ds = loadNpy(write('x.npy', npy('|u1', [2, 3, 3], grey)), { labelsFile: write('y.npy', npy('<i8', [2], lbl)) });
    assert.deepEqual([...ds.labels!], [4, 1]);
    assert.equal(ds.numClasses, 5);
    assert.equal(ds.name, 'x');
  });

  test('big-endian int16 labels are read in their byte order', () => {
    assert.deepEqual([...readNpyLabels(write('be.npy', npy('>i2', [2], Uint8Array.of(1, 0, 0, 3))))], [256, 3]);
  });

  test('version 2 headers (4-byte length) parse', () => {
    const v1 = npy('|u1', [1, 1, 1], Uint8Array.of(5));
    const v2 = Buffer.concat([v1.subarray(0, 6), Buffer.of(2, 0), Buffer.alloc(4), v1.subarray(10)]);
    v2.writeUInt32LE(v1.readUInt16LE(8), 8);
    assert.deepEqual([...parseNpy(v2, 'v2').data], [5]);
  });

  const cases: [string, () => Uint8Array, RegExp][] = [
    ['the magic is wrong', () => Buffer.from('PK\x03\x04 not numpy at all'), /wrong magic number: not a \.npy file/],
    ['it is float32', () => npy('<f4', [1, 1, 1], new Uint8Array(4)), /dtype '<f4'; images must be uint8/],
    ['it is in Fortran order', () => npy('|u1', [1, 2, 2], new Uint8Array(4), true), /Fortran order/],
    ['it is truncated', () => npy('|u1', [2, 3, 3], grey.subarray(0, 10)), /is truncated: shape \(2, 3, 3\)/],
    ['it has 4 channels', () => npy('|u1', [1, 1, 1, 4], new Uint8Array(4)), /has 4 channels; images need 1 \(grey\) or 3 \(RGB\)/],
    ['it is 2-d', () => npy('|u1', [3, 3], new Uint8Array(9)), /images need \[N, H, W\] or \[N, H, W, C\]/],
  ];
  for (const [what, bytes, pattern] of cases) {
    test(`throws when ${what}, naming the file`, () => {
      const f = write(`bad-${what.replace(/\W+/g, '-')}.npy`, bytes());
      assert.throws(() => readNpyImages(f), (e: unknown) => e instanceof FormatError && e.file === f && pattern.test(e.message));
    });
  }

  test('throws when images and labels differ in count', () => {
    const x = write('c.npy', npy('|u1', [2, 3, 3], grey));
    const y = write('c-labels.npy', npy('|u1', [3], Uint8Array.of(0, 1, 2)));
    assert.throws(() => loadNpy(x, { labelsFile: y }), /holds 2 images but .*c-labels\.npy holds 3 labels/);
  });
});
