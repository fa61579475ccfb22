// rowLstmStep on the module (wasm/cached_step.c). A plan becomes one resident block the first time
// it is stepped: a descriptor of int32 fields, the weights packed for the products, and mirrors of
// the state arrays. The plan's arrays stay the truth — the sampler writes sampled values into
// `image` and moves rows of states between calls — so each call copies in what the sampler may
// have changed that the pixel reads (the image at the first convolution's taps, the previous
// row's h around x and c at x) and copies out what the step wrote (each layer's input row and
// states at x, the logits). The input rows are written by steps only (the contract), so their
// mirrors are copied in once, when the block is made.

import type { Kernels, RowLSTMStepPlan, StepDense } from '../../kernels/contracts.js';
import { ArgumentError } from '../../errors.js';
import { PLAN_TAG, type WasmHeap } from './heap.js';
import { NR, type WasmExports } from './exports.js';

// The descriptor's fields (the enums of wasm/cached_step.c).
const P = {
  n: 0, H: 1, W: 2, C: 3, hidden: 4, k: 5, L: 6, y: 7, x: 8, out: 9, outHidden: 10,
  image: 11, firstTaps: 12, t0: 13, firstW: 14, firstB: 15, skipW: 16, skipB: 17, ohW: 18, ohB: 19, outW: 20, outB: 21,
  logits: 22, scratch: 23, layers: 32,
} as const;
const LF = { rows: 0, taps: 1, ti: 2, gates: 3, gateBias: 4, outW: 5, outB: 6, prevH: 7, prevC: 8, curH: 9, curC: 10, count: 11 } as const;

/** Where a plan's pieces sit in its block (byte offsets) — what a call's copies need. */
interface PlanLayout {
  desc: number;
  image: number;
  logits: number;
  layers: { rows: number; prevH: number; prevC: number; curH: number; curC: number }[];
}

const align = (n: number): number => (n + 15) & ~15;
const packedBytes = (k: number, n: number): number => 4 * Math.ceil(n / NR) * NR * k;

function expectLength(name: string, a: ArrayLike<number>, n: number): void {
  if (a.length !== n) throw new ArgumentError('rowLstmPlan', name, `holds ${a.length} elements, expected ${n}`);
}

/** Refuses a plan whose arrays disagree with its sizes (the module would read past them). */
function checkPlan(plan: RowLSTMStepPlan): void {
  const { n, height: H, width: W, channels: C, hidden: h, kernel: k } = plan;
  const f2 = 2 * h, g4 = 4 * h, L = plan.layers.length, t0 = plan.firstTaps.length / 2;
  for (const [name, v] of Object.entries({ n, height: H, width: W, channels: C, hidden: h, kernel: k })) {
    if (!Number.isInteger(v) || v < 1) throw new ArgumentError('rowLstmPlan', name, `must be a positive integer, got ${v}`);
  }
  if (k % 2 !== 1) throw new ArgumentError('rowLstmPlan', 'kernel', `must be odd, got ${k}`);
  if (!Number.isInteger(t0)) throw new ArgumentError('rowLstmPlan', 'firstTaps', `holds ${plan.firstTaps.length} integers, expected (dy, dx) pairs`);
  if (plan.rows.length !== L) throw new ArgumentError('rowLstmPlan', 'rows', `holds ${plan.rows.length} rows, expected one per layer (${L})`);
  expectLength('image', plan.image, n * H * W * C);
  const dense = (name: string, d: StepDense, cin: number, cout: number): void => {
    if (d.cin !== cin || d.cout !== cout) throw new ArgumentError('rowLstmPlan', name, `is ${d.cin} → ${d.cout}, expected ${cin} → ${cout}`);
    expectLength(`${name}.weight`, d.weight, cin * cout);
    expectLength(`${name}.bias`, d.bias, cout);
  };
  dense('first', plan.first, t0 * C, f2);
  plan.rows.forEach((r, l) => expectLength(`rows[${l}]`, r, n * W * f2));
  plan.layers.forEach((layer, l) => {
    expectLength(`layers[${l}].gates`, layer.gates, (layer.inputTaps.length * f2 + k * h) * g4);
    expectLength(`layers[${l}].gateBias`, layer.gateBias, n * g4);
    dense(`layers[${l}].output`, layer.output, h, f2);
    for (const s of ['prevH', 'prevC', 'curH', 'curC'] as const) expectLength(s, layer[s], n * W * h);
    if (layer.inputTaps.some((dx) => dx > 0)) throw new ArgumentError('rowLstmPlan', `layers[${l}].inputTaps`, 'reads a later column (dx > 0)');
  });
  dense('skip', plan.skip, L * f2, f2);
  dense('outHidden', plan.outHidden, f2, plan.outHidden.cout);
  dense('out', plan.out, plan.outHidden.cout, plan.out.cout);
  expectLength('logits', plan.logits, n * plan.out.cout);
}

