// The model engine behind the panels of `arpix serve` and of the page `arpix export --web` writes:
// a model loaded from a checkpoint's bytes (checked as every reader checks it), then jobs on it —
// sampling and completion streamed row by row or pixel by pixel, the bits of every element, the
// receptive field of a pixel, the model's facts — answered with the messages of protocol.ts. It
// reads no file and imports no `node:` module: the server's worker thread and the page's Web Worker
// run this same code, so the two paths give the same numbers.

import { encode as encodePng } from 'fast-png';
import { ArpixError } from '../errors.js';
import { decodeCheckpoint, type DecodeOptions } from '../io/checkpoint.js';
import { modelFromCheckpoint } from '../models/checkpoint.js';
import type { AutoregressiveModel } from '../models/core/model.js';
import { samplePart } from '../models/sampling/index.js';
import { noGrad } from '../ops/index.js';
import { Tensor } from '../tensor/tensor.js';
import { modelInfo, pixelField } from '../train/info.js';
import type { RunConfig } from '../train/run-config.js';
import { validatedModel, type CheckpointPolicy, type UsableCheckpoint } from '../train/validate.js';
import { CODEC_MODES } from '../codec/format.js';
import { compressImage } from './compress.js';
import { MODEL_LIMITS, type BitsResult, type FieldResult, type InfoResult, type ModelFacts, type ModelJob, type WorkerMessage } from './protocol.js';

export interface LoadedModel {
  model: AutoregressiveModel;
  config: RunConfig;
  /**
   * Which weights the model holds: the moving average when the checkpoint has one, or when it is
   * the copy `arpix export --web` made of a run's average (extra.weights): what a compressed file
   * records, so that `arpix decompress` takes the same weights from the run.
   */
  weights: 'ema' | 'raw';
}

/** The model of a checkpoint that passed validateCheckpoint (EMA weights, as `arpix sample` uses), or the one the check built. */
export function loadedFrom(ckpt: UsableCheckpoint, model: AutoregressiveModel = modelFromCheckpoint(ckpt)): LoadedModel {
  const averaged = Object.keys(ckpt.ema).length > 0 || ckpt.meta.extra.weights === 'ema';
  return { model, config: ckpt.config, weights: averaged ? 'ema' : 'raw' };
}

/** A checkpoint's bytes (`file` names it in errors): decoded, its sums and config checked, its model built (once). */
export function loadModelBytes(bytes: Uint8Array, file: string, policy: CheckpointPolicy = {}, decode: DecodeOptions = {}): LoadedModel {
  const { ckpt, model } = validatedModel(decodeCheckpoint(bytes, file, decode), policy);
  return loadedFrom(ckpt, model);
}

export function facts(m: AutoregressiveModel): ModelFacts {
  const { kind, height, width, channels, numClasses } = m.config;
  return { kind, height, width, channels, levels: m.likelihood.levels, numClasses };
}

export function labelsFor(m: AutoregressiveModel, label: number | null, n: number): Tensor | null {
  if (m.config.numClasses === 0) {
    if (label !== null) throw new ArpixError(`label ${label} was given but this model is unconditional; leave the label empty`);
    return null;
  }
  if (label === null) throw new ArpixError(`this model is conditioned on ${m.config.numClasses} classes: choose a label in 0..${m.config.numClasses - 1}`);
  if (!Number.isInteger(label) || label < 0 || label >= m.config.numClasses) throw new ArpixError(`label ${label} is outside 0..${m.config.numClasses - 1}`);
  return new Tensor(new Int32Array(n).fill(label), [n]);
}

