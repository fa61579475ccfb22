// Constructor argument checks shared by the layers.

import { ArgumentError } from '../errors.js';
import type { DType } from '../kernels/contracts.js';

export type FloatDType = 'float32' | 'float64';

export function checkPositiveInt(op: string, arg: string, v: number): number {
  if (!Number.isInteger(v) || v <= 0) throw new ArgumentError(op, arg, `must be a positive integer, got ${String(v)}`);
  return v;
}

export function checkFloatDType(op: string, dtype: DType | undefined): FloatDType {
  const d = dtype ?? 'float32';
  if (d !== 'float32' && d !== 'float64') throw new ArgumentError(op, 'dtype', `must be 'float32' or 'float64', got '${String(d)}'`);
  return d;
}

/** A size given as one number or a [height, width] pair, each an integer ≥ min. */
export function pairOf(op: string, arg: string, v: number | readonly [number, number] | undefined, dflt: number, min: number): [number, number] {
  const p: [number, number] = v === undefined ? [dflt, dflt] : typeof v === 'number' ? [v, v] : [v[0], v[1]];
  if (!p.every((x) => Number.isInteger(x) && x >= min)) throw new ArgumentError(op, arg, `must be integers ≥ ${min}, got ${JSON.stringify(v)}`);
  return p;
}

/** Padding as one number or [top, bottom, left, right], each a non-negative integer. */
export function padsOf(op: string, v: number | readonly [number, number, number, number] | undefined): [number, number, number, number] {
  const p: [number, number, number, number] = v === undefined ? [0, 0, 0, 0] : typeof v === 'number' ? [v, v, v, v] : [v[0], v[1], v[2], v[3]];
  if ((typeof v === 'object' && v.length !== 4) || !p.every((x) => Number.isInteger(x) && x >= 0)) {
    throw new ArgumentError(op, 'padding', `must be a non-negative integer or [top, bottom, left, right], got ${JSON.stringify(v)}`);
  }
  return p;
}
