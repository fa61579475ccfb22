// What the model engine (engine.ts) is asked and what it answers: the same messages whether it runs
// in a worker thread of `arpix serve` or in a Web Worker of the page, so the page paints either
// path's answers with the same code.

import type { CodecMode } from '../codec/format.js';

/** The bounds of one request, the same on the server and in the page. */
export const MODEL_LIMITS = {
  /** Images one sample request may draw. */
  samples: 64,
  /** Completions of one image per request. */
  completions: 16,
  /** Elements (n · H · W · C) one request may sample. */
  sampleElements: 1 << 20,
  /** Pixel-by-pixel streaming up to this many pixels per image (rows above it). */
  pixelStreamPixels: 64 * 64,
  temperature: [0.05, 5] as const,
  seed: 2 ** 31 - 1,
};

/** A job on a loaded model: sampling and completion, per-element bits, a receptive field, model facts. */
export type ModelJob =
  | { op: 'sample'; n: number; seed: number; temperature: number; label: number | null; granularity: 'row' | 'pixel';
      /** Completion: one image (H·W·C values in the model's levels) completed n times. */
      complete: { values: number[]; keepRows: number; mask: number[] | null } | null;
      /**
       * Only images from…to−1 of the batch (samplePart: the same values the whole batch gives them),
       * as one of the page's workers samples its part; rows and pixels then hold those images only.
       * Absent: the whole batch.
       */
      part?: { from: number; to: number } }
  | { op: 'bits'; values: number[]; label: number | null }
  | { op: 'field'; y: number; x: number }
  | { op: 'info' }
  /** One image (H·W·C values) coded into a file of `arpix compress`, then decoded back from its bytes and compared (compress.ts); `name` names the file in messages. */
  | { op: 'compress'; values: number[]; label: number | null; mode: CodecMode; name: string };

export interface ModelFacts {
  kind: string;
  height: number;
  width: number;
  channels: number;
  levels: number;
  numClasses: number;
}

export type WorkerMessage =
  | { type: 'start'; model: ModelFacts; loadSeconds: number }
  | { type: 'row'; y: number; values: Int32Array }
  | { type: 'pixel'; y: number; x: number; values: Int32Array }
  | { type: 'done'; result: unknown; seconds: number }
  | { type: 'error'; status: 400 | 404 | 422 | 500; message: string }
  /** The job stopped early because it was asked to (its client went away, or Stop). */
  | { type: 'cancelled' };

export interface BitsResult {
  /** −log2 p(x_i | x_<i) for every element, [H·W·C]. */
  bits: number[];
  totalBits: number;
  bitsPerDim: number;
  /** Bytes of the same image as an 8-bit PNG (fast-png, default compression). */
  pngBytes: number;
}

/** What a compress request's name may be: it goes into the file's name. */
export const COMPRESS_NAME = /^[A-Za-z0-9._-]{1,64}$/;

/** The file a run's image is offered as: `<run's last folder>-<name>.arpz`, safe on any file system. */
export function compressedFileName(runId: string, name: string): string {
  const part = (v: string) => v.replace(/[^A-Za-z0-9._-]/g, '_').slice(0, 80);
  return `${part(runId.split('/').pop() || 'run')}-${part(name)}.arpz`;
}

/** A file of `arpix compress` holding one image, already decoded back to exactly that image. */
export interface CompressResult {
  /** The file: what is offered for download. */
  bytes: Uint8Array;
  /** Σ −log₂ of the coder's quantised probabilities of the image (and its label): the stream's ideal length. */
  idealBits: number;
  mode: CodecMode;
  weights: 'ema' | 'raw';
  encodeSeconds: number;
  decodeSeconds: number;
}

export interface FieldResult {
  y: number;
  x: number;
  influence: number[];
  pixels: number;
  of: number;
}

export interface InfoResult {
  model: ModelFacts;
  config: Record<string, unknown>;
  parameters: number;
  flops: number;
  maskedFlops: number;
  maskedFormulationFlops: number | null;
  convolutions: number;
  /** Null when not measured (a discrete-input network too large for one pass per pixel). */
  receptiveField: { pixels: number; of: number; measuredBy: 'gradients' | 'interventions' | 'structure' } | null;
}

export interface TestImageResult {
  index: number;
  count: number;
  values: number[];
  label: number | null;
  dataset: string;
}

/** What the runs table shows, read from the folder without loading any weights. */
export interface RunSummary {
  id: string;
  preset: string | null;
  kind: string | null;
  height: number | null;
  width: number | null;
  channels: number | null;
  levels: number | null;
  numClasses: number;
  parameters: number | null;
  step: number | null;
  imagesSeen: number | null;
  hasCheckpoint: boolean;
  /** bits/dim of the last validation record in metrics.jsonl, or null. */
  validationBitsPerDim: number | null;
  /** bits/dim on the test set from test.json (npm start), or null. */
  testBitsPerDim: number | null;
  /** Seconds since metrics.jsonl last changed (a small number: training now). */
  metricsAge: number | null;
}
