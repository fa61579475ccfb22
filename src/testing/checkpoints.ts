// Real checkpoints for tests: a few steps of arpix's own training loop on a tiny model of a
// family (its `tiny` architecture) over synthetic 8×8 grey images, with Adam and an average, so
// the file holds weights, moments and averaged weights as any run's does.

import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { makeDataset, splitValidation } from '../data/index.js';
import { familyOf } from '../models/families.js';
import { Generator } from '../tensor/random.js';
import { resolveRunConfig, type RunConfig } from '../train/config.js';
import type { RunData } from '../train/data.js';
import { CHECKPOINT_FILE, train } from '../train/train.js';

/** 40 random 8×8 grey images in 16 levels, split 32 / 8. */
export function syntheticRunData(): RunData {
  const images = new Int32Array(40 * 64);
  new Generator(5).randint(images, 0, 256);
  const ds = makeDataset({ name: 'synthetic', split: 'train', images: Uint8Array.from(images), shape: [40, 8, 8, 1], source: 'test' });
  const { train: tr, validation } = splitValidation(ds, { size: 8 });
  return { train: tr, validation, transform: { kind: 'none' } };
}

/** The run config of a tiny model of `kind` on the synthetic data. */
export function tinyRunConfig(kind: string, steps = 3): RunConfig {
  const family = familyOf(kind);
  if (!family) throw new Error(`no family ${kind}`);
  const likelihood = kind === 'pixelcnn++' ? { kind: 'logistic-mixture', nrMix: 2, levels: 256 } : { kind: 'categorical', levels: 256 };
  return resolveRunConfig({
    model: { kind, height: 8, width: 8, channels: 1, likelihood, ...family.tiny(8, 8) },
    dataset: { name: 'synthetic' },
    train: { batchSize: 4, steps, validationSize: 8, validateEvery: 0, checkpointEvery: 0, logEvery: 1, ema: 0.9 },
  });
}

/** Trains `steps` steps into `runDir`; returns the checkpoint's path and bytes. */
export async function trainedCheckpoint(kind: string, runDir: string, steps = 3): Promise<{ file: string; bytes: Uint8Array; config: RunConfig; data: RunData }> {
  const config = tinyRunConfig(kind, steps);
  const data = syntheticRunData();
  const r = await train(config, { runDir, data });
  if (r.status !== 'done') throw new Error(`training a tiny ${kind} ended ${r.status}`);
  const file = join(runDir, CHECKPOINT_FILE);
  return { file, bytes: readFileSync(file), config, data };
}
