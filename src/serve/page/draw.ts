// Pixels on the page: integer images painted at their native resolution (the canvas is scaled up
// by CSS, pixelated), laid out in grids, and the colour map of the heat maps. No DOM here, so the
// browser tests compute what a canvas must show with the same functions.

/** A value in 0..levels−1 as an 8-bit intensity. */
export function levelToByte(v: number, levels: number): number {
  return Math.round((v * 255) / Math.max(1, levels - 1));
}

export interface Grid {
  cols: number;
  rows: number;
  /** Canvas size in pixels. */
  width: number;
  height: number;
  gap: number;
  /** Top-left corner of cell i. */
  origin(i: number): [number, number];
}

export function gridLayout(n: number, h: number, w: number, cols = Math.ceil(Math.sqrt(n)), gap = 1): Grid {
  const rows = Math.ceil(n / cols);
  return {
    cols, rows, gap,
    width: cols * (w + gap) + gap,
    height: rows * (h + gap) + gap,
    origin: (i) => [gap + (i % cols) * (w + gap), gap + Math.floor(i / cols) * (h + gap)],
  };
}

/** Paints rows [y0, y1) of one image (H·W·C values) into RGBA `data` of a canvas `stride` pixels wide. */
export function paintRows(data: Uint8ClampedArray, stride: number, at: [number, number], values: ArrayLike<number>, w: number, c: number, levels: number, y0: number, y1: number, offset = 0): void {
  for (let y = y0; y < y1; y++) {
    for (let x = 0; x < w; x++) paintPixel(data, stride, at, values, w, c, levels, y, x, offset + ((y - y0) * w + x) * c);
  }
}

/** Paints pixel (y, x) of one image from values[k..k+C). */
export function paintPixel(data: Uint8ClampedArray, stride: number, at: [number, number], values: ArrayLike<number>, _w: number, c: number, levels: number, y: number, x: number, k: number): void {
  const o = ((at[1] + y) * stride + at[0] + x) * 4;
  const r = levelToByte(values[k]!, levels);
  data[o] = r;
  data[o + 1] = c === 3 ? levelToByte(values[k + 1]!, levels) : r;
  data[o + 2] = c === 3 ? levelToByte(values[k + 2]!, levels) : r;
  data[o + 3] = 255;
}

// Stops of a perceptually ordered map from near-black through violet and orange to pale yellow
// (in the spirit of matplotlib's inferno), interpolated linearly.
const STOPS: [number, number, number][] = [
  [0, 0, 4], [40, 11, 84], [101, 21, 110], [159, 42, 99], [212, 72, 66], [245, 125, 21], [250, 193, 39], [252, 255, 164],
];

/** The heat map's colour for t in [0, 1] (clamped). */
export function colormap(t: number): [number, number, number] {
  const u = Math.min(1, Math.max(0, Number.isFinite(t) ? t : 1)) * (STOPS.length - 1);
  const i = Math.min(STOPS.length - 2, Math.floor(u));
  const f = u - i;
  const a = STOPS[i]!;
  const b = STOPS[i + 1]!;
  return [Math.round(a[0] + f * (b[0] - a[0])), Math.round(a[1] + f * (b[1] - a[1])), Math.round(a[2] + f * (b[2] - a[2]))];
}
