// `npm run bench -- train [--json] [--threads N] [--batch 32] [--runs 5] [--rounds 9] [--presets a,b]`:
// training images/s (forward, backward and Adam step, batch 32) of each small preset on native,
// and gated-pixelcnn-fmnist beside its PyTorch mirror (bench/pytorch/gated_pixelcnn.py, the
// common masked 3×3 formulation) run by Debian's python3-torch with the same batch and threads,
// in NCHW and channels_last, their runs interleaved; the ratio uses PyTorch's faster format and is
// taken round by round. Data loading is left out on both sides: random images of the right
// levels. FLOPs per image are reported as computed — arpix skips the taps a mask always zeroes,
// PyTorch's masked formulation computes them.

import { median, rate, threads as defaultThreads, time, trainingSteps, type Suite } from '../harness.js';
import { option, startGatedMirror } from '../torch.js';

const SMALL = ['gated-pixelcnn-fmnist', 'pixelcnn-binary-fmnist-small', 'pixelcnnpp-fmnist-small'];
const MIRRORED = 'gated-pixelcnn-fmnist';

const suite: Suite = async ({ reporter, args }) => {
  const threads = Number(option(args, '--threads', String(defaultThreads())));
  process.env.OMP_NUM_THREADS = String(threads);
  const batch = Number(option(args, '--batch', '32'));
  const runs = Number(option(args, '--runs', '5'));
  const steps = Number(option(args, '--steps', '3'));
  const rounds = Number(option(args, '--rounds', '9'));
  const presets = option(args, '--presets', SMALL.join(',')).split(',');

  // Imported after OMP_NUM_THREADS is set, so the addon's OpenMP pool has that many threads.
  const ax = await import('../../src/index.js');
  const { createModel, loadPreset } = await import('../../src/models/index.js');
  const { Adam } = await import('../../src/optim/index.js');
  const { modelInfo } = await import('../../src/train/info.js');
  if (!ax.nativeAvailable()) reporter.note('the native backend is not built: arpix figures are on the slow ts backend');

  // The mirrored preset's runs alternate with PyTorch's, round by round (which side goes first
  // alternates too): this machine's speed drifts by 10-15 % within minutes, so each round's ratio
  // compares runs made seconds apart, and the ratio gets a spread of its own.
  const mirror = presets.includes(MIRRORED)
    ? await startGatedMirror(reporter, loadPreset(MIRRORED).model, ['--batch', String(batch), '--steps', String(steps)], threads)
    : null;
  try {
    for (const name of presets) {
      const preset = loadPreset(name);
      const model = createModel(preset.model, { seed: 0 });
      model.train();
      const opt = new Adam(model.parameters(), { lr: 1e-3 });
      const { height: h, width: w, channels: c } = model.config;
      const images = ax.randint(0, model.likelihood.levels, [batch, h, w, c], { generator: new ax.Generator(1) });
      const arpixRun = () => trainingSteps(model, opt, images, steps);
      const info = modelInfo(model);
      const extra = { 'GFLOP/img fwd': (info.flops - info.maskedFlops) / 1e9, params: model.numParameters() };
      const row = { suite: 'train', system: ax.backendName(), batch, threads, unit: 'images/s' };
      if (name !== MIRRORED || mirror === null) {
        const t = await time(arpixRun, { warmup: 1, runs });
        reporter.add({ ...row, case: name, ...rate(t, batch * steps), extra });
        continue;
      }
      arpixRun(); // warm-up (the mirror warmed up as it started)
      const FORMATS = ['nchw', 'channels_last'] as const;
      const arpix: number[] = [];
      const torch: Record<(typeof FORMATS)[number], number[]> = { nchw: [], channels_last: [] };
      for (let r = 0; r < Math.max(5, rounds); r++) {
        const torchRound = async () => { for (const f of FORMATS) torch[f].push(await mirror.run(f)); };
        if (r % 2 === 0) { arpix.push(arpixRun()); await torchRound(); }
        else { await torchRound(); arpix.push(arpixRun()); }
      }
      const work = batch * steps;
      const rates = (secs: number[]) => secs.map((s) => work / s);
      const summary = (xs: number[]) => ({ median: median(xs), min: Math.min(...xs), max: Math.max(...xs) });
      reporter.add({ ...row, case: name, ...summary(rates(arpix)), extra });
      const masked = info.maskedFormulationFlops ?? info.flops;
      for (const f of FORMATS) {
        reporter.add({ ...row, case: `${MIRRORED} (PyTorch mirror, ${f})`, system: 'pytorch', ...summary(rates(torch[f])), extra: { 'GFLOP/img fwd': masked / 1e9 } });
      }
      const best = FORMATS.reduce((a, b) => (median(torch[a]) <= median(torch[b]) ? a : b));
      const ratios = arpix.map((s, r) => torch[best][r]! / s);
      reporter.add({
        ...row, case: `${MIRRORED}: arpix / PyTorch (${best}, its faster format), per round`, system: 'ratio', unit: '×',
        ...summary(ratios), extra: { target: '≥ 2' },
      });
    }
  } finally {
    mirror?.close();
  }
};

export default suite;
