// Optimisers (hand-computed first steps, convergence on a quadratic, PyTorch's Adam/AdamW values),
// state-dict resumption, clipping, schedules and the weight average.

import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { describe, test } from 'node:test';
import { ArgumentError, ShapeError } from '../errors.js';
import { Linear, Module, Parameter } from '../nn/index.js';
import { mul, square, sub, sum, tensor, zeros } from '../ops/index.js';
import { Generator } from '../tensor/random.js';
import { Tensor } from '../tensor/tensor.js';
import {
  Adam, AdamW, EMA, LRScheduler, SGD, clipGradNorm, clipGradValue, constant, cosineDecay, cosineWithWarmup,
  exponentialDecay, linearWarmup, noam, product, withWarmup, type Optimizer, type BaseOptions,
} from './index.js';

const param = (v: number[], dtype: 'float32' | 'float64' = 'float64') => new Parameter(tensor(v, undefined, dtype));
const setGrad = (p: Tensor, g: number[]) => { p.grad = tensor(g, undefined, p.dtype); };
const close = (a: ArrayLike<number>, b: ArrayLike<number>, tol: number, what = '') => {
  assert.equal(a.length, b.length);
  for (let i = 0; i < a.length; i++) assert.ok(Math.abs(a[i]! - b[i]!) <= tol * (1 + Math.abs(b[i]!)), `${what}[${i}]: ${a[i]} vs ${b[i]}`);
};

/** f(p) = Σ c_i (p_i − t_i)², minimised at t. */
function quadraticLoss(p: Tensor): Tensor {
  const t = tensor([1, -2, 3], undefined, p.dtype);
  const c = tensor([1, 0.5, 2], undefined, p.dtype);
  return sum(mul(c, square(sub(p, t))));
}

function minimise(opt: Optimizer<BaseOptions>, p: Tensor, steps: number): void {
  for (let s = 0; s < steps; s++) {
    opt.zeroGrad();
    quadraticLoss(p).backward();
    opt.step();
  }
}

describe('SGD', () => {
  test('plain step: p − lr·g', () => {
    const p = param([1, 2]);
    setGrad(p, [0.5, -1]);
    new SGD([p], { lr: 0.1 }).step();
    close(p.data, [0.95, 2.1], 1e-15);
  });
  test('momentum 0.9, weight decay 0.1, dampening 0: two hand-computed steps', () => {
    const p = param([1]);
    const opt = new SGD([p], { lr: 0.1, momentum: 0.9, weightDecay: 0.1 });
    setGrad(p, [1]);
    opt.step(); // d = 1 + 0.1 = 1.1; buf = 1.1; p = 1 − 0.11 = 0.89
    close(p.data, [0.89], 1e-15);
    setGrad(p, [1]);
    opt.step(); // d = 1 + 0.089 = 1.089; buf = 0.99 + 1.089 = 2.079; p = 0.89 − 0.2079
    close(p.data, [0.89 - 0.2079], 1e-15);
  });
  test('nesterov: d + momentum·buf', () => {
    const p = param([0]);
    const opt = new SGD([p], { lr: 1, momentum: 0.5, nesterov: true });
    setGrad(p, [1]);
    opt.step(); // buf = 1; d = 1 + 0.5 = 1.5
    close(p.data, [-1.5], 1e-15);
    setGrad(p, [1]);
    opt.step(); // buf = 1.5; d = 1 + 0.75
    close(p.data, [-3.25], 1e-15);
  });
  test('converges on a quadratic (float32) and bumps the version every step', () => {
    const p = param([0, 0, 0], 'float32');
    const v = p.version;
    minimise(new SGD([p], { lr: 0.05, momentum: 0.9 }), p, 300);
    close(p.data, [1, -2, 3], 1e-4);
    assert.equal(p.version, v + 300);
  });
  test('skips parameters without a gradient', () => {
    const p = param([1]);
    new SGD([p], { lr: 1 }).step();
    assert.deepEqual(p.toArray(), [1]);
  });
});

