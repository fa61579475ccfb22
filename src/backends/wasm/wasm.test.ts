// Every wasm kernel against the ts reference on random inputs: odd sizes (not multiples of the 4
// lanes or the 8-column panels), size-1 axes, broadcasting, strides, dilations and padding, large
// and empty tensors, special values. Outputs start as garbage (NaN under ARPIX_POISON=1), so a
// kernel that leaves an element unwritten fails. The elementwise, normalisation and softmax
// kernels must store the reference's exact bits; the products agree within float32 rounding.
// Skipped, saying why, when the module is not built.

import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import type { BinaryOp, ConvParams, Kernels, RowLSTMStepPlan, UnaryOp } from '../../kernels/contracts.js';
import type { AttentionAttrs } from '../../kernels/attention.js';
import { BINARY_OPS, UNARY_GRAD_OPS, UNARY_OPS } from '../../kernels/contracts.js';
import { broadcastShapes } from '../../tensor/shape.js';
import { Tensor } from '../../tensor/tensor.js';
import { assertClose } from '../../testing/gradcheck.js';
import { agreement, checkBatchedMatmul, checkRowLstmStep, empty, ints, rng, size, sumTol, uniform } from '../../testing/kernels.js';
import { tsBackend } from '../ts/index.js';
import { drawExp } from '../ts/sampling.js';
import { wasmBackend, wasmLoadError, wasmModulePath } from './node.js';
import { WASM_EXPORTS, createWasmBackend, instantiateWasmBackend } from './index.js';
import { KV_TAG, PLAN_TAG, WasmHeap } from './heap.js';
import { readFileSync } from 'node:fs';

const skip = wasmBackend ? false : `wasm backend not built (${wasmLoadError}): run \`npm run build:wasm\` (needs \`apt-get install -y clang-14 lld-14\`)`;
const ref: Kernels = tsBackend;
const wasm = { ...tsBackend, ...wasmBackend } as Kernels;
const agree = agreement(ref, wasm);
/** Exactly the reference's bits. */
const exact = { atol: 0, rtol: 0 };
/** The fused activations' float32 functions (wasm/fmath.h): within a couple of ulp, as native's. */
const activation = { atol: 1e-6, rtol: 2e-6 };

describe('the wasm module', () => {
  test('is built (npm run build:wasm) and exports what the backend calls', { skip }, () => {
    const names = WebAssembly.Module.exports(new WebAssembly.Module(readFileSync(wasmModulePath()))).map((e) => e.name);
    for (const name of WASM_EXPORTS) assert.ok(names.includes(name), `exports ${name}`);
  });

  test('a module that lacks a function is refused with one line saying to rebuild', () => {
    // The smallest valid module: no exports at all.
    const empty = new Uint8Array([0x00, 0x61, 0x73, 0x6d, 0x01, 0x00, 0x00, 0x00]);
    assert.throws(() => createWasmBackend(empty), /the WebAssembly module lacks memory, __heap_base, .*: .*rebuild it with `npm run build:wasm`/);
  });

  test('instantiates asynchronously too, to a backend that computes', { skip }, async () => {
    const b = await instantiateWasmBackend(readFileSync(wasmModulePath()));
    const x = new Tensor(new Float32Array([-1, 0, 2]), [3]);
    const out = empty([3]);
    b.unary!(x, out, 'exp');
    assert.deepEqual(Array.from(out.data), [Math.fround(Math.exp(-1)), 1, Math.fround(Math.exp(2))].map((v) => Math.fround(v)));
  });
});

describe('the module\'s heap', () => {
  test('restamps, counts and releases the blocks of one tag only: KV caches are not step plans', () => {
    const heap = new WasmHeap(new WebAssembly.Memory({ initial: 1 }), 1024);
    const cycle = (calls: number) => { for (let i = 0; i < calls; i++) heap.begin(); };
    heap.begin();
    heap.resident(-1, -1, PLAN_TAG, 4000);
    heap.resident(7, 3, KV_TAG, 1000);
    assert.equal(heap.bytesOf(KV_TAG), 1008);
    assert.equal(heap.bytesOf(PLAN_TAG), 4000);
    assert.equal(heap.restamp(7, 2, KV_TAG, 4), false, 'not the version the block holds');
    assert.equal(heap.restamp(7, 3, PLAN_TAG, 4), false, 'not the tag the block holds');
    assert.equal(heap.restamp(7, 3, KV_TAG, 4), true);
    assert.equal(heap.lookup(7, 3, KV_TAG), null);
    assert.notEqual(heap.lookup(7, 4, KV_TAG), null);
    cycle(10);
    heap.releaseIdle(KV_TAG, 20);
    assert.notEqual(heap.lookup(7, 4, KV_TAG), null, 'used 10 calls ago: kept');
    cycle(30);
    heap.releaseIdle(KV_TAG, 20);
    assert.equal(heap.lookup(7, 4, KV_TAG), null, 'idle for 30 calls: released');
    assert.notEqual(heap.lookup(-1, -1, PLAN_TAG), null, 'the plan, idle as long, is another tag\'s');
    assert.deepEqual(heap.residentSize(), { blocks: 1, bytes: 4000 });
  });
});

