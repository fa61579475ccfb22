// The "model as a compressor" panel made real: one image coded by the run's model into a file of
// `arpix compress` (src/codec), then decoded back from those very bytes and compared value for
// value before anything is handed out. A file that would not give back the image never is. The
// engine runs it as a job (engine.ts), in the server's model worker and in the page's Web Worker
// alike; block 1, since one image coded alone needs no padding images.

import { backendName, registeredBackend } from '../backends/registry.js';
import { compressValues, decompressBytes } from '../codec/compress.js';
import type { CodecMode } from '../codec/format.js';
import { ArpixError } from '../errors.js';
import { isPaletteHead } from '../likelihoods/index.js';
import type { AutoregressiveModel } from '../models/core/model.js';
import type { Tensor } from '../tensor/tensor.js';
import { transformFor } from '../train/data-fit.js';
import type { RunConfig } from '../train/run-config.js';
import type { CompressResult } from './protocol.js';

export interface CompressInput {
  /** The image in the model's values, int32 [1, H, W, C]. */
  image: Tensor;
  /** Its class label for a class-conditional model, else null. */
  label: Tensor | null;
  mode: CodecMode;
  /** What the file is called in messages. */
  name: string;
  /** Throws when the job was cancelled: called between coding and decoding. */
  checkCancelled: () => void;
}

/**
 * A palette model codes each pixel as its nearest palette colour: a pixel of another colour would
 * come back changed, so it is refused here, naming the first one.
 */
function checkPaletteColours(m: AutoregressiveModel, image: Tensor): void {
  const head = m.likelihood;
  if (!isPaletteHead(head) || head.palette === null) return;
  const { colours, k } = head.palette;
  const c = m.config.channels;
  const w = m.config.width;
  const tokens = head.tokens(image).data as Int32Array;
  const values = image.data as Int32Array;
  for (let q = 0; q < tokens.length; q++) {
    for (let ch = 0; ch < c; ch++) {
      if (colours[tokens[q]! * c + ch] !== values[q * c + ch]) {
        const colour = Array.from(values.subarray(q * c, (q + 1) * c)).join(', ');
        throw new ArpixError(`pixel (${Math.floor(q / w)}, ${q % w}) has the colour (${colour}), which is not one of the model's ${k} palette colours; it codes only those, so this image cannot be compressed losslessly`);
      }
    }
  }
}

/** Why this thread cannot write files of a mode, or null when it can. */
export function modeUnavailable(mode: CodecMode): string | null {
  if (mode === 'native' && backendName() !== 'native') return 'the native backend is not loaded here, so it cannot write a native file; choose the wasm or portable mode';
  if (mode === 'wasm' && registeredBackend('wasm') === null) return 'the WebAssembly backend is not loaded here, so it cannot write a wasm file; choose the portable mode';
  return null;
}

/** Codes the image into a file's bytes, decodes them back with the same model, and returns the file only if they gave the image exactly. */
export function compressImage(m: AutoregressiveModel, config: RunConfig, weights: 'ema' | 'raw', input: CompressInput): CompressResult {
  const why = modeUnavailable(input.mode);
  if (why !== null) throw new ArpixError(why);
  checkPaletteColours(m, input.image);
  const labels = input.label === null ? null : (input.label.data as Int32Array);
  const t0 = performance.now();
  const { bytes, idealBits } = compressValues(m, input.image, { mode: input.mode, block: 1, weights, transform: transformFor(config.dataset), labels });
  const t1 = performance.now();
  input.checkCancelled();
  let back: ReturnType<typeof decompressBytes>;
  try {
    back = decompressBytes(bytes, input.name, m);
  } catch (e) {
    // Plain Errors are 500s: arpix wrote a file it cannot read, which is arpix's fault, not the asker's.
    throw new Error(`the file just written did not decode back (${e instanceof Error ? e.message : String(e)}); it was not offered`, { cause: e });
  }
  const t2 = performance.now();
  const want = input.image.data as Int32Array;
  const got = back.values.data as Int32Array;
  const at = want.findIndex((v, i) => got[i] !== v);
  if (got.length !== want.length || at >= 0) throw new Error(`the file just written decoded to another image (value ${at} is ${got[at]}, not ${want[at]}); it was not offered`);
  if ((labels === null) !== (back.labels === null) || (labels !== null && labels[0] !== back.labels![0])) throw new Error('the file just written decoded to another class label; it was not offered');
  return { bytes, idealBits, mode: input.mode, weights, encodeSeconds: (t1 - t0) / 1000, decodeSeconds: (t2 - t1) / 1000 };
}
