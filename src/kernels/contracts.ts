// Kernel contracts: every kernel arpix runs is declared here, once. The op layer (src/ops) checks
// arguments, computes output shapes and allocates outputs; a backend kernel only does arithmetic
// into the buffers it is handed. The `ts` backend implements every kernel; `native` implements the
// ones that matter for speed and the registry falls back to `ts` for the rest.
//
// Conventions shared by all kernels:
// - Buffers are contiguous, row-major. Images and activations are channels-last [N, H, W, C].
// - Convolution weights are [kH, kW, Cin, Cout] (HWIO); conversion to PyTorch's [O, I, kH, kW]
//   happens only at import/export.
// - Outputs are preallocated by the caller and fully overwritten by the kernel (never accumulated
//   into), unless a kernel's comment says otherwise.
// - float64 exists for gradient checking on the `ts` backend; native kernels see float32 and int32
//   only (the registry routes float64 to `ts`).

import type { AttentionAttrs } from './attention.js';

export type { AttentionAttrs, AttentionPattern } from './attention.js';

export type DType = 'float32' | 'int32' | 'float64';
export type FloatArray = Float32Array | Float64Array;
export type TypedArray = Float32Array | Float64Array | Int32Array;

/** A read-only view of a tensor's storage as kernels see it. */
export interface View {
  readonly data: TypedArray;
  readonly shape: readonly number[];
  readonly dtype: DType;
  /** Identity of the storage (stable for a tensor's life); lets native cache reordered weights. */
  readonly storageId: number;
  /** Bumped on every in-place write to the storage (optimiser steps); part of that cache key. */
  readonly version: number;
}

export const UNARY_OPS = [
  'neg', 'exp', 'log', 'sqrt', 'rsqrt', 'abs', 'sign', 'square', 'reciprocal',
  'tanh', 'sigmoid', 'relu', 'elu', 'softplus', 'logSigmoid',
] as const;
export type UnaryOp = (typeof UNARY_OPS)[number];

/** Unary ops whose backward is one fused kernel (unaryBackward) instead of composed ops. */
export const UNARY_GRAD_OPS = ['exp', 'tanh', 'sigmoid', 'relu', 'elu', 'softplus', 'logSigmoid'] as const;
export type UnaryGradOp = (typeof UNARY_GRAD_OPS)[number];

export const BINARY_OPS = [
  'add', 'sub', 'mul', 'div', 'pow', 'maximum', 'minimum',
  'greater', 'greaterEqual', 'less', 'lessEqual', 'equal', 'notEqual',
] as const;
export type BinaryOp = (typeof BINARY_OPS)[number];

export type ReduceOp = 'sum' | 'max' | 'min';

/** Convolution geometry. Bottom/right padding follow from the output shape. */
export interface ConvParams {
  readonly strideH: number;
  readonly strideW: number;
  readonly padTop: number;
  readonly padLeft: number;
  readonly dilationH: number;
  readonly dilationW: number;
  /**
   * The layer allows rows to be computed by 1-D Winograd along the width (3-wide kernels, stride
   * 1): rounding then mixes each row tile's inputs into all its outputs, so only a layer whose
   * outputs may all see every column of the rows they read sets it (Gated PixelCNN's vertical
   * stack). Rows are never mixed. A backend may ignore it (the ts reference computes directly).
   */
  readonly rowWinograd?: boolean;
}

/** One convolution of rowConvSumBackward, with its gradients (null when not wanted) and dx's addend. */
export interface RowConvGradTerm {
  readonly x: View;
  readonly w: View;
  readonly p: ConvParams;
  readonly dx: View | null;
  readonly addend: View | null;
  readonly dw: View | null;
}

/** Adam's per-step constants (src/optim/adam.ts derives them). */
export interface AdamHyper {
  readonly beta1: number;
  readonly beta2: number;
  readonly eps: number;
  /** lr / (1 − β1^t) */
  readonly stepSize: number;
  /** √(1 − β2^t) */
  readonly bc2Sqrt: number;
  /** 1 − lr·weightDecay for AdamW, else 1 */
  readonly decay: number;
  /** weightDecay for Adam's L2 term, else 0 */
  readonly l2: number;
}