describe('Adam / AdamW', () => {
  test('first Adam step moves each coordinate by lr·sign(g) (bias correction)', () => {
    const p = param([1, 1, 1]);
    setGrad(p, [3, -0.01, 100]);
    new Adam([p], { lr: 0.1, eps: 0 }).step();
    close(p.data, [0.9, 1.1, 0.9], 1e-12);
  });
  test('second Adam step by hand', () => {
    const p = param([0]);
    const opt = new Adam([p], { lr: 0.1, betas: [0.5, 0.75], eps: 1e-3 });
    setGrad(p, [1]);
    opt.step();
    setGrad(p, [2]);
    opt.step();
    // step 1: m = 0.5, v = 0.25 → p = −0.1 · (0.5/0.5) / (sqrt(0.25)/sqrt(0.25) + 1e-3)
    const p1 = -0.1 / (1 + 1e-3);
    // step 2: m = 0.25 + 1 = 1.25, v = 0.1875 + 1 = 1.1875; bc1 = 0.75, bc2 = 1 − 0.5625
    const p2 = p1 - (0.1 / 0.75) * 1.25 / (Math.sqrt(1.1875) / Math.sqrt(0.4375) + 1e-3);
    close(p.data, [p2], 1e-15);
  });
  test('AdamW decays the weight apart from the gradient: p(1 − lr·wd) first', () => {
    const p = param([2]);
    setGrad(p, [0.5]);
    new AdamW([p], { lr: 0.1, weightDecay: 0.5, eps: 0 }).step();
    close(p.data, [2 * (1 - 0.05) - 0.1], 1e-15);
    const q = param([2]);
    setGrad(q, [0.5]);
    new Adam([q], { lr: 0.1, weightDecay: 0.5, eps: 0 }).step(); // L2: g = 0.5 + 1 → still a sign step
    close(q.data, [1.9], 1e-15);
  });
  test('AdamW defaults to weight decay 0.01, Adam to 0', () => {
    assert.equal(new AdamW([param([1])]).paramGroups[0]!.weightDecay, 0.01);
    assert.equal(new Adam([param([1])]).paramGroups[0]!.weightDecay, 0);
  });
  test('matches PyTorch 1.13 value for value over 5 steps (float64 fixtures)', () => {
    const fx = JSON.parse(readFileSync(new URL('../ops/fixtures/adam.json', import.meta.url), 'utf8')) as {
      cases: { name: string; optimizer: 'Adam' | 'AdamW'; attrs: { lr: number; betas: [number, number]; eps: number; weightDecay: number }; param: number[]; grads: number[][]; after: number[][] }[];
    };
    assert.ok(fx.cases.length >= 4);
    for (const c of fx.cases) {
      const p = param(c.param);
      const Cls = c.optimizer === 'Adam' ? Adam : AdamW;
      const opt = new Cls([p], c.attrs);
      c.grads.forEach((g, s) => {
        setGrad(p, g);
        opt.step();
        close(p.data, c.after[s]!, 1e-14, `${c.name} step ${s + 1}`);
      });
    }
  });
  test('converges on a quadratic', () => {
    const p = param([0, 0, 0], 'float32');
    minimise(new Adam([p], { lr: 0.05 }), p, 1000);
    close(p.data, [1, -2, 3], 1e-3);
  });
  test('parameter groups carry their own hyper-parameters', () => {
    const a = param([1]);
    const b = param([1]);
    const opt = new SGD([{ params: [a] }, { params: [b], lr: 0.5 }], { lr: 0.1 });
    setGrad(a, [1]);
    setGrad(b, [1]);
    opt.step();
    close(a.data, [0.9], 1e-15);
    close(b.data, [0.5], 1e-15);
  });
  test('throws on bad hyper-parameters and parameters', () => {
    assert.throws(() => new Adam([param([1])], { lr: -1 }), /Adam: lr must be ≥ 0, got -1/);
    assert.throws(() => new Adam([param([1])], { betas: [0.9, 1] }), /Adam: betas/);
    assert.throws(() => new AdamW([param([1])], { eps: -1 }), /AdamW: eps/);
    assert.throws(() => new SGD([param([1])], { lr: 0.1, nesterov: true }), /SGD: nesterov needs momentum > 0/);
    assert.throws(() => new SGD([], { lr: 0.1 }), /SGD: params is empty/);
    assert.throws(() => new SGD([tensor([1])], { lr: 0.1 }), /SGD: parameter 0 \[1\] does not require gradients/);
    const p = param([1]);
    assert.throws(() => new SGD([p, p], { lr: 0.1 }), /appears more than once/);
  });
  test('throws at step when a gradient has the wrong shape, naming both', () => {
    const p = param([1, 2]);
    p.grad = tensor([1, 2, 3], undefined, 'float64');
    assert.throws(() => new Adam([p]).step(), (e: unknown) =>
      e instanceof ShapeError && e.message === "Adam.step: grad shape [3] differs from its parameter's [2]");
  });
});

