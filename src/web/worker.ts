// The page's Web Worker: the model engine (engine.ts) off the page's main thread. It chooses its
// backend once (WebAssembly when the page gives it a .wasm that loads, else the TypeScript
// reference, and says which and why), fetches a run's weights the first time a job needs them,
// checks them as every reader of a checkpoint does, and answers each job with the engine's
// messages. The page may run several of these, each sampling its part of a batch (the job's
// `part`). A job is stopped through a shared cell when the page is cross-origin isolated (the
// page terminates the worker otherwise). Given `train-*` messages instead, a worker is the page's
// trainer (train-worker.ts). Nothing here throws past a message: every failure is one line for the
// page to show.

import { registerBackend, setBackend } from '../backends/registry.js';
import { Cancelled, checkModelJob, facts, jobError, loadModelBytes, runModelJob, type LoadedModel } from './engine.js';
import { checkListed, fetchBytes, PageError } from './fetch.js';
import type { ModelFacts, WorkerMessage } from './protocol.js';
import { chooseWasm, threadedWasmBackend, wasmBackend, WASM_HELPER_FILE, WASM_THREADS_FILE } from './wasm.js';
import type { WasmBackend } from '../backends/wasm/index.js';
import type { FromPage, ModelSource, ToPage } from './messages.js';
import type { TrainFromPage, TrainToPage } from './train-messages.js';
import { onTrainMessage } from './train-worker.js';

interface WorkerScope {
  onmessage: ((e: { data: FromPage | TrainFromPage }) => void) | null;
  postMessage(message: ToPage | TrainToPage, transfer?: ArrayBuffer[]): void;
}

const scope = globalThis as unknown as WorkerScope;
const models = new Map<string, { loaded: LoadedModel; facts: ModelFacts }>();
const KEEP_MODELS = 3;
let cancel: Int32Array | null = null;
let queue: Promise<void> = Promise.resolve();

/** How this worker's last job ended, and which part of its batch it sampled (the browser tests read it). */
interface LastJob {
  id: number;
  outcome: 'done' | 'cancelled' | 'error';
  part: { from: number; to: number } | null;
}
const record = (last: LastJob) => { (globalThis as { arpixLastJob?: LastJob }).arpixLastJob = last; };

/** The WebAssembly backend this worker chose, if it did: a job sets how many of its threads it uses. */
let wasm: WasmBackend | null = null;

/** The threads module beside `wasmUrl` on `threads` threads, or null with why not (then the one-thread module). */
async function threadedBackend(wasmUrl: string, threads: number): Promise<{ backend: WasmBackend; url: string; bytes: number } | { why: string }> {
  const g = globalThis as { crossOriginIsolated?: boolean; location?: { href: string } };
  if (threads <= 1) return { why: 'one thread asked for' };
  if (!g.crossOriginIsolated) return { why: 'the page is not cross-origin isolated, so it cannot share memory between threads' };
  const here = g.location?.href ?? '';
  const url = new URL(WASM_THREADS_FILE, new URL(wasmUrl, here)).href;
  try {
    const bytes = await fetchBytes(url, 'the WebAssembly threads module');
    const backend = await threadedWasmBackend(bytes, threads, new URL(WASM_HELPER_FILE, here).href);
    const failure = backend.threadsError();
    return failure ? { why: failure } : { backend, url, bytes: bytes.length };
  } catch (e) {
    return { why: `the threads module did not load (${e instanceof Error ? e.message : String(e)})` };
  }
}

/** WebAssembly when its bytes load into a backend (on threads where the page may share memory), else the TypeScript reference; and why. */
async function chooseBackend(wasmUrl: string | null, reason: string | null, threads: number): Promise<{ backend: 'wasm' | 'ts'; note: string }> {
  if (wasmUrl === null) return { backend: 'ts', note: reason ?? 'no WebAssembly module was given' };
  const pool = await threadedBackend(wasmUrl, threads);
  if ('backend' in pool) {
    wasm = chooseWasm(pool.backend);
    registerBackend('wasm', wasm);
    setBackend('wasm');
    return { backend: 'wasm', note: `WebAssembly on ${wasm.threads()} threads (${pool.url}, ${(pool.bytes / 1024).toFixed(0)} KiB)` };
  }
  try {
    const bytes = await fetchBytes(wasmUrl, 'the WebAssembly module');
    wasm = chooseWasm(await wasmBackend(bytes));
    registerBackend('wasm', wasm);
    setBackend('wasm');
    return { backend: 'wasm', note: `WebAssembly on one thread (${wasmUrl}, ${(bytes.length / 1024).toFixed(0)} KiB; ${pool.why})` };
  } catch (e) {
    registerBackend('wasm', null, e instanceof Error ? e.message : String(e));
    setBackend('ts');
    return { backend: 'ts', note: `the WebAssembly backend did not load (${e instanceof Error ? e.message : String(e)}); the TypeScript backend computes instead` };
  }
}

