// `npm run bench -- serve [--json] [--preset gated-pixelcnn-fmnist] [--n 16] [--runs 5] [--tiny]`:
// what arpix serve costs on top of sampling. A run of the preset (one training step, so it has a
// checkpoint) is served on 127.0.0.1; then, alternating run by run:
//  - model.sample's own rate in this process (rows/s of a batch of n),
//  - the same request streamed through the server (worker thread, SSE): time to the first row
//    and rows/s as the client receives them, and their ratio to model.sample's rate;
//  - with Debian's chromium present, the time from the click to the first row painted on the
//    page's canvas, as the page measures it.
// And the page's bundle size (esbuild, minified; gzip beside). --tiny shrinks the model to a
// smoke test of the suite.

import { gzipSync } from 'node:zlib';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { median, threads, type Suite } from '../harness.js';
import { option } from '../torch.js';

const same = (v: number) => ({ median: v, min: v, max: v });
const spread = (xs: number[]) => ({ median: median(xs), min: Math.min(...xs), max: Math.max(...xs) });

/** Streams one sample request as the page does; returns seconds to the first row and in all. */
async function streamed(url: string, run: string, n: number, seed: number): Promise<{ first: number; total: number; rows: number }> {
  const { streamEvents } = await import('../../src/serve/page/api.js');
  const t0 = performance.now();
  let first = 0;
  let rows = 0;
  await streamEvents(`${url}api/sample`, { run, n, seed }, (event, data) => {
    if (event === 'row' && rows++ === 0) first = (performance.now() - t0) / 1000;
    if (event === 'error') throw new Error(JSON.stringify(data));
  }, new AbortController().signal);
  return { first, total: (performance.now() - t0) / 1000, rows };
}

const suite: Suite = async ({ reporter, args }) => {
  const preset = option(args, '--preset', 'gated-pixelcnn-fmnist');
  const n = Number(option(args, '--n', '16'));
  const runs = Number(option(args, '--runs', '5'));
  const tiny = args.includes('--tiny');
  const th = threads();

  const { applyOverrides, presetRaw, resolveRunConfig, train } = await import('../../src/train/index.js');
  const { loadCheckpoint } = await import('../../src/io/disk.js');
  const { modelFromCheckpoint } = await import('../../src/models/checkpoint.js');
  const { startServer } = await import('../../src/serve/index.js');
  const { bundlePage } = await import('../../src/serve/assets.js');

  const bundle = await bundlePage();
  const bytes = Buffer.byteLength(bundle);
  reporter.add({ suite: 'serve', case: 'page bundle (app.js, minified, uPlot included)', system: 'esbuild', threads: th, unit: 'kB', ...same(bytes / 1000), extra: { gzip_kB: Number((gzipSync(bundle).length / 1000).toFixed(1)) } });

  const base = mkdtempSync(join(tmpdir(), 'arpix-bench-serve-'));
  const root = join(base, 'runs');
  try {
    const shrink = tiny ? ['model.hiddenChannels=8', 'model.dilations=[1]'] : [];
    const config = resolveRunConfig(applyOverrides(presetRaw(preset), [
      ...shrink, 'train.steps=1', 'train.batchSize=2', 'train.validationSize=8', 'train.validateEvery=1', 'train.checkpointEvery=1', 'train.logEvery=1',
    ]), preset);
    await train(config, { runDir: join(root, preset) });
    const model = modelFromCheckpoint(await loadCheckpoint(join(root, preset, 'checkpoint.safetensors')));
    const h = model.config.height;
    const server = await startServer({ runDirs: [root], port: 0, workers: 1 });
    const run = `runs/${preset}`;
    try {
      // Warm up both paths (the worker loads the checkpoint once).
      model.sample({ n, seed: 0 });
      await streamed(server.url, run, n, 0);
      const direct: number[] = [];
      const stream: number[] = [];
      const first: number[] = [];
      for (let i = 0; i < runs; i++) {
        const t0 = performance.now();
        model.sample({ n, seed: i + 1 });
        direct.push(h / ((performance.now() - t0) / 1000));
        const s = await streamed(server.url, run, n, i + 1);
        if (s.rows !== h) throw new Error(`the stream sent ${s.rows} rows of ${h}`);
        stream.push(h / s.total);
        first.push(s.first * 1000);
      }
      const ratio = median(stream) / median(direct);
      reporter.add({ suite: 'serve', case: `${preset} model.sample (in process)`, system: 'arpix', batch: n, threads: th, unit: 'rows/s', ...spread(direct) });
      reporter.add({ suite: 'serve', case: `${preset} streamed by arpix serve (worker, SSE)`, system: 'arpix serve', batch: n, threads: th, unit: 'rows/s', ...spread(stream), extra: { 'of model.sample': `${(100 * ratio).toFixed(1)}%` } });
      reporter.add({ suite: 'serve', case: `${preset} request to first streamed row`, system: 'arpix serve', batch: n, threads: th, unit: 'ms', ...spread(first) });

      const chromium = '/usr/bin/chromium';
      if (!existsSync(chromium)) {
        reporter.note(`no ${chromium}: the time to the first painted row is not measured (apt-get install -y --no-install-recommends chromium)`);
      } else {
        const { chromium: launcher } = await import('playwright-core');
        const context = await launcher.launchPersistentContext(join(base, 'profile'), {
          executablePath: chromium, headless: true,
          args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync'],
        });
        try {
          const page = context.pages()[0] ?? (await context.newPage());
          await page.goto(`${server.url}#sample`);
          await page.waitForSelector(`#run option[value="${run}"]`, { state: 'attached' });
          await page.selectOption('#run', run);
          await page.fill('#s-n', String(n));
          const painted: number[] = [];
          for (let i = 0; i <= runs; i++) {
            await page.fill('#s-seed', String(i + 1));
            await page.click('#s-go');
            await page.waitForSelector('#s-canvas[data-state="done"]', { timeout: 600_000 });
            if (i > 0) painted.push(Number(await page.getAttribute('#s-canvas', 'data-first-paint-ms'))); // the first is a warm-up
          }
          reporter.add({ suite: 'serve', case: `${preset} click to first painted row (chromium)`, system: 'arpix serve', batch: n, threads: th, unit: 'ms', ...spread(painted) });
        } finally {
          await context.close();
        }
      }
    } finally {
      await server.close();
    }
  } finally {
    rmSync(base, { recursive: true, force: true });
  }
};

export default suite;
