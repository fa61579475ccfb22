// Running a PyTorch mirror from a suite: find a Python that imports torch, run a script, read its
// JSON lines, say what BLAS it ran on, time it interleaved with arpix and report the ratios.
// Returns null with a reason when PyTorch is not installed.

import { spawn, spawnSync } from 'node:child_process';
import { createInterface } from 'node:readline';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { findTorchPython } from '../src/export/python.js';
import { machine, median, type BenchCase, type Reporter } from './harness.js';

/** The first Python that can import torch, or null (shared with arpix's export tests). */
export { findTorchPython };

/** Runs a mirror script and parses every JSON line it prints. */
export function runPython(python: string, script: string, args: string[], threads: number): Record<string, unknown>[] {
  const env = { ...process.env, OMP_NUM_THREADS: String(threads), OPENBLAS_NUM_THREADS: String(threads) };
  const r = spawnSync(python, [script, ...args], { env, encoding: 'utf8', maxBuffer: 64 << 20 });
  if (r.status !== 0) throw new Error(`${script} failed (exit ${r.status}): ${r.stderr.trim().split('\n').slice(-3).join(' | ')}`);
  return r.stdout.split('\n').filter((l) => l.startsWith('{')).map((l) => JSON.parse(l) as Record<string, unknown>);
}

/** What bench/pytorch/machine.py's blas() says about the library behind PyTorch's float32 products. */
export interface TorchBlas { name: string; openblas: boolean; library: string | null; config: string | null; threads: number | null; gflops: number }

/**
 * Says which BLAS, threads and torch a mirror ran on (from its ready or result line), and warns when
 * its products do not run on OpenBLAS: Debian's python3-torch calls the system libblas.so.3, and
 * the reference BLAS there is ~100× slower, which would make every ratio against it meaningless.
 */
export function noteTorch(reporter: Reporter, info: Record<string, unknown>, what = 'PyTorch'): TorchBlas {
  const blas = info.blas as TorchBlas;
  const lib = `${blas.config ?? blas.library ?? 'no library'}${blas.threads ? `, ${blas.threads} threads` : ''}, sgemm 256² at ${blas.gflops} GFLOP/s`;
  reporter.note(`${what}: torch ${String(info.torch)}, ${String(info.threads)} threads, BLAS ${blas.name} (${lib})${info.formulation ? `; ${String(info.formulation)}` : ''}`);
  if (!blas.openblas) {
    reporter.warn(`PyTorch's matrix products run on ${blas.name} (${blas.library ?? 'no library'}), not OpenBLAS: its matmul-heavy figures (attention, LSTMs, linear layers) are no fair baseline. Install OpenBLAS (Debian: apt-get install libopenblas0-pthread) and rerun.`);
  }
  return blas;
}

/**
 * Whether the mirrors are also timed under bf16 autocast: `--autocast on|off|auto`, else
 * ARPIX_BENCH_AUTOCAST, else auto — on where the CPU multiplies bf16 natively (AMX, or AVX512-BF16,
 * where PyTorch 1.13's oneDNN runs bf16 convolutions and matmuls faster than fp32), which is where a
 * PyTorch user adds the one line. `on` forces it anywhere (oneDNN emulates bf16 on plain AVX-512 and
 * refuses bf16 convolutions on AVX2; a variant that fails is skipped and said so).
 */
export function autocast(reporter: Reporter, args: readonly string[]): boolean {
  const mode = option(args, '--autocast', process.env.ARPIX_BENCH_AUTOCAST ?? 'auto');
  if (!['on', 'off', 'auto'].includes(mode)) throw new Error(`--autocast must be on, off or auto, got '${mode}'`);
  const native = machine().isa.find((f) => f === 'amx_bf16' || f === 'avx512_bf16');
  const on = mode === 'auto' ? native !== undefined : mode === 'on';
  const why = mode !== 'auto' ? `asked (--autocast ${mode})` : native ? `the CPU has ${native}` : 'the CPU has neither amx_bf16 nor avx512_bf16; --autocast on times it anyway';
  reporter.note(`PyTorch bf16 autocast timings: ${on ? 'on' : 'off'} (${why})`);
  return on;
}

