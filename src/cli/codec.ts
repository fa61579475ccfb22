// `arpix compress RUN (--images PATH | --split test) --out FILE` and `arpix decompress FILE --run
// RUN --out DIR|FILE.npy`: the model as a lossless codec (src/codec). Nothing is written unless the
// whole input was coded, or decoded and checked against the file's digest of its values.

import { statSync } from 'node:fs';
import { mkdir } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { InvalidArgumentError, Option, type Command } from 'commander';
import { compressValues, decompressBytes, firstLossyPixel, fromValues, paletteColours, toValues, type CodecMode } from '../codec/compress.js';
import { loadDataset, subset } from '../data/index.js';
import { encodeNpyUint8 } from '../io/images.js';
import { encode as encodePng } from 'fast-png';
import { modelFromCheckpoint } from '../models/checkpoint.js';
import { checkModelMemory } from '../models/index.js';
import { Tensor } from '../tensor/tensor.js';
import { loadEvalData, transformFor, type RunConfig } from '../train/index.js';
import { checkOutputFolder, readRegularFile } from '../io/files.js';
import { ALLOW_UNVERIFIED, CliError, EXIT, out, readCheckpoint, refuseExisting, writeOut } from './commands.js';
import { readImages } from './inputs.js';
import { formatDuration } from './progress.js';

/** Compressed files are read whole; beyond this they are not files arpix wrote for one data set. */
const MAX_COMPRESSED = 4 * 2 ** 30;

function intArg(name: string, min: number, max = Number.MAX_SAFE_INTEGER) {
  return (v: string): number => {
    const n = v.trim() === '' ? NaN : Number(v);
    if (!Number.isInteger(n) || n < min || n > max) throw new InvalidArgumentError(`${name} must be an integer in ${min}..${max}`);
    return n;
  };
}

/** What the summary line says of a file's mode: where it decodes. */
const MODE_NOTES: Record<CodecMode, string> = {
  native: ' (decodes exactly on a machine with the same oneDNN ISA and arpix version; --wasm or --portable decode anywhere)',
  wasm: ' (decodes exactly wherever the WebAssembly backend runs, on any machine, with the same arpix version)',
  portable: '',
};

interface CompressArgs {
  run: string;
  images?: string;
  dataset?: string;
  split?: 'test' | 'validation';
  limit?: number;
  label?: number;
  out: string;
  portable: boolean;
  wasm: boolean;
  raw: boolean;
  block: number;
  quantize: boolean;
  force: boolean;
  json: boolean;
  allowUnverified: boolean;
}

