// What a failed or concurrent command must not do: read forever from an endless input, write into
// /proc, change a run it could not continue, replace a user's files, or let two processes write
// one run folder. Library calls where they suffice; spawned processes where two must race.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, spawnSync, execFileSync, type ChildProcess } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { hostname, tmpdir } from 'node:os';
import { join } from 'node:path';
import { FormatError } from '../errors.js';
import { encodeGreyJpeg } from '../testing/jpeg.js';
import { readIdx } from '../data/idx.js';
import { readNpyImages } from '../data/npy.js';
import { decodeImage } from '../data/decode.js';
import { loadCheckpoint, saveCheckpoint } from '../io/disk.js';
import { checkOutputFolder, makeFolder, readRegularFile } from '../io/files.js';
import { LOCK_FILE, LockedError, lockFolder } from '../io/lock.js';
import { writeFileExclusive } from '../io/atomic.js';
import { createModel } from '../models/index.js';
import { Tensor } from '../tensor/tensor.js';
import { configFileRaw, encodeNpyUint8, imageGridPng, resolveRunConfig, train, type RunConfig } from '../train/index.js';
import { MetricsLog } from '../train/metrics.js';
import { describeError } from './main.js';
import { rowReporter } from './progress.js';
import { changedPaths, snapshotDir } from '../testing/fuzz.js';
import { fixtureRunConfig, runArpix, writeFixtureImages } from '../testing/verify-fuzz.js';
import { readImages } from './inputs.js';

const MAIN = new URL('./main.ts', import.meta.url).pathname;
const TSX = import.meta.resolve('tsx');
const ENV = { ...process.env, NODE_NO_WARNINGS: '1', OMP_NUM_THREADS: '1' };

function tmp(): string {
  return mkdtempSync(join(tmpdir(), 'arpix-safety-'));
}

function images(n: number, h: number, w: number, c: number): Tensor {
  return new Tensor(Int32Array.from({ length: n * h * w * c }, (_, i) => (i * 53) & 0xff), [n, h, w, c]);
}

/** A tiny run config over a .npy file of 8×8 grey images in `root`. */
function tinyConfig(root: string, train: Record<string, unknown> = {}): RunConfig {
  const npy = join(root, 'images.npy');
  if (!existsSync(npy)) writeFileSync(npy, encodeNpyUint8(images(48, 8, 8, 1)));
  return resolveRunConfig({
    model: { kind: 'gated-pixelcnn', height: 8, width: 8, channels: 1, hiddenChannels: 2, dilations: [1], likelihood: { kind: 'categorical', levels: 4 } },
    dataset: { name: npy, bits: 2 },
    train: { batchSize: 4, steps: 6, validationSize: 8, validateEvery: 0, checkpointEvery: 2, logEvery: 1, ...train },
  });
}

function fileState(dir: string, names: readonly string[]): (Buffer | null)[] {
  return names.map((n) => (existsSync(join(dir, n)) ? readFileSync(join(dir, n)) : null));
}

// ---- endless and special inputs ------------------------------------------------------------

test('readers refuse a FIFO, /dev/zero, a folder and an oversized file at once', async () => {
  const root = tmp();
  try {
    const fifo = join(root, 'pipe.npy');
    execFileSync('mkfifo', [fifo]);
    const started = performance.now();
    // A FIFO without a writer: opening it for a plain read would block; reading /dev/zero never ends.
    for (const f of [fifo, '/dev/zero']) {
      assert.throws(() => readNpyImages(f), (e: unknown) => e instanceof FormatError && /is (a FIFO \(named pipe\)|a character device), not a file arpix can read/.test(e.message));
      assert.throws(() => readIdx(f), FormatError);
      assert.throws(() => configFileRaw(f), /not a file arpix can read/);
      await assert.rejects(loadCheckpoint(f), /not a file arpix can read/);
      assert.throws(() => readImages(f, { height: 8, width: 8, channels: 1 }, { kind: 'none' }), /not a file arpix can read/);
    }
    assert.ok(performance.now() - started < 5000, 'no reader waited for input');
    assert.throws(() => readRegularFile(root, 100, 'a file'), /is a folder, not a file/);
    const big = join(root, 'big.json');
    writeFileSync(big, Buffer.alloc(2000, 0x20));
    assert.throws(() => readRegularFile(big, 1000, 'a JSON config'), /is 2\.0 KiB, more than a JSON config can need \(1000 bytes at most\)/);
    // A /proc file says size 0 but holds more: refused rather than half read.
    assert.throws(() => readRegularFile('/proc/self/status', 1 << 20, 'a file'), /changed size while it was read/);
  } finally {
    rmSync(root, { recursive: true, force: true });
  }
});

