// safetensors: round trips, metadata, dtypes, every validation error, the atomic write, and the
// PyTorch interop fixtures (made by scripts/fixtures/; no Python is needed to run these tests).

import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { ArgumentError, FormatError } from '../errors.js';
import { noGrad, permute, randn, tensor, zeros } from '../ops/index.js';
import { Generator } from '../tensor/random.js';
import { Tensor } from '../tensor/tensor.js';
import { writeFileAtomic, writeFileAtomicSync } from './atomic.js';
import { InteropNet } from './fixtures/interop-model.js';
import { decodeSafetensors, encodeSafetensors, inspectSafetensors } from './safetensors.js';
import { loadSafetensors, loadSafetensorsSync, saveSafetensors, saveSafetensorsSync } from './disk.js';

const dir = mkdtempSync(join(tmpdir(), 'arpix-safetensors-'));
after(() => rmSync(dir, { recursive: true, force: true }));
const fixture = (name: string) => fileURLToPath(new URL(`./fixtures/${name}`, import.meta.url));

const sample = (): Record<string, Tensor> => ({
  'conv.weight': randn([3, 3, 2, 4], { generator: new Generator(1) }),
  'labels': tensor([[1, -2], [3, 2147483647]], undefined, 'int32'),
  'precise': tensor([Math.PI, -1e-300], undefined, 'float64'),
  'empty': zeros([0, 5]),
  'scalar': tensor(7),
});

function assertSameTensors(a: Record<string, Tensor>, b: Record<string, Tensor>): void {
  assert.deepEqual(Object.keys(a).sort(), Object.keys(b).sort());
  for (const k of Object.keys(a)) {
    assert.equal(a[k]!.dtype, b[k]!.dtype, k);
    assert.deepEqual(a[k]!.shape, b[k]!.shape, k);
    assert.deepEqual(a[k]!.toArray(), b[k]!.toArray(), k);
  }
}

/** A file from a header object and a data section, for the corrupt cases. */
function rawFile(header: unknown, data: Uint8Array = new Uint8Array(0), headerText?: string): Uint8Array {
  const json = Buffer.from(headerText ?? JSON.stringify(header), 'utf8');
  const out = new Uint8Array(8 + json.length + data.length);
  new DataView(out.buffer).setBigUint64(0, BigInt(json.length), true);
  out.set(json, 8);
  out.set(data, 8 + json.length);
  return out;
}

describe('round trip', () => {
  test('every arpix dtype, an empty and a scalar tensor, with metadata, through a file', async () => {
    const path = join(dir, 'a.safetensors');
    await saveSafetensors(path, sample(), { step: '12', note: 'ünïcode ✓' });
    const back = await loadSafetensors(path);
    assertSameTensors(back.tensors, sample());
    assert.deepEqual(back.metadata, { step: '12', note: 'ünïcode ✓' });
    saveSafetensorsSync(path, sample());
    assert.deepEqual(loadSafetensorsSync(path).metadata, {});
  });
  test('the header is padded so data starts 8-byte aligned, wider dtypes first', () => {
    const bytes = encodeSafetensors(sample());
    const n = Number(new DataView(bytes.buffer).getBigUint64(0, true));
    assert.equal((8 + n) % 8, 0);
    const info = inspectSafetensors(bytes);
    assert.deepEqual(info.tensors['precise'], { dtype: 'F64', shape: [2] });
    const header = JSON.parse(Buffer.from(bytes.subarray(8, 8 + n)).toString()) as Record<string, { data_offsets: number[] }>;
    assert.deepEqual(header['precise']!.data_offsets, [0, 16]);
  });
  test('loaded tensors own their memory (a Node Buffer is not aliased)', () => {
    const buf = Buffer.from(encodeSafetensors({ a: tensor([1, 2]) }));
    const t = decodeSafetensors(buf).tensors['a']!;
    buf.fill(0);
    assert.deepEqual(t.toArray(), [1, 2]);
  });
  test('throws when writing bad names or metadata', () => {
    assert.throws(() => encodeSafetensors({ __metadata__: tensor([1]) }), /saveSafetensors: tensors cannot use the reserved name '__metadata__'/);
    assert.throws(() => encodeSafetensors({ a: [1] as unknown as Tensor }), ArgumentError);
    assert.throws(() => encodeSafetensors({}, { n: 3 as unknown as string }), /metadata values must be strings; 'n' is a number/);
  });
});

