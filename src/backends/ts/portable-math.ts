// arpix's own elementary functions, from the operations IEEE 754 defines exactly (+, −, ×, ÷,
// and Math.floor / round / abs / min / max / sqrt, and exact bit and BigInt manipulation).
// ECMAScript does not require Math.exp, Math.log, Math.tanh, … to be correctly rounded: V8's fdlibm
// port built for another CPU (arm64 contracts a·b + c into one fused rounding) or another engine
// may differ in the last bit, and one differing bit in one probability breaks every symbol an
// entropy coder writes after it. These give the same bits wherever JavaScript runs, within a few
// ulp of the true values (portable-math.test.ts measures them against Math.*).
//
// The method: reduce the argument exactly or with a known error (x = n·ln2 + r, x = 2^k·m,
// x = n·π/2 + r), then sum a Taylor series on the small remainder — enough terms that truncation
// is below a tenth of an ulp, in Horner form with the leading term added last.

// ---- exact building blocks -----------------------------------------------------------------

/** 2^n for n = −1074 … 1023, by exact doubling and halving (no Math.pow). */
const POW2 = (() => {
  const t = new Float64Array(2098);
  t[1074] = 1;
  for (let i = 1075; i < 2098; i++) t[i] = t[i - 1]! * 2;
  for (let i = 1073; i >= 0; i--) t[i] = t[i + 1]! / 2;
  return t;
})();

/** 2^n for an integer n in −1074 … 1023. */
function pow2(n: number): number {
  return POW2[n + 1074]!;
}

/** y · 2^n with one rounding (at the end, for subnormal results), for n in −1076 … 1024 and ½ ≤ |y| < 2. */
function scale(y: number, n: number): number {
  if (n > 1023) return y * pow2(1023) * pow2(n - 1023);
  if (n < -1022) return y * pow2(n + 64) * pow2(-64);
  return y * pow2(n);
}

// A double's bits, by a typed-array alias (exact; the word order follows the platform's endianness).
const BITS_F = new Float64Array(1);
const BITS_W = new Uint32Array(BITS_F.buffer);
const HI = new Uint8Array(new Uint16Array([1]).buffer)[0] === 1 ? 1 : 0;

// ln 2 = LN2_HI + LN2_LO, LN2_HI with 40 significant bits: n·LN2_HI is exact for |n| < 2^13.
const LN2_HI = 762123384785 / 1099511627776; // ⌊ln2 · 2^40⌋ / 2^40
const LN2_LO = 7.371002565167799e-13;

// ---- exp and expm1 ---------------------------------------------------------------------------

/** 1/k! for k = 0 … 20 (each a division of exact doubles up to 18!, then products: the same bits everywhere). */
const INV_FACT = (() => {
  const t = new Float64Array(21);
  let f = 1;
  for (let k = 0; k <= 20; k++) {
    if (k > 0) f *= k;
    t[k] = 1 / f;
  }
  return t;
})();

/** e^r − 1 by its Taylor series to r^degree, the leading r added last. */
function expm1Series(r: number, degree: number): number {
  let q = INV_FACT[degree]!;
  for (let k = degree - 1; k >= 2; k--) q = INV_FACT[k]! + r * q;
  return r + r * r * q;
}

/** e^r − 1 for |r| ≤ ln2/2 + ε: to r^14, the rest below 3·10⁻¹⁹ of the value. */
function expm1Small(r: number): number {
  return expm1Series(r, 14);
}

/** e^x, for every double: NaN, ±∞, overflow to ∞ and underflow through the subnormals to 0. */
export function exp(x: number): number {
  if (x !== x) return x;
  if (x > 709.8) return Infinity;
  if (x < -745.2) return 0;
  if (Math.abs(x) < 1.1102230246251565e-16) return 1 + x; // 2^−53
  const n = Math.round(x * Math.LOG2E);
  const r = (x - n * LN2_HI) - n * LN2_LO;
  return scale(1 + expm1Small(r), n);
}

