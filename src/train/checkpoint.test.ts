// Checkpoint integrity: checksums, the metadata schema, exact tensors (weights, averaged weights,
// moments), non-finite values, and files from before the checksums — on checkpoints arpix's own
// training loop wrote.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { FormatError } from '../errors.js';
import { checkCheckpointMeta, decodeCheckpoint, encodeCheckpoint, type Checkpoint } from '../io/checkpoint.js';
import { encodeSafetensors, inspectSafetensors } from '../io/safetensors.js';
import { Tensor } from '../tensor/tensor.js';
import { trainedCheckpoint } from '../testing/checkpoints.js';
import { checkpointRunConfig } from './checkpoint.js';
import { modelFromCheckpoint } from '../models/checkpoint.js';
import { train } from './train.js';

const root = mkdtempSync(join(tmpdir(), 'arpix-ckpt-'));
test.after(() => rmSync(root, { recursive: true, force: true }));
const made = trainedCheckpoint('gated-pixelcnn', join(root, 'run'));

/** Decodes, resolves the config and builds the model, as every reader does. */
function use(bytes: Uint8Array): Checkpoint {
  const c = decodeCheckpoint(bytes, 'ck.safetensors');
  c.meta.config = checkpointRunConfig(c) as unknown as Checkpoint['meta']['config'];
  modelFromCheckpoint(c);
  return c;
}

/** The file re-written (with valid checksums) after `edit` changed the decoded checkpoint. */
async function resealed(edit: (c: Checkpoint) => void): Promise<Uint8Array> {
  const c = decodeCheckpoint((await made).bytes, 'ck.safetensors');
  edit(c);
  return encodeCheckpoint(c);
}

const refused = (bytes: Uint8Array, re: RegExp) => assert.throws(() => use(bytes), (e: unknown) => e instanceof FormatError && /^ck\.safetensors: /.test(e.message) && re.test(e.message));

test('a checkpoint as written is verified and used', async () => {
  const c = use((await made).bytes);
  assert.equal(c.integrity, 'verified');
  assert.equal(c.meta.step, 3);
});

test('one changed byte anywhere in the tensor data, or in the metadata, is refused as damage', async () => {
  const { bytes } = await made;
  const info = inspectSafetensors(bytes);
  for (const at of [info.dataStart, info.dataStart + 1001, bytes.length - 1]) {
    const b = Uint8Array.from(bytes);
    b[at] = b[at]! ^ 1;
    refused(b, /tensors do not match the SHA-256/);
  }
  const text = Buffer.from(bytes.subarray(8, info.dataStart)).toString('latin1');
  const b = Uint8Array.from(bytes);
  const at = 8 + text.indexOf('\\"step\\":3') + 9;
  b[at] = '4'.charCodeAt(0);
  refused(b, /metadata does not match the SHA-256/);
});

test('bytes whose whole-file digest the caller checked (digestChecked, as the exported page does) are not summed again', async () => {
  const { bytes } = await made;
  const info = inspectSafetensors(bytes);
  // A changed weight byte: the inner sums refuse it; a caller vouching for these bytes is believed.
  const b = Uint8Array.from(bytes);
  b[info.dataStart + 1001] = b[info.dataStart + 1001]! ^ 1;
  refused(b, /tensors do not match the SHA-256/);
  const c = decodeCheckpoint(b, 'ck.safetensors', { digestChecked: true });
  assert.equal(c.integrity, 'verified');
  const plain = decodeCheckpoint(bytes, 'ck.safetensors');
  const vouched = decodeCheckpoint(bytes, 'ck.safetensors', { digestChecked: true });
  assert.deepEqual(Object.keys(vouched.model), Object.keys(plain.model));
  for (const [k, t] of Object.entries(plain.model)) assert.deepEqual(vouched.model[k]!.data, t.data, k);
});

test('a tensor of the same element count but another shape, another dtype, or a missing or doubled average is refused', async () => {
  refused(await resealed((c) => {
    const t = c.model['out.weight']!;
    c.model['out.weight'] = new Tensor(t.data, [...t.shape].reverse());
  }), /'model\.out\.weight' is float32 \[.*\] but its model needs float32/);
  refused(await resealed((c) => {
    const t = c.model['out.bias']!;
    c.model['out.bias'] = new Tensor(Float64Array.from(t.data), t.shape);
  }), /'model\.out\.bias' is float64 .* needs float32/);
  refused(await resealed((c) => {
    delete c.ema['out.bias'];
  }), /lacks averaged weight\(s\) 'ema\.out\.bias'/);
  refused(await resealed((c) => {
    const t = c.ema['out.bias']!;
    c.ema['out.bias'] = new Tensor(new Float32Array(2 * t.size), [2 * t.size]);
  }), /'ema\.out\.bias' is float32 \[\d+\] but its model needs/);
  refused(await resealed((c) => {
    const t = c.ema['out.bias']!;
    c.ema['out.bias'] = new Tensor(new Int32Array(t.size), t.shape);
  }), /'ema\.out\.bias' is int32/);
  refused(await resealed((c) => {
    c.ema = {};
  }), /EMA state in its metadata but no averaged/);
  refused(await resealed((c) => {
    const t = c.optimizer['0.exp_avg']!;
    c.optimizer['0.exp_avg'] = new Tensor(t.data, [t.size]);
  }), /'optimizer\.0\.exp_avg' is float32 \[\d+\] but its parameter/);
});