/** A mirror variant: a precision (fp32, or bf16 under autocast) and, for convolutions, a memory format. */
export interface MirrorVariant { name: string; precision: 'fp32' | 'bf16' }

/** bench/pytorch/mirror_bench.py serving one model's training steps, to interleave with arpix's. */
export interface Mirror {
  readonly variants: MirrorVariant[];
  readonly blas: TorchBlas;
  /** Seconds of one run of `steps` training steps of a variant. */
  run(variant: string): Promise<number>;
  close(): void;
}

/** A model config in a temporary file, for a mirror script's --config. */
function configFile(config: unknown): { path: string; dispose: () => void } {
  const dir = mkdtempSync(join(tmpdir(), 'arpix-bench-'));
  const path = join(dir, 'config.json');
  writeFileSync(path, JSON.stringify(config));
  return { path, dispose: () => rmSync(dir, { recursive: true, force: true }) };
}

/**
 * Starts the PyTorch mirror of a resolved model config (bench/pytorch/mirror_bench.py serve: the
 * fastest formulation in bench/pytorch/fast_mirrors.py, checked against python/arpix_torch's on
 * start) with the same batch, steps and threads, in fp32 and, when `autocast`, bf16; waits for its
 * warm-up and notes what it runs on. Null (noted) when PyTorch is not installed.
 */
export async function startMirror(
  reporter: Reporter, config: unknown, o: { batch: number; steps: number; threads: number; autocast: boolean },
): Promise<Mirror | null> {
  const python = findTorchPython();
  if (python === null) {
    reporter.note('PyTorch is not installed (apt-get install python3-torch): no PyTorch comparison');
    return null;
  }
  const cfg = configFile(config);
  const precisions = o.autocast ? 'fp32,bf16' : 'fp32';
  const server = await startServe(python, mirrorScript('mirror_bench.py'), [
    'serve', '--config', cfg.path, '--threads', String(o.threads), '--batch', String(o.batch), '--steps', String(o.steps), '--precisions', precisions,
  ], o.threads, cfg.dispose);
  const blas = noteTorch(reporter, server.ready, `PyTorch mirror of ${(config as { kind: string }).kind}`);
  for (const s of server.ready.skipped as { name: string; reason: string }[]) reporter.note(`PyTorch mirror: variant '${s.name}' skipped: ${s.reason}`);
  return {
    variants: server.ready.variants as MirrorVariant[],
    blas,
    run: async (variant) => seconds(await server.request(variant)),
    close: server.close,
  };
}

/**
 * The precisions arpix's training is timed in: `--precision fp32,bf16` (or ARPIX_BENCH_PRECISION),
 * by default fp32 and, where train.precision=bf16 would compute in bf16 on this machine, bf16 too.
 * Call after the suite has set OMP_NUM_THREADS (it loads the addon).
 */
export async function arpixPrecisions(reporter: Reporter, args: readonly string[]): Promise<('fp32' | 'bf16')[]> {
  const { choosePrecision } = await import('../src/train/precision.js');
  const here = choosePrecision('bf16');
  const given = option(args, '--precision', process.env.ARPIX_BENCH_PRECISION ?? '');
  const list = given === '' ? (here.precision === 'bf16' ? ['fp32', 'bf16'] : ['fp32']) : given.split(',');
  for (const p of list) if (p !== 'fp32' && p !== 'bf16') throw new Error(`--precision takes fp32 and/or bf16, got '${p}'`);
  reporter.note(`arpix timed in ${list.join(' and ')}${given === '' ? ` (bf16: ${here.reason})` : ' (asked)'}; train.precision=auto picks ${choosePrecision('auto').precision} here`);
  return list as ('fp32' | 'bf16')[];
}

