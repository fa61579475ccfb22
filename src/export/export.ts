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

import { existsSync, readdirSync, statSync } from 'node:fs';
import { copyFile, mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { loadDataset, type Dataset } from '../data/index.js';
import { saveCheckpoint, CHECKPOINT_FORMAT, CHECKPOINT_VERSION, type Checkpoint } from '../io/checkpoint.js';
import { writeFileAtomic } from '../io/atomic.js';
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

async function writeSplit(dir: string, split: string, ds: Dataset): Promise<{ n: number; labels: boolean }> {
  await writeFile(join(dir, `${split}.u8`), ds.images);
  if (ds.labels) {
    if (ds.numClasses > 256) throw new TrainError(`${ds.name} has ${ds.numClasses} classes; the export writes labels as uint8 (at most 256)`);
    await writeFile(join(dir, `${split}-labels.u8`), Uint8Array.from(ds.labels));
  }
  return { n: ds.shape[0], labels: ds.labels !== null };
}

/** Writes the dataset of a run config as flat arrays; returns data.json's content. */
async function writeData(dir: string, config: RunConfig): Promise<Record<string, unknown>> {
  await mkdir(dir, { recursive: true });
  const { train, validation } = await loadTrainData(config.dataset, config.train.validationSize);
  const splits: Record<string, { n: number; labels: boolean }> = {
    train: await writeSplit(dir, 'train', train),
    validation: await writeSplit(dir, 'validation', validation),
  };
  try {
    splits.test = await writeSplit(dir, 'test', await loadDataset(config.dataset.name, { split: 'test' }));
  } catch {
    // Folders and .npy files have no published test split: train and validation are enough.
  }
  const [, height, width, channels] = train.shape;
  const info = {
    dataset: config.dataset.name, height, width, channels, numClasses: train.numClasses, splits,
    note: 'uint8 [N, H, W, C] row-major, raw 8-bit values (train.py applies dataset.bits / dataset.binarize); the validation split is the one arpix train holds out (train.validationSize, seed 0)',
  };
  await writeFile(join(dir, 'data.json'), JSON.stringify(info, null, 2) + '\n');
  return info;
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
 * `outDir`.
 */
export async function exportForTorch(config: RunConfig, checkpoint: Checkpoint | null, outDir: string, opts: ExportOptions = {}): Promise<ExportResult> {
  const ckptFile = join(outDir, 'checkpoint.safetensors');
  if (existsSync(ckptFile) && !opts.force) throw new TrainError(`${outDir} already holds an export; choose another OUT_DIR or pass --force`);
  const source = checkpoint ?? initialCheckpoint(config);
  const exported = checkpointToPyTorch(source);
  await mkdir(join(outDir, 'arpix_torch'), { recursive: true });
  await writeFileAtomic(join(outDir, 'config.json'), JSON.stringify(source.meta.config, null, 2) + '\n');
  await saveCheckpoint(ckptFile, exported);
  const files = ['config.json', 'checkpoint.safetensors', 'train.py', 'README.md'];
  for (const f of readdirSync(join(PYTHON_DIR, 'arpix_torch')).filter((f) => f.endsWith('.py'))) {
    await copyFile(join(PYTHON_DIR, 'arpix_torch', f), join(outDir, 'arpix_torch', f));
    files.push(`arpix_torch/${f}`);
  }
  await copyFile(join(PYTHON_DIR, 'train.py'), join(outDir, 'train.py'));
  const withData = opts.data ?? true;
  if (withData) {
    const info = await writeData(join(outDir, 'data'), source.meta.config as unknown as RunConfig);
    files.push('data/data.json', ...Object.keys(info.splits as object).map((s) => `data/${s}.u8`));
  }
  await writeFileAtomic(join(outDir, 'README.md'), readme(source.meta.config as unknown as RunConfig, checkpoint ? source.meta.step : null, withData));
  return { dir: outDir, files, parameters: createModel(config.model).numParameters(), checkpointBytes: statSync(ckptFile).size };
}
