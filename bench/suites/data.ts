// `npm run bench -- data`: images/s for loading Fashion-MNIST from its .gz files, for batching it
// (plain, quantised, dynamically binarised), for batching 32×32 RGB, and for decoding a folder of
// 2000 generated 28×28 PNGs (worker pool and calling thread). The data pipeline must outrun the
// fastest model preset's training by 20× or more, so these figures should sit far above it.

import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { encode as encodePng } from 'fast-png';
import { rate, threads, time, type Suite } from '../harness.js';
import { BatchLoader, loadDataset, loadImageFolder, locateDataset, makeDataset, type Dataset, type PixelTransform } from '../../src/data/index.js';

const BATCH = 32;
const FOLDER_IMAGES = 2000;

/** Images/s of pulling `steps` batches through a loader (each run continues where the last stopped). */
async function batching(ds: Dataset, transform: PixelTransform, steps: number) {
  const loader = new BatchLoader(ds, { batchSize: BATCH, seed: 0, transform, prefetch: 0 });
  const t = await time(() => { for (let i = 0; i < steps; i++) loader.next(); }, { warmup: 1, runs: 5 });
  return rate(t, steps * BATCH);
}

function writePngFolder(dir: string, n: number): void {
  for (let i = 0; i < n; i++) {
    const cls = path.join(dir, `class${i % 10}`);
    fs.mkdirSync(cls, { recursive: true });
    const data = new Uint8Array(28 * 28);
    for (let p = 0; p < data.length; p++) data[p] = (p * 7 + i * 13) % 256 > 128 ? (p + i) % 256 : 0;
    fs.writeFileSync(path.join(cls, `${i}.png`), encodePng({ width: 28, height: 28, data, channels: 1 }));
  }
}

const suite: Suite = async ({ reporter }) => {
  const add = (name: string, r: { median: number; min: number; max: number }, extra?: Record<string, string | number>) =>
    reporter.add({ suite: 'data', case: name, system: 'ts', batch: BATCH, threads: threads(), unit: 'images/s', ...r, extra });

  let fashion: Dataset | null = null;
  if (locateDataset('fashion-mnist')) {
    const t = await time(async () => { fashion = await loadDataset('fashion-mnist', { split: 'train' }); }, { warmup: 1, runs: 5 });
    add('fashion-mnist train: load .gz (60000)', rate(t, 60000));
  } else {
    reporter.note('fashion-mnist not found (apt-get install dataset-fashion-mnist); its cases are skipped');
  }
  if (fashion) {
    const ds: Dataset = fashion;
    const steps = Math.floor(ds.shape[0] / BATCH); // one epoch per run
    add('fashion-mnist 28×28×1: batches', await batching(ds, { kind: 'none' }, steps));
    add('fashion-mnist 28×28×1: batches, quantised 3 bits', await batching(ds, { kind: 'quantise', bits: 3 }, steps));
    add('fashion-mnist 28×28×1: batches, dynamic binarisation', await batching(ds, { kind: 'dynamic-binarise' }, steps));
  }

  const n = 10000;
  const rgb = makeDataset({
    name: 'rgb', split: 'train', shape: [n, 32, 32, 3], source: 'memory',
    images: Uint8Array.from({ length: n * 3072 }, (_, i) => (i * 2654435761) >>> 24),
    labels: Int32Array.from({ length: n }, (_, i) => i % 10),
  });
  add('32×32×3 in memory: batches, quantised 5 bits', await batching(rgb, { kind: 'quantise', bits: 5 }, Math.floor(n / BATCH)));

  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'arpix-bench-png-'));
  try {
    writePngFolder(dir, FOLDER_IMAGES);
    // The first load also starts the decoder workers (under tsx each compiles the TypeScript it runs).
    const t0 = process.hrtime.bigint();
    await loadImageFolder(dir, { channels: 1 });
    const cold = FOLDER_IMAGES / (Number(process.hrtime.bigint() - t0) / 1e9);
    add(`png folder ${FOLDER_IMAGES}× 28×28: decode, worker pool, first load`, { median: cold, min: cold, max: cold }, { workers: Math.min(4, os.availableParallelism()) });
    const pool = await time(() => loadImageFolder(dir, { channels: 1 }), { warmup: 1, runs: 5 });
    add(`png folder ${FOLDER_IMAGES}× 28×28: decode, worker pool`, rate(pool, FOLDER_IMAGES), { workers: Math.min(4, os.availableParallelism()) });
    const inThread = await time(() => loadImageFolder(dir, { channels: 1, workers: 0 }), { warmup: 1, runs: 5 });
    add(`png folder ${FOLDER_IMAGES}× 28×28: decode, calling thread`, rate(inThread, FOLDER_IMAGES), { workers: 0 });
    const folderDs = await loadImageFolder(dir, { channels: 1 });
    add(`png folder ${FOLDER_IMAGES}× 28×28: batches after decode`, await batching(folderDs, { kind: 'none' }, Math.floor(FOLDER_IMAGES / BATCH)));
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
};

export default suite;
