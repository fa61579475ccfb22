// Reading a zip archive, as much of the format (PKWARE's APPNOTE) as torch.save's files use: the
// central directory at the end, entries stored or deflated, zip64 sizes and offsets for files over
// 4 GiB. Nothing is extracted to disk; an entry is a view of the file's bytes (or its inflated
// copy).
//
// A hostile archive must cost no more than its honest twin. So the directory is checked whole
// before any entry is read: every record lies inside the file, each local header agrees with its
// directory record, entries neither overlap nor run into the directory, and no deflated entry
// declares more than deflate can produce from its compressed bytes (1032:1). An entry then
// inflates into at most the size its record declares — a stream that would give more is stopped
// there, one that gives fewer is refused — and its CRC-32 must match, as PyTorch's reader requires.

import zlib from 'node:zlib';
import { FormatError } from '../errors.js';

export interface ZipEntry {
  name: string;
  /** Compression method: 0 stored, 8 deflated. */
  method: number;
  compressedSize: number;
  /** The uncompressed size the directory declares; reading never yields more or fewer bytes. */
  size: number;
  crc: number;
  /** Offset of the entry's local header. */
  offset: number;
  /** Offset of the entry's (compressed) data. */
  dataStart: number;
}

const EOCD = 0x06054b50;
const ZIP64_EOCD = 0x06064b50;
const ZIP64_LOCATOR = 0x07064b50;
const CENTRAL = 0x02014b50;
const LOCAL = 0x04034b50;

/** Deflate's densest code: a 258-byte match in two bits, so no stream inflates by more than this. */
export const DEFLATE_MAX_RATIO = 1032;

export function isZip(bytes: Uint8Array): boolean {
  return bytes.length >= 4 && bytes[0] === 0x50 && bytes[1] === 0x4b && bytes[2] === 0x03 && bytes[3] === 0x04;
}

let crcTable: Int32Array | undefined;

/** CRC-32 as zip computes it: zlib's where this Node has it (≥ 20.15), else a table. */
function crc32(data: Uint8Array): number {
  if (typeof zlib.crc32 === 'function') return zlib.crc32(data) >>> 0;
  crcTable ??= Int32Array.from({ length: 256 }, (_, n) => {
    let c = n;
    for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
    return c;
  });
  let c = -1;
  for (let i = 0; i < data.length; i++) c = crcTable[(c ^ data[i]!) & 0xff]! ^ (c >>> 8);
  return (c ^ -1) >>> 0;
}

