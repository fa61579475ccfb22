// The classical lossless codecs arpix's compressor is measured against (issue #26): PNG optimised
// by `optipng -o7`, WebP lossless (`cwebp -lossless -z 9 -exact`) and JPEG XL lossless
// (`cjxl -d 0 -e 9`), the tools of Debian's optipng, webp and libjxl-tools packages. For a set of
// uint8 images [N, H, W, C] it gives bits per dimension (file bytes × 8 / N·H·W·C) two ways:
// - per-image: one file per image, the sizes summed — what storing images one by one costs,
//   headers included;
// - tiled: the whole set laid out as one image (rows × cols tiles), which removes the per-file
//   overhead and lets the codec exploit what images share.
// Every figure is checked lossless by decoding back (dwebp, djxl, the project's PNG decoder) and
// comparing pixels: the tiled image always, and an evenly spaced sample of per-image files. A codec
// that changes one pixel value throws. Results are cached as JSON keyed by the set's name, size
// and pixel digest, the codec's command line and its tool's version, because the full runs are
// long (cjxl -e 9 on a 2800×2800 tiling takes minutes).

import { execFile } from 'node:child_process';
import { createHash } from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { encode as encodePng } from 'fast-png';
import { decodeImage, type RawImage } from '../../src/data/decode.js';
import { writeFileAtomicSync } from '../../src/io/atomic.js';

export type CodecName = 'png' | 'webp' | 'jxl';
export type Layout = 'per-image' | 'tiled';

export const CODEC_NAMES: readonly CodecName[] = ['png', 'webp', 'jxl'];
export const LAYOUTS: readonly Layout[] = ['per-image', 'tiled'];

/** One classical codec: how to encode a PNG with it, how to decode back to PNG, where it comes from. */
export interface ClassicalCodec {
  name: CodecName;
  /** How figures name it: 'PNG (optipng -o7)'. */
  label: string;
  /** The Debian package that holds its tools. */
  debianPackage: string;
  encoder: string;
  /** The command that decodes a file back to PNG, or null when the file is a PNG already. */
  decoder: string | null;
  ext: string;
  /** The encoder's options (all of what decides the bytes; part of the cache key). */
  options: readonly string[];
  encodeArgs(input: string, output: string): string[];
  decodeArgs(input: string, output: string): string[];
  versionArgs: readonly string[];
}

export const CODECS: Record<CodecName, ClassicalCodec> = {
  png: {
    name: 'png', label: 'PNG (optipng -o7)', debianPackage: 'optipng', encoder: 'optipng', decoder: null, ext: 'png',
    options: ['-o7'],
    encodeArgs: (input, output) => ['-quiet', '-o7', '-out', output, input],
    decodeArgs: () => [],
    versionArgs: ['--version'],
  },
  webp: {
    name: 'webp', label: 'WebP lossless (cwebp -lossless -z 9 -exact)', debianPackage: 'webp', encoder: 'cwebp', decoder: 'dwebp', ext: 'webp',
    options: ['-lossless', '-z', '9', '-exact'],
    encodeArgs: (input, output) => ['-quiet', '-lossless', '-z', '9', '-exact', input, '-o', output],
    decodeArgs: (input, output) => ['-quiet', input, '-o', output],
    versionArgs: ['-version'],
  },
  jxl: {
    // One thread per encoder: the pool runs `jobs` of them side by side.
    name: 'jxl', label: 'JPEG XL lossless (cjxl -d 0 -e 9)', debianPackage: 'libjxl-tools', encoder: 'cjxl', decoder: 'djxl', ext: 'jxl',
    options: ['-d', '0', '-e', '9'],
    encodeArgs: (input, output) => [input, output, '-d', '0', '-e', '9', '--num_threads=1', '--quiet'],
    decodeArgs: (input, output) => [input, output, '--num_threads=1', '--quiet'],
    versionArgs: ['--version'],
  },
};

/** WebP's limit on either side of an image, which bounds the tiled layout. */
export const WEBP_MAX_SIDE = 16383;

