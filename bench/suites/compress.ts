// `npm run bench -- compress [--json] [--datasets mnist,fashion-mnist,cifar10] [--limit N]
//   [--codecs png,webp,jxl] [--layouts per-image,tiled] [--jobs 2] [--verify 100] [--refresh] [--no-cache]
//   [--runs mnist=RUN,fashion-mnist=RUN] [--modes native,portable,wasm] [--speed [--batches 1,16] [--rounds 5]]`:
// bits/dim of the test sets (the first --limit images; all 10,000 by default) under the classical
// lossless codecs — PNG by optipng -o7, WebP lossless (cwebp -lossless -z 9 -exact), JPEG XL lossless
// (cjxl -d 0 -e 9), Debian's optipng, webp and libjxl-tools — one file per image and the set tiled
// into one image, each decoded back and compared pixel for pixel (bench/codecs/classical.ts), and
// then arpix's own files (issue #26). At most --jobs encoder processes run at once. Results are
// cached by set, image count, pixel digest and tool version, so a rerun is instant; --refresh
// measures again. A full run of Fashion-MNIST takes tens of minutes, most of it in the tiled
// encodes of optipng and cjxl -e 9; `--limit 1000` takes a few minutes.

import { loadDataset, locateDataset } from '../../src/data/index.js';
import { basename } from 'node:path';
import { option } from '../torch.js';
import { arpixCodecFigures, codecVsSampling } from '../codecs/arpix.js';
import { same, type Reporter, type Suite } from '../harness.js';
import {
  CODEC_NAMES, CODECS, LAYOUTS, benchCacheDir, bestClassical, measureClassical, missingCodecs, shortVersion,
  type ClassicalResult, type CodecName, type ImageSet, type Layout,
} from '../codecs/classical.js';

const DATASETS = ['mnist', 'fashion-mnist', 'cifar10'] as const;

/** The issue's figures for the whole test sets (10,000 images), measured with Debian's tools: per image / tiled. */
const ISSUE_FIGURES: Record<string, Record<CodecName, Record<Layout, number>>> = {
  'mnist': { png: { 'per-image': 2.46, 'tiled': 1.68 }, webp: { 'per-image': 2.02, 'tiled': 1.54 }, jxl: { 'per-image': 1.85, 'tiled': 1.11 } },
  'fashion-mnist': { png: { 'per-image': 4.98, 'tiled': 4.11 }, webp: { 'per-image': 4.49, 'tiled': 3.98 }, jxl: { 'per-image': 3.88, 'tiled': 3.2 } },
};

/** One set the suite measured: the arpix section compares its files with these classical figures. */
interface Measured {
  dataset: string;
  set: ImageSet;
  classical: ClassicalResult[];
}

class UsageError extends Error {}

function list<T extends string>(args: readonly string[], name: string, allowed: readonly T[], dflt: readonly T[]): T[] {
  const raw = option(args, name, dflt.join(','));
  const items = raw.split(',').map((s) => s.trim()).filter((s) => s !== '');
  const bad = items.filter((s) => !(allowed as readonly string[]).includes(s));
  if (items.length === 0 || bad.length > 0) throw new UsageError(`${name} takes a comma-separated list of ${allowed.join(', ')}; got '${raw}'`);
  return items as T[];
}

function count(args: readonly string[], name: string, dflt: number | null, range: [number, number]): number | null {
  const raw = option(args, name, '');
  if (raw === '') return dflt;
  const v = Number(raw);
  if (!Number.isInteger(v) || v < range[0] || v > range[1]) throw new UsageError(`${name} must be a whole number from ${range[0]} to ${range[1]}, got '${raw}'`);
  return v;
}

/** The first `limit` test images of a dataset, or null (and a note) when it is not on this machine. */
async function testSet(reporter: Reporter, name: string, limit: number | null): Promise<ImageSet | null> {
  if (!locateDataset(name)) {
    reporter.note(`${name} is not on this machine (arpix data list says how to get it); its rows are skipped`);
    return null;
  }
  const ds = await loadDataset(name, { split: 'test' });
  const [total, h, w, c] = ds.shape;
  const n = Math.min(limit ?? total, total);
  return { name: `${name} test`, images: ds.images.subarray(0, n * h * w * c), shape: [n, h, w, c] };
}

