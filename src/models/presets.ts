// The presets shipped as JSON files, one per file in each family folder's presets/ (Node only:
// they are read from the package's files; a page builds its model from a checkpoint's config).

import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { ConfigError } from '../config.js';
import type { ModelConfig } from './families.js';
import { resolveModelConfig } from './index.js';

export interface Preset {
  name: string;
  description: string;
  /** Which data the preset trains on (read by the training loop). */
  dataset: Record<string, unknown>;
  model: ModelConfig;
  /** Training hyper-parameters (read by src/train, which checks them). */
  train: Record<string, unknown>;
}

/** Each family folder's presets/ holds its presets, one JSON file each: name → file. */
function presetFiles(): Map<string, string> {
  const files = new Map<string, string>();
  const here = fileURLToPath(new URL('./', import.meta.url));
  for (const family of readdirSync(here, { withFileTypes: true })) {
    const dir = join(here, family.name, 'presets');
    if (!family.isDirectory() || !existsSync(dir)) continue;
    for (const f of readdirSync(dir).filter((x) => x.endsWith('.json'))) {
      const name = f.slice(0, -5);
      if (files.has(name)) throw new Error(`preset ${name} is defined twice: ${files.get(name)} and ${join(dir, f)}`);
      files.set(name, join(dir, f));
    }
  }
  return files;
}

export function presetNames(): string[] {
  return [...presetFiles().keys()].sort();
}

export function loadPreset(name: string): Preset {
  const files = presetFiles();
  const file = files.get(name);
  if (file === undefined) throw new ConfigError('preset', `'${name}' does not exist; presets: ${[...files.keys()].sort().join(', ')}`);
  const raw = JSON.parse(readFileSync(file, 'utf8')) as Omit<Preset, 'name'>;
  return { name, description: raw.description, dataset: raw.dataset, model: resolveModelConfig(raw.model as unknown as Record<string, unknown>), train: raw.train ?? {} };
}
