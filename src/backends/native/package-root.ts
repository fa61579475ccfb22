// Node only: the arpix package's root folder, where the built backends live (build/Release for the
// native addon, wasm/build for the WebAssembly module).

import { existsSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

/**
 * The folder above this file (under src/ or dist/) holding package.json and binding.gyp — not
 * merely a package.json, which a build may also write into dist/.
 */
export function packageRoot(): string {
  let dir = dirname(fileURLToPath(import.meta.url));
  for (;;) {
    if (existsSync(join(dir, 'binding.gyp')) && existsSync(join(dir, 'package.json'))) return dir;
    const up = dirname(dir);
    if (up === dir) throw new Error('cannot find the arpix package root (no package.json with binding.gyp above the backends)');
    dir = up;
  }
}
