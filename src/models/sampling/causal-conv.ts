// Incremental evaluation of one causal convolution, the building block of cached sampling
// (Ramachandran et al. 2017, "Fast Generation for Convolutional Autoregressive Models"): a layer
// keeps its full output as a cache and computes only the output row or pixel that the newly
// sampled element makes final, reading its input from the previous layer's cache.

import type { Conv2d } from '../../nn/index.js';
import { add, conv2d, matmul, mul, noGrad } from '../../ops/index.js';
import { Tensor } from '../../tensor/tensor.js';

/** The network's input image [N, H, W, C] in [−1, 1] from the canvas's levels (kept pixels included). */
export function inputImage(canvas: Int32Array, levels: number, into: Float32Array = new Float32Array(canvas.length)): Float32Array {
  for (let i = 0; i < canvas.length; i++) into[i] = (2 * canvas[i]!) / (levels - 1) - 1;
  return into;
}

/** Writes channel ch of pixel (y, x) of every image's newly sampled levels into an input image. */
export function writeSampled(image: Float32Array, dims: { n: number; h: number; w: number; c: number }, y: number, x: number, ch: number, values: Int32Array, levels: number): void {
  const { n, h, w, c } = dims;
  for (let i = 0; i < n; i++) image[((i * h + y) * w + x) * c + ch] = (2 * values[i]!) / (levels - 1) - 1;
}

/** A float activation cache [N, H, W, C] for one layer, written position by position. */
export class Cache {
  readonly data: Float32Array;
  constructor(readonly n: number, readonly h: number, readonly w: number, readonly c: number) {
    this.data = new Float32Array(n * h * w * c);
  }

  /** Writes rows [N, C] (or a [N, 1, W, C] row for a whole image row when x is null). */
  write(values: Float32Array | Tensor, y: number, x: number | null): void {
    const v = values instanceof Tensor ? (values.data as Float32Array) : values;
    const { n, h, w, c } = this;
    if (x === null) {
      for (let i = 0; i < n; i++) this.data.set(v.subarray(i * w * c, (i + 1) * w * c), (i * h + y) * w * c);
    } else {
      for (let i = 0; i < n; i++) this.data.set(v.subarray(i * c, (i + 1) * c), ((i * h + y) * w + x) * c);
    }
  }

  /** The values at one pixel for every image, [N, C]. */
  at(y: number, x: number): Tensor {
    const { n, h, w, c } = this;
    const out = new Float32Array(n * c);
    for (let i = 0; i < n; i++) out.set(this.data.subarray(((i * h + y) * w + x) * c, ((i * h + y) * w + x + 1) * c), i * c);
    return new Tensor(out, [n, c]);
  }
}

function effectiveWeight(conv: Conv2d): Tensor {
  return noGrad(() => (conv.mask ? mul(conv.weight, conv.mask) : conv.weight.detach()));
}

/**
 * The convolution's output at one pixel. Keeps only the taps the mask leaves open and stacks
 * their weights into one [taps·Cin, Cout] matrix, so a pixel costs one gather and one matrix
 * product. `shift` = [rows, cols] reads the input as if down/right-shifted by that much. With a
 * stride, output (y, x) reads around input (y·sh, x·sw), which must come no later than it.
 */
export class PixelConv {
  private readonly taps: [number, number][] = [];
  private readonly weight: Tensor;
  private readonly bias: Tensor | null;
  private readonly cin: number;
  private readonly stride: readonly [number, number];

  constructor(conv: Conv2d, shift: readonly [number, number] = [0, 0]) {
    const w = effectiveWeight(conv);
    this.stride = conv.stride;
    const [kh, kw] = conv.kernelSize;
    const [dh, dw] = conv.dilation;
    const cin = conv.inChannels;
    const cout = conv.outChannels;
    this.cin = cin;
    const blocks: Float32Array[] = [];
    for (let ky = 0; ky < kh; ky++) {
      for (let kx = 0; kx < kw; kx++) {
        const block = (w.data as Float32Array).subarray((ky * kw + kx) * cin * cout, (ky * kw + kx + 1) * cin * cout);
        if (conv.mask && block.every((v) => v === 0)) continue;
        const dy = ky * dh - conv.padding[0] - shift[0];
        const dx = kx * dw - conv.padding[2] - shift[1];
        if (dy > 0 || (dy === 0 && dx > 0)) throw new Error(`PixelConv: tap (${dy}, ${dx}) reads a later pixel; the layer is not causal`);
        this.taps.push([dy, dx]);
        blocks.push(block);
      }
    }
    const stacked = new Float32Array(blocks.length * cin * cout);
    blocks.forEach((b, t) => stacked.set(b, t * cin * cout));
    this.weight = new Tensor(stacked, [blocks.length * cin, cout]);
    this.bias = conv.bias ? conv.bias.detach() : null;
  }

