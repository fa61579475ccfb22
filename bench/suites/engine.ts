// `npm run bench -- engine [--json] [options]`: the engine's heavy kernels on native, on ts and on
// PyTorch (Debian's python3-torch, same thread count, bench/pytorch/engine.py), side by side:
// - conv2d 3×3 64→64 on [32, 28, 28, 64]: forward, backward-data, backward-weights, the three
//   added up, and one training step of the layer (forward, then one backward call for both
//   gradients, as each side's training runs it: the figure the targets are about);
// - matmul 1024×1024;
// - one training step of a gated block: x → conv3×3 64→128 → tanh(a)·sigmoid(b) → conv1×1 64→64
//   → + x, forward and sum-loss backward (gradients of weights and input), no optimiser; the gate
//   is arpix's fused kernel (what the models use), and on native also composed from basic ops.
// Ratios are measured in the same run: native / PyTorch (the faster of NCHW and channels_last),
// and native / the fastest oneDNN configuration the addon's probe finds (the ceiling).
//
// Options: --threads N (default OMP_NUM_THREADS, else all cores), --runs N, --warmup N,
// --batch N (32), --matmul N (1024), --ts-batch N (1), --ts-matmul N (256), --python PATH,
// --no-native, --no-ts, --no-pytorch.
//
// The ts backend is plain single-threaded loops, far too slow for the full sizes: it runs at a
// reduced batch (and a smaller matmul) and says so in the case name; GFLOP/s and images/s are
// per-FLOP and per-image, so they stay comparable.

import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { rate, threads as defaultThreads, time, type BenchCase, type Reporter, type Suite, type Timing } from '../harness.js';
import { noteTorch } from '../torch.js';

const SUITE = 'engine';
const C = 64; // channels of every convolution here
const HW = 28;

interface Options {
  threads: number;
  runs: number;
  warmup: number;
  batch: number;
  matmul: number;
  tsBatch: number;
  tsMatmul: number;
  python: string | undefined;
  native: boolean;
  ts: boolean;
  pytorch: boolean;
}

function parseOptions(args: readonly string[]): Options {
  const o: Options = {
    threads: defaultThreads(), runs: 7, warmup: 2, batch: 32, matmul: 1024, tsBatch: 1, tsMatmul: 256,
    python: process.env.ARPIX_PYTHON, native: true, ts: true, pytorch: true,
  };
  const ints: Record<string, keyof Options> = {
    '--threads': 'threads', '--runs': 'runs', '--warmup': 'warmup', '--batch': 'batch',
    '--matmul': 'matmul', '--ts-batch': 'tsBatch', '--ts-matmul': 'tsMatmul',
  };
  for (let i = 0; i < args.length; i++) {
    const a = args[i]!;
    const [flag, inline] = a.includes('=') ? [a.slice(0, a.indexOf('=')), a.slice(a.indexOf('=') + 1)] : [a, undefined];
    const key = ints[flag];
    if (key) {
      const v = Number(inline ?? args[++i]);
      if (!Number.isInteger(v) || v < (key === 'warmup' ? 0 : 1)) throw new Error(`engine bench: ${flag} needs a positive integer, got ${inline ?? args[i]}`);
      (o as unknown as Record<string, number>)[key] = v;
    } else if (flag === '--python') {
      o.python = inline ?? args[++i];
    } else if (flag === '--no-native' || flag === '--no-ts' || flag === '--no-pytorch') {
      o[flag.slice(5) as 'native' | 'ts' | 'pytorch'] = false;
    } else {
      throw new Error(`engine bench: unknown option ${a} (see the header of bench/suites/engine.ts)`);
    }
  }
  return o;
}

// ---- FLOP counts (multiply and add count as two; elementwise work is not credited) -------------

const convFlops = (n: number, cin: number, cout: number, k: number) => 2 * n * HW * HW * cin * cout * k * k;
/** Forward, backward-data and backward-weights of both convolutions of the gated block. */
const gatedStepFlops = (n: number) => 3 * (convFlops(n, C, 2 * C, 3) + convFlops(n, C, C, 1));

// Case names are shared with bench/pytorch/engine.py: results are matched on them.
const convCase = (n: number) => `conv3x3 64→64 [${n},28,28,64]`;
const gatedCase = (n: number) => `gated block train step [${n},28,28,64]`;
const matmulCase = (m: number) => `matmul ${m}×${m}`;
const CONV_PARTS = ['forward', 'backward-data', 'backward-weights'] as const;

/** Three per-part timings as one: the i-th fastest runs added, so median, min and max add up. */
function sumTimings(ts: readonly Timing[]): Timing {
  const sorted = ts.map((t) => [...t.seconds].sort((a, b) => a - b));
  const n = Math.min(...sorted.map((s) => s.length));
  const seconds = Array.from({ length: n }, (_, i) => sorted.reduce((s, x) => s + x[i]!, 0));
  return { seconds, median: ts.reduce((s, t) => s + t.median, 0), min: Math.min(...seconds), max: Math.max(...seconds) };
}