async function compressCommand(a: CompressArgs): Promise<number> {
  if ((a.images === undefined) === (a.split === undefined && a.dataset === undefined)) throw new CliError('give --images PATH, or --split test|validation for the run\'s own data set (or --dataset NAME for another)', EXIT.usage);
  if (a.dataset !== undefined && a.split === 'validation') throw new CliError('--split validation is the run\'s own held-out images; with --dataset NAME give --split test', EXIT.usage);
  checkOutputFolder(dirname(a.out));
  refuseExisting([a.out], a.force);
  const ckpt = await readCheckpoint(a.run, a);
  const config = ckpt.meta.config as unknown as RunConfig;
  checkModelMemory(config.model, 'sample', a.block, `coding blocks of --block ${a.block} images`);
  const model = modelFromCheckpoint(ckpt, { useEma: !a.raw });
  const { height, width, channels, numClasses } = model.config;
  const transform = transformFor(config.dataset);
  let pixels: Uint8Array;
  let n: number;
  let labels: Int32Array | null = null;
  let what: string;
  if (a.images !== undefined) {
    const raw = readImages(a.images, { height, width, channels }, { kind: 'none' }, a.limit ?? Infinity);
    n = raw.shape[0]!;
    pixels = Uint8Array.from(raw.data as Int32Array);
    if (numClasses > 0) {
      if (a.label === undefined) throw new CliError(`the model is conditioned on ${numClasses} classes: give --label L (0..${numClasses - 1}) for the images, or use --split for the data set's own labels`, EXIT.usage);
      if (a.label >= numClasses) throw new CliError(`--label must be below the model's ${numClasses} classes, got ${a.label}`, EXIT.usage);
      labels = new Int32Array(n).fill(a.label);
    }
    what = a.images;
  } else {
    let ds = a.dataset !== undefined ? await loadDataset(a.dataset, { split: 'test' }) : await loadEvalData(config.dataset, a.split!, config.train.validationSize);
    if (ds.shape[1] !== height || ds.shape[2] !== width || ds.shape[3] !== channels) {
      throw new CliError(`${ds.name} holds ${ds.shape[1]}×${ds.shape[2]}×${ds.shape[3]} images, but the model takes ${height}×${width}×${channels}`, EXIT.usage);
    }
    if (a.limit !== undefined && a.limit < ds.shape[0]) ds = subset(ds, Array.from({ length: a.limit }, (_, i) => i));
    n = ds.shape[0];
    pixels = ds.images;
    if (numClasses > 0) {
      if (!ds.labels) throw new CliError(`${ds.name} has no labels, and the model is class-conditional; give --images with --label`, EXIT.usage);
      labels = ds.labels;
    }
    what = `${ds.name} ${a.split ?? 'test'} (${n} images)`;
  }
  if (a.label !== undefined && numClasses === 0) throw new CliError('--label is for class-conditional models; this one is unconditional', EXIT.usage);
  const lossy = firstLossyPixel(pixels, transform);
  if (lossy >= 0 && !a.quantize) {
    const dims = height * width * channels;
    throw new CliError(`image ${Math.floor(lossy / dims)} holds the value ${pixels[lossy]} (pixel ${Math.floor((lossy % dims) / channels)}), which the model's data transform (${transform.kind}${transform.kind === 'quantise' ? ` to ${transform.bits} bits` : ''}) does not keep; the file would not decode to these images — pass --quantize to code the transformed images`, EXIT.error);
  }
  let values = new Tensor(toValues(pixels, transform), [n, height, width, channels]);
  const palette = paletteColours(model, values);
  if (palette && palette.firstOff >= 0) {
    const pixelsPerImage = height * width;
    if (!a.quantize) throw new CliError(`image ${Math.floor(palette.firstOff / pixelsPerImage)} holds colours outside the model's ${(config.model.likelihood as { k?: number }).k}-colour palette (the first at pixel ${palette.firstOff % pixelsPerImage}); a palette model codes its colours only — pass --quantize to code each pixel's nearest palette colour`, EXIT.error);
    values = palette.nearest;
  }
  const mode: CodecMode = a.portable ? 'portable' : a.wasm ? 'wasm' : 'native';
  const started = performance.now();
  const weights = a.raw || Object.keys(ckpt.ema).length === 0 ? 'raw' : 'ema';
  const { bytes, idealBits } = compressValues(model, values, {
    mode, block: a.block, weights, transform, labels,
    onBlock: (done, total) => process.stderr.isTTY && process.stderr.write(`\rcompressing: ${done}/${total} images`),
  });
  if (process.stderr.isTTY) process.stderr.write('\n');
  const seconds = (performance.now() - started) / 1000;
  await writeOut(a.out, bytes, a.force);
  const dims = n * height * width * channels;
  const report = {
    images: n, file: a.out, bytes: bytes.length, bitsPerDim: (bytes.length * 8) / dims, modelBitsPerDim: idealBits / dims,
    overhead: (bytes.length * 8) / idealBits - 1, seconds, imagesPerSec: n / seconds, mode, block: a.block, weights,
  };
  if (a.json) out(JSON.stringify(report));
  else {
    out(`${what}: ${bytes.length} bytes, ${report.bitsPerDim.toFixed(4)} bits/dim in the file (the model's −log₂ p: ${report.modelBitsPerDim.toFixed(4)}, ${(report.overhead * 100).toFixed(2)} % more with the header) in ${formatDuration(seconds)}, ${report.imagesPerSec.toFixed(1)} images/s`);
    out(`${a.out}: ${mode} mode${MODE_NOTES[mode]}`);
  }
  return EXIT.ok;
}

interface DecompressArgs {
  file: string;
  run: string;
  out: string;
  raw: boolean;
  force: boolean;
  allowUnverified: boolean;
}

