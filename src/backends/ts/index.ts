// The `ts` backend: every kernel as plain TypeScript loops. It defines what is correct; the
// native backend is tested against it. Kernels are generic over Float32Array / Float64Array, so
// gradient checks can run in float64.

import type { Kernels } from '../../kernels/contracts.js';
import { binary, cast, clamp, unary, unaryBackward, where } from './elementwise.js';
import { conv2d, conv2dBackward, conv2dBackwardData, conv2dBackwardWeights, matmul, releaseConvInput, rowConvSumBackward } from './linalg.js';
import { concat, gatherRows, oneHot, pad, permute, pickLast, pickLastBackward, scatterAddRows, slice } from './movement.js';
import { argmaxLast, reduce, softmaxLast } from './reduce.js';
import { lstmScan, lstmScanBackward } from './lstm.js';
import { rowLstmStep } from './cached-step.js';
import { categoricalDraw, kvCacheWrite } from './sampling.js';
import { attention, attentionBackward, attentionStep, gelu, geluBackward, layerNorm, layerNormBackward } from './transformer.js';
import { adamUpdate, concatElu, concatEluBackward, dropoutMask, gate, gatedResidual, gatedResidualBackward, gateBackward, softmaxCrossEntropy, softmaxCrossEntropyBackward } from './fused.js';

export const tsKernels: Kernels = {
  unary, unaryBackward, clamp, binary, where, reduce, argmaxLast, matmul,
  conv2d, conv2dBackwardData, conv2dBackwardWeights, conv2dBackward, releaseConvInput, rowConvSumBackward,
  permute, pad, slice, concat, gatherRows, scatterAddRows, pickLast, pickLastBackward,
  softmaxLast, cast, oneHot,
  gate, gateBackward, softmaxCrossEntropy, softmaxCrossEntropyBackward, dropoutMask, concatElu, concatEluBackward, gatedResidual, gatedResidualBackward, adamUpdate,
  lstmScan, lstmScanBackward,
  layerNorm, layerNormBackward, gelu, geluBackward, attention, attentionBackward, attentionStep, kvCacheWrite,
  rowLstmStep, categoricalDraw,
};

export const tsBackend = { name: 'ts', ...tsKernels } as const;
