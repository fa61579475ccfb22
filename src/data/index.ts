// arpix's data layer: datasets in memory, where they come from, pixel transforms, splits and a
// seeded, resumable batch loader.

export type { Dataset, DatasetShape, DatasetInit } from './dataset.js';
export { makeDataset, subset, imageSize, describeDataset } from './dataset.js';

export type { IdxArray, IdxPairOptions } from './idx.js';
export { parseIdx, readIdx, readIdxImages, readIdxLabels, loadIdxPair } from './idx.js';
export type { CifarVariant, CifarOptions } from './cifar.js';
export { parseCifar, loadCifar } from './cifar.js';
export type { NpyArray } from './npy.js';
export { parseNpy, readNpyImages, readNpyLabels, loadNpy } from './npy.js';
export type { FolderOptions, FolderDataset, SkippedFile } from './folder.js';
export { loadImageFolder, scanFolder } from './folder.js';
export type { RawImage } from './decode.js';
export { decodeImage, cropResize, prepareImage } from './decode.js';

export type { PixelTransform } from './transforms.js';
export { levelsOf, quantise, binarise, dynamicBinarise } from './transforms.js';
export type { Batch, LoaderOptions, LoaderState, ValidationOptions } from './loader.js';
export { BatchLoader, splitValidation, evaluationLoader } from './loader.js';

export type { DatasetSpec, RemoteFile, DatasetFormat } from './registry.js';
export { DATASETS, findSpec } from './registry.js';
export type { SourceKind, SourceOptions, Located, DatasetListing, DownloadOptions, DownloadResult, LoadOptions } from './sources.js';
export {
  DatasetUnavailableError, cacheDir, searchPath, locateDataset, listDatasets, formatDatasetList,
  verifyDataset, downloadDataset, loadDataset,
} from './sources.js';
