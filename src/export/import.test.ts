// arpix import without PyTorch: the restricted unpickler refuses what is not data, the masked
// formulations load as the same function or are refused with the tap named, state dicts that do
// not fit name their first bad key, and a run exported and imported back is bit for bit the same.

import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { loadCheckpoint } from '../io/checkpoint.js';
import { saveSafetensorsSync } from '../io/safetensors.js';
import { createModel } from '../models/index.js';
import type { AutoregressiveModel } from '../models/core/model.js';
import { noGrad } from '../ops/index.js';
import { Generator } from '../tensor/random.js';
import { Tensor } from '../tensor/tensor.js';
import { importCheckpoint } from './import.js';
import { readTorchSave, unpickle, UnsafePickleError } from './pickle.js';
import { locateDataset } from '../data/index.js';

const MAIN = fileURLToPath(new URL('../cli/main.ts', import.meta.url));
const ENV = { ...process.env, NODE_NO_WARNINGS: '1', OMP_NUM_THREADS: '1' };
const tmp = mkdtempSync(join(tmpdir(), 'arpix-import-'));
after(() => rmSync(tmp, { recursive: true, force: true }));

function arpix(args: string[]) {
  const r = spawnSync(process.execPath, ['--import', 'tsx', MAIN, ...args], { env: ENV, encoding: 'utf8' });
  return { code: r.status, stdout: r.stdout, stderr: r.stderr };
}

function assertOneLine(r: { code: number | null; stderr: string }, re: RegExp): void {
  assert.equal(r.code, 1, r.stderr);
  const lines = r.stderr.trim().split('\n');
  assert.equal(lines.length, 1, r.stderr);
  assert.match(lines[0]!, re);
}

/** A zip of stored entries (what torch.save writes), enough for the reader. */
function zip(files: Record<string, Uint8Array>): Buffer {
  const locals: Buffer[] = [];
  const centrals: Buffer[] = [];
  let offset = 0;
  for (const [name, data] of Object.entries(files)) {
    const n = Buffer.from(name);
    const local = Buffer.alloc(30);
    local.writeUInt32LE(0x04034b50, 0);
    local.writeUInt32LE(data.length, 18);
    local.writeUInt32LE(data.length, 22);
    local.writeUInt16LE(n.length, 26);
    const central = Buffer.alloc(46);
    central.writeUInt32LE(0x02014b50, 0);
    central.writeUInt32LE(data.length, 20);
    central.writeUInt32LE(data.length, 24);
    central.writeUInt16LE(n.length, 28);
    central.writeUInt32LE(offset, 42);
    locals.push(local, n, Buffer.from(data));
    centrals.push(central, n);
    offset += 30 + n.length + data.length;
  }
  const dir = Buffer.concat(centrals);
  const end = Buffer.alloc(22);
  end.writeUInt32LE(0x06054b50, 0);
  end.writeUInt16LE(Object.keys(files).length, 8);
  end.writeUInt16LE(Object.keys(files).length, 10);
  end.writeUInt32LE(dir.length, 12);
  end.writeUInt32LE(offset, 16);
  return Buffer.concat([...locals, dir, end]);
}

const str = (s: string) => Buffer.concat([Buffer.from([0x8c, s.length]), Buffer.from(s)]); // SHORT_BINUNICODE

/** pickle of {'w': tensor [2] float32 from storage '0'}, as torch.save writes it (protocol 2). */
function stateDictPickle(): Buffer {
  return Buffer.concat([
    Buffer.from([0x80, 0x02]), Buffer.from('ccollections\nOrderedDict\n'), Buffer.from(')R'), // OrderedDict()
    str('w'),
    Buffer.from('ctorch._utils\n_rebuild_tensor_v2\n'),
    Buffer.from('('), Buffer.from('('), str('storage'), Buffer.from('ctorch\nFloatStorage\n'), str('0'), str('cpu'), Buffer.from([0x4b, 2]), Buffer.from('tQ'),
    Buffer.from([0x4b, 0]), Buffer.from([0x4b, 2, 0x85]), Buffer.from([0x4b, 1, 0x85]), Buffer.from([0x89]), Buffer.from('ccollections\nOrderedDict\n)R'), Buffer.from('tR'),
    Buffer.from('s.'),
  ]);
}

