// Every differentiable op: analytic gradients against central finite differences in float64 on
// the ts reference backend.

import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import * as ax from './index.js';
import { assertClose, gradcheck, rnd64 } from '../testing/gradcheck.js';
import { Tensor } from '../tensor/tensor.js';
import { Generator } from '../tensor/random.js';

const positive = (shape: number[], seed: number) => ax.add(ax.abs(rnd64(shape, seed)), 0.5);
// Values kept away from the kinks of relu / abs / clamp / max, where the derivative jumps.
const awayFromKinks = (shape: number[], seed: number) => {
  const t = rnd64(shape, seed);
  const d = t.data;
  for (let i = 0; i < d.length; i++) d[i] = Math.sign(d[i]!) * (Math.abs(d[i]!) + 0.05) + i * 1e-3;
  return t;
};

describe('unary gradients', () => {
  const cases: [string, (x: Tensor) => Tensor, (s: number[], seed: number) => Tensor][] = [
    ['neg', ax.neg, rnd64], ['exp', ax.exp, rnd64], ['log', ax.log, positive], ['sqrt', ax.sqrt, positive],
    ['rsqrt', ax.rsqrt, positive], ['abs', ax.abs, awayFromKinks], ['square', ax.square, rnd64],
    ['reciprocal', ax.reciprocal, positive], ['tanh', ax.tanh, rnd64], ['sigmoid', ax.sigmoid, rnd64],
    ['relu', ax.relu, awayFromKinks], ['elu', ax.elu, awayFromKinks], ['softplus', ax.softplus, rnd64],
    ['logSigmoid', ax.logSigmoid, rnd64],
    ['clamp', (x) => ax.clamp(x, -0.5, 0.7), awayFromKinks],
  ];
  for (const [name, f, make] of cases) {
    test(`${name} [2, 3, 4]`, () => gradcheck(f, [make([2, 3, 4], 3)], { label: name }));
  }
});

describe('binary gradients with broadcasting', () => {
  const shapes: [number[], number[]][] = [[[2, 3], [2, 3]], [[2, 3, 4], [4]], [[3, 1], [1, 5]], [[2, 1, 4], [3, 1]], [[4], []]];
  const ops: [string, (a: Tensor, b: Tensor) => Tensor, boolean][] = [
    ['add', ax.add, false], ['sub', ax.sub, false], ['mul', ax.mul, false], ['div', ax.div, true],
    ['pow', ax.pow, true], ['maximum', ax.maximum, false], ['minimum', ax.minimum, false],
  ];
  for (const [name, f, positiveOnly] of ops) {
    for (const [sa, sb] of shapes) {
      test(`${name} [${sa}] with [${sb}]`, () => {
        const a = positiveOnly ? positive(sa, 4) : awayFromKinks(sa, 4);
        const b = positiveOnly ? positive(sb, 5) : awayFromKinks(sb, 5);
        gradcheck(f, [a, b], { label: name });
      });
    }
  }
  test('where', () => {
    const cond = ax.greater(rnd64([3, 4], 9), 0);
    gradcheck((a, b) => ax.where(cond, a!, b!), [rnd64([3, 4], 1), rnd64([4], 2)]);
  });
});

describe('reduction gradients', () => {
  for (const axes of [undefined, 0, 1, [0, 2], -1] as const) {
    test(`sum / mean over ${JSON.stringify(axes)}`, () => {
      gradcheck((x) => ax.sum(x, axes), [rnd64([2, 3, 4], 1)]);
      gradcheck((x) => ax.mean(x, axes, true), [rnd64([2, 3, 4], 2)]);
    });
    test(`max / min / logsumexp over ${JSON.stringify(axes)}`, () => {
      gradcheck((x) => ax.max(x, axes), [awayFromKinks([2, 3, 4], 3)]);
      gradcheck((x) => ax.min(x, axes, true), [awayFromKinks([2, 3, 4], 4)]);
      gradcheck((x) => ax.logsumexp(x, axes), [rnd64([2, 3, 4], 5)]);
    });
  }
  for (const axis of [-1, 0, 1]) {
    test(`softmax / logSoftmax over axis ${axis}`, () => {
      gradcheck((x) => ax.softmax(x, axis), [rnd64([3, 4, 5], 6)]);
      gradcheck((x) => ax.logSoftmax(x, axis), [rnd64([3, 4, 5], 7)]);
    });
  }
});

