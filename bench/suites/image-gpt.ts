// `npm run bench -- image-gpt [--json] [--threads N] [--parts train,sample,quality] [--autocast on|off|auto] …`:
// the figures of Image GPT (image-gpt-fmnist-small) beside its PyTorch mirror (bench/pytorch/
// fast_mirrors.py: python/arpix_torch/image_gpt.py with causal attention by query blocks, run by
// bench/pytorch/mirror_bench.py with Debian's python3-torch, same threads):
//
// - train: images/s of a training step (forward, loss, backward, Adam) at --batch (32), arpix's
//   runs interleaved with the mirror's (fp32, and bf16 autocast where the CPU multiplies bf16
//   natively) round by round; the ratios per round (target ≥ 2×).
// - sample: arpix's KV-cached sampler at batch --sample-batch (16) against the mirror's naive
//   sampler (the whole sequence per token, --pixels tokens timed and extrapolated); target ≥ 100×.
// - quality: trains the preset for --minutes (10) of training time (or its 3000 cosine-scheduled
//   steps, whichever comes first) on Fashion-MNIST, then the test
//   bits/dim (all 10,000 test images, or --test-images) and the linear probe's test accuracy of
//   every layer against raw pixels (--probe-train / --probe-test images; all by default;
//   --probe-bands K pools K bands of rows separately instead of every position, not the paper's probe).
// Random images for the timings; real data for quality. Run on an otherwise idle machine.

import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { median, threads as defaultThreads, trainingSteps, type Suite } from '../harness.js';
import { arpixPrecisions, autocast, inPrecisions, interleave, option, reportRounds, sampleMirror, startMirror } from '../torch.js';

const PRESET = 'image-gpt-fmnist-small';

const summary = (xs: number[]) => ({ median: median(xs), min: Math.min(...xs), max: Math.max(...xs) });
const same = (v: number) => ({ median: v, min: v, max: v });

