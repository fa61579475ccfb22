// Metrics as JSON lines in the run folder: one object per line, appended through one open file
// handle in the background (never a synchronous write in the training step), read back by
// `arpix plot`. A run killed mid-line leaves at most one broken last line, which readers skip.

import { open, readFile, type FileHandle } from 'node:fs/promises';
import { writeFileAtomic } from '../io/atomic.js';

export interface TrainRecord {
  type: 'train';
  step: number;
  epoch: number;
  /** Mean training loss (bits/dim) over the steps since the last record. */
  loss: number;
  lr: number;
  gradNorm: number;
  imagesPerSec: number;
  seconds: number;
}

export interface ValidationRecord {
  type: 'validation';
  step: number;
  epoch: number;
  bitsPerDim: number;
  stderr: number;
  /** Whether the averaged (EMA) weights were evaluated. */
  ema: boolean;
  seconds: number;
}

export type MetricRecord = TrainRecord | ValidationRecord;

export class MetricsLog {
  private pending: Promise<void> = Promise.resolve();
  private error: unknown = null;

  private constructor(private readonly handle: FileHandle, private readonly path: string) {}

  /** Opens `path` to append to (or, with `truncate`, to start empty). */
  static async open(path: string, opts: { truncate?: boolean } = {}): Promise<MetricsLog> {
    return new MetricsLog(await open(path, opts.truncate ? 'w' : 'a'), path);
  }

  /** Queues one record; a write error surfaces at the next flush. */
  append(record: MetricRecord): void {
    const line = JSON.stringify(record) + '\n';
    this.pending = this.pending.then(() => this.handle.write(line)).then(() => undefined, (e: unknown) => {
      // A failed write() names no file; say which one (a full disk while logging, …).
      if (e && typeof e === 'object' && !('path' in e)) Object.assign(e, { path: this.path });
      this.error ??= e;
    });
  }

  /** Waits for the queued records to reach the file; throws the first write error. */
  async flush(): Promise<void> {
    await this.pending;
    if (this.error !== null) throw this.error;
  }

  async close(): Promise<void> {
    try {
      await this.flush();
    } finally {
      await this.handle.close();
    }
  }
}

/** Every well-formed record of a metrics file (a torn last line is skipped). */
export async function readMetrics(path: string): Promise<MetricRecord[]> {
  const text = await readFile(path, 'utf8');
  const out: MetricRecord[] = [];
  for (const line of text.split('\n')) {
    if (line.trim() === '') continue;
    try {
      const r = JSON.parse(line) as MetricRecord;
      if (r && (r.type === 'train' || r.type === 'validation') && Number.isFinite(r.step)) out.push(r);
    } catch {
      // a line torn by a kill
    }
  }
  return out;
}

/**
 * Drops the records after `step` (written after the checkpoint a run resumes from, and about to be
 * written again), atomically.
 */
export async function truncateMetrics(path: string, step: number): Promise<void> {
  let records: MetricRecord[];
  try {
    records = await readMetrics(path);
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return;
    throw e;
  }
  const kept = records.filter((r) => r.step <= step);
  await writeFileAtomic(path, kept.map((r) => JSON.stringify(r) + '\n').join(''));
}
