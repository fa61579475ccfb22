// The model engine without a browser: it loads a checkpoint from its bytes with the check every
// reader runs, answers jobs as the server's worker did (the same samples as model.sample, the same
// bits as elementLogProb), refuses bad bytes and bad requests with one line, stops a job when
// asked, and bundles for a browser with no Node built-in.

import assert from 'node:assert/strict';
import { test } from 'node:test';
import { decodeCheckpoint, encodeCheckpoint, type Checkpoint } from '../io/checkpoint.js';
import { modelFromCheckpoint } from '../models/checkpoint.js';
import { initialCheckpoint } from '../export/export.js';
import { noGrad } from '../ops/index.js';
import { bundleWorker } from '../serve/assets.js';
import { Tensor } from '../tensor/tensor.js';
import { resolveRunConfig } from '../train/run-config.js';
import { Cancelled, checkModelJob, facts, jobError, loadModelBytes, runModelJob } from './engine.js';
import type { BitsResult, CompressResult, FieldResult, InfoResult, WorkerMessage } from './protocol.js';
import { decompressBytes } from '../codec/compress.js';
import { samplingCheckpoint } from '../export/web.js';
import { validateCheckpoint } from '../train/validate.js';

function config(kind: string, extra: Record<string, unknown> = {}) {
  return resolveRunConfig({
    model: { kind, height: 8, width: 8, channels: 1, likelihood: { kind: 'categorical', levels: 16 }, hiddenChannels: 4, kernelSize: 3, firstKernelSize: 3, dilations: [1], ...extra },
    dataset: { name: 'fashion-mnist', bits: 4 },
    train: { steps: 1, seed: 3 },
  });
}

const bytes = encodeCheckpoint(initialCheckpoint(config('gated-pixelcnn')));

test('a checkpoint\'s bytes load into the model they hold; jobs answer with the library\'s numbers', () => {
  const loaded = loadModelBytes(bytes, 'w.safetensors');
  const m = loaded.model;
  assert.deepEqual(facts(m), { kind: 'gated-pixelcnn', height: 8, width: 8, channels: 1, levels: 16, numClasses: 0 });
  assert.equal(loaded.weights, 'raw');
  const rows: number[] = [];
  const seen: Int32Array[] = [];
  const msgs: WorkerMessage[] = [];
  runModelJob(loaded, { op: 'sample', n: 3, seed: 4, temperature: 1, label: null, granularity: 'row', complete: null }, (msg) => {
    msgs.push(msg);
    if (msg.type === 'row') { rows.push(msg.y); seen.push(msg.values.slice()); }
  }, () => false);
  assert.deepEqual(rows, [0, 1, 2, 3, 4, 5, 6, 7]);
  const want = m.sample({ n: 3, seed: 4 });
  // The last row's message holds the three images' last rows.
  for (let i = 0; i < 3; i++) assert.deepEqual(Array.from(seen[7]!.subarray(i * 8, (i + 1) * 8)), Array.from(want.data.subarray(i * 64 + 56, i * 64 + 64)));
  const values = Array.from(want.data.subarray(0, 64));
  const bits = runModelJob(loaded, { op: 'bits', values, label: null }, () => {}, () => false) as BitsResult;
  const lp = noGrad(() => m.elementLogProb(new Tensor(Int32Array.from(values), [1, 8, 8, 1]))).data;
  assert.deepEqual(bits.bits, Array.from(lp, (v) => -v / Math.LN2));
  assert.ok(bits.pngBytes > 0);
  const field = runModelJob(loaded, { op: 'field', y: 4, x: 4 }, () => {}, () => false) as FieldResult;
  assert.equal(field.of, 36);
  assert.ok(field.pixels > 0 && field.pixels <= 36);
  const info = runModelJob(loaded, { op: 'info' }, () => {}, () => false) as InfoResult;
  assert.equal(info.parameters, m.numParameters());
});

test('damaged, cut and foreign bytes are refused with one line naming the file', () => {
  const damaged = bytes.slice();
  damaged[damaged.length - 3]! ^= 1;
  assert.throws(() => loadModelBytes(damaged, 'w.safetensors'), (e: Error) => /^w\.safetensors.*damaged/.test(e.message) && !e.message.includes('\n'));
  assert.throws(() => loadModelBytes(bytes.subarray(0, 100), 'cut.safetensors'), /cut\.safetensors/);
  assert.throws(() => loadModelBytes(new TextEncoder().encode('not a checkpoint'), 'x.safetensors'), /x\.safetensors/);
});

