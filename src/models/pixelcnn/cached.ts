// Cached sampling for PixelCNN: every masked convolution reads only pixels at or before its
// output pixel, so at step (y, x) each layer computes just its output at (y, x) from the caches
// of the layer below — the masked taps are skipped entirely.

import type { PixelCNN } from './pixelcnn.js';
import { add, relu, reshape } from '../../ops/index.js';
import type { Tensor } from '../../tensor/tensor.js';
import type { Stepper } from '../sampling/options.js';
import { Cache, PixelConv, Pointwise, inputImage, writeSampled } from '../sampling/causal-conv.js';
import type { SampleSetup } from '../sampling/options.js';

export function pixelCNNCachedStepper(model: PixelCNN, s: SampleSetup): Stepper {
  const { n, h, w, c } = s;
  const hid = model.config.hiddenChannels;
  const levels = model.likelihood.levels;
  const blocks = [...model.blocks];
  const image = new Cache(n, h, w, c);
  const mid = blocks.map(() => new Cache(n, h, w, hid)); // relu(reduce(x) + condition), read by the k×k conv
  const first = new PixelConv(model.first);
  const reduce = blocks.map((b) => new Pointwise(b.reduce));
  const conv = blocks.map((b) => new PixelConv(b.conv));
  const expand = blocks.map((b) => new Pointwise(b.expand));
  const cond = blocks.map((b) => b.cond.forward(s.cond));
  const outHidden = new Pointwise(model.outHidden);
  const out = new Pointwise(model.out);

  const canvas = s.canvas.data as Int32Array;
  inputImage(canvas, levels, image.data);

  return {
    beginRow() {},
    pixel(y, x) {
      let hx: Tensor = first.at(image, y, x); // [N, 2h]
      blocks.forEach((_, l) => {
        let a = reduce[l]!.apply(relu(hx));
        if (cond[l]) a = add(a, reshape(cond[l]!, a.shape));
        mid[l]!.write(relu(a), y, x);
        hx = add(hx, expand[l]!.apply(relu(conv[l]!.at(mid[l]!, y, x))));
      });
      return out.apply(relu(outHidden.apply(relu(hx)))).data as Float32Array;
    },
    sampled(y, x, ch, values) {
      writeSampled(image.data, s, y, x, ch, values, levels);
    },
  };
}
