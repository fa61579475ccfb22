// The serve family of the fuzz suite: `arpix serve` on 127.0.0.1, in a process of its own, on a tiny
// trained run, sent what a hostile client sends — damaged PNGs, PNGs that declare huge sizes (the
// 20000×20000 zip bomb among them), wrong content types, bodies cut off, stalled or oversized,
// path traversal in run ids and URLs, damaged JSON to every POST route, and floods of all of these
// at once. Between cases, and during each flood, /api/health must answer within HEALTH_MS.
//
// Verdicts: a 4xx with a one-line JSON error (or Node's own bare 400 for a request it cannot parse),
// and the documented 503 with Retry-After, are clean errors; a 200 is accepted when what it answers
// is right (an upload's pixels are the image's, a stream ends with 'done', a file served is one of
// the page's), and silent acceptance otherwise; any other 5xx, or a stream that ends in an error of
// its own, is an internal error; a server that dies is a crash; no answer, or a health probe slower
// than HEALTH_MS, is a hang. The server's peak memory per case (Linux: VmHWM, reset before each
// case) beyond MEMORY_MB over its resting size is an internal error too.

import { spawn, type ChildProcess } from 'node:child_process';
import { mkdirSync, readFileSync, symlinkSync, writeFileSync } from 'node:fs';
import { request as httpRequest, type IncomingHttpHeaders } from 'node:http';
import { connect } from 'node:net';
import { join } from 'node:path';
import { constants, crc32, deflateRawSync, deflateSync } from 'node:zlib';
import { encode as encodePng } from 'fast-png';
import type { ServeOptions } from '../serve/index.js';
import { FuzzRng, INTERNAL_PHRASES, mutateBytes, mutateJson, runFuzz, type FuzzCase, type FuzzTally, type Verdict } from './fuzz.js';
import type { FamilyOptions } from './fuzz.js';
import { trainTinyRuns, type TinyRuns } from './tiny-runs.js';

/** /api/health must answer within this, between cases and during a flood (a generous bound on a shared machine). */
export const HEALTH_MS = 2000;
/** Peak memory a case may add to the server's resting size. */
export const MEMORY_MB = 256;

// ---- crafted PNGs --------------------------------------------------------------------------

/** One PNG chunk: length, type, data and the CRC of type and data. */
export function pngChunk(type: string, data: Uint8Array): Uint8Array {
  const out = new Uint8Array(12 + data.length);
  const v = new DataView(out.buffer);
  v.setUint32(0, data.length);
  for (let i = 0; i < 4; i++) out[4 + i] = type.charCodeAt(i);
  out.set(data, 8);
  v.setUint32(8 + data.length, crc32(out.subarray(4, 8 + data.length)) >>> 0);
  return out;
}

export interface PngLayout {
  width: number;
  height: number;
  depth?: number;
  colourType?: number;
  interlace?: number;
}

/** A PNG of the given header around an already compressed (zlib) image stream; every CRC right. */
export function craftPng(h: PngLayout, zlibData: Uint8Array): Uint8Array {
  const ihdr = new Uint8Array(13);
  const v = new DataView(ihdr.buffer);
  v.setUint32(0, h.width >>> 0);
  v.setUint32(4, h.height >>> 0);
  ihdr.set([h.depth ?? 8, h.colourType ?? 0, 0, 0, h.interlace ?? 0], 8);
  const parts = [Uint8Array.of(0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a), pngChunk('IHDR', ihdr), pngChunk('IDAT', zlibData), pngChunk('IEND', new Uint8Array(0))];
  return Buffer.concat(parts);
}

/**
 * A zlib stream of `n` zero bytes, made of one compressed mebibyte repeated (each piece ends on a
 * sync flush, so pieces join), so that the n bytes are never held. Zeros compress about 1000:1.
 */
