// POST /api/compress without a socket (hono's app.request), on tiny trained runs: the file it
// returns for one image is the file `arpix compress` writes for it, decodes with decompressBytes
// to exactly that image (and its label, for a class-conditional model), and its headers say what
// it holds; bad requests are a 4xx with one line; a full queue is a 503 before any work.

import assert from 'node:assert/strict';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { compressValues, decompressBytes, fromValues } from '../codec/compress.js';
import { type Checkpoint } from '../io/checkpoint.js';
import { loadCheckpoint } from '../io/disk.js';
import type { AutoregressiveModel } from '../models/core/model.js';
import { noGrad } from '../ops/index.js';
import { Tensor } from '../tensor/tensor.js';
import { trainTinyRuns, type TinyRuns } from '../testing/tiny-runs.js';
import { applyOverrides, loadEvalData, modelFromCheckpoint, presetRaw, resolveRunConfig, train, transformFor, type RunConfig } from '../train/index.js';
import { createServeApp, LIMITS, type ServeApp } from './app.js';
import { registeredBackend } from '../backends/registry.js';
import { ARPIX_VERSION } from '../version.js';
import type { TestImageResult } from './protocol.js';

let runs: TinyRuns;
let serve: ServeApp;
const CONDITIONAL = 'runs/gated-conditional';
const loaded = new Map<string, { model: AutoregressiveModel; config: RunConfig; ckpt: Checkpoint }>();

before(async () => {
  runs = await trainTinyRuns();
  // A class-conditional run beside them: the file must carry its label.
  const config = resolveRunConfig(applyOverrides(presetRaw('gated-pixelcnn-fmnist'), [
    'model.hiddenChannels=8', 'model.dilations=[1,2]', 'model.numClasses=10', 'train.steps=2', 'train.batchSize=4',
    'train.validationSize=16', 'train.validateEvery=2', 'train.checkpointEvery=2', 'train.schedule.warmup=1',
  ]), 'gated-pixelcnn-fmnist');
  const r = await train(config, { runDir: join(runs.root, 'gated-conditional') });
  assert.equal(r.status, 'done');
  for (const name of [...runs.names, 'gated-conditional']) {
    const ckpt = await loadCheckpoint(join(runs.root, name, 'checkpoint.safetensors'));
    loaded.set(`runs/${name}`, { model: modelFromCheckpoint(ckpt), config: ckpt.meta.config as unknown as RunConfig, ckpt });
  }
  serve = createServeApp({ runDirs: [runs.root], workers: 2 });
});

after(async () => {
  await serve?.close();
  runs?.cleanup();
});

const post = (app: ServeApp, body: unknown) => app.app.request('/api/compress', { method: 'POST', body: JSON.stringify(body), headers: { 'content-type': 'application/json' } });

async function expectError(res: Response | Promise<Response>, status: number, pattern: RegExp): Promise<void> {
  const r = await res;
  const body = (await r.json()) as { error: string };
  assert.equal(r.status, status, `status ${r.status}: ${body.error}`);
  assert.match(body.error, pattern);
  assert.ok(!body.error.includes('\n'), 'one line');
}

async function testImage(id: string, index: number): Promise<TestImageResult> {
  const r = await serve.app.request(`/api/test-image?run=${id}&index=${index}`);
  assert.equal(r.status, 200);
  return (await r.json()) as TestImageResult;
}

