// The threads module (wasm/build/arpix-threads.wasm, helpers on worker_threads) against the
// single-thread module: every kernel that splits its work between threads gives the same bits with
// 1, 2 and 3 threads, on odd shapes with more work items than threads and fewer; so do a training
// step and a sampling of every family. Also: the heap growing while helpers wait, a process with a
// pool exiting by itself, ARPIX_WASM_THREADS's checks. Skipped, saying why, when the modules are
// not built.

import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { after, before, describe, test } from 'node:test';
import type { AttentionAttrs, ConvParams, Kernels } from '../../kernels/contracts.js';
import * as ax from '../../ops/index.js';
import { createModel } from '../../models/index.js';
import { familyOf } from '../../models/families.js';
import { sample } from '../../models/sampling/sample.js';
import { familyCases, tinyConfig, type CaseTemplate } from '../../testing/families.js';
import { empty, uniform } from '../../testing/kernels.js';
import { manualSeed } from '../../tensor/random.js';
import { Tensor } from '../../tensor/tensor.js';
import { trainDefaults } from '../../train/run-config.js';
import { makeStepper, optimisationStep } from '../../train/step.js';
import '../node.js'; // registers the wasm backend
import { backendName, registerBackend, setBackend } from '../registry.js';
import { loadWasmBackend, wasmBackend, wasmModulePath, wasmThreadsSetting, type MAX_WASM_THREADS } from './node.js';
import type { WasmBackend } from './index.js';

const skip = existsSync(wasmModulePath()) && existsSync(wasmModulePath(true)) ? false : 'the wasm modules are not built: run `npm run build:wasm` (needs `apt-get install -y clang-14 lld-14`)';

const bytes = (t: Tensor): Buffer => Buffer.from(t.data.buffer, t.data.byteOffset, t.data.byteLength);
const P = (s: number, pt: number, pl: number, d = 1): ConvParams => ({ strideH: s, strideW: s, padTop: pt, padLeft: pl, dilationH: d, dilationW: d });

