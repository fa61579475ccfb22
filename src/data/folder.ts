// A folder of PNG / JPEG images as a Dataset. Sub-folders are classes (sorted names → 0, 1, …),
// as in torchvision's ImageFolder; a folder without sub-folders is unlabelled. Decoding runs in a
// pool of worker threads. Files that cannot be used are skipped with one warning that counts them
// and names the first few; a folder where nothing can be used is an error.

import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { Worker } from 'node:worker_threads';
import { ArgumentError, FormatError } from '../errors.js';
import { makeDataset, type Dataset } from './dataset.js';
import { decodeChunk, type ChunkReply, type ChunkRequest } from './folder-worker.js';
import type { PrepareOptions } from './decode.js';

const IMAGE_EXT = /\.(png|jpe?g)$/i;
const CHUNK = 64;
const SHOW_SKIPPED = 5;

export interface FolderOptions {
  /** Output side: images are centre-cropped to a square and resized to size×size. Omit to keep
   *  the images' own size, which must then be the same for all (others are skipped). */
  size?: number;
  /** 1 = grey, 3 = RGB (default). */
  channels?: 1 | 3;
  /** Decoding threads; 0 decodes on the calling thread. Default: available cores, at most 4. */
  workers?: number;
  name?: string;
  split?: string;
  /** Receives the skipped-files warning; default prints it to stderr. */
  onWarning?: (message: string) => void;
}

export interface SkippedFile {
  file: string;
  reason: string;
}

export interface FolderDataset extends Dataset {
  readonly skipped: readonly SkippedFile[];
}

interface Listing {
  files: string[];
  labels: Int32Array | null;
  classNames: string[] | null;
  /** Files seen but not used because of where they sit. */
  misplaced: SkippedFile[];
}

function listImages(dir: string): string[] {
  const out: string[] = [];
  const walk = (d: string) => {
    for (const e of fs.readdirSync(d, { withFileTypes: true }).sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0))) {
      if (e.name.startsWith('.')) continue;
      const p = path.join(d, e.name);
      if (e.isDirectory()) walk(p);
      else if (IMAGE_EXT.test(e.name)) out.push(p);
    }
  };
  walk(dir);
  return out;
}

/** Finds the images and, when the folder has class sub-folders, their labels. */
export function scanFolder(dir: string): Listing {
  let entries: fs.Dirent[];
  try {
    entries = fs.readdirSync(dir, { withFileTypes: true });
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    throw new FormatError(dir, code === 'ENOENT' ? 'does not exist' : code === 'ENOTDIR' ? 'is not a folder' : `cannot be listed (${(e as Error).message})`, { cause: e });
  }
  const visible = entries.filter((e) => !e.name.startsWith('.'));
  const rootFiles = visible.filter((e) => e.isFile() && IMAGE_EXT.test(e.name)).map((e) => path.join(dir, e.name)).sort();
  const classDirs = visible.filter((e) => e.isDirectory()).map((e) => e.name).sort();
  const perClass = classDirs.map((c) => listImages(path.join(dir, c)));
  const nonEmpty = classDirs.map((c, i) => ({ c, files: perClass[i] })).filter((x) => x.files.length > 0);
  if (nonEmpty.length === 0) {
    if (rootFiles.length === 0) throw new FormatError(dir, 'holds no PNG or JPEG images (looked for *.png, *.jpg, *.jpeg)');
    return { files: rootFiles, labels: null, classNames: null, misplaced: [] };
  }
  const files = nonEmpty.flatMap((x) => x.files);
  const labels = new Int32Array(files.length);
  let k = 0;
  nonEmpty.forEach((x, label) => { labels.fill(label, k, k + x.files.length); k += x.files.length; });
  const misplaced = rootFiles.map((file) => ({ file, reason: 'sits beside the class folders, so it has no class' }));
  return { files, labels, classNames: nonEmpty.map((x) => x.c), misplaced };
}

function defaultWorkers(): number {
  return Math.max(1, Math.min(4, os.availableParallelism()));
}

/**
 * A worker thread running the module `name` that sits beside the module `base` (an
 * import.meta.url). Built (.js), that is a plain worker. Run from TypeScript through tsx, Node 20
 * does not hand tsx's loader hooks to worker threads, so the worker registers tsx itself before
 * importing the .ts module. The worker's workerData is `data` and `role: name`: a worker module answers
 * messages only in its own role, since other workers may import it too (for its functions).
 */
export function spawnModuleWorker(base: string, name: string, data: Record<string, unknown> = {}): Worker {
  const workerData = { ...data, role: name };
  if (path.extname(fileURLToPath(base)) !== '.ts') return new Worker(new URL(`./${name}.js`, base), { workerData });
  const entry = new URL(`./${name}.ts`, base).href;
  let api: string;
  try {
    api = import.meta.resolve('tsx/esm/api');
  } catch {
    return new Worker(new URL(entry), { workerData }); // a runtime that runs TypeScript by itself
  }
  return new Worker(`import(${JSON.stringify(api)}).then((tsx) => { tsx.register(); return import(${JSON.stringify(entry)}); });`, { eval: true, workerData });
}

interface Task {
  req: ChunkRequest;
  resolve: (r: ChunkReply) => void;
  reject: (e: unknown) => void;
}

/**
 * A pool of decoder workers kept for the life of the process, so only the first folder pays for
 * starting them. Idle workers are unref'd and never keep the process alive; busy ones are ref'd,
 * since a pending decode is all that may be keeping it alive.
 */
class DecoderPool {
  private readonly idle: Worker[] = [];
  private readonly busy = new Map<Worker, Task>();
  private readonly queue: Task[] = [];
  private count = 0;