describe('linear algebra gradients', () => {
  for (const transA of [false, true]) {
    for (const transB of [false, true]) {
      test(`matmul 2-D transA=${transA} transB=${transB}`, () => {
        const a = rnd64(transA ? [4, 3] : [3, 4], 1);
        const b = rnd64(transB ? [5, 4] : [4, 5], 2);
        gradcheck((x, y) => ax.matmul(x!, y!, { transA, transB }), [a, b]);
      });
      test(`matmul batched transA=${transA} transB=${transB}, with a shared 2-D operand`, () => {
        const a = rnd64(transA ? [2, 4, 3] : [2, 3, 4], 3);
        const b = rnd64(transB ? [2, 5, 4] : [2, 4, 5], 4);
        const b2 = rnd64(transB ? [5, 4] : [4, 5], 5);
        const a2 = rnd64(transA ? [4, 3] : [3, 4], 6);
        gradcheck((x, y) => ax.matmul(x!, y!, { transA, transB }), [a, b]);
        gradcheck((x, y) => ax.matmul(x!, y!, { transA, transB }), [a, b2]);
        gradcheck((x, y) => ax.matmul(x!, y!, { transA, transB }), [a2, b]);
      });
    }
  }
  test('linear with bias on [2, 3, 4]', () => {
    gradcheck((x, w, b) => ax.linear(x!, w!, b!), [rnd64([2, 3, 4], 1), rnd64([5, 4], 2), rnd64([5], 3)]);
  });
});

describe('convolution gradients', () => {
  const cases: { name: string; x: number[]; w: number[]; opts: ax.Conv2dOptions }[] = [
    { name: '3x3 pad 1', x: [2, 5, 6, 3], w: [3, 3, 3, 4], opts: { padding: 1 } },
    { name: '3x3 dilation 2 pad 2', x: [1, 7, 6, 2], w: [3, 3, 2, 3], opts: { padding: 2, dilation: 2 } },
    { name: 'stride 2 asymmetric padding', x: [2, 7, 5, 3], w: [3, 2, 3, 2], opts: { stride: 2, padding: [2, 0, 1, 1] } },
    { name: '1x1', x: [2, 3, 3, 4], w: [1, 1, 4, 5], opts: {} },
    { name: '2x3 down-shifted (pad top and sides only)', x: [1, 4, 5, 2], w: [2, 3, 2, 2], opts: { padding: [1, 0, 1, 1] } },
  ];
  for (const c of cases) {
    test(`conv2d ${c.name} x[${c.x}] w[${c.w}] with bias`, () => {
      gradcheck((x, w, b) => ax.conv2d(x!, w!, { ...c.opts, bias: b! }), [rnd64(c.x, 1), rnd64(c.w, 2), rnd64([c.w[3]!], 3)]);
    });
  }
  test('conv2d with a fixed mask: the masked taps get zero gradient', () => {
    const mask = ax.ones([3, 3, 2, 2], 'float64');
    for (let i = 0; i < mask.size; i++) if (i % 3 === 0) mask.data[i] = 0;
    gradcheck((x, w) => ax.conv2d(x!, w!, { padding: 1, mask }), [rnd64([1, 4, 4, 2], 1), rnd64([3, 3, 2, 2], 2)]);
  });
  test('conv2d with a residual (x + f(x), one input feeding both) equals the convolution plus the residual', () => {
    gradcheck((x, w, b) => ax.conv2d(x!, w!, { bias: b!, residual: x! }), [rnd64([2, 3, 4, 3], 31), rnd64([1, 1, 3, 3], 32), rnd64([3], 33)]);
    gradcheck((x, w, r) => ax.conv2d(x!, w!, { padding: 1, residual: ax.tanh(r!) }), [rnd64([1, 4, 4, 2], 34), rnd64([3, 3, 2, 3], 35), rnd64([1, 4, 4, 3], 36)]);
    const [x, w, r] = [rnd64([1, 4, 4, 2], 37), rnd64([3, 3, 2, 3], 38), rnd64([1, 4, 4, 3], 39)];
    assertClose(ax.conv2d(x, w, { padding: 1, residual: r }).toArray(), ax.add(ax.conv2d(x, w, { padding: 1 }), r).toArray(), { atol: 1e-12 });
  });
  test('conv2dSum of a masked 1×2 and a 1×1 convolution with biases (the Gated PixelCNN link)', () => {
    const mask = ax.ones([1, 2, 2, 4], 'float64');
    mask.data[5] = 0;
    gradcheck((x1, w1, b1, x2, w2, b2) => ax.conv2dSum([
      { x: x1!, weight: w1!, options: { padding: [0, 0, 1, 0], bias: b1!, mask } },
      { x: x2!, weight: w2!, options: { bias: b2! } },
    ]), [rnd64([2, 3, 4, 2], 1), rnd64([1, 2, 2, 4], 2), rnd64([4], 3), rnd64([2, 3, 4, 3], 4), rnd64([1, 1, 3, 4], 5), rnd64([4], 6)]);
  });
  test('conv2dSum equals the sum of its convolutions, and a term may share the other\'s input', () => {
    const x = rnd64([1, 5, 5, 2], 7);
    const w1 = rnd64([3, 3, 2, 3], 8);
    const w2 = rnd64([1, 1, 2, 3], 9);
    const fused = ax.conv2dSum([{ x, weight: w1, options: { padding: 1, dilation: 1 } }, { x, weight: w2 }]);
    const composed = ax.add(ax.conv2d(x, w1, { padding: 1 }), ax.conv2d(x, w2));
    assertClose(fused.data, composed.data, { atol: 1e-12, rtol: 1e-12 });
    gradcheck((xx, a, b) => ax.conv2dSum([{ x: xx!, weight: a!, options: { padding: 1 } }, { x: xx!, weight: b! }]), [x, w1, w2]);
  });
  test('conv2dSum of one-row convolutions adds the gradient its inputs already have (used elsewhere, before and after; one input in two terms)', () => {
    gradcheck((h, v, w1, w2, w3, b) => {
      const vPre = ax.mul(v!, 1.5); // an intermediate, like Gated PixelCNN's vertical pre-activation
      const early = ax.tanh(vPre); // a consumer created before the sum: its gradient comes after
      const y = ax.conv2dSum([
        { x: h!, weight: w1!, options: { padding: [0, 0, 2, 0], dilation: 2, bias: b! } },
        { x: vPre, weight: w2! },
        { x: h!, weight: w3! },
      ]);
      const late = ax.exp(h!); // created after: its gradient is there first, and the sum adds to it
      return ax.add(ax.add(ax.sum(ax.mul(y, y)), ax.sum(late)), ax.sum(ax.mul(early, early)));
    }, [rnd64([2, 3, 5, 2], 11), rnd64([2, 3, 5, 3], 12), rnd64([1, 2, 2, 4], 13), rnd64([1, 1, 3, 4], 14), rnd64([1, 1, 2, 4], 15), rnd64([4], 16)]);
  });
  const tcases: { name: string; x: number[]; w: number[]; opts: ax.ConvTranspose2dOptions }[] = [
    { name: 'stride 2 kernel 3 pad 1 outputPadding 1', x: [2, 3, 4, 3], w: [3, 3, 2, 3], opts: { stride: 2, padding: 1, outputPadding: 1 } },
    { name: 'stride 2 kernel 4 pad 1', x: [1, 3, 3, 2], w: [4, 4, 3, 2], opts: { stride: 2, padding: 1 } },
    { name: 'stride 1 kernel 2', x: [1, 3, 2, 2], w: [2, 2, 2, 2], opts: {} },
  ];
  for (const c of tcases) {
    test(`convTranspose2d ${c.name} x[${c.x}] w[${c.w}] with bias`, () => {
      gradcheck((x, w, b) => ax.convTranspose2d(x!, w!, { ...c.opts, bias: b! }), [rnd64(c.x, 1), rnd64(c.w, 2), rnd64([c.w[2]!], 3)]);
    });
  }
});

