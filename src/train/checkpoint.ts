// Reading a run's checkpoint for use: the file's own checks (checksums, metadata schema, finite
// values; src/io/checkpoint.ts), then its run config resolved with the same ranges as a config
// file or a flag. Its tensors are held to the model that config builds in src/models/checkpoint.ts.

import { statSync } from 'node:fs';
import { join } from 'node:path';
import { ArpixError, FormatError } from '../errors.js';
import { loadCheckpoint, type Checkpoint } from '../io/checkpoint.js';
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
