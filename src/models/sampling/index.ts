// arpix/sample: naive and cached samplers (model.sample uses these) and completion.

export type { SampleOptions } from './options.js';
export { sample, sampleCached } from './sample.js';
export { sampleNaive } from './naive.js';
export { samplePart, type BatchPart } from './part.js';
