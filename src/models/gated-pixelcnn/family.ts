// The Gated PixelCNN family's entry in the family table (src/models/families.ts): its defaults, the
// ranges of its fields, the tiny cases the tests build, its cost from the config alone, its PyTorch
// mirror and how a masked-formulation checkpoint maps onto it.

import { gatedCachedStepper } from './cached.js';
import { conditionParameters, costOf, type ConvShape, type ModelFamily } from '../core/family.js';
import { createLikelihood } from '../../likelihoods/index.js';
import { gatedPixelCNNMaskedImport } from './masked.js';
import { GatedPixelCNN, gatedPixelCNNDefaults, type GatedPixelCNNConfig } from './gated-pixelcnn.js';

export const gatedPixelCNNFamily: ModelFamily<GatedPixelCNNConfig> = {
  kind: 'gated-pixelcnn',
  paper: 'van den Oord et al. 2016, "Conditional Image Generation with PixelCNN Decoders"',
  mirror: 'gated_pixelcnn',
  maskedImport: gatedPixelCNNMaskedImport,
  defaults: gatedPixelCNNDefaults,
  build: (config, generator) => new GatedPixelCNN(config, generator).withCachedStepper(gatedCachedStepper),
  differentiableInput: true,
  supports: () => true,
  tiny: () => ({ hiddenChannels: 6, kernelSize: 3, firstKernelSize: 5, dilations: [1, 2, 1] }),
  ranges: {
    hiddenChannels: { min: 1, max: 8192 },
    kernelSize: { min: 3, max: 255, odd: true },
    firstKernelSize: { min: 3, max: 255, odd: true },
    dilations: { min: 1, max: 4096, maxLength: 1024 },
  },
  // The layers of the constructor above, counted rather than built.
  cost: (c) => {
    const { channels: ch, hiddenChannels: p, kernelSize: k, firstKernelSize: k0 } = c;
    const px = c.height * c.width;
    const lik = createLikelihood(c.likelihood, ch);
    const r = Math.floor(k / 2);
    const r0 = Math.floor(k0 / 2);
    const convs: ConvShape[] = [
      { name: 'vFirst', kernel: [r0, k0], cin: ch, cout: p, pixels: px },
      { name: 'hFirst', kernel: [1, r0], cin: ch, cout: p, pixels: px },
    ];
    if (lik.perChannel && ch > 1) convs.push({ name: 'hFirstCentre', kernel: [1, 1], cin: ch, cout: p, pixels: px, bias: false });
    c.dilations.forEach((_, b) => convs.push(
      { name: `blocks.${b}.vConv`, kernel: [r + 1, k], cin: p, cout: 2 * p, pixels: px },
      { name: `blocks.${b}.hConv`, kernel: [1, r + 1], cin: p, cout: 2 * p, pixels: px },
      { name: `blocks.${b}.link`, kernel: [1, 1], cin: 2 * p, cout: 2 * p, pixels: px },
      { name: `blocks.${b}.residual`, kernel: [1, 1], cin: p, cout: p, pixels: px },
    ));
    convs.push({ name: 'out', kernel: [1, 1], cin: p, cout: lik.paramsPerPixel, pixels: px });
    return costOf(convs, c.dilations.length * 2 * conditionParameters(c, 2 * p));
  },
  // The masked k×k formulation computes every tap of the full kernels this network skips.
  maskedFormulationFlops: (config, convs) => {
    const k = config.kernelSize;
    const k0 = config.firstKernelSize;
    let total = 0;
    for (const c of convs) {
      const taps = c.kernel[0] * c.kernel[1];
      const full = /(^|\.)vFirst$/.test(c.name) ? k0 * k0 : /(^|\.)hFirst$/.test(c.name) ? k0
        : /\.vConv$/.test(c.name) ? k * k : /\.hConv$/.test(c.name) ? k : taps;
      total += (c.flops * full) / taps;
    }
    return total;
  },
};
