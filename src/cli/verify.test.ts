// Checkpoint integrity and memory limits as a user meets them: spawned `arpix` processes on
// checkpoints arpix's training loop wrote, damaged or not, and on configs too large to build.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { decodeCheckpoint } from '../io/checkpoint.js';
import { encodeSafetensors, inspectSafetensors } from '../io/safetensors.js';
import type { Tensor } from '../tensor/tensor.js';
import { trainedCheckpoint } from '../testing/checkpoints.js';

const MAIN = new URL('./main.ts', import.meta.url).pathname;
const TSX = import.meta.resolve('tsx');
const ENV = { ...process.env, NODE_NO_WARNINGS: '1', OMP_NUM_THREADS: '1', ARPIX_BACKEND: 'ts' };

function arpix(args: readonly string[], env: Record<string, string> = {}): { code: number | null; stdout: string; stderr: string } {
  const r = spawnSync(process.execPath, ['--import', TSX, MAIN, ...args], { env: { ...ENV, ...env }, encoding: 'utf8' });
  return { code: r.status, stdout: r.stdout, stderr: r.stderr };
}

const root = mkdtempSync(join(tmpdir(), 'arpix-verify-'));
test.after(() => rmSync(root, { recursive: true, force: true }));

test('verify, sample, info and eval refuse a damaged checkpoint in one line naming the file; an older one loads with a warning', async () => {
  const { file, bytes } = await trainedCheckpoint('gated-pixelcnn', join(root, 'run'));
  const ok = arpix(['verify', join(root, 'run')]);
  assert.equal(ok.code, 0, ok.stderr);
  assert.match(ok.stdout, /checkpoint\.safetensors: ok — SHA-256 of tensors and metadata verified; gated-pixelcnn at step 3, \d+ tensors/);

  const damaged = join(root, 'damaged.safetensors');
  const b = Uint8Array.from(bytes);
  b[inspectSafetensors(bytes).dataStart + 100]! ^= 0x10; // one bit of one weight
  writeFileSync(damaged, b);
  for (const args of [['verify', damaged], ['sample', damaged, '--n', '1', '--out', join(root, 'out')], ['info', damaged], ['eval', damaged]]) {
    const r = arpix(args);
    assert.equal(r.code, 1, `${args[0]}: ${r.stderr}`);
    assert.deepEqual(r.stderr.trim().split('\n').length, 1, r.stderr);
    assert.match(r.stderr, /^arpix: .*damaged\.safetensors: is damaged: its tensors do not match the SHA-256 recorded when it was written/);
    assert.equal(r.stdout, '');
  }
  assert.ok(!existsSync(join(root, 'out')), 'a refused sample writes nothing');

  const c = decodeCheckpoint(readFileSync(file), file);
  const tensors: Record<string, Tensor> = {};
  for (const part of ['model', 'optimizer', 'ema'] as const) for (const [k, t] of Object.entries(c[part])) tensors[`${part}.${k}`] = t;
  const legacy = join(root, 'legacy.safetensors');
  writeFileSync(legacy, encodeSafetensors(tensors, { arpix: JSON.stringify(c.meta) }));
  const old = arpix(['verify', legacy]);
  assert.equal(old.code, 0, old.stderr);
  assert.match(old.stderr, /^arpix: warning: .*legacy\.safetensors was written before checkpoints carried checksums; its integrity cannot be verified\n$/);
  assert.match(old.stdout, /no checksums to verify/);
});

test('info counts a 10-billion-parameter model without building it; train refuses a batch that cannot fit, before writing anything', () => {
  const config = {
    model: { kind: 'gated-pixelcnn', height: 28, width: 28, channels: 1, likelihood: { kind: 'categorical', levels: 256 }, hiddenChannels: 8192 },
    dataset: { name: 'fashion-mnist' },
    train: { steps: 10, batchSize: 20000 },
  };
  const file = join(root, 'big.json');
  writeFileSync(file, JSON.stringify(config));
  const info = arpix(['info', '--config', file, '--json']);
  assert.equal(info.code, 0, info.stderr);
  const j = JSON.parse(info.stdout);
  assert.equal(j.parameters, 9_867_714_816);
  assert.equal(j.receptiveField, null);
  assert.ok(j.flops > 1e13);

  config.model.hiddenChannels = 64;
  writeFileSync(file, JSON.stringify(config));
  const out = join(root, 'big-run');
  const r = arpix(['train', '--config', file, '--out', out], { ARPIX_MEMORY_LIMIT: '16G' });
  assert.equal(r.code, 1, r.stderr);
  assert.match(r.stderr, /^arpix: training with train\.batchSize=20000 \(a gated-pixelcnn model of [\d,]+ parameters on 28×28×1 images\) would need about [\d.]+ GiB, more than the memory limit of 16\.0 GiB \(ARPIX_MEMORY_LIMIT=16G\); make it smaller, or set ARPIX_MEMORY_LIMIT/m);
  assert.ok(!existsSync(out), 'no run folder is made');
});