/** A set of images to measure: uint8, [N, H, W, C], channels last, grey (C = 1) or RGB (C = 3). */
export interface ImageSet {
  /** Names the set in messages and in the cache key: 'fashion-mnist test'. */
  name: string;
  images: Uint8Array;
  shape: readonly [n: number, h: number, w: number, c: number];
}

export interface ClassicalResult {
  set: string;
  n: number;
  shape: readonly [number, number, number, number];
  codec: CodecName;
  layout: Layout;
  /** The encoder's version as it prints it: 'cjxl v0.7.0 [AVX3,AVX2,SSE4,SSSE3,Unknown]'. */
  tool: string;
  /** Total bytes of the files written (per-image: the sum over all images). */
  bytes: number;
  bitsPerDim: number;
  /** Wall seconds the encodes took (per-image: the pool of `jobs` processes). */
  seconds: number;
  jobs: number;
  /** Files decoded back and compared pixel for pixel (the tiled layout: its one image). */
  verified: number;
  /** The tiled layout's grid of images, rows × cols. */
  grid?: readonly [rows: number, cols: number];
  /** Read from the cache rather than measured in this run. */
  cached: boolean;
}

export interface MeasureOptions {
  codecs?: readonly CodecName[];
  layouts?: readonly Layout[];
  /** Encoder processes run at once (1 or 2; default 2, the development machine's cores). */
  jobs?: number;
  /** Per-image files decoded back and compared, evenly spaced over the set (default 100). */
  verify?: number;
  /** The folder of cached results, or null to measure without a cache (default: benchCacheDir()). */
  cacheDir?: string | null;
  /** Measure again even when a cached result exists (and replace it). */
  refresh?: boolean;
  /** Called now and then with a line saying how far a long measurement has got. */
  progress?: (line: string) => void;
  /** Seconds one encoder run on one image may take (default 600). */
  imageTimeout?: number;
  /** Seconds one encoder run on the tiled image may take (default 7200). */
  tiledTimeout?: number;
}

/** Where cached results live: the folder beside arpix's dataset cache (ARPIX_CACHE, XDG_CACHE_HOME or ~/.cache). */
export function benchCacheDir(env: NodeJS.ProcessEnv = process.env): string {
  if (env.ARPIX_CACHE) return path.join(env.ARPIX_CACHE, 'bench', 'compress');
  const base = env.XDG_CACHE_HOME || path.join(os.homedir(), '.cache');
  return path.join(base, 'arpix', 'bench', 'compress');
}

// ── tools ────────────────────────────────────────────────────────────────────────────────────

interface Run {
  stdout: string;
  stderr: string;
}

function run(cmd: string, args: readonly string[], timeoutSeconds: number, what: string): Promise<Run> {
  return new Promise((resolve, reject) => {
    execFile(cmd, args, { timeout: timeoutSeconds * 1000, maxBuffer: 1 << 20, encoding: 'utf8' }, (err, stdout, stderr) => {
      if (!err) return resolve({ stdout, stderr });
      const e = err as NodeJS.ErrnoException & { killed?: boolean; code?: number | string };
      const why = e.code === 'ENOENT' ? `${cmd} is not installed`
        : e.killed ? `${cmd} took longer than ${timeoutSeconds} s and was stopped`
          : `${cmd} failed (exit ${String(e.code)}): ${(stderr || stdout).trim().split('\n').slice(-2).join(' | ') || 'no message'}`;
      reject(new Error(`${what}: ${why}`));
    });
  });
}

const versions = new Map<string, string>();

/** The first line an encoder prints for its version, e.g. 'OptiPNG version 0.7.7'; null when it is not installed. */
export async function toolVersion(codec: ClassicalCodec): Promise<string | null> {
  const known = versions.get(codec.encoder);
  if (known !== undefined) return known;
  try {
    const r = await run(codec.encoder, codec.versionArgs, 30, `${codec.encoder} ${codec.versionArgs.join(' ')}`);
    const line = (r.stdout || r.stderr).trim().split('\n')[0]!.trim();
    versions.set(codec.encoder, line);
    return line;
  } catch {
    return null;
  }
}

