// The torch.save family of the fuzz suite: a state dict of a tiny Gated PixelCNN written as
// torch.save writes it (a zip of data.pkl, byteorder, one entry per storage under data/, version),
// damaged two ways and imported as `arpix import` imports it, with the preset's config.
//
// - bytes:     random edits of the file (harness mutateBytes). Every entry's CRC-32 covers the pickle
//              and the tensors' bytes, so an accepted file must give exactly the base's weights;
//              anything else is silent acceptance.
// - structure: the file rebuilt from an edited description, with valid CRCs, as a crafted file
//              would be. Stride tricks (expanded, negative, overlapping), offsets past the storage,
//              shapes the storage cannot hold, huge shapes, element counts and entry sizes that
//              disagree, integer and unknown storage types, zip bombs (an entry that inflates past
//              its declared size, and one honestly declaring far more than the model needs), a
//              pickle too large for the model, a missing storage and a storage shared by thousands
//              of tensors are damage: each must be refused with one line. Re-encodings of the same
//              weights (a transposed layout, a slice of a larger storage, deflated entries,
//              float64 storages, a Lightning checkpoint around the state dict) must be accepted
//              and give exactly the base's weights; refusing one counts as an internal error.
//
// The writer here is also the tests' way to craft torch.save files without Python (its output is
// checked against torch.load in torch-fuzz.test.ts when PyTorch is installed).

import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import zlib from 'node:zlib';
import { ArpixError } from '../errors.js';
import { importCheckpoint } from '../export/import.js';
import { createModel } from '../models/index.js';
import type { Tensor } from '../tensor/tensor.js';
import { applyOverrides, presetRaw, resolveRunConfig, type RunConfig } from '../train/index.js';
import { equalBytes, errorVerdict, mutateBytes, runFuzz, type FuzzRng, type FuzzTally, type Verdict } from './fuzz.js';
import type { FamilyOptions } from './fuzz.js';
import { stridesOf } from '../tensor/shape.js';

// ---- writing torch.save files --------------------------------------------------------------

/** One tensor of a state dict as torch.save's pickle describes it: a strided view of a storage. */
export interface TorchTensorSpec {
  key: string;
  /** The storage's key: its bytes are the zip entry data/<storage>. */
  storage: string;
  /** The storage class, e.g. FloatStorage. */
  storageType: string;
  /** The storage's element count, as the pickle gives it. */
  numel: number | bigint;
  offset: number | bigint;
  shape: (number | bigint)[];
  stride: (number | bigint)[];
}

/** A zip entry's overrides: a raw deflate stream, or sizes and CRC other than the true ones. */
export interface EntryOverride {
  deflate?: boolean;
  /** A deflate stream to store instead of compressing the data (the data then only sets the defaults). */
  compressed?: Uint8Array;
  size?: number;
  crc?: number;
}

export interface TorchSaveSpec {
  tensors: TorchTensorSpec[];
  /** Storage bytes by key. */
  storages: Map<string, Uint8Array>;
  /** Overrides by entry name within the archive folder: 'data.pkl', 'data/0', … */
  entries: Map<string, EntryOverride>;
  /** Wrap the state dict as a Lightning checkpoint does ({state_dict, pytorch-lightning_version, …}). */
  lightning?: boolean;
  /** Bytes appended to data.pkl after its STOP (a pickle made large). */
  picklePadding?: number;
}

/** The description of `sd` as torch.save writes it: one contiguous float32 storage per tensor. */
export function torchSaveSpec(sd: Record<string, Tensor>): TorchSaveSpec {
  const tensors: TorchTensorSpec[] = [];
  const storages = new Map<string, Uint8Array>();
  for (const [key, t] of Object.entries(sd)) {
    const storage = String(storages.size);
    const f32 = Float32Array.from(t.data);
    storages.set(storage, new Uint8Array(f32.buffer));
    tensors.push({ key, storage, storageType: 'FloatStorage', numel: t.size, offset: 0, shape: [...t.shape], stride: stridesOf(t.shape) });
  }
  return { tensors, storages, entries: new Map() };
}

