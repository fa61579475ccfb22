// Images out of arpix: PNG grids of integer images (samples, completions) and raw arrays as .npy
// (NumPy's format, version 1.0), so a sample can be inspected pixel for pixel in Python.

import { encode as encodePng } from 'fast-png';
import { ArgumentError } from '../errors.js';
import type { Tensor } from '../tensor/tensor.js';

export interface GridOptions {
  /** Images per row of the grid (default: a near-square grid). */
  columns?: number;
  /** Values per channel: 2 for binary, 256 for 8-bit (mapped onto 0..255). */
  levels: number;
  /** Each pixel drawn as scale × scale (default 2). */
  scale?: number;
  /** Gap between images in output pixels (default 2). */
  gap?: number;
  /** Per image, rows from this index on drawn dimmed with a red tint (occluded rows), or null. */
  shadeFromRow?: (image: number) => number | null;
}

/** Lays out int32 images [N, H, W, C] as one RGB PNG; returns its bytes. */
export function imageGridPng(images: Tensor, opts: GridOptions): Uint8Array {
  if (images.rank !== 4) throw new ArgumentError('imageGridPng', 'images', `must be [N, H, W, C], got rank ${images.rank}`);
  const [n, h, w, c] = images.shape as [number, number, number, number];
  const cols = opts.columns ?? Math.ceil(Math.sqrt(n));
  const rows = Math.ceil(n / cols);
  const s = opts.scale ?? 2;
  const gap = opts.gap ?? 2;
  const cellW = w * s + gap;
  const cellH = h * s + gap;
  const W = cols * cellW + gap;
  const H = rows * cellH + gap;
  const out = new Uint8Array(W * H * 3).fill(255); // white background between images
  const scaleV = 255 / Math.max(1, opts.levels - 1);
  const src = images.data;
  for (let i = 0; i < n; i++) {
    const x0 = gap + (i % cols) * cellW;
    const y0 = gap + Math.floor(i / cols) * cellH;
    const shadeFrom = opts.shadeFromRow?.(i) ?? null;
    for (let y = 0; y < h; y++) {
      const shaded = shadeFrom !== null && y >= shadeFrom;
      for (let x = 0; x < w; x++) {
        const p = ((i * h + y) * w + x) * c;
        let r = src[p]! * scaleV;
        let g = src[p + (c === 3 ? 1 : 0)]! * scaleV;
        let b = src[p + (c === 3 ? 2 : 0)]! * scaleV;
        if (shaded) [r, g, b] = [90 + r * 0.2, 30 + g * 0.2, 30 + b * 0.2];
        for (let dy = 0; dy < s; dy++) {
          let o = ((y0 + y * s + dy) * W + x0 + x * s) * 3;
          for (let dx = 0; dx < s; dx++, o += 3) {
            out[o] = Math.round(r);
            out[o + 1] = Math.round(g);
            out[o + 2] = Math.round(b);
          }
        }
      }
    }
  }
  return encodePng({ width: W, height: H, data: out, channels: 3, depth: 8 });
}

/** The bytes of a .npy file (version 1.0) holding int32 images as uint8 [N, H, W, C]. */
export function encodeNpyUint8(images: Tensor): Uint8Array {
  const shape = images.shape;
  const dict = `{'descr': '|u1', 'fortran_order': False, 'shape': (${shape.join(', ')}${shape.length === 1 ? ',' : ''}), }`;
  // The header (magic, version, length, dict, padding, newline) is a multiple of 64 bytes.
  const unpadded = 10 + dict.length + 1;
  const total = Math.ceil(unpadded / 64) * 64;
  const header = dict + ' '.repeat(total - unpadded) + '\n';
  const out = new Uint8Array(total + images.size);
  out.set([0x93, 0x4e, 0x55, 0x4d, 0x50, 0x59, 1, 0], 0);
  new DataView(out.buffer).setUint16(8, header.length, true);
  out.set(Buffer.from(header, 'latin1'), 10);
  const d = images.data;
  for (let i = 0; i < d.length; i++) {
    const v = d[i]!;
    if (v < 0 || v > 255) throw new ArgumentError('encodeNpyUint8', 'images', `hold ${v}, outside 0..255`);
    out[total + i] = v;
  }
  return out;
}
