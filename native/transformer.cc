// Layer norm, RMS norm and GELU for the transformer core (contracts in src/kernels/contracts.ts):
// OpenMP over rows (norms) or elements (GELU), serial below kParallelMin.
#include <cmath>
#include <vector>

#include "common.h"
#include "vmath.h"

namespace arpix {

void layerNorm(const Buf& x, const Buf* weight, const Buf* bias, const Buf& out, const Buf& mean, const Buf& rstd, double eps, bool rms) {
  const int64_t C = x.shape.empty() ? 1 : x.shape.back();
  const int64_t rows = C == 0 ? 0 : x.size / C;
  const float* xd = x.f32();
  float* o = out.f32();
  const float* w = weight ? weight->f32() : nullptr;
  const float* b = bias ? bias->f32() : nullptr;
#pragma omp parallel for if (worthParallel(x.size)) schedule(static)
  for (int64_t r = 0; r < rows; r++) {
    const float* xr = xd + r * C;
    float mu = 0.0f;
    if (!rms) {
#pragma omp simd reduction(+ : mu)
      for (int64_t i = 0; i < C; i++) mu += xr[i];
      mu /= float(C);
      mean.f32()[r] = mu;
    }
    float sq = 0.0f;
#pragma omp simd reduction(+ : sq)
    for (int64_t i = 0; i < C; i++) sq += (xr[i] - mu) * (xr[i] - mu);
    const float rs = float(1.0 / std::sqrt(double(sq) / double(C) + eps));
    rstd.f32()[r] = rs;
    float* orow = o + r * C;
#pragma omp simd
    for (int64_t i = 0; i < C; i++) {
      float y = (xr[i] - mu) * rs;
      if (w) y *= w[i];
      if (b) y += b[i];
      orow[i] = y;
    }
  }
}

void layerNormBackward(const Buf& x, const Buf* weight, const Buf& mean, const Buf& rstd, const Buf& g, const Buf& dx, const Buf* dweight, const Buf* dbias, bool rms) {
  const int64_t C = x.shape.empty() ? 1 : x.shape.back();
  const int64_t rows = C == 0 ? 0 : x.size / C;
  const float* xd = x.f32();
  const float* gd = g.f32();
  const float* w = weight ? weight->f32() : nullptr;
  const bool parallel = worthParallel(x.size);
  const int nthr = parallel ? omp_get_max_threads() : 1;
  // Per-thread partial sums of the parameter gradients, added in thread order (deterministic).
  std::vector<double> partial(size_t(nthr) * size_t(2 * C), 0.0);
#pragma omp parallel num_threads(nthr)
  {
    double* pw = partial.data() + size_t(omp_get_thread_num()) * size_t(2 * C);
    double* pb = pw + C;
#pragma omp for schedule(static)
    for (int64_t r = 0; r < rows; r++) {
      const float* xr = xd + r * C;
      const float* gr = gd + r * C;
      const float mu = rms ? 0.0f : mean.f32()[r];
      const float rs = rstd.f32()[r];
      float gMean = 0.0f, gxMean = 0.0f;
      for (int64_t i = 0; i < C; i++) {
        const float xh = (xr[i] - mu) * rs;
        const float gh = gr[i] * (w ? w[i] : 1.0f);
        gMean += gh;
        gxMean += gh * xh;
        pw[i] += double(gr[i] * xh);
        pb[i] += double(gr[i]);
      }
      gMean = rms ? 0.0f : gMean / float(C);
      gxMean /= float(C);
      float* o = dx.f32() + r * C;
#pragma omp simd
      for (int64_t i = 0; i < C; i++) {
        const float xh = (xr[i] - mu) * rs;
        const float gh = gr[i] * (w ? w[i] : 1.0f);
        o[i] = rs * (gh - gMean - xh * gxMean);
      }
    }
  }
  for (int64_t i = 0; i < C; i++) {
    double sw = 0.0, sb = 0.0;
    for (int t = 0; t < nthr; t++) sw += partial[size_t(t) * size_t(2 * C) + size_t(i)], sb += partial[size_t(t) * size_t(2 * C) + size_t(C + i)];
    if (dweight) dweight->f32()[i] = float(sw);
    if (dbias) dbias->f32()[i] = float(sb);
  }
}

namespace {
constexpr float kSqrt2OverPi = 0.7978845608028654f;
constexpr float kGeluC = 0.044715f;

/**
 * erf to 1.5e-7 absolute (Abramowitz & Stegun 7.1.26: a degree-5 polynomial in 1/(1 + p|x|) times
 * e^{−x²}), branch-free so the GELU loops vectorise; glibc's erff is a scalar call.
 */
inline float verf(float x) {
  const float a = std::fabs(x);
  const float t = 1.0f / (1.0f + 0.3275911f * a);
  const float poly = t * (0.254829592f + t * (-0.284496736f + t * (1.421413741f + t * (-1.453152027f + t * 1.061405429f))));
  const float r = 1.0f - poly * vexp(-a * a);
  return x < 0 ? -r : r;
}
}  // namespace

void gelu(const Buf& x, const Buf& out, bool tanhForm) {
  const float* xd = x.f32();
  float* o = out.f32();
  const int64_t n = x.size;
  if (tanhForm) {
#pragma omp parallel for simd if (worthParallel(n)) schedule(static)
    for (int64_t i = 0; i < n; i++) {
      const float v = xd[i];
      // 0.5·(1 + tanh(u)) = σ(2u): no cancellation where tanh(u) is near −1.
      o[i] = v * vsigmoid(2.0f * kSqrt2OverPi * (v + kGeluC * v * v * v));
    }
  } else {
#pragma omp parallel for simd if (worthParallel(n)) schedule(static)
    for (int64_t i = 0; i < n; i++) o[i] = 0.5f * xd[i] * (1.0f + verf(xd[i] * 0.7071067811865476f));
  }
}

void geluBackward(const Buf& x, const Buf& g, const Buf& dx, bool tanhForm) {
  const float* xd = x.f32();
  const float* gd = g.f32();
  float* o = dx.f32();
  const int64_t n = x.size;
  if (tanhForm) {
#pragma omp parallel for simd if (worthParallel(n)) schedule(static)
    for (int64_t i = 0; i < n; i++) {
      const float v = xd[i];
      const float s = vsigmoid(2.0f * kSqrt2OverPi * (v + kGeluC * v * v * v));
      o[i] = gd[i] * (s + 2.0f * v * s * (1.0f - s) * kSqrt2OverPi * (1.0f + 3.0f * kGeluC * v * v));
    }
  } else {
#pragma omp parallel for simd if (worthParallel(n)) schedule(static)
    for (int64_t i = 0; i < n; i++) {
      const float v = xd[i];
      o[i] = gd[i] * (0.5f * (1.0f + verf(v * 0.7071067811865476f)) + v * vexp(-0.5f * v * v) * 0.3989422804014327f);
    }
  }
}

}  // namespace arpix
