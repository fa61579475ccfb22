// Reading a data file whole, gunzipping it when it starts with the gzip magic, with every failure
// turned into a FormatError that names the file.

import fs from 'node:fs';
import zlib from 'node:zlib';
import { FormatError } from '../errors.js';

export function isGzip(bytes: Uint8Array): boolean {
  return bytes.length >= 2 && bytes[0] === 0x1f && bytes[1] === 0x8b;
}

export function readFileOrThrow(file: string): Uint8Array {
  try {
    return fs.readFileSync(file);
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    const why = code === 'ENOENT' ? 'does not exist' : code === 'EACCES' ? 'is not readable (permission denied)' : code === 'EISDIR' ? 'is a directory, expected a file' : `cannot be read (${(e as Error).message})`;
    throw new FormatError(file, why, { cause: e });
  }
}

/** The file's bytes, decompressed if it is gzipped (whatever its name says). */
export function readMaybeGzip(file: string): Uint8Array {
  const raw = readFileOrThrow(file);
  if (!isGzip(raw)) return raw;
  try {
    return zlib.gunzipSync(raw);
  } catch (e) {
    const msg = (e as Error).message;
    const detail = /unexpected end/i.test(msg) ? 'is a truncated gzip file (the download may have been cut short)' : `is a corrupt gzip file (${msg})`;
    throw new FormatError(file, detail, { cause: e });
  }
}
