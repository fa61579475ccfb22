// The compressed file (`arpix compress`): a binary header of about a hundred bytes, so that even a
// file of one 28×28 image is mostly its image. Integers are little-endian; a digest is the first
// 16 bytes (128 bits) of a SHA-256.
//
//   offset  size
//   0       8    magic "ARPIXZ\r\n" (a text-mode copy breaks it visibly)
//   8       2    format version: the oldest that holds the file — 1 for native and portable files,
//                2 for wasm files (version 2 added the mode), so an arpix that reads only version 1
//                reads every file it could before, and says of a wasm file that it needs a newer arpix
//   10      1    flags: 1 the stream opens with class labels, 2 portable mode, 8 wasm mode (version
//                2; neither: native), 4 the model's trained weights (else their average, EMA)
//   11      2    image height      13  2  width      15  1  channels
//   16      4    image count
//   20      1    pixel transform: 0 none, 1 quantise, 2 binarise     21  1  its bits (quantise)
//   22      2    block: images per stepper call
//   24      16   model digest: SHA-256 of the model's config and the weights used (compress.ts)
//   40      16   values digest: SHA-256 of the decoded values as bytes, then the labels as int32
//   56      1    OpenMP threads of a native file's encoder (0 for the others); its decoder uses as many
//   57      1+k  model kind                     (a length byte, then UTF-8)
//           1+k  oneDNN ISA of a native file    (empty for the others)
//           1+k  arpix version that wrote it
//           …    the rANS stream (rans.ts): the labels (uniform over the classes) when flagged,
//                then every image, block after block
//   end−16  16   checksum: digest of everything before it
//
// A file is read whole and checked before anything is decoded: its size, magic, version,
// checksum and fields, each refused with one line saying what to do.

import { sha256 } from '../env.js';
import { FormatError } from '../errors.js';
import type { PixelTransform } from '../data/transforms.js';

export const MAGIC = Uint8Array.from([0x41, 0x52, 0x50, 0x49, 0x58, 0x5a, 0x0d, 0x0a]); // ARPIXZ\r\n
/** The newest format version this arpix reads (it writes each file in the oldest that holds it). */
export const FORMAT_VERSION = 2;
const DIGEST = 16;
const FIXED = 57;
const FLAG_LABELED = 1;
const FLAG_PORTABLE = 2;
const FLAG_RAW = 4;
const FLAG_WASM = 8;
const TRANSFORMS = ['none', 'quantise', 'binarise'] as const;

/**
 * Which backend computes a file's probabilities. 'native': oneDNN, exact on machines of the same
 * ISA with the same arpix; 'portable': the TypeScript backend, the same everywhere JavaScript runs;
 * 'wasm': the WebAssembly backend, the same everywhere WebAssembly runs, with the same arpix.
 */
export type CodecMode = 'native' | 'portable' | 'wasm';
export const CODEC_MODES: readonly CodecMode[] = ['native', 'portable', 'wasm'];

/** How the probabilities were computed: a decoder must compute the same ones. */
export interface NumericSetup {
  mode: CodecMode;
  /** oneDNN's ISA for native files (its kernels differ between ISAs), else null. */
  isa: string | null;
  /** Images per stepper call. */
  block: number;
  /** OpenMP threads of a native encoder (a kernel may split its work by them); 0 for the other modes. */
  threads: number;
  arpixVersion: string;
}

export interface CompressedHeader {
  model: {
    /** 32 hex digits: the first 128 bits of the SHA-256 of the model's config and the weights used. */
    digest: string;
    kind: string;
    weights: 'ema' | 'raw';
    height: number;
    width: number;
    channels: number;
  };
  images: {
    count: number;
    /** Whether the stream opens with one class label per image (class-conditional models). */
    labeled: boolean;
    /** What maps the 8-bit pixels to the values the model codes, and back. */
    transform: PixelTransform;
    /** 32 hex digits of the SHA-256 of the coded values (model domain) as bytes, then the labels as int32. */
    values: string;
  };
  numeric: NumericSetup;
}

/** The first 128 bits of a SHA-256, as 32 hex digits. */
export function digest16(data: Uint8Array): string {
  return sha256().update(data).hex().slice(0, 2 * DIGEST);
}

/** Hex digits → bytes (the digests a header holds). */
function fromHex(hex: string): Uint8Array {
  return Uint8Array.from({ length: hex.length / 2 }, (_, i) => parseInt(hex.slice(2 * i, 2 * i + 2), 16));
}

/** Bytes → hex digits. */
function toHex(bytes: Uint8Array): string {
  let s = '';
  for (const b of bytes) s += b.toString(16).padStart(2, '0');
  return s;
}

function shortText(s: string, what: string): Uint8Array {
  const b = new TextEncoder().encode(s);
  if (b.length > 255) throw new RangeError(`compress: the ${what} '${s.slice(0, 40)}…' is longer than 255 bytes`);
  return Uint8Array.of(b.length, ...b);
}

