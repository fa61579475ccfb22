// The fuzzer itself: cases are reproducible from (seed, index), mutations always change the
// input, and the tally counts what it is told.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { FuzzRng, changedPaths, equalBytes, errorVerdict, failureCount, mutateArgs, mutateBytes, mutateJson, runFuzz, snapshotDir } from './fuzz.js';

test('a case is a pure function of (seed, index)', () => {
  const base = Uint8Array.from({ length: 100 }, (_, i) => i);
  for (let i = 0; i < 50; i++) {
    const a = mutateBytes(base, new FuzzRng(7, i));
    const b = mutateBytes(base, new FuzzRng(7, i));
    assert.ok(equalBytes(a.bytes, b.bytes));
    assert.deepEqual(a.ops, b.ops);
  }
  assert.notDeepEqual(mutateJson({ a: 1, b: [1, 2] }, new FuzzRng(1, 0)), mutateJson({ a: 1, b: [1, 2] }, new FuzzRng(2, 0)));
  assert.deepEqual(mutateArgs(['x', '--n', '3'], new FuzzRng(3, 9)), mutateArgs(['x', '--n', '3'], new FuzzRng(3, 9)));
});

test('a byte mutation never returns its base unchanged, and reports where it first changed', () => {
  const base = Uint8Array.from({ length: 64 }, (_, i) => (i * 37) & 0xff);
  for (let i = 0; i < 2000; i++) {
    const m = mutateBytes(base, new FuzzRng(11, i));
    assert.ok(!equalBytes(m.bytes, base), `case ${i} [${m.ops.join(' ')}] left the base unchanged`);
    const n = Math.min(m.firstChange, m.bytes.length);
    assert.ok(equalBytes(m.bytes.subarray(0, n), base.subarray(0, n)), `case ${i}: bytes before ${m.firstChange} changed`);
    if (!m.resized) assert.equal(m.bytes.length, base.length);
  }
});

test('runFuzz tallies verdicts, counts a throw as a crash and a slow case as a hang', async () => {
  const t = await runFuzz({
    family: 'toy', seed: 1, count: 30, hangMs: 50,
    make: (_rng, i) => ({
      ops: [`case${i}`],
      run: async () => {
        if (i % 10 === 3) throw new TypeError('boom');
        if (i === 5) await new Promise((r) => setTimeout(r, 80));
        return i % 2 === 0 ? { verdict: 'clean-error' } : { verdict: 'accepted' };
      },
    }),
  });
  assert.equal(t.tried, 30);
  assert.equal(t.counts.crash, 3);
  assert.equal(t.counts.hang, 1);
  assert.equal(failureCount(t), 4);
  assert.equal(t.failures[0]!.index, 3);
});

test('errorVerdict: a one-line user error is clean; other errors are internal', () => {
  const user = (e: unknown) => e instanceof RangeError;
  assert.equal(errorVerdict(new RangeError('file.npy: bad'), user).verdict, 'clean-error');
  assert.equal(errorVerdict(new RangeError('two\nlines'), user).verdict, 'internal-error');
  assert.equal(errorVerdict(new TypeError('x is undefined'), user).verdict, 'internal-error');
});

test('snapshots show files created, removed and changed', () => {
  const dir = mkdtempSync(join(tmpdir(), 'arpix-fuzz-'));
  try {
    writeFileSync(join(dir, 'a'), '1');
    writeFileSync(join(dir, 'b'), '2');
    const before = snapshotDir(dir);
    writeFileSync(join(dir, 'a'), '3');
    rmSync(join(dir, 'b'));
    writeFileSync(join(dir, 'c'), '');
    assert.deepEqual(changedPaths(before, snapshotDir(dir)), ['a', 'b', 'c']);
    assert.deepEqual(changedPaths(before, before), []);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
