// The exported train.py as a hostile user meets it: damaged checkpoints (a changed byte, a NaN, a
// truncated file, a header that is not UTF-8, an unknown dtype, a missing key, a wrong shape, a
// buffer smaller than the header declares, re-signed files that do not fit), damaged data and
// config files, an occupied --out, and a learning rate that makes the loss non-finite. Every bad
// input ends in exit 1 and exactly one line on stderr, no traceback, nothing written; divergence
// ends in exit 3 with no non-finite checkpoint. A good run's checkpoints carry the SHA-256 sums that
// `arpix import` and `arpix verify` check. Skipped only when no Python here imports torch.

import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { cpSync, existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test, type TestContext } from 'node:test';
import { fileURLToPath } from 'node:url';
import { decodeCheckpoint, encodeCheckpoint, type Checkpoint } from '../io/checkpoint.js';
import { Tensor } from '../tensor/tensor.js';
import { failureCount, formatTallies } from '../testing/fuzz.js';
import { fuzzTrainPy } from '../testing/trainpy-fuzz.js';
import { findTorchPython } from './python.js';

const python = findTorchPython();
const skip = python === null ? 'no Python here imports torch (apt-get install python3-torch): the exported train.py cannot run' : false;
const MAIN = fileURLToPath(new URL('../cli/main.ts', import.meta.url));
const ENV = { ...process.env, NODE_NO_WARNINGS: '1', OMP_NUM_THREADS: '1', OPENBLAS_NUM_THREADS: '1' };
const tmp = mkdtempSync(join(tmpdir(), 'arpix-trainpy-'));
after(() => rmSync(tmp, { recursive: true, force: true }));

/** Seconds one train.py run may take (a few steps of the tiny model take about one). */
const RUN_LIMIT_S = 120;

/** A tiny gated PixelCNN on 64 random 8×8 grey images: a train.py run takes about a second. */
const TINY = [
  '--preset', 'gated-pixelcnn-fmnist', '--model.height=8', '--model.width=8', '--model.hiddenChannels=4', '--model.dilations=[1]',
  '--train.batchSize=8', '--train.validationSize=16', '--train.steps=3', '--train.logEvery=1', '--train.checkpointEvery=2',
  '--train.ema=0.9', '--train.schedule.warmup=1',
];

function arpix(args: string[]) {
  const r = spawnSync(process.execPath, ['--import', 'tsx', MAIN, ...args], { env: ENV, encoding: 'utf8' });
  return { code: r.status, stdout: r.stdout, stderr: r.stderr };
}

interface Run { code: number | null; stdout: string; stderr: string }

/** Runs DIR/train.py on the CPU, one process; killed past RUN_LIMIT_S so a hang fails the test. */
function trainPy(dir: string, args: string[]): Promise<Run> {
  return new Promise((resolve) => {
    const child = spawn(python!, [join(dir, 'train.py'), '--device', 'cpu', '--threads', '1', ...args], { env: ENV });
    let stdout = '';
    let stderr = '';
    const limit = setTimeout(() => { stderr += `\n(killed after ${RUN_LIMIT_S} s)`; child.kill('SIGKILL'); }, RUN_LIMIT_S * 1000);
    child.stdout.on('data', (d: Buffer) => { stdout += d.toString(); });
    child.stderr.on('data', (d: Buffer) => { stderr += d.toString(); });
    child.on('close', (code) => { clearTimeout(limit); resolve({ code, stdout, stderr }); });
  });
}

/** Every file under `dir` with its size and modification time, to show a failed run changed none. */
function snapshot(dir: string): string[] {
  return readdirSync(dir, { recursive: true, withFileTypes: true }).filter((e) => e.isFile()).map((e) => {
    const p = join(e.parentPath, e.name);
    const s = statSync(p);
    return `${p} ${s.size} ${s.mtimeMs}`;
  }).sort();
}

/** Exit `code` and exactly one line on stderr matching `pattern` (shown as the test's diagnostic). */
function assertOneLine(t: TestContext, r: Run, code: number, pattern: RegExp): void {
  const lines = r.stderr.split('\n').filter((l) => l.trim() !== '');
  assert.equal(r.code, code, `exit ${r.code}, stderr: ${r.stderr}`);
  assert.equal(lines.length, 1, `one line on stderr, got: ${r.stderr}`);
  assert.doesNotMatch(r.stderr, /Traceback/);
  assert.match(lines[0]!, /^train\.py: /);
  assert.match(lines[0]!, pattern);
  t.diagnostic(lines[0]!);
}

