// A checkpoint in arpix's weight layout ↔ the same checkpoint in PyTorch's: model weights and
// averaged weights by name, the optimiser's moment buffers by parameter index (`<i>.exp_avg`), each
// converted with the layout of the parameter it belongs to. Nothing else changes, so the round trip
// is bit for bit.

import { FormatError } from '../errors.js';
import type { Checkpoint, CheckpointMeta } from '../io/checkpoint.js';
import { createModel } from '../models/index.js';
import { fromPyTorchLayout, toPyTorchLayout, type ParamLayout } from '../nn/index.js';
import type { Tensor } from '../tensor/tensor.js';

/** The weight layout of a checkpoint's tensors; absent in arpix's own checkpoints. */
export type CheckpointLayout = 'arpix' | 'pytorch';

export type LayoutMeta = CheckpointMeta & { layout?: CheckpointLayout };

/** Parameter names in optimiser order and the layout of every state-dict entry, for a model config. */
export function layoutsOf(modelConfig: Record<string, unknown>): { names: string[]; layouts: Record<string, ParamLayout> } {
  const model = createModel(modelConfig);
  return { names: model.namedParameters().map(([n]) => n), layouts: model.stateLayouts() };
}

function convertAll(c: Checkpoint, to: CheckpointLayout): Checkpoint {
  const { names, layouts } = layoutsOf(c.meta.config.model);
  const conv = (t: Tensor, name: string, layout: ParamLayout | undefined): Tensor => {
    if (!layout || layout === 'plain') return t;
    return to === 'pytorch' ? toPyTorchLayout(t, layout, name) : fromPyTorchLayout(t, layout, name);
  };
  const byName = (part: Record<string, Tensor>) => Object.fromEntries(Object.entries(part).map(([k, t]) => [k, conv(t, k, layouts[k])]));
  const optimizer = Object.fromEntries(Object.entries(c.optimizer).map(([k, t]) => {
    const index = Number(k.slice(0, k.indexOf('.')));
    const name = names[index];
    if (name === undefined) throw new FormatError('checkpoint', `optimiser tensor '${k}' names parameter ${index}, but the model has ${names.length}`);
    return [k, conv(t, k, layouts[name])];
  }));
  const meta: LayoutMeta = { ...c.meta, layout: to };
  if (to === 'arpix') delete meta.layout;
  return { meta, model: byName(c.model), optimizer, ema: byName(c.ema) };
}

/** The checkpoint with its convolution weights (and their moments) in PyTorch's layout. */
export function checkpointToPyTorch(c: Checkpoint): Checkpoint {
  if ((c.meta as LayoutMeta).layout === 'pytorch') return c;
  return convertAll(c, 'pytorch');
}

/** The checkpoint back in arpix's layout (a no-op for one already in it). */
export function checkpointFromPyTorch(c: Checkpoint): Checkpoint {
  if ((c.meta as LayoutMeta).layout !== 'pytorch') return c;
  return convertAll(c, 'arpix');
}
