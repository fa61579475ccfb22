// Image GPT's commands: `arpix palette fit | show` (the k-means colour palette a model's tokens
// refer to) and `arpix probe RUN_DIR` (the linear probe of its hidden states).

import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { encode as encodePng } from 'fast-png';
import { Command, InvalidArgumentError, Option } from 'commander';
import { loadDataset } from '../data/index.js';
import { fitPalette, greyPalette, makePalette, type Palette } from '../likelihoods/index.js';
import { modelFromCheckpoint } from '../models/checkpoint.js';
import { probe, type ProbeLayerResult, type ProbeResult } from '../models/image-gpt/probe.js';
import type { RunConfig } from '../train/index.js';
import { ALLOW_UNVERIFIED, CliError, EXIT, out, readCheckpoint, refuseExisting, writeOut } from './commands.js';
import type { CheckpointPolicy } from '../train/checkpoint.js';
import { GLYPH_H, textWidth } from './font.js';
import { Canvas, niceTicks, tickLabel, type RGB } from './plot.js';

/** The palette file: what `palette fit` writes and `--model.likelihood.colours=@FILE` reads. */
interface PaletteFile {
  k: number;
  channels: number;
  colours: number[];
  fitted?: { dataset: string; seed: number; method: string; inertia: number };
}

function intArg(name: string, min: number) {
  return (v: string): number => {
    const n = Number(v);
    if (!Number.isInteger(n) || n < min) throw new InvalidArgumentError(`${name} must be an integer ≥ ${min}`);
    return n;
  };
}

/** Reads a palette file, or the palette in a checkpoint or run folder. */
async function readPalette(path: string, policy: CheckpointPolicy = {}): Promise<Palette> {
  if (!existsSync(path)) throw new CliError(`${path} does not exist; give a palette .json from \`arpix palette fit\`, or a run folder or checkpoint`, EXIT.usage);
  if (path.endsWith('.json')) {
    const f = JSON.parse(readFileSync(path, 'utf8')) as PaletteFile;
    return makePalette(f.colours, f.channels, f.k);
  }
  const ckpt = await readCheckpoint(path, policy);
  const lik = (ckpt.meta.config as unknown as RunConfig).model.likelihood;
  if (lik.kind === 'palette') return makePalette(lik.colours, (ckpt.meta.config as unknown as RunConfig).model.channels, lik.k);
  if (lik.kind === 'categorical') return greyPalette(lik.levels);
  throw new CliError(`${path} is a model with a ${lik.kind} likelihood, which has no palette`, EXIT.usage);
}

/** Swatches of the palette's colours in rows of 32, in its order (brightness for fitted palettes). */
export function paletteSwatchesPng(p: Palette, size = 16): Uint8Array {
  const cols = Math.min(32, p.k);
  const rows = Math.ceil(p.k / cols);
  const w = cols * size, h = rows * size;
  const buf = new Uint8Array(w * h * 3).fill(255);
  for (let j = 0; j < p.k; j++) {
    const colour = Array.from({ length: 3 }, (_, ch) => p.colours[j * p.channels + (p.channels === 3 ? ch : 0)]!);
    const x0 = (j % cols) * size, y0 = Math.floor(j / cols) * size;
    for (let y = y0; y < y0 + size; y++) for (let x = x0; x < x0 + size; x++) buf.set(colour, (y * w + x) * 3);
  }
  return encodePng({ width: w, height: h, data: buf, channels: 3, depth: 8 });
}

const LAYERS: RGB = [70, 110, 200];
const RAW: RGB = [220, 90, 40];
const AXIS: RGB = [40, 40, 40];
const GRID: RGB = [225, 225, 225];