/** The bytes of a safetensors file with its header replaced by `header` (padded as the format pads). */
function withHeader(bytes: Uint8Array, header: Uint8Array): Uint8Array {
  const n = Number(Buffer.from(bytes).readBigUInt64LE(0));
  const pad = (8 - ((8 + header.length) % 8)) % 8;
  const h = Buffer.concat([Buffer.from(header), Buffer.alloc(pad, 0x20)]);
  const len = Buffer.alloc(8);
  len.writeBigUInt64LE(BigInt(h.length));
  return Buffer.concat([len, h, Buffer.from(bytes.subarray(8 + n))]);
}

function headerOf(bytes: Uint8Array): Record<string, unknown> {
  const n = Number(Buffer.from(bytes).readBigUInt64LE(0));
  return JSON.parse(Buffer.from(bytes.subarray(8, 8 + n)).toString('utf8')) as Record<string, unknown>;
}

/** Where tensor `name`'s bytes start in the file. */
function dataOffset(bytes: Uint8Array, name: string): number {
  const n = Number(Buffer.from(bytes).readBigUInt64LE(0));
  return 8 + n + (headerOf(bytes)[name] as { data_offsets: [number, number] }).data_offsets[0];
}

/** An 8-bit grey .npy file of 64 random 8×8 images. */
function writeNpy(file: string): void {
  let header = "{'descr': '|u1', 'fortran_order': False, 'shape': (64, 8, 8), }";
  header += ' '.repeat(63 - ((10 + header.length) % 64)) + '\n';
  const data = new Uint8Array(64 * 8 * 8);
  let s = 12345;
  for (let i = 0; i < data.length; i++) data[i] = (s = (s * 1103515245 + 12345) >>> 0) >>> 24;
  const len = Buffer.alloc(2);
  len.writeUInt16LE(header.length);
  writeFileSync(file, Buffer.concat([Buffer.from([0x93]), Buffer.from('NUMPY'), Buffer.from([1, 0]), len, Buffer.from(header, 'latin1'), data]));
}

