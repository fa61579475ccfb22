// `npm run bench -- web [--presets a,b] [--n 16] [--runs 3] [--page-threads K] [--train-steps 4] [--json]`: arpix in a browser page,
// measured in Debian's chromium (headless, driven by playwright-core) on 127.0.0.1.
//  - Cached sampling of `n` images per preset in the page, on the wasm backend in one Web Worker
//    and in K (the batch split between them: samplePart, the same images), and on the ts backend
//    in the same page, against native Node (the oneDNN addon, this process, its OpenMP threads)
//    on the same checkpoint: rounds interleaved, medians.
//  - The time from opening a folder written by `arpix export --web` to its first painted sampled
//    row (the exported page's own `performance` mark), for every preset, and the folder's files
//    as written and gzipped.
//  - Training pixelcnn-binary-fmnist-small in its exported page (the Train panel's worker) on wasm
//    and on ts, against the same trainer in Node on ts (the yardstick), wasm and native.
// Weights are a preset's initial ones after one training step (the speed does not depend on
// them); the runs are kept in ~/.cache/arpix/bench/web/runs.

import { spawnSync } from 'node:child_process';
import { copyFileSync, existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { homedir, tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { gzipSync } from 'node:zlib';
import { build } from 'esbuild';
import { median, same, threads, type Reporter, type Suite } from '../harness.js';
import { option } from '../torch.js';
import { wasmModulePath } from '../../src/backends/wasm/node.js';
import { CHROMIUM, launchChromium, serveFolder } from '../../src/testing/static-site.js';
import { nativeAvailable } from '../../src/backends/registry.js';
import type { PageConfig } from '../../src/web/page-config.js';

type Browser = import('playwright-core').Browser;

const PRESETS = [
  'gated-pixelcnn-fmnist', 'pixelcnn-binary-fmnist-small', 'pixelcnnpp-fmnist-small', 'image-transformer-fmnist-small',
  'image-gpt-fmnist-small', 'row-lstm-fmnist-small', 'diagonal-bilstm-fmnist-small',
];
/** The presets whose page sampling the issue asks to reach a third of native Node's. */
const TARGETED = new Set(['gated-pixelcnn-fmnist', 'row-lstm-fmnist-small', 'image-gpt-fmnist-small']);
const root = fileURLToPath(new URL('../../', import.meta.url));
const MAIN = join(root, 'src/cli/main.ts');


/** A run folder of `preset` after one training step, made once and kept in the cache. */
function runOf(preset: string): string {
  const dir = join(homedir(), '.cache', 'arpix', 'bench', 'web', 'runs', preset);
  if (existsSync(join(dir, 'checkpoint.safetensors'))) return dir;
  rmSync(dir, { recursive: true, force: true });
  mkdirSync(join(dir, '..'), { recursive: true });
  const r = spawnSync(process.execPath, ['--import', 'tsx', MAIN, 'train', '--preset', preset, '--out', dir, '--no-bar', '--train.steps=1', '--train.validateEvery=0', '--train.validationSize=100', '--train.schedule.decay=constant', '--train.schedule.warmup=0'], { cwd: root, encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`training ${preset} for one step failed: ${r.stderr.slice(-500)}`);
  return dir;
}

/** The small preset whose export carries training images: the page trains it. */
const TRAINED = 'pixelcnn-binary-fmnist-small';

/**
 * Training in the exported page (its Train panel, a Web Worker of its own) on wasm and on ts, and
 * the same trainer (src/web/trainer.ts, train.ts's step) in this process on ts, wasm and native:
 * `steps` steps each after one of warm-up, in interleaved rounds, images/s from the median step.
 */
async function trainingFigures(reporter: Reporter, browser: Browser, folder: string, steps: number): Promise<void> {
  const { decodeCheckpoint } = await import('../../src/io/checkpoint.js');
  const { validatedModel } = await import('../../src/train/validate.js');
  const { unpackTrainingImages } = await import('../../src/web/train-data.js');
  const { PageTrainer } = await import('../../src/web/trainer.js');
  const { setBackend } = await import('../../src/backends/registry.js');
  const html = readFileSync(join(folder, 'index.html'), 'utf8');
  const config = JSON.parse(/<script id="arpix-config" type="application\/json">(.*?)<\/script>/.exec(html)![1]!) as PageConfig;
  const run = config.runs[0]!;
  if (!run.training) {
    reporter.warn(`${TRAINED}: the export has no training images (${run.noTraining ?? 'no reason given'}); training is not measured`);
    return;
  }
  const { ckpt } = validatedModel(decodeCheckpoint(readFileSync(join(folder, run.weights.file)), run.weights.file));
  const data = unpackTrainingImages(readFileSync(join(folder, run.training.file)), run.training);
  const batch = ckpt.config.train.batchSize;
  /** Seconds of each of `steps` steps after one of warm-up, on a fresh trainer in this process. */
  const inNode = (backend: 'ts' | 'wasm' | 'native'): number[] => {
    setBackend(backend);
    const trainer = new PageTrainer(ckpt.config, data);
    const out: number[] = [];
    for (let i = 0; i <= steps; i++) {
      const t0 = performance.now();
      trainer.next();
      if (i > 0) out.push((performance.now() - t0) / 1000);
    }
    return out;
  };
  const { url, server } = await serveFolder(folder, false);
  try {
    const page = await browser.newPage({ viewport: { width: 1280, height: 900 } });
    await page.goto(`${url}#train`);
    await page.waitForSelector('#run option', { state: 'attached' });
    /** The same in the page: a fresh model (Start afresh) trained `steps` + 1 steps, the worker's step times. */
    const inPage = async (backend: 'ts' | 'wasm'): Promise<number[]> => {
      await page.selectOption('#t-backend', backend);
      await page.fill('#t-steps', String(steps + 1));
      await page.fill('#t-every', '0');
      const fresh = await page.isVisible('#t-restart') && !(await page.isDisabled('#t-restart'));
      await page.click(fresh ? '#t-restart' : '#t-go');
      await page.waitForSelector('#t-chart[data-state="done"]', { timeout: 600_000 });
      for (const w of page.workers()) {
        const r = await w.evaluate(() => (globalThis as { arpixTrain?: unknown }).arpixTrain) as { backend: string; stepSeconds: number[] } | undefined;
        if (!r) continue;
        if (r.backend !== backend) throw new Error(`the page trained on ${r.backend}, not ${backend}`);
        return r.stepSeconds.slice(-steps);
      }
      throw new Error('no worker of the page holds a training record');
    };
    const rates: Record<string, number[]> = { 'page wasm': [], 'page ts': [], 'Node ts': [], 'Node wasm': [], 'Node native': [] };
    for (let round = 0; round < 2; round++) {
      rates['page wasm']!.push(...await inPage('wasm'));
      rates['page ts']!.push(...await inPage('ts'));
      rates['Node ts']!.push(...inNode('ts'));
      rates['Node wasm']!.push(...inNode('wasm'));
      if (nativeAvailable()) rates['Node native']!.push(...inNode('native'));
    }
    await page.close();
    const nodeTs = batch / median(rates['Node ts']!);
    for (const [system, secs] of Object.entries(rates)) {
      if (secs.length === 0) continue;
      const ips = secs.map((x) => batch / x);
      reporter.add({
        suite: 'web', case: `${TRAINED} training in the page's trainer (batch ${batch})`, system, batch, threads: system === 'Node native' ? threads() : 1, unit: 'images/s',
        median: median(ips), min: Math.min(...ips), max: Math.max(...ips), extra: { 'of Node ts': `${(median(ips) / nodeTs).toFixed(2)}×` },
      });
    }
  } finally {
    server.close();
  }
}

const suite: Suite = async ({ reporter, args }) => {
  const presets = option(args, '--presets', PRESETS.join(',')).split(',');
  const n = Number(option(args, '--n', '16'));
  const runs = Number(option(args, '--runs', '3'));
  const pageThreads = Number(option(args, '--page-threads', String(threads())));
  const trainSteps = Number(option(args, '--train-steps', '4'));
  if (!existsSync(CHROMIUM)) {
    reporter.warn(`no ${CHROMIUM}: nothing is measured (apt-get install -y --no-install-recommends chromium)`);
    return;
  }
  const wasmFile = wasmModulePath();
  if (!existsSync(wasmFile)) {
    reporter.warn('wasm/build/arpix.wasm is missing: run `npm run build:wasm` first');
    return;
  }
  const ax = await import('../../src/index.js');
  await import('../../src/backends/wasm/node.js');
  const { loadCheckpoint } = await import('../../src/io/disk.js');
  const { modelFromCheckpoint } = await import('../../src/models/checkpoint.js');
  if (!ax.nativeAvailable()) reporter.warn('the native backend is not built: the Node figures are on the ts backend');

  const base = mkdtempSync(join(tmpdir(), 'arpix-bench-web-'));
  try {
    // The bench page: bench/web's page and worker bundled for the browser, the .wasm and the checkpoints.
    const site = join(base, 'site');
    await build({ absWorkingDir: root, entryPoints: { page: 'bench/web/page.ts', worker: 'bench/web/worker.ts' }, bundle: true, platform: 'browser', format: 'esm', target: 'es2022', minify: true, outdir: site, logLevel: 'silent' });
    copyFileSync(wasmFile, join(site, 'arpix.wasm'));
    writeFileSync(join(site, 'index.html'), '<!doctype html><meta charset="utf-8"><title>arpix bench</title><script type="module" src="./page.js"></script>\n');
    const runDirs = new Map(presets.map((p) => [p, runOf(p)]));
    for (const [p, dir] of runDirs) copyFileSync(join(dir, 'checkpoint.safetensors'), join(site, `${p}.safetensors`));

    const { server, url } = await serveFolder(site, true);
    const browser = await launchChromium();
    try {
      for (const preset of presets) {
        const page = await browser.newPage();
        await page.goto(url);
        await page.waitForFunction(() => 'bench' in globalThis);
        const call = (req: Record<string, unknown>) => page.evaluate((r) => (globalThis as unknown as { bench: (x: unknown) => Promise<unknown> }).bench(r), req) as Promise<{ seconds: number; sum: number }>;
        await call({ kind: 'load', checkpoint: `${preset}.safetensors`, wasm: 'arpix.wasm' });
        const model = modelFromCheckpoint(await loadCheckpoint(join(runDirs.get(preset)!, 'checkpoint.safetensors')));
        const nodeRun = (backend: 'native' | 'wasm', seed: number): { seconds: number; sum: number } => {
          ax.setBackend(backend);
          const t0 = performance.now();
          const images = model.sample({ n, seed });
          const seconds = (performance.now() - t0) / 1000;
          let sum = 0;
          for (const v of images.data) sum += v;
          return { seconds, sum };
        };
        /** Seconds of one cached sampling of `count` images on the ts backend in this process. */
        const nodeRunTs = (count: number): number => {
          ax.setBackend('ts');
          const t0 = performance.now();
          model.sample({ n: count, seed: 1 });
          return (performance.now() - t0) / 1000;
        };
        // Warm-up of each, then interleaved rounds: the page with one worker and with `pageThreads`
        // (the batch split between them, the same images), Node's native and wasm backends.
        await call({ kind: 'sample', backend: 'wasm', n, seed: 0, threads: 1 });
        await call({ kind: 'sample', backend: 'wasm', n, seed: 0, threads: pageThreads });
        nodeRun('native', 0);
        nodeRun('wasm', 0);
        const page1: number[] = [];
        const pageK: number[] = [];
        const native: number[] = [];
        const nodeWasm: number[] = [];
        for (let i = 1; i <= runs; i++) {
          const one = await call({ kind: 'sample', backend: 'wasm', n, seed: i, threads: 1 });
          const many = await call({ kind: 'sample', backend: 'wasm', n, seed: i, threads: pageThreads });
          const w = nodeRun('wasm', i);
          if (one.sum !== w.sum || many.sum !== w.sum) reporter.warn(`${preset}: the page's images differ from Node's wasm images at seed ${i}`);
          page1.push(n / one.seconds);
          pageK.push(n / many.seconds);
          native.push(n / nodeRun('native', i).seconds);
          nodeWasm.push(n / w.seconds);
        }
        // The ts backend in the same page: one warm-up of one image, one timed run (it is slow).
        await call({ kind: 'sample', backend: 'ts', n: 1, seed: 0, threads: 1 });
        const ts = n / (await call({ kind: 'sample', backend: 'ts', n, seed: 1, threads: 1 })).seconds;
        // And in Node, the same way (Node 20's V8 is older than the page's: the two ts figures differ).
        nodeRunTs(1);
        const tsNode = n / nodeRunTs(n);
        const spread = (xs: number[]) => ({ median: median(xs), min: Math.min(...xs), max: Math.max(...xs) });
        const of = (xs: number[]) => ({
          'of native': `${(median(xs) / median(native)).toFixed(2)}×${TARGETED.has(preset) ? ' (target ≥ 0.33)' : ''}`,
          'of ts (page)': `${(median(xs) / ts).toFixed(1)}× (target ≥ 20)`,
        });
        reporter.add({ suite: 'web', case: `${preset} cached sampling`, system: 'native (Node)', batch: n, threads: threads(), unit: 'images/s', ...spread(native) });
        reporter.add({ suite: 'web', case: `${preset} cached sampling`, system: 'ts (Node)', batch: n, threads: 1, unit: 'images/s', median: tsNode, min: tsNode, max: tsNode });
        reporter.add({ suite: 'web', case: `${preset} cached sampling`, system: 'wasm (Node)', batch: n, threads: 1, unit: 'images/s', ...spread(nodeWasm), extra: { 'of ts (Node)': `${(median(nodeWasm) / tsNode).toFixed(1)}×` } });
        reporter.add({ suite: 'web', case: `${preset} cached sampling`, system: 'ts (page)', batch: n, threads: 1, unit: 'images/s', median: ts, min: ts, max: ts });
        reporter.add({ suite: 'web', case: `${preset} cached sampling`, system: 'wasm (page)', batch: n, threads: 1, unit: 'images/s', ...spread(page1), extra: of(page1) });
        reporter.add({ suite: 'web', case: `${preset} cached sampling`, system: 'wasm (page, workers)', batch: n, threads: pageThreads, unit: 'images/s', ...spread(pageK), extra: of(pageK) });
        await page.close();
      }

      // Opening an exported folder: a fresh browser context each time (nothing cached), from the
      // request of index.html to the first sampled row painted on its canvas.
      for (const preset of presets) {
        const out = join(base, `export-${preset}`);
        const r = spawnSync(process.execPath, ['--import', 'tsx', MAIN, 'export', '--web', out, runDirs.get(preset)!], { cwd: root, encoding: 'utf8' });
        if (r.status !== 0) throw new Error(`arpix export --web ${preset} failed: ${r.stderr.slice(-500)}`);
        // What a page costs to download: each file of the folder, as written and gzipped (level 9).
        for (const file of readdirSync(out, { recursive: true, withFileTypes: true })) {
          if (!file.isFile()) continue;
          const bytes = readFileSync(join(file.parentPath, file.name));
          if (bytes.length < 4096) continue;
          const gz = gzipSync(bytes, { level: 9 }).length;
          const name = join(file.parentPath, file.name).slice(out.length + 1);
          reporter.add({ suite: 'web', case: `${preset} exported ${name}`, system: 'gzip -9', threads: 1, unit: 'KiB', ...same(gz / 1024), extra: { 'as written': `${(bytes.length / 1024).toFixed(0)} KiB` } });
        }
        for (const isolated of [false, true]) {
          const exported = await serveFolder(out, isolated);
          const painted: number[] = [];
          try {
            for (let i = 0; i <= runs; i++) {
              const context = await browser.newContext();
              const page = await context.newPage();
              await page.goto(exported.url);
              await page.waitForFunction(() => performance.getEntriesByName('arpix-first-row').length > 0, undefined, { timeout: 120_000 });
              const ms = await page.evaluate(() => performance.getEntriesByName('arpix-first-row')[0]!.startTime);
              if (i > 0) painted.push(ms); // the first opening warms the machine's file cache
              await context.close();
            }
          } finally {
            exported.server.close();
          }
          reporter.add({
            suite: 'web', case: `${preset} open the exported page → first painted row${isolated ? ' (cross-origin isolated)' : ''}`, system: 'chromium', threads: 1, unit: 'ms',
            median: median(painted), min: Math.min(...painted), max: Math.max(...painted), extra: { target: '< 1000 ms' },
          });
        }
        if (preset === TRAINED) await trainingFigures(reporter, browser, out, trainSteps);
      }
    } finally {
      await browser.close();
      server.close();
    }
  } finally {
    rmSync(base, { recursive: true, force: true });
  }
};

export default suite;
