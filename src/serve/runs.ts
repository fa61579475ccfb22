// The run folders `arpix serve` may read, and the one way a request names a run: an id of the
// form <root>/<folder> (or <root> when a given folder is itself a run), checked segment by
// segment and resolved through the file system's real path, so `..`, absolute paths and symlinks
// that lead outside the given folders are refused before any file is opened.

import { existsSync, openSync, readdirSync, readFileSync, readSync, closeSync, realpathSync, statSync } from 'node:fs';
import { basename, join, sep } from 'node:path';
import { CHECKPOINT_FILE, CONFIG_FILE, METRICS_FILE } from '../train/index.js';
import { ArpixError } from '../errors.js';
import { HttpError } from './errors.js';
import type { RunSummary } from './protocol.js';

export interface RunRoot {
  /** The first segment of the ids of its runs. */
  name: string;
  /** Its real path (symlinks resolved). */
  dir: string;
}

export interface RunLocation {
  id: string;
  /** The run folder's real path, inside one of the roots. */
  dir: string;
}

const ID_MAX = 512;

function isRunDir(dir: string): boolean {
  return [CHECKPOINT_FILE, CONFIG_FILE, METRICS_FILE].some((f) => existsSync(join(dir, f)));
}

function inside(dir: string, root: string): boolean {
  return dir === root || dir.startsWith(root.endsWith(sep) ? root : root + sep);
}

export class RunFolders {
  readonly roots: RunRoot[];

  /** `dirs`: folders of runs, or run folders themselves; each must exist. */
  constructor(dirs: readonly string[]) {
    const used = new Set<string>();
    this.roots = dirs.map((d) => {
      let real: string;
      try {
        real = realpathSync(d);
      } catch {
        throw new ArpixError(`${d} does not exist; give run folders (or a folder of runs, such as runs/)`);
      }
      if (!statSync(real).isDirectory()) throw new ArpixError(`${d} is not a folder; give run folders (or a folder of runs, such as runs/)`);
      let name = basename(real) || 'root';
      for (let k = 2; used.has(name); k++) name = `${basename(real)}-${k}`;
      used.add(name);
      return { name, dir: real };
    });
  }

  /** Every run: a root that is a run itself, else the runs directly inside it; sorted by id. */
  list(): RunLocation[] {
    const runs: RunLocation[] = [];
    for (const root of this.roots) {
      if (isRunDir(root.dir)) {
        runs.push({ id: root.name, dir: root.dir });
        continue;
      }
      let entries: string[];
      try {
        entries = readdirSync(root.dir);
      } catch {
        continue;
      }
      for (const e of entries.sort()) {
        if (e.startsWith('.')) continue;
        try {
          const real = realpathSync(join(root.dir, e));
          if (inside(real, root.dir) && statSync(real).isDirectory() && isRunDir(real)) runs.push({ id: `${root.name}/${e}`, dir: real });
        } catch {
          // A dangling link or a folder that vanished while listing: not a run.
        }
      }
    }
    return runs;
  }

  /** The run an id names; a 4xx error for anything that is not a run inside the roots. */
  resolve(id: unknown): RunLocation {
    if (typeof id !== 'string' || id.length === 0) throw new HttpError(400, 'run is missing: give a run id from /api/runs (such as runs/my-run)');
    if (id.length > ID_MAX) throw new HttpError(400, `run id is ${id.length} characters long; ids from /api/runs are under ${ID_MAX}`);
    if (id.includes('\0') || id.includes('\\')) throw new HttpError(400, 'run id contains a NUL or a backslash; give a run id from /api/runs');
    if (id.startsWith('/')) throw new HttpError(400, `run '${id}' is an absolute path; give a run id from /api/runs (paths on the server are never accepted)`);
    const parts = id.split('/');
    if (parts.some((p) => p === '..' || p === '.' || p === '')) throw new HttpError(400, `run '${id}' contains '..', '.' or an empty segment; give a run id from /api/runs`);
    const root = this.roots.find((r) => r.name === parts[0]);
    if (!root) throw new HttpError(404, `no run '${id}': the served folders are ${this.roots.map((r) => r.name).join(', ')}`);
    let real: string;
    try {
      real = realpathSync(join(root.dir, ...parts.slice(1)));
    } catch {
      throw new HttpError(404, `no run '${id}': it does not exist (see /api/runs)`);
    }
    if (!inside(real, root.dir)) throw new HttpError(403, `run '${id}' leads outside the served folders (a symbolic link?); it is refused`);
    if (!statSync(real).isDirectory() || !isRunDir(real)) throw new HttpError(404, `no run '${id}': that folder holds no ${CHECKPOINT_FILE}, ${CONFIG_FILE} or ${METRICS_FILE}`);
    return { id, dir: real };
  }

