// Cached sampling for PixelRNN. A layer's LSTM state at a pixel depends only on earlier pixels'
// states and on its input at that pixel, so each layer keeps its states and a new pixel costs its
// input-to-state product, one state-to-state product over the few states it reads, the gates and
// the 1×1 output — per layer. Row LSTM keeps the previous row's h and c and runs a whole pixel,
// every layer, in one rowLstmStep kernel call on a plan of stacked weights (a dozen tiny products
// as separate ops cost ~10 µs each of allocation and dispatch, several times their arithmetic);
// Diagonal BiLSTM keeps the forward direction's previous and current rows, and computes the
// backward direction of row r − 1 (right to left, from its stored input gates) once when row r
// starts, since row r's outputs read it shifted down by one row.

import type { DiagonalBiLSTM, DiagonalBiLSTMLayer } from './diagonal-bilstm.js';
import type { LSTMState, PixelRNN, PixelRNNConfig } from './pixelrnn.js';
import type { RowLSTM, RowLSTMLayer } from './row-lstm.js';
import type { RowLSTMStepLayer, RowLSTMStepPlan, StepDense } from '../../kernels/contracts.js';
import { add, matmul, noGrad, relu, rowLstmStep } from '../../ops/index.js';
import { Tensor } from '../../tensor/tensor.js';
import { sigmoid, tanh } from '../../backends/ts/portable-math.js';
import type { Stepper } from '../sampling/options.js';
import { Cache, PixelConv, Pointwise, inputImage, writeSampled } from '../sampling/causal-conv.js';
import type { SampleSetup } from '../sampling/options.js';

/** One direction's weights as a cached step reads them: [k·h, 4h], h0 and c0. */
class StateWeights {
  readonly w: Tensor;
  readonly h0: Float32Array;
  readonly c0: Float32Array;
  constructor(state: LSTMState) {
    const [kh, kw, h, g] = state.weight.shape as [number, number, number, number];
    this.w = new Tensor(Float32Array.from(state.weight.data), [kh * kw * h, g]);
    this.h0 = Float32Array.from(state.h0.data);
    this.c0 = Float32Array.from(state.c0.data);
  }

  /** z [n, 4h] += taps [n, k·h] · w, as a new array. */
  pre(z: Float32Array, taps: Float32Array, n: number): Float32Array {
    const s = matmul(new Tensor(taps, [n, this.w.shape[0]!]), this.w).data as Float32Array;
    const out = new Float32Array(z.length);
    for (let i = 0; i < z.length; i++) out[i] = z[i]! + s[i]!;
    return out;
  }
}

/**
 * The cell for n images from pre-activations z [n, 4h] (blocks o, f, i, g) and the previous cell
 * cPrev(i) [h] of image i; writes h and c of image i at hOut / cOut + offset(i).
 */
function cell(z: Float32Array, n: number, h: number, cPrev: (i: number) => Float32Array, hOut: Float32Array, cOut: Float32Array, offset: (i: number) => number): void {
  for (let i = 0; i < n; i++) {
    const cp = cPrev(i);
    const base = i * 4 * h;
    const at = offset(i);
    for (let j = 0; j < h; j++) {
      const o = sigmoid(z[base + j]!), f = sigmoid(z[base + h + j]!), ig = sigmoid(z[base + 2 * h + j]!), g = tanh(z[base + 3 * h + j]!);
      const c = f * cp[j]! + ig * g;
      cOut[at + j] = c;
      hOut[at + j] = o * tanh(c);
    }
  }
}

