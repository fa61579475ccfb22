// Gated PixelCNN weights in the masked formulation (the UvA tutorial's module names, or arpix's
// with full kernels and mask buffers): the masks applied, the taps arpix's network does not have
// dropped after checking they are zero.

import type { AutoregressiveModel } from '../core/model.js';
import { applyFileMasks, cutKernel, type StateMap } from '../core/masked.js';

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

export function gatedPixelCNNMaskedImport(sd: StateMap, model: AutoregressiveModel, file: string): StateMap {
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
      out.set(k, cutKernel(file, k, sources.get(k) ?? k, t, target.shape[2]!, target.shape[3]!));
    } else {
      out.set(k, t);
    }
  }
  return out;
}

