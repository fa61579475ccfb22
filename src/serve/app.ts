// arpix serve's HTTP routes (hono): the page and its assets, the runs and their metrics (live, as
// Server-Sent Events), and the model jobs — sampling and completion streamed row by row or pixel
// by pixel, per-element bits, receptive fields, model facts, test images, one image coded into a
// real compressed file and decoded back — run by the worker pool. Every input is checked here or
// by the worker; anything wrong is a 4xx with one line that says what to do, never a crash.
// Nothing a client sends may stall another: bodies, uploads, jobs and streams are bounded in size
// and in number (past the bound, 503 with Retry-After), and every image is decoded off the event
// loop, after its declared size was checked against the model's.

import { open, readFile, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { Hono, type Context } from 'hono';
import { readImageHeader, sniffImage, type RawImage } from '../data/decode.js';
import { fixedLookupTable } from '../data/transforms.js';
import type { MetricRecord } from '../train/metrics.js';
import { METRICS_FILE, transformFor, type RunConfig } from '../train/index.js';
import { pageAssets, type PageAssets } from './assets.js';
import { HttpError, undecodable } from './errors.js';
import { WorkerPool } from './jobs.js';
import type { CompressResult, DecodeJob, Job, WorkerMessage } from './protocol.js';
import { RunFolders, summarise } from './runs.js';
import { sseResponse, type Send } from './sse.js';
import { withConfig, type PageConfig } from '../web/page-config.js';
import { COMPRESS_NAME, MODEL_LIMITS, compressedFileName } from '../web/protocol.js';
import { CODEC_MODES, type CodecMode } from '../codec/format.js';
import { backendName, registeredBackend } from '../backends/registry.js';

export const LIMITS = {
  /** Bytes of a JSON request body. */
  jsonBytes: 1 << 20,
  /** Bytes of an uploaded image. */
  uploadBytes: 2 << 20,
  /** Request bodies being read at once (so at most this · uploadBytes held); more get 503. */
  bodiesAtOnce: 16,
  /** Uploads waiting for the image decoder (one thread); more get 503. */
  decodeQueue: 8,
  /** Metrics streams open at once; more get 503. */
  metricsStreams: 32,
  /** Seconds a 503 asks the client to wait before trying again (its Retry-After). */
  retryAfter: 2,
  /** Images, completions, values and streaming per sampling request: the engine's bounds, which the page applies too. */
  ...MODEL_LIMITS,
};

export interface ServeOptions {
  /** Folders of runs, or run folders. */
  runDirs: string[];
  /** Model workers (default 2): jobs beyond them wait in a queue. */
  workers?: number;
  /** Jobs that may wait for a worker before requests are refused with 503 (default 64). */
  maxQueue?: number;
  /** How often a metrics stream looks for new lines (ms, default 500). */
  pollMs?: number;
  /** Load checkpoints without SHA-256 sums (--allow-unverified); refused by default, as every command does. */
  allowUnverified?: boolean;
  /** A request body must arrive within this time (ms, default 10000), else 408. */
  bodyMs?: number;
  /**
   * Where the page computes its model panels when it opens (default 'server'): 'page' runs them in
   * the browser's Web Worker on the run's weights, with the engine the server uses; the page can
   * switch between the two.
   */
  compute?: 'server' | 'page';
}

export interface ServeApp {
  app: Hono;
  pool: WorkerPool;
  /** The decoder of uploaded images (one thread). */
  images: WorkerPool<DecodeJob>;
  runs: RunFolders;
  assets: PageAssets;
  close(): Promise<void>;
}

function intParam(v: unknown, name: string, min: number, max: number, fallback?: number): number {
  if (v === undefined || v === null || v === '') {
    if (fallback !== undefined) return fallback;
    throw new HttpError(400, `${name} is missing: give an integer in ${min}..${max}`);
  }
  const n = typeof v === 'string' ? Number(v) : v;
  if (typeof n !== 'number' || !Number.isInteger(n) || n < min || n > max) throw new HttpError(400, `${name} must be an integer in ${min}..${max}, got ${JSON.stringify(v)}`);
  return n;
}

function numberParam(v: unknown, name: string, [min, max]: readonly [number, number], fallback: number): number {
  if (v === undefined || v === null || v === '') return fallback;
  const n = typeof v === 'string' ? Number(v) : v;
  if (typeof n !== 'number' || !Number.isFinite(n) || n < min || n > max) throw new HttpError(400, `${name} must be a number in ${min}..${max}, got ${JSON.stringify(v)}`);
  return n;
}

function labelParam(v: unknown): number | null {
  return v === undefined || v === null || v === '' ? null : intParam(v, 'label', 0, 1 << 20);
}

function intArray(v: unknown, name: string, maxLength: number, max: number): number[] {
  if (!Array.isArray(v)) throw new HttpError(400, `${name} must be an array of integers`);
  if (v.length === 0 || v.length > maxLength) throw new HttpError(400, `${name} must hold 1..${maxLength} values, got ${v.length}`);
  for (let i = 0; i < v.length; i++) {
    const x = v[i];
    if (typeof x !== 'number' || !Number.isInteger(x) || x < 0 || x > max) throw new HttpError(400, `${name}[${i}] must be an integer in 0..${max}, got ${JSON.stringify(x)}`);
  }
  return v as number[];
}

/**
 * Reads a request body of at most `limit` bytes, refusing larger ones before reading them all, and
 * one that takes longer than `s.bodyMs` to arrive. At most LIMITS.bodiesAtOnce are read at once.
 */
async function readBody(s: ServeState, c: Context, limit: number, what: string): Promise<Uint8Array> {
  const declared = Number(c.req.header('content-length') ?? NaN);
  if (declared > limit) throw new HttpError(413, `${what} is ${declared} bytes; the limit is ${limit}`);
  const body = c.req.raw.body;
  if (!body) return new Uint8Array(0);
  if (s.reading >= LIMITS.bodiesAtOnce) throw new HttpError(503, `${s.reading} requests are sending their bodies already; try again in a moment`);
  s.reading++;
  const parts: Uint8Array[] = [];
  let total = 0;
  const reader = body.getReader();
  let late = false;
  const timer = setTimeout(() => {
    late = true;
    reader.cancel().catch(() => {});
  }, s.bodyMs);
  try {
    for (;;) {
      let chunk: ReadableStreamReadResult<Uint8Array>;
      try {
        chunk = await reader.read();
      } catch {
        throw new HttpError(400, `${what} was cut off before its end; send it again`);
      }
      if (late) throw new HttpError(408, `${what} took over ${s.bodyMs / 1000} s to arrive; send it again`);
      if (chunk.done) break;
      total += chunk.value.length;
      if (total > limit) {
        await reader.cancel().catch(() => {});
        throw new HttpError(413, `${what} is over ${limit} bytes, the limit`);
      }
      parts.push(chunk.value);
    }
  } finally {
    clearTimeout(timer);
    s.reading--;
  }
  const out = new Uint8Array(total);
  let o = 0;
  for (const p of parts) {
    out.set(p, o);
    o += p.length;
  }
  return out;
}

async function jsonBody(s: ServeState, c: Context): Promise<Record<string, unknown>> {
  const bytes = await readBody(s, c, LIMITS.jsonBytes, 'the request body');
  let v: unknown;
  try {
    v = JSON.parse(new TextDecoder().decode(bytes));
  } catch (e) {
    // The parser quotes the text around the error: control characters in it would break the line.
    const why = Array.from((e as Error).message, (ch) => (ch < ' ' || ch === '\u007f' ? '?' : ch)).join('');
    throw new HttpError(400, `the request body is not valid JSON (${why}); send a JSON object`);
  }
  if (v === null || typeof v !== 'object' || Array.isArray(v)) throw new HttpError(400, 'the request body must be a JSON object');
  return v as Record<string, unknown>;
}

function errorBody(e: HttpError): { error: string; status: number } {
  return { error: e.message, status: e.status };
}

/** Parses the complete lines of metrics.jsonl text, skipping a half-written or broken line. */
function parseRecords(text: string): MetricRecord[] {
  const out: MetricRecord[] = [];
  for (const line of text.split('\n')) {
    if (line.trim() === '') continue;
    try {
      out.push(JSON.parse(line) as MetricRecord);
    } catch {
      // a line being written or damaged
    }
  }
  return out;
}

/** Waits `ms`, or less when `signal` aborts; leaves no listener behind. */
function sleep(ms: number, signal: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    const done = () => {
      clearTimeout(t);
      signal.removeEventListener('abort', done);
      resolve();
    };
    const t = setTimeout(done, ms);
    signal.addEventListener('abort', done, { once: true });
  });
}

