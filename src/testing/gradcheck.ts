// Test helpers: a finite-difference gradient check in float64 and value comparisons.

import assert from 'node:assert/strict';
import { Generator } from '../tensor/random.js';
import { Tensor } from '../tensor/tensor.js';
import { noGrad, randn, mul, sum } from '../ops/index.js';

/** A float64 tensor of standard normals from a fixed seed. */
export function rnd64(shape: readonly number[], seed = 1): Tensor {
  return randn(shape, { dtype: 'float64', generator: new Generator(seed) });
}

/**
 * Checks the analytic gradients of `fn` against central differences, in float64 on the ts
 * backend. The scalar checked is Σ fn(inputs) ⊙ R for a fixed random R, so every output element
 * and every input element is exercised.
 */
export function gradcheck(
  fn: (...xs: Tensor[]) => Tensor,
  inputs: readonly Tensor[],
  opts: { eps?: number; atol?: number; rtol?: number; label?: string } = {},
): void {
  const eps = opts.eps ?? 1e-6;
  const atol = opts.atol ?? 1e-6;
  const rtol = opts.rtol ?? 1e-5;
  const xs = inputs.map((t) => {
    if (t.dtype !== 'float64') throw new Error('gradcheck: inputs must be float64');
    return new Tensor(new Float64Array(t.data), t.shape).requireGrad();
  });
  const out0 = noGrad(() => fn(...xs));
  const r = rnd64(out0.shape, 12345);
  const scalar = () => noGrad(() => sum(mul(fn(...xs), r)).item());
  const loss = sum(mul(fn(...xs), r));
  loss.backward();
  xs.forEach((x, k) => {
    const analytic = x.grad ? x.grad.data : new Float64Array(x.size);
    const d = x.data as Float64Array;
    for (let i = 0; i < d.length; i++) {
      const keep = d[i]!;
      d[i] = keep + eps;
      const up = scalar();
      d[i] = keep - eps;
      const down = scalar();
      d[i] = keep;
      const numeric = (up - down) / (2 * eps);
      const a = analytic[i]!;
      if (Math.abs(a - numeric) > atol + rtol * Math.abs(numeric)) {
        assert.fail(`${opts.label ?? 'gradcheck'}: input ${k} element ${i}: analytic ${a} vs numeric ${numeric}`);
      }
    }
  });
}

/** Asserts two arrays agree elementwise within atol + rtol·|expected|. */
export function assertClose(actual: ArrayLike<number>, expected: ArrayLike<number>, opts: { atol?: number; rtol?: number; label?: string } = {}): void {
  const atol = opts.atol ?? 1e-6;
  const rtol = opts.rtol ?? 1e-5;
  assert.equal(actual.length, expected.length, `${opts.label ?? ''} length`);
  for (let i = 0; i < actual.length; i++) {
    const a = actual[i]!;
    const e = expected[i]!;
    if (Number.isNaN(e) ? !Number.isNaN(a) : !(Math.abs(a - e) <= atol + rtol * Math.abs(e)) && a !== e) {
      assert.fail(`${opts.label ?? 'assertClose'}: element ${i}: got ${a}, expected ${e}`);
    }
  }
}
