// A folder served as a static web host serves it, for the browser tests of exported pages: on
// 127.0.0.1, every file with its type, with or without the headers that make a page cross-origin
// isolated; and Debian's chromium, launched headless as the tests launch it.

import { existsSync, readFileSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import { extname, join, normalize } from 'node:path';

export const CHROMIUM = '/usr/bin/chromium';

/** The reason the browser tests are skipped on a machine without chromium, or false. */
export const skipWithoutChromium = existsSync(CHROMIUM) ? false : `chromium is not installed at ${CHROMIUM}: apt-get install -y --no-install-recommends chromium (CI installs it)`;

/** Chromium, headless, without the services a test does not need. */
export async function launchChromium(): Promise<import('playwright-core').Browser> {
  const { chromium } = await import('playwright-core');
  return chromium.launch({ executablePath: CHROMIUM, headless: true, args: ['--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync'] });
}

/** Serves `root` on 127.0.0.1 until the server is closed; `isolated` adds COOP and COEP. Resolves to the base URL. */
export async function serveFolder(root: string, isolated: boolean): Promise<{ url: string; server: Server }> {
  const types: Record<string, string> = { '.html': 'text/html; charset=utf-8', '.js': 'text/javascript', '.css': 'text/css', '.json': 'application/json', '.wasm': 'application/wasm' };
  const server = createServer((req, res) => {
    const rel = normalize(decodeURIComponent(new URL(req.url ?? '/', 'http://x').pathname)).replace(/^(\.\.[/\\])+/, '').replace(/^\/+/, '') || 'index.html';
    let body: Buffer;
    try {
      body = readFileSync(join(root, rel));
    } catch {
      res.writeHead(404).end('not found');
      return;
    }
    const headers: Record<string, string> = { 'content-type': types[extname(rel)] ?? 'application/octet-stream', 'cache-control': 'no-store' };
    if (isolated) Object.assign(headers, { 'cross-origin-opener-policy': 'same-origin', 'cross-origin-embedder-policy': 'require-corp' });
    res.writeHead(200, headers).end(body);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return { url: `http://127.0.0.1:${(server.address() as { port: number }).port}/`, server };
}