/** What the routes share: the runs served, the model workers, the page, and the open metrics streams. */
interface ServeState {
  runs: RunFolders;
  pool: WorkerPool;
  images: WorkerPool<DecodeJob>;
  assets: PageAssets;
  /** How often a metrics stream looks for new lines (ms). */
  pollMs: number;
  /** One controller per open metrics stream, aborted on close. */
  streams: Set<AbortController>;
  /** Request bodies being read now. */
  reading: number;
  /** A request body must arrive within this time (ms). */
  bodyMs: number;
  /** What the page is told when it loads. */
  page: PageConfig;
}

/** The modes the model workers write files in: they load the backends this process loaded, and choose as it chose. */
function compressModes(): CodecMode[] {
  return CODEC_MODES.filter((m) => (m === 'native' ? backendName() === 'native' : m === 'wasm' ? registeredBackend('wasm') !== null : true));
}

/** The server's parts, in order: its state, its error answers, its routes by what they serve, its workers. */
export function createServeApp(opts: ServeOptions): ServeApp {
  const s: ServeState = {
    runs: new RunFolders(opts.runDirs),
    pool: new WorkerPool(opts.workers ?? 2, opts.maxQueue ?? 64, 'worker', 'model workers', { allowUnverified: opts.allowUnverified ?? false }),
    images: new WorkerPool<DecodeJob>(1, LIMITS.decodeQueue, 'image-worker', 'image decoders'),
    assets: pageAssets(),
    pollMs: opts.pollMs ?? 500,
    streams: new Set<AbortController>(),
    reading: 0,
    bodyMs: opts.bodyMs ?? 10_000,
    page: { mode: 'serve', compute: opts.compute ?? 'server', allowUnverified: opts.allowUnverified ?? false, worker: '/worker.js', wasm: null, wasmReason: null, compressModes: compressModes(), runs: [] },
  };
  const wasm = s.assets.wasm();
  s.page.wasm = wasm.file === null ? null : '/arpix.wasm';
  s.page.wasmReason = wasm.reason;
  const app = new Hono();
  errorAnswers(app);
  pageRoutes(app, s.assets, s.page);
  runRoutes(app, s);
  samplingRoutes(app, s);
  modelRoutes(app, s);
  compressRoutes(app, s);
  imageRoutes(app, s);
  s.pool.warm();
  return {
    app, pool: s.pool, images: s.images, runs: s.runs, assets: s.assets,
    async close() {
      for (const ctl of s.streams) ctl.abort();
      await Promise.all([s.pool.close(), s.images.close()]);
    },
  };
}