describe('shape op gradients', () => {
  const x = () => rnd64([2, 3, 4], 1);
  test('reshape', () => gradcheck((t) => ax.reshape(t, [4, -1]), [x()]));
  test('permute', () => gradcheck((t) => ax.permute(t, [2, 0, 1]), [x()]));
  test('transpose', () => gradcheck((t) => ax.transpose(t, 0, 2), [x()]));
  test('slice', () => gradcheck((t) => ax.slice(t, [1, 0, 1], [1, 2, -1]), [x()]));
  test('pad', () => gradcheck((t) => ax.pad(t, [[1, 0], [0, 2], [1, 1]], 3), [x()]));
  test('concat along 1', () => gradcheck((a, b) => ax.concat([a!, b!], 1), [x(), rnd64([2, 2, 4], 2)]));
  test('split and chunk', () => {
    gradcheck((t) => ax.mul(ax.split(t, [1, 3], 2)[1]!, 2), [x()]);
    gradcheck((t) => { const [a, b] = ax.chunk(t, 2, 2); return ax.mul(a!, b!); }, [x()]);
  });
  test('downShift and rightShift', () => {
    gradcheck((t) => ax.downShift(t), [rnd64([2, 3, 4, 2], 3)]);
    gradcheck((t) => ax.rightShift(t), [rnd64([2, 3, 4, 2], 4)]);
  });
  test('embedding with repeated indices accumulates', () => {
    const idx = ax.tensor([[0, 2], [2, 2]], undefined, 'int32');
    gradcheck((t) => ax.embedding(t, idx), [rnd64([3, 4], 5)]);
  });
  test('cast float64 → float64 is the identity and int casts carry no gradient', () => {
    gradcheck((t) => ax.mul(ax.cast(t, 'float64'), 3), [x()]);
  });
});

