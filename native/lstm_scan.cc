// The LSTM recurrence of PixelRNN (lstmScan, lstmScanBackward; src/kernels/contracts.ts gives
// the arithmetic, src/backends/ts/lstm.ts the reference loops): every step of a layer in one
// call. Each thread takes a chunk of images, so a step's state-to-state convolution stays inside
// the chunk: per step it gathers the previous step's h under the k taps (zeros off the positions)
// into X [P, k·H], adds X·W to the step's input gates in place with one product on its own oneDNN
// stream (thread_products.h), and runs the gates and cell on the result, writing the activated
// gates where the pre-activations were. Images are independent, so a thread runs all the steps of
// its images in one parallel region: no fork or join per step. Backward through time runs the steps in reverse: dz from
// the saved gates and cells, dX = dz·Wᵀ scattered back to the previous step's positions, and
// dW += Xᵀ·dz accumulated per thread and summed at the end — no step leaves the kernel.
#include <cstring>

#include "thread_products.h"
#include "vmath.h"

namespace arpix {
namespace {

// Thread buffers: the chunk's gathered taps X, their gradient dX, the weight-gradient
// accumulator (then dh0 and dc0), and Wᵀ (thread 0's).
enum Buffers : int { kTaps = 0, kTapsGrad = 1, kAcc = 2, kWT = 3 };

struct Scan {
  int64_t T, B, L, H, G, k, KH, pad, step, chunks;
  int nthr;
  int64_t lastImages() const { return B - (chunks - 1) * step; }
};

Scan scanOf(const Shape& gates, const Shape& w, int64_t pad) {
  Scan s{};
  s.T = gates[0], s.B = gates[1], s.L = gates[2], s.G = gates[3], s.H = s.G / 4;
  s.k = w[0], s.KH = s.k * s.H, s.pad = pad;
  const int64_t threads = omp_get_max_threads();
  s.step = std::max<int64_t>(1, (s.B + threads - 1) / threads);
  s.chunks = (s.B + s.step - 1) / s.step;
  s.nthr = chunkThreads(s.chunks);
  return s;
}

/** The products of a full chunk and of the last one, -1 standing for the chunk's P = images·L. */
struct ChunkProducts {
  const ThreadProduct *full = nullptr, *last = nullptr;
  int64_t fullImages = 0;
  const ThreadProduct& of(int64_t images) const { return images == fullImages ? *full : *last; }
};

ChunkProducts chunkProducts(const Scan& s, int64_t M, int64_t K, int64_t N, bool transA, bool accumulate) {
  ChunkProducts c;
  c.fullImages = s.step;
  auto with = [&](int64_t images) {
    const int64_t P = images * s.L;
    return ProductShape{1, M < 0 ? P : M, K < 0 ? P : K, N < 0 ? P : N, transA, accumulate};
  };
  c.full = &threadProduct(with(s.step), s.nthr);
  c.last = &threadProduct(with(s.lastImages()), s.nthr);
  return c;
}

/** X [P, k·H] of images b0 … b1 at step t: h_{t−1} (h0 before the first step) under every tap. */
void gatherTaps(const Scan& s, const float* hs, const float* h0, int64_t t, int64_t b0, int64_t b1, float* X) {
  for (int64_t b = b0; b < b1; b++) {
    for (int64_t l = 0; l < s.L; l++) {
      float* row = X + ((b - b0) * s.L + l) * s.KH;
      for (int64_t kk = 0; kk < s.k; kk++) {
        const int64_t p = l - s.pad + kk;
        if (p < 0 || p >= s.L) std::memset(row + kk * s.H, 0, size_t(s.H) * 4);
        else std::memcpy(row + kk * s.H, t == 0 ? h0 : hs + (((t - 1) * s.B + b) * s.L + p) * s.H, size_t(s.H) * 4);
      }
    }
  }
}

/**
 * Throws unless gates [T, B, L, 4H], w [k, H, 4H], the states (hs holds a quarter of the gates)
 * and pad fit each other; the descriptor holds the other buffers to these.
 */
void checkScan(const char* gatesName, const Buf& gates, const Buf& w, const Buf& h0, const Buf& hs, int64_t pad) {
  const Shape &g = gates.shape, &k = w.shape;
  if (g.size() != 4 || k.size() != 3 || g[3] != 4 * k[1] || k[2] != g[3] || h0.size != k[1] || hs.size * 4 != gates.size || pad < 0 || pad >= k[0]) {
    throw ArgumentError(std::string(gatesName) + " " + fmtShape(g) + ", w " + fmtShape(k) + " and the states do not fit");
  }
}

}  // namespace

void lstmScan(const Buf& xg, const Buf& w, const Buf& h0, const Buf& c0, const Buf& hs, const Buf& cs, const Buf& acts, int64_t pad) {
  checkScan("xg", xg, w, h0, hs, pad);
  const Scan s = scanOf(xg.shape, w.shape, pad);
  if (s.T * s.B * s.L == 0) return;
  std::lock_guard<std::mutex> lock(onednnLock());
  const ChunkProducts prod = chunkProducts(s, -1, s.KH, s.G, false, true);
  for (int t = 0; t < s.nthr; t++) threadBuffer(kTaps, t, s.step * s.L * s.KH);
  const float *X0 = xg.f32(), *W = w.f32(), *H0 = h0.f32(), *C0 = c0.f32();
  float *HS = hs.f32(), *CS = cs.f32(), *A = acts.f32();
  const int64_t H = s.H, G = s.G;
  // Images are independent: each thread runs every step of its own images, with no join per step.
  forChunks(s.B, s.step, [&](int64_t b0, int64_t b1, int tid) {
    float* X = threadBuffer(kTaps, tid, 0).data();
    for (int64_t t = 0; t < s.T; t++) {
      gatherTaps(s, HS, H0, t, b0, b1, X);
      const int64_t first = (t * s.B + b0) * s.L, rows = (b1 - b0) * s.L;
      float* z = A + first * G;
      std::memcpy(z, X0 + first * G, size_t(rows * G) * 4);
      runProduct(prod.of(b1 - b0), tid, X, W, z);  // z += X·W
      for (int64_t q = 0; q < rows; q++) {
        float* __restrict zq = z + q * G;
        const float* __restrict cp = t == 0 ? C0 : CS + (first - s.B * s.L + q) * H;
        float* __restrict c = CS + (first + q) * H;
        float* __restrict h = HS + (first + q) * H;
#pragma omp simd
        for (int64_t j = 0; j < H; j++) {
          const float o = vsigmoid(zq[j]), f = vsigmoid(zq[H + j]), i = vsigmoid(zq[2 * H + j]), g = vtanh(zq[3 * H + j]);
          const float cn = f * cp[j] + i * g;
          c[j] = cn;
          h[j] = o * vtanh(cn);
          zq[j] = o, zq[H + j] = f, zq[2 * H + j] = i, zq[3 * H + j] = g;
        }
      }
    }
  });
}

void lstmScanBackward(const Buf& w, const Buf& h0, const Buf& c0, const Buf& hs, const Buf& cs, const Buf& acts, const Buf& dhs, const Buf& dxg, const Buf& dw, const Buf& dh0, const Buf& dc0, int64_t pad) {
  checkScan("acts", acts, w, h0, hs, pad);
  const Scan s = scanOf(acts.shape, w.shape, pad);
  const int64_t H = s.H, G = s.G, KH = s.KH, BL = s.B * s.L;
  std::memset(dw.f32(), 0, size_t(dw.size) * 4);
  std::memset(dh0.f32(), 0, size_t(H) * 4);
  std::memset(dc0.f32(), 0, size_t(H) * 4);
  if (s.T * BL == 0) return;
  std::lock_guard<std::mutex> lock(onednnLock());
  const ChunkProducts wgrad = chunkProducts(s, KH, -1, G, true, true);    // dW += Xᵀ·dz
  const ChunkProducts xgrad = chunkProducts(s, -1, G, KH, false, false);  // dX = dz·Wᵀ
  float* WT = threadBuffer(kWT, 0, KH * G).data();
  for (int64_t r = 0; r < KH; r++)
    for (int64_t j = 0; j < G; j++) WT[j * KH + r] = w.f32()[r * G + j];
  const int64_t accSize = KH * G + 2 * H;
  for (int t = 0; t < s.nthr; t++) {
    threadBuffer(kTaps, t, s.step * s.L * KH);
    threadBuffer(kTapsGrad, t, s.step * s.L * KH);
    std::fill_n(threadBuffer(kAcc, t, accSize).begin(), accSize, 0.0f);
  }
  // Gradients reaching h_t and c_t from step t + 1 (next), and h_{t−1}, c_{t−1} from step t (prev).
  AlignedFloats dhNext(size_t(BL * H), 0.0f), dcNext(size_t(BL * H), 0.0f), dhPrev(size_t(BL * H)), dcPrev(size_t(BL * H));
  const float *H0 = h0.f32(), *C0 = c0.f32(), *HS = hs.f32(), *CS = cs.f32(), *A = acts.f32(), *DH = dhs.f32();
  float* DZ = dxg.f32();
  // Each thread runs every step of its own images backwards; the rows of next / prev it touches are its own.
  forChunks(s.B, s.step, [&](int64_t b0, int64_t b1, int tid) {
    float *dhN0 = dhNext.data(), *dcN0 = dcNext.data(), *dhP0 = dhPrev.data(), *dcP0 = dcPrev.data();
    for (int64_t t = s.T - 1; t >= 0; t--) {
      const int64_t rows = (b1 - b0) * s.L, first = b0 * s.L, at0 = t * BL + first;
      for (int64_t q = 0; q < rows; q++) {
        const int64_t at = at0 + q, sq = first + q;
        const float* __restrict a = A + at * G;
        const float* __restrict c = CS + at * H;
        const float* __restrict cp = t == 0 ? C0 : CS + (at - BL) * H;
        const float* __restrict dhIn = DH + at * H;
        const float* __restrict dhN = dhN0 + sq * H;
        const float* __restrict dcN = dcN0 + sq * H;
        float* __restrict dz = DZ + at * G;
        float* __restrict dcP = dcP0 + sq * H;
#pragma omp simd
        for (int64_t j = 0; j < H; j++) {
          const float o = a[j], f = a[H + j], i = a[2 * H + j], g = a[3 * H + j];
          const float tc = vtanh(c[j]);
          const float dh = dhIn[j] + dhN[j];
          const float dc = dcN[j] + dh * o * (1 - tc * tc);
          dz[j] = dh * tc * o * (1 - o);
          dz[H + j] = dc * cp[j] * f * (1 - f);
          dz[2 * H + j] = dc * g * i * (1 - i);
          dz[3 * H + j] = dc * i * (1 - g * g);
          dcP[j] = dc * f;
        }
      }
      float* X = threadBuffer(kTaps, tid, 0).data();
      float* dX = threadBuffer(kTapsGrad, tid, 0).data();
      float* acc = threadBuffer(kAcc, tid, 0).data();
      gatherTaps(s, HS, H0, t, b0, b1, X);
      runProduct(wgrad.of(b1 - b0), tid, X, DZ + at0 * G, acc);
      runProduct(xgrad.of(b1 - b0), tid, DZ + at0 * G, WT, dX);
      // dX back to the previous step's positions; every chunk writes only its own images.
      std::memset(dhP0 + first * H, 0, size_t(rows * H) * 4);
      for (int64_t b = b0; b < b1; b++) {
        for (int64_t l = 0; l < s.L; l++) {
          const float* src = dX + ((b - b0) * s.L + l) * KH;
          for (int64_t kk = 0; kk < s.k; kk++) {
            const int64_t p = l - s.pad + kk;
            if (p < 0 || p >= s.L) continue;
            float* __restrict d = dhP0 + (b * s.L + p) * H;
            const float* __restrict v = src + kk * H;
#pragma omp simd
            for (int64_t j = 0; j < H; j++) d[j] += v[j];
          }
        }
      }
      if (t == 0) {  // h_{−1} = h0 and c_{−1} = c0 at every position
        float *a0 = acc + KH * G, *a1 = a0 + H;
        for (int64_t q = 0; q < rows; q++)
          for (int64_t j = 0; j < H; j++) a0[j] += dhP0[(first + q) * H + j], a1[j] += dcP0[(first + q) * H + j];
      }
      std::swap(dhN0, dhP0);
      std::swap(dcN0, dcP0);
    }
  });
  const float* total = sumThreadBuffers(kAcc, s.nthr, accSize);
  std::memcpy(dw.f32(), total, size_t(KH * G) * 4);
  std::memcpy(dh0.f32(), total + KH * G, size_t(H) * 4);
  std::memcpy(dc0.f32(), total + KH * G + H, size_t(H) * 4);
}

}  // namespace arpix
