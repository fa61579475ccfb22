// The portable mode's golden streams. A portable file must decode to the same bits on any machine
// that runs Node: its probabilities come from the ts backend in plain float arithmetic with
// arpix's own elementary functions (src/backends/ts/portable-math.ts), never the engine's Math.exp
// and kin. This file codes fixed images with a fixed tiny model of every family in the family
// table (every head, grey and colour, with and without labels) in portable mode, and compares the
// SHA-256 of each coded stream with the digest recorded here, where the file was written; then the
// same for the models' float32 parameters, and for the ts kernels in float64. The integer
// frequencies and float32 storage absorb most last-bit differences (the engine's Math.exp in
// place of arpix's changes none of the streams here, and only the float64 digest sees it), so
// the three digests go from what a file holds to where a difference would start.
//
// A failure here means one of two things:
// - on another machine or engine, with the same arpix: its portable numbers differ from these, and
//   portable files may not travel between it and other machines — a bug to fix (find the
//   function or kernel that rounds differently: src/backends/ts/portable-math.test.ts pins the
//   elementary functions alone);
// - after a change to arpix: the portable numbers changed. A changed stream digest means portable
//   files written by older versions no longer decode: that must not ship as it is — bump
//   FORMAT_VERSION (src/codec/format.ts) so that old files are refused with a clear line instead
//   of failing their checksum of the values, or keep the old numbers — and only then record the
//   new digests. A changed parameter or kernel digest with the same streams means the same risk
//   for other images: treat it the same way.
//
// The models' weights are not their initialisation (which draws normals through Math.log and
// Math.cos): every parameter is overwritten with uniforms from the counter-based generator, the
// same doubles everywhere.

import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { describe, test } from 'node:test';
import * as ax from '../ops/index.js';
import { Generator } from '../tensor/random.js';
import { Tensor } from '../tensor/tensor.js';
import { createModel } from '../models/index.js';
import type { AutoregressiveModel } from '../models/core/model.js';
import { familyCases, type CaseTemplate } from '../testing/families.js';
import { backendName, nativeAvailable, setBackend } from '../backends/registry.js';
import { compressValues, decompressBytes } from './compress.js';
import { readCompressed, writeCompressed } from './format.js';
import { TEST_PALETTE, codableImages } from '../testing/codec.js';

const PALETTE = TEST_PALETTE;
const templates: CaseTemplate[] = [
  { name: 'categorical grey', height: 4, width: 3, channels: 1, likelihood: { kind: 'categorical', levels: 16 } },
  { name: 'mixture RGB with labels', height: 3, width: 3, channels: 3, likelihood: { kind: 'logistic-mixture', nrMix: 2 }, numClasses: 3 },
  { name: 'bernoulli grey', height: 4, width: 4, channels: 1, likelihood: { kind: 'bernoulli' } },
  { name: 'palette RGB', height: 3, width: 3, channels: 3, likelihood: { kind: 'palette', k: 5, colours: PALETTE } },
];

/** Every parameter uniform in ±1/√fan (fan: its size over its largest axis), from a seeded generator. */
function portableWeights(model: AutoregressiveModel, seed: number): void {
  const g = new Generator(seed);
  for (const p of model.parameters()) {
    const d = p.data;
    const u = new Float64Array(d.length);
    g.uniform(u);
    const fan = Math.max(1, d.length / Math.max(1, ...p.shape));
    const s = 1 / Math.sqrt(fan);
    for (let i = 0; i < u.length; i++) d[i] = (2 * u[i]! - 1) * s;
  }
}


