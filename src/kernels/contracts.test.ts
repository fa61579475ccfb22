// The kernel table is consistent by itself: every rule names another tensor argument of its
// kernel, and only trailing arguments are optional. (The addon checks its C++ functions against
// the same table when it loads; src/backends/native/native.test.ts holds it to that.)

import assert from 'node:assert/strict';
import { test } from 'node:test';
import { KERNELS } from './contracts.js';
import { descriptorProblems, kernel, tensor } from './descriptor.js';

test('every dtype, size and broadcast rule of KERNELS names another tensor argument', () => {
  assert.deepEqual(descriptorProblems(KERNELS), []);
});

test('descriptorProblems names a rule that refers to nothing, and an optional argument in the middle', () => {
  const bad = { k: kernel(tensor('x', ['float32'], { optional: true }), tensor('out', 'like y', { size: 'rows of out' })) };
  assert.deepEqual(descriptorProblems(bad), [
    "k: out follows an optional argument but is not optional",
    "k: out refers to 'y', which is not another tensor argument",
    "k: out refers to 'out', which is not another tensor argument",
  ]);
});