/** Every error as JSON with its status: a 4xx says what to do, a 503 when to come back, anything else is a 500. */
function errorAnswers(app: Hono): void {
  app.onError((e, c) => {
    if (e instanceof HttpError) return c.json(errorBody(e), e.status, e.status === 503 ? { 'retry-after': String(LIMITS.retryAfter) } : {});
    return c.json({ error: `internal error: ${e.message}`, status: 500 }, 500);
  });
  app.notFound((c) => c.json({ error: `no route ${c.req.method} ${c.req.path}; the page is at /, the API under /api/`, status: 404 }, 404));
}

// ---- the page ----------------------------------------------------------------------------------

/** Cross-origin isolation: the page may share memory with its worker (threads, and stopping a job mid-way). */
const ISOLATED = { 'cross-origin-opener-policy': 'same-origin', 'cross-origin-embedder-policy': 'require-corp' };

function pageRoutes(app: Hono, assets: PageAssets, page: PageConfig): void {
  app.get('/', (c) => c.html(withConfig(assets.html, page), 200, ISOLATED));
  app.get('/app.js', async (c) => c.body(await assets.script(), 200, { 'content-type': 'text/javascript; charset=utf-8', 'cache-control': 'no-cache' }));
  app.get('/worker.js', async (c) => c.body(await assets.worker(), 200, { 'content-type': 'text/javascript; charset=utf-8', 'cache-control': 'no-cache', ...ISOLATED }));
  app.get('/arpix.wasm', async (c) => {
    const w = assets.wasm();
    if (w.file === null) throw new HttpError(404, `${w.reason}; the page computes on the TypeScript backend`);
    return c.body(new Uint8Array(await readFile(w.file)), 200, { 'content-type': 'application/wasm', 'cache-control': 'no-cache' });
  });
  // The threads build and its helpers' worker, which the page's workers use where it is isolated.
  app.get('/arpix-threads.wasm', async (c) => {
    const file = assets.wasmThreads();
    if (file === null) throw new HttpError(404, 'the WebAssembly threads module was not built (npm run build:wasm); the page computes on one thread');
    return c.body(new Uint8Array(await readFile(file)), 200, { 'content-type': 'application/wasm', 'cache-control': 'no-cache' });
  });
  app.get('/wasm-helper.js', async (c) => c.body(await assets.helper(), 200, { 'content-type': 'text/javascript; charset=utf-8', 'cache-control': 'no-cache', ...ISOLATED }));
  app.get('/app.css', (c) => c.body(assets.css, 200, { 'content-type': 'text/css; charset=utf-8' }));
  app.get('/vendor/uPlot.min.css', (c) => c.body(assets.uplotCss, 200, { 'content-type': 'text/css; charset=utf-8' }));
  app.get('/favicon.ico', (c) => c.body(assets.favicon, 200, { 'content-type': 'image/x-icon', 'cache-control': 'max-age=86400' }));
}

