// The compute precision of the products (convolutions and matrix products), as PyTorch's autocast:
// `withPrecision('bf16', fn)` makes every convolution and matmul that fn records take bfloat16
// operands (rounded to nearest even) and accumulate in fp32; their outputs, every other op, the
// parameters and their gradients stay fp32. An op keeps the precision it ran forward in for its
// backward pass, wherever backward() is called. Outside any scope — evaluation, sampling, tests —
// everything is fp32, exactly as before.
//
// Products below BF16_MIN_MACS stay fp32 in any precision: converting their operands costs more
// than bf16 arithmetic saves. The rule is here, above the backends, so that the ts reference and
// native make the same choice for the same call.

import { ArgumentError } from '../errors.js';

export type ComputePrecision = 'fp32' | 'bf16';
export const COMPUTE_PRECISIONS: readonly ComputePrecision[] = ['fp32', 'bf16'];

let current: ComputePrecision = 'fp32';

/** The precision products record in now. */
export function computePrecision(): ComputePrecision {
  return current;
}

/** Runs fn with the products it records computed in `precision` (see the file's comment). */
export function withPrecision<T>(precision: ComputePrecision, fn: () => T): T {
  if (!COMPUTE_PRECISIONS.includes(precision)) {
    throw new ArgumentError('withPrecision', 'precision', `must be one of ${COMPUTE_PRECISIONS.join(', ')}, got ${JSON.stringify(precision)}`);
  }
  const prev = current;
  current = precision;
  try {
    return fn();
  } finally {
    current = prev;
  }
}

/**
 * Multiply-accumulates below which a product stays fp32 in bf16 scope: the cached samplers' and
 * small layers' products, where converting the operands costs more than it saves.
 */
export const BF16_MIN_MACS = 1 << 19;

/** Whether a product of `macs` multiply-accumulates computes in bf16 now. */
export function productInBf16(macs: number): boolean {
  return current === 'bf16' && macs >= BF16_MIN_MACS;
}
