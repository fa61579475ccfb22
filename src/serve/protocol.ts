// What the server asks its model worker to do, and what the worker answers. Every job names a
// checkpoint the server has already resolved inside the served folders. The jobs on a loaded model
// and their answers are the engine's (src/web/protocol.ts), shared with the page's Web Worker.

import type { ModelJob } from '../web/protocol.js';

export type { BitsResult, FieldResult, InfoResult, ModelFacts, ModelJob, RunSummary, TestImageResult, WorkerMessage } from '../web/protocol.js';

export type Job =
  | (ModelJob & { checkpoint: string })
  | { op: 'testImage'; checkpoint: string; index: number }
  /** One image coded into a file of `arpix compress`, then decoded back from its bytes and compared. */
  | { op: 'compress'; checkpoint: string; values: number[]; label: number | null; mode: 'native' | 'portable'; name: string };

/** What the image decoder is asked: an upload whose declared size the server has already checked. */
export interface DecodeJob {
  bytes: Uint8Array;
  /** Pixels the image may declare (the decoder checks again before decoding). */
  maxPixels: number;
}

/** A file of `arpix compress` holding one image, already decoded back to exactly that image. */
export interface CompressResult {
  /** The file: what the client downloads. */
  bytes: Uint8Array;
  /** Σ −log₂ of the coder's quantised probabilities of the image (and its label): the stream's ideal length. */
  idealBits: number;
  mode: 'native' | 'portable';
  weights: 'ema' | 'raw';
  encodeSeconds: number;
  decodeSeconds: number;
}