function report(reporter: Reporter, dataset: string, r: ClassicalResult): void {
  const [n, h, w] = r.shape;
  const issue = ISSUE_FIGURES[dataset]?.[r.codec][r.layout];
  reporter.add({
    suite: 'compress',
    case: `${dataset} test ×${n} ${r.layout}: ${CODECS[r.codec].label}`,
    system: shortVersion(CODECS[r.codec], r.tool),
    threads: r.jobs,
    unit: 'bits/dim',
    ...same(r.bitsPerDim),
    extra: {
      bytes: r.bytes,
      'encode s': r.seconds,
      checked: r.layout === 'tiled' ? `${r.grid![0]}×${r.grid![1]} grid, ${r.grid![1] * w}×${r.grid![0] * h} px` : `${r.verified} files`,
      ...(r.cached ? { from: 'cache' } : {}),
      ...(issue !== undefined ? { 'issue (×10000)': issue } : {}),
    },
  });
}

const suite: Suite = async ({ reporter, args }) => {
  try {
    const datasets = list(args, '--datasets', DATASETS, DATASETS);
    const limit = count(args, '--limit', null, [1, 1_000_000]);
    const jobs = count(args, '--jobs', 2, [1, 2])!;
    const verify = count(args, '--verify', 100, [1, 1_000_000])!;
    const layouts = list(args, '--layouts', LAYOUTS, LAYOUTS);
    let codecs = list(args, '--codecs', CODEC_NAMES, CODEC_NAMES);
    const cacheDir = args.includes('--no-cache') ? null : benchCacheDir();
    const refresh = args.includes('--refresh');

    const missing = await missingCodecs(codecs);
    if (missing.length > 0) {
      reporter.warn(`${missing.map((m) => [m.encoder, m.decoder].filter(Boolean).join('/')).join(', ')} not installed (apt-get install ${missing.map((m) => m.debianPackage).join(' ')}); those codecs' rows are skipped`);
      codecs = codecs.filter((c) => !missing.some((m) => m.name === c));
    }
    reporter.note(`classical codecs: ${jobs} encoder process(es) at once; results cached in ${cacheDir ?? '(no cache: --no-cache)'}${refresh ? ', measured again (--refresh)' : ''}`);

    // ── the classical codecs ─────────────────────────────────────────────────────────────────
    const measured: Measured[] = [];
    for (const dataset of datasets) {
      const set = await testSet(reporter, dataset, limit);
      if (set === null || codecs.length === 0) continue;
      const classical = await measureClassical(set, {
        codecs, layouts, jobs, verify, cacheDir, refresh,
        progress: (line) => process.stderr.write(`compress: ${line}\n`),
      });
      for (const r of classical) report(reporter, dataset, r);
      measured.push({ dataset, set, classical });
    }
    if (limit !== null && limit < 10000) reporter.note(`--limit ${limit}: the issue's figures (last column) are for all 10,000 test images, which tile and compress better`);

    // ── arpix's files (issue #26) ────────────────────────────────────────────────────────────
    // --runs mnist=RUN,fashion-mnist=RUN: each run's model codes the same test images (one file),
    // against its own −log₂ p and the best classical codec per image and tiled; --speed times
    // encoding and decoding against cached sampling at --batches (default 1,16).
    const runs = new Map(option(args, '--runs', '').split(',').filter((s) => s.includes('=')).map((s) => s.split('=', 2) as [string, string]));
    const modes = list(args, '--modes', ['native', 'portable', 'wasm'] as const, ['native']);
    const threads = Number(process.env.OMP_NUM_THREADS) || 2;
    if (runs.size === 0) reporter.note('no --runs dataset=RUN_DIR given: arpix\'s own files are not measured');
    for (const [dataset, run] of runs) {
      const entry = measured.find((m) => m.dataset === dataset);
      for (const mode of modes) {
        const r = await arpixCodecFigures(reporter, { run, name: `${dataset} test ×${entry?.set.shape[0] ?? limit ?? 'all'} arpix (${basename(run)})`, split: 'test', limit: limit ?? undefined, mode, block: 16, threads });
        if (!entry) continue;
        for (const layout of LAYOUTS) {
          const best = bestClassical(entry.classical, layout);
          if (best === null) continue;
          reporter.add({ suite: 'compress', case: `${dataset}: best ${layout} classical (${CODECS[best.codec].label}) / arpix ${mode} file`, system: 'ratio', threads, unit: '×', ...same(best.bitsPerDim / r.bitsPerDim) });
        }
      }
      if (args.includes('--speed')) {
        const batches = option(args, '--batches', '1,16').split(',').map(Number);
        for (const mode of modes) await codecVsSampling(reporter, { run, name: `${dataset} ${basename(run)}`, batches, rounds: Number(option(args, '--rounds', '5')), threads, mode });
      }
    }
  } catch (e) {
    if (!(e instanceof Error)) throw e;
    process.stderr.write(`compress: ${e.message}\n`);
    process.exitCode = e instanceof UsageError ? 2 : 1;
  }
};

export default suite;
