// The page's side of its training Web Worker (train-worker.ts): a worker of its own, apart from the
// sampling workers (client.ts), so the page stays responsive and sampling the model being trained
// runs beside the training. Each start is a fresh worker on the backend chosen for it, training a
// fresh model; stop, continue and snapshots go to that worker.

import { defaultThreads, type BackendInfo } from './client.js';
import type { FromPage, ToPage } from './messages.js';
import type { TrainEvent, TrainFromPage, TrainToPage } from './train-messages.js';

interface TrainWorker {
  onmessage: ((e: { data: ToPage | TrainToPage }) => void) | null;
  onerror: ((e: { message?: string; preventDefault?: () => void }) => void) | null;
  postMessage(message: FromPage | TrainFromPage): void;
  terminate(): void;
}

type TrainWorkerCtor = new (url: string, opts: { type: 'module'; name?: string }) => TrainWorker;

export type TrainStart = Omit<Extract<TrainFromPage, { type: 'train-start' }>, 'type'> & {
  /** The backend to train on: WebAssembly (its forward kernels, the reference's backward ones) or the TypeScript reference. */
  backend: 'wasm' | 'ts';
};

export class TrainClient {
  private worker: TrainWorker | null = null;
  private readonly snapshots = new Map<number, (s: { step: number; bytes: Uint8Array } | null) => void>();
  private nextId = 1;

  /** `workerUrl`: the page's worker bundle; `wasmUrl`: the module, or null with `wasmReason`. */
  constructor(
    private readonly workerUrl: string, private readonly wasmUrl: string | null, private readonly wasmReason: string | null,
    private readonly onEvent: (e: TrainEvent) => void, private readonly onBackend: (b: BackendInfo) => void,
  ) {}

  get started(): boolean {
    return this.worker !== null;
  }

  /** Ends the worker there is and starts a fresh one training a fresh model. */
  start(req: TrainStart): void {
    this.terminate();
    const Ctor = (globalThis as { Worker?: TrainWorkerCtor }).Worker;
    if (!Ctor) return this.onEvent({ type: 'error', message: 'this browser has no Web Workers, which the page trains in' });
    let w: TrainWorker;
    try {
      w = new Ctor(this.workerUrl, { type: 'module', name: 'arpix-train' });
    } catch (e) {
      return this.onEvent({ type: 'error', message: `the page's training worker could not start (${e instanceof Error ? e.message : String(e)})` });
    }
    this.worker = w;
    w.onmessage = ({ data }) => {
      if (data.type === 'ready') return this.onBackend({ backend: data.backend, note: data.note });
      if (data.type !== 'train') return;
      const e = data.event;
      if (e.type === 'snapshot') {
        this.snapshots.get(e.id)?.(e.bytes ? { step: e.step, bytes: e.bytes } : null);
        this.snapshots.delete(e.id);
      } else {
        this.onEvent(e);
      }
    };
    w.onerror = (e) => {
      e.preventDefault?.();
      this.terminate();
      this.onEvent({ type: 'error', message: `the page's training worker failed: ${e.message ?? 'it could not load (see the browser console)'}` });
    };
    const wasm = req.backend === 'wasm' ? this.wasmUrl : null;
    const reason = req.backend === 'wasm' ? this.wasmReason : 'the TypeScript backend was chosen for training';
    w.postMessage({ type: 'init', wasmUrl: wasm, wasmReason: reason, cancel: null, threads: defaultThreads() }); // all the page's threads: training is one job on one worker
    const { backend: _, ...start } = req;
    w.postMessage({ type: 'train-start', ...start });
  }

  stop(): void {
    this.worker?.postMessage({ type: 'train-stop' });
  }

  /** Trains the stopped model on, to `steps` steps in all (0: until stopped). */
  continue(steps: number): void {
    this.worker?.postMessage({ type: 'train-continue', steps });
  }

  /** The model being trained as checkpoint bytes, or null when there is none yet. */
  snapshot(): Promise<{ step: number; bytes: Uint8Array } | null> {
    if (!this.worker) return Promise.resolve(null);
    const id = this.nextId++;
    return new Promise((resolve) => {
      this.snapshots.set(id, resolve);
      this.worker!.postMessage({ type: 'train-snapshot', id });
    });
  }

  terminate(): void {
    this.worker?.terminate();
    this.worker = null;
    for (const resolve of this.snapshots.values()) resolve(null);
    this.snapshots.clear();
  }
}
