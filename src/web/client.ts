// The page's side of its Web Workers (worker.ts): starts them, learns which backend they compute
// on, and runs one job at a time on them with the engine's messages, as the server's pool does.
// A sampling or completion job of n images is split between up to `threads` workers (the page's
// threads, which share no memory, so they work on every static host): each samples its part of
// the batch with samplePart — the images the whole batch gives them — and the parts' rows (or
// pixels) are put back together (merge.ts) before they reach the panels. Other jobs run on the
// first worker. Stop sets the shared cell every worker's sampler reads after every row (when the
// page is cross-origin isolated and may share memory), else ends the workers of the job, and the
// next job starts fresh ones.

import type { BatchPart } from '../models/sampling/index.js';
import type { FromPage, ModelSource, ToPage } from './messages.js';
import { PartsMerger, splitBatch } from './merge.js';
import type { ModelJob, WorkerMessage } from './protocol.js';

interface WorkerLike {
  onmessage: ((e: { data: ToPage }) => void) | null;
  onerror: ((e: { message?: string; preventDefault?: () => void }) => void) | null;
  postMessage(message: FromPage): void;
  terminate(): void;
}

type WorkerCtor = new (url: string, opts: { type: 'module'; name?: string }) => WorkerLike;

export interface BackendInfo {
  backend: 'wasm' | 'ts';
  note: string;
}

/** The most workers a page starts: each holds its own copy of the model and of the backend. */
export const MAX_THREADS = 4;

/** The page's default: a worker per core, up to MAX_THREADS. */
export function defaultThreads(): number {
  const cores = (globalThis as { navigator?: { hardwareConcurrency?: number } }).navigator?.hardwareConcurrency ?? 1;
  return Math.max(1, Math.min(MAX_THREADS, Math.floor(cores)));
}

/** A job the worker refused or could not run: its one line. */
export class EngineError extends Error {
  constructor(readonly status: number, message: string) {
    super(message);
  }
}

/** One Web Worker and the part of a job it runs. */
class Slot {
  private worker: WorkerLike | null = null;
  private ready: Promise<BackendInfo> | null = null;
  private readyResolve: ((b: BackendInfo) => void) | null = null;
  /** The job this worker is running: its id and where its messages go. */
  job: { id: number; onMessage: (m: WorkerMessage) => void; onFailure: (e: EngineError) => void } | null = null;

  constructor(private readonly index: number, private readonly init: Extract<FromPage, { type: 'init' }>, private readonly url: string) {}

  get started(): boolean {
    return this.worker !== null;
  }

  backend(): Promise<BackendInfo> {
    this.start();
    return this.ready!;
  }

  start(): WorkerLike {
    if (this.worker) return this.worker;
    const Ctor = (globalThis as { Worker?: WorkerCtor }).Worker;
    if (!Ctor) throw new EngineError(500, 'this browser has no Web Workers, which the page computes in');
    let w: WorkerLike;
    try {
      w = new Ctor(this.url, { type: 'module', name: this.index === 0 ? 'arpix' : `arpix-${this.index + 1}` });
    } catch (e) {
      throw new EngineError(500, `the page's worker could not start (${e instanceof Error ? e.message : String(e)})`);
    }
    this.worker = w;
    this.ready = new Promise<BackendInfo>((resolve) => { this.readyResolve = resolve; });
    w.onmessage = ({ data }) => {
      if (data.type === 'ready') {
        this.readyResolve?.({ backend: data.backend, note: data.note });
        return;
      }
      const j = this.job;
      if (!j || data.id !== j.id) return; // a stopped job's last words
      j.onMessage(data.msg);
    };
    w.onerror = (e) => {
      e.preventDefault?.();
      const j = this.job;
      this.kill();
      j?.onFailure(new EngineError(500, `the page's worker failed: ${e.message ?? 'it could not load (see the browser console)'}`));
    };
    w.postMessage(this.init);
    return w;
  }

  post(message: FromPage): void {
    this.start().postMessage(message);
  }

