// Mixed precision (bf16 operands, fp32 accumulation) on the native backend against the ts
// reference, which rounds the same operands to bfloat16 (src/kernels/bf16.ts) and computes the
// rest in float64: kernel by kernel for every kernel of BF16_OPERANDS, then through the ops under
// withPrecision. Every case also checks that bf16 was really used: the result is nearer the
// reference's bf16 result than the fp32 one. Skipped where the addon is not built, and where
// oneDNN has no bf16 implementation on this CPU (oneDNN 2.6 refuses bf16 products below AVX-512).

import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, test } from 'node:test';
import type { ConvParams, Kernels } from '../../kernels/contracts.js';
import { BF16_OPERANDS } from '../../kernels/contracts.js';
import * as ax from '../../ops/index.js';
import { Tensor } from '../../tensor/tensor.js';
import { agreement, empty, size, sumTol, uniform } from '../../testing/kernels.js';
import { assertClose } from '../../testing/gradcheck.js';
import { tsBackend } from '../ts/index.js';
import { backendName, setBackend } from '../registry.js';
import { loadNativeBackend, nativeLoadError } from './index.js';

const native = loadNativeBackend();
const caps = native?.cpuCapabilities();
const skip = !native
  ? `native backend not built (${nativeLoadError})`
  : caps!.bf16Conv === '' || caps!.bf16Matmul === ''
    ? `oneDNN has no bf16 products on this CPU (effective ISA ${caps!.isa})`
    : false;
const ref: Kernels = tsBackend;
const nat = native as Kernels;
const agree = agreement(ref, nat);

/** The largest difference between two arrays. */
function maxDiff(a: ArrayLike<number>, b: ArrayLike<number>): number {
  let m = 0;
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i]! - b[i]!));
  return m;
}

/**
 * out() on native in bf16 agrees with the reference in bf16 (within fp32 accumulation), and is
 * much further from the reference in fp32: bf16 was not silently ignored.
 */
function bf16Agrees(label: string, run: (k: Kernels, bf16: boolean, out: Tensor) => void, shape: readonly number[], tol: { atol: number; rtol: number }): void {
  const outs = [ref, nat, ref].map((k, i) => {
    const o = empty(shape);
    o.data.fill(0);
    run(k, i < 2, o);
    return o.data;
  });
  const [refBf16, natBf16, refFp32] = outs as [Float32Array, Float32Array, Float32Array];
  assertClose(natBf16, refBf16, { ...tol, label: `${label}: native bf16 vs reference bf16` });
  const drift = maxDiff(refBf16, refFp32);
  assert.ok(drift > 0, `${label}: bf16 rounding changed nothing (inputs are bf16 already?)`);
  assert.ok(maxDiff(natBf16, refBf16) < drift / 4, `${label}: native bf16 is as far from the bf16 reference (${maxDiff(natBf16, refBf16)}) as fp32 is (${drift})`);
}

