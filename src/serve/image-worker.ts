// The decoder of uploaded images: a thread of its own, so that no upload, however it was crafted,
// runs a PNG or JPEG decoder on the server's event loop. One job at a time; it answers 'done' with
// the decoded image, or 'error' (422) with the decoder's one-line reason.

import { parentPort, workerData } from 'node:worker_threads';
import { decodeImage } from '../data/decode.js';
import { undecodable } from './errors.js';
import type { DecodeJob, WorkerMessage } from './protocol.js';

if (parentPort && (workerData as { role?: string } | null)?.role === 'image-worker') {
  const port = parentPort;
  port.on('message', ({ job }: { id: number; job: DecodeJob }) => {
    const t0 = performance.now();
    let m: WorkerMessage;
    try {
      const img = decodeImage(job.bytes, { maxPixels: job.maxPixels });
      m = { type: 'done', result: img, seconds: (performance.now() - t0) / 1000 };
    } catch (e) {
      m = { type: 'error', status: 422, message: undecodable(e).message };
    }
    port.postMessage(m);
  });
}
