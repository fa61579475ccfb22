// Four floats at a time in float32 (f32x4), for the fused activations of sampling's hot paths
// (gate, gated residual, concat_elu, GELU, the LSTM cell): within about two ulp of the true
// values — not the ts reference's exact bits, which math.c's double-precision functions give at
// several times the cost. No fused multiply-adds, so still the same bits on every machine.

#ifndef ARPIX_FMATH_H
#define ARPIX_FMATH_H

#include "arpix.h"

#define F4(v) wasm_f32x4_splat(v)

/**
 * e^x = 2^n·e^r, n = round(x·log2 e), r = x − n·ln 2 in two parts (n·LN2_HI exact), e^r by its
 * Taylor series to r^7 (the rest below 10⁻⁸ of the value for |r| ≤ ln2/2); 2^n in two factors so
 * that subnormal results come out right; 0 below −103.9 and ∞ above 88.8; NaN stays NaN.
 */
static inline v128_t expf4(v128_t x) {
  const v128_t hi_lim = F4(88.8f), lo_lim = F4(-103.9f);
  v128_t xc = wasm_f32x4_pmax(wasm_f32x4_pmin(x, hi_lim), lo_lim);
  v128_t n = wasm_f32x4_nearest(wasm_f32x4_mul(xc, F4(1.44269504088896341f)));
  v128_t r = wasm_f32x4_sub(wasm_f32x4_sub(xc, wasm_f32x4_mul(n, F4(0.693359375f))), wasm_f32x4_mul(n, F4(-2.12194440e-4f)));
  v128_t p = F4(1.0f / 5040);
  p = wasm_f32x4_add(F4(1.0f / 720), wasm_f32x4_mul(r, p));
  p = wasm_f32x4_add(F4(1.0f / 120), wasm_f32x4_mul(r, p));
  p = wasm_f32x4_add(F4(1.0f / 24), wasm_f32x4_mul(r, p));
  p = wasm_f32x4_add(F4(1.0f / 6), wasm_f32x4_mul(r, p));
  p = wasm_f32x4_add(F4(0.5f), wasm_f32x4_mul(r, p));
  p = wasm_f32x4_add(F4(1.0f), wasm_f32x4_add(r, wasm_f32x4_mul(wasm_f32x4_mul(r, r), p)));
  v128_t ni = wasm_i32x4_trunc_sat_f32x4(n);
  v128_t n1 = wasm_i32x4_shr(ni, 1), n2 = wasm_i32x4_sub(ni, n1);
  v128_t s1 = wasm_i32x4_shl(wasm_i32x4_add(n1, wasm_i32x4_splat(127)), 23);
  v128_t s2 = wasm_i32x4_shl(wasm_i32x4_add(n2, wasm_i32x4_splat(127)), 23);
  v128_t y = wasm_f32x4_mul(wasm_f32x4_mul(p, s1), s2);
  y = wasm_v128_bitselect(F4(0.0f), y, wasm_f32x4_lt(x, lo_lim));
  y = wasm_v128_bitselect(F4(__builtin_inff()), y, wasm_f32x4_gt(x, hi_lim));
  return wasm_v128_bitselect(x, y, wasm_f32x4_ne(x, x));
}

/**
 * e^y − 1: y = n·ln 2 + r (|r| ≤ ln2/2, ln 2 in two parts so n·LN2_HI is exact), e^r − 1 by its
 * Taylor series to r^7 with the leading r added last (relative error below 2·10⁻⁸ there), then
 * 2^n·(e^r − 1) + (2^n − 1), exact scaling and one rounding. y is clamped to [−80, 88.7] (the
 * results there are −1 and ∞ in float32 anyway); NaN stays NaN.
 */
static inline v128_t expm1f4(v128_t y) {
  v128_t yc = wasm_f32x4_pmax(wasm_f32x4_pmin(y, F4(88.7f)), F4(-80.0f));
  v128_t n = wasm_f32x4_nearest(wasm_f32x4_mul(yc, F4(1.44269504088896341f)));
  v128_t r = wasm_f32x4_sub(wasm_f32x4_sub(yc, wasm_f32x4_mul(n, F4(0.693359375f))), wasm_f32x4_mul(n, F4(-2.12194440e-4f)));
  v128_t q = F4(1.0f / 5040);
  q = wasm_f32x4_add(F4(1.0f / 720), wasm_f32x4_mul(r, q));
  q = wasm_f32x4_add(F4(1.0f / 120), wasm_f32x4_mul(r, q));
  q = wasm_f32x4_add(F4(1.0f / 24), wasm_f32x4_mul(r, q));
  q = wasm_f32x4_add(F4(1.0f / 6), wasm_f32x4_mul(r, q));
  q = wasm_f32x4_add(F4(0.5f), wasm_f32x4_mul(r, q));
  v128_t e = wasm_f32x4_add(r, wasm_f32x4_mul(wasm_f32x4_mul(r, r), q));
  // 2^n for n in −116 … 128 in two halves (2^128 overflows to ∞, as e^88.7 − 1 nearly does).
  v128_t ni = wasm_i32x4_trunc_sat_f32x4(n);
  v128_t n1 = wasm_i32x4_shr(ni, 1), n2 = wasm_i32x4_sub(ni, n1);
  v128_t p1 = wasm_i32x4_shl(wasm_i32x4_add(n1, wasm_i32x4_splat(127)), 23);
  v128_t p2 = wasm_i32x4_shl(wasm_i32x4_add(n2, wasm_i32x4_splat(127)), 23);
  v128_t p = wasm_f32x4_mul(p1, p2);
  v128_t out = wasm_f32x4_add(wasm_f32x4_mul(p, e), wasm_f32x4_sub(p, F4(1)));
  return wasm_v128_bitselect(y, out, wasm_f32x4_ne(y, y));
}

/** σ(x) = 1/(1 + e^−x) for x ≥ 0, e^x/(1 + e^x) below: e^−|x| never overflows. */
static inline v128_t sigmoidf4(v128_t x) {
  v128_t e = expf4(wasm_f32x4_neg(wasm_f32x4_abs(x)));
  v128_t d = wasm_f32x4_add(F4(1), e);
  v128_t pos = wasm_f32x4_div(F4(1), d), neg = wasm_f32x4_div(e, d);
  return wasm_v128_bitselect(pos, neg, wasm_f32x4_ge(x, F4(0)));
}

/** tanh x = −t/(t + 2) with t = e^−2|x| − 1 (no cancellation near 0), odd in x; ±1 beyond |x| = 10. */
static inline v128_t tanhf4(v128_t x) {
  v128_t a = wasm_f32x4_pmin(wasm_f32x4_abs(x), F4(10.0f));
  v128_t t = expm1f4(wasm_f32x4_mul(F4(-2.0f), a));
  v128_t y = wasm_f32x4_div(wasm_f32x4_neg(t), wasm_f32x4_add(t, F4(2.0f)));
  // the sign of x (and NaN through, since |NaN| fails every comparison)
  y = wasm_v128_or(y, wasm_v128_and(x, wasm_i32x4_splat((int)0x80000000)));
  return wasm_v128_bitselect(x, y, wasm_f32x4_ne(x, x));
}

static inline v128_t eluf4(v128_t x) {
  return wasm_v128_bitselect(x, expm1f4(x), wasm_f32x4_gt(x, F4(0)));
}

#endif
