// Palettes: k-means finds the centres of a synthetic mixture, a seed fixes the palette, the
// nearest-colour lookup equals a brute-force search, and the palette head's token likelihood is
// normalised over every image made of palette colours.

import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { createModel } from '../models/index.js';
import * as ax from '../ops/index.js';
import { Generator } from '../tensor/random.js';
import { Tensor } from '../tensor/tensor.js';
import { createLikelihood, fitPalette, greyPalette, isPaletteHead, makePalette, PaletteIndex } from './index.js';

/** n points around each of the centres, Gaussian with standard deviation `spread`, clamped to 0..255. */
function mixture(centres: number[][], n: number, spread: number, seed: number): Int32Array {
  const c = centres[0]!.length;
  const noise = new Float64Array(centres.length * n * c);
  new Generator(seed).normal(noise);
  const out = new Int32Array(centres.length * n * c);
  centres.forEach((centre, j) => {
    for (let i = 0; i < n; i++) {
      for (let ch = 0; ch < c; ch++) {
        const at = (j * n + i) * c + ch;
        out[at] = Math.min(255, Math.max(0, Math.round(centre[ch]! + spread * noise[at]!)));
      }
    }
  });
  return out;
}

describe('k-means palette', () => {
  const centres = [[20, 30, 200], [220, 40, 40], [40, 210, 60], [128, 128, 128], [240, 240, 20]];
  const pixels = mixture(centres, 400, 6, 1);

  for (const method of ['lloyd', 'minibatch'] as const) {
    test(`${method} converges to the known centres of a 5-colour mixture (within 2 levels)`, () => {
      const iterations: number[] = [];
      const fit = fitPalette(pixels, 3, { k: 5, seed: 3, method, samplePixels: 0, onIteration: (i) => iterations.push(i) });
      assert.ok(iterations.length > 0, 'progress was reported');
      const found = [...Array(5).keys()].map((j) => Array.from(fit.palette.colours.subarray(j * 3, j * 3 + 3)));
      for (const centre of centres) {
        const nearest = Math.min(...found.map((f) => Math.max(...f.map((v, ch) => Math.abs(v - centre[ch]!)))));
        assert.ok(nearest <= 2, `centre ${centre} is ${nearest} levels from the nearest fitted colour; fitted ${JSON.stringify(found)}`);
      }
      // Mean squared distance of a 3-channel Gaussian of σ = 6 is about 3·36 = 108.
      assert.ok(fit.inertia > 80 && fit.inertia < 130, `inertia ${fit.inertia}`);
    });
  }

  test('the same seed gives the same palette; another seed on a sample may not, but still fits', () => {
    const a = fitPalette(pixels, 3, { k: 8, seed: 7, samplePixels: 500 });
    const b = fitPalette(pixels, 3, { k: 8, seed: 7, samplePixels: 500 });
    assert.deepEqual(Array.from(a.palette.colours), Array.from(b.palette.colours));
    assert.deepEqual(Array.from(a.centres), Array.from(b.centres));
    const c = fitPalette(pixels, 3, { k: 8, seed: 8, samplePixels: 500 });
    assert.notDeepEqual(Array.from(a.centres), Array.from(c.centres));
  });

  test('bad arguments are clear errors', () => {
    assert.throws(() => fitPalette(pixels, 3, { k: 1 }), /k must be an integer ≥ 2/);
    assert.throws(() => fitPalette(new Int32Array(6), 3, { k: 4 }), /fewer than the k = 4 colours/);
    assert.throws(() => fitPalette(pixels, 3, { k: 4, method: 'em' as never }), /method must be 'lloyd' or 'minibatch'/);
    assert.throws(() => makePalette([0, 300], 1), /integers in 0..255/);
    assert.throws(() => makePalette([0, 1, 2], 2), /must hold k·C/);
    assert.throws(() => greyPalette(1), /2..256/);
  });
});

