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
import type { ArgValueTypes, KernelDescriptor, SignatureOf } from './descriptor.js';
import { F32, I32, NUMERIC, attr, choice, kernel, kernelReturning, list, tensor } from './descriptor.js';

export type { AttentionAttrs, AttentionPattern } from './attention.js';
export type { KernelDescriptor, KernelDType } from './descriptor.js';

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

export const REDUCE_OPS = ['sum', 'max', 'min'] as const;
export type ReduceOp = (typeof REDUCE_OPS)[number];

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
  /** Mixed precision (see BF16_OPERANDS): the products' operands rounded to bfloat16, fp32 accumulation and results. */
  readonly bf16?: boolean;
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

// ---- the kernels ----
// Each entry is a kernel's signature: its arguments in order, by kind (src/kernels/descriptor.ts),
// with each tensor's dtypes and how its element count follows from the others'. The `Kernels`
// interface below is derived from it, and the native addon checks its C++ functions against it.

export const KERNELS = {
  /** out[i] = op(x[i]); same shape. elu uses alpha = 1. Comparisons are not unary. */
  unary: kernel(tensor('x', NUMERIC), tensor('out', 'like x', { size: 'x' }), choice('op', UNARY_OPS)),
  /**
   * dx = g · op'(x), given x, y = op(x) and g, all of one shape: exp g·y; tanh g·(1 − y²); sigmoid
   * g·y·(1 − y); relu g·[x > 0]; elu g·(x > 0 ? 1 : y + 1); softplus g·σ(x); logSigmoid g·σ(−x).
   */
  unaryBackward: kernel(tensor('x', F32), tensor('y', F32, { size: 'x' }), tensor('g', F32, { size: 'x' }), tensor('dx', F32, { size: 'x' }), choice('op', UNARY_GRAD_OPS)),
  /** out[i] = min(max(x[i], lo), hi). */
  clamp: kernel(tensor('x', NUMERIC), tensor('out', 'like x', { size: 'x' }), attr('number', 'lo'), attr('number', 'hi')),
  /**
   * out = op(a, b) with NumPy broadcasting: a and b are given at their own shapes, out at the
   * broadcast shape (same rank as out after left-padding a and b with 1s). Comparisons write 1 / 0
   * in out's dtype.
   */
  binary: kernel(tensor('a', NUMERIC, { broadcast: 'out' }), tensor('b', 'like a', { broadcast: 'out' }), tensor('out', NUMERIC), choice('op', BINARY_OPS)),
  /** out = cond != 0 ? a : b, broadcasting all three to out's shape like `binary`. */
  where: kernel(tensor('cond', NUMERIC, { broadcast: 'out' }), tensor('a', 'like out', { broadcast: 'out' }), tensor('b', 'like out', { broadcast: 'out' }), tensor('out', NUMERIC)),
  /**
   * Reduces x over `axes` (sorted, unique) into out, whose shape is x's with those axes set to 1
   * (keep-dims form; the op layer reshapes afterwards).
   */
  reduce: kernel(tensor('x', NUMERIC), tensor('out', 'like x'), attr('ints', 'axes'), choice('op', REDUCE_OPS)),
  /** Index of the maximum along the last axis; out is int32 with x's shape minus the last axis. */
  argmaxLast: kernel(tensor('x', NUMERIC), tensor('out', I32, { size: 'rows of x' })),
  /**
   * out = op(a) @ op(b) where op transposes the last two axes when the flag is set. a is [M,K] or
   * [B,M,K] (before transposition), b likewise; when both are batched B is equal, when one is 2-D
   * it is shared by every batch. out is [M,N] or [B,M,N].
   */
  matmul: kernel(tensor('a', F32), tensor('b', F32), tensor('out', F32), attr('bool', 'transA'), attr('bool', 'transB'), attr('bool', 'bf16', { optional: true })),
  /**
   * out[n,y,x,o] = bias[o] + Σ x[n, y·sh − pt + ky·dh, x·sw − pl + kx·dw, i] · w[ky,kx,i,o];
   * with `accumulate`, that is added to what out holds (a sum of convolutions in one buffer), and
   * with `residual` (out's shape, memory disjoint from out; not with accumulate) residual is added
   * as out is written (a residual connection without a separate add).
   * With `keepInput` a backend may keep a copy of x it made in its own layout for conv2dBackward,
   * and returns a handle to it; 0 means nothing was kept.
   * Weights travel with their storage identity and version: native keeps them reordered into
   * oneDNN's preferred layout until the version changes.
   */
  conv2d: kernelReturning('int',
    tensor('x', F32, { identity: true }), tensor('w', F32, { identity: true }), tensor('bias', F32, { nullable: true, size: 'last of w' }), tensor('out', F32), attr('convParams', 'p'),
    attr('bool', 'accumulate', { optional: true }), attr('bool', 'keepInput', { optional: true }), tensor('residual', F32, { nullable: true, optional: true })),
  /** dx = ∂(conv2d)/∂x applied to dy; dx is overwritten. */
  conv2dBackwardData: kernel(tensor('dy', F32), tensor('w', F32, { identity: true }), tensor('dx', F32), attr('convParams', 'p')),
  /** dw = ∂(conv2d)/∂w applied to dy; when db is given, also the bias gradient db = Σ dy over N, H, W. */
  conv2dBackwardWeights: kernel(tensor('x', F32), tensor('dy', F32), tensor('dw', F32), attr('convParams', 'p'), tensor('db', F32, { nullable: true, optional: true, size: 'last of dw' })),
  /**
   * The backward pass of conv2d in one call: dx (backward-data), dw and db (backward-weights, the
   * bias gradient summed on the way), each skipped when null. `saved` is the handle conv2d
   * returned for x, or 0; it is released either way.
   */
  conv2dBackward: kernel(
    tensor('x', F32, { identity: true }), tensor('dy', F32), tensor('w', F32, { identity: true }),
    tensor('dx', F32, { nullable: true, size: 'x' }), tensor('dw', F32, { nullable: true, size: 'w' }), tensor('db', F32, { nullable: true, size: 'last of w' }),
    attr('convParams', 'p'), attr('int', 'saved')),
  /** Releases a copy conv2d kept (a graph dropped before its backward pass). */
  releaseConvInput: kernel(attr('int', 'saved')),
  /**
   * The gradients of y = Σ conv2d(x_t, w_t, p_t) (+ biases) for dy, over convolutions one row high
   * (kH = 1, stride 1, no vertical padding) each giving dy's shape, reading dy once: per term
   * dx = addend + ∂/∂x (overwritten; the addend, when given, is the gradient x already has, so it
   * needs no separate add; it is either dx itself — the gradient grows in place — or memory
   * disjoint from dx) and dw, and db = Σ dy over N, H, W (the gradient of every bias); each
   * skipped when null.
   */
  rowConvSumBackward: kernel(list('convTerms', 'terms', F32), tensor('dy', F32), tensor('db', F32, { nullable: true, size: 'last of dy' })),
  /** out = x with axes permuted: out.shape[i] = x.shape[perm[i]]. */
  permute: kernel(tensor('x', NUMERIC), tensor('out', 'like x', { size: 'x' }), attr('ints', 'perm')),
  /** Constant padding: out[before + i] = x[i], everything else = value. */
  pad: kernel(tensor('x', NUMERIC), tensor('out', 'like x'), attr('ints', 'before'), attr('number', 'value')),
  /** out[i] = x[begin + i]; out's shape is the slice size. */
  slice: kernel(tensor('x', NUMERIC), tensor('out', 'like x'), attr('ints', 'begin')),
  /** Concatenation along `axis`. */
  concat: kernel(list('tensors', 'xs', 'like out'), tensor('out', NUMERIC), attr('int', 'axis')),
  /** out[..., d] = table[idx[...], d]; table is [V, D] (D may be 1), idx int32 of any shape. */
  gatherRows: kernel(tensor('table', NUMERIC), tensor('idx', I32), tensor('out', 'like table')),
  /** out (zeroed by the kernel) [V, D]; out[idx[j], :] += g[j, :]. The backward of gatherRows. */
  scatterAddRows: kernel(tensor('g', NUMERIC), tensor('idx', I32), tensor('out', 'like g')),
  /** out[j] = x[j, idx[j]] with x viewed as [J, K] and idx as [J] (int32). */
  pickLast: kernel(tensor('x', NUMERIC), tensor('idx', I32, { size: 'rows of x' }), tensor('out', 'like x', { size: 'rows of x' })),
  /** out (zeroed by the kernel) viewed as [J, K]; out[j, idx[j]] = g[j]. */
  pickLastBackward: kernel(tensor('g', NUMERIC, { size: 'rows of out' }), tensor('idx', I32, { size: 'rows of out' }), tensor('out', 'like g')),
  /** Softmax (or log-softmax) over the last axis, numerically stable (max subtracted). */
  softmaxLast: kernel(tensor('x', F32), tensor('out', F32, { size: 'x' }), attr('bool', 'log')),
  /** Element-by-element conversion; float → int32 truncates toward zero. */
  cast: kernel(tensor('x', NUMERIC), tensor('out', NUMERIC, { size: 'x' })),
  /** out[..., k] = (idx[...] == k) for k < depth, in out's dtype; out is [...idx.shape, depth]. */
  oneHot: kernel(tensor('idx', I32), tensor('out', NUMERIC)),

  // ---- fused kernels (each has a composed twin in src/ops that is its test oracle) ----

  /** Gated activation: x [..., 2C] = [a, b] → out [..., C] = tanh(a) ⊙ σ(b). */
  gate: kernel(tensor('x', F32, { size: 'twice out' }), tensor('out', F32)),
  /** dx [..., 2C] from x [..., 2C] and the output gradient g [..., C]. */
  gateBackward: kernel(tensor('x', F32, { size: 'twice g' }), tensor('g', F32), tensor('dx', F32, { size: 'x' })),
  /**
   * Cross-entropy over the last axis: logits viewed as [J, K], int32 targets [J] → loss [J] =
   * −log softmax(logits)[target], and probs [J, K] = softmax(logits), kept for the backward.
   */
  softmaxCrossEntropy: kernel(tensor('logits', F32), tensor('targets', I32, { size: 'rows of logits' }), tensor('loss', F32, { size: 'rows of logits' }), tensor('probs', F32, { size: 'logits' })),
  /** dx [J, K] = g[j] · (probs[j] − onehot(targets[j])). */
  softmaxCrossEntropyBackward: kernel(tensor('probs', F32), tensor('targets', I32, { size: 'rows of probs' }), tensor('g', F32, { size: 'rows of probs' }), tensor('dx', F32, { size: 'probs' })),
  /**
   * One Adam step, in place on p, m and v (it writes its inputs, as kvCacheWrite does), in float64
   * arithmetic with float32 stores, element by element: w = p·decay; g' = g + l2·w;
   * m = β1·m + (1 − β1)·g'; v = β2·v + (1 − β2)·g'²; p = w − stepSize·m / (√v / bc2Sqrt + eps).
   */
  adamUpdate: kernel(tensor('p', F32), tensor('g', F32, { size: 'p' }), tensor('m', F32, { size: 'p' }), tensor('v', F32, { size: 'p' }), attr('adamHyper', 'h')),
  /** PixelCNN++'s gated residual: out [..., C] = x + a ⊙ σ(b) for h [..., 2C] = [a, b]. */
  gatedResidual: kernel(tensor('x', F32), tensor('h', F32, { size: 'twice x' }), tensor('out', F32, { size: 'x' })),
  /** dh [..., 2C] = [g ⊙ σ(b), g ⊙ a ⊙ σ(b)(1 − σ(b))] (the gradient of x is g itself). */
  gatedResidualBackward: kernel(tensor('h', F32, { size: 'twice g' }), tensor('g', F32), tensor('dh', F32, { size: 'h' })),
  /** PixelCNN++'s concat_elu: x [..., C] → out [..., 2C] = [elu(x), elu(−x)]. */
  concatElu: kernel(tensor('x', F32), tensor('out', F32, { size: 'twice x' })),
  /** dx [..., C] = g[..., :C] · elu'(x) − g[..., C:] · elu'(−x), elu'(z) = z > 0 ? 1 : exp(z). */
  concatEluBackward: kernel(tensor('x', F32), tensor('g', F32, { size: 'twice x' }), tensor('dx', F32, { size: 'x' })),
  /**
   * A whole LSTM recurrence in one call (PixelRNN's Row LSTM and Diagonal BiLSTM), time-major:
   * xg [T, B, L, 4H] holds the input-to-state pre-activations, w [k, H, 4H] the state-to-state
   * weights along the L positions. Step t: z = xg[t] + Σ_kk h_{t−1}[b, l − pad + kk] · w[kk]
   * (positions outside 0 … L−1 read zeros; h_{−1} = h0 at every position), gates [o, f, i, g] =
   * σ, σ, σ, tanh of z's four H-blocks, c_t = f·c_{t−1} + i·g (c_{−1} = c0), h_t = o·tanh(c_t).
   * Writes hs and cs [T, B, L, H] and the activated gates acts [T, B, L, 4H] (the backward's input).
   */
  lstmScan: kernel(tensor('xg', F32), tensor('w', F32), tensor('h0', F32), tensor('c0', F32, { size: 'h0' }), tensor('hs', F32), tensor('cs', F32, { size: 'hs' }), tensor('acts', F32, { size: 'xg' }), attr('int', 'pad')),
  /**
   * Backward through time of lstmScan for the gradient dhs of hs: dxg [T, B, L, 4H] (= ∂z), dw
   * [k, H, 4H], dh0 and dc0 [H], all overwritten.
   */
  lstmScanBackward: kernel(
    tensor('w', F32), tensor('h0', F32), tensor('c0', F32, { size: 'h0' }), tensor('hs', F32), tensor('cs', F32, { size: 'hs' }), tensor('acts', F32), tensor('dhs', F32, { size: 'hs' }),
    tensor('dxg', F32, { size: 'acts' }), tensor('dw', F32, { size: 'w' }), tensor('dh0', F32, { size: 'h0' }), tensor('dc0', F32, { size: 'h0' }), attr('int', 'pad')),
  /**
   * Inverted dropout's mask: out[i] = u_i ≥ p ? 1 / (1 − p) : 0 (in out's dtype), where u_i is the i-th
   * uniform a Generator(seed, offset) would draw (tensor/random.ts): the same mask on every backend.
   */
  dropoutMask: kernel(tensor('out', F32), attr('uint', 'seed'), attr('uint', 'offset'), attr('number', 'p')),
  /**
   * A sampler's categorical draw, one per row of logits viewed as [J, P]: row j's distribution is
   * softmax(logits[j, at … at + levels) / temperature) (at temperature 1 nothing is divided), and
   * out[j] (int32 [J]) the index where its CDF passes the uniform u[j] (float32 [J] in [0, 1), exact
   * in float32). In double precision, in this order: m = the first largest of v_k = logit_k / T;
   * w_k = drawExp(v_k − m) (src/backends/ts/sampling.ts: its operations, not merely its values);
   * total = w_0 + w_1 + … left to right; pick = u·total; then k = 0 and, while k < levels − 1 and
   * pick ≥ w_k, pick −= w_k and k += 1. Every backend returns the reference's index, so a seed gives
   * the same images on all of them.
   */
  categoricalDraw: kernel(
    tensor('logits', F32), tensor('u', F32, { size: 'rows of logits' }), tensor('out', I32, { size: 'rows of logits' }),
    attr('uint', 'at'), attr('uint', 'levels'), attr('number', 'temperature')),

  // ---- the transformer core ----

  /**
   * Layer norm over the last axis of x viewed as [J, C]: out = (x − μ)·rstd ⊙ weight + bias
   * (weight / bias [C] or null), rstd = 1/√(var + eps) with the biased variance; writes mean [J]
   * and rstd [J] for the backward. With `rms` (RMS norm, no centring and no bias): μ is taken as 0,
   * rstd = 1/√(mean(x²) + eps) and mean is left untouched.
   */
  layerNorm: kernel(
    tensor('x', F32), tensor('weight', F32, { nullable: true, size: 'last of x' }), tensor('bias', F32, { nullable: true, size: 'last of x' }),
    tensor('out', F32, { size: 'x' }), tensor('mean', F32, { size: 'rows of x' }), tensor('rstd', F32, { size: 'rows of x' }), attr('number', 'eps'), attr('bool', 'rms')),
  /**
   * Gradients of layerNorm for the output gradient g: dx (overwritten), dweight and dbias
   * (overwritten, [C]; each skipped when null), from x and the saved mean and rstd.
   */
  layerNormBackward: kernel(
    tensor('x', F32), tensor('weight', F32, { nullable: true, size: 'last of x' }), tensor('mean', F32, { size: 'rows of x' }), tensor('rstd', F32, { size: 'rows of x' }),
    tensor('g', F32, { size: 'x' }), tensor('dx', F32, { size: 'x' }), tensor('dweight', F32, { nullable: true, size: 'last of x' }), tensor('dbias', F32, { nullable: true, size: 'last of x' }), attr('bool', 'rms')),
  /**
   * GELU: out = x·Φ(x) (exact, Φ the standard normal CDF), or with `tanh`
   * 0.5·x·(1 + tanh(√(2/π)·(x + 0.044715·x³))).
   */
  gelu: kernel(tensor('x', F32), tensor('out', F32, { size: 'x' }), attr('bool', 'tanh')),
  /** dx = g · gelu'(x). */
  geluBackward: kernel(tensor('x', F32), tensor('g', F32, { size: 'x' }), tensor('dx', F32, { size: 'x' }), attr('bool', 'tanh')),
  /**
   * Multi-head attention softmax(scale·Q Kᵀ + mask)·V under a pattern, packed and channels-last:
   * qkv [N, L, 3C] holds [q | k | v] along its last axis (each head-major, C = heads·d), out is
   * [N, L, C] (head-major), lse [N, heads, L] the log-sum-exp of each query's masked logits (the
   * backward recomputes the probabilities from it).
   */
  attention: kernel(tensor('qkv', F32), tensor('out', F32), tensor('lse', F32), attr('attentionAttrs', 'a')),
  /** dqkv [N, L, 3C] (overwritten) for the output gradient g [N, L, C], from qkv, out and lse. */
  attentionBackward: kernel(tensor('qkv', F32), tensor('out', F32), tensor('lse', F32), tensor('g', F32, { size: 'out' }), tensor('dqkv', F32, { size: 'qkv' }), attr('attentionAttrs', 'a')),
  /**
   * One query position against cached keys and values (sampling): q [N, C] is the query at
   * sequence position `position`; k and v [N, T, C] (T > position) hold the keys and values of
   * positions 0 … position (later rows are ignored); out [N, C] is row `position` of what attention
   * would give.
   */
  attentionStep: kernel(tensor('q', F32), tensor('k', F32), tensor('v', F32, { size: 'k' }), tensor('out', F32, { size: 'q' }), attr('int', 'position'), attr('attentionAttrs', 'a')),
  /**
   * A KV cache's write (cached sampling): the keys and values of qkv [N, 3C] ([q | k | v]) into
   * row `position` of k and v [N, T, C] (distinct storages); their other rows stay as they are.
   * It writes its operands k and v in place, and the op then bumps each one's version exactly once:
   * a backend that keeps a copy of a cache for attentionStep (wasm) may write the same row into
   * its copy and hold it as current at the next version, instead of copying the cache per step.
   */
  kvCacheWrite: kernel(tensor('qkv', F32), tensor('k', F32, { identity: true }), tensor('v', F32, { size: 'k', identity: true }), attr('int', 'position')),

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
  rowLstmStep: kernel(attr('rowLstmPlan', 'plan'), attr('int', 'y'), attr('int', 'x')),
} satisfies Record<string, KernelDescriptor>;