/** The shared skeleton: first layer, caches of every layer's output, skip sum and output layers. */
function pixelRNNStepper<C extends PixelRNNConfig>(
  model: PixelRNN<C>, s: SampleSetup,
  layerAt: (l: number, input: Cache, y: number, x: number) => Tensor,
  beginRow: (y: number, features: Cache[]) => void,
): Stepper {
  const { n, h, w, c } = s;
  const hc = model.config.hiddenChannels;
  const levels = model.likelihood.levels;
  const image = new Cache(n, h, w, c);
  const features = [...model.layers, null].map(() => new Cache(n, h, w, 2 * hc)); // first, then each layer's output
  const first = new PixelConv(model.first);
  const skips = [...model.skips].map((k) => new Pointwise(k));
  const outHidden = new Pointwise(model.outHidden);
  const out = new Pointwise(model.out);
  const canvas = s.canvas.data as Int32Array;
  inputImage(canvas, levels, image.data);
  return {
    beginRow: (y) => beginRow(y, features),
    pixel(y, x) {
      features[0]!.write(first.at(image, y, x), y, x);
      let sum: Tensor | null = null;
      skips.forEach((skip, l) => {
        const f = layerAt(l, features[l]!, y, x); // [n, 2h], the residual included
        features[l + 1]!.write(f, y, x);
        const term = skip.apply(f);
        sum = sum === null ? term : add(sum, term);
      });
      return out.apply(relu(outHidden.apply(relu(sum!)))).data as Float32Array;
    },
    sampled(y, x, ch, values) {
      writeSampled(image.data, s, y, x, ch, values, levels);
    },
  };
}

/** Input-to-state (+ condition) of one layer at one pixel: [n, 4h · directions]. */
function gatesAt(layer: RowLSTMLayer | DiagonalBiLSTMLayer, conv: PixelConv, cond: Tensor | null, input: Cache, y: number, x: number): Float32Array {
  const z = conv.at(input, y, x);
  return (cond ? add(z, cond) : z).data as Float32Array;
}

/** A float array on its own ArrayBuffer, whose memory a native step may keep pointing at. */
function planFloats(n: number, from?: ArrayLike<number>): Float32Array {
  const a = new Float32Array(new ArrayBuffer(4 * Math.max(n, 1)), 0, n);
  if (from) a.set(from);
  return a;
}

function planInts(values: readonly number[]): Int32Array {
  const a = new Int32Array(new ArrayBuffer(4 * Math.max(values.length, 1)), 0, values.length);
  a.set(values);
  return a;
}

/** A 1×1 convolution as a step's dense layer (a zero bias when it has none). */
function stepDense(p: Pointwise | PixelConv, cin: number, cout: number): StepDense {
  const { weight, bias } = p instanceof Pointwise ? p.parts : p.stacked;
  return { weight: planFloats(weight.length, weight), bias: planFloats(cout, bias ?? undefined), cin, cout };
}

/** Every image's gate bias [n, 4h]: the input-to-state bias plus the image's condition. */
function gateBias(bias: Float32Array | null, cond: Tensor | null, n: number, g: number): Float32Array {
  const out = planFloats(n * g);
  const c = cond ? (cond.data as Float32Array) : null;
  if (c && c.length !== n * g) throw new Error(`row-lstm cached sampler: the condition holds ${c.length} values, expected ${n}·${g}`);
  for (let i = 0; i < n; i++) for (let j = 0; j < g; j++) out[i * g + j] = (bias?.[j] ?? 0) + (c?.[i * g + j] ?? 0);
  return out;
}

/**
 * The Row LSTM's plan for rowLstmStep (src/kernels/contracts.ts): its weights stacked as one
 * pixel uses them — each layer's input-to-state taps and state-to-state taps in one matrix, every
 * skip in one — and its states. Row LSTM layers read only the current row of their input and the
 * previous row of their states, so rows and states are one image row each.
 */