/** Weights fetched as soon as a job names them, while the jobs before it (and the backend) get ready. */
const fetching = new Map<string, Promise<Uint8Array<ArrayBuffer>>>();

function prefetch(src: ModelSource): void {
  if (models.has(src.key) || fetching.has(src.url)) return;
  const p = fetchBytes(src.url, `the weights of run ${src.key}`);
  p.catch(() => {}); // its job reports the failure
  fetching.set(src.url, p);
}

/** The run's model: loaded and checked once, then kept (a few runs at a time). */
async function modelOf(src: ModelSource): Promise<{ entry: { loaded: LoadedModel; facts: ModelFacts }; seconds: number }> {
  const have = models.get(src.key);
  if (have) return { entry: have, seconds: 0 };
  const t0 = performance.now();
  prefetch(src);
  const pending = fetching.get(src.url)!;
  fetching.delete(src.url);
  const bytes = await pending;
  await checkListed(bytes, src.file, src.sha256);
  // The whole file matched the digest the export took of a checked checkpoint: its inner sums hold.
  const loaded = loadModelBytes(bytes, src.file, { allowUnverified: src.allowUnverified }, { digestChecked: src.sha256 !== null });
  const f = facts(loaded.model);
  const e = src.expect;
  if (e && (e.kind !== f.kind || e.height !== f.height || e.width !== f.width || e.channels !== f.channels)) {
    throw new PageError(`${src.file} holds a ${f.kind} model of ${f.height}×${f.width}×${f.channels} images, but run ${src.key} is listed as a ${e.kind} of ${e.height}×${e.width}×${e.channels}; export the page again`);
  }
  const entry = { loaded, facts: f };
  models.set(src.key, entry);
  while (models.size > KEEP_MODELS) models.delete(models.keys().next().value!);
  return { entry, seconds: (performance.now() - t0) / 1000 };
}

async function runJob(id: number, src: ModelSource, job: Parameters<typeof runModelJob>[1]): Promise<void> {
  const part = job.op === 'sample' ? job.part ?? null : null;
  const post = (msg: WorkerMessage, transfer?: ArrayBuffer[]) => {
    if (msg.type === 'done' || msg.type === 'cancelled' || msg.type === 'error') record({ id, outcome: msg.type, part });
    scope.postMessage({ type: 'job', id, msg }, transfer);
  };
  const cancelled = () => cancel !== null && Atomics.load(cancel, 0) === id;
  try {
    const { entry, seconds } = await modelOf(src);
    checkModelJob(entry.facts, job);
    post({ type: 'start', model: entry.facts, loadSeconds: seconds });
    const t0 = performance.now();
    const result = runModelJob(entry.loaded, job, post, cancelled);
    post({ type: 'done', result, seconds: (performance.now() - t0) / 1000 });
  } catch (e) {
    if (e instanceof Cancelled) return post({ type: 'cancelled' });
    if (e instanceof PageError) return post({ type: 'error', status: 422, message: e.message });
    const { status, message } = jobError(e);
    post({ type: 'error', status, message });
  }
}

scope.onmessage = ({ data }) => {
  if (data.type === 'init') {
    cancel = data.cancel ? new Int32Array(data.cancel) : null;
    queue = queue.then(async () => {
      const r = await chooseBackend(data.wasmUrl, data.wasmReason, data.threads ?? 1);
      scope.postMessage({ type: 'ready', backend: r.backend, note: r.note });
    });
  } else if (data.type === 'job') {
    // One job at a time, in the order given: a job waits for the one before it, its weights not.
    prefetch(data.source);
    queue = queue.then(() => {
      wasm?.setThreads(data.threads ?? wasm.pool);
      return runJob(data.id, data.source, data.job);
    });
  } else {
    // The page's trainer (train-worker.ts): its stop and snapshot requests are not queued behind its training.
    onTrainMessage(data, (event, transfer) => scope.postMessage({ type: 'train', event }, transfer), queue);
  }
};