/** The short version for tables: 'cjxl 0.7.0'. */
export function shortVersion(codec: ClassicalCodec, tool: string): string {
  const v = /\d+\.\d+(?:\.\d+)?/.exec(tool)?.[0];
  return v ? `${codec.encoder} ${v}` : codec.encoder;
}

/** The codecs among `names` whose encoder or decoder is missing, each with the Debian package that has it. */
export async function missingCodecs(names: readonly CodecName[]): Promise<ClassicalCodec[]> {
  const missing: ClassicalCodec[] = [];
  for (const name of names) {
    const codec = CODECS[name];
    const tools = [codec.encoder, ...(codec.decoder ? [codec.decoder] : [])];
    if ((await toolVersion(codec)) === null || tools.some((t) => !onPath(t))) missing.push(codec);
  }
  return missing;
}

function onPath(cmd: string): boolean {
  return (process.env.PATH ?? '').split(path.delimiter).some((dir) => dir !== '' && fs.existsSync(path.join(dir, cmd)));
}

// ── images ───────────────────────────────────────────────────────────────────────────────────

function checkSet(set: ImageSet): void {
  const [n, h, w, c] = set.shape;
  if (![n, h, w, c].every((d) => Number.isInteger(d) && d > 0)) throw new Error(`${set.name}: shape [${set.shape.join(', ')}] must be positive integers [N, H, W, C]`);
  if (c !== 1 && c !== 3) throw new Error(`${set.name}: the classical codecs take grey (C = 1) or RGB (C = 3) images, got C = ${c}`);
  if (set.images.length !== n * h * w * c) throw new Error(`${set.name}: ${set.images.length} pixel values do not fill [${set.shape.join(', ')}]`);
}

function imageOf(set: ImageSet, i: number): Uint8Array {
  const [, h, w, c] = set.shape;
  const size = h * w * c;
  return set.images.subarray(i * size, (i + 1) * size);
}

function pngOf(data: Uint8Array, width: number, height: number, channels: number): Uint8Array {
  return encodePng({ width, height, data, channels, depth: 8 });
}

/**
 * The grid of the tiled layout: rows × cols = N exactly (no padding tiles, which would flatter the
 * codecs with free zeros), as square as N's divisors allow. Throws when the result is wider or
 * taller than WebP accepts: N then needs a squarer factorisation (a multiple of 100, say).
 */
export function tileGrid(n: number, h: number, w: number): [rows: number, cols: number] {
  let rows = Math.floor(Math.sqrt(n));
  while (n % rows !== 0) rows--;
  const cols = n / rows;
  if (rows * h > WEBP_MAX_SIDE || cols * w > WEBP_MAX_SIDE) {
    throw new Error(`${n} images of ${h}×${w} tile at best as ${rows}×${cols}, a ${rows * h}×${cols * w} image, past WebP's limit of ${WEBP_MAX_SIDE} pixels a side; take a count with a squarer factorisation (a multiple of 100, say)`);
  }
  return [rows, cols];
}

/** The set laid out as one image [rows·H, cols·W, C], image i at row ⌊i / cols⌋, column i mod cols. */
export function tileImages(set: ImageSet, rows: number, cols: number): Uint8Array {
  const [n, h, w, c] = set.shape;
  if (rows * cols !== n) throw new Error(`tileImages: a ${rows}×${cols} grid does not hold ${n} images`);
  const rowLen = cols * w * c;
  const out = new Uint8Array(n * h * w * c);
  for (let i = 0; i < n; i++) {
    const img = imageOf(set, i);
    const y0 = Math.floor(i / cols) * h;
    const x0 = (i % cols) * w * c;
    for (let y = 0; y < h; y++) out.set(img.subarray(y * w * c, (y + 1) * w * c), (y0 + y) * rowLen + x0);
  }
  return out;
}