/** Protocol-2 pickle opcodes, written the way torch.save's pickler writes them. */
class Pickler {
  private readonly parts: Buffer[] = [Buffer.from([0x80, 0x02])];
  raw(...b: number[]): this { this.parts.push(Buffer.from(b)); return this; }
  global(module: string, name: string): this { this.parts.push(Buffer.from(`c${module}\n${name}\n`)); return this; }
  str(s: string): this {
    const b = Buffer.from(s, 'utf8');
    const n = Buffer.alloc(5);
    n[0] = 0x58; // BINUNICODE
    n.writeUInt32LE(b.length, 1);
    this.parts.push(n, b);
    return this;
  }
  int(v: number | bigint): this {
    const n = BigInt(v);
    if (n >= 0n && n < 256n) return this.raw(0x4b, Number(n)); // BININT1
    if (n >= 0n && n < 65536n) return this.raw(0x4d, Number(n) & 0xff, Number(n) >> 8); // BININT2
    if (n >= -(2n ** 31n) && n < 2n ** 31n) { const b = Buffer.alloc(5); b[0] = 0x4a; b.writeInt32LE(Number(n), 1); this.parts.push(b); return this; } // BININT
    const bytes: number[] = []; // LONG1: little-endian two's complement, as short as the sign allows
    let x = n;
    for (;;) {
      bytes.push(Number(x & 0xffn));
      x >>= 8n;
      if ((x === 0n && !(bytes.at(-1)! & 0x80)) || (x === -1n && bytes.at(-1)! & 0x80)) break;
    }
    return this.raw(0x8a, bytes.length, ...bytes);
  }
  tuple(items: (number | bigint)[]): this {
    if (items.length === 0) return this.raw(0x29);
    this.raw(0x28);
    for (const v of items) this.int(v);
    return this.raw(0x74);
  }
  bytes(): Buffer { return Buffer.concat([...this.parts, Buffer.from('.')]); }
}

function statePickle(spec: TorchSaveSpec): Buffer {
  const p = new Pickler();
  if (spec.lightning) {
    p.raw(0x7d).raw(0x28).str('epoch').int(3).str('global_step').int(120).str('pytorch-lightning_version').str('2.1.0').str('state_dict');
  }
  p.global('collections', 'OrderedDict').raw(0x29, 0x52); // OrderedDict()
  for (const t of spec.tensors) {
    p.str(t.key).global('torch._utils', '_rebuild_tensor_v2').raw(0x28);
    p.raw(0x28).str('storage').global('torch', t.storageType).str(t.storage).str('cpu').int(t.numel).raw(0x74, 0x51); // (…) BINPERSID
    p.int(t.offset).tuple(t.shape).tuple(t.stride).raw(0x89).global('collections', 'OrderedDict').raw(0x29, 0x52, 0x74, 0x52, 0x73); // False, OrderedDict(), TUPLE, REDUCE, SETITEM
  }
  if (spec.lightning) p.raw(0x75); // SETITEMS of the outer dict
  const out = p.bytes();
  return spec.picklePadding ? Buffer.concat([out, Buffer.alloc(spec.picklePadding)]) : out;
}

/** A zip of the entries, each stored or deflated, with the sizes and CRCs the overrides give. */
export function zipArchive(entries: { name: string; data: Uint8Array; o: EntryOverride }[]): Uint8Array {
  const locals: Buffer[] = [];
  const centrals: Buffer[] = [];
  let offset = 0;
  for (const { name, data, o } of entries) {
    const n = Buffer.from(name);
    const deflated = o.deflate || o.compressed !== undefined;
    const body = o.compressed ?? (deflated ? zlib.deflateRawSync(data) : data);
    const crc = o.crc ?? zlib.crc32(data);
    const size = o.size ?? data.length;
    const local = Buffer.alloc(30);
    local.writeUInt32LE(0x04034b50, 0);
    local.writeUInt16LE(20, 4);
    local.writeUInt16LE(deflated ? 8 : 0, 8);
    local.writeUInt32LE(crc >>> 0, 14);
    local.writeUInt32LE(body.length, 18);
    local.writeUInt32LE(size, 22);
    local.writeUInt16LE(n.length, 26);
    const central = Buffer.alloc(46);
    central.writeUInt32LE(0x02014b50, 0);
    central.writeUInt16LE(20, 4);
    central.writeUInt16LE(20, 6);
    central.writeUInt16LE(deflated ? 8 : 0, 10);
    central.writeUInt32LE(crc >>> 0, 16);
    central.writeUInt32LE(body.length, 20);
    central.writeUInt32LE(size, 24);
    central.writeUInt16LE(n.length, 28);
    central.writeUInt32LE(offset, 42);
    locals.push(local, n, Buffer.from(body));
    centrals.push(central, n);
    offset += 30 + n.length + body.length;
  }
  const dir = Buffer.concat(centrals);
  const end = Buffer.alloc(22);
  end.writeUInt32LE(0x06054b50, 0);
  end.writeUInt16LE(entries.length, 8);
  end.writeUInt16LE(entries.length, 10);
  end.writeUInt32LE(dir.length, 12);
  end.writeUInt32LE(offset, 16);
  return Buffer.concat([...locals, dir, end]);
}

