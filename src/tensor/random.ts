// One seeded, counter-based PRNG: Philox4x32-10 (Salmon et al. 2011, "Parallel random numbers:
// as easy as 1, 2, 3"). Element i of a draw depends only on (seed, counter + block of i), never on
// the backend or on how the work is split, so a seed means the same numbers everywhere.

const M0 = 0xd2511f53;
const M1 = 0xcd9e8d57;
const W0 = 0x9e3779b9;
const W1 = 0xbb67ae85;

/** High and low 32 bits of the 64-bit product of two uint32s, exact in float64 arithmetic. */
function mulHiLo(a: number, b: number, out: Uint32Array, at: number): void {
  const aH = a >>> 16;
  const aL = a & 0xffff;
  const bH = b >>> 16;
  const bL = b & 0xffff;
  const ll = aL * bL;
  const lh = aL * bH;
  const hl = aH * bL;
  const mid = (ll >>> 16) + (lh & 0xffff) + (hl & 0xffff);
  out[at] = aH * bH + (lh >>> 16) + (hl >>> 16) + Math.floor(mid / 65536);
  out[at + 1] = Math.imul(a, b);
}

const scratch = new Uint32Array(4);

/** Philox4x32-10 of counter (c0..c3) under key (k0, k1); writes four uint32 words into out. */
export function philox(c0: number, c1: number, c2: number, c3: number, k0: number, k1: number, out: Uint32Array): void {
  let x0 = c0 >>> 0, x1 = c1 >>> 0, x2 = c2 >>> 0, x3 = c3 >>> 0;
  let key0 = k0 >>> 0, key1 = k1 >>> 0;
  for (let r = 0; r < 10; r++) {
    mulHiLo(M0, x0, scratch, 0);
    mulHiLo(M1, x2, scratch, 2);
    const y0 = (scratch[2]! ^ x1 ^ key0) >>> 0;
    const y2 = (scratch[0]! ^ x3 ^ key1) >>> 0;
    x1 = scratch[3]!;
    x3 = scratch[1]!;
    x0 = y0;
    x2 = y2;
    key0 = (key0 + W0) >>> 0;
    key1 = (key1 + W1) >>> 0;
  }
  out[0] = x0; out[1] = x1; out[2] = x2; out[3] = x3;
}

export interface GeneratorState {
  seed: number;
  /** Number of 4-word blocks consumed so far. */
  offset: number;
}

const TWO_POW_24 = 16777216;

/**
 * A stream of random numbers. Each draw consumes whole blocks of four 32-bit words starting at
 * `offset`; the state (seed, offset) is all there is, so it can be saved and restored exactly.
 */
export class Generator {
  seed: number;
  offset: number;
  private readonly words = new Uint32Array(4);

  constructor(seed = 0, offset = 0) {
    if (!Number.isSafeInteger(seed) || seed < 0) throw new RangeError(`Generator: seed must be a non-negative safe integer, got ${seed}`);
    this.seed = seed;
    this.offset = offset;
  }

  static fromState(s: GeneratorState): Generator {
    return new Generator(s.seed, s.offset);
  }

  state(): GeneratorState {
    return { seed: this.seed, offset: this.offset };
  }

  /** The four words of block `b` (relative to the stream's start). */
  private block(b: number): Uint32Array {
    philox(b >>> 0, Math.floor(b / 4294967296) >>> 0, 0, 0, this.seed >>> 0, Math.floor(this.seed / 4294967296) >>> 0, this.words);
    return this.words;
  }

  /**
   * Moves the stream past a uniform draw of n values and returns the offset that draw starts at,
   * for a kernel that computes those uniforms itself from (seed, offset).
   */
  skipUniform(n: number): number {
    const start = this.offset;
    this.offset += Math.ceil(n / 4);
    return start;
  }

  /** Fills out with uniforms in [0, 1), 24 bits each (exact in float32); 4 per block. */
  uniform(out: Float32Array | Float64Array): void {
    const n = out.length;
    const blocks = Math.ceil(n / 4);
    for (let b = 0; b < blocks; b++) {
      const w = this.block(this.offset + b);
      for (let l = 0; l < 4 && b * 4 + l < n; l++) out[b * 4 + l] = (w[l]! >>> 8) / TWO_POW_24;
    }
    this.offset += blocks;
  }

  /** Moves the stream past a normal draw of n values (one block each), as `normal` would. */
  skipNormal(n: number): void {
    this.offset += n;
  }

  /** Fills out with standard normals (Box–Muller on the first two words of one block each). */
  normal(out: Float32Array | Float64Array): void {
    const n = out.length;
    for (let i = 0; i < n; i++) {
      const w = this.block(this.offset + i);
      const u1 = ((w[0]! >>> 8) + 1) / TWO_POW_24; // in (0, 1]: log never sees 0
      const u2 = (w[1]! >>> 8) / TWO_POW_24;
      out[i] = Math.sqrt(-2 * Math.log(u1)) * Math.cos(2 * Math.PI * u2);
    }
    this.offset += n;
  }

  /** Fills out with integers uniform in [lo, hi). */
  randint(out: Int32Array, lo: number, hi: number): void {
    const span = hi - lo;
    const n = out.length;
    for (let i = 0; i < n; i++) {
      const w = this.block(this.offset + i);
      // 53 bits from two words make the modulo bias negligible for any int32 span.
      const r = (w[0]! * 2097152 + (w[1]! >>> 11)) / 9007199254740992;
      out[i] = lo + Math.floor(r * span);
    }
    this.offset += n;
  }
}

let defaultGenerator = new Generator(0);

/** The generator used when an op is given none. */
export function getDefaultGenerator(): Generator {
  return defaultGenerator;
}

/** Reseeds the default generator. */
export function manualSeed(seed: number): void {
  defaultGenerator = new Generator(seed);
}