/** Floats of scratch the C step needs (its own layout, plus guard room). */
function scratchFloats(plan: RowLSTMStepPlan): number {
  const { n, channels: C, hidden: h, kernel: k } = plan;
  const f2 = 2 * h, L = plan.layers.length, t0 = plan.firstTaps.length / 2, oh = plan.outHidden.cout;
  const kmax = Math.max(...plan.layers.map((l) => l.inputTaps.length * f2 + k * h));
  return n * t0 * C + n * f2 + n * kmax + n * 4 * h + n * h + n * L * f2 + 2 * n * Math.max(f2, oh) + 64;
}

export function rowLstmStepKernel(w: WasmExports, heap: WasmHeap): Kernels['rowLstmStep'] {
  const ids = new WeakMap<RowLSTMStepPlan, number>();
  const layouts = new WeakMap<RowLSTMStepPlan, PlanLayout>();
  let nextId = -1;

  /** Copies the plan into a fresh resident block: descriptor, packed weights, state mirrors. */
  function build(plan: RowLSTMStepPlan, key: number): PlanLayout {
    checkPlan(plan);
    const { n, height: H, width: W, channels: C, hidden: h, kernel: k } = plan;
    const f2 = 2 * h, g4 = 4 * h, L = plan.layers.length, t0 = plan.firstTaps.length / 2;
    // Sizes first, to ask for one block.
    let bytes = align(4 * (P.layers + LF.count * L)) + align(4 * Math.max(plan.firstTaps.length, 1));
    const dense = (d: StepDense): number => packedBytes(d.cin, d.cout) + align(4 * d.cout);
    bytes += dense(plan.first) + dense(plan.skip) + dense(plan.outHidden) + dense(plan.out);
    for (const layer of plan.layers) {
      const K = layer.inputTaps.length * f2 + k * h;
      bytes += align(4 * Math.max(layer.inputTaps.length, 1)) + packedBytes(K, g4) + align(4 * n * g4) + dense(layer.output);
      bytes += align(4 * n * W * f2) + 4 * align(4 * n * W * h);
    }
    bytes += align(4 * n * H * W * C) + align(4 * plan.logits.length) + align(4 * scratchFloats(plan));

    const base = heap.resident(key, -1, PLAN_TAG, bytes);
    let at = base;
    const take = (b: number): number => {
      const here = at;
      at += align(b);
      return here;
    };
    const desc = take(4 * (P.layers + LF.count * L));
    const ints = (values: Int32Array): number => {
      const p = take(4 * Math.max(values.length, 1));
      heap.i32.set(values, p >> 2);
      return p;
    };
    const floats = (values: Float32Array): number => {
      const p = take(4 * values.length);
      heap.f32.set(values, p >> 2);
      return p;
    };
    const packed = (weight: Float32Array, cin: number, cout: number): number => {
      const p = take(packedBytes(cin, cout));
      const raw = heap.scratch(4 * weight.length);
      heap.f32.set(weight, raw >> 2);
      w.pack_b(raw, cin, cout, 0, p);
      heap.dropScratch();
      return p;
    };
    const d = new Int32Array(P.layers + LF.count * L);
    d[P.n] = n; d[P.H] = H; d[P.W] = W; d[P.C] = C; d[P.hidden] = h; d[P.k] = k; d[P.L] = L;
    d[P.out] = plan.out.cout; d[P.outHidden] = plan.outHidden.cout; d[P.t0] = t0;
    d[P.firstTaps] = ints(plan.firstTaps);
    d[P.firstW] = packed(plan.first.weight, plan.first.cin, plan.first.cout);
    d[P.firstB] = floats(plan.first.bias);
    d[P.skipW] = packed(plan.skip.weight, plan.skip.cin, plan.skip.cout);
    d[P.skipB] = floats(plan.skip.bias);
    d[P.ohW] = packed(plan.outHidden.weight, plan.outHidden.cin, plan.outHidden.cout);
    d[P.ohB] = floats(plan.outHidden.bias);
    d[P.outW] = packed(plan.out.weight, plan.out.cin, plan.out.cout);
    d[P.outB] = floats(plan.out.bias);
    const layers: PlanLayout['layers'] = [];
    plan.layers.forEach((layer, l) => {
      const o = P.layers + l * LF.count;
      const K = layer.inputTaps.length * f2 + k * h;
      d[o + LF.taps] = ints(layer.inputTaps);
      d[o + LF.ti] = layer.inputTaps.length;
      d[o + LF.gates] = packed(layer.gates, K, g4);
      d[o + LF.gateBias] = floats(layer.gateBias);
      d[o + LF.outW] = packed(layer.output.weight, h, f2);
      d[o + LF.outB] = floats(layer.output.bias);
      const s = { rows: take(4 * n * W * f2), prevH: take(4 * n * W * h), prevC: take(4 * n * W * h), curH: take(4 * n * W * h), curC: take(4 * n * W * h) };
      heap.f32.set(plan.rows[l]!, s.rows >> 2); // what earlier steps of this row wrote
      d[o + LF.rows] = s.rows; d[o + LF.prevH] = s.prevH; d[o + LF.prevC] = s.prevC; d[o + LF.curH] = s.curH; d[o + LF.curC] = s.curC;
      layers.push(s);
    });
    const image = take(4 * n * H * W * C);
    const logits = take(4 * plan.logits.length);
    d[P.image] = image; d[P.logits] = logits; d[P.scratch] = take(4 * scratchFloats(plan));
    heap.i32.set(d, desc >> 2);
    if (at > base + bytes) throw new Error('arpix wasm backend: a rowLstmStep plan outgrew its block (a layout bug)');
    return { desc, image, logits, layers };
  }

  return (plan, y, x) => {
    const { n, height: H, width: W, channels: C, hidden: h, kernel: k } = plan;
    if (!Number.isInteger(y) || !Number.isInteger(x) || y < 0 || y >= H || x < 0 || x >= W) {
      throw new ArgumentError('rowLstmStep', 'pixel', `(${y}, ${x}) is off the image (${H}×${W})`);
    }
    heap.begin();
    let key = ids.get(plan);
    if (key === undefined) ids.set(plan, (key = nextId--));
    let layout = layouts.get(plan);
    if (heap.lookup(key, -1, PLAN_TAG) === null || layout === undefined) layouts.set(plan, (layout = build(plan, key)));
    const f32 = heap.f32, i32 = heap.i32;
    i32[(layout.desc >> 2) + P.y] = y;
    i32[(layout.desc >> 2) + P.x] = x;
    const f2 = 2 * h, r = k >> 1, L = plan.layers.length;

    // In: the image at the first convolution's taps (the sampler writes sampled values there).
    const img = plan.image, imgAt = layout.image >> 2, taps = plan.firstTaps;
    for (let t = 0; t < taps.length; t += 2) {
      const yy = y + taps[t]!, xx = x + taps[t + 1]!;
      if (yy < 0 || yy >= H || xx < 0 || xx >= W) continue;
      for (let i = 0; i < n; i++) {
        const from = ((i * H + yy) * W + xx) * C;
        for (let c = 0; c < C; c++) f32[imgAt + from + c] = img[from + c]!;
      }
    }
    // In: h of the previous row around x and c at x (the sampler moves rows of states). The
    // input rows need no copy: only steps write them, and a rebuilt block copied them whole.
    const lo = Math.max(0, x - r), hi = Math.min(W - 1, x + r);
    for (let l = 0; l < L; l++) {
      const layer = plan.layers[l]!, s = layout.layers[l]!;
      const ph = layer.prevH, pc = layer.prevC, phAt = s.prevH >> 2, pcAt = s.prevC >> 2;
      for (let i = 0; i < n; i++) {
        const to = (i * W + hi + 1) * h;
        for (let j = (i * W + lo) * h; j < to; j++) f32[phAt + j] = ph[j]!;
        const c0 = (i * W + x) * h;
        for (let j = c0; j < c0 + h; j++) f32[pcAt + j] = pc[j]!;
      }
    }

    if (heap.poison) {
      // What the step must write — the logits, each layer's input row and states at x — as NaN
      // first, so that an element it misses cannot pass for a value an earlier step left.
      f32.fill(NaN, layout.logits >> 2, (layout.logits >> 2) + plan.logits.length);
      for (const s of layout.layers) {
        for (let i = 0; i < n; i++) {
          f32.fill(NaN, (s.rows >> 2) + (i * W + x) * f2, (s.rows >> 2) + (i * W + x + 1) * f2);
          for (const at of [s.curH, s.curC]) f32.fill(NaN, (at >> 2) + (i * W + x) * h, (at >> 2) + (i * W + x + 1) * h);
        }
      }
    }
    w.row_lstm_step_f32(layout.desc);

    // Out: each layer's input row and states at x, and the logits.
    for (let l = 0; l < L; l++) {
      const layer = plan.layers[l]!, s = layout.layers[l]!;
      const row = plan.rows[l]!, rowAt = s.rows >> 2;
      const ch = layer.curH, cc = layer.curC, chAt = s.curH >> 2, ccAt = s.curC >> 2;
      for (let i = 0; i < n; i++) {
        const from = (i * W + x) * f2;
        for (let c = from; c < from + f2; c++) row[c] = f32[rowAt + c]!;
        const at = (i * W + x) * h;
        for (let j = at; j < at + h; j++) {
          ch[j] = f32[chAt + j]!;
          cc[j] = f32[ccAt + j]!;
        }
      }
    }
    heap.output(layout.logits, plan.logits);
  };
}
