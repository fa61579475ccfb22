// The wasm mode: files whose probabilities the WebAssembly backend computes, the same bits on every
// machine and in every browser. Every family in the table (every head, grey and colour, with and
// without labels) codes into a wasm file of the model's −log₂ p plus the coder's overhead, decodes
// back exactly with another backend active around the call, and decodes in another process (one
// that computes on the ts backend otherwise) to the same values. A file of another arpix version,
// or one met where the WebAssembly backend is not loaded, is refused with one line; the header of a
// wasm file is format version 2, the native and portable files stay version 1.

import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, test } from 'node:test';
import '../backends/node.js'; // registers the wasm backend
import { wasmBackend, wasmLoadError } from '../backends/wasm/node.js';
import { registerBackend, registeredBackend } from '../backends/registry.js';
import { onBackend as on } from '../testing/backend.js';
import { createModel } from '../models/index.js';
import type { AutoregressiveModel } from '../models/core/model.js';
import { sample } from '../models/sampling/index.js';
import * as ax from '../ops/index.js';
import { Tensor } from '../tensor/tensor.js';
import { TEST_PALETTE, codableImages } from '../testing/codec.js';
import { familyCases, type CaseTemplate, type TinyConfig } from '../testing/families.js';
import { ARPIX_VERSION } from '../version.js';
import { compressValues, decompressBytes } from './compress.js';
import { digest16, readCompressed, writeCompressed } from './format.js';

const skip = wasmBackend ? false : `the wasm backend is not built (${wasmLoadError}): run \`npm run build:wasm\``;

const templates: CaseTemplate[] = [
  { name: 'categorical grey 5×4', height: 5, width: 4, channels: 1, likelihood: { kind: 'categorical', levels: 256 } },
  { name: 'mixture RGB with labels', height: 3, width: 4, channels: 3, likelihood: { kind: 'logistic-mixture', nrMix: 2 }, numClasses: 3 },
  { name: 'bernoulli grey', height: 4, width: 4, channels: 1, likelihood: { kind: 'bernoulli' } },
  { name: 'palette RGB', height: 3, width: 3, channels: 3, likelihood: { kind: 'palette', k: 5, colours: TEST_PALETTE } },
];

/** A case's model: its seeded initialisation with sharper distributions (what a child process rebuilds). */
function build(cfg: TinyConfig): AutoregressiveModel {
  const model = createModel(cfg, { seed: 3 });
  for (const p of model.parameters()) p.data.set(ax.mul(p, 2).data);
  model.eval();
  return model;
}

/** fn throws one line matching re. */
function refuses(fn: () => unknown, re: RegExp): void {
  assert.throws(fn, (e: Error) => {
    assert.match(e.message, re);
    assert.ok(!e.message.includes('\n'), 'one line');
    return true;
  });
}

const root = mkdtempSync(join(tmpdir(), 'arpix-wasm-codec-'));
after(() => rmSync(root, { recursive: true, force: true }));

/** The files the round trips wrote, for the other process: case name → its config, file and values. */
const written: { name: string; cfg: TinyConfig; file: string; values: number[]; labels: number[] | null }[] = [];

