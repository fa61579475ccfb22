// Training progress for people: a live bar (cli-progress) on a terminal, plain log lines every few
// seconds when the output is a file or a pipe, so logs stay readable.

import cliProgress from 'cli-progress';
import type { Progress, TrainEvent } from '../train/index.js';

export function formatDuration(seconds: number): string {
  if (!Number.isFinite(seconds)) return '?';
  const s = Math.round(seconds);
  if (s < 60) return `${s}s`;
  if (s < 3600) return `${Math.floor(s / 60)}m${String(s % 60).padStart(2, '0')}s`;
  return `${Math.floor(s / 3600)}h${String(Math.floor((s % 3600) / 60)).padStart(2, '0')}m`;
}

const fmt = (x: number | null, digits = 3) => (x === null || !Number.isFinite(x) ? '-' : x.toFixed(digits));

export function eventLine(e: TrainEvent): string | null {
  switch (e.kind) {
    case 'start':
      return `${e.resumed ? 'resuming at' : 'starting at'} step ${e.step}: ${e.parameters.toLocaleString('en')} parameters, ${e.trainImages} training and ${e.validationImages} validation images`
        + (e.precisionBefore !== null ? `\n  (this run trained in ${e.precisionBefore} until now: resuming is bit-exact only in the same precision)` : '');
    case 'validation':
      return `step ${e.step}: validation ${e.evaluation.bitsPerDim.toFixed(4)} ± ${e.evaluation.stderr.toFixed(4)} bits/dim${e.ema ? ' (EMA weights)' : ''}`;
    case 'checkpoint':
      return `step ${e.step}: checkpoint ${e.path}`;
    case 'samples':
      return `step ${e.step}: samples ${e.path}`;
    case 'palette':
      return `palette: ${e.k} colours fitted by k-means on the training pixels in ${e.seconds.toFixed(1)}s (mean squared distance ${e.inertia.toFixed(1)}); stored in the run's config`;
  }
}

export interface Reporter {
  progress(p: Progress): void;
  event(e: TrainEvent): void;
  log(line: string): void;
  stop(): void;
}

/** A bar on a TTY, else a line every `everySeconds`. */
export function createReporter(stream: NodeJS.WriteStream, opts: { bar?: boolean; everySeconds?: number } = {}): Reporter {
  const useBar = (opts.bar ?? true) && stream.isTTY === true;
  const every = (opts.everySeconds ?? 10) * 1000;
  if (!useBar) {
    let last = 0;
    const write = (s: string) => stream.write(s + '\n');
    return {
      progress(p) {
        const now = Date.now();
        if (now - last < every) return;
        last = now;
        const total = p.totalSteps === null ? '' : `/${p.totalSteps}`;
        write(`step ${p.step}${total} epoch ${p.epoch} loss ${fmt(p.loss)} bits/dim val ${fmt(p.validation)} | ${p.imagesPerSec.toFixed(1)} img/s | lr ${p.lr.toPrecision(3)} | ETA ${p.etaSeconds === null ? '?' : formatDuration(p.etaSeconds)}`);
      },
      event(e) {
        const line = eventLine(e);
        if (line) write(line);
      },
      log: write,
      stop() {},
    };
  }
  const multi = new cliProgress.MultiBar({
    stream,
    format: '{stepText} |{bar}| loss {loss} | val {val} bits/dim | {ips} img/s | ETA {etaText}',
    hideCursor: true,
    clearOnComplete: false,
    etaBuffer: 50,
    fps: 5,
  }, cliProgress.Presets.shades_classic);
  let bar: cliProgress.SingleBar | null = null;
  return {
    progress(p) {
      // Bounded by steps: the bar counts steps; by time only: it counts seconds.
      const [value, total] = p.totalSteps !== null ? [p.step, p.totalSteps] : [Math.round(p.seconds), Math.round(p.seconds + (p.etaSeconds ?? 0))];
      const stepText = p.totalSteps !== null ? `step ${p.step}/${p.totalSteps}` : `step ${p.step}`;
      const payload = { stepText, loss: fmt(p.loss), val: fmt(p.validation), ips: p.imagesPerSec.toFixed(1), etaText: p.etaSeconds === null ? '?' : formatDuration(p.etaSeconds) };
      if (!bar) bar = multi.create(total, value, payload);
      bar.setTotal(total);
      bar.update(value, payload);
    },
    event(e) {
      const line = eventLine(e);
      if (line) multi.log(line + '\n');
    },
    log(line) {
      multi.log(line + '\n');
    },
    stop() {
      multi.stop();
    },
  };
}

/**
 * Progress of a sampling pass that fills `total` rows: on a terminal one line rewritten in place,
 * elsewhere a plain line every `everySeconds` (and at the last row), each with the time left.
 */
export function rowReporter(stream: NodeJS.WriteStream, total: number, what: string, opts: { everySeconds?: number } = {}): (row: number) => void {
  const started = Date.now();
  const every = (opts.everySeconds ?? 5) * 1000;
  let last = started;
  return (row) => {
    const done = row + 1;
    const now = Date.now();
    const left = done < total ? formatDuration(((now - started) / 1000 / done) * (total - done)) : null;
    const text = `${what}: row ${done}/${total}${left === null ? ` in ${formatDuration((now - started) / 1000)}` : `, about ${left} left`}`;
    if (stream.isTTY) {
      stream.write(`\r${text}\x1b[K${done === total ? '\n' : ''}`);
    } else if (now - last >= every || done === total) {
      last = now;
      stream.write(text + '\n');
    }
  };
}
