// Running a PyTorch mirror from a suite: find a Python that imports torch, run a script, read its
// JSON lines, say what BLAS it ran on. Returns null with a reason when PyTorch is not installed.

import { spawn, spawnSync } from 'node:child_process';
import { createInterface } from 'node:readline';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { findTorchPython } from '../src/export/python.js';
import type { Reporter } from './harness.js';

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
 * Runs bench/pytorch/gated_bench.py in `mode` on a model config (written to a temporary file),
 * or returns null after noting why when PyTorch is not installed.
 */
export function runGatedMirror(
  reporter: { note(m: string): void }, config: unknown, mode: 'sample', args: string[], threads: number, script = 'gated_bench.py',
): Record<string, unknown>[] | null {
  const m = gatedMirror(reporter, config, script);
  if (m === null) return null;
  try {
    return runPython(m.python, m.script, [mode, '--config', m.cfgFile, '--threads', String(threads), ...args], threads);
  } finally {
    m.dispose();
  }
}

/** A Python with torch, the bench script (gated_bench.py or pixelrnn_bench.py), and the config in a temporary file; null (noted) without PyTorch. */
function gatedMirror(reporter: { note(m: string): void }, config: unknown, scriptName: string) {
  const python = findTorchPython();
  if (python === null) {
    reporter.note('PyTorch is not installed (apt-get install python3-torch): no PyTorch comparison');
    return null;
  }
  const dir = mkdtempSync(join(tmpdir(), 'arpix-bench-'));
  const cfgFile = join(dir, 'config.json');
  writeFileSync(cfgFile, JSON.stringify(config));
  const script = mirrorScript(scriptName);
  return { python, script, cfgFile, dispose: () => rmSync(dir, { recursive: true, force: true }) };
}

/** The PyTorch mirror's training runs on request (gated_bench.py serve), to interleave with arpix's. */
export interface MirrorServer {
  /** Seconds of one run of the mirror's training steps in `format`. */
  run(format: string): Promise<number>;
  close(): void;
}

/**
 * Starts gated_bench.py serve on a model config and waits for its warm-up, or returns null after
 * noting why when PyTorch is not installed. The process idles on its input between requests.
 */
export async function startGatedMirror(
  reporter: { note(m: string): void }, config: unknown, args: string[], threads: number, script = 'gated_bench.py',
): Promise<MirrorServer | null> {
  const m = gatedMirror(reporter, config, script);
  if (m === null) return null;
  const server = await startServe(m.python, m.script, ['serve', '--config', m.cfgFile, '--threads', String(threads), ...args], threads, m.dispose);
  return { run: async (format) => seconds(await server.request(format)), close: server.close };
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