/** SHA-256 of each case's coded stream (not the header, which names the arpix version), recorded where this file was written. */
const GOLDEN: Record<string, string> = {
  "pixelcnn categorical grey": "bb2387bd419c3eff293a728893aeb0ead4de607087dfd0200e6d403ccede51fc",
  "pixelcnn mixture RGB with labels": "dd9d4aa42d463ca73794be907bd25f45d124fdb9d5e5eb1fa384eef2a4efcbc6",
  "pixelcnn bernoulli grey": "5c66b94c9c3bc6a255824a3206d3b19ff128c1159d94408061dccade5bd2d42a",
  "pixelcnn palette RGB": "1bfde60f31ba1cc1b3c9a7d4483c9138a99e72e28800aa29e78ce7ba171b7a17",
  "gated-pixelcnn categorical grey": "49a719d38a7e91f79690fa344fd3bbd98e94332dbc705f97e9a36150e225ae3e",
  "gated-pixelcnn mixture RGB with labels": "b0687804e294b0cde77973c723c38648bbc544041c0ee82ea9d95e93a8dec803",
  "gated-pixelcnn bernoulli grey": "fe8c5a01b854c503e2d990223a9f1d9d3702a2266c3a22594e0dd14239e27ba2",
  "gated-pixelcnn palette RGB": "b29ac3af06d62aaed33a47eb78f90f910290a6eada702bbb7797255d701c793b",
  "pixelcnn++ categorical grey": "6ae8393910dd6dfdc5f0909e37b224611a9384bb80dfcc16eecb03a7942e803c",
  "pixelcnn++ mixture RGB with labels": "88e0c6563856e8b7f4f6f68bc8fbdb2cb3f99d4afb36c9b07f7d54ac1057309b",
  "pixelcnn++ bernoulli grey": "6c29b6f80e80fe34b2e4082aa4b55c8cc824be17c84bcd8e970d7b0143cda19f",
  "image-transformer categorical grey": "690d897bb067cc4c137b36d689da3b2871677ce781695d36ad8ca27e69a11205",
  "image-transformer (local2d) categorical grey": "1a0cb57ba4a4a3ba340fae5eb60f70b439bbbee33d511b139b1667efe0b6b768",
  "image-transformer (local2d-tall) categorical grey": "36e72ea17ccd96711aa24b5afa49d18ce53081481a584b14bbb5ac8dd9240256",
  "image-transformer (causal) categorical grey": "f4ab9ec03734511eed0dbb552bb03ae0170bceee2819c864d22e005c420cd776",
  "image-transformer (local1d-short-memory) categorical grey": "1e3875bb5c6fb8d588baec03367b4a9032c65c62b87fb1f03e8fbd0b0f06d540",
  "image-transformer mixture RGB with labels": "345c78a0a78295e0946431e9878755ea43ac3dda1d9b51ca179583657f1e4cf8",
  "image-transformer (local2d) mixture RGB with labels": "d313fbb6a2912e4cf5e354f3e3289e82ba61c19e7f48e0b57ee554052af04bca",
  "image-transformer (local2d-tall) mixture RGB with labels": "a3d19eaf17b5b553bbb4561db9945660f058498e43c594657cea173e632c15c2",
  "image-transformer (causal) mixture RGB with labels": "a3d19eaf17b5b553bbb4561db9945660f058498e43c594657cea173e632c15c2",
  "image-transformer (local1d-short-memory) mixture RGB with labels": "92f031f98417ee67f456ba8a13ef94a2aff0cd77760334f5fe45e3f623b32577",
  "image-transformer bernoulli grey": "06205e25f4e6b58b8c954b5de1dcbe57e12e945b75444237347bb34913a9290f",
  "image-transformer (local2d) bernoulli grey": "ff3109dbbe747d6b76a1963fca104ca63e8690669e02891bfafd94e0f703f72a",
  "image-transformer (local2d-tall) bernoulli grey": "809b4c30a65f6b8afbea36fca97467b48f79eb1470653bf11141a77c3b6f13d2",
  "image-transformer (causal) bernoulli grey": "68190c40acb7af8c97dd27378450f155a7c199e0c541065bf91c663f805e7f98",
  "image-transformer (local1d-short-memory) bernoulli grey": "3072a6d7f69cab3752c9ff0faa664abe7cdbb85d1b1a899c0f70675c51c4f86f",
  "image-transformer palette RGB": "6928e610290a550071d94e454934eb69860f81a3dbe200e50245e4a8bef79765",
  "image-transformer (local2d) palette RGB": "02d6fcb0e1bd62db89ee8f18241cdc02f57d71c76ab25bc1256eab369ca7d282",
  "image-transformer (local2d-tall) palette RGB": "117f560e0e9f4e0b0e50bcb9e0ba8a1a753d93be21983f8b6b6c9ffb0004f08c",
  "image-transformer (causal) palette RGB": "117f560e0e9f4e0b0e50bcb9e0ba8a1a753d93be21983f8b6b6c9ffb0004f08c",
  "image-transformer (local1d-short-memory) palette RGB": "08b0c234b98c36829a7faba0317458878f3c7f9cd70e4677bc0d9147a3eb1636",
  "image-gpt categorical grey": "0f04a0d180fd70e17c4e6c2b028f47c6319b68b50af0998276f44e021a8d7912",
  "image-gpt palette RGB": "44c0e0db6770ac6697f96e36ee117b2700564e16754dcc422eb4941610a6f134",
  "row-lstm categorical grey": "4fc4c7827b44153e513dacea0a12e4909dd1f2111e43c72aa0f5bb5a800169ab",
  "row-lstm mixture RGB with labels": "9d76d81742e97613b51e57e38f20c2fd3b81da1bb7b423e5b6d69bbdd800ac4a",
  "row-lstm bernoulli grey": "e1756fe5584db294cbc6484c03c98c3fa79862bdc149d7fe89c51ec4d2598b2a",
  "row-lstm palette RGB": "2cb78a03d916e1e71dc3624fb69baea84387bfe89f59546d9cf91b24d4838458",
  "diagonal-bilstm categorical grey": "31ca7c0fe2f2e8194a0da8602f08bc684c64f987b60f8b405991cb1de919b12a",
  "diagonal-bilstm mixture RGB with labels": "e24c5c978b85664ebac1b9ff3b7c7027f905c409fb738e36d7b724e6d3f669e0",
  "diagonal-bilstm bernoulli grey": "1cb0e4fdb1645dcb66df40f6d2564dad376cc0f26cc92eb35bce124f2325072f",
  "diagonal-bilstm palette RGB": "e1f1745d6fbeceaf80f8f083a31b59b31f828b1302a6f4255123a6b07ec0983f",
};

