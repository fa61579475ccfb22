// Every native kernel against the ts reference on random inputs: odd sizes, size-1 axes,
// broadcasting, stride, dilation, asymmetric and negative-bottom padding, and tensors large
// enough to take the OpenMP paths. Skipped when the addon is not built.

import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import type { BinaryOp, ConvParams, DType, Kernels, RowLSTMStepPlan, UnaryOp, View } from '../../kernels/contracts.js';
import * as ax from '../../ops/index.js';
import { BINARY_OPS, UNARY_GRAD_OPS, UNARY_OPS } from '../../kernels/contracts.js';
import { broadcastShapes } from '../../tensor/shape.js';
import { Tensor, uninitArrayFor } from '../../tensor/tensor.js';
import { assertClose } from '../../testing/gradcheck.js';
import { agreement, checkBatchedMatmul, checkRowLstmStep, empty, ints, size, sumTol, uniform } from '../../testing/kernels.js';
import { tsBackend } from '../ts/index.js';
import { loadNativeBackend, nativeLoadError } from './index.js';
import { nativeKernels } from './kernels.js';
import type { NativeAddon } from './addon.js';
import { KERNELS } from '../../kernels/contracts.js';
import { createRequire } from 'node:module';

const native = loadNativeBackend();
const skip = native ? false : `native backend not built (${nativeLoadError})`;
const ref: Kernels = tsBackend;
const nat = native as Kernels;

const agree = agreement(ref, nat);

