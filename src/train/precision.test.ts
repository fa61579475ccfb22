// train.precision: what 'auto', 'bf16' and 'fp32' become on each kind of machine (capabilities
// given, so every branch runs everywhere), and a bf16 run on this machine's native backend when
// oneDNN has bf16 products here: it trains, records its precision, resumes bit-exact, and its
// evaluation stays exact fp32.

import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { ConfigError } from '../config.js';
import { makeDataset, splitValidation } from '../data/index.js';
import { loadCheckpoint } from '../io/disk.js';
import { Generator } from '../tensor/random.js';
import { applyOverrides, evaluate, presetRaw, resolveRunConfig, train, type RunConfig, type RunData } from './index.js';
import { choosePrecision, cpuCapabilities } from './precision.js';
import { modelFromCheckpoint } from '../models/checkpoint.js';
import { computePrecision, withPrecision } from '../ops/precision.js';

const AMX = { isa: 'avx512_core_amx', bf16Conv: 'brgconv:avx512_core_amx', bf16Matmul: 'brg:avx512_core_amx' };
const ZEN4 = { isa: 'avx512_core_bf16', bf16Conv: 'brgconv:avx512_core_bf16', bf16Matmul: 'brg:avx512_core_bf16' };
const EMULATED = { isa: 'avx512_core', bf16Conv: 'jit_bf16:avx512_core', bf16Matmul: 'brg:avx512_core' };
const AVX2 = { isa: 'avx2', bf16Conv: '', bf16Matmul: '' };

test('auto is bf16 with AMX, and with AVX512-BF16 on AMD; fp32 elsewhere, each with its reason', () => {
  assert.equal(choosePrecision('auto', AMX, 'GenuineIntel').precision, 'bf16');
  assert.match(choosePrecision('auto', AMX, 'GenuineIntel').reason, /AMX/);
  assert.equal(choosePrecision('auto', ZEN4, 'AuthenticAMD').precision, 'bf16');
  const intelNoAmx = choosePrecision('auto', ZEN4, 'GenuineIntel');
  assert.equal(intelNoAmx.precision, 'fp32');
  assert.match(intelNoAmx.reason, /without AMX.*slower/);
  assert.equal(choosePrecision('auto', EMULATED, 'AuthenticAMD').precision, 'fp32');
  assert.match(choosePrecision('auto', EMULATED, 'AuthenticAMD').reason, /emulated/);
  assert.equal(choosePrecision('auto', AVX2, 'AuthenticAMD').precision, 'fp32');
  assert.equal(choosePrecision('auto', null, 'AuthenticAMD').precision, 'fp32');
  assert.match(choosePrecision('auto', null).reason, /ts backend/);
});

