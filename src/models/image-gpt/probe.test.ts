// The probe's logistic regression against an independent float64 gradient descent on a tiny
// problem, a separable problem fitted perfectly, and the probe end to end on a tiny Image GPT.

import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { makeDataset } from '../../data/index.js';
import { createModel } from '../index.js';
import { Generator } from '../../tensor/random.js';
import { accuracy, fitLogistic, type LogisticData } from './logistic.js';
import { middleLayer, poolFeatures, probe } from './probe.js';
import type { ImageGPT } from '../index.js';
import { noGrad } from '../../ops/index.js';
import { Tensor } from '../../tensor/tensor.js';

/** Points around class centres in d dimensions. */
function blobs(n: number, d: number, k: number, spread: number, seed: number): LogisticData {
  const g = new Generator(seed);
  const centres = new Float64Array(k * d);
  g.normal(centres);
  const noise = new Float64Array(n * d);
  g.normal(noise);
  const labels = new Int32Array(n).map((_, i) => i % k);
  const x = new Float32Array(n * d).map((_, j) => 2 * centres[labels[Math.floor(j / d)]! * d + (j % d)]! + spread * noise[j]!);
  return { x, labels, features: d, classes: k };
}

/** The same objective minimised by plain gradient descent in float64 loops, for many steps. */
function bruteForce(data: LogisticData, l2: number, steps: number, lr: number): { w: Float64Array; b: Float64Array; loss: number } {
  const { x, labels, features: d, classes: k } = data;
  const n = labels.length;
  const w = new Float64Array(d * k);
  const b = new Float64Array(k);
  let loss = 0;
  for (let s = 0; s <= steps; s++) {
    const gw = new Float64Array(d * k).map((_, i) => l2 * w[i]!);
    const gb = new Float64Array(k);
    loss = 0;
    for (let i = 0; i < n; i++) {
      const z = new Float64Array(k).map((_, c) => b[c]! + Array.from({ length: d }, (_, j) => x[i * d + j]! * w[j * k + c]!).reduce((a, v) => a + v, 0));
      const mx = Math.max(...z);
      const e = z.map((v) => Math.exp(v - mx));
      const tot = e.reduce((a, v) => a + v, 0);
      loss += (Math.log(tot) + mx - z[labels[i]!]!) / n;
      for (let c = 0; c < k; c++) {
        const p = e[c]! / tot - (c === labels[i] ? 1 : 0);
        gb[c]! += p / n;
        for (let j = 0; j < d; j++) gw[j * k + c]! += (p * x[i * d + j]!) / n;
      }
    }
    let reg = 0;
    for (const v of w) reg += v * v;
    loss += (l2 / 2) * reg;
    if (s === steps) break;
    for (let i = 0; i < w.length; i++) w[i]! -= lr * gw[i]!;
    for (let c = 0; c < k; c++) b[c]! -= lr * gb[c]!;
  }
  return { w, b, loss };
}

describe('logistic regression (L-BFGS on the engine)', () => {
  test('reaches the minimum that float64 gradient descent finds on a tiny overlapping 3-class problem', () => {
    const data = blobs(60, 3, 3, 1.5, 1);
    const l2 = 0.05; // strongly convex: one minimum
    const fit = fitLogistic(data, { l2, tolerance: 1e-6 });
    const ref = bruteForce(data, l2, 3000, 0.5);
    assert.ok(Math.abs(fit.loss - ref.loss) < 1e-5, `loss ${fit.loss} vs ${ref.loss}`);
    for (let i = 0; i < ref.w.length; i++) assert.ok(Math.abs(fit.weight[i]! - ref.w[i]!) < 2e-3, `w[${i}] ${fit.weight[i]} vs ${ref.w[i]}`);
    assert.ok(fit.gradientMax < 1e-4);
  });

  test('separates a separable problem perfectly, and a larger penalty gives smaller weights', () => {
    const data = blobs(200, 5, 4, 0.1, 2);
    const weak = fitLogistic(data, { l2: 1e-4 });
    const strong = fitLogistic(data, { l2: 1 });
    assert.equal(accuracy(weak, data.x, data.labels), 1);
    const norm = (w: Float64Array) => Math.sqrt(w.reduce((a, v) => a + v * v, 0));
    assert.ok(norm(strong.weight) < norm(weak.weight) / 3, `${norm(strong.weight)} vs ${norm(weak.weight)}`);
  });

  test('bad inputs are clear errors', () => {
    const data = blobs(10, 2, 2, 1, 3);
    assert.throws(() => fitLogistic({ ...data, features: 3 }, { l2: 0 }), /must hold labels × features/);
    assert.throws(() => fitLogistic({ ...data, labels: data.labels.map(() => 5) }, { l2: 0 }), /outside 0..1/);
    assert.throws(() => fitLogistic(data, { l2: -1 }), /l2 must be a non-negative number/);
  });
});