async function decompressCommand(a: DecompressArgs): Promise<number> {
  const npy = a.out.endsWith('.npy');
  // Before hours of decoding: an output place that can hold files (not /proc, not under a file).
  checkOutputFolder(npy ? dirname(a.out) : a.out);
  const bytes = readRegularFile(a.file, MAX_COMPRESSED, 'a file of arpix compress');
  const ckpt = await readCheckpoint(a.run, a);
  const model = modelFromCheckpoint(ckpt, { useEma: !a.raw });
  const started = performance.now();
  const { values, labels, header } = decompressBytes(bytes, a.file, model, (done, total) => process.stderr.isTTY && process.stderr.write(`\rdecompressing: ${done}/${total} images`));
  if (process.stderr.isTTY) process.stderr.write('\n');
  const seconds = (performance.now() - started) / 1000;
  const pixels = fromValues(values.data as Int32Array, header.images.transform);
  const [n, h, w, c] = values.shape as [number, number, number, number];
  const files: [string, Uint8Array | string][] = [];
  if (npy) {
    files.push([a.out, encodeNpyUint8(new Tensor(Int32Array.from(pixels), [n, h, w, c]))]);
    if (labels) files.push([a.out.replace(/\.npy$/, '.labels.json'), JSON.stringify(Array.from(labels)) + '\n']);
  } else {
    const digits = String(n - 1).length;
    for (let i = 0; i < n; i++) {
      const data = pixels.subarray(i * h * w * c, (i + 1) * h * w * c);
      files.push([join(a.out, `${String(i).padStart(Math.max(5, digits), '0')}.png`), encodePng({ width: w, height: h, data, channels: c, depth: 8 })]);
    }
    if (labels) files.push([join(a.out, 'labels.json'), JSON.stringify(Array.from(labels)) + '\n']);
  }
  refuseExisting(files.map(([p]) => p), a.force);
  if (!npy) await mkdir(a.out, { recursive: true });
  for (const [p, data] of files) await writeOut(p, data, a.force);
  out(`${n} images decoded exactly (their digest matches the file's) in ${formatDuration(seconds)}, ${(n / seconds).toFixed(1)} images/s: ${a.out}`);
  return EXIT.ok;
}

export function registerCodecCommands(program: Command, setExit: (code: number) => void): void {
  program.command('compress')
    .description('code images losslessly with a trained model: a file of about the model\'s −log₂ p bits')
    .argument('<run>', 'a run folder or checkpoint')
    .option('--images <path>', 'a PNG/JPEG image, a .npy of uint8 images, an IDX file, or a folder of images')
    .addOption(new Option('--split <split>', "the run's own data set: its test or validation images").choices(['test', 'validation']))
    .option('--dataset <name>', "another data set arpix knows (arpix data list), of the model's image shape: its test images")
    .option('--limit <n>', 'the first N images only', intArg('--limit', 1))
    .option('--label <l>', 'the class label of --images for a class-conditional model', intArg('--label', 0))
    .requiredOption('--out <file>', 'the compressed file')
    .addOption(new Option('--portable', 'compute the probabilities with the TypeScript backend, so the file decodes on any machine (slower)').default(false).conflicts('wasm'))
    .option('--wasm', 'compute the probabilities with the WebAssembly backend, so the file decodes wherever WebAssembly runs (Node, any browser) with the same arpix version', false)
    .option('--raw', 'use the trained weights rather than their moving average (EMA)', false)
    .option('--block <n>', 'images per model call (the file records it)', intArg('--block', 1, 4096), 16)
    .option('--quantize', "code the images as the model sees them when it cannot keep them exactly: its data transform (fewer bits, binarised), or a palette's nearest colours", false)
    .option('--force', 'replace an existing --out file', false)
    .option('--json', 'print one JSON object', false)
    .option('--allow-unverified', ALLOW_UNVERIFIED, false)
    .action(async (run: string, o: Omit<CompressArgs, 'run'>) => {
      setExit(await compressCommand({ run, ...o }));
    });

  program.command('decompress')
    .description('decode a file of arpix compress with the run it was written with: PNGs in a folder, or one .npy')
    .argument('<file>', 'a file arpix compress wrote')
    .requiredOption('--run <run>', 'the run folder or checkpoint it was compressed with')
    .requiredOption('--out <path>', 'a folder for PNG images, or FILE.npy')
    .option('--raw', 'the file was written with --raw', false)
    .option('--force', 'replace existing output files', false)
    .option('--allow-unverified', ALLOW_UNVERIFIED, false)
    .action(async (file: string, o: Omit<DecompressArgs, 'file'>) => {
      if (statSync(file, { throwIfNoEntry: false })?.isDirectory()) throw new CliError(`${file} is a folder; give the file arpix compress wrote`, EXIT.usage);
      setExit(await decompressCommand({ file, ...o }));
    });
}