const suite: Suite = async ({ reporter, args }) => {
  const threads = Number(option(args, '--threads', String(defaultThreads())));
  process.env.OMP_NUM_THREADS = String(threads);
  const parts = option(args, '--parts', 'train,sample,quality').split(',');
  const batch = Number(option(args, '--batch', '32'));
  const steps = Number(option(args, '--steps', '3'));
  const rounds = Number(option(args, '--rounds', '9'));
  const sampleBatch = Number(option(args, '--sample-batch', '16'));
  const pixels = Number(option(args, '--pixels', '28'));
  const minutes = Number(option(args, '--minutes', '10'));
  const overrides = option(args, '--model', ''); // e.g. embedDim=16,layers=1 for a smoke run

  const ax = await import('../../src/index.js');
  const { createModel } = await import('../../src/models/index.js');
  const { loadPreset } = await import('../../src/models/presets.js');
  const { Adam } = await import('../../src/optim/index.js');
  if (!ax.nativeAvailable()) reporter.note('the native backend is not built: arpix figures are on the slow ts backend');
  const config = { ...loadPreset(PRESET).model } as Record<string, unknown>;
  for (const kv of overrides ? overrides.split(',') : []) {
    const [k, v] = kv.split('=') as [string, string];
    config[k] = Number.isNaN(Number(v)) ? v : Number(v);
  }
  const dir = mkdtempSync(join(tmpdir(), 'arpix-bench-igpt-'));
  const model = createModel(config, { seed: 0 });
  const { height: h, width: w, channels: c } = model.config;
  const row = { suite: 'image-gpt', system: ax.backendName(), threads };
  try {
    if (parts.includes('train')) {
      model.train();
      const opt = new Adam(model.parameters(), { lr: 1e-3 });
      const images = ax.randint(0, model.likelihood.levels, [batch, h, w, c], { generator: new ax.Generator(1) });
      const arpixRuns = await inPrecisions(() => trainingSteps(model, opt, images, steps), await arpixPrecisions(reporter, args));
      const mirror = await startMirror(reporter, model.config, { batch, steps, threads, autocast: autocast(reporter, args) });
      try {
        reportRounds(reporter, {
          row: { ...row, batch }, name: `${PRESET} training step`, work: batch * steps, rounds: await interleave(arpixRuns, mirror, rounds),
          mirror, target: '≥ 2', extra: { params: model.numParameters() },
        });
      } finally {
        mirror?.close();
      }
    }

    if (parts.includes('sample')) {
      model.eval();
      model.sample({ n: sampleBatch, seed: 0 }); // warm-up
      const rates = [1, 2, 3].map((seed) => {
        const t0 = process.hrtime.bigint();
        model.sample({ n: sampleBatch, seed });
        return sampleBatch / (Number(process.hrtime.bigint() - t0) / 1e9);
      });
      reporter.add({ ...row, case: `${PRESET} cached sampling`, batch: sampleBatch, unit: 'images/s', ...summary(rates) });
      const r = sampleMirror(reporter, model.config, { batch: sampleBatch, positions: pixels, runs: 3, threads });
      if (r) {
        reporter.add({ ...row, case: `${PRESET} PyTorch naive sampling (${pixels} tokens, extrapolated)`, system: 'pytorch', batch: sampleBatch, unit: 'images/s', ...r });
        reporter.add({ ...row, case: `${PRESET}: arpix cached / PyTorch naive`, system: 'ratio', batch: sampleBatch, unit: '×', ...same(median(rates) / r.median), extra: { target: '≥ 100' } });
      }
    }

    if (parts.includes('quality')) {
      const { applyOverrides, evaluate, presetRaw, resolveRunConfig, train } = await import('../../src/train/index.js');
      const { loadDataset, subset } = await import('../../src/data/index.js');
      const { probe } = await import('../../src/models/image-gpt/probe.js');
      const raw = applyOverrides(presetRaw(PRESET), [`train.minutes=${minutes}`, 'train.validateEvery=0', 'train.checkpointEvery=0',
        ...Object.entries(config).filter(([k]) => overrides.includes(`${k}=`)).map(([k, v]) => `model.${k}=${String(v)}`)]);
      const run = resolveRunConfig(raw, PRESET);
      const runDir = join(dir, 'run');
      const result = await train(run, { runDir });
      const { modelFromCheckpoint } = await import('../../src/models/checkpoint.js');
      const { loadCheckpoint } = await import('../../src/io/disk.js');
      const trained = modelFromCheckpoint(await loadCheckpoint(result.checkpoint!));
      let test = await loadDataset('fashion-mnist', { split: 'test' });
      const testImages = Number(option(args, '--test-images', String(test.shape[0])));
      if (testImages < test.shape[0]) test = subset(test, Array.from({ length: testImages }, (_, i) => i));
      const e = await evaluate(trained, test, { batchSize: 50 });
      reporter.add({ ...row, case: `${PRESET} Fashion-MNIST test bits/dim after ${minutes} min of training (${result.step} steps)`, batch, unit: 'bits/dim', ...same(e.bitsPerDim), extra: { stderr: e.stderr, images: e.n } });
      const pTrain = Number(option(args, '--probe-train', '60000'));
      const pTest = Number(option(args, '--probe-test', '10000'));
      const bands = Number(option(args, '--probe-bands', '1'));
      const r = probe(trained, { train: await loadDataset('fashion-mnist', { split: 'train' }), test }, { layers: 'all', trainImages: pTrain, testImages: pTest, bands });
      const pooled = bands > 1 ? `, ${bands} bands of rows` : '';
      for (const l of r.layers) reporter.add({ ...row, case: `linear probe${pooled}, layer ${l.layer}`, unit: '% test', ...same(100 * l.testAccuracy), extra: { l2: l.l2, validation: 100 * l.validationAccuracy } });
      if (r.raw) reporter.add({ ...row, case: 'linear probe, raw pixels', unit: '% test', ...same(100 * r.raw.testAccuracy), extra: { l2: r.raw.l2 } });
      reporter.add({ ...row, case: `linear probe${pooled}, best layer by validation (${r.best.layer})`, unit: '% test', ...same(100 * r.best.testAccuracy), extra: { goal: 'above raw pixels (~84 %)' } });
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
};

export default suite;
