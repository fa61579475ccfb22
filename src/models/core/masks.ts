// Masks that make convolutions causal over pixels in raster order and, inside a pixel, over
// channel groups R → G → B (van den Oord et al. 2016, "Pixel Recurrent Neural Networks", §3.4).
//
// A feature channel belongs to one of G groups (G = image channels for heads that condition
// channel on channel, else 1). Mask A lets group g see strictly earlier groups at the centre tap
// (the first layer: a pixel must not see itself); mask B lets it see groups ≤ g (later layers,
// whose centre features already exclude the pixel's own value).

import { Tensor } from '../../tensor/tensor.js';

export type MaskType = 'A' | 'B';

/** Group of each channel: feature channels cycle through groups (i mod G) within `period`. */
export function cyclicGroups(count: number, groups: number, period = count): number[] {
  return Array.from({ length: count }, (_, i) => (i % period) % groups);
}

/** Group of each output channel of a channel-major head: [G blocks of `perGroup` values]. */
export function blockGroups(groups: number, perGroup: number): number[] {
  return Array.from({ length: groups * perGroup }, (_, i) => Math.floor(i / perGroup));
}

function allowed(type: MaskType, gin: number, gout: number): boolean {
  return type === 'A' ? gin < gout : gin <= gout;
}

/**
 * A [kH, kW, Cin, Cout] 0/1 mask. Spatially: every tap above the centre row and left of the
 * centre in its row is open; the centre tap is open per channel-group rule; later taps are shut.
 * `centre` may name another tap as the current pixel (for kernels that hold no future taps).
 */
export function causalMask(
  kh: number, kw: number, groupsIn: readonly number[], groupsOut: readonly number[], type: MaskType,
  centre: readonly [number, number] = [Math.floor(kh / 2), Math.floor(kw / 2)],
): Tensor {
  const cin = groupsIn.length;
  const cout = groupsOut.length;
  const m = new Float32Array(kh * kw * cin * cout);
  const [cy, cx] = centre;
  for (let y = 0; y < kh; y++) {
    for (let x = 0; x < kw; x++) {
      const before = y < cy || (y === cy && x < cx);
      const isCentre = y === cy && x === cx;
      if (!before && !isCentre) continue;
      for (let i = 0; i < cin; i++) {
        for (let o = 0; o < cout; o++) {
          if (before || allowed(type, groupsIn[i]!, groupsOut[o]!)) m[((y * kw + x) * cin + i) * cout + o] = 1;
        }
      }
    }
  }
  return new Tensor(m, [kh, kw, cin, cout]);
}

/** True when the mask is all ones (then no mask is needed at all). */
export function isAllOnes(mask: Tensor): boolean {
  return mask.data.every((v) => v === 1);
}
