// Branch-free float32 exp, sigmoid and tanh that the compiler vectorises inside `omp simd` loops
// (glibc's expf/tanhf are scalar calls without -ffast-math). Accurate to a couple of ulps, which
// is well inside the 1e-5 relative tolerance the native kernels are held to against the float64
// reference; the hazards (overflow, NaN, cancellation near 0) are handled explicitly.
#pragma once

#include <cmath>
#include <cstdint>
#include <limits>
#include <cstring>

namespace arpix {

inline float bitsToFloat(uint32_t b) {
  float f;
  std::memcpy(&f, &b, 4);
  return f;
}

/**
 * e^x. Cody–Waite reduction x = n·ln2 + r with |r| <= ln2/2, a degree-6 polynomial for e^r and
 * 2^n built in the exponent bits. Results below the normal range flush to 0 (e^-87.3); above
 * 88.72 the result is +inf; NaN stays NaN.
 */
inline float vexp(float x) {
  const float hi = 88.7228f, lo = -87.3365f;
  float c = x > hi ? hi : x;
  c = c < lo ? lo : c;
  // Round to nearest by adding and removing 1.5·2^23 (vectorises, unlike nearbyintf).
  const float n = (c * 1.44269504088896341f + 12582912.0f) - 12582912.0f;
  float r = c - n * 0.693359375f;
  r = r - n * -2.12194440e-4f;
  float p = 1.9875691500e-4f;
  p = p * r + 1.3981999507e-3f;
  p = p * r + 8.3334519073e-3f;
  p = p * r + 4.1665795894e-2f;
  p = p * r + 1.6666665459e-1f;
  p = p * r + 5.0000001201e-1f;
  p = p * r * r + r + 1.0f;
  // n is in [-126, 128]; split the scale in two so 2^128 (x just below the overflow bound) fits.
  const int32_t ni = int32_t(n);
  const int32_t n1 = ni >> 1, n2 = ni - n1;
  float v = p * bitsToFloat(uint32_t(n1 + 127) << 23) * bitsToFloat(uint32_t(n2 + 127) << 23);
  v = x > hi ? __builtin_inff() : v;
  v = x < lo ? 0.0f : v;
  return x != x ? x : v;
}

/**
 * e^x − 1: a Taylor polynomial below |x| = 0.25, where e^x − 1 would cancel (its error there is
 * under 1e-9 relative); e^x − 1 above, where the result is at least 0.22 in size.
 */
inline float vexpm1(float x) {
  float p = 1.0f / 5040.0f;
  p = p * x + 1.0f / 720.0f;
  p = p * x + 1.0f / 120.0f;
  p = p * x + 1.0f / 24.0f;
  p = p * x + 1.0f / 6.0f;
  p = p * x + 0.5f;
  const float small = x + x * x * p;
  const float big = vexp(x) - 1.0f;
  const float a = x < 0 ? -x : x;
  return a < 0.25f ? small : (x != x ? x : big);
}

/** 1 / (1 + e^-x), from e^-|x| so nothing overflows. */
inline float vsigmoid(float x) {
  const float e = vexp(x < 0 ? x : -x);
  const float s = 1.0f / (1.0f + e);
  return x >= 0 ? s : (x != x ? x : e * s);
}

/**
 * tanh: an odd polynomial below |x| = 0.625, where (1 − e^-2|x|)/(1 + e^-2|x|) would lose
 * relative precision to cancellation; that quotient above.
 */
inline float vtanh(float x) {
  const float a = x < 0 ? -x : x;
  const float e = vexp(-2.0f * a);
  float big = (1.0f - e) / (1.0f + e);
  big = x < 0 ? -big : big;
  const float z = x * x;
  float p = -5.70498872745e-3f;
  p = p * z + 2.06390887954e-2f;
  p = p * z - 5.37397155531e-2f;
  p = p * z + 1.33314422036e-1f;
  p = p * z - 3.33332819422e-1f;
  const float small = x + x * z * p;
  return a < 0.625f ? small : (x != x ? x : big);
}

/** One softmax row: its maximum and Σ exp(a − max) (in double, as the reference sums). */
struct ExpRow {
  float max;
  double sum;
  /** NaN anywhere, or a +∞ / all −∞ row: callers follow the reference's plain formula instead. */
  bool special;
};

/** Writes exp(a[i] − max) into e (unless the row is special) and returns the row's statistics. */
inline ExpRow expRow(const float* a, float* e, int64_t k) {
  float m = -std::numeric_limits<float>::infinity();
  int nan = 0;
  // Separate simple loops: each one vectorises (a fused exp-store-sum loop does not, here).
#pragma omp simd reduction(max : m) reduction(| : nan)
  for (int64_t i = 0; i < k; i++) {
    nan |= a[i] != a[i];
    m = a[i] > m ? a[i] : m;
  }
  if (nan || std::isinf(m)) return {nan ? std::numeric_limits<float>::quiet_NaN() : m, 0.0, true};
  for (int64_t i = 0; i < k; i++) e[i] = vexp(a[i] - m);
  double s = 0;
#pragma omp simd reduction(+ : s)
  for (int64_t i = 0; i < k; i++) s += double(e[i]);
  return {m, s, false};
}

}  // namespace arpix
