/// <reference lib="dom" />
// arpix serve in a real browser: Debian's chromium driven by playwright-core (no browser download)
// against `arpix serve` on tiny trained runs. Asserts what a person sees — the runs table, a curve
// that gains points as training appends metrics, sample canvases whose pixels are model.sample's
// images for the seed, completions that keep the kept rows, a heat map whose colours and total are
// the model's bits, a compressed file downloaded that decodes back to the image shown — and takes
// a screenshot of each panel. Nothing the page asks for fails, and
// its console shows no error. The README's screenshots come from
// trained runs: ARPIX_SCREENSHOT_RUNS=<folder of runs> ARPIX_SCREENSHOTS=docs/screenshots, with a
// run whose folder name starts with ARPIX_SCREENSHOT_RUN (default pixelcnn-binary) shown in the
// panels.

import assert from 'node:assert/strict';
import { appendFileSync, cpSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { encode as encodePng } from 'fast-png';
import { compressValues, decompressBytes } from '../codec/compress.js';
import { registeredBackend } from '../backends/registry.js';
import { loadCheckpoint } from '../io/disk.js';
import type { AutoregressiveModel } from '../models/core/model.js';
import { noGrad } from '../ops/index.js';
import { Tensor } from '../tensor/tensor.js';
import { trainTinyRuns, type TinyRuns } from '../testing/tiny-runs.js';
import { loadEvalData, modelFromCheckpoint, transformFor, type RunConfig } from '../train/index.js';
import { fixedLookupTable } from '../data/transforms.js';
import { startServer, type Server } from './index.js';
import { colormap, gridLayout, levelToByte } from './page/draw.js';

const CHROMIUM = '/usr/bin/chromium';
const skip = existsSync(CHROMIUM) ? false : `chromium is not installed at ${CHROMIUM}: apt-get install -y --no-install-recommends chromium (CI installs it)`;

type Page = import('playwright-core').Page;
type Context = import('playwright-core').BrowserContext;

let runs: TinyRuns;
let server: Server;
let context: Context;
let page: Page;
let profile: string;
const pageErrors: string[] = [];
/** Console errors, and every request the page made that failed or was answered 4xx/5xx. */
const consoleErrors: string[] = [];
let model: AutoregressiveModel;
let config: RunConfig;
const shotRuns = process.env.ARPIX_SCREENSHOT_RUNS ? resolve(process.env.ARPIX_SCREENSHOT_RUNS) : null;
const shots = shotRuns && process.env.ARPIX_SCREENSHOTS ? resolve(process.env.ARPIX_SCREENSHOTS) : null;
const GATED = 'runs/gated-pixelcnn-fmnist';

async function screenshot(name: string, dir = join(profile, 'shots')): Promise<void> {
  mkdirSync(dir, { recursive: true });
  await page.waitForTimeout(150); // let the last paint and the chart settle
  await page.screenshot({ path: join(dir, `${name}.png`), fullPage: true });
}

/** The RGBA pixels of a canvas, read back as the page drew them. */
function canvasPixels(id: string): Promise<{ width: number; height: number; data: number[] }> {
  return page.evaluate((cid) => {
    const c = document.getElementById(cid) as HTMLCanvasElement;
    return { width: c.width, height: c.height, data: Array.from(c.getContext('2d')!.getImageData(0, 0, c.width, c.height).data) };
  }, id);
}

async function testImage(index: number): Promise<number[]> {
  const ds = await loadEvalData(config.dataset, 'test', config.train.validationSize);
  const lut = fixedLookupTable(transformFor(config.dataset));
  return Array.from(ds.images.subarray(index * model.dims, (index + 1) * model.dims), (v) => lut[v]!);
}

describe('arpix serve in chromium', { skip }, () => {
  before(async () => {
    runs = await trainTinyRuns(['gated-pixelcnn-fmnist', 'pixelcnn-binary-fmnist-small'], 6);
    const ckpt = await loadCheckpoint(join(runs.root, 'gated-pixelcnn-fmnist', 'checkpoint.safetensors'));
    model = modelFromCheckpoint(ckpt);
    config = ckpt.meta.config as unknown as RunConfig;
    server = await startServer({ runDirs: [runs.root], port: 0, pollMs: 100 });
    profile = mkdtempSync(join(tmpdir(), 'arpix-chromium-'));
    const { chromium } = await import('playwright-core');
    context = await chromium.launchPersistentContext(join(profile, 'user-data'), {
      executablePath: CHROMIUM,
      headless: true,
      args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync'],
      viewport: { width: 1440, height: 900 },
      deviceScaleFactor: 1,
    });
    page = context.pages()[0] ?? (await context.newPage());
    page.on('pageerror', (e) => pageErrors.push(e.message));
    page.on('console', (m) => { if (m.type() === 'error') consoleErrors.push(`console: ${m.text()}`); });
    page.on('response', (r) => { if (r.status() >= 400) consoleErrors.push(`${r.status()} ${r.url()}`); });
    page.on('requestfailed', (r) => consoleErrors.push(`failed ${r.url()}: ${r.failure()?.errorText}`));
    await page.goto(server.url);
  });

  after(async () => {
    await context?.close();
    await server?.close();
    runs?.cleanup();
    if (profile) rmSync(profile, { recursive: true, force: true });
  });

  test('the runs table lists each run; a curve gains points as the run appends metrics', async () => {
    await page.waitForSelector(`#runs-table tr[data-run="${GATED}"]`);
    const rows = await page.$$eval('#runs-table tbody tr', (trs) => trs.map((tr) => tr.textContent ?? ''));
    assert.equal(rows.length, 2);
    const gated = rows.find((r) => r.includes('gated-pixelcnn-fmnist'))!;
    assert.match(gated, /gated-pixelcnn/);
    assert.match(gated, new RegExp(model.numParameters().toLocaleString('en')));
    await page.waitForFunction(() => Number(document.getElementById('chart-loss')!.dataset.points) === 12);
    const before = await page.evaluate(() => (document.querySelector('#chart-loss canvas') as HTMLCanvasElement).toDataURL());
    const file = join(runs.root, 'gated-pixelcnn-fmnist', 'metrics.jsonl');
    for (let k = 0; k < 4; k++) {
      appendFileSync(file, JSON.stringify({ type: 'train', step: 7 + 3 * k, epoch: 0, loss: 7.5 - 0.8 * k, lr: 1e-3, gradNorm: 1, imagesPerSec: 100, seconds: 2 + k }) + '\n');
      appendFileSync(file, JSON.stringify({ type: 'validation', step: 7 + 3 * k, epoch: 0, bitsPerDim: 7.6 - 0.7 * k, stderr: 0.01, ema: true, seconds: 2 + k }) + '\n');
      await page.waitForFunction((n) => Number(document.getElementById('chart-loss')!.dataset.points) === n, 13 + k);
    }
    const after = await page.evaluate(() => (document.querySelector('#chart-loss canvas') as HTMLCanvasElement).toDataURL());
    assert.notEqual(after, before, 'the chart was redrawn with the new points');
    assert.match(await page.textContent('#loss-caption') ?? '', /16 points · step 16/);
    await screenshot('runs');
  });

  test('sampling paints canvases whose pixels are model.sample\'s images for the seed', async () => {
    await page.click('#tabs button[data-tab="sample"]');
    await page.selectOption('#run', GATED);
    await page.fill('#s-n', '16');
    await page.fill('#s-seed', '5');
    await page.click('#s-go');
    await page.waitForSelector('#s-canvas[data-state="done"]', { timeout: 60_000 });
    const px = await canvasPixels('s-canvas');
    const want = model.sample({ n: 16, seed: 5 });
    const { height: h, width: w } = model.config;
    const grid = gridLayout(16, h, w, 8);
    assert.equal(px.width, grid.width);
    let compared = 0;
    for (let i = 0; i < 16; i++) {
      const [x0, y0] = grid.origin(i);
      for (let y = 0; y < h; y++) {
        for (let x = 0; x < w; x++) {
          const v = levelToByte(want.data[(i * h + y) * w + x]!, 256);
          const o = ((y0 + y) * px.width + x0 + x) * 4;
          assert.deepEqual(px.data.slice(o, o + 4), [v, v, v, 255], `image ${i} pixel (${y}, ${x})`);
          compared++;
        }
      }
    }
    assert.equal(compared, 16 * h * w);
    const first = Number(await page.getAttribute('#s-canvas', 'data-first-paint-ms'));
    assert.ok(first > 0);
    process.stdout.write(`# time from click to first painted row: ${first.toFixed(0)} ms (16 images, tiny model)\n`);
    await screenshot('sample');
  });

  test('completion keeps the kept rows exactly and draws the completions beside the original', async () => {
    await page.click('#tabs button[data-tab="complete"]');
    await page.fill('#c-index', '1');
    await page.dispatchEvent('#c-index', 'change');
    await page.$eval('#c-rows', (el) => { (el as HTMLInputElement).value = '14'; el.dispatchEvent(new Event('input')); });
    await page.fill('#c-samples', '5');
    await page.waitForSelector('#c-source[data-index="1"]');
    await page.click('#c-go');
    await page.waitForSelector('#c-canvas[data-state="done"]', { timeout: 60_000 });
    const original = await testImage(1);
    const px = await canvasPixels('c-canvas');
    const { height: h, width: w } = model.config;
    const grid = gridLayout(7, h, w, 7, 2);
    const at = (cell: number, y: number, x: number) => {
      const [x0, y0] = grid.origin(cell);
      return px.data[((y0 + y) * px.width + x0 + x) * 4]!;
    };
    let changed = 0;
    for (let y = 0; y < h; y++) {
      for (let x = 0; x < w; x++) {
        const v = levelToByte(original[y * w + x]!, 256);
        assert.equal(at(0, y, x), v, `original (${y}, ${x})`);
        for (let k = 2; k < 7; k++) {
          if (y < 14) assert.equal(at(k, y, x), v, `completion ${k - 2} changed kept pixel (${y}, ${x})`);
          else if (at(k, y, x) !== v) changed++;
        }
      }
    }
    assert.ok(changed > 0, 'the completions sampled the hidden rows');
    // The same completions as the library's, for the same seed.
    const images = new Tensor(Int32Array.from(Array.from({ length: 5 }, () => original).flat()), [5, h, w, 1]);
    const want = model.sample({ n: 5, seed: 0, complete: { images, keepRows: 14 } });
    for (let k = 0; k < 5; k++) for (let q = 14 * w; q < h * w; q++) assert.equal(at(k + 2, Math.floor(q / w), q % w), levelToByte(want.data[k * h * w + q]!, 256));
    await screenshot('complete');
  });

  test('the heat map shows −log2 p(x_i | x_<i) of every pixel and its total is the model\'s bits for the image', async () => {
    await page.click('#tabs button[data-tab="bits"]');
    await page.waitForSelector('#b-kpis[data-state="done"]', { timeout: 60_000 });
    const image = new Tensor(Int32Array.from(await testImage(0)), [1, 28, 28, 1]);
    const bits = Array.from(noGrad(() => model.elementLogProb(image)).data, (v) => -v / Math.LN2);
    const total = -noGrad(() => model.logProb(image)).data[0]! / Math.LN2;
    const shown = Number(await page.getAttribute('#b-total', 'data-bits'));
    assert.ok(Math.abs(shown - total) < 1e-3 * total, `page says ${shown} bits, the model ${total}`);
    assert.match(await page.textContent('#b-total') ?? '', new RegExp(`^${total.toFixed(1)} bits`));
    const px = await canvasPixels('b-heat-0');
    const max = Math.max(...bits);
    for (let q = 0; q < 784; q++) {
      const want = colormap(bits[q]! / max);
      for (let k = 0; k < 3; k++) assert.ok(Math.abs(px.data[q * 4 + k]! - want[k]!) <= 2, `pixel ${q}: colour ${px.data.slice(q * 4, q * 4 + 3)} vs ${want}`);
    }
    await screenshot('bits');
  });

  test('the compressor panel downloads the real file of the shown image, which decodes back to it exactly', async () => {
    // The page is on test image 0 of the gated run, whose bits the previous test checked.
    const values = await testImage(0);
    const image = new Tensor(Int32Array.from(values), [1, 28, 28, 1]);
    const total = -noGrad(() => model.logProb(image)).data[0]! / Math.LN2;
    const png = encodePng({ width: 28, height: 28, channels: 1, depth: 8, data: Uint8Array.from(values) }).length;
    // The server offers the modes its workers write: wasm too where its module loaded.
    const modes = registeredBackend('wasm') ? ['native', 'wasm', 'portable'] as const : ['native', 'portable'] as const;
    assert.deepEqual(await page.$$eval('#b-mode option', (os) => os.map((o) => (o as HTMLOptionElement).value)), modes);
    for (const mode of modes) {
      await page.selectOption('#b-mode', mode);
      assert.equal(await page.getAttribute('#b-file', 'data-state'), 'idle', 'a new mode forgets the file');
      await page.click('#b-compress');
      await page.waitForSelector('#b-file[data-state="done"]', { timeout: 120_000 });
      // What arpix compress writes for this image, computed here.
      const want = compressValues(model, image, { mode, block: 1, weights: 'ema', transform: transformFor(config.dataset) }).bytes;
      assert.equal(await page.textContent('#b-download'), `Download the compressed file (${want.length} bytes)`);
      const text = await page.textContent('#b-file') ?? '';
      assert.match(text, /decoded back exactly ✓/);
      assert.match(text, new RegExp(`${want.length} B\\s*the real file: ${((want.length * 8) / 784).toFixed(3)} bits/dim`));
      assert.match(text, new RegExp(`${(total / 8).toFixed(0)} B\\s*the estimate above`));
      const ratio = want.length <= png ? `${(png / want.length).toFixed(2)}× smaller` : `${(want.length / png).toFixed(2)}× larger`;
      assert.match(text, new RegExp(`${png} B\\s*8-bit PNG: the file is ${ratio}`));
      assert.match(text, new RegExp(`${mode} mode`));
      const [download] = await Promise.all([page.waitForEvent('download'), page.click('#b-download')]);
      assert.equal(download.suggestedFilename(), 'gated-pixelcnn-fmnist-test-0.arpz');
      const bytes = new Uint8Array(readFileSync((await download.path())!));
      assert.equal(bytes.length, want.length, 'the download is the size the page says');
      assert.deepEqual(bytes, want, 'and the file arpix compress writes');
      const back = decompressBytes(bytes, download.suggestedFilename(), model);
      assert.equal(back.header.numeric.mode, mode);
      assert.deepEqual(Array.from(back.values.data), values, 'which decodes to the image shown');
      if (mode === 'native') await screenshot('bits-file');
    }
    assert.deepEqual(pageErrors, [], 'the page threw no errors');
  });

  test('the models panel shows the architecture and the receptive field of a clicked pixel', async () => {
    await page.click('#tabs button[data-tab="models"]');
    await page.waitForSelector('#m-canvas[data-pixels]', { timeout: 60_000 });
    assert.match(await page.textContent('#m-kpis') ?? '', new RegExp(model.numParameters().toLocaleString('en')));
    const box = (await page.$('#m-canvas'))!;
    const b = (await box.boundingBox())!;
    await page.evaluate(() => { delete (document.getElementById('m-canvas') as HTMLCanvasElement).dataset.pixels; });
    await page.mouse.click(b.x + (b.width * 20.5) / 28, b.y + (b.height * 18.5) / 28);
    await page.waitForSelector('#m-canvas[data-pixels]');
    assert.match(await page.textContent('#m-stats') ?? '', /pixel \(18, 20\)/);
    assert.deepEqual(pageErrors, [], 'the page threw no errors');
    await screenshot('models');
  });

  test('the page\'s icon is served, and nothing the page asked for failed or logged an error', async () => {
    const icon = await page.evaluate(async () => {
      const href = (document.querySelector('link[rel="icon"]') as HTMLLinkElement).href;
      const r = await fetch(href);
      return { href, status: r.status, type: r.headers.get('content-type'), bytes: (await r.arrayBuffer()).byteLength };
    });
    assert.equal(new URL(icon.href).pathname, '/favicon.ico');
    assert.equal(icon.status, 200);
    assert.equal(icon.type, 'image/x-icon');
    assert.ok(icon.bytes > 22);
    assert.deepEqual(consoleErrors, [], 'no request failed and the console shows no error');
  });

  test('screenshots of every panel on trained runs, for the README', { skip: shots === null ? 'set ARPIX_SCREENSHOT_RUNS and ARPIX_SCREENSHOTS to write them' : false }, async () => {
    const copy = join(profile, 'shot-runs', 'runs');
    cpSync(shotRuns!, copy, { recursive: true });
    const other = await startServer({ runDirs: [copy], port: 0 });
    page = await context.newPage();
    try {
      await page.goto(other.url);
      await page.waitForSelector('#runs-table tbody tr');
      await page.waitForFunction(() => Number(document.getElementById('chart-loss')!.dataset.points) > 0);
      await screenshot('runs', shots!);
      const prefix = `runs/${process.env.ARPIX_SCREENSHOT_RUN ?? 'pixelcnn-binary'}`;
      const id = (await page.$$eval('#run option', (os) => os.map((o) => (o as HTMLOptionElement).value))).find((v) => v.startsWith(prefix))!;
      await page.selectOption('#run', id);
      await page.click('#tabs button[data-tab="sample"]');
      await page.fill('#s-n', '32');
      await page.fill('#s-seed', '1');
      await page.click('#s-go');
      await page.waitForSelector('#s-canvas[data-state="done"]', { timeout: 120_000 });
      await screenshot('sample', shots!);
      await page.click('#tabs button[data-tab="complete"]');
      await page.fill('#c-index', '3');
      await page.dispatchEvent('#c-index', 'change');
      await page.$eval('#c-rows', (el) => { (el as HTMLInputElement).value = '12'; el.dispatchEvent(new Event('input')); });
      await page.waitForSelector('#c-source[data-index="3"]');
      await page.click('#c-go');
      await page.waitForSelector('#c-canvas[data-state="done"]', { timeout: 120_000 });
      await screenshot('complete', shots!);
      await page.click('#tabs button[data-tab="bits"]');
      await page.waitForSelector('#b-kpis[data-state="done"]', { timeout: 60_000 });
      await page.click('#b-compress');
      await page.waitForSelector('#b-file[data-state="done"]', { timeout: 120_000 });
      await screenshot('bits', shots!);
      await page.click('#tabs button[data-tab="models"]');
      await page.waitForSelector('#m-canvas[data-pixels]', { timeout: 60_000 });
      await screenshot('models', shots!);
    } finally {
      await other.close();
    }
  });
});
