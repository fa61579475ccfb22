// Checkpoint integrity and memory limits as a user meets them: `arpix` commands (in processes of
// their own, or through main() in this one where many run) on checkpoints arpix's training loop
// wrote — damaged, re-signed over wrong content, or without sums — and on configs too large to
// build. `verify` must say "ok" exactly when every command that
// loads a checkpoint (sample, eval, complete, info, train --resume, import, export, serve) would
// use it, and refuse with the very line they refuse it with.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { cpSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { basename, join } from 'node:path';
import { decodeCheckpoint, encodeCheckpoint, type Checkpoint } from '../io/checkpoint.js';
import { encodeSafetensors, inspectSafetensors } from '../io/safetensors.js';
import { createModel } from '../models/index.js';
import { createServeApp } from '../serve/app.js';
import { Tensor } from '../tensor/tensor.js';
import { changedPaths, snapshotDir } from '../testing/fuzz.js';
import { fixtureRunConfig, loaderCommands, runArpix, writeFixtureImages, type CliRun } from '../testing/verify-fuzz.js';
import { train, type RunConfig } from '../train/index.js';

const MAIN = new URL('./main.ts', import.meta.url).pathname;
const TSX = import.meta.resolve('tsx');
const ENV = { ...process.env, NODE_NO_WARNINGS: '1', OMP_NUM_THREADS: '1', ARPIX_BACKEND: 'ts' };

/** `arpix …` as a user runs it: a process of its own. */
function arpix(args: readonly string[], env: Record<string, string> = {}): { code: number | null; stdout: string; stderr: string } {
  const r = spawnSync(process.execPath, ['--import', TSX, MAIN, ...args], { env: { ...ENV, ...env }, encoding: 'utf8' });
  return { code: r.status, stdout: r.stdout, stderr: r.stderr };
}

const root = mkdtempSync(join(tmpdir(), 'arpix-verify-'));
test.after(() => rmSync(root, { recursive: true, force: true }));

/**
 * A tiny run trained by arpix on 8×8 grey images from a .npy file (so eval, complete, resume and
 * export find its data), with Adam moments and averaged weights, in `root/run`.
 */
const made = (async () => {
  const npy = join(root, 'images.npy');
  writeFixtureImages(npy);
  const config = fixtureRunConfig(npy);
  const run = join(root, 'run');
  const r = await train(config, { runDir: run });
  assert.equal(r.status, 'done');
  const file = join(run, 'checkpoint.safetensors');
  return { npy, config, run, file, bytes: readFileSync(file) };
})();

/** Runs each argument list in this process, one after another (see runArpix). */
async function arpixAll(lists: readonly (readonly string[])[]): Promise<CliRun[]> {
  const results: CliRun[] = [];
  for (const args of lists) results.push(await runArpix(args));
  return results;
}

/** A run folder `name` under `parent` holding `bytes` as its checkpoint, beside the run's config. */
function runFolder(parent: string, name: string, bytes: Uint8Array, config: RunConfig): string {
  const dir = join(parent, name);
  mkdirSync(dir, { recursive: true });
  writeFileSync(join(dir, 'checkpoint.safetensors'), bytes);
  writeFileSync(join(dir, 'config.json'), JSON.stringify(config, null, 2) + '\n');
  return dir;
}

/** What serve's model worker answers for the run in `dir` (a folder inside `parent`): its status and message. */
async function serveInfo(parent: string, dir: string, allowUnverified = false): Promise<{ status: number; error?: string }> {
  const app = createServeApp({ runDirs: [parent], workers: 1, allowUnverified });
  try {
    const r = await app.app.request(`/api/info?run=${encodeURIComponent(`${basename(parent)}/${basename(dir)}`)}`);
    const body = (await r.json()) as { error?: string };
    return { status: r.status, error: body.error };
  } finally {
    await app.close();
  }
}

test('verify and every loader refuse a damaged checkpoint in one line naming the file', async () => {
  const { bytes } = await made;
  const ok = arpix(['verify', join(root, 'run')]);
  assert.equal(ok.code, 0, ok.stderr);
  assert.match(ok.stdout, /checkpoint\.safetensors: ok — SHA-256 of tensors and metadata verified; weights, average, optimiser state and run config fit its model; gated-pixelcnn at step 3, \d+ tensors/);

  const damaged = join(root, 'damaged.safetensors');
  const b = Uint8Array.from(bytes);
  b[inspectSafetensors(bytes).dataStart + 100]! ^= 0x10; // one bit of one weight
  writeFileSync(damaged, b);
  for (const args of [['verify', damaged], ['sample', damaged, '--n', '1', '--out', join(root, 'out')], ['info', damaged], ['eval', damaged]]) {
    const r = arpix(args);
    assert.equal(r.code, 1, `${args[0]}: ${r.stderr}`);
    assert.deepEqual(r.stderr.trim().split('\n').length, 1, r.stderr);
    assert.match(r.stderr, /^arpix: .*damaged\.safetensors: is damaged: its tensors do not match the SHA-256 recorded when it was written/);
    assert.equal(r.stdout, '');
  }
  assert.ok(!existsSync(join(root, 'out')), 'a refused sample writes nothing');
});