describe('the restricted unpickler', () => {
  test('reads a state dict from a torch.save archive: tensors rebuilt from their storages', () => {
    const file = zip({ 'archive/data.pkl': stateDictPickle(), 'archive/data/0': Buffer.from(new Float32Array([1.5, -2]).buffer), 'archive/byteorder': Buffer.from('little') });
    const v = readTorchSave(file, 'sd.pt') as Map<string, Tensor>;
    assert.deepEqual([...v.keys()], ['w']);
    assert.deepEqual(Array.from(v.get('w')!.data), [1.5, -2]);
  });

  test('refuses a pickle that imports os.system, before anything runs', () => {
    const evil = Buffer.concat([Buffer.from([0x80, 0x02]), Buffer.from('cos\nsystem\n'), str('touch pwned'), Buffer.from([0x85]), Buffer.from('R.')]);
    assert.throws(() => unpickle(evil, 'evil.pkl'), (e: Error) => e instanceof UnsafePickleError && /imports os\.system/.test(e.message));
    // STACK_GLOBAL spelling, and builtins.eval.
    const evil2 = Buffer.concat([Buffer.from([0x80, 0x04]), str('builtins'), str('eval'), Buffer.from([0x93]), str('1'), Buffer.from([0x85]), Buffer.from('R.')]);
    assert.throws(() => unpickle(evil2, 'evil.pkl'), /imports builtins\.eval/);
    // Opcodes that build arbitrary objects are refused even without a global.
    assert.throws(() => unpickle(Buffer.from('(i__main__\nX\n.'), 'evil.pkl'), /INST/);
  });

  test('arpix import of a malicious torch.save file: one line, nothing executed', () => {
    const marker = join(tmp, 'pwned');
    const evil = Buffer.concat([Buffer.from([0x80, 0x02]), Buffer.from('cposix\nsystem\n'), str(`touch ${marker}`.slice(0, 255)), Buffer.from([0x85]), Buffer.from('R.')]);
    const file = join(tmp, 'evil.pt');
    writeFileSync(file, zip({ 'archive/data.pkl': evil }));
    assertOneLine(arpix(['import', file, '--out', join(tmp, 'evil-run'), '--preset', 'gated-pixelcnn-mnist']), /evil\.pt: is refused: its pickle imports posix\.system; arpix reads tensors, state dicts and plain containers only/);
    assert.equal(existsSync(marker), false);
    assert.equal(existsSync(join(tmp, 'evil-run')), false);
  });
});

// ---- the masked formulation of Gated PixelCNN --------------------------------------------------

const GATED = { kind: 'gated-pixelcnn', height: 7, width: 6, channels: 1, likelihood: { kind: 'categorical', levels: 256 }, hiddenChannels: 4, kernelSize: 3, firstKernelSize: 3, dilations: [1, 2] };

function logProbs(model: AutoregressiveModel): Float32Array | Float64Array {
  const g = new Generator(3);
  const u = new Float64Array(3 * 7 * 6);
  g.uniform(u);
  const images = new Tensor(Int32Array.from(u, (v) => Math.floor(v * 256)), [3, 7, 6, 1]);
  return noGrad(() => model.logProb(images)).data as Float32Array;
}

/**
 * arpix's weights written as the UvA tutorial's network: full k×k / 1×k kernels, `mask` buffers, and
 * `garbage` in the taps the masks zero (its forward multiplies the masks in, so training leaves them
 * non-zero). With `masks` false the kernels are as the bench mirror keeps them: zero there, no mask.
 */
