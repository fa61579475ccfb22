// The size an image declares is read and bounded before it is decoded: a PNG or JPEG header read
// alone, a bomb refused from its header, a zlib stream inflating past what the header declares
// refused with no more memory than the image needs, and interlaced PNGs (whose data are laid out
// by pass) still read exactly.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { deflateSync } from 'node:zlib';
import jpeg from 'jpeg-js';
import { craftPng, pngBomb, zerosZlib } from '../testing/serve-fuzz.js';
import { MAX_IMAGE_PIXELS, decodeImage, readImageHeader } from './decode.js';

/** Adam7's passes: [x0, y0, dx, dy]. */
const PASSES = [[0, 0, 8, 8], [4, 0, 8, 8], [0, 4, 4, 8], [2, 0, 4, 4], [0, 2, 2, 4], [1, 0, 2, 2], [0, 1, 1, 2]] as const;

/** An interlaced 8-bit PNG of `values` (width·height·channels, grey or RGB), each row filtered with None. */
function interlacedPng(width: number, height: number, channels: 1 | 3, values: Uint8Array): Uint8Array {
  const raw: number[] = [];
  for (const [x0, y0, dx, dy] of PASSES) {
    for (let y = y0; y < height; y += dy) {
      if (x0 >= width) break;
      raw.push(0);
      for (let x = x0; x < width; x += dx) for (let c = 0; c < channels; c++) raw.push(values[(y * width + x) * channels + c]!);
    }
  }
  return craftPng({ width, height, colourType: channels === 1 ? 0 : 2, interlace: 1 }, deflateSync(Uint8Array.from(raw)));
}

test('readImageHeader: the size a PNG or JPEG declares, without decoding', () => {
  assert.deepEqual(readImageHeader(pngBomb(20000, 20000)), { kind: 'png', width: 20000, height: 20000 });
  const jpg = jpeg.encode({ width: 16, height: 8, data: Buffer.alloc(16 * 8 * 4, 128) }, 90).data;
  assert.deepEqual(readImageHeader(jpg), { kind: 'jpeg', width: 16, height: 8 });
  assert.throws(() => readImageHeader(pngBomb(28, 28).subarray(0, 20)), /truncated PNG \(20 bytes/);
  assert.throws(() => readImageHeader(Uint8Array.of(0xff, 0xd8, 0xff, 0xda, 0, 2)), /no readable frame header/);
  assert.throws(() => readImageHeader(new TextEncoder().encode('GIF89a')), /neither a PNG nor a JPEG/);
});

test('a PNG declaring 20000×20000 (389 KB of compressed zeros) is refused from its header', () => {
  const bomb = pngBomb(20000, 20000);
  assert.ok(bomb.length < 400_000, `${bomb.length} bytes`);
  assert.ok(20000 * 20000 > MAX_IMAGE_PIXELS);
  assert.throws(() => decodeImage(bomb), /declares 20000×20000 pixels, more than the 100000000 allowed here/);
  assert.throws(() => decodeImage(pngBomb(29, 28), { maxPixels: 28 * 28 }), /declares 29×28 pixels, more than the 784/);
});

test('a 28×28 PNG whose data inflate to 64 MiB is refused at the 812 bytes its header allows', () => {
  assert.throws(() => decodeImage(craftPng({ width: 28, height: 28 }, zerosZlib(64 << 20))), /inflate to more than the 812 bytes its 28×28 header declares/);
  // One byte too many is too many; exactly enough is a (black) image.
  assert.throws(() => decodeImage(craftPng({ width: 28, height: 28 }, zerosZlib(813))), /inflate to more than the 812 bytes/);
  assert.deepEqual(decodeImage(craftPng({ width: 28, height: 28 }, zerosZlib(812))).data, new Uint8Array(784));
  assert.throws(() => decodeImage(craftPng({ width: 28, height: 28 }, Uint8Array.of(0x78, 0xda, 1, 2, 3))), /image data do not inflate/);
});

test('interlaced PNGs, including sizes where some passes are empty, read pixel for pixel', () => {
  for (const [w, h, c] of [[28, 28, 1], [1, 1, 1], [3, 5, 3], [9, 2, 1]] as const) {
    const values = Uint8Array.from({ length: w * h * c }, (_, i) => (i * 53 + 7) & 0xff);
    const img = decodeImage(interlacedPng(w, h, c, values));
    assert.deepEqual([img.width, img.height, img.channels], [w, h, c]);
    assert.deepEqual(img.data, values, `${w}×${h}×${c}`);
  }
});
