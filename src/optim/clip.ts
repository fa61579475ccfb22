// Gradient clipping, as torch.nn.utils.clip_grad_norm_ / clip_grad_value_.
//
// Clipped gradients are written to new tensors rather than scaled in place: the tape may hand the
// same gradient tensor to two leaves (the two inputs of an add), and scaling it in place would
// scale both twice.

import { ArgumentError } from '../errors.js';
import { Tensor, arrayFor } from '../tensor/tensor.js';

export interface ClipGradNormOptions {
  /** p of the p-norm (default 2); Infinity for the largest absolute value. */
  normType?: number;
  /** Throw when the total norm is NaN or infinite instead of writing NaNs (default false). */
  errorIfNonfinite?: boolean;
}

function scaled(g: Tensor, factor: number): Tensor {
  const out = arrayFor(g.dtype, g.size);
  const d = g.data;
  for (let i = 0; i < d.length; i++) out[i] = d[i]! * factor;
  return new Tensor(out, g.shape);
}

/**
 * Scales the gradients of `params` together so that their joint norm is at most `maxNorm`;
 * returns the joint norm before clipping. Parameters without a gradient are skipped.
 */
export function clipGradNorm(params: Iterable<Tensor>, maxNorm: number, opts: ClipGradNormOptions = {}): number {
  const p = opts.normType ?? 2;
  if (!(maxNorm >= 0)) throw new ArgumentError('clipGradNorm', 'maxNorm', `must be ≥ 0, got ${maxNorm}`);
  if (!(p > 0)) throw new ArgumentError('clipGradNorm', 'normType', `must be positive or Infinity, got ${p}`);
  const withGrad = [...params].filter((t) => t.grad !== null);
  let total = 0;
  if (p === Infinity) {
    for (const t of withGrad) {
      const d = t.grad!.data;
      for (let i = 0; i < d.length; i++) total = Math.max(total, Math.abs(d[i]!));
    }
  } else {
    // Indexed loops, and p = 2 without pow: this runs over every parameter on every step.
    let acc = 0;
    for (const t of withGrad) {
      const d = t.grad!.data;
      if (p === 2) for (let i = 0; i < d.length; i++) acc += d[i]! * d[i]!;
      else for (let i = 0; i < d.length; i++) acc += Math.abs(d[i]!) ** p;
    }
    total = acc ** (1 / p);
  }
  if (!Number.isFinite(total) && opts.errorIfNonfinite) {
    throw new ArgumentError('clipGradNorm', 'gradients', `have a non-finite total ${p}-norm (${total})`);
  }
  // As PyTorch: the small constant keeps a zero norm from dividing by zero.
  const coef = maxNorm / (total + 1e-6);
  if (coef < 1) for (const t of withGrad) t.grad = scaled(t.grad!, coef);
  return total;
}

/** Clamps every gradient element into [−clipValue, clipValue]. */
export function clipGradValue(params: Iterable<Tensor>, clipValue: number): void {
  if (!(clipValue >= 0)) throw new ArgumentError('clipGradValue', 'clipValue', `must be ≥ 0, got ${clipValue}`);
  for (const t of params) {
    const g = t.grad;
    if (g === null) continue;
    const out = arrayFor(g.dtype, g.size);
    const d = g.data;
    for (let i = 0; i < d.length; i++) out[i] = Math.min(clipValue, Math.max(-clipValue, d[i]!));
    t.grad = new Tensor(out, g.shape);
  }
}
