// Atomic file writes: write a temporary file in the same folder, flush it to disk, then rename it
// over the target. A rename within one file system is atomic, so a reader (or a run resumed after
// a crash) sees the old file or the new one, never half of one — what checkpoints need.

import { closeSync, fsyncSync, openSync, renameSync, rmSync, writeSync } from 'node:fs';
import { link, open, rename, rm } from 'node:fs/promises';
import { randomBytes } from 'node:crypto';
import { basename, dirname, join } from 'node:path';
import { OutputExistsError } from './files.js';

function tempPathFor(path: string): string {
  return join(dirname(path), `.${basename(path)}.${process.pid}.${randomBytes(4).toString('hex')}.tmp`);
}

function bytesOf(data: Uint8Array | string): Uint8Array {
  return typeof data === 'string' ? Buffer.from(data, 'utf8') : data;
}

// Flushing the folder makes the rename itself durable; some platforms cannot open a folder for
// that, and the write is still atomic without it.
function syncDirSync(dir: string): void {
  let fd: number | null = null;
  try {
    fd = openSync(dir, 'r');
    fsyncSync(fd);
  } catch {
    // best effort
  } finally {
    if (fd !== null) closeSync(fd);
  }
}

async function syncDir(dir: string): Promise<void> {
  try {
    const h = await open(dir, 'r');
    try {
      await h.sync();
    } finally {
      await h.close();
    }
  } catch {
    // best effort
  }
}

/** Writes `data` to `path` atomically (temporary file, fsync, rename). */
export function writeFileAtomicSync(path: string, data: Uint8Array | string): void {
  const tmp = tempPathFor(path);
  const bytes = bytesOf(data);
  try {
    const fd = openSync(tmp, 'wx', 0o644);
    try {
      let off = 0;
      while (off < bytes.length) off += writeSync(fd, bytes, off, bytes.length - off);
      fsyncSync(fd);
    } finally {
      closeSync(fd);
    }
    renameSync(tmp, path);
  } catch (e) {
    rmSync(tmp, { force: true });
    throw e;
  }
  syncDirSync(dirname(path));
}

/** Writes `data` to `path` atomically (temporary file, fsync, rename). */
export async function writeFileAtomic(path: string, data: Uint8Array | string): Promise<void> {
  await writeViaTemp(path, data, (tmp) => rename(tmp, path));
}

/**
 * Writes `data` to `path` atomically, but only if `path` does not exist: the finished temporary
 * file is hard-linked to its name, which fails with EEXIST (and changes nothing) when a file is
 * already there — so the check and the write are one step, with no race between them.
 */
export async function writeFileExclusive(path: string, data: Uint8Array | string): Promise<void> {
  await writeViaTemp(path, data, async (tmp) => {
    await link(tmp, path);
    await rm(tmp, { force: true });
  });
}

async function writeViaTemp(path: string, data: Uint8Array | string, place: (tmp: string) => Promise<void>): Promise<void> {
  const tmp = tempPathFor(path);
  const bytes = bytesOf(data);
  try {
    const h = await open(tmp, 'wx', 0o644);
    try {
      await h.writeFile(bytes);
      await h.sync();
    } finally {
      await h.close();
    }
    await place(tmp);
  } catch (e) {
    await rm(tmp, { force: true });
    throw e;
  }
  await syncDir(dirname(path));
}

/**
 * Writes several files, each atomically. `exclusive`: each must not exist (checked by the write
 * itself, as writeFileExclusive does), and when one cannot be written the ones this call created
 * are removed again, so either all of them are there or none is.
 */
export async function writeFilesAtomic(files: readonly (readonly [string, Uint8Array | string])[], opts: { exclusive: boolean }): Promise<void> {
  const created: string[] = [];
  try {
    for (const [path, data] of files) {
      if (opts.exclusive) await writeFileExclusive(path, data);
      else await writeFileAtomic(path, data);
      created.push(path);
    }
  } catch (e) {
    if (opts.exclusive) for (const p of created) await rm(p, { force: true });
    const path = files[created.length]![0];
    // Another process wrote it since the caller checked: refused, naming the file and not the temporary one.
    if ((e as NodeJS.ErrnoException).code === 'EEXIST') throw new OutputExistsError([path], 'folder', { cause: e });
    if (e && typeof e === 'object' && !('path' in e)) Object.assign(e, { path });
    throw e;
  }
}