describe('POST /api/compress: a real file for one image', () => {
  for (const name of ['gated-pixelcnn-fmnist', 'pixelcnn-binary-fmnist-small', 'pixelcnnpp-fmnist-small', 'gated-conditional']) {
    const id = `runs/${name}`;
    test(`${name}: the file is arpix compress's, decodes to exactly the image, and its headers say so`, async () => {
      const { model, config, ckpt } = loaded.get(id)!;
      const { height: h, width: w, channels: c } = model.config;
      const d = h * w * c;
      const ti = await testImage(id, 3);
      const label = model.config.numClasses > 0 ? ti.label : null;
      const r = await post(serve, { run: id, image: ti.values, label, name: 'test-3' });
      assert.equal(r.status, 200, await r.clone().text());
      assert.equal(r.headers.get('content-type'), 'application/octet-stream');
      assert.equal(r.headers.get('content-disposition'), `attachment; filename="${name}-test-3.arpz"`);
      assert.equal(r.headers.get('x-arpix-decoded-exactly'), 'true');
      assert.equal(r.headers.get('x-arpix-mode'), 'native');
      const bytes = new Uint8Array(await r.arrayBuffer());
      assert.equal(Number(r.headers.get('x-arpix-bytes')), bytes.length);
      assert.equal(Number(r.headers.get('x-arpix-bits-per-dim')), (bytes.length * 8) / d);

      // Decoded by the codec on its own, with the model read from the checkpoint here.
      const image = new Tensor(Int32Array.from(ti.values), [1, h, w, c]);
      const back = decompressBytes(bytes, `${name}-test-3.arpz`, model);
      assert.deepEqual(Array.from(back.values.data), ti.values, 'decoded exactly');
      assert.deepEqual(back.labels === null ? null : Array.from(back.labels), label === null ? null : [label], 'with its label');
      assert.equal(back.header.model.weights, Object.keys(ckpt.ema).length > 0 ? 'ema' : 'raw');
      assert.equal(back.header.numeric.block, 1);
      // The pixels it gives back are the data set's (thresholded for the binary model).
      const ds = await loadEvalData(config.dataset, 'test', config.train.validationSize);
      const raw = ds.images.subarray(3 * d, 4 * d);
      const pixels = fromValues(back.values.data as Int32Array, back.header.images.transform);
      assert.deepEqual(Array.from(pixels), Array.from(raw, (v) => (back.header.images.transform.kind === 'binarise' ? (v >= 128 ? 255 : 0) : v)));

      // Byte for byte the file arpix compress writes for this image with block 1.
      const labels = label === null ? null : Int32Array.of(label);
      const cli = compressValues(model, image, { mode: 'native', block: 1, weights: back.header.model.weights, transform: transformFor(config.dataset), labels });
      assert.deepEqual(bytes, cli.bytes);

      // The ideal bits are the model's −log₂ p of the image (and log₂ of the classes for the label).
      const idealBits = Number(r.headers.get('x-arpix-model-bits'));
      assert.equal(idealBits, cli.idealBits);
      const nats = -noGrad(() => model.logProb(image, labels ? { labels: new Tensor(labels, [1]) } : {})).data[0]!;
      const modelBits = nats / Math.LN2 + (labels ? Math.log2(model.config.numClasses) : 0);
      assert.ok(Math.abs(idealBits - modelBits) < 1e-3 * modelBits + 0.5, `coded ${idealBits.toFixed(2)} bits, model ${modelBits.toFixed(2)}`);
      assert.ok(bytes.length * 8 > idealBits, 'the file holds the stream and its header');
    });
  }

  test('portable mode: a file the TypeScript backend decodes, the same image', async () => {
    const id = 'runs/pixelcnnpp-fmnist-small';
    const { model } = loaded.get(id)!;
    const ti = await testImage(id, 0);
    const r = await post(serve, { run: id, image: ti.values, mode: 'portable' });
    assert.equal(r.status, 200);
    assert.equal(r.headers.get('x-arpix-mode'), 'portable');
    assert.equal(r.headers.get('content-disposition'), 'attachment; filename="pixelcnnpp-fmnist-small-image.arpz"', 'the default name');
    const back = decompressBytes(new Uint8Array(await r.arrayBuffer()), 'portable.arpz', model);
    assert.equal(back.header.numeric.mode, 'portable');
    assert.equal(back.header.numeric.isa, null);
    assert.deepEqual(Array.from(back.values.data), ti.values);
  });
});

test('wasm mode: a file the WebAssembly backend decodes anywhere, the same image; the page is told the server writes it', { skip: registeredBackend('wasm') ? false : 'the wasm backend is not built' }, async () => {
  const id = 'runs/gated-conditional';
  const { model } = loaded.get(id)!;
  const ti = await testImage(id, 1);
  const r = await post(serve, { run: id, image: ti.values, label: ti.label, mode: 'wasm' });
  assert.equal(r.status, 200, await r.clone().text());
  assert.equal(r.headers.get('x-arpix-mode'), 'wasm');
  const bytes = new Uint8Array(await r.arrayBuffer());
  const back = decompressBytes(bytes, 'wasm.arpz', model);
  assert.deepEqual(back.header.numeric, { mode: 'wasm', isa: null, block: 1, threads: 0, arpixVersion: ARPIX_VERSION });
  assert.deepEqual(Array.from(back.values.data), ti.values);
  assert.deepEqual(Array.from(back.labels!), [ti.label]);
  const html = await (await serve.app.request('/')).text();
  assert.match(html, /"compressModes":\["native","portable","wasm"\]|"compressModes":\["portable","wasm"\]/);
});

