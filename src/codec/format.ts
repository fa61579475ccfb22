// The compressed file (`arpix compress`), version 1, all integers little-endian:
//
//   magic        8 bytes  "ARPIXZ\r\n" (a text-mode copy breaks it visibly)
//   version      u16      1
//   header size  u32      bytes of the header
//   header       JSON     CompressedHeader: the model's identity, the images' shape, count and pixel
//                         transform, the numeric setup that computed the probabilities, the
//                         stream's size and a SHA-256 of the decoded values and labels
//   stream       bytes    the rANS stream (rans.ts): the class labels (uniform over the classes)
//                         when the model is class-conditional, then every image, block after block
//   checksum     32 bytes SHA-256 of everything before it
//
// A file is read whole and checked before anything is decoded: its size, magic, version, checksum
// and header fields, each refused with one line saying what to do.

import { createHash } from 'node:crypto';
import { FormatError } from '../errors.js';
import type { PixelTransform } from '../data/transforms.js';

export const MAGIC = Uint8Array.from([0x41, 0x52, 0x50, 0x49, 0x58, 0x5a, 0x0d, 0x0a]); // ARPIXZ\r\n
export const FORMAT_VERSION = 1;
const FIXED = MAGIC.length + 2 + 4;
const CHECKSUM = 32;
/** A header is a few hundred bytes; far beyond this is damage. */
const MAX_HEADER = 1 << 20;

/** How the probabilities were computed: a decoder must compute the same ones. */
export interface NumericSetup {
  /** 'native': the oneDNN backend, exact on machines of the same ISA and build; 'portable': the TypeScript backend, the same everywhere Node runs. */
  mode: 'native' | 'portable';
  backend: 'native' | 'ts';
  /** oneDNN's ISA for native files (its kernels differ between ISAs), else null. */
  isa: string | null;
  /** Images per stepper call. */
  block: number;
  arpixVersion: string;
}

export interface CompressedHeader {
  format: 'arpix-compressed';
  version: number;
  model: {
    /** SHA-256 of the model's config and the weights used (see modelDigest). */
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
    /** SHA-256 of the coded values (model domain) as bytes, then the labels as 32-bit integers. */
    valuesSha256: string;
  };
  numeric: NumericSetup;
  stream: { bytes: number; idealBits: number };
}

/** The file's bytes. */
export function writeCompressed(header: CompressedHeader, stream: Uint8Array): Uint8Array {
  const json = new TextEncoder().encode(JSON.stringify(header));
  const out = new Uint8Array(FIXED + json.length + stream.length + CHECKSUM);
  const view = new DataView(out.buffer);
  out.set(MAGIC, 0);
  view.setUint16(MAGIC.length, FORMAT_VERSION, true);
  view.setUint32(MAGIC.length + 2, json.length, true);
  out.set(json, FIXED);
  out.set(stream, FIXED + json.length);
  const end = FIXED + json.length + stream.length;
  out.set(createHash('sha256').update(out.subarray(0, end)).digest(), end);
  return out;
}

const isInt = (v: unknown, lo: number, hi: number): v is number => typeof v === 'number' && Number.isInteger(v) && v >= lo && v <= hi;
const isHex = (v: unknown): v is string => typeof v === 'string' && /^[0-9a-f]{64}$/.test(v);

/** The header's fields, checked; the message names the first field that is wrong. */
function checkHeader(h: unknown, file: string): CompressedHeader {
  const bad = (what: string) => new FormatError(file, `has a header whose ${what}; the file is damaged or was not written by arpix compress`);
  const o = h as CompressedHeader;
  if (typeof o !== 'object' || o === null || o.format !== 'arpix-compressed') throw bad("'format' is not arpix-compressed");
  const m = o.model;
  if (typeof m !== 'object' || m === null || !isHex(m.digest) || typeof m.kind !== 'string' || (m.weights !== 'ema' && m.weights !== 'raw')) throw bad('model is missing or malformed');
  if (!isInt(m.height, 1, 4096) || !isInt(m.width, 1, 4096) || !isInt(m.channels, 1, 4)) throw bad('image shape is not positive integers');
  const im = o.images;
  if (typeof im !== 'object' || im === null || !isInt(im.count, 1, 2 ** 31) || !isHex(im.valuesSha256)) throw bad('images field is missing or malformed');
  if (typeof im.labeled !== 'boolean') throw bad("'labeled' is not true or false");
  const t = im.transform as { kind?: unknown; bits?: unknown };
  if (typeof t !== 'object' || t === null || !['none', 'quantise', 'binarise'].includes(String(t.kind)) || (t.kind === 'quantise' && !isInt(t.bits, 1, 8))) throw bad('pixel transform is not none, quantise or binarise');
  const n = o.numeric;
  if (typeof n !== 'object' || n === null || (n.mode !== 'native' && n.mode !== 'portable') || (n.backend !== 'native' && n.backend !== 'ts') || !isInt(n.block, 1, 4096) || typeof n.arpixVersion !== 'string' || (n.isa !== null && typeof n.isa !== 'string')) throw bad('numeric setup is malformed');
  const s = o.stream;
  if (typeof s !== 'object' || s === null || !isInt(s.bytes, 7, 2 ** 52) || typeof s.idealBits !== 'number' || !(s.idealBits >= 0)) throw bad('stream size is malformed');
  return o;
}

/** Reads a compressed file: checks its frame and checksum, returns its header and stream. */
export function readCompressed(bytes: Uint8Array, file: string): { header: CompressedHeader; stream: Uint8Array } {
  if (bytes.length < FIXED + CHECKSUM || !MAGIC.every((b, i) => bytes[i] === b)) {
    throw new FormatError(file, 'is not a file of arpix compress (its first bytes are not ARPIXZ); give a file that arpix compress wrote');
  }
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const version = view.getUint16(MAGIC.length, true);
  if (version > FORMAT_VERSION) throw new FormatError(file, `was written in format version ${version} by a newer arpix; this arpix reads version ${FORMAT_VERSION} — upgrade arpix to decode it`);
  if (version < 1) throw new FormatError(file, `declares format version ${version}, which does not exist; the file is damaged`);
  const headerSize = view.getUint32(MAGIC.length + 2, true);
  if (headerSize > MAX_HEADER || FIXED + headerSize + CHECKSUM > bytes.length) throw new FormatError(file, `declares a ${headerSize}-byte header in a ${bytes.length}-byte file; the file is truncated or damaged`);
  const end = bytes.length - CHECKSUM;
  const sum = createHash('sha256').update(bytes.subarray(0, end)).digest();
  if (!sum.equals(bytes.subarray(end))) throw new FormatError(file, 'fails its SHA-256 checksum: the file is damaged or truncated; nothing was decoded');
  let header: unknown;
  try {
    header = JSON.parse(new TextDecoder('utf-8', { fatal: true }).decode(bytes.subarray(FIXED, FIXED + headerSize)));
  } catch {
    throw new FormatError(file, 'has a header that is not JSON text; the file is damaged');
  }
  const h = checkHeader(header, file);
  const stream = bytes.subarray(FIXED + headerSize, end);
  if (stream.length !== h.stream.bytes) throw new FormatError(file, `holds a ${stream.length}-byte stream where its header says ${h.stream.bytes}; the file is damaged`);
  return { header: h, stream };
}