/** One timed run per precision: run() inside withPrecision, each warmed up once. */
export async function inPrecisions(run: () => number, precisions: readonly ('fp32' | 'bf16')[]): Promise<Record<string, () => number>> {
  const { withPrecision } = await import('../src/ops/precision.js');
  const runs = Object.fromEntries(precisions.map((p) => [p, () => withPrecision(p, run)]));
  for (const r of Object.values(runs)) r();
  return runs;
}

/** arpix's seconds (per precision, or under '' for a single run) and each mirror variant's, round by round. */
export interface Rounds { arpix: Record<string, number[]>; torch: Record<string, number[]> }

/**
 * Times arpix (one run, or one per precision) and every mirror variant in `rounds` rounds, which
 * side goes first alternating: the machine's speed drifts by 10-15 % within minutes, so each
 * round's ratio compares runs made seconds apart. The runs should be warmed up already (the mirror
 * warms up as it starts).
 */
export async function interleave(arpixRuns: (() => number) | Record<string, () => number>, mirror: Mirror | null, rounds: number): Promise<Rounds> {
  const runs = typeof arpixRuns === 'function' ? { '': arpixRuns } : arpixRuns;
  const r: Rounds = { arpix: Object.fromEntries(Object.keys(runs).map((k) => [k, []])), torch: Object.fromEntries((mirror?.variants ?? []).map((v) => [v.name, []])) };
  const arpixRound = () => { for (const [k, run] of Object.entries(runs)) r.arpix[k]!.push(run()); };
  const torchRound = async () => { for (const v of mirror?.variants ?? []) r.torch[v.name]!.push(await mirror!.run(v.name)); };
  for (let i = 0; i < Math.max(5, rounds); i++) {
    if (i % 2 === 0) { arpixRound(); await torchRound(); }
    else { await torchRound(); arpixRound(); }
  }
  return r;
}

const spread = (xs: number[]) => ({ median: median(xs), min: Math.min(...xs), max: Math.max(...xs) });

/**
 * Reports interleaved rounds: arpix's rate, each mirror variant's, and the per-round ratio of arpix
 * to the fastest fp32 variant and to the fastest bf16-autocast one (the baselines a PyTorch user
 * would run; the strongest of them is the figure to quote).
 */
export function reportRounds(
  reporter: Reporter,
  o: { row: Omit<BenchCase, 'case' | 'median' | 'min' | 'max' | 'unit'>; name: string; work: number; rounds: Rounds; mirror: Mirror | null; target?: string; extra?: Record<string, string | number>; torchExtra?: Record<string, string | number> },
): void {
  const rate = (secs: number[]) => secs.map((s) => o.work / s);
  const arpixName = (k: string) => (k === '' ? 'arpix' : `arpix ${k}`);
  for (const [k, secs] of Object.entries(o.rounds.arpix)) {
    reporter.add({ ...o.row, case: k === '' ? o.name : `${o.name} (arpix ${k})`, unit: 'images/s', ...spread(rate(secs)), ...(o.extra ? { extra: o.extra } : {}) });
  }
  const { fp32, bf16 } = o.rounds.arpix;
  if (fp32 && bf16) {
    reporter.add({ ...o.row, case: `${o.name}: arpix bf16 / arpix fp32, per round`, system: 'ratio', unit: '×', ...spread(bf16.map((s, i) => fp32[i]! / s)), extra: { target: '≥ 1.8' } });
  }
  if (!o.mirror) return;
  for (const v of o.mirror.variants) {
    reporter.add({ ...o.row, case: `${o.name} (PyTorch mirror, ${v.name})`, system: 'pytorch', unit: 'images/s', ...spread(rate(o.rounds.torch[v.name]!)), extra: { ...o.torchExtra, blas: o.mirror.blas.name } });
  }
  for (const precision of ['fp32', 'bf16'] as const) {
    const names = o.mirror.variants.filter((v) => v.precision === precision).map((v) => v.name);
    if (names.length === 0) continue;
    const best = names.reduce((a, b) => (median(o.rounds.torch[a]!) <= median(o.rounds.torch[b]!) ? a : b));
    const label = precision === 'bf16' ? 'PyTorch bf16 autocast' : 'PyTorch fp32';
    for (const [k, secs] of Object.entries(o.rounds.arpix)) {
      reporter.add({
        ...o.row, case: `${o.name}: ${arpixName(k)} / ${label} (${best}${names.length > 1 ? ', its fastest' : ''}), per round`, system: 'ratio', unit: '×',
        ...spread(secs.map((s, i) => o.rounds.torch[best]![i]! / s)), ...(o.target ? { extra: { target: o.target } } : {}),
      });
    }
  }
}