/** A dense layer of a cached step: out [n, cout] = in [n, cin] · weight [cin, cout] + bias [cout]. */
export interface StepDense {
  readonly weight: Float32Array;
  readonly bias: Float32Array;
  readonly cin: number;
  readonly cout: number;
}

/** One Row LSTM layer of a cached step (src/models/pixelrnn/cached.ts builds it). */
export interface RowLSTMStepLayer {
  /** Columns dx ≤ 0 of the layer's input row that its input-to-state convolution reads (masked-out taps left out). */
  readonly inputTaps: Int32Array;
  /**
   * The gates' weights [inputTaps·2h + k·h, 4h]: the input-to-state taps' (masked) weights, then
   * the state-to-state weights of the previous row's h at columns x − ⌊k/2⌋ … x + ⌊k/2⌋.
   */
  readonly gates: Float32Array;
  /** Each image's gate bias [n, 4h]: the input-to-state bias plus the image's condition. */
  readonly gateBias: Float32Array;
  /** The 1×1 convolution h → 2h that the residual adds to the layer's input. */
  readonly output: StepDense;
  /** h and c [n, W, h] of the previous row (h0, c0 before the first) and of the current row. */
  readonly prevH: Float32Array;
  readonly prevC: Float32Array;
  readonly curH: Float32Array;
  readonly curC: Float32Array;
}

/**
 * Everything a Row LSTM's cached step reads and writes: its weights, stacked as the step uses
 * them, and its state. The sampler writes sampled values into `image` and moves the current row's
 * states into the previous row's at the start of each row; the step writes the rest.
 */
export interface RowLSTMStepPlan {
  readonly n: number;
  readonly height: number;
  readonly width: number;
  readonly channels: number;
  /** LSTM channels h (the residual stream carries 2h). */
  readonly hidden: number;
  /** State-to-state kernel width k (odd). */
  readonly kernel: number;
  /** The input image [n, H, W, C], scaled to [−1, 1]. */
  readonly image: Float32Array;
  /** (dy, dx) of the first convolution's taps that its mask leaves open, [taps, 2]. */
  readonly firstTaps: Int32Array;
  /** The first convolution's stacked weights [taps·C, 2h] and bias. */
  readonly first: StepDense;
  /** Each layer's input row [n, W, 2h]: the first convolution's output, then each layer's. */
  readonly rows: readonly Float32Array[];
  readonly layers: readonly RowLSTMStepLayer[];
  /** Every layer's skip 1×1, stacked [L·2h, 2h], with the biases summed. */
  readonly skip: StepDense;
  readonly outHidden: StepDense;
  readonly out: StepDense;
  /** The step's result: likelihood parameters [n, P] of the pixel. */
  readonly logits: Float32Array;
}

