// Shape ops: reshape (no copy), permute, slice, pad, concat, split / chunk, the down- and
// right-shifts of PixelCNN++, embedding (gather rows) and one-hot.

import { ArgumentError, ShapeError, fmtShape } from '../errors.js';
import { Tensor } from '../tensor/tensor.js';
import { normAxis, shapeSize } from '../tensor/shape.js';
import { K, checkInt, empty, record } from './core.js';

/** Same storage, new shape; one dimension may be -1 (inferred). */
export function reshape(x: Tensor, shape: readonly number[]): Tensor {
  const infer = shape.indexOf(-1);
  let target = [...shape];
  if (infer >= 0) {
    const known = shape.reduce((n, d, i) => (i === infer ? n : n * d), 1);
    if (known === 0 || x.size % known !== 0 || shape.indexOf(-1, infer + 1) >= 0) {
      throw new ShapeError('reshape', 'shape', `${fmtShape(shape)} cannot be inferred for ${x.size} elements of ${fmtShape(x.shape)}`, [x.shape, shape]);
    }
    target[infer] = x.size / known;
  }
  if (shapeSize(target) !== x.size || target.some((d) => !Number.isInteger(d) || d < 0)) {
    throw new ShapeError('reshape', 'shape', `${fmtShape(shape)} does not fit the ${x.size} elements of ${fmtShape(x.shape)}`, [x.shape, shape]);
  }
  target = target.map(Number);
  const y = new Tensor(x.storage, target);
  return record(y, 'reshape', [x], (g) => [reshape(g, x.shape)]);
}

/** Materialising permutation: out.shape[i] = x.shape[perm[i]]. */
export function permute(x: Tensor, perm: readonly number[]): Tensor {
  if (perm.length !== x.rank || new Set(perm.map((p) => normAxis('permute', p, x.rank, 'perm'))).size !== x.rank) {
    throw new ShapeError('permute', 'perm', `[${perm.join(', ')}] must be a permutation of the ${x.rank} axes of ${fmtShape(x.shape)}`, [x.shape]);
  }
  const p = perm.map((a) => normAxis('permute', a, x.rank, 'perm'));
  const y = empty(p.map((a) => x.shape[a]!), x.dtype);
  K(x).permute(x, y, p);
  const inverse = new Array<number>(p.length);
  p.forEach((a, i) => (inverse[a] = i));
  return record(y, 'permute', [x], (g) => [permute(g, inverse)]);
}

/** Swaps two axes (materialising). */
export function transpose(x: Tensor, a = -2, b = -1): Tensor {
  const perm = [...Array(x.rank).keys()];
  const i = normAxis('transpose', a, x.rank);
  const j = normAxis('transpose', b, x.rank);
  [perm[i], perm[j]] = [perm[j]!, perm[i]!];
  return permute(x, perm);
}

/** x[begin : begin + size] on every axis; a size of -1 runs to the end. */
export function slice(x: Tensor, begin: readonly number[], size?: readonly number[]): Tensor {
  if (begin.length !== x.rank || (size && size.length !== x.rank)) {
    throw new ShapeError('slice', 'begin', `and size must have one entry per axis of ${fmtShape(x.shape)}`, [x.shape]);
  }
  const sz = x.shape.map((d, i) => {
    const s = size?.[i] ?? -1;
    return s === -1 ? d - begin[i]! : s;
  });
  for (let i = 0; i < x.rank; i++) {
    if (!Number.isInteger(begin[i]) || begin[i]! < 0 || sz[i]! < 0 || begin[i]! + sz[i]! > x.shape[i]!) {
      throw new ShapeError('slice', `axis ${i}`, `range [${begin[i]}, ${begin[i]! + sz[i]!}) is outside 0..${x.shape[i]} of ${fmtShape(x.shape)}`, [x.shape]);
    }
  }
  const y = empty(sz, x.dtype);
  K(x).slice(x, y, begin);
  return record(y, 'slice', [x], (g) => [pad(g, begin.map((b, i) => [b, x.shape[i]! - b - sz[i]!] as const))]);
}

/** Constant padding: `pads[i] = [before, after]` for every axis. */
export function pad(x: Tensor, pads: readonly (readonly [number, number])[], value = 0): Tensor {
  if (pads.length !== x.rank) {
    throw new ShapeError('pad', 'pads', `must have one [before, after] pair per axis of ${fmtShape(x.shape)}, got ${pads.length}`, [x.shape]);
  }
  if (pads.some(([b, a]) => !Number.isInteger(b) || !Number.isInteger(a) || b < 0 || a < 0)) {
    throw new ArgumentError('pad', 'pads', `must be non-negative integers, got ${JSON.stringify(pads)}`);
  }
  const shape = x.shape.map((d, i) => d + pads[i]![0] + pads[i]![1]);
  const y = empty(shape, x.dtype);
  const before = pads.map(([b]) => b);
  K(x).pad(x, y, before, value);
  return record(y, 'pad', [x], (g) => [slice(g, before, x.shape)]);
}

export function concat(xs: readonly Tensor[], axis = 0): Tensor {
  if (xs.length === 0) throw new ArgumentError('concat', 'xs', 'must hold at least one tensor');
  const first = xs[0]!;
  const a = normAxis('concat', axis, first.rank);
  xs.forEach((t, k) => {
    if (t.rank !== first.rank || t.dtype !== first.dtype || t.shape.some((d, i) => i !== a && d !== first.shape[i])) {
      throw new ShapeError('concat', `xs[${k}]`, `has shape ${fmtShape(t.shape)} (${t.dtype}); it must match ${fmtShape(first.shape)} (${first.dtype}) except on axis ${a}`, [first.shape, t.shape]);
    }
  });
  const shape = [...first.shape];
  shape[a] = xs.reduce((n, t) => n + t.shape[a]!, 0);
  const y = empty(shape, first.dtype);
  K(...xs).concat(xs, y, a);
  return record(y, 'concat', xs, (g) => split(g, xs.map((t) => t.shape[a]!), a));
}

