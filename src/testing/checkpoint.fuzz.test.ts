// The checkpoint family of the fuzz suite (src/testing/checkpoint-fuzz.ts): a thousand seeded
// mutations of a real checkpoint of every model family, read as the commands read them, one in
// eight also resumed. No crash, hang, internal error, silently accepted damage or file changed by
// a failed resume. `node --import tsx scripts/fuzz-checkpoints.ts` prints the tallies.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fuzzCheckpoints } from './checkpoint-fuzz.js';
import { failureCount, formatTallies } from './fuzz.js';

test('checkpoint fuzz: 1000 mutations per family, every one refused cleanly or harmless', async () => {
  const root = mkdtempSync(join(tmpdir(), 'arpix-checkpoint-fuzz-'));
  try {
    const tallies = await fuzzCheckpoints({ count: 1000, seed: 14, root });
    for (const t of tallies) {
      assert.equal(failureCount(t), 0, formatTallies([t]));
      // The suite must exercise both outcomes: most damage refused, some harmless edits accepted.
      assert.ok(t.counts['clean-error'] > 0.8 * t.tried && t.counts.accepted > 0, formatTallies([t]));
    }
  } finally {
    rmSync(root, { recursive: true, force: true });
  }
});