/** e^x − 1, accurate near 0 where e^x − 1 would cancel. */
export function expm1(x: number): number {
  if (x !== x) return x;
  if (x > 709.8) return Infinity;
  if (x < -38) return -1; // e^−38 is below half an ulp of 1
  const a = Math.abs(x);
  if (a < 5.551115123125783e-17) return x; // 2^−54, and ±0 keeps its sign
  // Up to 0.7 directly (to x^17, the rest below 4·10⁻¹⁹): beyond ln2/2 the reduced form below
  // would double the error of e^r − 1 in 2·(e^r − 1) + 1.
  if (a <= 0.7) return expm1Series(x, 17);
  const n = Math.round(x * Math.LOG2E);
  const r = (x - n * LN2_HI) - n * LN2_LO;
  const e = expm1Small(r);
  // e^x − 1 = 2^n·(e + 1) − 1 = 2^n·e + (2^n − 1); 2^n − 1 is exact up to n = 53.
  if (n > 1000) return scale(1 + e, n);
  const p = pow2(n);
  return p * e + (p - 1);
}

// ---- log and log1p ---------------------------------------------------------------------------

/**
 * k·ln2 + log(1 + f) + c for |f| ≤ √2 − 1 (f exact): with s = f / (2 + f), log(1 + f) = 2·atanh(s)
 * = 2s + s·R(s²), and 2s = f − s·f, so log(1 + f) = f − s·(f − R): f exact, the rest small.
 */
function logCore(k: number, f: number, c: number): number {
  const s = f / (2 + f);
  const z = s * s;
  // R = 2z/3 + 2z²/5 + … + 2z¹¹/23, z ≤ 0.0295 (the rest below 10⁻¹⁸ of the value).
  let R = 2 / 23;
  R = 2 / 21 + z * R;
  R = 2 / 19 + z * R;
  R = 2 / 17 + z * R;
  R = 2 / 15 + z * R;
  R = 2 / 13 + z * R;
  R = 2 / 11 + z * R;
  R = 2 / 9 + z * R;
  R = 2 / 7 + z * R;
  R = 2 / 5 + z * R;
  R = z * (2 / 3 + z * R);
  return k * LN2_HI + (f - (s * (f - R) - (k * LN2_LO + c)));
}

/** x = 2^k·m with m ∈ (√2/2, √2], for a positive finite x; returns k and leaves m in BITS_F[0]. */
function split(x: number): number {
  let k = 0;
  if (x < 2.2250738585072014e-308) { // subnormal: make it normal first
    x *= 18014398509481984; // 2^54
    k = -54;
  }
  BITS_F[0] = x;
  const hi = BITS_W[HI]!;
  k += (hi >>> 20) - 1023;
  BITS_W[HI] = (hi & 0x000fffff) | 0x3ff00000; // m ∈ [1, 2)
  if (BITS_F[0] > Math.SQRT2) {
    BITS_F[0] = BITS_F[0] * 0.5;
    k++;
  }
  return k;
}

/** The natural logarithm: −∞ at ±0, NaN below 0. */
export function log(x: number): number {
  if (!(x > 0)) return x === 0 ? -Infinity : NaN;
  if (x === Infinity) return x;
  const k = split(x);
  return logCore(k, BITS_F[0]! - 1, 0); // m − 1 is exact for m ∈ [1/2, 2]
}

/** log(1 + x), accurate near 0. */
export function log1p(x: number): number {
  if (!(x >= -1)) return NaN;
  if (x === -1) return -Infinity;
  if (x === Infinity) return x;
  if (Math.abs(x) < 5.551115123125783e-17) return x; // 2^−54, and ±0 keeps its sign
  if (x > -0.2928932188134524 && x <= 0.41421356237309515) return logCore(0, x, 0); // 1 + x ∈ (√2/2, √2]
  const u = 1 + x;
  const k = split(u);
  // 1 + x = u + d exactly, d the rounding of u; log(u + d) = log(u) + d/u to far below an ulp.
  const d = x >= 1 ? 1 - (u - x) : x - (u - 1);
  return logCore(k, BITS_F[0]! - 1, k < 54 ? d / u : 0);
}

// ---- the hyperbolic and logistic functions ---------------------------------------------------