describe('nearest-colour tokens', () => {
  test('the cached lookup equals a brute-force nearest search (ties to the lowest index)', () => {
    const colours = new Int32Array(40 * 3);
    new Generator(2).randint(colours, 0, 256);
    colours.set([10, 10, 10, 10, 10, 10], 0); // a duplicate colour: ties go to index 0
    const palette = makePalette(colours, 3);
    const values = new Int32Array(3000 * 3);
    new Generator(3).randint(values, 0, 256);
    values.set([10, 10, 10, 11, 10, 10], 0);
    const index = new PaletteIndex(palette);
    const got = index.tokens(values);
    const again = index.tokens(values); // from the table this time
    for (let i = 0; i < 3000; i++) {
      let best = -1;
      let bestD = Infinity;
      for (let j = 0; j < 40; j++) {
        let d = 0;
        for (let ch = 0; ch < 3; ch++) d += (values[i * 3 + ch]! - colours[j * 3 + ch]!) ** 2;
        if (d < bestD) [best, bestD] = [j, d];
      }
      assert.equal(got[i], best, `pixel ${i}`);
      assert.equal(again[i], best);
    }
    assert.equal(got[0], 0);
    assert.equal(got[1], 0);
  });

  test('a grey palette of k levels is evenly spaced and maps each level to the nearest', () => {
    const p = greyPalette(5);
    assert.deepEqual(Array.from(p.colours), [0, 64, 128, 191, 255]);
    assert.deepEqual(Array.from(new PaletteIndex(p).tokens([0, 31, 33, 200, 255])), [0, 0, 1, 3, 4]);
  });
});

describe('palette head', () => {
  const colours = [0, 0, 0, 255, 0, 0, 0, 0, 255];
  test('log p of the token sequence sums to 1 over every image of palette colours (2×2 RGB, with a label)', () => {
    const cfg = { kind: 'image-gpt', height: 2, width: 2, channels: 3, likelihood: { kind: 'palette', k: 3, colours }, numClasses: 2, embedDim: 8, layers: 2, heads: 2, mlpRatio: 2 };
    const model = createModel(cfg, { seed: 4 });
    model.eval();
    for (const p of model.parameters()) p.data.set(ax.add(p, ax.mul(ax.randn(p.shape, { generator: new Generator(p.size) }), 0.3)).data);
    const count = 3 ** 4;
    const images = new Int32Array(count * 12);
    for (let i = 0; i < count; i++) {
      for (let px = 0, v = i; px < 4; px++, v = Math.floor(v / 3)) images.set(colours.slice((v % 3) * 3, (v % 3) * 3 + 3), i * 12 + px * 3);
    }
    const batch = new Tensor(images, [count, 2, 2, 3]);
    for (const label of [0, 1]) {
      const lp = ax.noGrad(() => model.logProb(batch, { labels: ax.full([count], label, 'int32') }));
      const total = Array.from(lp.data).reduce((s, x) => s + Math.exp(x), 0);
      assert.ok(Math.abs(total - 1) < 1e-5, `label ${label}: sum ${total}`);
    }
    // An off-palette image has the probability of its nearest-colour tokens, and bits/dim counts tokens.
    const off = new Tensor(Int32Array.from([10, 5, 0, 240, 20, 3, 1, 1, 250, 0, 0, 0]), [1, 2, 2, 3]);
    const on = new Tensor(Int32Array.from([0, 0, 0, 255, 0, 0, 0, 0, 255, 0, 0, 0]), [1, 2, 2, 3]);
    const labels = ax.full([1], 0, 'int32');
    assert.equal(model.logProb(off, { labels }).data[0], model.logProb(on, { labels }).data[0]);
    assert.equal(model.dims, 4);
    assert.equal(model.likelihood.measures, 'tokens');
  });

  test('samples decode tokens to palette colours; an unfitted palette is a clear error', () => {
    const head = createLikelihood({ kind: 'palette', k: 3, colours }, 3);
    assert.ok(isPaletteHead(head));
    const out = new Int32Array(2 * 3);
    head.sample(Float32Array.from([-50, 50, -50, -50, -50, 50]), 2, 0, new Generator(0), 1, out);
    assert.deepEqual(Array.from(out), [255, 0, 0, 0, 0, 255]);
    const unfitted = createModel({ kind: 'image-gpt', height: 2, width: 2, channels: 3, likelihood: { kind: 'palette', k: 3 }, embedDim: 8, layers: 1, heads: 2 });
    assert.throws(() => unfitted.logProb(ax.zeros([1, 2, 2, 3], 'int32')), /palette is not fitted yet/);
    assert.throws(() => createLikelihood({ kind: 'palette', k: 3, colours: [1, 2] }, 3), /must be k·C = 9 values/);
    assert.throws(() => createModel({ kind: 'image-gpt', height: 2, width: 2, channels: 3, likelihood: { kind: 'categorical', levels: 4 } }), /identity grey palette, for channels 1/);
  });
});