export function zerosZlib(n: number): Uint8Array {
  const MiB = 1 << 20;
  const piece = deflateRawSync(Buffer.alloc(MiB), { level: 9, finishFlush: constants.Z_SYNC_FLUSH });
  const parts: Uint8Array[] = [Uint8Array.of(0x78, 0xda)];
  for (let k = 0; k < Math.floor(n / MiB); k++) parts.push(piece);
  if (n % MiB > 0) parts.push(deflateRawSync(Buffer.alloc(n % MiB), { level: 9, finishFlush: constants.Z_SYNC_FLUSH }));
  parts.push(deflateRawSync(Buffer.alloc(0))); // the final, empty block
  // Adler-32 of n zeros: A stays 1, B adds A once per byte.
  const adler = Buffer.alloc(4);
  adler.writeUInt32BE((((n % 65521) << 16) | 1) >>> 0);
  parts.push(adler);
  return Buffer.concat(parts);
}

/** A grey 8-bit PNG declaring width×height whose image data, all zeros, are really there: a zip bomb. */
export function pngBomb(width: number, height: number): Uint8Array {
  return craftPng({ width, height }, zerosZlib(height * (width + 1)));
}

// ---- the server, in a process of its own ----------------------------------------------------

export interface ServerProcess {
  url: URL;
  child: ChildProcess;
  /** Resident memory now and its peak since the last reset (MB), or null off Linux. */
  memory(): { rssMB: number; peakMB: number } | null;
  /** Starts a new peak (Linux: clear_refs 5); false if the system does not allow it. */
  resetPeak(): boolean;
  alive(): boolean;
  stop(): Promise<void>;
}

/** Starts `arpix serve`'s server (startServer) in a child process on 127.0.0.1, any free port. */
export async function startServeProcess(opts: ServeOptions): Promise<ServerProcess> {
  const index = new URL(`../serve/index${import.meta.url.endsWith('.ts') ? '.ts' : '.js'}`, import.meta.url).href;
  const code = [
    `const { startServer } = await import(${JSON.stringify(index)});`,
    `const s = await startServer(${JSON.stringify({ ...opts, port: 0, host: '127.0.0.1' })});`,
    `process.stdout.write(JSON.stringify({ url: s.url }) + '\\n');`,
    // The parent gone (its end of stdin closed), the server goes too.
    `process.stdin.on('close', () => process.exit(0)); process.stdin.resume();`,
  ].join('\n');
  const loader = import.meta.url.endsWith('.ts') ? ['--import', import.meta.resolve('tsx')] : [];
  const child = spawn(process.execPath, [...loader, '--input-type=module', '-e', code], { stdio: ['pipe', 'pipe', 'pipe'] });
  let stderr = '';
  child.stderr!.on('data', (d: Buffer) => (stderr = (stderr + d.toString()).slice(-4000)));
  let exited = false;
  child.on('exit', () => (exited = true));
  const url = await new Promise<URL>((resolve, reject) => {
    let out = '';
    child.stdout!.on('data', (d: Buffer) => {
      out += d.toString();
      const line = out.split('\n').find((l) => l.startsWith('{'));
      if (line) resolve(new URL((JSON.parse(line) as { url: string }).url));
    });
    child.on('exit', (c) => reject(new Error(`the server exited (${c}) before listening: ${stderr}`)));
  });
  const status = (): string | null => {
    try {
      return readFileSync(`/proc/${child.pid}/status`, 'utf8');
    } catch {
      return null;
    }
  };
  const field = (text: string, name: string) => Number(new RegExp(`^${name}:\\s+(\\d+) kB`, 'm').exec(text)?.[1] ?? NaN) / 1024;
  return {
    url,
    child,
    memory() {
      const s = status();
      return s === null ? null : { rssMB: field(s, 'VmRSS'), peakMB: field(s, 'VmHWM') };
    },
    resetPeak() {
      try {
        writeFileSync(`/proc/${child.pid}/clear_refs`, '5');
        return true;
      } catch {
        return false;
      }
    },
    alive: () => !exited,
    async stop() {
      if (exited) return;
      const gone = new Promise((r) => child.once('exit', r));
      child.stdin!.end();
      const kill = setTimeout(() => child.kill('SIGKILL'), 10_000);
      await gone;
      clearTimeout(kill);
    },
  };
}

// ---- requests -------------------------------------------------------------------------------

export interface Reply {
  status: number;
  headers: IncomingHttpHeaders;
  body: Buffer;
  ms: number;
}

