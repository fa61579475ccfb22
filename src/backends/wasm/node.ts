// Node's loader of the wasm backend: reads wasm/build/arpix.wasm from the package, or says why it
// could not. ARPIX_WASM_THREADS=T (default 1) loads wasm/build/arpix-threads.wasm instead, with
// T − 1 helper worker_threads (unref'd: they never keep a process alive). Node's entry (src/backends/node.ts) registers what it loaded, as it does the native
// backend's, so that `setBackend('wasm')` / ARPIX_BACKEND=wasm work in every Node program.

import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { Worker } from 'node:worker_threads';
import { envVar } from '../../env.js';
import { packageRoot } from '../native/package-root.js';
import { createThreadedWasmBackend, createWasmBackend, type HelperStart, type WasmBackend } from './index.js';

/** Why the backend did not load, or null when it did. */
export let wasmLoadError: string | null = null;

/** The most threads ARPIX_WASM_THREADS may ask for. */
export const MAX_WASM_THREADS = 64;

/** The path of the built module (the threads module with `threads`). */
export function wasmModulePath(threads = false): string {
  return join(packageRoot(), 'wasm', 'build', threads ? 'arpix-threads.wasm' : 'arpix.wasm');
}

/** ARPIX_WASM_THREADS as a thread count (1 when unset); throws one line when it is not one. */
export function wasmThreadsSetting(value = envVar('ARPIX_WASM_THREADS')): number {
  if (value === undefined || value === '') return 1;
  const t = Number(value);
  if (!/^\d+$/.test(value.trim()) || t < 1 || t > MAX_WASM_THREADS) {
    throw new Error(`ARPIX_WASM_THREADS=${value} is not a thread count: set it to a whole number from 1 to ${MAX_WASM_THREADS} (1, the default, runs the wasm kernels on one thread)`);
  }
  return t;
}

/** How long a process waits for its helper threads to start before it gives up. */
const HELPER_START_MS = 30_000;

// A helper thread: plain JavaScript (no loader needed), doing what runHelper in ./index.ts does,
// its readiness counted in a shared cell the starting thread waits on.
const HELPER = `
const { workerData: start } = require('node:worker_threads');
const instance = new WebAssembly.Instance(start.module, { env: { memory: start.memory } });
instance.exports.__stack_pointer.value = start.stackTop;
Atomics.add(start.joined, 0, 1);
Atomics.notify(start.joined, 0);
instance.exports.thread_loop(start.id);
`;

/**
 * Starts the helpers as worker_threads that never keep the process alive, and waits (blocking:
 * a worker_thread starts without this thread's event loop) until each is about to enter the loop,
 * so the kernels use every thread from the first call.
 */
export function spawnNodeHelpers(starts: HelperStart[]): void {
  const joined = new Int32Array(new SharedArrayBuffer(4));
  for (const start of starts) {
    // No execArgv: the process's --import hooks (a TypeScript loader, this package's entry) are not the helper's.
    new Worker(HELPER, { eval: true, workerData: { ...start, joined }, execArgv: [] }).unref();
  }
  const deadline = Date.now() + HELPER_START_MS;
  for (let n = Atomics.load(joined, 0); n < starts.length; n = Atomics.load(joined, 0)) {
    const left = deadline - Date.now();
    if (left <= 0) throw new Error(`only ${n} of the wasm backend's ${starts.length} helper threads started within ${HELPER_START_MS / 1000} s; unset ARPIX_WASM_THREADS to run its kernels on one thread`);
    Atomics.wait(joined, 0, n, left);
  }
}

/** The backend on `threads` threads (the threads module when more than 1). */
export function loadWasmBackend(threads: number): WasmBackend {
  const path = wasmModulePath(threads > 1);
  if (!existsSync(path)) throw new Error(`${path} is missing (the module was not built): run \`npm run build:wasm\``);
  return threads > 1 ? createThreadedWasmBackend(readFileSync(path), threads, spawnNodeHelpers) : createWasmBackend(readFileSync(path));
}

function load(): WasmBackend | null {
  try {
    return loadWasmBackend(wasmThreadsSetting());
  } catch (e) {
    wasmLoadError = e instanceof Error ? e.message : String(e);
    return null;
  }
}

/** The backend, or null with wasmLoadError saying why. */
export const wasmBackend: WasmBackend | null = load();
