// The page's side of its Web Worker (worker.ts): starts it, learns which backend it computes on,
// and runs one job at a time on it with the engine's messages, as the server's pool does. Stop
// sets the shared cell the sampler reads after every row (when the page is cross-origin isolated
// and may share memory), else ends the worker, and the next job starts a fresh one.

import type { FromPage, ModelSource, ToPage } from './messages.js';
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

interface Running {
  id: number;
  onMessage: (m: WorkerMessage) => void;
  resolve: (outcome: 'done' | 'cancelled') => void;
  reject: (e: Error) => void;
}

/** A job the worker refused or could not run: its one line. */
export class EngineError extends Error {
  constructor(readonly status: number, message: string) {
    super(message);
  }
}

export class LocalEngine {
  private worker: WorkerLike | null = null;
  private ready: Promise<BackendInfo> | null = null;
  private readyResolve: ((b: BackendInfo) => void) | null = null;
  private running: Running | null = null;
  private tail: Promise<unknown> = Promise.resolve();
  private nextId = 1;
  private readonly cancel: Int32Array | null;

  /** `workerUrl`: the worker's bundle; `wasmUrl`: the module, or null with `wasmReason`. */
  constructor(private readonly workerUrl: string, private readonly wasmUrl: string | null, private readonly wasmReason: string | null) {
    const g = globalThis as { crossOriginIsolated?: boolean; SharedArrayBuffer?: typeof SharedArrayBuffer };
    this.cancel = g.crossOriginIsolated && g.SharedArrayBuffer ? new Int32Array(new SharedArrayBuffer(4)) : null;
  }

  /** Threads of shared memory: whether Stop can stop a job without ending the worker. */
  get sharesMemory(): boolean {
    return this.cancel !== null;
  }

  /** The backend the worker computes on (starting it if needed). */
  backend(): Promise<BackendInfo> {
    this.start();
    return this.ready!;
  }

  private start(): WorkerLike {
    if (this.worker) return this.worker;
    const Ctor = (globalThis as { Worker?: WorkerCtor }).Worker;
    if (!Ctor) throw new EngineError(500, 'this browser has no Web Workers, which the page computes in');
    let w: WorkerLike;
    try {
      w = new Ctor(this.workerUrl, { type: 'module', name: 'arpix' });
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
      const r = this.running;
      if (!r || data.id !== r.id) return; // a stopped job's last words
      const m = data.msg;
      if (m.type === 'error') {
        this.running = null;
        r.reject(new EngineError(m.status, m.message));
      } else if (m.type === 'cancelled') {
        this.running = null;
        r.resolve('cancelled');
      } else {
        try {
          r.onMessage(m);
        } catch (e) {
          this.stop();
          r.reject(e instanceof Error ? e : new Error(String(e)));
          return;
        }
        if (m.type === 'done') {
          this.running = null;
          r.resolve('done');
        }
      }
    };
    w.onerror = (e) => {
      e.preventDefault?.();
      const r = this.running;
      this.kill();
      r?.reject(new EngineError(500, `the page's worker failed: ${e.message ?? 'it could not load (see the browser console)'}`));
    };
    w.postMessage({ type: 'init', wasmUrl: this.wasmUrl, wasmReason: this.wasmReason, cancel: this.cancel ? (this.cancel.buffer as SharedArrayBuffer) : null });
    return w;
  }

  private kill(): void {
    this.worker?.terminate();
    this.worker = null;
    this.running = null;
    // The next worker says again which backend it chose.
    this.readyResolve?.({ backend: 'ts', note: 'the worker stopped' });
    this.ready = null;
  }

  /** Ends the running job: through the shared cell, or by ending the worker. */
  private stop(): void {
    const r = this.running;
    if (!r) return;
    if (this.cancel) {
      Atomics.store(this.cancel, 0, r.id);
      this.running = null;
    } else {
      this.kill();
    }
    r.resolve('cancelled');
  }

  /**
   * Runs a job on the run `source` names; messages stream to onMessage until 'done'. Resolves
   * 'cancelled' when `signal` aborts first; rejects with an EngineError saying what went wrong.
   */
  run(source: ModelSource, job: ModelJob, onMessage: (m: WorkerMessage) => void, signal?: AbortSignal): Promise<'done' | 'cancelled'> {
    const go = (): Promise<'done' | 'cancelled'> => {
      if (signal?.aborted) return Promise.resolve('cancelled');
      const w = this.start();
      return new Promise<'done' | 'cancelled'>((resolve, reject) => {
        const id = this.nextId++;
        const onAbort = () => { if (this.running?.id === id) this.stop(); };
        const done = <T>(f: (v: T) => void) => (v: T) => { signal?.removeEventListener('abort', onAbort); f(v); };
        this.running = { id, onMessage, resolve: done(resolve), reject: done(reject) };
        signal?.addEventListener('abort', onAbort, { once: true });
        w.postMessage({ type: 'job', id, source, job });
      });
    };
    // One job at a time: a job starts when the one before it has ended, however it ended.
    const p = this.tail.then(go, go);
    this.tail = p.catch(() => undefined);
    return p;
  }
}
