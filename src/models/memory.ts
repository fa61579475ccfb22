// Memory before allocation: what a model, a training batch or a sample request would need,
// estimated from the family's analytic cost (family.ts: `cost`), checked against a limit before
// anything is allocated, so an absurd size ends as one line saying how much it would need —
// not as V8's out-of-memory abort or the kernel's OOM killer minutes later.
//
// The limit is 80 % of this machine's memory, or ARPIX_MEMORY_LIMIT (bytes, or with a K/M/G/T
// suffix: 8G; `off` turns the checks off). Families without a cost slot are not checked.

import { ConfigError } from '../config.js';
import { envVar, platform } from '../env.js';
import { ArpixError } from '../errors.js';
import { familyOf } from './families.js';
import type { ModelCost } from './core/family.js';
import type { BaseModelConfig } from './core/model.js';

/** A request that would need more memory than the limit allows; says how much, and what to do. */
export class MemoryLimitError extends ArpixError {
  constructor(readonly what: string, readonly bytes: number, readonly limit: number, limitSource: string) {
    super(`${what} would need about ${formatBytes(bytes)}, more than the memory limit of ${formatBytes(limit)} (${limitSource}); make it smaller, or set ARPIX_MEMORY_LIMIT to allow more (a size such as 32G, or off)`);
  }
}

export function formatBytes(n: number): string {
  const units = ['bytes', 'KiB', 'MiB', 'GiB', 'TiB', 'PiB'];
  let i = 0;
  while (n >= 1024 && i < units.length - 1) {
    n /= 1024;
    i++;
  }
  return i === 0 ? `${n} bytes` : n >= 1e6 ? `${n.toExponential(2)} ${units[i]}` : `${n.toFixed(1)} ${units[i]}`;
}

const SUFFIX: Record<string, number> = { '': 1, K: 2 ** 10, M: 2 ** 20, G: 2 ** 30, T: 2 ** 40 };

/** The limit in bytes (Infinity when off) and where it comes from, for messages. */
export function memoryLimit(env: string | undefined = envVar('ARPIX_MEMORY_LIMIT')): { bytes: number; source: string } {
  if (env === undefined || env === '') {
    return { bytes: Math.floor(0.8 * platform().totalMemory()), source: `80% of this machine's ${formatBytes(platform().totalMemory())}` };
  }
  if (env === 'off') return { bytes: Infinity, source: 'off' };
  const m = /^\s*(\d+(?:\.\d+)?)\s*([KMGT]?)i?B?\s*$/i.exec(env);
  if (!m) throw new ConfigError('ARPIX_MEMORY_LIMIT', `must be a size such as 8G, 512M or 1000000000 (bytes), or off; got '${env}'`);
  return { bytes: Number(m[1]) * SUFFIX[m[2]!.toUpperCase()]!, source: `ARPIX_MEMORY_LIMIT=${env}` };
}

/** Throws MemoryLimitError when `bytes` exceeds the limit. */
export function checkMemory(what: string, bytes: number, limit = memoryLimit()): void {
  if (bytes > limit.bytes) throw new MemoryLimitError(what, bytes, limit.bytes, limit.source);
}

/** The family's analytic cost of a resolved config, or null for a family without one. */
export function costOfConfig(config: BaseModelConfig): ModelCost | null {
  return familyOf(config.kind)?.cost?.(config as never) ?? null;
}

const FLOAT = 4;

/**
 * Bytes a use of a model needs: its weights (with gradients, two moments and an average when
 * training) and its layer outputs for `images` at a time — about three times them for a
 * training step (the forward pass's intermediates and their gradients), once for evaluation
 * and sampling.
 */
export function memoryNeeded(cost: ModelCost, use: 'model' | 'train' | 'eval' | 'sample', images = 0): number {
  const weights = cost.parameters * FLOAT * (use === 'train' ? 5 : 1);
  const perImage = cost.activations * FLOAT * (use === 'train' ? 3 : use === 'model' ? 0 : 1);
  return weights + perImage * images;
}

/** Checks the memory of a use of the model `config` describes; no-op for a family without a cost. */
export function checkModelMemory(config: BaseModelConfig, use: 'model' | 'train' | 'eval' | 'sample', images = 0, what?: string): void {
  const cost = costOfConfig(config);
  if (cost === null) return;
  const model = `a ${config.kind} model of ${cost.parameters.toLocaleString('en')} parameters on ${config.height}×${config.width}×${config.channels} images`;
  checkMemory(what === undefined ? model : `${what} (${model})`, memoryNeeded(cost, use, images));
}
