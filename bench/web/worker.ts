// A Web Worker of `npm run bench -- web`: loads one checkpoint (and the .wasm), then samples on the
// backend asked for, as arpix's exported pages do: a whole batch, or its part from…to (a page's
// threads: one worker per part, each with its own copy of the model; the parts are the batch).

import { decodeCheckpoint, modelFromCheckpoint, registerBackend, sample, samplePart, setBackend, type BackendName } from '../../src/browser.js';
import { instantiateWasmBackend } from '../../src/backends/wasm/index.js';

export type Request =
  | { kind: 'load'; checkpoint: string; wasm: string }
  | { kind: 'sample'; backend: BackendName; n: number; seed: number; from?: number; to?: number };

let model: ReturnType<typeof modelFromCheckpoint> | null = null;

async function bytesOf(url: string): Promise<ArrayBuffer> {
  const r = await fetch(url);
  if (!r.ok) throw new Error(`${url}: HTTP ${r.status}`);
  return r.arrayBuffer();
}

async function handle(req: Request): Promise<unknown> {
  if (req.kind === 'load') {
    registerBackend('wasm', await instantiateWasmBackend(await bytesOf(req.wasm)));
    model = modelFromCheckpoint(decodeCheckpoint(new Uint8Array(await bytesOf(req.checkpoint)), req.checkpoint));
    return { loaded: model.config.kind };
  }
  if (model === null) throw new Error('load a checkpoint first');
  setBackend(req.backend);
  const opts = { n: req.n, seed: req.seed };
  const images = req.from === undefined ? sample(model, opts) : samplePart(model, opts, { from: req.from, to: req.to ?? req.n });
  let sum = 0;
  for (const v of images.data) sum += v;
  return { sum };
}

self.onmessage = (e: MessageEvent<Request & { id: number }>) => {
  handle(e.data).then(
    (result) => self.postMessage({ id: e.data.id, result }),
    (err: unknown) => self.postMessage({ id: e.data.id, error: err instanceof Error ? err.message : String(err) }),
  );
};
