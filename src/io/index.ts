// arpix/io: safetensors (our implementation of the public format), atomic writes and checkpoints.

export { encodeSafetensors, decodeSafetensors, saveSafetensors, saveSafetensorsSync, loadSafetensors, loadSafetensorsSync, inspectSafetensors } from './safetensors.js';
export { writeFileAtomic, writeFileAtomicSync } from './atomic.js';
export type { Checkpoint, CheckpointMeta } from './checkpoint.js';
export { saveCheckpoint, loadCheckpoint, CheckpointMismatchError } from './checkpoint.js';