export function rowLSTMStepPlan(model: RowLSTM, s: SampleSetup): RowLSTMStepPlan {
  const { n, h: height, w: width, c: channels } = s;
  const hc = model.config.hiddenChannels;
  const k = model.config.kernelSize;
  const f2 = 2 * hc, g4 = 4 * hc;
  const layers = [...model.layers] as RowLSTMLayer[];
  const first = new PixelConv(model.first);
  const stepLayers = layers.map((layer): RowLSTMStepLayer => {
    const conv = new PixelConv(layer.inputToState);
    const taps = conv.tapOffsets;
    if (taps.some(([dy, dx]) => dy !== 0 || dx > 0)) throw new Error('row-lstm cached sampler: the input-to-state convolution must read only the current row up to the pixel');
    const { weight, bias } = conv.stacked;
    const state = layer.state.weight.data as Float32Array; // [1, k, h, 4h] = [k·h, 4h]
    const gates = planFloats(weight.length + state.length);
    gates.set(weight, 0);
    gates.set(state, weight.length);
    const cond = noGrad(() => layer.cond.forward(s.cond));
    const fill = (v: Float32Array) => { const a = planFloats(n * width * hc); for (let q = 0; q < n * width; q++) a.set(v, q * hc); return a; };
    return {
      inputTaps: planInts(taps.map(([, dx]) => dx)), gates, gateBias: gateBias(bias, cond, n, g4),
      output: stepDense(new Pointwise(layer.output), hc, f2),
      prevH: fill(layer.state.h0.data as Float32Array), prevC: fill(layer.state.c0.data as Float32Array),
      curH: planFloats(n * width * hc), curC: planFloats(n * width * hc),
    };
  });
  // Σ_l skip_l(f_l) = [f_0 | … | f_{L−1}] · [W_0; …; W_{L−1}] + Σ_l b_l.
  const skips = [...model.skips].map((conv) => new Pointwise(conv).parts);
  const skipWeight = planFloats(skips.length * f2 * f2);
  const skipBias = planFloats(f2);
  skips.forEach(({ weight, bias }, l) => {
    skipWeight.set(weight, l * f2 * f2);
    if (bias) for (let j = 0; j < f2; j++) skipBias[j] += bias[j]!;
  });
  const oh = model.config.outputHidden;
  const params = model.paramsPerPixel;
  const levels = model.likelihood.levels;
  const image = inputImage(s.canvas.data as Int32Array, levels, planFloats(n * height * width * channels));
  return {
    n, height, width, channels, hidden: hc, kernel: k, image,
    firstTaps: planInts(first.tapOffsets.flat()), first: stepDense(first, first.tapOffsets.length * channels, f2),
    rows: layers.map(() => planFloats(n * width * f2)),
    layers: stepLayers,
    skip: { weight: skipWeight, bias: skipBias, cin: layers.length * f2, cout: f2 },
    outHidden: stepDense(new Pointwise(model.outHidden), f2, oh),
    out: stepDense(new Pointwise(model.out), oh, params),
    logits: planFloats(n * params),
  };
}

/** Row LSTM: one rowLstmStep per pixel; each row starts from the states the previous row left. */
export function rowLSTMCachedStepper(model: RowLSTM, s: SampleSetup): Stepper {
  const plan = rowLSTMStepPlan(model, s);
  const levels = model.likelihood.levels;
  return {
    beginRow(y) {
      if (y === 0) return;
      for (const layer of plan.layers) {
        layer.prevH.set(layer.curH);
        layer.prevC.set(layer.curC);
      }
    },
    pixel(y, x) {
      rowLstmStep(plan, y, x);
      return plan.logits.slice();
    },
    sampled(y, x, ch, values) {
      writeSampled(plan.image, s, y, x, ch, values, levels);
    },
  };
}

/**
 * The states of the skewed map's padding (left of each row's first pixel): every padding row of
 * column j holds the same state S_j, with S_{−1} = (h0, c0) and S_j the cell of zero input from
 * S_{j−1} read by both taps. Row r's first pixel reads S_{r−1} as its left neighbour.
 */
function paddingStates(sw: StateWeights, hc: number, rows: number): { h: Float32Array; c: Float32Array }[] {
  const out = [{ h: sw.h0, c: sw.c0 }];
  for (let j = 0; j < rows - 1; j++) {
    const prev = out[out.length - 1]!;
    const taps = new Float32Array(2 * hc);
    taps.set(prev.h, 0);
    taps.set(prev.h, hc);
    const pre = sw.pre(new Float32Array(4 * hc), taps, 1);
    const h = new Float32Array(hc), c = new Float32Array(hc);
    cell(pre, 1, hc, () => prev.c, h, c, () => 0);
    out.push({ h, c });
  }
  return out; // out[r] = S_{r−1}
}