/** A portable file of format version 1, as arpix 0.1.0 wrote it (base64). */
const OLD_PORTABLE_FILE = 'QVJQSVhaDQoBAAcDAAMAAwMAAAAAAAIADrSG2xFDYHy7AY2gxvB/LOyHoofyfChnwp9P9SuRqw0ADmdhdGVkLXBpeGVsY25uAAUwLjEuMABcMYhZ2s8z1abBw+TJkzMIOsaI189xYbCYEJu8ur3oSBULmjXCJYDVsrW4vzpuO+98vqbk51qGUsV15YhA1EyqVgyXGnShB93gPIcKejBIueiI3RT5ESzHwR0+cPCitVa93NDJAJnVdt5/oDud0F3X+AjZICg=';

/** SHA-256 of the teacher-forced parameters of every case in turn (little-endian float32). */
const PARAMS_DIGEST = 'b6f6c515d0d393f2c8b74d4b49c70406dc85a977d9fb05d6208e152a111048a6';

/** A case's model with its portable weights, in evaluation mode, and its images and labels. */
function setup(cfg: ReturnType<typeof familyCases>[number][1]): { model: AutoregressiveModel; values: Tensor; labels: Int32Array | null } {
  const model = createModel(cfg, { seed: 5 });
  portableWeights(model, 7);
  model.eval();
  const n = 3;
  const labels = model.config.numClasses > 0 ? Int32Array.from({ length: n }, (_, i) => (2 * i + 1) % model.config.numClasses) : null;
  return { model, values: codableImages(model, n, 11), labels };
}

