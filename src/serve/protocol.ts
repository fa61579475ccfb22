// What the server asks its model worker to do, and what the worker answers. Every job names a
// checkpoint the server has already resolved inside the served folders.

export type Job =
  | { op: 'sample'; checkpoint: string; n: number; seed: number; temperature: number; label: number | null; granularity: 'row' | 'pixel';
      /** Completion: one image (H·W·C values in the model's levels) completed n times. */
      complete: { values: number[]; keepRows: number; mask: number[] | null } | null }
  | { op: 'bits'; checkpoint: string; values: number[]; label: number | null }
  | { op: 'field'; checkpoint: string; y: number; x: number }
  | { op: 'info'; checkpoint: string }
  | { op: 'testImage'; checkpoint: string; index: number }
  /** One image coded into a file of `arpix compress`, then decoded back from its bytes and compared. */
  | { op: 'compress'; checkpoint: string; values: number[]; label: number | null; mode: 'native' | 'portable'; name: string };

/** What the image decoder is asked: an upload whose declared size the server has already checked. */
export interface DecodeJob {
  bytes: Uint8Array;
  /** Pixels the image may declare (the decoder checks again before decoding). */
  maxPixels: number;
}

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
  /** The job stopped early because the server asked (its client went away). */
  | { type: 'cancelled' };

export interface BitsResult {
  /** −log2 p(x_i | x_<i) for every element, [H·W·C]. */
  bits: number[];
  totalBits: number;
  bitsPerDim: number;
  /** Bytes of the same image as an 8-bit PNG (fast-png, default compression). */
  pngBytes: number;
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
