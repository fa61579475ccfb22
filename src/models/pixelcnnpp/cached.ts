// Cached sampling for PixelCNN++ (in the spirit of Ramachandran et al. 2017, §3.3 on strided
// networks). The down stream u at row y reads only rows above, so its layers are computed a row
// at a time when a row starts; the down-right stream ul one pixel per step. A layer at a lower
// resolution r runs only on the steps aligned to it (row and column multiples of 2^r), which is
// exactly when its input at the coarser grid becomes final; the second pass climbs back through
// the transposed convolutions, reading the coarser caches.

import type { GatedResnet, PixelCNNPP, ShiftedConv, ShiftedDeconv } from './pixelcnnpp.js';
import { add, concat, concatElu, convTranspose2d, elu, matmul, mul, noGrad, reshape, sigmoid, slice, split } from '../../ops/index.js';
import { Tensor } from '../../tensor/tensor.js';
import type { Stepper } from '../sampling/options.js';
import { Cache, PixelConv, Pointwise, RowConv } from '../sampling/causal-conv.js';
import type { SampleSetup } from '../sampling/options.js';

/** A stream's output at one resolution, raw and through concat_elu (the next block's input). */
class Stream {
  readonly raw: Cache;
  readonly ce: Cache;
  constructor(n: number, h: number, w: number, f: number, readonly res: number) {
    this.raw = new Cache(n, h, w, f);
    this.ce = new Cache(n, h, w, 2 * f);
  }
  writeRow(t: Tensor, y: number): void {
    this.raw.write(t, y, null);
    this.ce.write(concatElu(t), y, null);
  }
  writePixel(t: Tensor, y: number, x: number): void {
    this.raw.write(t, y, x);
    this.ce.write(concatElu(t), y, x);
  }
  row(y: number): Tensor {
    const { n, h, w, c, data } = this.raw;
    const out = new Float32Array(n * w * c);
    for (let i = 0; i < n; i++) out.set(data.subarray((i * h + y) * w * c, (i * h + y + 1) * w * c), i * w * c);
    return new Tensor(out, [n, 1, w, c]);
  }
}

/** x + a ⊙ σ(b) with [a, b] the halves of c2 (+ the conditioning term). */
function gateResidual(x: Tensor, c2: Tensor, cond: Tensor | null): Tensor {
  const c = c2.shape[c2.rank - 1]! / 2;
  let pre = c2;
  if (cond) pre = add(pre, c2.rank === 4 ? reshape(cond, [cond.shape[0]!, 1, 1, cond.shape[1]!]) : cond);
  const [a, b] = split(pre, [c, c], -1);
  return add(x, mul(a!, sigmoid(b!)));
}

/** One gated ResNet block, evaluated a row at a time (down stream). */
class RowBlock {
  private readonly convIn: RowConv;
  private readonly convOut: RowConv;
  private readonly skip: Pointwise | null;
  readonly mid: Cache;
  constructor(private readonly block: GatedResnet, private readonly cond: Tensor | null, n: number, h: number, w: number, f: number) {
    this.convIn = new RowConv(block.convIn.conv);
    this.convOut = new RowConv(block.convOut.conv);
    this.skip = block.skip ? new Pointwise(block.skip) : null;
    this.mid = new Cache(n, h, w, 2 * f);
  }
  row(input: Stream, skip: Tensor | null, y: number): Tensor {
    let h = this.convIn.row(input.ce, y); // [N, 1, W, f]
    if (this.skip && skip) h = add(h, this.skip.apply(concatElu(skip)));
    this.mid.write(concatElu(h), y, null);
    return gateResidual(input.row(y), this.convOut.row(this.mid, y), this.cond);
  }
}

/** One gated ResNet block, evaluated a pixel at a time (down-right stream). */
class PixelBlock {
  private readonly convIn: PixelConv;
  private readonly convOut: PixelConv;
  private readonly skip: Pointwise | null;
  readonly mid: Cache;
  constructor(block: GatedResnet, private readonly cond: Tensor | null, n: number, h: number, w: number, f: number) {
    this.convIn = new PixelConv(block.convIn.conv);
    this.convOut = new PixelConv(block.convOut.conv);
    this.skip = block.skip ? new Pointwise(block.skip) : null;
    this.mid = new Cache(n, h, w, 2 * f);
  }
  at(input: Stream, skip: Tensor | null, y: number, x: number): Tensor {
    let h = this.convIn.at(input.ce, y, x); // [N, f]
    if (this.skip && skip) h = add(h, this.skip.apply(concatElu(skip)));
    this.mid.write(concatElu(h), y, x);
    return gateResidual(input.raw.at(y, x), this.convOut.at(this.mid, y, x), this.cond);
  }
}

