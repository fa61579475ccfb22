// The backward pass of convolutions one row high (1×k kernels, stride 1, no vertical padding):
// Gated PixelCNN's horizontal convolutions, its 1×1 links and residuals, and the 1×1 layers of
// every model. oneDNN computes backward-data and backward-weights as two passes over dy (and its
// dilated backward-weights only through slower paths); here each thread takes a chunk of rows,
// reads its part of dy once into L2 and makes both gradients from it, one product per kernel tap
// (thread_products.h), all taps in one: dW += Xᵀ · dy and T = dy · Wᵀ, where X [P, KW·C] holds
// each output pixel's input columns under every tap (zeros off the row) and T is scattered back
// to those columns; a 1×1 layer uses x and dx directly. Every chunk writes only its own rows of
// dx: no two threads write the same memory.
#include <cstring>

#include "thread_products.h"

namespace arpix {
namespace {

constexpr int64_t kChunkPixels = 512;
// The thread buffers (thread_products.h) this file uses: Wᵀ (thread 0's), then per thread the
// chunk's input taps (later their gradient) and the weight- and bias-gradient accumulators.
enum Buffers : int { kWT = 0, kTaps = 1, kAcc = 2 };

struct RowConv {
  int64_t N, H, W, C, O, KW, OW, pl, dw;
  int64_t rows, step;  // rows N·H, rows per chunk
  int64_t shift(int64_t kx) const { return kx * dw - pl; }
  bool aligned(int64_t kx) const { return shift(kx) == 0 && OW == W; }
};

RowConv rowConvOf(const Shape& x, const Shape& w, const Shape& y, const ConvParams& p) {
  RowConv g{};
  g.N = x[0], g.H = x[1], g.W = x[2], g.C = x[3];
  g.KW = w[1], g.O = w[3], g.OW = y[2];
  g.pl = p.padLeft, g.dw = p.dilationW;
  g.rows = g.N * g.H;
  g.step = std::max<int64_t>(1, kChunkPixels / g.OW);
  return g;
}

/**
 * The chunk's input as [P, KW·C] (rows r0 … r1): output pixel xo's block kx holds input column
 * xo + shift(kx), or zeros outside the row.
 */
void tapsOfInput(const RowConv& g, const float* x, int64_t r0, int64_t r1, float* out) {
  const int64_t C = g.C, KC = g.KW * C;
  for (int64_t r = r0; r < r1; r++) {
    const float* row = x + r * g.W * C;
    for (int64_t xo = 0; xo < g.OW; xo++) {
      float* o = out + ((r - r0) * g.OW + xo) * KC;
      for (int64_t kx = 0; kx < g.KW; kx++) {
        const int64_t col = xo + g.shift(kx);
        if (col >= 0 && col < g.W) std::memcpy(o + kx * C, row + col * C, size_t(C) * 4);
        else std::memset(o + kx * C, 0, size_t(C) * 4);
      }
    }
  }
}

/** dx rows r0 … r1 = Σ over taps of T [P, KW·C] (per output pixel and tap) moved back to input columns. */
void scatterTaps(const RowConv& g, const float* T, int64_t r0, int64_t r1, float* dx) {
  const int64_t C = g.C, KC = g.KW * C;
  std::memset(dx + r0 * g.W * C, 0, size_t((r1 - r0) * g.W * C) * 4);
  for (int64_t r = r0; r < r1; r++) {
    float* row = dx + r * g.W * C;
    for (int64_t xo = 0; xo < g.OW; xo++) {
      const float* t = T + ((r - r0) * g.OW + xo) * KC;
      for (int64_t kx = 0; kx < g.KW; kx++) {
        const int64_t col = xo + g.shift(kx);
        if (col < 0 || col >= g.W) continue;
        float* __restrict d = row + col * C;
        const float* __restrict v = t + kx * C;
#pragma omp simd
        for (int64_t c = 0; c < C; c++) d[c] += v[c];
      }
    }
  }
}

}  // namespace

bool rowConvFits(const Shape& x, const Shape& w, const Shape& y, const ConvParams& p) {
  return w.size() == 4 && w[0] == 1 && p.strideH == 1 && p.strideW == 1 && p.padTop == 0 && y[1] == x[1];
}

void rowConvBackward(const Buf& x, const Buf& dy, const Buf& w, const Buf* dx, const Buf* dw, const Buf* db, const ConvParams& p) {
  const Shape& xShape = dx ? dx->shape : x.shape;
  const RowConv g = rowConvOf(xShape, w.shape, dy.shape, p);
  const int64_t chunks = (g.rows + g.step - 1) / g.step;
  const int nthr = chunkThreads(chunks);
  const int64_t fullP = g.step * g.OW, lastP = (g.rows - (chunks - 1) * g.step) * g.OW;
  const int64_t CO = g.C * g.O, accSize = g.KW * CO + g.O;
  std::lock_guard<std::mutex> lock(onednnLock());
  const int64_t KC = g.KW * g.C;
  const bool direct = g.KW == 1 && g.aligned(0);  // a 1×1 layer: x and dx are the products' operands
  // Wᵀ as [O, KW·C], for the input gradient.
  std::vector<float>& WT = threadBuffer(kWT, 0, dx ? KC * g.O : 0);
  if (dx)
    for (int64_t k = 0; k < KC; k++)
      for (int64_t o = 0; o < g.O; o++) WT[size_t(o * KC + k)] = w.f32()[k * g.O + o];
  for (int t = 0; t < nthr; t++) {
    threadBuffer(kTaps, t, direct ? 0 : fullP * KC);  // the chunk's input taps, then the taps' input gradient
    if (dw || db) std::fill_n(threadBuffer(kAcc, t, accSize).begin(), accSize, 0.0f);
  }
  auto pick = [&](const ThreadProduct* full, const ThreadProduct* last, int64_t P) { return P == fullP ? full : last; };
  const ThreadProduct *wFull = nullptr, *wLast = nullptr, *xFull = nullptr, *xLast = nullptr;
  if (dw) wFull = &threadProduct({1, KC, fullP, g.O, true, true}, nthr), wLast = &threadProduct({1, KC, lastP, g.O, true, true}, nthr);
  if (dx) xFull = &threadProduct({1, fullP, g.O, KC, false, false}, nthr), xLast = &threadProduct({1, lastP, g.O, KC, false, false}, nthr);
  forChunks(g.rows, g.step, [&](int64_t r0, int64_t r1, int tid) {
    const int64_t P = (r1 - r0) * g.OW;
    const float* dyc = dy.f32() + r0 * g.OW * g.O;
    float* buf = threadBuffer(kTaps, tid, 0).data();
    float* acc = (dw || db) ? threadBuffer(kAcc, tid, 0).data() : nullptr;
    if (db) {
      float* b = acc + g.KW * CO;
      for (int64_t i = 0; i < P; i++)
#pragma omp simd
        for (int64_t o = 0; o < g.O; o++) b[o] += dyc[i * g.O + o];
    }
    if (dw) {
      const float* X = x.f32() + r0 * g.W * g.C;
      if (!direct) {
        tapsOfInput(g, x.f32(), r0, r1, buf);
        X = buf;
      }
      runProduct(*pick(wFull, wLast, P), tid, X, dyc, acc);
    }
    if (dx) {
      float* dxc = dx->f32() + r0 * g.W * g.C;
      runProduct(*pick(xFull, xLast, P), tid, dyc, WT.data(), direct ? dxc : buf);
      if (!direct) scatterTaps(g, buf, r0, r1, dx->f32());
    }
  });
  if (dw || db) {
    const float* total = sumThreadBuffers(kAcc, nthr, accSize);
    if (dw) std::copy(total, total + g.KW * CO, dw->f32());
    if (db) std::copy(total + g.KW * CO, total + accSize, db->f32());
  }
}

}  // namespace arpix
