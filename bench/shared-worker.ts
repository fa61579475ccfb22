// One arpix process of `npm run bench -- shared` (bench/suites/shared.ts): `train` runs training
// steps of a preset on random images as bench/suites/train.ts does (loss, backward releasing the
// graph, Adam), `sample` runs its cached sampler as `arpix sample` and the web app's workers do.
// It warms up, prints one JSON line, then answers each request line `{"seconds": S}` by working
// for S seconds and printing `{"pieces": [{work, t0, t1}, …]}`: the images of each piece of work
// and when it started and ended, in nanoseconds of CLOCK_MONOTONIC (process.hrtime), which every
// process on the machine shares — so the suite can tell which pieces ran while others worked.
//
//   node --import tsx bench/shared-worker.ts train|sample PRESET BATCH

import '../src/backends/node.js'; // Node's services and the native backend, registered before anything computes
import { createInterface } from 'node:readline';

const [role, preset = 'gated-pixelcnn-fmnist', batchArg = '32'] = process.argv.slice(2);
if (role !== 'train' && role !== 'sample') throw new Error(`shared-worker: role must be train or sample, got ${String(role)}`);
const batch = Number(batchArg);

const ax = await import('../src/index.js');
const { createModel } = await import('../src/models/index.js');
const { loadPreset } = await import('../src/models/presets.js');
const { Adam } = await import('../src/optim/index.js');
const { trainingSteps } = await import('./harness.js');
const { loadNativeBackend, openmpSettings } = await import('../src/backends/native/index.js');

const model = createModel(loadPreset(preset).model, { seed: 0 });
let unit: () => number; // does one piece of work, returns the images it made
if (role === 'train') {
  model.train();
  const opt = new Adam(model.parameters(), { lr: 1e-3 });
  const { height: h, width: w, channels: c } = model.config;
  const images = ax.randint(0, model.likelihood.levels, [batch, h, w, c], { generator: new ax.Generator(1) });
  unit = () => (trainingSteps(model, opt, images, 1), batch);
} else {
  let seed = 0;
  unit = () => (model.sample({ n: batch, seed: ++seed }), batch);
}
for (let i = 0; i < 2; i++) unit(); // primitives, caches and buffers

/** Whole pieces of work until `seconds` have passed: the last one starts before the deadline. */
function workFor(seconds: number): { work: number; t0: number; t1: number }[] {
  const now = () => Number(process.hrtime.bigint()); // < 2^53 ns: 104 days of uptime
  const end = now() + seconds * 1e9;
  const pieces = [];
  while (now() < end) {
    const t0 = now();
    const work = unit();
    pieces.push({ work, t0, t1: now() });
  }
  return pieces;
}

const onednn = loadNativeBackend()?.onednnVersion() ?? null;
process.stdout.write(JSON.stringify({ ready: true, role, preset, batch, backend: ax.backendName(), onednn, openmp: openmpSettings() }) + '\n');
for await (const line of createInterface({ input: process.stdin })) {
  const request = JSON.parse(line) as { seconds: number };
  process.stdout.write(JSON.stringify({ pieces: workFor(request.seconds) }) + '\n');
}