describe('POST /api/compress: bad requests are a 4xx with one line', () => {
  const id = 'runs/gated-pixelcnn-fmnist';

  test('an image of the wrong shape or levels, a bad mode or name, an unknown run', async () => {
    const ti = await testImage(id, 0);
    await expectError(post(serve, { run: id, image: ti.values.slice(0, 27 * 28) }), 400, /^image must hold 28×28×1 = 784 values in the model's levels, got 756$/);
    await expectError(post(serve, { run: id, image: [...ti.values, 0] }), 400, /^image must hold 1\.\.784 values, got 785$/);
    await expectError(post(serve, { run: id, image: ti.values.map((v, i) => (i === 9 ? 256 : v)) }), 400, /^image\[9\] must be an integer in 0\.\.255, got 256$/);
    await expectError(post(serve, { run: id, image: 'pixels' }), 400, /image must be an array of integers/);
    await expectError(post(serve, { run: id, image: ti.values, mode: 'zip' }), 400, /^mode must be one of 'native', 'portable', 'wasm', got "zip"$/);
    await expectError(post(serve, { run: id, image: ti.values, name: '../etc/passwd' }), 400, /^name must be 1\.\.64 letters, digits/);
    await expectError(post(serve, { run: id, image: ti.values, name: 'a'.repeat(65) }), 400, /^name must be 1\.\.64/);
    await expectError(post(serve, { run: 'runs/nope', image: ti.values }), 404, /nope/);
    await expectError(post(serve, { image: ti.values }), 400, /run/);
  });

  test('a binary model refuses grey levels; labels must match the model', async () => {
    const ti = await testImage(id, 0);
    await expectError(post(serve, { run: 'runs/pixelcnn-binary-fmnist-small', image: ti.values }), 400, /must be an integer in 0\.\.1, got \d+$/);
    await expectError(post(serve, { run: id, image: ti.values, label: 3 }), 422, /^label 3 was given but this model is unconditional; leave the label empty$/);
    const cond = await testImage(CONDITIONAL, 0);
    await expectError(post(serve, { run: CONDITIONAL, image: cond.values }), 422, /^this model is conditioned on 10 classes: choose a label in 0\.\.9$/);
    await expectError(post(serve, { run: CONDITIONAL, image: cond.values, label: 10 }), 422, /^label 10 is outside 0\.\.9$/);
    await expectError(post(serve, { run: CONDITIONAL, image: cond.values, label: -1 }), 400, /^label must be an integer/);
  });

  test('a server whose workers run the TypeScript backend refuses native files and writes portable ones', async () => {
    // A worker reads ARPIX_BACKEND when it starts, from a copy of the environment made then.
    const before = process.env.ARPIX_BACKEND;
    process.env.ARPIX_BACKEND = 'ts';
    const tsOnly = createServeApp({ runDirs: [runs.root], workers: 1 });
    if (before === undefined) delete process.env.ARPIX_BACKEND;
    else process.env.ARPIX_BACKEND = before;
    try {
      const ti = await testImage(id, 0);
      await expectError(post(tsOnly, { run: id, image: ti.values }), 422, /^the native backend is not loaded here, so it cannot write a native file; choose the wasm or portable mode$/);
      const r = await post(tsOnly, { run: id, image: ti.values, mode: 'portable' });
      assert.equal(r.status, 200);
      const back = decompressBytes(new Uint8Array(await r.arrayBuffer()), 'portable.arpz', loaded.get(id)!.model);
      assert.deepEqual(Array.from(back.values.data), ti.values);
    } finally {
      await tsOnly.close();
    }
  });

  test('a full queue is a 503 with Retry-After before any work starts', async () => {
    // One worker, one place in the queue: of four requests at once, two are coded and two refused.
    const small = createServeApp({ runDirs: [runs.root], workers: 1, maxQueue: 1 });
    try {
      const ti = await testImage(id, 0);
      const answers = await Promise.all([0, 1, 2, 3].map(() => post(small, { run: id, image: ti.values })));
      assert.deepEqual(answers.map((r) => r.status).sort(), [200, 200, 503, 503]);
      for (const r of answers) {
        if (r.status === 200) {
          assert.equal(r.headers.get('x-arpix-decoded-exactly'), 'true');
          await r.arrayBuffer();
          continue;
        }
        assert.equal(r.headers.get('retry-after'), String(LIMITS.retryAfter));
        assert.match(((await r.json()) as { error: string }).error, /1 jobs are already waiting for the model workers; try again in a moment/);
      }
    } finally {
      await small.close();
    }
  });
});
