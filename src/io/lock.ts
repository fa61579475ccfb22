// A lock on a folder, held by one process at a time: the file `.arpix.lock` in it, created
// atomically (link of a finished temporary file, which fails when the lock exists) and holding the
// owner's pid, host and start time. A lock whose owner is gone (killed with SIGKILL, the machine
// restarted) is stale: the next process detects it and takes it over, again atomically, so two
// processes that both find it stale cannot both win.

import { linkSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { hostname } from 'node:os';
import { join } from 'node:path';
import { ArpixError } from '../errors.js';

export const LOCK_FILE = '.arpix.lock';

/** The folder is in use by another live process. */
export class LockedError extends ArpixError {
  constructor(readonly dir: string, readonly owner: LockOwner) {
    super(`${dir} is in use by process ${owner.pid} (${owner.command}, started ${owner.started}${owner.host !== hostname() ? ` on ${owner.host}` : ''}); wait for it to finish or stop it, or choose another folder`);
  }
}

export interface LockOwner {
  pid: number;
  host: string;
  command: string;
  started: string;
}

export interface FolderLock {
  readonly path: string;
  /** Removes the lock (once; later calls do nothing). */
  release(): void;
}

function readOwner(path: string): LockOwner | null {
  try {
    const o = JSON.parse(readFileSync(path, 'utf8')) as LockOwner;
    return Number.isInteger(o.pid) && o.pid > 0 ? o : null;
  } catch {
    return null;
  }
}

/** Whether the owner may still run: a live pid on this host, or any lock from another host. */
function ownerAlive(o: LockOwner): boolean {
  if (o.host !== hostname()) return true;
  if (o.pid === process.pid) return true;
  try {
    process.kill(o.pid, 0);
    return true;
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/**
 * Takes the lock of `dir` (which must exist) for `command`, or throws LockedError naming the
 * process that holds it. The lock is removed by release() and, as a last resort, when the process
 * exits (process.exit included).
 */
export function lockFolder(dir: string, command: string): FolderLock {
  const path = join(dir, LOCK_FILE);
  const me: LockOwner = { pid: process.pid, host: hostname(), command, started: new Date().toISOString() };
  const tmp = join(dir, `${LOCK_FILE}.${process.pid}.tmp`);
  writeFileSync(tmp, JSON.stringify(me) + '\n', { mode: 0o644 });
  try {
    for (let attempt = 0; ; attempt++) {
      try {
        linkSync(tmp, path);
        break;
      } catch (e) {
        const code = (e as NodeJS.ErrnoException).code;
        // The holder, tidying the folder's temporary files, may have removed ours: write it again.
        if (code === 'ENOENT' && attempt < 3) {
          writeFileSync(tmp, JSON.stringify(me) + '\n', { mode: 0o644 });
          continue;
        }
        if (code !== 'EEXIST' || attempt >= 3) throw e;
      }
      const owner = readOwner(path);
      if (owner && ownerAlive(owner)) throw new LockedError(dir, owner);
      // Stale (or unreadable, left half-written by a kill): move it aside under a name of our own,
      // then check that what we moved is the stale lock and not one another process just took.
      const aside = join(dir, `${LOCK_FILE}.${process.pid}.stale`);
      try {
        renameSync(path, aside);
      } catch (e) {
        if ((e as NodeJS.ErrnoException).code === 'ENOENT') continue; // someone else moved it
        throw e;
      }
      const moved = readOwner(aside);
      if (moved && ownerAlive(moved)) {
        // A fresh lock of a live process: put it back (unless yet another appeared) and give up.
        try {
          linkSync(aside, path);
        } catch {
          // the folder is locked again either way
        }
        rmSync(aside, { force: true });
        throw new LockedError(dir, moved);
      }
      rmSync(aside, { force: true });
    }
  } finally {
    rmSync(tmp, { force: true });
  }
  let held = true;
  const release = () => {
    if (!held) return;
    held = false;
    process.off('exit', release);
    const owner = readOwner(path);
    if (owner && owner.pid === process.pid && owner.host === me.host) rmSync(path, { force: true });
  };
  process.on('exit', release);
  return { path, release };
}