interface RequestOptions {
  method?: string;
  headers?: Record<string, string>;
  body?: Uint8Array | string;
  /** Stop reading once the body holds this text (a stream that never ends by itself). */
  until?: string;
  timeoutMs?: number;
}

/** One request on its own connection, the path sent exactly as given; rejects 'timeout' past timeoutMs. */
export function send(base: URL, path: string, o: RequestOptions = {}): Promise<Reply> {
  const t0 = performance.now();
  return new Promise((resolve, reject) => {
    const req = httpRequest({ host: base.hostname, port: base.port, path, method: o.method ?? 'GET', headers: o.headers, agent: false }, (res) => {
      const parts: Buffer[] = [];
      let text = '';
      res.on('data', (d: Buffer) => {
        parts.push(d);
        if (o.until !== undefined) {
          text += d.toString();
          if (text.includes(o.until)) res.destroy();
        }
      });
      const done = () => {
        clearTimeout(timer);
        resolve({ status: res.statusCode ?? 0, headers: res.headers, body: Buffer.concat(parts), ms: performance.now() - t0 });
      };
      res.on('end', done);
      res.on('close', done);
      res.on('error', () => {});
    });
    const timer = setTimeout(() => {
      req.destroy();
      reject(new Error(`timeout: no answer to ${o.method ?? 'GET'} ${path.slice(0, 80)} in ${o.timeoutMs ?? 15_000} ms`));
    }, o.timeoutMs ?? 15_000);
    req.on('error', (e) => {
      clearTimeout(timer);
      reject(e);
    });
    req.end(o.body === undefined ? undefined : Buffer.from(o.body));
  });
}

/**
 * A request written by hand on a socket: the head as given, then `body`, then the socket either
 * closed (a client gone mid-body) or kept open until the server answers. Resolves with the status
 * line's code, or 0 when the server answered nothing before the socket closed.
 */
function rawRequest(base: URL, head: string, body: Uint8Array, close: boolean, timeoutMs = 15_000): Promise<{ status: number; text: string }> {
  return new Promise((resolve, reject) => {
    const socket = connect(Number(base.port), base.hostname);
    let text = '';
    const timer = setTimeout(() => {
      socket.destroy();
      reject(new Error(`timeout: no answer to a hand-written request in ${timeoutMs} ms`));
    }, timeoutMs);
    socket.on('connect', () => {
      socket.write(head);
      socket.write(body);
      if (close) socket.end();
    });
    socket.on('data', (d: Buffer) => {
      text += d.toString('latin1');
      if (/\r\n\r\n/.test(text) && !close) socket.end();
    });
    const finish = () => {
      clearTimeout(timer);
      resolve({ status: Number(/^HTTP\/1\.1 (\d{3})/.exec(text)?.[1] ?? 0), text });
    };
    socket.on('close', finish);
    socket.on('error', () => {});
  });
}

// ---- verdicts -------------------------------------------------------------------------------

type Outcome = { verdict: Verdict; detail?: string };

/** The JSON error of a reply, if it is one: `{ error, status }` with a one-line message. */
function jsonError(r: Reply): string | null {
  try {
    const v = JSON.parse(r.body.toString('utf8')) as { error?: unknown; status?: unknown };
    return typeof v.error === 'string' && v.status === r.status ? v.error : null;
  } catch {
    return null;
  }
}

/** A refusal: a 4xx with a clean one-line JSON error, or the documented 503 with Retry-After. */
function refusal(r: Reply, what: string): Outcome {
  const message = jsonError(r);
  const line = `${what}: ${r.status} ${message ?? r.body.toString('utf8').slice(0, 200)}`;
  if (r.status === 503 && r.headers['retry-after'] === undefined) return { verdict: 'internal-error', detail: `${line} (no Retry-After)` };
  if (r.status >= 500 && r.status !== 503) return { verdict: 'internal-error', detail: line };
  if (message === null || message.length === 0 || message.includes('\n') || INTERNAL_PHRASES.test(message)) return { verdict: 'internal-error', detail: `${line} (not a one-line JSON error)` };
  return { verdict: 'clean-error', detail: line };
}

