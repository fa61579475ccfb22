// The `wasm` backend: arpix's kernels compiled to WebAssembly with SIMD (wasm/*.c, built into
// wasm/build/arpix.wasm by `npm run build:wasm`). It runs wherever WebAssembly does — a page, a
// Web Worker, Node — and gives the same bits everywhere: WebAssembly's arithmetic is IEEE 754 with
// no fused multiply-adds, and every kernel sums in an order fixed by the shapes. Its elementwise,
// normalisation and softmax kernels store exactly what the ts reference stores; its products
// (matmul, conv2d, attention, the cached steps) compute in float32.
//
// Platform-free: the caller brings the module's bytes (src/backends/wasm/node.ts reads them from
// the package in Node; a page fetches them) and registers the result:
//   registerBackend('wasm', createWasmBackend(bytes))
// Kernels it does not implement, and dtypes it does not take, run on the ts reference.
//
// Threads: wasm/build/arpix-threads.wasm is the same kernels built on a shared memory
// (wasm/threads.c). createThreadedWasmBackend makes the memory, instantiates the module on it and
// has the caller start T − 1 helper threads (Web Workers, worker_threads), each of which calls
// runHelper: its own instance on the same memory, its own stack, then the pool's loop. The products,
// convolutions and attention split their independent outputs between the threads; each is computed
// by the code the single-thread module runs, so the bits do not depend on the thread count.

import type { Backend } from '../../kernels/contracts.js';
import { envVar } from '../../env.js';
import { WasmHeap } from './heap.js';
import { wasmKernels } from './kernels.js';
import { HELPER_STACK, THREADS_MEMORY, WASM_EXPORTS, WASM_THREAD_EXPORTS, type WasmExports, type WasmThreadExports } from './exports.js';

export { WASM_EXPORTS } from './exports.js';

export type WasmBackend = Backend & {
  readonly name: 'wasm';
  /** Resident blocks (packed weights, step plans) and their bytes. */
  residentSize(): { blocks: number; bytes: number };
  /** Forgets every resident block (their memory is reused; the module's memory never shrinks). */
  clearCaches(): void;
  /** Threads the backend was made with (1: the single-thread module). */
  readonly pool: number;
  /** Threads the kernels use now: 1 until the helpers have joined, then what setThreads asked (the pool's by default). */
  threads(): number;
  /** Asks the kernels to use `n` threads (1 … pool; clamped); the bits are the same for every n. */
  setThreads(n: number): void;
  /** Settles once the helpers have joined (at once for one thread), with the threads then in use. */
  readonly ready: Promise<number>;
  /** Why the helpers could not join (the backend then runs on one thread); null when they did or are joining. */
  threadsError(): string | null;
  /** Work items the helper threads have run so far (0 on one thread): evidence that they work. */
  helperItems(): number;
  /** Bytes of the module's memory now. */
  memoryBytes(): number;
};

function checkExports(exports: Record<string, unknown>, names: readonly string[]): void {
  const missing = names.filter((name) => !(name in exports));
  if (missing.length > 0) {
    throw new Error(`the WebAssembly module lacks ${missing.join(', ')}: it was built from other sources than these; rebuild it with \`npm run build:wasm\``);
  }
}

type Pool = Pick<WasmBackend, 'pool' | 'threads' | 'setThreads' | 'ready' | 'helperItems' | 'threadsError'>;

const ONE_THREAD: Pool = { pool: 1, threads: () => 1, setThreads: () => undefined, ready: Promise.resolve(1), helperItems: () => 0, threadsError: () => null };

function fromInstance(instance: WebAssembly.Instance, memory?: WebAssembly.Memory, heapBase?: number, pool: Pool = ONE_THREAD): WasmBackend {
  const exports = instance.exports as Record<string, unknown>;
  checkExports(exports, memory ? WASM_EXPORTS.filter((name) => name !== 'memory') : WASM_EXPORTS);
  const w = (memory ? { ...exports, memory } : exports) as unknown as WasmExports;
  w.arpix_math_init();
  const heap = new WasmHeap(w.memory, heapBase ?? (w.__heap_base.value as number), !!envVar('ARPIX_POISON'));
  return {
    name: 'wasm',
    ...wasmKernels(w, heap),
    residentSize: () => heap.residentSize(),
    clearCaches: () => heap.clear(),
    memoryBytes: () => w.memory.buffer.byteLength,
    ...pool,
  };
}

/** What a helper thread needs to join the pool (sent to its Web Worker or worker_thread). */
export interface HelperStart {
  module: WebAssembly.Module;
  memory: WebAssembly.Memory;
  /** 1 … T − 1. */
  id: number;
  /** The top of the helper's own stack (a byte offset; the stack grows down). */
  stackTop: number;
}

