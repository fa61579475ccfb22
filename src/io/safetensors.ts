// safetensors, our own implementation of the public format:
//   8 bytes   N, the header's length, unsigned little-endian
//   N bytes   a JSON object: name → { dtype, shape, data_offsets: [begin, end] } and an optional
//             "__metadata__" map of string → string; padded with spaces
//   the rest  the tensors' bytes, little-endian, row-major, offsets relative to this section
// arpix writes F32, F64 and I32 (its own dtypes). It reads those exactly, and reads F16, BF16 and
// the small integer types into float32 / int32 without loss; I64 / U32 / U64 load as int32 when
// every value fits, else the load fails rather than wrap around.
// Everything in a file is checked before a tensor is made: a FormatError names the file and what
// is wrong with it.

import { ArgumentError, FormatError, fmtShape } from '../errors.js';
import type { DType, TypedArray } from '../kernels/contracts.js';
import { Tensor } from '../tensor/tensor.js';

/** Element sizes of the dtypes arpix reads, by their safetensors names. */
const ITEM_SIZE = {
  F64: 8, F32: 4, F16: 2, BF16: 2, I64: 8, I32: 4, I16: 2, I8: 1, U64: 8, U32: 4, U16: 2, U8: 1, BOOL: 1,
} as const;
type FileDType = keyof typeof ITEM_SIZE;

/** Dtypes of the format arpix has no lossless type for. */
const UNSUPPORTED = new Set(['F8_E4M3', 'F8_E5M2', 'F8_E8M0', 'F6_E2M3', 'F6_E3M2', 'F4', 'C64']);

const WRITE_DTYPE: Record<DType, FileDType> = { float32: 'F32', float64: 'F64', int32: 'I32' };

/** The reference implementation's cap; a larger header is a corrupt length, not a real header. */
const MAX_HEADER = 100_000_000;
const METADATA = '__metadata__';
const LITTLE_ENDIAN = new Uint8Array(new Uint16Array([1]).buffer)[0] === 1;

export interface SafetensorsContents {
  tensors: Record<string, Tensor>;
  /** The header's `__metadata__` (empty when absent). */
  metadata: Record<string, string>;
}

interface Entry {
  name: string;
  dtype: FileDType;
  shape: number[];
  begin: number;
  end: number;
}

function swapBytes(bytes: Uint8Array, itemSize: number): void {
  if (itemSize === 1) return;
  for (let i = 0; i < bytes.length; i += itemSize) bytes.subarray(i, i + itemSize).reverse();
}

function isPlainObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

// ---- writing -----------------------------------------------------------------------------

/** Where a tensor's bytes lie in the data section, as the header's table says. */
export interface TensorPlacement {
  name: string;
  /** The file's dtype name (F32, I32, …). */
  dtype: string;
  shape: number[];
  begin: number;
  end: number;
}

/** The placement encodeSafetensors gives `tensors`, in the order of the data section. */
export function safetensorsLayout(tensors: Record<string, Tensor>): TensorPlacement[] {
  // Wider elements first, so that every tensor starts at a multiple of its element size.
  const order = Object.keys(tensors).sort((a, b) => tensors[b]!.data.BYTES_PER_ELEMENT - tensors[a]!.data.BYTES_PER_ELEMENT);
  let offset = 0;
  return order.map((name) => {
    const t = tensors[name]!;
    const begin = offset;
    offset += t.data.byteLength;
    return { name, dtype: WRITE_DTYPE[t.dtype], shape: [...t.shape], begin, end: offset };
  });
}

/** A tensor's bytes as the file holds them (little-endian), without a copy on little-endian machines. */
export function fileBytesOf(t: Tensor): Uint8Array {
  const d = t.data;
  const view = new Uint8Array(d.buffer, d.byteOffset, d.byteLength);
  if (LITTLE_ENDIAN) return view;
  const copy = Uint8Array.from(view);
  swapBytes(copy, d.BYTES_PER_ELEMENT);
  return copy;
}

