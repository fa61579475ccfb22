// `npm run bench -- transformer [--parts train,sample,side-by-side] [--json] [--threads N] [--preset P]
//   [--batch 32] [--steps 3] [--rounds 9] [--autocast on|off|auto] [--sample-batch 16] [--positions 28]
//   [--minutes 10] [--test-images N]`:
// the Image Transformer's figures, on image-transformer-fmnist-small unless --preset says otherwise.
//
// - train: training images/s (forward, backward, Adam) beside the PyTorch mirror
//   (bench/pytorch/fast_mirrors.py: python/arpix_torch's network with local 1-D attention computed
//   block-wise, same batch and threads; fp32, and bf16 autocast where the CPU multiplies bf16
//   natively), runs interleaved round by round; the ratios are per round (target ≥ 2).
// - sample: images/s of cached sampling at batch 16 (whole images), of arpix's naive sampler and of
//   the mirror's naive sampler (both the whole network per sub-pixel, timed over `positions` steps
//   and extrapolated to the whole sequence: every step does the same work). Targets: cached ≥ 100×
//   PyTorch naive, ≥ 50× arpix naive.
// - side-by-side: the preset and gated-pixelcnn-fmnist each trained by arpix for `minutes` of
//   training time on Fashion-MNIST with their presets' hyper-parameters, then the test bits/dim
//   of each (EMA weights where the preset keeps an average). The likelihood at equal wall-clock
//   against the mirror is `npm run bench -- quality --preset image-transformer-fmnist-small`.

import { median, same, seconds, threads as defaultThreads, trainingSteps, type Suite } from '../harness.js';
import { arpixPrecisions, autocast, inPrecisions, interleave, option, reportRounds, sampleMirror, startMirror } from '../torch.js';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

const summary = (xs: number[]) => ({ median: median(xs), min: Math.min(...xs), max: Math.max(...xs) });