  /** The open taps' (dy, dx), in the order of the stacked weight's blocks. */
  get tapOffsets(): readonly (readonly [number, number])[] {
    return this.taps;
  }

  /** The open taps' weights stacked [taps·Cin, Cout], and the bias (null without one). */
  get stacked(): { weight: Float32Array; bias: Float32Array | null } {
    return { weight: this.weight.data as Float32Array, bias: this.bias ? (this.bias.data as Float32Array) : null };
  }

  /** Output at (y, x) for every image: [N, Cout]. */
  at(input: Cache, y: number, x: number): Tensor {
    const { n, h, w, c, data } = input;
    const t = this.taps.length;
    const g = new Float32Array(n * t * c);
    for (let k = 0; k < t; k++) {
      const [dy, dx] = this.taps[k]!;
      const yy = y * this.stride[0] + dy;
      const xx = x * this.stride[1] + dx;
      if (yy < 0 || yy >= h || xx < 0 || xx >= w) continue; // zero padding
      for (let i = 0; i < n; i++) g.set(data.subarray(((i * h + yy) * w + xx) * c, ((i * h + yy) * w + xx + 1) * c), (i * t + k) * this.cin);
    }
    const y0 = matmul(new Tensor(g, [n, t * c]), this.weight);
    return this.bias ? add(y0, this.bias) : y0;
  }
}

/**
 * The convolution's output over one whole row, for layers whose row y reads only input rows up
 * to y·strideH (vertical stacks, PixelCNN++'s down stream): gathers the kernel's input rows into a
 * [N, kH, W, Cin] window and runs the convolution on it. `shiftRows` reads the input as if
 * down-shifted by that many rows.
 */
export class RowConv {
  private readonly weight: Tensor;
  constructor(private readonly conv: Conv2d, private readonly shiftRows = 0) {
    this.weight = effectiveWeight(conv);
    const lastRow = (conv.kernelSize[0] - 1) * conv.dilation[0] - conv.padding[0] - shiftRows;
    if (lastRow > 0) throw new Error('RowConv: the layer reads rows below the output row');
  }

  /** Output row y: [N, 1, W', Cout]. */
  row(input: Cache, y: number): Tensor {
    const { n, h, w, c, data } = input;
    const [kh] = this.conv.kernelSize;
    const [dh, dw] = this.conv.dilation;
    const win = new Float32Array(n * kh * w * c);
    for (let ky = 0; ky < kh; ky++) {
      const yy = y * this.conv.stride[0] + ky * dh - this.conv.padding[0] - this.shiftRows;
      if (yy < 0 || yy >= h) continue;
      for (let i = 0; i < n; i++) win.set(data.subarray((i * h + yy) * w * c, (i * h + yy + 1) * w * c), (i * kh + ky) * w * c);
    }
    const [, , pl, pr] = this.conv.padding;
    return conv2d(new Tensor(win, [n, kh, w, c]), this.weight, { bias: this.conv.bias, padding: [0, 0, pl, pr], dilation: [1, dw], stride: [1, this.conv.stride[1]] });
  }
}

/** A 1×1 convolution applied to any [..., Cin] tensor: one matrix product. */
export class Pointwise {
  private readonly weight: Tensor;
  private readonly bias: Tensor | null;
  constructor(conv: Conv2d) {
    if (conv.kernelSize[0] !== 1 || conv.kernelSize[1] !== 1) throw new Error('Pointwise: the convolution must be 1×1');
    const w = effectiveWeight(conv);
    this.weight = new Tensor(w.data, [conv.inChannels, conv.outChannels]);
    this.bias = conv.bias ? conv.bias.detach() : null;
  }

  /** The weight [Cin, Cout] and the bias (null without one). */
  get parts(): { weight: Float32Array; bias: Float32Array | null } {
    return { weight: this.weight.data as Float32Array, bias: this.bias ? (this.bias.data as Float32Array) : null };
  }

  apply(x: Tensor): Tensor {
    const cin = this.weight.shape[0]!;
    const flat = new Tensor(x.storage, [x.size / cin, cin]);
    const y = matmul(flat, this.weight);
    const yb = this.bias ? add(y, this.bias) : y;
    return new Tensor(yb.storage, [...x.shape.slice(0, -1), this.weight.shape[1]!]);
  }
}