/** tanh(x), odd in x: −t / (t + 2) with t = e^−2|x| − 1 below 1, 1 − 2 / (e^2|x| + 1) from 1 on. */
export function tanh(x: number): number {
  const a = Math.abs(x);
  if (!(a >= 3.725290298461914e-9)) return x; // 2^−28: tanh x = x − x³/3 rounds to x; NaN stays NaN
  if (a > 22) return x > 0 ? 1 : -1; // 1 − tanh 22 is below half an ulp of 1
  let y: number;
  if (a < 1) {
    const t = expm1(-2 * a);
    y = -t / (t + 2);
  } else {
    y = 1 - 2 / (exp(2 * a) + 1);
  }
  return x > 0 ? y : -y;
}

/** σ(x) = 1 / (1 + e^−x), split by sign so that the exponential never overflows. */
export function sigmoid(x: number): number {
  if (x >= 0) return 1 / (1 + exp(-x));
  const e = exp(x);
  return e / (1 + e);
}

/** log(1 + e^x) without overflow for large x or loss of precision for very negative x. */
export function softplus(x: number): number {
  return Math.max(x, 0) + log1p(exp(-Math.abs(x)));
}

// ---- sin and cos -----------------------------------------------------------------------------

// The remainder of a reduction x = n·π/2 + r, as r + rLo with |rLo| ≤ an ulp of r: the kernels
// add rLo's first-order effect, which halves their error.
let quadrant = 0;
let rLo = 0;

/** sin(r + rLo) for |r| ≤ π/4 + ε: Taylor to r^19 (the rest below 10⁻¹⁹ of the value). */
function sinSmall(r: number): number {
  const z = r * r;
  let q = -1 / 121645100408832000; // −1/19!
  q = 1 / 355687428096000 + z * q;
  q = -1 / 1307674368000 + z * q;
  q = 1 / 6227020800 + z * q;
  q = -1 / 39916800 + z * q;
  q = 1 / 362880 + z * q;
  q = -1 / 5040 + z * q;
  q = 1 / 120 + z * q;
  q = -1 / 6 + z * q;
  return r + (r * z * q + rLo * (1 - 0.5 * z));
}

/** cos(r + rLo) for |r| ≤ π/4 + ε: Taylor to r^20 (the rest below 10⁻¹⁹). */
function cosSmall(r: number): number {
  const z = r * r;
  let q = 1 / 2432902008176640000; // 1/20!
  q = -1 / 6402373705728000 + z * q;
  q = 1 / 20922789888000 + z * q;
  q = -1 / 87178291200 + z * q;
  q = 1 / 479001600 + z * q;
  q = -1 / 3628800 + z * q;
  q = 1 / 40320 + z * q;
  q = -1 / 720 + z * q;
  q = 1 / 24 + z * q;
  return 1 - (0.5 * z - (z * z * q - rLo * r));
}

/** π/2 · 2^PREC and 2/π · 2^PREC as integers: enough bits to reduce any double exactly. */
const PREC = 1216;
interface Trig { pio2: bigint; twoOverPi: bigint; p1: number; p2: number; p3: number }
let trig: Trig | null = null;

/** atan(1/k) · 2^bits, each term truncated, by its alternating series. */
function atanInv(k: bigint, bits: bigint): bigint {
  const k2 = k * k;
  let term = (1n << bits) / k;
  let sum = term;
  for (let j = 1n; term !== 0n; j++) {
    term /= k2;
    sum += (j % 2n === 1n ? -term : term) / (2n * j + 1n);
  }
  return sum;
}

/** π by Machin's formula π/4 = 4·atan(1/5) − atan(1/239), once, on first use (about a millisecond). */
function trigConstants(): Trig {
  if (trig) return trig;
  const guard = 64n, bits = BigInt(PREC) + guard;
  const pi = (16n * atanInv(5n, bits) - 4n * atanInv(239n, bits)) >> guard; // π · 2^PREC
  const pio2 = pi >> 1n;
  const twoOverPi = (1n << BigInt(2 * PREC + 1)) / pi;
  // π/2 = p1 + p2 + p3 + …, p1 and p2 of 33 and 32 bits: n·p1 and n·p2 are exact for n < 2^20.
  const top = (b: number): bigint => pio2 >> BigInt(PREC - b);
  const p1 = Number(top(32)) * pow2(-32);
  const p2 = Number(top(64) - (top(32) << 32n)) * pow2(-64);
  const p3 = Number(top(160) - (top(64) << 96n)) * pow2(-160);
  trig = { pio2, twoOverPi, p1, p2, p3 };
  return trig;
}

