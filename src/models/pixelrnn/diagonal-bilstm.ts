// Diagonal BiLSTM (van den Oord et al. 2016, "Pixel Recurrent Neural Networks", §3.2): each layer
// runs two LSTMs along the diagonals of the map. The input map is skewed — row r shifted right by
// r, n × (2n − 1) — so that a diagonal becomes a column; the input-to-state part is a 1×1 masked
// convolution, the state-to-state part a 2×1 convolution along each column of the skewed map
// that reads rows r − 1 and r of the previous column (zero above the first row: never "same"
// padding, which would read row r + 1), scanned left to right. Unskewed, the forward state at
// (r, c) has seen every (r', c') with r' ≤ r and c' ≤ c. The second direction has its own
// weights and runs on the horizontally mirrored map; flipped back, its state at (r, c) has seen
// (r' ≤ r, c' ≥ c), so it is shifted down by one row before the two are added: the output at
// (r, c) is forward(r, c) + backward(r − 1, c), which has seen exactly the rows above and the
// row's pixels up to c — the whole causal context and nothing after it.

import { embedding, add, downShift, pad, permute, reshape, slice, split } from '../../ops/index.js';
import { Tensor } from '../../tensor/tensor.js';
import type { Generator } from '../../tensor/random.js';
import type { Condition } from '../core/model.js';
import { LSTMState, PixelRNN, RecurrentLayerBase, pixelRNNDefaults, type PixelRNNConfig } from './pixelrnn.js';

export interface DiagonalBiLSTMConfig extends PixelRNNConfig {
  kind: 'diagonal-bilstm';
}

export const diagonalBiLSTMDefaults: Omit<DiagonalBiLSTMConfig, 'height' | 'width' | 'channels' | 'likelihood'> = {
  kind: 'diagonal-bilstm',
  ...pixelRNNDefaults,
};

/**
 * [N, H, W, C] → the skewed map, step-major: [W + H − 1, N, H, C] with out[j, n, r] = x[n, r, j − r]
 * (zero off the row). Row r padded by H on the right and read with a row length one shorter
 * lands each row r places further right.
 */
export function skew(x: Tensor): Tensor {
  const [n, h, w, c] = x.shape as [number, number, number, number];
  const flat = reshape(pad(x, [[0, 0], [0, 0], [0, h], [0, 0]]), [n, h * (w + h), c]);
  const q = reshape(slice(flat, [0, 0, 0], [n, h * (w + h - 1), c]), [n, h, w + h - 1, c]);
  return permute(q, [2, 0, 1, 3]);
}

/** The inverse of skew: [W + H − 1, N, H, C] → [N, H, W, C], out[n, r, c] = s[r + c, n, r]. */
export function unskew(s: Tensor, width: number): Tensor {
  const [t, n, h, c] = s.shape as [number, number, number, number];
  const flat = pad(reshape(permute(s, [1, 2, 0, 3]), [n, h * t, c]), [[0, 0], [0, h], [0, 0]]);
  return slice(reshape(flat, [n, h, t + 1, c]), [0, 0, 0, 0], [n, h, width, c]);
}

const flipIndices = new Map<string, Tensor>();

/** x [N, H, W, C] mirrored left to right (a gather of pixels, whose backward scatters). */
export function flipWidth(x: Tensor): Tensor {
  const [n, h, w, c] = x.shape as [number, number, number, number];
  const key = `${n},${h},${w}`;
  let idx = flipIndices.get(key);
  if (!idx) {
    const d = new Int32Array(n * h * w);
    for (let p = 0; p < n * h; p++) for (let x0 = 0; x0 < w; x0++) d[p * w + x0] = p * w + (w - 1 - x0);
    idx = new Tensor(d, [n * h * w]);
    flipIndices.set(key, idx);
  }
  return reshape(embedding(reshape(x, [n * h * w, c]), idx), [n, h, w, c]);
}

export class DiagonalBiLSTMLayer extends RecurrentLayerBase {
  readonly forwardState: LSTMState;
  readonly backwardState: LSTMState;

  constructor(cfg: DiagonalBiLSTMConfig, groups: number, generator?: Generator) {
    super(cfg, groups, 2, 1, generator);
    // 2×1 kernels: tap 0 reads row r − 1, tap 1 row r (lstmScan's pad 1).
    this.forwardState = this.registerModule('forwardState', new LSTMState(cfg.hiddenChannels, [2, 1], generator));
    this.backwardState = this.registerModule('backwardState', new LSTMState(cfg.hiddenChannels, [2, 1], generator));
  }

  /** The two directions' unskewed states [N, H, W, h], the backward one not yet shifted down. */
  directions(x: Tensor, cond: Condition): [Tensor, Tensor] {
    const w = x.shape[2]!;
    const g = this.forwardState.h0.shape[0]! * 4;
    const [zf, zb] = split(this.gates(x, cond), [g, g], 3) as [Tensor, Tensor]; // [N, H, W, 4h] each
    const fwd = unskew(this.forwardState.scan(skew(zf), 1), w);
    const bwd = flipWidth(unskew(this.backwardState.scan(skew(flipWidth(zb)), 1), w));
    return [fwd, bwd];
  }

  forward(x: Tensor, cond: Condition): Tensor {
    const [fwd, bwd] = this.directions(x, cond);
    return this.output.forward(add(fwd, downShift(bwd)), x); // x + 1×1(fwd + bwd one row down)
  }
}

export class DiagonalBiLSTM extends PixelRNN<DiagonalBiLSTMConfig> {
  constructor(config: DiagonalBiLSTMConfig, generator?: Generator) {
    super(config, (groups) => new DiagonalBiLSTMLayer(config, groups, generator), generator);
  }
}