describe('bf16 kernels: native vs the ts reference', { skip }, () => {
  test('BF16_OPERANDS names kernels and tensor arguments that exist', async () => {
    const { KERNELS } = await import('../../kernels/contracts.js');
    for (const [name, operands] of Object.entries(BF16_OPERANDS)) {
      const args = KERNELS[name as keyof typeof KERNELS].args.map((a) => a.name) as string[];
      for (const o of operands) assert.ok(args.includes(o), `${name} has no argument ${o}`);
    }
  });

  test('matmul: transpositions, batched, shared 2-D operand', () => {
    for (const [ta, tb] of [[false, false], [true, false], [false, true], [true, true]] as const) {
      const [m, k, n] = [37, 129, 23];
      const a = uniform(ta ? [k, m] : [m, k], -1, 1, 3);
      const b = uniform(tb ? [n, k] : [k, n], -1, 1, 4);
      bf16Agrees(`matmul ta=${ta} tb=${tb}`, (kk, bf16, o) => kk.matmul(a, b, o, ta, tb, bf16), [m, n], sumTol(k));
    }
    const a = uniform([5, 17, 64], -1, 1, 5);
    const b = uniform([64, 33], -1, 1, 6);
    bf16Agrees('matmul batched × shared', (kk, bf16, o) => kk.matmul(a, b, o, false, false, bf16), [5, 17, 33], sumTol(64));
    const c = uniform([5, 33, 64], -1, 1, 7);
    bf16Agrees('matmul batched × batched, transposed', (kk, bf16, o) => kk.matmul(a, c, o, false, true, bf16), [5, 17, 33], sumTol(64));
  });

  const P = (s: number, pt: number, pl: number, d = 1): ConvParams => ({ strideH: s, strideW: s, padTop: pt, padLeft: pl, dilationH: d, dilationW: d, bf16: true });
  const cases: { name: string; x: number[]; k: [number, number]; cout: number; p: ConvParams; out: [number, number] }[] = [
    { name: '3×3 same, [2, 9, 7, 16] → 32', x: [2, 9, 7, 16], k: [3, 3], cout: 32, p: P(1, 1, 1), out: [9, 7] },
    { name: '1×1, [3, 5, 4, 24] → 8', x: [3, 5, 4, 24], k: [1, 1], cout: 8, p: P(1, 0, 0), out: [5, 4] },
    { name: '3×3 stride 2 (negative bottom/right padding), [2, 8, 8, 8] → 8', x: [2, 8, 8, 8], k: [3, 3], cout: 8, p: P(2, 0, 0), out: [3, 3] },
    { name: '3×3 dilation 2 (the phase path of backward-weights), [2, 9, 8, 8] → 4', x: [2, 9, 8, 8], k: [3, 3], cout: 4, p: P(1, 2, 2, 2), out: [9, 8] },
    // In fp32 these take the addon's own row Winograd and row convolutions; in bf16, oneDNN.
    { name: 'down-shifted 2×3 with rowWinograd allowed, [2, 6, 10, 16] → 32', x: [2, 6, 10, 16], k: [2, 3], cout: 32, p: { ...P(1, 1, 1), rowWinograd: true }, out: [6, 10] },
    { name: 'one row 1×2 dilation 2 (horizontal stack), [2, 5, 9, 16] → 16', x: [2, 5, 9, 16], k: [1, 2], cout: 16, p: { ...P(1, 0, 2), dilationW: 2, dilationH: 1 }, out: [5, 9] },
  ];
  for (const c of cases) {
    test(`conv2d, backward-data, backward-weights: ${c.name}`, () => {
      const ys = [c.x[0]!, ...c.out, c.cout];
      const x = uniform(c.x, -1, 1, 11);
      const w = uniform([...c.k, c.x[3]!, c.cout], -1, 1, 12);
      const bias = uniform([c.cout], -1, 1, 13);
      const dy = uniform(ys, -1, 1, 14);
      const residual = uniform(ys, -2, 2, 15);
      const fp32 = { ...c.p, bf16: false };
      const p = (bf16: boolean) => (bf16 ? c.p : fp32);
      const kSum = c.k[0] * c.k[1] * c.x[3]!;
      bf16Agrees('forward+bias', (k, b, o) => k.conv2d(x, w, bias, o, p(b)), ys, sumTol(kSum));
      bf16Agrees('forward, accumulated', (k, b, o) => k.conv2d(x, w, null, o, p(b), true), ys, sumTol(kSum));
      bf16Agrees('forward+residual', (k, b, o) => k.conv2d(x, w, null, o, p(b), false, false, residual), ys, sumTol(kSum, 2));
      bf16Agrees('backward-data', (k, b, o) => k.conv2dBackwardData(dy, w, o, p(b)), c.x, sumTol(c.k[0] * c.k[1] * c.cout));
      const nSum = size(ys) / c.cout;
      bf16Agrees('backward-weights', (k, b, o) => k.conv2dBackwardWeights(x, dy, o, p(b)), w.shape, sumTol(nSum));
      // The bias gradient is an fp32 sum of dy itself in either precision.
      agree((k, [dw, db]) => k.conv2dBackward(x, dy, w, null, dw!, db!, c.p, 0), [[w.shape, 'float32'], [[c.cout], 'float32']], sumTol(nSum), 'conv2dBackward (dw, db)');
      agree((k, [db]) => k.conv2dBackwardWeights(x, dy, empty(w.shape), c.p, db), [[[c.cout], 'float32']], sumTol(nSum), 'db');
      const dbFp32 = empty([c.cout]);
      ref.conv2dBackwardWeights(x, dy, empty(w.shape), fp32, dbFp32);
      const dbBf16 = empty([c.cout]);
      nat.conv2dBackwardWeights(x, dy, empty(w.shape), c.p, dbBf16);
      assertClose(dbBf16.data, dbFp32.data, { ...sumTol(nSum), label: 'db in bf16 = db in fp32' });
      agree((k, [gx]) => k.conv2dBackward(x, dy, w, gx!, null, null, c.p, 0), [[c.x, 'float32']], sumTol(c.k[0] * c.k[1] * c.cout), 'conv2dBackward (dx)');
    });
  }

  test('rowConvSumBackward refuses bf16 terms on both backends (it computes in fp32 only)', () => {
    const x = uniform([1, 2, 5, 3]);
    const w = uniform([1, 2, 3, 4]);
    const dy = uniform([1, 2, 4, 4]);
    const term = { x, w, p: P(1, 0, 0), dx: null, addend: null, dw: empty(w.shape) };
    for (const k of [ref, nat]) assert.throws(() => k.rowConvSumBackward([term], dy, null), /fp32 only/);
  });

  test('ops under withPrecision("bf16"): a small network trains through the same gradients on both backends', () => {
    const previous = backendName();
    const grads = (backend: 'ts' | 'native') => {
      setBackend(backend);
      try {
        const x = uniform([4, 12, 12, 16], -1, 1, 21);
        const w1 = uniform([3, 3, 16, 32], -0.2, 0.2, 22).requireGrad();
        const w2 = uniform([2, 3, 32, 32], -0.2, 0.2, 23).requireGrad();
        const w3 = uniform([32, 48], -0.2, 0.2, 24).requireGrad();
        const loss = ax.withPrecision('bf16', () => {
          const h = ax.conv2d(x, w1, { padding: 1 }).relu();
          const g = ax.conv2dSum([{ x: h, weight: w2, options: { padding: [1, 0, 1, 1], rowWinograd: true } }]).tanh();
          return ax.matmul(ax.reshape(g, [-1, 32]), w3).square().mean();
        });
        loss.backward();  // outside the scope: each op keeps its forward's precision
        return [loss, w1.grad!, w2.grad!, w3.grad!].map((t) => Float32Array.from(t.data));
      } finally {
        setBackend(previous);
      }
    };
    const r = grads('ts');
    const n = grads('native');
    const names = ['loss', 'dw1', 'dw2', 'dw3'];
    r.forEach((v, i) => assertClose(n[i]!, v, { atol: 1e-4, rtol: 2e-3, label: names[i] }));
  });
});

