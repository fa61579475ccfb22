// Known values from PyTorch: each fixture in ./fixtures was computed by
// scripts/fixtures/make_engine_fixtures.py (Debian's python3-torch 1.13, float64, layouts converted
// to arpix's NHWC / HWIO at the boundary). Here every case runs on every backend in float32, and on
// the reference backend in float64 too, comparing the forward value and the gradients of
// sum(out * R) for the fixture's fixed R.
//
// Tolerances. A value is accepted when |got − want| ≤ tol · (|want| + rms(want)):
// - float32 (tol 1e-4): the fixture's inputs are exact in float32, so the only error is float32
//   arithmetic. A sum of K products carries a rounding error of about √K·ε·Σ|terms| (ε ≈ 1.2e-7,
//   K ≤ 75 here): ~1e-6 of the tensor's magnitude, and a blocked or reordered native sum (oneDNN)
//   changes only which 1e-6 it is. The rms term lets an element that is small because of
//   cancellation carry the absolute error of its large terms. A wrong op (a transposed weight, a
//   padding off by one, a missing bias) errs by O(rms): four orders of magnitude above the bound.
// - float64 (tol 1e-10, ts only — float64 always runs on ts): the same computation as PyTorch's
//   in the same precision; anything above ~1e-13 would be a formula, not rounding.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import type { TestContext } from 'node:test';
import { backendName, nativeAvailable, setBackend, type BackendName } from '../backends/registry.js';
import type { DType } from '../kernels/contracts.js';
import { Tensor } from '../tensor/tensor.js';
import { conv2d, convTranspose2d, type Padding } from './conv.js';
import { crossEntropy } from './functional.js';
import { layerNorm } from './transformer.js';
import { logSoftmax, sum } from './reduce.js';
import { mul } from './elementwise.js';
import './index.js'; // installs autograd's helpers and Tensor.backward()

interface Flat { shape: number[]; data: number[] }
interface Case<A> { name: string; attrs: A; tensors: Record<string, Flat> }
interface Fixture<A> { op: string; cases: Case<A>[] }

function load<A>(file: string): Fixture<A> {
  return JSON.parse(readFileSync(new URL(`./fixtures/${file}`, import.meta.url), 'utf8')) as Fixture<A>;
}

type FloatDType = 'float32' | 'float64';

function input(f: Flat, dtype: FloatDType, grad = true): Tensor {
  const data = dtype === 'float32' ? Float32Array.from(f.data) : Float64Array.from(f.data);
  const t = new Tensor(data, f.shape);
  return grad ? t.requireGrad() : t;
}

function ints(f: Flat): Tensor {
  return new Tensor(Int32Array.from(f.data), f.shape);
}

function rms(xs: readonly number[]): number {
  return Math.sqrt(xs.reduce((s, x) => s + x * x, 0) / Math.max(1, xs.length));
}

/** Fails with the worst element (index, got, want) when got is not close to want. */
function assertClose(what: string, got: Tensor | null, want: Flat, tol: number): void {
  assert.ok(got, `${what}: no value (was a gradient not computed?)`);
  assert.deepEqual([...got.shape], want.shape, `${what}: shape`);
  const scale = rms(want.data);
  let worst = -1;
  let worstRatio = 0;
  for (let i = 0; i < want.data.length; i++) {
    const g = got.data[i]!;
    const w = want.data[i]!;
    const ratio = Math.abs(g - w) / (tol * (Math.abs(w) + scale));
    if (!(ratio <= worstRatio)) { worstRatio = ratio; worst = i; }
  }
  if (worst >= 0 && !(worstRatio <= 1)) {
    assert.fail(`${what}: element ${worst} is ${got.data[worst]}, PyTorch gives ${want.data[worst]} ` +
      `(|diff| is ${worstRatio.toPrecision(3)}× the tolerance ${tol}·(|want| + rms ${scale.toPrecision(3)}))`);
  }
}

/** One run: a backend and a dtype, with the tolerance that goes with the dtype. */
interface Run { backend: BackendName; dtype: FloatDType; tol: number }

const RUNS: readonly Run[] = [
  { backend: 'ts', dtype: 'float32', tol: 1e-4 },
  { backend: 'native', dtype: 'float32', tol: 1e-4 },
  { backend: 'ts', dtype: 'float64', tol: 1e-10 },
];

