// Cached sampling for PixelRNN. A layer's LSTM state at a pixel depends only on earlier pixels'
// states and on its input at that pixel, so each layer keeps its states and a new pixel costs its
// input-to-state product, one state-to-state product over the few states it reads, the gates and
// the 1×1 output — per layer. Row LSTM keeps the previous row's h and c; Diagonal BiLSTM keeps the
// forward direction's previous and current rows, and computes the backward direction of row
// r − 1 (right to left, from its stored input gates) once when row r starts, since row r's
// outputs read it shifted down by one row.

import type { DiagonalBiLSTM, DiagonalBiLSTMLayer } from '../models/diagonal-bilstm.js';
import type { LSTMState, PixelRNN, PixelRNNConfig } from '../models/pixelrnn.js';
import type { RowLSTM, RowLSTMLayer } from '../models/row-lstm.js';
import type { Conv2d } from '../nn/index.js';
import { add, matmul, noGrad } from '../ops/index.js';
import { Tensor } from '../tensor/tensor.js';
import type { Stepper } from './driver.js';
import { Cache, PixelConv, effectiveWeight } from './causal-conv.js';
import type { SampleSetup } from './options.js';

const sigmoid = (v: number): number => 1 / (1 + Math.exp(-v));

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

  /** taps [n, k·h] · w: [n, 4h]. */
  product(taps: Float32Array, n: number): Float32Array {
    return matmul(new Tensor(taps, [n, this.w.shape[0]!]), this.w).data as Float32Array;
  }

  /** z [n, 4h] + taps [n, k·h] · w, as a new array. */
  pre(z: Float32Array, taps: Float32Array, n: number): Float32Array {
    const s = this.product(taps, n);
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
      const o = sigmoid(z[base + j]!), f = sigmoid(z[base + h + j]!), ig = sigmoid(z[base + 2 * h + j]!), g = Math.tanh(z[base + 3 * h + j]!);
      const c = f * cp[j]! + ig * g;
      cOut[at + j] = c;
      hOut[at + j] = o * Math.tanh(c);
    }
  }
}

/**
 * A 1×1 convolution as a cached step applies it to [rows, Cin] values: one matrix product, with
 * its bias, an optional residual and an optional ReLU added in the same pass over the result.
 * Several 1×1 convolutions whose outputs are summed (the skip connections) stack into one: their
 * inputs side by side, their weights one above the other, their biases added.
 */
class Dense {
  private readonly weight: Tensor;
  private readonly bias: Float32Array | null;
  constructor(convs: readonly Conv2d[]) {
    const ws = convs.map((conv) => {
      if (conv.kernelSize[0] !== 1 || conv.kernelSize[1] !== 1) throw new Error('Dense: the convolution must be 1×1');
      return effectiveWeight(conv).data as Float32Array;
    });
    const cin = convs.reduce((a, conv) => a + conv.inChannels, 0);
    const cout = convs[0]!.outChannels;
    const w = new Float32Array(cin * cout);
    let at = 0;
    ws.forEach((wi) => { w.set(wi, at); at += wi.length; });
    this.weight = new Tensor(w, [cin, cout]);
    const biased = convs.filter((conv) => conv.bias);
    this.bias = biased.length ? new Float32Array(cout) : null;
    for (const conv of biased) {
      const b = conv.bias!.data as Float32Array;
      for (let j = 0; j < cout; j++) this.bias![j] += b[j]!;
    }
  }

  apply(x: Float32Array, rows: number, opts: { residual?: Float32Array; relu?: boolean } = {}): Float32Array {
    const [cin, cout] = this.weight.shape as [number, number];
    const y = matmul(new Tensor(x, [rows, cin]), this.weight).data as Float32Array;
    const { residual, relu } = opts;
    const b = this.bias;
    for (let i = 0; i < rows; i++) {
      for (let j = 0; j < cout; j++) {
        const k = i * cout + j;
        let v = y[k]!;
        if (b) v += b[j]!;
        if (residual) v += residual[k]!;
        y[k] = relu && v < 0 ? 0 : v;
      }
    }
    return y;
  }
}

/**
 * The shared skeleton: first layer, caches of every layer's output, skip sum and output layers.
 * layerAt returns layer l's output [n, 2h] at (y, x), its residual included.
 */