/** The down stream's stride-2 transposed convolution, one output row at a time. */
class DeconvRow {
  private readonly rows: Tensor[];
  constructor(private readonly up: ShiftedDeconv) {
    const w = up.deconv.weight; // [2, 3, Cout, Cin]
    this.rows = [0, 1].map((ky) => noGrad(() => slice(w, [ky, 0, 0, 0], [1, w.shape[1]!, w.shape[2]!, w.shape[3]!])));
  }
  row(input: Stream, y: number): Tensor {
    const full = convTranspose2d(input.row(y >> 1), this.rows[y & 1]!, { stride: 2, outputPadding: [0, 1], bias: this.up.deconv.bias });
    const [n, , wd, c] = full.shape as [number, number, number, number];
    const left = (this.up.kernel[1] - 1) >> 1;
    return slice(full, [0, 0, left, 0], [n, 1, wd - 2 * left, c]);
  }
}

/** The down-right stream's stride-2 transposed convolution (2×2 kernel), one pixel at a time. */
class DeconvPixel {
  private readonly blocks: Tensor[];
  constructor(private readonly up: ShiftedDeconv) {
    const w = up.deconv.weight; // [2, 2, Cout, Cin]
    const [, , co, ci] = w.shape as [number, number, number, number];
    this.blocks = [0, 1, 2, 3].map((k) => new Tensor((w.data as Float32Array).subarray(k * co * ci, (k + 1) * co * ci), [co, ci]));
  }
  at(input: Stream, y: number, x: number): Tensor {
    const y0 = matmul(input.raw.at(y >> 1, x >> 1), this.blocks[(y & 1) * 2 + (x & 1)]!, { transB: true });
    return this.up.deconv.bias ? add(y0, this.up.deconv.bias) : y0;
  }
}