/** The file's bytes. */
export function writeCompressed(h: CompressedHeader, stream: Uint8Array): Uint8Array {
  const texts = [shortText(h.model.kind, 'model kind'), shortText(h.numeric.isa ?? '', 'ISA'), shortText(h.numeric.arpixVersion, 'version')];
  const head = FIXED + texts.reduce((s, t) => s + t.length, 0);
  const out = new Uint8Array(head + stream.length + DIGEST);
  const v = new DataView(out.buffer);
  out.set(MAGIC, 0);
  v.setUint16(8, h.numeric.mode === 'wasm' ? 2 : 1, true);
  const mode = h.numeric.mode === 'portable' ? FLAG_PORTABLE : h.numeric.mode === 'wasm' ? FLAG_WASM : 0;
  v.setUint8(10, (h.images.labeled ? FLAG_LABELED : 0) | mode | (h.model.weights === 'raw' ? FLAG_RAW : 0));
  v.setUint16(11, h.model.height, true);
  v.setUint16(13, h.model.width, true);
  v.setUint8(15, h.model.channels);
  v.setUint32(16, h.images.count, true);
  const t = h.images.transform;
  v.setUint8(20, TRANSFORMS.indexOf(t.kind as (typeof TRANSFORMS)[number]));
  v.setUint8(21, t.kind === 'quantise' ? t.bits : 0);
  v.setUint16(22, h.numeric.block, true);
  out.set(fromHex(h.model.digest), 24);
  out.set(fromHex(h.images.values), 40);
  v.setUint8(56, h.numeric.threads);
  let at = FIXED;
  for (const text of texts) { out.set(text, at); at += text.length; }
  out.set(stream, head);
  out.set(fromHex(digest16(out.subarray(0, head + stream.length))), head + stream.length);
  return out;
}

/** Reads a compressed file: checks its frame, checksum and fields; returns its header and stream. */
export function readCompressed(bytes: Uint8Array, file: string): { header: CompressedHeader; stream: Uint8Array } {
  if (bytes.length < FIXED + 3 + DIGEST || !MAGIC.every((b, i) => bytes[i] === b)) {
    throw new FormatError(file, 'is not a file of arpix compress (its first bytes are not ARPIXZ); give a file that arpix compress wrote');
  }
  const v = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const version = v.getUint16(8, true);
  if (version > FORMAT_VERSION) throw new FormatError(file, `was written in format version ${version} by a newer arpix; this arpix reads version ${FORMAT_VERSION} — upgrade arpix to decode it`);
  if (version < 1) throw new FormatError(file, `declares format version ${version}, which does not exist; the file is damaged`);
  const end = bytes.length - DIGEST;
  if (digest16(bytes.subarray(0, end)) !== toHex(bytes.subarray(end))) {
    throw new FormatError(file, 'fails its checksum: the file is damaged or truncated; nothing was decoded');
  }
  // The checksum holds: what follows is what arpix wrote, or a deliberate edit, so every field is still checked.
  const bad = (what: string) => new FormatError(file, `has a header whose ${what}; the file was not written by arpix compress`);
  const flags = v.getUint8(10);
  if (flags & ~(FLAG_LABELED | FLAG_PORTABLE | FLAG_RAW | (version >= 2 ? FLAG_WASM : 0))) throw bad(`flags ${flags} include unknown ones`);
  if ((flags & FLAG_PORTABLE) && (flags & FLAG_WASM)) throw bad(`flags ${flags} name two modes, portable and wasm`);
  const [height, width, channels, count] = [v.getUint16(11, true), v.getUint16(13, true), v.getUint8(15), v.getUint32(16, true)];
  if (height < 1 || width < 1 || channels < 1 || channels > 4 || count < 1) throw bad(`shape ${count}×${height}×${width}×${channels} is empty or has more than 4 channels`);
  const tk = v.getUint8(20);
  const bits = v.getUint8(21);
  if (tk >= TRANSFORMS.length || (tk === 1 && (bits < 1 || bits > 8))) throw bad(`pixel transform ${tk} (bits ${bits}) is not none, quantise to 1..8 bits, or binarise`);
  const transform: PixelTransform = tk === 1 ? { kind: 'quantise', bits } : { kind: TRANSFORMS[tk] as 'none' | 'binarise' };
  const block = v.getUint16(22, true);
  if (block < 1 || block > 4096) throw bad(`block ${block} is not in 1..4096`);
  const threads = v.getUint8(56);
  let at = FIXED;
  const text = (what: string): string => {
    const len = bytes[at]!;
    if (at + 1 + len > end) throw bad(`${what} runs past the end`);
    const s = new TextDecoder('utf-8', { fatal: true }).decode(bytes.subarray(at + 1, at + 1 + len));
    at += 1 + len;
    return s;
  };
  let kind: string, isa: string, arpixVersion: string;
  try {
    [kind, isa, arpixVersion] = [text('model kind'), text('ISA'), text('arpix version')];
  } catch (e) {
    if (e instanceof FormatError) throw e;
    throw bad('texts are not UTF-8');
  }
  const mode: CodecMode = flags & FLAG_PORTABLE ? 'portable' : flags & FLAG_WASM ? 'wasm' : 'native';
  // Only a native file's numbers depend on the machine: its ISA and threads, which the others leave empty.
  const native = mode === 'native';
  if (native !== (isa !== '')) throw bad(native ? 'native file names no ISA' : `${mode} file names an ISA`);
  if (native !== (threads !== 0)) throw bad(native ? 'native file names no thread count' : `${mode} file names a thread count`);
  const header: CompressedHeader = {
    model: { digest: toHex(bytes.subarray(24, 40)), kind, weights: flags & FLAG_RAW ? 'raw' : 'ema', height, width, channels },
    images: { count, labeled: (flags & FLAG_LABELED) !== 0, transform, values: toHex(bytes.subarray(40, 56)) },
    numeric: { mode, isa: native ? isa : null, block, threads, arpixVersion },
  };
  return { header, stream: bytes.subarray(at, end) };
}