function maskedStateDict(model: AutoregressiveModel, opts: { uva: boolean; masks: boolean; garbage: number }): Record<string, Tensor> {
  const sd = model.stateDict({ layout: 'pytorch' });
  const out: Record<string, Tensor> = {};
  const name = (k: string) => (!opts.uva ? k : k
    .replace(/^vFirst\./, 'conv_vstack.conv.').replace(/^hFirst\./, 'conv_hstack.conv.')
    .replace(/^blocks\.(\d+)\.vConv\./, 'conv_layers.$1.conv_vert.conv.').replace(/^blocks\.(\d+)\.hConv\./, 'conv_layers.$1.conv_horiz.conv.')
    .replace(/^blocks\.(\d+)\.link\./, 'conv_layers.$1.conv_vert_to_horiz.').replace(/^blocks\.(\d+)\.residual\./, 'conv_layers.$1.conv_horiz_1x1.')
    .replace(/^out\./, 'conv_out.'));
  for (const [k, t] of Object.entries(sd)) {
    const m = /^(vFirst|hFirst|blocks\.\d+\.(?:vConv|hConv))\.weight$/.exec(k);
    if (!m) { out[name(k)] = t; continue; }
    const [o, i, rows, cols] = t.shape as [number, number, number, number];
    const first = !k.startsWith('blocks');
    const vertical = k.includes('vFirst') || k.includes('vConv');
    const kh = vertical ? (first ? 2 * rows + 1 : 2 * rows - 1) : 1;
    const kw = vertical ? cols : first ? 2 * cols + 1 : 2 * cols - 1;
    const w = new Float32Array(o * i * kh * kw);
    const mask = new Float32Array(kh * kw);
    for (let a = 0; a < o * i; a++) {
      for (let y = 0; y < kh; y++) {
        for (let x = 0; x < kw; x++) {
          const kept = y < rows && x < cols;
          w[(a * kh + y) * kw + x] = kept ? t.data[(a * rows + y) * cols + x]! : opts.garbage;
          mask[y * kw + x] = kept ? 1 : 0;
        }
      }
    }
    out[name(k)] = new Tensor(w, [o, i, kh, kw]);
    if (opts.masks) out[name(k).replace(/(\.conv)?\.weight$/, '.mask')] = new Tensor(mask, [1, 1, kh, kw]);
  }
  return out;
}