/** The events of a Server-Sent Events body. */
function events(body: string): { event: string; data: Record<string, unknown> }[] {
  return body.split('\n\n').filter((b) => b.includes('data: ')).map((b) => ({
    event: /^event: (.*)$/m.exec(b)?.[1] ?? 'message',
    data: JSON.parse(/^data: (.*)$/m.exec(b)![1]!) as Record<string, unknown>,
  }));
}

/** A sampling stream: 'done' last is accepted; an 'error' with a 4xx and a clean line is a clean error. */
function streamVerdict(r: Reply, what: string): Outcome {
  if (r.status !== 200) return refusal(r, what);
  let ev;
  try {
    ev = events(r.body.toString('utf8'));
  } catch (e) {
    return { verdict: 'internal-error', detail: `${what}: an event that is not JSON (${(e as Error).message})` };
  }
  const last = ev.at(-1);
  if (last?.event === 'done') return { verdict: 'accepted' };
  if (last?.event === 'error') {
    const status = last.data.status as number;
    const message = String(last.data.message);
    if (status >= 400 && status < 500 && !message.includes('\n') && !INTERNAL_PHRASES.test(message)) return { verdict: 'clean-error', detail: `${what}: stream error ${status} ${message}` };
    return { verdict: 'internal-error', detail: `${what}: stream error ${status} ${message}` };
  }
  return { verdict: 'internal-error', detail: `${what}: the stream ended after '${last?.event ?? 'nothing'}' without 'done' or 'error'` };
}

// ---- the family -----------------------------------------------------------------------------

export interface ServeFuzzTally extends FuzzTally {
  /** The slowest health probe, between cases and during floods (ms). */
  healthMaxMs: number;
  /** The server's resting size after warming up, and its highest peak during any case (MB; null off Linux). */
  restingMB: number | null;
  peakMB: number | null;
  /** The 20000×20000 PNG bomb: its size, the answer, and the server's peak memory while it was refused. */
  bomb: { bytes: number; status: number; ms: number; peakMB: number | null; restingMB: number | null } | null;
}

const RUN = 'runs/gated-pixelcnn-fmnist';
const CONTENT_TYPES = ['image/png', 'image/jpeg', 'text/plain', 'application/json', 'application/octet-stream', 'multipart/form-data; boundary=x', 'image/gif', '', 'image/png; charset=\u00ff'];
const HOSTILE_RUNS = [
  '', '..', '../', '../../etc/passwd', '/etc/passwd', 'runs/..', 'runs/../..', 'runs/../../secret.txt', `${RUN}/../../..`, 'runs/./gated-pixelcnn-fmnist', 'runs//gated-pixelcnn-fmnist',
  'runs\\..\\..', 'runs/\u0000', 'runs/%2e%2e/%2e%2e', 'runs/escape', 'runs/escape/secret.txt', '~', 'x'.repeat(600), 'runs/gated-pixelcnn-fmnist/checkpoint.safetensors', 'runs/nope',
];
const HOSTILE_PATHS = [
  '/../../etc/passwd', '/..%2f..%2fetc%2fpasswd', '/%2e%2e/%2e%2e/etc/passwd', '/vendor/../../package.json', '/vendor/%2e%2e/%2e%2e/package.json', '//etc/passwd',
  '/app.js/../../../etc/passwd', '/vendor/uPlot.min.css/..%2f..%2f..%2fpackage.json', '/api/../../secret.txt', '/favicon.ico/..%00/secret.txt', '/api/metrics/../../../../etc/passwd?run=runs/..',
];
/** What must never be served: a file beside the served folder, /etc/passwd, the project's package.json. */
const LEAKS = /SECRET-7f3a|root:x:0:0|"name": "arpix"/;

/** Test image values in 0..255, a fixed pattern. */
const IMAGE = Array.from({ length: 784 }, (_, i) => (i * 37) & 0xff);

function jsonBases(): { path: string; body: Record<string, unknown> }[] {
  return [
    { path: '/api/sample', body: { run: RUN, n: 1, seed: 1, temperature: 1, granularity: 'row' } },
    { path: '/api/complete', body: { run: RUN, image: IMAGE, keepRows: 20, samples: 1, seed: 2 } },
    { path: '/api/bits', body: { run: RUN, image: IMAGE } },
    { path: '/api/field', body: { run: RUN, y: 5, x: 7 } },
    { path: '/api/compress', body: { run: RUN, image: IMAGE, mode: 'native', name: 'fuzz' } },
  ];
}

