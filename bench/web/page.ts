// The page of `npm run bench -- web`: its workers, and `bench(request)` for the suite to call —
// 'load' loads every worker, 'sample' with `threads` k splits the batch into k parts sampled at
// once (one per worker) and answers the wall time the page saw.

import type { Request } from './worker.js';

interface Answer { sum: number }
const workers: Worker[] = [];
let next = 0;
const waiting = new Map<number, { resolve: (v: unknown) => void; reject: (e: Error) => void }>();
let loaded: Request | null = null;

function call(w: Worker, req: Request): Promise<unknown> {
  return new Promise((resolve, reject) => {
    const id = next++;
    waiting.set(id, { resolve, reject });
    w.postMessage({ ...req, id });
  });
}

async function worker(i: number): Promise<Worker> {
  while (workers.length <= i) {
    const w = new Worker('./worker.js', { type: 'module' });
    w.onmessage = (e: MessageEvent<{ id: number; result?: unknown; error?: string }>) => {
      const p = waiting.get(e.data.id);
      waiting.delete(e.data.id);
      if (e.data.error !== undefined) p?.reject(new Error(e.data.error));
      else p?.resolve(e.data.result);
    };
    workers.push(w);
    if (loaded) await call(w, loaded);
  }
  return workers[i]!;
}

async function bench(req: Request & { threads?: number }): Promise<unknown> {
  if (req.kind === 'load') {
    loaded = req;
    return Promise.all(workers.length === 0 ? [call(await worker(0), req)] : workers.map((w) => call(w, req)));
  }
  const k = Math.min(req.threads ?? 1, req.n);
  const ws = await Promise.all(Array.from({ length: k }, (_, i) => worker(i)));
  const t0 = performance.now();
  const answers = (await Promise.all(ws.map((w, i) => {
    const from = Math.floor((i * req.n) / k);
    const to = Math.floor(((i + 1) * req.n) / k);
    return call(w, k === 1 ? req : { ...req, from, to });
  }))) as Answer[];
  const seconds = (performance.now() - t0) / 1000;
  return { seconds, sum: answers.reduce((s, a) => s + a.sum, 0) };
}

(globalThis as unknown as { bench: typeof bench }).bench = bench;