/**
 * Null when `decoded` holds exactly `expected` ([H, W, C] uint8), else what differs. A grey image
 * may come back as RGB with R = G = B (WebP stores RGB), and an RGB image whose pixels are all grey
 * may come back grey (optipng reduces the colour type): both carry the same values.
 */
export function pixelMismatch(expected: Uint8Array, width: number, height: number, channels: number, decoded: RawImage): string | null {
  if (decoded.width !== width || decoded.height !== height) return `decodes to ${decoded.width}×${decoded.height}, not ${width}×${height}`;
  const dc = decoded.channels;
  const d = decoded.data;
  for (let p = 0; p < width * height; p++) {
    for (let k = 0; k < Math.max(channels, dc); k++) {
      const want = expected[p * channels + (channels === 1 ? 0 : k)]!;
      const got = d[p * dc + (dc === 1 ? 0 : k)]!;
      if (want !== got) return `pixel (x ${p % width}, y ${Math.floor(p / width)}) channel ${k} is ${want} but decodes to ${got}`;
    }
  }
  return null;
}

async function decodeBack(codec: ClassicalCodec, file: string, timeout: number, what: string): Promise<RawImage> {
  let png = file;
  if (codec.decoder) {
    png = `${file}.decoded.png`;
    await run(codec.decoder, codec.decodeArgs(file, png), timeout, what);
  }
  try {
    return decodeImage(fs.readFileSync(png));
  } finally {
    if (png !== file) fs.rmSync(png, { force: true });
  }
}

/** Encodes `src` (a PNG) to `out`, checks it when asked, and returns its size in bytes. */
async function encodeOne(codec: ClassicalCodec, src: string, out: string, timeout: number, what: string, check: { pixels: Uint8Array; w: number; h: number; c: number } | null): Promise<number> {
  await run(codec.encoder, codec.encodeArgs(src, out), timeout, what);
  const bytes = fs.statSync(out).size;
  if (check) {
    const bad = pixelMismatch(check.pixels, check.w, check.h, check.c, await decodeBack(codec, out, timeout, `${what}, decoding back`));
    if (bad) throw new Error(`${what} is not lossless: ${bad}`);
  }
  return bytes;
}

/**
 * Runs task(0..count-1) with at most `jobs` in flight. The first failure stops new tasks; the ones
 * running are waited for (so no encoder still writes when the caller removes its folder), then the
 * failure is thrown.
 */
async function pool(count: number, jobs: number, task: (i: number) => Promise<void>): Promise<void> {
  let next = 0;
  let failure: unknown = null;
  const worker = async () => {
    while (failure === null && next < count) {
      const i = next++;
      try {
        await task(i);
      } catch (e) {
        failure ??= e;
      }
    }
  };
  await Promise.all(Array.from({ length: Math.min(jobs, count) }, worker));
  if (failure !== null) throw failure;
}

/** `count` indices spread evenly over 0..n-1, the first and the last included. */
export function evenlySpaced(n: number, count: number): Set<number> {
  const k = Math.min(n, Math.max(0, Math.floor(count)));
  const out = new Set<number>();
  for (let j = 0; j < k; j++) out.add(k === 1 ? 0 : Math.round((j * (n - 1)) / (k - 1)));
  return out;
}

// ── cache ────────────────────────────────────────────────────────────────────────────────────

interface CacheKey {
  set: string;
  shape: readonly number[];
  sha256: string;
  codec: CodecName;
  layout: Layout;
  tool: string;
  options: readonly string[];
}

function cacheFile(dir: string, key: CacheKey): string {
  const digest = createHash('sha256').update(JSON.stringify(key)).digest('hex').slice(0, 16);
  const slug = `${key.set}-${key.shape[0]}-${key.codec}-${key.layout}`.replace(/[^A-Za-z0-9.-]+/g, '_');
  return path.join(dir, `${slug}-${digest}.json`);
}