describe('the wasm backend on threads', { skip }, () => {
  let single: WasmBackend, pool: WasmBackend;
  before(async () => {
    single = loadWasmBackend(1);
    pool = loadWasmBackend(3);
    assert.equal(await pool.ready, 3);
  });

  /** Runs `call` on the single-thread module and on the pool with 1, 2, 3 threads: the same bits every time. */
  const same = (label: string, shapes: number[][], call: (k: Kernels, outs: Tensor[]) => void): void => {
    const expected = shapes.map((s) => empty(s));
    call(single as unknown as Kernels, expected);
    for (const t of [1, 2, 3]) {
      pool.setThreads(t);
      assert.equal(pool.threads(), t);
      const outs = shapes.map((s) => empty(s));
      call(pool as unknown as Kernels, outs);
      outs.forEach((o, i) => assert.ok(bytes(o).equals(bytes(expected[i]!)), `${label}: output ${i} with ${t} threads differs from the single-thread module's`));
    }
    pool.setThreads(3);
  };

  test('matmul: odd sizes, more row blocks than threads and fewer, batched, transposed', () => {
    const before = pool.helperItems();
    for (const [m, k, n] of [[67, 129, 45], [5, 300, 70], [1, 513, 130]] as const) {
      const a = uniform([m, k], -1, 1, 1), b = uniform([k, n], -1, 1, 2), bt = uniform([n, k], -1, 1, 3);
      same(`[${m}, ${k}]·[${k}, ${n}]`, [[m, n]], (kk, [o]) => kk.matmul(a, b, o!, false, false));
      same(`[${m}, ${k}]·[${n}, ${k}]ᵀ`, [[m, n]], (kk, [o]) => kk.matmul(a, bt, o!, false, true));
    }
    const a = uniform([3, 21, 130], -1, 1, 4), b = uniform([130, 50], -1, 1, 5), bb = uniform([3, 130, 50], -1, 1, 6);
    same('batched, shared B', [[3, 21, 50]], (kk, [o]) => kk.matmul(a, b, o!, false, false));
    same('batched', [[3, 21, 50]], (kk, [o]) => kk.matmul(a, bb, o!, false, false));
    assert.ok(pool.helperItems() > before, 'the helpers ran some of the row blocks');
  });

  const convs: { name: string; x: number[]; k: [number, number]; cout: number; p: ConvParams }[] = [
    { name: '3×3 same [2, 13, 11, 7] → 9 (72 pixel blocks)', x: [2, 13, 11, 7], k: [3, 3], cout: 9, p: P(1, 1, 1) },
    { name: '3×3 same [1, 2, 3, 64] → 32 (2 pixel blocks)', x: [1, 2, 3, 64], k: [3, 3], cout: 32, p: P(1, 1, 1) },
    { name: '3×3 stride 2, dilation 2 [3, 17, 15, 5] → 11', x: [3, 17, 15, 5], k: [3, 3], cout: 11, p: P(2, 2, 2, 2) },
  ];
  const outOf = (c: (typeof convs)[number]): number[] => {
    const [n, h, w] = c.x as [number, number, number];
    const span = (size: number, k: number, pad: number) => Math.floor((size + 2 * pad - ((k - 1) * c.p.dilationH + 1)) / c.p.strideH) + 1;
    return [n, span(h, c.k[0], c.p.padTop), span(w, c.k[1], c.p.padLeft), c.cout];
  };

  for (const c of convs) {
    test(`conv2d and its gradients: ${c.name}`, () => {
      const ys = outOf(c), ws = [c.k[0], c.k[1], c.x[3]!, c.cout];
      const x = uniform(c.x, -1, 1, 7), w = uniform(ws, -1, 1, 8), bias = uniform([c.cout], -1, 1, 9);
      const dy = uniform(ys, -1, 1, 10), residual = uniform(ys, -1, 1, 11);
      same('conv2d + bias', [ys], (kk, [o]) => kk.conv2d(x, w, bias, o!, c.p));
      same('conv2d + residual', [ys], (kk, [o]) => kk.conv2d(x, w, null, o!, c.p, false, false, residual));
      same('conv2dBackwardData', [c.x], (kk, [o]) => kk.conv2dBackwardData(dy, w, o!, c.p));
      same('conv2dBackwardWeights + bias', [ws, [c.cout]], (kk, [dw, db]) => kk.conv2dBackwardWeights(x, dy, dw!, c.p, db!));
      same('conv2dBackward', [c.x, ws, [c.cout]], (kk, [dx, dw, db]) => kk.conv2dBackward(x, dy, w, dx!, dw!, db!, c.p, 0));
    });
  }

  test('conv2dBackwardWeights with 2 row blocks of the filter gradient (fewer than the threads) over several pixel chunks', () => {
    const x = uniform([4, 20, 19, 1], -1, 1, 12), dy = uniform([4, 20, 19, 64], -1, 1, 13);
    same('[3, 2, 1, 64]', [[3, 2, 1, 64]], (kk, [dw]) => kk.conv2dBackwardWeights(x, dy, dw!, P(1, 1, 1)));
  });

  test('attention: images × heads more and fewer than the threads, every pattern', () => {
    for (const pattern of [{ kind: 'causal' }, { kind: 'full' }, { kind: 'local1d', block: 16, memory: 8 }] as const) {
      const a: AttentionAttrs = { heads: 3, scale: 0.3, pattern };
      const qkv = uniform([2, 37, 3 * 24], -2, 2, 14);
      same(`[2, 37, 72] ${pattern.kind}`, [[2, 37, 24], [2, 3, 37]], (kk, [o, lse]) => kk.attention(qkv, o!, lse!, a));
      const one = uniform([1, 70, 3 * 16], -2, 2, 15);
      same(`[1, 70, 48] ${pattern.kind}`, [[1, 70, 16], [1, 2, 70]], (kk, [o, lse]) => kk.attention(one, o!, lse!, { ...a, heads: 2 }));
    }
  });

  test('attentionStep: more images than threads and fewer', () => {
    const a: AttentionAttrs = { heads: 4, scale: 0.2, pattern: { kind: 'causal' } };
    for (const n of [5, 2]) {
      const q = uniform([n, 64], -2, 2, 16), k = uniform([n, 320, 64], -2, 2, 17), v = uniform([n, 320, 64], -2, 2, 18);
      for (const position of [0, 301]) same(`n ${n} position ${position}`, [[n, 64]], (kk, [o]) => kk.attentionStep(q, k, v, o!, position, a));
    }
  });

  test('the heap grows while the helpers wait, and the kernels see the grown memory', () => {
    const fresh = loadWasmBackend(2);
    return fresh.ready.then(() => {
      const small = uniform([9, 40], -1, 1, 19), w = uniform([40, 70], -1, 1, 20);
      const check = (label: string, a: Tensor, b: Tensor) => {
        const [m, n] = [a.shape[0]!, b.shape[1]!];
        const expected = empty([m, n]), actual = empty([m, n]);
        single.matmul!(a, b, expected, false, false);
        fresh.matmul!(a, b, actual, false, false);
        assert.ok(bytes(actual).equals(bytes(expected)), label);
      };
      check('before growing', small, w);
      const start = fresh.memoryBytes(), items = fresh.helperItems();
      check('a product larger than the memory', uniform([1500, 1100], -1, 1, 21), uniform([1100, 300], -1, 1, 22));
      assert.ok(fresh.memoryBytes() > start, 'the memory grew');
      assert.ok(fresh.helperItems() > items, 'the helper worked on the grown memory');
      check('after growing', small, w);
    });
  });

  describe('whole models', () => {
    const before = backendName();
    after(() => {
      registerBackend('wasm', wasmBackend, 'it did not load');
      setBackend(before);
    });
    /** Runs `run` on the wasm backend with the single-thread module, then the pool on 1, 2, 3 threads. */
    const acrossThreads = <T>(run: () => T): T[] => {
      const results: T[] = [];
      for (const [backend, t] of [[single, 1], [pool, 1], [pool, 2], [pool, 3]] as const) {
        registerBackend('wasm', backend);
        setBackend('wasm');
        backend.setThreads(t);
        results.push(run());
      }
      pool.setThreads(3);
      return results;
    };

    const templates: CaseTemplate[] = [
      { name: 'categorical grey', height: 8, width: 7, channels: 1, likelihood: { kind: 'categorical', levels: 16 } },
      { name: 'mixture RGB with labels', height: 6, width: 8, channels: 3, likelihood: { kind: 'logistic-mixture', nrMix: 3 }, numClasses: 3 },
    ];

    test('two training steps of a small PixelCNN: the same losses, gradient norms and weights on any number of threads', () => {
      const cfg = tinyConfig(familyOf('pixelcnn')!, templates[0]!, { hiddenChannels: 32, outputHidden: 32 });
      const images = new Tensor(Int32Array.from({ length: 12 * 8 * 7 }, (_, i) => (i * 7919) % 16), [12, 8, 7, 1]);
      const items = pool.helperItems();
      const runs = acrossThreads(() => {
        manualSeed(3);
        const model = createModel(cfg, { seed: 4 });
        const stepper = makeStepper(model, { ...trainDefaults, lr: 1e-3 });
        const steps = [0, 1].map(() => optimisationStep(stepper, { images, labels: null }, 'fp32'));
        return { steps, weights: model.parameters().map((p) => Buffer.from(bytes(p))) };
      });
      for (const [i, r] of runs.entries()) {
        assert.deepEqual(r.steps, runs[0]!.steps, `run ${i}: other losses or gradient norms`);
        r.weights.forEach((w, j) => assert.ok(w.equals(runs[0]!.weights[j]!), `run ${i}: parameter ${j} differs`));
      }
      assert.ok(pool.helperItems() > items, 'the helpers took part in the steps');
    });

    for (const [name, cfg] of familyCases(templates)) {
      test(`sampling ${name}: the same images on any number of threads`, () => {
        const model = createModel(cfg, { seed: 5 });
        for (const p of model.parameters()) p.data.set(ax.mul(p, 2).data);
        const labels = model.config.numClasses > 0 ? [0, 2, 1, 1, 2] : undefined;
        const runs = acrossThreads(() => Array.from(sample(model, { n: 5, seed: 11, labels }).data));
        for (const [i, r] of runs.entries()) assert.deepEqual(r, runs[0], `run ${i}: other images`);
      });
    }
  });
});