test('output folders on pseudo-filesystems are refused before anything is written', () => {
  assert.throws(() => checkOutputFolder('/proc/arpix'), /\/proc\/arpix is on \/proc, a proc pseudo-filesystem/);
  assert.throws(() => checkOutputFolder('/sys/arpix/run'), /sysfs pseudo-filesystem/);
  const root = tmp();
  try {
    checkOutputFolder(join(root, 'new', 'run')); // a disk folder that does not exist yet is fine
    writeFileSync(join(root, 'file'), 'x');
    assert.throws(() => checkOutputFolder(join(root, 'file', 'run')), /a part of the path is a file/);
    const r = spawnSync(process.execPath, ['--import', TSX, MAIN, 'train', '--preset', 'gated-pixelcnn-fmnist', '--out', '/proc/arpix'], { env: ENV, encoding: 'utf8', timeout: 60_000 });
    assert.equal(r.status, 1, r.stderr);
    assert.match(r.stderr, /^arpix: \/proc\/arpix is on \/proc, a proc pseudo-filesystem that holds no files; choose a folder on a disk\n$/);
  } finally {
    rmSync(root, { recursive: true, force: true });
  }
});

test('a read-only file system is reported as read-only, not as missing', async (t) => {
  const root = tmp();
  const ro = join(root, 'ro');
  mkdirSync(ro);
  try {
    try {
      execFileSync('mount', ['-o', 'bind,ro', ro, ro], { stdio: 'ignore' });
    } catch {
      t.skip('cannot bind-mount read-only here (needs root)');
      return;
    }
    const e = await makeFolder(join(ro, 'a', 'b')).then(() => null, (x: unknown) => x);
    assert.equal((e as NodeJS.ErrnoException).code, 'EROFS');
    assert.match(describeError(e).message, /^cannot mkdir .*ro\/a: the file system is read-only/);
  } finally {
    spawnSync('umount', [ro]);
    rmSync(root, { recursive: true, force: true });
  }
});

test('a full disk while writing metrics names the file', async () => {
  const log = await MetricsLog.open('/dev/full');
  log.append({ type: 'train', step: 1, epoch: 0, loss: 1, lr: 1, gradNorm: 1, imagesPerSec: 1, seconds: 1 });
  const e = await log.close().then(() => null, (x: unknown) => x);
  assert.equal((e as NodeJS.ErrnoException).code, 'ENOSPC');
  assert.match(describeError(e).message, /^cannot write \/dev\/full: the disk is full/);
});

// ---- images ---------------------------------------------------------------------------------

test('a truncated PNG and bytes after its end are refused; a grey JPEG is grey', () => {
  const png = imageGridPng(images(1, 8, 8, 1), { levels: 256, scale: 1 });
  assert.throws(() => decodeImage(png.subarray(0, png.length - 4)), /truncated PNG/);
  assert.throws(() => decodeImage(new Uint8Array([...png, 0, 0])), /2 bytes after its IEND chunk/);
  const flipped = Uint8Array.from(png);
  flipped[png.length - 20] ^= 1; // inside IDAT: a CRC mismatch
  assert.throws(() => decodeImage(flipped));
  const grey = new Uint8Array(64).fill(90);
  const jpg = encodeGreyJpeg(grey, 8, 8);
  const img = decodeImage(jpg);
  assert.deepEqual([img.channels, img.width, img.height, img.data[0]], [1, 8, 8, 90]);
  assert.throws(() => decodeImage(jpg.subarray(0, jpg.length - 2)), /truncated JPEG/);
  const root = tmp();
  try {
    writeFileSync(join(root, 'g.jpg'), jpg);
    const t = readImages(join(root, 'g.jpg'), { height: 8, width: 8, channels: 1 }, { kind: 'none' });
    assert.deepEqual(t.shape, [1, 8, 8, 1]);
    assert.equal(t.data[0], 90);
  } finally {
    rmSync(root, { recursive: true, force: true });
  }
});

