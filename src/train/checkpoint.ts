// Reading a run's checkpoint for use: the file's own checks (checksums, metadata schema, finite
// values; src/io/checkpoint.ts), then its run config resolved with the same ranges as a config
// file or a flag, and every tensor — weights, averaged weights, optimiser moments — held to the
// exact name, shape and dtype the model built from that config has. No reader reinterprets a
// tensor by its element count, and a missing averaged weight is an error, not the trained one.

import { statSync } from 'node:fs';
import { join } from 'node:path';
import { ArpixError, FormatError, fmtShape } from '../errors.js';
import { loadCheckpoint, type Checkpoint } from '../io/checkpoint.js';
import type { Module } from '../nn/module.js';
import type { Tensor } from '../tensor/tensor.js';
import { resolveRunConfig, type RunConfig } from './config.js';

/** The checkpoint file a path means: the path itself, or checkpoint.safetensors in a run folder. */
export function checkpointPathOf(path: string, fileName = 'checkpoint.safetensors'): string {
  try {
    if (statSync(path).isDirectory()) return join(path, fileName);
  } catch {
    // a missing path is reported by the reader, with its name
  }
  return path;
}

/**
 * The checkpoint's run config, resolved and range-checked as a config file's would be; a problem
 * is a FormatError naming the file and the field.
 */
export function checkpointRunConfig(c: Checkpoint): RunConfig {
  const file = c.file ?? '<checkpoint>';
  try {
    return resolveRunConfig(c.meta.config);
  } catch (e) {
    if (e instanceof ArpixError) throw new FormatError(file, `has a bad run config in its metadata: ${e.message}`, { cause: e });
    throw e;
  }
}

/** Reads a checkpoint and checks its run config; `meta.config` is replaced by the resolved one. */
export async function loadRunCheckpoint(path: string): Promise<Checkpoint & { config: RunConfig }> {
  const c = await loadCheckpoint(checkpointPathOf(path));
  const config = checkpointRunConfig(c);
  c.meta.config = config as unknown as Checkpoint['meta']['config'];
  return Object.assign(c, { config });
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

/** Runs a load step (optimiser, scheduler, average) and names the file when its state is refused. */
export function loadingFrom<T>(c: Checkpoint, what: string, fn: () => T): T {
  try {
    return fn();
  } catch (e) {
    if (e instanceof ArpixError && !(e instanceof FormatError)) {
      throw new FormatError(c.file ?? '<checkpoint>', `has ${what} that does not fit its model: ${e.message}`, { cause: e });
    }
    throw e;
  }
}
