// `npm run bench -- train [--json] [--threads N] [--batch 32] [--steps 3] [--rounds 9] [--presets a,b]
//  [--autocast on|off|auto] [--precision fp32,bf16]`:
// training images/s (forward, backward and Adam step, batch 32) of each small preset on native,
// beside its PyTorch mirror (bench/pytorch/fast_mirrors.py: python/arpix_torch's network, the
// zeroed taps of the masked formulation dropped as arpix drops them) run by Debian's python3-torch
// with the same batch and threads, in NCHW and channels_last, in fp32 and — where the CPU multiplies
// bf16 natively, or with --autocast on — under bf16 autocast; their runs interleaved with arpix's
// round by round. The ratios are per round, against the fastest fp32 variant and the fastest bf16
// one. Data loading is left out on both sides: random images of the right levels. FLOPs per image:
// the useful ones (taps a mask always zeroes left out) and the computed ones, the same on both sides
// (the Gated PixelCNN skips its zeroed taps on both, PixelCNN's masked convolutions compute them on both).

import { threads as defaultThreads, trainingSteps, type Suite } from '../harness.js';
import { arpixPrecisions, autocast, inPrecisions, interleave, option, reportRounds, startMirror } from '../torch.js';

const SMALL = ['gated-pixelcnn-fmnist', 'pixelcnn-binary-fmnist-small', 'pixelcnnpp-fmnist-small'];

const suite: Suite = async ({ reporter, args }) => {
  const threads = Number(option(args, '--threads', String(defaultThreads())));
  process.env.OMP_NUM_THREADS = String(threads);
  const batch = Number(option(args, '--batch', '32'));
  const steps = Number(option(args, '--steps', '3'));
  const rounds = Number(option(args, '--rounds', '9'));
  const presets = option(args, '--presets', SMALL.join(',')).split(',');
  const bf16 = autocast(reporter, args);

  // Imported after OMP_NUM_THREADS is set, so the addon's OpenMP pool has that many threads.
  const ax = await import('../../src/index.js');
  const { createModel } = await import('../../src/models/index.js');
  const { loadPreset } = await import('../../src/models/presets.js');
  const { Adam } = await import('../../src/optim/index.js');
  const { modelInfo } = await import('../../src/train/info.js');
  if (!ax.nativeAvailable()) reporter.note('the native backend is not built: arpix figures are on the slow ts backend');
  const precisions = await arpixPrecisions(reporter, args);

  for (const name of presets) {
    const model = createModel(loadPreset(name).model, { seed: 0 });
    model.train();
    const opt = new Adam(model.parameters(), { lr: 1e-3 });
    const { height: h, width: w, channels: c } = model.config;
    const images = ax.randint(0, model.likelihood.levels, [batch, h, w, c], { generator: new ax.Generator(1) });
    const arpixRuns = await inPrecisions(() => trainingSteps(model, opt, images, steps), precisions);
    const info = modelInfo(model);
    // The mirror computes what arpix computes: the same kernels, masked taps included where arpix's are.
    const flops = { 'GFLOP/img fwd': (info.flops - info.maskedFlops) / 1e9, 'GFLOP/img computed': info.flops / 1e9 };
    const mirror = await startMirror(reporter, model.config, { batch, steps, threads, autocast: bf16 });
    try {
      reportRounds(reporter, {
        row: { suite: 'train', system: ax.backendName(), batch, threads }, name, work: batch * steps,
        rounds: await interleave(arpixRuns, mirror, rounds), mirror, target: '≥ 2',
        extra: { ...flops, params: model.numParameters() }, torchExtra: flops,
      });
    } finally {
      mirror?.close();
    }
  }
};

export default suite;