/** The bytes of a safetensors file holding `tensors` (in this order) and `metadata`. */
export function encodeSafetensors(tensors: Record<string, Tensor>, metadata: Record<string, string> = {}): Uint8Array {
  const op = 'saveSafetensors';
  if (!isPlainObject(metadata)) throw new ArgumentError(op, 'metadata', 'must be an object of strings');
  for (const [k, v] of Object.entries(metadata)) {
    if (typeof v !== 'string') throw new ArgumentError(op, 'metadata', `values must be strings; '${k}' is a ${typeof v} (JSON.stringify it)`);
  }
  const names = Object.keys(tensors);
  for (const name of names) {
    if (name === METADATA) throw new ArgumentError(op, 'tensors', `cannot use the reserved name '${METADATA}'`);
    if (name === '') throw new ArgumentError(op, 'tensors', 'cannot have an empty name');
    if (!(tensors[name] instanceof Tensor)) throw new ArgumentError(op, `tensors['${name}']`, 'is not a Tensor');
  }
  const order = safetensorsLayout(tensors);
  const header: Record<string, unknown> = {};
  if (Object.keys(metadata).length > 0) header[METADATA] = metadata;
  const offset = order.at(-1)?.end ?? 0;
  const offsets = new Map(order.map((e) => [e.name, e.begin]));
  for (const name of names) {
    const t = tensors[name]!;
    const begin = offsets.get(name)!;
    header[name] = { dtype: WRITE_DTYPE[t.dtype], shape: [...t.shape], data_offsets: [begin, begin + t.data.byteLength] };
  }
  const text = new TextEncoder().encode(JSON.stringify(header));
  const padded = Math.ceil((8 + text.length) / 8) * 8 - 8; // data starts 8-byte aligned
  const json = new Uint8Array(padded).fill(0x20);
  json.set(text);
  const out = new Uint8Array(8 + json.length + offset);
  new DataView(out.buffer).setBigUint64(0, BigInt(json.length), true);
  out.set(json, 8);
  const dataStart = 8 + json.length;
  for (const { name, begin } of order) {
    const d = tensors[name]!.data;
    const at = dataStart + begin;
    out.set(new Uint8Array(d.buffer, d.byteOffset, d.byteLength), at);
    if (!LITTLE_ENDIAN) swapBytes(out.subarray(at, at + d.byteLength), d.BYTES_PER_ELEMENT);
  }
  return out;
}

// ---- reading -----------------------------------------------------------------------------