test('requests outside the bounds, and labels the model cannot take, say what to change', () => {
  const loaded = loadModelBytes(bytes, 'w.safetensors');
  const f = facts(loaded.model);
  const sample = { op: 'sample' as const, n: 2, seed: 0, temperature: 1, label: null, granularity: 'row' as const, complete: null };
  assert.throws(() => checkModelJob(f, { ...sample, n: 65 }), /images must be an integer in 1\.\.64, got 65/);
  assert.throws(() => checkModelJob(f, { ...sample, temperature: 9 }), /temperature must be a number in 0\.05\.\.5/);
  assert.throws(() => checkModelJob(f, { ...sample, complete: { values: new Array(64).fill(0), keepRows: 9, mask: null } }), /keep rows must be an integer in 0\.\.8/);
  assert.throws(() => checkModelJob(f, { op: 'field', y: 8, x: 0 }), /y must be an integer in 0\.\.7/);
  assert.throws(() => runModelJob(loaded, { ...sample, label: 2 }, () => {}, () => false), /unconditional; leave the label empty/);
  assert.throws(() => runModelJob(loaded, { op: 'bits', values: [1, 2], label: null }, () => {}, () => false), /the image has 2 values but this model takes 8×8×1 = 64/);
  assert.throws(() => runModelJob(loaded, { op: 'bits', values: new Array(64).fill(16), label: null }, () => {}, () => false), /outside this model's levels 0\.\.15/);
  assert.deepEqual(jobError(new TypeError('x is undefined')), { status: 500, message: 'internal error: x is undefined' });
});

test('a job stops at the next row once it is cancelled', () => {
  const loaded = loadModelBytes(bytes, 'w.safetensors');
  let rows = 0;
  assert.throws(() => runModelJob(loaded, { op: 'sample', n: 1, seed: 0, temperature: 1, label: null, granularity: 'row', complete: null }, (m) => { if (m.type === 'row') rows++; }, () => rows >= 3), Cancelled);
  assert.equal(rows, 3);
});

test('the page\'s worker bundles for a browser: esbuild with platform browser finds no Node built-in in it', async () => {
  const js = await bundleWorker();
  assert.ok(js.length > 50_000);
  assert.doesNotMatch(js, /\bfrom\s*["']node:|require\(["']node:/);
});

/** A checkpoint whose averaged weights differ from its trained ones. */
function averagedCheckpoint(): Checkpoint {
  const cfg = config('gated-pixelcnn');
  const c = initialCheckpoint({ ...cfg, train: { ...cfg.train, ema: 0.99 } });
  const model = modelFromCheckpoint(c);
  c.ema = Object.fromEntries(model.namedParameters().map(([name, p]) => [name, new Tensor(Float32Array.from(p.data, (v) => v / 2 + 0.01), p.shape)]));
  c.meta.ema = { decay: 0.99, warmup: true, updates: 3 };
  c.meta.extra = { importedFrom: 'averaged.pt' };
  return c;
}

test('a checkpoint with averaged weights loads them, built once by the check, as modelFromCheckpoint builds them', () => {
  const c = averagedCheckpoint();
  const file = encodeCheckpoint(c);
  const loaded = loadModelBytes(file, 'ema.safetensors');
  assert.equal(loaded.weights, 'ema');
  const want = modelFromCheckpoint(decodeCheckpoint(file, 'ema.safetensors')).stateDict();
  const got = loaded.model.stateDict();
  assert.deepEqual(Object.keys(got), Object.keys(want));
  for (const k of Object.keys(want)) assert.deepEqual(got[k]!.data, want[k]!.data, k);
  assert.notDeepEqual(got[Object.keys(c.ema)[0]!]!.data, c.model[Object.keys(c.ema)[0]!]!.data, 'the averaged weights, not the trained ones');
  assert.equal(loaded.model.training, false);
});

test('the compress job: a file that decodes to the image; an export\'s copy of averaged weights writes files of the averaged weights, which the run\'s own model decodes', () => {
  const saved = decodeCheckpoint(encodeCheckpoint(averagedCheckpoint()), 'run.safetensors');
  const averaged = modelFromCheckpoint(saved);
  // What arpix export --web writes: the averaged weights in the model's place, and which they are.
  const loaded = loadModelBytes(samplingCheckpoint(validateCheckpoint(saved), 'run').bytes, 'weights.safetensors');
  assert.equal(loaded.weights, 'ema');
  const values = Array.from({ length: 64 }, (_, i) => (i * 7) % 16);
  const job = { op: 'compress' as const, values, label: null, mode: 'portable' as const, name: 'run-test-0.arpz' };
  const r = runModelJob(loaded, job, () => {}, () => false) as CompressResult;
  assert.equal(r.weights, 'ema');
  const back = decompressBytes(r.bytes, job.name, averaged);
  assert.equal(back.header.model.weights, 'ema');
  assert.deepEqual(Array.from(back.values.data), values);
  // Bad requests, and a job cancelled between coding and decoding.
  const f = facts(loaded.model);
  assert.throws(() => checkModelJob(f, { ...job, mode: 'zip' as 'wasm' }), /the mode must be one of native, portable, wasm, got "zip"/);
  assert.throws(() => checkModelJob(f, { ...job, name: '' }), /the file's name must be 1\.\.200 characters/);
  assert.throws(() => runModelJob(loaded, job, () => {}, () => true), Cancelled);
});