export function pixelCNNPPCachedStepper(model: PixelCNNPP, s: SampleSetup): Stepper {
  const { n, h, w, c } = s;
  const { filters: f, resnetBlocks: nr, resolutions: levels } = model.config;
  const size = (res: number): [number, number] => [h >> res, w >> res];
  const levelsOf = model.likelihood.levels;
  const image = new Cache(n, h, w, c + 1); // the scaled canvas and the channel of ones
  const canvas = s.canvas.data as Int32Array;
  for (let i = 0; i < n * h * w; i++) {
    for (let ch = 0; ch < c; ch++) image.data[i * (c + 1) + ch] = (2 * canvas[i * c + ch]!) / (levelsOf - 1) - 1;
    image.data[i * (c + 1) + c] = 1;
  }
  const cond = (b: GatedResnet) => b.cond.forward(s.cond);
  const stream = (res: number) => new Stream(n, ...size(res), f, res);

  // First pass: the entries the forward pushes, in its order, with their resolution.
  // The first layers' outputs are shifted (zero-filled after the convolution, bias included), so
  // row y is the unshifted convolution's row y − 1, and zeros on the first row / column.
  const uInit = new RowConv(model.uInit.conv);
  const ulInitDown = new RowConv(model.ulInitDown.conv);
  const ulInitRight = new PixelConv(model.ulInitRight.conv);
  const zeroRow = new Tensor(new Float32Array(n * w * f), [n, 1, w, f]);
  const zeroPixel = new Tensor(new Float32Array(n * f), [n, f]);
  const ulDownRow = new Cache(n, h, w, f); // downShift(ulInitDown(x)), added at each pixel
  type Entry = { u: Stream; ul: Stream; rowU: (y: number) => Tensor; pixUl: (y: number, x: number) => Tensor };
  const up: Entry[] = [];
  const first: Entry = {
    u: stream(0), ul: stream(0),
    rowU: (y) => (y === 0 ? zeroRow : uInit.row(image, y - 1)),
    pixUl: (y, x) => add(ulDownRow.at(y, x), x === 0 ? zeroPixel : ulInitRight.at(image, y, x - 1)),
  };
  up.push(first);
  for (let r = 0; r < levels; r++) {
    for (let i = 0; i < nr; i++) {
      const prev = up.at(-1)!;
      const [bh, bw] = size(r);
      const ub = new RowBlock(model.upU.at(r * nr + i), cond(model.upU.at(r * nr + i)), n, bh, bw, f);
      const ulb = new PixelBlock(model.upUl.at(r * nr + i), cond(model.upUl.at(r * nr + i)), n, bh, bw, f);
      const e: Entry = {
        u: stream(r), ul: stream(r),
        rowU: (y) => ub.row(prev.u, null, y),
        pixUl: (y, x) => ulb.at(prev.ul, e.u.raw.at(y, x), y, x),
      };
      up.push(e);
    }
    if (r < levels - 1) {
      const prev = up.at(-1)!;
      const du = new RowConv((model.downsizeU.at(r) as ShiftedConv).conv);
      const dul = new PixelConv((model.downsizeUl.at(r) as ShiftedConv).conv);
      up.push({ u: stream(r + 1), ul: stream(r + 1), rowU: (y) => du.row(prev.u.raw, y), pixUl: (y, x) => dul.at(prev.ul.raw, y, x) });
    }
  }

  // Second pass: blocks in the forward's order, each with the entry it pops as a shortcut.
  type Down = { u: Stream; ul: Stream; res: number; rowU: (y: number) => Tensor; pixUl: (y: number, x: number) => Tensor };
  const down: Down[] = [];
  const skips = [...up];
  const cur = skips.pop()!; // the last entry starts the second pass
  let curU: Stream = cur.u;
  let curUl: Stream = cur.ul;
  let b = 0;
  for (let st = 0; st < levels; st++) {
    const res = levels - 1 - st;
    const [bh, bw] = size(res);
    const count = st === 0 ? nr : nr + 1;
    for (let i = 0; i < count; i++, b++) {
      const skip = skips.pop()!;
      const inU = curU;
      const inUl = curUl;
      const ub = new RowBlock(model.downU.at(b), cond(model.downU.at(b)), n, bh, bw, f);
      const ulb = new PixelBlock(model.downUl.at(b), cond(model.downUl.at(b)), n, bh, bw, f);
      const d: Down = {
        u: stream(res), ul: stream(res), res,
        rowU: (y) => ub.row(inU, skip.u.row(y), y),
        pixUl: (y, x) => ulb.at(inUl, concat([d.u.raw.at(y, x), skip.ul.raw.at(y, x)], -1), y, x),
      };
      down.push(d);
      curU = d.u;
      curUl = d.ul;
    }
    if (st < levels - 1) {
      const fromU = curU;
      const fromUl = curUl;
      const du = new DeconvRow(model.upsizeU.at(st));
      const dul = new DeconvPixel(model.upsizeUl.at(st));
      const d: Down = { u: stream(res - 1), ul: stream(res - 1), res: res - 1, rowU: (y) => du.row(fromU, y), pixUl: (y, x) => dul.at(fromUl, y, x) };
      down.push(d);
      curU = d.u;
      curUl = d.ul;
    }
  }
  const last = curUl;
  const out = new Pointwise(model.out);
  const resOf = (e: Entry) => e.u.res;

  /** Finest-to-coarsest: the resolutions whose grid this step lands on. */
  const aligned = (y: number, x: number | null) => {
    let a = 0;
    while (a + 1 < levels && y % (1 << (a + 1)) === 0 && (x === null || x % (1 << (a + 1)) === 0)) a++;
    return a;
  };

  return {
    beginRow(y) {
      ulDownRow.write(y === 0 ? zeroRow : ulInitDown.row(image, y - 1), y, null);
      const a = aligned(y, null);
      for (const e of up) if (resOf(e) <= a) e.u.writeRow(e.rowU(y >> resOf(e)), y >> resOf(e));
      for (const d of down) if (d.res <= a) d.u.writeRow(d.rowU(y >> d.res), y >> d.res);
    },
    pixel(y, x) {
      const a = aligned(y, x);
      for (const e of up) if (resOf(e) <= a) e.ul.writePixel(e.pixUl(y >> resOf(e), x >> resOf(e)), y >> resOf(e), x >> resOf(e));
      for (const d of down) if (d.res <= a) d.ul.writePixel(d.pixUl(y >> d.res, x >> d.res), y >> d.res, x >> d.res);
      return out.apply(elu(last.raw.at(y, x))).data as Float32Array;
    },
    sampled(y, x, ch, values) {
      for (let i = 0; i < n; i++) image.data[((i * h + y) * w + x) * (c + 1) + ch] = (2 * values[i]!) / (levelsOf - 1) - 1;
    },
  };
}