// ---- runs and metrics --------------------------------------------------------------------------

function runRoutes(app: Hono, s: ServeState): void {
  app.get('/api/health', (c) => c.json({ ok: true, pool: s.pool.stats(), images: s.images.stats(), reading: s.reading, streams: s.streams.size, rss: process.memoryUsage().rss }));
  app.get('/api/runs', (c) => c.json({ roots: s.runs.roots.map((r) => r.name), runs: s.runs.list().map(summarise) }));

  app.get('/api/metrics', async (c) => {
    const run = s.runs.resolve(c.req.query('run'));
    let text = '';
    try {
      text = await readFile(join(run.dir, METRICS_FILE), 'utf8');
    } catch {
      // no metrics yet: an empty list
    }
    return c.json({ run: run.id, records: parseRecords(text) });
  });

  // Every record so far, then each new one as training appends it (the file is polled).
  app.get('/api/metrics/stream', (c) => {
    const run = s.runs.resolve(c.req.query('run'));
    if (s.streams.size >= LIMITS.metricsStreams) throw new HttpError(503, `${s.streams.size} metrics streams are open already; close a tab, or try again in a moment`);
    return sseResponse(c.req.raw, async (send, signal) => {
      const ctl = new AbortController();
      s.streams.add(ctl);
      signal.addEventListener('abort', () => ctl.abort(), { once: true });
      try {
        send('hello', { run: run.id });
        await followMetrics(join(run.dir, METRICS_FILE), send, ctl.signal, s.pollMs);
      } finally {
        s.streams.delete(ctl);
      }
    }, { heartbeatMs: 15_000 });
  });
}

/**
 * Sends the records of a metrics.jsonl as they are appended, looking every `pollMs` until `signal`
 * aborts: 'records' for complete new lines, 'reset' when the file shrank (a resumed run rewound
 * its log) and is read again from the start.
 */
async function followMetrics(file: string, send: Send, signal: AbortSignal, pollMs: number): Promise<void> {
  let offset = 0;
  let carry = ''; // a line not yet complete
  while (!signal.aborted) {
    const size = await sizeOf(file);
    if (size < offset) {
      offset = 0;
      carry = '';
      send('reset', {});
    }
    if (size > offset) {
      const text = carry + await readRange(file, offset, size);
      offset = size;
      const cut = text.lastIndexOf('\n');
      carry = text.slice(cut + 1);
      const records = parseRecords(text.slice(0, cut + 1));
      if (records.length > 0) send('records', records);
    }
    await sleep(pollMs, signal);
  }
}

