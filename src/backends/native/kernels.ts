// The Kernels contract on top of the addon: each adapter hands the views' typed arrays to C++
// as they are (no copies) and translates attributes; checks live in the op layer.

import type { AttentionAttrs, ConvParams, Kernels, RowLSTMStepPlan, View } from '../../kernels/contracts.js';
import { patternCode } from '../../kernels/attention.js';
import { tsKernels } from '../ts/index.js';
import type { ConvParamArray, NativeAddon, NativeHandle, RowTermArgs } from './addon.js';

function convParams(p: ConvParams): ConvParamArray {
  return [p.strideH, p.strideW, p.padTop, p.padLeft, p.dilationH, p.dilationW, p.rowWinograd ? 1 : 0];
}

/** Heads wider than this run on the reference (the native tiles hold at most 128 floats per head). */
const MAX_NATIVE_HEAD = 128;

/** The length of a local2d pattern's grid, or the caches' capacity. */
function sequenceLength(a: AttentionAttrs, cacheLength: number): number {
  return a.pattern.kind === 'local2d' ? a.pattern.height * a.pattern.width : cacheLength;
}

export function nativeKernels(addon: NativeAddon): Kernels {
  // A step plan is read once into a native handle (pointers into its arrays), kept beside it.
  const plans = new WeakMap<RowLSTMStepPlan, NativeHandle>();
  const planHandle = (plan: RowLSTMStepPlan): NativeHandle => {
    let handle = plans.get(plan);
    if (!handle) plans.set(plan, (handle = addon.rowLstmPlan(plan)));
    return handle;
  };
  return {
    unary: (x, out, op) => addon.unary(x.data, out.data, op),
    unaryBackward: (x, y, g, dx, op) => addon.unaryBackward(x.data, y.data, g.data, dx.data, op),
    clamp: (x, out, lo, hi) => addon.clamp(x.data, out.data, lo, hi),
    binary: (a, b, out, op) => addon.binary(a.data, a.shape, b.data, b.shape, out.data, out.shape, op),
    where: (cond, a, b, out) => addon.where(cond.data, cond.shape, a.data, a.shape, b.data, b.shape, out.data, out.shape),
    reduce: (x, out, axes, op) => addon.reduce(x.data, x.shape, out.data, out.shape, axes, op),
    argmaxLast: (x, out) => addon.argmaxLast(x.data, x.shape, out.data),
    matmul: (a, b, out, transA, transB) => addon.matmul(a.data, a.shape, b.data, b.shape, out.data, out.shape, transA, transB),
    // Weights carry their storage identity and version: the addon keeps them reordered into
    // oneDNN's preferred layout until the version changes.
    conv2d: (x, w, bias, out, p, accumulate = false, keepInput = false, residual = null) =>
      addon.conv2d(x.data, x.shape, w.data, w.shape, w.storageId, w.version, bias ? bias.data : null, out.data, out.shape, convParams(p), accumulate, x.storageId, x.version, keepInput, residual ? residual.data : null),
    conv2dBackward: (x, dy, w, dx, dw, db, p, saved) =>
      addon.conv2dBackward(x.data, x.shape, x.storageId, x.version, dy.data, dy.shape, w.data, w.shape, w.storageId, w.version, dx ? dx.data : null, dw ? dw.data : null, db ? db.data : null, convParams(p), saved),
    releaseConvInput: (saved) => addon.releaseConvInput(saved),
    rowConvSumBackward: (terms, dy, db) =>
      addon.rowConvSumBackward(terms.map((t): RowTermArgs => [t.x.data, t.x.shape, t.w.data, t.w.shape, convParams(t.p), t.dx?.data ?? null, t.addend?.data ?? null, t.dw?.data ?? null]), dy.data, dy.shape, db ? db.data : null),
    conv2dBackwardData: (dy, w, dx, p) =>
      addon.conv2dBackwardData(dy.data, dy.shape, w.data, w.shape, w.storageId, w.version, dx.data, dx.shape, convParams(p)),
    conv2dBackwardWeights: (x, dy, dw, p, db = null) =>
      addon.conv2dBackwardWeights(x.data, x.shape, dy.data, dy.shape, dw.data, dw.shape, convParams(p), db ? db.data : null),
    permute: (x, out, perm) => addon.permute(x.data, x.shape, out.data, out.shape, perm),
    pad: (x, out, before, value) => addon.pad(x.data, x.shape, out.data, out.shape, before, value),
    slice: (x, out, begin) => addon.slice(x.data, x.shape, out.data, out.shape, begin),
    concat: (xs: readonly View[], out, axis) =>
      addon.concat(xs.map((x) => x.data), xs.map((x) => x.shape), out.data, out.shape, axis),
    gatherRows: (table, idx, out) => addon.gatherRows(table.data, table.shape, idx.data, out.data),
    scatterAddRows: (g, idx, out) => addon.scatterAddRows(g.data, idx.data, out.data, out.shape),
    pickLast: (x, idx, out) => addon.pickLast(x.data, x.shape, idx.data, out.data),
    pickLastBackward: (g, idx, out) => addon.pickLastBackward(g.data, idx.data, out.data, out.shape),
    softmaxLast: (x, out, log) => addon.softmaxLast(x.data, x.shape, out.data, log),
    cast: (x, out) => addon.cast(x.data, out.data),
    oneHot: (idx, out) => addon.oneHot(idx.data, out.data, out.shape),
    gate: (x, out) => addon.gate(x.data, x.shape, out.data, out.shape),
    gateBackward: (x, g, dx) => addon.gateBackward(x.data, x.shape, g.data, g.shape, dx.data),
    softmaxCrossEntropy: (logits, targets, loss, probs) =>
      addon.softmaxCrossEntropy(logits.data, logits.shape, targets.data, loss.data, probs.data),
    softmaxCrossEntropyBackward: (probs, targets, g, dx) =>
      addon.softmaxCrossEntropyBackward(probs.data, probs.shape, targets.data, g.data, dx.data),
    adamUpdate: (p, g, m, v, h) =>
      addon.adamUpdate(p.data, g.data, m.data, v.data, [h.beta1, h.beta2, h.eps, h.stepSize, h.bc2Sqrt, h.decay, h.l2]),
    gatedResidual: (x, h, out) => addon.gatedResidual(x.data, x.shape, h.data, h.shape, out.data),
    gatedResidualBackward: (h, g, dh) => addon.gatedResidualBackward(h.data, h.shape, g.data, g.shape, dh.data),
    concatElu: (x, out) => addon.concatElu(x.data, x.shape, out.data, out.shape),
    concatEluBackward: (x, g, dx) => addon.concatEluBackward(x.data, x.shape, g.data, g.shape, dx.data),
    dropoutMask: (out, seed, offset, p) => addon.dropoutMask(out.data, seed, offset, p),
    lstmScan: (xg, w, h0, c0, hs, cs, acts, pad) => addon.lstmScan(xg.data, xg.shape, w.data, w.shape, h0.data, c0.data, hs.data, cs.data, acts.data, pad),
    lstmScanBackward: (w, h0, c0, hs, cs, acts, dhs, dxg, dw, dh0, dc0, pad) =>
      addon.lstmScanBackward(w.data, w.shape, h0.data, c0.data, hs.data, cs.data, acts.data, acts.shape, dhs.data, dxg.data, dw.data, dh0.data, dc0.data, pad),
    layerNorm: (x, weight, bias, out, mean, rstd, eps, rms) =>
      addon.layerNorm(x.data, x.shape, weight?.data ?? null, bias?.data ?? null, out.data, mean.data, rstd.data, eps, rms),
    layerNormBackward: (x, weight, mean, rstd, g, dx, dweight, dbias, rms) =>
      addon.layerNormBackward(x.data, x.shape, weight?.data ?? null, mean.data, rstd.data, g.data, dx.data, dweight?.data ?? null, dbias?.data ?? null, rms),
    gelu: (x, out, tanh) => addon.gelu(x.data, out.data, tanh),
    geluBackward: (x, g, dx, tanh) => addon.geluBackward(x.data, g.data, dx.data, tanh),
    attention: (qkv, out, lse, a) => {
      if (qkv.shape[2]! / 3 / a.heads > MAX_NATIVE_HEAD) return tsKernels.attention(qkv, out, lse, a);
      addon.attention(qkv.data, qkv.shape, out.data, lse.data, a.heads, a.scale, patternCode(a.pattern));
    },
    attentionBackward: (qkv, out, lse, g, dqkv, a) => {
      if (qkv.shape[2]! / 3 / a.heads > MAX_NATIVE_HEAD) return tsKernels.attentionBackward(qkv, out, lse, g, dqkv, a);
      addon.attentionBackward(qkv.data, qkv.shape, out.data, lse.data, g.data, dqkv.data, a.heads, a.scale, patternCode(a.pattern));
    },
    attentionStep: (q, k, v, out, position, a) =>
      addon.attentionStep(q.data, q.shape, k.data, k.shape, v.data, v.shape, out.data, position, a.heads, a.scale, patternCode(a.pattern), sequenceLength(a, k.shape[1]!)),
    rowLstmStep: (plan, y, x) => addon.rowLstmStep(planHandle(plan), y, x),
  };
}
