// arpix import without PyTorch: the restricted unpickler refuses what is not data, the masked
// formulations load as the same function or are refused with the tap named, state dicts that do
// not fit name their first bad key, and a run exported and imported back is bit for bit the same.

import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { ArpixError } from '../errors.js';
import { loadCheckpoint } from '../io/disk.js';
import { saveSafetensorsSync } from '../io/disk.js';
import { createModel } from '../models/index.js';
import type { AutoregressiveModel } from '../models/core/model.js';
import { noGrad } from '../ops/index.js';
import { Generator } from '../tensor/random.js';
import { Tensor } from '../tensor/tensor.js';
import { importCheckpoint } from './import.js';
import { readTorchSave, unpickle, UnsafePickleError } from './pickle.js';
import { locateDataset } from '../data/index.js';
import { encodeTorchSave, tinyTorchConfig, torchSaveSpec, zeroBomb, zipArchive, type TorchSaveSpec, type TorchTensorSpec } from '../testing/torch-fuzz.js';
import { findTorchPython } from './python.js';

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
  return Buffer.from(zipArchive(Object.entries(files).map(([name, data]) => ({ name, data, o: {} }))));
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

// ---- hostile torch.save and safetensors files: refused before anything is allocated -------------

describe('crafted files are refused in one line, before their claims are allocated', () => {
  const config = tinyTorchConfig();
  const configFile = join(tmp, 'tiny.json');
  writeFileSync(configFile, JSON.stringify({ model: config.model, dataset: config.dataset, train: config.train }));
  const weights = createModel(config.model, { seed: 2 }).stateDict({ layout: 'pytorch' });
  const python = findTorchPython();

  /** The base state dict's description with `edit` applied to its tensor `key`, written to `name`. */
  const crafted = (name: string, edit: (spec: TorchSaveSpec, t: TorchTensorSpec) => void, key = 'blocks.0.vConv.weight'): string => {
    const spec = torchSaveSpec(weights);
    edit(spec, spec.tensors.find((t) => t.key === key)!);
    const file = join(tmp, name);
    writeFileSync(file, encodeTorchSave(spec));
    return file;
  };
  const refused = async (file: string, re: RegExp) => {
    await assert.rejects(importCheckpoint(file, { config }), (e: Error) => {
      assert.ok(e instanceof ArpixError, String(e));
      assert.equal(e.message.split('\n').length, 1, e.message);
      assert.ok(e.message.startsWith(`${file}: `), e.message);
      assert.match(e.message, re);
      return true;
    });
  };

  /** `arpix import FILE` in a child process: its exit code, stderr, and its peak resident memory in MB. */
  const importChild = (file: string, out: string) => {
    const rss = 'data:text/javascript,' + encodeURIComponent('import { writeSync } from "node:fs"; process.on("exit", () => { try { writeSync(3, String(process.resourceUsage().maxRSS)); } catch {} });');
    const r = spawnSync(process.execPath, ['--import', rss, '--import', 'tsx', MAIN, 'import', file, '--out', out, '--config', configFile], { env: ENV, encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe', 'pipe'] });
    return { code: r.status, stderr: r.stderr, peakMB: Number(r.output[3]) / 1024 };
  };

  test('the base file, as torch.save writes it, imports with its weights', async () => {
    const file = crafted('base.pt', () => {});
    const model = createModel(config.model);
    model.loadStateDict((await importCheckpoint(file, { config })).checkpoint.model);
    for (const [k, t] of Object.entries(model.stateDict({ layout: 'pytorch' }))) assert.deepEqual(Array.from(t.data), Array.from(weights[k]!.data), k);
  });

  // Each bomb is imported by the CLI in a child process: one line, exit 1, no run folder, and a peak
  // resident memory within 200 MB of the same command importing the honest file.
  describe('bombs: peak memory stays near that of an honest import', () => {
    const honest = crafted('honest.pt', () => {});
    const base = importChild(honest, join(tmp, 'honest-run'));
    const bombs: [string, () => string | null, RegExp][] = [
      ['the issue\'s stride-0 view, written by PyTorch: torch.zeros(1).expand(20000, 20000)', () => {
        if (python === null) return null;
        const file = join(tmp, 'expand-torch.pt');
        const r = spawnSync(python, ['-c', `import torch, collections; torch.save(collections.OrderedDict(w=torch.zeros(1).expand(20000, 20000)), ${JSON.stringify(file)})`], { encoding: 'utf8' });
        assert.equal(r.status, 0, r.stderr);
        return file;
      }, /holds a tensor \[20000, 20000\] of storage data\/0 that is an expanded view \(stride 0\): arpix reads tensors whose elements are all stored; save t\.contiguous\(\) instead/],
      ['a model weight as a stride-0 view of one element', () => crafted('expand.pt', (spec, t) => {
        spec.storages.set(t.storage, new Uint8Array(4));
        Object.assign(t, { numel: 1, shape: [20000, 20000], stride: [0, 0] });
      }), /a tensor \[20000, 20000\] of storage data\/4 that is an expanded view \(stride 0\)/],
      ['a huge declared shape over a small storage', () => crafted('huge-shape.pt', (_, t) => Object.assign(t, { shape: [2 ** 31, 2 ** 31], stride: [2 ** 31, 1] })),
        /holds a tensor \[2147483648, 2147483648\] of storage data\/4: more elements than the 192 its storage holds/],
      ['an entry declaring its true size that inflates to 1 GiB', () => crafted('bomb-past.pt', (spec, t) => {
        spec.entries.set(`data/${t.storage}`, { compressed: zeroBomb(1024), size: spec.storages.get(t.storage)!.length });
      }), /zip entry 'archive\/data\/4' inflates to more than the 768 bytes its directory declares \(a zip bomb\?\); refused/],
      ['an entry honestly declaring the 1 GiB it inflates to', () => crafted('bomb-declared.pt', (spec, t) => {
        spec.entries.set(`data/${t.storage}`, { compressed: zeroBomb(1024), size: 2 ** 30 });
        t.numel = 2 ** 28;
      }), /has storages declaring 1073741920 bytes \(at data\/4\), more than the \d+ allowed for the config's gated-pixelcnn model \(1,668 weights\); refused before inflating them/],
      ['one storage viewed by 200 tensors', () => crafted('flood.pt', (spec, t) => {
        for (let i = 0; i < 200; i++) spec.tensors.push({ ...t, key: `copy${i}` });
      }, 'out.weight'), /holds more tensor elements than the 92224 allowed for the config's gated-pixelcnn model \(1,668 weights\) \(at a tensor \[256, 4, 1, 1\] of storage data\/12\); refused before reading them/],
    ];
    for (const [name, make, re] of bombs) {
      test(name, (t) => {
        const file = make();
        if (file === null) return t.skip('no Python here imports torch (apt-get install python3-torch)');
        const out = join(tmp, `${name.replace(/\W+/g, '-')}-run`);
        const r = importChild(file, out);
        assertOneLine(r, re);
        assert.equal(existsSync(out), false);
        t.diagnostic(`peak resident memory ${r.peakMB.toFixed(0)} MB; an honest import ${base.peakMB.toFixed(0)} MB`);
        assert.ok(r.peakMB - base.peakMB < 200, `peak ${r.peakMB.toFixed(0)} MB, honest import ${base.peakMB.toFixed(0)} MB`);
      });
    }
    test('the honest import succeeded, so the comparisons mean something', () => assert.equal(base.code, 0, base.stderr));
  });

  test('stride tricks: negative, overlapping, past the storage, larger than the storage', async () => {
    await refused(crafted('negative.pt', (_, t) => Object.assign(t, { offset: 191, stride: [-24, 6, 3, 1] })), /holds a tensor \[8, 4, 2, 3\] of storage data\/4 with strides \[-24, 6, 3, 1\]; sizes and strides are non-negative/);
    await refused(crafted('overlap.pt', (_, t) => Object.assign(t, { stride: [1, 1, 1, 1] })), /holds a tensor \[8, 4, 2, 3\] of storage data\/4 with strides \[1, 1, 1, 1\] that reach some elements twice: save t\.contiguous\(\) instead/);
    await refused(crafted('offset.pt', (_, t) => Object.assign(t, { offset: 1 })), /holds a tensor \[8, 4, 2, 3\] of storage data\/4 at offset 1 with strides \[24, 6, 3, 1\], reaching element 192 of a storage of 192/);
    await refused(crafted('offset-negative.pt', (_, t) => Object.assign(t, { offset: -1 })), /at storage offset -1; offsets are non-negative integers/);
    await refused(crafted('small-storage.pt', (_, t) => Object.assign(t, { shape: [16, 4, 2, 3], stride: [24, 6, 3, 1] })), /holds a tensor \[16, 4, 2, 3\] of storage data\/4: more elements than the 192 its storage holds/);
  });

  test('sizes that disagree: the pickle\'s element count, the zip entry\'s declared size, the local header', async () => {
    await refused(crafted('numel.pt', (_, t) => { t.numel = 191; }), /storage data\/4 holds 768 bytes, but its pickle gives it 191 F32 elements \(764 bytes\)/);
    await refused(crafted('stored-size.pt', (spec, t) => spec.entries.set(`data/${t.storage}`, { size: 772 })), /is a damaged zip archive: stored entry 'archive\/data\/4' declares 772 bytes but holds 768/);
    // The pickle agrees with the declared sizes here; the deflate streams do not.
    await refused(crafted('deflated-short.pt', (spec, t) => { spec.entries.set(`data/${t.storage}`, { deflate: true, size: 772 }); t.numel = 193; }), /zip entry 'archive\/data\/4' inflates to 768 bytes, not the 772 its directory declares/);
    await refused(crafted('deflated-long.pt', (spec, t) => { spec.entries.set(`data/${t.storage}`, { deflate: true, size: 764 }); t.numel = 191; }), /zip entry 'archive\/data\/4' inflates to more than the 764 bytes its directory declares/);
    await refused(crafted('crc.pt', (spec, t) => spec.entries.set(`data/${t.storage}`, { crc: 1 })), /zip entry 'archive\/data\/4' is damaged: its CRC-32 is [0-9a-f]{8}, its directory says 00000001/);
    const bytes = readFileSync(crafted('local.pt', () => {}));
    bytes.writeUInt16LE(8, 8); // the first local header now says deflated; its directory record, stored
    const file = join(tmp, 'local.pt');
    writeFileSync(file, bytes);
    await refused(file, /is a damaged zip archive: the local header of 'archive\/data\.pkl' gives another compression method/);
    const moved = readFileSync(crafted('moved.pt', () => {}));
    const dir = moved.readUInt32LE(moved.length - 22 + 16);
    moved.writeUInt32LE(0, dir + 46 + 'archive/data.pkl'.length + 42); // the second record points at the first entry
    writeFileSync(file, moved);
    await refused(file, /is a damaged zip archive: the local header of 'archive\/byteorder' names another entry/);
    const overlap = readFileSync(crafted('overlap.pt', () => {}));
    for (const at of [18, 22, dir + 20, dir + 24]) overlap.writeUInt32LE(overlap.readUInt32LE(at) + 10, at); // data.pkl now runs into byteorder
    writeFileSync(file, overlap);
    await refused(file, /is a damaged zip archive: entries 'archive\/data\.pkl' and 'archive\/byteorder' overlap/);
  });

  test('a pickle far larger than the model\'s state dict needs is refused before it is inflated', async () => {
    await refused(crafted('pickle.pt', (spec) => { spec.picklePadding = 64 * 2 ** 20; spec.entries.set('data.pkl', { deflate: true }); }),
      /has a data\.pkl of 67\d+ bytes, more than the 1966080 allowed for the config's gated-pixelcnn model \(1,668 weights\); refused before reading it/);
  });

  test('wrong dtypes are refused with the key named, in torch.save files and in safetensors', async () => {
    await refused(crafted('int.pt', (_, t) => { t.storageType = 'IntStorage'; }), /key 'blocks\.0\.vConv\.weight' holds int32 values; weights must be floating point/);
    await refused(crafted('complex.pt', (_, t) => { t.storageType = 'ComplexFloatStorage'; }), /is refused: its pickle imports torch\.ComplexFloatStorage/);
    const file = join(tmp, 'int.safetensors');
    saveSafetensorsSync(file, { ...weights, 'out.bias': new Tensor(new Int32Array(256), [256]) });
    await refused(file, /key 'out\.bias' holds int32 values; weights must be floating point/);
  });

  test('a safetensors header beginning with a byte-order mark is refused; the format begins with {', () => {
    const file = join(tmp, 'bom.safetensors');
    const json = Buffer.concat([Buffer.from([0xef, 0xbb, 0xbf]), Buffer.from(JSON.stringify({ w: { dtype: 'F32', shape: [1], data_offsets: [0, 4] } }))]);
    const head = Buffer.alloc(8);
    head.writeBigUInt64LE(BigInt(json.length));
    writeFileSync(file, Buffer.concat([head, json, Buffer.alloc(4)]));
    assertOneLine(arpix(['import', file, '--out', join(tmp, 'bom-run'), '--config', configFile]), /bom\.safetensors: not a valid safetensors file: the header begins with a UTF-8 byte-order mark, not '\{'; the format's JSON header begins with '\{'/);
    assert.equal(existsSync(join(tmp, 'bom-run')), false);
  });

  test('views PyTorch writes for real state dicts load: a transpose, channels-last, a slice of a larger storage', { skip: python === null && 'no Python here imports torch (apt-get install python3-torch)' }, async () => {
    const file = join(tmp, 'views.pt');
    const values = Object.fromEntries(Object.entries(weights).map(([k, t]) => [k, { shape: t.shape, data: Array.from(t.data) }]));
    const script = `
import json, sys, torch, collections
sd = collections.OrderedDict((k, torch.tensor(v['data'], dtype=torch.float32).reshape(v['shape'])) for k, v in json.load(sys.stdin).items())
sd['blocks.0.vConv.weight'] = sd['blocks.0.vConv.weight'].contiguous(memory_format=torch.channels_last)
sd['out.weight'] = sd['out.weight'].squeeze().t().contiguous().t().reshape(256, 4, 1, 1)
big = torch.cat([torch.full((5,), 7.0), sd['out.bias'], torch.full((3,), 7.0)])
sd['out.bias'] = big[5:261]
assert not sd['blocks.0.vConv.weight'].is_contiguous() and not sd['out.weight'].is_contiguous() and sd['out.bias'].storage_offset() == 5
torch.save(sd, sys.argv[1])
`;
    const r = spawnSync(python!, ['-c', script, file], { input: JSON.stringify(values), encoding: 'utf8' });
    assert.equal(r.status, 0, r.stderr);
    const model = createModel(config.model);
    model.loadStateDict((await importCheckpoint(file, { config })).checkpoint.model);
    for (const [k, t] of Object.entries(model.stateDict({ layout: 'pytorch' }))) assert.deepEqual(Array.from(t.data), Array.from(weights[k]!.data), k);
  });
});