function pixelRNNStepper<C extends PixelRNNConfig>(
  model: PixelRNN<C>, s: SampleSetup,
  layerAt: (l: number, input: Cache, y: number, x: number) => Float32Array,
  beginRow: (y: number, features: Cache[]) => void,
): Stepper {
  const { n, h, w, c } = s;
  const hc = model.config.hiddenChannels;
  const levels = model.likelihood.levels;
  const layers = model.layers.length;
  const image = new Cache(n, h, w, c);
  const features = [...model.layers, null].map(() => new Cache(n, h, w, 2 * hc)); // first, then each layer's output
  const first = new PixelConv(model.first);
  const skips = new Dense([...model.skips]); // Σ_l skip_l(f_l) as one product over [f_1 … f_L]
  const outHidden = new Dense([model.outHidden]);
  const out = new Dense([model.out]);
  const stacked = new Float32Array(n * layers * 2 * hc);
  const canvas = s.canvas.data as Int32Array;
  for (let i = 0; i < image.data.length; i++) image.data[i] = (2 * canvas[i]!) / (levels - 1) - 1;
  return {
    beginRow: (y) => beginRow(y, features),
    pixel(y, x) {
      features[0]!.write(first.at(image, y, x), y, x);
      for (let l = 0; l < layers; l++) {
        const f = layerAt(l, features[l]!, y, x); // [n, 2h], the residual included
        features[l + 1]!.write(f, y, x);
        for (let i = 0; i < n; i++) stacked.set(f.subarray(i * 2 * hc, (i + 1) * 2 * hc), (i * layers + l) * 2 * hc);
      }
      const sum = skips.apply(stacked, n, { relu: true });
      return out.apply(outHidden.apply(sum, n, { relu: true }), n);
    },
    sampled(y, x, ch, values) {
      for (let i = 0; i < n; i++) image.data[((i * h + y) * w + x) * c + ch] = (2 * values[i]!) / (levels - 1) - 1;
    },
  };
}

/** Input-to-state (+ condition) of one layer at one pixel: [n, 4h · directions]. */
function gatesAt(layer: RowLSTMLayer | DiagonalBiLSTMLayer, conv: PixelConv, cond: Tensor | null, input: Cache, y: number, x: number): Float32Array {
  const z = conv.at(input, y, x);
  return (cond ? add(z, cond) : z).data as Float32Array;
}

/**
 * Row LSTM: row y's state-to-state term reads only row y − 1's hidden states, final when row y
 * starts, so it is computed for the whole row at once (one product over every column and image);
 * a pixel then costs its input-to-state product, the cell, and the output 1×1 per layer.
 */
export function rowLSTMCachedStepper(model: RowLSTM, s: SampleSetup): Stepper {
  const { n, w } = s;
  const hc = model.config.hiddenChannels;
  const g = 4 * hc;
  const layers = [...model.layers] as RowLSTMLayer[];
  const r = Math.floor(model.config.kernelSize / 2);
  const k = model.config.kernelSize;
  const weights = layers.map((l) => new StateWeights(l.state));
  const inConv = layers.map((l) => new PixelConv(l.inputToState));
  const output = layers.map((l) => new Dense([l.output]));
  const cond = layers.map((l) => noGrad(() => l.cond.forward(s.cond)));
  // Per layer: the previous row's h and c [n, w, h] (h0, c0 before the first row), the current
  // row's, and the previous row's state-to-state term [n, w, 4h].
  const fill = (v: Float32Array) => { const a = new Float32Array(n * w * hc); for (let p = 0; p < n * w; p++) a.set(v, p * hc); return a; };
  const prevH = weights.map((sw) => fill(sw.h0));
  const prevC = weights.map((sw) => fill(sw.c0));
  const curH = layers.map(() => new Float32Array(n * w * hc));
  const curC = layers.map(() => new Float32Array(n * w * hc));
  const rowTerm = layers.map(() => new Float32Array(n * w * g));
  const taps = new Float32Array(n * w * k * hc);
  const pre = new Float32Array(n * g);
  const hx = new Float32Array(n * hc);
  return pixelRNNStepper(model, s, (l, input, y, x) => {
    const z = gatesAt(layers[l]!, inConv[l]!, cond[l]!, input, y, x);
    const term = rowTerm[l]!;
    for (let i = 0; i < n; i++) {
      const from = (i * w + x) * g;
      for (let j = 0; j < g; j++) pre[i * g + j] = z[i * g + j]! + term[from + j]!;
    }
    cell(pre, n, hc, (i) => prevC[l]!.subarray((i * w + x) * hc, (i * w + x + 1) * hc), curH[l]!, curC[l]!, (i) => (i * w + x) * hc);
    for (let i = 0; i < n; i++) hx.set(curH[l]!.subarray((i * w + x) * hc, (i * w + x + 1) * hc), i * hc);
    return output[l]!.apply(hx, n, { residual: input.at(y, x).data as Float32Array });
  }, (y) => {
    layers.forEach((_, l) => {
      if (y > 0) {
        prevH[l]!.set(curH[l]!);
        prevC[l]!.set(curC[l]!);
      }
      // The previous row's h at columns x − r … x + r of every column x (zero off the image).
      taps.fill(0);
      for (let i = 0; i < n; i++) {
        for (let x = 0; x < w; x++) {
          for (let kk = 0; kk < k; kk++) {
            const col = x - r + kk;
            if (col >= 0 && col < w) taps.set(prevH[l]!.subarray((i * w + col) * hc, (i * w + col + 1) * hc), ((i * w + x) * k + kk) * hc);
          }
        }
      }
      rowTerm[l]!.set(weights[l]!.product(taps, n * w));
    });
  });
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
  const output = layers.map((l) => new Dense([l.output]));
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
    return output[l]!.apply(sum, n, { residual: input.at(y, x).data as Float32Array });
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