function rateCase(c: string, system: string, batch: number | undefined, threads: number, unit: string, t: Timing, work: number, extra?: BenchCase['extra']): BenchCase {
  return { suite: SUITE, case: c, system, ...(batch === undefined ? {} : { batch }), threads, unit, ...rate(t, work), ...(extra ? { extra } : {}) };
}

// ---- arpix ---------------------------------------------------------------------------------------

type Arpix = typeof import('../../src/index.js');
type Registry = typeof import('../../src/backends/registry.js');

type NativeBackend = import('../../src/backends/native/index.js').NativeBackend;

/** The native backend's own object (threads, the conv probe), or null when it is not built. */
async function nativeExtras(reg: Registry): Promise<NativeBackend | null> {
  const { isNativeBackend } = await import('../../src/backends/native/index.js');
  const nb = reg.nativeBackend();
  return isNativeBackend(nb) ? nb : null;
}

/** Times the engine's cases on one backend; returns the rows (ratios are added later). */
async function measureArpix(ax: Arpix, reg: Registry, system: 'native' | 'ts', o: Options): Promise<BenchCase[]> {
  reg.setBackend(system);
  const reduced = system === 'ts';
  const n = reduced ? o.tsBatch : o.batch;
  const m = reduced ? o.tsMatmul : o.matmul;
  // The ts backend is single-threaded JavaScript whatever the setting.
  const threads = reduced ? 1 : o.threads;
  const timing = reduced ? { warmup: Math.min(o.warmup, 1), runs: 5 } : { warmup: o.warmup, runs: o.runs };
  const tag = reduced ? ' (ts: reduced size)' : '';
  const gen = new ax.Generator(1);
  const rows: BenchCase[] = [];

  // Convolution parts, each as the op layer runs it during training: a fresh output buffer per
  // call, and the weight's version bumped before each use, as an optimiser step would — so native
  // cannot reuse a reordered weight, just as PyTorch reorders it on every call.
  const x = ax.randn([n, HW, HW, C], { generator: gen });
  const w = ax.mul(ax.randn([3, 3, C, C], { generator: gen }), 0.05);
  const dy = ax.randn([n, HW, HW, C], { generator: gen });
  const p = { strideH: 1, strideW: 1, padTop: 1, padLeft: 1, dilationH: 1, dilationW: 1 };
  const K = reg.kernels();
  const parts: Timing[] = [
    await time(() => { w.bumpVersion(); return ax.conv2d(x, w, { padding: 1 }); }, timing),
    await time(() => { w.bumpVersion(); const gx = ax.zeros(x.shape); K.conv2dBackwardData(dy, w, gx, p); return gx; }, timing),
    await time(() => { const gw = ax.zeros(w.shape); K.conv2dBackwardWeights(x, dy, gw, p); return gw; }, timing),
  ];
  const flops = convFlops(n, C, C, 3) / 1e9;
  CONV_PARTS.forEach((part, i) => rows.push(rateCase(`${convCase(n)} ${part}${tag}`, system, n, threads, 'GFLOP/s', parts[i]!, flops)));
  rows.push(rateCase(`${convCase(n)} fwd+bwd${tag}`, system, n, threads, 'GFLOP/s', sumTimings(parts), 3 * flops));
  // One training step of the layer as the op layer runs it: the forward (keeping what the backward
  // can reuse), then one backward call for both gradients. x, w and dy are "new" every step
  // (versions bumped), so nothing carries over from the previous step.
  const { empty } = await import('../../src/ops/core.js');
  const step = await time(() => {
    for (const t of [x, w, dy]) t.bumpVersion();
    const y = empty([n, HW, HW, C]);
    const saved = K.conv2d(x, w, null, y, p, false, true);
    const gx = empty(x.shape);
    const gw = empty(w.shape);
    K.conv2dBackward(x, dy, w, gx, gw, null, p, saved);
    return gw;
  }, timing);
  rows.push(rateCase(`${convCase(n)} training step${tag}`, system, n, threads, 'GFLOP/s', step, 3 * flops));

  // Gated block training step, with the fused gate the models use; on native also with the gate
  // composed from split, tanh, sigmoid and mul (as PyTorch runs it), to show what fusion buys.
  const xg = ax.randn([n, HW, HW, C], { generator: gen }).requireGrad();
  const w1 = ax.mul(ax.randn([3, 3, C, 2 * C], { generator: gen }), 0.05).requireGrad();
  const b1 = ax.zeros([2 * C]).requireGrad();
  const w2 = ax.mul(ax.randn([1, 1, C, C], { generator: gen }), 0.1).requireGrad();
  const b2 = ax.zeros([C]).requireGrad();
  const params = [w1, b1, w2, b2];
  const gates = { fused: ax.gatedActivation, composed: ax.gatedActivationComposed };
  for (const gate of reduced ? (['fused'] as const) : (['fused', 'composed'] as const)) {
    const step = () => {
      for (const t of [...params, xg]) { t.grad = null; t.bumpVersion(); }
      const h = ax.conv2d(xg, w1, { bias: b1, padding: 1 }); // [N, H, W, 2C]
      const gated = gates[gate](h); // tanh(h[..., :C]) · σ(h[..., C:]) → [N, H, W, C]
      const y = ax.add(xg, ax.conv2d(gated, w2, { bias: b2 })); // residual
      ax.sum(y).backward();
    };
    const tg = await time(step, timing);
    const variant = gate === 'composed' ? ', composed gate' : '';
    rows.push(rateCase(`${gatedCase(n)}${variant}${tag}`, system, n, threads, 'images/s', tg, n));
    rows.push(rateCase(`${gatedCase(n)} conv FLOPs${variant}${tag}`, system, n, threads, 'GFLOP/s', tg, gatedStepFlops(n) / 1e9));
  }

  // Matrix product.
  const ma = ax.randn([m, m], { generator: gen });
  const mb = ax.randn([m, m], { generator: gen });
  const tm = await time(() => ax.matmul(ma, mb), timing);
  rows.push(rateCase(`${matmulCase(m)}${tag}`, system, undefined, threads, 'GFLOP/s', tm, (2 * m ** 3) / 1e9));
  return rows;
}

