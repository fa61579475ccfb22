// The Image Transformer's own behaviour beyond the invariants every family is held to (those run
// from the family table in models.test.ts and sample/cached.test.ts): local attention is local,
// the presets have the paper's sizes, bad configs are clear errors.

import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import * as ax from '../../ops/index.js';
import { Generator } from '../../tensor/random.js';
import { Tensor } from '../../tensor/tensor.js';
import { createModel } from '../index.js';
import { loadPreset } from '../presets.js';
import { positionEncoding2d } from './image-transformer.js';

const base = {
  kind: 'image-transformer', height: 4, width: 4, channels: 1, likelihood: { kind: 'categorical', levels: 4 },
  layers: 1, hiddenSize: 8, heads: 2, ffSize: 12, dropout: 0,
};

/** Which input elements move the parameters of position p (one layer: exactly what p attends to). */
function readBy(cfg: Record<string, unknown>, p: number): number[] {
  const model = createModel(cfg, { seed: 3 });
  model.eval();
  const d = 16;
  const img = ax.randint(0, 4, [1, 4, 4, 1], { generator: new Generator(1) }).data as Int32Array;
  const batch = new Int32Array(17 * d);
  for (let k = 0; k <= d; k++) {
    batch.set(img, k * d);
    if (k > 0) batch[k * d + k - 1] = (img[k - 1]! + 1) % 4;
  }
  const out = ax.noGrad(() => model.params(new Tensor(batch, [17, 4, 4, 1]))).data;
  const pp = 4;
  const seen: number[] = [];
  for (let k = 1; k <= d; k++) {
    for (let i = 0; i < pp; i++) if (out[k * d * pp + p * pp + i] !== out[p * pp + i]) { seen.push(k - 1); break; }
  }
  return seen;
}

