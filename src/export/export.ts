// `arpix export … --torch OUT_DIR`: a self-contained folder that trains the same model in PyTorch,
// on one GPU or many machines (torchrun + DistributedDataParallel):
//   config.json              the run's resolved config (model, dataset, train)
//   checkpoint.safetensors   an arpix checkpoint with its weights (optimiser state and average
//                            too, for a run) in PyTorch's layout ("layout": "pytorch")
//   arpix_torch/             the family's PyTorch mirror (python/arpix_torch, shipped with arpix)
//   train.py                 DDP training with arpix train's semantics (python/train.py)
//   data/                    the dataset as flat uint8 arrays: train (minus the run's validation
//                            images), validation and test, with labels, described by data.json
//   README.md                the exact commands
// A checkpoint train.py writes comes back with `arpix import`.

import { readdirSync, readFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { loadDataset, type Dataset } from '../data/index.js';
import { encodeCheckpoint, CHECKPOINT_FORMAT, CHECKPOINT_VERSION, type Checkpoint } from '../io/checkpoint.js';
import { writeFilesAtomic } from '../io/atomic.js';
import { checkOutputFolder, makeFolder, refuseExistingOutputs } from '../io/files.js';
import { lockFolder } from '../io/lock.js';
import { createModel } from '../models/index.js';
import type { RunConfig } from '../train/config.js';
import { loadTrainData } from '../train/data.js';
import { ARPIX_VERSION, TrainError } from '../train/train.js';
import { checkpointToPyTorch } from './convert.js';

/** python/ of this arpix install: the mirrors and train.py. */
export const PYTHON_DIR = fileURLToPath(new URL('../../python/', import.meta.url));

export interface ExportOptions {
  /** Write the dataset's arrays (default true); without, train.py needs --data DIR. */
  data?: boolean;
  /** Replace an existing export in OUT_DIR. */
  force?: boolean;
}

export interface ExportResult {
  dir: string;
  files: string[];
  parameters: number;
  /** Bytes of checkpoint.safetensors. */
  checkpointBytes: number;
}

/** A new run's checkpoint: the weights `arpix train` would start from (seeded by train.seed). */
export function initialCheckpoint(config: RunConfig): Checkpoint {
  const model = createModel(config.model, { seed: config.train.seed });
  return {
    meta: {
      format: CHECKPOINT_FORMAT, version: CHECKPOINT_VERSION, arpixVersion: ARPIX_VERSION, modelKind: config.model.kind,
      config: config as unknown as Checkpoint['meta']['config'], step: 0, epoch: 0, loader: null, generators: {},
      optimizer: null, scheduler: null, ema: null, trainSeconds: 0, imagesSeen: 0, extra: {},
    },
    model: model.stateDict(), optimizer: {}, ema: {},
  };
}

/** A split's arrays, as the files data/ holds: images, and labels when it has them. */
function splitFiles(split: string, ds: Dataset): [string, Uint8Array][] {
  const files: [string, Uint8Array][] = [[`data/${split}.u8`, ds.images]];
  if (ds.labels) {
    if (ds.numClasses > 256) throw new TrainError(`${ds.name} has ${ds.numClasses} classes; the export writes labels as uint8 (at most 256)`);
    files.push([`data/${split}-labels.u8`, Uint8Array.from(ds.labels)]);
  }
  return files;
}

/** The dataset of a run config as flat arrays and data.json, by path under the export folder. */
async function dataFiles(config: RunConfig): Promise<[string, Uint8Array | string][]> {
  const { train, validation } = await loadTrainData(config.dataset, config.train.validationSize);
  const named: [string, Dataset][] = [['train', train], ['validation', validation]];
  try {
    named.push(['test', await loadDataset(config.dataset.name, { split: 'test' })]);
  } catch {
    // Folders and .npy files have no published test split: train and validation are enough.
  }
  const [, height, width, channels] = train.shape;
  const splits = Object.fromEntries(named.map(([s, ds]) => [s, { n: ds.shape[0], labels: ds.labels !== null }]));
  const info = {
    dataset: config.dataset.name, height, width, channels, numClasses: train.numClasses, splits,
    note: 'uint8 [N, H, W, C] row-major, raw 8-bit values (train.py applies dataset.bits / dataset.binarize); the validation split is the one arpix train holds out (train.validationSize, seed 0)',
  };
  return [...named.flatMap(([s, ds]) => splitFiles(s, ds)), ['data/data.json', JSON.stringify(info, null, 2) + '\n']];
}

function readme(config: RunConfig, fromStep: number | null, withData: boolean): string {
  const t = config.train;
  const perGpu = (g: number) => (t.batchSize % g === 0 ? '' : ` (train.batchSize ${t.batchSize} is not divisible by ${g}: set it in config.json first)`);
  return `# ${config.preset || config.model.kind} for PyTorch (exported by arpix ${ARPIX_VERSION})

${fromStep !== null ? `This folder continues an arpix run at step ${fromStep}: weights, optimiser state and average are in checkpoint.safetensors.` : 'This folder starts a new run from the weights `arpix train` would start from.'}
The model is \`arpix_torch.${config.model.kind}\` (python/arpix_torch in arpix), the same network as arpix's: the same
weights give the same log-likelihood. train.py trains it with arpix train's optimiser (${t.optimizer}, lr ${t.lr}),
schedule (${t.schedule.decay}, warm-up ${t.schedule.warmup}), clipping (${t.gradClip}), average (${t.ema}) and checkpoint cadence (${t.checkpointEvery});
train.batchSize = ${t.batchSize} is the *global* batch of one step, split across the ranks.
Needs Python 3 with PyTorch ≥ 1.13 and NumPy (Debian: apt-get install python3-torch python3-numpy).
${withData ? '' : '\nNo data was exported: give the folder of an export that has it with --data DIR.\n'}
## One GPU (or the CPU)

    python3 train.py --out run

## Eight GPUs on one machine

    torchrun --standalone --nproc_per_node=8 train.py --out run${perGpu(8)}

## Several machines (here 2 × 8 GPUs; run on every machine, NODE_RANK = 0 on the first)

    torchrun --nnodes=2 --nproc_per_node=8 --node_rank=$NODE_RANK \\
      --rdzv_backend=c10d --rdzv_endpoint=FIRST_MACHINE:29500 --rdzv_id=arpix train.py --out run${perGpu(16)}

The data/ folder (and this whole folder) must be on every machine. On CPUs only, the ranks talk over gloo:
\`torchrun --standalone --nproc_per_node=2 train.py --device cpu\` (Debian's torchrun with Python 3.11 needs
\`--redirects 1 --tee 1\` as well).

## Continue, and come back to arpix

    python3 train.py --out run --resume              # continues from run/checkpoint.safetensors
    arpix import run/checkpoint.safetensors --out RUN_DIR
    arpix eval RUN_DIR · arpix sample RUN_DIR · arpix train --resume RUN_DIR

\`--steps N\` overrides train.steps. run/metrics.jsonl has arpix's format (\`arpix plot\` draws it once imported).
An --out that holds a run needs \`--resume\` (continue it) or \`--force\` (start again over it).

## What train.py checks, and how it ends

Before it writes anything, train.py checks config.json, data/ and the checkpoint it starts from: the checkpoint's
SHA-256 sums (\`arpix.sha256\`; a file without them needs \`--allow-unverified\`), that every value is finite, and that
every tensor fits the model. A bad input ends in one line and exit 1. A non-finite loss, gradient or weight stops
the run with exit 3 (as \`arpix train\` does) and writes no checkpoint of it: the last good one stays. Every
checkpoint train.py writes carries the sums, so \`arpix import\` verifies it.

Under torchrun there is no final barrier: the last collective gathers the ranks' weight digests, then rank 0
validates and writes the checkpoint while the other ranks leave. Leaving the process group is bounded (a rank
whose teardown takes over 60 s exits without it), and a collective waits at most \`--timeout\` seconds (1800 by
default) for a rank that has died.
`;
}

/**
 * Exports a run's checkpoint (or, with `checkpoint` null, a new run of `config`) for PyTorch into
 * `outDir`. Every file is made in memory first (the data loaded, the weights converted), then the
 * folder is checked as every output is: a pseudo-filesystem is refused at once, and any file the
 * export would write that exists already is refused without `force` — all checked before any is
 * written. The folder's lock is held while writing (a training run writing it refuses the export,
 * and the other way round), and each file is written atomically.
 */
export async function exportForTorch(config: RunConfig, checkpoint: Checkpoint | null, outDir: string, opts: ExportOptions = {}): Promise<ExportResult> {
  checkOutputFolder(outDir);
  if (checkpoint?.file !== undefined && resolve(dirname(checkpoint.file)) === resolve(outDir)) {
    throw new TrainError(`${outDir} is the folder of the run being exported; its checkpoint would be replaced by one in PyTorch's layout — choose another --torch folder`);
  }
  const source = checkpoint ?? initialCheckpoint(config);
  const checkpointBytes = encodeCheckpoint(checkpointToPyTorch(source));
  const withData = opts.data ?? true;
  const runConfig = source.meta.config as unknown as RunConfig;
  const python = readdirSync(join(PYTHON_DIR, 'arpix_torch')).filter((f) => f.endsWith('.py')).sort();
  const files: [string, Uint8Array | string][] = [
    ['config.json', JSON.stringify(source.meta.config, null, 2) + '\n'],
    ['checkpoint.safetensors', checkpointBytes],
    ['train.py', readFileSync(join(PYTHON_DIR, 'train.py'))],
    ['README.md', readme(runConfig, checkpoint ? source.meta.step : null, withData)],
    ...python.map((f): [string, Uint8Array] => [`arpix_torch/${f}`, readFileSync(join(PYTHON_DIR, 'arpix_torch', f))]),
    ...(withData ? await dataFiles(runConfig) : []),
  ];
  const paths = files.map(([f]) => join(outDir, f));
  refuseExistingOutputs(paths, opts.force ?? false, '--torch folder');
  await makeFolder(outDir);
  const lock = lockFolder(outDir, 'arpix export');
  try {
    refuseExistingOutputs(paths, opts.force ?? false, '--torch folder'); // again, now that no other arpix writes here
    for (const sub of new Set(paths.map((p) => dirname(p)))) await makeFolder(sub);
    await writeFilesAtomic(paths.map((p, i) => [p, files[i]![1]]), { exclusive: !opts.force });
  } finally {
    lock.release();
  }
  return { dir: outDir, files: files.map(([f]) => f), parameters: createModel(config.model).numParameters(), checkpointBytes: checkpointBytes.length };
}
