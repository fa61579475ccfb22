// PixelRNN's receptive fields, exactly: which inputs a Row LSTM layer and a Diagonal BiLSTM layer
// (each direction, and the two added) see, and which image pixels whole models see, measured by
// exact zero / non-zero gradients against the sets the paper's definitions give. Also the skew,
// the forget-gate bias, the learned initial states and the single residual around a layer.

import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import * as ax from '../../ops/index.js';
import { Generator } from '../../tensor/random.js';
import { Tensor } from '../../tensor/tensor.js';
import { createModel } from '../index.js';
import { DiagonalBiLSTMLayer, flipWidth, skew, unskew, type DiagonalBiLSTMConfig } from './diagonal-bilstm.js';
import { RowLSTMLayer, type RowLSTMConfig } from './row-lstm.js';
import type { Module } from '../../nn/index.js';
import { assertClose } from '../../testing/gradcheck.js';

const H = 6, W = 7;

/** Pixels (r', c') whose input has a non-zero gradient on output (r, c) of f: [H·W] booleans. */
function seen(f: (x: Tensor) => Tensor, channels: number, r: number, c: number, seed = 3): boolean[] {
  const x = ax.randn([1, H, W, channels], { generator: new Generator(seed) }).requireGrad();
  const y = f(x);
  const proj = new Float32Array(y.size);
  const per = y.shape[3]!;
  for (let k = 0; k < per; k++) proj[(r * W + c) * per + k] = 1 + k * 0.37;
  ax.sum(ax.mul(y, new Tensor(proj, y.shape))).backward();
  const g = x.grad!.data;
  return Array.from({ length: H * W }, (_, p) => [...Array(channels).keys()].some((ch) => g[p * channels + ch] !== 0));
}

function expectField(got: boolean[], want: (r: number, c: number) => boolean, label: string): void {
  for (let p = 0; p < H * W; p++) {
    const r = Math.floor(p / W), c = p % W;
    assert.equal(got[p], want(r, c), `${label}: input (${r}, ${c}) ${want(r, c) ? 'should be seen but is not' : 'is seen but must not be'}`);
  }
}

const base = { height: H, width: W, channels: 1, likelihood: { kind: 'bernoulli' as const }, numClasses: 0, conditionDim: 0, hiddenChannels: 3, layers: 1, firstKernelSize: 3, outputHidden: 4, forgetBias: 1 };
const noCond = {};

describe('Row LSTM', () => {
  for (const k of [3, 5]) {
    test(`a layer's output at (r, c) sees exactly the triangle: row r − d, columns c − (d + 1)·⌊k/2⌋ … c + d·⌊k/2⌋ (k = ${k})`, () => {
      const cfg: RowLSTMConfig = { ...base, kind: 'row-lstm', kernelSize: k };
      const layer = new RowLSTMLayer(cfg, 1, new Generator(1));
      const r0 = Math.floor(k / 2);
      for (const [r, c] of [[5, 3], [4, 0], [3, 6], [0, 2]] as const) {
        const got = seen((x) => layer.forward(x, noCond), 6, r, c);
        expectField(got, (rr, cc) => rr <= r && cc >= c - (r - rr + 1) * r0 && cc <= c + (r - rr) * r0, `k ${k} output (${r}, ${c})`);
      }
    });
  }
  test('never sees the row below, nor pixels to the right in its own row', () => {
    const cfg: RowLSTMConfig = { ...base, kind: 'row-lstm', kernelSize: 3 };
    const layer = new RowLSTMLayer(cfg, 1, new Generator(2));
    const got = seen((x) => layer.forward(x, noCond), 6, 2, 3);
    for (let c = 0; c < W; c++) assert.equal(got[3 * W + c], false, `row below, column ${c}`);
    for (let c = 4; c < W; c++) assert.equal(got[2 * W + c], false, `own row, column ${c}`);
    // The row above: the triangle reaches one column further right per row up, and no further.
    assert.equal(got[1 * W + 4], true);
    assert.equal(got[1 * W + 5], false);
  });
});

