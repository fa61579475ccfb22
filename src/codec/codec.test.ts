// The codec's round trips through every family of the table (grey and colour, every head, labels,
// odd sizes), its length against the model's own −log₂ p, and the coder alone against random
// distributions, probabilities near 0 and 1 included.

import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import * as ax from '../ops/index.js';
import { Generator } from '../tensor/random.js';
import { Tensor } from '../tensor/tensor.js';
import { createModel } from '../models/index.js';
import { familyCases, type CaseTemplate } from '../testing/families.js';
import { sample } from '../models/sampling/index.js';
import { decodeImages, encodeImages } from './codec.js';
import { compressValues, decompressBytes, paletteColours } from './compress.js';
import { readCompressed } from './format.js';
import { nativeAvailable, nativeBackend } from '../backends/registry.js';
import { quantise } from './frequencies.js';
import { PROB_TOTAL, RansDecoder, RansEncoder, symbolOf } from './rans.js';
import { TEST_PALETTE, codableImages } from '../testing/codec.js';

const PALETTE = TEST_PALETTE;
const templates: CaseTemplate[] = [
  { name: 'categorical grey 7×5', height: 7, width: 5, channels: 1, likelihood: { kind: 'categorical', levels: 256 } },
  { name: 'categorical RGB with labels', height: 5, width: 4, channels: 3, likelihood: { kind: 'categorical', levels: 8 }, numClasses: 3 },
  { name: 'mixture RGB', height: 4, width: 6, channels: 3, likelihood: { kind: 'logistic-mixture', nrMix: 3 } },
  { name: 'mixture grey with labels', height: 5, width: 5, channels: 1, likelihood: { kind: 'logistic-mixture', nrMix: 2 }, numClasses: 2 },
  { name: 'bernoulli grey', height: 6, width: 6, channels: 1, likelihood: { kind: 'bernoulli' } },
  { name: 'palette RGB with labels', height: 5, width: 4, channels: 3, likelihood: { kind: 'palette', k: 5, colours: PALETTE }, numClasses: 3 },
];


describe('round trips through every family', () => {
  for (const [name, cfg] of familyCases(templates)) {
    test(name, () => {
      const model = createModel(cfg, { seed: 3 });
      for (const p of model.parameters()) p.data.set(ax.mul(p, 2).data); // sharper distributions
      model.eval();
      const n = 5;
      const labels = model.config.numClasses > 0 ? Int32Array.from({ length: n }, (_, i) => i % model.config.numClasses) : null;
      // Images the model finds likely (its own samples), and uniform noise it finds unlikely.
      const images = ax.concat([sample(model, { n: 3, seed: 9, labels: labels ? Array.from(labels.subarray(0, 3)) : null }), codableImages(model, n - 3, 9)], 0);
      // A block of 2: two full blocks and a padded one.
      const { stream, idealBits } = encodeImages(model, images, { block: 2, labels });
      const back = decodeImages(model, stream, n, 'test stream', { block: 2 });
      assert.deepEqual(back.images.shape, images.shape);
      assert.deepEqual(Array.from(back.images.data), Array.from(images.data), 'decoded exactly');
      assert.deepEqual(back.labels, labels, 'and the labels with them');
      // The stream is its ideal length plus the coder's 7-byte state and under a byte of rounding per block.
      assert.ok(stream.length * 8 - idealBits < 8 * (7 + 3) && stream.length * 8 >= idealBits - 1, `stream ${stream.length * 8} bits, ideal ${idealBits.toFixed(1)}`);
      // The ideal length is the model's own −log₂ p (the quantised frequencies cost next to nothing).
      // On its samples: on noise, the logistic mixture's loss approximates the masses of far tails
      // (as the reference code does), which the coder takes exactly.
      const likely = ax.slice(images, [0, 0, 0, 0], [3, ...images.shape.slice(1)]);
      const cond = labels ? { labels: new Tensor(labels.slice(0, 3), [3]) } : {};
      const nats = -ax.sum(model.logProb(likely, cond)).item();
      const { idealBits: likelyBits } = encodeImages(model, likely, { block: 2, labels: labels?.slice(0, 3) });
      // The stream carries the labels too, log₂(classes) bits each.
      const modelBits = nats / Math.LN2 + (labels ? 3 * Math.log2(model.config.numClasses) : 0);
      assert.ok(Math.abs(likelyBits - modelBits) < 1e-3 * modelBits + 0.5, `coded ${likelyBits.toFixed(2)} bits, model ${modelBits.toFixed(2)}`);
    });
  }
});

