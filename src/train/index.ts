// arpix/train: the training loop, its configuration, evaluation in bits/dim, model costs and the
// metric files a run writes. The model in a checkpoint (src/models/checkpoint.ts), the image files
// (src/io) and Image GPT's linear probe (src/models/image-gpt) live in their own places and are
// re-exported here.

import '../backends/node.js'; // Node's services and the native backend, registered before anything computes
export type { RunConfig, TrainConfig, DatasetConfig, ScheduleConfig } from './config.js';
export { trainDefaults, datasetDefaults, resolveRunConfig, presetRaw, configFileRaw, applyOverrides } from './config.js';
export type { RunData, Binarisation, DataDescription } from './data.js';
export { transformFor, levelsFor, describeData, checkDataFits, loadTrainData, loadEvalData } from './data.js';
export type { Evaluation, EvaluateOptions } from './evaluate.js';
export { evaluate } from './evaluate.js';
export type { PrecisionChoice, PrecisionSetting } from './precision.js';
export { choosePrecision, PRECISION_SETTINGS } from './precision.js';
export type { Progress, TrainEvent, TrainOptions, TrainResult } from './train.js';
export { train, TrainError, checkResumableChanges, RESUMABLE_KEYS, CHECKPOINT_FILE, CONFIG_FILE, METRICS_FILE, ARPIX_VERSION } from './train.js';
export { checkpointPathOf, checkpointRunConfig, loadRunCheckpoint } from './checkpoint.js';
export { checkCheckpointTensors, modelFromCheckpoint } from '../models/checkpoint.js';
export type { ModelInfo, ConvCost } from './info.js';
export { modelInfo, convCosts, receptiveField, pixelField } from './info.js';
export type { PixelField } from './info.js';
export type { GridOptions } from '../io/images.js';
export { imageGridPng, encodeNpyUint8 } from '../io/images.js';
export type { MetricRecord, TrainRecord, ValidationRecord } from './metrics.js';
export { readMetrics } from './metrics.js';
export type { ProbeOptions, ProbeResult, ProbeLayerResult } from '../models/image-gpt/probe.js';
export { probe, probeFeatures, poolFeatures, middleLayer } from '../models/image-gpt/probe.js';
export type { LogisticData, LogisticFit, LogisticModel, LogisticOptions } from '../models/image-gpt/logistic.js';
export { fitLogistic, predictLogistic } from '../models/image-gpt/logistic.js';
export { needsPalette, fitConfigPalette } from './palette.js';