describe('Diagonal BiLSTM', () => {
  const cfg: DiagonalBiLSTMConfig = { ...base, kind: 'diagonal-bilstm' };
  const layer = new DiagonalBiLSTMLayer(cfg, 1, new Generator(4));
  const cases = [[5, 3], [3, 0], [2, 6], [0, 0], [0, 4], [5, 6]] as const;
  test('the forward state at (r, c) sees exactly (r\' ≤ r, c\' ≤ c): 2×1 taps on rows r − 1 and r, top-padded', () => {
    for (const [r, c] of cases) expectField(seen((x) => layer.directions(x, noCond)[0], 6, r, c), (rr, cc) => rr <= r && cc <= c, `forward (${r}, ${c})`);
  });
  test('the backward state at (r, c), mirrored and flipped back, sees exactly (r\' ≤ r, c\' ≥ c)', () => {
    for (const [r, c] of cases) expectField(seen((x) => layer.directions(x, noCond)[1], 6, r, c), (rr, cc) => rr <= r && cc >= c, `backward (${r}, ${c})`);
  });
  test('the layer output at (r, c) = forward(r, c) + backward(r − 1, c) sees exactly the whole causal context: every row above and the row up to c', () => {
    for (const [r, c] of cases) expectField(seen((x) => layer.forward(x, noCond), 6, r, c), (rr, cc) => rr < r || (rr === r && cc <= c), `output (${r}, ${c})`);
  });
  test('one residual around the whole bidirectional layer: output = x + 1×1(forward + backward shifted down a row)', () => {
    const x = ax.randn([2, H, W, 6], { generator: new Generator(9) });
    const [f, b] = layer.directions(x, noCond);
    const want = ax.add(x, layer.output.forward(ax.add(f, ax.downShift(b))));
    assertClose(layer.forward(x, noCond).data, want.data, { atol: 1e-6, rtol: 1e-6 });
  });
  test('skew shifts row r right by r into an n × (2n − 1) map, step-major; unskew and flipWidth undo it', () => {
    const x = ax.randn([2, 4, 4, 3], { generator: new Generator(5) });
    const s = skew(x); // [7, 2, 4, 3]
    assert.deepEqual(s.shape, [7, 2, 4, 3]);
    for (let j = 0; j < 7; j++) for (let n = 0; n < 2; n++) for (let r = 0; r < 4; r++) for (let ch = 0; ch < 3; ch++) {
      const c = j - r;
      const want = c >= 0 && c < 4 ? x.data[((n * 4 + r) * 4 + c) * 3 + ch]! : 0;
      assert.equal(s.data[((j * 2 + n) * 4 + r) * 3 + ch], want, `skewed (${j}, ${n}, ${r}, ${ch})`);
    }
    assert.deepEqual(Array.from(unskew(s, 4).data), Array.from(x.data));
    assert.deepEqual(Array.from(flipWidth(flipWidth(x)).data), Array.from(x.data));
    assert.equal(flipWidth(x).data[0], x.data[3 * 3]);
  });
});

/** The image pixels a model's output at (r, c) may read, from the paper's definitions by set propagation. */
function modelField(kind: 'row-lstm' | 'diagonal-bilstm', layers: number, k0: number, k: number): (r: number, c: number) => Set<number> {
  const a = Math.floor(k0 / 2), rad = Math.floor(k / 2);
  const inside = (r: number, c: number) => r >= 0 && r < H && c >= 0 && c < W;
  let f: Set<number>[] = [];
  for (let r = 0; r < H; r++) for (let c = 0; c < W; c++) {
    const s = new Set<number>();
    for (let dy = -a; dy <= 0; dy++) for (let dx = -a; dx <= a; dx++) if ((dy < 0 || dx < 0) && inside(r + dy, c + dx)) s.add((r + dy) * W + c + dx);
    f.push(s);
  }
  for (let l = 0; l < layers; l++) {
    const next: Set<number>[] = [];
    const state: Set<number>[] = [];
    for (let r = 0; r < H; r++) for (let c = 0; c < W; c++) {
      const s = new Set<number>(f[r * W + c]);
      if (kind === 'row-lstm') {
        const st = new Set<number>();
        for (let d = 0; d <= rad; d++) if (c - d >= 0) for (const q of f[r * W + c - d]!) st.add(q);
        if (r > 0) for (let d = -rad; d <= rad; d++) if (inside(r - 1, c + d)) for (const q of state[(r - 1) * W + c + d]!) st.add(q);
        state.push(st);
        for (const q of st) s.add(q);
      } else {
        for (let rr = 0; rr < H; rr++) for (let cc = 0; cc < W; cc++) if (rr < r || (rr === r && cc <= c)) for (const q of f[rr * W + cc]!) s.add(q);
      }
      next.push(s);
    }
    f = next;
  }
  return (r, c) => f[r * W + c]!;
}