describe('image-transformer attention patterns', () => {
  test('local 1-D: position 13 reads its block (12…) and the previous one (8…11): the values of 7…12', () => {
    // Position s carries the value of s − 1 (the shift), so keys 8…13 are the values 7…12.
    assert.deepEqual(readBy({ ...base, attention: 'local1d', blockLength: 4, memoryLength: 4 }, 13), [7, 8, 9, 10, 11, 12]);
    assert.deepEqual(readBy({ ...base, attention: 'local1d', blockLength: 4, memoryLength: 1 }, 13), [10, 11, 12]);
  });
  test('causal: every earlier value', () => {
    assert.deepEqual(readBy({ ...base, attention: 'causal' }, 13), [...Array(13).keys()]);
  });
  test('local 2-D: the row above within one column of the 2-wide block (top flange, both sides), and the left flange', () => {
    // Position 13 = row 3, column 1, block columns 0…1: keys in rows 2…3, columns 0…2 (the right
    // flange only in the row above), up to itself: 8, 9, 10, 12, 13 → values 7, 8, 9, 11, 12.
    assert.deepEqual(readBy({ ...base, attention: 'local2d', blockWidth: 2, memoryHeight: 1, memoryWidth: 1 }, 13), [7, 8, 9, 11, 12]);
    // Position 14 = row 3, column 2, block columns 2…3, left flange column 1: keys 9, 10, 11, 13, 14.
    assert.deepEqual(readBy({ ...base, attention: 'local2d', blockWidth: 2, memoryHeight: 1, memoryWidth: 1 }, 14), [8, 9, 10, 12, 13]);
  });
  test("local 2-D with blocks two rows high: the block's rectangle up to the query, in raster order", () => {
    // base is 4×4 grey: blocks of 2 rows × 2 columns, flanges 1 row × 1 column. Position 13 = row 3,
    // column 1, block rows 2…3, columns 0…1: keys in rows 1…3, columns 0…2 up to itself — 4, 5, 6
    // (top flange), 8, 9, 10 (its block's first row and the right flange beside it), 12, 13.
    assert.deepEqual(readBy({ ...base, attention: 'local2d', blockHeight: 2, blockWidth: 2, memoryHeight: 1, memoryWidth: 1 }, 13), [3, 4, 5, 7, 8, 9, 11, 12]);
    // Position 9 = row 2, column 1 (the block's first row): rows 1…2, columns 0…2: 4, 5, 6, 8, 9.
    assert.deepEqual(readBy({ ...base, attention: 'local2d', blockHeight: 2, blockWidth: 2, memoryHeight: 1, memoryWidth: 1 }, 9), [3, 4, 5, 7, 8]);
    assert.throws(() => createModel({ ...base, attention: 'local2d', blockHeight: 3, blockWidth: 2 }), /blockHeight \(3\) must divide the image's height, 4 rows/);
  });
  test('local 1-D falls back to causal attention when the sequence fits in one block', () => {
    const m = createModel({ ...base, attention: 'local1d', blockLength: 16 }) as unknown as { pattern: { kind: string } };
    assert.equal(m.pattern.kind, 'causal');
  });
});

describe('image-transformer', () => {
  test('the CIFAR-10 preset has the paper\'s sizes: 12 blocks of width 512, 4 heads, feed-forward 2048, per-channel embeddings', () => {
    const p = loadPreset('image-transformer-cifar10');
    assert.equal(p.train.betas instanceof Array && (p.train.betas as number[])[1], 0.98);
    assert.equal((p.train.schedule as { decay: string }).decay, 'noam');
    const model = createModel(p.model);
    const d = 512, f = 2048;
    const perBlock = (3 * d * d + 3 * d) + (d * d + d) + (d * f + f) + (f * d + d) + 4 * d; // qkv, out, ff1, ff2, two norms
    assert.equal(model.numParameters(), 12 * perBlock + 3 * 256 * d + (d * 256 + 256));
    assert.equal((model as unknown as { length: number }).length, 3072);
  });
  test('2-D positions: rows on the first half of the channels, columns on the second', () => {
    const pe = positionEncoding2d(2, 3, 8); // k = 2 frequencies per axis
    const at = (r: number, c: number, i: number) => pe[(r * 3 + c) * 8 + i]!;
    assert.equal(at(1, 2, 0), Math.fround(Math.sin(1)));
    assert.equal(at(1, 2, 2), Math.fround(Math.cos(1)));
    assert.equal(at(1, 2, 4), Math.fround(Math.sin(2)));
    assert.equal(at(1, 2, 7), Math.fround(Math.cos(2 * 1e-4)));
  });
  test('dropout acts in training mode only', () => {
    const model = createModel({ ...base, dropout: 0.5 }, { seed: 1 });
    const img = ax.randint(0, 4, [2, 4, 4, 1], { generator: new Generator(2) });
    model.train();
    const a = model.logProb(img).toArray();
    const b = model.logProb(img).toArray();
    assert.notDeepEqual(a, b);
    model.eval();
    assert.deepEqual(model.logProb(img).toArray(), model.logProb(img).toArray());
  });
  test('bad configs are clear errors', () => {
    assert.throws(() => createModel({ ...base, heads: 3 }), /heads \(3\) must divide hiddenSize \(8\)/);
    assert.throws(() => createModel({ ...base, attention: 'local2d', blockWidth: 3 }), /blockWidth \(3\) must divide the grid's width, 4 columns/);
    assert.throws(() => createModel({ ...base, attention: 'dilated' }), /attention must be 'local1d', 'local2d' or 'causal'/);
    assert.throws(() => createModel({ ...base, hiddenSize: 2, heads: 1 }), /hiddenSize must be at least 4/);
    assert.throws(() => createModel({ ...base, dropout: 1 }), /dropout must be in \[0, 1\)/);
  });
});

describe('image-transformer info', () => {
  test('receptive field through the pattern: local 1-D grows by one memory per layer; FLOPs count projections, attention and head', async () => {
    const { modelInfo } = await import('../../train/info.js');
    // 16 positions, blocks of 4 with 4 of memory, 2 layers: the last position (15, block 12…15)
    // reads 8…15, which read 4…15: values 3…14, i.e. pixels 3…14 of the 15 before the last.
    const m = createModel({ ...base, layers: 2, attention: 'local1d', blockLength: 4, memoryLength: 4 });
    const info = modelInfo(m);
    assert.deepEqual(info.receptiveField, { pixels: 12, of: 15, measuredBy: 'structure' });
    // Keys per query: block 0 reads 1…4 (10 in all), later blocks 4 + 1…4 (26 each).
    const keys = 10 + 3 * 26;
    assert.equal(info.flops, 2 * (16 * 2 * (4 * 64 + 2 * 8 * 12) + 4 * keys * 8) + 16 * 2 * 8 * 4);
    const causal = modelInfo(createModel({ ...base, layers: 1, attention: 'causal' }));
    assert.deepEqual(causal.receptiveField, { pixels: 15, of: 15, measuredBy: 'structure' });
  });
});
