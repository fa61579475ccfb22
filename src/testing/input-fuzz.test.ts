// The fuzz suite of #14: thousands of seeded mutations of every input family arpix reads, each
// made from a real file arpix writes. None may crash, hang, end in an internal error, be accepted
// although damaged, or change a file when its command fails. `npm run fuzz` prints the tallies.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { failureCount, formatTallies, type FuzzTally } from './fuzz.js';
import { fuzzCli, fuzzConfigs, fuzzIdx, fuzzIdxGz, fuzzJpeg, fuzzNpy, fuzzPng } from './input-fuzz.js';

function assertClean(t: FuzzTally, minCleanErrors: number): void {
  assert.equal(failureCount(t), 0, formatTallies([t]));
  // The mutations must mostly damage the input, or the suite would test nothing.
  assert.ok(t.counts['clean-error'] >= minCleanErrors * t.tried, formatTallies([t]));
}

test('PNG: 3000 damaged images, every one refused with a clear line', async () => {
  const t = await fuzzPng({ count: 3000 });
  assertClean(t, 0.95);
});

test('JPEG: 3000 damaged images, grey and colour', async () => assertClean(await fuzzJpeg({ count: 3000 }), 0.7));

test('.npy: 2000 damaged arrays', async () => assertClean(await fuzzNpy({ count: 2000 }), 0.8));

test('IDX: 2000 damaged files, and 1000 damaged gzipped ones', async () => {
  assertClean(await fuzzIdx({ count: 2000 }), 0.7);
  assertClean(await fuzzIdxGz({ count: 1000 }), 0.9);
});

test('configs: 2000 damaged presets, as JSON text and as values', async () => assertClean(await fuzzConfigs({ count: 2000 }), 0.7));

test('command lines: 100 damaged arpix commands run in-process against a tiny run', async () => assertClean(await fuzzCli({ count: 400 }), 0.7));