describe('whole models see exactly what the paper\'s layers compose to', () => {
  for (const kind of ['row-lstm', 'diagonal-bilstm'] as const) {
    for (const [layers, k0] of [[1, 3], [2, 3], [2, 5]] as const) {
      test(`${kind}: ${layers} layers after a ${k0}×${k0} mask-A convolution`, () => {
        const model = createModel({ ...base, kind, layers, firstKernelSize: k0 }, { seed: 6 });
        // Biases that keep the output ReLUs open: a ReLU shut at the measured pixel would hide every input.
        for (const [name, p] of model.namedParameters()) if (/^(skips\.\d+|outHidden)\.bias$/.test(name)) p.data.fill(20);
        const field = modelField(kind, layers, k0, 3);
        for (const [r, c] of [[5, 3], [3, 0], [2, 6], [5, 6]] as const) {
          const want = field(r, c);
          expectField(seen((x) => model.network(x, {}), 1, r, c), (rr, cc) => want.has(rr * W + cc), `${kind} pixel (${r}, ${c})`);
        }
      });
    }
  }
});

describe('LSTM details', () => {
  const paramsOf = (m: Module) => Object.fromEntries(m.namedParameters());
  test('forget-gate biases start at forgetBias, the other gates\' biases do not; h0 and c0 are learned parameters that get gradients', () => {
    for (const kind of ['row-lstm', 'diagonal-bilstm'] as const) {
      const model = createModel({ ...base, kind, hiddenChannels: 5, forgetBias: 2 }, { seed: 1 });
      const p = paramsOf(model);
      const bias = p['layers.0.inputToState.bias']!.data;
      const dirs = bias.length / 20;
      for (let d = 0; d < dirs; d++) for (let j = 0; j < 20; j++) {
        const isForget = j >= 5 && j < 10;
        assert.equal(bias[d * 20 + j] === 2, isForget, `${kind} direction ${d} gate channel ${j}`);
      }
      const images = ax.randint(0, 2, [2, H, W, 1], { generator: new Generator(2) });
      model.loss(images).backward();
      const states = Object.entries(p).filter(([name]) => /\.(h0|c0)$/.test(name));
      assert.equal(states.length, 2 * dirs, `${kind}: h0 and c0 per direction`);
      for (const [name, t] of states) assert.ok(t.grad && t.grad.data.some((v) => v !== 0), `${kind} ${name} has no gradient`);
    }
  });
  test('colour with h not a multiple of 3 (h = 5 and 7): no channel sees itself or later elements, each sees its pixel\'s earlier channels', () => {
    for (const kind of ['row-lstm', 'diagonal-bilstm'] as const) {
      for (const hc of [5, 7]) {
        const model = createModel({ ...base, kind, height: 3, width: 3, channels: 3, likelihood: { kind: 'categorical', levels: 4 }, hiddenChannels: hc }, { seed: 3 });
        for (const [name, p] of model.namedParameters()) if (/^(skips\.\d+|outHidden)\.bias$/.test(name)) p.data.fill(20);
        const x = ax.randn([1, 3, 3, 3], { generator: new Generator(4) });
        for (let p = 0; p < 9; p++) for (let ch = 0; ch < 3; ch++) {
          const xin = x.detach().requireGrad();
          const y = model.network(xin, {});
          const per = y.shape[3]! / 3;
          const proj = new Float32Array(y.size);
          for (let k = 0; k < per; k++) proj[p * y.shape[3]! + ch * per + k] = 1;
          ax.sum(ax.mul(y, new Tensor(proj, y.shape))).backward();
          const g = xin.grad!.data;
          for (let q = 0; q < 9; q++) for (let cc = 0; cc < 3; cc++) {
            if (q > p || (q === p && cc >= ch)) assert.equal(g[q * 3 + cc], 0, `${kind} h ${hc}: pixel ${p} channel ${ch} sees pixel ${q} channel ${cc}`);
          }
          // …and it does see the pixel's earlier channels (R → G → B through the masks).
          for (let cc = 0; cc < ch; cc++) assert.ok(g[p * 3 + cc]! !== 0, `${kind} h ${hc}: pixel ${p} channel ${ch} does not see its channel ${cc}`);
        }
      }
    }
  });
});
