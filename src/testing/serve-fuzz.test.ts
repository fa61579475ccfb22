// The serve family of the fuzz suite (src/testing/serve-fuzz.ts), bounded: 150 hostile requests
// and floods against `arpix serve` in a process of its own, the 20000×20000 PNG bomb first. No
// crash, hang, internal error or silent acceptance; /api/health answered between every case and
// during every flood; the server's memory stays within its bound. `npm run fuzz` runs more.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { failureCount, formatTallies } from './fuzz.js';
import { MEMORY_MB, fuzzServe } from './serve-fuzz.js';

test('serve: 150 hostile requests and floods on 127.0.0.1; the server answers each cleanly and stays responsive', async () => {
  const t = await fuzzServe({ count: 1500 });
  const report = `${formatTallies([t])}\nhealth at most ${t.healthMaxMs.toFixed(0)} ms; memory ${t.restingMB?.toFixed(0)} MB resting, ${t.peakMB?.toFixed(0)} MB at its peak; bomb ${JSON.stringify(t.bomb)}`;
  process.stdout.write(`${report}\n`);
  assert.equal(failureCount(t), 0, report);
  // The suite must exercise both outcomes: most requests refused, some taken.
  assert.ok(t.counts['clean-error'] > 0.7 * t.tried && t.counts.accepted > 0, report);
  // The bomb is refused from its header: a 4xx, and no more memory than a small image needs.
  assert.equal(t.bomb?.status, 422, report);
  if (t.bomb?.peakMB != null && t.bomb.restingMB != null) assert.ok(t.bomb.peakMB - t.bomb.restingMB < MEMORY_MB, report);
});