  /** The checkpoint of a run, or a 404 naming what to do. */
  checkpoint(id: unknown): { run: RunLocation; file: string } {
    const run = this.resolve(id);
    const file = join(run.dir, CHECKPOINT_FILE);
    if (!existsSync(file)) throw new HttpError(404, `run '${run.id}' has no ${CHECKPOINT_FILE} yet; wait for training to write one`);
    return { run, file };
  }
}

/** The metadata and tensor shapes of a safetensors file, from its header alone. */
function readSafetensorsHeader(file: string): { meta: Record<string, unknown> | null; parameters: number } | null {
  let fd: number | null = null;
  try {
    fd = openSync(file, 'r');
    const len = Buffer.alloc(8);
    if (readSync(fd, len, 0, 8, 0) !== 8) return null;
    const n = Number(len.readBigUInt64LE(0));
    if (n <= 0 || n > 100_000_000) return null;
    const buf = Buffer.alloc(n);
    if (readSync(fd, buf, 0, n, 8) !== n) return null;
    const header = JSON.parse(buf.toString('utf8')) as Record<string, { shape?: number[] } & Record<string, unknown>>;
    let parameters = 0;
    for (const [name, e] of Object.entries(header)) {
      if (name.startsWith('model.') && Array.isArray(e.shape)) parameters += e.shape.reduce((a, b) => a * b, 1);
    }
    const raw = (header.__metadata__ as Record<string, string> | undefined)?.arpix;
    return { meta: raw ? (JSON.parse(raw) as Record<string, unknown>) : null, parameters };
  } catch {
    return null;
  } finally {
    if (fd !== null) closeSync(fd);
  }
}

function readJson(file: string): Record<string, unknown> | null {
  try {
    return JSON.parse(readFileSync(file, 'utf8')) as Record<string, unknown>;
  } catch {
    return null;
  }
}

function lastValidation(file: string): number | null {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch {
    return null;
  }
  const lines = text.split('\n');
  for (let i = lines.length - 1; i >= 0; i--) {
    if (!lines[i]!.includes('"validation"')) continue;
    try {
      const r = JSON.parse(lines[i]!) as { type?: string; bitsPerDim?: number };
      if (r.type === 'validation' && typeof r.bitsPerDim === 'number') return r.bitsPerDim;
    } catch {
      // a half-written last line
    }
  }
  return null;
}

export function summarise(run: RunLocation): RunSummary {
  const ckptFile = join(run.dir, CHECKPOINT_FILE);
  const header = existsSync(ckptFile) ? readSafetensorsHeader(ckptFile) : null;
  const config = (header?.meta?.config as Record<string, unknown> | undefined) ?? readJson(join(run.dir, CONFIG_FILE));
  const model = (config?.model ?? null) as Record<string, unknown> | null;
  const lik = (model?.likelihood ?? null) as { kind?: string; levels?: number } | null;
  const test = readJson(join(run.dir, 'test.json'));
  const metrics = join(run.dir, METRICS_FILE);
  let metricsAge: number | null = null;
  try {
    metricsAge = (Date.now() - statSync(metrics).mtimeMs) / 1000;
  } catch {
    // no metrics yet
  }
  const num = (v: unknown) => (typeof v === 'number' ? v : null);
  return {
    id: run.id,
    preset: typeof config?.preset === 'string' && config.preset !== '' ? config.preset : null,
    kind: typeof model?.kind === 'string' ? model.kind : null,
    height: num(model?.height),
    width: num(model?.width),
    channels: num(model?.channels),
    levels: lik ? (lik.kind === 'bernoulli' ? 2 : lik.levels ?? 256) : null,
    numClasses: num(model?.numClasses) ?? 0,
    parameters: header?.parameters ?? null,
    step: num(header?.meta?.step),
    imagesSeen: num(header?.meta?.imagesSeen),
    hasCheckpoint: header !== null,
    validationBitsPerDim: lastValidation(metrics),
    testBitsPerDim: num((test?.test as { bitsPerDim?: unknown } | undefined)?.bitsPerDim),
    metricsAge,
  };
}
