// The masked formulation of the convolutional families on the export side: arpix's own masks in
// PyTorch's layout. Loading masked weights is each family's `maskedImport` (src/models/core/masked.ts).

import type { AutoregressiveModel } from '../models/core/model.js';
import { FAMILIES } from '../models/families.js';
import { toPyTorchLayout } from '../nn/index.js';
import { Tensor } from '../tensor/tensor.js';
import type { StateMap } from '../models/core/masked.js';

export { MaskedTapError, type StateMap } from '../models/core/masked.js';

/** Masked-formulation adapters by model kind: the family table's `maskedImport` entries. */
export const MASKED_FORMULATIONS: Record<string, (sd: StateMap, model: AutoregressiveModel, file: string) => StateMap> = Object.fromEntries(
  FAMILIES.flatMap((f) => (f.maskedImport ? [[f.kind, f.maskedImport]] : [])),
);

/** arpix's own masks in PyTorch's layout, for tests and messages: [O, I, kH, kW] by conv name. */
export function arpixMasks(model: AutoregressiveModel): Record<string, Tensor> {
  const out: Record<string, Tensor> = {};
  for (const [name, m] of model.namedModules()) {
    const mask = (m as { mask?: Tensor | null }).mask;
    if (mask instanceof Tensor) out[name] = toPyTorchLayout(mask, 'conv2d', name);
  }
  return out;
}
