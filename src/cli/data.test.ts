// `arpix data` as a user runs it: spawned processes, the real Fashion-MNIST files from Debian's
// package, and an offline download that must fail with what to do and leave nothing behind.

import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, test } from 'node:test';
import { fileURLToPath } from 'node:url';

const MAIN = fileURLToPath(new URL('./main.ts', import.meta.url));

function arpix(args: string[], env: NodeJS.ProcessEnv = {}) {
  return spawnSync(process.execPath, ['--import', 'tsx', MAIN, ...args], { env: { ...process.env, ...env }, encoding: 'utf8' });
}

describe('arpix data', () => {
  test('list marks Fashion-MNIST as here, from the system folder', () => {
    const r = arpix(['data', 'list']);
    assert.equal(r.status, 0, r.stderr);
    assert.match(r.stdout, /^\* fashion-mnist\s+\S+ \(system\)$/m);
    assert.match(r.stdout, /^ {2}cifar10\s+not here — arpix data download cifar10$/m);
  });

  test('verify checks the Debian files against the pinned sums', () => {
    const r = arpix(['data', 'verify', 'fashion-mnist']);
    assert.equal(r.status, 0, r.stderr);
    assert.equal((r.stdout.match(/: ok$/gm) ?? []).length, 4);
  });

  test('download with no network is one error line that says how to get the files, and leaves no file', () => {
    const dir = mkdtempSync(join(tmpdir(), 'arpix-dl-'));
    try {
      // An unroutable proxy-free base: the machine may or may not be online, so point the
      // mirrors at a closed local port through the test hook the library offers.
      const r = arpix(['data', 'download', 'mnist', '--dir', dir], { ARPIX_DATA_BASE_URL: 'http://127.0.0.1:9/' });
      assert.equal(r.status, 1);
      assert.equal(r.stderr.trim().split('\n').length, 1, r.stderr);
      assert.match(r.stderr, /cannot download mnist/);
      assert.match(r.stderr, /copy train-images-idx3-ubyte\.gz/);
      const left = readdirSync(join(dir, 'mnist')).filter((f) => !f.startsWith('.'));
      assert.deepEqual(left, []);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  test('an unknown dataset is refused with the known names', () => {
    const r = arpix(['data', 'download', 'imagenet']);
    assert.equal(r.status, 1);
    assert.match(r.stderr, /fashion-mnist/);
  });
});
