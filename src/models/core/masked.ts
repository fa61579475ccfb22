// Loading weights written in the masked formulation, as most PyTorch code writes the
// convolutional families: full k×k kernels multiplied by a 0/1 `mask` buffer (the UvA deep-learning
// tutorial's Gated PixelCNN, arpix's own bench mirror, most PixelCNN ports). A family whose
// network keeps only the causal taps (Gated PixelCNN) drops the masked ones, after checking they
// are zero, since a non-zero tap there would be a different network; a family that keeps full
// kernels and masks of its own (PixelCNN) only applies the file's masks. Each family's adapter is
// its entry's `maskedImport` (core/family.ts); these are the pieces they share.

import { FormatError } from '../../errors.js';
import { Tensor } from '../../tensor/tensor.js';

/** A PyTorch-layout state dict: name → tensor. */
export type StateMap = Map<string, Tensor>;

/** Thrown when a masked formulation holds weight where the causal network has no tap. */
export class MaskedTapError extends FormatError {}

/**
 * Multiplies every `<conv>.weight` by the file's `<conv>.mask` (broadcast from [1, 1, kH, kW] or
 * full [O, I, kH, kW]) and drops the masks: the function the file's network computes.
 */
export function applyFileMasks(sd: StateMap, file: string): StateMap {
  const out: StateMap = new Map();
  for (const [k, t] of sd) {
    if (k.endsWith('.mask')) continue;
    // `<conv>.mask` beside `<conv>.weight`, or (a wrapper holding an nn.Conv2d) `<m>.mask` beside `<m>.conv.weight`.
    const candidates = k.endsWith('.weight') ? [`${k.slice(0, -'.weight'.length)}.mask`, ...(k.endsWith('.conv.weight') ? [`${k.slice(0, -'.conv.weight'.length)}.mask`] : [])] : [];
    const maskName = candidates.find((c) => sd.has(c));
    const mask = maskName ? sd.get(maskName) : undefined;
    if (!mask || t.rank !== 4) { out.set(k, t); continue; }
    const [o, i, kh, kw] = t.shape as [number, number, number, number];
    const full = mask.size === t.size;
    if (!full && !(mask.size === kh * kw && mask.shape.at(-1) === kw)) {
      throw new FormatError(file, `mask '${maskName}' of shape [${mask.shape.join(', ')}] does not fit weight '${k}' [${t.shape.join(', ')}]`);
    }
    const w = new Float32Array(t.size);
    for (let a = 0; a < o * i; a++) {
      for (let s = 0; s < kh * kw; s++) w[a * kh * kw + s] = t.data[a * kh * kw + s]! * mask.data[full ? a * kh * kw + s : s]!;
    }
    out.set(k, new Tensor(w, t.shape));
  }
  return out;
}

/** Keeps rows [0, rows) and columns [0, cols) of a PyTorch-layout kernel; refuses non-zero taps outside. */
export function cutKernel(file: string, name: string, source: string, t: Tensor, rows: number, cols: number): Tensor {
  const [o, i, kh, kw] = t.shape as [number, number, number, number];
  const w = new Float32Array(o * i * rows * cols);
  for (let a = 0; a < o * i; a++) {
    for (let y = 0; y < kh; y++) {
      for (let x = 0; x < kw; x++) {
        const v = t.data[(a * kh + y) * kw + x]!;
        if (y < rows && x < cols) w[(a * rows + y) * cols + x] = v;
        else if (v !== 0) {
          throw new MaskedTapError(file, `'${source}' has a non-zero masked tap (out ${Math.floor(a / i)}, in ${a % i}, row ${y}, column ${x}) = ${Number(v.toPrecision(6))}: arpix's ${name} has no such tap (it would see the current or a later pixel), so this is not the causal masked formulation — zero the masked taps, or save the mask buffer with the weights`);
        }
      }
    }
  }
  return new Tensor(w, [o, i, rows, cols]);
}

