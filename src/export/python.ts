// Finding a Python that can import torch: the one on PATH may not be the system's (pyenv, venvs),
// and Debian's python3-torch lives in /usr/bin/python3's packages. ARPIX_PYTHON overrides.

import { spawnSync } from 'node:child_process';

let cached: string | null | undefined;

/** The first of ARPIX_PYTHON, python3, /usr/bin/python3 that imports torch; null when none does. */
export function findTorchPython(): string | null {
  if (cached !== undefined) return cached;
  cached = null;
  for (const py of [process.env.ARPIX_PYTHON, 'python3', '/usr/bin/python3'].filter((p): p is string => !!p)) {
    if (spawnSync(py, ['-c', 'import torch'], { stdio: 'ignore' }).status === 0) {
      cached = py;
      break;
    }
  }
  return cached;
}
