// The model worker: loads checkpoints (kept while their file is unchanged) and runs one job at a
// time — sampling streamed row by row or pixel by pixel, per-element bits, receptive fields,
// model facts, test images, one image coded into a file and decoded back — off the server's event
// loop. Cancelling a job terminates the worker.

import { statSync } from 'node:fs';
import { parentPort, workerData } from 'node:worker_threads';
import { encode as encodePng } from 'fast-png';
import type { Dataset } from '../data/index.js';
import { ArpixError } from '../errors.js';
import { modelFromCheckpoint } from '../models/checkpoint.js';
import type { AutoregressiveModel } from '../models/core/model.js';
import { noGrad } from '../ops/index.js';
import { Tensor } from '../tensor/tensor.js';
import { fixedLookupTable } from '../data/transforms.js';
import { loadEvalData, loadRunCheckpoint, modelInfo, pixelField, transformFor, type RunConfig } from '../train/index.js';
import { compressImage } from './compress-job.js';
import type { BitsResult, FieldResult, InfoResult, Job, ModelFacts, TestImageResult, WorkerMessage } from './protocol.js';

interface Loaded {
  mtimeMs: number;
  model: AutoregressiveModel;
  config: RunConfig;
  /** Which weights the model holds: the moving average when the checkpoint has one. */
  weights: 'ema' | 'raw';
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
  // The check every command runs on a checkpoint (validateCheckpoint), then its model.
  const ckpt = await loadRunCheckpoint(file, { allowUnverified: (workerData as { allowUnverified?: boolean } | null)?.allowUnverified });
  const entry: Loaded = { mtimeMs, model: modelFromCheckpoint(ckpt), config: ckpt.config, weights: Object.keys(ckpt.ema).length > 0 ? 'ema' : 'raw' };
  models.delete(file);
  models.set(file, entry);
  while (models.size > KEEP_MODELS) models.delete(models.keys().next().value!);
  return { entry, seconds: (performance.now() - t0) / 1000 };
}

export function facts(m: AutoregressiveModel): ModelFacts {
  const { kind, height, width, channels, numClasses } = m.config;
  return { kind, height, width, channels, levels: m.likelihood.levels, numClasses };
}

function labelsFor(m: AutoregressiveModel, label: number | null, n: number): Tensor | null {
  if (m.config.numClasses === 0) {
    if (label !== null) throw new ArpixError(`label ${label} was given but this model is unconditional; leave the label empty`);
    return null;
  }
  if (label === null) throw new ArpixError(`this model is conditioned on ${m.config.numClasses} classes: choose a label in 0..${m.config.numClasses - 1}`);
  if (label >= m.config.numClasses) throw new ArpixError(`label ${label} is outside 0..${m.config.numClasses - 1}`);
  return new Tensor(new Int32Array(n).fill(label), [n]);
}

function imageTensor(m: AutoregressiveModel, values: readonly number[], copies: number): Tensor {
  const d = m.dims;
  const { height, width, channels } = m.config;
  const levels = m.likelihood.levels;
  if (values.length !== d) throw new ArpixError(`the image has ${values.length} values but this model takes ${height}×${width}×${channels} = ${d}`);
  const out = new Int32Array(copies * d);
  for (let i = 0; i < d; i++) {
    const v = values[i]!;
    if (!Number.isInteger(v) || v < 0 || v >= levels) throw new ArpixError(`image value ${v} at ${i} is outside this model's levels 0..${levels - 1}`);
    for (let k = 0; k < copies; k++) out[k * d + i] = v;
  }
  return new Tensor(out, [copies, height, width, channels]);
}

function pngBytes(m: AutoregressiveModel, values: readonly number[]): number {
  const { height, width, channels } = m.config;
  const scale = 255 / (m.likelihood.levels - 1);
  const data = Uint8Array.from(values, (v) => Math.round(v * scale));
  return encodePng({ width, height, data, channels, depth: 8 }).length;
}

/** Thrown from the sampler's callbacks when the server cancels the job. */
class Cancelled extends Error {}

async function run(job: Job, post: (m: WorkerMessage, transfer?: ArrayBuffer[]) => void, cancelled: () => boolean): Promise<void> {
  const { entry, seconds } = await model(job.checkpoint);
  const m = entry.model;
  post({ type: 'start', model: facts(m), loadSeconds: seconds });
  const t0 = performance.now();
  let result: unknown = null;
  switch (job.op) {
    case 'sample': {
      const labels = labelsFor(m, job.label, job.n);
      const complete = job.complete ? { images: imageTensor(m, job.complete.values, job.n), keepRows: job.complete.keepRows, mask: job.complete.mask } : null;
      const send = (msg: WorkerMessage & { values: Int32Array }) => post(msg, [msg.values.buffer as ArrayBuffer]);
      m.sample({
        n: job.n, seed: job.seed, temperature: job.temperature, labels, complete,
        onRow: (y, values) => {
          if (cancelled()) throw new Cancelled();
          if (job.granularity === 'row') send({ type: 'row', y, values });
        },
        onPixel: job.granularity === 'pixel' ? (y, x, values) => {
          if (cancelled()) throw new Cancelled();
          send({ type: 'pixel', y, x, values });
        } : undefined,
      });
      break;
    }
    case 'bits': {
      const images = imageTensor(m, job.values, 1);
      const lp = noGrad(() => m.elementLogProb(images, { labels: labelsFor(m, job.label, 1) }));
      const bits = Array.from(lp.data, (v) => -v / Math.LN2);
      const totalBits = bits.reduce((a, b) => a + b, 0);
      result = { bits, totalBits, bitsPerDim: totalBits / m.dims, pngBytes: pngBytes(m, job.values) } satisfies BitsResult;
      break;
    }
    case 'compress': {
      const check = () => { if (cancelled()) throw new Cancelled(); };
      result = compressImage(m, entry.config, entry.weights, { image: imageTensor(m, job.values, 1), label: labelsFor(m, job.label, 1), mode: job.mode, name: job.name, checkCancelled: check });
      break;
    }
    case 'field': {
      const f = pixelField(m, job.y, job.x);
      result = { y: job.y, x: job.x, influence: Array.from(f.influence), pixels: f.pixels, of: f.of } satisfies FieldResult;
      break;
    }
    case 'info': {
      const info = modelInfo(m);
      result = {
        model: facts(m), config: m.config as unknown as Record<string, unknown>, parameters: info.parameters, flops: info.flops, maskedFlops: info.maskedFlops,
        maskedFormulationFlops: info.maskedFormulationFlops, convolutions: info.convs.length, receptiveField: info.receptiveField,
      } satisfies InfoResult;
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