test('negative residualBlocks, numClasses and conditionDim are refused by name', () => {
  const base = { height: 8, width: 8, channels: 1, likelihood: { kind: 'categorical', levels: 4 } };
  assert.throws(() => createModel({ ...base, kind: 'pixelcnn', residualBlocks: -1 }), /residualBlocks must be an integer in \d+\.\.\d+, got -1/);
  assert.throws(() => createModel({ ...base, kind: 'gated-pixelcnn', numClasses: -3 }), /numClasses must be an integer in 0\.\.\d+, got -3/);
  assert.throws(() => createModel({ ...base, kind: 'pixelcnn', conditionDim: -1 }), /conditionDim must be an integer in 0\.\.\d+, got -1/);
  assert.throws(() => createModel({ ...base, kind: 'pixelcnn++', resnetBlocks: -2 }), /resnetBlocks must be an integer in \d+\.\.\d+, got -2/);
});

test('sampling off a terminal reports plain lines with the time left', () => {
  const lines: string[] = [];
  const stream = { isTTY: false, write: (s: string) => lines.push(s) } as unknown as NodeJS.WriteStream;
  const report = rowReporter(stream, 4, 'sampling', { everySeconds: 0 });
  for (let r = 0; r < 4; r++) report(r);
  assert.equal(lines.length, 4);
  assert.match(lines[0]!, /^sampling: row 1\/4, about \S+ left\n$/);
  assert.match(lines[3]!, /^sampling: row 4\/4 in \S+\n$/);
  assert.ok(lines.every((l) => !l.includes('\r')));
});

// ---- nothing changes on failure ---------------------------------------------------------------

test('train refuses a folder holding a config.json of its own without --force, and leaves it as it was', async () => {
  const root = tmp();
  try {
    const runDir = join(root, 'run');
    mkdirSync(runDir);
    writeFileSync(join(runDir, 'config.json'), 'my own notes');
    const config = tinyConfig(root);
    await assert.rejects(train(config, { runDir }), /already holds config\.json .*pass --force to replace them/);
    assert.equal(readFileSync(join(runDir, 'config.json'), 'utf8'), 'my own notes');
    assert.ok(!existsSync(join(runDir, 'metrics.jsonl')));
    // A run killed before its first checkpoint left config and metrics: --force starts it over, once.
    writeFileSync(join(runDir, 'metrics.jsonl'), JSON.stringify({ type: 'train', step: 1, epoch: 0, loss: 9, lr: 1, gradNorm: 1, imagesPerSec: 1, seconds: 1 }) + '\n');
    const r = await train(config, { runDir, force: true });
    assert.equal(r.status, 'done');
    const steps = readFileSync(join(runDir, 'metrics.jsonl'), 'utf8').trim().split('\n').map((l) => JSON.parse(l) as { type: string; step: number }).filter((x) => x.type === 'train').map((x) => x.step);
    assert.deepEqual(steps, [1, 2, 3, 4, 5, 6]);
    assert.ok(!existsSync(join(runDir, LOCK_FILE)));
  } finally {
    rmSync(root, { recursive: true, force: true });
  }
});

test('a batch that cannot fit in memory is refused with what it needs, before any file is written', async () => {
  const root = tmp();
  try {
    const runDir = join(root, 'run');
    await assert.rejects(train(tinyConfig(root, { batchSize: 2 ** 40 }), { runDir }), /train\.batchSize=1099511627776 .* would need about .*, more than the memory limit/);
    assert.ok(!existsSync(runDir));
  } finally {
    rmSync(root, { recursive: true, force: true });
  }
});

