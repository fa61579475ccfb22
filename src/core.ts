// arpix's public surface that runs wherever JavaScript runs (Node, a page, a Web Worker): models
// and their likelihoods and samplers, the Tensor and its ops, autograd, the backend switch, random
// generators, checkpoint decoding and the error classes. src/index.ts (Node) and src/browser.ts
// export it, each with what its platform adds.

export { Tensor } from './tensor/tensor.js';
export type { GradFn } from './tensor/tensor.js';
export { backward, type BackwardOptions } from './tensor/autograd.js';
export { Generator, manualSeed, getDefaultGenerator } from './tensor/random.js';
export type { GeneratorState } from './tensor/random.js';
export * from './ops/index.js';
export { setBackend, backendName, nativeAvailable, registerBackend } from './backends/registry.js';
export type { BackendName } from './backends/registry.js';
export type { DType, TypedArray, Kernels, View, ConvParams } from './kernels/contracts.js';
export { BF16_OPERANDS } from './kernels/contracts.js';
export { roundBf16, bf16Bits } from './kernels/bf16.js';
export { ArpixError, ShapeError, DTypeError, AxisError, ArgumentError, FormatError } from './errors.js';

export { createModel, resolveModelConfig, MODEL_KINDS, AutoregressiveModel, GatedPixelCNN, ImageGPT, PixelCNN, PixelCNNPP } from './models/index.js';
export type { ModelConfig, ModelKind, BaseModelConfig, Condition, GatedPixelCNNConfig, ImageGPTConfig, PixelCNNConfig, PixelCNNPPConfig } from './models/index.js';
export { createLikelihood, logisticMixtureLogProb, sampleLogisticMixture, bitsPerDim, fitPalette, greyPalette, makePalette, PaletteIndex, isPaletteHead } from './likelihoods/index.js';
export type { Likelihood, LikelihoodConfig, Palette, PaletteHead, KMeansOptions, KMeansResult } from './likelihoods/index.js';
export { probe } from './models/image-gpt/probe.js';
export type { ProbeOptions, ProbeResult } from './models/image-gpt/probe.js';
export { sample, sampleCached, sampleNaive, samplePart } from './models/sampling/index.js';
export type { BatchPart, SampleOptions } from './models/sampling/index.js';
export { ConfigError } from './config.js';
export { decodeCheckpoint, type Checkpoint, type CheckpointMeta } from './io/checkpoint.js';
export { decodeSafetensors, encodeSafetensors, inspectSafetensors } from './io/safetensors.js';
export { modelFromCheckpoint } from './models/checkpoint.js';
