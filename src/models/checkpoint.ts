// A trained model, ready to use: the model a checkpoint's config builds, every tensor of the
// checkpoint — weights, averaged weights, optimiser moments — held to that model's exact name,
// shape and dtype, then its weights loaded. No reader reinterprets a tensor by its element count,
// and a missing averaged weight is an error, not the trained one. The command line, the server
// and the exports get their models here; a resumed training run checks its checkpoint with the
// same checkCheckpointTensors.

import { ConfigError } from '../config.js';
import { ArgumentError, FormatError, fmtShape } from '../errors.js';
import type { Checkpoint } from '../io/checkpoint.js';
import { createModel } from './index.js';
import type { AutoregressiveModel } from './core/model.js';
import { withoutInitialisers } from '../nn/init.js';
import type { Module } from '../nn/module.js';
import type { Tensor } from '../tensor/tensor.js';

/** The model in a checkpoint, with the averaged weights when there are any and `useEma` is set. */
export function modelFromCheckpoint(c: Checkpoint, opts: { useEma?: boolean } = {}): AutoregressiveModel {
  let model: AutoregressiveModel;
  let loaded: () => boolean;
  try {
    // Built without drawing its initial weights: every one of them is loaded below.
    ({ value: model, loaded } = withoutInitialisers(() => createModel(c.meta.config.model)));
  } catch (e) {
    // A config the ranges let through but the family's constructor refuses is still the file's fault.
    if (e instanceof ArgumentError || e instanceof ConfigError) throw new FormatError(c.file ?? 'the checkpoint', `has a model config its family refuses: ${e.message}`, { cause: e });
    throw e;
  }
  // Names, shapes and dtypes of the weights, the averaged weights and the moments, exactly.
  checkCheckpointTensors(c, model);
  model.loadStateDict(c.model);
  if (!loaded()) throw new Error(`${c.file ?? 'the checkpoint'}: its ${model.config.kind} model has a tensor its initialisers fill that is not among its weights, so loading them left it unfilled; this is a bug in arpix`);
  if ((opts.useEma ?? true) && Object.keys(c.ema).length > 0) model.loadStateDict(c.ema, { strict: false });
  model.eval();
  return model;
}

function describe(t: { dtype: string; shape: readonly number[] }): string {
  return `${t.dtype} ${fmtShape(t.shape)}`;
}

/** Refuses a group of tensors that is not exactly `expected` by name, shape and dtype. */
function checkGroup(file: string, prefix: string, found: Record<string, Tensor>, expected: ReadonlyMap<string, Tensor>, what: string): void {
  const missing = [...expected.keys()].filter((k) => !(k in found));
  if (missing.length > 0) {
    throw new FormatError(file, `lacks ${what} ${missing.slice(0, 3).map((k) => `'${prefix}${k}'`).join(', ')}${missing.length > 3 ? ` and ${missing.length - 3} more` : ''} that its model needs`);
  }
  for (const [name, t] of Object.entries(found)) {
    const want = expected.get(name);
    if (want === undefined) throw new FormatError(file, `holds '${prefix}${name}', which its model (built from the checkpoint's config) does not have`);
    if (t.dtype !== want.dtype || t.shape.length !== want.shape.length || t.shape.some((d, i) => d !== want.shape[i])) {
      throw new FormatError(file, `tensor '${prefix}${name}' is ${describe(t)} but its model needs ${describe(want)}`);
    }
  }
}

/**
 * Checks every tensor of a checkpoint against the model built from its config: model weights
 * and buffers, averaged weights (all of them when there are any) and optimiser moments
 * (`<param index>.<buffer>`, each of its parameter's shape and dtype). Nothing is loaded here.
 */
export function checkCheckpointTensors(c: Checkpoint, model: Module): void {
  const file = c.file ?? '<checkpoint>';
  checkGroup(file, 'model.', c.model, new Map(Object.entries(model.stateDict())), 'weight(s)');
  const params = model.namedParameters();
  if (Object.keys(c.ema).length > 0) checkGroup(file, 'ema.', c.ema, new Map(params), 'averaged weight(s)');
  // Every parameter the optimiser has stepped has every buffer its optimiser keeps, and no other has any.
  const stepped = new Set(Object.keys(c.meta.optimizer?.steps ?? {}));
  const buffers = new Set(Object.keys(c.optimizer).map((k) => k.slice(k.indexOf('.') + 1)));
  for (const index of stepped) {
    for (const b of buffers) if (!(`${index}.${b}` in c.optimizer)) throw new FormatError(file, `lacks optimizer tensor 'optimizer.${index}.${b}' for a parameter its optimizer state says was stepped`);
  }
  for (const [name, t] of Object.entries(c.optimizer)) {
    if (!stepped.has(name.slice(0, name.indexOf('.')))) throw new FormatError(file, `holds optimizer tensor 'optimizer.${name}' for a parameter its optimizer state never stepped`);
    const m = /^(\d+)\.[A-Za-z_]+$/.exec(name);
    const p = m ? params[Number(m[1])] : undefined;
    if (p === undefined) throw new FormatError(file, `holds optimizer tensor 'optimizer.${name}', which names no parameter of its model (${params.length} parameters)`);
    if (t.dtype !== p[1].dtype || t.shape.length !== p[1].shape.length || t.shape.some((d, i) => d !== p[1].shape[i])) {
      throw new FormatError(file, `tensor 'optimizer.${name}' is ${describe(t)} but its parameter '${p[0]}' is ${describe(p[1])}`);
    }
  }
}