test('a palette model refuses colours outside its palette, and codes their nearest colours exactly', () => {
  const cfg = familyCases(templates).find(([name]) => name.includes('palette'))![1];
  const model = createModel({ ...cfg, numClasses: 0 }, { seed: 3 });
  const images = codableImages(model, 2, 4);
  images.data[5] = 17; // not a colour of PALETTE
  const opts = { mode: 'portable' as const, block: 2, weights: 'raw' as const, transform: { kind: 'none' as const } };
  assert.throws(() => compressValues(model, images, opts), /hold \(\d+, \d+, 17\) at pixel 1 of image 0, which is not a colour of the model's palette/);
  const { nearest, firstOff } = paletteColours(model, images)!;
  assert.equal(firstOff, 1);
  const file = compressValues(model, nearest, opts);
  assert.deepEqual(Array.from(decompressBytes(file.bytes, 'f', model).values.data), Array.from(nearest.data));
});

test('a native file records its encoder\'s thread count, and its decoder runs with as many, then restores its own', { skip: nativeAvailable() ? false : 'the native backend is not built' }, () => {
  const native = nativeBackend() as unknown as { threads(): number; setThreads(n: number): void };
  const before = native.threads();
  const cfg = familyCases(templates).find(([name]) => name.startsWith('gated-pixelcnn categorical grey'))![1];
  const model = createModel(cfg, { seed: 3 });
  const images = codableImages(model, 3, 5);
  try {
    native.setThreads(2);
    const file = compressValues(model, images, { mode: 'native', block: 2, weights: 'raw', transform: { kind: 'none' } });
    assert.equal(readCompressed(file.bytes, 'f').header.numeric.threads, 2);
    native.setThreads(1);
    let during = 0;
    const back = decompressBytes(file.bytes, 'f', model, () => (during = native.threads()));
    assert.deepEqual(Array.from(back.values.data), Array.from(images.data));
    assert.equal(during, 2, 'decoded with the encoder\'s 2 threads');
    assert.equal(native.threads(), 1, 'and the 1 thread set before is back');
  } finally {
    native.setThreads(before);
  }
});

describe('the coder alone', () => {
  test('random distributions, probabilities near 0 and 1, round trip exactly', () => {
    const g = new Generator(1);
    for (let trial = 0; trial < 40; trial++) {
      const k = [2, 3, 17, 256, 4096][trial % 5]!;
      const blocks = 1 + (trial % 3);
      const perBlock = 200 + trial * 10;
      const tables: Float64Array[] = [];
      const symbols: number[] = [];
      const w = new Float64Array(k);
      const u = new Float64Array(k + 1);
      for (let i = 0; i < blocks * perBlock; i++) {
        g.uniform(u);
        const mode = i % 4;
        for (let s = 0; s < k; s++) w[s] = mode === 0 ? u[s]! : mode === 1 ? (s === i % k ? 1 : 1e-300 * u[s]!) : mode === 2 ? Math.exp(-60 * u[s]!) : (s === 0 ? 1 - 1e-12 : 1e-12 / k);
        const cum = new Float64Array(k + 1);
        quantise(w, k, cum);
        assert.equal(cum[k], PROB_TOTAL);
        for (let s = 0; s < k; s++) assert.ok(cum[s + 1]! - cum[s]! >= 1, 'every symbol codable');
        tables.push(cum);
        // Mostly likely symbols, sometimes the least likely.
        symbols.push(u[k]! < 0.1 ? Math.floor(u[k]! * 10 * k) : symbolOf(cum, k, Math.floor(u[0]! * PROB_TOTAL)));
      }
      const enc = new RansEncoder();
      for (let b = blocks - 1; b >= 0; b--) {
        for (let i = b * perBlock; i < (b + 1) * perBlock; i++) enc.put(tables[i]![symbols[i]!]!, tables[i]![symbols[i]! + 1]! - tables[i]![symbols[i]!]!);
        enc.flushBlock();
      }
      const bytes = enc.finish();
      const dec = new RansDecoder(bytes, 'stream');
      for (let i = 0; i < symbols.length; i++) {
        const cum = tables[i]!;
        const s = symbolOf(cum, k, dec.peek());
        assert.equal(s, symbols[i], `trial ${trial}, symbol ${i}`);
        dec.advance(cum[s]!, cum[s + 1]! - cum[s]!);
      }
      dec.end();
      assert.ok(bytes.length * 8 - enc.idealBits < 8 * 8, `length ${bytes.length * 8} vs ideal ${enc.idealBits}`);
    }
  });

  test('a damaged or truncated stream is refused, not decoded to its end', () => {
    const cum = new Float64Array(257);
    const w = new Float64Array(256).map((_, i) => 1 / (1 + i));
    quantise(w, 256, cum);
    const enc = new RansEncoder();
    const values = Array.from({ length: 3000 }, (_, i) => (i * 37) % 256);
    for (const v of values) enc.put(cum[v]!, cum[v + 1]! - cum[v]!);
    const bytes = enc.finish();
    const decodeAll = (b: Uint8Array) => {
      const dec = new RansDecoder(b, 'f');
      const out: number[] = [];
      for (let i = 0; i < values.length; i++) {
        const s = symbolOf(cum, 256, dec.peek());
        dec.advance(cum[s]!, cum[s + 1]! - cum[s]!);
        out.push(s);
      }
      dec.end();
      return out;
    };
    assert.deepEqual(decodeAll(bytes), values);
    assert.throws(() => decodeAll(bytes.subarray(0, bytes.length - 1)), /ends inside its coded stream|did not decode to its end/);
    let refused = 0;
    for (let at = 0; at < bytes.length; at += 97) {
      const damaged = Uint8Array.from(bytes);
      damaged[at] = damaged[at]! ^ 0x10;
      try {
        const out = decodeAll(damaged);
        assert.notDeepEqual(out, values, 'a changed byte never decodes to the same values silently');
      } catch {
        refused++;
      }
    }
    assert.ok(refused > 0);
  });
});
