// The arpix side of `npm run bench -- compress`: real files of a run's model on a data set's
// images (bits/dim with the header, against the model's own −log₂ p as `arpix eval` computes it
// with the parallel forward), every file decoded back and compared; and encode/decode speed against
// cached sampling of the same model and batch, in interleaved rounds.

import type { Reporter } from '../harness.js';
import { median, same, seconds } from '../harness.js';
import { backendName, setBackend } from '../../src/backends/registry.js';
import type { CodecMode } from '../../src/codec/format.js';

export interface ArpixCodecOptions {
  /** A run folder (or checkpoint). */
  run: string;
  /** A short name for the table, e.g. 'uva gated-pixelcnn-mnist'. */
  name: string;
  split: 'test' | 'validation';
  /** The first N images (all when undefined). */
  limit?: number;
  mode: CodecMode;
  block: number;
  threads: number;
}

/** A run's model (EMA weights when it has them), its data set's split and its pixel transform. */
async function openRun(run: string, split: 'test' | 'validation') {
  const { loadRunCheckpoint, loadEvalData, transformFor } = await import('../../src/train/index.js');
  const { modelFromCheckpoint } = await import('../../src/models/checkpoint.js');
  const ckpt = await loadRunCheckpoint(run, {});
  const model = modelFromCheckpoint(ckpt, { useEma: true });
  const config = ckpt.meta.config as unknown as { dataset: Parameters<typeof transformFor>[0]; train: { validationSize: number } };
  const ds = await loadEvalData(config.dataset, split, config.train.validationSize);
  return { ckpt, model, ds, transform: transformFor(config.dataset) };
}

/** Codes the images, decodes them, checks them; reports bits/dim and speeds. Returns the file's bits/dim. */
export async function arpixCodecFigures(reporter: Reporter, o: ArpixCodecOptions): Promise<{ bitsPerDim: number; modelBitsPerDim: number; encode: number; decode: number }> {
  const { evaluate } = await import('../../src/train/index.js');
  const { subset } = await import('../../src/data/index.js');
  const { Tensor } = await import('../../src/tensor/tensor.js');
  const { compressValues, decompressBytes, toValues } = await import('../../src/codec/compress.js');
  const opened = await openRun(o.run, o.split);
  const { ckpt, model, transform } = opened;
  let ds = opened.ds;
  if (o.limit !== undefined && o.limit < ds.shape[0]) ds = subset(ds, Array.from({ length: o.limit }, (_, i) => i));
  const [n, h, w, c] = ds.shape;
  const dims = n * h * w * c;
  const values = new Tensor(toValues(ds.images, transform), [n, h, w, c]);
  const labels = model.config.numClasses > 0 ? ds.labels : null;
  const weights = Object.keys(ckpt.ema).length > 0 ? 'ema' : 'raw';
  let file!: ReturnType<typeof compressValues>;
  const encodeSeconds = seconds(() => { file = compressValues(model, values, { mode: o.mode, block: o.block, weights, transform, labels }); });
  let back!: ReturnType<typeof decompressBytes>;
  const decodeSeconds = seconds(() => { back = decompressBytes(file.bytes, 'bench', model); });
  const a = back.values.data;
  for (let i = 0; i < a.length; i++) if (a[i] !== values.data[i]) throw new Error(`${o.name}: decoded value ${i} differs: the codec is broken`);
  const e = await evaluate(model, ds, { batchSize: 100, transform });
  const bitsPerDim = (file.bytes.length * 8) / dims;
  const extra = { images: n, bytes: file.bytes.length, mode: o.mode };
  const row = (kase: string, unit: string, v: number, more: Record<string, string | number> = {}) =>
    reporter.add({ suite: 'compress', case: `${o.name}: ${kase}`, system: 'arpix', batch: o.block, threads: o.threads, unit, ...same(v), extra: { ...extra, ...more } });
  row('file bits/dim (header included)', 'bits/dim', bitsPerDim);
  row("model's −log₂ p (arpix eval)", 'bits/dim', e.bitsPerDim);
  row('file / model − 1', '%', 100 * (bitsPerDim / e.bitsPerDim - 1), { target: '< 0.5 %' });
  row('encode', 'images/s', n / encodeSeconds);
  row('decode', 'images/s', n / decodeSeconds);
  return { bitsPerDim, modelBitsPerDim: e.bitsPerDim, encode: n / encodeSeconds, decode: n / decodeSeconds };
}

