// Worker thread of the image-folder loader: reads and decodes chunks of files so that the thread
// that trains never spends its time inside a PNG or JPEG decoder.

import { parentPort, workerData } from 'node:worker_threads';
import { MAX_IMAGE_FILE, readRegularFile } from '../io/files.js';
import { prepareImage, type PrepareOptions } from './decode.js';

export interface ChunkRequest {
  id: number;
  files: string[];
  opts: PrepareOptions;
}

export type ChunkItem = { ok: true; width: number; height: number; channels: number } | { ok: false; reason: string };

export interface ChunkReply {
  id: number;
  items: ChunkItem[];
  /** The decoded images of the ok items, concatenated in order. */
  data: Uint8Array;
}

/** Decodes one chunk; also the in-thread fallback when workers are off. */
export function decodeChunk(req: ChunkRequest): ChunkReply {
  const items: ChunkItem[] = [];
  const parts: Uint8Array[] = [];
  for (const file of req.files) {
    try {
      const img = prepareImage(readRegularFile(file, MAX_IMAGE_FILE, 'a PNG or JPEG image'), req.opts);
      items.push({ ok: true, width: img.width, height: img.height, channels: img.channels });
      parts.push(img.data);
    } catch (e) {
      const full = (e as Error).message || String(e);
      const msg = full.startsWith(`${file}: `) ? full.slice(file.length + 2) : full;
      items.push({ ok: false, reason: msg });
    }
  }
  const total = parts.reduce((a, p) => a + p.length, 0);
  const data = new Uint8Array(total);
  let o = 0;
  for (const p of parts) {
    data.set(p, o);
    o += p.length;
  }
  return { id: req.id, items, data };
}

if (parentPort && (workerData as { role?: string } | null)?.role === 'folder-worker') {
  const port = parentPort;
  port.on('message', (req: ChunkRequest) => {
    const reply = decodeChunk(req);
    port.postMessage(reply, [reply.data.buffer as ArrayBuffer]);
  });
}
