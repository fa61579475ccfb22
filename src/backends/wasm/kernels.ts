// The Kernels contract on top of the module's exports: each adapter copies its inputs into the
// module's memory (weights through the resident cache), calls the C kernel and copies the outputs
// back. Argument checks live in the op layer, as for native; what the module does not cover —
// other dtypes (int32 arithmetic, float64 everywhere), bf16 products, pow — runs on the ts
// reference in the same call. Cached sampling calls these tens of thousands of times on [4, 64]
// tensors, so an adapter allocates next to nothing (an output's subarray view): shapes go through
// a reused Int32Array, attributes as plain numbers; a call costs about 0.2 µs beyond its work.

import type { AttentionAttrs, BinaryOp, ConvParams, Kernels, ReduceOp, UnaryGradOp, UnaryOp, View } from '../../kernels/contracts.js';
import { BINARY_OPS, REDUCE_OPS, UNARY_GRAD_OPS, UNARY_OPS } from '../../kernels/contracts.js';
import { patternCode } from '../../kernels/attention.js';
import { tsKernels } from '../ts/index.js';
import { KV_TAG, RESIDENT_BUDGET, type WasmHeap } from './heap.js';
import { NR, type WasmExports } from './exports.js';
import { rowLstmStepKernel } from './row-lstm.js';

const UNARY_CODE = new Map<UnaryOp, number>(UNARY_OPS.map((op, i) => [op, i]));
const BINARY_CODE = new Map<BinaryOp, number>(BINARY_OPS.map((op, i) => [op, i]));
const REDUCE_CODE = new Map<ReduceOp, number>(REDUCE_OPS.map((op, i) => [op, i]));
const UNARY_GRAD_CODE = new Map<UnaryGradOp, number>(UNARY_GRAD_OPS.map((op, i) => [op, i]));

// Output pixels per chunk of a filter gradient (wasm/gemm.c: conv2d_backward_weights_f32). The
// values do not depend on it; it bounds the scratch (taps·Cin + Cout floats per pixel of a chunk):
// as many pixels as ~1 MiB of gathered inputs holds, from 256 to 4096 (fewer, larger chunks are
// fewer loops for threads to meet at).
const weightsChunk = (m: number): number => Math.max(256, Math.min(4096, Math.floor(2 ** 18 / Math.max(m, 1))));

// How a product's right operand is packed (wasm/gemm.c).
const PACK_PLAIN = 0, PACK_TRANSPOSED = 1, PACK_CONV_DATA = 2;

// Resident KV caches (see kvCacheWrite; their blocks' tag is KV_TAG): the bytes they may hold
// together (larger caches are copied per step, as they were), and the calls after which an unused
// one belongs to a sampler that finished.
const KV_BUDGET = RESIDENT_BUDGET / 2;
const KV_IDLE_CALLS = 8192;

const isF32 = (v: View): boolean => v.data instanceof Float32Array;
const last = (v: View): number => (v.shape.length === 0 ? 1 : v.shape[v.shape.length - 1]!);
const rowsOf = (v: View): number => {
  const c = last(v);
  return c === 0 ? 0 : v.data.length / c;
};