/** A file's size, or 0 while it does not exist. */
async function sizeOf(file: string): Promise<number> {
  try {
    return (await stat(file)).size;
  } catch {
    return 0;
  }
}

/** The bytes start..end of a file, as UTF-8 text. */
async function readRange(file: string, start: number, end: number): Promise<string> {
  const fh = await open(file, 'r');
  try {
    const buf = Buffer.alloc(end - start);
    await fh.read(buf, 0, buf.length, start);
    return buf.toString('utf8');
  } finally {
    await fh.close();
  }
}

// ---- sampling and completion, streamed ---------------------------------------------------------

function samplingRoutes(app: Hono, s: ServeState): void {
  app.post('/api/sample', async (c) => {
    const b = await jsonBody(s, c);
    const n = intParam(b.n, 'n', 1, LIMITS.samples, 8);
    const { summary: _summary, ...settings } = sampleSettings(s.runs, b, n);
    return jobStream(s.pool, c, { op: 'sample', n, ...settings, complete: null });
  });

  app.post('/api/complete', async (c) => {
    const b = await jsonBody(s, c);
    const n = intParam(b.samples, 'samples', 1, LIMITS.completions, 4);
    const { summary, ...settings } = sampleSettings(s.runs, b, n);
    const h = summary.height ?? 0;
    const w = summary.width ?? 0;
    const d = h * w * (summary.channels ?? 1);
    const values = intArray(b.image, 'image', d, (summary.levels ?? 256) - 1);
    if (values.length !== d) throw new HttpError(400, `image must hold ${h}×${w}×${summary.channels} = ${d} values in the model's levels, got ${values.length}`);
    const keepRows = intParam(b.keepRows, 'keepRows', 0, h, 0);
    let mask: number[] | null = null;
    if (b.mask !== undefined && b.mask !== null) {
      mask = intArray(b.mask, 'mask', h * w, 1);
      if (mask.length !== h * w) throw new HttpError(400, `mask must hold H·W = ${h * w} values (1 = keep the pixel), got ${mask.length}`);
    }
    return jobStream(s.pool, c, { op: 'sample', n, ...settings, complete: { values, keepRows, mask } });
  });
}

/** A sampling request's checked settings, within the limits for the run's image size. */
function sampleSettings(runs: RunFolders, b: Record<string, unknown>, n: number) {
  const granularity = b.granularity === undefined ? 'row' : b.granularity;
  if (granularity !== 'row' && granularity !== 'pixel') throw new HttpError(400, `granularity must be 'row' or 'pixel', got ${JSON.stringify(granularity)}`);
  const summary = summarise(runs.resolve(b.run));
  const pixels = (summary.height ?? 0) * (summary.width ?? 0);
  if (granularity === 'pixel' && pixels > LIMITS.pixelStreamPixels) throw new HttpError(400, `pixel-by-pixel streaming is for images up to ${LIMITS.pixelStreamPixels} pixels; this model's have ${pixels}: use granularity 'row'`);
  const elements = n * pixels * (summary.channels ?? 1);
  if (elements > LIMITS.sampleElements) throw new HttpError(400, `${n} images of ${summary.height}×${summary.width}×${summary.channels} are ${elements} values; the limit per request is ${LIMITS.sampleElements}: ask for fewer`);
  return {
    checkpoint: runs.checkpoint(b.run).file,
    seed: intParam(b.seed, 'seed', 0, LIMITS.seed, 0),
    temperature: numberParam(b.temperature, 'temperature', LIMITS.temperature, 1),
    label: labelParam(b.label),
    granularity: granularity as 'row' | 'pixel',
    summary,
  };
}

/**
 * Streams a sampling job: 'start', then 'row' or 'pixel' events, then 'done' (or 'error'). A full
 * queue is a 503 before the stream starts.
 */