test('a resume that fails changes nothing; a resume of a finished run changes nothing', async () => {
  const root = tmp();
  try {
    const runDir = join(root, 'run');
    const config = tinyConfig(root);
    assert.equal((await train(config, { runDir })).status, 'done');
    const files = ['config.json', 'metrics.jsonl', 'checkpoint.safetensors'];
    const finished = fileState(runDir, files);

    // Resumed with the same bounds: done, with a message, every byte as it was.
    const again = await train(config, { runDir, resume: true });
    assert.equal(again.status, 'done');
    assert.match(again.message ?? '', /already finished at step 6 .*nothing was changed/);
    assert.deepEqual(fileState(runDir, files), finished);

    // A checkpoint whose weight has the wrong dtype: refused, and config.json keeps its train.steps.
    const ckpt = join(runDir, 'checkpoint.safetensors');
    const c = await loadCheckpoint(ckpt);
    const name = Object.keys(c.model)[0]!;
    c.model[name] = new Tensor(new Int32Array(c.model[name]!.size), c.model[name]!.shape);
    await saveCheckpoint(ckpt, c);
    const damaged = fileState(runDir, files);
    await assert.rejects(train({ ...config, train: { ...config.train, steps: 10 } }, { runDir, resume: true }), /is int32 .* but its model needs float32/);
    assert.deepEqual(fileState(runDir, files), damaged);
    assert.ok(!existsSync(join(runDir, LOCK_FILE)));
  } finally {
    rmSync(root, { recursive: true, force: true });
  }
});

test('a run interrupted before its first step resumes from its step-0 checkpoint and finishes', async () => {
  const root = tmp();
  try {
    const runDir = join(root, 'run');
    const config = tinyConfig(root);
    const stop = new AbortController();
    stop.abort();
    const r = await train(config, { runDir, signal: stop.signal });
    assert.equal(r.status, 'interrupted');
    assert.equal((await loadCheckpoint(join(runDir, 'checkpoint.safetensors'))).meta.step, 0);
    const started = performance.now();
    const resumed = await train(config, { runDir, resume: true });
    assert.equal(resumed.status, 'done');
    assert.equal(resumed.step, 6);
    assert.ok(performance.now() - started < 30_000);
  } finally {
    rmSync(root, { recursive: true, force: true });
  }
});

// ---- concurrent use ---------------------------------------------------------------------------

test('a folder lock: refused while its owner lives, taken over once it is gone', () => {
  const root = tmp();
  try {
    const lock = lockFolder(root, 'test');
    assert.throws(() => lockFolder(root, 'second'), (e: unknown) => e instanceof LockedError && e.owner.pid === process.pid && new RegExp(`in use by process ${process.pid} \\(test`).test(e.message));
    lock.release();
    assert.ok(!existsSync(join(root, LOCK_FILE)));
    // A lock left by a process that no longer exists (its pid is free once it has been reaped).
    const dead = spawnSync(process.execPath, ['-e', 'process.stdout.write(String(process.pid))'], { encoding: 'utf8' });
    writeFileSync(join(root, LOCK_FILE), JSON.stringify({ pid: Number(dead.stdout), host: hostname(), command: 'arpix train', started: 'earlier' }));
    const taken = lockFolder(root, 'third');
    assert.equal(JSON.parse(readFileSync(join(root, LOCK_FILE), 'utf8')).pid, process.pid);
    taken.release();
    // An unreadable lock (a kill while it was written) is stale too.
    writeFileSync(join(root, LOCK_FILE), '{"pi');
    lockFolder(root, 'fourth').release();
  } finally {
    rmSync(root, { recursive: true, force: true });
  }
});

test('exclusive writes: of two writers of one new file, exactly one wins and the file is whole', async () => {
  const root = tmp();
  try {
    const file = join(root, 'out.bin');
    const a = Buffer.alloc(1 << 20, 1);
    const b = Buffer.alloc(1 << 20, 2);
    const results = await Promise.allSettled([writeFileExclusive(file, a), writeFileExclusive(file, b)]);
    assert.deepEqual(results.map((r) => r.status).sort(), ['fulfilled', 'rejected']);
    const got = readFileSync(file);
    assert.ok(got.equals(a) || got.equals(b));
    assert.equal((results.find((r) => r.status === 'rejected') as PromiseRejectedResult).reason.code, 'EEXIST');
  } finally {
    rmSync(root, { recursive: true, force: true });
  }
});

