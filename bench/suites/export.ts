// `npm run bench -- export [--tiny]`: the hand-off to PyTorch.
//   - arpix export --torch and arpix import of pixelcnnpp-cifar10 (53.6M parameters): seconds and
//     checkpoint size, for a new run (weights) and for a run (weights + Adam moments + average);
//   - train.py (the export's DDP script) on this machine's CPUs: images/s of 2 gloo ranks × 1
//     thread against 1 rank × 2 threads and 1 rank × 1 thread, gated-pixelcnn-fmnist at batch 32.
//     This shows the plumbing works, not a speed claim: two ranks on two cores share one machine.
// --tiny shrinks both (a smoke run of the suite, not figures).

import { spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, statSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { threads, time, type Suite } from '../harness.js';
import { exportForTorch, findTorchPython, importCheckpoint, initialCheckpoint, writeImportedRun } from '../../src/export/index.js';
import type { Checkpoint } from '../../src/io/checkpoint.js';
import { locateDataset } from '../../src/data/index.js';
import { Tensor } from '../../src/tensor/tensor.js';
import { applyOverrides, presetRaw, resolveRunConfig } from '../../src/train/index.js';

async function freePort(): Promise<number> {
  return new Promise((resolve) => {
    const s = createServer();
    s.listen(0, '127.0.0.1', () => {
      const port = (s.address() as { port: number }).port;
      s.close(() => resolve(port));
    });
  });
}

/** Runs train.py as `world` ranks of `perRank` threads; returns images/s after the first `skip` logged steps. */
async function ddpRate(python: string, dir: string, world: number, perRank: number, batch: number, skip: number): Promise<number> {
  const port = await freePort();
  const out = join(dir, `run-${world}x${perRank}`);
  rmSync(out, { recursive: true, force: true });
  await Promise.all(Array.from({ length: world }, (_, rank) => new Promise<void>((resolve, reject) => {
    const env = { ...process.env, OMP_NUM_THREADS: String(perRank), RANK: String(rank), LOCAL_RANK: String(rank), WORLD_SIZE: String(world), MASTER_ADDR: '127.0.0.1', MASTER_PORT: String(port) };
    const child = spawn(python, [join(dir, 'train.py'), '--out', out, '--device', 'cpu', '--threads', String(perRank), '--validation-limit', '100'], { env, stdio: ['ignore', 'ignore', 'pipe'] });
    let err = '';
    child.stderr.on('data', (d: Buffer) => { err = (err + d.toString()).slice(-2000); });
    child.on('close', (code) => (code === 0 ? resolve() : reject(new Error(`train.py rank ${rank} failed: ${err}`))));
  })));
  const records = readFileSync(join(out, 'metrics.jsonl'), 'utf8').trim().split('\n').map((l) => JSON.parse(l) as { type: string; step: number; seconds: number }).filter((r) => r.type === 'train');
  const first = records.find((r) => r.step >= skip) ?? records[0]!;
  const last = records.at(-1)!;
  return ((last.step - first.step) * batch) / (last.seconds - first.seconds);
}

const suite: Suite = async ({ reporter, args }) => {
  const tiny = args.includes('--tiny');
  const dir = mkdtempSync(join(tmpdir(), 'arpix-bench-export-'));
  try {
    // ---- export / import time and size ----------------------------------------------------------
    const big = resolveRunConfig(applyOverrides(presetRaw('pixelcnnpp-cifar10'), tiny ? ['model.filters=8', 'model.resnetBlocks=1'] : []), 'pixelcnnpp-cifar10');
    const fresh = initialCheckpoint(big);
    const params = Object.values(fresh.model).reduce((a, t) => a + t.size, 0);
    // A run's checkpoint: Adam's two moments per parameter and the average (values do not matter).
    const names = Object.keys(fresh.model);
    const run: Checkpoint = {
      ...fresh,
      meta: { ...fresh.meta, step: 1, optimizer: { kind: 'Adam', groups: [{ lr: 1e-3, initialLr: 1e-3, betas: [0.9, 0.999], eps: 1e-8, weightDecay: 0, params: names.map((_, i) => i) }], steps: Object.fromEntries(names.map((_, i) => [String(i), 1])) }, scheduler: { stepCount: 1 }, ema: { decay: 0.9995, warmup: true, updates: 1 } },
      optimizer: Object.fromEntries(names.flatMap((k, i) => [[`${i}.exp_avg`, new Tensor(fresh.model[k]!.data.slice(), fresh.model[k]!.shape)], [`${i}.exp_avg_sq`, new Tensor(fresh.model[k]!.data.slice(), fresh.model[k]!.shape)]])),
      ema: Object.fromEntries(names.map((k) => [k, new Tensor(fresh.model[k]!.data.slice(), fresh.model[k]!.shape)])),
    };
    for (const [label, ckpt] of [['weights', fresh], ['run: weights + Adam + EMA', run]] as const) {
      const out = join(dir, label.startsWith('run') ? 'run' : 'weights');
      const tExport = await time(() => exportForTorch(big, ckpt, out, { data: false, force: true }), { warmup: 1, runs: 5 });
      const bytes = statSync(join(out, 'checkpoint.safetensors')).size;
      reporter.add({ suite: 'export', case: `pixelcnnpp-cifar10 export --torch (${label})`, system: 'native', threads: threads(), unit: 's', ...tExport, extra: { params, MB: +(bytes / 1e6).toFixed(1) } });
      const back = join(dir, `${label.startsWith('run') ? 'run' : 'weights'}-imported`);
      const tImport = await time(async () => writeImportedRun(await importCheckpoint(join(out, 'checkpoint.safetensors')), out, back, true), { warmup: 1, runs: 5 });
      reporter.add({ suite: 'export', case: `pixelcnnpp-cifar10 import (${label})`, system: 'native', threads: threads(), unit: 's', ...tImport, extra: { params, MB: +(bytes / 1e6).toFixed(1) } });
    }

    // ---- PyTorch DDP on this machine's CPUs ------------------------------------------------------
    const python = findTorchPython();
    if (python === null) {
      reporter.note('PyTorch is not installed (apt-get install python3-torch): no DDP figures');
      return;
    }
    if (!locateDataset('fashion-mnist')) {
      reporter.note('fashion-mnist not found (apt-get install dataset-fashion-mnist): no DDP figures');
      return;
    }
    const batch = 32;
    const steps = tiny ? 6 : 120;
    const overrides = [`train.batchSize=${batch}`, `train.steps=${steps}`, 'train.logEvery=1', 'train.checkpointEvery=0', 'train.validationSize=100', ...(tiny ? ['model.hiddenChannels=4', 'model.dilations=[1]'] : [])];
    const small = resolveRunConfig(applyOverrides(presetRaw('gated-pixelcnn-fmnist'), overrides), 'gated-pixelcnn-fmnist');
    const exp = join(dir, 'ddp');
    await exportForTorch(small, null, exp, { force: true });
    const skip = tiny ? 2 : 20;
    const results: [string, number][] = [];
    for (const [world, perRank] of [[1, 2], [2, 1], [1, 1]] as const) {
      const r = await ddpRate(python, exp, world, perRank, batch, skip);
      results.push([`${world}x${perRank}`, r]);
      reporter.add({ suite: 'export', case: `train.py gated-pixelcnn-fmnist: ${world} rank(s) × ${perRank} thread(s)`, system: 'pytorch-ddp', batch, threads: world * perRank, unit: 'images/s', median: r, min: r, max: r, extra: { steps } });
    }
    const one = results.find(([k]) => k === '1x2')![1];
    const two = results.find(([k]) => k === '2x1')![1];
    reporter.note(`2 gloo ranks × 1 thread give ${(two / one).toFixed(2)}× the images/s of 1 rank × 2 threads (one run each after ${skip} warm-up steps; the plumbing, not a speed claim)`);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
};

export default suite;
