// The PixelCNN family's entry in the family table (src/models/families.ts): its defaults, the
// ranges of its fields, the tiny cases the tests build, its cost from the config alone, its PyTorch
// mirror and how a masked-formulation checkpoint maps onto it.

import { pixelCNNCachedStepper } from './cached.js';
import { conditionParameters, costOf, type ConvShape, type ModelFamily } from '../core/family.js';
import { createLikelihood } from '../../likelihoods/index.js';
import { applyFileMasks } from '../core/masked.js';
import { PixelCNN, pixelCNNDefaults, type PixelCNNConfig } from './pixelcnn.js';

export const pixelCNNFamily: ModelFamily<PixelCNNConfig> = {
  kind: 'pixelcnn',
  paper: 'van den Oord et al. 2016, "Pixel Recurrent Neural Networks", §3.5',
  mirror: 'pixelcnn',
  // arpix's PixelCNN keeps full kernels and masks of its own: only the file's masks are applied.
  maskedImport: (sd, _model, file) => applyFileMasks(sd, file),
  defaults: pixelCNNDefaults,
  build: (config, generator) => new PixelCNN(config, generator).withCachedStepper(pixelCNNCachedStepper),
  differentiableInput: true,
  supports: () => true,
  tiny: () => ({ hiddenChannels: 6, residualBlocks: 2, firstKernelSize: 5, kernelSize: 3, outputHidden: 8 }),
  ranges: {
    hiddenChannels: { min: 1, max: 8192 },
    residualBlocks: { min: 0, max: 1024 },
    firstKernelSize: { min: 1, max: 255, odd: true },
    kernelSize: { min: 1, max: 255, odd: true },
    outputHidden: { min: 1, max: 65_536 },
  },
  // The layers of the constructor above, counted rather than built.
  cost: (c) => {
    const { hiddenChannels: h, firstKernelSize: k0, kernelSize: k, outputHidden: oh } = c;
    const px = c.height * c.width;
    const params = createLikelihood(c.likelihood, c.channels).paramsPerPixel;
    const convs: ConvShape[] = [{ name: 'first', kernel: [k0, k0], cin: c.channels, cout: 2 * h, pixels: px }];
    for (let b = 0; b < c.residualBlocks; b++) {
      convs.push(
        { name: `blocks.${b}.reduce`, kernel: [1, 1], cin: 2 * h, cout: h, pixels: px },
        { name: `blocks.${b}.conv`, kernel: [k, k], cin: h, cout: h, pixels: px },
        { name: `blocks.${b}.expand`, kernel: [1, 1], cin: h, cout: 2 * h, pixels: px },
      );
    }
    convs.push({ name: 'outHidden', kernel: [1, 1], cin: 2 * h, cout: oh, pixels: px }, { name: 'out', kernel: [1, 1], cin: oh, cout: params, pixels: px });
    return costOf(convs, c.residualBlocks * conditionParameters(c, h));
  },
};
