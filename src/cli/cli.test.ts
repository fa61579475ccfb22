// The arpix command driven as a user drives it: spawned processes, real files, real
// Fashion-MNIST, tiny models (a few thousand parameters) so each run takes seconds.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, spawnSync, execFileSync } from 'node:child_process';
import { copyFileSync, existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { encode as encodePng } from 'fast-png';
import { loadCheckpoint } from '../io/disk.js';
import { locateDataset } from '../data/index.js';

const MAIN = new URL('./main.ts', import.meta.url).pathname;
/** tsx's loader, resolved here so the CLI can run from any working directory. */
const TSX = import.meta.resolve('tsx');
const ENV = { ...process.env, NODE_NO_WARNINGS: '1', OMP_NUM_THREADS: '1' };
const haveData = locateDataset('fashion-mnist') !== null;
const skip = haveData ? false : 'Fashion-MNIST is not installed (apt-get install dataset-fashion-mnist)';

/** Overrides that make gated-pixelcnn-fmnist tiny: a run of a few hundred steps takes seconds. */
const TINY = [
  '--model.hiddenChannels=4', '--model.dilations=[1]', '--train.validationSize=32', '--train.validateEvery=0',
  '--train.logEvery=5', '--train.ema=0.9', '--train.schedule.warmup=5', '--train.batchSize=8',
];

interface Run { code: number | null; stdout: string; stderr: string }

function arpix(args: readonly string[], cwd?: string): Run {
  const r = spawnSync(process.execPath, ['--import', TSX, MAIN, ...args], { env: ENV, encoding: 'utf8', cwd });
  return { code: r.status, stdout: r.stdout, stderr: r.stderr };
}

function tmp(): string {
  return mkdtempSync(join(tmpdir(), 'arpix-cli-'));
}

/** A failure a user caused: one line on stderr that matches `re`, and the given exit code. */
function assertOneLineError(r: Run, code: number, re: RegExp): void {
  assert.equal(r.code, code, `exit code; stderr: ${r.stderr}`);
  // Training reports progress on stderr too; the error is the one `arpix:` line, and the last.
  const lines = r.stderr.trim().split('\n');
  const errors = lines.filter((l) => l.startsWith('arpix: '));
  assert.equal(errors.length, 1, `one error line on stderr, got:\n${r.stderr}`);
  assert.equal(errors[0], lines.at(-1));
  assert.match(errors[0]!, re);
}

async function modelBytes(file: string): Promise<Map<string, Buffer>> {
  const c = await loadCheckpoint(file);
  const out = new Map<string, Buffer>();
  for (const part of ['model', 'optimizer', 'ema'] as const) {
    for (const [k, t] of Object.entries(c[part])) out.set(`${part}.${k}`, Buffer.from(t.data.buffer, t.data.byteOffset, t.data.byteLength));
  }
  return out;
}

function assertSameTensors(a: Map<string, Buffer>, b: Map<string, Buffer>): void {
  assert.deepEqual([...a.keys()].sort(), [...b.keys()].sort());
  for (const [k, v] of a) assert.ok(v.equals(b.get(k)!), `tensor ${k} differs`);
}

function noTempFiles(dir: string): void {
  const temps = readdirSync(dir, { recursive: true }).map(String).filter((f) => f.endsWith('.tmp'));
  assert.deepEqual(temps, [], 'no temporary file is left behind');
}

/** Starts a training run and resolves once its checkpoint exists; returns the child. */
function startTraining(args: readonly string[], runDir: string): Promise<ReturnType<typeof spawn>> {
  const child = spawn(process.execPath, ['--import', 'tsx', MAIN, ...args], { env: ENV, stdio: ['ignore', 'pipe', 'pipe'] });
  child.stdout!.resume();
  child.stderr!.resume();
  return new Promise((resolve, reject) => {
    const timer = setInterval(() => {
      if (existsSync(join(runDir, 'checkpoint.safetensors'))) {
        clearInterval(timer);
        resolve(child);
      }
    }, 10);
    child.on('exit', () => {
      clearInterval(timer);
      reject(new Error('training ended before its first checkpoint'));
    });
  });
}

function waitExit(child: ReturnType<typeof spawn>): Promise<number | null> {
  return new Promise((resolve) => {
    if (child.exitCode !== null) resolve(child.exitCode);
    else child.on('exit', (code) => resolve(code));
  });
}

const STEPS = 150;
/** Checkpoints between log steps (logEvery 5), so a resume starts inside a log window. */
const runArgs = (out: string) => ['train', '--preset', 'gated-pixelcnn-fmnist', '--out', out, ...TINY, `--train.steps=${STEPS}`, '--train.checkpointEvery=7'];

/** The train records of a run without their timings: what a resumed run must repeat exactly. */
function trainRecords(runDir: string): unknown[] {
  return readFileSync(join(runDir, 'metrics.jsonl'), 'utf8').trim().split('\n').map((l) => JSON.parse(l))
    .filter((x) => x.type === 'train').map(({ imagesPerSec: _r, seconds: _s, ...rest }) => rest);
}

test('a run killed with SIGKILL and resumed ends with the same weights, bit for bit, as an uninterrupted one', { skip }, async () => {
  const root = tmp();
  try {
    const straight = join(root, 'straight');
    const r = arpix(runArgs(straight));
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /^precision: (fp32|bf16) — train\.precision is auto[^\n]*\nconfig:\n\{/, 'the precision and why, then the resolved config, are printed first');
    assert.match(r.stdout, /done: 150 steps/);

    const killed = join(root, 'killed');
    const child = await startTraining(runArgs(killed), killed);
    child.kill('SIGKILL');
    await waitExit(child);
    const at = (await loadCheckpoint(join(killed, 'checkpoint.safetensors'))).meta.step;
    assert.ok(at < STEPS, `the kill came before the end (checkpoint at step ${at})`);

    const resumed = arpix(['train', '--resume', killed, '--no-bar']);
    assert.equal(resumed.code, 0, resumed.stderr);
    assert.match(resumed.stderr, new RegExp(`resuming at step ${at}`));
    assertSameTensors(await modelBytes(join(killed, 'checkpoint.safetensors')), await modelBytes(join(straight, 'checkpoint.safetensors')));
    noTempFiles(killed);
    // Metrics after the checkpoint were dropped and written again: each step once.
    const steps = readFileSync(join(killed, 'metrics.jsonl'), 'utf8').trim().split('\n').map((l) => JSON.parse(l)).filter((x) => x.type === 'train').map((x) => x.step);
    assert.deepEqual(steps, [...new Set(steps)].sort((a, b) => a - b));
    assert.equal(steps.at(-1), STEPS);
    // The record after the resume averages the whole log window, as the uninterrupted run's did (the
    // kill comes right after the first checkpoint, step 7 or 14: inside a window of logEvery 5).
    assert.deepEqual(trainRecords(killed), trainRecords(straight));
  } finally {
    rmSync(root, { recursive: true, force: true });
  }
});

test('SIGINT finishes the step, writes a checkpoint, exits 130, and the run resumes to the same weights', { skip }, async () => {
  const root = tmp();
  try {
    const runDir = join(root, 'run');
    const child = await startTraining(runArgs(runDir), runDir);
    child.kill('SIGINT');
    assert.equal(await waitExit(child), 130);
    noTempFiles(runDir);
    const at = (await loadCheckpoint(join(runDir, 'checkpoint.safetensors'))).meta.step;
    assert.ok(at > 0 && at < STEPS);
    const resumed = arpix(['train', '--resume', runDir]);
    assert.equal(resumed.code, 0, resumed.stderr);
    const straight = join(root, 'straight');
    assert.equal(arpix(runArgs(straight)).code, 0);
    assertSameTensors(await modelBytes(join(runDir, 'checkpoint.safetensors')), await modelBytes(join(straight, 'checkpoint.safetensors')));
  } finally {
    rmSync(root, { recursive: true, force: true });
  }
});

test('eval, sample, complete, info and plot on a trained checkpoint', { skip }, () => {
  const root = tmp();
  try {
    const runDir = join(root, 'run');
    assert.equal(arpix(['train', '--preset', 'gated-pixelcnn-fmnist', '--out', runDir, ...TINY, '--train.steps=20']).code, 0);
    const ckpt = join(runDir, 'checkpoint.safetensors');

    const ev = arpix(['eval', ckpt, '--limit', '50', '--json']);
    assert.equal(ev.code, 0, ev.stderr);
    const e = JSON.parse(ev.stdout);
    assert.equal(e.n, 50);
    assert.equal(e.weights, 'EMA weights');
    assert.ok(e.bitsPerDim > 0 && e.bitsPerDim < 9 && e.stderr > 0);
    assert.ok(Math.abs(e.natsPerImage - e.bitsPerDim * 784 * Math.LN2) < 1e-6 * e.natsPerImage);
    const evVal = arpix(['eval', runDir, '--split', 'validation', '--raw']);
    assert.match(evVal.stdout, /^data: fashion-mnist, 8-bit \(256 levels\), not binarised\nvalidation: \d+\.\d+ ± \d+\.\d+ bits\/dim over 32 images \(trained weights/);
    assert.deepEqual(e.data, { name: 'fashion-mnist', levels: 256, binarisation: 'none' });

    // Same seed, same images.
    const s1 = arpix(['sample', ckpt, '--n', '3', '--seed', '7', '--out', join(root, 's1')]);
    assert.equal(s1.code, 0, s1.stderr);
    arpix(['sample', ckpt, '--n', '3', '--seed', '7', '--out', join(root, 's2')]);
    const npy1 = readFileSync(join(root, 's1', 'samples-seed7.npy'));
    assert.ok(npy1.equals(readFileSync(join(root, 's2', 'samples-seed7.npy'))));
    assert.equal(npy1.length, 128 + 3 * 784);
    assert.ok(readFileSync(join(root, 's1', 'samples-seed7.png')).subarray(1, 4).toString() === 'PNG');
    // An existing output is never replaced without --force.
    const again = arpix(['sample', ckpt, '--n', '3', '--seed', '7', '--out', join(root, 's1')]);
    assertOneLineError(again, 2, /already exists; pass --force/);
    assert.ok(readFileSync(join(root, 's1', 'samples-seed7.npy')).equals(npy1));

    // Completion keeps the top rows.
    const img = new Uint8Array(28 * 28).map((_, i) => (i * 7) % 256);
    const png = join(root, 'in.png');
    writeFileSync(png, encodePng({ width: 28, height: 28, data: img, channels: 1, depth: 8 }));
    const c = arpix(['complete', ckpt, '--images', png, '--keep-rows', '10', '--samples', '2', '--out', join(root, 'c')]);
    assert.equal(c.code, 0, c.stderr);
    const comp = readFileSync(join(root, 'c', 'completions-seed0-keep10.npy')).subarray(128);
    assert.equal(comp.length, 2 * 784);
    for (let s = 0; s < 2; s++) assert.deepEqual([...comp.subarray(s * 784, s * 784 + 280)], [...img.subarray(0, 280)]);
    assert.ok(existsSync(join(root, 'c', 'completions-seed0-keep10.png')));

    const info = arpix(['info', ckpt]);
    assert.equal(info.code, 0, info.stderr);
    assert.match(info.stdout, /parameters: [\d,]+/);
    assert.match(info.stdout, /receptive field of the last pixel: \d+ of the 783 pixels/);
    assert.match(info.stdout, /FLOPs per image: [\d.]+ GFLOP computed/);
    assert.match(info.stdout, /masked 3×3 formulation/);
    const infoPreset = arpix(['info', '--preset', 'pixelcnn-binary-mnist', '--json']);
    const pi = JSON.parse(infoPreset.stdout);
    assert.ok(pi.parameters > 0 && pi.flops > pi.maskedFlops && pi.maskedFlops > 0);

    const plot = arpix(['plot', runDir]);
    assert.equal(plot.code, 0, plot.stderr);
    assert.equal(readFileSync(join(runDir, 'curves.png')).subarray(1, 4).toString(), 'PNG');
  } finally {
    rmSync(root, { recursive: true, force: true });
  }
});

test('bad input: one line that says what to do, a non-zero exit, nothing overwritten', { skip }, async () => {
  const root = tmp();
  try {
    assertOneLineError(arpix(['train', '--preset', 'gated-pixelcnn-fmnist', '--bogus']), 2, /unknown option '--bogus'.*known options: .*--preset/);
    assertOneLineError(arpix(['train', '--preset', 'gated-pixelcnn-fmnist', '--train.lrr=1']), 2, /train\.lrr is not a known key; known keys of train: batchSize, .*lr/);
    assertOneLineError(arpix(['train', '--preset', 'gated-pixelcnn-fmnist', '--train.lr=fast']), 2, /train\.lr must be a number/);
    assertOneLineError(arpix(['train', '--preset', 'gated-pixelcnn-fmnist', '--model.hiddenChannels=[3]']), 2, /model\.hiddenChannels must be a number/);
    assertOneLineError(arpix(['train', '--preset', 'no-such-preset']), 2, /'no-such-preset' does not exist; presets: .*gated-pixelcnn-fmnist/);
    // Run where a default run folder (./runs/…) would land: a refused config must not create one.
    assertOneLineError(arpix(['train', '--preset', 'gated-pixelcnn-fmnist', '--dataset.binarize=dynamic'], root), 2, /2 levels .* 256; set dataset\.bits=8/);
    assert.deepEqual(readdirSync(root), [], 'no run folder left behind');
    assertOneLineError(arpix(['sample']), 2, /missing required argument 'checkpoint'/);
    assertOneLineError(arpix(['sample', 'x.safetensors', '--n', 'many']), 2, /--n must be an integer/);

    const runDir = join(root, 'run');
    assert.equal(arpix(['train', '--preset', 'gated-pixelcnn-fmnist', '--out', runDir, ...TINY, '--train.steps=5']).code, 0);
    const ckpt = join(runDir, 'checkpoint.safetensors');
    const before = readFileSync(ckpt);

    // A second run into the same folder, and a resume that changes the model.
    assertOneLineError(arpix(['train', '--preset', 'gated-pixelcnn-fmnist', '--out', runDir, ...TINY]), 1, /already holds a run .*--resume/);
    assertOneLineError(arpix(['train', '--resume', runDir, '--model.hiddenChannels=8']), 1, /another model: model\.hiddenChannels is 4 in the checkpoint but 8 here/);
    assertOneLineError(arpix(['train', '--resume', runDir, '--train.lr=0.1']), 1, /cannot resume with a changed config \(train\.lr/);
    assert.ok(readFileSync(ckpt).equals(before), 'the checkpoint is untouched');

    // Corrupted and foreign checkpoints.
    const bad = join(root, 'bad.safetensors');
    const flipped = Buffer.from(before);
    flipped.writeUInt32LE(0xffffff, 0);
    writeFileSync(bad, flipped);
    assertOneLineError(arpix(['eval', bad]), 1, /not a valid safetensors file.*damaged/);
    writeFileSync(bad, before.subarray(0, before.length - 100));
    assertOneLineError(arpix(['sample', bad]), 1, /damaged/);
    assertOneLineError(arpix(['info', join(root, 'missing.safetensors')]), 1, /does not exist/);

    // An image of the wrong size.
    const png = join(root, 'big.png');
    writeFileSync(png, encodePng({ width: 32, height: 32, data: new Uint8Array(32 * 32), channels: 1, depth: 8 }));
    assertOneLineError(arpix(['complete', ckpt, '--images', png, '--keep-rows', '5', '--out', join(root, 'c')]), 1, /is 32×32 but the model takes 28×28 grey images; resize/);
    assertOneLineError(arpix(['complete', ckpt, '--images', join(root, 'in.png'), '--keep-rows', '99']), 2, /--keep-rows must be an integer in 0\.\.28/);

    // An unwritable output folder (a path through a file).
    const file = join(root, 'a-file');
    writeFileSync(file, 'keep me');
    assertOneLineError(arpix(['sample', ckpt, '--n', '1', '--out', join(file, 'sub')]), 1, /cannot mkdir .*a part of the path is a file/);
    assert.equal(readFileSync(file, 'utf8'), 'keep me');

    // Divergence: the NaN guard stops with a message and keeps the last good checkpoint.
    const nanDir = join(root, 'nan');
    const nan = arpix(['train', '--preset', 'gated-pixelcnn-fmnist', '--out', nanDir, ...TINY, '--train.lr=1e30', '--train.gradClip=0', '--train.checkpointEvery=1', '--train.schedule.warmup=0']);
    assertOneLineError(nan, 3, /training diverged at step \d+: the loss is (NaN|Infinity).*last good checkpoint is .*checkpoint\.safetensors.*--train\.lr/);
    const c = await loadCheckpoint(join(nanDir, 'checkpoint.safetensors'));
    for (const t of Object.values(c.model)) assert.ok(t.data.every((v) => Number.isFinite(v)));
  } finally {
    rmSync(root, { recursive: true, force: true });
  }
});

test('a full disk: a one-line error, no temporary file, the previous checkpoint intact', { skip }, async (t) => {
  const root = tmp();
  const mnt = join(root, 'small');
  mkdirSync(mnt);
  try {
    try {
      execFileSync('mount', ['-t', 'tmpfs', '-o', 'size=96k', 'tmpfs', mnt], { stdio: 'ignore' });
    } catch {
      t.skip('cannot mount a small tmpfs here (needs root)');
      return;
    }
    const runDir = join(mnt, 'run');
    // hiddenChannels 12: a checkpoint of ~70 kB fits once, not twice (the temporary copy).
    const args = ['train', '--preset', 'gated-pixelcnn-fmnist', '--out', runDir, ...TINY, '--model.hiddenChannels=12', '--train.steps=4', '--train.checkpointEvery=2'];
    const r = arpix(args);
    assertOneLineError(r, 1, /disk is full; free some space/);
    noTempFiles(runDir);
    const ckpt = join(runDir, 'checkpoint.safetensors');
    if (existsSync(ckpt)) {
      const c = await loadCheckpoint(ckpt); // whole and readable
      assert.equal(c.meta.step, 2);
    }
    copyFileSync(join(runDir, 'config.json'), join(root, 'config-copy.json'));
  } finally {
    spawnSync('umount', [mnt]);
    rmSync(root, { recursive: true, force: true });
  }
});

test('ARPIX_BACKEND naming no backend is one line and exit 1 before any work', () => {
  const run = (env: Record<string, string>, args: string[]) => {
    const r = spawnSync(process.execPath, ['--import', TSX, MAIN, ...args], { env: { ...ENV, ...env }, encoding: 'utf8' });
    return { code: r.status, stdout: r.stdout, stderr: r.stderr };
  };
  const dir = tmp();
  try {
    const out = join(dir, 'run');
    assertOneLineError(run({ ARPIX_BACKEND: 'gpu' }, ['train', '--preset', 'gated-pixelcnn-fmnist', '--out', out]), 1, /ARPIX_BACKEND: value must be one of ts, native, wasm, got 'gpu'/);
    assert.ok(!existsSync(out), 'nothing was written');
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