  kill(): void {
    this.worker?.terminate();
    this.worker = null;
    this.job = null;
    // The next worker says again which backend it chose.
    this.readyResolve?.({ backend: 'ts', note: 'the worker stopped' });
    this.ready = null;
  }
}

export class LocalEngine {
  private readonly slots: Slot[] = [];
  private tail: Promise<unknown> = Promise.resolve();
  private nextId = 1;
  private readonly cancel: Int32Array | null;
  private readonly init: Extract<FromPage, { type: 'init' }>;
  /** Workers a sampling job is split between (fewer when it has fewer images); 1 is one worker. */
  threads = defaultThreads();

  /** `workerUrl`: the worker's bundle; `wasmUrl`: the module, or null with `wasmReason`. */
  constructor(private readonly workerUrl: string, wasmUrl: string | null, wasmReason: string | null) {
    const g = globalThis as { crossOriginIsolated?: boolean; SharedArrayBuffer?: typeof SharedArrayBuffer };
    this.cancel = g.crossOriginIsolated && g.SharedArrayBuffer ? new Int32Array(new SharedArrayBuffer(4)) : null;
    // Every worker gets the same cell: Stop writes the job's id, which all its parts run under.
    // Each worker's WebAssembly kernels get the page's threads (where it is cross-origin isolated); a
    // job split between k workers uses floor(threads / k) of them in each, a job on one worker all.
    this.init = { type: 'init', wasmUrl, wasmReason, cancel: this.cancel ? (this.cancel.buffer as SharedArrayBuffer) : null, threads: defaultThreads() };
  }

  /** Threads of shared memory: whether Stop can stop a job without ending the workers. */
  get sharesMemory(): boolean {
    return this.cancel !== null;
  }

  /** Workers started now (the browser tests read it). */
  get workers(): number {
    return this.slots.filter((s) => s.started).length;
  }

  private slot(i: number): Slot {
    while (this.slots.length <= i) this.slots.push(new Slot(this.slots.length, this.init, this.workerUrl));
    return this.slots[i]!;
  }

  /**
   * Starts the workers a batch is split between, so that their scripts, backends and first weights
   * load while the page sets itself up rather than after its first job is asked for.
   */
  warm(): void {
    for (let i = 0; i < this.threadsFor(MAX_THREADS); i++) this.slot(i).start();
  }

  /** The backend the first worker computes on (starting it if needed). */
  backend(): Promise<BackendInfo> {
    return this.slot(0).backend();
  }

  /** Workers a sampling job of n images runs on: `threads`, at most MAX_THREADS and n. */
  threadsFor(n: number): number {
    return Math.max(1, Math.min(Math.floor(this.threads) || 1, MAX_THREADS, n));
  }

  /** Into how many parts a job is split: sampling and completion by `threads`, the rest not at all. */
  private partsOf(job: ModelJob): BatchPart[] | null {
    if (job.op !== 'sample') return null;
    const k = this.threadsFor(job.n);
    return k > 1 ? splitBatch(job.n, k) : null;
  }

  /**
   * Runs a job on the run `source` names; messages stream to onMessage until 'done' (a split job's
   * rows and pixels whole, as one worker would send them). Resolves 'cancelled' when `signal`
   * aborts first; rejects with an EngineError saying what went wrong.
   */
  run(source: ModelSource, job: ModelJob, onMessage: (m: WorkerMessage) => void, signal?: AbortSignal): Promise<'done' | 'cancelled'> {
    const go = (): Promise<'done' | 'cancelled'> => {
      if (signal?.aborted) return Promise.resolve('cancelled');
      // Workers beyond the threads asked for are ended between jobs (each holds a model).
      for (const s of this.slots.slice(this.threadsFor(MAX_THREADS))) s.kill();
      return this.runParts(source, job, this.partsOf(job), onMessage, signal);
    };
    // One job at a time: a job starts when the one before it has ended, however it ended.
    const p = this.tail.then(go, go);
    this.tail = p.catch(() => undefined);
    return p;
  }

