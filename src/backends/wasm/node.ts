// Node's loader of the wasm backend: reads build/wasm/arpix.wasm from the package and registers
// the backend (or, when the file is missing or does not load, registers why). Importing this file
// is all a Node program does to make `setBackend('wasm')` / ARPIX_BACKEND=wasm available.

import { existsSync, readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { registerBackend } from '../registry.js';
import { createWasmBackend, type WasmBackend } from './index.js';

/** Why the backend did not load, or null when it did. */
export let wasmLoadError: string | null = null;

/** The package root: the folder above this file (under src/ or dist/) holding package.json and wasm/. */
function packageRoot(): string {
  let dir = dirname(fileURLToPath(import.meta.url));
  for (;;) {
    if (existsSync(join(dir, 'package.json')) && existsSync(join(dir, 'wasm'))) return dir;
    const up = dirname(dir);
    if (up === dir) throw new Error('cannot find the arpix package root (no wasm/ folder above the wasm backend)');
    dir = up;
  }
}

/** The path of the built module. */
export function wasmModulePath(): string {
  return join(packageRoot(), 'build', 'wasm', 'arpix.wasm');
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

export const wasmBackend: WasmBackend | null = load();
registerBackend('wasm', wasmBackend, wasmLoadError ?? 'it did not load');
