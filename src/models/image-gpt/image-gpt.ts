// Image GPT (Chen et al. 2020, "Generative Pretraining from Pixels", as openai/image-gpt defines
// it): a GPT-2 language model on the raster-scanned sequence of an image's pixels, each pixel one
// token — its grey value (the identity palette: arpix's categorical head, 256 levels) or the index
// of its nearest colour in a k-means palette (the palette head, src/likelihoods/palette.ts).
//
// The sequence is shifted right by one: position 0 holds a learned start-of-sequence vector, and
// position i > 0 the embedding of token i−1, plus a learned position embedding; so the logits at
// position i see tokens < i only, through causal full attention. Pre-norm blocks
// (x += attn(norm(x)); x += mlp(norm(x)): the transformer core's TransformerBlock), with
// openai/image-gpt's norm — RMS, a scale and no bias — or layer norm by config; GELU in the MLP; a final norm and an untied output head over the palette.
// A class label (or vector h) is added to every position's input.

import { ArgumentError } from '../../errors.js';
import { isPaletteHead } from '../../likelihoods/index.js';
import { Embedding, LayerNorm, LearnedPositionEmbedding, Linear, ModuleList, Parameter, RMSNorm, TransformerBlock, normal_ } from '../../nn/index.js';
import { add, cast, concat, mul, reshape, slice, zeros } from '../../ops/index.js';
import { getDefaultGenerator, type Generator } from '../../tensor/random.js';
import type { Tensor } from '../../tensor/tensor.js';
import { ConditionProjection } from '../core/condition.js';
import { AutoregressiveModel, type BaseModelConfig, type Condition } from '../core/model.js';

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
  /**
   * GELU form: 'tanh' (GPT-2's approximation) or 'exact' (erf). openai/image-gpt's own gelu2,
   * x·σ(1.702x), is a third approximation of the same function, not offered.
   */
  gelu: 'tanh' | 'exact';
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
  gelu: 'tanh',
};

/** openai/image-gpt initialises every weight matrix and embedding from N(0, 0.02²), biases at 0. */
const INIT_STD = 0.02;

function initLinear(l: Linear, generator: Generator): Linear {
  normal_(l.weight, 0, INIT_STD, generator);
  if (l.bias) l.bias.data.fill(0);
  return l;
}

function makeNorm(d: number, kind: ImageGPTConfig['norm']): RMSNorm | LayerNorm {
  if (kind !== 'rms' && kind !== 'layer') throw new ArgumentError('image-gpt', 'norm', `must be 'rms' or 'layer', got '${String(kind)}'`);
  return kind === 'rms' ? new RMSNorm(d) : new LayerNorm(d);
}

export class ImageGPT extends AutoregressiveModel<ImageGPTConfig> {
  /** Tokens: palette colours, or grey levels for the identity palette. */
  readonly vocab: number;
  readonly tokenEmbed: Embedding;
  /** The start-of-sequence vector at position 0: [d]. */
  readonly sos: Parameter;
  readonly posEmbed: LearnedPositionEmbedding;
  readonly cond: ConditionProjection;
  readonly blocks: ModuleList<TransformerBlock>;
  readonly normOut: RMSNorm | LayerNorm;
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
    this.posEmbed = this.registerModule('posEmbed', new LearnedPositionEmbedding(this.length, d, { std: INIT_STD / 2, generator }));
    this.cond = this.registerModule('cond', new ConditionProjection(config.numClasses, config.conditionDim, d, generator));
    if (config.gelu !== 'tanh' && config.gelu !== 'exact') throw new ArgumentError('image-gpt', 'gelu', `must be 'tanh' or 'exact', got '${String(config.gelu)}'`);
    makeNorm(d, config.norm); // checks the kind before the blocks do
    const block = () => {
      const b = new TransformerBlock(d, { heads, ffDim: mlpRatio * d, norm: 'pre', normKind: config.norm, activation: config.gelu === 'tanh' ? 'gelu-tanh' : 'gelu', pattern: { kind: 'causal' }, generator });
      for (const l of [b.attn.qkv, b.attn.out, b.ff1, b.ff2]) initLinear(l, generator);
      return b;
    };
    this.blocks = this.registerModule('blocks', new ModuleList(Array.from({ length: layers }, block)));
    this.normOut = this.registerModule('normOut', makeNorm(d, config.norm));
    this.head = this.registerModule('head', initLinear(new Linear(d, this.vocab, { bias: false, generator }), generator));
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
    x = this.posEmbed.forward(x);
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
}