test('non-finite weights, averages and moments are refused', async () => {
  for (const [part, name, value] of [['model', 'out.weight', NaN], ['ema', 'out.bias', Infinity], ['optimizer', '0.exp_avg_sq', NaN]] as const) {
    refused(await resealed((c) => {
      c[part][name]!.data[1] = value;
    }), new RegExp(`'${part}\\.${name.replace('.', '\\.')}' holds ${value} at flat index 1`));
  }
});

test('every metadata field is checked against the schema: the field and the file are named', async () => {
  const bad = async (edit: (m: Record<string, unknown>) => void, re: RegExp) =>
    refused(await resealed((c) => edit(c.meta as unknown as Record<string, unknown>)), re);
  await bad((m) => { m.step = 1e300; }, /field 'step' must be <=1000000000000/);
  await bad((m) => { delete m.generators; }, /field 'generators' is missing/);
  await bad((m) => { (m.generators as Record<string, { seed: unknown }>).default!.seed = 'x'; }, /field 'generators\.default\.seed' must be number, got "x"/);
  await bad((m) => { m.optimizer = { kind: 'adam', groups: null, steps: {} }; }, /field 'optimizer\.groups'/);
  await bad((m) => { m.trainSeconds = -1; }, /field 'trainSeconds'/);
  await bad((m) => { m.extra = { validation: { bitsPerDim: null } }; }, /field 'extra\.validation\.bitsPerDim'/);
  await bad((m) => { m.modelKind = 'pixelcnn'; }, /modelKind 'pixelcnn' differs from config\.model\.kind/);
  // 10,000 levels: too deep for JSON.stringify to write, so the parsed metadata is checked directly.
  const meta = JSON.stringify(decodeCheckpoint((await made).bytes, 'ck').meta);
  const deep = meta.replace('"extra":{', `"extra":{"deep":${'{"a":'.repeat(10_000)}1${'}'.repeat(10_000)},`);
  assert.throws(() => checkCheckpointMeta('ck.safetensors', JSON.parse(deep)), (e: unknown) => e instanceof FormatError && /^ck\.safetensors: has checkpoint metadata nested deeper than 32 levels/.test(e.message));
  await bad((m) => { (m.config as { model: Record<string, unknown> }).model.hiddenChannels = -4; }, /bad run config in its metadata: config: model\.hiddenChannels/);
});

test('a resume refuses a checkpoint without optimizer state, before it writes anything', async () => {
  const { config, data } = await made;
  const bytes = await resealed((c) => {
    c.meta.optimizer = null;
    c.optimizer = {};
  });
  const dir = join(root, 'no-optimizer');
  const { mkdirSync, writeFileSync } = await import('node:fs');
  mkdirSync(dir);
  writeFileSync(join(dir, 'checkpoint.safetensors'), bytes);
  await assert.rejects(train(config, { runDir: dir, data, resume: true }), /has no optimizer state to resume from/);
});

test('a checkpoint from before the checksums loads, marked unverified', async () => {
  const { bytes } = await made;
  const c = decodeCheckpoint(bytes, 'ck');
  const tensors: Record<string, Tensor> = {};
  for (const part of ['model', 'optimizer', 'ema'] as const) for (const [k, t] of Object.entries(c[part])) tensors[`${part}.${k}`] = t;
  const legacy = encodeSafetensors(tensors, { arpix: JSON.stringify(c.meta) });
  assert.equal(use(legacy).integrity, 'unverified');
});

test('the training guard refuses to save non-finite weights: the run stops as diverged and writes no checkpoint', async () => {
  const { tinyRunConfig, syntheticRunData } = await import('../testing/checkpoints.js');
  const { existsSync } = await import('node:fs');
  const config = tinyRunConfig('gated-pixelcnn', 3);
  // An Adam step of ~1e39 turns finite weights into ±Infinity; the loss and gradient of that step were finite.
  config.train.lr = 1e39;
  config.train.checkpointEvery = 1;
  const dir = join(root, 'overflow');
  const r = await train(config, { runDir: dir, data: syntheticRunData() });
  assert.equal(r.status, 'diverged');
  assert.match(r.message!, /^training diverged by step 1: weight '.+' holds -?Infinity at flat index \d+, so no checkpoint was written$/);
  assert.equal(r.checkpoint, null);
  assert.ok(!existsSync(join(dir, 'checkpoint.safetensors')));
});