/** The entries of a zip archive by name, every record checked against the file; nothing is inflated. */
export function readZipDirectory(bytes: Uint8Array, file: string): Map<string, ZipEntry> {
  const bad = (detail: string) => new FormatError(file, `is a damaged zip archive: ${detail}`);
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  // A zip64 value: an offset, count or stored size within the file; an inflated size below 2^53.
  const u64 = (at: number, what: string, limit = bytes.length): number => {
    if (at + 8 > bytes.length) throw bad(`its ${what} lies beyond the end of the file`);
    const v = view.getBigUint64(at, true);
    if (v > BigInt(limit)) throw bad(`its ${what} (${v}) exceeds ${limit === bytes.length ? `the file's ${limit} bytes` : limit}`);
    return Number(v);
  };
  let eocd = -1;
  for (let i = bytes.length - 22; i >= Math.max(0, bytes.length - 22 - 65535); i--) {
    if (view.getUint32(i, true) === EOCD) { eocd = i; break; }
  }
  if (eocd < 0) throw new FormatError(file, 'is a zip archive without its end-of-directory record (truncated?)');
  if (view.getUint16(eocd + 4, true) !== 0 || view.getUint16(eocd + 6, true) !== 0) throw bad('it says it spans several disks');
  let count = view.getUint16(eocd + 10, true);
  let dirSize = view.getUint32(eocd + 12, true);
  let dirOffset = view.getUint32(eocd + 16, true);
  let dirLimit = eocd;
  if ((count === 0xffff || dirSize === 0xffffffff || dirOffset === 0xffffffff) && eocd >= 20 && view.getUint32(eocd - 20, true) === ZIP64_LOCATOR) {
    const z = u64(eocd - 20 + 8, 'zip64 end-of-directory offset');
    if (z + 56 > eocd - 20 || view.getUint32(z, true) !== ZIP64_EOCD) throw bad('its zip64 end-of-directory record is broken');
    count = u64(z + 32, 'zip64 entry count');
    dirSize = u64(z + 40, 'zip64 directory size');
    dirOffset = u64(z + 48, 'zip64 directory offset');
    dirLimit = z;
  }
  if (dirOffset + dirSize > dirLimit) throw bad(`its directory [${dirOffset}, ${dirOffset + dirSize}) runs past the end record at ${dirLimit}`);
  if (count * 46 > dirSize) throw bad(`${count} entries cannot fit a directory of ${dirSize} bytes`);
  const dirEnd = dirOffset + dirSize;

  const entries = new Map<string, ZipEntry>();
  const dec = new TextDecoder();
  let at = dirOffset;
  for (let k = 0; k < count; k++) {
    if (at + 46 > dirEnd || view.getUint32(at, true) !== CENTRAL) throw bad(`directory record ${k} is missing or broken`);
    const flags = view.getUint16(at + 8, true);
    const method = view.getUint16(at + 10, true);
    const crc = view.getUint32(at + 16, true);
    let compressedSize = view.getUint32(at + 20, true);
    let size = view.getUint32(at + 24, true);
    const nameLen = view.getUint16(at + 28, true);
    const extraLen = view.getUint16(at + 30, true);
    const commentLen = view.getUint16(at + 32, true);
    let offset = view.getUint32(at + 42, true);
    const next = at + 46 + nameLen + extraLen + commentLen;
    if (next > dirEnd) throw bad(`directory record ${k} runs past the directory's end`);
    const name = dec.decode(bytes.subarray(at + 46, at + 46 + nameLen));
    if (flags & 1) throw new FormatError(file, `zip entry '${name}' is encrypted; torch.save never encrypts`);
    // zip64: the 0xffffffff fields are given, in this order, in extra field 0x0001.
    let e = at + 46 + nameLen;
    const end = e + extraLen;
    while (e + 4 <= end) {
      const id = view.getUint16(e, true);
      const len = view.getUint16(e + 2, true);
      if (e + 4 + len > end) throw bad(`the extra fields of '${name}' overrun their record`);
      if (id === 1) {
        let p = e + 4;
        const field = (what: string, limit?: number): number => {
          if (p + 8 > e + 4 + len) throw bad(`the zip64 field of '${name}' lacks its ${what}`);
          const v = u64(p, `zip64 ${what} of '${name}'`, limit);
          p += 8;
          return v;
        };
        if (size === 0xffffffff) size = field('size', Number.MAX_SAFE_INTEGER);
        if (compressedSize === 0xffffffff) compressedSize = field('compressed size');
        if (offset === 0xffffffff) offset = field('offset');
      }
      e += 4 + len;
    }
    if (entries.has(name)) throw bad(`it holds two entries named '${name}'`);
    if (method === 0 && size !== compressedSize) throw bad(`stored entry '${name}' declares ${size} bytes but holds ${compressedSize}`);
    if (method === 8 && size > compressedSize * DEFLATE_MAX_RATIO + 1024) {
      throw bad(`deflated entry '${name}' declares ${size} bytes, more than its ${compressedSize} compressed bytes can hold (at most ${DEFLATE_MAX_RATIO}:1)`);
    }
    // The local header must say what the directory says (with flag 3, sizes and CRC follow the data, and may be zero here).
    if (offset + 30 > dirOffset || view.getUint32(offset, true) !== LOCAL) throw bad(`entry '${name}' has no local header at ${offset}`);
    const localName = view.getUint16(offset + 26, true);
    const dataStart = offset + 30 + localName + view.getUint16(offset + 28, true);
    if (dec.decode(bytes.subarray(offset + 30, offset + 30 + localName)) !== name) throw bad(`the local header of '${name}' names another entry`);
    if (view.getUint16(offset + 8, true) !== method) throw bad(`the local header of '${name}' gives another compression method`);
    const local = [view.getUint32(offset + 14, true), view.getUint32(offset + 18, true), view.getUint32(offset + 22, true)];
    const central = [crc, compressedSize, size];
    for (let i = 0; i < 3; i++) {
      const ok = local[i] === central[i] || (i > 0 && local[i] === 0xffffffff) || ((flags & 8) !== 0 && local[i] === 0);
      if (!ok) throw bad(`the local header of '${name}' gives its ${['CRC', 'compressed size', 'size'][i]} as ${local[i]}, the directory ${central[i]}`);
    }
    if (dataStart + compressedSize > dirOffset) throw bad(`the data of '${name}' runs past the start of the directory`);
    entries.set(name, { name, method, compressedSize, size, crc, offset, dataStart });
    at = next;
  }
  const sorted = [...entries.values()].sort((a, b) => a.offset - b.offset);
  for (let i = 1; i < sorted.length; i++) {
    const prev = sorted[i - 1]!;
    if (sorted[i]!.offset < prev.dataStart + prev.compressedSize) throw bad(`entries '${prev.name}' and '${sorted[i]!.name}' overlap`);
  }
  return entries;
}

/**
 * The bytes of one entry (a view when stored, a copy when deflated): exactly the size its record
 * declares, with the CRC-32 it declares.
 */
export function readZipEntry(bytes: Uint8Array, entry: ZipEntry, file: string): Uint8Array {
  const data = bytes.subarray(entry.dataStart, entry.dataStart + entry.compressedSize);
  if (data.length !== entry.compressedSize) throw new FormatError(file, `zip entry '${entry.name}' is truncated`);
  let out: Uint8Array;
  if (entry.method === 0) {
    out = data;
  } else if (entry.method === 8) {
    try {
      // The limit stops a stream that would give more at the declared size, not after it.
      out = zlib.inflateRawSync(data, { maxOutputLength: Math.max(1, entry.size) });
    } catch (e) {
      const code = (e as { code?: string }).code;
      if (code === 'ERR_BUFFER_TOO_LARGE') throw new FormatError(file, `zip entry '${entry.name}' inflates to more than the ${entry.size} bytes its directory declares (a zip bomb?); refused`);
      throw new FormatError(file, `zip entry '${entry.name}' is damaged: its deflate stream does not inflate (${(e as Error).message})`);
    }
    if (out.length !== entry.size) throw new FormatError(file, `zip entry '${entry.name}' inflates to ${out.length} bytes, not the ${entry.size} its directory declares`);
  } else {
    throw new FormatError(file, `zip entry '${entry.name}' uses compression method ${entry.method}; arpix reads stored (0) and deflated (8) entries`);
  }
  const sum = crc32(out);
  if (sum !== entry.crc) throw new FormatError(file, `zip entry '${entry.name}' is damaged: its CRC-32 is ${sum.toString(16).padStart(8, '0')}, its directory says ${entry.crc.toString(16).padStart(8, '0')}`);
  return out;
}
