// Interrupting a real `arpix train` process: start it, wait until it trains, send SIGINT (once or
// twice) or SIGTERM, and time how long it takes to exit. Shared by the signal tests
// (src/cli/signals.test.ts) and the bench suite that measures Ctrl-C-to-exit
// (bench/suites/signals.ts).

import { spawn } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';

const MAIN = new URL('../cli/main.ts', import.meta.url).pathname;
const TSX = import.meta.resolve('tsx');

export interface InterruptOptions {
  /** Arguments after `arpix train`. */
  args: readonly string[];
  /** The run folder (the --out of args, or the --resume folder). */
  runDir: string;
  /** Milliseconds of training between the first step's metrics record and the signal. */
  delayMs?: number;
  signal?: 'SIGINT' | 'SIGTERM' | 'SIGHUP';
  /** Close the pipes of the process's stdout and stderr as the signal is sent, as a closed terminal does. */
  closeOutputs?: boolean;
  /** Send the signal twice, this many ms apart (a double Ctrl-C). */
  twiceAfterMs?: number;
  /**
   * Deliver SIGINT and then SIGTERM together: both are sent while the process is stopped
   * (SIGSTOP) and arrive when it continues, so neither can be lost to a busy scheduler merging two
   * SIGINTs into one.
   */
  twoTogether?: boolean;
  /** Also wait for this file of the run folder to exist before the delay (e.g. the first checkpoint). */
  waitFor?: string;
  /** Give up (kill the process) after this long; default 120 s. */
  timeoutMs?: number;
  env?: Record<string, string>;
}

export interface InterruptResult {
  code: number | null;
  /** The signal that ended the process, when it did not exit by itself. */
  exitSignal: NodeJS.Signals | null;
  /** From the (first) signal to the process's exit. */
  seconds: number;
  stdout: string;
  stderr: string;
  /** Mean seconds of one training step, from the metrics the run logged (null if none). */
  stepSeconds: number | null;
}

/** Mean step time from metrics.jsonl: batch size over the logged images/s. */
function stepSecondsOf(runDir: string, batchSize: number): number | null {
  const file = join(runDir, 'metrics.jsonl');
  if (!existsSync(file)) return null;
  const rates = readFileSync(file, 'utf8').split('\n').flatMap((l) => {
    try {
      const r = JSON.parse(l) as { type?: string; imagesPerSec?: number };
      return r.type === 'train' && typeof r.imagesPerSec === 'number' && r.imagesPerSec > 0 ? [r.imagesPerSec] : [];
    } catch {
      return [];
    }
  });
  return rates.length > 0 ? batchSize / rates.at(-1)! : null;
}

/**
 * Starts `arpix train ARGS`, waits for its first logged step (or, with logging every 10 steps, the
 * tenth) plus `delayMs`, sends the signal and resolves when the process exits.
 */
export function interruptTraining(o: InterruptOptions): Promise<InterruptResult> {
  const child = spawn(process.execPath, ['--import', TSX, MAIN, 'train', ...o.args, '--no-bar'], {
    env: { ...process.env, NODE_NO_WARNINGS: '1', ...o.env }, stdio: ['ignore', 'pipe', 'pipe'],
  });
  let stdout = '';
  let stderr = '';
  child.stdout!.on('data', (d: Buffer) => (stdout += d.toString()));
  child.stderr!.on('data', (d: Buffer) => (stderr += d.toString()));
  const config = () => {
    try {
      return JSON.parse(readFileSync(join(o.runDir, 'config.json'), 'utf8')) as { train: { batchSize: number } };
    } catch {
      return null;
    }
  };
  return new Promise((resolve, reject) => {
    let sentAt = 0;
    const killer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`arpix train did not exit within ${o.timeoutMs ?? 120_000} ms; stderr:\n${stderr}`));
    }, o.timeoutMs ?? 120_000);
    const poll = setInterval(() => {
      const metrics = join(o.runDir, 'metrics.jsonl');
      if (sentAt > 0 || !existsSync(metrics) || !readFileSync(metrics, 'utf8').includes('"type":"train"')) return;
      if (o.waitFor !== undefined && !existsSync(join(o.runDir, o.waitFor))) return;
      clearInterval(poll);
      setTimeout(() => {
        sentAt = performance.now();
        if (o.twoTogether) {
          child.kill('SIGSTOP');
          child.kill('SIGINT');
          child.kill('SIGTERM');
          child.kill('SIGCONT');
          return;
        }
        child.kill(o.signal ?? 'SIGINT');
        if (o.closeOutputs) {
          child.stdout!.destroy();
          child.stderr!.destroy();
        }
        if (o.twiceAfterMs !== undefined) setTimeout(() => child.kill(o.signal ?? 'SIGINT'), o.twiceAfterMs);
      }, o.delayMs ?? 0);
    }, 5);
    child.on('exit', (code, exitSignal) => {
      clearInterval(poll);
      clearTimeout(killer);
      if (sentAt === 0) {
        reject(new Error(`arpix train exited (${code}) before it was signalled; stderr:\n${stderr}`));
        return;
      }
      const seconds = (performance.now() - sentAt) / 1000;
      const c = config();
      resolve({ code, exitSignal, seconds, stdout, stderr, stepSeconds: c ? stepSecondsOf(o.runDir, c.train.batchSize) : null });
    });
  });
}