function jobStream(pool: WorkerPool, c: Context, job: Job & { op: 'sample' }): Response {
  pool.admit();
  return sseResponse(c.req.raw, async (send: Send, signal) => {
    const t0 = performance.now();
    let first: number | null = null;
    let rows = 0;
    const outcome = await pool.run(job, (m: WorkerMessage) => {
      if (m.type === 'start') send('start', { model: m.model, loadSeconds: m.loadSeconds, n: job.n, seed: job.seed });
      else if (m.type === 'row' || m.type === 'pixel') {
        first ??= (performance.now() - t0) / 1000;
        if (m.type === 'row') rows++;
        send(m.type, m.type === 'row' ? { y: m.y, values: Array.from(m.values) } : { y: m.y, x: m.x, values: Array.from(m.values) });
      } else if (m.type === 'done') {
        send('done', { seconds: m.seconds, firstSeconds: first, totalSeconds: (performance.now() - t0) / 1000, rows });
      }
    }, signal);
    if (outcome === 'cancelled') return;
  });
}

// ---- facts about a model: bits, receptive fields, its info, test images (JSON jobs) ------------

function modelRoutes(app: Hono, s: ServeState): void {
  app.get('/api/test-image', (c) => {
    const { file } = s.runs.checkpoint(c.req.query('run'));
    return jobJson(s.pool, c, { op: 'testImage', checkpoint: file, index: intParam(c.req.query('index'), 'index', 0, 10_000_000, 0) });
  });

  app.post('/api/bits', async (c) => {
    const b = await jsonBody(s, c);
    const { run, file } = s.runs.checkpoint(b.run);
    const summary = summarise(run);
    const d = (summary.height ?? 0) * (summary.width ?? 0) * (summary.channels ?? 1);
    const values = intArray(b.image, 'image', d, (summary.levels ?? 256) - 1);
    if (values.length !== d) throw new HttpError(400, `image must hold ${d} values in the model's levels, got ${values.length}`);
    return jobJson(s.pool, c, { op: 'bits', checkpoint: file, values, label: labelParam(b.label) });
  });

  app.post('/api/field', async (c) => {
    const b = await jsonBody(s, c);
    const { run, file } = s.runs.checkpoint(b.run);
    const summary = summarise(run);
    const y = intParam(b.y, 'y', 0, (summary.height ?? 1) - 1);
    const x = intParam(b.x, 'x', 0, (summary.width ?? 1) - 1);
    return jobJson(s.pool, c, { op: 'field', checkpoint: file, y, x });
  });

  // The run's checkpoint as it is on disk, for the page to compute with (it checks the file as every reader does).
  app.get('/api/weights', async (c) => {
    const { file } = s.runs.checkpoint(c.req.query('run'));
    let bytes: Buffer;
    try {
      bytes = await readFile(file);
    } catch {
      throw new HttpError(404, 'the run\'s checkpoint could not be read; wait for training to write it');
    }
    return c.body(new Uint8Array(bytes.buffer as ArrayBuffer, bytes.byteOffset, bytes.length), 200, { 'content-type': 'application/octet-stream', 'cache-control': 'no-store' });
  });

  app.get('/api/info', (c) => {
    const { file } = s.runs.checkpoint(c.req.query('run'));
    return jobJson(s.pool, c, { op: 'info', checkpoint: file });
  });
}

/** Runs a job and answers with its result as JSON. */
async function jobJson(pool: WorkerPool, c: Context, job: Job): Promise<Response> {
  let result: unknown = null;
  const outcome = await pool.run(job, (m) => { if (m.type === 'done') result = m.result; }, c.req.raw.signal);
  if (outcome === 'cancelled') return c.json({ error: 'cancelled', status: 499 }, 400);
  return c.json(result as object);
}

// ---- the model as a compressor: a real file for one image ---------------------------------------