function parseHeader(file: string, bytes: Uint8Array): { entries: Entry[]; metadata: Record<string, string>; dataStart: number } {
  const bad = (detail: string, cause?: unknown) => new FormatError(file, `not a valid safetensors file: ${detail}`, cause === undefined ? undefined : { cause });
  if (bytes.length < 8) throw bad(`${bytes.length} bytes is too short for the 8-byte header length`);
  const n = new DataView(bytes.buffer, bytes.byteOffset, 8).getBigUint64(0, true);
  if (n > BigInt(bytes.length - 8)) throw bad(`the header length ${n} runs beyond the end of the file (${bytes.length} bytes)`);
  if (n > BigInt(MAX_HEADER)) throw bad(`the header length ${n} exceeds the ${MAX_HEADER}-byte limit`);
  if (n < 2n) throw bad(`the header length ${n} is too short for a JSON object`);
  const headerLen = Number(n);
  // The format's header is a JSON object from its first byte: no byte-order mark, no whitespace.
  if (bytes[8] !== 0x7b) {
    const bom = bytes[8] === 0xef && bytes[9] === 0xbb && bytes[10] === 0xbf;
    throw bad(`the header begins with ${bom ? 'a UTF-8 byte-order mark' : `byte 0x${bytes[8]!.toString(16).padStart(2, '0')}`}, not '{'; the format's JSON header begins with '{'`);
  }
  let text: string;
  try {
    text = new TextDecoder('utf-8', { fatal: true }).decode(bytes.subarray(8, 8 + headerLen));
  } catch (e) {
    throw bad('the header is not valid UTF-8', e);
  }
  let header: unknown;
  try {
    header = JSON.parse(text);
  } catch (e) {
    throw bad(`the header is not valid JSON (${e instanceof Error ? e.message : String(e)})`, e);
  }
  if (!isPlainObject(header)) throw bad('the header must be a JSON object');

  const metadata: Record<string, string> = {};
  const meta = header[METADATA];
  if (meta !== undefined) {
    if (!isPlainObject(meta)) throw bad(`'${METADATA}' must be an object of strings`);
    for (const [k, v] of Object.entries(meta)) {
      if (typeof v !== 'string') throw bad(`'${METADATA}' must map strings to strings; '${k}' is ${JSON.stringify(v)}`);
      metadata[k] = v;
    }
  }

  const dataLen = bytes.length - 8 - headerLen;
  const entries: Entry[] = [];
  for (const [name, info] of Object.entries(header)) {
    if (name === METADATA) continue;
    const where = `tensor '${name}'`;
    if (!isPlainObject(info)) throw bad(`${where} must be an object with dtype, shape and data_offsets`);
    const { dtype, shape, data_offsets: offsets } = info;
    if (typeof dtype !== 'string') throw bad(`${where} has no dtype string`);
    if (!(dtype in ITEM_SIZE)) {
      if (UNSUPPORTED.has(dtype)) throw bad(`${where} has dtype ${dtype}, which arpix cannot hold without loss`);
      throw bad(`${where} has unknown dtype '${dtype}'`);
    }
    const isIndex = (v: unknown): v is number => Number.isSafeInteger(v) && (v as number) >= 0;
    const shown = (x: unknown) => (x === undefined ? 'missing' : JSON.stringify(x));
    if (!Array.isArray(shape) || !shape.every(isIndex)) throw bad(`${where} has shape ${shown(shape)}; expected an array of non-negative integers`);
    if (!Array.isArray(offsets) || offsets.length !== 2 || !offsets.every(isIndex) || offsets[0] > offsets[1]) {
      throw bad(`${where} has data_offsets ${shown(offsets)}; expected [begin, end] with 0 ≤ begin ≤ end`);
    }
    const [begin, end] = offsets as [number, number];
    const d = dtype as FileDType;
    const count = shape.reduce((a: number, b: number) => a * b, 1);
    const need = count * ITEM_SIZE[d];
    // Checked before anything is allocated: a declared shape must be paid for by bytes in the file.
    if (!Number.isSafeInteger(need) || end - begin !== need) {
      throw bad(`${where}: shape ${fmtShape(shape)} of ${d} needs ${need} bytes but data_offsets [${begin}, ${end}] span ${end - begin}`);
    }
    if (end > dataLen) throw bad(`${where}: data_offsets [${begin}, ${end}] run beyond the data section (${dataLen} bytes)`);
    entries.push({ name, dtype: d, shape, begin, end });
  }

  // The tensors must tile the data section exactly, as the reference implementation requires:
  // an overlap means two tensors share bytes, a hole or a tail means a corrupt or truncated table.
  const sorted = [...entries].sort((a, b) => a.begin - b.begin || a.end - b.end);
  let pos = 0;
  let prev: Entry | null = null;
  for (const e of sorted) {
    if (e.begin < pos) throw bad(`tensors '${prev!.name}' [${prev!.begin}, ${prev!.end}] and '${e.name}' [${e.begin}, ${e.end}] overlap`);
    if (e.begin > pos) throw bad(`bytes ${pos}..${e.begin} of the data section belong to no tensor (before '${e.name}')`);
    pos = e.end;
    prev = e;
  }
  if (pos !== dataLen) throw bad(`the data section has ${dataLen} bytes but the tensors cover ${pos}`);
  return { entries, metadata, dataStart: 8 + headerLen };
}

