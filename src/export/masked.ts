// The masked formulation of the convolutional families, as most PyTorch code writes them: full
// k×k kernels multiplied by a 0/1 `mask` buffer (the UvA deep-learning tutorial's Gated PixelCNN,
// arpix's own bench mirror, most PixelCNN ports). arpix's Gated PixelCNN has no masked taps at all
// (its kernels are the kept rows or columns), so those taps are dropped here — after checking they
// are zero, since a non-zero tap there would be a different network. arpix's PixelCNN keeps full
// kernels and masks of its own, so only the file's masks are applied.
//
// One adapter per family, found by model kind; a family without one reads arpix's names only.

import { FormatError } from '../errors.js';
import type { AutoregressiveModel } from '../models/model.js';
import { toPyTorchLayout } from '../nn/index.js';
import { Tensor } from '../tensor/tensor.js';

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
function cut(file: string, name: string, source: string, t: Tensor, rows: number, cols: number): Tensor {
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

/** The UvA tutorial's module names for Gated PixelCNN, mapped to arpix's. */
function uvaNames(sd: StateMap): Map<string, string> | null {
  if (!sd.has('conv_vstack.conv.weight')) return null;
  const rename = new Map<string, string>();
  for (const k of sd.keys()) {
    const n = k
      .replace(/^conv_vstack\.conv\./, 'vFirst.').replace(/^conv_hstack\.conv\./, 'hFirst.')
      .replace(/^conv_vstack\.mask$/, 'vFirst.mask').replace(/^conv_hstack\.mask$/, 'hFirst.mask')
      .replace(/^conv_layers\.(\d+)\.conv_vert\.conv\./, 'blocks.$1.vConv.').replace(/^conv_layers\.(\d+)\.conv_vert\.mask$/, 'blocks.$1.vConv.mask')
      .replace(/^conv_layers\.(\d+)\.conv_horiz\.conv\./, 'blocks.$1.hConv.').replace(/^conv_layers\.(\d+)\.conv_horiz\.mask$/, 'blocks.$1.hConv.mask')
      .replace(/^conv_layers\.(\d+)\.conv_vert_to_horiz\./, 'blocks.$1.link.').replace(/^conv_layers\.(\d+)\.conv_horiz_1x1\./, 'blocks.$1.residual.')
      .replace(/^conv_out\./, 'out.');
    rename.set(k, n);
  }
  return rename;
}

function gatedPixelCNN(sd: StateMap, model: AutoregressiveModel, file: string): StateMap {
  const rename = uvaNames(sd);
  const sources = new Map<string, string>(); // arpix name → the file's, for messages
  let named: StateMap = sd;
  if (rename) {
    named = new Map();
    for (const [k, t] of sd) {
      named.set(rename.get(k)!, t);
      sources.set(rename.get(k)!, k);
    }
  }
  const masked = applyFileMasks(named, file);
  const want = model.stateDict({ layout: 'pytorch' });
  const out: StateMap = new Map();
  for (const [k, t] of masked) {
    const target = want[k];
    const m = /^(?:(vFirst|hFirst)|blocks\.\d+\.(vConv|hConv))\.weight$/.exec(k);
    // The full kernel of the masked formulation: k0 = 2·r0 + 1 around the kept r0 rows (columns)
    // of a first layer, k = 2·r + 1 around the kept r + 1 of a block.
    const full = (kept: number) => (m?.[1] ? 2 * kept + 1 : 2 * kept - 1);
    const vertical = m?.[1] === 'vFirst' || m?.[2] === 'vConv';
    if (m && target && t.rank === 4 && t.shape[0] === target.shape[0] && t.shape[1] === target.shape[1]
      && (vertical ? t.shape[2] === full(target.shape[2]!) && t.shape[3] === target.shape[3] : t.shape[2] === 1 && t.shape[3] === full(target.shape[3]!))) {
      out.set(k, cut(file, k, sources.get(k) ?? k, t, target.shape[2]!, target.shape[3]!));
    } else {
      out.set(k, t);
    }
  }
  return out;
}

function pixelCNN(sd: StateMap, _model: AutoregressiveModel, file: string): StateMap {
  return applyFileMasks(sd, file);
}

/** Masked-formulation adapters by model kind. */
export const MASKED_FORMULATIONS: Record<string, (sd: StateMap, model: AutoregressiveModel, file: string) => StateMap> = {
  'gated-pixelcnn': gatedPixelCNN,
  'pixelcnn': pixelCNN,
};

/** arpix's own masks in PyTorch's layout, for tests and messages: [O, I, kH, kW] by conv name. */
export function arpixMasks(model: AutoregressiveModel): Record<string, Tensor> {
  const out: Record<string, Tensor> = {};
  for (const [name, m] of model.namedModules()) {
    const mask = (m as { mask?: Tensor | null }).mask;
    if (mask instanceof Tensor) out[name] = toPyTorchLayout(mask, 'conv2d', name);
  }
  return out;
}
