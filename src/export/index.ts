// arpix's hand-off to PyTorch: export a model, its weights, its data and a torchrun/DDP script;
// import PyTorch checkpoints (arpix's, torch.save state dicts, Lightning, safetensors) back.

export type { ExportOptions, ExportResult } from './export.js';
export { exportForTorch, initialCheckpoint, PYTHON_DIR } from './export.js';
export type { Imported, ImportFormat } from './import.js';
export { importCheckpoint, writeImportedRun, loadPyTorchStateDict, ImportMismatchError } from './import.js';
export { checkpointToPyTorch, checkpointFromPyTorch, layoutsOf } from './convert.js';
export type { PyValue } from './pickle.js';
export { unpickle, readTorchSave, UnsafePickleError } from './pickle.js';
export { MASKED_FORMULATIONS, MaskedTapError } from './masked.js';
export { findTorchPython } from './python.js';
