// The training library without a process in between: configs and overrides, checkpoints, the
// loop on synthetic data (exact resume in-process), evaluation, and the PyTorch mirror's
// log-likelihoods on arpix's own weights.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ConfigError } from '../config.js';
import { makeDataset, splitValidation } from '../data/index.js';
import { CheckpointMismatchError, checkModelConfig, decodeCheckpoint, encodeCheckpoint } from '../io/checkpoint.js';
import { loadCheckpoint } from '../io/disk.js';
import { loadSafetensorsSync } from '../io/disk.js';
import { createModel } from '../models/index.js';
import { FormatError } from '../errors.js';
import { Generator } from '../tensor/random.js';
import { applyOverrides, evaluate, presetRaw, resolveRunConfig, train, type RunConfig, type RunData } from './index.js';
import { encodeNpyUint8, imageGridPng } from '../io/images.js';
import { parseNpy } from '../data/npy.js';
import { Tensor } from '../tensor/tensor.js';

function tinyConfig(overrides: string[] = []): RunConfig {
  return resolveRunConfig(applyOverrides(presetRaw('gated-pixelcnn-fmnist'), [
    'model.height=8', 'model.width=8', 'model.hiddenChannels=4', 'model.dilations=[1]',
    'train.batchSize=4', 'train.validationSize=8', 'train.validateEvery=5', 'train.checkpointEvery=5', 'train.logEvery=1',
    'train.steps=12', 'train.schedule.warmup=3', ...overrides,
  ]), 'gated-pixelcnn-fmnist');
}

/** 40 random 8×8 grey images, split 32 / 8. */
function syntheticData(): RunData {
  const images = new Int32Array(40 * 64);
  new Generator(5).randint(images, 0, 256);
  const ds = makeDataset({ name: 'synthetic', split: 'train', images: Uint8Array.from(images), shape: [40, 8, 8, 1], source: 'test' });
  const { train: tr, validation } = splitValidation(ds, { size: 8 });
  return { train: tr, validation, transform: { kind: 'none' } };
}

test('overrides are parsed as their default\'s type; unknown keys and wrong types are refused', () => {
  const c = tinyConfig(['train.lr=3e-4', 'train.schedule.decay=cosine', 'model.dilations=[1,2]']);
  assert.equal(c.train.lr, 3e-4);
  assert.equal(c.train.schedule.decay, 'cosine');
  assert.deepEqual((c.model as { dilations?: number[] }).dilations, [1, 2]);
  assert.equal(c.train.gradClip, 1, 'the preset\'s train section is read');
  assert.throws(() => tinyConfig(['train.lrr=1']), (e: unknown) => e instanceof ConfigError && /known keys of train: .*lr/.test(e.message));
  assert.throws(() => tinyConfig(['train.lr=x']), /train\.lr must be a number/);
  assert.throws(() => tinyConfig(['model.hiddenChannels=[1]']), /must be a number/);
  assert.throws(() => tinyConfig(['optim.lr=1']), /overrides look like/);
  assert.throws(() => tinyConfig(['train.optimizer=lbfgs']), /one of adam, adamw, sgd, rmsprop/);
  assert.throws(() => tinyConfig(['train.steps=0']), /no stopping point/);
  assert.equal(tinyConfig(['train.schedule.decay=noam']).train.schedule.decay, 'noam');
  assert.throws(() => tinyConfig(['train.schedule.decay=noam', 'train.schedule.warmup=0']), /warmup must be ≥ 1 with decay 'noam'/);
  assert.throws(() => resolveRunConfig({ model: {}, dataset: {}, extra: {} }), /extra is not a known section/);
});

test('a checkpoint round-trips, and one from another model names what differs', () => {
  const model = createModel({ kind: 'gated-pixelcnn', height: 4, width: 4, channels: 1, likelihood: { kind: 'categorical', levels: 4 }, hiddenChannels: 2, dilations: [1] });
  const meta = {
    format: 'arpix-checkpoint' as const, version: 1, arpixVersion: '0', modelKind: 'gated-pixelcnn', config: { model: { ...model.config } as Record<string, unknown> },
    step: 3, epoch: 0, loader: { epoch: 0, step: 3 }, generators: {}, optimizer: null, scheduler: null, ema: null, trainSeconds: 1, imagesSeen: 12, extra: {},
  };
  const bytes = encodeCheckpoint({ meta, model: model.stateDict(), optimizer: {}, ema: {} });
  const back = decodeCheckpoint(bytes, 'x');
  assert.equal(back.meta.step, 3);
  assert.deepEqual([...back.model['out.weight']!.data], [...model.stateDict()['out.weight']!.data]);
  assert.throws(() => checkModelConfig('x', back, { ...model.config, hiddenChannels: 3 } as unknown as Record<string, unknown>),
    (e: unknown) => e instanceof CheckpointMismatchError && /model\.hiddenChannels is 2 in the checkpoint but 3 here/.test(e.message));
  const broken = bytes.slice(0, bytes.length - 10);
  assert.throws(() => decodeCheckpoint(broken, 'x'), FormatError);
});

