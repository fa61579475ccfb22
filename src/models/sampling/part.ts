// One part of a batch: images from…to−1 of `sample(model, opts)`, exactly — drawn from the whole
// batch's random stream — so that several workers, each sampling a part with its own copy of the
// model, give together the images one sampler gives (a page's threads do this, with no memory
// shared between them). A head draws a fixed number of uniforms per image for each pixel it
// samples, in image order; a part draws the whole batch's (its images' parameters in their
// places, zeros elsewhere) and keeps its own, so the stream advances exactly as the batch's does.
// The network runs for the part's images only: drawing for the others costs a few operations per
// value, the network's step thousands.

import { ArgumentError, ShapeError, fmtShape } from '../../errors.js';
import { Generator } from '../../tensor/random.js';
import { Tensor } from '../../tensor/tensor.js';
import type { SampleOptions, SamplingModel } from './options.js';
import { sample } from './sample.js';

export interface BatchPart {
  /** First image of the part. */
  from: number;
  /** One past its last image. */
  to: number;
}

/** Rows from…to−1 of a tensor whose first dimension is the batch (a copy). */
function rowsOf(t: Tensor, from: number, to: number, n: number, what: string): Tensor {
  if (t.shape[0] !== n) throw new ShapeError('samplePart', what, `must have ${n} rows (one per image of the batch), got ${fmtShape(t.shape)}`, [t.shape]);
  const size = t.shape.slice(1).reduce((a, b) => a * b, 1);
  return new Tensor(t.data.slice(from * size, to * size), [to - from, ...t.shape.slice(1)]);
}

function labelsOf(labels: SampleOptions['labels'], from: number, to: number, n: number): SampleOptions['labels'] {
  if (labels === undefined || labels === null || typeof labels === 'number') return labels;
  if (labels instanceof Tensor) return rowsOf(labels, from, to, n, 'labels');
  if (labels.length !== n) throw new ArgumentError('samplePart', 'labels', `must hold ${n} labels (one per image of the batch), got ${labels.length}`);
  return labels.slice(from, to);
}

/** Images `part.from`…`part.to − 1` of sample(model, opts): the same values, computed for those images only. */
export function samplePart(model: SamplingModel, opts: SampleOptions, part: BatchPart): Tensor {
  const { n } = opts;
  const { from, to } = part;
  if (!Number.isInteger(n) || n < 1) throw new ArgumentError('samplePart', 'n', `must be a positive integer, got ${String(n)}`);
  if (!Number.isInteger(from) || !Number.isInteger(to) || from < 0 || to > n || from >= to) {
    throw new ArgumentError('samplePart', 'part', `must be images from…to−1 with 0 ≤ from < to ≤ ${n}, got ${String(from)}…${String(to)}`);
  }
  if (opts.draw) throw new ArgumentError('samplePart', 'draw', 'cannot be combined with a part: a part draws from the batch\'s own stream');
  const head = model.likelihood;
  const rows = to - from;
  const c = head.channels;
  const p = head.paramsPerPixel;
  const temperature = opts.temperature ?? 1;
  const generator = new Generator(opts.seed ?? 0);
  const params = new Float32Array(n * p);
  const drawn = new Int32Array(n * c);
  const draw = (partParams: Float32Array, _rows: number, pass: number, out: Int32Array): void => {
    params.set(partParams.subarray(0, rows * p), from * p);
    head.sample(params, n, pass, generator, temperature, drawn);
    const first = head.perChannel ? pass : 0;
    const last = head.perChannel ? pass + 1 : c;
    for (let i = 0; i < rows; i++) {
      for (let ch = first; ch < last; ch++) out[i * c + ch] = drawn[(from + i) * c + ch]!;
    }
  };
  const complete = opts.complete ? { ...opts.complete, images: rowsOf(opts.complete.images, from, to, n, 'complete.images') } : opts.complete;
  const h = opts.h ? rowsOf(opts.h, from, to, n, 'h') : opts.h;
  return sample(model, { ...opts, n: rows, labels: labelsOf(opts.labels, from, to, n), h, complete, draw });
}
