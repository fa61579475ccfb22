// Tiny trained runs for the tests of arpix serve: each preset's model shrunk to a few channels and
// trained for a few steps on Fashion-MNIST into a temporary folder, one run per model kind.

import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { applyOverrides, presetRaw, resolveRunConfig, train } from '../train/index.js';

const SMALL: Record<string, string[]> = {
  'gated-pixelcnn-fmnist': ['model.hiddenChannels=8', 'model.dilations=[1,2]'],
  'pixelcnn-binary-fmnist-small': ['model.hiddenChannels=4', 'model.residualBlocks=1', 'model.outputHidden=8'],
  'pixelcnnpp-fmnist-small': ['model.filters=4', 'model.resolutions=2', 'model.likelihood.nrMix=2', 'model.dropout=0'],
};

export interface TinyRuns {
  /** The folder holding the runs (served as the root 'runs'). */
  root: string;
  /** Run folder names by preset. */
  names: string[];
  cleanup(): void;
}

/** Trains one tiny run per preset named (default: one per model kind) under a new temp folder. */
export async function trainTinyRuns(presets: string[] = Object.keys(SMALL), steps = 4): Promise<TinyRuns> {
  const base = mkdtempSync(join(tmpdir(), 'arpix-serve-'));
  const root = join(base, 'runs');
  for (const preset of presets) {
    const config = resolveRunConfig(applyOverrides(presetRaw(preset), [
      ...SMALL[preset]!, `train.steps=${steps}`, 'train.batchSize=4', 'train.validationSize=16', 'train.validateEvery=2',
      `train.checkpointEvery=${steps}`, 'train.logEvery=1', 'train.schedule.warmup=1',
    ]), preset);
    const r = await train(config, { runDir: join(root, preset) });
    if (r.status !== 'done') throw new Error(`tiny run ${preset}: ${r.status} ${r.message ?? ''}`);
  }
  return { root, names: presets, cleanup: () => rmSync(base, { recursive: true, force: true }) };
}
