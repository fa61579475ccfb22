// arpix's public surface, exported on purpose: the Tensor and its ops, autograd, the backend
// switch, random generators and the error classes. Subpaths (arpix/nn, arpix/optim, …) follow.

export { Tensor } from './tensor/tensor.js';
export type { GradFn } from './tensor/tensor.js';
export { backward } from './tensor/autograd.js';
export { Generator, manualSeed, getDefaultGenerator } from './tensor/random.js';
export type { GeneratorState } from './tensor/random.js';
export * from './ops/index.js';
export { setBackend, backendName, nativeAvailable } from './backends/registry.js';
export type { BackendName } from './backends/registry.js';
export type { DType, TypedArray, Kernels, View, ConvParams } from './kernels/contracts.js';
export { ArpixError, ShapeError, DTypeError, AxisError, ArgumentError, FormatError } from './errors.js';
