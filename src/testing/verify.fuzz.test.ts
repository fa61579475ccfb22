// The verify family of the fuzz suite (src/testing/verify-fuzz.ts): damaged, re-signed and
// unsigned checkpoints of a tiny run, each put to `arpix verify` and to every command that loads
// a checkpoint. verify's verdict equals theirs in every case, refusals are one clean line that
// changes no file. `npm run fuzz` runs more cases.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { failureCount, formatTallies } from './fuzz.js';
import { fuzzVerify } from './verify-fuzz.js';

test('verify fuzz: 150 damaged, re-signed or unsigned checkpoints, verify and every loader agree on each', async () => {
  const t = await fuzzVerify({ count: 150, seed: 25 });
  assert.equal(failureCount(t), 0, formatTallies([t]));
  // Both outcomes are exercised: most files refused by all, some (harmless edits, allowed unsigned files) taken by all.
  assert.ok(t.counts['clean-error'] > 0.7 * t.tried && t.counts.accepted > 0, formatTallies([t]));
});
