// `npm run bench -- train [--json] [--threads N] [--batch 32] [--runs 5] [--presets a,b]`:
// training images/s (forward, backward and Adam step, batch 32) of each small preset on native,
// and gated-pixelcnn-fmnist beside its PyTorch mirror (bench/pytorch/gated_pixelcnn.py, the
// common masked 3×3 formulation) run by Debian's python3-torch with the same batch and threads,
// in NCHW and channels_last; the ratio uses PyTorch's faster format. Data loading is left out on
// both sides: random images of the right levels. FLOPs per image are reported as computed —
// arpix skips the taps a mask always zeroes, PyTorch's masked formulation computes them.

import { rate, threads as defaultThreads, time, type Suite } from '../harness.js';
import { option, runGatedMirror } from '../torch.js';

const SMALL = ['gated-pixelcnn-fmnist', 'pixelcnn-binary-fmnist-small', 'pixelcnnpp-fmnist-small'];
const MIRRORED = 'gated-pixelcnn-fmnist';

const suite: Suite = async ({ reporter, args }) => {
  const threads = Number(option(args, '--threads', String(defaultThreads())));
  process.env.OMP_NUM_THREADS = String(threads);
  const batch = Number(option(args, '--batch', '32'));
  const runs = Number(option(args, '--runs', '5'));
  const steps = Number(option(args, '--steps', '3'));
  const presets = option(args, '--presets', SMALL.join(',')).split(',');

  // Imported after OMP_NUM_THREADS is set, so the addon's OpenMP pool has that many threads.
  const ax = await import('../../src/index.js');
  const { createModel, loadPreset } = await import('../../src/models/index.js');
  const { Adam } = await import('../../src/optim/index.js');
  const { modelInfo } = await import('../../src/train/info.js');
  if (!ax.nativeAvailable()) reporter.note('the native backend is not built: arpix figures are on the slow ts backend');

  let arpixMirrored = 0;
  for (const name of presets) {
    const preset = loadPreset(name);
    const model = createModel(preset.model, { seed: 0 });
    model.train();
    const opt = new Adam(model.parameters(), { lr: 1e-3 });
    const { height: h, width: w, channels: c } = model.config;
    const images = ax.randint(0, model.likelihood.levels, [batch, h, w, c], { generator: new ax.Generator(1) });
    const t = await time(() => {
      for (let s = 0; s < steps; s++) {
        const loss = model.loss(images);
        opt.zeroGrad();
        // As the trainer does (and as PyTorch frees its graph after backward for its allocator).
        loss.backward({ releaseGraph: true });
        opt.step();
      }
    }, { warmup: 1, runs });
    const r = rate(t, batch * steps);
    const info = modelInfo(model);
    reporter.add({
      suite: 'train', case: name, system: ax.backendName(), batch, threads, unit: 'images/s', ...r,
      extra: { 'GFLOP/img fwd': (info.flops - info.maskedFlops) / 1e9, params: model.numParameters() },
    });
    if (name === MIRRORED) arpixMirrored = r.median;
  }

  if (!presets.includes(MIRRORED)) return;
  const rows = runGatedMirror(reporter, loadPreset(MIRRORED).model, 'train', ['--batch', String(batch), '--runs', String(runs), '--steps', String(steps)], threads);
  if (rows === null) return;
  const best = Math.max(...rows.map((r) => r.median as number));
  const mirrorInfo = modelInfo(createModel(loadPreset(MIRRORED).model));
  const masked = mirrorInfo.maskedFormulationFlops ?? mirrorInfo.flops;
  for (const r of rows) {
    reporter.add({
      suite: 'train', case: `${MIRRORED} (PyTorch mirror, ${r.format as string})`, system: 'pytorch', batch, threads, unit: 'images/s',
      median: r.median as number, min: r.min as number, max: r.max as number,
      extra: { 'GFLOP/img fwd': masked / 1e9 },
    });
  }
  const ratio = arpixMirrored / best; // a ratio of medians has no spread of its own
  reporter.add({
    suite: 'train', case: `${MIRRORED}: arpix / PyTorch (faster format)`, system: 'ratio', batch, threads, unit: '×',
    median: ratio, min: ratio, max: ratio, extra: { target: '≥ 2' },
  });
};

export default suite;
