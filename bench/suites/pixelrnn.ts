// `npm run bench -- pixelrnn [--json] [--threads N] [--batch 32] [--steps 2] [--rounds 7] [--autocast on|off|auto]
//   [--sample-batch 16] [--pixels 4] [--sample-rounds 3] [--parts train,sample]
//   [--presets row-lstm-fmnist-small,diagonal-bilstm-fmnist-small]`:
// PixelRNN's figures. Training: images/s of each small PixelRNN preset (forward, backward and an
// Adam step at batch 32) against its PyTorch mirror (bench/pytorch/fast_mirrors.py: the same
// network with one matmul per recurrence step over rows or diagonals, both directions of the
// Diagonal BiLSTM in one batched matmul; Debian's python3-torch, same threads; fp32 with OpenBLAS on
// the thread count and on one thread, and bf16 autocast where the CPU multiplies bf16 natively, as
// the other suites), runs interleaved round by round (which side goes first alternating) and the
// ratios taken per round; and gated-pixelcnn-fmnist's images/s beside them, for the paper's claim
// that PixelCNN trains faster than PixelRNN. Sampling: arpix's cached
// sampler at batch 16 (whole images) against the mirror's naive sampler (`pixels` steps of the
// whole network, extrapolated to the image: every step does the same work), in interleaved
// rounds (which side goes first alternating), the ratio taken per round.

import { median, seconds, threads as defaultThreads, type Suite } from '../harness.js';
import { arpixPrecisions, autocast, inPrecisions, interleave, option, reportRounds, sampleMirror, startMirror } from '../torch.js';

const PRESETS = ['row-lstm-fmnist-small', 'diagonal-bilstm-fmnist-small'];
const PIXELCNN = 'gated-pixelcnn-fmnist';

const summary = (xs: number[]) => ({ median: median(xs), min: Math.min(...xs), max: Math.max(...xs) });

const suite: Suite = async ({ reporter, args }) => {
  const threads = Number(option(args, '--threads', String(defaultThreads())));
  process.env.OMP_NUM_THREADS = String(threads);
  const batch = Number(option(args, '--batch', '32'));
  const steps = Number(option(args, '--steps', '2'));
  const roundCount = Number(option(args, '--rounds', '7'));
  const sampleBatch = Number(option(args, '--sample-batch', '16'));
  const pixels = Number(option(args, '--pixels', '4'));
  const presets = option(args, '--presets', PRESETS.join(',')).split(',');
  const sampleRounds = Number(option(args, '--sample-rounds', '3'));
  const parts = option(args, '--parts', 'train,sample').split(',');

  // Imported after OMP_NUM_THREADS is set, so the addon's OpenMP pool has that many threads.
  const ax = await import('../../src/index.js');
  const { createModel } = await import('../../src/models/index.js');
  const { loadPreset } = await import('../../src/models/presets.js');
  const { Adam } = await import('../../src/optim/index.js');
  if (!ax.nativeAvailable()) reporter.note('the native backend is not built: arpix figures are on the slow ts backend');
  const row = { suite: 'pixelrnn', batch, threads, unit: 'images/s' };

  /** A function timing `steps` training steps of a preset's model on random images. */
  const trainer = (name: string) => {
    const model = createModel(loadPreset(name).model, { seed: 0 });
    model.train();
    const opt = new Adam(model.parameters(), { lr: 1e-3 });
    const { height: h, width: w, channels: c } = model.config;
    const images = ax.randint(0, model.likelihood.levels, [batch, h, w, c], { generator: new ax.Generator(1) });
    return () => seconds(() => {
      for (let s = 0; s < steps; s++) {
        const loss = model.loss(images);
        opt.zeroGrad();
        loss.backward({ releaseGraph: true });
        opt.step();
      }
    });
  };

  if (parts.includes('train')) {
    const bf16 = autocast(reporter, args);
    const precisions = await arpixPrecisions(reporter, args);
    const pixelCNN = trainer(PIXELCNN);
    pixelCNN();
    const pixelCNNRates: number[] = [];
    for (const name of presets) {
      const config = createModel(loadPreset(name).model).config;
      const runs = await inPrecisions(trainer(name), precisions);
      const mirror = await startMirror(reporter, config, { batch, steps, threads, autocast: bf16 });
      try {
        // arpix's Gated PixelCNN once per round beside them, for the paper's claim.
        const first = precisions[0]!;
        const rounds = await interleave(Object.fromEntries(precisions.map((p) => [p, p === first ? () => { const s = runs[p]!(); pixelCNNRates.push((batch * steps) / pixelCNN()); return s; } : runs[p]!])), mirror, roundCount);
        reportRounds(reporter, {
          row: { suite: 'pixelrnn', system: ax.backendName(), batch, threads }, name: `${name} train`, work: batch * steps,
          rounds, mirror, target: '≥ 3', extra: { params: createModel(config).numParameters() },
        });
      } finally {
        mirror?.close();
      }
    }
    reporter.add({ ...row, case: `${PIXELCNN} train (beside the PixelRNNs, interleaved)`, system: ax.backendName(), ...summary(pixelCNNRates) });
  }

  for (const name of parts.includes('sample') ? presets : []) {
    const model = createModel(loadPreset(name).model, { seed: 0 });
    const config = model.config;
    model.sample({ n: sampleBatch, seed: 0 });
    const ours: number[] = [], theirs: number[] = [], ratios: number[] = [];
    const arpixRound = (r: number) => sampleBatch / seconds(() => model.sample({ n: sampleBatch, seed: r + 1 }));
    const torchRound = () => sampleMirror(reporter, config, { batch: sampleBatch, positions: pixels, runs: 3, threads })?.median ?? null;
    for (let r = 0; r < sampleRounds; r++) {
      // Which side goes first alternates round by round.
      const torchFirst = r % 2 === 1 ? torchRound() : null;
      const a = arpixRound(r);
      const t = r % 2 === 1 ? torchFirst : torchRound();
      ours.push(a);
      if (t !== null) { theirs.push(t); ratios.push(a / t); }
    }
    reporter.add({ suite: 'pixelrnn', case: `${name} cached sampling`, system: ax.backendName(), batch: sampleBatch, threads, unit: 'images/s', ...summary(ours) });
    if (theirs.length > 0) {
      reporter.add({ suite: 'pixelrnn', case: `${name} naive sampling (PyTorch mirror, ${pixels} steps, extrapolated)`, system: 'pytorch', batch: sampleBatch, threads, unit: 'images/s', ...summary(theirs) });
      reporter.add({ suite: 'pixelrnn', case: `${name}: arpix cached / PyTorch naive per round`, system: 'ratio', batch: sampleBatch, threads, unit: '×', ...summary(ratios), extra: { target: '≥ 100' } });
    }
  }
};

export default suite;