let samplerNoted = false;

/** Runs the mirror's naive sampler (mirror_bench.py sample) on a config: images/s, or null (noted) without PyTorch. */
export function sampleMirror(
  reporter: Reporter, config: unknown, o: { batch: number; positions: number; runs: number; threads: number },
): { median: number; min: number; max: number } | null {
  const python = findTorchPython();
  if (python === null) {
    reporter.note('PyTorch is not installed (apt-get install python3-torch): no PyTorch comparison');
    return null;
  }
  const cfg = configFile(config);
  try {
    const [r] = runPython(python, mirrorScript('mirror_bench.py'), [
      'sample', '--config', cfg.path, '--threads', String(o.threads), '--batch', String(o.batch), '--positions', String(o.positions), '--runs', String(o.runs),
    ], o.threads);
    if (!samplerNoted) noteTorch(reporter, r!, 'PyTorch naive sampler');
    samplerNoted = true;
    return { median: r!.median as number, min: r!.min as number, max: r!.max as number };
  } finally {
    cfg.dispose();
  }
}

/** A mirror script's serve mode: one request line in, one JSON line out. */
export interface ServeProcess {
  /** Its first JSON line (printed after its warm-up). */
  readonly ready: Record<string, unknown>;
  request(line: string): Promise<Record<string, unknown>>;
  close(): void;
}

function seconds(r: Record<string, unknown>): number {
  if (typeof r.seconds !== 'number') throw new Error(`mirror: ${JSON.stringify(r)}`);
  return r.seconds;
}

/** Runs `script argv…` (under bench/pytorch) in serve mode and waits for its first JSON line. */
export async function startServe(python: string, script: string, argv: string[], threads: number, dispose: () => void = () => {}): Promise<ServeProcess> {
  const env = { ...process.env, OMP_NUM_THREADS: String(threads), OPENBLAS_NUM_THREADS: String(threads) };
  const child = spawn(python, [script, ...argv], { env, stdio: ['pipe', 'pipe', 'pipe'] });
  let stderr = '';
  child.stderr.on('data', (d: Buffer) => { stderr = (stderr + d.toString()).slice(-4000); });
  const lines = createInterface({ input: child.stdout })[Symbol.asyncIterator]();
  const next = async (): Promise<Record<string, unknown>> => {
    for (;;) {
      const { value, done } = await lines.next();
      if (done) throw new Error(`${script} serve ended: ${stderr.trim().split('\n').slice(-3).join(' | ')}`);
      if (value.startsWith('{')) return JSON.parse(value) as Record<string, unknown>;
    }
  };
  const close = () => {
    child.stdin.end();
    dispose();
  };
  let ready: Record<string, unknown>;
  try {
    ready = await next();
  } catch (e) {
    close();
    throw e;
  }
  return {
    ready,
    async request(line) {
      child.stdin.write(`${line}\n`);
      return next();
    },
    close,
  };
}

/** The path of a mirror script under bench/pytorch/. */
export function mirrorScript(name: string): string {
  return fileURLToPath(new URL(`./pytorch/${name}`, import.meta.url));
}

/** `--name value` or `--name=value` from a suite's arguments. */
export function option(args: readonly string[], name: string, dflt: string): string {
  const i = args.findIndex((a) => a === name || a.startsWith(`${name}=`));
  if (i < 0) return dflt;
  return args[i]!.includes('=') ? args[i]!.slice(name.length + 1) : args[i + 1] ?? dflt;
}