describe('importing Gated PixelCNN in the masked formulation', () => {
  const model = createModel(GATED, { seed: 5 });
  const reference = logProbs(model);
  const config = join(tmp, 'gated.json');
  writeFileSync(config, JSON.stringify({ model: GATED, dataset: { name: 'mnist', bits: 8, binarize: 'none' }, train: { steps: 10 } }));

  test('the UvA tutorial\'s names, masks and non-zero masked taps: the masks are applied, the taps dropped', async () => {
    const file = join(tmp, 'uva.safetensors');
    saveSafetensorsSync(file, maskedStateDict(model, { uva: true, masks: true, garbage: 0.37 }));
    const { resolveRunConfig, configFileRaw } = await import('../train/config.js');
    const imported = await importCheckpoint(file, { config: resolveRunConfig(configFileRaw(config)) });
    assert.equal(imported.masked, true);
    const back = createModel(GATED);
    back.loadStateDict(imported.checkpoint.model);
    assert.deepEqual(Array.from(logProbs(back)), Array.from(reference));
  });

  test('full kernels with zeros in the masked taps and no mask (the bench mirror) load the same', async () => {
    const file = join(tmp, 'bench.safetensors');
    saveSafetensorsSync(file, maskedStateDict(model, { uva: false, masks: false, garbage: 0 }));
    const r = arpix(['import', file, '--out', join(tmp, 'bench-run'), '--config', config]);
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /masked formulation/);
    const back = createModel(GATED);
    back.loadStateDict((await loadCheckpoint(join(tmp, 'bench-run', 'checkpoint.safetensors'))).model);
    assert.deepEqual(Array.from(logProbs(back)), Array.from(reference));
  });

  test('a non-zero masked tap without a mask is refused in one line naming the key and the tap', () => {
    const file = join(tmp, 'leaky.safetensors');
    saveSafetensorsSync(file, maskedStateDict(model, { uva: false, masks: false, garbage: 0.01 }));
    assertOneLine(arpix(['import', file, '--out', join(tmp, 'leaky-run'), '--config', config]), /'vFirst\.weight' has a non-zero masked tap \(out 0, in 0, row 1, column 0\) = 0\.01/);
  });

  test('state dicts that do not fit name their first missing, unexpected or mis-shaped key', () => {
    const sd = model.stateDict({ layout: 'pytorch' });
    const write = (name: string, tensors: Record<string, Tensor>) => { const f = join(tmp, name); saveSafetensorsSync(f, tensors); return f; };
    const { ['blocks.1.link.bias']: _dropped, ...missing } = sd;
    assertOneLine(arpix(['import', write('missing.safetensors', missing), '--out', join(tmp, 'm-run'), '--config', config]), /does not fit the config: key 'blocks\.1\.link\.bias' \[8\] of the gated-pixelcnn config is missing \(1 missing, 0 unexpected/);
    assertOneLine(arpix(['import', write('extra.safetensors', { ...sd, 'head.weight': new Tensor(new Float32Array(2), [2]) }), '--out', join(tmp, 'e-run'), '--config', config]), /key 'head\.weight' is not in the gated-pixelcnn config \(0 missing, 1 unexpected/);
    assertOneLine(arpix(['import', write('shape.safetensors', { ...sd, 'out.bias': new Tensor(new Float32Array(10), [10]) }), '--out', join(tmp, 's-run'), '--config', config]), /key 'out\.bias' has shape \[10\] but the config's model has \[256\]/);
    assertOneLine(arpix(['import', write('noarch.safetensors', sd), '--out', join(tmp, 'n-run')]), /carries no architecture; give --preset NAME or --config FILE/);
  });
});

// ---- round trip ----------------------------------------------------------------------------------

const haveFashion = locateDataset('fashion-mnist') !== null;

describe('arpix run → export → import', { skip: !haveFashion && 'Fashion-MNIST is not installed (apt-get install dataset-fashion-mnist)' }, () => {
  test('gives back bit-identical weights, optimiser state and average, and the run resumes', async () => {
    const run = join(tmp, 'run');
    const tiny = ['--model.hiddenChannels=4', '--model.dilations=[1]', '--train.batchSize=8', '--train.steps=3', '--train.validationSize=16', '--train.validateEvery=0', '--train.checkpointEvery=0', '--train.ema=0.9', '--train.logEvery=1'];
    assert.equal(arpix(['train', '--preset', 'gated-pixelcnn-fmnist', '--out', run, '--no-bar', ...tiny]).code, 0);
    const exp = join(tmp, 'exported');
    const e = arpix(['export', run, '--torch', exp, '--no-data']);
    assert.equal(e.code, 0, e.stderr);
    // The exported file is in PyTorch's layout and says so; arpix's own commands refuse it.
    assertOneLine(arpix(['eval', join(exp, 'checkpoint.safetensors')]), /in PyTorch's weight layout .* arpix import/);
    const back = join(tmp, 'back');
    const i = arpix(['import', join(exp, 'checkpoint.safetensors'), '--out', back]);
    assert.equal(i.code, 0, i.stderr);
    const a = await loadCheckpoint(join(run, 'checkpoint.safetensors'));
    const b = await loadCheckpoint(join(back, 'checkpoint.safetensors'));
    for (const part of ['model', 'optimizer', 'ema'] as const) {
      assert.deepEqual(Object.keys(b[part]).sort(), Object.keys(a[part]).sort(), part);
      assert.ok(Object.keys(a[part]).length > 0, `${part} is not empty`);
      for (const [k, t] of Object.entries(a[part])) {
        assert.deepEqual(b[part][k]!.shape, t.shape, `${part}.${k}`);
        assert.ok(Buffer.from(b[part][k]!.data.buffer).equals(Buffer.from(t.data.buffer)), `${part}.${k} differs`);
      }
    }
    assert.deepEqual(b.meta.optimizer, a.meta.optimizer);
    assert.deepEqual(b.meta.ema, a.meta.ema);
    assert.equal(b.meta.step, 3);
    const resumed = arpix(['train', '--resume', back, '--train.steps=5', '--no-bar']);
    assert.equal(resumed.code, 0, resumed.stderr);
    assert.equal((await loadCheckpoint(join(back, 'checkpoint.safetensors'))).meta.step, 5);
  });
});