/** The bytes torch.save would write for `spec` (in folder `archive/`). */
export function encodeTorchSave(spec: TorchSaveSpec): Uint8Array {
  const entry = (name: string, data: Uint8Array) => ({ name: `archive/${name}`, data, o: spec.entries.get(name) ?? {} });
  return zipArchive([
    entry('data.pkl', statePickle(spec)),
    entry('byteorder', Buffer.from('little')),
    ...[...spec.storages].map(([key, b]) => entry(`data/${key}`, b)),
    entry('version', Buffer.from('3\n')),
  ]);
}

/**
 * A raw deflate stream that inflates to `mib` MiB of zeros, about 1 KiB per MiB: one fully flushed
 * block of a MiB, repeated, then an empty final block.
 */
export function zeroBomb(mib: number): Uint8Array {
  const block = zlib.deflateRawSync(Buffer.alloc(2 ** 20), { finishFlush: zlib.constants.Z_FULL_FLUSH });
  return Buffer.concat([...new Array<Buffer>(mib).fill(block), zlib.deflateRawSync(Buffer.alloc(0))]);
}

// ---- the family -------------------------------------------------------------------------------

/** The tiny preset model the family imports into. */
export function tinyTorchConfig(): RunConfig {
  return resolveRunConfig(applyOverrides(presetRaw('gated-pixelcnn-fmnist'), ['model.hiddenChannels=4', 'model.dilations=[1]']), 'gated-pixelcnn-fmnist');
}

/** What a case must do: be refused; be imported with the base's weights; or either of those. */
type Expect = 'damage' | 'same' | 'either';

const BOMB_MIB = 64;

function cloneSpec(s: TorchSaveSpec): TorchSaveSpec {
  return {
    tensors: s.tensors.map((t) => ({ ...t, shape: [...t.shape], stride: [...t.stride] })),
    storages: new Map([...s.storages].map(([k, b]) => [k, Uint8Array.from(b)])),
    entries: new Map([...s.entries].map(([k, o]) => [k, { ...o }])),
    lightning: s.lightning,
    picklePadding: s.picklePadding,
  };
}

const dims = (t: TorchTensorSpec) => t.shape.map(Number);

const DAMAGE = [
  'expand', 'expand-huge', 'negative-stride', 'overlap', 'offset-past', 'offset-negative', 'shape-grow', 'shape-huge', 'shape-negative',
  'numel-lie', 'int-storage', 'long-storage', 'unknown-storage', 'declared-size', 'bomb-past-declared', 'bomb-declared', 'pickle-huge',
  'missing-storage', 'shared-flood',
] as const;
const SAME = ['transpose', 'slice', 'deflate', 'double', 'lightning'] as const;

/**
 * One structural edit of the description: damage, or a re-encoding of the same weights. A second
 * edit is damage only, so that it cannot undo the first.
 */
