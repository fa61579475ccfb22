// What the page is told when it loads: written into its HTML by `arpix serve` (which way computes,
// the backend's module) or by `arpix export --web` (the runs of the folder and their files), so
// the page asks no server what it is.

import type { CodecMode } from '../codec/format.js';
import type { RunSummary } from './protocol.js';
import type { TrainingImages } from './train-data.js';

/** A run of an exported folder: its files, relative to index.html. */
export interface StaticRun {
  summary: RunSummary;
  /** The weights the page samples from: an arpix checkpoint (weights and metadata, with their sums). */
  weights: { file: string; bytes: number; sha256: string; which: 'ema' | 'raw' };
  /** JSON {dataset, count, height, width, channels, values: number[][], labels}. */
  tests: string;
  /** JSON list of the run's metric records, or null. */
  metrics: string | null;
  /** 8-bit value → the model's level, as the run's data transform maps it (for uploads). */
  lut: number[];
  /** The images the page trains a fresh model on (`--train-images`), or null (absent in older pages) and why not. */
  training?: TrainingImages | null;
  noTraining?: string;
}

export interface PageConfig {
  mode: 'serve' | 'static';
  /** Which way computes the model panels when the page opens. */
  compute: 'server' | 'page';
  allowUnverified: boolean;
  /** The worker's bundle. */
  worker: string;
  /** The WebAssembly module, or null with why there is none. */
  wasm: string | null;
  wasmReason: string | null;
  /**
   * The modes arpix serve's model workers write compressed files in: native where the addon
   * loaded, wasm where the module did, portable always. Empty in an export: the page's own worker
   * writes wasm files when it computes on WebAssembly, else portable ones.
   */
  compressModes: CodecMode[];
  runs: StaticRun[];
}

/** The element of the HTML that holds the config; its text is JSON with `<` escaped. */
export const CONFIG_ELEMENT_ID = 'arpix-config';

/** The HTML with the config written into its placeholder. */
export function withConfig(html: string, config: PageConfig): string {
  const json = JSON.stringify(config).replace(/</g, '\\u003c');
  const tag = `<script id="${CONFIG_ELEMENT_ID}" type="application/json">${json}</script>`;
  if (!html.includes('<!--arpix-config-->')) throw new Error('the page has no <!--arpix-config--> placeholder');
  return html.replace('<!--arpix-config-->', tag);
}
