// The WebAssembly backend for the page's Web Worker: the module's bytes made into a backend
// (src/backends/wasm), or an error saying why they could not be.

import type { Backend } from '../kernels/contracts.js';
import { instantiateWasmBackend } from '../backends/wasm/index.js';

/** The backend the module's bytes make; rejects when they do not instantiate. */
export async function wasmBackend(bytes: Uint8Array): Promise<Backend> {
  return instantiateWasmBackend(bytes as Uint8Array<ArrayBuffer>);
}