export interface Kernels {
  /** out[i] = op(x[i]); same shape. elu uses alpha = 1. Comparisons are not unary. */
  unary(x: View, out: View, op: UnaryOp): void;
  /**
   * dx = g · op'(x), given x, y = op(x) and g, all of one shape: exp g·y; tanh g·(1 − y²); sigmoid
   * g·y·(1 − y); relu g·[x > 0]; elu g·(x > 0 ? 1 : y + 1); softplus g·σ(x); logSigmoid g·σ(−x).
   */
  unaryBackward(x: View, y: View, g: View, dx: View, op: UnaryGradOp): void;
  /** out[i] = min(max(x[i], lo), hi). */
  clamp(x: View, out: View, lo: number, hi: number): void;
  /**
   * out = op(a, b) with NumPy broadcasting: a and b are given at their own shapes, out at the
   * broadcast shape (same rank as out after left-padding a and b with 1s). Comparisons write 1 / 0
   * in out's dtype.
   */
  binary(a: View, b: View, out: View, op: BinaryOp): void;
  /** out = cond != 0 ? a : b, broadcasting all three to out's shape like `binary`. */
  where(cond: View, a: View, b: View, out: View): void;
  /**
   * Reduces x over `axes` (sorted, unique) into out, whose shape is x's with those axes set to 1
   * (keep-dims form; the op layer reshapes afterwards).
   */
  reduce(x: View, out: View, axes: readonly number[], op: ReduceOp): void;
  /** Index of the maximum along the last axis; out is int32 with x's shape minus the last axis. */
  argmaxLast(x: View, out: View): void;
  /**
   * out = op(a) @ op(b) where op transposes the last two axes when the flag is set. a is [M,K] or
   * [B,M,K] (before transposition), b likewise; when both are batched B is equal, when one is 2-D
   * it is shared by every batch. out is [M,N] or [B,M,N].
   */
  matmul(a: View, b: View, out: View, transA: boolean, transB: boolean): void;
  /**
   * out[n,y,x,o] = bias[o] + Σ x[n, y·sh − pt + ky·dh, x·sw − pl + kx·dw, i] · w[ky,kx,i,o];
   * with `accumulate`, that is added to what out holds (a sum of convolutions in one buffer), and
   * with `residual` (out's shape, memory disjoint from out; not with accumulate) residual is added
   * as out is written (a residual connection without a separate add).
   * With `keepInput` a backend may keep a copy of x it made in its own layout for conv2dBackward,
   * and returns a handle to it; 0 means nothing was kept.
   */
  conv2d(x: View, w: View, bias: View | null, out: View, p: ConvParams, accumulate?: boolean, keepInput?: boolean, residual?: View | null): number;
  /** dx = ∂(conv2d)/∂x applied to dy; dx is overwritten. */
  conv2dBackwardData(dy: View, w: View, dx: View, p: ConvParams): void;
  /** dw = ∂(conv2d)/∂w applied to dy; when db is given, also the bias gradient db = Σ dy over N, H, W. */
  conv2dBackwardWeights(x: View, dy: View, dw: View, p: ConvParams, db?: View | null): void;
  /**
   * The backward pass of conv2d in one call: dx (backward-data), dw and db (backward-weights, the
   * bias gradient summed on the way), each skipped when null. `saved` is the handle conv2d
   * returned for x, or 0; it is released either way.
   */
  conv2dBackward(x: View, dy: View, w: View, dx: View | null, dw: View | null, db: View | null, p: ConvParams, saved: number): void;
  /** Releases a copy conv2d kept (a graph dropped before its backward pass). */
  releaseConvInput(saved: number): void;
  /**
   * The gradients of y = Σ conv2d(x_t, w_t, p_t) (+ biases) for dy, over convolutions one row high
   * (kH = 1, stride 1, no vertical padding) each giving dy's shape, reading dy once: per term
   * dx = addend + ∂/∂x (overwritten; the addend, when given, is the gradient x already has, so it
   * needs no separate add; it is either dx itself — the gradient grows in place — or memory
   * disjoint from dx) and dw, and db = Σ dy over N, H, W (the gradient of every bias); each
   * skipped when null.
   */
  rowConvSumBackward(terms: readonly RowConvGradTerm[], dy: View, db: View | null): void;
  /** out = x with axes permuted: out.shape[i] = x.shape[perm[i]]. */
  permute(x: View, out: View, perm: readonly number[]): void;
  /** Constant padding: out[before + i] = x[i], everything else = value. */
  pad(x: View, out: View, before: readonly number[], value: number): void;
  /** out[i] = x[begin + i]; out's shape is the slice size. */
  slice(x: View, out: View, begin: readonly number[]): void;
  /** Concatenation along `axis`. */
  concat(xs: readonly View[], out: View, axis: number): void;
  /** out[..., d] = table[idx[...], d]; table is [V, D] (D may be 1), idx int32 of any shape. */
  gatherRows(table: View, idx: View, out: View): void;
  /** out (zeroed by the kernel) [V, D]; out[idx[j], :] += g[j, :]. The backward of gatherRows. */
  scatterAddRows(g: View, idx: View, out: View): void;
  /** out[j] = x[j, idx[j]] with x viewed as [J, K] and idx as [J] (int32). */
  pickLast(x: View, idx: View, out: View): void;
  /** out (zeroed by the kernel) viewed as [J, K]; out[j, idx[j]] = g[j]. */
  pickLastBackward(g: View, idx: View, out: View): void;
  /** Softmax (or log-softmax) over the last axis, numerically stable (max subtracted). */
  softmaxLast(x: View, out: View, log: boolean): void;
  /** Element-by-element conversion; float → int32 truncates toward zero. */
  cast(x: View, out: View): void;
  /** out[..., k] = (idx[...] == k) for k < depth, in out's dtype; out is [...idx.shape, depth]. */
  oneHot(idx: View, out: View): void;