/** Re-signed files: valid sums over content no loader may use. Each edits a decoded copy of the run's checkpoint. */
const RESIGNED: Record<string, (c: Checkpoint) => void> = {
  'model-tensor-missing': (c) => {
    delete c.model[Object.keys(c.model).sort()[0]!];
  },
  'ema-wrong-shape': (c) => {
    const name = Object.keys(c.ema).find((k) => c.ema[k]!.shape.length > 1)!;
    const t = c.ema[name]!;
    c.ema[name] = new Tensor(t.data, [t.size]); // the same values, flattened
  },
  'ema-wrong-size': (c) => {
    const name = Object.keys(c.ema).sort()[0]!;
    c.ema[name] = new Tensor(new Float32Array(c.ema[name]!.size + 1), [c.ema[name]!.size + 1]);
  },
  'model-tensor-i32': (c) => {
    const name = Object.keys(c.model).sort()[0]!;
    const t = c.model[name]!;
    c.model[name] = new Tensor(Int32Array.from(t.data, Math.round), t.shape);
  },
  'likelihood-mismatch': (c) => {
    // The weights' head predicts 4 levels; the config now says 16 (and data of 4 bits to match).
    const config = c.meta.config as unknown as RunConfig;
    config.model.likelihood = { kind: 'categorical', levels: 16 } as RunConfig['model']['likelihood'];
    config.dataset.bits = 4;
  },
};

test('re-signed checkpoints: verify refuses each with exactly the line every loader refuses it with, and nothing is written', async () => {
  const { npy, config, bytes } = await made;
  const cases = join(root, 'resigned');
  const outs = join(root, 'resigned-outs');
  const dirs = Object.entries(RESIGNED).map(([name, edit]) => {
    const c = decodeCheckpoint(bytes, 'x');
    edit(c);
    return runFolder(cases, name, encodeCheckpoint(c), config);
  });
  const before = snapshotDir(cases);
  const lists = dirs.flatMap((dir) => [['verify', dir], ...loaderCommands(dir, join(outs, basename(dir)), npy)]);
  const results = await arpixAll(lists);
  const perCase = loaderCommands('', '', '').length + 1;
  for (let k = 0; k < dirs.length; k++) {
    const [verify, ...rest] = results.slice(k * perCase, (k + 1) * perCase);
    const name = basename(dirs[k]!);
    assert.equal(verify!.code, 1, `${name}: verify: ${verify!.stdout}${verify!.stderr}`);
    assert.equal(verify!.stdout, '');
    assert.equal(verify!.stderr.split('\n').length, 2, verify!.stderr);
    assert.ok(verify!.stderr.startsWith(`arpix: ${join(dirs[k]!, 'checkpoint.safetensors')}: `), verify!.stderr);
    rest.forEach((r, i) => {
      const command = lists[k * perCase + 1 + i]!.slice(0, 2).join(' ');
      assert.equal(r.code, 1, `${name}: ${command}: ${r.stdout}${r.stderr}`);
      assert.equal(r.stderr, verify!.stderr, `${name}: ${command} refuses with another line than verify`);
    });
    const served = await serveInfo(cases, dirs[k]!);
    assert.equal(served.status, 422, `${name}: serve: ${served.error}`);
    assert.ok(served.error && verify!.stderr.includes(served.error), `${name}: serve says '${served.error}', verify '${verify!.stderr}'`);
  }
  // What each case is refused for, in words a user can act on.
  const line = (name: string) => results[Object.keys(RESIGNED).indexOf(name) * perCase]!.stderr;
  assert.match(line('model-tensor-missing'), /lacks weight\(s\) 'model\.[^']+' that its model needs/);
  assert.match(line('ema-wrong-shape'), /tensor 'ema\.[^']+' is float32 \[\d+\] but its model needs float32 \[\d+, /);
  assert.match(line('ema-wrong-size'), /tensor 'ema\.[^']+' is float32 \[\d+\] but its model needs float32/);
  assert.match(line('model-tensor-i32'), /tensor 'model\.[^']+' is int32 .* but its model needs float32/);
  assert.match(line('likelihood-mismatch'), /tensor 'model\.[^']+' is float32 \[[\d, ]+\] but its model needs float32 \[[\d, ]+\]/);
  assert.deepEqual(changedPaths(before, snapshotDir(cases)), [], 'a refused command changed a run folder');
  assert.ok(!existsSync(outs), 'a refused command wrote an output');

  // The healthy file, for contrast: verify and every loader accept it.
  const good = runFolder(join(root, 'good'), 'run', bytes, config);
  const all = await arpixAll([['verify', good], ...loaderCommands(good, join(root, 'good-outs'), npy)]);
  all.forEach((r, i) => assert.equal(r.code, 0, `${i === 0 ? 'verify' : loaderCommands('', '', '')[i - 1]![0]}: ${r.stderr}`));
  assert.equal((await serveInfo(join(root, 'good'), good)).status, 200);
});

