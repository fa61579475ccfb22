// The PixelRNN families' entries in the family table (src/models/families.ts), Row LSTM and
// Diagonal BiLSTM: defaults, field ranges, tiny test cases, cost from the config alone and the
// PyTorch mirror.

import { diagonalBiLSTMCachedStepper, rowLSTMCachedStepper } from './cached.js';
import type { ModelFamily } from '../core/family.js';
import { pixelRNNCost, pixelRNNRanges, pixelRNNRecurrentFlops, type RecurrenceShape } from './pixelrnn.js';
import { RowLSTM, rowLSTMDefaults, type RowLSTMConfig } from './row-lstm.js';
import { DiagonalBiLSTM, diagonalBiLSTMDefaults, type DiagonalBiLSTMConfig } from './diagonal-bilstm.js';

/** Input-to-state columns x − ⌊k/2⌋ … x; state-to-state 1×k over the previous row; one scan position per pixel. */
const rowShape = (c: RowLSTMConfig): RecurrenceShape => ({ inputWidth: Math.floor(c.kernelSize / 2) + 1, directions: 1, stateTaps: c.kernelSize, positions: c.height * c.width });

/** 1×1 input-to-state for both directions; 2×1 state-to-state along the skewed map's H × (W + H − 1) positions. */
const diagonalShape = (c: DiagonalBiLSTMConfig): RecurrenceShape => ({ inputWidth: 1, directions: 2, stateTaps: 2, positions: c.height * (c.width + c.height - 1) });

export const rowLSTMFamily: ModelFamily<RowLSTMConfig> = {
  kind: 'row-lstm',
  paper: 'van den Oord et al. 2016, "Pixel Recurrent Neural Networks", §3.1 (Row LSTM)',
  mirror: 'pixelrnn',
  defaults: rowLSTMDefaults,
  build: (config, generator) => new RowLSTM(config, generator).withCachedStepper(rowLSTMCachedStepper),
  ranges: { ...pixelRNNRanges, kernelSize: { min: 1, max: 63, odd: true } },
  cost: (c) => pixelRNNCost(c, rowShape(c)),
  recurrentFlops: (c) => pixelRNNRecurrentFlops(c, rowShape(c)),
  differentiableInput: true,
  supports: () => true,
  tiny: () => ({ hiddenChannels: 4, layers: 2, firstKernelSize: 3, outputHidden: 8, kernelSize: 3 }),
};

export const diagonalBiLSTMFamily: ModelFamily<DiagonalBiLSTMConfig> = {
  kind: 'diagonal-bilstm',
  paper: 'van den Oord et al. 2016, "Pixel Recurrent Neural Networks", §3.2 (Diagonal BiLSTM)',
  mirror: 'pixelrnn',
  defaults: diagonalBiLSTMDefaults,
  build: (config, generator) => new DiagonalBiLSTM(config, generator).withCachedStepper(diagonalBiLSTMCachedStepper),
  ranges: pixelRNNRanges,
  cost: (c) => pixelRNNCost(c, diagonalShape(c)),
  recurrentFlops: (c) => pixelRNNRecurrentFlops(c, diagonalShape(c)),
  differentiableInput: true,
  supports: () => true,
  tiny: () => ({ hiddenChannels: 4, layers: 2, firstKernelSize: 3, outputHidden: 8 }),
};
