// Running a PyTorch mirror from a suite: find a Python that imports torch, run a script, read its
// JSON lines. Returns null with a reason when PyTorch is not installed.

import { spawnSync } from 'node:child_process';

const candidates = () => [process.env.ARPIX_PYTHON, 'python3', '/usr/bin/python3'].filter((p): p is string => !!p);

/** The first Python that can import torch, or null. */
export function findTorchPython(): string | null {
  for (const py of candidates()) {
    const r = spawnSync(py, ['-c', 'import torch'], { stdio: 'ignore' });
    if (r.status === 0) return py;
  }
  return null;
}

/** Runs a mirror script and parses every JSON line it prints. */
export function runPython(python: string, script: string, args: string[], threads: number): Record<string, unknown>[] {
  const env = { ...process.env, OMP_NUM_THREADS: String(threads), OPENBLAS_NUM_THREADS: String(threads) };
  const r = spawnSync(python, [script, ...args], { env, encoding: 'utf8', maxBuffer: 64 << 20 });
  if (r.status !== 0) throw new Error(`${script} failed (exit ${r.status}): ${r.stderr.trim().split('\n').slice(-3).join(' | ')}`);
  return r.stdout.split('\n').filter((l) => l.startsWith('{')).map((l) => JSON.parse(l) as Record<string, unknown>);
}