describe('wasm files of every family', { skip }, () => {
  for (const [name, cfg] of familyCases(templates)) {
    test(name, () => {
      const model = build(cfg);
      const n = 3;
      const labels = model.config.numClasses > 0 ? Int32Array.from({ length: n }, (_, i) => (i + 1) % model.config.numClasses) : null;
      // Images the model finds likely (its samples on wasm), so that −log₂ p is the loss's own value.
      const images = on('wasm', () => sample(model, { n, seed: 9, labels: labels ? Array.from(labels) : null }));
      const { bytes, idealBits, header } = compressValues(model, images, { mode: 'wasm', block: 2, weights: 'raw', transform: { kind: 'none' }, labels });
      assert.deepEqual(header.numeric, { mode: 'wasm', isa: null, block: 2, threads: 0, arpixVersion: ARPIX_VERSION });
      assert.equal(new DataView(bytes.buffer, bytes.byteOffset).getUint16(8, true), 2, 'a wasm file is format version 2');

      // The stream is its ideal length plus the coder's 7-byte state and under a byte of rounding per
      // block it flushes (two of images, and the labels').
      const { stream } = readCompressed(bytes, name);
      const flushes = Math.ceil(n / 2) + (labels ? 1 : 0);
      assert.ok(stream.length * 8 - idealBits < 8 * (7 + flushes) && stream.length * 8 >= idealBits - 1, `stream ${stream.length * 8} bits, ideal ${idealBits.toFixed(1)}`);
      // And the ideal length is the model's −log₂ p on wasm (the labels log₂(classes) bits each).
      const nats = on('wasm', () => -ax.sum(model.logProb(images, labels ? { labels: new Tensor(labels, [n]) } : {})).item());
      const modelBits = nats / Math.LN2 + (labels ? n * Math.log2(model.config.numClasses) : 0);
      assert.ok(Math.abs(idealBits - modelBits) < 1e-3 * modelBits + 0.5, `coded ${idealBits.toFixed(2)} bits, model ${modelBits.toFixed(2)}`);

      // Decoded with the ts backend active around the call: the file's mode chooses wasm.
      const back = on('ts', () => decompressBytes(bytes, name, model));
      assert.deepEqual(Array.from(back.values.data), Array.from(images.data), 'decoded exactly');
      assert.deepEqual(back.labels, labels);
      const file = join(root, `${written.length}.arpz`);
      writeFileSync(file, bytes);
      written.push({ name, cfg, file, values: Array.from(images.data), labels: labels && Array.from(labels) });
    });
  }

  test('every file decodes in another process, whose other computations run on the ts backend, to the same values', () => {
    assert.ok(written.length > 10, 'the round trips above wrote their files');
    const list = join(root, 'cases.json');
    writeFileSync(list, JSON.stringify(written.map(({ name, cfg, file }) => ({ name, cfg, file }))));
    const script = `
      import { readFileSync } from 'node:fs';
      import ${JSON.stringify(new URL('../backends/node.ts', import.meta.url).href)};
      import { createModel } from ${JSON.stringify(new URL('../models/index.ts', import.meta.url).href)};
      import * as ax from ${JSON.stringify(new URL('../ops/index.ts', import.meta.url).href)};
      import { decompressBytes } from ${JSON.stringify(new URL('./compress.ts', import.meta.url).href)};
      import { backendName } from ${JSON.stringify(new URL('../backends/registry.ts', import.meta.url).href)};
      const out = {};
      for (const { name, cfg, file } of JSON.parse(readFileSync(${JSON.stringify(list)}, 'utf8'))) {
        const model = createModel(cfg, { seed: 3 });
        for (const p of model.parameters()) p.data.set(ax.mul(p, 2).data);
        model.eval();
        const back = decompressBytes(new Uint8Array(readFileSync(file)), name, model);
        out[name] = { values: Array.from(back.values.data), labels: back.labels && Array.from(back.labels), backend: backendName() };
      }
      process.stdout.write(JSON.stringify(out));
    `;
    const r = spawnSync(process.execPath, ['--import', import.meta.resolve('tsx'), '--input-type=module', '-e', script], {
      encoding: 'utf8', maxBuffer: 64 << 20, env: { ...process.env, NODE_NO_WARNINGS: '1', ARPIX_BACKEND: 'ts' },
    });
    assert.equal(r.status, 0, r.stderr);
    const got = JSON.parse(r.stdout) as Record<string, { values: number[]; labels: number[] | null; backend: string }>;
    for (const w of written) {
      assert.equal(got[w.name]?.backend, 'ts', `${w.name}: the other process computes on ts outside the decoder`);
      assert.deepEqual(got[w.name]!.values, w.values, `${w.name}: the same values in the other process`);
      assert.deepEqual(got[w.name]!.labels, w.labels, `${w.name}: and the same labels`);
    }
  });

  test('a file of another arpix version, and one met where the WebAssembly backend is not loaded, are refused with one line', () => {
    const [name, cfg] = familyCases(templates).find(([n]) => n.startsWith('gated-pixelcnn categorical'))!;
    const model = build(cfg);
    const images = codableImages(model, 2, 4);
    const opts = { mode: 'wasm' as const, block: 2, weights: 'raw' as const, transform: { kind: 'none' as const } };
    const { bytes } = compressValues(model, images, opts);
    const { header, stream } = readCompressed(bytes, name);
    const older = writeCompressed({ ...header, numeric: { ...header.numeric, arpixVersion: '0.0.9' } }, stream);
    refuses(() => decompressBytes(older, 'old.arpz', model), /^old\.arpz: cannot be decoded exactly here: it was written in wasm mode by arpix 0\.0\.9, and this is arpix \S+, whose WebAssembly kernels may round differently; decode it with arpix 0\.0\.9$/);

    const loaded = registeredBackend('wasm')!;
    registerBackend('wasm', null, 'not built');
    try {
      refuses(() => decompressBytes(bytes, 'f.arpz', model), /^f\.arpz: cannot be decoded exactly here: it was written in wasm mode, and the WebAssembly backend is not loaded here; build it with `npm run build:wasm`, or decode the file where it is loaded$/);
      refuses(() => compressValues(model, images, opts), /^compress: mode wasm needs the WebAssembly backend, which is not loaded here: build it with `npm run build:wasm`, or use --portable$/);
    } finally {
      registerBackend('wasm', loaded);
    }
    assert.deepEqual(Array.from(decompressBytes(bytes, 'f.arpz', model).values.data), Array.from(images.data), 'and decoded once it is loaded again');
  });

  test('the format: a wasm file is version 2, native and portable files stay version 1; version 1 knows no wasm flag', () => {
    const [name, cfg] = familyCases(templates).find(([n]) => n.startsWith('pixelcnn categorical'))!;
    const model = build(cfg);
    const images = codableImages(model, 1, 5);
    const version = (b: Uint8Array) => new DataView(b.buffer, b.byteOffset).getUint16(8, true);
    const file = (mode: 'wasm' | 'portable' | 'native') => compressValues(model, images, { mode, block: 1, weights: 'raw', transform: { kind: 'none' } }).bytes;
    assert.equal(version(file('portable')), 1);
    if (registeredBackend('native')) assert.equal(version(on('native', () => file('native'))), 1);
    const wasm = file('wasm');
    assert.equal(version(wasm), 2);
    // The same file claiming version 1 (its checksum made good): the wasm flag is unknown there.
    const v1 = Uint8Array.from(wasm);
    new DataView(v1.buffer).setUint16(8, 1, true);
    const end = v1.length - 16;
    v1.set(Uint8Array.from(digest16(v1.subarray(0, end)).match(/../g)!, (h) => parseInt(h, 16)), end);
    assert.throws(() => readCompressed(v1, name), /has a header whose flags 12 include unknown ones/);
  });
});
