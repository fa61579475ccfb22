// Row LSTM (van den Oord et al. 2016, "Pixel Recurrent Neural Networks", §3.1): each layer runs an
// LSTM down the rows of the map, one row at a time. Its input-to-state part is a masked 1×k
// convolution over the whole map, computed at once (columns x − ⌊k/2⌋ … x, the current pixel's
// channels masked in colour; the taps right of the pixel, which the paper's mask zeroes, are not
// computed); its state-to-state part is an unmasked 1×k convolution over the previous row's h.
// The state at (r, c) therefore sees the triangle above it: row r − d, columns c − d·⌊k/2⌋ …
// c + d·⌊k/2⌋, for every d ≥ 1 (and the pixels left of it through the input-to-state).

import { ArgumentError } from '../../errors.js';
import { permute } from '../../ops/index.js';
import type { Generator } from '../../tensor/random.js';
import type { Tensor } from '../../tensor/tensor.js';
import type { Condition } from '../core/model.js';
import { LSTMState, PixelRNN, RecurrentLayerBase, pixelRNNDefaults, type PixelRNNConfig } from './pixelrnn.js';

export interface RowLSTMConfig extends PixelRNNConfig {
  kind: 'row-lstm';
  /** Width k of the input-to-state and state-to-state kernels (odd; the paper's 3). */
  kernelSize: number;
}

export const rowLSTMDefaults: Omit<RowLSTMConfig, 'height' | 'width' | 'channels' | 'likelihood'> = {
  kind: 'row-lstm',
  ...pixelRNNDefaults,
  kernelSize: 3,
};

export class RowLSTMLayer extends RecurrentLayerBase {
  readonly state: LSTMState;
  readonly radius: number;

  constructor(cfg: RowLSTMConfig, groups: number, generator?: Generator) {
    const r = Math.floor(cfg.kernelSize / 2);
    super(cfg, groups, 1, r + 1, generator);
    this.radius = r;
    this.state = this.registerModule('state', new LSTMState(cfg.hiddenChannels, [1, cfg.kernelSize], generator));
  }

  forward(x: Tensor, cond: Condition): Tensor {
    const z = permute(this.gates(x, cond), [1, 0, 2, 3]); // [H, N, W, 4h]: the rows are the steps
    const h = permute(this.state.scan(z, this.radius), [1, 0, 2, 3]); // [N, H, W, h]
    return this.output.forward(h, x); // x + 1×1(h): [N, H, W, 2h]
  }
}

export class RowLSTM extends PixelRNN<RowLSTMConfig> {
  constructor(config: RowLSTMConfig, generator?: Generator) {
    const k = config.kernelSize;
    if (!Number.isInteger(k) || k < 1 || k % 2 === 0) throw new ArgumentError('row-lstm', 'kernelSize', `must be an odd positive integer, got ${k}`);
    super(config, (groups) => new RowLSTMLayer(config, groups, generator), generator);
  }
}
