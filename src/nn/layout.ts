// Weight layouts at the PyTorch boundary. arpix keeps convolution weights in the layouts its
// channels-last kernels read fastest (conv2d HWIO [kH, kW, Cin, Cout]; convTranspose2d
// [kH, kW, Cout, Cin]); PyTorch keeps conv2d weights as OIHW [Cout, Cin, kH, kW] and
// conv-transpose weights as [Cin, Cout, kH, kW]. The two conversions happen here and nowhere else.

import { ShapeError, fmtShape } from '../errors.js';
import { noGrad } from '../tensor/autograd.js';
import { Tensor } from '../tensor/tensor.js';
import { permute } from '../ops/index.js';

/** How a stored tensor is laid out in arpix: plain tensors are the same in both libraries. */
export type ParamLayout = 'plain' | 'conv2d' | 'convTranspose2d';

/** The layout a state dict is written in or read from. */
export type StateDictLayout = 'arpix' | 'pytorch';

// Both conversions move the same axes: arpix [kH, kW, A, B] ↔ PyTorch [B, A, kH, kW], with
// (A, B) = (Cin, Cout) for conv2d and (Cout, Cin) for convTranspose2d.
const TO_PYTORCH = [3, 2, 0, 1] as const;
const FROM_PYTORCH = [2, 3, 1, 0] as const;

function checkRank4(op: string, name: string, t: Tensor): void {
  if (t.rank !== 4) {
    throw new ShapeError(op, name, `is a convolution weight and must have rank 4, got shape ${fmtShape(t.shape)}`, [t.shape]);
  }
}

/** The shape a tensor of arpix's `shape` and `layout` has in PyTorch's layout. */
export function pytorchShape(shape: readonly number[], layout: ParamLayout): number[] {
  if (layout === 'plain' || shape.length !== 4) return [...shape];
  return TO_PYTORCH.map((a) => shape[a]!);
}

/** A copy of `t` (stored in arpix's `layout`) in PyTorch's layout; plain tensors come back detached. */
export function toPyTorchLayout(t: Tensor, layout: ParamLayout, name = 'tensor'): Tensor {
  if (layout === 'plain') return t.detach();
  checkRank4('toPyTorchLayout', name, t);
  return noGrad(() => permute(t.detach(), TO_PYTORCH));
}

/** A copy of `t` (stored in PyTorch's layout) in arpix's `layout`; plain tensors come back detached. */
export function fromPyTorchLayout(t: Tensor, layout: ParamLayout, name = 'tensor'): Tensor {
  if (layout === 'plain') return t.detach();
  checkRank4('fromPyTorchLayout', name, t);
  return noGrad(() => permute(t.detach(), FROM_PYTORCH));
}
