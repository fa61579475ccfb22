// The likelihood heads: the mixture against a direct float64 evaluation, normalisation over every
// value of a pixel, stability at the edges and for tiny scales, and samplers against logProb.

import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { Generator } from '../tensor/random.js';
import { Tensor } from '../tensor/tensor.js';
import * as ax from '../ops/index.js';
import { createLikelihood, logisticMixtureLogProb, type LikelihoodConfig } from './index.js';

const sig = (v: number) => 1 / (1 + Math.exp(-v));

/** log p(x) of one pixel by the textbook formula, in float64, with the reference's edge rules. */
function directLogProb(p: ArrayLike<number>, x: number[], m: number, levels: number): number {
  const c = x.length;
  const per = c === 3 ? 3 : 2;
  const xs = x.map((v) => (2 * v) / (levels - 1) - 1);
  const h = 1 / (levels - 1);
  const logits = Array.from({ length: m }, (_, k) => p[k]!);
  const lmax = Math.max(...logits);
  const lse = lmax + Math.log(logits.reduce((s, l) => s + Math.exp(l - lmax), 0));
  let total = 0;
  for (let k = 0; k < m; k++) {
    let lp = logits[k]! - lse;
    for (let ch = 0; ch < c; ch++) {
      const at = m + ch * per * m;
      let mu = p[at + k]!;
      const ls = Math.max(p[at + m + k]!, -7);
      if (c === 3 && ch === 1) mu += Math.tanh(p[m + 2 * m + k]!) * xs[0]!;
      if (c === 3 && ch === 2) mu += Math.tanh(p[m + per * m + 2 * m + k]!) * xs[0]! + Math.tanh(p[m + 2 * per * m + 2 * m + k]!) * xs[1]!;
      const s = Math.exp(ls);
      const v = xs[ch]!;
      const upper = v > 0.999 ? 1 : sig((v + h - mu) / s);
      const lower = v < -0.999 ? 0 : sig((v - h - mu) / s);
      const delta = upper - lower;
      if (v < -0.999 || v > 0.999 || delta > 1e-5) lp += Math.log(delta);
      else {
        const z = (v - mu) / s;
        lp += z - ls - 2 * Math.log1p(Math.exp(z)) - Math.log((levels - 1) / 2);
      }
    }
    total += Math.exp(lp);
  }
  return Math.log(total);
}

function randomParams(n: number, p: number, seed: number, scale = 1): Tensor {
  return ax.mul(ax.randn([n, 1, 1, p], { dtype: 'float64', generator: new Generator(seed) }), scale);
}

describe('discretised logistic mixture', () => {
  for (const [channels, m] of [[1, 3], [3, 2], [3, 5]] as const) {
    test(`matches a direct float64 evaluation, ${channels} channel(s), ${m} components, edges included`, () => {
      const p = channels === 3 ? 10 * m : 3 * m;
      const n = 64;
      const params = randomParams(n, p, 11 + m);
      const vals = new Int32Array(n * channels);
      const gen = new Generator(3);
      const r = new Int32Array(n * channels);
      gen.randint(r, 0, 256);
      for (let i = 0; i < r.length; i++) vals[i] = i % 7 === 0 ? 0 : i % 7 === 1 ? 255 : r[i]!;
      const images = new Tensor(vals, [n, 1, 1, channels]);
      const got = logisticMixtureLogProb(params, images, { nrMix: m }).toArray();
      for (let i = 0; i < n; i++) {
        const row = params.data.subarray(i * p, (i + 1) * p);
        const want = directLogProb(row, Array.from(vals.subarray(i * channels, (i + 1) * channels)), m, 256);
        assert.ok(Math.abs(got[i]! - want) < 1e-9 * Math.max(1, Math.abs(want)), `pixel ${i}: ${got[i]} vs ${want}`);
      }
    });
  }

  test('sums to 1 over every value of an RGB pixel (8 levels) and a grey pixel (256 levels)', () => {
    for (const [channels, levels, m] of [[3, 8, 3], [1, 256, 4]] as const) {
      const p = channels === 3 ? 10 * m : 3 * m;
      const params = ax.mul(randomParams(1, p, 5), 0.7);
      const count = levels ** channels;
      const vals = new Int32Array(count * channels);
      for (let i = 0; i < count; i++) for (let c = 0; c < channels; c++) vals[i * channels + c] = Math.floor(i / levels ** (channels - 1 - c)) % levels;
      const images = new Tensor(vals, [count, 1, 1, channels]);
      const tiled = ax.add(ax.zeros([count, 1, 1, p], 'float64'), params);
      const total = ax.exp(logisticMixtureLogProb(tiled, images, { nrMix: m, levels })).toArray().reduce((a, b) => a + b, 0);
      assert.ok(Math.abs(total - 1) < 1e-4, `${channels} channel(s), ${levels} levels: total ${total}`);
    }
  });

  test('no NaN or Inf in value or gradient at the edges and for tiny or huge scales (float32)', () => {
    const m = 2;
    const rows: number[][] = [];
    for (const logScale of [-20, -7, -3, 0, 5]) {
      for (const mean of [-3, -1, 0, 1, 3]) {
        const row = new Array(10 * m).fill(0);
        for (let c = 0; c < 3; c++) for (let k = 0; k < m; k++) {
          row[m + c * 3 * m + k] = mean;
          row[m + c * 3 * m + m + k] = logScale;
          row[m + c * 3 * m + 2 * m + k] = 0.5;
        }
        rows.push(row);
      }
    }
    const n = rows.length;
    for (const value of [0, 1, 127, 254, 255]) {
      const params = ax.tensor(rows.flat(), [n, 1, 1, 10 * m]).requireGrad();
      const images = ax.full([n, 1, 1, 3], value, 'int32');
      const lp = logisticMixtureLogProb(params, images, { nrMix: m });
      assert.ok(lp.toArray().every(Number.isFinite), `value ${value}: ${lp.toArray()}`);
      ax.sum(lp).backward();
      assert.ok(params.grad!.toArray().every(Number.isFinite), `gradient at value ${value}`);
    }
  });
});