interface Ctx {
  base: URL;
  png: Uint8Array;
  bomb: Uint8Array;
  /** A PNG declaring the model's 28×28 whose data inflate to 64 MiB. */
  innerBomb: Uint8Array;
}

const upload = (c: Ctx, bytes: Uint8Array | string, type = 'image/png', run = RUN) =>
  send(c.base, `/api/upload?run=${encodeURIComponent(run)}`, { method: 'POST', headers: { 'content-type': type }, body: bytes });

/** An upload's answer: 200 must hold the pixels of `expect` (null: no 200 is right). */
function uploadVerdict(r: Reply, expect: number[] | null, what: string): Outcome {
  if (r.status !== 200) return refusal(r, what);
  const values = (JSON.parse(r.body.toString('utf8')) as { values?: number[] }).values;
  if (expect !== null && Array.isArray(values) && values.length === expect.length && values.every((v, i) => v === expect[i])) return { verdict: 'accepted' };
  return { verdict: 'silent-acceptance', detail: `${what}: 200 with ${values?.length ?? 'no'} values` };
}

/** A POST of JSON text (or of bytes meant as JSON). */
function postJson(body: string | Uint8Array): RequestOptions {
  return { method: 'POST', headers: { 'content-type': 'application/json' }, body };
}

/** One case of each kind; every kind is a function of its generator alone. */
const KINDS: Record<string, (c: Ctx, rng: FuzzRng, ops: string[]) => Promise<Outcome>> = {
  // A real 28×28 PNG, damaged: every byte is under a CRC, so a 200 must give the original's pixels.
  async 'png-damaged'(c, rng, ops) {
    const m = mutateBytes(c.png, rng);
    ops.push(...m.ops);
    return uploadVerdict(await upload(c, m.bytes), IMAGE, 'damaged PNG');
  },
  // PNGs whose header declares other sizes (huge, zero, off by one), some with the data to match.
  async 'png-declared'(c, rng, ops) {
    const sizes = [0, 1, 27, 29, 256, 20000, 65535, 2 ** 31 - 1, 2 ** 31, 2 ** 32 - 1];
    const width = rng.next() < 0.3 ? 28 : rng.pick(sizes);
    const height = width === 28 ? rng.pick(sizes) : rng.pick([...sizes, 28]);
    const colourType = rng.pick([0, 0, 2, 3, 4, 6, 1, 7]);
    const depth = rng.pick([8, 8, 1, 16, 0, 3]);
    const real = width * height <= 4096 * 4096 && rng.next() < 0.5;
    // With data: as many zeros as 4 samples per pixel need (so right only for RGBA); without: a few.
    const zeros = real ? height * (1 + Math.ceil((width * depth * 4) / 8)) : rng.int(0, 4096);
    ops.push(`${width}x${height} type ${colourType} depth ${depth}, ${zeros} zeros`);
    const data = real ? zerosZlib(zeros) : deflateSync(Buffer.alloc(zeros));
    // Only the model's own 28×28 grey 8-bit with exactly its 28·29 bytes is an image: a black one.
    const black = width === 28 && height === 28 && colourType === 0 && depth === 8 && zeros === 28 * 29;
    return uploadVerdict(await upload(c, craftPng({ width, height, depth, colourType }, data)), black ? new Array<number>(784).fill(0) : null, 'PNG declaring another size');
  },
  // The bombs: 20000×20000 of zeros in 389 KB, and a 28×28 header over 64 MiB of zeros.
  async bomb(c, rng, ops) {
    const inner = rng.next() < 0.5;
    ops.push(inner ? '28x28 over 64 MiB' : '20000x20000');
    return uploadVerdict(await upload(c, inner ? c.innerBomb : c.bomb), null, 'PNG bomb');
  },
  async 'bomb-20000'(c) {
    return uploadVerdict(await upload(c, c.bomb), null, 'PNG bomb');
  },
  // Content types that do not match the bytes: the bytes decide (by their signature), not the header.
  async 'content-type'(c, rng, ops) {
    const type = rng.pick(CONTENT_TYPES);
    const body = rng.pick(['png', 'json', 'text', 'empty', 'gif'] as const);
    ops.push(`${body} as '${type}'`);
    const bytes = body === 'png' ? c.png : body === 'json' ? JSON.stringify({ run: RUN, image: IMAGE }) : body === 'text' ? 'hello' : body === 'gif' ? 'GIF89a\u0001\u0000' : '';
    return uploadVerdict(await upload(c, bytes, type), body === 'png' ? IMAGE : null, `${body} upload`);
  },
  // Bodies cut off (the client leaves), stalled (the client waits), oversized, or with a length that lies.
  async body(c, rng, ops) {
    const kind = rng.pick(['cut-off', 'stalled', 'declared-huge', 'chunked-huge', 'bad-length', 'json-huge'] as const);
    ops.push(kind);
    const path = kind === 'json-huge' ? '/api/bits' : `/api/upload?run=${RUN}`;
    if (kind === 'declared-huge' || kind === 'chunked-huge' || kind === 'json-huge') {
      const big = kind === 'declared-huge' ? c.png : Buffer.alloc(rng.int(2 << 20, 3 << 20), 0x31);
      const headers: Record<string, string> = kind === 'declared-huge' ? { 'content-length': '1000000000000' } : kind === 'chunked-huge' ? { 'transfer-encoding': 'chunked' } : { 'content-type': 'application/json' };
      const r = await send(c.base, path, { method: 'POST', headers, body: big }).catch((e: Error) => e);
      // The server may close the connection once it has refused, before the client finished sending.
      if (r instanceof Error) return /timeout/.test(r.message) ? { verdict: 'hang', detail: r.message } : { verdict: 'clean-error', detail: `${kind}: connection closed (${r.message})` };
      return refusal(r, kind);
    }
    const declared = kind === 'bad-length' ? rng.pick(['-1', 'abc', '1e3', '12, 13', ' ']) : String(c.png.length + rng.int(1, 5000));
    const part = c.png.subarray(0, rng.int(0, c.png.length));
    const head = `POST ${path} HTTP/1.1\r\nHost: ${c.base.host}\r\nContent-Type: image/png\r\nContent-Length: ${declared}\r\nConnection: close\r\n\r\n`;
    const r = await rawRequest(c.base, head, part, kind === 'cut-off');
    if (kind === 'cut-off') return { verdict: 'clean-error', detail: `cut off: answered ${r.status}` }; // nobody is left to read an answer; the health probe after says whether the server coped
    if (kind === 'bad-length') return r.status === 400 ? { verdict: 'clean-error' } : { verdict: 'internal-error', detail: `Content-Length '${declared}': ${r.text.slice(0, 200)}` };
    return r.status === 408 ? { verdict: 'clean-error' } : { verdict: r.status === 0 ? 'hang' : 'internal-error', detail: `stalled body: ${r.text.slice(0, 200)}` };
  },
  // Run ids and URL paths that try to leave the served folder.
  async traversal(c, rng, ops) {
    const where = rng.pick(['metrics', 'info', 'stream', 'upload', 'sample', 'path'] as const);
    const run = rng.pick(HOSTILE_RUNS);
    const path = rng.pick(HOSTILE_PATHS);
    ops.push(where === 'path' ? `${where} ${path}` : `${where} ${JSON.stringify(run.slice(0, 40))}`);
    const q = encodeURIComponent(run);
    const r = where === 'metrics' ? await send(c.base, `/api/metrics?run=${q}`)
      : where === 'info' ? await send(c.base, `/api/info?run=${q}`)
      : where === 'stream' ? await send(c.base, `/api/metrics/stream?run=${q}`, { until: 'event: records' })
      : where === 'upload' ? await upload(c, c.png, 'image/png', run)
      : where === 'sample' ? await send(c.base, '/api/sample', postJson(JSON.stringify({ run, n: 1 })))
      : await send(c.base, path);
    if (r.status === 200) return LEAKS.test(r.body.toString('utf8')) ? { verdict: 'silent-acceptance', detail: `${ops.at(-1)} served a file from outside` } : { verdict: 'accepted' };
    return refusal(r, ops.at(-1)!);
  },
  // Every POST route's JSON, damaged as values or as text.
  async json(c, rng, ops) {
    const bases = jsonBases();
    const k = rng.int(0, bases.length);
    const b = bases[k]!;
    let body: string | Uint8Array;
    if (rng.next() < 0.6) {
      const m = mutateJson(b.body, rng);
      ops.push(b.path, ...m.ops);
      body = JSON.stringify(m.value) ?? 'undefined';
    } else {
      const m = mutateBytes(new TextEncoder().encode(JSON.stringify(b.body)), rng);
      ops.push(b.path, ...m.ops);
      body = m.bytes;
    }
    const r = await send(c.base, b.path, postJson(body));
    if (b.path === '/api/sample' || b.path === '/api/complete') return streamVerdict(r, b.path);
    return r.status === 200 ? { verdict: 'accepted' } : refusal(r, b.path);
  },
  // Many of the above at once, with the health probe sent while they are in flight.
  async flood(c, rng, ops) {
    const n = rng.int(20, 61);
    ops.push(`${n} at once`);
    const flood: Promise<Outcome>[] = [];
    for (let i = 0; i < n; i++) {
      const what = rng.pick(['upload', 'upload', 'bomb', 'sample', 'sample', 'stream', 'json', 'page'] as const);
      const job = what === 'upload' ? upload(c, rng.next() < 0.5 ? c.png : mutateBytes(c.png, rng).bytes).then((r) => uploadVerdict(r, IMAGE, 'flood upload'))
        : what === 'bomb' ? upload(c, rng.next() < 0.5 ? c.bomb : c.innerBomb).then((r) => uploadVerdict(r, null, 'flood bomb'))
        : what === 'sample' ? send(c.base, '/api/sample', postJson(JSON.stringify({ run: RUN, n: rng.int(1, 9), seed: i }))).then((r) => streamVerdict(r, 'flood sample'))
        : what === 'stream' ? send(c.base, `/api/metrics/stream?run=${RUN}`, { until: 'event: records' }).then((r) => (r.status === 200 ? { verdict: 'accepted' as const } : refusal(r, 'flood stream')))
        : what === 'json' ? send(c.base, '/api/bits', postJson(`{"run": "${RUN}", "image": [${'1,'.repeat(rng.int(0, 200_000))}`)).then((r) => refusal(r, 'flood json'))
        : send(c.base, rng.pick(['/', '/app.css', '/favicon.ico', '/api/runs'])).then((r) => (r.status === 200 ? { verdict: 'accepted' as const } : refusal(r, 'flood page')));
      flood.push(job.catch((e: Error) => ({ verdict: /timeout/.test(e.message) ? 'hang' as const : 'crash' as const, detail: `flood ${what}: ${e.message}` })));
    }
    const health = await probe(c.base);
    const outcomes = await Promise.all(flood);
    const bad = outcomes.find((o) => o.verdict !== 'accepted' && o.verdict !== 'clean-error');
    if (bad) return bad;
    if (health.verdict !== 'accepted') return { verdict: health.verdict, detail: `during the flood: ${health.detail}` };
    return outcomes.some((o) => o.verdict === 'clean-error') ? { verdict: 'clean-error', detail: `${outcomes.filter((o) => o.verdict === 'clean-error').length} of ${n} refused` } : { verdict: 'accepted' };
  },
};

