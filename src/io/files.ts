// Reading a whole file with limits, and checking an output folder before anything is written.
//
// Every reader of a user's file (images, .npy, IDX, configs, checkpoints) goes through
// readRegularFile: a FIFO, a device such as /dev/zero, a socket or a folder is refused at once
// instead of read forever, a file larger than its format can need is refused before a byte is
// allocated, and a file that grows or shrinks while it is read (a /proc file, a log being written)
// is refused rather than half read. Opening with O_NONBLOCK keeps a FIFO without a writer from
// blocking the open itself.

import { closeSync, constants, existsSync, fstatSync, openSync, readSync, statfsSync, statSync, type Stats } from 'node:fs';
import { mkdir } from 'node:fs/promises';
import { dirname, resolve } from 'node:path';
import { ArpixError, FormatError } from '../errors.js';

export const MiB = 1024 * 1024;
/** Largest .npy / IDX file (and gunzipped size): Node's own limit for one file read whole. */
export const MAX_DATA_FILE = 2 * 1024 * MiB;
/** Largest PNG / JPEG file: far above any image arpix models, far below what would hurt. */
export const MAX_IMAGE_FILE = 64 * MiB;
/** Largest JSON config file. */
export const MAX_CONFIG_FILE = 1 * MiB;

/** Sizes as a reader says them: "12.3 MiB". */
export function formatBytes(n: number): string {
  if (n < 1024) return `${n} bytes`;
  const units = ['KiB', 'MiB', 'GiB', 'TiB'];
  let v = n / 1024;
  let u = 0;
  while (v >= 1024 && u < units.length - 1) {
    v /= 1024;
    u++;
  }
  return `${v.toFixed(1)} ${units[u]}`;
}

function kindOf(st: Stats): string {
  if (st.isFIFO()) return 'a FIFO (named pipe)';
  if (st.isCharacterDevice()) return 'a character device';
  if (st.isBlockDevice()) return 'a block device';
  if (st.isSocket()) return 'a socket';
  return 'not a regular file';
}

/** Why a file could not be opened, in words, from its errno code. */
export function describeOpenError(e: unknown): string {
  const code = (e as NodeJS.ErrnoException).code;
  switch (code) {
    case 'ENOENT': return 'does not exist';
    case 'EACCES': case 'EPERM': return 'is not readable (permission denied)';
    case 'EISDIR': return 'is a folder, not a file';
    case 'ENOTDIR': return 'does not exist (a part of its path is a file, not a folder)';
    case 'ELOOP': return 'is a loop of symbolic links';
    case 'ENAMETOOLONG': return 'has a name too long for the file system';
    default: return `cannot be read (${code ?? (e as Error).message})`;
  }
}

/**
 * The bytes of `file`, which must be a regular file of at most `maxBytes` bytes. `what` names
 * the format for the size error ("a PNG or JPEG image"). Every failure is a FormatError.
 */
export function readRegularFile(file: string, maxBytes: number, what: string): Buffer {
  let fd: number;
  try {
    fd = openSync(file, constants.O_RDONLY | constants.O_NONBLOCK);
  } catch (e) {
    throw new FormatError(file, describeOpenError(e), { cause: e });
  }
  try {
    const st = fstatSync(fd);
    if (st.isDirectory()) throw new FormatError(file, 'is a folder, not a file');
    if (!st.isFile()) throw new FormatError(file, `is ${kindOf(st)}, not a file arpix can read; give ${what} on disk`);
    if (st.size > maxBytes) throw new FormatError(file, `is ${formatBytes(st.size)}, more than ${what} can need (${formatBytes(maxBytes)} at most)`);
    const buf = Buffer.allocUnsafe(st.size);
    let off = 0;
    try {
      while (off < st.size) {
        const n = readSync(fd, buf, off, st.size - off, off);
        if (n === 0) break;
        off += n;
      }
      // A file that holds more than its size said (a /proc file, one being appended to) is refused.
      if (off === st.size && readSync(fd, Buffer.alloc(1), 0, 1, off) > 0) off = -1;
    } catch (e) {
      throw new FormatError(file, `cannot be read (${(e as NodeJS.ErrnoException).code ?? (e as Error).message})`, { cause: e });
    }
    if (off !== st.size) throw new FormatError(file, 'changed size while it was read; read it again once nothing writes it');
    return buf;
  } finally {
    closeSync(fd);
  }
}