function editSpec(spec: TorchSaveSpec, rng: FuzzRng, bomb: Uint8Array, damageOnly: boolean): { op: string; expect: Expect } {
  const t = rng.pick(spec.tensors);
  const shape = dims(t);
  const size = shape.reduce((a, b) => a * b, 1);
  const big = shape.map((d, k) => [d, k] as const).filter(([d]) => d > 1).map(([, k]) => k);
  const op = rng.pick(damageOnly ? DAMAGE : [...DAMAGE, ...SAME]);
  const storage = spec.storages.get(t.storage)!;
  switch (op) {
    case 'expand': // a dimension of size > 1 that repeats one element
      if (big.length === 0) { t.shape = [...shape, 2]; t.stride = [...t.stride, 0]; } else t.stride[rng.pick(big)] = 0;
      return { op, expect: 'damage' };
    case 'expand-huge': // the file: zeros(1).expand(20000, 20000), as the tensor
      spec.storages.set(t.storage, new Uint8Array(4));
      Object.assign(t, { numel: 1, offset: 0, shape: [20000, 20000], stride: [0, 0] });
      return { op, expect: 'damage' };
    case 'negative-stride': {
      const k = big.length > 0 ? rng.pick(big) : 0;
      t.stride[k] = -Number(t.stride[k]);
      t.offset = Number(t.numel) - 1;
      return { op, expect: 'damage' };
    }
    case 'overlap': // every stride 1: elements reached twice, inside the storage
      if (big.length < 2) { t.shape = [2, Number(t.numel) - 1]; t.stride = [1, 1]; } else t.stride = t.stride.map(() => 1);
      return { op, expect: 'damage' };
    case 'offset-past': // the view's last element lies past the storage's end
      t.offset = Number(t.offset) + rng.pick([Number(t.numel) - size + 1, Number(t.numel), 2 ** 31, 2 ** 53 - 1]);
      return { op, expect: 'damage' };
    case 'offset-negative':
      t.offset = -rng.pick([1, 2 ** 31]);
      return { op, expect: 'damage' };
    case 'shape-grow': {
      const k = rng.int(0, shape.length);
      t.shape[k] = shape[k]! + rng.pick([1, shape[k]!, 1000]);
      t.stride = stridesOf(t.shape.map(Number));
      return { op, expect: 'damage' };
    }
    case 'shape-huge':
      t.shape = rng.pick([[2 ** 31, 2 ** 31], [2 ** 40, 2 ** 40, 2 ** 40], [2n ** 70n], [65536, 65536, 65536]]);
      t.stride = rng.next() < 0.5 ? stridesOf(t.shape.map(Number)).map((s) => (Number.isSafeInteger(s) ? s : 2 ** 53 - 1)) : t.shape.map(() => 0);
      return { op, expect: 'damage' };
    case 'shape-negative':
      t.shape[rng.int(0, shape.length)] = -1;
      return { op, expect: 'damage' };
    case 'numel-lie':
      t.numel = rng.pick([Number(t.numel) + 1, Number(t.numel) - 1, Number(t.numel) * 2, 2 ** 40, -1]);
      return { op, expect: 'damage' };
    case 'int-storage': // same bytes, read as int32: weights must be floating point
      t.storageType = 'IntStorage';
      return { op, expect: 'damage' };
    case 'long-storage':
      t.storageType = 'LongStorage';
      return { op, expect: 'damage' };
    case 'unknown-storage':
      t.storageType = rng.pick(['ComplexFloatStorage', 'QInt8Storage', 'UntypedStorage']);
      return { op, expect: 'damage' };
    case 'declared-size': { // the entry's directory records give another size (CRC still that of the data)
      const real = storage.length;
      const o = spec.entries.get(`data/${t.storage}`) ?? {};
      o.deflate = rng.next() < 0.5;
      o.size = rng.pick([real + 4, Math.max(0, real - 4), real * 2, 0]);
      spec.entries.set(`data/${t.storage}`, o);
      return { op, expect: o.size === real ? 'same' : 'damage' };
    }
    case 'bomb-past-declared': // declares the tensor's true size, inflates to many MiB
      spec.entries.set(`data/${t.storage}`, { compressed: bomb, size: storage.length });
      return { op, expect: 'damage' };
    case 'bomb-declared': { // honestly declares the many MiB it inflates to, and the pickle agrees
      const size = BOMB_MIB * 2 ** 20;
      spec.storages.set(t.storage, new Uint8Array(0));
      spec.entries.set(`data/${t.storage}`, { compressed: bomb, size, crc: 0 });
      t.numel = size / 4;
      return { op, expect: 'damage' };
    }
    case 'pickle-huge':
      spec.picklePadding = 4 * 2 ** 20;
      spec.entries.set('data.pkl', { deflate: true });
      return { op, expect: 'damage' };
    case 'missing-storage':
      spec.storages.delete(t.storage);
      return { op, expect: 'damage' };
    case 'shared-flood': // thousands of extra keys viewing one storage
      for (let i = 0; i < 3000; i++) spec.tensors.push({ ...t, key: `${t.key}.copy${i}`, shape: [...t.shape], stride: [...t.stride] });
      return { op, expect: 'damage' };
    case 'transpose': { // the storage holds the tensor with two dimensions swapped; the strides say so
      if (big.length < 2) return { op: `${op}(none)`, expect: 'same' };
      const [a, b] = [big[0]!, big[big.length - 1]!];
      const perm = shape.map((_, k) => (k === a ? b : k === b ? a : k));
      const permShape = perm.map((k) => shape[k]!);
      const ps = stridesOf(permShape);
      const src = new Float32Array(storage.buffer, storage.byteOffset, storage.length / 4);
      const out = new Float32Array(src.length);
      const idx = new Array<number>(shape.length).fill(0);
      for (let i = 0; i < src.length; i++) {
        let at = 0;
        for (let k = 0; k < shape.length; k++) at += idx[perm[k]!]! * ps[k]!;
        out[at] = src[i]!;
        for (let k = shape.length - 1; k >= 0 && ++idx[k]! >= shape[k]!; k--) idx[k] = 0;
      }
      spec.storages.set(t.storage, new Uint8Array(out.buffer));
      t.stride = shape.map((_, k) => ps[perm.indexOf(k)]!);
      return { op, expect: 'same' };
    }
    case 'slice': { // the tensor is a slice of a larger storage, at an offset
      const before = rng.int(1, 9);
      const after = rng.int(0, 9);
      const grown = new Uint8Array(storage.length + 4 * (before + after)).fill(0x7f);
      grown.set(storage, 4 * before);
      spec.storages.set(t.storage, grown);
      t.offset = Number(t.offset) + before;
      t.numel = grown.length / 4;
      return { op, expect: 'same' };
    }
    case 'deflate':
      for (const name of ['data.pkl', ...[...spec.storages.keys()].map((k) => `data/${k}`)]) spec.entries.set(name, { ...spec.entries.get(name), deflate: true });
      return { op, expect: 'same' };
    case 'double': { // float64 storage of the same (float32) values: exact
      const f64 = Float64Array.from(new Float32Array(storage.buffer, storage.byteOffset, storage.length / 4));
      spec.storages.set(t.storage, new Uint8Array(f64.buffer));
      t.storageType = 'DoubleStorage';
      return { op, expect: 'same' };
    }
    case 'lightning':
      spec.lightning = true;
      return { op, expect: 'same' };
  }
}