describe('optimiser state dicts', () => {
  for (const make of [
    (ps: Tensor[]) => new Adam(ps, { lr: 0.01 }),
    (ps: Tensor[]) => new AdamW(ps, { lr: 0.01, weightDecay: 0.1 }),
    (ps: Tensor[]) => new SGD(ps, { lr: 0.01, momentum: 0.9 }),
  ]) {
    test(`${make([param([0])]).constructor.name}: resuming from a state dict continues exactly`, () => {
      const grads = [[1, -2], [0.5, 0.25], [-1, 3], [2, 2], [0, -1]];
      const run = (split: boolean) => {
        let p = param([0.5, -0.5]);
        let opt = make([p]);
        grads.forEach((g, s) => {
          if (split && s === 2) {
            const sd = opt.stateDict();
            const json = JSON.parse(JSON.stringify(sd.state)) as typeof sd.state; // the JSON part survives a file
            p = param(p.toArray());
            opt = make([p]);
            opt.loadStateDict({ tensors: sd.tensors, state: json });
          }
          setGrad(p, g);
          opt.step();
        });
        return p.toArray();
      };
      assert.deepEqual(run(true), run(false));
    });
  }
  test('state dict names buffers by parameter index and keeps group hyper-parameters', () => {
    const a = param([1, 2]);
    const b = param([3]);
    const opt = new Adam([{ params: [a] }, { params: [b], lr: 0.5 }], { lr: 0.1 });
    setGrad(a, [1, 1]);
    opt.step();
    const sd = opt.stateDict();
    assert.deepEqual(Object.keys(sd.tensors), ['0.exp_avg', '0.exp_avg_sq']);
    assert.deepEqual(sd.state.steps, { 0: 1 });
    assert.equal(sd.state.groups[1]!.lr, 0.5);
    assert.deepEqual(sd.state.groups.map((g) => g.params), [[0], [1]]);
  });
  test('loading a state dict for other parameters throws, naming what differs', () => {
    const opt = new Adam([param([1, 2])]);
    setGrad(opt.paramGroups[0]!.params[0]!, [1, 1]);
    opt.step();
    const sd = opt.stateDict();
    assert.throws(() => new Adam([param([1, 2, 3])]).loadStateDict(sd), (e: unknown) =>
      e instanceof ShapeError && /'0.exp_avg' has shape \[2\] but its parameter has \[3\]/.test(e.message));
    assert.throws(() => new SGD([param([1, 2])], { lr: 1 }).loadStateDict(sd), /kind is 'Adam', this optimiser is SGD/);
    assert.throws(() => new Adam([param([1]), param([2])]).loadStateDict({ ...sd, state: { ...sd.state, groups: [] } }), /has 0 parameter groups/);
  });
});

