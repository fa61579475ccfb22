// Image GPT (Chen et al. 2020, "Generative Pretraining from Pixels", as openai/image-gpt defines
// it): a GPT-2 language model on the raster-scanned sequence of an image's pixels, each pixel one
// token — its grey value (the identity palette: arpix's categorical head, 256 levels) or the index
// of its nearest colour in a k-means palette (the palette head, src/likelihoods/palette.ts).
//
// The sequence is shifted right by one: position 0 holds a learned start-of-sequence vector, and
// position i > 0 the embedding of token i−1, plus a learned position embedding; so the logits at
// position i see tokens < i only, through causal full attention. Pre-norm blocks
// (x += attn(norm(x)); x += mlp(norm(x))), with openai/image-gpt's norm — RMS, a scale and no bias —
// or layer norm by config; GELU in the MLP; a final norm and an untied output head over the palette.
// A class label (or vector h) is added to every position's input.

import { ArgumentError } from '../errors.js';
import { isPaletteHead } from '../likelihoods/index.js';
import { Embedding, LayerNorm, Linear, Module, ModuleList, Parameter, normal_ } from '../nn/index.js';
import { add, attention, cast, concat, gelu, mul, reshape, rmsNorm, sigmoid, slice, zeros } from '../ops/index.js';
import { getDefaultGenerator, type Generator } from '../tensor/random.js';
import type { Tensor } from '../tensor/tensor.js';
import { ConditionProjection } from './condition.js';
import type { ModelFamily } from './family.js';
import { AutoregressiveModel, type BaseModelConfig, type Condition } from './model.js';
import { imageGPTStepper } from '../sample/cached-image-gpt.js';
import type { Stepper } from '../sample/driver.js';
import type { SampleSetup } from '../sample/options.js';

export interface ImageGPTConfig extends BaseModelConfig {
  kind: 'image-gpt';
  /** Width d of the residual stream (embeddings, attention, the MLP's ends): GPT-2's n_embd. */
  embedDim: number;
  /** Transformer blocks. */
  layers: number;
  /** Attention heads; must divide width. */
  heads: number;
  /** Hidden units of each MLP as a multiple of width (GPT-2: 4). */
  mlpRatio: number;
  /** 'rms': openai/image-gpt's norm (x/√(mean x² + ε)·g, no centring, no bias); 'layer': layer norm with bias. */
  norm: 'rms' | 'layer';
  /** GELU form: 'sigmoid' x·σ(1.702x) (openai/image-gpt's gelu2), 'tanh' (GPT-2's) or 'exact' (erf). */
  gelu: 'sigmoid' | 'tanh' | 'exact';
}

export const imageGPTDefaults: Omit<ImageGPTConfig, 'height' | 'width' | 'channels' | 'likelihood'> = {
  kind: 'image-gpt',
  numClasses: 0,
  conditionDim: 0,
  embedDim: 128,
  layers: 4,
  heads: 4,
  mlpRatio: 4,
  norm: 'rms',
  gelu: 'sigmoid',
};

/** openai/image-gpt initialises every weight matrix and embedding from N(0, 0.02²). */
const INIT_STD = 0.02;

/** RMS norm with a learned scale and no bias (openai/image-gpt's `norm`), or layer norm. */
class Norm extends Module {
  readonly weight: Parameter | null;
  readonly ln: LayerNorm | null;

  constructor(d: number, kind: 'rms' | 'layer') {
    super();
    if (kind !== 'rms' && kind !== 'layer') throw new ArgumentError('image-gpt', 'norm', `must be 'rms' or 'layer', got '${String(kind)}'`);
    this.weight = this.registerParameter('weight', kind === 'rms' ? new Parameter(add(zeros([d]), 1)) : null);
    this.ln = this.registerModule('ln', kind === 'layer' ? new LayerNorm(d) : null);
  }

  forward(x: Tensor): Tensor {
    return this.ln ? this.ln.forward(x) : rmsNorm(x, this.weight, 1e-5);
  }
}

function activation(x: Tensor, form: ImageGPTConfig['gelu']): Tensor {
  switch (form) {
    case 'sigmoid': return mul(x, sigmoid(mul(x, 1.702)));
    case 'tanh': return gelu(x, 'tanh');
    case 'exact': return gelu(x, 'none');
    default: throw new ArgumentError('image-gpt', 'gelu', `must be 'sigmoid', 'tanh' or 'exact', got '${String(form)}'`);
  }
}

