// Cached sampling for Gated PixelCNN. The vertical stack at row y reads only rows above, so each
// layer's row y is computed once when the row starts (and the vertical-to-horizontal link with
// it); the horizontal stack at (y, x) reads only the current row up to x, so each layer computes
// one pixel per step. A step costs a few small matrix products per layer instead of a forward
// pass over the whole image.

import type { GatedPixelCNN } from './gated-pixelcnn.js';
import { add, elu, gatedActivation, reshape } from '../../ops/index.js';
import { Tensor } from '../../tensor/tensor.js';
import type { Stepper } from '../sampling/options.js';
import { Cache, PixelConv, Pointwise, RowConv, inputImage, writeSampled } from '../sampling/causal-conv.js';
import type { SampleSetup } from '../sampling/options.js';

/** Adds a per-image term [N, C] to a row [N, 1, W, C] or a pixel [N, C]. */
function addPerImage(x: Tensor, c: Tensor | null): Tensor {
  if (c === null) return x;
  return x.rank === 4 ? add(x, reshape(c, [c.shape[0]!, 1, 1, c.shape[1]!])) : add(x, c);
}

export function gatedCachedStepper(model: GatedPixelCNN, s: SampleSetup): Stepper {
  const { n, h, w, c } = s;
  const p = model.config.hiddenChannels;
  const levels = model.likelihood.levels;
  const blocks = [...model.blocks];
  const image = new Cache(n, h, w, c); // the canvas scaled to [−1, 1], as the network sees it
  const v = [new Cache(n, h, w, p), ...blocks.map(() => new Cache(n, h, w, p))];
  const hs = [new Cache(n, h, w, p), ...blocks.map(() => new Cache(n, h, w, p))];
  const link = blocks.map(() => new Cache(n, 1, w, 2 * p)); // link(vPre) + conditioning, current row

  const vFirst = new RowConv(model.vFirst, 1); // reads the down-shifted image
  const hFirst = new PixelConv(model.hFirst, [0, 1]); // reads the right-shifted image
  const hCentre = model.hFirstCentre ? new PixelConv(model.hFirstCentre) : null;
  const vConv = blocks.map((b) => new RowConv(b.vConv));
  const hConv = blocks.map((b) => new PixelConv(b.hConv));
  const linkConv = blocks.map((b) => new Pointwise(b.link));
  const residual = blocks.map((b) => new Pointwise(b.residual));
  const out = new Pointwise(model.out);
  const condV = blocks.map((b) => b.condV.forward(s.cond));
  const condH = blocks.map((b) => b.condH.forward(s.cond));

  // Completion: the kept rows are known before sampling starts.
  const canvas = s.canvas.data as Int32Array;
  inputImage(canvas, levels, image.data);

  return {
    beginRow(y) {
      v[0]!.write(vFirst.row(image, y), y, null);
      blocks.forEach((_, l) => {
        const vPre = addPerImage(vConv[l]!.row(v[l]!, y), condV[l]!); // [N, 1, W, 2p]
        v[l + 1]!.write(gatedActivation(vPre), y, null);
        link[l]!.data.set(addPerImage(linkConv[l]!.apply(vPre), condH[l]!).data);
      });
    },
    pixel(y, x) {
      let hx = hFirst.at(image, y, x); // [N, p]
      if (hCentre) hx = add(hx, hCentre.at(image, y, x));
      hs[0]!.write(hx, y, x);
      blocks.forEach((_, l) => {
        const hPre = add(hConv[l]!.at(hs[l]!, y, x), link[l]!.at(0, x)); // [N, 2p]
        hx = add(hx, residual[l]!.apply(gatedActivation(hPre)));
        hs[l + 1]!.write(hx, y, x);
      });
      return out.apply(elu(hx)).data as Float32Array;
    },
    sampled(y, x, ch, values) {
      writeSampled(image.data, s, y, x, ch, values, levels);
    },
  };
}