describe('reading other dtypes', () => {
  test('F16, BF16, I64, I16, I8, U8 and BOOL written by PyTorch load as float32 / int32', () => {
    const { tensors } = loadSafetensorsSync(fixture('torch_model.safetensors'));
    for (const k of ['f16', 'bf16', 'i64']) {
      const t = tensors[`dtype.${k}`]!;
      const want = tensors[`dtype.${k}.expected`]!;
      assert.equal(t.dtype, want.dtype, k);
      assert.deepEqual(t.toArray(), want.toArray(), k);
    }
    assert.deepEqual(tensors['dtype.i16']!.toArray(), [-32768, 32767, 5]);
    assert.deepEqual(tensors['dtype.i8']!.toArray(), [-128, 127, -5]);
    assert.deepEqual(tensors['dtype.u8']!.toNested(), [[0, 255], [7, 128]]);
    assert.deepEqual(tensors['dtype.bool']!.toArray(), [1, 0, 1]);
    assert.equal(tensors['dtype.bool']!.dtype, 'int32');
  });
  test('an I64 value outside int32 is an error, not a wrap-around', () => {
    const data = new Uint8Array(8);
    new DataView(data.buffer).setBigInt64(0, 2n ** 31n, true);
    assert.throws(() => decodeSafetensors(rawFile({ big: { dtype: 'I64', shape: [1], data_offsets: [0, 8] } }, data), 'big.safetensors'),
      (e: unknown) => e instanceof FormatError && /big.safetensors: tensor 'big' \(I64\) holds 2147483648 at flat index 0, outside int32/.test(e.message));
  });
});