/** Case kinds and how often each is drawn. */
const WEIGHTS: [string, number][] = [['png-damaged', 28], ['png-declared', 10], ['bomb', 4], ['content-type', 8], ['body', 12], ['traversal', 14], ['json', 20], ['flood', 4]];

let healthMaxMs = 0;

/** GET /api/health: accepted when it answers ok within HEALTH_MS. */
async function probe(base: URL): Promise<Outcome & { ms: number }> {
  try {
    const r = await send(base, '/api/health', { timeoutMs: 30_000 });
    healthMaxMs = Math.max(healthMaxMs, r.ms);
    if (r.status !== 200) return { verdict: 'internal-error', detail: `health answered ${r.status}`, ms: r.ms };
    if (r.ms > HEALTH_MS) return { verdict: 'hang', detail: `health took ${r.ms.toFixed(0)} ms (the bound is ${HEALTH_MS})`, ms: r.ms };
    return { verdict: 'accepted', ms: r.ms };
  } catch (e) {
    return { verdict: 'hang', detail: `health: ${(e as Error).message}`, ms: Infinity };
  }
}

/** A tiny run to serve, with a file beside it that must never be served and a symlink leading to it. */
async function servedRuns(): Promise<TinyRuns> {
  const runs = await trainTinyRuns(['gated-pixelcnn-fmnist'], 2);
  writeFileSync(join(runs.root, '..', 'secret.txt'), 'SECRET-7f3a\n');
  symlinkSync(join(runs.root, '..'), join(runs.root, 'escape'));
  mkdirSync(join(runs.root, 'not-a-run'));
  return runs;
}