describe('ARPIX_WASM_THREADS', () => {
  test('unset or empty is one thread; a whole number from 1 up is that many', () => {
    assert.equal(wasmThreadsSetting(undefined), 1);
    assert.equal(wasmThreadsSetting(''), 1);
    assert.equal(wasmThreadsSetting('4'), 4);
  });

  test('anything else is refused with one line saying what to set', () => {
    for (const bad of ['0', '-2', '2.5', 'two', '65'] as const) {
      assert.throws(() => wasmThreadsSetting(bad), (e: Error) => {
        assert.match(e.message, new RegExp(`^ARPIX_WASM_THREADS=${bad.replace('.', '\\.')} is not a thread count: set it to a whole number from 1 to 64`));
        assert.ok(!e.message.includes('\n'));
        return true;
      });
    }
    const max: typeof MAX_WASM_THREADS = 64;
    assert.equal(wasmThreadsSetting(String(max)), max);
  });

  test('a process whose wasm backend has helper threads exits by itself', { skip }, () => {
    const entry = new URL('../node.ts', import.meta.url).href;
    const code = `const { wasmBackend } = await import(${JSON.stringify(new URL('./node.ts', import.meta.url).href)});
      console.log(await wasmBackend.ready, wasmBackend.pool, wasmBackend.threadsError());`;
    const r = spawnSync(process.execPath, ['--import', 'tsx', '--import', entry, '--input-type=module', '-e', code], {
      env: { ...process.env, ARPIX_WASM_THREADS: '3' }, encoding: 'utf8', timeout: 60_000,
    });
    assert.equal(r.signal, null, 'the process did not exit by itself (killed at the timeout)');
    assert.equal(r.status, 0, r.stderr);
    assert.equal(r.stdout.trim(), '3 3 null');
  });
});