/** Registers one test per (case, run); native runs are skipped when the addon is not built. */
function eachRun<A>(fixture: Fixture<A>, body: (c: Case<A>, run: Run) => void): void {
  for (const c of fixture.cases) {
    for (const run of RUNS) {
      test(`${fixture.op}: ${c.name} [${run.backend}, ${run.dtype}]`, (t: TestContext) => {
        if (run.backend === 'native' && !nativeAvailable()) {
          t.skip('native backend not built');
          return;
        }
        const previous = backendName();
        setBackend(run.backend);
        try {
          body(c, run);
        } finally {
          setBackend(previous);
        }
      });
    }
  }
}

/** Back-propagates sum(out * R) and returns nothing; gradients land in the leaves' .grad. */
function backwardWeighted(out: Tensor, r: Flat, dtype: DType): void {
  sum(mul(out, input(r, dtype as FloatDType, false))).backward();
}

interface ConvAttrs { stride: [number, number]; padding: [number, number, number, number]; dilation: [number, number] }

eachRun(load<ConvAttrs>('conv2d.json'), (c, { dtype, tol }) => {
  const T = c.tensors;
  const x = input(T.x!, dtype);
  const w = input(T.weight!, dtype);
  const b = T.bias ? input(T.bias, dtype) : null;
  const y = conv2d(x, w, { bias: b, stride: c.attrs.stride, padding: c.attrs.padding, dilation: c.attrs.dilation });
  assertClose('out', y, T.out!, tol);
  backwardWeighted(y, T.R!, dtype);
  assertClose('grad x', x.grad, T.grad_x!, tol);
  assertClose('grad weight', w.grad, T.grad_weight!, tol);
  if (b) assertClose('grad bias', b.grad, T.grad_bias!, tol);
});

interface ConvTAttrs { stride: number; padding: number; outputPadding: number }

eachRun(load<ConvTAttrs>('conv-transpose2d.json'), (c, { dtype, tol }) => {
  const T = c.tensors;
  const x = input(T.x!, dtype);
  const w = input(T.weight!, dtype);
  const b = T.bias ? input(T.bias, dtype) : null;
  const padding: Padding = c.attrs.padding;
  const y = convTranspose2d(x, w, { bias: b, stride: c.attrs.stride, padding, outputPadding: c.attrs.outputPadding });
  assertClose('out', y, T.out!, tol);
  backwardWeighted(y, T.R!, dtype);
  assertClose('grad x', x.grad, T.grad_x!, tol);
  assertClose('grad weight', w.grad, T.grad_weight!, tol);
  if (b) assertClose('grad bias', b.grad, T.grad_bias!, tol);
});

eachRun(load<{ eps: number }>('layer-norm.json'), (c, { dtype, tol }) => {
  const T = c.tensors;
  const x = input(T.x!, dtype);
  const w = input(T.weight!, dtype);
  const b = input(T.bias!, dtype);
  const y = layerNorm(x, w, b, c.attrs.eps);
  assertClose('out', y, T.out!, tol);
  backwardWeighted(y, T.R!, dtype);
  assertClose('grad x', x.grad, T.grad_x!, tol);
  assertClose('grad weight', w.grad, T.grad_weight!, tol);
  assertClose('grad bias', b.grad, T.grad_bias!, tol);
});

eachRun(load<{ axis: number }>('log-softmax.json'), (c, { dtype, tol }) => {
  const T = c.tensors;
  const x = input(T.x!, dtype);
  const y = logSoftmax(x, c.attrs.axis);
  assertClose('out', y, T.out!, tol);
  backwardWeighted(y, T.R!, dtype);
  assertClose('grad x', x.grad, T.grad_x!, tol);
});

eachRun(load<{ reduction: 'mean' }>('cross-entropy.json'), (c, { dtype, tol }) => {
  const T = c.tensors;
  const logits = input(T.logits!, dtype);
  const loss = crossEntropy(logits, ints(T.targets!), c.attrs.reduction);
  assertClose('loss', loss, T.loss!, tol);
  loss.backward();
  assertClose('grad logits', logits.grad, T.grad_logits!, tol);
});

// The fixtures must stay able to catch an error: a checker that accepted anything would make every
// test above pass. Perturbing one element of a fixture by a typical wrong-op error must fail.
test('assertClose rejects an error of 1% of the magnitude and accepts float32 rounding', () => {
  const want: Flat = { shape: [4], data: [1.5, -2.25, 0.001, 3] };
  const exact = new Tensor(Float32Array.from(want.data), [4]);
  assertClose('exact', exact, want, 1e-4);
  const wrong = new Tensor(Float32Array.from([1.5, -2.25, 0.001 + 0.02, 3]), [4]);
  assert.throws(() => assertClose('wrong', wrong, want, 1e-4), /element 2/);
});
