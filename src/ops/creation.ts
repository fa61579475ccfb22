// Creating tensors: from arrays, filled, ranges, and random from the seeded generator.

import type { DType, TypedArray } from '../kernels/contracts.js';
import { ArgumentError, ShapeError, fmtShape } from '../errors.js';
import { Generator, getDefaultGenerator } from '../tensor/random.js';
import { Tensor, arrayFor, dtypeOf } from '../tensor/tensor.js';
import { shapeSize } from '../tensor/shape.js';

type Nested = number | readonly Nested[];

function inferShape(x: Nested): number[] {
  const shape: number[] = [];
  let v: Nested = x;
  while (Array.isArray(v)) {
    shape.push(v.length);
    v = (v as readonly Nested[])[0] ?? 0;
  }
  return shape;
}

/**
 * A tensor from nested arrays, a flat array with a shape, or a typed array (used without copying).
 * Numbers default to float32.
 */
export function tensor(values: Nested | TypedArray, shape?: readonly number[], dtype?: DType): Tensor {
  if (ArrayBuffer.isView(values)) {
    const data = values as TypedArray;
    if (dtype && dtype !== dtypeOf(data)) {
      throw new ArgumentError('tensor', 'dtype', `${dtype} does not match the ${dtypeOf(data)} typed array given`);
    }
    return new Tensor(data, shape ?? [data.length]);
  }
  const flat = (Array.isArray(values) ? (values as unknown[]).flat(Infinity) : [values]) as number[];
  const s = shape ?? inferShape(values as Nested);
  if (shapeSize(s) !== flat.length) {
    throw new ShapeError('tensor', 'values', `hold ${flat.length} numbers, which does not fit shape ${fmtShape(s)} (ragged nested arrays?)`, [s]);
  }
  const data = arrayFor(dtype ?? 'float32', flat.length);
  for (let i = 0; i < flat.length; i++) {
    if (typeof flat[i] !== 'number') throw new ArgumentError('tensor', 'values', `contain a ${typeof flat[i]} at flat index ${i}; only numbers are allowed`);
    data[i] = flat[i]!;
  }
  return new Tensor(data, s);
}

export function full(shape: readonly number[], value: number, dtype: DType = 'float32'): Tensor {
  const t = new Tensor(arrayFor(dtype, shapeSize(shape)), shape);
  if (value !== 0) t.data.fill(value);
  return t;
}

export const zeros = (shape: readonly number[], dtype: DType = 'float32') => full(shape, 0, dtype);
export const ones = (shape: readonly number[], dtype: DType = 'float32') => full(shape, 1, dtype);
export const zerosLike = (t: Tensor) => full(t.shape, 0, t.dtype);
export const onesLike = (t: Tensor) => full(t.shape, 1, t.dtype);

/** start, start + step, … below stop. */
export function arange(start: number, stop?: number, step = 1, dtype: DType = 'int32'): Tensor {
  if (stop === undefined) [start, stop] = [0, start];
  if (step === 0) throw new ArgumentError('arange', 'step', 'must not be 0');
  const n = Math.max(0, Math.ceil((stop - start) / step));
  const t = new Tensor(arrayFor(dtype, n), [n]);
  for (let i = 0; i < n; i++) t.data[i] = start + i * step;
  return t;
}

export interface RandomOptions {
  generator?: Generator;
  dtype?: 'float32' | 'float64';
}

/** Uniform in [0, 1). */
export function rand(shape: readonly number[], opts: RandomOptions = {}): Tensor {
  const t = full(shape, 0, opts.dtype ?? 'float32');
  (opts.generator ?? getDefaultGenerator()).uniform(t.data as Float32Array);
  return t;
}

/** Standard normal. */
export function randn(shape: readonly number[], opts: RandomOptions = {}): Tensor {
  const t = full(shape, 0, opts.dtype ?? 'float32');
  (opts.generator ?? getDefaultGenerator()).normal(t.data as Float32Array);
  return t;
}

/** Integers uniform in [lo, hi), int32. */
export function randint(lo: number, hi: number, shape: readonly number[], opts: { generator?: Generator } = {}): Tensor {
  if (!Number.isInteger(lo) || !Number.isInteger(hi) || hi <= lo) throw new ArgumentError('randint', 'range', `[${lo}, ${hi}) must be integers with lo < hi`);
  const t = full(shape, 0, 'int32');
  (opts.generator ?? getDefaultGenerator()).randint(t.data as Int32Array, lo, hi);
  return t;
}