describe('native backend vs ts reference', { skip }, () => {
  // ---- elementwise ----

  const unaryInput: Partial<Record<UnaryOp, [number, number]>> = {
    log: [0.05, 20], sqrt: [0, 9], rsqrt: [0.05, 9], reciprocal: [0.1, 4],
    sigmoid: [-40, 40], softplus: [-40, 40], logSigmoid: [-40, 40], tanh: [-6, 6], exp: [-20, 20], elu: [-5, 5],
  };
  for (const op of UNARY_OPS) {
    test(`unary ${op}: [5, 7, 3] and [40000] float32`, () => {
      const [lo, hi] = unaryInput[op] ?? [-3, 3];
      for (const shape of [[5, 7, 3], [40000]]) {
        const x = uniform(shape, lo, hi, 3);
        if (op === 'sign' || op === 'relu') x.data[0] = 0;
        agree((k, [o]) => k.unary(x, o!, op), [[shape, 'float32']], { atol: 1e-6, rtol: 2e-6 }, op);
      }
    });
  }

  test('unary special values: ±Infinity, NaN, ±0, exp overflow/underflow edges, tanh polynomial edge', () => {
    const v = [NaN, Infinity, -Infinity, 0, -0, 88.7, 88.8, -87.3, -104, 1e-8, -1e-8, 0.6249, 0.6251, -0.6251, 20, -20, 50, -50];
    const x = new Tensor(Float32Array.from(v), [v.length]);
    for (const op of ['exp', 'sigmoid', 'tanh', 'softplus', 'logSigmoid', 'elu', 'relu', 'sign', 'abs', 'neg'] as const) {
      agree((k, [o]) => k.unary(x, o!, op), [[[v.length], 'float32']], { atol: 1e-6, rtol: 2e-6 }, op);
    }
  });

  test('unaryBackward of every fused activation gradient, [50000] (OpenMP path) and special values', () => {
    const v = [NaN, Infinity, -Infinity, 0, -0, 88.8, -104, 1e-8, -1e-8, 0.6251, 20, -20];
    const sx = new Tensor(Float32Array.from(v), [v.length]);
    const sg = new Tensor(Float32Array.from(v.map((_, i) => (i % 3) - 1.5)), [v.length]);
    for (const op of UNARY_GRAD_OPS) {
      for (const [x, g] of [[uniform([50000], -6, 6, 30), uniform([50000], -2, 2, 31)], [sx, sg]] as const) {
        const y = empty(x.shape);
        ref.unary(x, y, op);
        agree((k, [o]) => k.unaryBackward(x, y, g, o!, op), [[x.shape, 'float32']], { atol: 1e-6, rtol: 2e-6 }, `${op} ${x.size}`);
      }
    }
  });

  test('unary neg/abs/sign/square on int32 [6, 5]', () => {
    const x = ints([6, 5], -50, 50);
    for (const op of ['neg', 'abs', 'sign', 'square'] as const) agree((k, [o]) => k.unary(x, o!, op), [[[6, 5], 'int32']], {}, op);
  });

  test('clamp float32 [5, 7] and [50000], int32 [9]', () => {
    for (const shape of [[5, 7], [50000]]) {
      const x = uniform(shape, -2, 2);
      agree((k, [o]) => k.clamp(x, o!, -0.5, 0.75), [[shape, 'float32']]);
    }
    const xi = ints([9], -5, 5);
    agree((k, [o]) => k.clamp(xi, o!, -2, 3), [[[9], 'int32']]);
  });

  // Pairs of shapes (a, b) that broadcast; out is computed.
  const broadcastPairs: [number[], number[]][] = [
    [[5, 7], [5, 7]],
    [[5, 7], []],
    [[], [5, 7]],
    [[5, 7], [1]],
    [[2, 5, 7, 3], [3]],
    [[5, 1], [1, 7]],
    [[2, 1, 7], [5, 1]],
    [[1, 5, 1, 3], [4, 1, 6, 1]],
    [[3], [4, 1]],
    [[64, 28, 28, 8], [8]],
    [[16, 28, 28, 8], [16, 28, 28, 8]],
    [[16, 1, 28, 8], [16, 28, 1, 8]],
    [[70000], []],
  ];
  const outShapeOf = (a: readonly number[], b: readonly number[]) => broadcastShapes('binary', a, b);

  for (const op of BINARY_OPS) {
    test(`binary ${op}: same shape, scalar, bias over leading axes, two-sided and large broadcasts`, () => {
      for (const [sa, sb] of broadcastPairs) {
        const positive = op === 'pow';
        const a = uniform(sa, positive ? 0.1 : -2, 2, 5);
        const b = uniform(sb, positive ? -2 : -2, 2, 6);
        if (op === 'div') b.data.forEach((v, i) => { if (Math.abs(v) < 0.05) b.data[i] = 0.5; });
        // Some equal elements so equal / notEqual / >= are exercised both ways.
        if (a.size > 0 && b.size > 0) a.data[0] = b.data[0]!;
        const os = outShapeOf(sa, sb);
        agree((k, [o]) => k.binary(a, b, o!, op as BinaryOp), [[os, 'float32']], { atol: 1e-6, rtol: 2e-6 }, `${op} ${JSON.stringify(sa)} ${JSON.stringify(sb)}`);
      }
    });
  }

  test('binary on int32: C-like truncating div (÷0 → 0), wrap-around, comparisons into int32 and float32', () => {
    const a = ints([4, 6], -20, 20, 7);
    const b = ints([6], -4, 4, 8);
    for (const op of BINARY_OPS) agree((k, [o]) => k.binary(a, b, o!, op), [[[4, 6], 'int32']], {}, op);
    for (const op of ['greater', 'equal', 'lessEqual'] as const) agree((k, [o]) => k.binary(a, b, o!, op), [[[4, 6], 'float32']], {}, op);
    const big = new Tensor(new Int32Array([2147483647, -2147483648, 65536, -2147483648]), [4]);
    const one = new Tensor(new Int32Array([1, -1, 65536, -1]), [4]);
    for (const op of ['add', 'sub', 'mul', 'div'] as const) agree((k, [o]) => k.binary(big, one, o!, op), [[[4], 'int32']], {}, op);
  });

  test('binary comparisons of float32 into int32 [5, 7] vs [7]', () => {
    const a = uniform([5, 7], -1, 1, 9);
    const b = uniform([7], -1, 1, 10);
    a.data[3] = b.data[3]!;
    for (const op of ['greater', 'greaterEqual', 'less', 'lessEqual', 'equal', 'notEqual'] as const) {
      agree((k, [o]) => k.binary(a, b, o!, op), [[[5, 7], 'int32']], {}, op);
    }
  });

  test('binary maximum/minimum propagate NaN like Math.max', () => {
    const a = new Tensor(new Float32Array([NaN, 1, 2, -0]), [4]);
    const b = new Tensor(new Float32Array([1, NaN, 3, 0]), [4]);
    for (const op of ['maximum', 'minimum'] as const) agree((k, [o]) => k.binary(a, b, o!, op), [[[4], 'float32']], {}, op);
  });

  test('where: cond [5, 1] int32, a [5, 7], b scalar; cond float32 [7] with int32 values; large', () => {
    const c = ints([5, 1], 0, 1);
    const a = uniform([5, 7]);
    const b = uniform([]);
    agree((k, [o]) => k.where(c, a, b, o!), [[[5, 7], 'float32']]);
    const cf = uniform([7], -1, 1);
    cf.data[2] = 0;
    const ai = ints([3, 7], -9, 9);
    const bi = ints([3, 1], -9, 9, 4);
    agree((k, [o]) => k.where(cf, ai, bi, o!), [[[3, 7], 'int32']]);
    const cl = ints([32, 32, 40], 0, 1);
    const al = uniform([32, 32, 40]);
    const bl = uniform([40], -1, 1, 11);
    agree((k, [o]) => k.where(cl, al, bl, o!), [[[32, 32, 40], 'float32']]);
  });

  test('cast float32 → int32 truncates toward zero, int32 → float32, same-dtype copies', () => {
    const x = new Tensor(new Float32Array([-2.7, -0.5, 0, 0.5, 2.7, 1e10, -1e10, NaN]), [8]);
    agree((k, [o]) => k.cast(x, o!), [[[8], 'int32']]);
    const xi = ints([40000], -100000, 100000);
    agree((k, [o]) => k.cast(xi, o!), [[[40000], 'float32']]);
    agree((k, [o]) => k.cast(xi, o!), [[[40000], 'int32']]);
    const xf = uniform([40000], -100, 100);
    agree((k, [o]) => k.cast(xf, o!), [[[40000], 'int32']]);
  });

  // ---- reductions ----

  const reduceCases: [number[], number[]][] = [
    [[5, 7, 3], [2]],
    [[5, 7, 3], [0]],
    [[5, 7, 3], [0, 1]],
    [[5, 7, 3], [1]],
    [[5, 7, 3], [0, 2]],
    [[5, 7, 3], [0, 1, 2]],
    [[1, 5, 1, 3], [1]],
    [[2, 3, 4, 5], [1, 3]],
    [[64, 28, 28, 8], [0, 1, 2]],
    [[64, 28, 28, 8], [3]],
    [[8, 28, 28, 16], [1, 2]],
    [[4, 1], [1]],
  ];
  for (const op of ['sum', 'max', 'min'] as const) {
    test(`reduce ${op}: last axis, leading axes, middle axes, mixed, size-1 axes, large`, () => {
      for (const [shape, axes] of reduceCases) {
        const x = uniform(shape, -1, 1, 12);
        const os = shape.map((d, i) => (axes.includes(i) ? 1 : d));
        const n = axes.reduce((a, ax) => a * shape[ax]!, 1);
        agree((k, [o]) => k.reduce(x, o!, axes, op), [[os, 'float32']], op === 'sum' ? sumTol(n) : {}, `${op} ${JSON.stringify(shape)} ${JSON.stringify(axes)}`);
      }
    });
  }

  test('reduce sum on int32 [6, 5] over [0] and [1]', () => {
    const x = ints([6, 5], -1000, 1000);
    agree((k, [o]) => k.reduce(x, o!, [0], 'sum'), [[[1, 5], 'int32']]);
    agree((k, [o]) => k.reduce(x, o!, [1], 'sum'), [[[6, 1], 'int32']]);
  });

  test('reduce max/min on int32 [6, 5] of positive values', () => {
    // Positive values only: the reference initialises int32 outputs from ±Infinity, which an
    // Int32Array stores as 0, so its max of all-negative rows is 0 (native returns the true max).
    const x = ints([6, 5], 1, 1000);
    agree((k, [o]) => k.reduce(x, o!, [1], 'max'), [[[6, 1], 'int32']]);
    agree((k, [o]) => k.reduce(x, o!, [0], 'max'), [[[1, 5], 'int32']]);
  });

  test('argmaxLast: [5, 7, 3] with ties (first wins) and [3000, 40]', () => {
    const x = ints([5, 7, 3], 0, 2);
    const xf = new Tensor(Float32Array.from(x.data), x.shape);
    agree((k, [o]) => k.argmaxLast(xf, o!), [[[5, 7], 'int32']]);
    const big = uniform([3000, 40]);
    agree((k, [o]) => k.argmaxLast(big, o!), [[[3000], 'int32']]);
  });

  for (const log of [false, true]) {
    test(`softmaxLast (log=${log}): [5, 7, 11], large logits, one class, [2048, 256]`, () => {
      for (const [shape, lo, hi] of [[[5, 7, 11], -3, 3], [[4, 9], -300, 300], [[6, 1], -1, 1], [[2048, 256], -10, 10]] as const) {
        const x = uniform(shape, lo, hi, 13);
        agree((k, [o]) => k.softmaxLast(x, o!, log), [[shape, 'float32']], { atol: log ? 2e-5 : 1e-6, rtol: 1e-5 }, JSON.stringify(shape));
      }
    });
  }

  // ---- fused ----

  test('gate / gateBackward: [2, 5, 7, 2·3] and a large [16, 28, 28, 2·32]', () => {
    for (const [shape, c] of [[[2, 5, 7, 6], 3], [[16, 28, 28, 64], 32]] as const) {
      const x = uniform(shape, -4, 4, 50);
      const half = [...shape.slice(0, -1), c];
      agree((k, [o]) => k.gate(x, o!), [[half, 'float32']], { atol: 1e-6, rtol: 2e-6 }, 'gate');
      const g = uniform(half, -1, 1, 51);
      agree((k, [o]) => k.gateBackward(x, g, o!), [[shape, 'float32']], { atol: 1e-6, rtol: 1e-5 }, 'gateBackward');
    }
  });

  test('gate / gateBackward far into both tails, at ±0, ±∞ and NaN, 20 channels (a full block of lanes and a partial one)', () => {
    const shape = [3, 7, 40];
    const x = uniform(shape, -40, 40, 52);
    const specials = [0, -0, Infinity, -Infinity, NaN, 1e-30, -1e-30, 0.6249, 0.6251, -0.6251, 88, -88, 100, -100, 1e-7, 20];
    specials.forEach((v, i) => { x.data[i] = v; x.data[20 + i] = specials[(i + 5) % specials.length]!; x.data[40 + 20 + i] = v; });
    const half = [3, 7, 20];
    agree((k, [o]) => k.gate(x, o!), [[half, 'float32']], { atol: 1e-6, rtol: 2e-6 }, 'gate');
    const g = uniform(half, -1, 1, 53);
    agree((k, [o]) => k.gateBackward(x, g, o!), [[shape, 'float32']], { atol: 1e-6, rtol: 1e-5 }, 'gateBackward');
  });

  test('adamUpdate: the same bits as the ts reference, with Adam\'s L2 term and with AdamW\'s decay, over several steps', () => {
    for (const [decay, l2] of [[1, 0.01], [1 - 1e-3 * 0.01, 0]] as const) {
      const n = 100_003;
      const start = [uniform([n], -1, 1, 60), uniform([n], -1, 1, 61), uniform([n], -0.1, 0.1, 62), uniform([n], 0, 0.01, 63)];
      const [pr, , mr, vr] = start.map((t) => new Tensor(t.data.slice(), t.shape));
      const [pn, , mn, vn] = start.map((t) => new Tensor(t.data.slice(), t.shape));
      for (let step = 1; step <= 3; step++) {
        const g = uniform([n], -1, 1, 64 + step);
        const h = { beta1: 0.9, beta2: 0.999, eps: 1e-8, stepSize: 1e-3 / (1 - 0.9 ** step), bc2Sqrt: Math.sqrt(1 - 0.999 ** step), decay, l2 };
        ref.adamUpdate(pr!, g, mr!, vr!, h);
        nat.adamUpdate(pn!, g, mn!, vn!, h);
      }
      assert.deepEqual(Array.from(pn!.data), Array.from(pr!.data), 'parameters');
      assert.deepEqual(Array.from(mn!.data), Array.from(mr!.data), 'first moments');
      assert.deepEqual(Array.from(vn!.data), Array.from(vr!.data), 'second moments');
    }
  });

  test('gatedResidual / gatedResidualBackward: [2, 5, 7, 3] and a large [16, 28, 28, 32]', () => {
    for (const shape of [[2, 5, 7, 3], [16, 28, 28, 32]] as const) {
      const twice = [...shape.slice(0, -1), 2 * shape[3]];
      const x = uniform(shape, -2, 2, 57), h = uniform(twice, -8, 8, 58), g = uniform(shape, -1, 1, 59);
      agree((k, [o]) => k.gatedResidual(x, h, o!), [[shape, 'float32']], { atol: 1e-6, rtol: 2e-6 }, 'gatedResidual');
      agree((k, [o]) => k.gatedResidualBackward(h, g, o!), [[twice, 'float32']], { atol: 1e-6, rtol: 1e-5 }, 'gatedResidualBackward');
    }
  });

  test('lstmScan / lstmScanBackward: small and odd shapes, k = 3, 2, 1, and a Row-LSTM-sized [28, 32, 28, 4·16]', () => {
    const cases: [number, number, number, number, number, number][] = [[4, 3, 5, 3, 3, 1], [6, 5, 4, 2, 2, 1], [3, 1, 7, 5, 1, 0], [5, 7, 6, 4, 3, 0], [28, 32, 28, 16, 3, 1]];
    for (const [t, b, l, h, k, pad] of cases) {
      const label = `lstmScan [${t}, ${b}, ${l}, ${4 * h}] k ${k} pad ${pad}`;
      const xg = uniform([t, b, l, 4 * h], -2, 2, 61), w = uniform([k, h, 4 * h], -0.5, 0.5, 62);
      const h0 = uniform([h], -1, 1, 63), c0 = uniform([h], -1, 1, 64), dhs = uniform([t, b, l, h], -1, 1, 65);
      const st: [number[], DType][] = [[[t, b, l, h], 'float32'], [[t, b, l, h], 'float32'], [[t, b, l, 4 * h], 'float32']];
      agree((kk, [hs, cs, acts]) => kk.lstmScan(xg, w, h0, c0, hs!, cs!, acts!, pad), st, sumTol(k * h), label);
      const [hs, cs, acts] = st.map(([shape]) => empty(shape));
      ref.lstmScan(xg, w, h0, c0, hs!, cs!, acts!, pad);
      const grads: [number[], DType][] = [[[t, b, l, 4 * h], 'float32'], [[k, h, 4 * h], 'float32'], [[h], 'float32'], [[h], 'float32']];
      agree((kk, [dxg, dw, dh0, dc0]) => kk.lstmScanBackward(w, h0, c0, hs!, cs!, acts!, dhs, dxg!, dw!, dh0!, dc0!, pad), grads, sumTol(t * b * l, 4), `${label} backward`);
    }
  });

  test('rowLstmStep: two rows of pixels, edges included, for odd h, k = 1, 3, 5, masked and unmasked taps', () => {
    checkRowLstmStep((plan, y, x) => nat.rowLstmStep(plan, y, x), (plan, y, x) => ref.rowLstmStep(plan, y, x));
  });

  test('rowLstmStep names a plan field of the wrong size and a pixel off the image', () => {
    const f = (count: number) => new Float32Array(new ArrayBuffer(4 * count));
    const dense = (cin: number, cout: number) => ({ weight: f(cin * cout), bias: f(cout), cin, cout });
    const plan: RowLSTMStepPlan = {
      n: 1, height: 2, width: 2, channels: 1, hidden: 2, kernel: 3, image: f(4), firstTaps: Int32Array.from([0, -1]), first: dense(1, 4),
      rows: [f(2 * 4)], layers: [{ inputTaps: Int32Array.from([-1, 0]), gates: f((2 * 4 + 3 * 2) * 8), gateBias: f(8), output: dense(2, 4), prevH: f(4), prevC: f(4), curH: f(4), curC: f(3) }],
      skip: dense(4, 4), outHidden: dense(4, 3), out: dense(3, 2), logits: f(2),
    };
    assert.throws(() => nat.rowLstmStep(plan, 0, 0), /rowLstmPlan: curC holds 3 elements, expected 4/);
    const good = { ...plan, layers: [{ ...plan.layers[0]!, curC: f(4) }] };
    assert.throws(() => nat.rowLstmStep(good, 2, 0), /rowLstmStep: pixel \(2, 0\) is off the image/);
    assert.throws(() => ax.rowLstmStep({ ...good, image: f(3) }, 0, 0), /rowLstmStep: image holds 3 values, expected 4/);
    assert.throws(() => ax.rowLstmStep({ ...good, firstTaps: Int32Array.from([0, 1]) }, 0, 0), /reads a later pixel/);
    nat.rowLstmStep(good, 1, 1);
  });

  test('concatElu / concatEluBackward: [2, 5, 7, 3] and a large [16, 28, 28, 32], inputs of both signs', () => {
    for (const shape of [[2, 5, 7, 3], [16, 28, 28, 32]] as const) {
      const x = uniform(shape, -6, 6, 55);
      const twice = [...shape.slice(0, -1), 2 * shape[3]];
      agree((k, [o]) => k.concatElu(x, o!), [[twice, 'float32']], { atol: 1e-6, rtol: 2e-6 }, 'concatElu');
      const g = uniform(twice, -1, 1, 56);
      agree((k, [o]) => k.concatEluBackward(x, g, o!), [[shape, 'float32']], { atol: 1e-6, rtol: 1e-5 }, 'concatEluBackward');
    }
  });

  test('dropoutMask: the same mask as the ts reference, bit for bit, for seeds and offsets past 2^32', () => {
    for (const [n, seed, offset, p] of [[1, 0, 0, 0.5], [10, 3, 7, 0.1], [100_003, 123_456_789_012, 2 ** 33 + 5, 0.5], [4096, 2 ** 40 + 1, 0, 0.9]] as const) {
      const expected = empty([n]), actual = empty([n]);
      ref.dropoutMask(expected, seed, offset, p);
      nat.dropoutMask(actual, seed, offset, p);
      assert.deepEqual(Array.from(actual.data), Array.from(expected.data), `n ${n}, seed ${seed}, offset ${offset}, p ${p}`);
      const kept = expected.data.filter((v) => v !== 0).length;
      if (n > 1000) assert.ok(Math.abs(kept / n - (1 - p)) < 0.02, `kept fraction ${kept / n} for p ${p}`);
    }
  });

  test('softmaxCrossEntropy and backward: [35, 11], large logits, [4096, 256]', () => {
    for (const [J, K, lo, hi] of [[35, 11, -3, 3], [9, 4, -300, 300], [4096, 256, -8, 8]] as const) {
      const x = uniform([J, K], lo, hi, 52);
      const t = ints([J], 0, K - 1, 53);
      agree((k, [loss, probs]) => k.softmaxCrossEntropy(x, t, loss!, probs!), [[[J], 'float32'], [[J, K], 'float32']], { atol: 2e-5, rtol: 1e-5 }, `sce ${J}x${K}`);
      const probs = empty([J, K]);
      ref.softmaxCrossEntropy(x, t, empty([J]), probs);
      const g = uniform([J], -1, 1, 54);
      agree((k, [dx]) => k.softmaxCrossEntropyBackward(probs, t, g, dx!), [[[J, K], 'float32']], {}, `sce backward ${J}x${K}`);
    }
  });

  // ---- matmul ----

  test('matmul 2-D, all four transpositions, odd sizes', () => {
    const [m, kk, n] = [5, 7, 3];
    for (const ta of [false, true]) {
      for (const tb of [false, true]) {
        const a = uniform(ta ? [kk, m] : [m, kk], -1, 1, 14);
        const b = uniform(tb ? [n, kk] : [kk, n], -1, 1, 15);
        agree((k, [o]) => k.matmul(a, b, o!, ta, tb), [[[m, n], 'float32']], sumTol(kk), `ta=${ta} tb=${tb}`);
      }
    }
  });

  test('matmul batched [4, ·, ·], with a 2-D operand shared across the batch, and large', () => {
    checkBatchedMatmul(agree);
  });

  // ---- convolutions ----

  interface ConvCase { name: string; x: number[]; k: [number, number]; cout: number; p: ConvParams; out?: [number, number] }
  const P = (s: number, pt: number, pl: number, d = 1, sw = s, dw = d): ConvParams => ({ strideH: s, strideW: sw, padTop: pt, padLeft: pl, dilationH: d, dilationW: dw });
  const W = (pt: number, pl: number, d = 1): ConvParams => ({ ...P(1, pt, pl, d), rowWinograd: true });
  const convCases: ConvCase[] = [
    { name: '3×3 same, [2, 5, 7, 3] → 4', x: [2, 5, 7, 3], k: [3, 3], cout: 4, p: P(1, 1, 1) },
    { name: '1×1, [3, 4, 4, 8] → 5', x: [3, 4, 4, 8], k: [1, 1], cout: 5, p: P(1, 0, 0) },
    { name: '3×3 stride 2 on even size (negative bottom/right padding), [2, 6, 8, 3] → 4', x: [2, 6, 8, 3], k: [3, 3], cout: 4, p: P(2, 0, 0) },
    { name: '3×3 stride 2 pad 1, [1, 7, 5, 2] → 3', x: [1, 7, 5, 2], k: [3, 3], cout: 3, p: P(2, 1, 1) },
    { name: '3×3 dilation 2, [2, 9, 8, 3] → 2', x: [2, 9, 8, 3], k: [3, 3], cout: 2, p: P(1, 2, 2, 2) },
    { name: 'down-shifted 2×3 (pad top 1, left 1, none below), [2, 5, 7, 3] → 4', x: [2, 5, 7, 3], k: [2, 3], cout: 4, p: P(1, 1, 1), out: [5, 7] },
    { name: 'down-right-shifted 2×2 (pad top/left only), [2, 5, 7, 3] → 4', x: [2, 5, 7, 3], k: [2, 2], cout: 4, p: P(1, 1, 1), out: [5, 7] },
    { name: 'padding wider than the kernel (whole output rows in the padding), [1, 5, 5, 2] → 3', x: [1, 5, 5, 2], k: [3, 3], cout: 3, p: P(1, 3, 3) },
    { name: 'output entirely in the top padding, [1, 5, 5, 2] → 3', x: [1, 5, 5, 2], k: [3, 3], cout: 3, p: P(1, 10, 0), out: [1, 3] },
    // Gated PixelCNN's dilated vertical layer: weight gradients by space-to-batch phases.
    { name: 'down-shifted 2×3 dilation 4, [2, 10, 11, 16] → 32', x: [2, 10, 11, 16], k: [2, 3], cout: 32, p: P(1, 4, 4, 4), out: [10, 11] },
    { name: 'asymmetric stride 1×2, dilation 2×1, [2, 7, 9, 5] → 3', x: [2, 7, 9, 5], k: [3, 2], cout: 3, p: P(1, 2, 0, 2, 2, 1) },
    { name: '3×3 same, [4, 14, 14, 16] → 32', x: [4, 14, 14, 16], k: [3, 3], cout: 32, p: P(1, 1, 1) },
    // Large enough for the Winograd plan (blocked nChw16c copies, reorders in and out).
    { name: '3×3 same, Winograd-sized [2, 32, 32, 64] → 64', x: [2, 32, 32, 64], k: [3, 3], cout: 64, p: P(1, 1, 1) },
    // One-row kernels, whose backward pass is row_conv.cc's: Gated PixelCNN's horizontal layers
    // (1×2 with a dilated left tap), 1×1 over many row chunks with a shorter last one, 1×3 whose
    // taps fall off both edges.
    { name: 'row conv: 1×2 dilation 2 with left padding (horizontal stack), [3, 5, 9, 6] → 10', x: [3, 5, 9, 6], k: [1, 2], cout: 10, p: { ...P(1, 0, 2, 1, 1, 2) }, out: [5, 9] },
    { name: 'row conv: 1×1 over many row chunks, [7, 13, 30, 16] → 24', x: [7, 13, 30, 16], k: [1, 1], cout: 24, p: P(1, 0, 0) },
    { name: 'row conv: 1×3 dilation 3, padding 4 left, [2, 3, 11, 5] → 3', x: [2, 3, 11, 5], k: [1, 3], cout: 3, p: P(1, 0, 4, 1, 1, 3), out: [3, 13] },
    { name: 'row conv: 1×2 without padding (narrower output), [2, 4, 7, 4] → 4', x: [2, 4, 7, 4], k: [1, 2], cout: 4, p: P(1, 0, 0), out: [4, 6] },
    // Row Winograd F(4, 3) (winograd_rows.cc): widths that are not a multiple of the tile, phases
    // of dilated rows, chunks of rows with a shorter last one, one and three kernel rows, backward
    // passes by kernel row (fewer than 4 images) and by whole images per thread.
    { name: 'row Winograd: down-shifted 2×3, [2, 5, 9, 3] → 4', x: [2, 5, 9, 3], k: [2, 3], cout: 4, p: W(1, 1), out: [5, 9] },
    { name: 'row Winograd: 2×3 dilation 2, [3, 6, 11, 16] → 17', x: [3, 6, 11, 16], k: [2, 3], cout: 17, p: W(2, 2, 2), out: [6, 11] },
    { name: 'row Winograd: 2×3 dilation 4, Gated PixelCNN-sized [2, 8, 28, 64] → 128', x: [2, 8, 28, 64], k: [2, 3], cout: 128, p: W(4, 4, 4), out: [8, 28] },
    { name: 'row Winograd: dilation 3 rows × 2 columns, [2, 9, 13, 8] → 4', x: [2, 9, 13, 8], k: [2, 3], cout: 4, p: { ...W(3, 2, 3), dilationW: 2 }, out: [9, 13] },
    { name: 'row Winograd: 2×3 dilation 2, images split between threads, [5, 7, 10, 8] → 8', x: [5, 7, 10, 8], k: [2, 3], cout: 8, p: W(2, 2, 2), out: [7, 10] },
    { name: 'row Winograd: 3×3 same over many row chunks, [5, 29, 30, 8] → 8', x: [5, 29, 30, 8], k: [3, 3], cout: 8, p: W(1, 1) },
    { name: 'row Winograd: 1×3 without left padding (narrower output), [2, 4, 10, 5] → 6', x: [2, 4, 10, 5], k: [1, 3], cout: 6, p: W(0, 0) },
  ];
  const outOf = (c: ConvCase): number[] => {
    const [n, h, w] = c.x;
    const [kh, kw] = c.k;
    if (c.out) return [n!, c.out[0], c.out[1], c.cout];
    // Symmetric padding unless the case says otherwise.
    const oh = Math.floor((h! + 2 * c.p.padTop - ((kh - 1) * c.p.dilationH + 1)) / c.p.strideH) + 1;
    const ow = Math.floor((w! + 2 * c.p.padLeft - ((kw - 1) * c.p.dilationW + 1)) / c.p.strideW) + 1;
    return [n!, oh, ow, c.cout];
  };
  for (const c of convCases) {
    test(`conv2d, backward-data, backward-weights: ${c.name}`, () => {
      const ys = outOf(c);
      const x = uniform(c.x, -1, 1, 18);
      const w = uniform([c.k[0], c.k[1], c.x[3]!, c.cout], -1, 1, 19);
      const bias = uniform([c.cout], -1, 1, 20);
      const dy = uniform(ys, -1, 1, 21);
      const kSum = c.k[0] * c.k[1] * c.x[3]!;
      agree((k, [o]) => k.conv2d(x, w, null, o!, c.p), [[ys, 'float32']], sumTol(kSum), 'forward');
      agree((k, [o]) => k.conv2d(x, w, bias, o!, c.p), [[ys, 'float32']], sumTol(kSum), 'forward+bias');
      agree((k, [o]) => k.conv2dBackwardData(dy, w, o!, c.p), [[c.x, 'float32']], sumTol(c.k[0] * c.k[1] * c.cout), 'backward-data');
      agree((k, [o]) => k.conv2dBackwardWeights(x, dy, o!, c.p), [[w.shape, 'float32']], sumTol(size(ys) / c.cout), 'backward-weights');
      // The outputs start from the same garbage on both sides: accumulate adds to it.
      agree((k, [o]) => k.conv2d(x, w, bias, o!, c.p, true), [[ys, 'float32']], sumTol(kSum, 100), 'forward+bias, accumulated');
      agree((k, [o]) => k.conv2d(x, w, null, o!, c.p, true), [[ys, 'float32']], sumTol(kSum, 100), 'forward, accumulated');
      // A residual added as the output is written (oneDNN's binary post-op, or a copy first).
      const residual = uniform(ys, -3, 3, 22);
      agree((k, [o]) => k.conv2d(x, w, bias, o!, c.p, false, false, residual), [[ys, 'float32']], sumTol(kSum, 3), 'forward+bias+residual');
      agree((k, [o]) => k.conv2d(x, w, null, o!, c.p, false, true, residual), [[ys, 'float32']], sumTol(kSum, 3), 'forward+residual, input kept');
      agree((k, [o, b]) => k.conv2dBackwardWeights(x, dy, o!, c.p, b), [[w.shape, 'float32'], [[c.cout], 'float32']], sumTol(size(ys) / c.cout), 'backward-weights with bias gradient');
      // The training path: the forward keeps its copy of x, one call gives every gradient.
      const tol = sumTol(Math.max(size(ys) / c.cout, c.k[0] * c.k[1] * c.cout));
      agree((k, [y, gx, gw, gb]) => {
        const saved = k.conv2d(x, w, bias, y!, c.p, false, true);
        k.conv2dBackward(x, dy, w, gx!, gw!, gb!, c.p, saved);
      }, [[ys, 'float32'], [c.x, 'float32'], [w.shape, 'float32'], [[c.cout], 'float32']], tol, 'conv2dBackward (dx, dw, db)');
      agree((k, [gw]) => k.conv2dBackward(x, dy, w, null, gw!, null, c.p, 0), [[w.shape, 'float32']], tol, 'conv2dBackward (dw only)');
      agree((k, [gx, gb]) => k.conv2dBackward(x, dy, w, gx!, null, gb!, c.p, 0), [[c.x, 'float32'], [[c.cout], 'float32']], tol, 'conv2dBackward (dx, db)');
    });
  }

  // The backward pass of sums of one-row convolutions (row_conv.cc): Gated PixelCNN's dilated 1×2
  // horizontal layer plus its 1×1 link; a lone 1×1 (x and dx are the products' operands) over many
  // row chunks; three terms of different widths, kernels and paddings giving one output.
  const rowSumCases: { name: string; y: number[]; terms: { x: number[]; k: number; p: ConvParams }[] }[] = [
    { name: 'dilated 1×2 + 1×1 link, [3, 5, 9, ·] → 10', y: [3, 5, 9, 10], terms: [{ x: [3, 5, 9, 6], k: 2, p: P(1, 0, 2, 1, 1, 2) }, { x: [3, 5, 9, 12], k: 1, p: P(1, 0, 0) }] },
    { name: 'one 1×1 over many row chunks, [7, 13, 30, 16] → 24', y: [7, 13, 30, 24], terms: [{ x: [7, 13, 30, 16], k: 1, p: P(1, 0, 0) }] },
    {
      name: '1×3 dilation 3 + 1×1 + 1×2 unpadded, widths 11, 13, 14 → 13',
      y: [2, 3, 13, 5],
      terms: [{ x: [2, 3, 11, 4], k: 3, p: P(1, 0, 4, 1, 1, 3) }, { x: [2, 3, 13, 3], k: 1, p: P(1, 0, 0) }, { x: [2, 3, 14, 2], k: 2, p: P(1, 0, 0) }],
    },
  ];
  for (const c of rowSumCases) {
    test(`rowConvSumBackward: ${c.name}`, () => {
      const o = c.y[3]!;
      const xs = c.terms.map((t, i) => uniform(t.x, -1, 1, 40 + i));
      const ws = c.terms.map((t, i) => uniform([1, t.k, t.x[3]!, o], -1, 1, 50 + i));
      const addends = c.terms.map((t, i) => uniform(t.x, -2, 2, 60 + i));
      const terms = c.terms.map((t, i) => ({ x: xs[i]!, w: ws[i]!, p: t.p }));
      const dy = uniform(c.y, -1, 1, 80);
      const outs: [readonly number[], DType][] = [...c.terms.flatMap((t): [readonly number[], DType][] => [[t.x, 'float32'], [[1, t.k, t.x[3]!, o], 'float32']]), [[o], 'float32']];
      const tol = sumTol(Math.max(size(c.y) / o, 3 * o), 2);
      // Every gradient, with and without addends; then dx only (some terms' addends), dw only.
      for (const withAddend of [false, true]) {
        agree((k, g) => k.rowConvSumBackward(terms.map((t, i) => ({ ...t, dx: g[2 * i]!, addend: withAddend ? addends[i]! : null, dw: g[2 * i + 1]! })), dy, g[2 * terms.length]!),
          outs, tol, `backward${withAddend ? ' with addends' : ''}`);
      }
      // The addend may be dx itself: the gradient grows in place.
      agree((k, g) => {
        terms.forEach((_, i) => g[2 * i]!.data.set(addends[i]!.data));
        k.rowConvSumBackward(terms.map((t, i) => ({ ...t, dx: g[2 * i]!, addend: g[2 * i]!, dw: g[2 * i + 1]! })), dy, g[2 * terms.length]!);
      }, outs, tol, 'backward with addends in place');
      agree((k, g) => k.rowConvSumBackward(terms.map((t, i) => ({ ...t, dx: g[i]!, addend: i % 2 === 0 ? addends[i]! : null, dw: null })), dy, null),
        c.terms.map((t): [readonly number[], DType] => [t.x, 'float32']), tol, 'backward, dx only');
      agree((k, g) => k.rowConvSumBackward(terms.map((t, i) => ({ ...t, dx: null, addend: null, dw: g[i]! })), dy, null),
        c.terms.map((t): [readonly number[], DType] => [[1, t.k, t.x[3]!, o], 'float32']), tol, 'backward, dw only');
    });
  }

  test('rowConvSumBackward refuses a term that is not one row high, or a gradient of the wrong size', () => {
    const x = uniform([1, 4, 5, 2]);
    const dy = uniform([1, 4, 5, 3]);
    const none = { dx: null, addend: null, dw: null };
    assert.throws(() => nat.rowConvSumBackward([{ x, w: uniform([2, 1, 2, 3]), p: P(1, 0, 0), ...none }], dy, null), /rowConvSumBackward: term 0 .* is not a one-row convolution giving \[1, 4, 5, 3\]/);
    assert.throws(() => nat.rowConvSumBackward([], dy, null), /rowConvSumBackward: needs at least one term/);
    const t = { x, w: uniform([1, 1, 2, 3]), p: P(1, 0, 0) };
    assert.throws(() => nat.rowConvSumBackward([{ ...t, dx: empty([1, 4, 5, 1]), addend: null, dw: null }], uniform([1, 4, 5, 3]), null), /rowConvSumBackward: dx of term 0 holds 20 elements, expected 40/);
    assert.throws(() => nat.rowConvSumBackward([{ ...t, dx: null, addend: empty([1, 4, 5, 2]), dw: null }], uniform([1, 4, 5, 3]), null), /rowConvSumBackward: term 0 has an addend but no dx/);
    const both = empty([41]);
    const view = (offset: number) => ({ data: both.data.subarray(offset, offset + 40), shape: [1, 4, 5, 2], dtype: 'float32' as const, storageId: offset, version: 0 });
    assert.throws(() => nat.rowConvSumBackward([{ ...t, dx: view(0), addend: view(1), dw: null }], uniform([1, 4, 5, 3]), null),
      /rowConvSumBackward: the addend of term 0 overlaps its dx without being it: pass dx itself \(in place\) or separate memory/);
  });

  test('conv2d adds a residual in the convolution itself (a post-op, not the reference path), and refuses a bad one', () => {
    const nb = native!;
    nb.clearCaches();
    const x = uniform([4, 14, 14, 64], -1, 1, 30);
    const w = uniform([1, 1, 64, 64], -1, 1, 31);
    const r = uniform([4, 14, 14, 64], -1, 1, 32);
    const out = empty([4, 14, 14, 64]);
    nat.conv2d(x, w, null, out, P(1, 0, 0), false, false, r);
    const used = nb.convImplementations().filter((c) => c.what.startsWith('forward (residual)'));
    assert.equal(used.length, 1, 'the residual kind was built');
    assert.ok(!used[0]!.impl.startsWith('ref'), `residual convolution on ${used[0]!.impl}`);
    assert.throws(() => nat.conv2d(x, w, null, out, P(1, 0, 0), false, false, uniform([4, 14, 14, 63])), /conv2d: residual holds 49392 elements, expected the output's 50176/);
    assert.throws(() => nat.conv2d(x, w, null, out, P(1, 0, 0), true, false, r), /conv2d: takes a residual or accumulates into out, not both/);
    assert.throws(() => nat.conv2d(x, w, null, out, P(1, 0, 0), false, false, out), /conv2d: residual overlaps out: pass separate memory/);
  });
  test('tensor memory starts on a cache line (64 bytes) once the native backend is loaded', () => {
    const nb = native!;
    for (const [shape, dtype] of [[[4096], 'float32'], [[3, 1000], 'float64'], [[5, 999], 'int32'], [[32, 28, 28, 64], 'float32']] as const) {
      const t = uninitArrayFor(dtype, shape.reduce((a, b) => a * b, 1));
      assert.equal((nb.addressMod64(t.buffer as ArrayBuffer) + t.byteOffset) % 64, 0, `${dtype} ${shape}`);
      assert.equal(t.length, shape.reduce((a, b) => a * b, 1));
    }
  });
  test('conv2d reuses reordered weights until the version changes', () => {
    const nb = native!;
    const p = P(1, 1, 1);
    const x = uniform([2, 8, 8, 16], -1, 1, 22);
    const w = uniform([3, 3, 16, 32], -1, 1, 23);
    const out = empty([2, 8, 8, 32]);
    const expected = empty([2, 8, 8, 32]);
    nb.clearCaches();
    nb.conv2d(x, w, null, out, p);
    const after1 = nb.cacheSizes();
    nb.conv2d(x, w, null, out, p);
    assert.deepEqual(nb.cacheSizes(), after1, 'a second call builds nothing new');
    // An optimiser step: in-place write plus a version bump must be seen.
    w.data.forEach((v, i) => { w.data[i] = v * -0.5; });
    w.bumpVersion();
    nb.conv2d(x, w, null, out, p);
    ref.conv2d(x, w, null, expected, p);
    assertClose(out.data, expected.data, { ...sumTol(144), label: 'after the weights changed' });
  });

  test('a kept forward input is used only while x is unchanged, and released by backward or on request', () => {
    const nb = native!;
    const p = P(1, 1, 1);
    // Winograd-sized, so the forward reorders x into a blocked copy it can keep.
    const x = uniform([2, 32, 32, 64], -1, 1, 26);
    const w = uniform([3, 3, 64, 64], -0.1, 0.1, 27);
    const dy = uniform([2, 32, 32, 64], -1, 1, 28);
    const y = empty([2, 32, 32, 64]);
    const gw = empty(w.shape);
    const expected = empty(w.shape);
    nb.clearCaches();
    const saved = nb.conv2d(x, w, null, y, p, false, true);
    if (!nb.convImplementations().some((c) => c.impl.includes('wino'))) {
      // oneDNN's Winograd needs AVX-512: elsewhere the layer reads x in place, with nothing to keep.
      assert.equal(saved, 0, 'a plan that reads x in place keeps no copy');
      assert.equal(nb.cacheSizes().keptInputs, 0);
      nb.clearCaches();
      return;
    }
    assert.ok(saved > 0, 'the blocked plan keeps its copy of x');
    assert.equal(nb.cacheSizes().keptInputs, 1);
    // x written in place (version bumped) between forward and backward: the copy is stale.
    x.data.forEach((v, i) => { x.data[i] = v * -2; });
    x.bumpVersion();
    nb.conv2dBackward(x, dy, w, null, gw, null, p, saved);
    assert.equal(nb.cacheSizes().keptInputs, 0, 'backward releases the copy');
    ref.conv2dBackwardWeights(x, dy, expected, p);
    assertClose(gw.data, expected.data, { ...sumTol(2 * 32 * 32), label: 'weight gradient of the new x' });
    const again = nb.conv2d(x, w, null, y, p, false, true);
    assert.equal(nb.cacheSizes().keptInputs, 1);
    nb.releaseConvInput(again);
    nb.releaseConvInput(again); // twice is harmless
    assert.equal(nb.cacheSizes().keptInputs, 0);
    assert.equal(nb.conv2d(x, w, null, y, p, false, false), 0, 'nothing kept unless asked');
    nb.clearCaches();
  });

  test('strided layers whose last rows are never read run on JIT kernels, not the reference loops', () => {
    const nb = native!;
    nb.clearCaches();
    // PixelCNN++'s down-sampling: 2×3 down-shifted and 2×2 down-right-shifted, stride 2, 28 → 14;
    // the exact bottom/right padding is negative (-1), once served by a cropped view that oneDNN
    // only runs on ref:any (~150 ms a call instead of ~2).
    const cases: [number[], [number, number], ConvParams][] = [
      [[4, 28, 28, 32], [2, 3], P(2, 1, 1)],
      [[4, 28, 28, 32], [2, 2], P(2, 1, 1)],
      [[4, 29, 30, 32], [2, 3], P(2, 0, 0)],
    ];
    for (const [xs, [kh, kw], p] of cases) {
      const x = uniform(xs, -1, 1, 40);
      const w = uniform([kh, kw, 32, 32], -0.2, 0.2, 41);
      const ys = [xs[0]!, 14, 14, 32];
      const dy = uniform(ys, -1, 1, 42);
      agree((k, [y, gx, gw, gb]) => {
        k.conv2d(x, w, null, y!, p);
        k.conv2dBackward(x, dy, w, gx!, gw!, gb!, p, 0);
      }, [[ys, 'float32'], [xs, 'float32'], [w.shape, 'float32'], [[32], 'float32']], sumTol(4 * 14 * 14), `${xs} k${kh}×${kw}`);
    }
    const slow = nb.convImplementations().filter((c) => c.impl.startsWith('ref'));
    assert.deepEqual(slow, [], 'no convolution fell back to the reference implementation');
    assert.ok(nb.convImplementations().length >= 9);
  });

  test('setThreads(1) gives the same convolution and matmul results, and threads() reports it', () => {
    const nb = native!;
    const before = nb.threads();
    const p = P(1, 1, 1);
    const x = uniform([2, 9, 9, 16], -1, 1, 24);
    const w = uniform([3, 3, 16, 8], -1, 1, 25);
    const one = empty([2, 9, 9, 8]);
    const many = empty([2, 9, 9, 8]);
    nb.conv2d(x, w, null, many, p);
    try {
      nb.setThreads(1);
      assert.equal(nb.threads(), 1);
      nb.conv2d(x, w, null, one, p);
    } finally {
      nb.setThreads(before);
    }
    assert.equal(nb.threads(), before);
    assertClose(one.data, many.data, sumTol(144));
  });

  test("setConvAlgorithm('direct') makes a Winograd-sized layer bit-identical per pixel to a small one", () => {
    const nb = native!;
    const before = nb.convAlgorithm();
    const p = P(1, 1, 1);
    const x = uniform([2, 32, 32, 64], -1, 1, 26);
    const w = uniform([3, 3, 64, 64], -1, 1, 27);
    // The first image alone, through a batch of 1 (never Winograd).
    const x0 = new Tensor(x.data.slice(0, 32 * 32 * 64), [1, 32, 32, 64]);
    const y0 = empty([1, 32, 32, 64]);
    const y = empty([2, 32, 32, 64]);
    try {
      nb.setConvAlgorithm('direct');
      assert.equal(nb.convAlgorithm(), 'direct');
      nb.conv2d(x0, w, null, y0, p);
      nb.conv2d(x, w, null, y, p);
      assert.deepEqual(y.data.subarray(0, y0.size), y0.data);
    } finally {
      nb.setConvAlgorithm(before);
    }
    assert.throws(() => nb.setConvAlgorithm('fast' as never), /setConvAlgorithm: policy must be/);
  });

  // ---- data movement ----

  test('permute: 4-D perms, a large 2-D transpose and a batched transpose (tiled paths)', () => {
    const x = uniform([2, 3, 4, 5]);
    for (const perm of [[0, 1, 2, 3], [3, 2, 1, 0], [0, 3, 1, 2], [0, 2, 3, 1], [1, 0, 2, 3], [2, 0, 3, 1]]) {
      agree((k, [o]) => k.permute(x, o!, perm), [[perm.map((p) => x.shape[p]!), 'float32']], {}, JSON.stringify(perm));
    }
    const t = uniform([300, 203]);
    agree((k, [o]) => k.permute(t, o!, [1, 0]), [[[203, 300], 'float32']]);
    const bt = uniform([6, 64, 65]);
    agree((k, [o]) => k.permute(bt, o!, [0, 2, 1]), [[[6, 65, 64], 'float32']]);
    const nhwc = ints([4, 1, 33, 40], -5, 5);
    agree((k, [o]) => k.permute(nhwc, o!, [0, 3, 1, 2]), [[[4, 40, 1, 33], 'int32']]);
  });

  test('pad: [2, 3, 4] → [4, 5, 7] with value, int32, and a large channels-last pad', () => {
    const x = uniform([2, 3, 4]);
    agree((k, [o]) => k.pad(x, o!, [1, 0, 2], 0.5), [[[4, 5, 7], 'float32']]);
    const xi = ints([2, 3], -9, 9);
    agree((k, [o]) => k.pad(xi, o!, [0, 2], -1), [[[3, 6], 'int32']]);
    const big = uniform([16, 28, 28, 8]);
    agree((k, [o]) => k.pad(big, o!, [0, 1, 2, 0], 0), [[[16, 29, 31, 8], 'float32']]);
  });

  test('slice: inner and outer windows, int32, large', () => {
    const x = uniform([4, 5, 7]);
    agree((k, [o]) => k.slice(x, o!, [1, 2, 3]), [[[2, 3, 4], 'float32']]);
    agree((k, [o]) => k.slice(x, o!, [0, 0, 6]), [[[4, 5, 1], 'float32']]);
    const xi = ints([6, 5], -9, 9);
    agree((k, [o]) => k.slice(xi, o!, [2, 0]), [[[3, 5], 'int32']]);
    const big = uniform([16, 29, 31, 8]);
    agree((k, [o]) => k.slice(big, o!, [0, 0, 1, 0]), [[[16, 28, 28, 8], 'float32']]);
  });

  test('concat along the first, a middle and the last axis', () => {
    const a = uniform([2, 3, 4], -1, 1, 30);
    const b = uniform([2, 1, 4], -1, 1, 31);
    const c = uniform([2, 5, 4], -1, 1, 32);
    agree((k, [o]) => k.concat([a, b, c], o!, 1), [[[2, 9, 4], 'float32']]);
    const d = uniform([2, 3, 2], -1, 1, 33);
    agree((k, [o]) => k.concat([a, d], o!, 2), [[[2, 3, 6], 'float32']]);
    const e = uniform([3, 3, 4], -1, 1, 34);
    agree((k, [o]) => k.concat([a, e], o!, 0), [[[5, 3, 4], 'float32']]);
    const ia = ints([2, 2], 0, 9);
    const ib = ints([2, 3], 0, 9, 3);
    agree((k, [o]) => k.concat([ia, ib], o!, 1), [[[2, 5], 'int32']]);
  });

  test('gatherRows / scatterAddRows with repeated indices, D = 1 and D = 300', () => {
    for (const d of [1, 4, 300]) {
      const table = uniform([10, d]);
      const idx = ints([3, 5], 0, 9);
      agree((k, [o]) => k.gatherRows(table, idx, o!), [[[3, 5, d], 'float32']], {}, `gather D=${d}`);
      const g = uniform([3, 5, d], -1, 1, 40);
      agree((k, [o]) => k.scatterAddRows(g, idx, o!), [[[10, d], 'float32']], {}, `scatter D=${d}`);
    }
    const idx = ints([200], 0, 3);
    const g = uniform([200, 300]);
    agree((k, [o]) => k.scatterAddRows(g, idx, o!), [[[4, 300], 'float32']], {}, 'scatter many rows into few');
  });

  test('pickLast / pickLastBackward on [5, 7, 11]', () => {
    const x = uniform([5, 7, 11]);
    const idx = ints([5, 7], 0, 10);
    agree((k, [o]) => k.pickLast(x, idx, o!), [[[5, 7], 'float32']]);
    const g = uniform([5, 7]);
    agree((k, [o]) => k.pickLastBackward(g, idx, o!), [[[5, 7, 11], 'float32']]);
  });

  test('oneHot into float32 and int32', () => {
    const idx = ints([5, 7], 0, 3);
    agree((k, [o]) => k.oneHot(idx, o!), [[[5, 7, 4], 'float32']]);
    agree((k, [o]) => k.oneHot(idx, o!), [[[5, 7, 4], 'int32']]);
  });

  // ---- empty tensors ----

  test('zero-size tensors: elementwise, reductions to the identity, K = 0 matmul, empty batch conv', () => {
    const x = uniform([0, 3]);
    agree((k, [o]) => k.unary(x, o!, 'exp'), [[[0, 3], 'float32']]);
    agree((k, [o]) => k.binary(x, uniform([3]), o!, 'add'), [[[0, 3], 'float32']]);
    for (const op of ['sum', 'max', 'min'] as const) agree((k, [o]) => k.reduce(x, o!, [0], op), [[[1, 3], 'float32']], {}, op);
    agree((k, [o]) => k.reduce(ints([0, 3], 0, 1), o!, [0], 'sum'), [[[1, 3], 'int32']]);
    agree((k, [o]) => k.argmaxLast(uniform([4, 0]), o!), [[[4], 'int32']]);
    agree((k, [o]) => k.matmul(uniform([4, 0]), uniform([0, 5]), o!, false, false), [[[4, 5], 'float32']]);
    const p = P(1, 1, 1);
    agree((k, [o]) => k.conv2d(uniform([0, 5, 5, 3]), uniform([3, 3, 3, 2]), null, o!, p), [[[0, 5, 5, 2], 'float32']]);
    agree((k, [o]) => k.conv2d(uniform([2, 5, 5, 0]), uniform([3, 3, 0, 2]), uniform([2]), o!, p), [[[2, 5, 5, 2], 'float32']]);
    agree((k, [o]) => k.conv2dBackwardWeights(uniform([0, 5, 5, 3]), uniform([0, 5, 5, 2]), o!, p), [[[3, 3, 3, 2], 'float32']]);
    agree((k, [o, b]) => k.conv2dBackwardWeights(uniform([0, 5, 5, 3]), uniform([0, 5, 5, 2]), o!, p, b), [[[3, 3, 3, 2], 'float32'], [[2], 'float32']]);
    agree((k, [o, b]) => k.conv2dBackwardWeights(uniform([2, 5, 5, 0]), uniform([2, 5, 5, 2]), o!, p, b), [[[3, 3, 0, 2], 'float32'], [[2], 'float32']]);
    agree((k, [o]) => k.conv2d(uniform([2, 5, 5, 0]), uniform([3, 3, 0, 2]), uniform([2]), o!, p, true), [[[2, 5, 5, 2], 'float32']]);
  });

  // ---- errors ----

  test('conv2dBackward names a gradient output of the wrong size', () => {
    const p = P(1, 1, 1);
    const x = uniform([1, 4, 4, 3]);
    const w = uniform([3, 3, 3, 2]);
    const dy = uniform([1, 4, 4, 2]);
    assert.throws(() => nat.conv2dBackward(x, dy, w, null, null, empty([3]), p, 0), /conv2dBackward: db holds 3 elements, expected 2/);
    assert.throws(() => nat.conv2dBackward(x, dy, w, empty([1, 4, 4, 2]), null, null, p, 0), /conv2dBackward: dx holds 32 elements, expected 48/);
  });

  test('throws, naming the kernel, when handed float64', () => {
    const x = new Tensor(new Float64Array(6), [2, 3]);
    const out = new Tensor(new Float64Array(6), [2, 3]);
    assert.throws(() => nat.unary(x, out, 'exp'), /unary: x has dtype float64/);
    const w = new Tensor(new Float64Array(9), [1, 1, 3, 3]);
    assert.throws(() => nat.matmul(x, w as View, out, false, false), /matmul: a has dtype float64/);
  });

  test('throws when a buffer does not match its shape or shapes do not fit', () => {
    const a = uniform([2, 3]);
    const bad = { ...a, data: a.data, shape: [4, 3], dtype: a.dtype, storageId: a.storageId, version: a.version } as View;
    assert.throws(() => nat.binary(bad, a, empty([4, 3]), 'add'), /binary: a holds 6 elements but its shape \[4, 3\] needs 12/);
    assert.throws(() => nat.matmul(a, uniform([4, 2]), empty([2, 2]), false, false), /matmul: shapes/);
    assert.throws(() => nat.gatherRows(uniform([3, 2]), new Tensor(new Int32Array([0, 3]), [2]), empty([2, 2])), /gatherRows: idx\[1\] = 3 is out of range/);
  });

  test('every check the kernel table declares names the kernel, the argument and the sizes', () => {
    const x = uniform([2, 3]);
    assert.throws(() => nat.unary(x, empty([4]), 'exp'), /^Error: unary: out holds 4 elements, expected 6 \(as many as x\)$/);
    assert.throws(() => nat.unary(x, empty([2, 3], 'int32'), 'exp'), /unary: out has dtype int32, expected x's float32/);
    assert.throws(() => nat.unary(x, empty([2, 3]), 'cube' as never), /unary: op must be one of 'neg', 'exp', .*, got 'cube'/);
    assert.throws(() => nat.softmaxLast(ints([2, 3], 0, 1), empty([2, 3]), false), /softmaxLast: x has dtype int32, expected float32/);
    assert.throws(() => nat.binary(x, uniform([3, 3]), empty([2, 3]), 'add'), /binary: b \[3, 3\] does not broadcast to out \[2, 3\]/);
    assert.throws(() => nat.argmaxLast(x, empty([3], 'int32')), /argmaxLast: out holds 3 elements, expected 2 \(one per row of x \[2, 3\]\)/);
    assert.throws(() => nat.layerNorm(x, uniform([2]), null, empty([2, 3]), empty([2]), empty([2]), 1e-5, false), /layerNorm: weight holds 2 elements, expected 3 \(the last axis of x \[2, 3\]\)/);
    assert.throws(() => nat.gate(x, empty([2, 2])), /gate: x holds 6 elements, expected 8 \(twice out's\)/);
    assert.throws(() => nat.concat([x, ints([2, 1], 0, 1)], empty([2, 4]), 1), /concat: xs\[1\] has dtype int32, expected out's float32/);
    assert.throws(() => nat.clamp(x, empty([2, 3]), 0, '1' as never), /clamp: hi must be a number/);
    assert.throws(() => nat.dropoutMask(empty([4]), -1, 0, 0.5), /dropoutMask: seed must be a non-negative safe integer/);
    assert.throws(() => nat.lstmScan(uniform([1, 1, 2, 8]), uniform([3, 2, 8]), uniform([2]), uniform([2]), empty([1, 1, 2, 2]), empty([1, 1, 2, 2]), empty([1, 1, 2, 8]), 1.5), /lstmScan: pad must be an integer, got 1.5/);
    // And the checks beside the kernels, under the same name.
    assert.throws(() => nat.reduce(x, empty([2]), [1], 'sum'), /reduce: out \[2\] is not a keep-dims reduction of x \[2, 3\]/);
    assert.throws(() => nat.rowLstmStep({} as never, 0, 0), /rowLstmPlan: /);
  });

  test('a call whose shapes outgrow the frame gets a larger one', () => {
    // 2000 inputs of rank 4 write 10 001 numbers, past the first frame of 4096.
    const xs = Array.from({ length: 2000 }, (_, i) => new Tensor(new Float32Array([i, -i]), [1, 1, 1, 2]));
    const out = empty([1, 1, 2000, 2]);
    nat.concat(xs, out, 2);
    assert.deepEqual(Array.from(out.data.subarray(0, 6)), [0, -0, 1, -1, 2, -2]);
    assert.equal(out.data[3999], -1999);
    nat.binary(uniform([2, 3]), uniform([3]), empty([2, 3]), 'add');
  });
});

describe('the addon against the kernel table', { skip }, () => {
  const addon = createRequire(import.meta.url)('../../../build/Release/arpix_native.node') as NativeAddon;
  const bind = (table: Record<string, unknown>) => () => nativeKernels(addon, table as typeof KERNELS);

  test('binds every kernel of the table it implements', () => {
    // Kernels native leaves to the ts reference (the registry fills them in): the samplers' draw, the KV cache's write.
    const onTs = ['categoricalDraw', 'kvCacheWrite'];
    assert.deepEqual(Object.keys(nativeKernels(addon)).sort(), Object.keys(KERNELS).filter((k) => !onTs.includes(k)).sort());
  });

  test('refuses a C++ kernel whose parameters disagree with its entry, naming the kernel and the argument', () => {
    const [x, out] = KERNELS.unary.args;
    assert.throws(bind({ ...KERNELS, unary: { args: [x, out, { kind: 'number', name: 'op' }] } }),
      /^Error: arpix addon: kernel 'unary': argument 3 'op' is a number in KERNELS but a choice in its C\+\+ function$/);
    assert.throws(bind({ ...KERNELS, unary: { args: [x, out] } }), /kernel 'unary': its entry declares 2 arguments, its C\+\+ function takes 3/);
    const [dy, w, dx, p] = KERNELS.conv2dBackwardData.args;
    assert.throws(bind({ ...KERNELS, conv2dBackwardData: { args: [dy, w, { ...dx, nullable: true }, p] } }),
      /kernel 'conv2dBackwardData': argument 3 'dx' is a nullable tensor in KERNELS but a tensor in its C\+\+ function/);
    assert.throws(bind({ ...KERNELS, conv2d: { args: KERNELS.conv2d.args } }), /kernel 'conv2d': its entry returns nothing, its C\+\+ function an int64_t/);
  });

  test('refuses a table that lacks a registered kernel, or declares what the addon cannot check', () => {
    const { gelu: _, ...withoutGelu } = KERNELS;
    assert.throws(bind(withoutGelu), /kernel 'gelu' is registered in native\/addon.cc but has no entry in KERNELS/);
    const [, out, op] = KERNELS.unary.args;
    assert.throws(bind({ ...KERNELS, unary: { args: [{ kind: 'tensor', name: 'x', dtype: ['bfloat16'] }, out, op] } }), /kernel 'unary': 'x' takes dtype 'bfloat16', which the addon does not know/);
    assert.throws(bind({ ...KERNELS, unary: { args: [KERNELS.unary.args[0], { ...out, size: 'rows of y' }, op] } }), /kernel 'unary': 'out' refers to 'y', which is not another tensor argument/);
  });
});
