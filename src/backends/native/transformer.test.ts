// The transformer core's native kernels against the ts reference: norms and GELU at sizes that
// take the OpenMP paths, and the fused attention (forward, log-sum-exp, backward, cached step) for
// every pattern over sequences that span several 64-position tiles, with block edges and flanges
// that do not line up with the tiles, and head sizes that are and are not multiples of 16.
// Then causality (an exact zero gradient to the future) on the native kernels. Skipped without the addon.

import { describe, test } from 'node:test';
import type { AttentionAttrs, Kernels } from '../../kernels/contracts.js';
import { attentionPattern, type AttentionPatternInput } from '../../ops/transformer.js';
import * as ax from '../../ops/index.js';
import { Tensor, arrayFor } from '../../tensor/tensor.js';
import { Generator } from '../../tensor/random.js';
import { assertClose } from '../../testing/gradcheck.js';
import { checkCausality } from '../../testing/attention.js';
import { setBackend } from '../registry.js';
import { tsBackend } from '../ts/index.js';
import { loadNativeBackend, nativeLoadError } from './index.js';

const native = loadNativeBackend();
const skip = native ? false : `native backend not built (${nativeLoadError})`;
const ref: Kernels = tsBackend;
const nat = native as Kernels;

const randn = (shape: number[], seed: number, scale = 1) => ax.mul(ax.randn(shape, { generator: new Generator(seed) }), scale);
const out = (shape: number[]) => {
  const t = new Tensor(arrayFor('float32', shape.reduce((a, b) => a * b, 1)), shape);
  t.data.fill(123.5); // kernels must overwrite their outputs
  return t;
};

describe('native transformer kernels vs ts reference', { skip }, () => {
  for (const rms of [false, true]) {
    for (const shape of [[37, 130], [300, 128]]) {
      test(`${rms ? 'rmsNorm' : 'layerNorm'} [${shape}] forward and backward`, () => {
        const c = shape[1]!, rows = shape[0]!;
        const x = ax.add(randn(shape, 1, 2), 0.5), w = randn([c], 2), b = randn([c], 3), g = randn(shape, 4);
        const res = (k: Kernels) => {
          const y = out(shape), mu = out([rows]), rs = out([rows]), dx = out(shape), dw = out([c]), db = out([c]);
          if (rms) mu.data.fill(0);
          k.layerNorm(x, w, rms ? null : b, y, mu, rs, 1e-5, rms);
          k.layerNormBackward(x, w, mu, rs, g, dx, dw, rms ? null : db, rms);
          return [y, rs, dx, dw, ...(rms ? [] : [mu, db])];
        };
        const [a, e] = [res(nat), res(ref)];
        a.forEach((t, i) => assertClose(t.data, e[i]!.data, { atol: 2e-4, rtol: 1e-4, label: `output ${i}` }));
      });
    }
  }
  for (const tanh of [false, true]) {
    test(`gelu ${tanh ? 'tanh' : 'exact'} [100000] forward and backward`, () => {
      const x = randn([100000], 5, 3), g = randn([100000], 6);
      const res = (k: Kernels) => {
        const y = out([100000]), dx = out([100000]);
        k.gelu(x, y, tanh);
        k.geluBackward(x, g, dx, tanh);
        return [y, dx];
      };
      const [a, e] = [res(nat), res(ref)];
      a.forEach((t, i) => assertClose(t.data, e[i]!.data, { atol: 1e-6, rtol: 1e-5, label: `output ${i}` }));
    });
  }

  const CASES: [string, number, number, number, AttentionPatternInput][] = [
    // [name, N, L, heads, d] via C = heads·d below
    ['causal', 2, 200, 2, { kind: 'causal' }],
    ['full', 1, 70, 3, { kind: 'full' }],
    ['local1d block 48', 2, 200, 2, { kind: 'local1d', block: 48 }],
    ['local1d block 100 memory 30', 1, 230, 1, { kind: 'local1d', block: 100, memory: 30 }],
    ['local2d 12×20, blocks 4×5, flanges 2×5', 1, 240, 2, { kind: 'local2d', height: 12, width: 20, blockHeight: 4, blockWidth: 5, memoryHeight: 2, memoryWidth: 5 }],
    ['local2d 16×16, blocks 8×8', 2, 256, 1, { kind: 'local2d', height: 16, width: 16, blockHeight: 8, blockWidth: 8 }],
    ['local2d raster order 12×20, blocks 4×5, flanges 3×5', 1, 240, 2, { kind: 'local2d', height: 12, width: 20, blockHeight: 4, blockWidth: 5, memoryHeight: 3, memoryWidth: 5, order: 'raster' }],
    ['local2d raster order 28×28, blocks 2×14, flanges 4×7', 2, 784, 2, { kind: 'local2d', height: 28, width: 28, blockHeight: 2, blockWidth: 14, memoryHeight: 4, memoryWidth: 7, order: 'raster' }],
  ];
  for (const [name, n, l, heads, pattern] of CASES) {
    for (const d of [32, 8, 20]) {
      test(`attention ${name}: [${n}, ${l}, 3·${heads}·${d}] forward, lse, backward and step`, () => {
        const c = heads * d;
        const qkv = randn([n, l, 3 * c], 7 + d, 1.5), g = randn([n, l, c], 8);
        const a: AttentionAttrs = { heads, scale: 1 / Math.sqrt(d), pattern: attentionPattern('test', pattern, l) };
        const res = (k: Kernels) => {
          const y = out([n, l, c]), lse = out([n, heads, l]), dq = out([n, l, 3 * c]);
          k.attention(qkv, y, lse, a);
          k.attentionBackward(qkv, y, lse, g, dq, a);
          return [y, lse, dq];
        };
        const [got, want] = [res(nat), res(ref)];
        got.forEach((t, i) => assertClose(t.data, want[i]!.data, { atol: 2e-5, rtol: 1e-4, label: `${name} output ${i}` }));
        if (pattern.kind === 'full') return;
        const [q, k, v] = ax.chunk(qkv, 3, -1);
        for (const i of [0, 1, 47, 48, 63, 64, 99, 100, 129, l - 1]) {
          if (i >= l) continue;
          const qi = ax.reshape(ax.slice(q!, [0, i, 0], [n, 1, c]), [n, c]);
          const [sn, sr] = [out([n, c]), out([n, c])];
          nat.attentionStep(qi, k!, v!, sn, i, a);
          ref.attentionStep(qi, k!, v!, sr, i, a);
          assertClose(sn.data, sr.data, { atol: 2e-5, rtol: 1e-4, label: `${name} step ${i}` });
          assertClose(sn.data, ax.slice(got[0]!, [0, i, 0], [n, 1, c]).data, { atol: 2e-5, rtol: 1e-4, label: `${name} step ${i} vs the full op's row` });
        }
      });
    }
  }

  test('causality on native: no gradient from output i to any input j > i, every pattern', () => {
    setBackend('native');
    try {
      checkCausality((x, pattern) => ax.attention(x, { heads: 2, pattern }), 'float32', 'native');
    } finally {
      setBackend(process.env.ARPIX_BACKEND === 'ts' ? 'ts' : 'native');
    }
  });
});
