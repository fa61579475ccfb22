// What the codec's tests code: a small palette, and images each tiny model can code (values below
// its levels, or colours of that palette), the same for a given seed on every machine.

import * as ax from '../ops/index.js';
import type { AutoregressiveModel } from '../models/core/model.js';
import { Generator } from '../tensor/random.js';
import { Tensor } from '../tensor/tensor.js';

/** Five RGB colours: the palette of the tests' palette-head models. */
export const TEST_PALETTE = [0, 0, 0, 200, 30, 30, 30, 200, 30, 30, 30, 200, 255, 255, 255];

/** n images the model can code, drawn from the counter-based generator with `seed`. */
export function codableImages(model: AutoregressiveModel, n: number, seed: number): Tensor {
  const { height: h, width: w, channels: c } = model.config;
  const g = new Generator(seed);
  if (model.likelihood.config.kind === 'palette') {
    const k = TEST_PALETTE.length / c;
    const tokens = ax.randint(0, k, [n * h * w], { generator: g }).data as Int32Array;
    const out = new Int32Array(n * h * w * c);
    for (let q = 0; q < tokens.length; q++) for (let ch = 0; ch < c; ch++) out[q * c + ch] = TEST_PALETTE[tokens[q]! * c + ch]!;
    return new Tensor(out, [n, h, w, c]);
  }
  return ax.randint(0, model.likelihood.levels, [n, h, w, c], { generator: g });
}
