// What the server asks its model worker to do, and what the worker answers. Every job names a
// checkpoint the server has already resolved inside the served folders. The jobs on a loaded model
// and their answers are the engine's (src/web/protocol.ts), shared with the page's Web Worker.

import type { ModelJob } from '../web/protocol.js';

export type { BitsResult, CompressResult, FieldResult, InfoResult, ModelFacts, ModelJob, RunSummary, TestImageResult, WorkerMessage } from '../web/protocol.js';

export type Job =
  | (ModelJob & { checkpoint: string })
  | { op: 'testImage'; checkpoint: string; index: number };

/** What the image decoder is asked: an upload whose declared size the server has already checked. */
export interface DecodeJob {
  bytes: Uint8Array;
  /** Pixels the image may declare (the decoder checks again before decoding). */
  maxPixels: number;
}