// ---- output folders ------------------------------------------------------------------------

/** Linux file systems that hold no user files (statfs magic numbers, from linux/magic.h). */
const PSEUDO_FILESYSTEMS: ReadonlyMap<number, string> = new Map([
  [0x9fa0, 'proc'], [0x62656572, 'sysfs'], [0x1cd1, 'devpts'], [0x64626720, 'debugfs'], [0x74726163, 'tracefs'],
  [0x27e0eb, 'cgroup'], [0x63677270, 'cgroup2'], [0x73636673, 'securityfs'], [0xcafe4a11, 'bpf'], [0x6165676c, 'pstore'],
  [0x62656570, 'configfs'], [0x65735543, 'fusectl'], [0xde5e81e4, 'efivarfs'], [0x42494e4d, 'binfmt_misc'], [0x50495045, 'pipefs'],
]);

/** An output folder arpix will not write: the message says why and what to do. */
export class OutputFolderError extends ArpixError {}

/**
 * Checks, before anything is written, that `dir` can be an output folder: it, or the nearest
 * folder above it that exists, is a folder on a file system that holds files (not /proc, /sys, …).
 */
export function checkOutputFolder(dir: string): void {
  let p = resolve(dir);
  for (;;) {
    let st: Stats | null = null;
    try {
      st = statSync(p);
    } catch (e) {
      const code = (e as NodeJS.ErrnoException).code;
      if (code !== 'ENOENT') {
        if (code === 'ENOTDIR') throw new OutputFolderError(`cannot mkdir ${dir}: a part of the path is a file, not a folder; choose another folder`);
        throw new OutputFolderError(`${dir}: cannot look at ${p} (${code ?? (e as Error).message}); choose another folder`);
      }
    }
    if (st) {
      if (!st.isDirectory()) {
        throw new OutputFolderError(p === resolve(dir) ? `${dir} is a file, not a folder; choose another folder` : `cannot mkdir ${dir}: a part of the path is a file, not a folder (${p}); choose another folder`);
      }
      let type: number | null = null;
      try {
        type = statfsSync(p).type;
      } catch {
        // a platform without statfs: nothing more to check
      }
      const name = type === null ? undefined : PSEUDO_FILESYSTEMS.get(type);
      if (name !== undefined) throw new OutputFolderError(`${dir} is on ${p === '/' ? '/' : p}, a ${name} pseudo-filesystem that holds no files; choose a folder on a disk`);
      return;
    }
    const up = dirname(p);
    if (up === p) return;
    p = up;
  }
}

/**
 * Creates `dir` and its parents. Node's recursive mkdir reports ENOENT when a parent cannot be
 * made (on a read-only file system, say), which reads as "does not exist"; the error thrown here
 * is the real one, from a plain mkdir of the first missing folder.
 */
export async function makeFolder(dir: string): Promise<void> {
  try {
    await mkdir(dir, { recursive: true });
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code !== 'ENOENT') throw e;
    let p = resolve(dir);
    while (!existsSync(dirname(p)) && dirname(p) !== p) p = dirname(p);
    await mkdir(p); // throws EROFS, EACCES, … naming p
    throw e;
  }
}

/** Output files that exist already, refused without --force; the message names them and what to do. */
export class OutputExistsError extends ArpixError {
  constructor(readonly paths: readonly string[], instead: string, options?: { cause?: unknown }) {
    const named = paths.length > 4 ? `${paths.slice(0, 3).join(', ')} and ${paths.length - 3} more files` : paths.join(', ');
    super(`${named} already ${paths.length === 1 ? 'exists' : 'exist'}; pass --force to replace ${paths.length === 1 ? 'it' : 'them'}, or choose another ${instead}`, options);
  }
}

/** Refuses, unless `force`, every one of `paths` that exists, all named in one line. */
export function refuseExistingOutputs(paths: readonly string[], force: boolean, instead: string): void {
  if (force) return;
  const existing = paths.filter((p) => existsSync(p));
  if (existing.length > 0) throw new OutputExistsError(existing, instead);
}