/** Runs fn on the other backend than the one active, where there is one, and restores it. */
function onOtherBackend<T>(fn: () => T): T {
  const before = backendName();
  if (nativeAvailable()) setBackend(before === 'ts' ? 'native' : 'ts');
  try {
    return fn();
  } finally {
    setBackend(before);
  }
}

describe('portable streams are the same bits as where they were recorded', () => {
  for (const [name, cfg] of familyCases(templates)) {
    test(name, () => {
      const { model, values, labels } = setup(cfg);
      const { bytes } = compressValues(model, values, { mode: 'portable', block: 2, weights: 'raw', transform: { kind: 'none' }, labels });
      const digest = createHash('sha256').update(readCompressed(bytes, name).stream).digest('hex');
      const back = onOtherBackend(() => decompressBytes(bytes, name, model));
      assert.deepEqual(Array.from(back.values.data), Array.from(values.data), 'decoded exactly, with the other backend active around the call');
      assert.deepEqual(back.labels, labels);
      assert.equal(digest, GOLDEN[name], `${name}: the portable stream differs from the one recorded (see this file's header)`);
    });
  }

  test('a file arpix wrote before the wasm mode (format version 1, kept here) decodes, and this arpix writes the same bytes', () => {
    // gated-pixelcnn mixture RGB with labels, written by arpix 0.1.0 before format version 2 existed.
    const old = Uint8Array.from(atob(OLD_PORTABLE_FILE), (ch) => ch.charCodeAt(0));
    const [name, cfg] = familyCases(templates).find(([n]) => n === 'gated-pixelcnn mixture RGB with labels')!;
    const { model, values, labels } = setup(cfg);
    const back = decompressBytes(old, name, model);
    assert.deepEqual(Array.from(back.values.data), Array.from(values.data));
    assert.deepEqual(back.labels, labels);
    // The header names the version that wrote it; with that one, today's file is the same bytes.
    const now = compressValues(model, values, { mode: 'portable', block: 2, weights: 'raw', transform: { kind: 'none' }, labels });
    const { header, stream } = readCompressed(now.bytes, name);
    assert.deepEqual(writeCompressed({ ...header, numeric: { ...header.numeric, arpixVersion: '0.1.0' } }, stream), old);
  });

  test('and so are the float32 parameters the ts backend computes for every case (one digest)', () => {
    // The integer frequencies absorb most last-bit differences of the probabilities, so the streams
    // alone would let many through; the parameters of the teacher-forced forward pass show any.
    const h = createHash('sha256');
    const before = backendName();
    setBackend('ts');
    try {
      for (const [, cfg] of familyCases(templates)) {
        const { model, values, labels } = setup(cfg);
        const p = model.params(values, labels ? { labels: new Tensor(labels, [labels.length]) } : {}).data as Float32Array;
        const le = new DataView(new ArrayBuffer(p.length * 4));
        p.forEach((v, i) => le.setFloat32(i * 4, v, true));
        h.update(new Uint8Array(le.buffer));
      }
    } finally {
      setBackend(before);
    }
    assert.equal(h.digest('hex'), PARAMS_DIGEST, 'the ts backend computes other float32 parameters here than where this file was written (see its header)');
  });
});

