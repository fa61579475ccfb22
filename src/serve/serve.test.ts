// arpix serve's routes without a socket (hono's app.request), on one tiny trained run per model
// kind: every route for every kind, what each answers checked against the model itself, every
// bad input refused with a 4xx and a clear message, a client that disconnects mid-stream, and the
// bounds that keep one client from stalling the others (PNG bombs, full queues, stalled bodies).

import assert from 'node:assert/strict';
import { mkdirSync, symlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { decode as decodePng, encode as encodePng } from 'fast-png';
import { loadCheckpoint } from '../io/disk.js';
import type { AutoregressiveModel } from '../models/core/model.js';
import { noGrad } from '../ops/index.js';
import { Tensor } from '../tensor/tensor.js';
import { craftPng, pngBomb, zerosZlib } from '../testing/serve-fuzz.js';
import { trainTinyRuns, type TinyRuns } from '../testing/tiny-runs.js';
import { loadEvalData, modelFromCheckpoint, pixelField, transformFor, type RunConfig } from '../train/index.js';
import { fixedLookupTable } from '../data/transforms.js';
import { createServeApp, LIMITS, type ServeApp } from './app.js';
import type { BitsResult, FieldResult, InfoResult, RunSummary, TestImageResult } from './protocol.js';

let runs: TinyRuns;
let serve: ServeApp;
const models = new Map<string, { model: AutoregressiveModel; config: RunConfig }>();

before(async () => {
  runs = await trainTinyRuns();
  // A symlink inside the served folder that leads outside it, and a folder that is not a run.
  symlinkSync(join(runs.root, '..'), join(runs.root, 'escape'));
  mkdirSync(join(runs.root, '..', 'outside-run'));
  writeFileSync(join(runs.root, '..', 'outside-run', 'config.json'), '{}');
  symlinkSync(join(runs.root, '..', 'outside-run'), join(runs.root, 'linked'));
  mkdirSync(join(runs.root, 'not-a-run'));
  for (const name of runs.names) {
    const ckpt = await loadCheckpoint(join(runs.root, name, 'checkpoint.safetensors'));
    models.set(`runs/${name}`, { model: modelFromCheckpoint(ckpt), config: ckpt.meta.config as unknown as RunConfig });
  }
  serve = createServeApp({ runDirs: [runs.root], workers: 2, pollMs: 50 });
});

after(async () => {
  await serve?.close();
  runs?.cleanup();
});

const req = (path: string, init?: RequestInit) => serve.app.request(path, init);
const post = (path: string, body: unknown) => req(path, { method: 'POST', body: typeof body === 'string' ? body : JSON.stringify(body), headers: { 'content-type': 'application/json' } });

async function events(res: Response): Promise<{ event: string; data: Record<string, unknown> }[]> {
  const text = await res.text();
  return text.split('\n\n').filter((b) => b.includes('data: ')).map((b) => {
    const event = /^event: (.*)$/m.exec(b)?.[1] ?? 'message';
    return { event, data: JSON.parse(/^data: (.*)$/m.exec(b)![1]!) as Record<string, unknown> };
  });
}

async function expectError(res: Response | Promise<Response>, status: number, pattern: RegExp): Promise<void> {
  const r = await res;
  const body = (await r.json()) as { error: string };
  assert.equal(r.status, status, `status ${r.status}: ${body.error}`);
  assert.match(body.error, pattern);
}

describe('every route, for every model kind', () => {
  test('runs: the table lists each run with its kind, size, parameters and step', async () => {
    const r = await req('/api/runs');
    assert.equal(r.status, 200);
    const { runs: list } = (await r.json()) as { runs: RunSummary[] };
    assert.deepEqual(list.map((x) => x.id).sort(), runs.names.map((n) => `runs/${n}`).sort(), 'the symlinks out and the folder without a run are not listed');
    for (const s of list) {
      const { model } = models.get(s.id)!;
      assert.equal(s.kind, model.config.kind);
      assert.equal(s.parameters, model.numParameters());
      assert.equal(s.step, 4);
      assert.equal(s.levels, model.likelihood.levels);
      assert.ok(typeof s.validationBitsPerDim === 'number' && s.validationBitsPerDim > 0);
    }
  });

  for (const name of ['gated-pixelcnn-fmnist', 'pixelcnn-binary-fmnist-small', 'pixelcnnpp-fmnist-small']) {
    const id = `runs/${name}`;
    test(`${name}: sample, complete with rows and with a mask, bits, field, info, test image, metrics`, async () => {
      const { model, config } = models.get(id)!;
      const { height: h, width: w, channels: c } = model.config;

      // Sampling streams each row; together they are model.sample's images for the seed.
      const ev = await events(await post('/api/sample', { run: id, n: 3, seed: 7, temperature: 0.9 }));
      assert.equal(ev[0]!.event, 'start');
      const rows = ev.filter((e) => e.event === 'row');
      assert.deepEqual(rows.map((e) => e.data.y), Array.from({ length: h }, (_, y) => y));
      assert.equal(ev.at(-1)!.event, 'done');
      const want = model.sample({ n: 3, seed: 7, temperature: 0.9 });
      for (const { data } of rows) {
        const y = data.y as number;
        const values = data.values as number[];
        for (let i = 0; i < 3; i++) assert.deepEqual(values.slice(i * w * c, (i + 1) * w * c), Array.from(want.data.subarray(((i * h + y) * w) * c, ((i * h + y) * w + w) * c)), `row ${y} of image ${i}`);
      }

      // Pixel by pixel: H·W events, the same images.
      const px = (await events(await post('/api/sample', { run: id, n: 1, seed: 2, granularity: 'pixel' }))).filter((e) => e.event === 'pixel');
      assert.equal(px.length, h * w);
      assert.deepEqual(px.flatMap((e) => e.data.values as number[]), Array.from(model.sample({ n: 1, seed: 2 }).data));

      // A test image of the run's own data, in the model's levels.
      const ti = (await (await req(`/api/test-image?run=${id}&index=5`)).json()) as TestImageResult;
      const ds = await loadEvalData(config.dataset, 'test', config.train.validationSize);
      const lut = fixedLookupTable(transformFor(config.dataset));
      assert.deepEqual(ti.values, Array.from(ds.images.subarray(5 * h * w * c, 6 * h * w * c), (v) => lut[v]!));

      // Completion keeps the kept rows, and with a mask every kept pixel.
      const image = new Tensor(Int32Array.from(ti.values), [1, h, w, c]);
      const keepRows = 11;
      const comp = (await events(await post('/api/complete', { run: id, image: ti.values, keepRows, samples: 2, seed: 3 }))).filter((e) => e.event === 'row');
      assert.deepEqual(comp.map((e) => e.data.y), Array.from({ length: h - keepRows }, (_, k) => keepRows + k));
      const twice = new Tensor(Int32Array.from([...ti.values, ...ti.values]), [2, h, w, c]);
      const wantComp = model.sample({ n: 2, seed: 3, complete: { images: twice, keepRows } });
      assert.deepEqual(comp.flatMap((e) => (e.data.values as number[]).slice(0, w * c)), Array.from(wantComp.data.subarray(keepRows * w * c, h * w * c)));
      const mask = Array.from({ length: h * w }, (_, q) => (Math.floor(q / w) < 20 && (q % w) < 10 ? 0 : 1));
      const masked = (await events(await post('/api/complete', { run: id, image: ti.values, mask, samples: 1, seed: 4 }))).filter((e) => e.event === 'row');
      const got = masked.flatMap((e) => e.data.values as number[]);
      for (let q = 0; q < h * w; q++) if (mask[q]) for (let k = 0; k < c; k++) assert.equal(got[q * c + k], ti.values[q * c + k], `masked completion changed kept pixel ${q}`);
      assert.deepEqual(got, Array.from(model.sample({ n: 1, seed: 4, complete: { images: image, mask } }).data));

      // Where the bits go: per-element bits of the model, summing to −log2 p(x).
      const bits = (await (await post('/api/bits', { run: id, image: ti.values })).json()) as BitsResult;
      const logp = noGrad(() => model.logProb(image)).data[0]!;
      assert.equal(bits.bits.length, h * w * c);
      assert.ok(Math.abs(bits.totalBits + logp / Math.LN2) < 1e-3 * Math.abs(logp), `Σ bits ${bits.totalBits} vs −log2 p ${-logp / Math.LN2}`);
      assert.ok(Math.abs(bits.bitsPerDim - bits.totalBits / (h * w * c)) < 1e-9);
      const png = encodePng({ width: w, height: h, channels: c, depth: 8, data: Uint8Array.from(ti.values, (v) => Math.round((v * 255) / (model.likelihood.levels - 1))) });
      assert.equal(bits.pngBytes, png.length);

      // The receptive field of a chosen pixel, as pixelField measures it.
      const field = (await (await post('/api/field', { run: id, y: 9, x: 4 })).json()) as FieldResult;
      const direct = pixelField(model, 9, 4);
      assert.equal(field.pixels, direct.pixels);
      assert.equal(field.of, 9 * w + 4);
      assert.deepEqual(field.influence.map((v) => v > 0), Array.from(direct.influence, (v) => v > 0));

      const info = (await (await req(`/api/info?run=${id}`)).json()) as InfoResult;
      assert.equal(info.parameters, model.numParameters());
      assert.equal(info.model.kind, model.config.kind);
      assert.ok(info.flops > 0 && info.receptiveField!.of === h * w - 1);

      const metrics = (await (await req(`/api/metrics?run=${id}`)).json()) as { records: { type: string }[] };
      assert.equal(metrics.records.filter((r) => r.type === 'train').length, 4);
    });
  }

  test('the page, its bundled script and uPlot\'s stylesheet are served from this server', async () => {
    const html = await (await req('/')).text();
    assert.match(html, /<script type="module" src="\/app.js">/);
    assert.doesNotMatch(html, /https?:\/\//, 'nothing is loaded from elsewhere');
    const js = await req('/app.js');
    assert.equal(js.status, 200);
    assert.match(js.headers.get('content-type')!, /javascript/);
    assert.ok((await js.text()).length > 20_000, 'uPlot is bundled into the script');
    assert.match(await (await req('/vendor/uPlot.min.css')).text(), /\.uplot/);
    assert.match(await (await req('/app.css')).text(), /--accent/);
  });

  test('the icon the page links is a 32×32 PNG in an ICO container', async () => {
    assert.match(await (await req('/')).text(), /<link rel="icon" href="\/favicon.ico">/);
    const r = await req('/favicon.ico');
    assert.equal(r.status, 200);
    assert.equal(r.headers.get('content-type'), 'image/x-icon');
    const ico = new Uint8Array(await r.arrayBuffer());
    const v = new DataView(ico.buffer);
    assert.deepEqual([v.getUint16(0, true), v.getUint16(2, true), v.getUint16(4, true)], [0, 1, 1], 'ICONDIR: an icon holding one image');
    assert.deepEqual([ico[6], ico[7], v.getUint16(12, true), v.getUint32(14, true), v.getUint32(18, true)], [32, 32, 32, ico.length - 22, 22]);
    const png = decodePng(ico.subarray(22));
    assert.deepEqual([png.width, png.height, png.channels], [32, 32, 4]);
    assert.ok(png.data.some((x, i) => i % 4 === 3 && x === 255) && png.data.some((x, i) => i % 4 === 3 && x === 0), 'cells and transparent gaps');
  });
});

describe('bad requests are 4xx with a message that says what to do', () => {
  const id = 'runs/gated-pixelcnn-fmnist';

  test('run ids: unknown, .., absolute, a symlink out, not a run, missing', async () => {
    await expectError(req('/api/info?run=runs/nope'), 404, /no run 'runs\/nope'/);
    await expectError(req('/api/info?run=elsewhere/x'), 404, /served folders are runs/);
    await expectError(req('/api/metrics?run=runs/../..'), 400, /'\.\.'/);
    await expectError(req(`/api/metrics?run=${encodeURIComponent('runs/gated-pixelcnn-fmnist/../../../etc')}`), 400, /'\.\.'/);
    await expectError(req(`/api/metrics?run=${encodeURIComponent('/etc/passwd')}`), 400, /absolute path/);
    await expectError(req(`/api/metrics?run=${encodeURIComponent(join(runs.root, 'gated-pixelcnn-fmnist'))}`), 400, /absolute path/);
    await expectError(req('/api/metrics?run=runs/escape'), 403, /outside the served folders/);
    await expectError(req('/api/metrics?run=runs/escape/outside-run'), 403, /outside the served folders/);
    await expectError(req('/api/metrics?run=runs/linked'), 403, /outside the served folders/);
    await expectError(req('/api/metrics?run=runs/not-a-run'), 404, /holds no checkpoint/);
    await expectError(req('/api/metrics'), 400, /run is missing/);
    await expectError(req(`/api/metrics?run=${encodeURIComponent('runs\\x')}`), 400, /backslash/);
    await expectError(post('/api/sample', { run: 'runs/../../tmp', n: 1 }), 400, /'\.\.'/);
  });

  test('counts, seeds, temperatures, labels and granularity have limits', async () => {
    await expectError(post('/api/sample', { run: id, n: LIMITS.samples + 1 }), 400, /n must be an integer in 1\.\.64/);
    await expectError(post('/api/sample', { run: id, n: 1e9 }), 400, /n must be an integer/);
    await expectError(post('/api/sample', { run: id, n: 0 }), 400, /n must be/);
    await expectError(post('/api/sample', { run: id, n: 2.5 }), 400, /n must be/);
    await expectError(post('/api/sample', { run: id, n: '3; rm' }), 400, /n must be/);
    await expectError(post('/api/sample', { run: id, seed: -1 }), 400, /seed must be/);
    await expectError(post('/api/sample', { run: id, temperature: 0 }), 400, /temperature must be a number in 0.05\.\.5/);
    await expectError(post('/api/sample', { run: id, temperature: 'hot' }), 400, /temperature/);
    await expectError(post('/api/sample', { run: id, granularity: 'frame' }), 400, /granularity must be 'row' or 'pixel'/);
    const ev = await events(await post('/api/sample', { run: id, n: 1, label: 3 }));
    assert.equal(ev.at(-1)!.event, 'error');
    assert.match(String(ev.at(-1)!.data.message), /unconditional; leave the label empty/);
    assert.equal(ev.at(-1)!.data.status, 422);
    await expectError(post('/api/field', { run: id, y: 28, x: 0 }), 400, /y must be an integer in 0\.\.27/);
    await expectError(req(`/api/test-image?run=${id}&index=10000`), 422, /test set has 10000 images/);
  });

  test('bad JSON, bodies too large, and images of the wrong size or levels', async () => {
    await expectError(post('/api/sample', '{"run": '), 400, /not valid JSON/);
    await expectError(post('/api/sample', '[1, 2]'), 400, /must be a JSON object/);
    await expectError(post('/api/sample', 'x'.repeat(LIMITS.jsonBytes + 10)), 413, /limit/);
    await expectError(post('/api/bits', { run: id, image: [1, 2, 3] }), 400, /image must hold 784 values/);
    await expectError(post('/api/bits', { run: id, image: new Array(784).fill(256) }), 400, /image\[0\] must be an integer in 0\.\.255/);
    await expectError(post('/api/complete', { run: id, image: new Array(784).fill(0), mask: [1, 0] }), 400, /mask must hold H·W = 784/);
    await expectError(post('/api/complete', { run: id, image: new Array(784).fill(0), mask: new Array(784).fill(2) }), 400, /mask\[0\] must be an integer in 0\.\.1/);
    await expectError(post('/api/complete', { run: id, image: new Array(784).fill(0), keepRows: 29 }), 400, /keepRows must be an integer in 0\.\.28/);
    await expectError(post('/api/complete', { run: id, image: 'abc' }), 400, /image must be an array/);
  });

  test('uploads: a PNG of the right size is read; other sizes, colours, formats and huge files are refused', async () => {
    const upload = (body: Uint8Array) => req(`/api/upload?run=${id}`, { method: 'POST', body: new Uint8Array(body), headers: { 'content-type': 'image/png' } });
    const grey = new Uint8Array(28 * 28).map((_, i) => i % 256);
    const ok = await upload(encodePng({ width: 28, height: 28, channels: 1, depth: 8, data: grey }));
    assert.equal(ok.status, 200);
    assert.deepEqual(((await ok.json()) as { values: number[] }).values, Array.from(grey));
    await expectError(upload(encodePng({ width: 20, height: 28, channels: 1, depth: 8, data: new Uint8Array(20 * 28) })), 422, /is 20×28 but this model takes 28×28; resize/);
    await expectError(upload(encodePng({ width: 28, height: 28, channels: 3, depth: 8, data: new Uint8Array(28 * 28 * 3) })), 422, /RGB but this model takes grey/);
    await expectError(upload(new TextEncoder().encode('GIF89a not an image')), 415, /not a PNG or JPEG/);
    await expectError(upload(new Uint8Array([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a, 1, 2, 3])), 422, /cannot be decoded/);
    await expectError(upload(new Uint8Array(0)), 400, /upload is empty/);
    await expectError(upload(new Uint8Array(LIMITS.uploadBytes + 1)), 413, /limit/);
  });

  test('unknown routes are a 404 that points to the page and the API', async () => {
    await expectError(req('/etc/passwd'), 404, /no route GET \/etc\/passwd/);
    await expectError(req('/../../etc/passwd'), 404, /no route/);
  });
});

describe('nothing a client sends stalls the others', () => {
  const id = 'runs/gated-pixelcnn-fmnist';
  const upload = (body: Uint8Array) => req(`/api/upload?run=${id}`, { method: 'POST', body: new Uint8Array(body), headers: { 'content-type': 'image/png' } });

  test('a PNG declaring 20000×20000 is refused from its header; data inflating past a 28×28 header are refused by the decoder thread', async () => {
    const started = () => serve.images.stats().started;
    const before = started();
    await expectError(upload(pngBomb(20000, 20000)), 422, /the image is 20000×20000 but this model takes 28×28; resize or crop it first/);
    assert.equal(started(), before, 'the bomb never reached a decoder');
    await expectError(upload(craftPng({ width: 28, height: 28 }, zerosZlib(64 << 20))), 422, /cannot be decoded: it is a damaged PNG \(its image data inflate to more than the 812 bytes its 28×28 header declares\)/);
    assert.equal(started(), before + 1, 'decoded on the image decoder thread');
    const ok = await upload(craftPng({ width: 28, height: 28 }, zerosZlib(28 * 29)));
    assert.equal(ok.status, 200);
    assert.deepEqual(((await ok.json()) as { values: number[] }).values, new Array(784).fill(0));
    assert.equal(started(), before + 2);
  });

  test('a full sampling queue is a 503 with Retry-After, before any stream starts', async () => {
    // One worker, one place in the queue: of four requests at once, two are taken and two refused.
    const small = createServeApp({ runDirs: [runs.root], workers: 1, maxQueue: 1 });
    try {
      const ask = (seed: number) => small.app.request('/api/sample', { method: 'POST', body: JSON.stringify({ run: id, n: 64, seed }), headers: { 'content-type': 'application/json' } });
      const answers = await Promise.all([1, 2, 3, 4].map(ask));
      assert.deepEqual(answers.map((r) => r.status).sort(), [200, 200, 503, 503]);
      for (const r of answers) {
        if (r.status === 200) {
          assert.match(r.headers.get('content-type')!, /text\/event-stream/);
          await r.body!.cancel();
          continue;
        }
        assert.equal(r.headers.get('retry-after'), String(LIMITS.retryAfter));
        assert.match(r.headers.get('content-type')!, /application\/json/);
        const body = (await r.json()) as { error: string; status: number };
        assert.equal(body.status, 503);
        assert.match(body.error, /1 jobs are already waiting for the model workers; try again in a moment/);
      }
    } finally {
      await small.close();
    }
  });

  test('metrics streams past the limit are a 503; closing one makes room', async () => {
    const open: Response[] = [];
    for (let k = 0; k < LIMITS.metricsStreams; k++) open.push(await req(`/api/metrics/stream?run=${id}`));
    assert.ok(open.every((r) => r.status === 200));
    const refused = await req(`/api/metrics/stream?run=${id}`);
    assert.equal(refused.headers.get('retry-after'), String(LIMITS.retryAfter));
    await expectError(refused, 503, /32 metrics streams are open already/);
    await open.pop()!.body!.cancel();
    // The stream leaves once its poll notices; health counts the open ones.
    const openStreams = async () => ((await (await req('/api/health')).json()) as { streams: number }).streams;
    for (let i = 0; i < 200 && (await openStreams()) >= LIMITS.metricsStreams; i++) await new Promise((r) => setTimeout(r, 10));
    const again = await req(`/api/metrics/stream?run=${id}`);
    assert.equal(again.status, 200);
    await Promise.all([again, ...open].map((r) => r.body!.cancel()));
  });

  test('bodies that stall: past LIMITS.bodiesAtOnce a 503, and each stalled one a 408 once its time is up', async () => {
    const slow = createServeApp({ runDirs: [runs.root], workers: 1, bodyMs: 300 });
    try {
      // A body that sends its first bytes and then nothing.
      const stalled = () => new ReadableStream<Uint8Array>({ start: (sink) => sink.enqueue(new Uint8Array([0x89, 0x50])) });
      const send = () => slow.app.request(`/api/upload?run=${id}`, { method: 'POST', body: stalled(), duplex: 'half' } as RequestInit);
      const reading = Array.from({ length: LIMITS.bodiesAtOnce }, send);
      const extra = await send();
      assert.equal(extra.status, 503, 'every place for a body was taken');
      assert.match(((await extra.json()) as { error: string }).error, /16 requests are sending their bodies already; try again in a moment/);
      for (const r of await Promise.all(reading)) {
        assert.equal(r.status, 408);
        assert.match(((await r.json()) as { error: string }).error, /the upload took over 0.3 s to arrive; send it again/);
      }
    } finally {
      await slow.close();
    }
  });
});

describe('streams end cleanly', () => {
  test('a client that disconnects mid-stream cancels its job; its worker stops at the next row and runs the next job', async () => {
    const id = 'runs/pixelcnnpp-fmnist-small';
    const before = serve.pool.stats();
    const res = await post('/api/sample', { run: id, n: 16, seed: 1 });
    const reader = res.body!.getReader();
    let text = '';
    while (!text.includes('event: row')) text += new TextDecoder().decode((await reader.read()).value);
    await reader.cancel();
    for (let i = 0; i < 100 && serve.pool.stats().cancelled === before.cancelled; i++) await new Promise((r) => setTimeout(r, 20));
    assert.equal(serve.pool.stats().cancelled, before.cancelled + 1, 'the job was cancelled');
    // The worker stops at its next row (16 images of 28 rows take far longer than a few rows).
    const t0 = performance.now();
    while (serve.pool.stats().busy > 0 && performance.now() - t0 < 5000) await new Promise((r) => setTimeout(r, 10));
    assert.equal(serve.pool.stats().busy, 0, 'no worker is left sampling for nobody');
    const ev = await events(await post('/api/sample', { run: id, n: 1, seed: 1 }));
    assert.equal(ev.at(-1)!.event, 'done');
  });

  test('two clients sampling at once both finish with their own images', async () => {
    const id = 'runs/gated-pixelcnn-fmnist';
    const { model } = models.get(id)!;
    const [a, b] = await Promise.all([1, 2].map(async (seed) => (await events(await post('/api/sample', { run: id, n: 2, seed }))).filter((e) => e.event === 'row')));
    for (const [seed, rows] of [[1, a!], [2, b!]] as const) {
      assert.equal(rows.length, 28);
      const want = model.sample({ n: 2, seed });
      assert.deepEqual(rows[27]!.data.values, Array.from({ length: 2 * 28 }, (_, k) => want.data[(Math.floor(k / 28) * 28 + 27) * 28 + (k % 28)]));
    }
  });

  test('a metrics stream sends what is there, then each record appended', async () => {
    const id = 'runs/pixelcnn-binary-fmnist-small';
    const res = await req(`/api/metrics/stream?run=${id}`);
    const reader = res.body!.getReader();
    let text = '';
    const until = async (n: number) => {
      while ((text.match(/event: records/g) ?? []).length < n) text += new TextDecoder().decode((await reader.read()).value);
    };
    await until(1);
    const file = join(runs.root, 'pixelcnn-binary-fmnist-small', 'metrics.jsonl');
    writeFileSync(file, JSON.stringify({ type: 'train', step: 99, epoch: 0, loss: 0.5, lr: 1e-3, gradNorm: 1, imagesPerSec: 1, seconds: 1 }) + '\n', { flag: 'a' });
    await until(2);
    assert.match(text.split('event: records').at(-1)!, /"step":99/);
    await reader.cancel();
  });
});