export function diagonalBiLSTMCachedStepper(model: DiagonalBiLSTM, s: SampleSetup): Stepper {
  const { n, h, w } = s;
  const hc = model.config.hiddenChannels;
  const g = 4 * hc;
  const layers = [...model.layers] as DiagonalBiLSTMLayer[];
  const fw = layers.map((l) => new StateWeights(l.forwardState));
  const bw = layers.map((l) => new StateWeights(l.backwardState));
  const fPad = fw.map((sw) => paddingStates(sw, hc, h));
  const bPad = bw.map((sw) => paddingStates(sw, hc, h));
  const inConv = layers.map((l) => new PixelConv(l.inputToState));
  const output = layers.map((l) => new Pointwise(l.output));
  const cond = layers.map((l) => noGrad(() => l.cond.forward(s.cond)));
  const zs = layers.map(() => new Cache(n, h, w, 2 * g)); // every pixel's gates, both directions
  const row = () => layers.map(() => new Float32Array(n * w * hc));
  // Forward direction: rows y − 1 and y; backward direction: rows y − 2 and y − 1 (the one row y reads).
  const fPrevH = row(), fCurH = row(), fCurC = row();
  let bPrevH = row(), bPrevC = row(), bCurH = row(), bCurC = row();
  const px = (i: number, x: number) => (i * w + x) * hc;

  /** Backward direction of row y, right to left, from its stored gates and row y − 1's states. */
  function backwardRow(l: number, y: number): void {
    for (let x = w - 1; x >= 0; x--) {
      const z = new Float32Array(n * g);
      const taps = new Float32Array(n * 2 * hc);
      for (let i = 0; i < n; i++) {
        z.set(zs[l]!.data.subarray(((i * h + y) * w + x) * 2 * g + g, ((i * h + y) * w + x + 1) * 2 * g), i * g);
        if (y > 0) taps.set(bPrevH[l]!.subarray(px(i, x), px(i, x) + hc), i * 2 * hc);
        taps.set(x < w - 1 ? bCurH[l]!.subarray(px(i, x + 1), px(i, x + 1) + hc) : bPad[l]![y]!.h, i * 2 * hc + hc);
      }
      const pre = bw[l]!.pre(z, taps, n);
      cell(pre, n, hc, (i) => (x < w - 1 ? bCurC[l]!.subarray(px(i, x + 1), px(i, x + 1) + hc) : bPad[l]![y]!.c), bCurH[l]!, bCurC[l]!, (i) => px(i, x));
    }
  }

  return pixelRNNStepper(model, s, (l, input, y, x) => {
    const z = gatesAt(layers[l]!, inConv[l]!, cond[l]!, input, y, x); // [n, 2 · 4h]
    zs[l]!.write(z, y, x);
    const zf = new Float32Array(n * g);
    const taps = new Float32Array(n * 2 * hc);
    for (let i = 0; i < n; i++) {
      zf.set(z.subarray(i * 2 * g, i * 2 * g + g), i * g);
      if (y > 0) taps.set(fPrevH[l]!.subarray(px(i, x), px(i, x) + hc), i * 2 * hc); // row r − 1 (zero above the image)
      taps.set(x > 0 ? fCurH[l]!.subarray(px(i, x - 1), px(i, x - 1) + hc) : fPad[l]![y]!.h, i * 2 * hc + hc); // row r, previous column
    }
    const pre = fw[l]!.pre(zf, taps, n);
    cell(pre, n, hc, (i) => (x > 0 ? fCurC[l]!.subarray(px(i, x - 1), px(i, x - 1) + hc) : fPad[l]![y]!.c), fCurH[l]!, fCurC[l]!, (i) => px(i, x));
    // forward(y, x) + backward(y − 1, x)
    const sum = new Float32Array(n * hc);
    for (let i = 0; i < n; i++) {
      for (let j = 0; j < hc; j++) sum[i * hc + j] = fCurH[l]![px(i, x) + j]! + (y > 0 ? bPrevH[l]![px(i, x) + j]! : 0);
    }
    return add(output[l]!.apply(new Tensor(sum, [n, hc])), input.at(y, x));
  }, (y) => {
    if (y === 0) return;
    layers.forEach((_, l) => {
      fPrevH[l]!.set(fCurH[l]!);
      backwardRow(l, y - 1); // reads bPrev (row y − 2), writes bCur (row y − 1)
    });
    [bPrevH, bCurH] = [bCurH, bPrevH];
    [bPrevC, bCurC] = [bCurC, bPrevC];
  });
}