/**
 * Starts the helper threads, each calling runHelper with its start: returns once every helper
 * is about to enter the pool's loop (or throws saying why not), or returns a promise that settles
 * then — where the calling thread cannot wait, as a browser's worker cannot for the workers it
 * starts, the backend runs on one thread until it has settled.
 */
export type SpawnHelpers = (starts: HelperStart[]) => Promise<void> | void;

/**
 * A helper thread's life: an instance of the threads module on the pool's memory with its own
 * stack, `ready()` (the thread reports it has joined), then the pool's loop, which never returns.
 */
export function runHelper(start: HelperStart, ready: () => void): void {
  const instance = new WebAssembly.Instance(start.module, { env: { memory: start.memory } });
  const x = instance.exports as unknown as WasmThreadExports;
  x.__stack_pointer.value = start.stackTop;
  ready();
  x.thread_loop(start.id);
}

/**
 * The backend on the threads module (wasm/build/arpix-threads.wasm) with `threads` threads: this
 * one and threads − 1 helpers, which `spawn` starts. The backend works at once: on every thread
 * when `spawn` waited for the helpers, else on one thread until they have joined (`ready`). Needs
 * shared memory (in a browser, a cross-origin isolated context) and a thread that may block on
 * Atomics (a worker, or Node's main thread).
 */
export function createThreadedWasmBackend(source: WebAssembly.Module | BufferSource, threads: number, spawn: SpawnHelpers): WasmBackend {
  if (!Number.isInteger(threads) || threads < 1) throw new Error(`arpix wasm backend: ${threads} threads: give a whole number of threads, at least 1`);
  const module = toModule(source);
  const memory = new WebAssembly.Memory({ ...THREADS_MEMORY, shared: true });
  const instance = new WebAssembly.Instance(module, { env: { memory } });
  const exports = instance.exports as Record<string, unknown>;
  checkExports(exports, WASM_THREAD_EXPORTS);
  const x = exports as unknown as WasmThreadExports;
  const helpers = threads - 1;
  // The helpers' stacks sit between the module's data and the heap.
  const stacks = ((exports.__heap_base as WebAssembly.Global).value as number + 15) & ~15;
  const heapBase = stacks + helpers * HELPER_STACK;
  if (heapBase > memory.buffer.byteLength) memory.grow(Math.ceil((heapBase - memory.buffer.byteLength) / 65536));
  let wanted = threads, current = 1, failure: string | null = null;
  const join = (): number => {
    x.threads_start(helpers);
    current = x.threads_set(wanted);
    return current;
  };
  const starts = Array.from({ length: helpers }, (_, i) => ({ module, memory, id: i + 1, stackTop: stacks + (i + 1) * HELPER_STACK }));
  const started = helpers > 0 ? spawn(starts) : undefined;
  const ready = started === undefined ? Promise.resolve(join()) : started.then(join, (e: unknown) => {
    // A helper that cannot start leaves the backend on one thread, saying why.
    failure = `a helper thread did not start (${e instanceof Error ? e.message : String(e)}); the wasm kernels run on one thread`;
    return 1;
  });
  const pool: Pool = {
    pool: threads,
    threads: () => current,
    setThreads: (n) => {
      wanted = Math.max(1, Math.min(threads, Math.floor(n)));
      current = x.threads_set(wanted);
    },
    ready,
    threadsError: () => failure,
    helperItems: () => {
      let items = 0;
      for (let id = 1; id < threads; id++) items += x.threads_ran(id);
      return items;
    },
  };
  return fromInstance(instance, memory, heapBase, pool);
}

function toModule(source: WebAssembly.Module | BufferSource): WebAssembly.Module {
  return source instanceof WebAssembly.Module ? source : new WebAssembly.Module(source);
}

/**
 * The backend from a compiled module or the .wasm file's bytes, synchronously (a browser's main
 * thread may refuse to compile large modules this way; use instantiateWasmBackend there).
 */
export function createWasmBackend(source: WebAssembly.Module | BufferSource): WasmBackend {
  return fromInstance(new WebAssembly.Instance(toModule(source), {}));
}

/** The backend from the .wasm file's bytes (or a compiled module), compiled off the calling thread where the engine can. */
export async function instantiateWasmBackend(source: WebAssembly.Module | BufferSource): Promise<WasmBackend> {
  const module = source instanceof WebAssembly.Module ? source : await WebAssembly.compile(source);
  return fromInstance(await WebAssembly.instantiate(module, {}));
}