function spawnArpix(args: readonly string[]): { child: ChildProcess; done: Promise<{ code: number | null; stdout: string; stderr: string }> } {
  const child = spawn(process.execPath, ['--import', TSX, MAIN, ...args], { env: ENV, stdio: ['ignore', 'pipe', 'pipe'] });
  let stdout = '';
  let stderr = '';
  child.stdout!.on('data', (d: Buffer) => (stdout += d.toString()));
  child.stderr!.on('data', (d: Buffer) => (stderr += d.toString()));
  return { child, done: new Promise((resolve) => child.on('exit', (code) => resolve({ code, stdout, stderr }))) };
}

test('a run folder in use: a second train or --resume fails at once naming the pid; after a kill, --resume takes over', async () => {
  const root = tmp();
  try {
    const config = join(root, 'config.json');
    const c = tinyConfig(root, { steps: 1000000, checkpointEvery: 5 });
    writeFileSync(config, JSON.stringify(c));
    const runDir = join(root, 'run');
    const first = spawnArpix(['train', '--config', config, '--out', runDir, '--no-bar']);
    while (!existsSync(join(runDir, 'checkpoint.safetensors'))) {
      await new Promise((r) => setTimeout(r, 20));
      assert.equal(first.child.exitCode, null, 'the first run is still training');
    }
    const pid = first.child.pid!;
    const resumed = await spawnArpix(['train', '--resume', runDir, '--no-bar']).done;
    assert.equal(resumed.code, 1);
    assert.match(resumed.stderr, new RegExp(`^arpix: ${runDir} is in use by process ${pid} \\(arpix train, started .*\\); wait for it to finish or stop it`, 'm'));
    const forced = await spawnArpix(['train', '--config', config, '--out', runDir, '--force', '--no-bar']).done;
    assert.equal(forced.code, 1);
    assert.match(forced.stderr, /already holds a run|in use by process/);

    first.child.kill('SIGKILL');
    await first.done;
    assert.ok(existsSync(join(runDir, LOCK_FILE)), 'a kill leaves the lock behind');
    const at = (await loadCheckpoint(join(runDir, 'checkpoint.safetensors'))).meta.step;
    const after = await spawnArpix(['train', '--resume', runDir, '--no-bar', `--train.steps=${at + 3}`]).done;
    assert.equal(after.code, 0, after.stderr);
    assert.ok(!existsSync(join(runDir, LOCK_FILE)));
    assert.equal((await loadCheckpoint(join(runDir, 'checkpoint.safetensors'))).meta.step, at + 3);
  } finally {
    rmSync(root, { recursive: true, force: true });
  }
});

test('two sample commands into one folder: one writes, the other is refused, none replaces the other', async () => {
  const root = tmp();
  try {
    const runDir = join(root, 'run');
    assert.equal((await train(tinyConfig(root), { runDir })).status, 'done');
    const out = join(root, 'samples');
    const runs = await Promise.all([0, 1].map(() => spawnArpix(['sample', runDir, '--n', '4', '--out', out]).done));
    const codes = runs.map((r) => r.code).sort();
    // The loser either met the winner's file while writing its own (a conflict at run time: exit 1)
    // or found it there before it began (an output that exists, as with any --out: exit 2).
    assert.ok(codes[0] === 0 && (codes[1] === 1 || codes[1] === 2), runs.map((r) => `${r.code}: ${r.stderr}`).join('\n'));
    const loser = runs.find((r) => r.code !== 0)!;
    assert.match(loser.stderr, loser.code === 1 ? /already exists \(another command wrote it meanwhile\?\)/ : /already exists; pass --force/);
    assert.match(loser.stderr, /samples-seed0\.(png|npy) already exists.*--force/);
    assert.deepEqual(readNpyImages(join(out, 'samples-seed0.npy')).shape, [4, 8, 8, 1]);
    // With --force the second replaces the first, as asked.
    assert.equal((await spawnArpix(['sample', runDir, '--n', '2', '--out', out, '--force']).done).code, 0);
    assert.deepEqual(readNpyImages(join(out, 'samples-seed0.npy')).shape, [2, 8, 8, 1]);
  } finally {
    rmSync(root, { recursive: true, force: true });
  }
});