/**
 * Mixed precision, declared once: the kernels that compute in bf16 when asked (ConvParams.bf16,
 * matmul's bf16, AttentionAttrs.bf16), and the operands they round to bfloat16 — nearest, ties to
 * even (kernels/bf16.ts) — before the products, which accumulate in fp32. Every output stays fp32,
 * and so does what is not a product's operand: bias, residual, what accumulate adds to, and the
 * bias gradient (a sum of dy as it is). The ts backend implements exactly this and is every native
 * bf16 kernel's oracle. (conv2dBackward rounds dy and w for dx, x and dy for dw.)
 * rowConvSumBackward computes in fp32 only and refuses bf16 terms; attentionStep (cached sampling)
 * and the recurrent scans are fp32.
 *
 * Attention rounds q, k, v and g, and also the two operands it computes, as a chain of autocast
 * products would. Forward: S = scale·(Q·Kᵀ), the scale applied to the fp32 product (so it need
 * not be a power of two); the softmax statistics — row maximum m, sum, log-sum-exp — are fp32 of
 * S. P·V takes the probabilities unnormalised, P̃ = exp(S − m̂) rounded to bf16, m̂ being m
 * rounded up to a multiple of ln 2, and the fp32 product is divided by the fp32 row sum
 * Σ exp(S − m̂) of the unrounded P̃. (Shifting by another multiple of ln 2 scales P̃ by a power of
 * two, which rounding commutes with: a flash-attention kernel shifts by a running maximum of that
 * form tile by tile and rounds the same values.) Backward: P = exp(S − lse) in fp32; dV = Pᵀ·dO
 * and dP = dO·Vᵀ from bf16 P, dO and V; dS = scale·P ⊙ (dP − D) in fp32, with the row dots
 * D = rowsum(dO ⊙ O) of g and out as they are (fp32, no product's operand); dQ = dS·K and
 * dK = dSᵀ·Q from bf16 dS, K and Q.
 */
export const BF16_OPERANDS = {
  matmul: ['a', 'b'],
  conv2d: ['x', 'w'],
  conv2dBackwardData: ['dy', 'w'],
  conv2dBackwardWeights: ['x', 'dy'],
  conv2dBackward: ['x', 'dy', 'w'],
  attention: ['qkv'],
  attentionBackward: ['qkv', 'g'],
} as const satisfies { readonly [K in keyof typeof KERNELS]?: readonly string[] };

/** The TypeScript value of each kind of kernel argument. */
interface ContractValues extends ArgValueTypes {
  tensor: View;
  tensors: readonly View[];
  convTerms: readonly RowConvGradTerm[];
  convParams: ConvParams;
  attentionAttrs: AttentionAttrs;
  adamHyper: AdamHyper;
  rowLstmPlan: RowLSTMStepPlan;
}

/** Every kernel as a function, its parameters derived from its entry in KERNELS (which documents it). */
export type Kernels = { [K in keyof typeof KERNELS]: SignatureOf<(typeof KERNELS)[K], ContractValues> };

export type KernelName = keyof Kernels;
export type Backend = { readonly name: string } & Partial<Kernels>;