describe('the exported train.py', { skip }, () => {
  const exp = join(tmp, 'export');
  const ckptFile = join(exp, 'checkpoint.safetensors');
  let original: Uint8Array;
  /** The export's checkpoint, decoded afresh (so a case can change it). */
  const fresh = (): Checkpoint => decodeCheckpoint(original, ckptFile, { pytorchLayout: true });
  const firstWeight = (c: Checkpoint) => Object.keys(c.model).sort()[0]!;

  before(() => {
    const npy = join(tmp, 'images.npy');
    writeNpy(npy);
    const e = arpix(['export', '--torch', exp, `--dataset.name=${npy}`, ...TINY]);
    assert.equal(e.code, 0, e.stderr);
    original = readFileSync(ckptFile);
  });

  test('trains, writes checkpoints whose SHA-256 sums arpix verifies, and resumes from them', async () => {
    const out = join(tmp, 'good');
    const r = await trainPy(exp, ['--out', out]);
    assert.equal(r.code, 0, r.stderr);
    assert.equal(r.stderr, '');
    const file = join(out, 'checkpoint.safetensors');
    const c = decodeCheckpoint(readFileSync(file), file, { pytorchLayout: true });
    assert.equal(c.integrity, 'verified');
    assert.equal(c.meta.step, 3);
    assert.ok(Object.keys(c.optimizer).length > 0 && Object.keys(c.ema).length > 0);

    const more = await trainPy(exp, ['--out', out, '--resume', '--steps', '5']);
    assert.equal(more.code, 0, more.stderr);
    const c5 = decodeCheckpoint(readFileSync(file), file, { pytorchLayout: true });
    assert.equal(c5.integrity, 'verified');
    assert.equal(c5.meta.step, 5);

    const run = join(tmp, 'good-run');
    const i = arpix(['import', file, '--out', run]);
    assert.equal(i.code, 0, i.stderr);
    assert.equal(i.stderr, '', 'no warning: the checkpoint carries its sums');
    assert.match(i.stdout, /step 5, optimiser state, averaged weights/);
    const v = arpix(['verify', run]);
    assert.equal(v.code, 0, v.stderr);
    assert.equal(v.stderr, '');
    assert.match(v.stdout, /SHA-256 of tensors and metadata verified/);
  });

  // Each case writes a damaged --init (or --data, or a whole copy for config.json) into its own
  // folder and runs train.py with --out there: exit 1, one line, no traceback, nothing written.
  const damaged: { name: string; pattern: RegExp; make: (dir: string) => string[] }[] = [
    {
      name: 'a changed weight byte',
      pattern: /checkpoint\.safetensors: is damaged: its tensors do not match the SHA-256 recorded when it was written/,
      make: (dir) => {
        const b = Uint8Array.from(original);
        b[dataOffset(b, `model.${firstWeight(fresh())}`) + 1]! ^= 0x10;
        return ['--init', put(dir, b)];
      },
    },
    {
      name: 'a NaN weight (the sums unchanged)',
      pattern: /is damaged: its tensors do not match the SHA-256/,
      make: (dir) => {
        const b = Uint8Array.from(original);
        new DataView(b.buffer).setFloat32(dataOffset(b, `model.${firstWeight(fresh())}`), NaN, true);
        return ['--init', put(dir, b)];
      },
    },
    {
      name: 'a NaN weight in a re-signed file',
      pattern: /tensor 'model\.[\w.]+' holds NaN at flat index 2; a checkpoint with non-finite values cannot be used/,
      make: (dir) => {
        const c = fresh();
        c.model[firstWeight(c)]!.data[2] = NaN;
        return ['--init', put(dir, encodeCheckpoint(c))];
      },
    },
    {
      name: 'a file truncated inside its header',
      pattern: /not a valid safetensors file: the header length \d+ runs beyond the end of the file \(100 bytes\)/,
      make: (dir) => ['--init', put(dir, original.subarray(0, 100))],
    },
    {
      name: 'a data section smaller than the header declares',
      pattern: /not a valid safetensors file: tensor '[\w.]+': data_offsets \[\d+, \d+\] run beyond the data section/,
      make: (dir) => ['--init', put(dir, original.subarray(0, original.length - 4))],
    },
    {
      name: 'a header that is not UTF-8',
      pattern: /not a valid safetensors file: the header is not valid UTF-8/,
      make: (dir) => {
        const b = Uint8Array.from(original);
        b[Buffer.from(b).indexOf('model.') + 2] = 0xff;
        return ['--init', put(dir, b)];
      },
    },
    {
      name: 'a header that begins with a byte-order mark',
      pattern: /not a valid safetensors file: the header must begin with '\{'/,
      make: (dir) => {
        const n = Number(Buffer.from(original).readBigUInt64LE(0));
        return ['--init', put(dir, withHeader(original, Buffer.concat([Buffer.from([0xef, 0xbb, 0xbf]), Buffer.from(original.subarray(8, 8 + n))])))];
      },
    },
    {
      name: 'an unknown dtype',
      pattern: /tensor '[\w.]+' has unknown dtype "Q32"/,
      make: (dir) => {
        const h = headerOf(original);
        (h[`model.${firstWeight(fresh())}`] as { dtype: string }).dtype = 'Q32';
        return ['--init', put(dir, withHeader(original, Buffer.from(JSON.stringify(h))))];
      },
    },
    {
      name: 'no SHA-256 sums',
      pattern: /records no SHA-256 sums \('arpix\.sha256'\), so damage to it cannot be detected; pass --allow-unverified/,
      make: (dir) => {
        const h = headerOf(original) as { __metadata__: Record<string, string> };
        delete h.__metadata__['arpix.sha256'];
        return ['--init', put(dir, withHeader(original, Buffer.from(JSON.stringify(h))))];
      },
    },
    {
      name: 'metadata changed after the sums were taken',
      pattern: /is damaged: its metadata does not match the SHA-256/,
      make: (dir) => {
        const h = headerOf(original) as { __metadata__: Record<string, string> };
        h.__metadata__.arpix = h.__metadata__.arpix!.replace('"step":0', '"step":7');
        return ['--init', put(dir, withHeader(original, Buffer.from(JSON.stringify(h))))];
      },
    },
    {
      name: 'a missing weight (re-signed)',
      pattern: /model weight '[\w.]+' \[[\d, ]+\] is missing \(1 missing, 0 unexpected of \d+ keys\)/,
      make: (dir) => {
        const c = fresh();
        delete c.model[firstWeight(c)];
        return ['--init', put(dir, encodeCheckpoint(c))];
      },
    },
    {
      name: 'an unexpected weight (re-signed)',
      pattern: /holds model weight 'extra\.weight', which config\.json's model does not have \(0 missing, 1 unexpected/,
      make: (dir) => {
        const c = fresh();
        c.model['extra.weight'] = new Tensor(new Float32Array(3), [3]);
        return ['--init', put(dir, encodeCheckpoint(c))];
      },
    },
    {
      name: 'a weight of the wrong shape (re-signed)',
      pattern: /model weight '[\w.]+' has shape \[\d+\] but config\.json's model has \[[\d, ]+\]/,
      make: (dir) => {
        const c = fresh();
        const k = Object.keys(c.model).find((n) => c.model[n]!.shape.length > 1)!;
        c.model[k] = new Tensor(c.model[k]!.data, [c.model[k]!.size]);
        return ['--init', put(dir, encodeCheckpoint(c))];
      },
    },
    {
      name: 'a weight stored as integers (re-signed)',
      pattern: /tensor 'model\.[\w.]+' holds I32 values; an arpix checkpoint holds its weights, moments and averages as float32 \(F32\)/,
      make: (dir) => {
        const c = fresh();
        const k = firstWeight(c);
        c.model[k] = new Tensor(new Int32Array(c.model[k]!.size), c.model[k]!.shape);
        return ['--init', put(dir, encodeCheckpoint(c))];
      },
    },
    {
      name: 'a checkpoint of another model (re-signed)',
      pattern: /config\.json: its model section is not the one in .*checkpoint\.safetensors: model\.hiddenChannels is 5 in the checkpoint but 4 in config\.json; use the config\.json exported with that checkpoint/,
      make: (dir) => {
        const c = fresh();
        (c.meta.config.model as { hiddenChannels: number }).hiddenChannels = 5;
        return ['--init', put(dir, encodeCheckpoint(c))];
      },
    },
    {
      name: 'a folder as the checkpoint',
      pattern: /is not a regular file; give an arpix checkpoint/,
      make: (dir) => ['--init', dir],
    },
    {
      name: 'truncated training images',
      pattern: /train\.u8: has 3000 bytes, but data\.json declares \d+ images of 8×8×1 = \d+ bytes; the file is damaged or truncated/,
      make: (dir) => ['--data', dataWith(dir, 'train.u8', (b) => b.subarray(0, 3000))],
    },
    {
      name: 'a data.json that is not JSON',
      pattern: /data\.json: is not valid JSON/,
      make: (dir) => ['--data', dataWith(dir, 'data.json', (b) => b.subarray(0, 20))],
    },
    {
      name: 'a data.json of other images',
      pattern: /data\.json: describes images with height 9, but config\.json's model has 8/,
      make: (dir) => ['--data', dataWith(dir, 'data.json', (b) => Buffer.from(b.toString().replace('"height": 8', '"height": 9')))],
    },
    {
      name: 'a config.json with a learning rate that is not a number',
      pattern: /config\.json: train\.lr must be a positive number, got "fast"; fix config\.json or export again/,
      make: (dir) => {
        const copy = copyExport(dir);
        const cfg = JSON.parse(readFileSync(join(copy, 'config.json'), 'utf8')) as { train: { lr: unknown } };
        cfg.train.lr = 'fast';
        writeFileSync(join(copy, 'config.json'), JSON.stringify(cfg));
        return ['--script', copy, '--data', join(exp, 'data')];
      },
    },
    {
      name: 'a config.json that is not JSON',
      pattern: /config\.json: is not valid JSON/,
      make: (dir) => {
        const copy = copyExport(dir);
        writeFileSync(join(copy, 'config.json'), '{"model": ');
        return ['--script', copy, '--data', join(exp, 'data')];
      },
    },
  ];

  /** Writes a damaged checkpoint into the case's folder. */
  function put(dir: string, bytes: Uint8Array): string {
    const f = join(dir, 'checkpoint.safetensors');
    writeFileSync(f, bytes);
    return f;
  }

  /** A copy of the export's data/ with one file changed. */
  function dataWith(dir: string, file: string, change: (b: Buffer) => Uint8Array): string {
    const d = join(dir, 'data');
    cpSync(join(exp, 'data'), d, { recursive: true });
    writeFileSync(join(d, file), change(readFileSync(join(d, file))));
    return d;
  }

  /** A copy of the export without its data (config.json sits beside train.py). */
  function copyExport(dir: string): string {
    const d = join(dir, 'export');
    cpSync(exp, d, { recursive: true, filter: (src) => !src.startsWith(join(exp, 'data')) });
    return d;
  }

  for (const c of damaged) {
    test(`refuses ${c.name}: exit 1, one line, nothing written`, async (t) => {
      const dir = join(tmp, c.name.replace(/\W+/g, '-'));
      mkdirSync(dir);
      const args = c.make(dir);
      const at = args.indexOf('--script');
      const script = at >= 0 ? args.splice(at, 2)[1]! : exp;
      const before = [...snapshot(dir), ...snapshot(exp)];
      const out = join(dir, 'out');
      const r = await trainPy(script, ['--out', out, ...args]);
      assertOneLine(t, r, 1, c.pattern);
      assert.equal(existsSync(out), false, 'no output folder');
      assert.deepEqual([...snapshot(dir), ...snapshot(exp)], before, 'no file changed');
    });
  }

  test('the README states the bound train.py puts on leaving the process group', () => {
    const bound = /^LEAVE_TIMEOUT_S = (\d+)$/m.exec(readFileSync(join(exp, 'train.py'), 'utf8'))?.[1];
    assert.ok(bound !== undefined, 'train.py defines LEAVE_TIMEOUT_S');
    assert.match(readFileSync(join(exp, 'README.md'), 'utf8').replace(/\s+/g, ' '), new RegExp(`no final barrier.*teardown takes over ${bound} s exits without it`));
  });

  test('refuses an --out that holds a run, without --resume or --force: exit 1, nothing changed', async (t) => {
    const out = join(tmp, 'occupied');
    assert.equal((await trainPy(exp, ['--out', out, '--steps', '1'])).code, 0);
    const before = snapshot(out);
    const r = await trainPy(exp, ['--out', out]);
    assertOneLine(t, r, 1, /occupied already holds a run \(.*checkpoint\.safetensors\); continue it with --resume, or pass --force/);
    assert.deepEqual(snapshot(out), before);
  });

  test('stops on a non-finite loss with exit 3 and writes no non-finite checkpoint', async (t) => {
    const npy = join(tmp, 'images.npy');
    const hot = join(tmp, 'export-lr');
    const e = arpix(['export', '--torch', hot, `--dataset.name=${npy}`, ...TINY, '--train.lr=1e30', '--train.gradClip=0', '--train.checkpointEvery=1',
      '--train.schedule.warmup=0', '--train.steps=20']);
    assert.equal(e.code, 0, e.stderr);
    const out = join(tmp, 'diverged');
    const r = await trainPy(hot, ['--out', out]);
    assertOneLine(t, r, 3, /training diverged (at step \d+: the loss is (NaN|-?Infinity) and the gradient norm \S+|by step \d+: .* holds (NaN|-?Infinity) at flat index \d+, so no checkpoint was written); (the last good checkpoint is .*checkpoint\.safetensors|no checkpoint had been written in .* yet); start again with a lower train\.lr/);
    const file = join(out, 'checkpoint.safetensors');
    if (existsSync(file)) {
      // decodeCheckpoint refuses any non-finite value; the sums must hold too.
      const c = decodeCheckpoint(readFileSync(file), file, { pytorchLayout: true });
      assert.equal(c.integrity, 'verified');
      assert.match(r.stderr, /the last good checkpoint is /);
    }
    for (const line of readFileSync(join(out, 'metrics.jsonl'), 'utf8').trim().split('\n').filter(Boolean)) {
      const rec = JSON.parse(line) as { loss?: number };
      assert.ok(rec.loss === undefined || Number.isFinite(rec.loss));
    }
  });
});

// The fuzz family of train.py's inputs (src/testing/trainpy-fuzz.ts), bounded: 100 cases of each kind.
test('train.py fuzz: 100 damaged checkpoints, configs and data folders of each kind, every one refused in one line or harmless', { skip }, async () => {
  const tallies = await fuzzTrainPy({ count: 100, seed: 25 });
  assert.equal(tallies.length, 5);
  for (const t of tallies) {
    assert.equal(failureCount(t), 0, formatTallies([t]));
    assert.ok(t.counts['clean-error'] > 0, formatTallies([t]));
    // Damage the sums or the tensor checks catch is always refused; edits of JSON are sometimes valid.
    if (/bytes|tensor/.test(t.family)) assert.equal(t.counts['clean-error'], t.tried, formatTallies([t]));
    else assert.ok(t.counts.accepted > 0, formatTallies([t]));
  }
});
