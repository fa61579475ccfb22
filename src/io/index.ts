// arpix/io: safetensors (our implementation of the public format), atomic writes, checkpoints, and
// the image files arpix writes (PNG grids, .npy arrays).

export { encodeSafetensors, decodeSafetensors, inspectSafetensors } from './safetensors.js';
export { saveSafetensors, saveSafetensorsSync, loadSafetensors, loadSafetensorsSync } from './disk.js';
export { writeFileAtomic, writeFileAtomicSync } from './atomic.js';
export type { Checkpoint, CheckpointMeta } from './checkpoint.js';
export { CheckpointMismatchError } from './checkpoint.js';
export { saveCheckpoint, loadCheckpoint } from './disk.js';
export type { GridOptions } from './images.js';
export { imageGridPng, encodeNpyUint8 } from './images.js';