test('info --preset accepts overrides', () => {
  const r = spawnSync(process.execPath, ['--import', TSX, MAIN, 'info', '--preset', 'gated-pixelcnn-fmnist', '--model.hiddenChannels=8', '--json'], { env: ENV, encoding: 'utf8' });
  assert.equal(r.status, 0, r.stderr);
  const small = JSON.parse(r.stdout) as { parameters: number };
  const d = spawnSync(process.execPath, ['--import', TSX, MAIN, 'info', '--preset', 'gated-pixelcnn-fmnist', '--json'], { env: ENV, encoding: 'utf8' });
  assert.ok(small.parameters < (JSON.parse(d.stdout) as { parameters: number }).parameters);
});

// ---- export and import outputs ----------------------------------------------------------------

/** A trained tiny run (fixture of src/testing/verify-fuzz.ts) under `root`: its folder and images. */
async function fixtureRun(root: string): Promise<{ run: string; npy: string }> {
  const npy = join(root, 'images.npy');
  writeFixtureImages(npy);
  const run = join(root, 'run');
  assert.equal((await train(fixtureRunConfig(npy), { runDir: run })).status, 'done');
  return { run, npy };
}

test('export and import refuse an output folder on /proc at once, as train and sample do', async () => {
  const root = tmp();
  try {
    const { run } = await fixtureRun(root);
    for (const args of [['export', run, '--torch', '/proc/arpix-export'], ['export', '--preset', 'gated-pixelcnn-fmnist', '--torch', '/proc/arpix-export'], ['import', run, '--out', '/proc/arpix-import']]) {
      // A process of its own, killed after a minute: a hang fails the test instead of stalling it.
      const r = spawnSync(process.execPath, ['--import', TSX, MAIN, ...args], { env: ENV, encoding: 'utf8', timeout: 60_000 });
      assert.equal(r.signal, null, `${args[0]} hung`);
      assert.equal(r.status, 1, r.stderr);
      assert.match(r.stderr, /^arpix: \/proc\/arpix-(export|import) is on \/proc, a proc pseudo-filesystem that holds no files; choose a folder on a disk\n$/);
    }
  } finally {
    rmSync(root, { recursive: true, force: true });
  }
});