function linear(inF: number, outF: number, generator: Generator, bias = true): Linear {
  const l = new Linear(inF, outF, { bias, generator });
  normal_(l.weight, 0, INIT_STD, generator);
  if (l.bias) l.bias.data.fill(0);
  return l;
}

/** One pre-norm GPT-2 block: x + attn(norm(x)), then + mlp(norm(x)). */
export class GPTBlock extends Module {
  readonly norm1: Norm;
  readonly qkv: Linear;
  readonly proj: Linear;
  readonly norm2: Norm;
  readonly fc: Linear;
  readonly fcOut: Linear;

  constructor(readonly cfg: ImageGPTConfig, generator: Generator) {
    super();
    const d = cfg.embedDim;
    this.norm1 = this.registerModule('norm1', new Norm(d, cfg.norm));
    this.qkv = this.registerModule('qkv', linear(d, 3 * d, generator));
    this.proj = this.registerModule('proj', linear(d, d, generator));
    this.norm2 = this.registerModule('norm2', new Norm(d, cfg.norm));
    this.fc = this.registerModule('fc', linear(d, cfg.mlpRatio * d, generator));
    this.fcOut = this.registerModule('fcOut', linear(cfg.mlpRatio * d, d, generator));
  }

  /** The MLP half on its own (the cached stepper runs it on one position). */
  mlp(x: Tensor): Tensor {
    return this.fcOut.forward(activation(this.fc.forward(this.norm2.forward(x)), this.cfg.gelu));
  }

  forward(x: Tensor): Tensor { // [N, L, d]
    const a = attention(this.qkv.forward(this.norm1.forward(x)), { heads: this.cfg.heads, pattern: { kind: 'causal' } });
    const h = add(x, this.proj.forward(a));
    return add(h, this.mlp(h));
  }
}

export class ImageGPT extends AutoregressiveModel<ImageGPTConfig> {
  /** Tokens: palette colours, or grey levels for the identity palette. */
  readonly vocab: number;
  readonly tokenEmbed: Embedding;
  /** The start-of-sequence vector at position 0: [d]. */
  readonly sos: Parameter;
  readonly posEmbed: Embedding;
  readonly cond: ConditionProjection;
  readonly blocks: ModuleList<GPTBlock>;
  readonly normOut: Norm;
  readonly head: Linear;

  constructor(config: ImageGPTConfig, generator: Generator = getDefaultGenerator()) {
    super(config);
    const { embedDim: d, layers, heads, mlpRatio, channels } = config;
    for (const [k, v] of [['embedDim', d], ['layers', layers], ['heads', heads], ['mlpRatio', mlpRatio]] as const) {
      if (!Number.isInteger(v) || v < 1) throw new ArgumentError('image-gpt', k, `must be a positive integer, got ${v}`);
    }
    if (d % heads !== 0) throw new ArgumentError('image-gpt', 'heads', `(${heads}) must divide embedDim (${d})`);
    const head = this.likelihood;
    if (head.config.kind === 'categorical') {
      if (channels !== 1) throw new ArgumentError('image-gpt', 'likelihood', `categorical is the identity grey palette, for channels 1; for ${channels} channels use { kind: 'palette', k } (one token per pixel)`);
    } else if (!isPaletteHead(head)) {
      throw new ArgumentError('image-gpt', 'likelihood', `must be 'categorical' (the identity grey palette) or 'palette', got '${head.config.kind}'`);
    }
    this.vocab = head.paramsPerPixel;
    this.tokenEmbed = this.registerModule('tokenEmbed', new Embedding(this.vocab, d, { generator }));
    normal_(this.tokenEmbed.weight, 0, INIT_STD, generator);
    this.sos = this.registerParameter('sos', new Parameter(zeros([d])));
    normal_(this.sos, 0, INIT_STD, generator);
    this.posEmbed = this.registerModule('posEmbed', new Embedding(config.height * config.width, d, { generator }));
    normal_(this.posEmbed.weight, 0, INIT_STD / 2, generator);
    this.cond = this.registerModule('cond', new ConditionProjection(config.numClasses, config.conditionDim, d, generator));
    this.blocks = this.registerModule('blocks', new ModuleList(Array.from({ length: layers }, () => new GPTBlock(config, generator))));
    this.normOut = this.registerModule('normOut', new Norm(d, config.norm));
    this.head = this.registerModule('head', linear(d, this.vocab, generator, false));
  }

