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

import type { Backend } from '../../kernels/contracts.js';
import { envVar } from '../../env.js';
import { WasmHeap } from './heap.js';
import { wasmKernels } from './kernels.js';
import { WASM_EXPORTS, type WasmExports } from './exports.js';

export { WASM_EXPORTS } from './exports.js';

export type WasmBackend = Backend & {
  readonly name: 'wasm';
  /** Resident blocks (packed weights, step plans) and their bytes. */
  residentSize(): { blocks: number; bytes: number };
  /** Forgets every resident block (their memory is reused; the module's memory never shrinks). */
  clearCaches(): void;
};

function fromInstance(instance: WebAssembly.Instance): WasmBackend {
  const exports = instance.exports as Record<string, unknown>;
  const missing = WASM_EXPORTS.filter((name) => !(name in exports));
  if (missing.length > 0) {
    throw new Error(`the WebAssembly module lacks ${missing.join(', ')}: it was built from other sources than these; rebuild it with \`npm run build:wasm\``);
  }
  const w = exports as unknown as WasmExports;
  w.arpix_math_init();
  const heap = new WasmHeap(w.memory, w.__heap_base.value as number, !!envVar('ARPIX_POISON'));
  return {
    name: 'wasm',
    ...wasmKernels(w, heap),
    residentSize: () => heap.residentSize(),
    clearCaches: () => heap.clear(),
  };
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
