// Cached-sampling steps that run a whole pixel through every layer in one call (rowLstmStep;
// contract in src/kernels/contracts.ts, reference loops in src/backends/ts/cached-step.ts). A
// cached step's products are tiny ([16, 112] · [112, 64]) and there are a dozen per pixel: as
// separate ops each cost ~10 µs of allocation and dispatch around ~1 µs of arithmetic. Here they
// run back to back on one thread, on oneDNN products built once per shape (thread_products.h)
// into scratch the plan owns, with the gathers, the cell and the residuals in between.
#include <algorithm>
#include <cstring>
#include <mutex>

#include "thread_products.h"
#include "vmath.h"

namespace arpix {
namespace {

/** out [n, d.cout] = a [n, d.cin] · d.w + d.b (out must not alias a). */
void dense(const StepDense& d, const float* a, int64_t n, float* out) {
  for (int64_t i = 0; i < n; i++) std::memcpy(out + i * d.cout, d.b, size_t(d.cout) * 4);
  if (d.cin == 0) return;
  runProduct(threadProduct(ProductShape{1, n, d.cin, d.cout, false, true}, 1), 0, a, d.w, out);
}

void reluInPlace(float* v, int64_t count) {
#pragma omp simd
  for (int64_t i = 0; i < count; i++) v[i] = std::max(v[i], 0.0f);
}

/**
 * The LSTM cell of one position from its pre-activations z [4h] (blocks o, f, i, g) and the
 * previous cell cp [h]: c = f·cp + i·g and h = o·tanh(c), written to c, h and h2.
 */
void cellRow(const float* __restrict z, const float* __restrict cp, float* __restrict c, float* __restrict h, float* __restrict h2, int64_t H) {
#pragma omp simd
  for (int64_t j = 0; j < H; j++) {
    const float o = vsigmoid(z[j]), f = vsigmoid(z[H + j]), i = vsigmoid(z[2 * H + j]), g = vtanh(z[3 * H + j]);
    const float cn = f * cp[j] + i * g;
    const float hn = o * vtanh(cn);
    c[j] = cn;
    h[j] = hn;
    h2[j] = hn;
  }
}

/** Restores OpenMP's thread count when the step ends, however it ends. */
struct SerialThreads {
  int before;
  SerialThreads() : before(omp_get_max_threads()) { omp_set_num_threads(1); }
  ~SerialThreads() { omp_set_num_threads(before); }
};

}  // namespace

void rowLstmStep(RowLstmStepPlan& p, int64_t y, int64_t x) {
  if (y < 0 || y >= p.H || x < 0 || x >= p.W) throw ArgumentError("pixel (" + std::to_string(y) + ", " + std::to_string(x) + ") is off the image");
  const int64_t n = p.n, H = p.H, W = p.W, C = p.C, h = p.h, F = 2 * h, G = 4 * h, r = p.k / 2;
  const int64_t L = int64_t(p.layers.size());
  std::lock_guard<std::mutex> lock(onednnLock());
  // One pixel is far too little work to split: a fork and join cost more than its products.
  SerialThreads serial;
  // The first convolution: the image under its open taps (zeros off the map).
  const int64_t t0 = int64_t(p.firstTaps.size()) / 2;
  float* taps = p.taps.data();
  for (int64_t i = 0; i < n; i++) {
    for (int64_t t = 0; t < t0; t++) {
      const int64_t yy = y + p.firstTaps[size_t(2 * t)], xx = x + p.firstTaps[size_t(2 * t + 1)];
      float* dst = taps + (i * t0 + t) * C;
      if (yy < 0 || yy >= H || xx < 0 || xx >= W) std::memset(dst, 0, size_t(C) * 4);
      else std::memcpy(dst, p.image + ((i * H + yy) * W + xx) * C, size_t(C) * 4);
    }
  }
  float* f = p.f.data();
  dense(p.first, taps, n, f);
  float* skipIn = p.skipIn.data();
  for (int64_t l = 0; l < L; l++) {
    RowLstmStepLayer& layer = p.layers[size_t(l)];
    float* input = p.rows[size_t(l)];
    for (int64_t i = 0; i < n; i++) std::memcpy(input + (i * W + x) * F, f + i * F, size_t(F) * 4);
    // X = [input row under the taps | previous row's h at x − r … x + r].
    const int64_t ti = int64_t(layer.inputTaps.size()), K = ti * F + p.k * h;
    for (int64_t i = 0; i < n; i++) {
      float* row = taps + i * K;
      for (int64_t t = 0; t < ti; t++) {
        const int64_t xx = x + layer.inputTaps[size_t(t)];
        if (xx < 0) std::memset(row + t * F, 0, size_t(F) * 4);
        else std::memcpy(row + t * F, input + (i * W + xx) * F, size_t(F) * 4);
      }
      for (int64_t kk = 0; kk < p.k; kk++) {
        const int64_t xx = x - r + kk;
        float* dst = row + ti * F + kk * h;
        if (xx < 0 || xx >= W) std::memset(dst, 0, size_t(h) * 4);
        else std::memcpy(dst, layer.prevH + (i * W + xx) * h, size_t(h) * 4);
      }
    }
    float* z = p.z.data();
    std::memcpy(z, layer.gateBias, size_t(n * G) * 4);
    runProduct(threadProduct(ProductShape{1, n, K, G, false, true}, 1), 0, taps, layer.gates, z);
    float* hx = p.hx.data();
    for (int64_t i = 0; i < n; i++) {
      cellRow(z + i * G, layer.prevC + (i * W + x) * h, layer.curC + (i * W + x) * h, layer.curH + (i * W + x) * h, hx + i * h, h);
    }
    // f = input + output(h): the residual, into the skips' input and the next layer's row.
    dense(layer.output, hx, n, f);
    for (int64_t i = 0; i < n; i++) {
      float* __restrict fi = f + i * F;
      const float* __restrict in = input + (i * W + x) * F;
#pragma omp simd
      for (int64_t c = 0; c < F; c++) fi[c] += in[c];
      std::memcpy(skipIn + (i * L + l) * F, fi, size_t(F) * 4);
    }
  }
  float *a = p.a.data(), *b = p.b.data();
  dense(p.skip, skipIn, n, a);
  reluInPlace(a, n * p.skip.cout);
  dense(p.outHidden, a, n, b);
  reluInPlace(b, n * p.outHidden.cout);
  dense(p.out, b, n, p.logits);
}

}  // namespace arpix