/**
 * Decoding (and encoding) against cached sampling of the same model and batch: `rounds`
 * interleaved rounds of sample B / encode B / decode B images (one block), medians after a warm-up.
 */
export async function codecVsSampling(reporter: Reporter, o: { run: string; name: string; batches: number[]; rounds: number; threads: number; mode: CodecMode }): Promise<void> {
  const { Tensor } = await import('../../src/tensor/tensor.js');
  const { compressValues, decompressBytes, toValues } = await import('../../src/codec/compress.js');
  const { model, ds, transform } = await openRun(o.run, 'test');
  const [, h, w, c] = ds.shape;
  for (const b of o.batches) {
    const values = new Tensor(toValues(ds.images.subarray(0, b * h * w * c), transform), [b, h, w, c]);
    const labels = model.config.numClasses > 0 ? ds.labels!.subarray(0, b) : null;
    const label = labels ? Array.from(labels) : null;
    const opts = { mode: o.mode, block: b, weights: 'ema' as const, transform, labels };
    let bytes = compressValues(model, values, opts).bytes; // warm-up
    decompressBytes(bytes, 'bench', model);
    model.sample({ n: b, seed: 0, labels: label });
    // A wasm file's probabilities come from the wasm backend: its sampling is timed beside the native one.
    const wasmSampling = o.mode === 'wasm';
    const onWasm = <T>(fn: () => T): T => {
      const before = backendName();
      setBackend('wasm');
      try {
        return fn();
      } finally {
        setBackend(before);
      }
    };
    if (wasmSampling) onWasm(() => model.sample({ n: b, seed: 0, labels: label }));
    const sampleRates: number[] = [];
    const wasmSampleRates: number[] = [];
    const encodeRates: number[] = [];
    const decodeRates: number[] = [];
    for (let r = 0; r < o.rounds; r++) {
      sampleRates.push(b / seconds(() => model.sample({ n: b, seed: r + 1, labels: label })));
      if (wasmSampling) wasmSampleRates.push(b / seconds(() => onWasm(() => model.sample({ n: b, seed: r + 1, labels: label }))));
      encodeRates.push(b / seconds(() => { bytes = compressValues(model, values, opts).bytes; }));
      decodeRates.push(b / seconds(() => decompressBytes(bytes, 'bench', model)));
    }
    const add = (kase: string, rates: number[], system: string) => {
      const s = [...rates].sort((x, y) => x - y);
      reporter.add({ suite: 'compress', case: `${o.name}: ${kase}`, system, batch: b, threads: o.threads, unit: 'images/s', median: median(rates), min: s[0]!, max: s.at(-1)! });
    };
    const codecSystem = { native: 'native', portable: 'ts', wasm: 'wasm' }[o.mode];
    add('cached sampling', sampleRates, backendName());
    if (wasmSampling) {
      add('cached sampling', wasmSampleRates, 'wasm');
      reporter.add({ suite: 'compress', case: `${o.name}: wasm decode / wasm cached sampling`, system: 'ratio', batch: b, threads: o.threads, unit: '×', ...same(median(decodeRates) / median(wasmSampleRates)) });
    }
    add(`encode (${o.mode})`, encodeRates, codecSystem);
    add(`decode (${o.mode})`, decodeRates, codecSystem);
    reporter.add({ suite: 'compress', case: `${o.name}: decode / cached sampling`, system: 'ratio', batch: b, threads: o.threads, unit: '×', ...same(median(decodeRates) / median(sampleRates)), extra: { target: '≥ 0.9' } });
  }
}