describe('probe', () => {
  test('end to end on a tiny image-gpt: every layer and raw pixels, on images whose class is their brightness', () => {
    const h = 4, w = 4;
    const make = (n: number, seed: number, split: string) => {
      const g = new Generator(seed);
      const labels = new Int32Array(n).map((_, i) => i % 2);
      const u = new Float64Array(n * h * w);
      g.uniform(u);
      const images = Uint8Array.from(u, (v, j) => Math.floor(v * 100) + (labels[Math.floor(j / (h * w))]! === 1 ? 150 : 0));
      return makeDataset({ name: 'bright', split, images, shape: [n, h, w, 1], labels, numClasses: 2, source: 'test' });
    };
    const model = createModel({ kind: 'image-gpt', height: h, width: w, channels: 1, likelihood: { kind: 'categorical', levels: 256 }, embedDim: 8, layers: 2, heads: 2, mlpRatio: 2 }, { seed: 1 });
    const seen: string[] = [];
    const r = probe(model, { train: make(120, 1, 'train'), test: make(60, 2, 'test') }, { layers: 'all', onProgress: (what) => seen.push(what) });
    assert.deepEqual(r.layers.map((l) => l.layer), [0, 1, 2]);
    assert.equal(r.raw!.features, h * w);
    assert.equal(r.raw!.testAccuracy, 1, 'raw brightness separates the classes');
    for (const l of r.layers) assert.ok(l.testAccuracy >= 0 && l.testAccuracy <= 1 && l.features === 8 && [1e-4, 1e-3, 1e-2, 1e-1].includes(l.l2));
    // The features are the hidden states averaged over the 16 positions.
    const train = make(3, 1, 'train');
    const pooled = poolFeatures(model as ImageGPT, train.images, 3, [0, 2], 2);
    const tokens = new Tensor(Int32Array.from(train.images), [3, h * w]);
    const states = noGrad(() => (model as ImageGPT).hidden(tokens, {}));
    for (const [i, layer] of [[0, 0], [1, 2]] as const) {
      const s = states[layer]!.data;
      for (let img = 0; img < 3; img++) {
        for (let c = 0; c < 8; c++) {
          let m = 0;
          for (let p = 0; p < h * w; p++) m += s[(img * h * w + p) * 8 + c]! / (h * w);
          assert.ok(Math.abs(pooled[i]![img * 8 + c]! - m) < 1e-6);
        }
      }
    }
    // Three bands of rows (uneven: rows 0, 1 and 2…3 of 4), each band's mean side by side.
    const banded = poolFeatures(model as ImageGPT, train.images, 3, [2], 2, undefined, 3);
    const s2 = states[2]!.data;
    const rowsOf = [[0, 1], [1, 2], [2, 4]];
    for (let img = 0; img < 3; img++) {
      rowsOf.forEach(([r0, r1], band) => {
        for (let c = 0; c < 8; c++) {
          let m = 0;
          for (let p = r0! * w; p < r1! * w; p++) m += s2[(img * h * w + p) * 8 + c]! / ((r1! - r0!) * w);
          assert.ok(Math.abs(banded[0]![(img * 3 + band) * 8 + c]! - m) < 1e-6, `image ${img}, band ${band}, channel ${c}`);
        }
      });
    }
    const rb = probe(model, { train: make(60, 1, 'train'), test: make(30, 2, 'test') }, { layers: [1], bands: 2, rawPixels: false });
    assert.equal(rb.layers[0]!.features, 16);
    assert.throws(() => poolFeatures(model as ImageGPT, train.images, 3, [2], 2, undefined, h + 1), /bands must be an integer in 1..4 \(the image's rows\), got 5/);
    assert.ok(r.layers.includes(r.best));
    assert.ok(seen.includes('logistic regression on raw pixels'));
    assert.equal(middleLayer(24), 12);
    assert.equal(middleLayer(1), 1);
    assert.throws(() => probe(model, { train: make(10, 1, 'train'), test: make(10, 2, 'test') }, { layers: [3] }), /layer must be an integer in 0..2/);
    const pixelcnn = createModel({ kind: 'pixelcnn', height: h, width: w, channels: 1, likelihood: { kind: 'categorical', levels: 256 } });
    assert.throws(() => probe(pixelcnn, { train: make(10, 1, 'train'), test: make(10, 2, 'test') }), /reads an image-gpt model's hidden states/);
  });
});