describe('clipping', () => {
  test('clipGradNorm returns the norm before clipping and scales to maxNorm', () => {
    const a = param([0]);
    const b = param([0, 0]);
    setGrad(a, [3]);
    setGrad(b, [0, 4]);
    const n = clipGradNorm([a, b], 1);
    assert.equal(n, 5);
    close(a.grad!.data, [0.6], 1e-6);
    close(b.grad!.data, [0, 0.8], 1e-6);
  });
  test('leaves gradients below maxNorm alone and skips missing ones', () => {
    const a = param([0, 0]);
    setGrad(a, [0.3, 0.4]);
    const g = a.grad;
    assert.ok(Math.abs(clipGradNorm([a, param([1])], 1) - 0.5) < 1e-12);
    assert.equal(a.grad, g);
  });
  test('does not scale a gradient shared by two leaves twice', () => {
    const a = param([0]);
    const b = param([0]);
    const shared = tensor([4], undefined, 'float64');
    a.grad = shared;
    b.grad = shared;
    assert.ok(Math.abs(clipGradNorm([a, b], Math.SQRT2) - Math.sqrt(32)) < 1e-12);
    close(a.grad!.data, [1], 1e-6);
    close(b.grad!.data, [1], 1e-6);
    assert.deepEqual(shared.toArray(), [4]);
  });
  test('infinity norm and clipGradValue', () => {
    const a = param([0, 0, 0]);
    setGrad(a, [1, -5, 2]);
    assert.equal(clipGradNorm([a], 10, { normType: Infinity }), 5);
    clipGradValue([a], 1.5);
    assert.deepEqual(a.grad!.toArray(), [1, -1.5, 1.5]);
    setGrad(a, [NaN, 0, 0]);
    assert.throws(() => clipGradNorm([a], 1, { errorIfNonfinite: true }), /non-finite/);
    assert.throws(() => clipGradNorm([a], -1), ArgumentError);
  });
});

describe('schedules', () => {
  test('linear warm-up reaches 1 at the last warm-up step', () => {
    const s = linearWarmup(4);
    assert.deepEqual([0, 1, 2, 3, 4, 100].map(s), [0.25, 0.5, 0.75, 1, 1, 1]);
  });
  test('exponential decay, every step and every 10', () => {
    assert.equal(exponentialDecay(0.5)(3), 0.125);
    assert.deepEqual([0, 9, 10, 25].map(exponentialDecay(0.5, 10)), [1, 1, 0.5, 0.25]);
  });
  test('cosine decay: 1 at 0, the middle halfway, minFactor at and after the end', () => {
    const s = cosineDecay(100, 0.1);
    assert.equal(s(0), 1);
    assert.ok(Math.abs(s(50) - 0.55) < 1e-12);
    assert.ok(Math.abs(s(100) - 0.1) < 1e-12 && Math.abs(s(1000) - 0.1) < 1e-12);
  });
  test('cosine with warm-up and a product of schedules', () => {
    const s = cosineWithWarmup(10, 110);
    assert.equal(s(0), 0.1);
    assert.equal(s(9), 1);
    assert.equal(s(10), 1);
    assert.ok(Math.abs(s(60) - 0.5) < 1e-12);
    assert.ok(Math.abs(s(110)) < 1e-12);
    assert.equal(withWarmup(2, constant(0.5))(5), 0.5);
    assert.equal(product(linearWarmup(2), exponentialDecay(0.5))(0), 0.5);
    assert.throws(() => cosineWithWarmup(10, 10), /cosineWithWarmup: warmupSteps/);
    assert.throws(() => exponentialDecay(1.5), /exponentialDecay: gamma/);
  });
  test('noam: linear warm-up to 1 at the warm-up step, then 1/√step; a bad warm-up is an error', () => {
    const s = noam(4);
    assert.deepEqual([0, 1, 2, 3].map(s), [0.25, 0.5, 0.75, 1]);
    assert.ok(Math.abs(s(15) - 0.5) < 1e-12); // n = 16 = 4·4 steps: √(4/16)
    assert.ok(Math.abs(s(399) / s(99) - 0.5) < 1e-12); // four times the steps, half the rate
    assert.throws(() => noam(0), /noam: warmupSteps must be an integer ≥ 1/);
  });
  test('LRScheduler sets every group\'s lr from its initial lr, and resumes', () => {
    const opt = new SGD([{ params: [param([1])] }, { params: [param([1])], lr: 1 }], { lr: 0.1 });
    const sched = new LRScheduler(opt, linearWarmup(4));
    assert.deepEqual(opt.paramGroups.map((g) => g.lr), [0.025, 0.25]);
    sched.step();
    sched.step();
    close(opt.paramGroups.map((g) => g.lr), [0.075, 0.75], 1e-15);
    const again = new LRScheduler(opt, linearWarmup(4));
    again.loadStateDict(sched.stateDict());
    assert.equal(again.stepCount, 2);
    close(opt.paramGroups.map((g) => g.lr), [0.075, 0.75], 1e-15);
    const adam = new AdamW([param([1])], { lr: 0.1 });
    new LRScheduler(adam, exponentialDecay(0.5), 2);
    close([adam.paramGroups[0]!.lr], [0.025], 1e-15);
  });
});