/** The serve family: `count` cases (case 0 is the 20000×20000 bomb), each followed by a health probe. */
export async function fuzzServe(o: FamilyOptions = {}): Promise<ServeFuzzTally> {
  healthMaxMs = 0;
  const runs = await servedRuns();
  // One model worker and a queue of two, so that floods meet the 503; bodies cut off after 1 s.
  const opts: ServeOptions = { runDirs: [runs.root], workers: 1, maxQueue: 2, pollMs: 200, bodyMs: 1000 };
  let server = await startServeProcess(opts);
  const ctx: Ctx = {
    base: server.url,
    png: encodePng({ width: 28, height: 28, channels: 1, depth: 8, data: Uint8Array.from(IMAGE) }),
    bomb: pngBomb(20000, 20000),
    innerBomb: craftPng({ width: 28, height: 28 }, zerosZlib(64 << 20)),
  };
  let bomb: ServeFuzzTally['bomb'] = null;
  let peakMB: number | null = null;
  try {
    // Warm up: the model loaded, the image decoder started; then the resting size.
    await send(ctx.base, '/api/sample', postJson(JSON.stringify({ run: RUN, n: 1 })));
    await upload(ctx, ctx.png);
    const restingMB = server.memory()?.rssMB ?? null;
    const total = WEIGHTS.reduce((a, [, w]) => a + w, 0);
    const tally = await runFuzz({
      family: 'serve', seed: o.seed ?? 25, count: Math.max(2, Math.round((o.count ?? 3000) / 10)), hangMs: 20_000,
      make: (rng, index): FuzzCase => {
        let x = rng.next() * total;
        const kind = index === 0 ? 'bomb-20000' : WEIGHTS.find(([, w]) => (x -= w) < 0)![0];
        const ops = [kind];
        return {
          ops,
          run: async () => {
            if (!server.alive()) {
              server = await startServeProcess(opts);
              ctx.base = server.url;
            }
            const rested = server.memory()?.rssMB ?? null;
            const peaks = server.resetPeak();
            const t0 = performance.now();
            let out: Outcome;
            try {
              out = await KINDS[kind]!(ctx, rng, ops);
            } catch (e) {
              out = /timeout/.test((e as Error).message) ? { verdict: 'hang', detail: (e as Error).message } : { verdict: 'crash', detail: `the client: ${(e as Error).message}` };
            }
            const ms = performance.now() - t0;
            if (!server.alive()) return { verdict: 'crash', detail: `the server died (${out.detail ?? out.verdict})` };
            const m = server.memory();
            if (m !== null && peaks) peakMB = Math.max(peakMB ?? 0, m.peakMB);
            if (index === 0) bomb = { bytes: ctx.bomb.length, status: Number(/: (\d{3}) /.exec(out.detail ?? '')?.[1] ?? 0), ms, peakMB: m !== null && peaks ? m.peakMB : null, restingMB: rested };
            if (m !== null && peaks && rested !== null && m.peakMB - rested > MEMORY_MB) return { verdict: 'internal-error', detail: `the server's memory peaked ${(m.peakMB - rested).toFixed(0)} MB over its ${rested.toFixed(0)} MB (${out.detail ?? out.verdict})` };
            const health = await probe(ctx.base);
            if (health.verdict !== 'accepted') return { verdict: health.verdict, detail: `after the case: ${health.detail}` };
            return out;
          },
        };
      },
    });
    return { ...tally, healthMaxMs, restingMB, peakMB, bomb };
  } finally {
    await server.stop();
    runs.cleanup();
  }
}