/** The rounding error of s = fl(a + b), exactly (Knuth's TwoSum: no condition on a and b). */
function twoSumError(a: number, b: number, s: number): number {
  const bb = s - a;
  return (a - (s - bb)) + (b - bb);
}

/**
 * r = |x| − n·π/2 with |r| ≤ π/4 (a little over when x·2/π rounds), the rest in rLo and n mod 4 in
 * `quadrant`. Below 2^20, Cody–Waite: a − n·p1 and n·p2 are exact, the roundings of the two
 * subtractions go to rLo, and when r is not tiny nothing cancelled; tiny r and large x take the
 * exact reduction with integers.
 */
function reduce(a: number): number {
  if (a <= 0.7853981633974483) { // π/4
    quadrant = 0;
    rLo = 0;
    return a;
  }
  const t = trigConstants();
  if (a < 1048576) {
    const n = Math.round(a * (2 / Math.PI));
    const t1 = a - n * t.p1;
    const r1 = t1 - n * t.p2;
    if (Math.abs(r1) > 9.5367431640625e-7) { // 2^−20
      const e1 = twoSumError(t1, -n * t.p2, r1);
      const r = r1 - n * t.p3;
      rLo = twoSumError(r1, -n * t.p3, r) + e1;
      quadrant = n % 4;
      return r;
    }
  }
  return reduceExact(a, t);
}

/** The reduction with |x|'s integer mantissa times 2/π's bits: exact, for any finite double. */
function reduceExact(a: number, t: Trig): number {
  BITS_F[0] = a;
  const hi = BITS_W[HI]!, lo = BITS_W[1 - HI]!;
  const e = (hi >>> 20) & 0x7ff;
  // a = m · 2^q with m an integer below 2^53
  const m = BigInt((hi & 0x000fffff) + (e === 0 ? 0 : 0x00100000)) * 4294967296n + BigInt(lo);
  const q = (e === 0 ? 1 : e) - 1075;
  // a·2/π = m·twoOverPi · 2^(q − PREC): the integer part above bit `sh`, the fraction below.
  const sh = BigInt(PREC - q);
  const v = m * t.twoOverPi;
  let n = Number((v >> sh) & 3n);
  let frac = v & ((1n << sh) - 1n);
  if (frac >= 1n << (sh - 1n)) { // the nearest quadrant: the fraction in [−1/2, 1/2)
    frac -= 1n << sh;
    n = (n + 1) % 4;
  }
  quadrant = n;
  rLo = 0;
  if (frac === 0n) return 0;
  const neg = frac < 0n;
  // r = frac · π/2, to 120 bits, as hi + lo: |r| ≥ 2^−70 for any double, so the scale
  // 2^(drop − sh − PREC) ≈ r / 2^120 is a normal power of two.
  const prod = (neg ? -frac : frac) * t.pio2; // |r| · 2^(sh + PREC)
  const drop = BigInt(prod.toString(2).length - 120);
  const top = prod >> drop;
  const hiInt = Number(top);
  const s = pow2(Number(drop - sh) - PREC);
  const r = hiInt * s;
  rLo = Number(top - BigInt(hiInt)) * s;
  if (neg) rLo = -rLo;
  return neg ? -r : r;
}

/** sin x: odd, NaN at ±∞. */
export function sin(x: number): number {
  const a = Math.abs(x);
  if (!(a >= 3.725290298461914e-9)) return x; // 2^−28: sin x = x − x³/6 rounds to x; NaN stays NaN
  if (a === Infinity) return NaN;
  const r = reduce(a);
  const y = quadrant === 0 ? sinSmall(r) : quadrant === 1 ? cosSmall(r) : quadrant === 2 ? -sinSmall(r) : -cosSmall(r);
  return x < 0 ? -y : y;
}

/** cos x: even, NaN at ±∞. */
export function cos(x: number): number {
  const a = Math.abs(x);
  if (!(a >= 3.725290298461914e-9)) return a === a ? 1 : a; // 2^−28: cos x = 1 − x²/2 rounds to 1
  if (a === Infinity) return NaN;
  const r = reduce(a);
  return quadrant === 0 ? cosSmall(r) : quadrant === 1 ? -sinSmall(r) : quadrant === 2 ? -cosSmall(r) : sinSmall(r);
}
