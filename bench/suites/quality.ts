// Likelihood at equal compute: a Fashion-MNIST preset (gated-pixelcnn-fmnist by default; any
// `*-fmnist*` preset with --preset, e.g. diagonal-bilstm-fmnist-small or
// image-transformer-fmnist-small) trained for the same wall-clock budget, from the same initial
// weights, with the same hyper-parameters (batch, optimiser, schedule, clipping, EMA), by arpix and
// by its PyTorch mirror (bench/pytorch/quality_train.py: the bench's mirror of the family,
// bench/pytorch/fast_mirrors.py, convolutions channels-last), same thread count, one after the other; then the test bits/dim of each (EMA weights when the preset
// averages, all 10,000 test images) and the number of images each saw. A preset with a cosine
// schedule keeps its train.steps (the schedule needs its length): the run ends at whichever bound
// comes first, on both sides. A budget-bound figure: run it on an otherwise idle machine.
//
//   npm run bench -- quality [--preset NAME] [--minutes M (10)] [--threads N] [--precision auto|fp32|bf16] [--test-images N (10000)] [--python PATH] [--skip-pytorch] [--json]
//   npm run bench -- quality --make-fixture     rewrites src/train/fixtures/gated-mirror-*.safetensors

import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { loadDataset, splitValidation, subset } from '../../src/data/index.js';
import { saveSafetensorsSync } from '../../src/io/disk.js';
import { createModel } from '../../src/models/index.js';
import { presetNames } from '../../src/models/presets.js';
import { nativeBackend, backendName } from '../../src/backends/registry.js';
import { Tensor } from '../../src/tensor/tensor.js';
import { Generator } from '../../src/tensor/random.js';
import { applyOverrides, evaluate, presetRaw, resolveRunConfig, train } from '../../src/train/index.js';
import { threads as defaultThreads, type Reporter, type Suite } from '../harness.js';
import { noteTorch } from '../torch.js';

// The PyTorch side; the masked Gated PixelCNN whose log-likelihoods the fixtures hold.
const TRAIN = fileURLToPath(new URL('../pytorch/quality_train.py', import.meta.url));
const MASKED = fileURLToPath(new URL('../pytorch/gated_pixelcnn.py', import.meta.url));

interface Options { preset: string; testImages: number; minutes: number; threads: number; precision: string; python?: string; skipPytorch: boolean; makeFixture: boolean }

function parse(args: string[]): Options {
  const o: Options = { preset: 'gated-pixelcnn-fmnist', testImages: 10000, minutes: 10, threads: defaultThreads(), precision: 'auto', skipPytorch: false, makeFixture: false };
  for (let i = 0; i < args.length; i++) {
    const [flag, inline] = args[i]!.split('=', 2) as [string, string | undefined];
    const value = () => inline ?? args[++i]!;
    if (flag === '--minutes') o.minutes = Number(value());
    else if (flag === '--preset') o.preset = value();
    else if (flag === '--threads') o.threads = Number(value());
    else if (flag === '--precision') o.precision = value();
    else if (flag === '--python') o.python = value();
    else if (flag === '--test-images') o.testImages = Number(value());
    else if (flag === '--skip-pytorch') o.skipPytorch = true;
    else if (flag === '--make-fixture') o.makeFixture = true;
    else throw new Error(`quality: unknown option ${flag} (--preset, --minutes, --threads, --precision, --test-images, --python, --skip-pytorch, --make-fixture)`);
  }
  const presets = presetNames().filter((n) => (presetRaw(n).dataset as { name?: string }).name === 'fashion-mnist');
  if (!presets.includes(o.preset)) throw new Error(`quality: --preset must be a Fashion-MNIST preset (${presets.join(', ')}), got ${o.preset}`);
  if (!(o.minutes > 0)) throw new Error('quality: --minutes must be positive');
  return o;
}

function findPython(o: Options): string | null {
  for (const py of o.python ? [o.python] : ['python3', '/usr/bin/python3']) {
    if (spawnSync(py, ['-c', 'import torch'], { stdio: 'ignore' }).status === 0) return py;
  }
  return null;
}

/** Small arpix models, their weights in PyTorch's layout, images, and the mirror's log-likelihoods. */
function makeFixtures(o: Options, reporter: Reporter): void {
  const py = findPython(o);
  if (!py) throw new Error('quality --make-fixture needs PyTorch (apt-get install python3-torch)');
  const variants = {
    'k3': { hiddenChannels: 6, kernelSize: 3, firstKernelSize: 3, dilations: [1, 2, 1, 4] },
    'k5': { hiddenChannels: 5, kernelSize: 5, firstKernelSize: 7, dilations: [1, 2] },
  };
  for (const [name, v] of Object.entries(variants)) {
    const config = { kind: 'gated-pixelcnn', height: 10, width: 9, channels: 1, likelihood: { kind: 'categorical', levels: 256 }, ...v };
    const model = createModel(config, { seed: 3 });
    // Random biases too (they start at small values), so every parameter matters to the check.
    const g = new Generator(11);
    const images = new Tensor(new Int32Array(4 * 10 * 9), [4, 10, 9, 1]);
    g.randint(images.data as Int32Array, 0, 256);
    const tensors: Record<string, Tensor> = { images };
    for (const [k, t] of Object.entries(model.stateDict({ layout: 'pytorch' }))) tensors[`model.${k}`] = t;
    const dir = mkdtempSync(join(tmpdir(), 'arpix-fixture-'));
    const input = join(dir, 'in.safetensors');
    saveSafetensorsSync(input, tensors, { config: JSON.stringify(model.config) });
    const out = fileURLToPath(new URL(`../../src/train/fixtures/gated-mirror-${name}.safetensors`, import.meta.url));
    const r = spawnSync(py, [MASKED, 'check', '--fixture', input, '--out', out, '--threads', '1'], { encoding: 'utf8' });
    rmSync(dir, { recursive: true, force: true });
    if (r.status !== 0) throw new Error(`mirror check failed: ${r.stderr}`);
    const arpixLp = model.logProb(images).toArray();
    reporter.note(`fixture ${name}: torch ${r.stdout.trim()} arpix ${JSON.stringify(arpixLp)}`);
  }
}

