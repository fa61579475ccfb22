// Reference matrix product and NHWC convolutions (weights HWIO), as plain loops.

import type { ConvParams, RowConvGradTerm, View } from '../../kernels/contracts.js';
import { roundedBf16 } from '../../kernels/bf16.js';

/** A view of v's values rounded to bfloat16 (a copy: mixed precision's operands, BF16_OPERANDS). */
function bf16View(v: View): View {
  return { ...v, data: roundedBf16(v.data as Float32Array | Float64Array), storageId: 0, version: 0 };
}

export function matmul(a: View, b: View, out: View, transA: boolean, transB: boolean, bf16 = false): void {
  if (bf16) [a, b] = [bf16View(a), bf16View(b)];
  const ar = a.shape.length;
  const br = b.shape.length;
  const [ra, ca] = [a.shape[ar - 2]!, a.shape[ar - 1]!];
  const [rb, cb] = [b.shape[br - 2]!, b.shape[br - 1]!];
  const m = transA ? ca : ra;
  const k = transA ? ra : ca;
  const n = transB ? rb : cb;
  const batch = out.shape.length === 3 ? out.shape[0]! : 1;
  const aStep = ar === 3 ? ra * ca : 0;
  const bStep = br === 3 ? rb * cb : 0;
  const ad = a.data;
  const bd = b.data;
  const o = out.data;
  for (let p = 0; p < batch; p++) {
    const ao = p * aStep;
    const bo = p * bStep;
    const oo = p * m * n;
    for (let i = 0; i < m; i++) {
      for (let j = 0; j < n; j++) {
        let s = 0;
        for (let t = 0; t < k; t++) {
          const av = transA ? ad[ao + t * ca + i]! : ad[ao + i * ca + t]!;
          const bv = transB ? bd[bo + j * cb + t]! : bd[bo + t * cb + j]!;
          s += av * bv;
        }
        o[oo + i * n + j] = s;
      }
    }
  }
}

interface ConvGeom {
  n: number; h: number; w: number; ci: number;
  oh: number; ow: number; co: number;
  kh: number; kw: number;
}

function geom(x: readonly number[], w: readonly number[], y: readonly number[]): ConvGeom {
  return { n: x[0]!, h: x[1]!, w: x[2]!, ci: x[3]!, oh: y[1]!, ow: y[2]!, co: y[3]!, kh: w[0]!, kw: w[1]! };
}

/**
 * Calls fn(yBase, xBase, wBase) for every (output pixel, kernel tap) pair whose input pixel lies
 * inside the image; the three conv kernels differ only in what they do with the channel vectors.
 */
function forEachTap(g: ConvGeom, p: ConvParams, fn: (yBase: number, xBase: number, wBase: number) => void): void {
  for (let b = 0; b < g.n; b++) {
    for (let oy = 0; oy < g.oh; oy++) {
      for (let ox = 0; ox < g.ow; ox++) {
        const yBase = ((b * g.oh + oy) * g.ow + ox) * g.co;
        for (let ky = 0; ky < g.kh; ky++) {
          const iy = oy * p.strideH - p.padTop + ky * p.dilationH;
          if (iy < 0 || iy >= g.h) continue;
          for (let kx = 0; kx < g.kw; kx++) {
            const ix = ox * p.strideW - p.padLeft + kx * p.dilationW;
            if (ix < 0 || ix >= g.w) continue;
            fn(yBase, ((b * g.h + iy) * g.w + ix) * g.ci, (ky * g.kw + kx) * g.ci * g.co);
          }
        }
      }
    }
  }
}

export function conv2d(x: View, w: View, bias: View | null, out: View, p: ConvParams, accumulate = false, _keepInput = false, residual: View | null = null): number {
  if (p.bf16) [x, w] = [bf16View(x), bf16View(w)];
  const g = geom(x.shape, w.shape, out.shape);
  const xd = x.data;
  const wd = w.data;
  const o = out.data;
  if (residual) o.set(residual.data);
  else if (!accumulate) o.fill(0);
  if (bias) {
    for (let i = 0; i < o.length; i += g.co) for (let c = 0; c < g.co; c++) o[i + c] += bias.data[c]!;
  }
  forEachTap(g, p, (yb, xb, wb) => {
    for (let i = 0; i < g.ci; i++) {
      const xv = xd[xb + i]!;
      const wr = wb + i * g.co;
      for (let c = 0; c < g.co; c++) o[yb + c] += xv * wd[wr + c]!;
    }
  });
  return 0; // nothing is kept: conv2dBackward reads x as it is
}

export function conv2dBackwardData(dy: View, w: View, dx: View, p: ConvParams): void {
  if (p.bf16) [dy, w] = [bf16View(dy), bf16View(w)];
  const g = geom(dx.shape, w.shape, dy.shape);
  const gd = dy.data;
  const wd = w.data;
  const o = dx.data;
  o.fill(0);
  forEachTap(g, p, (yb, xb, wb) => {
    for (let i = 0; i < g.ci; i++) {
      const wr = wb + i * g.co;
      let s = 0;
      for (let c = 0; c < g.co; c++) s += gd[yb + c]! * wd[wr + c]!;
      o[xb + i] += s;
    }
  });
}

export function conv2dBackwardWeights(x: View, dy: View, dw: View, p: ConvParams, db: View | null = null): void {
  const g = geom(x.shape, dw.shape, dy.shape);
  let xd = x.data;
  let gd = dy.data;
  const o = dw.data;
  o.fill(0);
  if (db) biasGradient(dy, db);  // from dy as it is, in bf16 too: no product there
  if (p.bf16) [xd, gd] = [roundedBf16(xd as Float32Array | Float64Array), roundedBf16(gd as Float32Array | Float64Array)];
  forEachTap(g, p, (yb, xb, wb) => {
    for (let i = 0; i < g.ci; i++) {
      const xv = xd[xb + i]!;
      const wr = wb + i * g.co;
      for (let c = 0; c < g.co; c++) o[wr + c] += xv * gd[yb + c]!;
    }
  });
}

export function conv2dBackward(x: View, dy: View, w: View, dx: View | null, dw: View | null, db: View | null, p: ConvParams): void {
  if (dx) conv2dBackwardData(dy, w, dx, p);
  if (dw) conv2dBackwardWeights(x, dy, dw, p, db);
  else if (db) biasGradient(dy, db);
}

export function rowConvSumBackward(terms: readonly RowConvGradTerm[], dy: View, db: View | null): void {
  if (terms.some((t) => t.p.bf16)) throw new Error('rowConvSumBackward computes in fp32 only: a bf16 sum of convolutions takes conv2dBackward per term');
  for (const t of terms) {
    // An addend that is dx itself is overwritten by the backward: keep its values first.
    const a = t.dx && t.addend ? (t.addend.data === t.dx.data ? t.addend.data.slice() : t.addend.data) : null;
    conv2dBackward(t.x, dy, t.w, t.dx, t.dw, null, t.p);
    if (t.dx && a) {
      const d = t.dx.data;
      for (let i = 0; i < d.length; i++) d[i] += a[i]!;
    }
  }
  if (db) biasGradient(dy, db);
}

/** db[c] = Σ dy[…, c]: the bias gradient of a convolution. */
function biasGradient(dy: View, db: View): void {
  const b = db.data;
  const gd = dy.data;
  const co = b.length;
  b.fill(0);
  for (let i = 0; i < gd.length; i += co) for (let c = 0; c < co; c++) b[c] += gd[i + c]!;
}

export function releaseConvInput(): void {
  // The reference keeps nothing.
}
