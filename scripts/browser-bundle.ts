// The browser build of arpix's core (src/browser.ts): one ES module bundled by esbuild for
// `platform: 'browser'` with nothing external, so a Node built-in anywhere in its imports fails
// the build. `npm run build` writes dist/browser/arpix.js (package.json's `browser` condition and
// `arpix/browser`); src/browser.test.ts builds it in memory with the same options and runs it.
//
//   node --import tsx scripts/browser-bundle.ts [OUT_FILE]

import { fileURLToPath } from 'node:url';
import { build, type BuildOptions } from 'esbuild';

const root = fileURLToPath(new URL('..', import.meta.url));

/** esbuild options of the browser bundle; `format` 'iife' (global `arpix`) lets a test run it in a bare context. */
export function browserBundleOptions({ format = 'esm', minify = true }: { format?: 'esm' | 'iife'; minify?: boolean } = {}): BuildOptions & { metafile: true } {
  return {
    absWorkingDir: root,
    entryPoints: ['src/browser.ts'],
    bundle: true,
    platform: 'browser',
    format,
    globalName: format === 'iife' ? 'arpix' : undefined,
    target: 'es2022',
    minify,
    sourcemap: false,
    metafile: true,
    logLevel: 'silent',
  };
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  const outfile = process.argv[2] ?? 'dist/browser/arpix.js';
  await build({ ...browserBundleOptions(), outfile, sourcemap: true });
  console.log(`arpix: browser bundle written to ${outfile}`);
}
