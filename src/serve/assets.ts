// The page: its HTML and CSS as files beside this module, its TypeScript bundled by esbuild on the
// first request (uPlot included, from node_modules), the Web Worker that computes the panels in the
// page (src/web/worker.ts, bundled the same way) and its WebAssembly module when it was built,
// uPlot's stylesheet from node_modules, and an icon drawn here. Beside the module, its threads build
// (arpix-threads.wasm) and the bundle of the helper threads' Web Worker (wasm-helper.js), which a
// cross-origin isolated page runs the kernels on. Nothing is fetched from elsewhere,
// so the page works offline; `arpix export --web` writes the same files into a folder.

import { existsSync, readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { fileURLToPath } from 'node:url';
import { encode as encodePng } from 'fast-png';
import { wasmModulePath } from '../backends/wasm/node.js';

export interface PageAssets {
  /** The page's HTML, with a <!--arpix-config--> placeholder for its PageConfig. */
  html: string;
  css: string;
  uplotCss: string;
  /** /favicon.ico. */
  favicon: Uint8Array<ArrayBuffer>;
  /** The bundled page script (built once, then kept). */
  script(): Promise<string>;
  /** The bundled Web Worker of the page (built once, then kept). */
  worker(): Promise<string>;
  /** The WebAssembly backend's module (`npm run build:wasm`), or null with why there is none. */
  wasm(): { file: string; reason: null } | { file: null; reason: string };
  /** The threads module's file, or null when it was not built. */
  wasmThreads(): string | null;
  /** The bundled helper thread of the threads module (built once, then kept). */
  helper(): Promise<string>;
}

const pageDir = fileURLToPath(new URL('./page/', import.meta.url));
const webDir = fileURLToPath(new URL('../web/', import.meta.url));
/** Where `npm run build:wasm` puts the module. */
export const WASM_FILE = wasmModulePath();
export const WASM_THREADS_PATH = wasmModulePath(true);

/** A module's file: its .ts in a checkout, its .js when built. */
function sourceOf(dir: string, name: string): string {
  return existsSync(`${dir}${name}.ts`) ? `${dir}${name}.ts` : `${dir}${name}.js`;
}

/** One minified browser bundle of an entry; it may import no Node built-in (esbuild refuses one). */
async function bundle(entry: string): Promise<string> {
  const { build } = await import('esbuild');
  const r = await build({ entryPoints: [entry], bundle: true, format: 'esm', minify: true, write: false, target: 'es2022', platform: 'browser', logLevel: 'silent' });
  return r.outputFiles[0]!.text;
}

/** Bundles the page's entry (main.ts in a checkout, main.js when built) into one minified script. */
export function bundlePage(): Promise<string> {
  return bundle(sourceOf(pageDir, 'main'));
}

/** Bundles the page's Web Worker: the model engine and the backends a browser has. */
export function bundleWorker(): Promise<string> {
  return bundle(sourceOf(webDir, 'worker'));
}

/** Bundles the helper threads' Web Worker (src/web/wasm-helper.ts). */
export function bundleHelper(): Promise<string> {
  return bundle(sourceOf(webDir, 'wasm-helper'));
}

/** The threads module's file, or null when it was not built. */
export function wasmThreadsModule(): string | null {
  return existsSync(WASM_THREADS_PATH) ? WASM_THREADS_PATH : null;
}

export function wasmModule(): { file: string; reason: null } | { file: null; reason: string } {
  return existsSync(WASM_FILE) ? { file: WASM_FILE, reason: null } : { file: null, reason: 'the WebAssembly module was not built (npm run build:wasm)' };
}

export function pageAssets(): PageAssets {
  const require = createRequire(import.meta.url);
  let script: Promise<string> | null = null;
  let worker: Promise<string> | null = null;
  let helper: Promise<string> | null = null;
  return {
    html: readFileSync(`${pageDir}index.html`, 'utf8'),
    css: readFileSync(`${pageDir}style.css`, 'utf8'),
    uplotCss: readFileSync(require.resolve('uplot/dist/uPlot.min.css'), 'utf8'),
    favicon: favicon(),
    script() {
      script ??= bundlePage();
      return script;
    },
    worker() {
      worker ??= bundleWorker();
      return worker;
    },
    wasm: wasmModule,
    wasmThreads: wasmThreadsModule,
    helper() {
      helper ??= bundleHelper();
      return helper;
    },
  };
}

/**
 * The page's icon: a 4×4 grid of pixels filled in raster order up to the one being sampled, in the
 * page's accent colours — what an autoregressive model does. A 32×32 PNG in an ICO container.
 */
export function favicon(): Uint8Array<ArrayBuffer> {
  const size = 32;
  const cell = 8; // 7 pixels and a 1-pixel gap
  const sampled = [0x6e, 0xa8, 0xfe]; // --accent
  const now = [0x9b, 0x7b, 0xff]; // --accent2
  const ahead = [0x27, 0x30, 0x42]; // --line
  const rgba = new Uint8Array(size * size * 4);
  for (let y = 0; y < size; y++) {
    for (let x = 0; x < size; x++) {
      if (x % cell === 0 || y % cell === 0) continue; // the gaps stay transparent
      const index = Math.floor(y / cell) * (size / cell) + Math.floor(x / cell);
      const colour = index < 10 ? sampled : index === 10 ? now : ahead;
      rgba.set([...colour, 255], (y * size + x) * 4);
    }
  }
  const png = encodePng({ width: size, height: size, channels: 4, depth: 8, data: rgba });
  // ICONDIR (reserved, type 1 = icon, one image), then its ICONDIRENTRY pointing at the PNG.
  const ico = new Uint8Array(6 + 16 + png.length);
  const v = new DataView(ico.buffer);
  v.setUint16(2, 1, true);
  v.setUint16(4, 1, true);
  ico[6] = size;
  ico[7] = size;
  v.setUint16(10, 1, true); // colour planes
  v.setUint16(12, 32, true); // bits per pixel
  v.setUint32(14, png.length, true);
  v.setUint32(18, 22, true);
  ico.set(png, 22);
  return ico;
}
