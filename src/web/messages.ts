// What the page and its Web Worker (worker.ts) say to each other.

import type { ModelJob, WorkerMessage } from './protocol.js';

/** Where a run's weights are and what the page expects of them. */
export interface ModelSource {
  /** The run's id: the worker keeps one model per key. */
  key: string;
  /** The checkpoint (or exported weights) to fetch. */
  url: string;
  /** What errors call the file. */
  file: string;
  /** SHA-256 of the whole file, as the export listed it; null to rely on the checkpoint's own sums. */
  sha256: string | null;
  /** The kind and image size the page lists for the run; a file holding another model is refused. */
  expect: { kind: string; height: number; width: number; channels: number } | null;
  /** Use a checkpoint without SHA-256 sums (`arpix serve --allow-unverified`). */
  allowUnverified: boolean;
}

export type FromPage =
  /**
   * First message: the backend to use (a .wasm URL, or null and why not), and the cancel cell when
   * the page can share memory; `threads`: the WebAssembly kernels' threads where the page is
   * cross-origin isolated (arpix-threads.wasm beside the .wasm; 1 or absent: one thread).
   */
  | { type: 'init'; wasmUrl: string | null; wasmReason: string | null; cancel: SharedArrayBuffer | null; threads?: number }
  /** `threads`: of the worker's kernel threads, how many this job uses (absent: all). */
  | { type: 'job'; id: number; source: ModelSource; job: ModelJob; threads?: number };

export type ToPage =
  | { type: 'ready'; backend: 'wasm' | 'ts'; note: string }
  | { type: 'job'; id: number; msg: WorkerMessage };
