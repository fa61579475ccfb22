// arpix/nn: Module and Parameter, the layers, initialisers and the PyTorch layout boundary.

export { Module, Parameter, StateDictError } from './module.js';
export type { Forward, StateDict, StateDictOptions, LoadStateDictOptions, LoadStateDictResult } from './module.js';
export { ModuleList, Sequential } from './container.js';
export { Linear } from './linear.js';
export type { LinearOptions } from './linear.js';
export { Conv2d, ConvTranspose2d } from './conv.js';
export type { Conv2dOptions, ConvTranspose2dOptions, Pair, Padding } from './conv.js';
export { LayerNorm, Embedding, Dropout } from './layers.js';
export type { LayerNormOptions, EmbeddingOptions, DropoutOptions } from './layers.js';
export { uniform_, normal_, constant_, kaimingUniformBound } from './init.js';
export { toPyTorchLayout, fromPyTorchLayout, pytorchShape } from './layout.js';
export type { ParamLayout, StateDictLayout } from './layout.js';
export { RMSNorm, KVCache, MultiHeadAttention, TransformerBlock, LearnedPositionEmbedding, SinusoidalPositionEncoding, sinusoidalPositionEncoding } from './transformer.js';
export type { RMSNormOptions, MultiHeadAttentionOptions, TransformerBlockOptions, Activation, PositionEmbeddingOptions } from './transformer.js';
export { weightDecayGroups } from './decay.js';
export type { WeightDecayGroup } from './decay.js';