/** The fastest oneDNN configuration for the conv shape, from the addon's probe. */
function measureCeiling(nb: NativeBackend | null, o: Options, reporter: Reporter): BenchCase[] {
  if (typeof nb?.convBenchBest !== 'function') {
    reporter.note('the native addon has no convBenchBest probe: the "% best oneDNN" column is missing');
    return [];
  }
  const r = nb.convBenchBest(o.batch, HW, HW, C, C, 3, Math.max(5, o.runs));
  const flops = convFlops(o.batch, C, C, 3) / 1e9;
  const rows = ([['forward', r.forward], ['backward-data', r.backwardData], ['backward-weights', r.backwardWeights]] as const).map(([part, pr]) => {
    const t: Timing = { seconds: [pr.seconds], median: pr.seconds, min: pr.seconds, max: pr.seconds };
    return rateCase(`${convCase(o.batch)} ${part}`, 'onednn-best', o.batch, o.threads, 'GFLOP/s', t, flops, { config: pr.config });
  });
  const viaAuto = [r.forward, r.backwardData, r.backwardWeights].filter((x) => x.config.includes('auto')).map((x) => x.config);
  if (viaAuto.length > 0) {
    reporter.note(`the oneDNN ceiling includes convolution_auto (${[...new Set(viaAuto)].join(', ')}), which may pick Winograd: it multiplies less than the direct FLOPs credited here, so its GFLOP/s are effective rather than executed (they can exceed the FP32 peak)`);
  }
  const total = r.forward.seconds + r.backwardData.seconds + r.backwardWeights.seconds;
  const tt: Timing = { seconds: [total], median: total, min: total, max: total };
  rows.push(rateCase(`${convCase(o.batch)} fwd+bwd`, 'onednn-best', o.batch, o.threads, 'GFLOP/s', tt, 3 * flops, { config: 'best of each part' }));
  rows.push(rateCase(`${convCase(o.batch)} training step`, 'onednn-best', o.batch, o.threads, 'GFLOP/s', tt, 3 * flops, { config: 'best of each part' }));
  return rows;
}

// ---- PyTorch -------------------------------------------------------------------------------------

/** A Python that can import torch: --python / ARPIX_PYTHON, else python3, else Debian's own. */
function findPython(o: Options): string | null {
  const candidates = o.python ? [o.python] : ['python3', '/usr/bin/python3'];
  for (const py of candidates) {
    const r = spawnSync(py, ['-c', 'import torch'], { stdio: 'ignore' });
    if (r.status === 0) return py;
  }
  return null;
}

