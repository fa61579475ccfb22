// categoricalDraw, the samplers' draw: the index where each row's CDF passes its uniform (checked
// on distributions whose weights are exact), the logits outside the row's window ignored, the
// temperature applied, and one clear line for every bad argument.

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