test('bf16 asked for is honoured where oneDNN builds bf16 products (even emulated), and falls back to fp32 with the reason where it cannot', () => {
  for (const caps of [AMX, ZEN4, EMULATED]) assert.equal(choosePrecision('bf16', caps, 'GenuineIntel').precision, 'bf16');
  const avx2 = choosePrecision('bf16', AVX2, 'GenuineIntel');
  assert.equal(avx2.precision, 'fp32');
  assert.match(avx2.reason, /bf16 but oneDNN's ISA here is avx2, where it has no bf16 products: training in fp32/);
  assert.match(choosePrecision('bf16', { ...AVX2, bf16Conv: 'ref:any', bf16Matmul: 'ref:any' }).reason, /reference loops/);
  assert.equal(choosePrecision('bf16', null).precision, 'bf16', 'the ts reference rounds');
  for (const caps of [AMX, ZEN4, null]) assert.equal(choosePrecision('fp32', caps, 'AuthenticAMD').precision, 'fp32');
});

test('train.precision is checked like every key, and may change on --resume', () => {
  assert.throws(() => resolveRunConfig(applyOverrides(presetRaw('gated-pixelcnn-fmnist'), ['train.precision=fp16'])), (e: unknown) => e instanceof ConfigError && /train.precision.*auto, fp32, bf16.*fp16/.test(e.message));
  assert.equal(resolveRunConfig(presetRaw('gated-pixelcnn-fmnist')).train.precision, 'auto');
});

const caps = cpuCapabilities();
const bf16Here = caps !== null && choosePrecision('bf16', caps).precision === 'bf16';

test('a bf16 run: trains, records bf16, resumes bit-exact, evaluates in fp32', { skip: bf16Here ? false : `no bf16 products here (${caps ? `oneDNN's ISA ${caps.isa}` : 'ts backend'})` }, async () => {
  const root = mkdtempSync(join(tmpdir(), 'arpix-bf16-'));
  try {
    // Big enough that every convolution is above BF16_MIN_MACS: 16×16 images, 32 channels, batch 8.
    const config: RunConfig = resolveRunConfig(applyOverrides(presetRaw('gated-pixelcnn-fmnist'), [
      'model.height=16', 'model.width=16', 'model.hiddenChannels=32', 'model.dilations=[1,2]',
      'train.batchSize=8', 'train.validationSize=8', 'train.validateEvery=0', 'train.checkpointEvery=3', 'train.logEvery=1',
      'train.steps=6', 'train.precision=bf16',
    ]), 'gated-pixelcnn-fmnist');
    const images = new Int32Array(48 * 256);
    new Generator(5).randint(images, 0, 256);
    const ds = makeDataset({ name: 'synthetic', split: 'train', images: Uint8Array.from(images), shape: [48, 16, 16, 1], source: 'test' });
    const { train: tr, validation } = splitValidation(ds, { size: 8 });
    const data: RunData = { train: tr, validation, transform: { kind: 'none' } };
    const starts: string[] = [];
    const full = await train(config, { runDir: join(root, 'full'), data, onEvent: (e) => { if (e.kind === 'start') starts.push(e.precision.precision); } });
    assert.equal(full.status, 'done');
    assert.deepEqual(starts, ['bf16']);
    assert.equal(computePrecision(), 'fp32', 'the scope ends with the run');
    const a = await loadCheckpoint(join(root, 'full', 'checkpoint.safetensors'));
    assert.equal(a.meta.extra.precision, 'bf16');

    // The same run in fp32 ends elsewhere: bf16 was really used.
    const fp32 = await train({ ...config, train: { ...config.train, precision: 'fp32' } }, { runDir: join(root, 'fp32'), data });
    assert.equal(fp32.status, 'done');
    const c = await loadCheckpoint(join(root, 'fp32', 'checkpoint.safetensors'));
    const differs = Object.entries(a.model).some(([k, t]) => t.data.some((v, i) => v !== c.model[k]!.data[i]));
    assert.ok(differs, 'bf16 and fp32 runs gave identical weights');

    // Interrupted after step 4, resumed: the same bits as the run that went through.
    const controller = new AbortController();
    await train(config, { runDir: join(root, 'half'), data, signal: controller.signal, onProgress: (p) => { if (p.step === 4) controller.abort(); } });
    const rest = await train(config, { runDir: join(root, 'half'), data, resume: true });
    assert.equal(rest.status, 'done');
    const b = await loadCheckpoint(join(root, 'half', 'checkpoint.safetensors'));
    for (const part of ['model', 'optimizer'] as const) {
      for (const [k, t] of Object.entries(a[part])) assert.deepEqual([...b[part][k]!.data], [...t.data], `${part}.${k}`);
    }

    // The run's own validation was exact fp32: it equals evaluating the weights outside any scope,
    // and differs from evaluating them with bf16 products.
    const model = modelFromCheckpoint(a);
    const plain = await evaluate(model, validation, { batchSize: 64 });
    assert.equal(full.validation!.bitsPerDim, plain.bitsPerDim);
    const inBf16 = await withPrecision('bf16', () => evaluate(model, validation, { batchSize: 64 }));
    assert.notEqual(inBf16.bitsPerDim, plain.bitsPerDim, 'a bf16 evaluation would differ');
  } finally {
    rmSync(root, { recursive: true, force: true });
  }
});

test('ONEDNN_MAX_CPU_ISA=AVX2 (a CPU without bf16 products) turns bf16 into fp32 with one line saying why', { skip: caps === null ? 'the native backend is not built' : false }, () => {
  const main = fileURLToPath(new URL('../cli/main.ts', import.meta.url));
  const r = spawnSync(process.execPath, ['--import', import.meta.resolve('tsx'), main, 'info', '--preset', 'gated-pixelcnn-fmnist', '--train.precision=bf16', '--json'], {
    env: { ...process.env, NODE_NO_WARNINGS: '1', OMP_NUM_THREADS: '1', ONEDNN_MAX_CPU_ISA: 'AVX2' }, encoding: 'utf8',
  });
  assert.equal(r.status, 0, r.stderr);
  const info = JSON.parse(r.stdout) as { training: { precision: string; reason: string; isa: string } };
  assert.equal(info.training.isa, 'avx2');
  assert.equal(info.training.precision, 'fp32');
  assert.match(info.training.reason, /no bf16 products: training in fp32/);
});
