// The "model as a compressor" panel made real: one image coded by the served model into a file of
// `arpix compress` (src/codec), then decoded back from those very bytes and compared value for
// value before anything is sent. A file that would not give back the image is never handed out.
// Runs in a model worker; block 1, since one image coded alone needs no padding images.

import { backendName } from '../backends/registry.js';
import { compressValues, decompressBytes } from '../codec/compress.js';
import { ArpixError } from '../errors.js';
import { isPaletteHead } from '../likelihoods/index.js';
import type { AutoregressiveModel } from '../models/core/model.js';
import type { Tensor } from '../tensor/tensor.js';
import { transformFor, type RunConfig } from '../train/index.js';
import type { CompressResult } from './protocol.js';

export interface CompressInput {
  /** The image in the model's values, int32 [1, H, W, C]. */
  image: Tensor;
  /** Its class label for a class-conditional model, else null. */
  label: Tensor | null;
  mode: 'native' | 'portable';
  /** What the file is called in messages. */
  name: string;
  /** Throws when the client went away: called between coding and decoding. */
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

/** Codes the image into a file's bytes, decodes them back with the same model, and returns the file only if they gave the image exactly. */
export function compressImage(m: AutoregressiveModel, config: RunConfig, weights: 'ema' | 'raw', input: CompressInput): CompressResult {
  if (input.mode === 'native' && backendName() !== 'native') throw new ArpixError('the native backend is not loaded in this server, so it cannot write a native file; choose the portable mode');
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
    // Plain Errors are 500s: the server wrote a file it cannot read, which is arpix's fault, not the client's.
    throw new Error(`the file just written did not decode back (${e instanceof Error ? e.message : String(e)}); it was not sent`, { cause: e });
  }
  const t2 = performance.now();
  const want = input.image.data as Int32Array;
  const got = back.values.data as Int32Array;
  const at = want.findIndex((v, i) => got[i] !== v);
  if (got.length !== want.length || at >= 0) throw new Error(`the file just written decoded to another image (value ${at} is ${got[at]}, not ${want[at]}); it was not sent`);
  if ((labels === null) !== (back.labels === null) || (labels !== null && labels[0] !== back.labels![0])) throw new Error('the file just written decoded to another class label; it was not sent');
  return { bytes, idealBits, mode: input.mode, weights, encodeSeconds: (t1 - t0) / 1000, decodeSeconds: (t2 - t1) / 1000 };
}
