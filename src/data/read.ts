// Reading a data file whole, gunzipping it when it starts with the gzip magic, with every failure
// turned into a FormatError that names the file.

import zlib from 'node:zlib';
import { FormatError } from '../errors.js';
import { MAX_DATA_FILE, readRegularFile } from '../io/files.js';

export function isGzip(bytes: Uint8Array): boolean {
  return bytes.length >= 2 && bytes[0] === 0x1f && bytes[1] === 0x8b;
}

/** A regular data file of at most MAX_DATA_FILE bytes (a FIFO or a device is refused, not read forever). */
export function readFileOrThrow(file: string): Uint8Array {
  return readRegularFile(file, MAX_DATA_FILE, 'a data file');
}

/** The file's bytes, decompressed if it is gzipped (whatever its name says). */
export function readMaybeGzip(file: string): Uint8Array {
  const raw = readFileOrThrow(file);
  if (!isGzip(raw)) return raw;
  try {
    // A bound on the output keeps a gzip bomb from taking all memory.
    return zlib.gunzipSync(raw, { maxOutputLength: MAX_DATA_FILE });
  } catch (e) {
    const msg = (e as Error).message;
    if ((e as NodeJS.ErrnoException).code === 'ERR_BUFFER_TOO_LARGE') throw new FormatError(file, `unpacks to more than the ${MAX_DATA_FILE / 2 ** 30} GiB a data file can hold`, { cause: e });
    const detail = /unexpected end/i.test(msg) ? 'is a truncated gzip file (the download may have been cut short)' : `is a corrupt gzip file (${msg})`;
    throw new FormatError(file, detail, { cause: e });
  }
}