function readCache(file: string, key: CacheKey): ClassicalResult | null {
  let text: string;
  try {
    text = fs.readFileSync(file, 'utf8');
  } catch {
    return null;
  }
  try {
    const entry = JSON.parse(text) as { key: CacheKey; result: ClassicalResult };
    // The file name holds a digest of the key; the full key guards against a collision.
    if (JSON.stringify(entry.key) !== JSON.stringify(key)) return null;
    return { ...entry.result, cached: true };
  } catch {
    return null; // a damaged entry is measured again and replaced
  }
}

function writeCache(file: string, key: CacheKey, result: ClassicalResult): void {
  fs.mkdirSync(path.dirname(file), { recursive: true });
  writeFileAtomicSync(file, JSON.stringify({ key, result: { ...result, cached: false } }, null, 1) + '\n');
}

// ── measuring ────────────────────────────────────────────────────────────────────────────────

async function perImage(set: ImageSet, codec: ClassicalCodec, srcDir: string, work: string, o: Required<Omit<MeasureOptions, 'cacheDir' | 'progress'>> & { progress?: (l: string) => void }): Promise<{ bytes: number; verified: number }> {
  const [n, h, w, c] = set.shape;
  const sample = evenlySpaced(n, o.verify);
  let bytes = 0;
  let done = 0;
  let lastNote = Date.now();
  fs.mkdirSync(work, { recursive: true });
  await pool(n, o.jobs, async (i) => {
    const out = path.join(work, `${i}.${codec.ext}`);
    const what = `${codec.label} on ${set.name} image ${i}`;
    const size = await encodeOne(codec, path.join(srcDir, `${i}.png`), out, o.imageTimeout, what, sample.has(i) ? { pixels: imageOf(set, i), w, h, c } : null);
    bytes += size; // not `bytes += await …`, which would read bytes before the other worker adds to it
    fs.rmSync(out);
    done++;
    if (o.progress && Date.now() - lastNote > 15000) {
      lastNote = Date.now();
      o.progress(`${set.name}: ${codec.label}, ${done} of ${n} images`);
    }
  });
  return { bytes, verified: sample.size };
}

/**
 * Bits per dimension of `set` under each codec and layout asked for, lossless-checked, from the
 * cache when an entry matches. Codecs whose tools are missing throw (check with missingCodecs first).
 */