/** One image's values (H·W·C, in the model's levels) repeated `copies` times, as int32 [copies, H, W, C]. */
export function imageTensor(m: AutoregressiveModel, values: readonly number[], copies: number): Tensor {
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

function intIn(v: unknown, name: string, min: number, max: number): void {
  if (typeof v !== 'number' || !Number.isInteger(v) || v < min || v > max) throw new ArpixError(`${name} must be an integer in ${min}..${max}, got ${JSON.stringify(v)}`);
}

/**
 * The bounds the server's routes put on a request (MODEL_LIMITS), for a job that reaches the engine
 * without a server: the page's own inputs. Each problem is one line saying what to change.
 */
export function checkModelJob(f: ModelFacts, job: ModelJob): void {
  const pixels = f.height * f.width;
  if (job.op === 'sample') {
    intIn(job.n, job.complete ? 'completions' : 'images', 1, job.complete ? MODEL_LIMITS.completions : MODEL_LIMITS.samples);
    intIn(job.seed, 'seed', 0, MODEL_LIMITS.seed);
    const [lo, hi] = MODEL_LIMITS.temperature;
    if (typeof job.temperature !== 'number' || !(job.temperature >= lo && job.temperature <= hi)) throw new ArpixError(`temperature must be a number in ${lo}..${hi}, got ${JSON.stringify(job.temperature)}`);
    if (job.granularity === 'pixel' && pixels > MODEL_LIMITS.pixelStreamPixels) throw new ArpixError(`pixel-by-pixel streaming is for images up to ${MODEL_LIMITS.pixelStreamPixels} pixels; this model's have ${pixels}: stream row by row`);
    const elements = job.n * pixels * f.channels;
    if (elements > MODEL_LIMITS.sampleElements) throw new ArpixError(`${job.n} images of ${f.height}×${f.width}×${f.channels} are ${elements} values; the limit per request is ${MODEL_LIMITS.sampleElements}: ask for fewer`);
    if (job.part !== undefined) {
      const p = job.part;
      if (p === null || typeof p !== 'object' || !Number.isInteger(p.from) || !Number.isInteger(p.to) || p.from < 0 || p.to > job.n || p.from >= p.to) {
        throw new ArpixError(`the part of the batch must be images from…to−1 with 0 ≤ from < to ≤ ${job.n}, got ${JSON.stringify(p)}`);
      }
    }
    if (job.complete) {
      intIn(job.complete.keepRows, 'keep rows', 0, f.height);
      const mask = job.complete.mask;
      if (mask !== null && (mask.length !== pixels || mask.some((v) => v !== 0 && v !== 1))) throw new ArpixError(`the mask must hold H·W = ${pixels} values, each 0 or 1`);
    }
  } else if (job.op === 'field') {
    intIn(job.y, 'y', 0, f.height - 1);
    intIn(job.x, 'x', 0, f.width - 1);
  } else if (job.op === 'compress') {
    if (!CODEC_MODES.includes(job.mode)) throw new ArpixError(`the mode must be one of ${CODEC_MODES.join(', ')}, got ${JSON.stringify(job.mode)}`);
    if (typeof job.name !== 'string' || job.name === '' || job.name.length > 200) throw new ArpixError(`the file's name must be 1..200 characters, got ${JSON.stringify(job.name)}`);
  }
}

/** Thrown from the sampler's callbacks when the job is cancelled. */
export class Cancelled extends Error {}

/**
 * Runs a job on a loaded model. Sampling posts its rows (or pixels) as they come, transferring
 * their buffers; `cancelled` is asked after each and stops the job by throwing Cancelled. Returns
 * the job's result (null for sampling).
 */
export function runModelJob(loaded: LoadedModel, job: ModelJob, post: (m: WorkerMessage, transfer?: ArrayBuffer[]) => void, cancelled: () => boolean): unknown {
  const m = loaded.model;
  switch (job.op) {
    case 'sample': {
      const labels = labelsFor(m, job.label, job.n);
      const complete = job.complete ? { images: imageTensor(m, job.complete.values, job.n), keepRows: job.complete.keepRows, mask: job.complete.mask } : null;
      const send = (msg: WorkerMessage & { values: Int32Array }) => post(msg, [msg.values.buffer as ArrayBuffer]);
      const opts = {
        n: job.n, seed: job.seed, temperature: job.temperature, labels, complete,
        onRow: (y: number, values: Int32Array) => {
          if (cancelled()) throw new Cancelled();
          if (job.granularity === 'row') send({ type: 'row', y, values });
        },
        onPixel: job.granularity === 'pixel' ? (y: number, x: number, values: Int32Array) => {
          if (cancelled()) throw new Cancelled();
          send({ type: 'pixel', y, x, values });
        } : undefined,
      };
      // A part draws from the whole batch's random stream (samplePart slices labels and images).
      if (job.part) samplePart(m, opts, job.part);
      else m.sample(opts);
      return null;
    }
    case 'bits': {
      const images = imageTensor(m, job.values, 1);
      const lp = noGrad(() => m.elementLogProb(images, { labels: labelsFor(m, job.label, 1) }));
      const bits = Array.from(lp.data, (v) => -v / Math.LN2);
      const totalBits = bits.reduce((a, b) => a + b, 0);
      return { bits, totalBits, bitsPerDim: totalBits / m.dims, pngBytes: pngBytes(m, job.values) } satisfies BitsResult;
    }
    case 'field': {
      const f = pixelField(m, job.y, job.x);
      return { y: job.y, x: job.x, influence: Array.from(f.influence), pixels: f.pixels, of: f.of } satisfies FieldResult;
    }
    case 'compress': {
      const checkCancelled = () => { if (cancelled()) throw new Cancelled(); };
      return compressImage(m, loaded.config, loaded.weights, { image: imageTensor(m, job.values, 1), label: labelsFor(m, job.label, 1), mode: job.mode, name: job.name, checkCancelled });
    }
    case 'info': {
      const info = modelInfo(m);
      return {
        model: facts(m), config: m.config as unknown as Record<string, unknown>, parameters: info.parameters, flops: info.flops, maskedFlops: info.maskedFlops,
        maskedFormulationFlops: info.maskedFormulationFlops, convolutions: info.convs.length, receptiveField: info.receptiveField,
      } satisfies InfoResult;
    }
  }
}

/** What a failed job says: a known problem (422, its one line) or an internal error (500). */
export function jobError(e: unknown): { status: 422 | 500; message: string } {
  if (e instanceof ArpixError) return { status: 422, message: e.message };
  return { status: 500, message: `internal error: ${e instanceof Error ? e.message : String(e)}` };
}
