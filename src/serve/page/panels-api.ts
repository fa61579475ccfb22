// Where the page's panels get their numbers: one interface, three ways. `server`: arpix serve
// computes (HTTP and Server-Sent Events). `page` under arpix serve: the server gives the runs,
// their curves, test images and weights, and the page's Web Worker computes the panels with the
// same engine. `static`: the folder `arpix export --web` wrote, nothing on any server — runs,
// curves and test images are its files, uploads are decoded by the browser. Sampling events
// have the same names and data whichever way computes them.

import type { BitsResult, FieldResult, InfoResult, RunSummary, TestImageResult } from '../protocol.js';
import type { CodecMode } from '../../codec/format.js';
import { EngineError, LocalEngine, type BackendInfo } from '../../web/client.js';
import type { ModelSource } from '../../web/messages.js';
import { compressedFileName, type CompressResult, type ModelJob, type WorkerMessage } from '../../web/protocol.js';
import type { PageConfig, StaticRun } from '../../web/page-config.js';
import { ApiError, getJson, postBytes, postForFile, postJson, streamEvents } from './api.js';

export type OnEvent = (event: string, data: unknown) => void;

export interface SampleRequest {
  n: number;
  seed: number;
  temperature: number;
  label: number | null;
  granularity: 'row' | 'pixel';
  complete: { values: number[]; keepRows: number; mask: number[] | null } | null;
}

/** One image to code into a file of arpix compress. */
export interface CompressRequest {
  values: number[];
  label: number | null;
  mode: CodecMode;
  /** What the file is named after (with the run's name). */
  name: string;
}

/** The file, already decoded back to exactly the image, and its name. */
export interface CompressedFile extends CompressResult {
  fileName: string;
}

/** The modes a way writes files in, and why only those when it says. */
export interface CompressModes {
  modes: CodecMode[];
  note: string | null;
}

export interface MetricsFeed {
  reset(): void;
  records(rs: unknown[]): void;
}

export interface PanelApi {
  /** Where the model panels are computed: 'server', or 'page' (its Web Worker). */
  readonly where: 'server' | 'page';
  /** The page's backend, for the page paths. */
  backend(): Promise<BackendInfo | null>;
  runs(): Promise<RunSummary[]>;
  /** Sends a run's metric records as they come; returns a function that stops. */
  follow(run: RunSummary, feed: MetricsFeed): () => void;
  testImage(run: RunSummary, index: number): Promise<TestImageResult>;
  upload(run: RunSummary, file: Blob): Promise<{ values: number[] }>;
  sample(run: RunSummary, req: SampleRequest, onEvent: OnEvent, signal: AbortSignal): Promise<void>;
  bits(run: RunSummary, values: number[], label: number | null): Promise<BitsResult>;
  field(run: RunSummary, y: number, x: number): Promise<FieldResult>;
  info(run: RunSummary): Promise<InfoResult>;
  compressModes(): Promise<CompressModes>;
  /** The image coded into a file of arpix compress, given only once it decoded back to exactly the image. */
  compress(run: RunSummary, req: CompressRequest, signal: AbortSignal): Promise<CompressedFile>;
}

const q = encodeURIComponent;

/** arpix serve computes everything. */
export class ServerApi implements PanelApi {
  readonly where: 'server' | 'page' = 'server';

  /** `modes`: the ones the server's workers write (its page config). */
  constructor(private readonly modes: CodecMode[]) {}

  backend(): Promise<BackendInfo | null> {
    return Promise.resolve(null);
  }

  async runs(): Promise<RunSummary[]> {
    return (await getJson<{ runs: RunSummary[] }>('/api/runs')).runs;
  }

  follow(run: RunSummary, feed: MetricsFeed): () => void {
    const source = new EventSource(`/api/metrics/stream?run=${q(run.id)}`);
    source.addEventListener('reset', () => feed.reset());
    source.addEventListener('records', (ev) => feed.records(JSON.parse((ev as MessageEvent).data as string) as unknown[]));
    return () => source.close();
  }

  testImage(run: RunSummary, index: number): Promise<TestImageResult> {
    return getJson<TestImageResult>(`/api/test-image?run=${q(run.id)}&index=${index}`);
  }

  upload(run: RunSummary, file: Blob): Promise<{ values: number[] }> {
    return postBytes<{ values: number[] }>(`/api/upload?run=${q(run.id)}`, file);
  }