function measurePytorch(o: Options, reporter: Reporter): BenchCase[] {
  const py = findPython(o);
  if (!py) {
    reporter.note('PyTorch is not installed (apt-get install python3-torch): PyTorch rows and ratios skipped');
    return [];
  }
  const script = fileURLToPath(new URL('../pytorch/engine.py', import.meta.url));
  const env = { ...process.env, OMP_NUM_THREADS: String(o.threads), OPENBLAS_NUM_THREADS: String(o.threads) };
  const r = spawnSync(py, [script, '--json', '--threads', String(o.threads), '--runs', String(o.runs), '--warmup', String(o.warmup),
    '--batch', String(o.batch), '--matmul', String(o.matmul)], { env, encoding: 'utf8', maxBuffer: 1 << 24 });
  if (r.status !== 0) {
    reporter.note(`PyTorch run failed (${py} ${script}, exit ${r.status}): ${(r.stderr || String(r.error)).trim().split('\n').slice(-3).join(' | ')}`);
    return [];
  }
  const rows: BenchCase[] = [];
  for (const line of r.stdout.split('\n')) {
    if (!line.trim()) continue;
    const rec = JSON.parse(line) as BenchCase | { note: string } | { torch: Record<string, unknown> };
    if ('note' in rec) reporter.note(`pytorch: ${rec.note}`);
    else if ('torch' in rec) noteTorch(reporter, rec.torch);
    else rows.push(rec);
  }
  return rows;
}

// ---- the suite -----------------------------------------------------------------------------------

/** Adds the ratio columns to native rows: vs the faster PyTorch format, vs the oneDNN ceiling. */
function addRatios(rows: BenchCase[]): void {
  const bestOf = (c: string, prefix: string) =>
    rows.filter((r) => r.case === c && r.system.startsWith(prefix)).reduce<BenchCase | null>((b, r) => (b && b.median >= r.median ? b : r), null);
  for (const r of rows) {
    if (r.system !== 'native') continue;
    const torch = bestOf(r.case, 'pytorch');
    const ceiling = bestOf(r.case, 'onednn-best');
    r.extra = {
      ...r.extra,
      ...(torch ? { '×pytorch': r.median / torch.median, 'pytorch fmt': torch.system.startsWith('pytorch/') ? torch.system.slice('pytorch/'.length) : '-' } : {}),
      ...(ceiling ? { '% best oneDNN': (100 * r.median) / ceiling.median } : {}),
    };
  }
}

const engine: Suite = async ({ reporter, args }) => {
  const o = parseOptions(args);
  // OpenMP reads the thread count when the addon is loaded: set it before importing the engine.
  process.env.OMP_NUM_THREADS = String(o.threads);
  const ax = await import('../../src/index.js');
  const reg = await import('../../src/backends/registry.js');
  const nb = await nativeExtras(reg);
  nb?.setThreads(o.threads);

  const rows: BenchCase[] = [];
  if (o.native && reg.nativeAvailable()) {
    rows.push(...(await measureArpix(ax, reg, 'native', o)));
    const used = nb?.threads();
    if (used !== undefined && used !== o.threads) reporter.note(`native runs on ${used} threads, not the ${o.threads} asked for`);
    rows.push(...measureCeiling(nb, o, reporter));
  } else if (o.native) {
    reporter.note('native backend not built (npm run build:native): native rows, ratios and the oneDNN ceiling skipped');
  }
  if (o.ts) rows.push(...(await measureArpix(ax, reg, 'ts', o)));
  if (o.pytorch) rows.push(...measurePytorch(o, reporter));

  addRatios(rows);
  // Group by case (in the order first seen), systems in a fixed order inside each.
  const order = ['native', 'onednn-best', 'pytorch/nchw', 'pytorch/channels_last', 'pytorch', 'ts'];
  const group = (r: BenchCase) => r.case.replace(' (ts: reduced size)', '').replace(/\[\d+,/, '[N,').replace(/matmul \d+×\d+/, 'matmul');
  const cases = [...new Set(rows.map(group))];
  const key = (r: BenchCase) => [cases.indexOf(group(r)), order.indexOf(r.system)];
  rows.sort((a, b) => { const [ca, sa] = key(a); const [cb, sb] = key(b); return ca! - cb! || sa! - sb!; });
  for (const r of rows) reporter.add(r);
  noteTargets(rows, o, reporter);
};

/**
 * The targets for native convolution forward+backward, stated against this run: on the
 * training-step row, where each side runs the layer's forward and backward as its training does
 * (arpix's forward keeps its blocked copy of x for the weight gradient; PyTorch's autograd asks one
 * convolution_backward for both gradients).
 */
function noteTargets(rows: readonly BenchCase[], o: Options, reporter: Reporter): void {
  const r = rows.find((x) => x.system === 'native' && x.case === `${convCase(o.batch)} training step`);
  if (!r) return;
  const vsTorch = r.extra?.['×pytorch'];
  const vsBest = r.extra?.['% best oneDNN'];
  const fmt = (v: string | number | undefined, unit: string, goal: number) =>
    typeof v === 'number' ? `${v.toFixed(2)}${unit} (${v >= goal ? 'met' : 'not met'})` : 'not measured';
  reporter.note(`targets, conv3x3 forward+backward (training step) on native: ≥ 1.5× PyTorch → ${fmt(vsTorch, '×', 1.5)}; ≥ 60 % of the best oneDNN configuration → ${fmt(vsBest, ' %', 60)}`);
}

export default engine;