/** The probe's test accuracy against depth, with the raw-pixel baseline as a horizontal line. */
export function probeCurvePng(r: ProbeResult, title: string): Uint8Array {
  const W = 900, H = 540, left = 80, right = 30, top = 50, bottom = 60;
  const cv = new Canvas(W, H);
  const pw = W - left - right, ph = H - top - bottom;
  const accs = [...r.layers.map((l) => l.testAccuracy), ...(r.raw ? [r.raw.testAccuracy] : [])].map((a) => 100 * a);
  const lo = Math.max(0, Math.min(...accs) - 5), hi = Math.min(100, Math.max(...accs) + 5);
  const maxLayer = Math.max(1, ...r.layers.map((l) => l.layer));
  const X = (l: number) => left + (l / maxLayer) * pw;
  const Y = (a: number) => top + ph - ((a - lo) / (hi - lo || 1)) * ph;
  for (const t of niceTicks(lo, hi)) {
    cv.line(left, Y(t), left + pw, Y(t), GRID);
    cv.text(left - 8 - textWidth(tickLabel(t)), Y(t) - GLYPH_H / 2, tickLabel(t), AXIS);
  }
  for (const l of r.layers) cv.text(X(l.layer) - textWidth(String(l.layer)) / 2, top + ph + 8, String(l.layer), AXIS);
  cv.line(left, top + ph, left + pw, top + ph, AXIS);
  cv.line(left, top, left, top + ph, AXIS);
  cv.text(left + pw / 2 - textWidth('layer') / 2, H - 24, 'layer', AXIS);
  cv.text(12, top - 30, 'test accuracy (%)', AXIS);
  cv.text(left + pw / 2 - textWidth(title, 2) / 2, 12, title, AXIS, 2);
  if (r.raw) cv.line(left, Y(100 * r.raw.testAccuracy), left + pw, Y(100 * r.raw.testAccuracy), RAW, 2);
  const pts = r.layers.map((l) => [X(l.layer), Y(100 * l.testAccuracy)] as const);
  for (let i = 1; i < pts.length; i++) cv.line(pts[i - 1]![0], pts[i - 1]![1], pts[i]![0], pts[i]![1], LAYERS, 2);
  for (const [x, y] of pts) for (let d = -2; d <= 2; d++) cv.line(x - 2, y + d, x + 2, y + d, LAYERS);
  const legend: [string, RGB][] = [['probe on layer', LAYERS], ...(r.raw ? [['raw pixels', RAW] as [string, RGB]] : [])];
  legend.forEach(([label, c], i) => {
    const y = top + ph - 40 + i * 16, x = left + pw - 140;
    cv.line(x, y + 3, x + 20, y + 3, c, 2);
    cv.text(x + 26, y, label, AXIS);
  });
  return encodePng({ width: W, height: H, data: cv.buf, channels: 3, depth: 8 });
}

const pct = (a: number) => `${(100 * a).toFixed(2)}%`;
const line = (name: string, l: ProbeLayerResult) => `${name.padEnd(10)} test ${pct(l.testAccuracy)}   validation ${pct(l.validationAccuracy)}   train ${pct(l.trainAccuracy)}   L2 ${l.l2}   (${l.features} features)`;