test('an arpix checkpoint without sums is refused by verify and every loader unless --allow-unverified; a plain state dict is not a checkpoint and imports as before', async () => {
  const { npy, config, bytes, run } = await made;
  const c = decodeCheckpoint(bytes, 'x');
  const tensors: Record<string, Tensor> = {};
  for (const part of ['model', 'optimizer', 'ema'] as const) for (const [k, t] of Object.entries(c[part])) tensors[`${part}.${k}`] = t;
  const parent = join(root, 'unsigned');
  const dir = runFolder(parent, 'run', encodeSafetensors(tensors, { arpix: JSON.stringify(c.meta) }), config);
  const file = join(dir, 'checkpoint.safetensors');
  const outs = join(root, 'unsigned-outs');
  const before = snapshotDir(parent);
  const refused = await arpixAll([['verify', dir], ...loaderCommands(dir, outs, npy)]);
  for (const r of refused) {
    assert.equal(r.code, 1, r.stderr);
    assert.equal(r.stderr, `arpix: ${file}: has no SHA-256 sums ('arpix.sha256'), so arpix cannot tell it from an edited or damaged file; if you trust where it came from, pass --allow-unverified (and save it again, e.g. with arpix import, to give it sums)\n`);
  }
  assert.deepEqual(changedPaths(before, snapshotDir(parent)), []);
  assert.ok(!existsSync(outs));
  assert.equal((await serveInfo(parent, dir)).status, 422);

  // Allowed: each command uses it, with one line of warning; the run import writes carries sums again.
  const allowed = await arpixAll([['verify', dir, '--allow-unverified'], ...loaderCommands(dir, outs, npy, ['--allow-unverified'])]);
  for (const r of allowed) {
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stderr, /^arpix: warning: .*checkpoint\.safetensors has no SHA-256 sums; (used|imported) as --allow-unverified asks, its integrity is not verified/m);
  }
  assert.match(allowed[0]!.stdout, /: ok — no checksums to verify \(--allow-unverified\);/);
  assert.equal((await serveInfo(parent, dir, true)).status, 200);
  const reimported = arpix(['verify', join(outs, 'import')]);
  assert.equal(reimported.code, 0, reimported.stderr);
  assert.match(reimported.stdout, /ok — SHA-256 of tensors and metadata verified/);

  // A third-party safetensors state dict (no arpix metadata) is not an arpix checkpoint: no sums are asked of it.
  const model = createModel(config.model);
  model.loadStateDict(c.model);
  const plain = join(root, 'plain.safetensors');
  writeFileSync(plain, encodeSafetensors(model.stateDict({ layout: 'pytorch' }), {}));
  const configFile = join(root, 'plain-config.json');
  cpSync(join(run, 'config.json'), configFile);
  const imported = arpix(['import', plain, '--config', configFile, '--out', join(root, 'plain-run')]);
  assert.equal(imported.code, 0, imported.stderr);
  assert.equal(imported.stderr, '');
  assert.equal(arpix(['verify', join(root, 'plain-run')]).code, 0);
});

test('info counts a 10-billion-parameter model without building it; train refuses a batch that cannot fit, before writing anything', () => {
  const config = {
    model: { kind: 'gated-pixelcnn', height: 28, width: 28, channels: 1, likelihood: { kind: 'categorical', levels: 256 }, hiddenChannels: 8192 },
    dataset: { name: 'fashion-mnist' },
    train: { steps: 10, batchSize: 20000 },
  };
  const file = join(root, 'big.json');
  writeFileSync(file, JSON.stringify(config));
  const info = arpix(['info', '--config', file, '--json']);
  assert.equal(info.code, 0, info.stderr);
  const j = JSON.parse(info.stdout);
  assert.equal(j.parameters, 9_867_714_816);
  assert.equal(j.receptiveField, null);
  assert.ok(j.flops > 1e13);

  config.model.hiddenChannels = 64;
  writeFileSync(file, JSON.stringify(config));
  const out = join(root, 'big-run');
  const r = arpix(['train', '--config', file, '--out', out], { ARPIX_MEMORY_LIMIT: '16G' });
  assert.equal(r.code, 1, r.stderr);
  assert.match(r.stderr, /^arpix: training with train\.batchSize=20000 \(a gated-pixelcnn model of [\d,]+ parameters on 28×28×1 images\) would need about [\d.]+ GiB, more than the memory limit of 16\.0 GiB \(ARPIX_MEMORY_LIMIT=16G\); make it smaller, or set ARPIX_MEMORY_LIMIT/m);
  assert.ok(!existsSync(out), 'no run folder is made');
});
