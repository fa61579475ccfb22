// The WebAssembly backend for the page's Web Worker: the module's bytes made into a backend
// (src/backends/wasm), or an error saying why they could not be. Where the page is cross-origin
// isolated, the threads module (arpix-threads.wasm) with helper Web Workers (wasm-helper.js, whose
// entry is wasm-helper.ts) on one shared memory.

import { createThreadedWasmBackend, instantiateWasmBackend, type HelperStart, type WasmBackend } from '../backends/wasm/index.js';

/** The file names the export and the server give the threads module and its helpers' bundle, beside arpix.wasm and worker.js. */
export const WASM_THREADS_FILE = 'arpix-threads.wasm', WASM_HELPER_FILE = 'wasm-helper.js';

/** The backend the module's bytes make; rejects when they do not instantiate. */
export async function wasmBackend(bytes: Uint8Array): Promise<WasmBackend> {
  return instantiateWasmBackend(bytes as Uint8Array<ArrayBuffer>);
}

interface HelperWorker {
  onmessage: (() => void) | null;
  onerror: ((e: { message?: string; preventDefault?: () => void }) => void) | null;
  postMessage(message: HelperStart): void;
}

type HelperCtor = new (url: string, opts: { type: 'module'; name?: string }) => HelperWorker;

/** Starts one helper: a Web Worker running wasm-helper.js, given its start; settles when it has joined. */
function spawnWebHelper(url: string, start: HelperStart): Promise<void> {
  return new Promise((resolve, reject) => {
    const Ctor = (globalThis as { Worker?: HelperCtor }).Worker;
    if (!Ctor) return reject(new Error('this worker cannot start Web Workers'));
    const w = new Ctor(url, { type: 'module', name: `arpix-wasm-${start.id}` });
    w.onmessage = () => resolve();
    w.onerror = (e) => {
      e.preventDefault?.();
      reject(new Error(e.message || `${url} did not load`));
    };
    w.postMessage(start);
  });
}

/**
 * The threads module's bytes made into a backend on `threads` threads, once its helpers (started
 * from `helperUrl`) have joined; on one thread, with threadsError() saying why, when they could not.
 */
export async function threadedWasmBackend(bytes: Uint8Array, threads: number, helperUrl: string): Promise<WasmBackend> {
  const module = await WebAssembly.compile(bytes as Uint8Array<ArrayBuffer>);
  const backend = createThreadedWasmBackend(module, threads, (starts) => Promise.all(starts.map((start) => spawnWebHelper(helperUrl, start))).then(() => undefined));
  await backend.ready;
  return backend;
}

let chosen: WasmBackend | null = null;

/** Notes the backend the worker computes on (its kernel threads are then kernelThreads()); returns it. */
export function chooseWasm(backend: WasmBackend): WasmBackend {
  chosen = backend;
  return backend;
}

/** Threads the worker's kernels use now: the chosen WebAssembly backend's, else 1. */
export function kernelThreads(): number {
  return chosen?.threads() ?? 1;
}
