// What the page and its training Web Worker (train-worker.ts, in worker.js) say to each other,
// besides the `init` that chooses the worker's backend (messages.ts).

import type { ModelSource } from './messages.js';
import type { TrainingImages } from './train-data.js';

export type TrainFromPage =
  /**
   * A fresh model of the run's config (read from its weights' metadata), trained on `images` for
   * `steps` steps (0: until stopped), measured on the held-out images every `heldOutEvery` steps
   * (0: never). `batchSize` null: the run's train.batchSize.
   */
  | { type: 'train-start'; weights: ModelSource; images: TrainingImages; batchSize: number | null; steps: number; heldOutEvery: number }
  /** The stopped model trained on, to `steps` steps in all (0: until stopped). */
  | { type: 'train-continue'; steps: number }
  /** Stops after the step in progress. */
  | { type: 'train-stop' }
  /** The model as it is now, as checkpoint bytes the sampling workers load. */
  | { type: 'train-snapshot'; id: number };

export type TrainEvent =
  | { type: 'started'; parameters: number; trainImages: number; heldOutImages: number; batchSize: number; loadSeconds: number }
  /** A step applied: its loss (bits/dim) and gradient norm, the next step's learning rate, its images and seconds. */
  | { type: 'step'; step: number; loss: number; gradNorm: number; lr: number; images: number; seconds: number }
  | { type: 'held-out'; step: number; bitsPerDim: number; stderr: number; seconds: number }
  /** Training paused or over: stopped, the steps asked for done, or a step whose loss or gradient was not finite. */
  | { type: 'ended'; step: number; outcome: 'stopped' | 'done' | 'diverged'; message: string | null }
  | { type: 'error'; message: string }
  /** Null bytes when there is no model yet. */
  | { type: 'snapshot'; id: number; step: number; bytes: Uint8Array | null };

export interface TrainToPage {
  type: 'train';
  event: TrainEvent;
}
