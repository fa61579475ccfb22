// Adam and AdamW against torch.optim: five steps from the same parameter with the same gradients
// (src/ops/fixtures/adam.json, made by scripts/fixtures/make_engine_fixtures.py in float64),
// weight decay 0 and 0.1, comparing the parameter after every step.
//
// Tolerances: the fixture's parameter and gradients are exact in float32, so a float32 run differs
// from PyTorch's float64 only by float32 rounding of the update, ~1e-7 of the parameter per step:
// 1e-5 of the magnitude after five steps leaves room for that, and none for a missing bias
// correction or weight decay applied the Adam way in AdamW (≥ 1e-4 within five steps at lr 1e-2).
// float64 runs PyTorch's arithmetic in PyTorch's precision and is held to 1e-13 against all 17
// digits: that also pins eps's place, outside the square root, whose effect is ~1e-10 at step 1.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { Tensor } from '../tensor/tensor.js';
import { Adam, AdamW, RMSProp } from './index.js';

interface OptimCase {
  name: string;
  optimizer: 'Adam' | 'AdamW';
  attrs: { lr: number; betas: [number, number]; eps: number; weightDecay: number };
  param: number[];
  grads: number[][];
  after: number[][];
}

const fixture = JSON.parse(readFileSync(new URL('../ops/fixtures/adam.json', import.meta.url), 'utf8')) as { cases: OptimCase[] };

function vector(values: readonly number[], dtype: 'float32' | 'float64'): Tensor {
  return new Tensor(dtype === 'float32' ? Float32Array.from(values) : Float64Array.from(values), [values.length]);
}

for (const c of fixture.cases) {
  for (const [dtype, tol] of [['float32', 1e-5], ['float64', 1e-13]] as const) {
    test(`${c.name} matches torch.optim.${c.optimizer} over ${c.after.length} steps [${dtype}]`, () => {
      const p = vector(c.param, dtype).requireGrad();
      const Opt = c.optimizer === 'Adam' ? Adam : AdamW;
      // Every hyper-parameter given explicitly: AdamW's default weight decay (0.01) must not leak in.
      const opt = new Opt([p], { lr: c.attrs.lr, betas: c.attrs.betas, eps: c.attrs.eps, weightDecay: c.attrs.weightDecay });
      const scale = Math.sqrt(c.param.reduce((s, x) => s + x * x, 0) / c.param.length);
      c.grads.forEach((g, step) => {
        opt.zeroGrad();
        p.grad = vector(g, dtype);
        opt.step();
        const want = c.after[step]!;
        want.forEach((w, i) => {
          const got = p.data[i]!;
          assert.ok(Math.abs(got - w) <= tol * (Math.abs(w) + scale),
            `after step ${step + 1}, element ${i} is ${got}, PyTorch gives ${w} (tolerance ${tol} of the magnitude)`);
        });
      });
    });
  }
}

// RMSProp (PixelRNN's optimiser) against torch.optim.RMSprop (src/ops/fixtures/rmsprop.json):
// plain, with momentum and with weight decay, α = 0.95 so a wrong smoothing shows within a step.
interface RMSPropCase {
  name: string;
  attrs: { lr: number; alpha: number; eps: number; momentum: number; weightDecay: number };
  param: number[];
  grads: number[][];
  after: number[][];
}
const rmsprop = JSON.parse(readFileSync(new URL('../ops/fixtures/rmsprop.json', import.meta.url), 'utf8')) as { cases: RMSPropCase[] };
for (const c of rmsprop.cases) {
  for (const [dtype, tol] of [['float32', 1e-5], ['float64', 1e-13]] as const) {
    test(`${c.name} matches torch.optim.RMSprop over ${c.after.length} steps [${dtype}]`, () => {
      const p = vector(c.param, dtype).requireGrad();
      const opt = new RMSProp([p], c.attrs);
      const scale = Math.sqrt(c.param.reduce((s, x) => s + x * x, 0) / c.param.length);
      c.grads.forEach((g, step) => {
        opt.zeroGrad();
        p.grad = vector(g, dtype);
        opt.step();
        c.after[step]!.forEach((w, i) => {
          const got = p.data[i]!;
          assert.ok(Math.abs(got - w) <= tol * (Math.abs(w) + scale), `after step ${step + 1}, element ${i} is ${got}, PyTorch gives ${w}`);
        });
      });
    });
  }
}