export async function measureClassical(set: ImageSet, opts: MeasureOptions = {}): Promise<ClassicalResult[]> {
  checkSet(set);
  const o = {
    codecs: opts.codecs ?? CODEC_NAMES,
    layouts: opts.layouts ?? LAYOUTS,
    jobs: opts.jobs ?? 2,
    verify: opts.verify ?? 100,
    refresh: opts.refresh ?? false,
    imageTimeout: opts.imageTimeout ?? 600,
    tiledTimeout: opts.tiledTimeout ?? 7200,
    progress: opts.progress,
  };
  if (!Number.isInteger(o.jobs) || o.jobs < 1 || o.jobs > 2) throw new Error(`jobs must be 1 or 2 (the processes run at once), got ${o.jobs}`);
  if (!Number.isInteger(o.verify) || o.verify < 1) throw new Error(`verify must be a whole number of files ≥ 1, got ${o.verify}`);
  const cacheDir = opts.cacheDir === undefined ? benchCacheDir() : opts.cacheDir;
  const [n, h, w, c] = set.shape;
  const dims = n * h * w * c;
  const grid = o.layouts.includes('tiled') ? tileGrid(n, h, w) : null;
  const sha256 = createHash('sha256').update(set.images).digest('hex');

  // What is cached is taken as is; the rest is measured below.
  const results: ClassicalResult[] = [];
  const todo: { codec: ClassicalCodec; layout: Layout; key: CacheKey; tool: string }[] = [];
  for (const name of o.codecs) {
    const codec = CODECS[name];
    const tool = await toolVersion(codec);
    if (tool === null) throw new Error(`${codec.encoder} is not installed: apt-get install ${codec.debianPackage}`);
    for (const layout of o.layouts) {
      const key: CacheKey = { set: set.name, shape: [...set.shape], sha256, codec: name, layout, tool, options: codec.options };
      const hit = cacheDir && !o.refresh ? readCache(cacheFile(cacheDir, key), key) : null;
      if (hit) results.push(hit);
      else todo.push({ codec, layout, key, tool });
    }
  }
  if (todo.length === 0) return order(results, o.codecs, o.layouts);

  const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'arpix-classical-'));
  try {
    const fresh = (t: (typeof todo)[number], bytes: number, seconds: number, verified: number): void => {
      const r: ClassicalResult = { set: set.name, n, shape: set.shape, codec: t.codec.name, layout: t.layout, tool: t.tool, bytes, bitsPerDim: (bytes * 8) / dims, seconds, jobs: o.jobs, verified, ...(t.layout === 'tiled' ? { grid: grid! } : {}), cached: false };
      if (cacheDir) writeCache(cacheFile(cacheDir, t.key), t.key, r);
      results.push(r);
    };

    const perImageTodo = todo.filter((t) => t.layout === 'per-image');
    if (perImageTodo.length > 0) {
      // The sources: one plain PNG per image (fast-png, no metadata), which every encoder reads.
      const srcDir = path.join(tmp, 'src');
      fs.mkdirSync(srcDir);
      for (let i = 0; i < n; i++) fs.writeFileSync(path.join(srcDir, `${i}.png`), pngOf(imageOf(set, i), w, h, c));
      for (const t of perImageTodo) {
        const t0 = process.hrtime.bigint();
        const { bytes, verified } = await perImage(set, t.codec, srcDir, path.join(tmp, t.codec.name), o);
        fresh(t, bytes, Number(process.hrtime.bigint() - t0) / 1e9, verified);
      }
      fs.rmSync(srcDir, { recursive: true });
    }

    const tiledTodo = todo.filter((t) => t.layout === 'tiled');
    if (tiledTodo.length > 0) {
      // The tiled encodes share the pool: each is one single-threaded process.
      const [rows, cols] = grid!;
      const tiled = tileImages(set, rows, cols);
      const src = path.join(tmp, 'tiled-source.png'); // never an output's name: optipng writes .png too
      fs.writeFileSync(src, pngOf(tiled, cols * w, rows * h, c));
      o.progress?.(`${set.name}: encoding the ${rows}×${cols} grid (${cols * w}×${rows * h} px) with ${tiledTodo.map((t) => t.codec.encoder).join(', ')}`);
      await pool(tiledTodo.length, o.jobs, async (j) => {
        const t = tiledTodo[j]!;
        const t0 = process.hrtime.bigint();
        const what = `${t.codec.label} on ${set.name} tiled ${rows}×${cols}`;
        const out = path.join(tmp, `tiled-${t.codec.name}.${t.codec.ext}`);
        const bytes = await encodeOne(t.codec, src, out, o.tiledTimeout, what, { pixels: tiled, w: cols * w, h: rows * h, c });
        fresh(t, bytes, Number(process.hrtime.bigint() - t0) / 1e9, 1);
        fs.rmSync(out);
      });
    }
  } finally {
    fs.rmSync(tmp, { recursive: true, force: true });
  }
  return order(results, o.codecs, o.layouts);
}

function order(results: ClassicalResult[], codecs: readonly CodecName[], layouts: readonly Layout[]): ClassicalResult[] {
  const rank = (r: ClassicalResult) => codecs.indexOf(r.codec) * layouts.length + layouts.indexOf(r.layout);
  return [...results].sort((a, b) => rank(a) - rank(b));
}

/** The smallest figure among `results` for one layout (the baseline arpix's files are compared with), or null. */
export function bestClassical(results: readonly ClassicalResult[], layout: Layout): ClassicalResult | null {
  let best: ClassicalResult | null = null;
  for (const r of results) if (r.layout === layout && (best === null || r.bitsPerDim < best.bitsPerDim)) best = r;
  return best;
}
