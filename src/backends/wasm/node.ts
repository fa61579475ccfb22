// Node's loader of the wasm backend: reads wasm/build/arpix.wasm from the package, or says why it
// could not. Node's entry (src/backends/node.ts) registers what it loaded, as it does the native
// backend's, so that `setBackend('wasm')` / ARPIX_BACKEND=wasm work in every Node program.

import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { packageRoot } from '../native/package-root.js';
import { createWasmBackend, type WasmBackend } from './index.js';

/** Why the backend did not load, or null when it did. */
export let wasmLoadError: string | null = null;

/** The path of the built module. */
export function wasmModulePath(): string {
  return join(packageRoot(), 'wasm', 'build', 'arpix.wasm');
}

function load(): WasmBackend | null {
  try {
    const path = wasmModulePath();
    if (!existsSync(path)) {
      wasmLoadError = `${path} is missing (the module was not built)`;
      return null;
    }
    return createWasmBackend(readFileSync(path));
  } catch (e) {
    wasmLoadError = e instanceof Error ? e.message : String(e);
    return null;
  }
}

/** The backend, or null with wasmLoadError saying why. */
export const wasmBackend: WasmBackend | null = load();
