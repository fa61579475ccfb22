/// <reference lib="dom" />
// Training in an exported page (`arpix export --web --train-images`), in chromium: a tiny binary
// PixelCNN exported with its training images trains in the page's own Web Worker — its curve has a
// point per step and held-out figures, its losses are finite, fall, and are the losses the same
// trainer gives in Node on the same backend, step for step (so the page trains as `arpix train`
// does, trainer.test.ts holding the trainer to train.ts); Stop stops it where the worker says, and
// Sample draws from the model being trained what Node draws from it. Bad states are one line: a
// run that cannot train in a page, a page exported without training images, a damaged file.

import assert from 'node:assert/strict';
import { cpSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import type { Server } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import '../backends/node.js';
import type { BackendName } from '../backends/registry.js';
import { decodeCheckpoint } from '../io/checkpoint.js';
import { saveCheckpoint } from '../io/disk.js';
import { FAMILIES } from '../models/families.js';
import { levelToByte, gridLayout } from '../serve/page/draw.js';
import { onBackend as on } from '../testing/backend.js';
import { launchChromium, serveFolder, skipWithoutChromium } from '../testing/static-site.js';
import { loadRunCheckpoint, resolveRunConfig, type RunConfig } from '../train/index.js';
import { validatedModel } from '../train/validate.js';
import type { PageConfig } from '../web/page-config.js';
import { unpackTrainingImages } from '../web/train-data.js';
import type { TrainRecord } from '../web/train-worker.js';
import { PageTrainer } from '../web/trainer.js';
import { initialCheckpoint } from './export.js';
import { exportWeb } from './web.js';

type Page = import('playwright-core').Page;
type Browser = import('playwright-core').Browser;

let base: string;
let site: string;
let browser: Browser;
const servers: Server[] = [];
let binary: RunConfig;

function tinyBinary(): RunConfig {
  const tiny = FAMILIES.find((f) => f.kind === 'pixelcnn')!.tiny(28, 28);
  return resolveRunConfig({
    model: { kind: 'pixelcnn', height: 28, width: 28, channels: 1, likelihood: { kind: 'bernoulli' }, ...tiny },
    dataset: { name: 'fashion-mnist', binarize: 'dynamic' },
    train: { steps: 100, batchSize: 8, lr: 0.01, ema: 0.9, gradClip: 1, seed: 5, schedule: { warmup: 0, decay: 'constant' } },
  });
}

function tinyCategorical(): RunConfig {
  const gated = FAMILIES.find((f) => f.kind === 'gated-pixelcnn')!;
  return resolveRunConfig({ model: { kind: 'gated-pixelcnn', height: 28, width: 28, channels: 1, likelihood: { kind: 'categorical', levels: 256 }, ...gated.tiny(28, 28) }, dataset: { name: 'fashion-mnist' }, train: { steps: 1 } });
}

async function runDir(name: string, config: RunConfig): Promise<{ dir: string; ckpt: Awaited<ReturnType<typeof loadRunCheckpoint>> }> {
  const dir = join(base, 'runs', name);
  mkdirSync(dir, { recursive: true });
  await saveCheckpoint(join(dir, 'checkpoint.safetensors'), initialCheckpoint(config));
  return { dir, ckpt: await loadRunCheckpoint(dir) };
}

function pageConfig(folder: string): PageConfig {
  const html = readFileSync(join(folder, 'index.html'), 'utf8');
  return JSON.parse(/<script id="arpix-config" type="application\/json">(.*?)<\/script>/.exec(html)![1]!) as PageConfig;
}

async function open(folder: string, run: string): Promise<{ page: Page; errors: string[] }> {
  const { url, server } = await serveFolder(folder, false);
  servers.push(server);
  const page = await browser.newPage({ viewport: { width: 1280, height: 900 } });
  const errors: string[] = [];
  page.on('pageerror', (e) => errors.push(e.message));
  await page.goto(`${url}#train`);
  await page.waitForSelector('#run option', { state: 'attached' });
  await page.selectOption('#run', run);
  return { page, errors };
}

/** The training worker's record (the one worker that has one). */
async function record(page: Page): Promise<TrainRecord> {
  for (const w of page.workers()) {
    const r = await w.evaluate(() => (globalThis as { arpixTrain?: unknown }).arpixTrain) as TrainRecord | undefined;
    if (r) return r;
  }
  throw new Error('no worker of the page holds a training record');
}

async function toast(page: Page): Promise<string> {
  await page.waitForSelector('#toast:not([hidden])', { timeout: 30_000 });
  const text = (await page.textContent('#toast')) ?? '';
  await page.evaluate(() => { document.getElementById('toast')!.hidden = true; });
  return text;
}

describe('training in an exported page, in chromium', { skip: skipWithoutChromium }, () => {
  before(async () => {
    base = mkdtempSync(join(tmpdir(), 'arpix-web-train-'));
    binary = tinyBinary();
    const runs = [await runDir('binary', binary), await runDir('categorical', tinyCategorical())];
    site = join(base, 'site');
    await exportWeb(runs, site, { testImages: 2 });
    browser = await launchChromium();
  });

  after(async () => {
    await browser?.close();
    for (const s of servers) s.close();
    if (base) rmSync(base, { recursive: true, force: true });
  });

  test('the export gives training images to the runs that can train in a page, refuses them to one that cannot, and leaves them out at 0', async () => {
    const config = pageConfig(site);
    const [b, c] = config.runs;
    assert.deepEqual([b!.training?.train, b!.training?.heldOut, b!.training?.bytes], [2000, 500, 2500 * 784 / 8]);
    assert.equal(c!.training, null);
    assert.match(c!.noTraining!, /binary-likelihood models only \(this one has 256 levels/);
    const categorical = { dir: join(base, 'runs', 'categorical'), ckpt: await loadRunCheckpoint(join(base, 'runs', 'categorical')) };
    await assert.rejects(exportWeb([categorical], join(base, 'refused'), { trainImages: 10 }), (e: Error) => {
      assert.match(e.message, /categorical cannot be given training images \(--train-images 10\): the page trains binary-likelihood models only .*; leave --train-images out/);
      assert.equal(e.message.split('\n').length, 1);
      return true;
    });
    await assert.rejects(exportWeb([categorical], join(base, 'refused'), { trainImages: -1 }), /--train-images must be an integer in 0\.\.50000, got -1/);
  });

  test('the page trains the run\'s model as Node does, shows its curve and speed, stops when asked, and samples the model being trained', async () => {
    const { page, errors } = await open(site, 'binary');
    const backend = await page.$eval('#t-backend', (el) => (el as HTMLSelectElement).value) as BackendName;
    await page.fill('#t-steps', '12');
    await page.fill('#t-every', '6');
    await page.click('#t-go');
    await page.waitForSelector('#t-chart[data-state="done"]', { timeout: 120_000 });
    assert.equal(await page.getAttribute('#t-chart', 'data-points'), '12');
    assert.equal(await page.getAttribute('#t-chart', 'data-held-out'), '2');
    assert.equal(await page.getAttribute('#t-chart', 'data-backend'), backend);
    assert.ok(Number(await page.getAttribute('#t-stats', 'data-images-per-sec')) > 0, 'the page shows a speed');
    const first = await record(page);
    assert.equal(first.backend, backend);
    assert.equal(first.losses.length, 12);
    assert.ok(first.losses.every(Number.isFinite), `finite losses: ${first.losses}`);
    const mean = (xs: number[]) => xs.reduce((a, b) => a + b, 0) / xs.length;
    assert.ok(mean(first.losses.slice(-4)) < mean(first.losses.slice(0, 4)), `the loss falls: ${first.losses}`);

    // Trained on, then stopped: the page's steps are the trainer's in Node on the exported images, bit for bit.
    await page.fill('#t-steps', '0');
    await page.click('#t-go');
    await page.waitForFunction(() => Number(document.getElementById('t-chart')!.dataset.step) >= 15, null, { timeout: 120_000 });
    await page.click('#t-stop');
    await page.waitForSelector('#t-chart[data-state="stopped"]', { timeout: 60_000 });
    const stopped = await record(page);
    assert.equal(stopped.state, 'stopped');
    assert.ok(stopped.step >= 15);
    assert.equal(stopped.losses.length, stopped.step);
    assert.equal(Number(await page.getAttribute('#t-chart', 'data-points')), stopped.step, 'a point per step, none after the stop');
    const spec = pageConfig(site).runs[0]!.training!;
    const data = unpackTrainingImages(readFileSync(join(site, spec.file)), spec);
    const weights = readFileSync(join(site, pageConfig(site).runs[0]!.weights.file));
    const trainer = on(backend, () => {
      const t = new PageTrainer(validatedModel(decodeCheckpoint(weights, 'weights')).ckpt.config, data);
      const losses: number[] = [];
      for (let k = 0; k < stopped.step; k++) losses.push(t.next().loss);
      assert.deepEqual(stopped.losses, losses, 'the page\'s losses are Node\'s');
      return t;
    });
    // Held out after every 6th step, the stop coming between steps: how many depends on how far the page got before it.
    assert.deepEqual(stopped.heldOut.map((h) => h.step), Array.from({ length: Math.floor(stopped.step / 6) }, (_, i) => 6 * (i + 1)));

    // Sample draws, in the sampling workers, from the model as the stop left it: Node's images of the same weights.
    await page.click('#t-sample');
    await page.waitForSelector('#t-canvas[data-state="done"]', { timeout: 120_000 });
    assert.equal(Number(await page.getAttribute('#t-canvas', 'data-step')), stopped.step);
    const meta = decodeCheckpoint(weights, 'weights').meta;
    const model = validatedModel(decodeCheckpoint(trainer.checkpoint(meta, 0), 'snapshot')).model;
    const want = on(backend, () => model.sample({ n: 8, seed: 0 }));
    const px = await page.evaluate(() => {
      const c = document.getElementById('t-canvas') as HTMLCanvasElement;
      return { width: c.width, data: Array.from(c.getContext('2d')!.getImageData(0, 0, c.width, c.height).data) };
    });
    const grid = gridLayout(8, 28, 28, 8);
    for (let i = 0; i < 8; i++) {
      const [x0, y0] = grid.origin(i);
      for (let q = 0; q < 784; q++) {
        assert.equal(px.data[((y0 + Math.floor(q / 28)) * px.width + x0 + (q % 28)) * 4], levelToByte(want.data[i * 784 + q]!, 2), `sample ${i}, pixel ${q}`);
      }
    }
    assert.deepEqual(errors, [], 'the page threw nothing');
    await page.close();
  });

  test('a run that cannot train in a page, a page without training images and a damaged training file each say one line', async () => {
    const { page, errors } = await open(site, 'categorical');
    assert.match(await page.textContent('#t-note') ?? '', /^run categorical cannot train in a page: the page trains binary-likelihood models only/);
    assert.equal(await page.isDisabled('#t-go'), true);
    await page.close();

    const without = join(base, 'without');
    const binaryRun = { dir: join(base, 'runs', 'binary'), ckpt: await loadRunCheckpoint(join(base, 'runs', 'binary')) };
    await exportWeb([binaryRun], without, { testImages: 2, trainImages: 0 });
    const bare = await open(without, 'binary');
    assert.equal(await bare.page.textContent('#t-note'), 'this page was exported without training images for run binary: export it again with arpix export --web OUT RUN --train-images 2000 (binary-likelihood runs of at most 50,000 parameters)');
    await bare.page.close();

    const damaged = join(base, 'damaged');
    cpSync(site, damaged, { recursive: true });
    const file = join(damaged, pageConfig(site).runs[0]!.training!.file);
    const bytes = readFileSync(file);
    bytes[100] ^= 1;
    writeFileSync(file, bytes);
    const bad = await open(damaged, 'binary');
    await bad.page.click('#t-go');
    const line = await toast(bad.page);
    assert.equal(line, `runs/binary/train-images.bin is damaged: its SHA-256 is not the one the page lists (${bytes.length} bytes fetched); export the page again`);
    assert.equal(await bad.page.getAttribute('#t-chart', 'data-state'), 'error');
    assert.deepEqual([...errors, ...bad.errors], []);
    await bad.page.close();
  });
});
