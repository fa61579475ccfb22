// Branch-free float32 exp, sigmoid and tanh that the compiler vectorises inside `omp simd` loops
// (glibc's expf/tanhf are scalar calls without -ffast-math). Accurate to a couple of ulps, which
// is well inside the 1e-5 relative tolerance the native kernels are held to against the float64
// reference; the hazards (overflow, NaN, cancellation near 0) are handled explicitly.
#pragma once

#include <cmath>
#include <cstdint>
#include <limits>
#include <cstring>
#if defined(__AVX512F__)
// GCC 12's AVX-512 intrinsics (rcp14, min/max, scalef, roundscale) start from an undefined
// register and trip -Wmaybe-uninitialized in every caller: ignored where this header is included.
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#include <immintrin.h>
#endif

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

#if defined(__AVX512F__)
// Sixteen lanes at once, for the gated activations (Gated PixelCNN's tanh(a)·σ(b) runs on every
// feature of every layer): the compiler's vectorisation of the scalar functions above divides
// with vdivps, whose throughput bounds those kernels; here 2^n comes from vscalefps and each
// quotient from one reciprocal estimate refined by a Newton step (≈1 ulp). Same reduction and
// polynomials as vexp / vtanh, so the results agree with them to a couple of ulps.

/** e^x, 16 lanes: vexp's reduction and polynomial; below −104 the result is 0 or denormal, above 88.72 +inf, NaN stays NaN. */
inline __m512 vexp16(__m512 x) {
  // max(lo, x) and min(hi, ·) return x when it is NaN (the second operand wins on NaN).
  x = _mm512_min_ps(_mm512_set1_ps(88.7228f), _mm512_max_ps(_mm512_set1_ps(-104.0f), x));
  const __m512 n = _mm512_roundscale_ps(_mm512_mul_ps(x, _mm512_set1_ps(1.44269504088896341f)), _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
  __m512 r = _mm512_fnmadd_ps(n, _mm512_set1_ps(0.693359375f), x);
  r = _mm512_fnmadd_ps(n, _mm512_set1_ps(-2.12194440e-4f), r);
  __m512 p = _mm512_set1_ps(1.9875691500e-4f);
  p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.3981999507e-3f));
  p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(8.3334519073e-3f));
  p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(4.1665795894e-2f));
  p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.6666665459e-1f));
  p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(5.0000001201e-1f));
  p = _mm512_fmadd_ps(_mm512_mul_ps(p, r), r, _mm512_add_ps(r, _mm512_set1_ps(1.0f)));
  return _mm512_scalef_ps(p, n);
}

/** 1 / d: the 14-bit estimate and one Newton step. */
inline __m512 vrecip16(__m512 d) {
  const __m512 r = _mm512_rcp14_ps(d);
  return _mm512_fmadd_ps(r, _mm512_fnmadd_ps(d, r, _mm512_set1_ps(1.0f)), r);
}

/** tanh(a) as a quotient num / den: vtanh's odd polynomial below |a| = 0.625 (den 1), else ±(1 − e^-2|a|) / (1 + e^-2|a|). */
struct Quotient16 {
  __m512 num, den;
};
inline Quotient16 vtanhQuotient16(__m512 a) {
  const __m512 one = _mm512_set1_ps(1.0f);
  const __m512 aa = _mm512_abs_ps(a);
  const __m512 e = vexp16(_mm512_mul_ps(_mm512_set1_ps(-2.0f), aa));
  const __m512 z = _mm512_mul_ps(a, a);
  __m512 p = _mm512_set1_ps(-5.70498872745e-3f);
  p = _mm512_fmadd_ps(p, z, _mm512_set1_ps(2.06390887954e-2f));
  p = _mm512_fmadd_ps(p, z, _mm512_set1_ps(-5.37397155531e-2f));
  p = _mm512_fmadd_ps(p, z, _mm512_set1_ps(1.33314422036e-1f));
  p = _mm512_fmadd_ps(p, z, _mm512_set1_ps(-3.33332819422e-1f));
  const __m512 small = _mm512_fmadd_ps(_mm512_mul_ps(a, z), p, a);
  const __mmask16 isSmall = _mm512_cmp_ps_mask(aa, _mm512_set1_ps(0.625f), _CMP_LT_OQ);
  const __m512i sign = _mm512_and_si512(_mm512_castps_si512(a), _mm512_set1_epi32(int32_t(0x80000000u)));
  const __m512 big = _mm512_castsi512_ps(_mm512_xor_si512(_mm512_castps_si512(_mm512_sub_ps(one, e)), sign));
  return {_mm512_mask_blend_ps(isSmall, big, small), _mm512_mask_blend_ps(isSmall, _mm512_add_ps(one, e), one)};
}

/** σ(b) = num / den and 1 − σ(b) = numComplement / den, from e^-|b| so nothing overflows or cancels. */
struct Sigmoid16 {
  __m512 num, numComplement, den;
};
inline Sigmoid16 vsigmoidQuotient16(__m512 b) {
  const __m512 one = _mm512_set1_ps(1.0f);
  const __m512 e = vexp16(_mm512_sub_ps(_mm512_setzero_ps(), _mm512_abs_ps(b)));
  const __mmask16 neg = _mm512_cmp_ps_mask(b, _mm512_setzero_ps(), _CMP_LT_OQ);
  // b ≥ 0: σ = 1 / (1 + e), 1 − σ = e / (1 + e); b < 0 the other way round. A NaN b gives NaN through e.
  return {_mm512_mask_blend_ps(neg, one, e), _mm512_mask_blend_ps(neg, e, one), _mm512_add_ps(one, e)};
}
#endif

}  // namespace arpix