describe('wasm backend vs ts reference', { skip }, () => {
  // ---- elementwise: the same bits as the reference ----

  const unaryInput: Partial<Record<UnaryOp, [number, number]>> = {
    log: [0.05, 20], sqrt: [0, 9], rsqrt: [0.05, 9], reciprocal: [0.1, 4],
    sigmoid: [-40, 40], softplus: [-40, 40], logSigmoid: [-40, 40], tanh: [-6, 6], exp: [-20, 20], elu: [-5, 5],
  };
  for (const op of UNARY_OPS) {
    test(`unary ${op}: [5, 7, 3], [1], [40001] — the reference's bits`, () => {
      const [lo, hi] = unaryInput[op] ?? [-3, 3];
      for (const shape of [[5, 7, 3], [1], [40001]]) {
        const x = uniform(shape, lo, hi, 3);
        if (op === 'sign' || op === 'relu') x.data[0] = 0;
        agree((k, [o]) => k.unary(x, o!, op), [[shape, 'float32']], exact, `${op} ${shape}`);
      }
    });
  }

  test('unary special values: ±Infinity, NaN, ±0, overflow and underflow edges, subnormals', () => {
    const v = [NaN, Infinity, -Infinity, 0, -0, 88.7, 88.8, -87.3, -104, 1e-8, -1e-8, 0.6249, 0.6251, -0.6251, 20, -20, 50, -50, 1e-40, -1e-40, 3e38, 0.7, -0.7, 22.5, -22.5];
    const x = new Tensor(Float32Array.from(v), [v.length]);
    for (const op of UNARY_OPS) agree((k, [o]) => k.unary(x, o!, op), [[[v.length], 'float32']], exact, op);
  });

  test('unary on int32 runs on the reference', () => {
    const x = ints([6, 5], -50, 50);
    for (const op of ['neg', 'abs', 'sign', 'square'] as const) agree((k, [o]) => k.unary(x, o!, op), [[[6, 5], 'int32']], {}, op);
  });

  test('clamp float32 [5, 7] and [50001], with NaN', () => {
    for (const shape of [[5, 7], [50001]]) {
      const x = uniform(shape, -2, 2);
      x.data[1] = NaN;
      agree((k, [o]) => k.clamp(x, o!, -0.5, 0.75), [[shape, 'float32']], exact);
    }
  });

  const broadcastPairs: [number[], number[]][] = [
    [[5, 7], [5, 7]], [[5, 7], []], [[], [5, 7]], [[5, 7], [1]], [[2, 5, 7, 3], [3]], [[5, 1], [1, 7]],
    [[2, 1, 7], [5, 1]], [[1, 5, 1, 3], [4, 1, 6, 1]], [[3], [4, 1]], [[4, 64], [64]], [[4, 192], [192]],
    [[16, 28, 28, 8], [8]], [[16, 1, 28, 8], [16, 28, 1, 8]], [[70001], []], [[], []], [[0, 3], [3]], [[3, 1, 1], [1, 1, 5]],
  ];
  const outShapeOf = (a: readonly number[], b: readonly number[]) => broadcastShapes('binary', a, b);
  for (const op of BINARY_OPS) {
    test(`binary ${op}: same shape, scalars, bias rows, two-sided and large broadcasts — the reference's bits`, () => {
      for (const [sa, sb] of broadcastPairs) {
        const a = uniform(sa, op === 'pow' ? 0.1 : -2, 2, 5);
        const b = uniform(sb, -2, 2, 6);
        if (a.size > 0 && b.size > 0) a.data[0] = b.data[0]!;
        if (a.size > 2 && b.size > 2) { a.data[1] = NaN; b.data[2] = -0; a.data[2] = 0; }
        agree((k, [o]) => k.binary(a, b, o!, op as BinaryOp), [[outShapeOf(sa, sb), 'float32']], exact, `${op} ${JSON.stringify(sa)} ${JSON.stringify(sb)}`);
      }
    });
  }

  test('binary on int32 and comparisons into int32 run on the reference', () => {
    const a = ints([4, 6], -20, 20, 7);
    const b = ints([6], -4, 4, 8);
    for (const op of BINARY_OPS) agree((k, [o]) => k.binary(a, b, o!, op), [[[4, 6], 'int32']], {}, op);
    const af = uniform([5, 7]), bf = uniform([7], -1, 1, 10);
    agree((k, [o]) => k.binary(af, bf, o!, 'greater'), [[[5, 7], 'int32']], {});
  });

  const reduceCases: [number[], number[]][] = [
    [[5, 7, 3], [2]], [[5, 7, 3], [0]], [[5, 7, 3], [0, 1]], [[5, 7, 3], [1]], [[5, 7, 3], [0, 2]], [[5, 7, 3], [0, 1, 2]],
    [[1, 5, 1, 3], [1]], [[2, 3, 4, 5], [1, 3]], [[32, 28, 28, 1], [1, 2, 3]], [[64, 28, 28, 8], [3]], [[8, 28, 28, 16], [1, 2]], [[4, 1], [1]], [[0, 3], [0]], [[], []],
  ];
  for (const op of ['sum', 'max', 'min'] as const) {
    test(`reduce ${op}: last, leading, middle and mixed axes, size-1 axes, large, empty — the reference's bits`, () => {
      for (const [shape, axes] of reduceCases) {
        const x = uniform(shape, -1, 1, 12);
        if (x.size > 3) x.data[3] = NaN;
        const os = shape.map((d, i) => (axes.includes(i) ? 1 : d));
        agree((k, [o]) => k.reduce(x, o!, axes, op), [[os, 'float32']], exact, `${op} ${JSON.stringify(shape)} ${JSON.stringify(axes)}`);
      }
    });
  }

  // ---- fused activations: float32 within a couple of ulp ----

  test('gate, gatedResidual, concatElu: odd channels, a large tensor, tails and special values', () => {
    for (const [rows, c] of [[2 * 5 * 7, 3], [1, 1], [16, 128], [4 * 28, 33]] as const) {
      const x = uniform([rows, 2 * c], -40, 40, 50);
      const specials = [0, -0, Infinity, -Infinity, NaN, 1e-30, 88, -88, 100, -100, 1e-7, 20];
      specials.forEach((v, i) => { if (i < x.size) x.data[i] = v; });
      agree((k, [o]) => k.gate(x, o!), [[[rows, c], 'float32']], activation, 'gate');
      const r = uniform([rows, c], -2, 2, 51);
      agree((k, [o]) => k.gatedResidual(r, x, o!), [[[rows, c], 'float32']], activation, 'gatedResidual');
      const xs = uniform([rows, c], -6, 6, 52);
      xs.data.set([0, -0, NaN, Infinity, -Infinity, 1e-30, -1e-30, -90, 90].slice(0, xs.size));
      agree((k, [o]) => k.concatElu(xs, o!), [[[rows, 2 * c], 'float32']], activation, 'concatElu');
      const g = uniform([rows, c], -12, 12, 53);
      g.data.set([0, -0, NaN, Infinity, -Infinity, 1e-30, 1e-5, -1e-5, 9.5, -10.5].slice(0, g.size));
      agree((k, [o]) => k.unary(g, o!, 'tanh'), [[[rows, c], 'float32']], exact, 'unary tanh (double precision, exact)');
      agree((k, [o]) => k.gate(new Tensor(Float32Array.from([...g.data, ...g.data]), [rows, 2 * c]), o!), [[[rows, c], 'float32']], activation, 'gate over tanh\'s tails');
    }
  });

  test('the float32 activations stay within 3 ulp of the reference everywhere, tails and subnormals included', () => {
    // Distance in units in the last place between two floats of one sign (bits as integers).
    const bits = (v: number) => new Int32Array(Float32Array.of(v).buffer)[0]!;
    const ulps = (a: number, b: number) => (Object.is(a, b) || a === b ? 0 : Math.sign(a) !== Math.sign(b) ? Infinity : Math.abs(bits(a) - bits(b)));
    const n = 200_001;
    const sweep = new Float32Array(n);
    for (let i = 0; i < n; i++) sweep[i] = -100 + (200 * i) / (n - 1);
    const cases: [string, (k: Kernels, x: Tensor, o: Tensor) => void, number][] = [
      // gate(a, b) with a = +40 is σ(b) (tanh 40 = 1), with b = +40 is tanh(a) (σ(40) = 1 in float32)
      ['sigmoid', (k, x, o) => k.gate(new Tensor(Float32Array.from([...new Array<number>(x.size).fill(40), ...x.data]), [1, 2 * x.size]), o), 1],
      ['tanh', (k, x, o) => k.gate(new Tensor(Float32Array.from([...x.data, ...new Array<number>(x.size).fill(40)]), [1, 2 * x.size]), o), 1],
      ['elu', (k, x, o) => k.concatElu(x, o), 2],
    ];
    for (const [name, run, width] of cases) {
      const x = new Tensor(sweep, [1, n]);
      const expected = empty([1, width * n]), actual = empty([1, width * n]);
      run(ref, x, expected);
      run(wasm, x, actual);
      let worst = 0, at = 0;
      for (let i = 0; i < expected.size; i++) {
        const d = ulps(actual.data[i]!, expected.data[i]!);
        if (d > worst) [worst, at] = [d, i];
      }
      assert.ok(worst <= 3, `${name}: ${worst} ulp at x = ${sweep[at % n]} (got ${actual.data[at]}, expected ${expected.data[at]})`);
    }
  });

  for (const log of [false, true]) {
    test(`softmaxLast (log=${log}): [5, 7, 11], large logits, one class, [2048, 257]`, () => {
      for (const [shape, lo, hi] of [[[5, 7, 11], -3, 3], [[4, 9], -300, 300], [[6, 1], -1, 1], [[2048, 257], -10, 10]] as const) {
        const x = uniform(shape, lo, hi, 13);
        agree((k, [o]) => k.softmaxLast(x, o!, log), [[shape, 'float32']], exact, JSON.stringify(shape));
      }
    });
  }

  test('softmaxCrossEntropy: [35, 11], large logits, [4096, 256]', () => {
    for (const [J, K, lo, hi] of [[35, 11, -3, 3], [9, 4, -300, 300], [4096, 256, -8, 8]] as const) {
      const x = uniform([J, K], lo, hi, 52);
      const t = ints([J], 0, K - 1, 53);
      agree((k, [loss, probs]) => k.softmaxCrossEntropy(x, t, loss!, probs!), [[[J], 'float32'], [[J, K], 'float32']], exact, `sce ${J}x${K}`);
    }
  });

  test('layerNorm and RMS norm, with and without weight and bias: [4, 64], [3, 5, 7], [1, 1]', () => {
    for (const shape of [[4, 64], [3, 5, 7], [1, 1], [300, 129]]) {
      const c = shape[shape.length - 1]!, rows = size(shape) / c;
      const x = uniform(shape, -3, 3, 70), wgt = uniform([c], 0.5, 1.5, 71), b = uniform([c], -1, 1, 72);
      for (const rms of [false, true]) {
        for (const [wv, bv] of [[wgt, b], [null, null], [wgt, null]] as const) {
          agree((k, [o, m, r]) => {
            if (rms) m!.data.fill(7); // left untouched by RMS norm
            k.layerNorm(x, wv, rms ? null : bv, o!, m!, r!, 1e-5, rms);
          }, [[shape, 'float32'], [[rows], 'float32'], [[rows], 'float32']], exact, `${shape} rms=${rms} w=${!!wv} b=${!!bv}`);
        }
      }
    }
  });

  test('gelu, exact form (the same bits) and tanh form (float32): [16, 256] and [7, 3] with tails', () => {
    for (const shape of [[16, 256], [7, 3]]) {
      const x = uniform(shape, -8, 8, 80);
      x.data[0] = 0; x.data[1] = -0; x.data[2] = NaN; x.data[3] = 5.5;
      agree((k, [o]) => k.gelu(x, o!, false), [[shape, 'float32']], exact, 'exact');
      agree((k, [o]) => k.gelu(x, o!, true), [[shape, 'float32']], activation, 'tanh');
    }
  });

  // ---- products: within float32 rounding ----

  test('matmul 2-D, all four transpositions, odd sizes, one row, one column', () => {
    for (const [m, kk, n] of [[5, 7, 3], [1, 1, 1], [4, 64, 192], [3, 9, 17], [13, 33, 8], [1, 300, 1]]) {
      for (const ta of [false, true]) {
        for (const tb of [false, true]) {
          const a = uniform(ta ? [kk!, m!] : [m!, kk!], -1, 1, 14);
          const b = uniform(tb ? [n!, kk!] : [kk!, n!], -1, 1, 15);
          agree((k, [o]) => k.matmul(a, b, o!, ta, tb), [[[m!, n!], 'float32']], sumTol(kk!), `[${m}, ${kk}] x [${kk}, ${n}] ta=${ta} tb=${tb}`);
        }
      }
    }
  });

  test('matmul batched [4, ·, ·], with a 2-D operand shared across the batch, large, and K = 0', () => {
    checkBatchedMatmul(agree);
    agree((k, [o]) => k.matmul(uniform([4, 0]), uniform([0, 5]), o!, false, false), [[[4, 5], 'float32']]);
  });

  test('matmul with resident weights: the second and later calls reuse the packed copy, a version bump repacks', () => {
    const b = uniform([192, 64], -1, 1, 90); // a Linear's weight [out, in], used with transB
    const expected = empty([4, 192]), actual = empty([4, 192]);
    for (let step = 0; step < 4; step++) {
      const a = uniform([4, 64], -1, 1, 91 + step);
      ref.matmul(a, b, expected, false, true);
      wasm.matmul(a, b, actual, false, true);
      assertClose(actual.data, expected.data, { ...sumTol(64), label: `step ${step}` });
      if (step === 2) {
        // An optimiser step: an in-place write with a version bump must be seen.
        b.data.forEach((v, i) => { b.data[i] = -2 * v; });
        b.bumpVersion();
      }
    }
    assert.ok(wasmBackend!.residentSize().blocks >= 1, 'the weight became resident');
  });

  // ---- convolutions ----

  interface ConvCase { name: string; x: number[]; k: [number, number]; cout: number; p: ConvParams; out?: [number, number] }
  const P = (s: number, pt: number, pl: number, d = 1, sw = s, dw = d): ConvParams => ({ strideH: s, strideW: sw, padTop: pt, padLeft: pl, dilationH: d, dilationW: dw });
  const convCases: ConvCase[] = [
    { name: '3×3 same, [2, 5, 7, 3] → 4', x: [2, 5, 7, 3], k: [3, 3], cout: 4, p: P(1, 1, 1) },
    { name: '1×1, [3, 4, 4, 8] → 5', x: [3, 4, 4, 8], k: [1, 1], cout: 5, p: P(1, 0, 0) },
    { name: '3×3 stride 2 on even size, [2, 6, 8, 3] → 4', x: [2, 6, 8, 3], k: [3, 3], cout: 4, p: P(2, 0, 0) },
    { name: '3×3 stride 2 pad 1, [1, 7, 5, 2] → 3', x: [1, 7, 5, 2], k: [3, 3], cout: 3, p: P(2, 1, 1) },
    { name: '3×3 dilation 2, [2, 9, 8, 3] → 2', x: [2, 9, 8, 3], k: [3, 3], cout: 2, p: P(1, 2, 2, 2) },
    { name: 'down-shifted 2×3, [2, 5, 7, 3] → 4', x: [2, 5, 7, 3], k: [2, 3], cout: 4, p: P(1, 1, 1), out: [5, 7] },
    { name: 'padding wider than the kernel, [1, 5, 5, 2] → 3', x: [1, 5, 5, 2], k: [3, 3], cout: 3, p: P(1, 3, 3) },
    { name: 'asymmetric stride 1×2, dilation 2×1, [2, 7, 9, 5] → 3', x: [2, 7, 9, 5], k: [3, 2], cout: 3, p: P(1, 2, 0, 2, 2, 1) },
    { name: 'Gated PixelCNN row step [4, 2, 28, 64] w[2, 3, 64, 128] dilation 1×2', x: [4, 2, 28, 64], k: [2, 3], cout: 128, p: P(1, 1, 2, 1, 1, 2), out: [1, 28] },
    { name: 'PixelCNN++ row step [4, 2, 28, 64] w[2, 3, 64, 64]', x: [4, 2, 28, 64], k: [2, 3], cout: 64, p: P(1, 1, 1), out: [1, 28] },
    { name: 'first layer [3, 9, 11, 1] 7×7 → 13', x: [3, 9, 11, 1], k: [7, 7], cout: 13, p: P(1, 3, 3) },
    { name: 'PixelCNN++ down-sampling 2×3 stride 2, [2, 8, 8, 9] → 10', x: [2, 8, 8, 9], k: [2, 3], cout: 10, p: P(2, 1, 1), out: [4, 4] },
    { name: 'PixelCNN++ down-right 2×2 stride 2, [2, 7, 7, 9] → 10', x: [2, 7, 7, 9], k: [2, 2], cout: 10, p: P(2, 1, 1), out: [4, 4] },
  ];
  const outOf = (c: ConvCase): number[] => {
    const [n, h, w] = c.x;
    const [kh, kw] = c.k;
    if (c.out) return [n!, c.out[0], c.out[1], c.cout];
    const oh = Math.floor((h! + 2 * c.p.padTop - ((kh - 1) * c.p.dilationH + 1)) / c.p.strideH) + 1;
    const ow = Math.floor((w! + 2 * c.p.padLeft - ((kw - 1) * c.p.dilationW + 1)) / c.p.strideW) + 1;
    return [n!, oh, ow, c.cout];
  };
  for (const c of convCases) {
    test(`conv2d: ${c.name}: plain, bias, accumulate, residual; backward-data`, () => {
      const ys = outOf(c);
      const x = uniform(c.x, -1, 1, 18);
      const w = uniform([c.k[0], c.k[1], c.x[3]!, c.cout], -1, 1, 19);
      const bias = uniform([c.cout], -1, 1, 20);
      const kSum = c.k[0] * c.k[1] * c.x[3]!;
      agree((k, [o]) => k.conv2d(x, w, null, o!, c.p), [[ys, 'float32']], sumTol(kSum), 'forward');
      agree((k, [o]) => k.conv2d(x, w, bias, o!, c.p), [[ys, 'float32']], sumTol(kSum), 'forward+bias');
      agree((k, [o]) => k.conv2d(x, w, bias, o!, c.p), [[ys, 'float32']], sumTol(kSum), 'forward+bias, weights resident');
      // Accumulating reads out: both sides start from the same garbage (not NaN here).
      agree((k, [o]) => { o!.data.fill(0.25); k.conv2d(x, w, bias, o!, c.p, true); }, [[ys, 'float32']], sumTol(kSum), 'forward+bias, accumulated');
      const residual = uniform(ys, -3, 3, 22);
      agree((k, [o]) => k.conv2d(x, w, bias, o!, c.p, false, false, residual), [[ys, 'float32']], sumTol(kSum, 3), 'forward+bias+residual');
      assert.equal(wasm.conv2d(x, w, null, empty(ys), c.p, false, true), 0, 'nothing is kept for a backward pass');
      // The data gradient: also the forward pass of a transposed convolution (PixelCNN++'s up-sampling).
      const dy = uniform(ys, -1, 1, 21);
      agree((k, [o]) => k.conv2dBackwardData(dy, w, o!, c.p), [[c.x, 'float32']], sumTol(c.k[0] * c.k[1] * c.cout), 'backward-data');
      agree((k, [o]) => k.conv2dBackwardData(dy, w, o!, c.p), [[c.x, 'float32']], sumTol(c.k[0] * c.k[1] * c.cout), 'backward-data, weights resident');
    });
  }

  for (const c of convCases) {
    test(`conv2d's gradients: ${c.name}: backward-weights with and without the bias gradient, conv2dBackward whole and in parts`, () => {
      const ys = outOf(c);
      const ws = [c.k[0], c.k[1], c.x[3]!, c.cout];
      const x = uniform(c.x, -1, 1, 23);
      const w = uniform(ws, -1, 1, 24);
      const dy = uniform(ys, -1, 1, 25);
      // dw sums a product per output pixel, dx one per tap and output channel; db adds dy as it is: the reference's bits.
      const wTol = sumTol(ys[0]! * ys[1]! * ys[2]!), xTol = sumTol(c.k[0] * c.k[1] * c.cout);
      agree((k, [dw]) => k.conv2dBackwardWeights(x, dy, dw!, c.p), [[ws, 'float32']], wTol, 'backward-weights');
      agree((k, [dw, db]) => k.conv2dBackwardWeights(x, dy, dw!, c.p, db!), [[ws, 'float32'], [[c.cout], 'float32']], wTol, 'backward-weights + bias');
      agree((k, [, db]) => k.conv2dBackwardWeights(x, dy, empty(ws), c.p, db!), [[ws, 'float32'], [[c.cout], 'float32']], exact, 'the bias gradient');
      agree((k, [dx, dw, db]) => k.conv2dBackward(x, dy, w, dx!, dw!, db!, c.p, 0), [[c.x, 'float32'], [ws, 'float32'], [[c.cout], 'float32']], { atol: Math.max(wTol.atol, xTol.atol), rtol: Math.max(wTol.rtol, xTol.rtol) }, 'conv2dBackward');
      agree((k, [dx]) => k.conv2dBackward(x, dy, w, dx!, null, null, c.p, 0), [[c.x, 'float32']], xTol, 'conv2dBackward, dx only');
      agree((k, [dw]) => k.conv2dBackward(x, dy, w, null, dw!, null, c.p, 0), [[ws, 'float32']], wTol, 'conv2dBackward, dw only');
      agree((k, [db]) => k.conv2dBackward(x, dy, w, null, null, db!, c.p, 0), [[[c.cout], 'float32']], exact, 'conv2dBackward, db only');
      // The parts are the whole's: dx is backward-data's, dw and db backward-weights'.
      const whole = [empty(c.x), empty(ws), empty([c.cout])], parts = [empty(c.x), empty(ws), empty([c.cout])];
      wasm.conv2dBackward(x, dy, w, whole[0]!, whole[1]!, whole[2]!, c.p, 0);
      wasm.conv2dBackwardData(dy, w, parts[0]!, c.p);
      wasm.conv2dBackwardWeights(x, dy, parts[1]!, c.p, parts[2]!);
      whole.forEach((t, i) => assert.deepEqual(Array.from(t.data), Array.from(parts[i]!.data), `part ${i}`));
    });
  }

  test('conv2d\'s filter gradient: the training model\'s 3×3 layer [32, 28, 28, 16], and each element\'s bits do not depend on the other channels', () => {
    const p = P(1, 1, 1);
    const x = uniform([32, 28, 28, 16], -1, 1, 26), dy = uniform([32, 28, 28, 16], -1, 1, 27);
    agree((k, [dw, db]) => k.conv2dBackwardWeights(x, dy, dw!, p, db!), [[[3, 3, 16, 16], 'float32'], [[16], 'float32']], sumTol(32 * 28 * 28), 'training layer');
    // An element sums its own products in pixel order, whatever the blocks of rows and columns it
    // sits in: input channel 6 and output channels 3 … 5 alone give the same bits.
    const xs = uniform([3, 13, 17, 9], -1, 1, 28), dys = uniform([3, 13, 17, 11], -1, 1, 29);
    const all = empty([3, 3, 9, 11]);
    wasm.conv2dBackwardWeights(xs, dys, all, p);
    const pick = (t: Tensor, from: number, count: number): Tensor => {
      const c = t.shape[3]!, rows = t.size / c;
      const out = new Float32Array(rows * count);
      for (let r = 0; r < rows; r++) for (let j = 0; j < count; j++) out[r * count + j] = t.data[r * c + from + j]!;
      return new Tensor(out, [...t.shape.slice(0, 3), count]);
    };
    const one = empty([3, 3, 1, 3]);
    wasm.conv2dBackwardWeights(pick(xs, 6, 1), pick(dys, 3, 3), one, p);
    for (let t = 0; t < 9; t++) {
      for (let o = 0; o < 3; o++) assert.equal(one.data[t * 3 + o], all.data[(t * 9 + 6) * 11 + 3 + o], `tap ${t}, output channel ${3 + o}`);
    }
  });

  test('conv2d\'s gradients on empty batches and zero input channels; bf16 and float64 run on the reference', () => {
    const p = P(1, 1, 1);
    const dw = [[3, 3, 3, 2], 'float32'] as [number[], 'float32'], db = [[2], 'float32'] as [number[], 'float32'];
    agree((k, [gw, gb]) => k.conv2dBackwardWeights(uniform([0, 5, 5, 3]), uniform([0, 5, 5, 2]), gw!, p, gb!), [dw, db], exact, 'empty batch');
    agree((k, [gx, gw, gb]) => k.conv2dBackward(uniform([2, 5, 5, 0]), uniform([2, 5, 5, 2]), uniform([3, 3, 0, 2]), gx!, gw!, gb!, p, 0), [[[2, 5, 5, 0], 'float32'], [[3, 3, 0, 2], 'float32'], db], exact, 'no input channels');
    const x = uniform([2, 5, 6, 3], -1, 1, 40), w = uniform([3, 3, 3, 2], -1, 1, 41), dy = uniform([2, 5, 6, 2], -1, 1, 42);
    agree((k, [gx, gw, gb]) => k.conv2dBackward(x, dy, w, gx!, gw!, gb!, { ...p, bf16: true }, 0), [[[2, 5, 6, 3], 'float32'], dw, db], exact, 'bf16');
    const f64 = (t: Tensor) => new Tensor(Float64Array.from(t.data), t.shape);
    agree((k, [gw, gb]) => k.conv2dBackwardWeights(f64(x), f64(dy), gw!, p, gb!), [[[3, 3, 3, 2], 'float64'], [[2], 'float64']], exact, 'float64');
  });

  test('unaryBackward: every op, [5, 7, 3], [1], [6], [40001] and special values — the reference\'s bits', () => {
    const specials = [0, -0, NaN, Infinity, -Infinity, 1e-30, -1e-30, 88.7, -88.7, 1e-40, 20, -20, 50, -50, 0.5, -0.5];
    for (const op of UNARY_GRAD_OPS) {
      for (const shape of [[5, 7, 3], [1], [6], [40001]]) {
        const x = uniform(shape, -8, 8, 43);
        const g = uniform(shape, -3, 3, 44);
        specials.forEach((v, i) => { if (i < x.size) x.data[i] = v; if (i + 3 < g.size) g.data[i + 3] = v; });
        const y = empty(shape);
        ref.unary(x, y, op);
        agree((k, [dx]) => k.unaryBackward(x, y, g, dx!, op), [[shape, 'float32']], exact, `${op} ${shape}`);
      }
    }
  });

  test('conv2d on empty batches and zero input channels', () => {
    const p = P(1, 1, 1);
    agree((k, [o]) => k.conv2d(uniform([0, 5, 5, 3]), uniform([3, 3, 3, 2]), null, o!, p), [[[0, 5, 5, 2], 'float32']]);
    agree((k, [o]) => k.conv2d(uniform([2, 5, 5, 0]), uniform([3, 3, 0, 2]), uniform([2]), o!, p), [[[2, 5, 5, 2], 'float32']]);
  });

  // ---- attention ----

  const patterns: [string, AttentionAttrs['pattern'], number][] = [
    ['causal', { kind: 'causal' }, 37],
    ['local1d', { kind: 'local1d', block: 8, memory: 8 }, 37],
    ['local2d raster', { kind: 'local2d', height: 6, width: 6, blockHeight: 2, blockWidth: 3, memoryHeight: 2, memoryWidth: 3, order: 'raster' }, 36],
    ['local2d block', { kind: 'local2d', height: 6, width: 6, blockHeight: 2, blockWidth: 3, memoryHeight: 2, memoryWidth: 3, order: 'block' }, 36],
  ];
  for (const [name, pattern, l] of patterns) {
    test(`attentionStep and attention (${name}): heads of 16, 5, 1, 8 and 36 channels, every position`, () => {
      for (const [n, heads, d] of [[3, 4, 16], [2, 2, 5], [1, 3, 1], [2, 3, 8], [1, 1, 36]] as const) {
        const c = heads * d;
        const a: AttentionAttrs = { heads, scale: 1 / Math.sqrt(d), pattern };
        const q = uniform([n, c], -2, 2, 30), k = uniform([n, l, c], -2, 2, 31), v = uniform([n, l, c], -2, 2, 32);
        for (let position = 0; position < l; position++) {
          agree((kk, [o]) => kk.attentionStep(q, k, v, o!, position, a), [[[n, c], 'float32']], sumTol(d + l), `${name} n${n} h${heads} d${d} position ${position}`);
        }
        const qkv = uniform([n, l, 3 * c], -2, 2, 33);
        agree((kk, [o, lse]) => kk.attention(qkv, o!, lse!, a), [[[n, l, c], 'float32'], [[n, heads, l], 'float32']], sumTol(d + l), `${name} attention n${n} h${heads} d${d}`);
      }
    });
  }

  test('kvCacheWrite keeps the caches resident for attentionStep: the bits of reading copied rows at every position, through an outside write that bumps the version, a slide and a fresh cache', () => {
    const backend = createWasmBackend(readFileSync(wasmModulePath())); // its own heap, so its blocks can be counted
    const kw = { ...tsBackend, ...backend } as Kernels;
    for (const [name, pattern] of patterns.slice(0, 3)) {
      const n = 3, heads = 2, d = 16, c = heads * d, t = 36;
      const a: AttentionAttrs = { heads, scale: 1 / Math.sqrt(d), pattern };
      const k = empty([n, t, c]), v = empty([n, t, c]);
      k.data.fill(0);
      v.data.fill(0);
      backend.clearCaches();
      for (let p = 0; p < t; p++) {
        const label = `${name} position ${p}`;
        kw.kvCacheWrite(uniform([n, 3 * c], -2, 2, 600 + p), k, v, p);
        k.bumpVersion(); // as the op does
        v.bumpVersion();
        assert.equal(backend.residentSize().blocks, 2, `${label}: k and v are resident`);
        if (p === 20) {
          // An outside write (the Image Transformer's slide moves every row): it bumps the version, so it is seen.
          for (let i = 0; i < n * t * c; i++) k.data[i] = -k.data[i]!;
          k.bumpVersion();
        }
        const q = uniform([n, c], -2, 2, 700 + p);
        const out = empty([n, c]);
        kw.attentionStep(q, k, v, out, p, a);
        // The same kernel reading copied rows (caches it never saw written), and the reference.
        const copied = empty([n, c]);
        kw.attentionStep(q, new Tensor(Float32Array.from(k.data), k.shape), new Tensor(Float32Array.from(v.data), v.shape), copied, p, a);
        assert.deepEqual(Array.from(out.data), Array.from(copied.data), `${label}: other bits than from copied rows`);
        const want = empty([n, c]);
        ref.attentionStep(q, k, v, want, p, a);
        assertClose(out.data, want.data, { ...sumTol(d + t), label });
      }
      // A write that does not bump the version breaks the rule this relies on, and is not seen:
      // proof that attentionStep read the resident copy.
      kw.kvCacheWrite(uniform([n, 3 * c], -2, 2, 800), k, v, t - 1);
      k.bumpVersion();
      v.bumpVersion();
      for (let i = 0; i < n * t * c; i++) v.data[i] = v.data[i]! + 1;
      const q = uniform([n, c], -2, 2, 801);
      const stale = empty([n, c]), fresh = empty([n, c]);
      kw.attentionStep(q, k, v, stale, t - 1, a);
      v.bumpVersion();
      kw.attentionStep(q, k, v, fresh, t - 1, a);
      const want = empty([n, c]);
      ref.attentionStep(q, k, v, want, t - 1, a);
      assertClose(fresh.data, want.data, { ...sumTol(d + t), label: `${name} after the bump` });
      assert.notDeepEqual(Array.from(stale.data), Array.from(fresh.data), `${name}: the resident copy was read`);
    }
  });

  test('kvCacheWrite: caches beyond the budget are not kept, and float64 caches run on the reference', () => {
    const backend = createWasmBackend(readFileSync(wasmModulePath()));
    const kw = { ...tsBackend, ...backend } as Kernels;
    // 2 × 96 MiB exceeds the half of the resident budget caches may take: one is kept, the other copied per step.
    const n = 1, t = 3 * 2 ** 20, c = 8;
    const k = empty([n, t, c]), v = empty([n, t, c]);
    kw.kvCacheWrite(uniform([n, 3 * c], -1, 1, 900), k, v, 5);
    assert.equal(backend.residentSize().blocks, 1);
    const a: AttentionAttrs = { heads: 1, scale: 0.5, pattern: { kind: 'local1d', block: 4, memory: 4 } };
    k.bumpVersion();
    v.bumpVersion();
    const q = uniform([n, c], -1, 1, 901);
    agree((kk, [o]) => kk.attentionStep(q, k, v, o!, 5, a), [[[n, c], 'float32']], sumTol(8));
    const k64 = new Tensor(new Float64Array(2 * 4 * 3), [2, 4, 3]), v64 = new Tensor(new Float64Array(2 * 4 * 3), [2, 4, 3]);
    const qkv64 = new Tensor(Float64Array.from({ length: 2 * 9 }, (_, i) => i), [2, 9]);
    kw.kvCacheWrite(qkv64, k64, v64, 2);
    assert.deepEqual(Array.from(k64.data.subarray(6, 9)), [3, 4, 5]);
    assert.deepEqual(Array.from(v64.data.subarray(18, 21)), [15, 16, 17]);
  });

  test('attention with the full pattern, and a bf16 request runs on the reference', () => {
    const a: AttentionAttrs = { heads: 2, scale: 0.25, pattern: { kind: 'full' } };
    const qkv = uniform([2, 9, 3 * 8], -2, 2, 34);
    agree((kk, [o, lse]) => kk.attention(qkv, o!, lse!, a), [[[2, 9, 8], 'float32'], [[2, 2, 9], 'float32']], sumTol(9));
    agree((kk, [o, lse]) => kk.attention(qkv, o!, lse!, { ...a, bf16: true }), [[[2, 9, 8], 'float32'], [[2, 2, 9], 'float32']], sumTol(9));
    // Longer sequences: many key panels, a last one cut short, every query block.
    for (const pattern of [{ kind: 'causal' }, { kind: 'full' }, { kind: 'local1d', block: 32, memory: 16 }] as const) {
      const big = uniform([2, 203, 3 * 64], -2, 2, 35);
      const ab: AttentionAttrs = { heads: 4, scale: 0.25, pattern };
      agree((kk, [o, lse]) => kk.attention(big, o!, lse!, ab), [[[2, 203, 64], 'float32'], [[2, 4, 203], 'float32']], sumTol(203), `[2, 203, 192] ${pattern.kind}`);
    }
  });

  // ---- recurrences ----

  test('lstmScan: small and odd shapes, k = 3, 2, 1, pad 0 and 1, and a Row-LSTM-sized [28, 32, 28, 4·16]', () => {
    const cases: [number, number, number, number, number, number][] = [[4, 3, 5, 3, 3, 1], [6, 5, 4, 2, 2, 1], [3, 1, 7, 5, 1, 0], [5, 7, 6, 4, 3, 0], [28, 32, 28, 16, 3, 1]];
    for (const [t, b, l, h, k, pad] of cases) {
      const xg = uniform([t, b, l, 4 * h], -2, 2, 61), w = uniform([k, h, 4 * h], -0.5, 0.5, 62);
      const h0 = uniform([h], -1, 1, 63), c0 = uniform([h], -1, 1, 64);
      const st: [number[], 'float32'][] = [[[t, b, l, h], 'float32'], [[t, b, l, h], 'float32'], [[t, b, l, 4 * h], 'float32']];
      agree((kk, [hs, cs, acts]) => kk.lstmScan(xg, w, h0, c0, hs!, cs!, acts!, pad), st, sumTol(k * h), `lstmScan [${t}, ${b}, ${l}, ${4 * h}] k ${k} pad ${pad}`);
    }
  });

  // ---- Row LSTM's cached step ----

  test('rowLstmStep: two rows of pixels, edges included, for odd h, k = 1, 3, 5, masked and unmasked taps', () => {
    checkRowLstmStep((plan, y, x) => wasm.rowLstmStep(plan, y, x), (plan, y, x) => ref.rowLstmStep(plan, y, x));
  });

  test('rowLstmStep names a plan field of the wrong size and a pixel off the image', () => {
    const f = (count: number) => new Float32Array(count);
    const dense = (cin: number, cout: number) => ({ weight: f(cin * cout), bias: f(cout), cin, cout });
    const plan: RowLSTMStepPlan = {
      n: 1, height: 2, width: 2, channels: 1, hidden: 2, kernel: 3, image: f(4), firstTaps: Int32Array.from([0, -1]), first: dense(1, 4),
      rows: [f(2 * 4)], layers: [{ inputTaps: Int32Array.from([-1, 0]), gates: f((2 * 4 + 3 * 2) * 8), gateBias: f(8), output: dense(2, 4), prevH: f(4), prevC: f(4), curH: f(4), curC: f(3) }],
      skip: dense(4, 4), outHidden: dense(4, 3), out: dense(3, 2), logits: f(2),
    };
    assert.throws(() => wasm.rowLstmStep(plan, 0, 0), /rowLstmPlan: curC holds 3 elements, expected 4/);
    const good = { ...plan, layers: [{ ...plan.layers[0]!, curC: f(4) }] };
    assert.throws(() => wasm.rowLstmStep(good, 2, 0), /rowLstmStep: pixel \(2, 0\) is off the image/);
    wasm.rowLstmStep(good, 1, 1);
    assert.deepEqual(Array.from(good.logits), [0, 0]);
  });

  // ---- the samplers' draw: the reference's index for every row ----

  test('categoricalDraw: the reference\'s index for every row — ties, huge negatives, wide spans, special values, temperatures, 2 … 512 levels', () => {
    const r = rng(77);
    const kinds = ['random', 'peaked', 'ties', 'huge negatives', 'wide span', 'special'] as const;
    const row = (kind: (typeof kinds)[number], levels: number): number[] => Array.from({ length: levels }, (_, k) => {
      switch (kind) {
        case 'random': return 12 * r() - 6;
        case 'peaked': return k === Math.floor(levels / 3) ? 9 : 4 * r() - 2;
        case 'ties': return [-1, 0, 2, 2][Math.floor(4 * r())]!;
        case 'huge negatives': return r() < 0.5 ? [-1e30, -3.4e38, -Infinity, -745.5][Math.floor(4 * r())]! : 3 * r();
        case 'wide span': return -1600 * r(); // weights below 2^−1022 and exactly 0: the scalar path
        case 'special': return r() < 0.1 ? [NaN, Infinity][Math.floor(2 * r())]! : 2 * r();
      }
    });
    for (const levels of [2, 3, 5, 256, 512]) {
      for (const temperature of [1, 0.7, 2.5, 0.01]) {
        const at = 2, p = levels + 3, rowsPerKind = 7;
        const logits: number[] = [];
        for (const kind of kinds) {
          for (let j = 0; j < rowsPerKind; j++) logits.push(0.5, -0.5, ...row(kind, levels), 100); // values outside at … at+levels never count
        }
        const rows = logits.length / p;
        const u = Float32Array.from({ length: rows }, (_, j) => (j % 9 === 0 ? 0 : j % 9 === 1 ? 1 - 2 ** -24 : Math.floor(r() * 2 ** 24) / 2 ** 24));
        const x = new Tensor(Float32Array.from(logits), [rows, p]);
        const ut = new Tensor(u, [rows]);
        agree((k, [o]) => k.categoricalDraw(x, ut, o!, at, levels, temperature), [[[rows], 'int32']], exact, `levels ${levels} T ${temperature}`);
        const drawn = empty([rows], 'int32');
        wasm.categoricalDraw(x, ut, drawn, at, levels, temperature);
        const seen = new Set(drawn.data);
        assert.ok(seen.size > Math.min(levels, 3) - 1, `levels ${levels} T ${temperature}: the draws are not all one index (${[...seen].join(', ')})`);
        for (const v of drawn.data) assert.ok(v >= 0 && v < levels, `index ${v} of ${levels} levels`);
      }
    }
  });

  test('the draw\'s exponential has drawExp\'s bits: two lanes and one, halfway roundings of Math.round, subnormal and zero results, NaN', () => {
    const instance = new WebAssembly.Instance(new WebAssembly.Module(readFileSync(wasmModulePath())), {});
    const e = instance.exports as unknown as { memory: WebAssembly.Memory; __heap_base: WebAssembly.Global; draw_exp_f64(x: number, out: number, n: number): void };
    const r = rng(78);
    const xs: number[] = [];
    for (let i = 0; i < 60000; i++) xs.push(-[1, 30, 800][i % 3]! * r());
    // Arguments whose x·log2 e is exactly a half: Math.round takes them up, C's round would not.
    for (let k = 0; k <= 1075; k++) {
      const x0 = -(k + 0.5) / Math.LOG2E;
      for (const x of [x0, x0 * (1 + 2 ** -52), x0 * (1 - 2 ** -52), x0 * (1 + 2 ** -51), x0 * (1 - 2 ** -51)]) if (x * Math.LOG2E === -(k + 0.5)) xs.push(x, -r());
    }
    const halves = xs.length - 60000;
    const special = [0, -0, -745, -745.0000000000001, -744.9999999999999, -708.3964185322641, -708.4, -709.1, -744.44, -Infinity, NaN, -5e-324, -1e-300, -0.34657359027997264, -0.3465735902799727];
    for (const v of special) xs.push(v, -r(), -r(), v); // each in the first and the second lane of a pair
    xs.push(-0.25); // an odd count: the last one scalar
    const n = xs.length;
    const base = e.__heap_base.value as number;
    const need = base + 16 * n + 64;
    if (e.memory.buffer.byteLength < need) e.memory.grow(Math.ceil((need - e.memory.buffer.byteLength) / 65536));
    const xAt = Math.ceil(base / 16) * 16, outAt = xAt + 8 * n + 16 - ((8 * n) % 16);
    new Float64Array(e.memory.buffer, xAt, n).set(xs);
    e.draw_exp_f64(xAt, outAt, n);
    const got = new Float64Array(e.memory.buffer, outAt, n);
    let zeros = 0, subnormal = 0;
    for (let i = 0; i < n; i++) {
      const want = drawExp(xs[i]!);
      if (!Object.is(got[i], want)) assert.fail(`drawExp(${xs[i]}): wasm ${got[i]}, reference ${want}`);
      if (want === 0) zeros++;
      else if (want < 2 ** -1022) subnormal++;
    }
    assert.ok(halves > 500, `found ${halves} halfway arguments`);
    assert.ok(zeros > 100 && subnormal > 100, `${zeros} zero and ${subnormal} subnormal results were compared`);
  });

  test('categoricalDraw of 16 rows × 256 levels, as a sampler calls it, and of float64 logits on the reference', () => {
    const x = uniform([16, 3 * 256], -8, 8, 91);
    const u = new Tensor(Float32Array.from(uniform([16], 0, 1, 92).data, (v) => Math.floor(v * 2 ** 24) / 2 ** 24), [16]);
    for (const at of [0, 256, 512]) agree((k, [o]) => k.categoricalDraw(x, u, o!, at, 256, 1), [[[16], 'int32']], exact, `channel at ${at}`);
    const x64 = new Tensor(Float64Array.from(x.data), [16, 3 * 256]);
    agree((k, [o]) => k.categoricalDraw(x64, u, o!, 256, 256, 0.9), [[[16], 'int32']], exact, 'float64');
  });

  // ---- dtypes the module does not take ----

  test('float64 runs on the reference, whatever the kernel', () => {
    const x = new Tensor(Float64Array.from([1, -2, 3.5]), [3]);
    const out = new Tensor(new Float64Array(3), [3]);
    const expected = new Tensor(new Float64Array(3), [3]);
    wasm.unary(x, out, 'tanh');
    ref.unary(x, expected, 'tanh');
    assert.deepEqual(Array.from(out.data), Array.from(expected.data));
    const m = new Tensor(new Float64Array(9).fill(1), [3, 3]);
    const o = new Tensor(new Float64Array(9), [3, 3]);
    wasm.matmul(m, m, o, false, false);
    assert.deepEqual(Array.from(o.data), new Array(9).fill(3));
  });

  test('a memory that grows keeps earlier resident weights valid', () => {
    const b = uniform([64, 32], -1, 1, 95);
    const a = uniform([4, 64], -1, 1, 96);
    const before = empty([4, 32]);
    wasm.matmul(a, b, before, false, false);
    wasm.matmul(a, b, before, false, false); // resident now
    // A large product forces the memory to grow.
    const big = uniform([2048, 1024], -1, 1, 97);
    const bigOut = empty([2048, 16]);
    wasm.matmul(big, uniform([1024, 16], -1, 1, 98), bigOut, false, false);
    const after = empty([4, 32]);
    wasm.matmul(a, b, after, false, false);
    assert.deepEqual(Array.from(after.data), Array.from(before.data));
  });
});
