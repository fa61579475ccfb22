// Reading a zip archive, as much of the format (PKWARE's APPNOTE) as torch.save's files use: the
// central directory at the end, entries stored or deflated, zip64 sizes and offsets for files over
// 4 GiB. Nothing is extracted to disk; an entry is a view of the file's bytes (or its inflated
// copy).

import zlib from 'node:zlib';
import { FormatError } from '../errors.js';

export interface ZipEntry {
  name: string;
  /** Compression method: 0 stored, 8 deflated. */
  method: number;
  compressedSize: number;
  size: number;
  /** Offset of the entry's local header. */
  offset: number;
}

const EOCD = 0x06054b50;
const ZIP64_EOCD = 0x06064b50;
const ZIP64_LOCATOR = 0x07064b50;
const CENTRAL = 0x02014b50;
const LOCAL = 0x04034b50;

export function isZip(bytes: Uint8Array): boolean {
  return bytes.length >= 4 && bytes[0] === 0x50 && bytes[1] === 0x4b && bytes[2] === 0x03 && bytes[3] === 0x04;
}

function u64(view: DataView, at: number): number {
  const v = view.getBigUint64(at, true);
  if (v > BigInt(Number.MAX_SAFE_INTEGER)) throw new RangeError('zip64 value beyond 2^53');
  return Number(v);
}

/** The entries of a zip archive by name. */
export function readZipDirectory(bytes: Uint8Array, file: string): Map<string, ZipEntry> {
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  let eocd = -1;
  for (let i = bytes.length - 22; i >= Math.max(0, bytes.length - 22 - 65535); i--) {
    if (view.getUint32(i, true) === EOCD) { eocd = i; break; }
  }
  if (eocd < 0) throw new FormatError(file, 'is a zip archive without its end-of-directory record (truncated?)');
  let count = view.getUint16(eocd + 10, true);
  let dirOffset = view.getUint32(eocd + 16, true);
  if ((count === 0xffff || dirOffset === 0xffffffff) && eocd >= 20 && view.getUint32(eocd - 20, true) === ZIP64_LOCATOR) {
    const z = u64(view, eocd - 20 + 8);
    if (view.getUint32(z, true) !== ZIP64_EOCD) throw new FormatError(file, 'has a broken zip64 end-of-directory record');
    count = u64(view, z + 32);
    dirOffset = u64(view, z + 48);
  }
  const entries = new Map<string, ZipEntry>();
  let at = dirOffset;
  for (let k = 0; k < count; k++) {
    if (at + 46 > bytes.length || view.getUint32(at, true) !== CENTRAL) throw new FormatError(file, `has a broken zip directory at entry ${k}`);
    const method = view.getUint16(at + 10, true);
    let compressedSize = view.getUint32(at + 20, true);
    let size = view.getUint32(at + 24, true);
    const nameLen = view.getUint16(at + 28, true);
    const extraLen = view.getUint16(at + 30, true);
    const commentLen = view.getUint16(at + 32, true);
    let offset = view.getUint32(at + 42, true);
    const name = new TextDecoder().decode(bytes.subarray(at + 46, at + 46 + nameLen));
    // zip64: the 0xffffffff fields are given, in this order, in extra field 0x0001.
    let e = at + 46 + nameLen;
    const end = e + extraLen;
    while (e + 4 <= end) {
      const id = view.getUint16(e, true);
      const len = view.getUint16(e + 2, true);
      if (id === 1) {
        let p = e + 4;
        if (size === 0xffffffff) { size = u64(view, p); p += 8; }
        if (compressedSize === 0xffffffff) { compressedSize = u64(view, p); p += 8; }
        if (offset === 0xffffffff) offset = u64(view, p);
      }
      e += 4 + len;
    }
    entries.set(name, { name, method, compressedSize, size, offset });
    at = end + commentLen;
  }
  return entries;
}

/** The bytes of one entry (a view when stored, a copy when deflated). */
export function readZipEntry(bytes: Uint8Array, entry: ZipEntry, file: string): Uint8Array {
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  if (view.getUint32(entry.offset, true) !== LOCAL) throw new FormatError(file, `zip entry '${entry.name}' has no local header`);
  const start = entry.offset + 30 + view.getUint16(entry.offset + 26, true) + view.getUint16(entry.offset + 28, true);
  const data = bytes.subarray(start, start + entry.compressedSize);
  if (data.length !== entry.compressedSize) throw new FormatError(file, `zip entry '${entry.name}' is truncated`);
  if (entry.method === 0) return data;
  if (entry.method === 8) return zlib.inflateRawSync(data);
  throw new FormatError(file, `zip entry '${entry.name}' uses compression method ${entry.method}; arpix reads stored (0) and deflated (8) entries`);
}