  // ---- fused kernels (each has a composed twin in src/ops that is its test oracle) ----

  /** Gated activation: x [..., 2C] = [a, b] → out [..., C] = tanh(a) ⊙ σ(b). */
  gate(x: View, out: View): void;
  /** dx [..., 2C] from x [..., 2C] and the output gradient g [..., C]. */
  gateBackward(x: View, g: View, dx: View): void;
  /**
   * Cross-entropy over the last axis: logits viewed as [J, K], int32 targets [J] → loss [J] =
   * −log softmax(logits)[target], and probs [J, K] = softmax(logits), kept for the backward.
   */
  softmaxCrossEntropy(logits: View, targets: View, loss: View, probs: View): void;
  /** dx [J, K] = g[j] · (probs[j] − onehot(targets[j])). */
  softmaxCrossEntropyBackward(probs: View, targets: View, g: View, dx: View): void;
  /**
   * One Adam step, in place on p, m and v (the one kernel that writes its inputs), in float64
   * arithmetic with float32 stores, element by element: w = p·decay; g' = g + l2·w;
   * m = β1·m + (1 − β1)·g'; v = β2·v + (1 − β2)·g'²; p = w − stepSize·m / (√v / bc2Sqrt + eps).
   */
  adamUpdate(p: View, g: View, m: View, v: View, h: AdamHyper): void;
  /** PixelCNN++'s gated residual: out [..., C] = x + a ⊙ σ(b) for h [..., 2C] = [a, b]. */
  gatedResidual(x: View, h: View, out: View): void;
  /** dh [..., 2C] = [g ⊙ σ(b), g ⊙ a ⊙ σ(b)(1 − σ(b))] (the gradient of x is g itself). */
  gatedResidualBackward(h: View, g: View, dh: View): void;
  /** PixelCNN++'s concat_elu: x [..., C] → out [..., 2C] = [elu(x), elu(−x)]. */
  concatElu(x: View, out: View): void;
  /** dx [..., C] = g[..., :C] · elu'(x) − g[..., C:] · elu'(−x), elu'(z) = z > 0 ? 1 : exp(z). */
  concatEluBackward(x: View, g: View, dx: View): void;
  /**
   * A whole LSTM recurrence in one call (PixelRNN's Row LSTM and Diagonal BiLSTM), time-major:
   * xg [T, B, L, 4H] holds the input-to-state pre-activations, w [k, H, 4H] the state-to-state
   * weights along the L positions. Step t: z = xg[t] + Σ_kk h_{t−1}[b, l − pad + kk] · w[kk]
   * (positions outside 0 … L−1 read zeros; h_{−1} = h0 at every position), gates [o, f, i, g] =
   * σ, σ, σ, tanh of z's four H-blocks, c_t = f·c_{t−1} + i·g (c_{−1} = c0), h_t = o·tanh(c_t).
   * Writes hs and cs [T, B, L, H] and the activated gates acts [T, B, L, 4H] (the backward's input).
   */
  lstmScan(xg: View, w: View, h0: View, c0: View, hs: View, cs: View, acts: View, pad: number): void;
  /**
   * Backward through time of lstmScan for the gradient dhs of hs: dxg [T, B, L, 4H] (= ∂z), dw
   * [k, H, 4H], dh0 and dc0 [H], all overwritten.
   */
  lstmScanBackward(w: View, h0: View, c0: View, hs: View, cs: View, acts: View, dhs: View, dxg: View, dw: View, dh0: View, dc0: View, pad: number): void;
  /**
   * Inverted dropout's mask: out[i] = u_i ≥ p ? 1 / (1 − p) : 0 (in out's dtype), where u_i is the i-th
   * uniform a Generator(seed, offset) would draw (tensor/random.ts): the same mask on every backend.
   */
  dropoutMask(out: View, seed: number, offset: number, p: number): void;