  private runParts(source: ModelSource, job: ModelJob, parts: BatchPart[] | null, onMessage: (m: WorkerMessage) => void, signal?: AbortSignal): Promise<'done' | 'cancelled'> {
    const id = this.nextId++;
    const k = parts?.length ?? 1;
    const slots = Array.from({ length: k }, (_, i) => this.slot(i));
    return new Promise<'done' | 'cancelled'>((resolve, reject) => {
      let over = false;
      const finish = (outcome: 'done' | 'cancelled' | EngineError | Error) => {
        if (over) return;
        over = true;
        signal?.removeEventListener('abort', onAbort);
        for (const s of slots) if (s.job?.id === id) s.job = null;
        if (outcome instanceof Error) reject(outcome);
        else resolve(outcome);
      };
      // Ends the job on every worker running a part of it: through the shared cell, or by ending them.
      const stop = () => {
        if (this.cancel) Atomics.store(this.cancel, 0, id);
        else for (const s of slots) if (s.job?.id === id) s.kill();
      };
      const onAbort = () => {
        if (over) return;
        stop();
        finish('cancelled');
      };
      const fail = (e: unknown) => {
        if (over) return;
        stop();
        finish(e instanceof Error ? e : new Error(String(e)));
      };
      const merged = parts ? new Merged(parts, job as Extract<ModelJob, { op: 'sample' }>, onMessage) : null;
      slots.forEach((s, p) => {
        s.job = {
          id,
          onFailure: fail,
          onMessage: (m) => {
            if (over) return;
            if (m.type === 'error') {
              // This worker is idle again; the job's other parts are stopped.
              s.job = null;
              return fail(new EngineError(m.status, m.message));
            }
            if (m.type === 'cancelled') {
              s.job = null;
              return finish('cancelled');
            }
            try {
              if (merged ? merged.add(p, m) : (onMessage(m), m.type === 'done')) finish('done');
            } catch (e) {
              fail(e);
            }
          },
        };
      });
      signal?.addEventListener('abort', onAbort, { once: true });
      try {
        const threads = Math.max(1, Math.floor(defaultThreads() / k));
        slots.forEach((s, p) => s.post({ type: 'job', id, source, job: parts && job.op === 'sample' ? { ...job, part: parts[p]! } : job, threads }));
      } catch (e) {
        fail(e);
      }
    });
  }
}

/** A split job's messages made into one worker's: one 'start', whole rows or pixels, one 'done'. */
class Merged {
  private readonly merger: PartsMerger;
  private started = 0;
  private doneCount = 0;
  private loadSeconds = 0;
  private width = 0;
  private firstStart = 0;

  constructor(private readonly parts: readonly BatchPart[], private readonly job: Extract<ModelJob, { op: 'sample' }>, private readonly onMessage: (m: WorkerMessage) => void) {
    this.merger = new PartsMerger(job.n, parts);
  }

  /** Part p's message; true when the whole job is done. */
  add(p: number, m: WorkerMessage): boolean {
    switch (m.type) {
      case 'start':
        // The parts load their models at once: the job starts when the last has.
        if (this.started === 0) this.firstStart = performance.now();
        this.width = m.model.width;
        this.loadSeconds = Math.max(this.loadSeconds, m.loadSeconds);
        if (++this.started === this.parts.length) this.onMessage({ ...m, loadSeconds: this.loadSeconds });
        return false;
      case 'row': {
        const values = this.merger.add(p, m.y, m.values);
        if (values) this.onMessage({ type: 'row', y: m.y, values });
        return false;
      }
      case 'pixel': {
        const values = this.merger.add(p, m.y * this.width + m.x, m.values);
        if (values) this.onMessage({ type: 'pixel', y: m.y, x: m.x, values });
        return false;
      }
      case 'done':
        if (++this.doneCount < this.parts.length) return false;
        if (this.merger.waiting > 0) throw new EngineError(500, `the page's workers ended ${this.job.granularity === 'row' ? 'rows' : 'pixels'} they did not all send`);
        // Wall time on the page, from the first part starting to sample to the last finishing.
        this.onMessage({ type: 'done', result: null, seconds: (performance.now() - this.firstStart) / 1000 });
        return true;
      default:
        return false;
    }
  }
}