/** A refusal a user can act on: an arpix error naming the file. */
const userError = (file: string) => (e: unknown) => e instanceof ArpixError && e.message.includes(file);

function sameWeights(a: Record<string, Tensor>, b: Record<string, Tensor>): string | null {
  const keys = Object.keys(a).sort();
  if (keys.join() !== Object.keys(b).sort().join()) return 'other keys';
  for (const k of keys) {
    const x = a[k]!;
    const y = b[k]!;
    if (x.dtype !== y.dtype || x.shape.join() !== y.shape.join()) return `'${k}' is ${y.dtype} ${y.shape.join('×')}, not ${x.dtype} ${x.shape.join('×')}`;
    if (!equalBytes(new Uint8Array(x.data.buffer, x.data.byteOffset, x.data.byteLength), new Uint8Array(y.data.buffer, y.data.byteOffset, y.data.byteLength))) return `'${k}' holds other values`;
  }
  return null;
}

export async function fuzzTorchSave(o: FamilyOptions = {}): Promise<FuzzTally> {
  const dir = mkdtempSync(join(tmpdir(), 'arpix-torch-fuzz-'));
  try {
    const config = tinyTorchConfig();
    const sd = createModel(config.model, { seed: 11 }).stateDict({ layout: 'pytorch' });
    const base = torchSaveSpec(sd);
    const baseBytes = encodeTorchSave(base);
    const file = join(dir, 'state.pt');
    writeFileSync(file, baseBytes);
    const want = (await importCheckpoint(file, { config })).checkpoint.model;
    const bomb = zeroBomb(BOMB_MIB);

    const verdictOf = async (bytes: Uint8Array, expect: Expect): Promise<{ verdict: Verdict; detail?: string }> => {
      writeFileSync(file, bytes);
      let got: Record<string, Tensor>;
      try {
        got = (await importCheckpoint(file, { config })).checkpoint.model;
      } catch (e) {
        const v = errorVerdict(e, userError(file));
        if (v.verdict === 'clean-error' && expect === 'same') return { verdict: 'internal-error', detail: `a re-encoding of the same weights was refused: ${v.detail}` };
        return v;
      }
      if (expect === 'damage') return { verdict: 'silent-acceptance', detail: 'a damaged file was imported' };
      const diff = sameWeights(want, got);
      return diff === null ? { verdict: 'accepted' } : { verdict: 'silent-acceptance', detail: `imported other weights: ${diff}` };
    };

    return await runFuzz({
      family: 'torch.save', seed: o.seed ?? 25, count: o.count ?? 3000,
      make: (rng) => {
        if (rng.next() < 0.4) {
          const m = mutateBytes(baseBytes, rng);
          // Only an edit the CRCs cannot see may pass, and it must leave the weights as they were.
          return { ops: ['bytes', ...m.ops], run: () => verdictOf(m.bytes, 'either') };
        }
        const spec = cloneSpec(base);
        const edits = [editSpec(spec, rng, bomb, false)];
        if (rng.next() < 0.2) edits.push(editSpec(spec, rng, bomb, true));
        const expect: Expect = edits.some((e) => e.expect === 'damage') ? 'damage' : 'same';
        return { ops: edits.map((e) => e.op), run: () => verdictOf(encodeTorchSave(spec), expect) };
      },
    });
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}