  // ---- the transformer core ----

  /**
   * Layer norm over the last axis of x viewed as [J, C]: out = (x − μ)·rstd ⊙ weight + bias
   * (weight / bias [C] or null), rstd = 1/√(var + eps) with the biased variance; writes mean [J]
   * and rstd [J] for the backward. With `rms` (RMS norm, no centring and no bias): μ is taken as 0,
   * rstd = 1/√(mean(x²) + eps) and mean is left untouched.
   */
  layerNorm(x: View, weight: View | null, bias: View | null, out: View, mean: View, rstd: View, eps: number, rms: boolean): void;
  /**
   * Gradients of layerNorm for the output gradient g: dx (overwritten), dweight and dbias
   * (overwritten, [C]; each skipped when null), from x and the saved mean and rstd.
   */
  layerNormBackward(x: View, weight: View | null, mean: View, rstd: View, g: View, dx: View, dweight: View | null, dbias: View | null, rms: boolean): void;
  /**
   * GELU: out = x·Φ(x) (exact, Φ the standard normal CDF), or with `tanh`
   * 0.5·x·(1 + tanh(√(2/π)·(x + 0.044715·x³))).
   */
  gelu(x: View, out: View, tanh: boolean): void;
  /** dx = g · gelu'(x). */
  geluBackward(x: View, g: View, dx: View, tanh: boolean): void;
  /**
   * Multi-head attention softmax(scale·Q Kᵀ + mask)·V under a pattern, packed and channels-last:
   * qkv [N, L, 3C] holds [q | k | v] along its last axis (each head-major, C = heads·d), out is
   * [N, L, C] (head-major), lse [N, heads, L] the log-sum-exp of each query's masked logits (the
   * backward recomputes the probabilities from it).
   */
  attention(qkv: View, out: View, lse: View, a: AttentionAttrs): void;
  /** dqkv [N, L, 3C] (overwritten) for the output gradient g [N, L, C], from qkv, out and lse. */
  attentionBackward(qkv: View, out: View, lse: View, g: View, dqkv: View, a: AttentionAttrs): void;
  /**
   * One query position against cached keys and values (sampling): q [N, C] is the query at
   * sequence position `position`; k and v [N, T, C] (T > position) hold the keys and values of
   * positions 0 … position (later rows are ignored); out [N, C] is row `position` of what attention
   * would give.
   */
  attentionStep(q: View, k: View, v: View, out: View, position: number, a: AttentionAttrs): void;

  // ---- cached sampling ----

  /**
   * One pixel (y, x) of a Row LSTM's cached sampler, all layers: the first convolution over
   * `image` at the plan's taps → rows[0] at x; for each layer l, z = gateBias + [rows[l] at the
   * input taps | prevH at x − ⌊k/2⌋ … x + ⌊k/2⌋ (zeros off the row)] · gates, the LSTM cell
   * (gates [o, f, i, g] as lstmScan, c_prev = prevC at x) → curH, curC at x, then
   * f_l = rows[l] at x + output(h) → rows[l + 1] at x (the last layer's f only to the skip); then logits = out(relu(outHidden(relu(
   * skip([f_0 | … | f_{L−1}]))))). A stateful kernel: it writes the plan's rows, current states
   * and logits in place, and reads nothing at or after (y, x) that it has not written.
   */
  rowLstmStep(plan: RowLSTMStepPlan, y: number, x: number): void;
}

export type KernelName = keyof Kernels;
export type Backend = { readonly name: string } & Partial<Kernels>;