const suite: Suite = async ({ reporter, args }) => {
  const o = parse(args);
  if (o.makeFixture) return makeFixtures(o, reporter);
  process.env.OMP_NUM_THREADS = String(o.threads);
  (nativeBackend() as { setNumThreads?: (n: number) => void } | null)?.setNumThreads?.(o.threads);

  const PRESET = o.preset;
  const raw = presetRaw(PRESET);
  const cosine = ((raw.train as { schedule?: { decay?: string } }).schedule?.decay) === 'cosine';
  const config = resolveRunConfig(applyOverrides(raw, [
    `train.minutes=${o.minutes}`, `train.precision=${o.precision}`, ...(cosine ? [] : ['train.steps=0']), 'train.validateEvery=0', 'train.checkpointEvery=0', 'train.validationSize=1000',
  ]), PRESET);
  const t = config.train;
  const full = await loadDataset('fashion-mnist', { split: 'train' });
  const { train: trainSet, validation } = splitValidation(full, { size: t.validationSize, seed: 0 });
  const fullTest = await loadDataset('fashion-mnist', { split: 'test' });
  // Smoke runs may evaluate on the first test images only; the figure to publish uses all 10,000.
  const test = o.testImages < fullTest.shape[0] ? subset(fullTest, Array.from({ length: o.testImages }, (_, i) => i)) : fullTest;
  reporter.note(`${PRESET}: ${o.minutes} min each${cosine ? ` (or ${t.steps} steps)` : ''}, test bits/dim on ${test.shape[0]} test images, batch ${t.batchSize}, ${t.optimizer} lr ${t.lr}, warm-up ${t.schedule.warmup} then ${t.schedule.decay} (gamma ${t.schedule.gamma}), clip ${t.gradClip}, EMA ${t.ema}, ${o.threads} threads, arpix backend ${backendName()}`);

  // Both start from arpix's initial weights (the mirror loads them into its masked kernels).
  const work = mkdtempSync(join(tmpdir(), 'arpix-quality-'));
  try {
    const init = createModel(config.model, { seed: t.seed });
    saveSafetensorsSync(join(work, 'init.safetensors'), init.stateDict({ layout: 'pytorch' }));
    writeFileSync(join(work, 'config.json'), JSON.stringify({ model: config.model, train: t, minutes: o.minutes }));
    writeFileSync(join(work, 'train.u8'), trainSet.images);
    writeFileSync(join(work, 'test.u8'), test.images);

    // arpix
    let precision = '';
    const r = await train(config, { runDir: join(work, 'arpix-run'), data: { train: trainSet, validation, transform: { kind: 'none' } }, onEvent: (ev) => {
      if (ev.kind !== 'start') return;
      precision = ev.precision.precision;
      reporter.note(`arpix trains in ${precision}: ${ev.precision.reason}`);
    } });
    if (r.ema) r.ema.copyTo(r.model);
    const e = await evaluate(r.model, test, { batchSize: 100 });
    const arpixRow = { bpd: e.bitsPerDim, stderr: e.stderr, images: r.imagesSeen, steps: r.step, seconds: r.seconds };

    // PyTorch
    let torchRow: typeof arpixRow | null = null;
    const py = o.skipPytorch ? null : findPython(o);
    if (!o.skipPytorch && !py) reporter.note('PyTorch is not installed (apt-get install python3-torch): the PyTorch row is skipped');
    if (py) {
      const env = { ...process.env, OMP_NUM_THREADS: String(o.threads), OPENBLAS_NUM_THREADS: String(o.threads) };
      const p = spawnSync(py, [TRAIN, 'train', '--data', work, '--threads', String(o.threads), '--json'], { env, encoding: 'utf8', maxBuffer: 1 << 24 });
      if (p.status !== 0) reporter.note(`PyTorch run failed (exit ${p.status}): ${p.stderr.trim().split('\n').slice(-3).join(' | ')}`);
      else {
        const j = JSON.parse(p.stdout.trim().split('\n').at(-1)!) as { bitsPerDim: number; stderr: number; images: number; steps: number; seconds: number } & Record<string, unknown>;
        torchRow = { bpd: j.bitsPerDim, stderr: j.stderr, images: j.images, steps: j.steps, seconds: j.seconds };
        noteTorch(reporter, j, 'PyTorch mirror');
      }
    }
    for (const [system, row] of [['arpix', arpixRow], ['pytorch', torchRow]] as const) {
      if (!row) continue;
      reporter.add({
        suite: 'quality', case: `${PRESET} ${o.minutes} min${system === 'arpix' ? ` (arpix ${precision})` : ''}`, system, batch: t.batchSize, threads: o.threads, unit: 'test bits/dim',
        median: row.bpd, min: row.bpd - row.stderr, max: row.bpd + row.stderr,
        extra: {
          images: row.images, steps: row.steps, 'images/s': Number((row.images / row.seconds).toFixed(1)),
          ...(torchRow && system === 'arpix' ? { 'Δ bits/dim vs pytorch': Number((row.bpd - torchRow.bpd).toFixed(4)), 'images vs pytorch': Number((row.images / torchRow.images).toFixed(2)) } : {}),
        },
      });
    }
  } finally {
    rmSync(work, { recursive: true, force: true });
  }
};

export default suite;