  async sample(run: RunSummary, req: SampleRequest, onEvent: OnEvent, signal: AbortSignal): Promise<void> {
    const { complete, n, ...rest } = req;
    const body = complete
      ? { run: run.id, ...rest, samples: n, image: complete.values, keepRows: complete.keepRows, mask: complete.mask }
      : { run: run.id, ...rest, n };
    await streamEvents(complete ? '/api/complete' : '/api/sample', body, (event, data) => {
      if (event === 'error') throw new ApiError((data as { status: number }).status, (data as { message: string }).message);
      onEvent(event, data);
    }, signal);
  }

  bits(run: RunSummary, values: number[], label: number | null): Promise<BitsResult> {
    return postJson<BitsResult>('/api/bits', { run: run.id, image: values, label });
  }

  field(run: RunSummary, y: number, x: number): Promise<FieldResult> {
    return postJson<FieldResult>('/api/field', { run: run.id, y, x });
  }

  info(run: RunSummary): Promise<InfoResult> {
    return getJson<InfoResult>(`/api/info?run=${q(run.id)}`);
  }

  compressModes(): Promise<CompressModes> {
    return Promise.resolve({ modes: this.modes, note: null });
  }

  async compress(run: RunSummary, req: CompressRequest, signal: AbortSignal): Promise<CompressedFile> {
    const { blob, headers } = await postForFile('/api/compress', { run: run.id, image: req.values, label: req.label, mode: req.mode, name: req.name }, signal);
    if (headers.get('x-arpix-decoded-exactly') !== 'true') throw new Error('the server did not say that the file decoded back exactly');
    return {
      bytes: new Uint8Array(await blob.arrayBuffer()),
      fileName: /filename="([^"]+)"/.exec(headers.get('content-disposition') ?? '')?.[1] ?? compressedFileName(run.id, req.name),
      idealBits: Number(headers.get('x-arpix-model-bits')),
      mode: headers.get('x-arpix-mode') as CodecMode,
      weights: headers.get('x-arpix-weights') === 'raw' ? 'raw' : 'ema',
      encodeSeconds: Number(headers.get('x-arpix-encode-seconds')),
      decodeSeconds: Number(headers.get('x-arpix-decode-seconds')),
    };
  }
}

/** Runs a job on the page's worker and turns its messages into the panels' events. */
async function localStream(engine: LocalEngine, source: ModelSource, job: ModelJob, n: number, seed: number, onEvent: OnEvent, signal: AbortSignal): Promise<void> {
  const t0 = performance.now();
  let first: number | null = null;
  let rows = 0;
  await engine.run(source, job, (m: WorkerMessage) => {
    if (m.type === 'start') onEvent('start', { model: m.model, loadSeconds: m.loadSeconds, n, seed, threads: engine.threadsFor(n) });
    else if (m.type === 'row') {
      first ??= (performance.now() - t0) / 1000;
      rows++;
      onEvent('row', { y: m.y, values: m.values });
    } else if (m.type === 'pixel') {
      first ??= (performance.now() - t0) / 1000;
      onEvent('pixel', { y: m.y, x: m.x, values: m.values });
    } else if (m.type === 'done') onEvent('done', { seconds: m.seconds, firstSeconds: first, totalSeconds: (performance.now() - t0) / 1000, rows });
  }, signal);
}

async function localResult<T>(engine: LocalEngine, source: ModelSource, job: ModelJob): Promise<T> {
  let result: unknown = null;
  await engine.run(source, job, (m) => { if (m.type === 'done') result = m.result; });
  return result as T;
}

/** The page's worker writes wasm files when it computes on WebAssembly, else portable ones, and says why. */
async function localCompressModes(engine: LocalEngine): Promise<CompressModes> {
  const b = await engine.backend();
  if (b.backend === 'wasm') return { modes: ['wasm'], note: null };
  return { modes: ['portable'], note: 'This page computes on the TypeScript backend (its WebAssembly module is not available), so its files are portable ones: exact on any machine, slower to code than wasm files.' };
}

/** The image coded and decoded back in the page's first worker, by the engine's compress job. */
async function localCompress(engine: LocalEngine, source: ModelSource, run: RunSummary, req: CompressRequest, signal: AbortSignal): Promise<CompressedFile> {
  const fileName = compressedFileName(run.id, req.name);
  let result: CompressResult | null = null;
  const outcome = await engine.run(source, { op: 'compress', values: req.values, label: req.label, mode: req.mode, name: fileName }, (m) => { if (m.type === 'done') result = m.result as CompressResult; }, signal);
  if (outcome === 'cancelled' || result === null) throw new ApiError(499, 'cancelled');
  return { ...(result as CompressResult), fileName };
}

