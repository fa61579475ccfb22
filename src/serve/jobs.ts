// A small pool of workers — the model workers, and the decoder of uploaded images — generic in
// the jobs it runs. A job waits in a bounded queue for a free worker; its messages
// stream back as they come; aborting its signal removes it from the queue or, once running, asks
// its worker to stop: the job's number goes into a shared cell the sampler reads after every row
// (or pixel), and the worker is free again once it says so. Terminating a worker instead could
// stop it inside a native kernel, which aborts the whole process. Idle workers never keep the
// process alive.

import type { Worker } from 'node:worker_threads';
import { spawnModuleWorker } from '../data/folder.js';
import { HttpError } from './errors.js';
import type { Job, WorkerMessage } from './protocol.js';

export type JobOutcome = 'done' | 'cancelled';

interface Pending<J> {
  job: J;
  onMessage: (m: WorkerMessage) => void;
  signal: AbortSignal;
  resolve: (o: JobOutcome) => void;
  reject: (e: unknown) => void;
  onAbort?: () => void;
}

interface Slot<J> {
  worker: Worker;
  job: Pending<J> | null;
  /** The number of the job it runs, and the cell it reads to learn that job is cancelled. */
  jobId: number;
  cancel: Int32Array;
  /** A cancelled job still finishing its row: the worker is not free yet. */
  draining: boolean;
}

export interface PoolStats {
  workers: number;
  busy: number;
  queued: number;
  started: number;
  cancelled: number;
}

/** `module`: the worker's file beside this one; it answers each job with WorkerMessages ending in 'done' or 'error'. */
export class WorkerPool<J = Job> {
  private readonly slots: Slot<J>[] = [];
  private readonly queue: Pending<J>[] = [];
  private closed = false;
  private started = 0;
  private cancelled = 0;
  private nextId = 1;

  /** `label`: what its workers are called in messages (plural). */
  /** `workerData`: given to each worker as it starts (the model workers' checkpoint policy). */
  constructor(readonly size = 2, readonly maxQueue = 64, private readonly module = 'worker', private readonly label = 'model workers', private readonly workerData: Record<string, unknown> = {}) {}

  /** Starts the workers now, so the first request does not wait for them to load. */
  warm(): void {
    while (this.slots.length < this.size) this.add();
  }

  stats(): PoolStats {
    return { workers: this.slots.length, busy: this.slots.filter((s) => s.job || s.draining).length, queued: this.queue.length, started: this.started, cancelled: this.cancelled };
  }

  /**
   * Throws the 503 a job given now would get: the pool is closing, or its queue is full. A stream
   * asks first, so that its client reads the status before the stream starts.
   */
  admit(): void {
    if (this.closed) throw new HttpError(503, 'the server is shutting down');
    if (this.queue.length >= this.maxQueue) throw new HttpError(503, `${this.queue.length} jobs are already waiting for the ${this.label}; try again in a moment`);
  }

  /** Runs a job; resolves 'cancelled' when `signal` aborts first, rejects with an HttpError on failure. */
  run(job: J, onMessage: (m: WorkerMessage) => void, signal: AbortSignal): Promise<JobOutcome> {
    try {
      this.admit();
    } catch (e) {
      return Promise.reject(e);
    }
    if (signal.aborted) return Promise.resolve('cancelled');
    return new Promise<JobOutcome>((resolve, reject) => {
      const p: Pending<J> = { job, onMessage, signal, resolve, reject };
      p.onAbort = () => this.cancel(p);
      signal.addEventListener('abort', p.onAbort, { once: true });
      this.queue.push(p);
      this.dispatch();
    });
  }

  async close(): Promise<void> {
    this.closed = true;
    for (const p of this.queue.splice(0)) this.finish(p, 'cancelled');
    for (const s of this.slots) {
      if (s.job) {
        this.finish(s.job, 'cancelled');
        s.job = null;
        s.draining = true;
        Atomics.store(s.cancel, 0, s.jobId);
      }
    }
    // Running jobs stop at their next row; only then is a worker outside native code and safe to end.
    for (let i = 0; i < 500 && this.slots.some((s) => s.draining); i++) await new Promise((r) => setTimeout(r, 10));
    await Promise.all(this.slots.splice(0).map((s) => s.worker.terminate()));
  }

  private add(): Slot<J> {
    const cancel = new Int32Array(new SharedArrayBuffer(4));
    const worker = spawnModuleWorker(import.meta.url, this.module, { ...this.workerData, cancel });
    const slot: Slot<J> = { worker, job: null, jobId: 0, cancel, draining: false };
    worker.unref();
    worker.on('message', (m: WorkerMessage) => {
      if (slot.draining) {
        if (m.type === 'done' || m.type === 'error' || m.type === 'cancelled') this.release(slot);
        return;
      }
      const p = slot.job;
      if (!p) return;
      if (m.type === 'error') {
        this.release(slot);
        this.fail(p, new HttpError(m.status, m.message));
        return;
      }
      if (m.type === 'cancelled') return;
      p.onMessage(m);
      if (m.type === 'done') {
        this.release(slot);
        this.finish(p, 'done');
      }
    });
    const dead = (e: unknown) => {
      const i = this.slots.indexOf(slot);
      if (i < 0) return; // closed on purpose
      this.slots.splice(i, 1);
      if (slot.job) this.fail(slot.job, new HttpError(500, `one of the ${this.label} stopped: ${e instanceof Error ? e.message : String(e)}`));
      slot.job = null;
      slot.draining = false;
      if (!this.closed && this.slots.length < this.size) this.add();
      this.dispatch();
    };
    worker.on('error', dead);
    worker.on('exit', (code) => dead(new Error(`exit code ${code}`)));
    this.slots.push(slot);
    return slot;
  }

  private release(slot: Slot<J>): void {
    slot.job = null;
    slot.draining = false;
    slot.worker.unref();
    queueMicrotask(() => this.dispatch());
  }

  private dispatch(): void {
    while (this.queue.length > 0 && !this.closed) {
      const slot = this.slots.find((s) => s.job === null && !s.draining) ?? (this.slots.length < this.size ? this.add() : null);
      if (!slot) return;
      const p = this.queue.shift()!;
      slot.job = p;
      slot.jobId = this.nextId++;
      slot.worker.ref();
      this.started++;
      slot.worker.postMessage({ id: slot.jobId, job: p.job });
    }
  }

  private cancel(p: Pending<J>): void {
    const q = this.queue.indexOf(p);
    if (q >= 0) this.queue.splice(q, 1);
    const slot = this.slots.find((s) => s.job === p);
    if (slot) {
      slot.job = null;
      slot.draining = true;
      Atomics.store(slot.cancel, 0, slot.jobId);
    }
    this.cancelled++;
    this.finish(p, 'cancelled');
  }

  private finish(p: Pending<J>, outcome: JobOutcome): void {
    if (p.onAbort) p.signal.removeEventListener('abort', p.onAbort);
    p.resolve(outcome);
  }

  private fail(p: Pending<J>, e: unknown): void {
    if (p.onAbort) p.signal.removeEventListener('abort', p.onAbort);
    p.reject(e);
  }
}
