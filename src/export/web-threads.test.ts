/// <reference lib="dom" />
// The WebAssembly kernels on threads in an exported page, in chromium: served cross-origin isolated
// (COOP and COEP), the page's training worker runs the threads module with min(cores, 4) threads —
// its record says so — and its losses are Node's on the wasm backend bit for bit; served plainly,
// the same page trains on one thread and its worker says why.

import assert from 'node:assert/strict';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import type { Server } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import '../backends/node.js';
import { wasmModulePath } from '../backends/wasm/node.js';
import { decodeCheckpoint } from '../io/checkpoint.js';
import { saveCheckpoint } from '../io/disk.js';
import { FAMILIES } from '../models/families.js';
import { onBackend as on } from '../testing/backend.js';
import { launchChromium, serveFolder, skipWithoutChromium } from '../testing/static-site.js';
import { loadRunCheckpoint, resolveRunConfig } from '../train/index.js';
import { validatedModel } from '../train/validate.js';
import type { PageConfig } from '../web/page-config.js';
import { unpackTrainingImages } from '../web/train-data.js';
import type { TrainRecord } from '../web/train-worker.js';
import { PageTrainer } from '../web/trainer.js';
import { initialCheckpoint } from './export.js';
import { exportWeb } from './web.js';

type Browser = import('playwright-core').Browser;
type Page = import('playwright-core').Page;

const skip = skipWithoutChromium || (existsSync(wasmModulePath(true)) ? false : 'the wasm threads module is not built: run `npm run build:wasm`');
const STEPS = 8;

let base: string;
let site: string;
let browser: Browser;
const servers: Server[] = [];

/** Trains STEPS steps of the exported run on WebAssembly in a page served isolated or not; the training worker's record and the ready note. */
async function trainIn(isolated: boolean): Promise<{ record: TrainRecord; cores: number; isolated: boolean }> {
  const { url, server } = await serveFolder(site, isolated);
  servers.push(server);
  const page: Page = await browser.newPage();
  try {
    await page.goto(`${url}#train`);
    await page.waitForSelector('#run option', { state: 'attached' });
    await page.selectOption('#run', 'binary');
    await page.selectOption('#t-backend', 'wasm');
    await page.fill('#t-steps', String(STEPS));
    await page.fill('#t-every', '0');
    await page.click('#t-go');
    await page.waitForSelector('#t-chart[data-state="done"]', { timeout: 120_000 });
    // (not the kernels' helper workers: they sit in the pool's loop and never answer)
    for (const w of page.workers().filter((w) => !w.url().endsWith('/wasm-helper.js'))) {
      const record = await w.evaluate(() => (globalThis as { arpixTrain?: unknown }).arpixTrain) as TrainRecord | undefined;
      if (record) return { record, cores: await page.evaluate(() => navigator.hardwareConcurrency), isolated: await page.evaluate(() => crossOriginIsolated) };
    }
    throw new Error('no worker of the page holds a training record');
  } finally {
    await page.close();
  }
}

describe('the WebAssembly kernels on threads in an exported page, in chromium', { skip }, () => {
  before(async () => {
    base = mkdtempSync(join(tmpdir(), 'arpix-web-threads-'));
    const tiny = FAMILIES.find((f) => f.kind === 'pixelcnn')!.tiny(28, 28);
    const config = resolveRunConfig({
      model: { kind: 'pixelcnn', height: 28, width: 28, channels: 1, likelihood: { kind: 'bernoulli' }, ...tiny },
      dataset: { name: 'fashion-mnist', binarize: 'dynamic' },
      train: { steps: 100, batchSize: 8, lr: 0.01, ema: 0.9, gradClip: 1, seed: 5, schedule: { warmup: 0, decay: 'constant' } },
    });
    const dir = join(base, 'runs', 'binary');
    mkdirSync(dir, { recursive: true });
    await saveCheckpoint(join(dir, 'checkpoint.safetensors'), initialCheckpoint(config));
    site = join(base, 'site');
    await exportWeb([{ dir, ckpt: await loadRunCheckpoint(dir) }], site, { testImages: 2, trainImages: 300 });
    browser = await launchChromium();
  });

  after(async () => {
    await browser?.close();
    for (const s of servers) s.close();
    if (base) rmSync(base, { recursive: true, force: true });
  });

  test('isolated, the training worker runs on the page\'s threads and its losses are Node\'s on wasm; plain, on one thread', async (t) => {
    assert.ok(existsSync(join(site, 'arpix-threads.wasm')) && existsSync(join(site, 'wasm-helper.js')), 'the export wrote the threads module and its helper');
    const threaded = await trainIn(true);
    assert.equal(threaded.isolated, true);
    assert.equal(threaded.record.backend, 'wasm');
    assert.equal(threaded.record.threads, Math.min(threaded.cores, 4), `the training worker's threads on ${threaded.cores} cores`);
    assert.equal(threaded.record.losses.length, STEPS);

    const plain = await trainIn(false);
    assert.equal(plain.isolated, false);
    assert.equal(plain.record.backend, 'wasm');
    assert.equal(plain.record.threads, 1, 'a page that is not cross-origin isolated trains on one thread');

    const config = JSON.parse(/<script id="arpix-config" type="application\/json">(.*?)<\/script>/.exec(readFileSync(join(site, 'index.html'), 'utf8'))![1]!) as PageConfig;
    const run = config.runs[0]!;
    const data = unpackTrainingImages(readFileSync(join(site, run.training!.file)), run.training!);
    const weights = readFileSync(join(site, run.weights.file));
    const losses = on('wasm', () => {
      const trainer = new PageTrainer(validatedModel(decodeCheckpoint(weights, 'weights')).ckpt.config, data);
      return Array.from({ length: STEPS }, () => trainer.next().loss);
    });
    assert.deepEqual(threaded.record.losses, losses, 'the threaded page\'s losses are Node\'s');
    assert.deepEqual(plain.record.losses, losses, 'the one-thread page\'s losses are Node\'s');
    const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[xs.length >> 1]!;
    t.diagnostic(`median step: ${(median(threaded.record.stepSeconds.slice(1)) * 1000).toFixed(1)} ms on ${threaded.record.threads} threads, ${(median(plain.record.stepSeconds.slice(1)) * 1000).toFixed(1)} ms on 1`);
  });
});
