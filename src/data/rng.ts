// Counter-based randomness for the data pipeline. Every random choice is a pure function of
// (seed, stream, epoch, index): the shuffle of epoch e and the dynamic binarisation of image i in
// epoch e can be recomputed from scratch, so resuming at (epoch, step) needs no replay of earlier
// draws, and the answer does not depend on how many batches were prefetched.

/** Wellons' "lowbias32" integer finaliser: a bijection on uint32 with good avalanche. */
export function mix32(x: number): number {
  x ^= x >>> 16;
  x = Math.imul(x, 0x7feb352d);
  x ^= x >>> 15;
  x = Math.imul(x, 0x846ca68b);
  x ^= x >>> 16;
  return x >>> 0;
}

const GOLDEN = 0x9e3779b9;

/** Folds a seed (any non-negative integer up to 2^53) and a list of counters into one uint32 key. */
export function hashKey(seed: number, ...counters: number[]): number {
  // The high bits of large seeds are folded in so that seeds 1 and 2^32 + 1 differ.
  let h = mix32((seed >>> 0) ^ mix32(Math.floor(seed / 0x100000000) + GOLDEN));
  for (const c of counters) h = mix32((h + Math.imul(c >>> 0, GOLDEN)) ^ (h >>> 7));
  return h;
}

/** Named streams, so that the validation split, the shuffles and the binarisation never share draws. */
export const STREAM = { validation: 1, shuffle: 2, binarise: 3 } as const;

/**
 * A uniformly random permutation of 0..n-1, a pure function of (seed, ...counters):
 * Fisher–Yates where the draw at position i is hash(key, i), scaled to [0, i] by a multiply-high
 * (bias below 2^-32 · n, far under anything a shuffle could show).
 */
export function permutation(n: number, seed: number, ...counters: number[]): Uint32Array {
  const p = new Uint32Array(n);
  for (let i = 0; i < n; i++) p[i] = i;
  const key = hashKey(seed, ...counters);
  for (let i = n - 1; i > 0; i--) {
    const u = mix32(key ^ mix32(i + GOLDEN));
    const j = Math.floor((u / 0x100000000) * (i + 1));
    const t = p[i];
    p[i] = p[j];
    p[j] = t;
  }
  return p;
}

/** The per-element uniform uint32 for element `k` under a key from hashKey. */
export function uniformU32(key: number, k: number): number {
  return mix32((key + Math.imul(k, GOLDEN)) ^ (key >>> 11));
}