describe('functional gradients', () => {
  test('layerNorm with weight and bias', () => {
    gradcheck((x, w, b) => ax.layerNorm(x!, w!, b!), [rnd64([2, 3, 5], 1), rnd64([5], 2), rnd64([5], 3)]);
  });
  test('crossEntropy, every reduction', () => {
    const targets = ax.tensor([[0, 3, 1], [2, 2, 0]], undefined, 'int32');
    for (const red of ['mean', 'sum', 'none'] as const) {
      gradcheck((l) => ax.crossEntropy(l, targets, red), [rnd64([2, 3, 4], 4)]);
    }
  });
  test('binaryCrossEntropyWithLogits', () => {
    const targets = ax.cast(ax.greater(rnd64([3, 4], 9), 0), 'float64');
    gradcheck((l) => ax.binaryCrossEntropyWithLogits(l, targets, 'sum'), [ax.mul(rnd64([3, 4], 5), 4)]);
  });
  test('fused gatedActivation and crossEntropy match their composed twins, forward and backward', () => {
    gradcheck((x) => ax.gatedActivation(x), [rnd64([2, 3, 8], 8)]);
    const x = rnd64([2, 3, 8], 9);
    assertClose(ax.gatedActivation(x).toArray(), ax.gatedActivationComposed(x).toArray(), { atol: 1e-12 });
    const targets = ax.tensor([[0, 3, 1], [2, 2, 0]], undefined, 'int32');
    const logits = rnd64([2, 3, 4], 10);
    assertClose(ax.crossEntropy(logits, targets, 'none').toArray(), ax.crossEntropyComposed(logits, targets, 'none').toArray(), { atol: 1e-12 });
    const l1 = logits.detach().requireGrad();
    const l2 = logits.detach().requireGrad();
    ax.crossEntropy(l1, targets).backward();
    ax.crossEntropyComposed(l2, targets).backward();
    assertClose(l1.grad!.toArray(), l2.grad!.toArray(), { atol: 1e-12 });
  });
  test('fused gatedResidual matches its composed twin, forward and backward', () => {
    gradcheck((x, h) => ax.gatedResidual(x, h), [rnd64([2, 3, 4], 14), rnd64([2, 3, 8], 15)]);
    const x = rnd64([2, 3, 4], 16), h = ax.mul(rnd64([2, 3, 8], 17), 6);
    assertClose(ax.gatedResidual(x, h).toArray(), ax.gatedResidualComposed(x, h).toArray(), { atol: 1e-12 });
    const [x1, h1, x2, h2] = [x, h, x, h].map((t) => t.detach().requireGrad());
    const w = rnd64([2, 3, 4], 18);
    ax.sum(ax.mul(ax.gatedResidual(x1!, h1!), w)).backward();
    ax.sum(ax.mul(ax.gatedResidualComposed(x2!, h2!), w)).backward();
    assertClose(x1!.grad!.toArray(), x2!.grad!.toArray(), { atol: 1e-12 });
    assertClose(h1!.grad!.toArray(), h2!.grad!.toArray(), { atol: 1e-12 });
    assert.throws(() => ax.gatedResidual(x, rnd64([2, 3, 6], 19)), /gatedResidual: h must be x's shape \[2, 3, 4\] with the last axis doubled/);
  });
  test('fused concatElu matches its composed twin, forward and backward, both signs and zero', () => {
    gradcheck((x) => ax.concatElu(x), [rnd64([2, 3, 5], 11)]);
    const x = ax.concat([rnd64([2, 3, 5], 12), ax.zeros([2, 3, 1], 'float64')], -1);
    assertClose(ax.concatElu(x).toArray(), ax.concatEluComposed(x).toArray(), { atol: 1e-12 });
    const x1 = x.detach().requireGrad();
    const x2 = x.detach().requireGrad();
    const w = rnd64([2, 3, 12], 13);
    ax.sum(ax.mul(ax.concatElu(x1), w)).backward();
    ax.sum(ax.mul(ax.concatEluComposed(x2), w)).backward();
    assertClose(x1.grad!.toArray(), x2.grad!.toArray(), { atol: 1e-12 });
  });
  test('dropout: the gradient is the same mask as the forward', () => {
    const gen = () => new Generator(7);
    gradcheck((t) => ax.dropout(t, 0.3, true, gen()), [rnd64([4, 5], 1)]);
  });
});
