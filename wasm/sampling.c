// The samplers' categorical draw (the categoricalDraw kernel): src/backends/ts/sampling.ts
// operation for operation in double precision — the same max scan, the same drawExp, the weights
// summed left to right, the same inverse-CDF scan — so it returns the reference's index for every
// row. The exponentials run two at a time in f64x2 lanes (each lane the scalar's operations);
// everything that is summed or compared in order stays scalar.

#include "arpix.h"
#include "vmath.h"

static const double DRAW_LOG2E = 1.4426950408889634;       // Math.LOG2E
static const double DRAW_LN2_HI = 0.6931471803691238;      // drawExp's two parts of ln 2
static const double DRAW_LN2_LO = 1.9082149292705877e-10;

static inline double draw_of_bits(uint64_t u) { double x; __builtin_memcpy(&x, &u, 8); return x; }

/** 2^n for an integer n in −1075 … 0, exactly as the reference's table holds it (2^−1075 rounds to 0). */
static inline double draw_pow2(int n) {
  if (n >= -1022) return draw_of_bits((uint64_t)(n + 1023) << 52);
  if (n >= -1074) return draw_of_bits((uint64_t)1 << (n + 1074));
  return 0;
}

/** drawExp's polynomial of r: 1 + r(1 + r(1/2 + … + r(1/40320 + r/362880))), in its order. */
static inline double draw_poly(double r) {
  return 1 + r * (1 + r * (1.0 / 2 + r * (1.0 / 6 + r * (1.0 / 24 + r * (1.0 / 120 + r * (1.0 / 720 + r * (1.0 / 5040 + r * (1.0 / 40320 + r / 362880))))))));
}

/**
 * The reference's drawExp. Its table lookup POW2[n + 1075] is undefined (so the result NaN) for a
 * NaN argument and for n > 0, which a sampler never asks for; those are NaN here too.
 */
static double draw_exp(double x) {
  if (x < -745) return 0;
  double v = x * DRAW_LOG2E;
  double f = __builtin_floor(v);
  double n = v - f >= 0.5 ? f + 1 : f;  // Math.round: halves toward +∞
  if (!(n <= 0)) return __builtin_nan("");
  double r = (x - n * DRAW_LN2_HI) - n * DRAW_LN2_LO;
  return draw_poly(r) * draw_pow2((int)n);
}

/** draw_exp of two lanes: the vector path where both exponents are normal, else each lane scalar. */
static inline v128_t draw_exp2(v128_t x) {
  v128_t n = js_round2(wasm_f64x2_mul(x, D2(DRAW_LOG2E)));
  // x ≥ −745 and −1022 ≤ n ≤ 0 (false for NaN) in both lanes: 2^n is a normal double.
  v128_t ok = wasm_v128_and(wasm_f64x2_ge(x, D2(-745)), wasm_v128_and(wasm_f64x2_ge(n, D2(-1022)), wasm_f64x2_le(n, D2(0))));
  if (!wasm_i64x2_all_true(ok)) {
    return wasm_f64x2_make(draw_exp(wasm_f64x2_extract_lane(x, 0)), draw_exp(wasm_f64x2_extract_lane(x, 1)));
  }
  v128_t r = wasm_f64x2_sub(wasm_f64x2_sub(x, wasm_f64x2_mul(n, D2(DRAW_LN2_HI))), wasm_f64x2_mul(n, D2(DRAW_LN2_LO)));
  v128_t p = wasm_f64x2_add(D2(1.0 / 40320), wasm_f64x2_div(r, D2(362880)));
  p = wasm_f64x2_add(D2(1.0 / 5040), wasm_f64x2_mul(r, p));
  p = wasm_f64x2_add(D2(1.0 / 720), wasm_f64x2_mul(r, p));
  p = wasm_f64x2_add(D2(1.0 / 120), wasm_f64x2_mul(r, p));
  p = wasm_f64x2_add(D2(1.0 / 24), wasm_f64x2_mul(r, p));
  p = wasm_f64x2_add(D2(1.0 / 6), wasm_f64x2_mul(r, p));
  p = wasm_f64x2_add(D2(1.0 / 2), wasm_f64x2_mul(r, p));
  p = wasm_f64x2_add(D2(1), wasm_f64x2_mul(r, p));
  p = wasm_f64x2_add(D2(1), wasm_f64x2_mul(r, p));
  return wasm_f64x2_mul(p, pow2_2(n));
}

/**
 * For each of `rows` rows of logits (p floats apart): the index drawn from softmax(logits[at …
 * at + levels) / temperature) at the uniform u[j] → out[j]. w: scratch for `levels` doubles.
 */
EXPORT(categorical_draw_f32) void categorical_draw_f32(const float *logits, const float *u, int32_t *out, int rows, int p, int at, int levels, double temperature, double *w) {
  const int plain = temperature == 1;
  const v128_t t2 = D2(temperature);
  for (int j = 0; j < rows; j++) {
    const float *x = logits + (long)j * p + at;
    double mx = -__builtin_inf();
    for (int k = 0; k < levels; k++) {
      double v = plain ? (double)x[k] : (double)x[k] / temperature;
      if (v > mx) mx = v;
    }
    // The weights two at a time; their sum left to right as they come (its adds overlap the next pair's exponentials).
    const v128_t m2 = D2(mx);
    double total = 0;
    int k = 0;
    for (; k + 2 <= levels; k += 2) {
      v128_t v = wasm_f64x2_promote_low_f32x4(wasm_v128_load64_zero(x + k));
      if (!plain) v = wasm_f64x2_div(v, t2);
      v128_t e = draw_exp2(wasm_f64x2_sub(v, m2));
      wasm_v128_store(w + k, e);
      total += wasm_f64x2_extract_lane(e, 0);
      total += wasm_f64x2_extract_lane(e, 1);
    }
    for (; k < levels; k++) total += w[k] = draw_exp((plain ? (double)x[k] : (double)x[k] / temperature) - mx);
    double pick = (double)u[j] * total;
    k = 0;
    while (k < levels - 1 && pick >= w[k]) pick -= w[k++];
    out[j] = k;
  }
}

/**
 * out[i] = drawExp(x[i]) through the kernel's own paths (pairs, then a scalar remainder): the
 * tests compare its bits with the reference's. Not called by the backend.
 */
EXPORT(draw_exp_f64) void draw_exp_f64(const double *x, double *out, int n) {
  int i = 0;
  for (; i + 2 <= n; i += 2) wasm_v128_store(out + i, draw_exp2(wasm_v128_load(x + i)));
  for (; i < n; i++) out[i] = draw_exp(x[i]);
}