function expectOf(r: RunSummary): ModelSource['expect'] {
  return r.kind !== null && r.height !== null && r.width !== null && r.channels !== null ? { kind: r.kind, height: r.height, width: r.width, channels: r.channels } : null;
}

/** Under arpix serve, with the model panels computed in the page. */
export class PageComputeApi extends ServerApi {
  override readonly where = 'page' as const;

  constructor(readonly engine: LocalEngine, private readonly allowUnverified: boolean) {
    super([]);
  }

  override backend(): Promise<BackendInfo | null> {
    return this.engine.backend();
  }

  /** The run's checkpoint as the server has it; a new step is a new model. */
  protected source(run: RunSummary): ModelSource {
    return {
      key: `${run.id}@${run.step ?? 0}`, url: `/api/weights?run=${q(run.id)}`, file: `${run.id}/checkpoint.safetensors`,
      sha256: null, expect: expectOf(run), allowUnverified: this.allowUnverified,
    };
  }

  override sample(run: RunSummary, req: SampleRequest, onEvent: OnEvent, signal: AbortSignal): Promise<void> {
    return localStream(this.engine, this.source(run), { op: 'sample', ...req }, req.n, req.seed, onEvent, signal);
  }

  override bits(run: RunSummary, values: number[], label: number | null): Promise<BitsResult> {
    return localResult<BitsResult>(this.engine, this.source(run), { op: 'bits', values, label });
  }

  override field(run: RunSummary, y: number, x: number): Promise<FieldResult> {
    return localResult<FieldResult>(this.engine, this.source(run), { op: 'field', y, x });
  }

  override info(run: RunSummary): Promise<InfoResult> {
    return localResult<InfoResult>(this.engine, this.source(run), { op: 'info' });
  }

  override compressModes(): Promise<CompressModes> {
    return localCompressModes(this.engine);
  }

  override compress(run: RunSummary, req: CompressRequest, signal: AbortSignal): Promise<CompressedFile> {
    return localCompress(this.engine, this.source(run), run, req, signal);
  }
}

async function fetchJson<T>(url: string, what: string): Promise<T> {
  let res: Response;
  try {
    res = await fetch(url);
  } catch (e) {
    throw new ApiError(0, `${what} could not be fetched from ${url} (${e instanceof Error ? e.message : String(e)})`);
  }
  if (!res.ok) throw new ApiError(res.status, `${what} could not be fetched from ${url}: ${res.status} ${res.statusText}`.trimEnd());
  try {
    return (await res.json()) as T;
  } catch {
    throw new ApiError(422, `${url} is damaged: it is not valid JSON; export the page again`);
  }
}

interface TestImages {
  dataset: string;
  count: number;
  height: number;
  width: number;
  channels: number;
  values: number[][];
  labels: number[] | null;
}

/** The folder of `arpix export --web`: everything from its files, computed in the page. */
export class StaticApi implements PanelApi {
  readonly where = 'page' as const;
  private readonly tests = new Map<string, Promise<TestImages>>();

  constructor(readonly engine: LocalEngine, private readonly config: PageConfig) {}

  backend(): Promise<BackendInfo | null> {
    return this.engine.backend();
  }

  private run(r: RunSummary): StaticRun {
    const s = this.config.runs.find((x) => x.summary.id === r.id);
    if (!s) throw new ApiError(404, `no run '${r.id}' in this page`);
    return s;
  }

  runs(): Promise<RunSummary[]> {
    return Promise.resolve(this.config.runs.map((r) => r.summary));
  }

  follow(r: RunSummary, feed: MetricsFeed): () => void {
    const s = this.run(r);
    let stopped = false;
    if (s.metrics) {
      fetchJson<unknown[]>(s.metrics, `the curves of run ${r.id}`).then((rs) => { if (!stopped && Array.isArray(rs)) feed.records(rs); }).catch(() => {});
    }
    return () => { stopped = true; };
  }