describe('EMA', () => {
  class Tiny extends Module {
    readonly lin = this.registerModule('lin', new Linear(2, 1, { generator: new Generator(1), dtype: 'float64' }));
  }
  const setAll = (m: Module, v: number) => { for (const p of m.parameters()) { p.data.fill(v); p.bumpVersion(); } };

  test('update moves the average by (1 − decay) towards the parameters', () => {
    const m = new Tiny();
    setAll(m, 0);
    const ema = new EMA(m, { decay: 0.9 });
    setAll(m, 1);
    ema.update(m);
    close(ema.shadow.get('lin.weight')!.data, [0.1, 0.1], 1e-15);
    ema.update(m);
    close(ema.shadow.get('lin.bias')!.data, [0.19], 1e-15);
  });
  test('warm-up uses min(decay, (1 + n) / (10 + n))', () => {
    const m = new Tiny();
    const ema = new EMA(m, { decay: 0.999, warmup: true });
    assert.equal(ema.currentDecay(), 0.1);
    ema.update(m);
    assert.equal(ema.currentDecay(), 2 / 11);
  });
  test('withAveraged swaps the average in and restores the weights; copyTo overwrites', () => {
    const m = new Tiny();
    setAll(m, 0);
    const ema = new EMA(m, { decay: 0.5 });
    setAll(m, 2);
    ema.update(m); // average 1
    const v = m.lin.weight.version;
    const inside = ema.withAveraged(m, () => m.lin.weight.toArray());
    assert.deepEqual(inside, [1, 1]);
    assert.deepEqual(m.lin.weight.toArray(), [2, 2]);
    assert.ok(m.lin.weight.version > v);
    ema.copyTo(m);
    assert.deepEqual(m.lin.bias!.toArray(), [1]);
  });
  test('state dict round trip resumes the average exactly', () => {
    const m = new Tiny();
    const ema = new EMA(m, { decay: 0.8, warmup: true });
    setAll(m, 3);
    ema.update(m);
    const sd = ema.stateDict();
    const other = new EMA(new Tiny(), { decay: 0.8, warmup: true });
    other.loadStateDict(sd);
    assert.equal(other.updates, 1);
    assert.deepEqual(other.shadow.get('lin.weight')!.toArray(), ema.shadow.get('lin.weight')!.toArray());
    assert.throws(() => other.loadStateDict({ ...sd, tensors: { 'lin.weight': zeros([1, 2], 'float64') } }), /missing \["lin.bias"\]/);
    assert.throws(() => other.copyTo(new Linear(2, 1)), /has no parameter 'lin.weight'/);
  });
});
