// Two doubles at a time (f64x2), lane for lane the same operations as math.c's scalar functions —
// so the same bits as the ts reference — with the scalar code's branches turned into selects:
// every lane computes each path its range may take, and keeps the one its branch would. Paths
// no lane needs are skipped.

#ifndef ARPIX_VMATH_H
#define ARPIX_VMATH_H

#include "arpix.h"

extern double INV_FACT[21];

#define D2(v) wasm_f64x2_splat(v)

/** mask ? a : b, lane by lane. */
static inline v128_t sel(v128_t mask, v128_t a, v128_t b) { return wasm_v128_bitselect(a, b, mask); }

static inline v128_t js_round2(v128_t v) {
  v128_t f = wasm_f64x2_floor(v);
  return sel(wasm_f64x2_ge(wasm_f64x2_sub(v, f), D2(0.5)), wasm_f64x2_add(f, D2(1)), f);
}

/** 2^e for integral e in the normal exponent range. */
static inline v128_t pow2_2(v128_t e) {
  v128_t i = wasm_i64x2_extend_low_i32x4(wasm_i32x4_trunc_sat_f64x2_zero(e));
  return wasm_i64x2_shl(wasm_i64x2_add(i, wasm_i64x2_splat(1023)), 52);
}

/** math.c's scale(y, n): y·2^n in two factors beyond the normal range (the second is 1 within it). */
static inline v128_t scale2(v128_t y, v128_t n) {
  v128_t above = wasm_f64x2_gt(n, D2(1023)), below = wasm_f64x2_lt(n, D2(-1022));
  v128_t e1 = sel(above, D2(1023), sel(below, wasm_f64x2_add(n, D2(64)), n));
  v128_t e2 = sel(above, wasm_f64x2_sub(n, D2(1023)), sel(below, D2(-64), D2(0)));
  return wasm_f64x2_mul(wasm_f64x2_mul(y, pow2_2(e1)), pow2_2(e2));
}

static inline v128_t series2(v128_t r, int degree) {
  v128_t q = D2(INV_FACT[degree]);
  for (int k = degree - 1; k >= 2; k--) q = wasm_f64x2_add(D2(INV_FACT[k]), wasm_f64x2_mul(r, q));
  return wasm_f64x2_add(r, wasm_f64x2_mul(wasm_f64x2_mul(r, r), q));
}

/** n = round(x·log2 e) and r = x − n·ln 2 (two parts), as math.c reduces. */
static inline v128_t reduce2(v128_t x, v128_t *r) {
  v128_t n = js_round2(wasm_f64x2_mul(x, D2(1.4426950408889634)));
  *r = wasm_f64x2_sub(wasm_f64x2_sub(x, wasm_f64x2_mul(n, D2(762123384785.0 / 1099511627776.0))), wasm_f64x2_mul(n, D2(7.371002565167799e-13)));
  return n;
}

static inline v128_t exp2d(v128_t x) {
  v128_t r;
  v128_t n = reduce2(x, &r);
  v128_t y = scale2(wasm_f64x2_add(D2(1), series2(r, 14)), n);
  y = sel(wasm_f64x2_lt(wasm_f64x2_abs(x), D2(1.1102230246251565e-16)), wasm_f64x2_add(D2(1), x), y);
  y = sel(wasm_f64x2_lt(x, D2(-745.2)), D2(0), y);
  y = sel(wasm_f64x2_gt(x, D2(709.8)), D2(__builtin_inf()), y);
  return sel(wasm_f64x2_ne(x, x), x, y);
}

static inline v128_t expm1_2d(v128_t x) {
  v128_t a = wasm_f64x2_abs(x);
  v128_t near = wasm_f64x2_le(a, D2(0.7));
  v128_t y = D2(0);
  if (wasm_v128_any_true(near)) y = series2(x, 17);
  if (!wasm_i64x2_all_true(near)) {
    v128_t r;
    v128_t n = reduce2(x, &r);
    v128_t e = series2(r, 14);
    v128_t p = pow2_2(sel(wasm_f64x2_gt(n, D2(1000)), D2(0), n));
    v128_t far = wasm_f64x2_add(wasm_f64x2_mul(p, e), wasm_f64x2_sub(p, D2(1)));
    far = sel(wasm_f64x2_gt(n, D2(1000)), scale2(wasm_f64x2_add(D2(1), e), n), far);
    y = sel(near, y, far);
  }
  y = sel(wasm_f64x2_lt(a, D2(5.551115123125783e-17)), x, y);
  y = sel(wasm_f64x2_lt(x, D2(-38)), D2(-1), y);
  y = sel(wasm_f64x2_gt(x, D2(709.8)), D2(__builtin_inf()), y);
  return sel(wasm_f64x2_ne(x, x), x, y);
}

static inline v128_t tanh2d(v128_t x) {
  v128_t a = wasm_f64x2_abs(x);
  v128_t lo = wasm_f64x2_lt(a, D2(1));
  v128_t y = D2(0);
  if (wasm_v128_any_true(lo)) {
    v128_t t = expm1_2d(wasm_f64x2_mul(D2(-2), a));
    y = wasm_f64x2_div(wasm_f64x2_neg(t), wasm_f64x2_add(t, D2(2)));
  }
  if (!wasm_i64x2_all_true(lo)) {
    v128_t hi = wasm_f64x2_sub(D2(1), wasm_f64x2_div(D2(2), wasm_f64x2_add(exp2d(wasm_f64x2_mul(D2(2), a)), D2(1))));
    y = sel(lo, y, hi);
  }
  v128_t pos = wasm_f64x2_gt(x, D2(0));
  y = sel(pos, y, wasm_f64x2_neg(y));
  y = sel(wasm_f64x2_gt(a, D2(22)), sel(pos, D2(1), D2(-1)), y);
  return sel(wasm_f64x2_ge(a, D2(3.725290298461914e-9)), y, x);
}

/** σ(x): both of math.c's branches take e^−|x|. */
static inline v128_t sigmoid2d(v128_t x) {
  v128_t e = exp2d(wasm_f64x2_neg(wasm_f64x2_abs(x)));
  v128_t d = wasm_f64x2_add(D2(1), e);
  return sel(wasm_f64x2_ge(x, D2(0)), wasm_f64x2_div(D2(1), d), wasm_f64x2_div(e, d));
}

static inline v128_t elu2d(v128_t x) {
  return sel(wasm_f64x2_gt(x, D2(0)), x, expm1_2d(x));
}

// Four floats as two f64x2 and back.
static inline v128_t lo2d(v128_t f) { return wasm_f64x2_promote_low_f32x4(f); }
static inline v128_t hi2d(v128_t f) { return wasm_f64x2_promote_low_f32x4(wasm_i32x4_shuffle(f, f, 2, 3, 0, 1)); }
static inline v128_t to4f(v128_t lo, v128_t hi) {
  return wasm_i32x4_shuffle(wasm_f32x4_demote_f64x2_zero(lo), wasm_f32x4_demote_f64x2_zero(hi), 0, 1, 4, 5);
}

#endif