/** Splits along an axis into pieces of the given sizes. */
export function split(x: Tensor, sizes: readonly number[], axis = 0): Tensor[] {
  const a = normAxis('split', axis, x.rank);
  if (sizes.reduce((n, s) => n + s, 0) !== x.shape[a]) {
    throw new ShapeError('split', 'sizes', `[${sizes.join(', ')}] must add up to axis ${a} of ${fmtShape(x.shape)}`, [x.shape]);
  }
  let at = 0;
  return sizes.map((s) => {
    const begin = x.shape.map((_, i) => (i === a ? at : 0));
    const size = x.shape.map((d, i) => (i === a ? s : d));
    at += s;
    return slice(x, begin, size);
  });
}

/** Splits along an axis into n equal pieces. */
export function chunk(x: Tensor, n: number, axis = 0): Tensor[] {
  const a = normAxis('chunk', axis, x.rank);
  if (!Number.isInteger(n) || n <= 0 || x.shape[a]! % n !== 0) {
    throw new ShapeError('chunk', 'n', `${n} must divide axis ${a} (${x.shape[a]}) of ${fmtShape(x.shape)}`, [x.shape]);
  }
  return split(x, Array(n).fill(x.shape[a]! / n), a);
}

/**
 * Shifts [N, H, W, C] down by `rows` along H, filling the top with zeros (PixelCNN++'s
 * down_shift): output row y sees input row y − rows, so nothing reaches below itself.
 */
export function downShift(x: Tensor, rows = 1): Tensor {
  if (x.rank !== 4) throw new ShapeError('downShift', 'x', `must be [N, H, W, C], got ${fmtShape(x.shape)}`, [x.shape]);
  const [n, h, w, c] = x.shape as [number, number, number, number];
  return pad(slice(x, [0, 0, 0, 0], [n, h - rows, w, c]), [[0, 0], [rows, 0], [0, 0], [0, 0]]);
}

/** Shifts [N, H, W, C] right by `cols` along W, filling the left with zeros (right_shift). */
export function rightShift(x: Tensor, cols = 1): Tensor {
  if (x.rank !== 4) throw new ShapeError('rightShift', 'x', `must be [N, H, W, C], got ${fmtShape(x.shape)}`, [x.shape]);
  const [n, h, w, c] = x.shape as [number, number, number, number];
  return pad(slice(x, [0, 0, 0, 0], [n, h, w - cols, c]), [[0, 0], [0, 0], [cols, 0], [0, 0]]);
}

/** Rows of `table` [V, D] picked by int32 `indices` of any shape → [...indices.shape, D]. */
export function embedding(table: Tensor, indices: Tensor): Tensor {
  checkInt('embedding', 'indices', indices);
  if (table.rank !== 2) throw new ShapeError('embedding', 'table', `must be [V, D], got ${fmtShape(table.shape)}`, [table.shape]);
  const v = table.shape[0]!;
  const d = indices.data;
  for (let i = 0; i < d.length; i++) {
    if (d[i]! < 0 || d[i]! >= v) throw new ArgumentError('embedding', 'indices', `contain ${d[i]}, outside 0..${v - 1} (the table has ${v} rows)`);
  }
  const y = empty([...indices.shape, table.shape[1]!], table.dtype);
  K(table).gatherRows(table, indices, y);
  return record(y, 'embedding', [table, null], (g) => {
    const gt = empty(table.shape, g.dtype);
    K(g).scatterAddRows(g, indices, gt);
    return [gt, null];
  });
}

/** Same as embedding, under the name a general gather along axis 0 goes by. */
export const gather = embedding;

/** One-hot encoding of int32 indices: [...shape, depth] in float32 (or the dtype asked for). */
export function oneHot(indices: Tensor, depth: number, dtype: 'float32' | 'float64' | 'int32' = 'float32'): Tensor {
  checkInt('oneHot', 'indices', indices);
  if (!Number.isInteger(depth) || depth <= 0) throw new ArgumentError('oneHot', 'depth', `must be a positive integer, got ${depth}`);
  const d = indices.data;
  for (let i = 0; i < d.length; i++) {
    if (d[i]! < 0 || d[i]! >= depth) throw new ArgumentError('oneHot', 'indices', `contain ${d[i]}, outside 0..${depth - 1}`);
  }
  const y = empty([...indices.shape, depth], dtype);
  K(y).oneHot(indices, y);
  return y;
}

export function flatten(x: Tensor, startAxis = 1): Tensor {
  const a = normAxis('flatten', startAxis, x.rank);
  return reshape(x, [...x.shape.slice(0, a), -1]);
}

export function unsqueeze(x: Tensor, axis: number): Tensor {
  const a = normAxis('unsqueeze', axis, x.rank + 1);
  const shape = [...x.shape];
  shape.splice(a, 0, 1);
  return reshape(x, shape);
}

export function squeeze(x: Tensor, axis: number): Tensor {
  const a = normAxis('squeeze', axis, x.rank);
  if (x.shape[a] !== 1) throw new ShapeError('squeeze', 'axis', `${a} has size ${x.shape[a]}, not 1, in ${fmtShape(x.shape)}`, [x.shape]);
  return reshape(x, x.shape.filter((_, i) => i !== a));
}