  /** Positions L = H·W: one token per pixel. */
  get length(): number {
    return this.config.height * this.config.width;
  }

  /** Tokens int32 [N, L] of an integer image batch: the grey values, or the nearest palette colours. */
  tokens(images: Tensor): Tensor {
    const n = images.shape[0]!;
    const head = this.likelihood;
    return isPaletteHead(head) ? reshape(head.tokens(images), [n, this.length]) : reshape(images, [n, this.length]);
  }

  /** The inputs of every position [N, L, d]: SOS then the embeddings of tokens 0…L−2, plus positions and condition. */
  embed(tokens: Tensor, cond: Condition): Tensor {
    const [n, l] = tokens.shape as [number, number];
    const d = this.config.embedDim;
    const sos = add(zeros([n, 1, d]), this.sos);
    let x = l > 1 ? concat([sos, this.tokenEmbed.forward(slice(tokens, [0, 0], [n, l - 1]))], 1) : sos;
    x = add(x, this.posEmbed.weight);
    const c = this.cond.forward(cond);
    return c === null ? x : add(x, reshape(c, [n, 1, d]));
  }

  /**
   * Hidden states of the residual stream [N, L, d] after each block (index 0: the embeddings), as
   * the linear probe reads them; `upTo` stops after that many blocks.
   */
  hidden(tokens: Tensor, cond: Condition, upTo = this.config.layers): Tensor[] {
    let x = this.embed(tokens, cond);
    const out = [x];
    for (const block of [...this.blocks].slice(0, upTo)) out.push(x = block.forward(x));
    return out;
  }

  /** Logits [N, H, W, vocab] of a token batch [N, L]. */
  logits(tokens: Tensor, cond: Condition): Tensor {
    const { height: h, width: w } = this.config;
    const states = this.hidden(tokens, cond);
    return reshape(this.head.forward(this.normOut.forward(states[states.length - 1]!)), [tokens.shape[0]!, h, w, this.vocab]);
  }

  /** The network reads tokens; a float image in [−1, 1] is turned back into its integer values first. */
  network(x: Tensor, cond: Condition): Tensor {
    const levels = this.likelihood.levels;
    const ints = cast(add(mul(add(x, 1), (levels - 1) / 2), 0.5), 'int32');
    return this.logits(this.tokens(ints), cond);
  }

  override params(images: Tensor, cond: Condition = {}): Tensor {
    this.checkInputs('params', images, cond);
    return this.logits(this.tokens(images), cond);
  }

  override logProb(images: Tensor, cond: Condition = {}): Tensor {
    const head = this.likelihood;
    if (!isPaletteHead(head)) return super.logProb(images, cond);
    this.checkInputs('logProb', images, cond);
    const tokens = this.tokens(images);
    const { height: h, width: w } = this.config;
    return head.tokenLogProb(this.logits(tokens, cond), reshape(tokens, [images.shape[0]!, h, w]));
  }

  override cachedStepper(s: SampleSetup): Stepper {
    return imageGPTStepper(this, s);
  }
}

/** Multiply-adds ×2 of one image's forward pass: the linear layers and the attention products. */
function imageGPTFlops(c: ImageGPTConfig, vocab: number): number {
  const l = c.height * c.width;
  const d = c.embedDim;
  const perBlock = 2 * l * d * (3 * d + d + 2 * c.mlpRatio * d) + 2 * 2 * d * (l * (l + 1)) / 2;
  return c.layers * perBlock + 2 * l * d * vocab;
}

export const imageGPTFamily: ModelFamily<ImageGPTConfig> = {
  kind: 'image-gpt',
  paper: 'Chen et al. 2020, "Generative Pretraining from Pixels" (openai/image-gpt)',
  defaults: imageGPTDefaults,
  build: (config, generator) => new ImageGPT(config, generator),
  differentiableInput: false,
  // One token per pixel: the categorical head is the identity palette of grey levels, so colour
  // needs a palette head.
  supports: (c) => (c.likelihood === 'categorical' && c.channels === 1) || c.likelihood === 'palette',
  tiny: () => ({ embedDim: 8, layers: 2, heads: 2, mlpRatio: 2 }),
  flops: (config, model) => imageGPTFlops(config, (model as ImageGPT).vocab),
};
