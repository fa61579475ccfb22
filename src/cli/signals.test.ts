// Ctrl-C and SIGTERM on real `arpix train` processes at several settings: the run stops after the
// step in progress (not at the next checkpoint or validation), writes a checkpoint of that step
// and exits 130; a second Ctrl-C stops at once and leaves the last checkpoint whole.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { locateDataset } from '../data/index.js';
import { loadCheckpoint } from '../io/checkpoint.js';
import { LOCK_FILE } from '../io/lock.js';
import { interruptTraining } from '../testing/signals.js';

const skip = locateDataset('fashion-mnist') !== null ? false : 'Fashion-MNIST is not installed (apt-get install dataset-fashion-mnist)';
const TINY = ['--model.hiddenChannels=4', '--model.dilations=[1]', '--train.validationSize=32', '--train.logEvery=1', '--train.batchSize=8', '--train.steps=1000000'];
/** Generous for a shared 2-core machine; the time itself is measured by `npm run bench -- signals`. */
const PROMPT_SECONDS = 8;

async function interrupted(name: string, extra: readonly string[], opts: { signal?: 'SIGINT' | 'SIGTERM'; delayMs?: number } = {}) {
  const root = mkdtempSync(join(tmpdir(), 'arpix-signals-'));
  const runDir = join(root, 'run');
  try {
    const r = await interruptTraining({ args: ['--preset', 'gated-pixelcnn-fmnist', '--out', runDir, ...TINY, ...extra], runDir, delayMs: opts.delayMs ?? 300, signal: opts.signal });
    assert.equal(r.code, 130, `${name}: exit code; stderr:\n${r.stderr}`);
    assert.ok(r.seconds < PROMPT_SECONDS, `${name}: exited ${r.seconds.toFixed(1)} s after the signal`);
    const at = Number(/interrupted at step (\d+)/.exec(r.stdout)?.[1]);
    assert.ok(at > 0, `${name}: reports the step it stopped at; stdout:\n${r.stdout}`);
    const c = await loadCheckpoint(join(runDir, 'checkpoint.safetensors'));
    assert.equal(c.meta.step, at, `${name}: the checkpoint holds the step the run stopped after`);
    assert.ok(!existsSync(join(runDir, LOCK_FILE)), `${name}: the run folder is unlocked`);
    assert.deepEqual(readdirSync(runDir).filter((f) => f.endsWith('.tmp')), []);
  } finally {
    rmSync(root, { recursive: true, force: true });
  }
}

test('SIGINT with checkpoints and validation only at the end (checkpointEvery=0, validateEvery=0)', { skip }, async () => {
  await interrupted('checkpointEvery=0', ['--train.checkpointEvery=0', '--train.validateEvery=0']);
});

test('SIGTERM long before the next checkpoint and validation', { skip }, async () => {
  await interrupted('far intervals', ['--train.checkpointEvery=100000', '--train.validateEvery=100000'], { signal: 'SIGTERM' });
});

test('SIGINT while validations take most of the time', { skip }, async () => {
  // 4000 validation images every step: the signal lands inside a validation, which stops early.
  await interrupted('during validation', ['--train.validateEvery=1', '--train.validationSize=4000', '--train.checkpointEvery=0'], { delayMs: 200 });
});

test('a second SIGINT stops at once and leaves the last checkpoint whole', { skip }, async () => {
  const root = mkdtempSync(join(tmpdir(), 'arpix-signals-'));
  const runDir = join(root, 'run');
  try {
    // Both signals reach the process at once: the second stops the run at the next turn, before the
    // first could write its checkpoint.
    const r = await interruptTraining({
      args: ['--preset', 'gated-pixelcnn-fmnist', '--out', runDir, ...TINY, '--train.checkpointEvery=3', '--train.validateEvery=0'],
      runDir, waitFor: 'checkpoint.safetensors', delayMs: 100, twoTogether: true,
    });
    assert.equal(r.code, 130, r.stderr);
    assert.ok(r.seconds < PROMPT_SECONDS);
    assert.match(r.stderr, /SIG(INT|TERM) again: stopping now; the last checkpoint in .* is intact/);
    assert.doesNotMatch(r.stdout, /interrupted at step/, 'the second signal stopped the run before its own checkpoint');
    const c = await loadCheckpoint(join(runDir, 'checkpoint.safetensors')); // whole and readable
    assert.ok(c.meta.step >= 3 && c.meta.step % 3 === 0, `the last periodic checkpoint (step ${c.meta.step})`);
    assert.ok(!existsSync(join(runDir, LOCK_FILE)), 'process.exit releases the lock too');
  } finally {
    rmSync(root, { recursive: true, force: true });
  }
});
