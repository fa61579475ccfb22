// Ctrl-C and SIGTERM on real `arpix train` processes at several settings: the run stops after the
// step in progress (not at the next checkpoint or validation), writes a checkpoint of that step
// and exits 130; a second Ctrl-C stops at once and leaves the last checkpoint whole.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { spawnSync } from 'node:child_process';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { locateDataset } from '../data/index.js';
import { loadCheckpoint } from '../io/disk.js';
import { LOCK_FILE } from '../io/lock.js';
import { interruptTraining } from '../testing/signals.js';

const skip = locateDataset('fashion-mnist') !== null ? false : 'Fashion-MNIST is not installed (apt-get install dataset-fashion-mnist)';
const TINY = ['--model.hiddenChannels=4', '--model.dilations=[1]', '--train.validationSize=32', '--train.logEvery=1', '--train.batchSize=8', '--train.steps=1000000'];
/** Generous for a shared 2-core machine; the time itself is measured by `npm run bench -- signals`. */
const PROMPT_SECONDS = 8;
const MAIN = new URL('./main.ts', import.meta.url).pathname;
const TSX = import.meta.resolve('tsx');

async function interrupted(name: string, extra: readonly string[], opts: { signal?: 'SIGINT' | 'SIGTERM' | 'SIGHUP'; delayMs?: number; closeOutputs?: boolean } = {}) {
  const root = mkdtempSync(join(tmpdir(), 'arpix-signals-'));
  const runDir = join(root, 'run');
  try {
    const r = await interruptTraining({ args: ['--preset', 'gated-pixelcnn-fmnist', '--out', runDir, ...TINY, ...extra], runDir, delayMs: opts.delayMs ?? 300, signal: opts.signal, closeOutputs: opts.closeOutputs });
    assert.equal(r.code, 130, `${name}: exit code; stderr:\n${r.stderr}`);
    assert.ok(r.seconds < PROMPT_SECONDS, `${name}: exited ${r.seconds.toFixed(1)} s after the signal`);
    const c = await loadCheckpoint(join(runDir, 'checkpoint.safetensors'));
    if (opts.closeOutputs) {
      // Nothing it printed reached us; the checkpoint is the run's last step.
      const logged = readFileSync(join(runDir, 'metrics.jsonl'), 'utf8').trim().split('\n').map((l) => JSON.parse(l) as { type: string; step: number });
      assert.equal(c.meta.step, logged.filter((x) => x.type === 'train').at(-1)!.step, `${name}: the checkpoint holds the last logged step`);
    } else {
      const at = Number(/interrupted at step (\d+)/.exec(r.stdout)?.[1]);
      assert.ok(at > 0, `${name}: reports the step it stopped at; stdout:\n${r.stdout}`);
      assert.equal(c.meta.step, at, `${name}: the checkpoint holds the step the run stopped after`);
    }
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

test('SIGHUP (a closed terminal) is a SIGTERM: the step finishes and is checkpointed, with nowhere to print', { skip }, async () => {
  await interrupted('SIGHUP, outputs closed', ['--train.checkpointEvery=100000', '--train.validateEvery=0'], { signal: 'SIGHUP', closeOutputs: true });
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

test('a second SIGINT before the first checkpoint says none was written, and --resume starts the run again from its config', { skip }, async () => {
  const root = mkdtempSync(join(tmpdir(), 'arpix-signals-'));
  const runDir = join(root, 'run');
  try {
    const r = await interruptTraining({
      args: ['--preset', 'gated-pixelcnn-fmnist', '--out', runDir, ...TINY, '--train.checkpointEvery=100000', '--train.validateEvery=0'],
      runDir, delayMs: 50, twoTogether: true,
    });
    assert.equal(r.code, 130, r.stderr);
    assert.match(r.stderr, /again: stopping now; no checkpoint had been written yet; start again with: arpix train --resume /);
    assert.doesNotMatch(r.stderr, /intact/);
    assert.ok(!existsSync(join(runDir, 'checkpoint.safetensors')));

    // What the folder holds is a config and some metrics: --resume runs that config from step 0.
    const again = spawnSync(process.execPath, ['--import', TSX, MAIN, 'train', '--resume', runDir, '--train.steps=6', '--no-bar'], { encoding: 'utf8', env: { ...process.env, NODE_NO_WARNINGS: '1' } });
    assert.equal(again.status, 0, again.stderr);
    assert.match(again.stdout, /holds no checkpoint\.safetensors: the run stopped before its first one, so it starts again from its config\.json/);
    assert.doesNotMatch(again.stderr, /damaged|not a checkpoint/);
    const c = await loadCheckpoint(join(runDir, 'checkpoint.safetensors'));
    assert.equal(c.meta.step, 6);
    const steps = readFileSync(join(runDir, 'metrics.jsonl'), 'utf8').trim().split('\n').map((l) => JSON.parse(l) as { type: string; step: number }).filter((x) => x.type === 'train').map((x) => x.step);
    assert.deepEqual(steps, [1, 2, 3, 4, 5, 6], 'the killed session\'s records were replaced');

    // Only what a resume may change may change; a changed model is refused, and nothing is touched.
    rmSync(join(runDir, 'checkpoint.safetensors'));
    const before = readFileSync(join(runDir, 'config.json'), 'utf8');
    const changed = spawnSync(process.execPath, ['--import', TSX, MAIN, 'train', '--resume', runDir, '--model.hiddenChannels=8', '--no-bar'], { encoding: 'utf8', env: { ...process.env, NODE_NO_WARNINGS: '1' } });
    assert.equal(changed.status, 1, changed.stderr);
    assert.match(changed.stderr, /^arpix: cannot resume with a changed config \(model\.hiddenChannels/m);
    assert.equal(readFileSync(join(runDir, 'config.json'), 'utf8'), before);

    // A folder with neither a checkpoint nor a config holds no run.
    const empty = join(root, 'empty');
    mkdirSync(empty);
    const none = spawnSync(process.execPath, ['--import', TSX, MAIN, 'train', '--resume', empty], { encoding: 'utf8', env: { ...process.env, NODE_NO_WARNINGS: '1' } });
    assert.equal(none.status, 1);
    assert.match(none.stderr, /^arpix: .*empty holds no run to resume: neither checkpoint\.safetensors nor config\.json is there/);
  } finally {
    rmSync(root, { recursive: true, force: true });
  }
});