export function registerImageGPTCommands(program: Command, setExit: (code: number) => void): void {
  const palette = program.command('palette').description("Image GPT's colour palette: fit one by k-means, or draw one");

  palette.command('fit')
    .description('fit a k-colour palette to the training pixels of a dataset by k-means (k-means++ seeding, seeded)')
    .requiredOption('--dataset <name>', 'a dataset name (cifar10, fashion-mnist, …) or path')
    .option('--k <k>', 'colours (the paper: 512 for RGB)', intArg('--k', 2), 512)
    .option('--grey', 'k evenly spaced grey levels instead of k-means (grey datasets)', false)
    .addOption(new Option('--method <m>', 'k-means iterations').choices(['lloyd', 'minibatch']).default('lloyd'))
    .option('--iterations <n>', 'Lloyd passes or mini-batch steps (default 30 / 300)', intArg('--iterations', 0))
    .option('--sample-pixels <n>', 'pixels sampled from the data to fit on (0: all)', intArg('--sample-pixels', 0), 200000)
    .option('--seed <s>', 'seed of the sample, the seeding and the mini-batches', intArg('--seed', 0), 0)
    .requiredOption('--out <file>', 'the palette .json to write (train with --model.likelihood.colours=@FILE)')
    .option('--force', 'replace an existing --out file', false)
    .action(async (o: { dataset: string; k: number; grey: boolean; method: 'lloyd' | 'minibatch'; iterations?: number; samplePixels: number; seed: number; out: string; force: boolean }) => {
      refuseExisting([o.out], o.force);
      let file: PaletteFile;
      if (o.grey) {
        const p = greyPalette(o.k);
        file = { k: p.k, channels: 1, colours: Array.from(p.colours) };
      } else {
        const ds = await loadDataset(o.dataset, { split: 'train' });
        const started = performance.now();
        const fit = fitPalette(ds.images, ds.shape[3], {
          k: o.k, seed: o.seed, method: o.method, iterations: o.iterations, samplePixels: o.samplePixels,
          onIteration: (i, total, inertia) => process.stderr.write(`k-means ${o.method} ${i}/${total}: mean squared distance ${inertia.toFixed(2)}\n`),
        });
        out(`${o.k} colours fitted on ${ds.name} (${ds.shape[0]} training images) in ${((performance.now() - started) / 1000).toFixed(1)}s: mean squared distance ${fit.inertia.toFixed(2)}`);
        file = { k: o.k, channels: ds.shape[3], colours: Array.from(fit.palette.colours), fitted: { dataset: ds.name, seed: o.seed, method: o.method, inertia: fit.inertia } };
      }
      await writeOut(o.out, JSON.stringify(file) + '\n');
      out(`palette: ${o.out}`);
      setExit(EXIT.ok);
    });

  palette.command('show')
    .description('draw a palette as a PNG of swatches')
    .argument('<palette>', 'a palette .json, or a run folder or checkpoint of an image-gpt model')
    .requiredOption('--out <file>', 'the PNG to write')
    .option('--force', 'replace an existing --out file', false)
    .option('--allow-unverified', ALLOW_UNVERIFIED, false)
    .action(async (path: string, o: { out: string; force: boolean; allowUnverified: boolean }) => {
      refuseExisting([o.out], o.force);
      const p = await readPalette(path, o);
      await writeOut(o.out, paletteSwatchesPng(p));
      out(`${p.k} colours of ${p.channels} channel${p.channels > 1 ? 's' : ''}: ${o.out}`);
      setExit(EXIT.ok);
    });

  program.command('probe')
    .description("linear probe of an image-gpt run: logistic regression on a layer's average-pooled features, against raw pixels")
    .argument('<run-dir>', 'the folder (or checkpoint) of an image-gpt training run')
    .option('--layer <l>', "a layer (1..layers; 0: the embeddings) or 'all' (default: the middle one)")
    .option('--dataset <name>', "labelled data to probe on (default: the run's dataset)")
    .option('--train-images <n>', 'use the first N training images', intArg('--train-images', 10))
    .option('--test-images <n>', 'use the first N test images', intArg('--test-images', 10))
    .option('--bands <k>', "pool k horizontal bands of rows separately, k·d features (default 1: every position averaged, the paper's probe)", intArg('--bands', 1))
    .option('--no-raw', 'skip the raw-pixel baseline')
    .option('--out <file>', "with --layer all: the curve's PNG (default <run-dir>/probe.png)")
    .option('--force', 'replace an existing --out file', false)
    .option('--json', 'print one JSON object', false)
    .option('--allow-unverified', ALLOW_UNVERIFIED, false)
    .action(async (runDir: string, o: { layer?: string; dataset?: string; bands?: number; trainImages?: number; testImages?: number; raw: boolean; out?: string; force: boolean; json: boolean; allowUnverified: boolean }) => {
      const ckpt = await readCheckpoint(runDir, o);
      const config = ckpt.meta.config as unknown as RunConfig;
      if (config.model.kind !== 'image-gpt') throw new CliError(`${runDir} is a ${config.model.kind} run; the probe reads an image-gpt model's hidden states`, EXIT.usage);
      const all = o.layer === 'all';
      let layers: number[] | 'all' | undefined;
      if (all) layers = 'all';
      else if (o.layer !== undefined) {
        const l = Number(o.layer);
        if (!Number.isInteger(l)) throw new CliError(`--layer must be an integer in 0..${config.model.layers} or 'all', got '${o.layer}'`, EXIT.usage);
        layers = [l];
      }
      const png = o.out ?? join(existsSync(join(runDir, 'config.json')) ? runDir : '.', 'probe.png');
      if (all) refuseExisting([png], o.force);
      const name = o.dataset ?? config.dataset.name;
      const model = modelFromCheckpoint(ckpt);
      const data = { train: await loadDataset(name, { split: 'train' }), test: await loadDataset(name, { split: 'test' }) };
      const r = probe(model, data, {
        layers, bands: o.bands, trainImages: o.trainImages, testImages: o.testImages, rawPixels: o.raw,
        onProgress: (what, done, total) => { if (process.stderr.isTTY) process.stderr.write(`\r${what}: ${done}/${total}   `); },
      });
      if (process.stderr.isTTY) process.stderr.write('\n');
      if (o.json) {
        out(JSON.stringify({ dataset: name, step: ckpt.meta.step, ...r }));
      } else {
        out(`linear probe of ${runDir} (step ${ckpt.meta.step}) on ${name}${(o.bands ?? 1) > 1 ? `, features pooled over ${o.bands} bands of rows` : ''}: ${r.trainImages} training images (10% held out to choose the L2 penalty), ${r.testImages} test images`);
        for (const l of r.layers) out(line(`layer ${l.layer}`, l));
        if (r.raw) out(line('raw pixels', r.raw));
        if (r.layers.length > 1) out(`best layer by validation accuracy: ${r.best.layer} (test ${pct(r.best.testAccuracy)})${r.raw ? `, raw pixels ${pct(r.raw.testAccuracy)}` : ''}`);
      }
      if (all) {
        await writeOut(png, probeCurvePng(r, `linear probe on ${name}`));
        if (!o.json) out(`curve: ${png}`);
      }
      setExit(EXIT.ok);
    });
}