const suite: Suite = async ({ reporter, args }) => {
  const threads = Number(option(args, '--threads', String(defaultThreads())));
  process.env.OMP_NUM_THREADS = String(threads);
  const parts = option(args, '--parts', 'train,sample').split(',');
  const presetName = option(args, '--preset', 'image-transformer-fmnist-small');
  const batch = Number(option(args, '--batch', '32'));
  const steps = Number(option(args, '--steps', '3'));
  const rounds = Number(option(args, '--rounds', '9'));
  const sampleBatch = Number(option(args, '--sample-batch', '16'));
  const positions = Number(option(args, '--positions', '28'));
  const minutes = Number(option(args, '--minutes', '10'));
  const testImages = Number(option(args, '--test-images', '10000'));
  for (const p of parts) if (!['train', 'sample', 'side-by-side'].includes(p)) throw new Error(`transformer: unknown part '${p}' (train, sample, side-by-side)`);
  const bf16 = parts.includes('train') && autocast(reporter, args);

  // Imported after OMP_NUM_THREADS is set, so the addon's OpenMP pool has that many threads.
  const ax = await import('../../src/index.js');
  const { createModel } = await import('../../src/models/index.js');
  const { loadPreset } = await import('../../src/models/presets.js');
  const { Adam } = await import('../../src/optim/index.js');
  const { naiveStepper } = await import('../../src/models/sampling/naive.js');
  const { prepareSampling } = await import('../../src/models/sampling/options.js');
  if (!ax.nativeAvailable()) reporter.note('the native backend is not built: arpix figures are on the slow ts backend');
  const preset = loadPreset(presetName);
  const dir = mkdtempSync(join(tmpdir(), 'arpix-bench-it-'));
  const row = { suite: 'transformer', system: ax.backendName(), threads };

  try {
    if (parts.includes('train')) {
      const model = createModel(preset.model, { seed: 0 });
      model.train();
      const opt = new Adam(model.parameters(), { lr: 1e-3, betas: [0.9, 0.98] });
      const { height: h, width: w, channels: c } = model.config;
      const images = ax.randint(0, model.likelihood.levels, [batch, h, w, c], { generator: new ax.Generator(1) });
      const arpixRuns = await inPrecisions(() => trainingSteps(model, opt, images, steps), await arpixPrecisions(reporter, args));
      const mirror = await startMirror(reporter, model.config, { batch, steps, threads, autocast: bf16 });
      try {
        reportRounds(reporter, {
          row: { ...row, batch }, name: `${presetName} training`, work: batch * steps, rounds: await interleave(arpixRuns, mirror, rounds),
          mirror, target: '≥ 2', extra: { params: model.numParameters() },
        });
      } finally {
        mirror?.close();
      }
    }

    if (parts.includes('sample')) {
      const model = createModel(preset.model, { seed: 0 });
      const { height: h, width: w, channels: c } = model.config;
      const n = sampleBatch;
      const total = h * w * c;
      model.sample({ n, seed: 0 }); // warm-up
      const cached = [1, 2, 3].map((i) => n / seconds(() => model.sample({ n, seed: i })));
      const s = prepareSampling(model, { n, seed: 0 });
      const stepper = naiveStepper(model, s);
      const naive = [1, 2].map(() => {
        const secs = seconds(() => ax.noGrad(() => {
          for (let p = 0; p < positions; p++) stepper.pixel(Math.floor(p / c / w) % h, Math.floor(p / c) % w, p % c);
        }));
        return n / ((secs / positions) * total);
      });
      reporter.add({ ...row, case: `${presetName} cached sampling`, batch: n, unit: 'images/s', ...summary(cached) });
      reporter.add({ ...row, case: `${presetName} naive sampling (${positions} steps, extrapolated)`, batch: n, unit: 'images/s', ...summary(naive) });
      reporter.add({ ...row, case: `${presetName}: cached / arpix naive`, system: 'ratio', batch: n, unit: '×', ...same(median(cached) / median(naive)), extra: { target: '≥ 50' } });
      const t = sampleMirror(reporter, model.config, { batch: n, positions, runs: 3, threads });
      if (t) {
        reporter.add({ ...row, case: `${presetName} naive sampling (PyTorch mirror, ${positions} steps, extrapolated)`, system: 'pytorch', batch: n, unit: 'images/s', ...t });
        reporter.add({ ...row, case: `${presetName}: arpix cached / PyTorch naive`, system: 'ratio', batch: n, unit: '×', ...same(median(cached) / t.median), extra: { target: '≥ 100' } });
      }
    }

    if (parts.includes('side-by-side')) {
      const { loadDataset, splitValidation, subset } = await import('../../src/data/index.js');
      const { applyOverrides, evaluate, presetRaw, resolveRunConfig, train } = await import('../../src/train/index.js');
      const full = await loadDataset('fashion-mnist', { split: 'train' });
      const fullTest = await loadDataset('fashion-mnist', { split: 'test' });
      const test = testImages < fullTest.shape[0] ? subset(fullTest, Array.from({ length: testImages }, (_, i) => i)) : fullTest;
      reporter.note(`side-by-side: each preset trained by arpix for ${minutes} min of training time, test bits/dim on ${test.shape[0]} test images`);
      for (const name of [presetName, 'gated-pixelcnn-fmnist']) {
        const config = resolveRunConfig(applyOverrides(presetRaw(name), [
          `train.minutes=${minutes}`, 'train.steps=0', 'train.validateEvery=0', 'train.checkpointEvery=0', 'train.validationSize=1000',
        ]), name);
        const { train: trainSet, validation } = splitValidation(full, { size: config.train.validationSize, seed: 0 });
        const r = await train(config, { runDir: join(dir, `run-${name}`), data: { train: trainSet, validation, transform: { kind: 'none' } } });
        if (r.ema) r.ema.copyTo(r.model);
        const e = await evaluate(r.model, test, { batchSize: 100 });
        reporter.add({
          ...row, case: `${name} after ${minutes} min`, batch: config.train.batchSize, unit: 'test bits/dim',
          median: e.bitsPerDim, min: e.bitsPerDim - e.stderr, max: e.bitsPerDim + e.stderr,
          extra: { images: r.imagesSeen, steps: r.step, params: r.model.numParameters() },
        });
      }
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
};

export default suite;
