// The model worker: loads checkpoints (kept while their file is unchanged) and runs one job at a
// time off the server's event loop — the model engine's jobs (sampling streamed row by row or
// pixel by pixel, per-element bits, receptive fields, model facts, one image coded into a file and
// decoded back: src/web/engine.ts, which the page's Web Worker runs too), and test images.
// Cancelling a job sets a shared cell the sampler reads after every row or pixel.

import '../backends/node.js'; // Node's services and the native backend, registered before anything computes
import { statSync } from 'node:fs';
import { parentPort, workerData } from 'node:worker_threads';
import type { Dataset } from '../data/index.js';
import { ArpixError } from '../errors.js';
import { fixedLookupTable } from '../data/transforms.js';
import { loadCheckpoint } from '../io/disk.js';
import { checkpointPathOf, loadEvalData, transformFor } from '../train/index.js';
import { validatedModel } from '../train/validate.js';
import { Cancelled, facts, loadedFrom, runModelJob, type LoadedModel } from '../web/engine.js';
import type { Job, TestImageResult, WorkerMessage } from './protocol.js';

interface Loaded extends LoadedModel {
  mtimeMs: number;
}

const models = new Map<string, Loaded>();
const datasets = new Map<string, Dataset>();
const KEEP_MODELS = 4;

/** The model of a checkpoint (EMA weights, as `arpix sample` uses), reloaded when the file changes. */
async function model(file: string): Promise<{ entry: Loaded; seconds: number }> {
  const mtimeMs = statSync(file).mtimeMs;
  const have = models.get(file);
  if (have && have.mtimeMs === mtimeMs) return { entry: have, seconds: 0 };
  const t0 = performance.now();
  // The check every command runs on a checkpoint (validateCheckpoint), keeping the model it built.
  const { ckpt, model: built } = validatedModel(await loadCheckpoint(checkpointPathOf(file)), { allowUnverified: (workerData as { allowUnverified?: boolean } | null)?.allowUnverified });
  const entry: Loaded = { mtimeMs, ...loadedFrom(ckpt, built) };
  models.delete(file);
  models.set(file, entry);
  while (models.size > KEEP_MODELS) models.delete(models.keys().next().value!);
  return { entry, seconds: (performance.now() - t0) / 1000 };
}

async function run(job: Job, post: (m: WorkerMessage, transfer?: ArrayBuffer[]) => void, cancelled: () => boolean): Promise<void> {
  const { entry, seconds } = await model(job.checkpoint);
  const m = entry.model;
  post({ type: 'start', model: facts(m), loadSeconds: seconds });
  const t0 = performance.now();
  let result: unknown = null;
  switch (job.op) {
    case 'sample':
    case 'bits':
    case 'field':
    case 'info':
    case 'compress': {
      const { checkpoint: _file, ...modelJob } = job;
      result = runModelJob(entry, modelJob, post, cancelled);
      break;
    }
    case 'testImage': {
      const key = JSON.stringify(entry.config.dataset);
      let ds = datasets.get(key);
      if (!ds) {
        ds = await loadEvalData(entry.config.dataset, 'test', entry.config.train.validationSize);
        datasets.set(key, ds);
      }
      const count = ds.shape[0];
      if (job.index >= count) throw new ArpixError(`test image ${job.index} does not exist: the test set has ${count} images (0..${count - 1})`);
      const [, h, w, c] = ds.shape;
      if (h !== m.config.height || w !== m.config.width || c !== m.config.channels) throw new ArpixError(`the run's test images are ${h}×${w}×${c} but its model takes ${m.config.height}×${m.config.width}×${m.config.channels}`);
      const d = m.dims;
      const lut = fixedLookupTable(transformFor(entry.config.dataset));
      const raw = ds.images.subarray(job.index * d, (job.index + 1) * d);
      const values = Array.from(raw, (v) => lut[v]!);
      result = { index: job.index, count, values, label: ds.labels ? ds.labels[job.index]! : null, dataset: entry.config.dataset.name } satisfies TestImageResult;
      break;
    }
  }
  post({ type: 'done', result, seconds: (performance.now() - t0) / 1000 });
}

if (parentPort && (workerData as { role?: string } | null)?.role === 'worker') {
  const port = parentPort;
  const cancel = (workerData as { cancel: Int32Array }).cancel;
  port.on('message', ({ id, job }: { id: number; job: Job }) => {
    const post = (msg: WorkerMessage, transfer?: ArrayBuffer[]) => port.postMessage(msg, transfer);
    run(job, post, () => Atomics.load(cancel, 0) === id).catch((e: unknown) => {
      if (e instanceof Cancelled) return post({ type: 'cancelled' });
      const known = e instanceof ArpixError;
      const missing = (e as NodeJS.ErrnoException).code === 'ENOENT';
      post({ type: 'error', status: known ? 422 : missing ? 404 : 500, message: e instanceof Error ? e.message : String(e) });
    });
  });
}
