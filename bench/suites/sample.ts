// `npm run bench -- sample [--json] [--threads N] [--batches 1,16,64] [--presets a,b] [--pixels 28]`:
// images/s of naive and cached sampling for each small preset at each batch size, and of the
// PyTorch naive sampler of gated-pixelcnn-fmnist (bench/pytorch/mirror_bench.py sample on
// python/arpix_torch's network, Debian's python3-torch, same threads). A naive sampler runs the
// whole network once per pixel, so it is timed over `pixels` steps and extrapolated to the whole
// image (every step does the same work); cached sampling is timed over whole images.

import { median, same, seconds, threads as defaultThreads, type Suite } from '../harness.js';
import { option, sampleMirror } from '../torch.js';

const SMALL = ['gated-pixelcnn-fmnist', 'pixelcnn-binary-fmnist-small', 'pixelcnnpp-fmnist-small'];
const MIRRORED = 'gated-pixelcnn-fmnist';


const suite: Suite = async ({ reporter, args }) => {
  const threads = Number(option(args, '--threads', String(defaultThreads())));
  process.env.OMP_NUM_THREADS = String(threads);
  const batches = option(args, '--batches', '1,16,64').split(',').map(Number);
  const presets = option(args, '--presets', SMALL.join(',')).split(',');
  const pixels = Number(option(args, '--pixels', '28'));
  const runs = Number(option(args, '--runs', '3'));

  const ax = await import('../../src/index.js');
  const { createModel } = await import('../../src/models/index.js');
  const { loadPreset } = await import('../../src/models/presets.js');
  const { naiveStepper } = await import('../../src/models/sampling/naive.js');
  const { prepareSampling } = await import('../../src/models/sampling/options.js');
  if (!ax.nativeAvailable()) reporter.note('the native backend is not built: arpix figures are on the slow ts backend');

  const ours = new Map<string, number>(); // `${preset} ${method} ${batch}` → images/s
  for (const name of presets) {
    const model = createModel(loadPreset(name).model, { seed: 0 });
    const { height: h, width: w } = model.config;
    const passes = model.likelihood.perChannel ? model.config.channels : 1;
    for (const n of batches) {
      // Cached: whole images, one warm-up run.
      model.sample({ n, seed: 0 });
      const cached = Array.from({ length: runs }, (_, i) => n / seconds(() => model.sample({ n, seed: i + 1 })));
      // Naive: `pixels` steps of the whole network, extrapolated to h·w·passes steps.
      const s = prepareSampling(model, { n, seed: 0 });
      const stepper = naiveStepper(model, s);
      const naive = Array.from({ length: Math.max(1, runs - 1) }, () => {
        const secs = seconds(() => ax.noGrad(() => { for (let p = 0; p < pixels; p++) stepper.pixel(Math.floor(p / w) % h, p % w, 0); }));
        return n / ((secs / pixels) * h * w * passes);
      });
      for (const [method, rates] of [['cached', cached], ['naive', naive]] as const) {
        const sorted = [...rates].sort((a, b) => a - b);
        const caseName = method === 'naive' ? `${name} naive (${pixels} steps, extrapolated)` : `${name} cached`;
        reporter.add({ suite: 'sample', case: caseName, system: ax.backendName(), batch: n, threads, unit: 'images/s', median: median(rates), min: sorted[0]!, max: sorted.at(-1)! });
        ours.set(`${name} ${method} ${n}`, median(rates));
      }
      reporter.add({ suite: 'sample', case: `${name}: cached / naive`, system: 'ratio', batch: n, threads, unit: '×', ...same(ours.get(`${name} cached ${n}`)! / ours.get(`${name} naive ${n}`)!), extra: name === MIRRORED && n === 16 ? { target: '≥ 50' } : {} });
    }
  }

  if (!presets.includes(MIRRORED)) return;
  const config = createModel(loadPreset(MIRRORED).model).config;
  for (const n of batches) {
    const r = sampleMirror(reporter, config, { batch: n, positions: pixels, runs, threads });
    if (r === null) return;
    reporter.add({ suite: 'sample', case: `${MIRRORED} PyTorch naive (${pixels} steps, extrapolated)`, system: 'pytorch', batch: n, threads, unit: 'images/s', ...r });
    const c = ours.get(`${MIRRORED} cached ${n}`);
    if (c !== undefined) {
      reporter.add({ suite: 'sample', case: `${MIRRORED}: arpix cached / PyTorch naive`, system: 'ratio', batch: n, threads, unit: '×', ...same(c / r.median), extra: n === 16 ? { target: '≥ 100' } : {} });
    }
  }
};

export default suite;