describe('validation: each problem is a FormatError naming the file', () => {
  const f32 = (n: number) => new Uint8Array(4 * n);
  const cases: [string, Uint8Array, RegExp][] = [
    ['too short', new Uint8Array(5), /5 bytes is too short for the 8-byte header length/],
    ['header length beyond the file', (() => { const b = rawFile({}); new DataView(b.buffer).setBigUint64(0, 1000n, true); return b; })(), /header length 1000 runs beyond the end of the file \(10 bytes\)/],
    ['header length of 2^64 − 1', (() => { const b = rawFile({}); new DataView(b.buffer).setBigUint64(0, 2n ** 64n - 1n, true); return b; })(), /header length 18446744073709551615 runs beyond/],
    ['non-JSON header', rawFile(null, undefined, '{"a": [1, 2'), /the header is not valid JSON/],
    ['invalid UTF-8', rawFile(null, undefined, 'xx'), /.*/],
    ['header not an object', rawFile([1, 2]), /the header begins with byte 0x5b, not '\{'; the format's JSON header begins with '\{'/],
    ['header after a byte-order mark', rawFile(null, undefined, '\ufeff{}'), /the header begins with a UTF-8 byte-order mark, not '\{'/],
    ['header after white space', rawFile(null, undefined, ' {}'), /the header begins with byte 0x20, not '\{'/],
    ['a declared shape beyond 2^53 bytes', rawFile({ a: { dtype: 'F32', shape: [2 ** 40, 2 ** 40], data_offsets: [0, 4] } }, f32(1)), /tensor 'a': shape \[1099511627776, 1099511627776\] of F32 needs 4\.8\d*e\+24 bytes but data_offsets \[0, 4\] span 4/],
    ['metadata value not a string', rawFile({ __metadata__: { n: 3 } }), /'__metadata__' must map strings to strings; 'n' is 3/],
    ['unknown dtype', rawFile({ a: { dtype: 'Q7', shape: [1], data_offsets: [0, 4] } }, f32(1)), /tensor 'a' has unknown dtype 'Q7'/],
    ['unsupported dtype', rawFile({ a: { dtype: 'F8_E4M3', shape: [1], data_offsets: [0, 1] } }, new Uint8Array(1)), /dtype F8_E4M3, which arpix cannot hold without loss/],
    ['negative shape', rawFile({ a: { dtype: 'F32', shape: [-1], data_offsets: [0, 4] } }, f32(1)), /tensor 'a' has shape \[-1\]; expected an array of non-negative integers/],
    ['offsets reversed', rawFile({ a: { dtype: 'F32', shape: [0], data_offsets: [4, 0] } }, f32(1)), /data_offsets \[4,0\]; expected \[begin, end\]/],
    ['shape × itemsize ≠ byte range', rawFile({ a: { dtype: 'F32', shape: [2, 2], data_offsets: [0, 12] } }, f32(3)), /tensor 'a': shape \[2, 2\] of F32 needs 16 bytes but data_offsets \[0, 12\] span 12/],
    ['offsets beyond the data', rawFile({ a: { dtype: 'F32', shape: [2], data_offsets: [4, 12] } }, f32(2)), /data_offsets \[4, 12\] run beyond the data section \(8 bytes\)/],
    ['overlapping tensors', rawFile({ a: { dtype: 'F32', shape: [2], data_offsets: [0, 8] }, b: { dtype: 'F32', shape: [2], data_offsets: [4, 12] } }, f32(3)), /tensors 'a' \[0, 8\] and 'b' \[4, 12\] overlap/],
    ['a hole between tensors', rawFile({ a: { dtype: 'F32', shape: [1], data_offsets: [0, 4] }, b: { dtype: 'F32', shape: [1], data_offsets: [8, 12] } }, f32(3)), /bytes 4..8 of the data section belong to no tensor/],
    ['trailing bytes', rawFile({ a: { dtype: 'F32', shape: [1], data_offsets: [0, 4] } }, f32(2)), /the data section has 8 bytes but the tensors cover 4/],
    ['entry without dtype', rawFile({ a: { shape: [1], data_offsets: [0, 4] } }, f32(1)), /tensor 'a' has no dtype string/],
  ];
  // Invalid UTF-8 needs raw bytes in the header.
  cases[4]![1] = (() => { const b = rawFile(null, undefined, '{}'); b[9] = 0xff; return b; })();
  cases[4]![2] = /the header is not valid UTF-8/;

  for (const [name, bytes, message] of cases) {
    test(`throws on ${name}`, () => {
      const path = join(dir, `${name.replace(/\W+/g, '_')}.safetensors`);
      writeFileSync(path, bytes);
      assert.throws(() => loadSafetensorsSync(path), (e: unknown) => {
        assert.ok(e instanceof FormatError, `a FormatError, got ${String(e)}`);
        assert.equal(e.file, path);
        assert.match(e.message, message);
        return true;
      });
    });
  }
  test('a missing file is a FormatError naming it', async () => {
    await assert.rejects(loadSafetensors(join(dir, 'nope.safetensors')), (e: unknown) => e instanceof FormatError && /nope.safetensors: does not exist/.test(e.message));
  });
});

describe('PyTorch interop (fixtures from scripts/fixtures/safetensors_roundtrip.py)', () => {
  test('arpix writes its fixture byte for byte again (deterministic writer)', () => {
    const bytes = readFileSync(fixture('arpix_model.safetensors'));
    const { tensors, metadata } = decodeSafetensors(bytes);
    assert.deepEqual(Buffer.from(encodeSafetensors(tensors, metadata)), bytes);
  });
  test('the same model built from the same seed writes the same state dict as the fixture', () => {
    const gen = new Generator(2024);
    const net = new InteropNet(gen);
    const { tensors } = loadSafetensorsSync(fixture('arpix_model.safetensors'));
    for (const [k, v] of Object.entries(net.stateDict({ layout: 'pytorch' }))) assert.deepEqual(v.toArray(), tensors[`model.${k}`]!.toArray(), k);
  });
  test('what PyTorch read from arpix\'s file and wrote back loads with the same values and metadata', () => {
    const ours = loadSafetensorsSync(fixture('arpix_model.safetensors'));
    const theirs = loadSafetensorsSync(fixture('torch_roundtrip.safetensors'));
    assertSameTensors(theirs.tensors, ours.tensors);
    assert.deepEqual(theirs.metadata, { ...ours.metadata, written_by: 'torch' });
  });
  test('a PyTorch-initialised model loads with layout \'pytorch\' and computes PyTorch\'s output', () => {
    const { tensors } = loadSafetensorsSync(fixture('torch_model.safetensors'));
    const sd: Record<string, Tensor> = {};
    for (const [k, v] of Object.entries(tensors)) if (k.startsWith('model.')) sd[k.slice('model.'.length)] = v;
    const net = new InteropNet(new Generator(9)).eval();
    net.loadStateDict(sd, { layout: 'pytorch' });
    const x = permute(tensors['input']!, [0, 2, 3, 1]); // NCHW → NHWC
    const y = noGrad(() => permute(net.forward(x), [0, 3, 1, 2]));
    const want = tensors['output']!;
    assert.deepEqual(y.shape, want.shape);
    let err = 0;
    for (let i = 0; i < y.size; i++) err = Math.max(err, Math.abs(y.data[i]! - want.data[i]!));
    assert.ok(err < 1e-5, `max |difference| ${err}`);
    // and back: arpix's PyTorch-layout state dict is what PyTorch wrote
    for (const [k, v] of Object.entries(net.stateDict({ layout: 'pytorch' }))) assert.deepEqual(v.toArray(), sd[k]!.toArray(), k);
  });
});

describe('atomic writes', () => {
  test('replace the file whole and leave no temporary file behind', async () => {
    const path = join(dir, 'atomic.txt');
    writeFileAtomicSync(path, 'first');
    await writeFileAtomic(path, new Uint8Array([104, 105]));
    assert.equal(readFileSync(path, 'utf8'), 'hi');
    assert.deepEqual(readdirSync(dir).filter((f) => f.includes('atomic.txt')), ['atomic.txt']);
  });
  test('a failed rename leaves what was there and no temporary file', async () => {
    const target = join(dir, 'occupied');
    mkdirSync(target);
    writeFileSync(join(target, 'keep'), 'kept');
    assert.throws(() => writeFileAtomicSync(target, 'x'));
    await assert.rejects(writeFileAtomic(target, 'x'));
    assert.equal(readFileSync(join(target, 'keep'), 'utf8'), 'kept');
    assert.deepEqual(readdirSync(dir).filter((f) => f.includes('occupied')), ['occupied']);
    assert.throws(() => writeFileAtomicSync(join(dir, 'no-folder', 'x.txt'), 'x'));
  });
});
