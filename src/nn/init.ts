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

/** While a build runs under `withoutInitialisers`: the tensors left unfilled, and their versions then. */
let unfilled: { tensor: Tensor; version: number }[] | null = null;

/**
 * Runs `build` with uniform_ and normal_ filling nothing (their tensors keep their zeros), though
 * they move their generators on exactly as a draw would, so what draws after is unchanged. For a
 * model whose every weight is then loaded from a file: drawing weights only to overwrite them is
 * most of building one. `loaded()` is false when a tensor left unfilled has not been written since.
 */
export function withoutInitialisers<T>(build: () => T): { value: T; loaded: () => boolean } {
  const outer = unfilled;
  const mine: { tensor: Tensor; version: number }[] = [];
  unfilled = mine;
  try {
    const value = build();
    return { value, loaded: () => mine.every((u) => u.tensor.version !== u.version) };
  } finally {
    unfilled = outer;
  }
}

/** Fills t with values uniform in [lo, hi). */
export function uniform_(t: Tensor, lo: number, hi: number, generator: Generator): Tensor {
  const d = floatData('uniform_', t);
  if (unfilled) {
    generator.skipUniform(d.length);
    unfilled.push({ tensor: t, version: t.version });
    return t;
  }
  generator.uniform(d);
  for (let i = 0; i < d.length; i++) d[i] = lo + (hi - lo) * d[i]!;
  t.bumpVersion();
  return t;
}

/** Fills t with normal values of the given mean and standard deviation. */
export function normal_(t: Tensor, mean: number, std: number, generator: Generator): Tensor {
  const d = floatData('normal_', t);
  if (unfilled) {
    generator.skipNormal(d.length);
    unfilled.push({ tensor: t, version: t.version });
    return t;
  }
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
