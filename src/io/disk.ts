// Checkpoints and safetensors on disk (Node only): the formats themselves are in safetensors.ts
// and checkpoint.ts, which work on bytes and run anywhere; this file reads and writes the files.

import { constants as bufferConstants } from 'node:buffer';
import type { Tensor } from '../tensor/tensor.js';
import { writeFileAtomic, writeFileAtomicSync } from './atomic.js';
import { decodeCheckpoint, encodeCheckpoint, type Checkpoint, type DecodeOptions } from './checkpoint.js';
import { readRegularFile } from './files.js';
import { decodeSafetensors, encodeSafetensors, type SafetensorsContents } from './safetensors.js';

/** Writes tensors and string metadata to `path` as safetensors, atomically. */
export async function saveSafetensors(path: string, tensors: Record<string, Tensor>, metadata?: Record<string, string>): Promise<void> {
  await writeFileAtomic(path, encodeSafetensors(tensors, metadata));
}

export function saveSafetensorsSync(path: string, tensors: Record<string, Tensor>, metadata?: Record<string, string>): void {
  writeFileAtomicSync(path, encodeSafetensors(tensors, metadata));
}

/** Reads a safetensors file: its tensors (in header order) and metadata. */
export async function loadSafetensors(path: string): Promise<SafetensorsContents> {
  return loadSafetensorsSync(path);
}

/** Reads a safetensors file; a FIFO, a device or a folder is refused at once, not read forever. */
export function loadSafetensorsSync(path: string): SafetensorsContents {
  return decodeSafetensors(readRegularFile(path, bufferConstants.MAX_LENGTH, 'a safetensors file'), path);
}

/** Writes a checkpoint atomically (temporary file in the same folder, fsync, rename). */
export async function saveCheckpoint(path: string, c: Checkpoint): Promise<void> {
  try {
    await writeFileAtomic(path, encodeCheckpoint(c));
  } catch (e) {
    // A failed write() names no file; say which one could not be written.
    if (e && typeof e === 'object' && !('path' in e)) Object.assign(e, { path });
    throw e;
  }
}

/** Reads and parses a checkpoint file. */
export async function loadCheckpoint(file: string, opts: DecodeOptions = {}): Promise<Checkpoint> {
  // A regular file only (a FIFO or /dev/zero is refused, not read forever), up to what one read can hold.
  return decodeCheckpoint(readRegularFile(file, bufferConstants.MAX_LENGTH, 'a checkpoint'), file, opts);
}
