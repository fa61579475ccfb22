// arpix serve: a local web app over run folders. `startServer` binds the hono app to a port on
// 127.0.0.1 (by default) and returns its URL and a way to stop it.

import '../backends/node.js'; // Node's services and the native backend, registered before anything computes
import type { AddressInfo } from 'node:net';
import { serve } from '@hono/node-server';
import { createServeApp, type ServeApp, type ServeOptions } from './app.js';

export { createServeApp, LIMITS } from './app.js';
export type { ServeApp, ServeOptions } from './app.js';
export { HttpError } from './errors.js';

export interface Server {
  url: string;
  serveApp: ServeApp;
  close(): Promise<void>;
}

export async function startServer(opts: ServeOptions & { port?: number; host?: string }): Promise<Server> {
  const serveApp = createServeApp(opts);
  const host = opts.host ?? '127.0.0.1';
  let server: ReturnType<typeof serve>;
  try {
    server = await new Promise<ReturnType<typeof serve>>((resolve, reject) => {
      const s = serve({ fetch: serveApp.app.fetch, port: opts.port ?? 8470, hostname: host }, () => resolve(s));
      s.once('error', reject);
    });
  } catch (e) {
    // The model workers already started; ended here, they cannot keep a failed command alive.
    await serveApp.close();
    throw e;
  }
  // A client that sends its headers or body slowly is cut off instead of holding a connection.
  const http = server as unknown as { headersTimeout: number; requestTimeout: number };
  http.headersTimeout = 20_000;
  http.requestTimeout = 60_000;
  const { port } = server.address() as AddressInfo;
  const shown = host.includes(':') ? `[${host}]` : host;
  return {
    url: `http://${shown}:${port}/`,
    serveApp,
    async close() {
      await serveApp.close();
      await new Promise<void>((resolve) => {
        server.close(() => resolve());
        (server as unknown as { closeAllConnections?: () => void }).closeAllConnections?.();
      });
    },
  };
}
