// The PixelCNN++ family's entry in the family table (src/models/families.ts): its defaults, the
// ranges of its fields, the tiny cases the tests build, its cost from the config alone, its PyTorch
// mirror.

import { pixelCNNPPCachedStepper } from './cached.js';
import { conditionParameters, costOf, type ConvShape, type ModelFamily } from '../core/family.js';
import { createLikelihood } from '../../likelihoods/index.js';
import { PixelCNNPP, checkResolutions, pixelCNNPPDefaults, type PixelCNNPPConfig } from './pixelcnnpp.js';

export const pixelCNNPPFamily: ModelFamily<PixelCNNPPConfig> = {
  kind: 'pixelcnn++',
  paper: 'Salimans et al. 2017, "PixelCNN++: Improving the PixelCNN with Discretized Logistic Mixture Likelihood and Other Modifications"',
  mirror: 'pixelcnnpp',
  defaults: pixelCNNPPDefaults,
  build: (config, generator) => new PixelCNNPP(config, generator).withCachedStepper(pixelCNNPPCachedStepper),
  differentiableInput: true,
  // Its unmasked streams cannot order the channels inside a pixel.
  supports: (c) => c.channels === 1 || c.likelihood === 'logistic-mixture',
  tiny: (height, width) => {
    let resolutions = 1;
    while (resolutions < 3 && height % 2 ** resolutions === 0 && width % 2 ** resolutions === 0) resolutions++;
    return { filters: 5, resnetBlocks: 2, resolutions, dropout: 0.5 };
  },
  ranges: {
    filters: { min: 1, max: 8192 },
    resnetBlocks: { min: 1, max: 256 },
    resolutions: { min: 1, max: 12 },
    dropout: { min: 0, max: 0.99, integer: false },
  },
  // The layers of the constructor above, counted rather than built.
  cost: (c) => {
    const { filters: f, resnetBlocks: nr, resolutions: levels } = c;
    checkResolutions(c);
    const px = (level: number) => (c.height / 2 ** level) * (c.width / 2 ** level);
    const convs: ConvShape[] = [
      { name: 'uInit.conv', kernel: [2, 3], cin: c.channels + 1, cout: f, pixels: px(0) },
      { name: 'ulInitDown.conv', kernel: [1, 3], cin: c.channels + 1, cout: f, pixels: px(0) },
      { name: 'ulInitRight.conv', kernel: [2, 1], cin: c.channels + 1, cout: f, pixels: px(0) },
    ];
    let blocks = 0;
    const block = (name: string, kernel: [number, number], skip: number, level: number) => {
      blocks++;
      convs.push({ name: `${name}.convIn.conv`, kernel, cin: 2 * f, cout: f, pixels: px(level) });
      if (skip > 0) convs.push({ name: `${name}.skip`, kernel: [1, 1], cin: 2 * skip * f, cout: f, pixels: px(level) });
      convs.push({ name: `${name}.convOut.conv`, kernel, cin: 2 * f, cout: 2 * f, pixels: px(level) });
    };
    for (let r = 0; r < levels; r++) {
      for (let i = 0; i < nr; i++) {
        block(`upU.${r * nr + i}`, [2, 3], 0, r);
        block(`upUl.${r * nr + i}`, [2, 2], 1, r);
      }
      if (r < levels - 1) {
        convs.push({ name: `downsizeU.${r}.conv`, kernel: [2, 3], cin: f, cout: f, pixels: px(r + 1) });
        convs.push({ name: `downsizeUl.${r}.conv`, kernel: [2, 2], cin: f, cout: f, pixels: px(r + 1) });
      }
    }
    let b = 0;
    for (let r = 0; r < levels; r++) {
      const level = levels - 1 - r;
      for (let i = 0; i < (r === 0 ? nr : nr + 1); i++, b++) {
        block(`downU.${b}`, [2, 3], 1, level);
        block(`downUl.${b}`, [2, 2], 2, level);
      }
      if (r < levels - 1) {
        convs.push({ name: `upsizeU.${r}.deconv`, kernel: [2, 3], cin: f, cout: f, pixels: px(level), outPixels: px(level - 1) });
        convs.push({ name: `upsizeUl.${r}.deconv`, kernel: [2, 2], cin: f, cout: f, pixels: px(level), outPixels: px(level - 1) });
      }
    }
    convs.push({ name: 'out', kernel: [1, 1], cin: f, cout: createLikelihood(c.likelihood, c.channels).paramsPerPixel, pixels: px(0) });
    return costOf(convs, blocks * conditionParameters(c, 2 * f));
  },
};