  decode(req: ChunkRequest, size: number): Promise<ChunkReply> {
    return new Promise((resolve, reject) => {
      this.queue.push({ req, resolve, reject });
      while (this.count < size && this.idle.length < this.queue.length) this.add();
      this.dispatch();
    });
  }

  private add(): void {
    const w = spawnModuleWorker(import.meta.url, 'folder-worker');
    this.count++;
    w.on('message', (r: ChunkReply) => {
      this.busy.get(w)?.resolve(r);
      this.busy.delete(w);
      w.unref();
      this.idle.push(w);
      this.dispatch();
    });
    let dead = false;
    const fail = (e: unknown) => {
      if (dead) return;
      dead = true;
      this.count--;
      const i = this.idle.indexOf(w);
      if (i >= 0) this.idle.splice(i, 1);
      this.busy.get(w)?.reject(e);
      this.busy.delete(w);
    };
    w.on('error', fail);
    w.on('exit', (code) => fail(new Error(`image decoder worker stopped (exit code ${code})`)));
    this.idle.push(w);
  }

  private dispatch(): void {
    while (this.idle.length > 0 && this.queue.length > 0) {
      const w = this.idle.pop()!;
      const task = this.queue.shift()!;
      this.busy.set(w, task);
      w.ref();
      w.postMessage(task.req);
    }
  }
}

let pool: DecoderPool | null = null;

/** Decodes all chunks on the shared pool, at most `workers` at a time. */
function decodeInPool(chunks: ChunkRequest[], workers: number): Promise<ChunkReply[]> {
  pool ??= new DecoderPool();
  const p = pool;
  return Promise.all(chunks.map((c) => p.decode(c, workers)));
}

/** Loads a folder of images; see the file header for the layout it expects. */
export async function loadImageFolder(dir: string, opts: FolderOptions = {}): Promise<FolderDataset> {
  const channels = opts.channels ?? 3;
  if (channels !== 1 && channels !== 3) throw new ArgumentError('loadImageFolder', 'channels', `must be 1 or 3, got ${channels}`);
  if (opts.size !== undefined && (!Number.isInteger(opts.size) || opts.size < 1)) throw new ArgumentError('loadImageFolder', 'size', `must be a positive integer, got ${opts.size}`);
  const listing = scanFolder(dir);
  const prep: PrepareOptions = { size: opts.size ?? null, channels };
  const chunks: ChunkRequest[] = [];
  for (let i = 0; i * CHUNK < listing.files.length; i++) chunks.push({ id: i, files: listing.files.slice(i * CHUNK, (i + 1) * CHUNK), opts: prep });
  const workers = opts.workers ?? defaultWorkers();
  const replies = workers > 0 && chunks.length > 1 ? await decodeInPool(chunks, workers) : chunks.map(decodeChunk);

  // Assemble in file order. With no size given, the most common size is the dataset's, and images
  // of another size are skipped (one odd file must not decide the size of all the others).
  const skipped: SkippedFile[] = [...listing.misplaced];
  const decoded: { fileIndex: number; file: string; width: number; height: number; data: Uint8Array }[] = [];
  replies.forEach((r, ci) => {
    let offset = 0;
    r.items.forEach((item, j) => {
      const file = chunks[ci].files[j];
      if (!item.ok) { skipped.push({ file, reason: item.reason }); return; }
      const bytes = item.width * item.height * item.channels;
      decoded.push({ fileIndex: ci * CHUNK + j, file, width: item.width, height: item.height, data: r.data.subarray(offset, offset + bytes) });
      offset += bytes;
    });
  });
  const [w, h] = opts.size ? [opts.size, opts.size] : mostCommonSize(decoded);
  const keep = decoded.filter((d) => {
    if (d.width === w && d.height === h) return true;
    skipped.push({ file: d.file, reason: `is ${d.width}×${d.height}, most images are ${w}×${h} (pass a size to resize all)` });
    return false;
  });
  const where = path.resolve(dir);
  if (keep.length === 0) {
    throw new FormatError(where, `none of its ${listing.files.length} image files could be used; first: ${formatSkipped(skipped)}`);
  }
  if (skipped.length > 0) {
    const warn = opts.onWarning ?? ((m: string) => process.stderr.write(`warning: ${m}\n`));
    warn(`${where}: skipped ${skipped.length} of ${listing.files.length + listing.misplaced.length} image files: ${formatSkipped(skipped)}`);
  }
  const size = h * w * channels;
  const images = new Uint8Array(keep.length * size);
  const labels = listing.labels ? new Int32Array(keep.length) : null;
  keep.forEach((k, i) => {
    images.set(k.data, i * size);
    if (labels) labels[i] = listing.labels![k.fileIndex];
  });
  const ds = makeDataset({
    name: opts.name ?? path.basename(where),
    split: opts.split ?? 'all',
    images, labels,
    shape: [keep.length, h, w, channels],
    numClasses: listing.classNames?.length,
    classNames: listing.classNames,
    source: where,
  });
  return { ...ds, skipped };
}

function mostCommonSize(images: readonly { width: number; height: number }[]): [number, number] {
  const counts = new Map<string, number>();
  let best: [number, number] = [0, 0];
  let bestCount = 0;
  for (const im of images) {
    const key = `${im.width}x${im.height}`;
    const c = (counts.get(key) ?? 0) + 1;
    counts.set(key, c);
    if (c > bestCount) { bestCount = c; best = [im.width, im.height]; }
  }
  return best;
}

function formatSkipped(skipped: readonly SkippedFile[]): string {
  const shown = skipped.slice(0, SHOW_SKIPPED).map((s) => `${path.basename(s.file)} (${s.reason})`).join('; ');
  return skipped.length > SHOW_SKIPPED ? `${shown}; and ${skipped.length - SHOW_SKIPPED} more` : shown;
}
