// The samplers' ops. categoricalDraw: the index where each row's CDF passes its uniform (checked on
// distributions whose weights are exact), the logits outside the row's window ignored, the
// temperature applied. kvCacheWrite: one row written, the rest kept, the versions bumped. One
// clear line for every bad argument.

import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import * as ax from './index.js';
import { Tensor } from '../tensor/tensor.js';

const f32 = (values: number[], shape = [values.length]) => new Tensor(Float32Array.from(values), shape);
const draw = (logits: Tensor, u: number[], at: number, levels: number, temperature = 1) => Array.from(ax.categoricalDraw(logits, f32(u), at, levels, temperature).data);

describe('categoricalDraw', () => {
  test('equal logits: four weights of exactly 1, so u = k/4 lands on the boundary and draws k', () => {
    const row = [50, 2, 2, 2, 2, -50]; // the window is 1 … 4
    const logits = f32(Array.from({ length: 5 }, () => row).flat(), [5, 6]);
    assert.deepEqual(draw(logits, [0, 0.25, 0.5, 0.75, 0.999], 1, 4), [0, 1, 2, 3, 3]);
  });

  test('levels of weight 0 (−∞ logits) are never drawn, even at u = 0', () => {
    const logits = f32([-Infinity, -Infinity, 0, 0, -Infinity, 0, -Infinity, -Infinity], [2, 4]);
    assert.deepEqual(draw(logits, [0, 0.99], 0, 4), [2, 1]);
  });

  test('the temperature divides the logits: 1 : 3 odds at T = 1, nearly even at T = 100', () => {
    const logits = f32([0, Math.log(3), 0, Math.log(3), 0, Math.log(3)], [3, 2]);
    assert.deepEqual(draw(logits, [0.2, 0.3, 0.74], 0, 2), [0, 1, 1]);
    assert.deepEqual(draw(logits, [0.2, 0.49, 0.51], 0, 2, 100), [0, 0, 1]);
  });

  test('a peaked row draws its peak; the result has the rows\' shape; float64 logits too', () => {
    const p = 7;
    const data = Array.from({ length: 2 * 3 * p }, (_, i) => (i % p === (Math.floor(i / p) % 5) + 1 ? 40 : 0));
    const out = ax.categoricalDraw(f32(data, [2, 3, p]), f32([0.1, 0.5, 0.9, 0.3, 0.7, 0.01]), 1, 5, 1);
    assert.deepEqual(out.shape, [2, 3]);
    assert.equal(out.dtype, 'int32');
    assert.deepEqual(Array.from(out.data), [0, 1, 2, 3, 4, 0]);
    const out64 = ax.categoricalDraw(new Tensor(Float64Array.from(data), [2, 3, p]), f32([0.1, 0.5, 0.9, 0.3, 0.7, 0.01]), 1, 5, 1);
    assert.deepEqual(Array.from(out64.data), [0, 1, 2, 3, 4, 0]);
  });

  test('refuses bad arguments in one line naming them', () => {
    const logits = f32(new Array(12).fill(0), [3, 4]);
    const u = f32([0.1, 0.2, 0.3]);
    const cases: [() => unknown, RegExp][] = [
      [() => ax.categoricalDraw(new Tensor(new Int32Array(12), [3, 4]), u, 0, 4, 1), /^categoricalDraw: logits has dtype int32/],
      [() => ax.categoricalDraw(f32([1]).reshape([]), f32([0.5]), 0, 1, 1), /^categoricalDraw: logits .*at least one axis/],
      [() => ax.categoricalDraw(logits, new Tensor(new Float64Array(3), [3]), 0, 4, 1), /^categoricalDraw: u has dtype float64, expected float32/],
      [() => ax.categoricalDraw(logits, f32([0.1, 0.2]), 0, 4, 1), /^categoricalDraw: u .*one uniform per row of logits \(3 rows/],
      [() => ax.categoricalDraw(logits, u, 1, 4, 1), /^categoricalDraw: at \(1\) must be an integer with at \+ levels ≤ 4/],
      [() => ax.categoricalDraw(logits, u, -1, 2, 1), /^categoricalDraw: at \(-1\)/],
      [() => ax.categoricalDraw(logits, u, 0, 0, 1), /^categoricalDraw: levels must be a positive integer, got 0/],
      [() => ax.categoricalDraw(logits, u, 0, 2.5, 1), /^categoricalDraw: levels must be a positive integer, got 2.5/],
      [() => ax.categoricalDraw(logits, u, 0, 4, 0), /^categoricalDraw: temperature must be a positive number, got 0/],
      [() => ax.categoricalDraw(logits, u, 0, 4, NaN), /^categoricalDraw: temperature must be a positive number, got NaN/],
    ];
    for (const [run, message] of cases) {
      assert.throws(run, (e: Error) => message.test(e.message) && !e.message.includes('\n'), String(message));
    }
  });
});

describe('kvCacheWrite', () => {
  test('writes one row of keys and values per sequence, leaves the others, and bumps both versions', () => {
    const n = 2, t = 4, c = 3;
    const k = new Tensor(new Float32Array(n * t * c).fill(-1), [n, t, c]), v = new Tensor(new Float32Array(n * t * c).fill(-2), [n, t, c]);
    const qkv = f32(Array.from({ length: n * 3 * c }, (_, i) => i), [n, 3 * c]);
    const [kv0, vv0] = [k.version, v.version];
    ax.kvCacheWrite(qkv, k, v, 2);
    assert.deepEqual([k.version, v.version], [kv0 + 1, vv0 + 1]);
    const row = (x: Tensor, b: number, p: number) => Array.from(x.data.subarray((b * t + p) * c, (b * t + p + 1) * c));
    assert.deepEqual(row(k, 0, 2), [3, 4, 5]);
    assert.deepEqual(row(v, 0, 2), [6, 7, 8]);
    assert.deepEqual(row(k, 1, 2), [12, 13, 14]);
    assert.deepEqual(row(v, 1, 2), [15, 16, 17]);
    for (const p of [0, 1, 3]) for (let b = 0; b < n; b++) assert.deepEqual([...row(k, b, p), ...row(v, b, p)], [-1, -1, -1, -2, -2, -2]);
  });

  test('refuses bad arguments in one line naming them', () => {
    const k = new Tensor(new Float32Array(2 * 4 * 3), [2, 4, 3]), v = new Tensor(new Float32Array(2 * 4 * 3), [2, 4, 3]);
    const qkv = new Tensor(new Float32Array(2 * 9), [2, 9]);
    const cases: [() => unknown, RegExp][] = [
      [() => ax.kvCacheWrite(new Tensor(new Float32Array(2 * 8), [2, 8]), k, v, 0), /^kvCacheWrite: qkv .*must be \[2, 9\] for caches \[2, 4, 3\]/],
      [() => ax.kvCacheWrite(qkv, k, new Tensor(new Float32Array(2 * 5 * 3), [2, 5, 3]), 0), /^kvCacheWrite: v .*must be k's shape/],
      [() => ax.kvCacheWrite(qkv, k.reshape([8, 3]), v, 0), /^kvCacheWrite: k .*must be \[N, T, C\]/],
      [() => ax.kvCacheWrite(qkv, k, k, 0), /^kvCacheWrite: v shares its storage with k/],
      [() => ax.kvCacheWrite(qkv, k, v, 4), /^kvCacheWrite: position must be an integer in 0..3 .*got 4/],
      [() => ax.kvCacheWrite(new Tensor(new Float64Array(18), [2, 9]), k, v, 0), /^kvCacheWrite: .*dtype float32/],
    ];
    for (const [run, message] of cases) {
      assert.throws(run, (e: Error) => message.test(e.message) && !e.message.includes('\n'), String(message));
    }
  });
});
