// `arpix plot`: the training loss and the validation bits/dim against the step, drawn into an RGB
// buffer and encoded with fast-png — axes, ticks, a legend, nothing more.

import { encode as encodePng } from 'fast-png';
import type { MetricRecord } from '../train/index.js';
import { drawText, textWidth, GLYPH_H } from './font.js';

export type RGB = readonly [number, number, number];
const TRAIN: RGB = [70, 110, 200];
const VALID: RGB = [220, 90, 40];
const AXIS: RGB = [40, 40, 40];
const GRID: RGB = [225, 225, 225];

/** Round tick values covering [lo, hi]: steps of 1, 2 or 5 times a power of ten. */
export function niceTicks(lo: number, hi: number, target = 6): number[] {
  if (!(hi > lo)) return [lo];
  const raw = (hi - lo) / target;
  const pow = 10 ** Math.floor(Math.log10(raw));
  const step = [1, 2, 5, 10].map((m) => m * pow).find((s) => s >= raw)!;
  const out: number[] = [];
  for (let v = Math.ceil(lo / step) * step; v <= hi + step * 1e-9; v += step) out.push(Number(v.toPrecision(12)));
  return out;
}

export function tickLabel(v: number): string {
  if (v !== 0 && (Math.abs(v) >= 1e6 || Math.abs(v) < 1e-3)) return v.toExponential(1);
  return String(Number(v.toPrecision(6)));
}

export class Canvas {
  readonly buf: Uint8Array;
  constructor(readonly W: number, readonly H: number) {
    this.buf = new Uint8Array(W * H * 3).fill(255);
  }

  set(x: number, y: number, c: RGB): void {
    x = Math.round(x);
    y = Math.round(y);
    if (x < 0 || y < 0 || x >= this.W || y >= this.H) return;
    const o = (y * this.W + x) * 3;
    this.buf[o] = c[0];
    this.buf[o + 1] = c[1];
    this.buf[o + 2] = c[2];
  }

  /** A line of the given width (Bresenham-free: dense sampling along the segment). */
  line(x0: number, y0: number, x1: number, y1: number, c: RGB, width = 1): void {
    const n = Math.max(1, Math.ceil(Math.hypot(x1 - x0, y1 - y0) * 2));
    const r = (width - 1) / 2;
    for (let i = 0; i <= n; i++) {
      const x = x0 + ((x1 - x0) * i) / n;
      const y = y0 + ((y1 - y0) * i) / n;
      for (let dy = -r; dy <= r; dy++) for (let dx = -r; dx <= r; dx++) this.set(x + dx, y + dy, c);
    }
  }

  text(x: number, y: number, s: string, c: RGB, scale = 1): void {
    drawText(this.buf, this.W, this.H, Math.round(x), Math.round(y), s, c, scale);
  }
}

export interface PlotOptions {
  width?: number;
  height?: number;
  title?: string;
}

/** The PNG bytes of the curves in `records`; throws when there is nothing to draw. */
export function plotMetrics(records: readonly MetricRecord[], opts: PlotOptions = {}): Uint8Array {
  const train = records.filter((r) => r.type === 'train').map((r) => [r.step, r.loss] as const).filter(([, v]) => Number.isFinite(v));
  const valid = records.filter((r) => r.type === 'validation').map((r) => [r.step, r.bitsPerDim] as const).filter(([, v]) => Number.isFinite(v));
  if (train.length === 0 && valid.length === 0) throw new Error('the metrics hold no training or validation records yet');
  const W = opts.width ?? 900;
  const H = opts.height ?? 540;
  const cv = new Canvas(W, H);
  const left = 80, right = 30, top = 50, bottom = 60;
  const pw = W - left - right;
  const ph = H - top - bottom;

  const all = [...train, ...valid];
  const xMax = Math.max(1, ...all.map(([s]) => s));
  // The first steps of training have losses far above the rest; the y range follows the tail so
  // the part worth reading is not squashed flat.
  const ys = all.map(([, v]) => v).sort((a, b) => a - b);
  const yLo = ys[0]!;
  const yHi = Math.min(ys.at(-1)!, ys[Math.floor(ys.length * 0.1)]! + 2 * (ys[Math.floor(ys.length * 0.9)]! - yLo) + 1e-9);
  const pad = (yHi - yLo) * 0.05 || 0.5;
  const y0 = yLo - pad;
  const y1 = yHi + pad;
  const X = (s: number) => left + (s / xMax) * pw;
  const Y = (v: number) => top + ph - ((Math.min(Math.max(v, y0), y1) - y0) / (y1 - y0)) * ph;

  for (const t of niceTicks(y0, y1)) {
    cv.line(left, Y(t), left + pw, Y(t), GRID);
    const label = tickLabel(t);
    cv.text(left - 8 - textWidth(label), Y(t) - GLYPH_H / 2, label, AXIS);
  }
  for (const t of niceTicks(0, xMax)) {
    cv.line(X(t), top, X(t), top + ph, GRID);
    const label = tickLabel(t);
    cv.text(X(t) - textWidth(label) / 2, top + ph + 8, label, AXIS);
  }
  cv.line(left, top + ph, left + pw, top + ph, AXIS);
  cv.line(left, top, left, top + ph, AXIS);
  cv.text(left + pw / 2 - textWidth('step') / 2, H - 24, 'step', AXIS);
  cv.text(12, top - 30, 'bits/dim', AXIS);
  if (opts.title) cv.text(left + pw / 2 - textWidth(opts.title, 2) / 2, 12, opts.title, AXIS, 2);

  const curve = (pts: readonly (readonly [number, number])[], c: RGB, width: number, dots: boolean) => {
    for (let i = 1; i < pts.length; i++) cv.line(X(pts[i - 1]![0]), Y(pts[i - 1]![1]), X(pts[i]![0]), Y(pts[i]![1]), c, width);
    if (dots || pts.length === 1) for (const [s, v] of pts) for (let d = -2; d <= 2; d++) cv.line(X(s) - 2, Y(v) + d, X(s) + 2, Y(v) + d, c);
  };
  curve(train, TRAIN, 1, false);
  curve(valid, VALID, 2, true);

  // Legend, top right.
  const entries: [string, RGB][] = [];
  if (train.length > 0) entries.push(['train loss', TRAIN]);
  if (valid.length > 0) entries.push(['validation', VALID]);
  entries.forEach(([label, c], i) => {
    const y = top + 10 + i * 16;
    const x = left + pw - 110;
    cv.line(x, y + 3, x + 20, y + 3, c, 2);
    cv.text(x + 26, y, label, AXIS);
  });
  return encodePng({ width: W, height: H, data: cv.buf, channels: 3, depth: 8 });
}
