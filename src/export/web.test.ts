/// <reference lib="dom" />
// `arpix export --web` in a real browser: a tiny random-initialised model of every family in the
// table (and a class-conditional one) exported into one folder, served by a static file server on
// 127.0.0.1 (with and without cross-origin isolation), opened in Debian's chromium through
// playwright-core. In the page's Web Worker, with nothing computed by any server: sampling with a
// seed paints the images Node samples with the same backend and seed, value for value; completion
// keeps the kept rows and completes like Node; the bits of an image are Node's; the receptive field
// of a pixel is Node's. Bad inputs — damaged weights, a model of another kind, an upload of the
// wrong size — show one line; a page opened from a file says how to serve it. One browser for all.

import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { cpSync, existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import type { Server } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { pathToFileURL } from 'node:url';
import { encode as encodePng } from 'fast-png';
import '../backends/node.js'; // Node's services, and the native and wasm backends registered
import type { BackendName } from '../backends/registry.js';
import { onBackend as on } from '../testing/backend.js';
import { launchChromium, serveFolder, skipWithoutChromium as skip } from '../testing/static-site.js';
import { greyPalette } from '../likelihoods/index.js';
import { fixedLookupTable } from '../data/transforms.js';
import { saveCheckpoint } from '../io/disk.js';
import type { AutoregressiveModel } from '../models/core/model.js';
import { FAMILIES } from '../models/families.js';
import { noGrad } from '../ops/index.js';
import { Tensor } from '../tensor/tensor.js';
import { loadEvalData, loadRunCheckpoint, modelFromCheckpoint, pixelField, resolveRunConfig, transformFor, type RunConfig } from '../train/index.js';
import { levelToByte } from '../serve/page/draw.js';
import { gridLayout } from '../serve/page/draw.js';
import { runModelJob } from '../web/engine.js';
import { compressValues, decompressBytes } from '../codec/compress.js';
import type { PageConfig } from '../web/page-config.js';
import type { BitsResult } from '../web/protocol.js';
import { initialCheckpoint } from './export.js';
import { exportWeb, WEB_MARKER, writeFolder } from './web.js';


type Page = import('playwright-core').Page;
type Browser = import('playwright-core').Browser;

interface Run {
  name: string;
  config: RunConfig;
  model: AutoregressiveModel;
}

let base: string;
let out: string;
let browser: Browser;
const servers: Server[] = [];
const runs: Run[] = [];
let testValues: number[][];
let testLabels: number[];

/** A tiny model of each family on Fashion-MNIST's shape, an Image GPT with a palette head, and a class-conditional Gated PixelCNN. */
function tinyConfigs(): { name: string; config: RunConfig }[] {
  const list: { name: string; model: Record<string, unknown> }[] = FAMILIES.map((f) => ({
    name: f.kind.replace(/[^a-z-]/g, 'p'),
    model: { kind: f.kind, height: 28, width: 28, channels: 1, numClasses: 0, likelihood: f.kind === 'pixelcnn++' ? { kind: 'logistic-mixture', nrMix: 2, levels: 256 } : { kind: 'categorical', levels: 256 }, ...f.tiny(28, 28), ...(f.kind === 'pixelcnn++' ? { dropout: 0 } : {}) },
  }));
  const gated = FAMILIES.find((f) => f.kind === 'gated-pixelcnn')!;
  const gpt = FAMILIES.find((f) => f.kind === 'image-gpt')!;
  list.push({ name: 'image-gpt-palette', model: { kind: 'image-gpt', height: 28, width: 28, channels: 1, numClasses: 0, likelihood: { kind: 'palette', k: 8, colours: Array.from(greyPalette(8).colours) }, ...gpt.tiny(28, 28) } });
  list.push({ name: 'gated-labels', model: { kind: 'gated-pixelcnn', height: 28, width: 28, channels: 1, numClasses: 10, likelihood: { kind: 'categorical', levels: 256 }, ...gated.tiny(28, 28) } });
  return list.map(({ name, model }) => ({ name, config: resolveRunConfig({ model, dataset: { name: 'fashion-mnist' }, train: { steps: 1, seed: 7 } }) }));
}

/** A static file server of `root` on 127.0.0.1; `isolated` adds the headers that make a page cross-origin isolated. */
async function staticServer(root: string, isolated: boolean): Promise<string> {
  const { url, server } = await serveFolder(root, isolated);
  servers.push(server);
  return url;
}

/** A copy of the export without its WebAssembly module, served: its page computes on the TypeScript backend. */
function noWasmSite(name: string): Promise<string> {
  const dir = join(base, name);
  cpSync(out, dir, { recursive: true });
  rmSync(join(dir, 'arpix.wasm'), { force: true });
  return staticServer(dir, false);
}

/** A new page on `url`, recording what it threw. */
async function open(url: string): Promise<{ page: Page; errors: string[] }> {
  const page = await browser.newPage({ viewport: { width: 1280, height: 900 } });
  const errors: string[] = [];
  page.on('pageerror', (e) => errors.push(e.message));
  await page.goto(url);
  return { page, errors };
}

/** The RGBA pixels of a canvas, read back as the page drew them. */
function canvasPixels(page: Page, id: string): Promise<{ width: number; data: number[] }> {
  return page.evaluate((cid) => {
    const c = document.getElementById(cid) as HTMLCanvasElement;
    return { width: c.width, data: Array.from(c.getContext('2d')!.getImageData(0, 0, c.width, c.height).data) };
  }, id);
}

/** The backend the page's worker chose, once it said. */
/** The page's engine workers (not the WebAssembly kernels' helper threads an isolated page's workers start). */
function engineWorkers(page: Page): ReturnType<Page['workers']> {
  return page.workers().filter((w) => !w.url().endsWith('/wasm-helper.js'));
}

async function pageBackend(page: Page): Promise<BackendName> {
  await page.waitForFunction(() => ['wasm', 'ts'].includes(document.getElementById('where')!.dataset.backend ?? ''));
  return (await page.getAttribute('#where', 'data-backend')) as BackendName;
}


/** The images of a grid canvas of n images (the red channel, 0..255), as sampleImages lays them out. */
async function gridImages(page: Page, id: string, n: number, cols: number, rows = 1, first = 0): Promise<number[][]> {
  const px = await canvasPixels(page, id);
  const grid = gridLayout(n, 28, 28, cols, rows);
  const out: number[][] = [];
  for (let i = first; i < n; i++) {
    const [x0, y0] = grid.origin(i);
    const img: number[] = [];
    for (let q = 0; q < 784; q++) img.push(px.data[((y0 + Math.floor(q / 28)) * px.width + x0 + (q % 28)) * 4]!);
    out.push(img);
  }
  return out;
}

/** A batch's images as the page paints them (8-bit). */
function painted(t: Tensor): number[][] {
  const d = 784;
  return Array.from({ length: t.shape[0]! }, (_, i) => Array.from(t.data.subarray(i * d, (i + 1) * d), (v) => levelToByte(v, 256)));
}

/** Sets an input's value, shown or not (the label inputs show only for class-conditional runs). */
async function setValue(page: Page, selector: string, value: string): Promise<void> {
  await page.$eval(selector, (el, v) => { (el as HTMLInputElement).value = v; }, value);
}

/** The toast's text once it shows. */
async function toast(page: Page): Promise<string> {
  await page.waitForSelector('#toast:not([hidden])', { timeout: 30_000 });
  return (await page.textContent('#toast')) ?? '';
}

describe('arpix export --web in chromium', { skip }, () => {
  before(async () => {
    base = mkdtempSync(join(tmpdir(), 'arpix-web-'));
    const dirs: string[] = [];
    for (const { name, config } of tinyConfigs()) {
      const dir = join(base, 'runs', name);
      mkdirSync(dir, { recursive: true });
      await saveCheckpoint(join(dir, 'checkpoint.safetensors'), initialCheckpoint(config));
      if (name === 'gated-pixelcnn') {
        const lines = [1, 2, 3].map((step) => JSON.stringify({ type: 'train', step, epoch: 0, loss: 8 - step, lr: 1e-3, gradNorm: 1, imagesPerSec: 50, seconds: step }));
        writeFileSync(join(dir, 'metrics.jsonl'), [...lines, JSON.stringify({ type: 'validation', step: 3, epoch: 0, bitsPerDim: 4.25, stderr: 0.1, ema: false, seconds: 3 }), ''].join('\n'));
      }
      dirs.push(dir);
    }
    const loaded = [];
    for (const dir of dirs) loaded.push({ dir, ckpt: await loadRunCheckpoint(dir) });
    for (const { dir, ckpt } of loaded) runs.push({ name: dir.split('/').pop()!, config: ckpt.config, model: modelFromCheckpoint(ckpt) });
    out = join(base, 'site');
    await exportWeb(loaded, out, { testImages: 4 });
    const ds = await loadEvalData(runs[0]!.config.dataset, 'test', 16);
    const lut = fixedLookupTable(transformFor(runs[0]!.config.dataset));
    testValues = [0, 1].map((i) => Array.from(ds.images.subarray(i * 784, (i + 1) * 784), (v) => lut[v]!));
    testLabels = [ds.labels![0]!, ds.labels![1]!];
    browser = await launchChromium();
  });

  after(async () => {
    await browser?.close();
    for (const s of servers) s.close();
    if (base) rmSync(base, { recursive: true, force: true });
  });

  test('the folder holds the page, its bundles, each run\'s weights and test images; an existing folder is refused without --force', async () => {
    for (const f of ['index.html', 'app.js', 'worker.js', 'app.css', 'vendor/uPlot.min.css', 'favicon.ico', WEB_MARKER]) assert.ok(existsSync(join(out, f)), f);
    const html = readFileSync(join(out, 'index.html'), 'utf8');
    const config = JSON.parse(/<script id="arpix-config" type="application\/json">(.*?)<\/script>/.exec(html)![1]!) as PageConfig;
    assert.equal(config.mode, 'static');
    assert.doesNotMatch(html, /(href|src)="\//, 'every file is named relative to the page, so the folder works under any path');
    assert.deepEqual(config.runs.map((r) => r.summary.id), runs.map((r) => r.name));
    const tests = JSON.parse(readFileSync(join(out, config.runs[0]!.tests), 'utf8')) as { values: number[][] };
    assert.deepEqual(tests.values.slice(0, 2), testValues, 'the test images are the data set\'s, in the model\'s levels');
    await assert.rejects(exportWeb([], out), /give at least one run/);
    const again = [{ dir: join(base, 'runs', runs[0]!.name), ckpt: await loadRunCheckpoint(join(base, 'runs', runs[0]!.name)) }];
    await assert.rejects(exportWeb(again, out), /already exists; pass --force/);
    const other = join(base, 'not-an-export');
    mkdirSync(other);
    writeFileSync(join(other, 'notes.txt'), 'mine');
    await assert.rejects(exportWeb(again, other, { force: true }), /is not a web export of arpix/);
    assert.equal(readFileSync(join(other, 'notes.txt'), 'utf8'), 'mine', 'a folder that is not an export is left alone');
  });

  test('every family samples and completes in the page, its batch split between two workers, exactly as Node does with the same backend and seed', async () => {
    const url = await staticServer(out, false);
    // Opened without a tab, the page samples the first run at once.
    const first = await open(url);
    await first.page.waitForSelector('#s-canvas[data-state="done"]', { timeout: 60_000 });
    assert.ok(await first.page.evaluate(() => performance.getEntriesByName('arpix-first-row').length === 1));
    assert.deepEqual(first.errors, []);
    await first.page.close();
    const { page, errors } = await open(`${url}#runs`);
    // Two threads: each batch of two is sampled one image per worker, and the rows merged.
    await page.selectOption('#threads', '2');
    // The runs table and the curves of the exported metrics.
    await page.waitForSelector('#runs-table tr[data-run="gated-pixelcnn"]');
    assert.equal(await page.$$eval('#runs-table tbody tr', (trs) => trs.length), runs.length);
    assert.match(await page.textContent('#runs-table tr[data-run="gated-pixelcnn"]') ?? '', /4\.250/);
    await page.waitForFunction(() => Number(document.getElementById('chart-loss')!.dataset.points) === 3 && Number(document.getElementById('chart-val')!.dataset.points) === 1);
    const backend = await pageBackend(page);
    process.stdout.write(`# the page computes on the ${backend} backend\n`);
    for (const run of runs) {
      const label = run.model.config.numClasses > 0 ? 3 : null;
      await page.selectOption('#run', run.name);
      await page.click('#tabs button[data-tab="sample"]');
      await page.fill('#s-n', '2');
      await page.fill('#s-seed', '11');
      await setValue(page, '#s-label', label === null ? '' : String(label));
      await page.selectOption('#s-gran', run.name === 'pixelcnn' ? 'pixel' : 'row');
      await page.click('#s-go');
      await page.waitForSelector('#s-canvas[data-state="done"]', { timeout: 60_000 });
      assert.equal(await page.getAttribute('#s-canvas', 'data-threads'), '2');
      const want = on(backend, () => run.model.sample({ n: 2, seed: 11, labels: label === null ? null : new Tensor(new Int32Array([label, label]), [2]) }));
      const px = await canvasPixels(page, 's-canvas');
      const grid = gridLayout(2, 28, 28, 2);
      for (let i = 0; i < 2; i++) {
        const [x0, y0] = grid.origin(i);
        const got: number[] = [];
        for (let q = 0; q < 784; q++) got.push(px.data[((y0 + Math.floor(q / 28)) * px.width + x0 + (q % 28)) * 4]!);
        assert.deepEqual(got, Array.from(want.data.subarray(i * 784, (i + 1) * 784), (v) => levelToByte(v, 256)), `${run.name}: image ${i}`);
      }

      await page.click('#tabs button[data-tab="complete"]');
      await page.fill('#c-index', '1');
      await page.dispatchEvent('#c-index', 'change');
      await page.waitForSelector('#c-source[data-index="1"]');
      await page.$eval('#c-rows', (el) => { (el as HTMLInputElement).value = '14'; el.dispatchEvent(new Event('input')); });
      await page.fill('#c-samples', '2');
      await page.fill('#c-seed', '5');
      await setValue(page, '#c-label', label === null ? '' : String(label));
      await page.evaluate(() => { delete (document.getElementById('c-canvas') as HTMLCanvasElement).dataset.state; });
      await page.click('#c-go');
      await page.waitForSelector('#c-canvas[data-state="done"]', { timeout: 60_000 });
      assert.equal(await page.getAttribute('#c-canvas', 'data-threads'), '2');
      const images = new Tensor(Int32Array.from([...testValues[1]!, ...testValues[1]!]), [2, 28, 28, 1]);
      const completed = on(backend, () => run.model.sample({ n: 2, seed: 5, complete: { images, keepRows: 14 }, labels: label === null ? null : new Tensor(new Int32Array([label, label]), [2]) }));
      const cp = await canvasPixels(page, 'c-canvas');
      const cgrid = gridLayout(4, 28, 28, 4, 2);
      for (let k = 0; k < 2; k++) {
        const [x0, y0] = cgrid.origin(k + 2);
        for (let q = 0; q < 784; q++) {
          const v = cp.data[((y0 + Math.floor(q / 28)) * cp.width + x0 + (q % 28)) * 4]!;
          if (q < 14 * 28) assert.equal(v, testValues[1]![q], `${run.name}: completion ${k} kept pixel ${q}`);
          assert.equal(v, completed.data[k * 784 + q], `${run.name}: completion ${k} pixel ${q}`);
        }
      }
    }
    assert.deepEqual(errors, [], 'the page threw nothing');
    await page.close();
  });

  test('bits per image and receptive fields in a cross-origin isolated page are Node\'s', async () => {
    const url = await staticServer(out, true);
    const { page, errors } = await open(`${url}#bits`);
    assert.equal(await page.evaluate(() => crossOriginIsolated), true);
    const backend = await pageBackend(page);
    for (const run of runs) {
      // The panel measures test image 0 with its own label.
      const label = run.model.config.numClasses > 0 ? testLabels[0]! : null;
      await page.evaluate(() => { delete document.getElementById('b-kpis')!.dataset.state; });
      await page.selectOption('#run', run.name);
      await page.click('#tabs button[data-tab="bits"]');
      await page.waitForSelector('#b-kpis[data-state="done"]', { timeout: 60_000 });
      const image = new Tensor(Int32Array.from(testValues[0]!), [1, 28, 28, 1]);
      const labels = label === null ? null : new Tensor(new Int32Array([label]), [1]);
      // The engine's bits in Node, on the same backend: the same numbers, to the last bit.
      const engine = on(backend, () => runModelJob({ model: run.model, config: run.config, weights: 'raw' }, { op: 'bits', values: testValues[0]!, label }, () => {}, () => false)) as BitsResult;
      const shown = Number(await page.getAttribute('#b-total', 'data-bits'));
      assert.equal(shown, engine.totalBits, `${run.name}: the page's bits are the engine's in Node`);
      // And arpix eval's: log p of the image summed in float32 by the model, so within float32 rounding of 784 terms.
      const total = on(backend, () => -noGrad(() => run.model.logProb(image, { labels })).data[0]! / Math.LN2);
      assert.ok(Math.abs(shown - total) <= 784 * 2 ** -24 * total, `${run.name}: the page says ${shown} bits, arpix eval's log p ${total}`);

      await page.evaluate(() => { delete (document.getElementById('m-canvas') as HTMLCanvasElement).dataset.pixels; });
      await page.click('#tabs button[data-tab="models"]');
      await page.waitForSelector('#m-canvas[data-pixels]', { timeout: 60_000 });
      const f = on(backend, () => pixelField(run.model, 14, 14));
      assert.equal(Number(await page.getAttribute('#m-canvas', 'data-pixels')), f.pixels, `${run.name}: pixels seen by (14, 14)`);
      assert.match(await page.textContent('#m-stats') ?? '', new RegExp(`sees ${f.pixels} of the ${f.of} pixels`));
    }
    // Stop, in a page that shares memory with its workers, sets the cell their samplers read after each row; the workers go on.
    const run = runs.find((r) => r.name === 'diagonal-bilstm')!;
    await page.selectOption('#run', run.name);
    await page.click('#tabs button[data-tab="sample"]');
    await page.fill('#s-n', '64');
    await page.selectOption('#threads', '2');
    // Stop the moment the first row is painted, while the worker samples the rest.
    await page.evaluate(() => new Promise<void>((resolve) => {
      const bar = document.getElementById('s-progress')!;
      const seen = new MutationObserver(() => {
        if (bar.style.width === '0%' || bar.style.width === '') return;
        seen.disconnect();
        document.getElementById('s-stop')!.click();
        resolve();
      });
      seen.observe(bar, { attributes: true });
      document.getElementById('s-go')!.click();
    }));
    await page.waitForSelector('#s-canvas[data-state="stopped"]');
    const workers = engineWorkers(page);
    assert.equal(workers.length, 2, 'the 64 images were split between two workers');
    // Each worker stopped its half of the batch mid-way: once that part has ended (the worker may
    // be asked while it still samples the row it was on), it says it was cancelled.
    for (const w of workers) {
      let last: { outcome: string; part: { from: number; to: number } | null } | undefined;
      for (let tries = 0; ; tries++) {
        last = await w.evaluate(() => (globalThis as { arpixLastJob?: { outcome: string; part: { from: number; to: number } | null } }).arpixLastJob);
        if (last?.part && last.part.to - last.part.from === 32) break;
        assert.ok(tries < 1200, `worker ${w.url()} never ended its half of the batch: ${JSON.stringify(last)}`);
        await page.waitForTimeout(50);
      }
      assert.equal(last.outcome, 'cancelled', `worker ${w.url()}: ${JSON.stringify(last)}`);
    }
    await page.fill('#s-n', '2');
    await page.fill('#s-seed', '1');
    await page.click('#s-go');
    await page.waitForSelector('#s-canvas[data-state="done"]', { timeout: 60_000 });
    const want = on(backend, () => run.model.sample({ n: 2, seed: 1 }));
    const px = await canvasPixels(page, 's-canvas');
    const [x0, y0] = gridLayout(2, 28, 28, 2).origin(1);
    for (let q = 0; q < 784; q++) assert.equal(px.data[((y0 + Math.floor(q / 28)) * px.width + x0 + (q % 28)) * 4], want.data[784 + q], `after a stop, pixel ${q}`);
    assert.deepEqual(engineWorkers(page), workers, 'the same workers ran the job after the stop');
    assert.deepEqual(errors, [], 'the page threw nothing');
    await page.close();
  });

  test('threads in a cross-origin isolated page: 1, 2 or 3 workers sample a batch of 5 as Node does, row by row or pixel by pixel, and complete it', async () => {
    const url = await staticServer(out, true);
    const { page, errors } = await open(`${url}#sample`);
    assert.equal(await page.evaluate(() => crossOriginIsolated), true);
    const backend = await pageBackend(page);
    // Heads drawn per channel (categorical), whole pixels at once (a logistic mixture, a palette), and a recurrent family.
    for (const [name, granularity] of [['gated-pixelcnn', 'row'], ['pixelcnnpp', 'pixel'], ['row-lstm', 'row'], ['image-gpt-palette', 'pixel']] as const) {
      const run = runs.find((r) => r.name === name)!;
      await page.selectOption('#run', run.name);
      await page.fill('#s-n', '5');
      await page.fill('#s-seed', '13');
      await page.selectOption('#s-gran', granularity);
      const want = painted(on(backend, () => run.model.sample({ n: 5, seed: 13 })));
      for (const k of ['1', '2', '3']) {
        await page.selectOption('#threads', k);
        await page.click('#s-go');
        await page.waitForSelector('#s-canvas[data-state="done"]', { timeout: 60_000 });
        assert.equal(await page.getAttribute('#s-canvas', 'data-threads'), k);
        assert.deepEqual(await gridImages(page, 's-canvas', 5, 5), want, `${name}, ${granularity} by ${granularity}, ${k} workers`);
      }
    }
    // Workers ended between jobs (fewer threads asked for) close a moment later, their helper threads first: give them 10 s.
    for (let i = 0; i < 50 && engineWorkers(page).length !== 3; i++) await new Promise((r) => setTimeout(r, 200));
    assert.equal(engineWorkers(page).length, 3, `the page's workers: ${engineWorkers(page).map((w) => w.url()).join(', ')}`);
    // Completion of test image 1's top half, five times on three workers.
    const run = runs.find((r) => r.name === 'pixelcnnpp')!;
    await page.selectOption('#run', run.name);
    await page.click('#tabs button[data-tab="complete"]');
    await page.fill('#c-index', '1');
    await page.dispatchEvent('#c-index', 'change');
    await page.waitForSelector('#c-source[data-index="1"]');
    await page.$eval('#c-rows', (el) => { (el as HTMLInputElement).value = '14'; el.dispatchEvent(new Event('input')); });
    await page.fill('#c-samples', '5');
    await page.fill('#c-seed', '6');
    await page.click('#c-go');
    await page.waitForSelector('#c-canvas[data-state="done"]', { timeout: 60_000 });
    assert.equal(await page.getAttribute('#c-canvas', 'data-threads'), '3');
    const images = new Tensor(Int32Array.from(Array.from({ length: 5 }, () => testValues[1]!).flat()), [5, 28, 28, 1]);
    const completed = painted(on(backend, () => run.model.sample({ n: 5, seed: 6, complete: { images, keepRows: 14 } })));
    assert.deepEqual(await gridImages(page, 'c-canvas', 7, 7, 2, 2), completed);
    assert.deepEqual(errors, [], 'the page threw nothing');
    await page.close();
  });

  test('an image uploaded to an Image GPT with a palette head is completed as Node completes it', async () => {
    const url = await staticServer(out, false);
    const { page, errors } = await open(`${url}#complete`);
    const backend = await pageBackend(page);
    const run = runs.find((r) => r.name === 'image-gpt-palette')!;
    await page.selectOption('#run', run.name);
    await page.waitForSelector('#c-source[data-index]');
    // Grey values that are not palette colours: the model sees each as its nearest colour, the page keeps them as they are.
    const values = testValues[0]!.map((v, q) => (v + q) % 256);
    const png = encodePng({ width: 28, height: 28, channels: 1, depth: 8, data: Uint8Array.from(values) });
    await page.setInputFiles('#c-file', { name: 'grey.png', mimeType: 'image/png', buffer: Buffer.from(png) });
    // Drawn once the editor's first row is the upload's (the test image shown before differs there).
    assert.notDeepEqual(values.slice(0, 28), testValues[0]!.slice(0, 28));
    await page.waitForFunction((row) => {
      const d = (document.getElementById('c-source') as HTMLCanvasElement).getContext('2d')!.getImageData(0, 0, 28, 1).data;
      return row.every((v, x) => d[x * 4] === v);
    }, values.slice(0, 28));
    const src = await canvasPixels(page, 'c-source');
    for (let q = 0; q < 14 * 28; q++) assert.equal(src.data[q * 4], values[q], `uploaded pixel ${q}`);
    await page.$eval('#c-rows', (el) => { (el as HTMLInputElement).value = '14'; el.dispatchEvent(new Event('input')); });
    await page.fill('#c-samples', '2');
    await page.fill('#c-seed', '3');
    await page.click('#c-go');
    await page.waitForSelector('#c-canvas[data-state="done"]', { timeout: 60_000 });
    const images = new Tensor(Int32Array.from([...values, ...values]), [2, 28, 28, 1]);
    const completed = painted(on(backend, () => run.model.sample({ n: 2, seed: 3, complete: { images, keepRows: 14 } })));
    const got = await gridImages(page, 'c-canvas', 4, 4, 2, 2);
    assert.deepEqual(got, completed);
    const colours = new Set(greyPalette(8).colours);
    for (const img of got) assert.ok(img.slice(14 * 28).every((v) => colours.has(v)), 'the completed rows are palette colours');
    assert.equal(await page.isHidden('#toast'), true);
    assert.deepEqual(errors, []);
    await page.close();
  });

  test('a damaged weights file, a model of another kind and an upload of the wrong size each show one line', async () => {
    const bad = join(base, 'bad-site');
    cpSync(out, bad, { recursive: true });
    const weights = join(bad, 'runs', 'pixelcnn', 'weights.safetensors');
    const bytes = readFileSync(weights);
    bytes[bytes.length - 5] ^= 0x40;
    writeFileSync(weights, bytes);
    // Another kind's weights where the page lists the gated run, its sum updated so only the kind differs.
    const html = readFileSync(join(bad, 'index.html'), 'utf8');
    const m = /(<script id="arpix-config" type="application\/json">)(.*?)(<\/script>)/.exec(html)!;
    const config = JSON.parse(m[2]!) as PageConfig;
    const gated = config.runs.find((r) => r.summary.id === 'gated-pixelcnn')!;
    const rowLstm = config.runs.find((r) => r.summary.id === 'row-lstm')!;
    cpSync(join(bad, rowLstm.weights.file), join(bad, gated.weights.file));
    gated.weights.sha256 = rowLstm.weights.sha256;
    writeFileSync(join(bad, 'index.html'), html.replace(m[0], `${m[1]}${JSON.stringify(config).replace(/</g, '\\u003c')}${m[3]}`));
    const url = await staticServer(bad, false);
    const { page, errors } = await open(`${url}#sample`);

    await page.selectOption('#run', 'pixelcnn');
    await page.click('#s-go');
    const damaged = await toast(page);
    assert.match(damaged, /^runs\/pixelcnn\/weights\.safetensors is damaged: its SHA-256 is not the one the page lists/);
    assert.equal(damaged.split('\n').length, 1);
    assert.equal(await page.getAttribute('#s-canvas', 'data-state'), 'error');
    await page.evaluate(() => { document.getElementById('toast')!.hidden = true; });

    await page.selectOption('#run', 'gated-pixelcnn');
    await page.click('#s-go');
    assert.match(await toast(page), /^runs\/gated-pixelcnn\/weights\.safetensors holds a row-lstm model of 28×28×1 images, but run gated-pixelcnn is listed as a gated-pixelcnn/);
    await page.evaluate(() => { document.getElementById('toast')!.hidden = true; });

    await page.selectOption('#run', 'image-gpt');
    await page.click('#tabs button[data-tab="complete"]');
    await page.waitForSelector('#c-source[data-index]');
    const png = encodePng({ width: 10, height: 12, channels: 1, depth: 8, data: new Uint8Array(120) });
    await page.setInputFiles('#c-file', { name: 'small.png', mimeType: 'image/png', buffer: Buffer.from(png) });
    assert.equal(await toast(page), 'the image is 10×12 but this model takes 28×28; resize or crop it first');
    await page.evaluate(() => { document.getElementById('toast')!.hidden = true; });
    await page.setInputFiles('#c-file', { name: 'not.png', mimeType: 'image/png', buffer: Buffer.from('hello, not an image') });
    assert.equal(await toast(page), 'the file is not a PNG or JPEG image (its first bytes say otherwise)');
    // An upload of the right size becomes the image to complete, value for value.
    const right = encodePng({ width: 28, height: 28, channels: 1, depth: 8, data: Uint8Array.from(testValues[0]!) });
    await page.evaluate(() => { document.getElementById('toast')!.hidden = true; });
    await page.setInputFiles('#c-file', { name: 'right.png', mimeType: 'image/png', buffer: Buffer.from(right) });
    await page.waitForFunction(() => document.getElementById('c-rows-v')!.textContent !== '' && (document.getElementById('c-source') as HTMLCanvasElement).getContext('2d')!.getImageData(0, 0, 28, 1).data[0] !== -1);
    await page.waitForTimeout(200);
    const src = await canvasPixels(page, 'c-source');
    for (let q = 0; q < 14 * 28; q++) assert.equal(src.data[q * 4], testValues[0]![q], `uploaded pixel ${q}`);
    assert.equal(await page.isHidden('#toast'), true, 'and says nothing is wrong');
    assert.deepEqual(errors, [], 'the page threw nothing');
    await page.close();
  });

  test('without its WebAssembly module the page computes on the TypeScript backend, says so, and still samples as Node does', async () => {
    const url = await noWasmSite('no-wasm-site');
    const { page, errors } = await open(`${url}#sample`);
    assert.equal(await pageBackend(page), 'ts');
    assert.match(await page.getAttribute('#where', 'title') ?? '', /WebAssembly|TypeScript/);
    const run = runs.find((r) => r.name === 'gated-pixelcnn')!;
    await page.selectOption('#run', run.name);
    await page.selectOption('#threads', '2');
    await page.fill('#s-n', '2');
    await page.fill('#s-seed', '4');
    await page.click('#s-go');
    await page.waitForSelector('#s-canvas[data-state="done"]', { timeout: 60_000 });
    const want = on('ts', () => run.model.sample({ n: 2, seed: 4 }));
    const px = await canvasPixels(page, 's-canvas');
    const [x0, y0] = gridLayout(2, 28, 28, 2).origin(1);
    for (let q = 0; q < 784; q++) assert.equal(px.data[((y0 + Math.floor(q / 28)) * px.width + x0 + (q % 28)) * 4], want.data[784 + q], `pixel ${q}`);
    // Stop, in a page that shares no memory with its workers, ends both workers of the split batch
    // mid-way; the next job starts fresh ones.
    await page.fill('#s-n', '64');
    await page.click('#s-go');
    await page.waitForFunction(() => (document.getElementById('s-progress')!.style.width || '0%') !== '0%');
    assert.equal(page.workers().length, 2);
    const ended = page.workers().map((w) => new Promise<void>((resolve) => w.once('close', () => resolve())));
    await page.click('#s-stop');
    await page.waitForSelector('#s-canvas[data-state="stopped"]');
    await Promise.all(ended);
    assert.equal(page.workers().length, 0, 'every worker of the job was ended');
    await page.fill('#s-n', '2');
    await page.click('#s-go');
    await page.waitForSelector('#s-canvas[data-state="done"]', { timeout: 60_000 });
    const again = await canvasPixels(page, 's-canvas');
    assert.deepEqual(again.data, px.data, 'the same seed after a stop paints the same images');
    assert.deepEqual(errors, []);
    await page.close();
  });

  test('arpix serve --compute page: the server gives the weights, the page samples them as Node does, and the switch goes back to the server', async () => {
    const { startServer } = await import('../serve/index.js');
    const server = await startServer({ runDirs: [join(base, 'runs')], port: 0, compute: 'page', workers: 1 });
    try {
      const { page, errors } = await open(`${server.url}#sample`);
      assert.equal(await page.inputValue('#compute'), 'page');
      const backend = await pageBackend(page);
      const run = runs.find((r) => r.name === 'image-transformer')!;
      await page.selectOption('#run', `runs/${run.name}`);
      await page.fill('#s-n', '2');
      await page.fill('#s-seed', '9');
      await page.click('#s-go');
      await page.waitForSelector('#s-canvas[data-state="done"][data-where="page"]', { timeout: 60_000 });
      const want = on(backend, () => run.model.sample({ n: 2, seed: 9 }));
      const px = await canvasPixels(page, 's-canvas');
      const [x0, y0] = gridLayout(2, 28, 28, 2).origin(0);
      for (let q = 0; q < 784; q++) assert.equal(px.data[((y0 + Math.floor(q / 28)) * px.width + x0 + (q % 28)) * 4], want.data[q], `pixel ${q}`);
      await page.selectOption('#compute', 'server');
      await page.waitForSelector('#where[data-backend="server"]');
      await page.click('#s-go');
      await page.waitForSelector('#s-canvas[data-state="done"][data-where="server"]', { timeout: 60_000 });
      assert.deepEqual(errors, []);
      await page.close();
    } finally {
      await server.close();
    }
  });

  test('the compressor panel writes the shown image\'s file in the page — wasm mode — and Node decodes its bytes on the wasm backend to exactly the image', async () => {
    const url = await staticServer(out, false);
    const { page, errors } = await open(`${url}#bits`);
    assert.equal(await pageBackend(page), 'wasm', 'the export holds the WebAssembly module, which the worker loaded');
    for (const run of runs.filter((r) => r.name === 'gated-labels' || r.name === 'image-transformer')) {
      const label = run.model.config.numClasses > 0 ? testLabels[0]! : null;
      await page.evaluate(() => { delete document.getElementById('b-kpis')!.dataset.state; });
      await page.selectOption('#run', run.name);
      await page.waitForSelector('#b-kpis[data-state="done"]', { timeout: 60_000 });
      assert.deepEqual(await page.$$eval('#b-mode option', (os) => os.map((o) => (o as HTMLOptionElement).value)), ['wasm'], 'the page writes wasm files');
      await page.click('#b-compress');
      await page.waitForSelector('#b-file[data-state="done"]', { timeout: 60_000 });
      const [download] = await Promise.all([page.waitForEvent('download'), page.click('#b-download')]);
      const name = `${run.name}-test-0.arpz`;
      assert.equal(download.suggestedFilename(), name);
      const bytes = new Uint8Array(readFileSync((await download.path())!));
      // Decoded in Node, its WebAssembly backend chosen by the file: the page's image and label.
      const back = decompressBytes(bytes, name, run.model);
      assert.equal(back.header.numeric.mode, 'wasm');
      assert.deepEqual(Array.from(back.values.data), testValues[0], `${run.name}: the image shown`);
      assert.deepEqual(back.labels && Array.from(back.labels), label === null ? null : [label]);
      // Byte for byte the file Node writes for it in wasm mode: the same probabilities in both engines.
      const image = new Tensor(Int32Array.from(testValues[0]!), [1, 28, 28, 1]);
      const want = compressValues(run.model, image, { mode: 'wasm', block: 1, weights: back.header.model.weights, transform: transformFor(run.config.dataset), labels: label === null ? null : Int32Array.of(label) });
      assert.deepEqual(bytes, want.bytes);
      // What the panel says: the file's size, who decoded it, its mode, and the command that decodes it.
      assert.equal(await page.textContent('#b-download'), `Download the compressed file (${bytes.length} bytes)`);
      const text = (await page.textContent('#b-file')) ?? '';
      assert.match(text, new RegExp(`this page decoded these ${bytes.length} bytes`));
      assert.match(text, /wasm mode, trained weights; coded in \d+\.\d{3} s, decoded in \d+\.\d{3} s/);
      assert.match(text, new RegExp(`arpix decompress ${name} --run ${run.name} --raw --out DIR`));
      assert.equal(await page.$('#b-mode-note'), null, 'and no note: the page chose wasm');
    }
    assert.deepEqual(errors, []);
    await page.close();
  });

  test('a page whose worker computes on the TypeScript backend still compresses, in portable mode, and says why', async () => {
    const url = await noWasmSite('no-wasm-compress-site');
    const { page, errors } = await open(`${url}#bits`);
    assert.equal(await pageBackend(page), 'ts');
    const run = runs.find((r) => r.name === 'gated-pixelcnn')!;
    await page.selectOption('#run', run.name);
    await page.waitForSelector('#b-kpis[data-state="done"]', { timeout: 60_000 });
    assert.deepEqual(await page.$$eval('#b-mode option', (os) => os.map((o) => (o as HTMLOptionElement).value)), ['portable']);
    assert.match(await page.textContent('#b-mode-note') ?? '', /computes on the TypeScript backend .*so its files are portable ones/);
    await page.click('#b-compress');
    await page.waitForSelector('#b-file[data-state="done"]', { timeout: 60_000 });
    assert.match(await page.textContent('#b-file') ?? '', /portable mode, trained weights/);
    assert.match(await page.textContent('#b-mode-note') ?? '', /TypeScript backend/);
    const [download] = await Promise.all([page.waitForEvent('download'), page.click('#b-download')]);
    const bytes = new Uint8Array(readFileSync((await download.path())!));
    const back = on('ts', () => decompressBytes(bytes, download.suggestedFilename(), run.model));
    assert.equal(back.header.numeric.mode, 'portable');
    assert.deepEqual(Array.from(back.values.data), testValues[0]);
    assert.deepEqual(errors, []);
    await page.close();
  });

  test('a page opened from a file says how to serve the folder', async () => {
    const { page, errors } = await open(pathToFileURL(join(out, 'index.html')).href);
    await page.waitForSelector('#notice:not([hidden])');
    assert.match(await page.textContent('#notice') ?? '', /python3 -m http\.server 8000/);
    assert.deepEqual(errors, []);
    await page.close();
  });
});

test('arpix export --web on the command line: the folder and its one-line summary; bad arguments and damaged runs are one line and no folder', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'arpix-web-cli-'));
  try {
    const config = resolveRunConfig({ model: { kind: 'gated-pixelcnn', height: 28, width: 28, channels: 1, likelihood: { kind: 'categorical', levels: 256 }, ...FAMILIES.find((f) => f.kind === 'gated-pixelcnn')!.tiny(28, 28) }, dataset: { name: 'fashion-mnist' }, train: { steps: 1 } });
    const run = join(dir, 'runs', 'tiny');
    mkdirSync(run, { recursive: true });
    await saveCheckpoint(join(run, 'checkpoint.safetensors'), initialCheckpoint(config));
    const arpix = (...args: string[]) => spawnSync(process.execPath, ['--import', import.meta.resolve('tsx'), new URL('../cli/main.ts', import.meta.url).pathname, 'export', ...args], { encoding: 'utf8', env: { ...process.env, NODE_NO_WARNINGS: '1' } });
    const oneLine = (r: ReturnType<typeof arpix>, code: number, re: RegExp) => {
      assert.equal(r.status, code, r.stderr);
      const lines = r.stderr.trim().split('\n');
      assert.equal(lines.length, 1, r.stderr);
      assert.match(lines[0]!, re);
    };
    const site = join(dir, 'site');
    oneLine(arpix('--web', site), 2, /^arpix: give one or more run folders to export/);
    oneLine(arpix('--web', site, '--torch', join(dir, 't'), run), 2, /--torch OUT_DIR .* or --web OUT_DIR .*, one of them/);
    oneLine(arpix('--web', site, '--preset', 'gated-pixelcnn-fmnist'), 2, /--web exports trained runs/);
    const damaged = join(dir, 'runs', 'damaged');
    mkdirSync(damaged);
    const bytes = readFileSync(join(run, 'checkpoint.safetensors'));
    bytes[bytes.length - 9] ^= 0x10;
    writeFileSync(join(damaged, 'checkpoint.safetensors'), bytes);
    oneLine(arpix('--web', site, run, damaged), 1, /damaged\/checkpoint\.safetensors: is damaged/);
    assert.equal(existsSync(site), false, 'nothing is written when a run is refused');
    const r = arpix('--web', site, run);
    assert.equal(r.status, 0, r.stderr);
    assert.match(r.stdout, /^exported 1 run as a web page to .* in [\d.]+ s\n {2}runs\/tiny: gated-pixelcnn, weights [\d.]+ MB, 16 test images\n/);
    assert.ok(existsSync(join(site, 'index.html')) && existsSync(join(site, 'runs', 'tiny', 'weights.safetensors')));
    oneLine(arpix('--web', site, run), 1, /already exists; pass --force to replace an earlier web export/);
    assert.equal(arpix('--web', site, run, '--force').status, 0);
    assert.deepEqual(readdirSync(dir).sort(), ['runs', 'site'], 'no temporary folder is left beside it');
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

describe('writeFolder: the export is the whole folder or nothing, never a temporary left beside it', () => {
  test('an error while writing removes the temporary folder and leaves an earlier folder as it was', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'arpix-web-write-'));
    try {
      const site = join(dir, 'site');
      // The second file needs a.txt to be a folder: writing it fails after the first was written.
      await assert.rejects(writeFolder(site, [['a.txt', 'x'], ['a.txt/b.txt', 'y']]), /ENOTDIR|EEXIST/);
      assert.deepEqual(readdirSync(dir), [], 'no folder and no temporary');
      mkdirSync(site);
      writeFileSync(join(site, 'earlier.txt'), 'mine');
      await assert.rejects(writeFolder(site, [['a.txt', 'x'], ['a.txt/b.txt', 'y']]), /ENOTDIR|EEXIST/);
      assert.deepEqual(readdirSync(dir), ['site']);
      assert.deepEqual(readdirSync(site), ['earlier.txt']);
      await writeFolder(site, [['a/b.txt', 'new']]);
      assert.deepEqual(readdirSync(dir), ['site'], 'replaced, with nothing left beside it');
      assert.equal(readFileSync(join(site, 'a', 'b.txt'), 'utf8'), 'new');
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  test('Ctrl-C while writing removes the temporary folder, keeps an earlier folder, and ends the process by the signal', () => {
    const dir = mkdtempSync(join(tmpdir(), 'arpix-web-signal-'));
    try {
      const site = join(dir, 'site');
      mkdirSync(site);
      writeFileSync(join(site, 'earlier.txt'), 'mine');
      // A child writes many files and interrupts itself once its temporary folder exists.
      const script = `
        import { readdirSync } from 'node:fs';
        import { writeFolder } from ${JSON.stringify(new URL('./web.ts', import.meta.url).href)};
        const files = Array.from({ length: 4000 }, (_, i) => ['f/' + i + '.txt', 'x'.repeat(100)]);
        const p = writeFolder(${JSON.stringify(site)}, files);
        while (!readdirSync(${JSON.stringify(dir)}).some((n) => n.includes('.tmp-'))) await new Promise((r) => setImmediate(r));
        process.kill(process.pid, 'SIGINT');
        await p;
        console.log('finished');`;
      const r = spawnSync(process.execPath, ['--import', import.meta.resolve('tsx'), '--input-type=module', '-e', script], { encoding: 'utf8', env: { ...process.env, NODE_NO_WARNINGS: '1' } });
      assert.equal(r.signal, 'SIGINT', `the process ends by the signal (status ${r.status}): ${r.stdout}${r.stderr}`);
      assert.doesNotMatch(r.stdout, /finished/);
      assert.deepEqual(readdirSync(dir), ['site'], 'no temporary folder left');
      assert.deepEqual(readdirSync(site), ['earlier.txt'], 'the earlier folder as it was');
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
