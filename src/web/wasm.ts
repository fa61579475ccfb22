// The WebAssembly backend for the page's Web Worker: the module's bytes made into a backend
// (src/backends/wasm), or an error saying why they could not be.

import type { Backend } from '../kernels/contracts.js';

/** The backend the module's bytes make; rejects when they do not instantiate. */
export async function wasmBackend(bytes: Uint8Array): Promise<Backend> {
  void bytes;
  throw new Error('this build of the page has no WebAssembly backend');
}
