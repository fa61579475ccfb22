// Fused kernels: the gated activation of Gated PixelCNN and softmax cross-entropy, each with its
// backward. Semantics follow src/backends/ts/fused.ts; the composed ops in src/ops are the oracle.
#include <algorithm>
#include <cmath>
#include <cstring>
#include <limits>

#include "common.h"
#include "vmath.h"

namespace arpix {

#if defined(__AVX512F__)
/** Lanes i … i+15 of a row (fewer at its end). */
inline __mmask16 laneMask(int64_t i, int64_t c) { return c - i >= 16 ? __mmask16(0xFFFF) : __mmask16((1u << (c - i)) - 1); }
#endif

/** y = tanh(a) · σ(b) over one row of c channels. */
void gateRow(const float* a, const float* b, float* y, int64_t c) {
#if defined(__AVX512F__)
  for (int64_t i = 0; i < c; i += 16) {
    const __mmask16 m = laneMask(i, c);
    const Quotient16 t = vtanhQuotient16(_mm512_maskz_loadu_ps(m, a + i));
    const Sigmoid16 s = vsigmoidQuotient16(_mm512_maskz_loadu_ps(m, b + i));
    _mm512_mask_storeu_ps(y + i, m, _mm512_mul_ps(_mm512_mul_ps(t.num, s.num), vrecip16(_mm512_mul_ps(t.den, s.den))));
  }
#else
  for (int64_t i = 0; i < c; i++) y[i] = vtanh(a[i]) * vsigmoid(b[i]);
#endif
}

/** da = g·σ(b)·(1 − tanh²(a)), db = g·tanh(a)·σ(b)·(1 − σ(b)) over one row. */
void gateBackwardRow(const float* a, const float* b, const float* g, float* da, float* db, int64_t c) {
#if defined(__AVX512F__)
  const __m512 one = _mm512_set1_ps(1.0f);
  for (int64_t i = 0; i < c; i += 16) {
    const __mmask16 m = laneMask(i, c);
    const Quotient16 tq = vtanhQuotient16(_mm512_maskz_loadu_ps(m, a + i));
    const Sigmoid16 sq = vsigmoidQuotient16(_mm512_maskz_loadu_ps(m, b + i));
    const __m512 inv = vrecip16(_mm512_mul_ps(tq.den, sq.den));
    const __m512 t = _mm512_mul_ps(_mm512_mul_ps(tq.num, sq.den), inv);
    const __m512 s = _mm512_mul_ps(_mm512_mul_ps(sq.num, tq.den), inv);
    const __m512 oms = _mm512_mul_ps(_mm512_mul_ps(sq.numComplement, tq.den), inv);
    const __m512 gi = _mm512_maskz_loadu_ps(m, g + i);
    const __m512 gs = _mm512_mul_ps(gi, s);
    _mm512_mask_storeu_ps(da + i, m, _mm512_mul_ps(gs, _mm512_fnmadd_ps(t, t, one)));
    _mm512_mask_storeu_ps(db + i, m, _mm512_mul_ps(_mm512_mul_ps(gs, t), oms));
  }
#else
  for (int64_t i = 0; i < c; i++) {
    const float t = vtanh(a[i]), s = vsigmoid(b[i]), gi = g[i];
    da[i] = gi * s * (1.0f - t * t);
    db[i] = gi * t * s * (1.0f - s);
  }
#endif
}

void gate(const Buf& x, const Buf& out) {
  if (out.shape.empty()) throw ArgumentError("out must have at least one axis");
  const int64_t c = out.shape.back();
  if (c == 0) return;
  const int64_t rows = out.size / c;
  const float* xd = x.f32();
  float* o = out.f32();
#pragma omp parallel for schedule(static) if (worthParallel(out.size))
  for (int64_t r = 0; r < rows; r++) gateRow(xd + 2 * r * c, xd + 2 * r * c + c, o + r * c, c);
}

void gateBackward(const Buf& x, const Buf& g, const Buf& dx) {
  if (g.shape.empty()) throw ArgumentError("g must have at least one axis");
  const int64_t c = g.shape.back();
  if (c == 0) return;
  const int64_t rows = g.size / c;
  const float* xd = x.f32();
  const float* gd = g.f32();
  float* o = dx.f32();
#pragma omp parallel for schedule(static) if (worthParallel(x.size))
  for (int64_t r = 0; r < rows; r++) gateBackwardRow(xd + 2 * r * c, xd + 2 * r * c + c, gd + r * c, o + 2 * r * c, o + 2 * r * c + c, c);
}

void softmaxCrossEntropy(const Buf& logits, const Buf& targets, const Buf& loss, const Buf& probs) {
  if (logits.shape.empty()) throw ArgumentError("logits must have at least one axis");
  const int64_t k = logits.shape.back();
  const int64_t J = targets.size;
  const int32_t* t = targets.i32();
  for (int64_t j = 0; j < J; j++) {
    if (t[j] < 0 || t[j] >= k) throw KernelError("softmaxCrossEntropy", "targets[" + std::to_string(j) + "] = " + std::to_string(t[j]) + " is out of range for " + std::to_string(k) + " classes");
  }
  const float* xd = logits.f32();
  float* l = loss.f32();
  float* pd = probs.f32();
#pragma omp parallel for schedule(static) if (worthParallel(logits.size))
  for (int64_t j = 0; j < J; j++) {
    const float* a = xd + j * k;
    float* p = pd + j * k;
    const ExpRow r = expRow(a, p, k);
    if (r.special) {
      // The reference's arithmetic on NaN / infinite rows, kept literally.
      const double mm = double(r.max);
      double s = 0;
      for (int64_t i = 0; i < k; i++) s += std::exp(double(a[i]) - mm);
      for (int64_t i = 0; i < k; i++) p[i] = float(std::exp(double(a[i]) - mm) / s);
      l[j] = float(mm + std::log(s) - double(a[t[j]]));
      continue;
    }
    const float inv = float(1.0 / r.sum);
    for (int64_t i = 0; i < k; i++) p[i] *= inv;
    l[j] = float(double(r.max) + std::log(r.sum) - double(a[t[j]]));
  }
}

void softmaxCrossEntropyBackward(const Buf& probs, const Buf& targets, const Buf& g, const Buf& dx) {
  if (probs.shape.empty()) throw ArgumentError("probs must have at least one axis");
  const int64_t k = probs.shape.back();
  const int64_t J = targets.size;
  const int32_t* t = targets.i32();
  for (int64_t j = 0; j < J; j++) {
    if (t[j] < 0 || t[j] >= k) throw KernelError("softmaxCrossEntropyBackward", "targets[" + std::to_string(j) + "] = " + std::to_string(t[j]) + " is out of range for " + std::to_string(k) + " classes");
  }
  const float* p = probs.f32();
  const float* gd = g.f32();
  float* o = dx.f32();
#pragma omp parallel for schedule(static) if (worthParallel(probs.size))
  for (int64_t j = 0; j < J; j++) {
    const float gj = gd[j];
    for (int64_t i = 0; i < k; i++) o[j * k + i] = gj * p[j * k + i];
    o[j * k + t[j]] -= gj;
  }
}

void gatedResidual(const Buf& x, const Buf& h, const Buf& out) {
  if (x.shape.empty()) throw ArgumentError("x must have at least one axis");
  const int64_t c = x.shape.back();
  if (c == 0) return;
  const int64_t rows = x.size / c;
#pragma omp parallel for schedule(static) if (worthParallel(h.size))
  for (int64_t r = 0; r < rows; r++) {
    const float* __restrict xr = x.f32() + r * c;
    const float* __restrict a = h.f32() + 2 * r * c;
    const float* __restrict b = a + c;
    float* __restrict o = out.f32() + r * c;
#pragma omp simd
    for (int64_t i = 0; i < c; i++) o[i] = xr[i] + a[i] * vsigmoid(b[i]);
  }
}

void gatedResidualBackward(const Buf& h, const Buf& g, const Buf& dh) {
  if (g.shape.empty()) throw ArgumentError("g must have at least one axis");
  const int64_t c = g.shape.back();
  if (c == 0) return;
  const int64_t rows = g.size / c;
#pragma omp parallel for schedule(static) if (worthParallel(h.size))
  for (int64_t r = 0; r < rows; r++) {
    const float* __restrict a = h.f32() + 2 * r * c;
    const float* __restrict b = a + c;
    const float* __restrict gr = g.f32() + r * c;
    float* __restrict da = dh.f32() + 2 * r * c;
    float* __restrict db = da + c;
#pragma omp simd
    for (int64_t i = 0; i < c; i++) {
      const float s = vsigmoid(b[i]);
      da[i] = gr[i] * s;
      db[i] = gr[i] * a[i] * s * (1.0f - s);
    }
  }
}

void concatElu(const Buf& x, const Buf& out) {
  if (x.shape.empty()) throw ArgumentError("x must have at least one axis");
  const int64_t c = x.shape.back();
  if (c == 0) return;
  const int64_t rows = x.size / c;
  const float* xd = x.f32();
  float* o = out.f32();
#pragma omp parallel for schedule(static) if (worthParallel(out.size))
  for (int64_t r = 0; r < rows; r++) {
    const float* __restrict v = xd + r * c;
    float* __restrict pos = o + 2 * r * c;
    float* __restrict negs = pos + c;
#pragma omp simd
    for (int64_t i = 0; i < c; i++) {
      const float z = v[i];
      pos[i] = z > 0 ? z : vexpm1(z);
      negs[i] = z < 0 ? -z : vexpm1(-z);
    }
  }
}

void concatEluBackward(const Buf& x, const Buf& g, const Buf& dx) {
  if (x.shape.empty()) throw ArgumentError("x must have at least one axis");
  const int64_t c = x.shape.back();
  if (c == 0) return;
  const int64_t rows = x.size / c;
  const float* xd = x.f32();
  const float* gd = g.f32();
  float* o = dx.f32();
#pragma omp parallel for schedule(static) if (worthParallel(g.size))
  for (int64_t r = 0; r < rows; r++) {
    const float* __restrict v = xd + r * c;
    const float* __restrict gp = gd + 2 * r * c;
    const float* __restrict gn = gp + c;
    float* __restrict d = o + r * c;
#pragma omp simd
    for (int64_t i = 0; i < c; i++) {
      const float z = v[i];
      // elu'(z) = exp(z) for z ≤ 0, else 1; one exp serves both signs.
      const float e = vexp(z > 0 ? -z : z);
      d[i] = gp[i] * (z > 0 ? 1.0f : e) - gn[i] * (z < 0 ? 1.0f : e);
    }
  }
}

namespace {

constexpr int kLanes = 16;

/** Philox4x32-10 of kLanes counters at once (lane-wise loops the compiler vectorises), as tensor/random.ts computes it. */
inline void philoxLanes(uint32_t x0[kLanes], uint32_t x1[kLanes], uint32_t x2[kLanes], uint32_t x3[kLanes], uint32_t k0, uint32_t k1) {
  for (int r = 0; r < 10; r++) {
#pragma omp simd
    for (int l = 0; l < kLanes; l++) {
      const uint64_t p0 = uint64_t(0xd2511f53u) * x0[l], p1 = uint64_t(0xcd9e8d57u) * x2[l];
      const uint32_t y0 = uint32_t(p1 >> 32) ^ x1[l] ^ k0, y2 = uint32_t(p0 >> 32) ^ x3[l] ^ k1;
      x1[l] = uint32_t(p1);
      x3[l] = uint32_t(p0);
      x0[l] = y0;
      x2[l] = y2;
    }
    k0 += 0x9e3779b9u;
    k1 += 0xbb67ae85u;
  }
}

}  // namespace

void dropoutMask(const Buf& out, uint64_t seed, uint64_t offset, double p) {
  const int64_t n = out.size, blocks = (n + 3) / 4, groups = (blocks + kLanes - 1) / kLanes;
  const float scale = float(1.0 / (1.0 - p));
  // u = k / 2^24 ≥ p  ⟺  k ≥ ⌈p · 2^24⌉ (k the word's top 24 bits; p · 2^24 is exact in double).
  const uint32_t keepFrom = uint32_t(std::min(16777216.0, std::max(0.0, std::ceil(p * 16777216.0))));
  float* o = out.f32();
#pragma omp parallel for schedule(static) if (worthParallel(n))
  for (int64_t gi = 0; gi < groups; gi++) {
    alignas(64) uint32_t x[4][kLanes];
    for (int l = 0; l < kLanes; l++) {
      const uint64_t counter = offset + uint64_t(gi * kLanes + l);
      x[0][l] = uint32_t(counter), x[1][l] = uint32_t(counter >> 32), x[2][l] = 0, x[3][l] = 0;
    }
    philoxLanes(x[0], x[1], x[2], x[3], uint32_t(seed), uint32_t(seed >> 32));
    alignas(64) float mask[4 * kLanes];
    for (int l = 0; l < kLanes; l++)
      for (int w = 0; w < 4; w++) mask[4 * l + w] = (x[w][l] >> 8) >= keepFrom ? scale : 0.0f;
    const int64_t first = 4 * gi * kLanes;
    std::memcpy(o + first, mask, size_t(std::min<int64_t>(4 * kLanes, n - first)) * 4);
  }
}

}  // namespace arpix
