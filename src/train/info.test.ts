// The receptive field of any pixel, from gradients: nothing at or after the pixel (causality),
// every earlier pixel for Gated PixelCNN, and the blind spot of the plain PixelCNN.

import assert from 'node:assert/strict';
import { test } from 'node:test';
import { createModel, familyOf } from '../models/index.js';
import { pixelField, receptiveField } from './info.js';

const grey = { height: 7, width: 7, channels: 1, likelihood: { kind: 'categorical', levels: 4 } };

test('pixelField: zero at and after the pixel; Gated PixelCNN sees every earlier pixel, PixelCNN misses some', () => {
  const gated = createModel({ kind: 'gated-pixelcnn', ...grey, hiddenChannels: 4, kernelSize: 3, firstKernelSize: 3, dilations: [1, 2, 4] }, { seed: 1 });
  const plain = createModel({ kind: 'pixelcnn', ...grey, hiddenChannels: 4, residualBlocks: 3, firstKernelSize: 3, kernelSize: 3, outputHidden: 4 }, { seed: 1 });
  for (const [y, x] of [[4, 3], [6, 6], [2, 0]] as const) {
    for (const model of [gated, plain]) {
      const f = pixelField(model, y, x);
      assert.equal(f.of, y * 7 + x);
      for (let q = y * 7 + x; q < 49; q++) assert.equal(f.influence[q], 0, `${model.config.kind} (${y}, ${x}): gradient at pixel ${q}`);
      assert.equal(f.pixels, Array.from(f.influence).filter((v) => v > 0).length);
    }
    assert.equal(pixelField(gated, y, x).pixels, y * 7 + x, `gated (${y}, ${x}) has a blind spot`);
  }
  // The masked 3×3 stack's blind spot: pixels up and to the right that no chain of taps reaches.
  const f = pixelField(plain, 4, 3);
  assert.ok(f.pixels < f.of, `pixelcnn (4, 3) sees ${f.pixels} of ${f.of}`);
  assert.deepEqual(receptiveField(plain), { pixels: pixelField(plain, 6, 6).pixels, of: 48 });
  assert.throws(() => pixelField(gated, 7, 0), /pixelField: pixel \(7, 0\) is outside the 7×7 image/);
});

test('pixelField of a discrete-input family (image-gpt) by interventions: nothing at or after the pixel, every earlier pixel with full causal attention', () => {
  const gpt = createModel({ kind: 'image-gpt', ...grey, likelihood: { kind: 'categorical', levels: 256 }, ...familyOf('image-gpt')!.tiny(7, 7) }, { seed: 2 });
  for (const [y, x] of [[3, 2], [6, 6]] as const) {
    const f = pixelField(gpt, y, x);
    assert.equal(f.of, y * 7 + x);
    for (let q = y * 7 + x; q < 49; q++) assert.equal(f.influence[q], 0, `(${y}, ${x}) moved by pixel ${q}`);
    assert.equal(f.pixels, f.of, `(${y}, ${x}) sees ${f.pixels} of ${f.of}`);
  }
});
