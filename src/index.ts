// arpix's public surface in Node: everything of src/core.ts, with Node's services and the native
// backend registered (src/backends/node.ts) and the presets shipped as files. Layers, optimisers,
// data, training and files have subpaths: arpix/nn, arpix/optim, arpix/data, arpix/train, arpix/io.
// A page imports arpix/browser instead.

import './backends/node.js'; // Node's services and the native backend, registered before anything computes
export * from './core.js';
export { loadPreset, presetNames } from './models/presets.js';
export type { Preset } from './models/presets.js';
