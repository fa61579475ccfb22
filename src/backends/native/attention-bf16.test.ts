// bf16 fused attention (AttentionAttrs.bf16; BF16_OPERANDS in kernels/contracts.ts) on the native
// backend against the ts reference, which rounds the same operands — q, k, v, g and the computed
// P̃, P and dS — to bfloat16 and computes the rest in float64. Every pattern, head sizes that are
// and are not multiples of 16, and lengths that are not whole tiles of 64 (odd ones too, so the
// pairs of keys and of queries the dot products take have a lone last member). Each case also
// checks that bf16 was really used: native bf16 is much nearer the reference's bf16 than the
// reference's fp32 is. Where the CPU has AVX512-BF16 the kernels run on its dot products, and the
// same cases are run again in a child whose oneDNN ISA cap (ONEDNN_MAX_CPU_ISA) hides it, on the
// fp32 loops with rounded operands: the numbers must not depend on the CPU. Then the op: under
// withPrecision('bf16') attention takes the bf16 kernels, and its backward keeps the precision.
// Skipped where the addon is not built.

import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { describe, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import type { AttentionAttrs, Kernels } from '../../kernels/contracts.js';
import { attentionPattern, type AttentionPatternInput } from '../../ops/transformer.js';
import * as ax from '../../ops/index.js';
import type { Tensor } from '../../tensor/tensor.js';
import { empty, uniform } from '../../testing/kernels.js';
import { assertClose } from '../../testing/gradcheck.js';
import { tsBackend } from '../ts/index.js';
import { backendName, setBackend } from '../registry.js';
import { loadNativeBackend, nativeLoadError } from './index.js';

const native = loadNativeBackend();
const skip = native ? false : `native backend not built (${nativeLoadError})`;
const ref: Kernels = tsBackend;
const nat = native as Kernels;
// The addon's bf16 attention takes AVX512-BF16 where oneDNN's effective ISA has it (the cap that
// ONEDNN_MAX_CPU_ISA lowers), else the fp32 loops with rounded operands.
const isa = native?.cpuCapabilities().isa ?? '';
const dotProducts = /bf16|amx/.test(isa);
const CHILD = 'ARPIX_TEST_ATTENTION_BF16_CAPPED';
const capped = process.env[CHILD] === '1';

/** The tolerance of the native fp32 attention against the reference (transformer.test.ts). */
const fp32Tol = (want: number) => 2e-5 + 1e-4 * Math.abs(want);

/**
 * got (native bf16) against want (the reference's bf16), given the reference's fp32 result. All
 * but a few elements must agree to fp32 tolerance, where bf16 rounding moves many beyond it (the
 * log-sum-exp 40–50 %, the rest 90–97 %): bf16 was used, with the same roundings. The few: a P̃, P
 * or dS within fp32 error of a rounding tie rounds the other way in fp32 than in float64, which
 * moves one row of one head by one bf16 step — rare (at most 0.6 % of the elements in these
 * cases), and never further than bf16 rounding itself moves the result.
 */
function bf16Agrees(label: string, got: ArrayLike<number>, want: ArrayLike<number>, fp32: ArrayLike<number>): void {
  let off = 0, moved = 0, worst = 0, drift = 0;
  for (let i = 0; i < want.length; i++) {
    const e = Math.abs(got[i]! - want[i]!), m = Math.abs(fp32[i]! - want[i]!);
    if (e > fp32Tol(want[i]!)) off++;
    if (m > fp32Tol(want[i]!)) moved++;
    worst = Math.max(worst, e);
    drift = Math.max(drift, m);
  }
  const pct = (k: number) => `${((100 * k) / want.length).toFixed(2)} %`;
  assert.ok(moved > want.length / 4, `${label}: bf16 rounding moves only ${pct(moved)} of the reference's elements beyond fp32 tolerance: the case cannot tell bf16 from fp32`);
  assert.ok(off <= want.length / 50, `${label}: ${pct(off)} of native bf16's elements are beyond fp32 tolerance of the bf16 reference (bf16 rounding moves ${pct(moved)})`);
  assert.ok(worst <= drift, `${label}: an element of native bf16 is ${worst.toExponential(2)} from the bf16 reference, further than bf16 rounding moves any (${drift.toExponential(2)})`);
}

/** [name, N, L, heads, pattern]. */
const CASES: [string, number, number, number, AttentionPatternInput][] = [
  ['causal', 2, 200, 2, { kind: 'causal' }],
  ['causal, odd length', 1, 131, 2, { kind: 'causal' }],
  ['local1d block 48', 1, 200, 2, { kind: 'local1d', block: 48 }],
  ['local1d block 100 memory 30, odd length', 1, 187, 1, { kind: 'local1d', block: 100, memory: 30 }],
  ['local2d 12×20, blocks 4×5, flanges 2×5', 1, 240, 2, { kind: 'local2d', height: 12, width: 20, blockHeight: 4, blockWidth: 5, memoryHeight: 2, memoryWidth: 5 }],
  ['local2d raster order 9×15, blocks 3×5, flanges 3×5 (odd length)', 1, 135, 2, { kind: 'local2d', height: 9, width: 15, blockHeight: 3, blockWidth: 5, memoryHeight: 3, memoryWidth: 5, order: 'raster' }],
];
const HEAD_SIZES = [16, 24, 32, 64, 128];

/** out and lse of the kernels k, and dqkv from the given out and lse (the reference's, so that the backward is compared on its own). */
function run(k: Kernels, qkv: Tensor, g: Tensor, a: AttentionAttrs, given?: [Tensor, Tensor]): [Tensor, Tensor, Tensor] {
  const [n, l, c3] = qkv.shape as [number, number, number];
  const y = empty([n, l, c3 / 3]), lse = empty([n, a.heads, l]), dq = empty([n, l, c3]);
  for (const t of [y, lse, dq]) t.data.fill(123.5); // kernels must overwrite their outputs
  k.attention(qkv, y, lse, a);
  const [yIn, lseIn] = given ?? [y, lse];
  k.attentionBackward(qkv, yIn, lseIn, g, dq, a);
  return [y, lse, dq];
}

describe(`bf16 attention kernels: native (${dotProducts ? 'AVX512-BF16 dot products' : 'fp32 loops on rounded operands'}) vs the ts reference`, { skip }, () => {
  test('a capped child sees the ISA it was given', { skip: !capped }, () => {
    assert.ok(!dotProducts, `ONEDNN_MAX_CPU_ISA=${process.env.ONEDNN_MAX_CPU_ISA} left oneDNN's ISA at ${isa}`);
  });

  for (const [name, n, l, heads, pattern] of CASES) {
    for (const d of HEAD_SIZES) {
      test(`${name}: [${n}, ${l}, 3·${heads}·${d}] forward, lse and backward`, () => {
        const c = heads * d;
        const qkv = uniform([n, l, 3 * c], -2, 2, 7 + d), g = uniform([n, l, c], -1, 1, 8 + d);
        const attrs = (bf16: boolean): AttentionAttrs => ({ heads, scale: 1 / Math.sqrt(d), pattern: attentionPattern('test', pattern, l), bf16 });
        const want = run(ref, qkv, g, attrs(true));
        const fp32 = run(ref, qkv, g, attrs(false), [want[0], want[1]]);
        const got = run(nat, qkv, g, attrs(true), [want[0], want[1]]);
        ['out', 'lse', 'dqkv'].forEach((what, i) => bf16Agrees(`${name} d=${d} ${what}`, got[i].data, want[i].data, fp32[i].data));
      });
    }
  }

  test('the same cases on the fp32 loops (a child with ONEDNN_MAX_CPU_ISA=AVX512_CORE): the CPU changes the speed, not the numbers', { skip: !dotProducts || capped ? 'only where the dot products run, from the parent' : false }, () => {
    // Without NODE_TEST_CONTEXT, which would make the child's runner report to a parent runner.
    const { NODE_TEST_CONTEXT: _, ...env } = process.env;
    const r = spawnSync(process.execPath, ['--import', 'tsx', '--import', fileURLToPath(new URL('../node.ts', import.meta.url)), '--test', fileURLToPath(import.meta.url)], {
      env: { ...env, ONEDNN_MAX_CPU_ISA: 'AVX512_CORE', [CHILD]: '1' },
      encoding: 'utf8',
    });
    assert.equal(r.status, 0, `the capped child failed:\n${r.stdout.slice(-3000)}\n${r.stderr.slice(-1000)}`);
    assert.match(r.stdout, /fp32 loops on rounded operands/);
    assert.match(r.stdout, /# fail 0/);
  });

  test("ops under withPrecision('bf16'): attention and its backward, run outside the scope, take the bf16 kernels", () => {
    const previous = backendName();
    try {
      setBackend('native');
      const [n, l, heads, d] = [2, 130, 2, 24];
      const pattern = { kind: 'local1d', block: 40 } as const;
      const qkv = uniform([n, l, 3 * heads * d], -2, 2, 31), g = uniform([n, l, heads * d], -1, 1, 32);
      const x = qkv.detach().requireGrad();
      const y = ax.withPrecision('bf16', () => ax.attention(x, { heads, pattern }));
      ax.sum(ax.mul(y, g)).backward();
      const attrs = (bf16: boolean): AttentionAttrs => ({ heads, scale: 1 / Math.sqrt(d), pattern: attentionPattern('test', pattern, l), bf16 });
      const want = run(ref, qkv, g, attrs(true));
      const fp32 = run(ref, qkv, g, attrs(false));
      bf16Agrees('op out', y.data, want[0].data, fp32[0].data);
      bf16Agrees('op dqkv', x.grad!.data, want[2].data, fp32[2].data);
      // Outside the scope: fp32.
      assertClose(ax.attention(qkv, { heads, pattern }).data, fp32[0].data, { atol: 2e-5, rtol: 1e-4, label: 'attention outside the scope is fp32' });
    } finally {
      setBackend(previous);
    }
  });
});