/** The kernels the module implements, as a partial Backend's kernel set. */
export function wasmKernels(w: WasmExports, heap: WasmHeap): Partial<Kernels> {
  // A small int32 buffer for shapes and strides, copied into scratch per call.
  const ints = new Int32Array(64);
  const intsInput = (count: number, from = 0): number => heap.ints(ints, from, count);
  const sa = ints.subarray(16, 24), sb = ints.subarray(24, 32);

  /** B of a product, [K, N] or [N, K] when transB, packed (see packed). */
  const packedB = (b: View, k: number, n: number, transB: boolean): number => packed(b, k, n, transB ? PACK_TRANSPOSED : PACK_PLAIN);

  /**
   * A product's right operand [K, N] packed into panels (`how`: as it is, transposed, or a
   * convolution's taps transposed for conv2dBackwardData): resident when the same tensor (storage
   * and version) comes again — a layer's weights —, else packed into scratch. Comes before the
   * call's other scratch. taps: for PACK_CONV_DATA, the kernel's taps (K = taps·cout, N = cin).
   */
  const packed = (v: View, k: number, n: number, how: number, taps = 1): number => {
    const bytes = 4 * Math.ceil(n / NR) * NR * k;
    // What the block holds, as one number (the same storage may be packed two ways).
    const tag = k < 2 ** 21 && n < 2 ** 21 ? (how * 2 ** 21 + k) * 2 ** 21 + n : -1;
    if (tag >= 0 && v.storageId > 0) {
      const hit = heap.lookup(v.storageId, v.version, tag);
      if (hit !== null) return hit;
      if (heap.secondSight(v.storageId, v.version)) {
        const at = heap.resident(v.storageId, v.version, tag, bytes);
        pack(heap.input(v.data as Float32Array), at, k, n, how, taps);
        heap.dropScratch(); // the raw copy is not needed any more
        return at;
      }
    }
    const at = heap.scratch(bytes);
    pack(heap.input(v.data as Float32Array), at, k, n, how, taps);
    return at;
  };

  const pack = (raw: number, at: number, k: number, n: number, how: number, taps: number): void => {
    if (how === PACK_CONV_DATA) w.pack_conv_transposed(raw, taps, n, k / taps, at);
    else w.pack_b(raw, k, n, how === PACK_TRANSPOSED ? 1 : 0, at);
  };

  const unary: Kernels['unary'] = (x, out, op) => {
    if (!isF32(x) || !isF32(out)) return tsKernels.unary(x, out, op);
    heap.begin();
    const xi = heap.input(x.data as Float32Array);
    const oi = heap.outputSpace(out.data.length);
    w.unary_f32(xi, oi, out.data.length, UNARY_CODE.get(op)!);
    heap.output(oi, out.data as Float32Array);
  };

  const clamp: Kernels['clamp'] = (x, out, lo, hi) => {
    if (!isF32(x) || !isF32(out)) return tsKernels.clamp(x, out, lo, hi);
    heap.begin();
    const xi = heap.input(x.data as Float32Array);
    const oi = heap.outputSpace(out.data.length);
    w.clamp_f32(xi, oi, out.data.length, lo, hi);
    heap.output(oi, out.data as Float32Array);
  };

  const binary: Kernels['binary'] = (a, b, out, op) => {
    const rank = out.shape.length;
    if (!isF32(a) || !isF32(b) || !isF32(out) || op === 'pow' || rank > 8) return tsKernels.binary(a, b, out, op);
    // Broadcast strides of a and b at out's rank, then adjacent axes merged where both allow.
    const dims = ints;
    let ra = 1, rb = 1;
    for (let i = rank - 1; i >= 0; i--) {
      const ia = i - (rank - a.shape.length), ib = i - (rank - b.shape.length);
      const da = ia >= 0 ? a.shape[ia]! : 1, db = ib >= 0 ? b.shape[ib]! : 1;
      dims[i] = out.shape[i]!;
      sa[i] = da === 1 ? 0 : ra;
      sb[i] = db === 1 ? 0 : rb;
      ra *= da;
      rb *= db;
    }
    let r = 0;
    for (let i = 0; i < rank; i++) {
      if (dims[i] === 1) continue; // a unit axis moves nothing
      if (r > 0 && sa[r - 1] === sa[i]! * dims[i]! && sb[r - 1] === sb[i]! * dims[i]!) {
        dims[r - 1] = dims[r - 1]! * dims[i]!;
        sa[r - 1] = sa[i]!;
        sb[r - 1] = sb[i]!;
      } else {
        dims[r] = dims[i]!;
        sa[r] = sa[i]!;
        sb[r] = sb[i]!;
        r++;
      }
    }
    for (let i = 0; i < r; i++) ints[32 + i] = sa[i]!;
    for (let i = 0; i < r; i++) ints[32 + r + i] = sb[i]!;
    heap.begin();
    const ai = heap.input(a.data as Float32Array);
    const bi = heap.input(b.data as Float32Array);
    const oi = heap.outputSpace(out.data.length);
    const di = intsInput(r);
    const si = intsInput(2 * r, 32);
    w.binary_f32(ai, bi, oi, BINARY_CODE.get(op)!, r, di, si);
    heap.output(oi, out.data as Float32Array);
  };

  const reduce: Kernels['reduce'] = (x, out, axes, op) => {
    const rank = x.shape.length;
    if (!isF32(x) || !isF32(out) || rank > 8) return tsKernels.reduce(x, out, axes, op);
    // out's strides on x's axes (out has x's shape with the reduced axes set to 1): 0 where reduced.
    let stride = 1;
    for (let i = rank - 1; i >= 0; i--) {
      ints[i] = x.shape[i]!;
      ints[16 + i] = out.shape[i] === 1 ? 0 : stride;
      stride *= out.shape[i]!;
    }
    heap.begin();
    const xi = heap.input(x.data as Float32Array);
    const oi = heap.outputSpace(out.data.length);
    const di = intsInput(rank);
    const si = intsInput(rank, 16);
    w.reduce_f32(xi, oi, out.data.length, REDUCE_CODE.get(op)!, rank, di, si);
    heap.output(oi, out.data as Float32Array);
  };

  const matmul: Kernels['matmul'] = (a, b, out, transA, transB, bf16 = false) => {
    if (bf16 || !isF32(a) || !isF32(b) || !isF32(out)) return tsKernels.matmul(a, b, out, transA, transB, bf16);
    const ar = a.shape.length, br = b.shape.length;
    const ra = a.shape[ar - 2]!, ca = a.shape[ar - 1]!;
    const rb = b.shape[br - 2]!, cb = b.shape[br - 1]!;
    const m = transA ? ca : ra, k = transA ? ra : ca, n = transB ? rb : cb;
    const batch = out.shape.length === 3 ? out.shape[0]! : 1;
    const bBatched = br === 3;
    heap.begin();
    // The shared (2-D) right operand first: it may be resident.
    let bp: number;
    const bpStep = Math.ceil(n / NR) * NR * k;
    if (!bBatched) bp = packedB(b, k, n, transB);
    else {
      bp = heap.scratch(4 * bpStep * batch);
      for (let p = 0; p < batch; p++) {
        const raw = heap.scratch(4 * k * n);
        heap.f32.set(b.data.subarray(p * k * n, (p + 1) * k * n) as Float32Array, raw >> 2);
        w.pack_b(raw, k, n, transB ? 1 : 0, bp + 4 * p * bpStep);
      }
    }
    let ai = heap.input(a.data as Float32Array);
    const aBatched = ar === 3;
    if (transA) {
      const at = heap.scratch(4 * a.data.length);
      for (let p = 0; p < (aBatched ? batch : 1); p++) w.transpose_f32(ai + 4 * p * m * k, k, m, at + 4 * p * m * k);
      ai = at;
    }
    const oi = heap.outputSpace(out.data.length);
    w.matmul_f32(ai, aBatched ? m * k : 0, bp, bBatched ? bpStep : 0, oi, batch, m, k, n);
    heap.output(oi, out.data as Float32Array);
  };

  const conv2d: Kernels['conv2d'] = (x, wt, bias, out, p, accumulate = false, keepInput = false, residual = null) => {
    if (p.bf16 || !isF32(x) || !isF32(wt) || !isF32(out)) return tsKernels.conv2d(x, wt, bias, out, p, accumulate, keepInput, residual);
    const [n, h, wd, cin] = x.shape as [number, number, number, number];
    const [kh, kw] = wt.shape as [number, number, number, number];
    const [, oh, ow, cout] = out.shape as [number, number, number, number];
    const taps = kh * kw;
    heap.begin();
    const wp = packedB(wt, taps * cin, cout, false);
    const gi = intsInput(convGeom(ints, n, h, wd, cin, oh, ow, cout, kh, kw, p));
    const xi = heap.input(x.data as Float32Array);
    const bi = bias ? heap.input(bias.data as Float32Array) : 0;
    const oi = accumulate ? heap.input(out.data as Float32Array) : heap.outputSpace(out.data.length);
    const ri = residual ? heap.input(residual.data as Float32Array) : 0;
    const rows = heap.scratch(16 * taps);
    const zero = heap.scratch(4 * Math.max(cin, 1));
    w.conv2d_f32(xi, wp, bi, oi, ri, accumulate ? 1 : 0, gi, rows, zero);
    heap.output(oi, out.data as Float32Array);
    return 0; // nothing is kept: conv2dBackward copies x in as it is
  };

  /** A convolution's weights packed for its data gradient: first in a call's scratch, as they may become resident. */
  const dataWeights = (wt: View, cin: number): number => {
    const [kh, kw, , cout] = wt.shape as [number, number, number, number];
    return packed(wt, kh * kw * cout, cin, PACK_CONV_DATA, kh * kw);
  };

  /** dx from dy (already in the module at yi) and the weights packed at wp. */
  const backwardData = (yi: number, dy: View, wp: number, wt: View, dx: View, p: ConvParams): void => {
    const [n, h, wd, cin] = dx.shape as [number, number, number, number];
    const [kh, kw, , cout] = wt.shape as [number, number, number, number];
    const [, oh, ow] = dy.shape as [number, number, number, number];
    const gi = intsInput(convGeom(ints, n, h, wd, cin, oh, ow, cout, kh, kw, p));
    const oi = heap.outputSpace(dx.data.length);
    const rows = heap.scratch(16 * kh * kw);
    const zero = heap.scratch(4 * Math.max(cout, 1));
    w.conv2d_backward_data_f32(yi, wp, oi, gi, rows, zero);
    heap.output(oi, dx.data as Float32Array);
  };

  /** dw (when given) and db (when given) from x and dy (already in the module at yi). */
  const backwardWeights = (x: View, yi: number, dy: View, dw: View | null, db: View | null, p: ConvParams): void => {
    const [n, h, wd, cin] = x.shape as [number, number, number, number];
    const [, oh, ow, cout] = dy.shape as [number, number, number, number];
    const [kh, kw] = dw ? dw.shape as [number, number] : [1, 1];
    const gi = intsInput(convGeom(ints, n, h, wd, cin, oh, ow, cout, kh, kw, p));
    const xi = dw ? heap.input(x.data as Float32Array) : 0;
    const wi = dw ? heap.outputSpace(dw.data.length) : 0;
    const bi = db ? heap.outputSpace(db.data.length) : 0;
    const chunk = weightsChunk(kh * kw * cin);
    const at = dw ? heap.scratch(4 * kh * kw * cin * chunk) : 0;
    const dyp = dw ? heap.scratch(4 * Math.ceil(cout / NR) * NR * chunk) : 0;
    const pix = heap.scratch(12 * chunk);
    w.conv2d_backward_weights_f32(xi, yi, wi, bi, gi, at, dyp, pix, chunk);
    if (dw) heap.output(wi, dw.data as Float32Array);
    if (db) heap.output(bi, db.data as Float32Array);
  };

  const conv2dBackwardData: Kernels['conv2dBackwardData'] = (dy, wt, dx, p) => {
    if (p.bf16 || !isF32(dy) || !isF32(wt) || !isF32(dx)) return tsKernels.conv2dBackwardData(dy, wt, dx, p);
    heap.begin();
    const wp = dataWeights(wt, last(dx));
    backwardData(heap.input(dy.data as Float32Array), dy, wp, wt, dx, p);
  };

  const conv2dBackwardWeights: Kernels['conv2dBackwardWeights'] = (x, dy, dw, p, db = null) => {
    if (p.bf16 || !isF32(x) || !isF32(dy) || !isF32(dw) || (db && !isF32(db))) return tsKernels.conv2dBackwardWeights(x, dy, dw, p, db);
    heap.begin();
    backwardWeights(x, heap.input(dy.data as Float32Array), dy, dw, db, p);
  };

  // conv2d keeps nothing (it returns 0), so there is no saved copy to release.
  const conv2dBackward: Kernels['conv2dBackward'] = (x, dy, wt, dx, dw, db, p, saved) => {
    if (p.bf16 || ![x, dy, wt].every(isF32) || [dx, dw, db].some((v) => v !== null && !isF32(v))) return tsKernels.conv2dBackward(x, dy, wt, dx, dw, db, p, saved);
    if (!dx && !dw && !db) return;
    heap.begin();
    const wp = dx ? dataWeights(wt, last(x)) : 0;
    const yi = heap.input(dy.data as Float32Array);
    if (dx) backwardData(yi, dy, wp, wt, dx, p);
    if (dw || db) backwardWeights(x, yi, dy, dw, db, p);
  };

  const unaryBackward: Kernels['unaryBackward'] = (x, y, g, dx, op) => {
    if (![x, y, g, dx].every(isF32)) return tsKernels.unaryBackward(x, y, g, dx, op);
    heap.begin();
    const xi = heap.input(x.data as Float32Array);
    const yi = heap.input(y.data as Float32Array);
    const gi = heap.input(g.data as Float32Array);
    const oi = heap.outputSpace(dx.data.length);
    w.unary_backward_f32(xi, yi, gi, oi, dx.data.length, UNARY_GRAD_CODE.get(op)!);
    heap.output(oi, dx.data as Float32Array);
  };

  const lstmScan: Kernels['lstmScan'] = (xg, wt, h0, c0, hs, cs, acts, pad) => {
    if (![xg, wt, h0, c0, hs, cs, acts].every(isF32)) return tsKernels.lstmScan(xg, wt, h0, c0, hs, cs, acts, pad);
    const [T, B, L, G] = xg.shape as [number, number, number, number];
    const H = G / 4, k = wt.shape[0]!;
    heap.begin();
    const wp = packedB(wt, k * H, G, false);
    const xi = heap.input(xg.data as Float32Array);
    const h0i = heap.input(h0.data as Float32Array);
    const c0i = heap.input(c0.data as Float32Array);
    const hi = heap.outputSpace(hs.data.length);
    const ci = heap.outputSpace(cs.data.length);
    const ai = heap.outputSpace(acts.data.length);
    const rows = heap.scratch(16 * k);
    const zero = heap.scratch(4 * Math.max(H, 1));
    w.lstm_scan_f32(xi, wp, h0i, c0i, hi, ci, ai, T, B, L, H, k, pad, rows, zero);
    heap.output(hi, hs.data as Float32Array);
    heap.output(ci, cs.data as Float32Array);
    heap.output(ai, acts.data as Float32Array);
  };

  const gate: Kernels['gate'] = (x, out) => {
    if (!isF32(x) || !isF32(out)) return tsKernels.gate(x, out);
    heap.begin();
    const xi = heap.input(x.data as Float32Array);
    const oi = heap.outputSpace(out.data.length);
    w.gate_f32(xi, oi, rowsOf(out), last(out));
    heap.output(oi, out.data as Float32Array);
  };

  const gatedResidual: Kernels['gatedResidual'] = (x, h, out) => {
    if (!isF32(x) || !isF32(h) || !isF32(out)) return tsKernels.gatedResidual(x, h, out);
    heap.begin();
    const xi = heap.input(x.data as Float32Array);
    const hi = heap.input(h.data as Float32Array);
    const oi = heap.outputSpace(out.data.length);
    w.gated_residual_f32(xi, hi, oi, rowsOf(x), last(x));
    heap.output(oi, out.data as Float32Array);
  };

  const concatElu: Kernels['concatElu'] = (x, out) => {
    if (!isF32(x) || !isF32(out)) return tsKernels.concatElu(x, out);
    heap.begin();
    const xi = heap.input(x.data as Float32Array);
    const oi = heap.outputSpace(out.data.length);
    w.concat_elu_f32(xi, oi, rowsOf(x), last(x));
    heap.output(oi, out.data as Float32Array);
  };

  const softmaxLast: Kernels['softmaxLast'] = (x, out, log) => {
    if (!isF32(x) || !isF32(out)) return tsKernels.softmaxLast(x, out, log);
    heap.begin();
    const xi = heap.input(x.data as Float32Array);
    const oi = heap.outputSpace(out.data.length);
    w.softmax_last_f32(xi, oi, rowsOf(x), last(x), log ? 1 : 0);
    heap.output(oi, out.data as Float32Array);
  };

  const softmaxCrossEntropy: Kernels['softmaxCrossEntropy'] = (logits, targets, loss, probs) => {
    if (!isF32(logits) || !isF32(loss) || !isF32(probs)) return tsKernels.softmaxCrossEntropy(logits, targets, loss, probs);
    heap.begin();
    const xi = heap.input(logits.data as Float32Array);
    const ti = heap.input(targets.data as Int32Array);
    const li = heap.outputSpace(loss.data.length);
    const pi = heap.outputSpace(probs.data.length);
    w.softmax_cross_entropy_f32(xi, ti, li, pi, targets.data.length, last(logits));
    heap.output(li, loss.data as Float32Array);
    heap.output(pi, probs.data as Float32Array);
  };

  const layerNorm: Kernels['layerNorm'] = (x, weight, bias, out, mean, rstd, eps, rms) => {
    if (!isF32(x) || !isF32(out) || !isF32(mean) || !isF32(rstd) || (weight && !isF32(weight)) || (bias && !isF32(bias))) {
      return tsKernels.layerNorm(x, weight, bias, out, mean, rstd, eps, rms);
    }
    heap.begin();
    const xi = heap.input(x.data as Float32Array);
    const wi = weight ? heap.input(weight.data as Float32Array) : 0;
    const bi = bias ? heap.input(bias.data as Float32Array) : 0;
    const oi = heap.outputSpace(out.data.length);
    // RMS norm leaves mean untouched: it goes in as it is and comes back unchanged.
    const mi = heap.input(mean.data as Float32Array);
    const si = heap.outputSpace(rstd.data.length);
    w.layer_norm_f32(xi, wi, bi, oi, mi, si, rowsOf(x), last(x), eps, rms ? 1 : 0);
    heap.output(oi, out.data as Float32Array);
    if (!rms) heap.output(mi, mean.data as Float32Array);
    heap.output(si, rstd.data as Float32Array);
  };

  const gelu: Kernels['gelu'] = (x, out, tanh) => {
    if (!isF32(x) || !isF32(out)) return tsKernels.gelu(x, out, tanh);
    heap.begin();
    const xi = heap.input(x.data as Float32Array);
    const oi = heap.outputSpace(out.data.length);
    w.gelu_f32(xi, oi, out.data.length, tanh ? 1 : 0);
    heap.output(oi, out.data as Float32Array);
  };

  // KV caches stay resident across a sampler's steps: a cache is copied in whole at its first
  // kvCacheWrite (when it fits KV_BUDGET), then only the row each write changes. A copy is current
  // exactly when its stamp is the storage's version: kvCacheWrite restamps it to the version its op
  // bumps to; any other write to the cache bumps the version alone (an Image Transformer's window
  // sliding), so attentionStep then copies the rows it reads, as without a resident copy, and the
  // next kvCacheWrite copies the cache in whole again.
  const kvKeep = (cache: View, position: number): void => {
    if (cache.storageId <= 0) return;
    const [n, t, c] = cache.shape as [number, number, number];
    const data = cache.data as Float32Array;
    const at = heap.lookup(cache.storageId, cache.version, KV_TAG);
    if (at !== null) {
      const f32 = heap.f32;
      for (let b = 0; b < n; b++) {
        const from = (b * t + position) * c;
        f32.set(data.subarray(from, from + c), (at >> 2) + from);
      }
      heap.restamp(cache.storageId, cache.version, KV_TAG, cache.version + 1);
      return;
    }
    heap.releaseIdle(KV_TAG, KV_IDLE_CALLS); // caches of samplers that finished
    if (heap.bytesOf(KV_TAG) + 4 * data.length > KV_BUDGET) return;
    const block = heap.resident(cache.storageId, cache.version + 1, KV_TAG, 4 * data.length);
    heap.f32.set(data, block >> 2);
  };

  const kvCacheWrite: Kernels['kvCacheWrite'] = (qkv, k, v, position) => {
    tsKernels.kvCacheWrite(qkv, k, v, position);
    if (!isF32(k) || !isF32(v)) return;
    heap.begin();
    kvKeep(k, position);
    kvKeep(v, position);
  };

  const attentionStep: Kernels['attentionStep'] = (q, k, v, out, position, a) => {
    if (!isF32(q) || !isF32(k) || !isF32(v) || !isF32(out)) return tsKernels.attentionStep(q, k, v, out, position, a);
    const [n, c] = q.shape as [number, number];
    const t = k.shape[1]!;
    const lo = firstKey(a, position);
    const count = position - lo + 1;
    heap.begin();
    // Resident caches (kvCacheWrite keeps them current): their rows lo … position in place, T rows per image.
    const kr = heap.lookup(k.storageId, k.version, KV_TAG);
    const vr = kr === null ? null : heap.lookup(v.storageId, v.version, KV_TAG);
    const qi = heap.input(q.data as Float32Array);
    let ki: number, vi: number, rows: number;
    if (kr !== null && vr !== null) {
      ki = kr + 4 * lo * c;
      vi = vr + 4 * lo * c;
      rows = t;
    } else {
      // Only the rows this query can read: lo … position of every image.
      ki = heap.scratch(4 * n * count * c);
      vi = heap.scratch(4 * n * count * c);
      rows = count;
      const f32 = heap.f32;
      for (let b = 0; b < n; b++) {
        const from = (b * t + lo) * c, to = (b * t + position + 1) * c;
        f32.set((k.data as Float32Array).subarray(from, to), (ki >> 2) + b * count * c);
        f32.set((v.data as Float32Array).subarray(from, to), (vi >> 2) + b * count * c);
      }
    }
    const pi = patternInput(a);
    const oi = heap.outputSpace(out.data.length);
    // Scratch per worker (wasm/attention.c: step_scratch), each worker's image by image.
    const workers = w.arpix_workers();
    const si = heap.scratch(16 * workers * Math.ceil((a.heads * (count + 4) + a.heads + 4) / 4));
    const stage = rows === count ? 0 : heap.scratch(8 * workers * count * c); // a resident cache's rows, staged image by image
    w.attention_step_f32(qi, ki, vi, oi, n, rows, c, a.heads, a.scale, position, lo, pi, si, stage);
    heap.output(oi, out.data as Float32Array);
  };

  const attention: Kernels['attention'] = (qkv, out, lse, a) => {
    if (a.bf16 || !isF32(qkv) || !isF32(out) || !isF32(lse)) return tsKernels.attention(qkv, out, lse, a);
    const [n, l, c3] = qkv.shape as [number, number, number];
    heap.begin();
    const qi = heap.input(qkv.data as Float32Array);
    const pi = patternInput(a);
    const oi = heap.outputSpace(out.data.length);
    const li = heap.outputSpace(lse.data.length);
    const c = c3 / 3, d = c / a.heads;
    const lp = Math.ceil(l / NR) * NR, dp = Math.ceil(d / NR) * NR;
    const si = heap.scratch(16 * w.arpix_workers() * Math.ceil((lp * d + dp * lp + 8 * d + 4 * lp + 128) / 4)); // per worker (wasm/attention.c: attention_scratch)
    w.attention_f32(qi, oi, li, n, l, c, a.heads, a.scale, pi, si);
    heap.output(oi, out.data as Float32Array);
    heap.output(li, lse.data as Float32Array);
  };

  // A sampler's draw per pixel: 16 rows of 256 logits, 4096 exponentials in double precision.
  const categoricalDraw: Kernels['categoricalDraw'] = (logits, u, out, at, levels, temperature) => {
    if (!isF32(logits) || !isF32(u)) return tsKernels.categoricalDraw(logits, u, out, at, levels, temperature);
    const rows = out.data.length;
    heap.begin();
    const li = heap.input(logits.data as Float32Array);
    const ui = heap.input(u.data as Float32Array);
    const oi = heap.outputSpace(rows);
    const wi = heap.scratch(8 * levels);
    w.categorical_draw_f32(li, ui, oi, rows, last(logits), at, levels, temperature, wi);
    heap.output(oi, out.data as Int32Array);
  };

  /** The attention pattern's integers (patternCode) in scratch. */
  const patternInput = (a: AttentionAttrs): number => {
    const code = patternCode(a.pattern);
    for (let i = 0; i < code.length; i++) ints[i] = code[i]!;
    return intsInput(8);
  };

  return {
    unary, unaryBackward, clamp, binary, reduce, matmul, conv2d, conv2dBackwardData, conv2dBackwardWeights, conv2dBackward, gate, gatedResidual, concatElu, softmaxLast, softmaxCrossEntropy,
    layerNorm, gelu, attentionStep, kvCacheWrite, attention, lstmScan, categoricalDraw,
    rowLstmStep: rowLstmStepKernel(w, heap),
  };
}

/** conv2d's geometry (wasm/gemm.c's conv2d_f32 reads these 15 integers). */
function convGeom(into: Int32Array, n: number, h: number, w: number, cin: number, oh: number, ow: number, cout: number, kh: number, kw: number, p: ConvParams): number {
  const g = [n, h, w, cin, oh, ow, cout, kh, kw, p.strideH, p.strideW, p.padTop, p.padLeft, p.dilationH, p.dilationW];
  for (let i = 0; i < g.length; i++) into[i] = g[i]!;
  return g.length;
}

/**
 * The first key position a query at `position` may read under the pattern (every allowed key is
 * at or after it): 0 for causal, the window's start for local1d and for local2d in raster order.
 */
export function firstKey(a: AttentionAttrs, position: number): number {
  const p = a.pattern;
  if (p.kind === 'local1d') return Math.max(0, Math.floor(position / p.block) * p.block - p.memory);
  if (p.kind === 'local2d' && p.order === 'raster') {
    const by = Math.floor(Math.floor(position / p.width) / p.blockHeight) * p.blockHeight;
    return Math.max(0, (by - p.memoryHeight) * p.width);
  }
  return 0;
}
