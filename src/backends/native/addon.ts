// The shape of the compiled addon's exports (native/addon.cc). Arguments are positional and
// low-level: typed arrays passed without copying, shapes as plain arrays, attributes already
// translated. Only kernels.ts calls these.

import type { RowLSTMStepPlan, TypedArray } from '../../kernels/contracts.js';

/** An opaque native object (a Node-API external). */
export type NativeHandle = { readonly __native: unique symbol };

type Shape = readonly number[];
/** [strideH, strideW, padTop, padLeft, dilationH, dilationW, rowWinograd (0 / 1)] */
export type ConvParamArray = readonly [number, number, number, number, number, number, number];

export interface ConvBenchFigure {
  /** Median seconds per call of the fastest configuration. */
  readonly seconds: number;
  /** Its fastest call (less sensitive to other load on the machine). */
  readonly minSeconds: number;
  /** Which configuration that was, e.g. 'nhwc/direct' or 'nChw16c/auto'. */
  readonly config: string;
}

export interface ConvBenchBest {
  readonly forward: ConvBenchFigure;
  readonly backwardData: ConvBenchFigure;
  readonly backwardWeights: ConvBenchFigure;
}

/** One convolution of rowConvSumBackward: [x, xShape, w, wShape, params, dx, addend, dw], the last three null when not wanted. */
export type RowTermArgs = readonly [TypedArray, Shape, TypedArray, Shape, ConvParamArray, TypedArray | null, TypedArray | null, TypedArray | null];

