// The page's training curve stays bounded however long a page trains, keeps the steps spread
// over the whole run, and keeps every held-out figure's step on it.

import assert from 'node:assert/strict';
import { test } from 'node:test';
import { Curve } from './curve.js';

test('under its bound the curve holds every step as reported', () => {
  const c = new Curve(100);
  for (let s = 1; s <= 100; s++) c.step(s, 10 / s);
  assert.deepEqual(c.steps, Array.from({ length: 100 }, (_, i) => i + 1));
  assert.equal(c.losses[9], 1);
});

test('a long run keeps at most max points, spread over the whole run, each with its own loss', () => {
  const c = new Curve(1000);
  for (let s = 1; s <= 100_000; s++) {
    c.step(s, 1 + 1 / s);
    if (s % 250 === 0) c.heldOut(s, 2 + 1 / s);
  }
  assert.ok(c.steps.length <= 1000, `${c.steps.length} points`);
  assert.ok(c.steps.length >= 250, `${c.steps.length} points: the thinning keeps a fair share`);
  assert.ok(c.held.size <= 500);
  assert.equal(c.steps[0], 1, 'the first step stays');
  assert.ok(c.steps.at(-1)! > 99_000, `the last point is at step ${c.steps.at(-1)}`);
  for (let i = 1; i < c.steps.length; i++) assert.ok(c.steps[i]! > c.steps[i - 1]!);
  c.steps.forEach((s, i) => assert.equal(c.losses[i], 1 + 1 / s, `step ${s}'s loss`));
  for (const s of c.held.keys()) assert.ok(c.steps.includes(s), `held-out step ${s} is on the curve`);
  assert.deepEqual(c.last, { step: 100_000, loss: 1 + 1 / 100_000 });
});

test('a held-out figure between strides puts its step on the curve; clear starts afresh', () => {
  const c = new Curve(8);
  for (let s = 1; s <= 20; s++) c.step(s, s);
  const before = c.steps.length;
  c.step(21, 21); // not a multiple of the stride now
  assert.equal(c.steps.length, before);
  c.heldOut(21, 0.5);
  assert.equal(c.steps.at(-1), 21);
  assert.equal(c.losses.at(-1), 21);
  c.clear();
  c.step(1, 3);
  assert.deepEqual([c.steps, c.losses, c.held.size], [[1], [3], 0]);
});