describe('the ts kernels of the sampling path give the same float64 bits as where they were recorded', () => {
  // float64 shows a difference of one ulp anywhere in a kernel, which float32 storage would
  // mostly round away: every elementwise map, fused op, reduction and recurrence the families'
  // forward passes and cached steppers run, on fixed inputs (float64 always runs on ts).
  test('one digest over 24 kernels', () => {
    const g = new Generator(31);
    /** Uniforms in [−scale, scale), float64. */
    const u = (shape: number[], scale = 4): Tensor => ax.sub(ax.mul(ax.rand(shape, { dtype: 'float64', generator: g }), 2 * scale), scale);
    const x = u([6, 5, 4, 8]);
    const qkv = u([2, 9, 3 * 8], 2);
    const outputs: Tensor[] = [
      ax.exp(x), ax.log(ax.abs(x)), ax.tanh(x), ax.sigmoid(x), ax.elu(x), ax.softplus(ax.mul(x, 60)), ax.logSigmoid(x),
      ax.softmax(x), ax.logSoftmax(ax.mul(x, 10)), ax.logsumexp(x, [1, 3]),
      ax.gelu(x), ax.gelu(x, 'tanh'), ax.layerNorm(x, u([8]), u([8])), ax.rmsNorm(x, u([8])),
      ax.concatElu(x), ax.gatedResidual(u([6, 5, 4, 4]), x), ax.gatedActivation(x),
      ax.crossEntropy(ax.reshape(x, [-1, 8]), ax.randint(0, 8, [120], { generator: g }), 'none'),
      ax.conv2d(x, u([3, 3, 8, 5], 0.5), { padding: 1 }), ax.matmul(ax.reshape(x, [-1, 8]), u([8, 7])),
      ax.lstmScan(u([3, 2, 5, 16]), u([3, 4, 16], 0.5), u([4]), u([4]), 1),
      ax.attention(qkv, { heads: 2 }), ax.attention(qkv, { heads: 2, pattern: { kind: 'local1d', block: 3 } }),
      ax.attentionStep(u([2, 8], 2), u([2, 9, 8], 2), u([2, 9, 8], 2), 6, { heads: 2 }),
    ];
    const h = createHash('sha256');
    for (const t of outputs) {
      assert.equal(t.dtype, 'float64');
      const le = new DataView(new ArrayBuffer(t.size * 8));
      for (let i = 0; i < t.size; i++) le.setFloat64(i * 8, t.data[i]!, true);
      h.update(new Uint8Array(le.buffer));
    }
    assert.equal(h.digest('hex'), '51800f30b28b6b976191a859341675d4f33aaabca295fb64ec4b82ef6ca8a611', 'the ts kernels compute other float64 bits here than where this file was written (see its header)');
  });

  test('batch size does not change a kernel\'s bits: every image of a batch of 5 equals that image alone', () => {
    // The ts backend is single-threaded, and each output's sum runs in an order fixed by its own
    // indices (taps, channels, keys), never by how many images share the call.
    const g = new Generator(37);
    const u = (shape: number[]): Tensor => ax.sub(ax.mul(ax.rand(shape, { dtype: 'float64', generator: g }), 2), 1);
    const w = u([3, 3, 6, 4]), m = u([6, 5]), lw = u([3, 4, 16]), h0 = u([4]), c0 = u([4]);
    const x = u([5, 4, 5, 6]), qkv = u([5, 7, 18]), xg = u([2, 5, 3, 16]);
    const kernels: [string, Tensor, (t: Tensor) => Tensor, number][] = [
      ['conv2d', x, (t) => ax.conv2d(t, w, { padding: 1 }), 0],
      ['matmul', x, (t) => ax.matmul(ax.reshape(t, [-1, 6]), m), 0],
      ['softmax', x, (t) => ax.logSoftmax(t), 0],
      ['attention', qkv, (t) => ax.attention(t, { heads: 3 }), 0],
      ['lstmScan', xg, (t) => ax.lstmScan(t, lw, h0, c0, 1), 1],
    ];
    for (const [name, input, f, axis] of kernels) {
      const all = f(input);
      for (let i = 0; i < 5; i++) {
        const begin = input.shape.map((_, a) => (a === axis ? i : 0));
        const size = input.shape.map((d, a) => (a === axis ? 1 : d));
        const one = f(ax.slice(input, begin, size));
        const outSize = all.shape.map((d, a) => (a === axis ? 1 : d));
        const outBegin = all.shape.map((_, a) => (a === axis ? i : 0));
        const part = name === 'matmul' ? ax.slice(all, [i * 20, 0], [20, 5]) : ax.slice(all, outBegin, outSize);
        assert.deepEqual(Array.from(one.data), Array.from(part.data), `${name}: image ${i}`);
      }
    }
  });
});