export interface NativeAddon {
  unary(x: TypedArray, out: TypedArray, op: string): void;
  unaryBackward(x: TypedArray, y: TypedArray, g: TypedArray, dx: TypedArray, op: string): void;
  clamp(x: TypedArray, out: TypedArray, lo: number, hi: number): void;
  binary(a: TypedArray, aShape: Shape, b: TypedArray, bShape: Shape, out: TypedArray, outShape: Shape, op: string): void;
  where(cond: TypedArray, condShape: Shape, a: TypedArray, aShape: Shape, b: TypedArray, bShape: Shape, out: TypedArray, outShape: Shape): void;
  reduce(x: TypedArray, xShape: Shape, out: TypedArray, outShape: Shape, axes: readonly number[], op: string): void;
  argmaxLast(x: TypedArray, xShape: Shape, out: TypedArray): void;
  softmaxLast(x: TypedArray, xShape: Shape, out: TypedArray, log: boolean): void;
  matmul(a: TypedArray, aShape: Shape, b: TypedArray, bShape: Shape, out: TypedArray, outShape: Shape, transA: boolean, transB: boolean): void;
  conv2d(x: TypedArray, xShape: Shape, w: TypedArray, wShape: Shape, wStorageId: number, wVersion: number, bias: TypedArray | null, out: TypedArray, outShape: Shape, p: ConvParamArray, accumulate: boolean, xStorageId: number, xVersion: number, keep: boolean, residual: TypedArray | null): number;
  conv2dBackward(x: TypedArray, xShape: Shape, xStorageId: number, xVersion: number, dy: TypedArray, dyShape: Shape, w: TypedArray, wShape: Shape, wStorageId: number, wVersion: number, dx: TypedArray | null, dw: TypedArray | null, db: TypedArray | null, p: ConvParamArray, saved: number): void;
  releaseConvInput(saved: number): void;
  /** The address of the buffer's first byte modulo 64. */
  addressMod64(buffer: ArrayBuffer): number;
  rowConvSumBackward(terms: readonly RowTermArgs[], dy: TypedArray, dyShape: Shape, db: TypedArray | null): void;
  convImplementations(): { what: string; impl: string }[];
  conv2dBackwardData(dy: TypedArray, dyShape: Shape, w: TypedArray, wShape: Shape, wStorageId: number, wVersion: number, dx: TypedArray, dxShape: Shape, p: ConvParamArray): void;
  conv2dBackwardWeights(x: TypedArray, xShape: Shape, dy: TypedArray, dyShape: Shape, dw: TypedArray, dwShape: Shape, p: ConvParamArray, db: TypedArray | null): void;
  permute(x: TypedArray, xShape: Shape, out: TypedArray, outShape: Shape, perm: readonly number[]): void;
  pad(x: TypedArray, xShape: Shape, out: TypedArray, outShape: Shape, before: readonly number[], value: number): void;
  slice(x: TypedArray, xShape: Shape, out: TypedArray, outShape: Shape, begin: readonly number[]): void;
  concat(xs: readonly TypedArray[], shapes: readonly Shape[], out: TypedArray, outShape: Shape, axis: number): void;
  gatherRows(table: TypedArray, tableShape: Shape, idx: TypedArray, out: TypedArray): void;
  scatterAddRows(g: TypedArray, idx: TypedArray, out: TypedArray, outShape: Shape): void;
  pickLast(x: TypedArray, xShape: Shape, idx: TypedArray, out: TypedArray): void;
  pickLastBackward(g: TypedArray, idx: TypedArray, out: TypedArray, outShape: Shape): void;
  cast(x: TypedArray, out: TypedArray): void;
  oneHot(idx: TypedArray, out: TypedArray, outShape: Shape): void;
  gate(x: TypedArray, xShape: Shape, out: TypedArray, outShape: Shape): void;
  gateBackward(x: TypedArray, xShape: Shape, g: TypedArray, gShape: Shape, dx: TypedArray): void;
  softmaxCrossEntropy(logits: TypedArray, logitsShape: Shape, targets: TypedArray, loss: TypedArray, probs: TypedArray): void;
  softmaxCrossEntropyBackward(probs: TypedArray, probsShape: Shape, targets: TypedArray, g: TypedArray, dx: TypedArray): void;
  /** hyper: [beta1, beta2, eps, stepSize, bc2Sqrt, decay, l2] */
  adamUpdate(p: TypedArray, g: TypedArray, m: TypedArray, v: TypedArray, hyper: readonly number[]): void;
  gatedResidual(x: TypedArray, xShape: Shape, h: TypedArray, hShape: Shape, out: TypedArray): void;
  gatedResidualBackward(h: TypedArray, hShape: Shape, g: TypedArray, gShape: Shape, dh: TypedArray): void;
  concatElu(x: TypedArray, xShape: Shape, out: TypedArray, outShape: Shape): void;
  concatEluBackward(x: TypedArray, xShape: Shape, g: TypedArray, gShape: Shape, dx: TypedArray): void;
  dropoutMask(out: TypedArray, seed: number, offset: number, p: number): void;
  lstmScan(xg: TypedArray, xgShape: Shape, w: TypedArray, wShape: Shape, h0: TypedArray, c0: TypedArray, hs: TypedArray, cs: TypedArray, acts: TypedArray, pad: number): void;
  lstmScanBackward(w: TypedArray, wShape: Shape, h0: TypedArray, c0: TypedArray, hs: TypedArray, cs: TypedArray, acts: TypedArray, actsShape: Shape, dhs: TypedArray, dxg: TypedArray, dw: TypedArray, dh0: TypedArray, dc0: TypedArray, pad: number): void;
  layerNorm(x: TypedArray, xShape: Shape, weight: TypedArray | null, bias: TypedArray | null, out: TypedArray, mean: TypedArray, rstd: TypedArray, eps: number, rms: boolean): void;
  layerNormBackward(x: TypedArray, xShape: Shape, weight: TypedArray | null, mean: TypedArray, rstd: TypedArray, g: TypedArray, dx: TypedArray, dweight: TypedArray | null, dbias: TypedArray | null, rms: boolean): void;
  gelu(x: TypedArray, out: TypedArray, tanh: boolean): void;
  geluBackward(x: TypedArray, g: TypedArray, dx: TypedArray, tanh: boolean): void;
  /** pattern: patternCode() of src/kernels/attention.ts */
  attention(qkv: TypedArray, qkvShape: Shape, out: TypedArray, lse: TypedArray, heads: number, scale: number, pattern: readonly number[]): void;
  attentionBackward(qkv: TypedArray, qkvShape: Shape, out: TypedArray, lse: TypedArray, g: TypedArray, dqkv: TypedArray, heads: number, scale: number, pattern: readonly number[]): void;
  attentionStep(q: TypedArray, qShape: Shape, k: TypedArray, kShape: Shape, v: TypedArray, vShape: Shape, out: TypedArray, position: number, heads: number, scale: number, pattern: readonly number[], length: number): void;
  /** A native handle for a Row LSTM step plan; the plan's arrays must outlive it. */
  rowLstmPlan(plan: RowLSTMStepPlan): NativeHandle;
  rowLstmStep(handle: NativeHandle, y: number, x: number): void;

  threads(): number;
  setThreads(n: number): void;
  setConvAlgorithm(policy: string): void;
  convAlgorithm(): string;
  onednnVersion(): string;
  clearCaches(): void;
  cacheSizes(): { primitives: number; weights: number; keptInputs: number };
  convBenchBest(n: number, h: number, w: number, cin: number, cout: number, k: number, iters: number): ConvBenchBest;
}
