// In-place initialisers (torch.nn.init's `uniform_`, `normal_`, …) drawing from a seeded
// Generator, so that a seed builds the same model on every backend. Each bumps the version of the
// storage it writes, like every other in-place write.

import { ArgumentError } from '../errors.js';
import type { Generator } from '../tensor/random.js';
import type { Tensor } from '../tensor/tensor.js';

function floatData(op: string, t: Tensor): Float32Array | Float64Array {
  if (!t.isFloat) throw new ArgumentError(op, 'tensor', `must be float32 or float64, got ${t.dtype}`);
  return t.data as Float32Array | Float64Array;
}

/** Fills t with values uniform in [lo, hi). */
export function uniform_(t: Tensor, lo: number, hi: number, generator: Generator): Tensor {
  const d = floatData('uniform_', t);
  generator.uniform(d);
  for (let i = 0; i < d.length; i++) d[i] = lo + (hi - lo) * d[i]!;
  t.bumpVersion();
  return t;
}

/** Fills t with normal values of the given mean and standard deviation. */
export function normal_(t: Tensor, mean: number, std: number, generator: Generator): Tensor {
  const d = floatData('normal_', t);
  generator.normal(d);
  for (let i = 0; i < d.length; i++) d[i] = mean + std * d[i]!;
  t.bumpVersion();
  return t;
}

export function constant_(t: Tensor, value: number): Tensor {
  floatData('constant_', t).fill(value);
  t.bumpVersion();
  return t;
}

/**
 * The bound of He et al.'s uniform initialisation for a leaky-ReLU slope `a`:
 * gain · sqrt(3 / fanIn) with gain = sqrt(2 / (1 + a²)). PyTorch's layers use a = √5, which
 * works out to 1 / sqrt(fanIn).
 */
export function kaimingUniformBound(fanIn: number, a = Math.sqrt(5)): number {
  if (!(fanIn > 0)) throw new ArgumentError('kaimingUniformBound', 'fanIn', `must be positive, got ${fanIn}`);
  const gain = Math.sqrt(2 / (1 + a * a));
  return gain * Math.sqrt(3 / fanIn);
}