test("export into a folder holding the user's README.md and train.py refuses without --force and writes nothing; import likewise; --force replaces", async () => {
  const root = tmp();
  try {
    const { run } = await fixtureRun(root);
    const dir = join(root, 'mine');
    mkdirSync(dir);
    writeFileSync(join(dir, 'README.md'), '# my notes\n');
    writeFileSync(join(dir, 'train.py'), 'print("my script")\n');
    const before = snapshotDir(dir);
    const r = await runArpix(['export', run, '--torch', dir]);
    assert.equal(r.code, 1, r.stderr);
    assert.equal(r.stderr, `arpix: ${join(dir, 'train.py')}, ${join(dir, 'README.md')} already exist; pass --force to replace them, or choose another --torch folder\n`);
    assert.deepEqual(changedPaths(before, snapshotDir(dir)), [], 'nothing is written when one file is refused');

    // One file of a run is enough for import to refuse (here the user's config.json), and nothing else appears.
    const runDir = join(root, 'their-run');
    mkdirSync(runDir);
    writeFileSync(join(runDir, 'config.json'), '{"mine": true}\n');
    const r2 = await runArpix(['import', run, '--out', runDir]);
    assert.equal(r2.code, 1, r2.stderr);
    assert.equal(r2.stderr, `arpix: ${join(runDir, 'config.json')} already exists; pass --force to replace it, or choose another --out\n`);
    assert.deepEqual(readdirSync(runDir), ['config.json']);
    assert.equal(readFileSync(join(runDir, 'config.json'), 'utf8'), '{"mine": true}\n');

    // A second export into its own earlier export: refused too, naming a few of its files.
    const again = join(root, 'export');
    assert.equal((await runArpix(['export', run, '--torch', again, '--no-data'])).code, 0);
    const r3 = await runArpix(['export', run, '--torch', again, '--no-data']);
    assert.equal(r3.code, 1);
    assert.match(r3.stderr, /^arpix: \S+config\.json, \S+checkpoint\.safetensors, \S+train\.py and \d+ more files already exist; pass --force to replace them, or choose another --torch folder\n$/);

    // The run's own folder as the export's: its checkpoint would become PyTorch's layout.
    const r4 = await runArpix(['export', run, '--torch', run, '--force', '--no-data']);
    assert.equal(r4.code, 1);
    assert.match(r4.stderr, /is the folder of the run being exported/);

    const forced = await runArpix(['export', run, '--torch', dir, '--force', '--no-data']);
    assert.equal(forced.code, 0, forced.stderr);
    assert.notEqual(readFileSync(join(dir, 'README.md'), 'utf8'), '# my notes\n');
    assert.ok(readdirSync(dir).every((f) => !f.endsWith('.tmp')), 'no temporary file is left');
    assert.equal((await runArpix(['import', run, '--out', runDir, '--force'])).code, 0);
    assert.equal((await runArpix(['verify', runDir])).code, 0);
    assert.ok(existsSync(join(runDir, 'metrics.jsonl')), 'the run metrics come along');
    // Replaced by a checkpoint without metrics (an export's): the earlier run's metrics go, not left beside it.
    assert.equal((await runArpix(['import', join(again, 'checkpoint.safetensors'), '--out', runDir, '--force'])).code, 0);
    assert.deepEqual(readdirSync(runDir).sort(), ['checkpoint.safetensors', 'config.json']);
  } finally {
    rmSync(root, { recursive: true, force: true });
  }
});

test('import --out and export --torch into a folder another process holds the lock of: refused in one line, nothing changed', async () => {
  const root = tmp();
  const owner = spawn('sleep', ['600'], { stdio: 'ignore' });
  try {
    const { run } = await fixtureRun(root);
    // A training run writing `busy`: its checkpoint and config, and the lock of a live process.
    const busy = join(root, 'busy');
    assert.equal((await runArpix(['import', run, '--out', busy])).code, 0);
    writeFileSync(join(busy, LOCK_FILE), JSON.stringify({ pid: owner.pid, host: hostname(), command: 'arpix train', started: 'earlier' }));
    const before = snapshotDir(busy);
    for (const args of [['import', run, '--out', busy, '--force'], ['export', run, '--torch', busy, '--force', '--no-data']]) {
      const r = await runArpix(args);
      assert.equal(r.code, 1, `${args[0]}: ${r.stderr}`);
      assert.equal(r.stderr, `arpix: ${busy} is in use by process ${owner.pid} (arpix train, started earlier); wait for it to finish or stop it, or choose another folder\n`);
      assert.deepEqual(changedPaths(before, snapshotDir(busy)), [], `${args[0]} changed the folder`);
    }
    // The same commands while this process holds the lock (as a train in it would): refused too.
    rmSync(join(busy, LOCK_FILE));
    const lock = lockFolder(busy, 'arpix train');
    try {
      const r = await runArpix(['import', run, '--out', busy, '--force']);
      assert.equal(r.code, 1);
      assert.match(r.stderr, new RegExp(`^arpix: ${busy} is in use by process ${process.pid} \\(arpix train, `));
    } finally {
      lock.release();
    }
    // Once the folder is free, both go ahead and release the lock they took.
    assert.equal((await runArpix(['import', run, '--out', busy, '--force'])).code, 0);
    assert.ok(!existsSync(join(busy, LOCK_FILE)));
  } finally {
    owner.kill();
    rmSync(root, { recursive: true, force: true });
  }
});