test('train on synthetic data: metrics, validation, checkpoint; stopping half-way and resuming gives the same weights', async () => {
  const root = mkdtempSync(join(tmpdir(), 'arpix-train-'));
  try {
    const data = syntheticData();
    const config = tinyConfig(['train.ema=0.9']);
    const events: string[] = [];
    const full = await train(config, { runDir: join(root, 'full'), data, onEvent: (e) => events.push(e.kind) });
    assert.equal(full.status, 'done');
    assert.equal(full.step, 12);
    assert.ok(events.includes('validation') && events.includes('checkpoint'));
    const lines = readFileSync(join(root, 'full', 'metrics.jsonl'), 'utf8').trim().split('\n').map((l) => JSON.parse(l));
    assert.equal(lines.filter((l) => l.type === 'train').length, 12);
    assert.equal(lines.filter((l) => l.type === 'validation').length, 3); // steps 5, 10 and the end

    // Interrupted after step 7 (the abort is seen before step 8), then resumed.
    const controller = new AbortController();
    const half = await train(config, {
      runDir: join(root, 'half'), data, signal: controller.signal,
      onProgress: (p) => { if (p.step === 7) controller.abort(); },
    });
    assert.equal(half.status, 'interrupted');
    assert.equal((await loadCheckpoint(join(root, 'half', 'checkpoint.safetensors'))).meta.step, 7);
    const rest = await train(config, { runDir: join(root, 'half'), data, resume: true });
    assert.equal(rest.status, 'done');
    const a = await loadCheckpoint(join(root, 'full', 'checkpoint.safetensors'));
    const b = await loadCheckpoint(join(root, 'half', 'checkpoint.safetensors'));
    for (const part of ['model', 'optimizer', 'ema'] as const) {
      for (const [k, t] of Object.entries(a[part])) assert.deepEqual([...b[part][k]!.data], [...t.data], `${part}.${k}`);
    }
    await assert.rejects(train(config, { runDir: join(root, 'full'), data }), /already holds a run/);
  } finally {
    rmSync(root, { recursive: true, force: true });
  }
});

test('evaluate: the mean of per-image NLL in bits/dim, its standard error, and nats/image', async () => {
  const data = syntheticData();
  const model = createModel(tinyConfig().model, { seed: 1 });
  const e = await evaluate(model, data.validation, { batchSize: 3 });
  const images = new Tensor(Int32Array.from(data.validation.images), [8, 8, 8, 1]);
  const nats = model.logProb(images).toArray().map((v) => -v);
  const mean = nats.reduce((s, v) => s + v, 0) / 8;
  const sd = Math.sqrt(nats.reduce((s, v) => s + (v - mean) ** 2, 0) / 7);
  assert.equal(e.n, 8);
  assert.ok(Math.abs(e.natsPerImage - mean) < 1e-4 * mean);
  assert.ok(Math.abs(e.bitsPerDim - mean / (64 * Math.LN2)) < 1e-6 * e.bitsPerDim);
  assert.ok(Math.abs(e.natsStderr - sd / Math.sqrt(8)) < 1e-3 * e.natsStderr);
});

test('image outputs: .npy readable by the data layer, PNG grid of the right size', () => {
  const t = new Tensor(Int32Array.from({ length: 2 * 3 * 4 }, (_, i) => i), [2, 3, 4, 1]);
  const npy = parseNpy(encodeNpyUint8(t), 'x.npy');
  assert.deepEqual(npy.shape, [2, 3, 4, 1]);
  assert.deepEqual([...npy.data], t.toArray());
  const png = imageGridPng(t, { levels: 256, scale: 1, gap: 1, columns: 2 });
  assert.equal(Buffer.from(png.subarray(1, 4)).toString(), 'PNG');
  const width = new DataView(png.buffer, png.byteOffset).getUint32(16);
  assert.equal(width, 2 * (4 + 1) + 1);
});

for (const name of ['k3', 'k5']) {
  test(`the PyTorch mirror (bench/pytorch/gated_pixelcnn.py) computes arpix's log-likelihoods from arpix's weights (${name})`, () => {
    // Written by `npm run bench -- quality --make-fixture`: arpix's weights in PyTorch's layout,
    // images, and the mirror's log p(x) in float64.
    const { tensors, metadata } = loadSafetensorsSync(new URL(`./fixtures/gated-mirror-${name}.safetensors`, import.meta.url).pathname);
    const model = createModel(JSON.parse(metadata.config!));
    const sd: Record<string, Tensor> = {};
    for (const [k, t] of Object.entries(tensors)) if (k.startsWith('model.')) sd[k.slice(6)] = t;
    model.loadStateDict(sd, { layout: 'pytorch' });
    const lp = model.logProb(tensors.images!).toArray();
    const want = tensors.torch_logprob!.toArray();
    lp.forEach((v, i) => assert.ok(Math.abs(v - want[i]!) < 1e-5 * Math.abs(want[i]!), `image ${i}: arpix ${v}, PyTorch ${want[i]}`));
  });
}

test('modelInfo counts every convolution of gated-pixelcnn-fmnist, the conv2dSum terms included', async () => {
  const { modelInfo } = await import('./info.js');
  const { loadPreset } = await import('../models/presets.js');
  const info = modelInfo(createModel(loadPreset('gated-pixelcnn-fmnist').model));
  // Per image (784 pixels, 2 FLOPs a multiply-add): vFirst 1×3 1→64 and hFirst 1×1 1→64; 7 blocks
  // of vConv 2×3 64→128, hConv 1×2 64→128, link 1×1 128→128, residual 1×1 64→64; out 1×1 64→256.
  const mac = (taps: number, cin: number, cout: number) => 2 * 784 * taps * cin * cout;
  const block = mac(6, 64, 128) + mac(2, 64, 128) + mac(1, 128, 128) + mac(1, 64, 64);
  assert.equal(info.flops, mac(3, 1, 64) + mac(1, 1, 64) + 7 * block + mac(1, 64, 256));
  // The masked formulation computes 3×3 and 1×3 kernels everywhere.
  const maskedBlock = mac(9, 64, 128) + mac(3, 64, 128) + mac(1, 128, 128) + mac(1, 64, 64);
  assert.equal(info.maskedFormulationFlops, mac(9, 1, 64) + mac(3, 1, 64) + 7 * maskedBlock + mac(1, 64, 256));
});
