// The page: its HTML and CSS as files beside this module, its TypeScript bundled by esbuild on the
// first request (uPlot included, from node_modules), and uPlot's stylesheet from node_modules.
// Nothing is fetched from elsewhere, so the page works offline.

import { existsSync, readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { fileURLToPath } from 'node:url';

export interface PageAssets {
  html: string;
  css: string;
  uplotCss: string;
  /** The bundled page script (built once, then kept). */
  script(): Promise<string>;
}

const pageDir = fileURLToPath(new URL('./page/', import.meta.url));

/** Bundles the page's entry (main.ts in a checkout, main.js when built) into one minified script. */
export async function bundlePage(): Promise<string> {
  const { build } = await import('esbuild');
  const entry = existsSync(`${pageDir}main.ts`) ? `${pageDir}main.ts` : `${pageDir}main.js`;
  const r = await build({ entryPoints: [entry], bundle: true, format: 'esm', minify: true, write: false, target: 'es2022', platform: 'browser', logLevel: 'silent' });
  return r.outputFiles[0]!.text;
}

export function pageAssets(): PageAssets {
  const require = createRequire(import.meta.url);
  let script: Promise<string> | null = null;
  return {
    html: readFileSync(`${pageDir}index.html`, 'utf8'),
    css: readFileSync(`${pageDir}style.css`, 'utf8'),
    uplotCss: readFileSync(require.resolve('uplot/dist/uPlot.min.css'), 'utf8'),
    script() {
      script ??= bundlePage();
      return script;
    },
  };
}