describe('heads', () => {
  const configs: [LikelihoodConfig, number][] = [
    [{ kind: 'bernoulli' }, 1],
    [{ kind: 'categorical', levels: 4 }, 3],
    [{ kind: 'logistic-mixture', nrMix: 2, levels: 4 }, 3],
  ];
  for (const [config, channels] of configs) {
    test(`${config.kind}: the sampler draws pixels with the frequencies logProb gives`, () => {
      const head = createLikelihood(config, channels);
      const params = ax.mul(ax.randn([1, 1, 1, head.paramsPerPixel], { generator: new Generator(8) }), 1.5);
      const draws = 20000;
      const row = params.data as Float32Array;
      const tiled = new Float32Array(draws * head.paramsPerPixel);
      for (let r = 0; r < draws; r++) tiled.set(row, r * head.paramsPerPixel);
      const out = new Int32Array(draws * channels);
      const gen = new Generator(9);
      if (head.perChannel) {
        // A per-channel head's parameters do not depend on earlier channels here (fixed params), so
        // channels are independent and can be drawn one after another.
        for (let c = 0; c < channels; c++) head.sample(tiled, draws, c, gen, 1, out);
      } else {
        head.sample(tiled, draws, 0, gen, 1, out);
      }
      const levels = head.levels;
      const counts = new Map<number, number>();
      for (let r = 0; r < draws; r++) {
        let key = 0;
        for (let c = 0; c < channels; c++) key = key * levels + out[r * channels + c]!;
        counts.set(key, (counts.get(key) ?? 0) + 1);
      }
      const all = levels ** channels;
      const vals = new Int32Array(all * channels);
      for (let i = 0; i < all; i++) for (let c = 0; c < channels; c++) vals[i * channels + c] = Math.floor(i / levels ** (channels - 1 - c)) % levels;
      const probs = ax.exp(head.logProb(ax.add(ax.zeros([all, 1, 1, head.paramsPerPixel]), params), new Tensor(vals, [all, 1, 1, channels]))).toArray();
      assert.ok(Math.abs(probs.reduce((a, b) => a + b, 0) - 1) < 1e-4);
      for (let i = 0; i < all; i++) {
        const freq = (counts.get(i) ?? 0) / draws;
        const sd = Math.sqrt((probs[i]! * (1 - probs[i]!)) / draws);
        assert.ok(Math.abs(freq - probs[i]!) < 5 * sd + 1e-3, `value ${i}: frequency ${freq} vs probability ${probs[i]}`);
      }
    });
  }

  test('images outside the levels are a clear error', () => {
    const head = createLikelihood({ kind: 'categorical', levels: 4 }, 1);
    assert.throws(() => head.logProb(ax.zeros([1, 2, 2, 4]), ax.full([1, 2, 2, 1], 4, 'int32')), /contain the value 4 but this model has 4 levels/);
    assert.throws(() => head.logProb(ax.zeros([1, 2, 2, 3]), ax.full([1, 2, 2, 1], 0, 'int32')), /params must be \[1, 2, 2, 4\]/);
    assert.throws(() => createLikelihood({ kind: 'logistic-mixture', nrMix: 2 }, 2), /must be 1 or 3/);
  });
});