  async testImage(r: RunSummary, index: number): Promise<TestImageResult> {
    const s = this.run(r);
    let p = this.tests.get(r.id);
    if (!p) {
      p = fetchJson<TestImages>(s.tests, `the test images of run ${r.id}`);
      this.tests.set(r.id, p);
      p.catch(() => this.tests.delete(r.id));
    }
    const t = await p;
    const d = (r.height ?? 0) * (r.width ?? 0) * (r.channels ?? 0);
    if (!Array.isArray(t.values) || t.values.some((v) => !Array.isArray(v) || v.length !== d)) throw new ApiError(422, `${s.tests} is damaged: its images are not ${r.height}×${r.width}×${r.channels}; export the page again`);
    if (!Number.isInteger(index) || index < 0 || index >= t.values.length) throw new ApiError(404, `test image ${index} is not in this page: it has ${t.values.length} (0..${t.values.length - 1}); arpix export --web --test-images N exports more`);
    return { index, count: t.values.length, values: t.values[index]!, label: t.labels ? t.labels[index] ?? null : null, dataset: t.dataset };
  }

  /** Decodes an image file with the browser, then checks its size and colour against the model as the server does. */
  async upload(r: RunSummary, file: Blob): Promise<{ values: number[] }> {
    const s = this.run(r);
    const h = r.height ?? 0;
    const w = r.width ?? 0;
    const c = r.channels ?? 1;
    if (file.size === 0) throw new ApiError(400, 'the file is empty: choose a PNG or JPEG image');
    if (file.size > 2 << 20) throw new ApiError(413, `the file is ${file.size} bytes; the limit is ${2 << 20}`);
    const head = new Uint8Array(await file.slice(0, 4).arrayBuffer());
    const png = head[0] === 0x89 && head[1] === 0x50 && head[2] === 0x4e && head[3] === 0x47;
    const jpeg = head[0] === 0xff && head[1] === 0xd8;
    if (!png && !jpeg) throw new ApiError(415, 'the file is not a PNG or JPEG image (its first bytes say otherwise)');
    const url = URL.createObjectURL(file);
    const img = new Image();
    try {
      img.src = url;
      await img.decode();
    } catch {
      throw new ApiError(422, `the image cannot be decoded: it is a damaged ${png ? 'PNG' : 'JPEG'}`);
    } finally {
      URL.revokeObjectURL(url);
    }
    if (img.naturalHeight !== h || img.naturalWidth !== w) throw new ApiError(422, `the image is ${img.naturalWidth}×${img.naturalHeight} but this model takes ${w}×${h}; resize or crop it first`);
    const canvas = document.createElement('canvas');
    canvas.width = w;
    canvas.height = h;
    const ctx = canvas.getContext('2d', { willReadFrequently: true })!;
    ctx.drawImage(img, 0, 0);
    const rgba = ctx.getImageData(0, 0, w, h).data;
    let grey = true;
    for (let p = 0; p < w * h && grey; p++) grey = rgba[p * 4] === rgba[p * 4 + 1] && rgba[p * 4] === rgba[p * 4 + 2];
    if (c === 1 && !grey) throw new ApiError(422, 'the image is RGB but this model takes grey images; convert it first');
    const values: number[] = [];
    for (let p = 0; p < w * h; p++) for (let k = 0; k < c; k++) values.push(s.lut[rgba[p * 4 + k]!]!);
    return { values };
  }

  private source(r: RunSummary): ModelSource {
    const s = this.run(r);
    return { key: r.id, url: s.weights.file, file: s.weights.file, sha256: s.weights.sha256, expect: expectOf(r), allowUnverified: false };
  }

  sample(r: RunSummary, req: SampleRequest, onEvent: OnEvent, signal: AbortSignal): Promise<void> {
    return localStream(this.engine, this.source(r), { op: 'sample', ...req }, req.n, req.seed, onEvent, signal);
  }

  bits(r: RunSummary, values: number[], label: number | null): Promise<BitsResult> {
    return localResult<BitsResult>(this.engine, this.source(r), { op: 'bits', values, label });
  }

  field(r: RunSummary, y: number, x: number): Promise<FieldResult> {
    return localResult<FieldResult>(this.engine, this.source(r), { op: 'field', y, x });
  }

  info(r: RunSummary): Promise<InfoResult> {
    return localResult<InfoResult>(this.engine, this.source(r), { op: 'info' });
  }

  compressModes(): Promise<CompressModes> {
    return localCompressModes(this.engine);
  }

  compress(r: RunSummary, req: CompressRequest, signal: AbortSignal): Promise<CompressedFile> {
    return localCompress(this.engine, this.source(r), r, req, signal);
  }
}

export { EngineError };
