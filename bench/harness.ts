// Shared timing and reporting for `npm run bench -- <suite>`: medians after warm-up, a table on
// stdout, and with --json one JSON object per case. Benchmarks are never run by the tests.

import { readFileSync } from 'node:fs';
import os from 'node:os';

export interface BenchCase {
  suite: string;
  case: string;
  /** The engine or system measured: 'native', 'ts', 'pytorch', 'onednn-best', … */
  system: string;
  batch?: number;
  threads: number;
  /** The figure's unit, e.g. 'GFLOP/s' or 'images/s'. */
  unit: string;
  median: number;
  min: number;
  max: number;
  /** Free-form extra columns (ratio to a baseline, notes). */
  extra?: Record<string, string | number>;
  /** The CPU model and its ISA extensions that decide the figure (filled in by the reporter). */
  cpu?: string;
  isa?: string;
}

export interface Timing {
  /** Seconds per run, after warm-up, in the order measured. */
  seconds: number[];
  median: number;
  min: number;
  max: number;
}

export function median(xs: readonly number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m]! : (s[m - 1]! + s[m]!) / 2;
}

/** Seconds one synchronous call of fn takes. */
export function seconds(fn: () => void): number {
  const t0 = process.hrtime.bigint();
  fn();
  return Number(process.hrtime.bigint() - t0) / 1e9;
}

/** A ratio of two medians has no spread of its own. */
export const same = (v: number) => ({ median: v, min: v, max: v });

/** Times fn: `warmup` discarded runs, then `runs` timed ones (at least 5). */
export async function time(fn: () => unknown, opts: { warmup?: number; runs?: number } = {}): Promise<Timing> {
  const warmup = opts.warmup ?? 2;
  const runs = Math.max(5, opts.runs ?? 7);
  for (let i = 0; i < warmup; i++) await fn();
  const seconds: number[] = [];
  for (let i = 0; i < runs; i++) {
    const t0 = process.hrtime.bigint();
    await fn();
    seconds.push(Number(process.hrtime.bigint() - t0) / 1e9);
  }
  return { seconds, median: median(seconds), min: Math.min(...seconds), max: Math.max(...seconds) };
}

/** Converts a timing into a rate (work / second): median, and min/max swapped accordingly. */
export function rate(t: Timing, workPerRun: number): { median: number; min: number; max: number } {
  return { median: workPerRun / t.median, min: workPerRun / t.max, max: workPerRun / t.min };
}

export function threads(): number {
  const env = Number(process.env.OMP_NUM_THREADS);
  return Number.isInteger(env) && env > 0 ? env : os.availableParallelism();
}

/** The ISA extensions that decide these figures, most capable first (names of /proc/cpuinfo). */
const ISA = ['amx_bf16', 'avx512_bf16', 'avx512f', 'avx2'] as const;

/** The CPU model and which of ISA it has: /proc/cpuinfo on Linux, the model alone elsewhere. */
export function machine(): { cpu: string; isa: string[] } {
  let info = '';
  try {
    info = readFileSync('/proc/cpuinfo', 'utf8');
  } catch {
    // not Linux: no flags to read
  }
  const field = (name: string) => new RegExp(`^${name}\\s*:\\s*(.*)$`, 'm').exec(info)?.[1]?.trim();
  const flags = new Set((field('flags') ?? '').split(/\s+/));
  return { cpu: field('model name') ?? os.cpus()[0]?.model ?? 'unknown CPU', isa: ISA.filter((f) => flags.has(f)) };
}

/** "AMD EPYC, ISA avx512_bf16 avx512f avx2 (no AMX)": the line each suite's output starts with. */
export function machineLine(m = machine()): string {
  return `${m.cpu}, ISA ${m.isa.join(' ') || 'none of ' + ISA.join(' ')}${m.isa.includes('amx_bf16') ? '' : ' (no AMX)'}`;
}

export class Reporter {
  readonly cases: BenchCase[] = [];
  private readonly machine = machine();
  constructor(readonly json: boolean) {}

  add(c: BenchCase): void {
    const rec = { ...c, cpu: this.machine.cpu, isa: this.machine.isa.join(' ') };
    this.cases.push(rec);
    if (this.json) process.stdout.write(JSON.stringify(rec) + '\n');
  }

  /** A note that must not be missed (with --json also on stderr, where a terminal shows it). */
  warn(message: string): void {
    if (this.json) process.stderr.write(`warning: ${message}\n`);
    this.note(`warning: ${message}`);
  }

  note(message: string): void {
    if (this.json) process.stdout.write(JSON.stringify({ note: message }) + '\n');
    else process.stdout.write(`note: ${message}\n`);
  }

  /** Prints the table of everything added (no-op in --json mode). */
  table(): void {
    if (this.json || this.cases.length === 0) return;
    const extraKeys = [...new Set(this.cases.flatMap((c) => Object.keys(c.extra ?? {})))];
    const head = ['suite', 'case', 'system', 'batch', 'threads', 'median', 'min', 'max', 'unit', ...extraKeys];
    const fmt = (x: number) => (x >= 100 ? x.toFixed(0) : x >= 10 ? x.toFixed(1) : x.toPrecision(3));
    const rows = this.cases.map((c) => [
      c.suite, c.case, c.system, c.batch === undefined ? '' : String(c.batch), String(c.threads),
      fmt(c.median), fmt(c.min), fmt(c.max), c.unit,
      ...extraKeys.map((k) => { const v = c.extra?.[k]; return v === undefined ? '' : typeof v === 'number' ? fmt(v) : v; }),
    ]);
    const widths = head.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i]!.length)));
    const line = (r: string[]) => r.map((x, i) => x.padEnd(widths[i]!)).join('  ');
    process.stdout.write(line(head) + '\n' + widths.map((w) => '-'.repeat(w)).join('  ') + '\n');
    for (const r of rows) process.stdout.write(line(r) + '\n');
  }
}

/** What a suite module exports as default. */
export type Suite = (ctx: { reporter: Reporter; args: string[] }) => Promise<void>;

/**
 * Seconds of `steps` training steps on one batch: the loss, backward releasing the graph (as the
 * trainer does, and as PyTorch frees its graph after backward for its allocator), the optimiser step.
 */
export function trainingSteps<X>(model: { loss(x: X): { backward(o?: { releaseGraph?: boolean }): void } }, opt: { zeroGrad(): void; step(): void }, images: X, steps: number): number {
  const t0 = process.hrtime.bigint();
  for (let s = 0; s < steps; s++) {
    const loss = model.loss(images);
    opt.zeroGrad();
    loss.backward({ releaseGraph: true });
    opt.step();
  }
  return Number(process.hrtime.bigint() - t0) / 1e9;
}