test('bf16 products asked for where oneDNN has none (ONEDNN_MAX_CPU_ISA=AVX2) end in one clear error, not a oneDNN code', { skip: native ? false : `native backend not built (${nativeLoadError})` }, () => {
  const dir = mkdtempSync(join(tmpdir(), 'arpix-bf16-'));
  try {
    const script = join(dir, 'child.mts');
    const here = (p: string) => JSON.stringify(fileURLToPath(new URL(p, import.meta.url)));
    writeFileSync(script, `
      const { loadNativeBackend } = await import(${here('./index.ts')});
      const { uniform, empty } = await import(${here('../../testing/kernels.ts')});
      const nat = loadNativeBackend()!;
      const p = { strideH: 1, strideW: 1, padTop: 1, padLeft: 1, dilationH: 1, dilationW: 1, bf16: true };
      for (const run of [
        () => nat.conv2d(uniform([2, 8, 8, 16]), uniform([3, 3, 16, 16]), null, empty([2, 8, 8, 16]), p),
        () => nat.matmul(uniform([64, 64]), uniform([64, 64]), empty([64, 64]), false, false, true),
      ]) {
        try { run(); console.log('no error'); } catch (e) { console.log((e as Error).message); }
      }
    `);
    const r = spawnSync(process.execPath, ['--import', import.meta.resolve('tsx'), script], { env: { ...process.env, ONEDNN_MAX_CPU_ISA: 'AVX2', NODE_NO_WARNINGS: '1' }, encoding: 'utf8' });
    assert.equal(r.status, 0, r.stderr);
    const lines = r.stdout.trim().split('\n');
    assert.equal(lines.length, 2, r.stdout);
    for (const [i, kernel] of ['conv2d', 'matmul'].entries()) {
      assert.match(lines[i]!, new RegExp(`^${kernel}: bf16 was asked for, but oneDNN has no bf16 products on this CPU \\(its ISA here is avx2\\): compute in fp32`));
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
