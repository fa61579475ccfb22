// arpix's elementary functions in double precision, operation for operation as
// src/backends/ts/portable-math.ts computes them (same reductions, series, constants and order),
// so a float32 kernel built on them stores the same bits as the ts reference: JavaScript's
// numbers are IEEE doubles, and so are WebAssembly's f64 operations.

#include "arpix.h"

double INV_FACT[21];

// ln 2 = LN2_HI + LN2_LO, LN2_HI with 40 significant bits (n·LN2_HI exact for |n| < 2^13).
static const double LN2_HI = 762123384785.0 / 1099511627776.0;
static const double LN2_LO = 7.371002565167799e-13;
static const double LOG2E = 1.4426950408889634;  // Math.LOG2E
static const double SQRT2 = 1.4142135623730951;  // Math.SQRT2
static const double PI = 3.141592653589793;      // Math.PI

/** 1/k! by the ts reference's own loop (the same roundings: 19! and 20! are not exact). */
EXPORT(arpix_math_init) void arpix_math_init(void) {
  double f = 1;
  for (int k = 0; k <= 20; k++) {
    if (k > 0) f *= k;
    INV_FACT[k] = 1 / f;
  }
}

static inline uint64_t bits_of(double x) { uint64_t u; __builtin_memcpy(&u, &x, 8); return u; }
static inline double of_bits(uint64_t u) { double x; __builtin_memcpy(&x, &u, 8); return x; }

/** 2^n for a normal exponent n (−1022 … 1023), exactly. */
static inline double pow2(int n) { return of_bits((uint64_t)(n + 1023) << 52); }

/** y·2^n with one rounding, for n in −1076 … 1024 (the reference's scale()). */
static double scale(double y, int n) {
  if (n > 1023) return y * pow2(1023) * pow2(n - 1023);
  if (n < -1022) return y * pow2(n + 64) * pow2(-64);
  return y * pow2(n);
}

/** JavaScript's Math.round: the nearest integer, halves toward +∞. */
static inline double js_round(double v) {
  double f = pm_floor(v);
  return v - f >= 0.5 ? f + 1 : f;
}

static double expm1_series(double r, int degree) {
  double q = INV_FACT[degree];
  for (int k = degree - 1; k >= 2; k--) q = INV_FACT[k] + r * q;
  return r + r * r * q;
}

double pm_exp(double x) {
  if (x != x) return x;
  if (x > 709.8) return __builtin_inf();
  if (x < -745.2) return 0;
  if (pm_fabs(x) < 1.1102230246251565e-16) return 1 + x;
  double n = js_round(x * LOG2E);
  double r = (x - n * LN2_HI) - n * LN2_LO;
  return scale(1 + expm1_series(r, 14), (int)n);
}

double pm_expm1(double x) {
  if (x != x) return x;
  if (x > 709.8) return __builtin_inf();
  if (x < -38) return -1;
  double a = pm_fabs(x);
  if (a < 5.551115123125783e-17) return x;
  if (a <= 0.7) return expm1_series(x, 17);
  double n = js_round(x * LOG2E);
  double r = (x - n * LN2_HI) - n * LN2_LO;
  double e = expm1_series(r, 14);
  if (n > 1000) return scale(1 + e, (int)n);
  double p = pow2((int)n);
  return p * e + (p - 1);
}

static double log_core(double k, double f, double c) {
  double s = f / (2 + f);
  double z = s * s;
  double R = 2.0 / 23;
  R = 2.0 / 21 + z * R;
  R = 2.0 / 19 + z * R;
  R = 2.0 / 17 + z * R;
  R = 2.0 / 15 + z * R;
  R = 2.0 / 13 + z * R;
  R = 2.0 / 11 + z * R;
  R = 2.0 / 9 + z * R;
  R = 2.0 / 7 + z * R;
  R = 2.0 / 5 + z * R;
  R = z * (2.0 / 3 + z * R);
  return k * LN2_HI + (f - (s * (f - R) - (k * LN2_LO + c)));
}

/** x = 2^k·m with m ∈ (√2/2, √2] for a positive finite x: returns k, m in *m. */
static int split(double x, double *m) {
  int k = 0;
  if (x < 2.2250738585072014e-308) {
    x *= 18014398509481984.0;  // 2^54
    k = -54;
  }
  uint64_t u = bits_of(x);
  uint32_t hi = (uint32_t)(u >> 32);
  k += (int)(hi >> 20) - 1023;
  hi = (hi & 0x000fffffu) | 0x3ff00000u;
  double v = of_bits(((uint64_t)hi << 32) | (u & 0xffffffffu));
  if (v > SQRT2) {
    v = v * 0.5;
    k++;
  }
  *m = v;
  return k;
}

double pm_log(double x) {
  if (!(x > 0)) return x == 0 ? -__builtin_inf() : __builtin_nan("");
  if (x == __builtin_inf()) return x;
  double m;
  int k = split(x, &m);
  return log_core(k, m - 1, 0);
}

double pm_log1p(double x) {
  if (!(x >= -1)) return __builtin_nan("");
  if (x == -1) return -__builtin_inf();
  if (x == __builtin_inf()) return x;
  if (pm_fabs(x) < 5.551115123125783e-17) return x;
  if (x > -0.2928932188134524 && x <= 0.41421356237309515) return log_core(0, x, 0);
  double u = 1 + x;
  double m;
  int k = split(u, &m);
  double d = x >= 1 ? 1 - (u - x) : x - (u - 1);
  return log_core(k, m - 1, k < 54 ? d / u : 0);
}

double pm_tanh(double x) {
  double a = pm_fabs(x);
  if (!(a >= 3.725290298461914e-9)) return x;
  if (a > 22) return x > 0 ? 1 : -1;
  double y;
  if (a < 1) {
    double t = pm_expm1(-2 * a);
    y = -t / (t + 2);
  } else {
    y = 1 - 2 / (pm_exp(2 * a) + 1);
  }
  return x > 0 ? y : -y;
}

double pm_sigmoid(double x) {
  if (x >= 0) return 1 / (1 + pm_exp(-x));
  double e = pm_exp(x);
  return e / (1 + e);
}

double pm_softplus(double x) {
  return js_max(x, 0) + pm_log1p(pm_exp(-pm_fabs(x)));
}

/** The reference's erf (src/backends/ts/transformer.ts): Maclaurin below 3, erfc's continued fraction above. */
double pm_erf(double x) {
  double a = pm_fabs(x);
  if (a < 3) {
    double term = x, sum = x;
    for (int n = 1; n < 60; n++) {
      term *= (-x * x) / n;
      double t = term / (2 * n + 1);
      sum += t;
      if (pm_fabs(t) < 1e-17 * pm_fabs(sum)) break;
    }
    return (2 / pm_sqrt(PI)) * sum;
  }
  double f = a;
  for (int k = 60; k >= 1; k--) f = a + (double)k / 2 / f;
  double erfc = pm_exp(-a * a) / pm_sqrt(PI) / f;
  double sign = x > 0 ? 1 : x < 0 ? -1 : x;
  return sign * (1 - erfc);
}

// ---- the two memory functions clang may call ----

void *memcpy(void *dst, const void *src, unsigned long n) {
  unsigned char *d = dst;
  const unsigned char *s = src;
  while (n--) *d++ = *s++;
  return dst;
}

void *memset(void *dst, int c, unsigned long n) {
  unsigned char *d = dst;
  while (n--) *d++ = (unsigned char)c;
  return dst;
}