function toInt32(file: string, e: Entry, values: ArrayLike<number | bigint>): Int32Array {
  const out = new Int32Array(values.length);
  for (let i = 0; i < values.length; i++) {
    const v = values[i]!;
    if (v > 2147483647 || v < -2147483648) {
      throw new FormatError(file, `tensor '${e.name}' (${e.dtype}) holds ${v} at flat index ${i}, outside int32; arpix keeps integers as int32`);
    }
    out[i] = Number(v);
  }
  return out;
}

/** IEEE half precision → float32, exact (every half is a float32). */
function halfToFloat(h: number): number {
  const sign = h & 0x8000 ? -1 : 1;
  const exp = (h >> 10) & 0x1f;
  const frac = h & 0x3ff;
  if (exp === 0) return sign * frac * 2 ** -24;
  if (exp === 31) return frac === 0 ? sign * Infinity : NaN;
  return sign * (1 + frac / 1024) * 2 ** (exp - 15);
}

function decodeEntry(file: string, e: Entry, raw: Uint8Array): TypedArray {
  // A copy into fresh memory: aligned for the typed array and independent of the file's buffer.
  // (Not raw.slice(): on a Node Buffer that is a view of the same memory.)
  const bytes = new Uint8Array(raw);
  if (!LITTLE_ENDIAN) swapBytes(bytes, ITEM_SIZE[e.dtype]);
  const buf = bytes.buffer;
  switch (e.dtype) {
    case 'F32': return new Float32Array(buf);
    case 'F64': return new Float64Array(buf);
    case 'I32': return new Int32Array(buf);
    case 'F16': return Float32Array.from(new Uint16Array(buf), halfToFloat);
    case 'BF16': {
      const src = new Uint16Array(buf);
      const bits = new Uint32Array(src.length);
      for (let i = 0; i < src.length; i++) bits[i] = src[i]! << 16;
      return new Float32Array(bits.buffer);
    }
    case 'I16': return Int32Array.from(new Int16Array(buf));
    case 'I8': return Int32Array.from(new Int8Array(buf));
    case 'U16': return Int32Array.from(new Uint16Array(buf));
    case 'U8': return Int32Array.from(new Uint8Array(buf));
    case 'BOOL': return Int32Array.from(new Uint8Array(buf), (v) => (v !== 0 ? 1 : 0));
    case 'U32': return toInt32(file, e, new Uint32Array(buf));
    case 'I64': return toInt32(file, e, new BigInt64Array(buf));
    case 'U64': return toInt32(file, e, new BigUint64Array(buf));
  }
}

/** Parses safetensors bytes; `file` names the source in errors. */
export function decodeSafetensors(bytes: Uint8Array, file = '<safetensors bytes>'): SafetensorsContents {
  const { entries, metadata, dataStart } = parseHeader(file, bytes);
  const tensors: Record<string, Tensor> = {};
  for (const e of entries) {
    const data = decodeEntry(file, e, bytes.subarray(dataStart + e.begin, dataStart + e.end));
    tensors[e.name] = new Tensor(data, e.shape);
  }
  return { tensors, metadata };
}

/**
 * The tensor names, dtypes and shapes and the metadata, without decoding any data; with the
 * header's table (`placements`) and where the data section starts, for checks over raw bytes.
 */
export function inspectSafetensors(bytes: Uint8Array, file = '<safetensors bytes>'): {
  tensors: Record<string, { dtype: string; shape: number[] }>; metadata: Record<string, string>; placements: TensorPlacement[]; dataStart: number;
} {
  const { entries, metadata, dataStart } = parseHeader(file, bytes);
  const tensors: Record<string, { dtype: string; shape: number[] }> = {};
  for (const e of entries) tensors[e.name] = { dtype: e.dtype, shape: e.shape };
  return { tensors, metadata, placements: entries.map((e) => ({ ...e })), dataStart };
}
