// Reading a run's checkpoint for use, and the one check every reader runs. The file's own checks
// (structure, checksums, metadata schema, finite values) are in src/io/checkpoint.ts; the model's
// (exact tensors) in src/models/checkpoint.ts. validateCheckpoint adds the rest and is what `eval`,
// `sample`, `complete`, `info`, `train --resume`, `import`, `export`, `serve` and `verify` all call,
// so `arpix verify` says "ok" exactly when every one of them would use the file. The check itself
// reads no file and is in validate.ts; reading the file is here.

import { statSync } from 'node:fs';
import { join } from 'node:path';
import { loadCheckpoint } from '../io/disk.js';
import { validateCheckpoint, type CheckpointPolicy, type UsableCheckpoint } from './validate.js';

export * from './validate.js';

/** The checkpoint file a path means: the path itself, or checkpoint.safetensors in a run folder. */
export function checkpointPathOf(path: string, fileName = 'checkpoint.safetensors'): string {
  try {
    if (statSync(path).isDirectory()) return join(path, fileName);
  } catch {
    // a missing path is reported by the reader, with its name
  }
  return path;
}

/** Reads a checkpoint (a file, or a run folder's) and runs validateCheckpoint on it. */
export async function loadRunCheckpoint(path: string, policy: CheckpointPolicy = {}): Promise<UsableCheckpoint> {
  return validateCheckpoint(await loadCheckpoint(checkpointPathOf(path)), policy);
}