function compressRoutes(app: Hono, s: ServeState): void {
  // { run, image, label?, mode?: 'native' | 'portable' | 'wasm', name? } → the file of `arpix compress` for
  // that one image, sent only after the worker decoded it back to exactly the image.
  app.post('/api/compress', async (c) => {
    const b = await jsonBody(s, c);
    const { run, file } = s.runs.checkpoint(b.run);
    const summary = summarise(run);
    const { height: h, width: w, channels: ch } = summary;
    const d = (h ?? 0) * (w ?? 0) * (ch ?? 1);
    const values = intArray(b.image, 'image', d, (summary.levels ?? 256) - 1);
    if (values.length !== d) throw new HttpError(400, `image must hold ${h}×${w}×${ch} = ${d} values in the model's levels, got ${values.length}`);
    const mode = b.mode === undefined || b.mode === null ? 'native' : b.mode;
    if (!CODEC_MODES.includes(mode as CodecMode)) throw new HttpError(400, `mode must be one of ${CODEC_MODES.map((m) => `'${m}'`).join(', ')}, got ${JSON.stringify(mode)}`);
    const name = b.name === undefined || b.name === null ? 'image' : b.name;
    if (typeof name !== 'string' || !COMPRESS_NAME.test(name)) throw new HttpError(400, `name must be 1..64 letters, digits, '.', '_' or '-' (it goes into the file name), got ${JSON.stringify(name)}`);
    const fileName = compressedFileName(run.id, name);
    let result: CompressResult | null = null;
    const job: Job = { op: 'compress', checkpoint: file, values, label: labelParam(b.label), mode: mode as CodecMode, name: fileName };
    const outcome = await s.pool.run(job, (m) => { if (m.type === 'done') result = m.result as CompressResult; }, c.req.raw.signal);
    if (outcome === 'cancelled' || result === null) return c.json({ error: 'cancelled', status: 499 }, 400);
    const r: CompressResult = result;
    return c.body(r.bytes as Uint8Array<ArrayBuffer>, 200, {
      'content-type': 'application/octet-stream',
      'content-disposition': `attachment; filename="${fileName}"`,
      'cache-control': 'no-store',
      'x-arpix-bytes': String(r.bytes.length),
      'x-arpix-bits-per-dim': String((r.bytes.length * 8) / d),
      'x-arpix-model-bits': String(r.idealBits),
      'x-arpix-mode': r.mode,
      'x-arpix-weights': r.weights,
      'x-arpix-encode-seconds': r.encodeSeconds.toFixed(3),
      'x-arpix-decode-seconds': r.decodeSeconds.toFixed(3),
      'x-arpix-decoded-exactly': 'true',
    });
  });
}

// ---- images uploaded ---------------------------------------------------------------------------

function imageRoutes(app: Hono, s: ServeState): void {
  // An image file → values in the model's levels, after checking its format, its declared size
  // (from its header, before anything is decoded), then its colour.
  app.post('/api/upload', async (c) => {
    const { run } = s.runs.checkpoint(c.req.query('run'));
    const summary = summarise(run);
    const bytes = await readBody(s, c, LIMITS.uploadBytes, 'the upload');
    if (bytes.length === 0) throw new HttpError(400, 'the upload is empty: send the bytes of a PNG or JPEG image');
    if (sniffImage(bytes) === null) throw new HttpError(415, 'the upload is not a PNG or JPEG image (its first bytes say otherwise)');
    const { height: h, width: w, channels: ch } = summary;
    let header;
    try {
      header = readImageHeader(bytes);
    } catch (e) {
      throw undecodable(e);
    }
    if (header.height !== h || header.width !== w) throw new HttpError(422, `the image is ${header.width}×${header.height} but this model takes ${w}×${h}; resize or crop it first`);
    const img = await decodeOffThread(s, c, bytes, header.width * header.height);
    if (img === null) return c.json({ error: 'cancelled', status: 499 }, 400);
    if (img.channels !== ch) throw new HttpError(422, `the image is ${img.channels === 1 ? 'grey' : 'RGB'} but this model takes ${ch === 1 ? 'grey' : 'RGB'} images; convert it first`);
    const config = await runConfig(run.dir);
    const lut = fixedLookupTable(transformFor(config.dataset));
    return c.json({ values: Array.from(img.data, (v) => lut[v]!) });
  });
}

/** Decodes an upload on the image decoder's thread; null when the client went away first. */
async function decodeOffThread(s: ServeState, c: Context, bytes: Uint8Array, maxPixels: number): Promise<RawImage | null> {
  let img: RawImage | null = null;
  const outcome = await s.images.run({ bytes, maxPixels }, (m) => { if (m.type === 'done') img = m.result as RawImage; }, c.req.raw.signal);
  return outcome === 'cancelled' ? null : img;
}

async function runConfig(dir: string): Promise<RunConfig> {
  try {
    return JSON.parse(await readFile(join(dir, 'config.json'), 'utf8')) as RunConfig;
  } catch {
    throw new HttpError(404, 'the run has no readable config.json');
  }
}
