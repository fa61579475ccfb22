// The backward pass of convolutions one row high (1×k kernels, stride 1, no vertical padding),
// and of sums of them into one output: Gated PixelCNN's horizontal convolution plus its
// vertical-to-horizontal link, its 1×1 residuals, and the 1×1 layers of every model. oneDNN
// computes backward-data and backward-weights as two passes over dy per convolution (and its
// dilated backward-weights only through slower paths); here each thread takes a chunk of rows,
// reads its part of dy once into L2 and makes every gradient of every term from it:
// dW += Xᵀ·dy and T = dy·Wᵀ (thread_products.h), where X [P, KW·C] holds each output pixel's input
// column under every tap (zeros off the row) and T's columns are scattered back to the input
// columns; a 1×1 term that reads its own column uses x and dx directly. A term's dx may start
// from an addend (the gradient its input already has from elsewhere: dx = addend + ∂/∂x, no
// separate add), which may be dx itself (the gradient grows in place, nothing is copied). Every chunk writes only its own rows of dx: no two threads write the same memory.
#include <cstring>
#include <tuple>

#include "thread_products.h"

namespace arpix {
namespace {

constexpr int64_t kChunkPixels = 512;
// The thread buffers (thread_products.h) this file uses: the terms' Wᵀ (thread 0's), then per
// thread the chunk's gathered inputs (later their gradient) and the weight- and bias-gradient
// accumulators.
enum Buffers : int { kWT = 0, kTaps = 1, kAcc = 2 };

/** The products of a full chunk of P pixels and of the shorter last one. */
struct ChunkProducts {
  const ThreadProduct *full = nullptr, *last = nullptr;
  int64_t fullP = 0;
  const ThreadProduct& of(int64_t P) const { return P == fullP ? *full : *last; }
};

/** One convolution of a sum, in raw pointers, with its products. */
struct Term {
  const float* x;  // null when only dx is wanted
  const float* w;  // [KW·C, O]
  float* dx;
  const float* addend;
  float* dw;
  int64_t W, C, KW, pl, dil;
  int64_t KC() const { return KW * C; }
  int64_t shift(int64_t kx) const { return kx * dil - pl; }
  int64_t taps = 0;  // where its gathered input starts in the thread's buffer (floats)
  int64_t acc = 0;   // where its weight gradient starts in the thread's accumulator
  bool direct = false;  // a 1×1 term reading its own column: x and dx are the products' operands
  ChunkProducts wgrad, xgrad;
  const float* WT = nullptr;
};

struct RowSum {
  int64_t OW, O, rows, step, chunks;
  int nthr;
  int64_t tapsSize = 0, accSize = 0;  // per-thread floats
  std::vector<Term> terms;
};

/** out = op(A)·B for a chunk, with -1 standing for the chunk's pixel count P in M, K or N. */
ChunkProducts chunkProducts(const RowSum& g, int64_t M, int64_t K, int64_t N, bool transA, bool accumulate) {
  ChunkProducts c;
  c.fullP = g.step * g.OW;
  const int64_t lastP = (g.rows - (g.chunks - 1) * g.step) * g.OW;
  auto with = [&](int64_t P) { return ProductShape{1, M < 0 ? P : M, K < 0 ? P : K, N < 0 ? P : N, transA, accumulate}; };
  c.full = &threadProduct(with(c.fullP), g.nthr);
  c.last = &threadProduct(with(lastP), g.nthr);
  return c;
}

RowSum rowSumOf(const std::vector<RowConvTerm>& ts, const Shape& y) {
  RowSum g{};
  g.OW = y[2], g.O = y[3];
  g.rows = y[0] * y[1];
  g.step = std::max<int64_t>(1, kChunkPixels / g.OW);
  g.chunks = (g.rows + g.step - 1) / g.step;
  g.nthr = chunkThreads(g.chunks);
  for (const RowConvTerm& t : ts) {
    const Shape& xs = t.dx ? t.dx->shape : t.x.shape;
    Term r{};
    r.x = t.x.size > 0 ? t.x.f32() : nullptr, r.w = t.w.f32();
    r.dx = t.dx ? t.dx->f32() : nullptr, r.addend = t.addend ? t.addend->f32() : nullptr, r.dw = t.dw ? t.dw->f32() : nullptr;
    r.W = xs[2], r.C = xs[3], r.KW = t.w.shape[1], r.pl = t.p.padLeft, r.dil = t.p.dilationW;
    r.direct = r.KW == 1 && r.pl == 0 && r.W == g.OW;
    if (!r.direct) r.taps = g.tapsSize, g.tapsSize += g.step * g.OW * r.KC();
    r.acc = g.accSize, g.accSize += r.KC() * g.O;
    g.terms.push_back(r);
  }
  g.accSize += g.O;  // the bias gradient, last
  return g;
}

/** Term t's chunk input X [P, KW·C] (rows r0 … r1). */
void tapsOfInput(const RowSum& g, const Term& t, int64_t r0, int64_t r1, float* out) {
  const int64_t C = t.C, KC = t.KC();
  for (int64_t r = r0; r < r1; r++) {
    const float* row = t.x + r * t.W * C;
    for (int64_t xo = 0; xo < g.OW; xo++) {
      float* o = out + ((r - r0) * g.OW + xo) * KC;
      for (int64_t kx = 0; kx < t.KW; kx++) {
        const int64_t col = xo + t.shift(kx);
        if (col >= 0 && col < t.W) std::memcpy(o + kx * C, row + col * C, size_t(C) * 4);
        else std::memset(o + kx * C, 0, size_t(C) * 4);
      }
    }
  }
}

/** Term t's dx rows r0 … r1 = its addend (or 0) + T [P, KW·C] moved back to input columns. */
void scatterTaps(const RowSum& g, const Term& t, const float* T, int64_t r0, int64_t r1) {
  const int64_t C = t.C, KC = t.KC(), n = (r1 - r0) * t.W * C;
  if (!t.addend) std::memset(t.dx + r0 * t.W * C, 0, size_t(n) * 4);
  else if (t.addend != t.dx) std::memcpy(t.dx + r0 * t.W * C, t.addend + r0 * t.W * C, size_t(n) * 4);
  for (int64_t r = r0; r < r1; r++) {
    float* row = t.dx + r * t.W * C;
    for (int64_t xo = 0; xo < g.OW; xo++) {
      const float* tp = T + ((r - r0) * g.OW + xo) * KC;
      for (int64_t kx = 0; kx < t.KW; kx++) {
        const int64_t col = xo + t.shift(kx);
        if (col < 0 || col >= t.W) continue;
        float* __restrict d = row + col * C;
        const float* __restrict v = tp + kx * C;
#pragma omp simd
        for (int64_t c = 0; c < C; c++) d[c] += v[c];
      }
    }
  }
}

/** Term t's chunk input: x's own rows for a direct term, else gathered into the thread's buffer. */
const float* chunkInput(const RowSum& g, const Term& t, int64_t r0, int64_t r1, int tid) {
  if (t.direct) return t.x + r0 * g.OW * t.C;
  float* buf = threadBuffer(kTaps, tid, 0).data() + t.taps;
  tapsOfInput(g, t, r0, r1, buf);
  return buf;
}

/** The sum's gradients, for terms already known to fit (rowConvSumBackward checks them). */
void rowConvSum(const std::vector<RowConvTerm>& terms, const Buf& dy, const Buf* db) {
  RowSum g = rowSumOf(terms, dy.shape);
  bool anyDw = false;
  for (const Term& t : g.terms) anyDw |= t.dw != nullptr;
  std::lock_guard<std::mutex> lock(onednnLock());
  // Each term's Wᵀ [O, KW·C], side by side in thread 0's buffer, for the input gradients.
  int64_t wtSize = 0;
  for (const Term& t : g.terms) wtSize += t.dx ? t.KC() * g.O : 0;
  AlignedFloats& WT = threadBuffer(kWT, 0, wtSize);
  int64_t at = 0;
  for (Term& t : g.terms) {
    if (t.dw) t.wgrad = chunkProducts(g, t.KC(), -1, g.O, true, true);
    if (!t.dx) continue;
    float* wt = WT.data() + at;
    for (int64_t k = 0; k < t.KC(); k++)
      for (int64_t o = 0; o < g.O; o++) wt[o * t.KC() + k] = t.w[k * g.O + o];
    t.WT = wt, at += t.KC() * g.O;
    // A direct term's dx is the product's output: it starts from the addend, then the product adds.
    t.xgrad = chunkProducts(g, -1, g.O, t.KC(), false, t.direct && t.addend);
  }
  for (int t = 0; t < g.nthr; t++) {
    threadBuffer(kTaps, t, g.tapsSize);  // the chunk's gathered inputs, then their gradient
    if (anyDw || db) std::fill_n(threadBuffer(kAcc, t, g.accSize).begin(), g.accSize, 0.0f);
  }
  forChunks(g.rows, g.step, [&](int64_t r0, int64_t r1, int tid) {
    const int64_t P = (r1 - r0) * g.OW;
    const float* dyc = dy.f32() + r0 * g.OW * g.O;
    float* acc = (anyDw || db) ? threadBuffer(kAcc, tid, 0).data() : nullptr;
    if (db) {
      float* b = acc + g.accSize - g.O;
      for (int64_t i = 0; i < P; i++)
#pragma omp simd
        for (int64_t o = 0; o < g.O; o++) b[o] += dyc[i * g.O + o];
    }
    for (const Term& t : g.terms) {
      if (t.dw) runProduct(t.wgrad.of(P), tid, chunkInput(g, t, r0, r1, tid), dyc, acc + t.acc);
      if (!t.dx) continue;
      if (t.direct) {
        float* dxc = t.dx + r0 * g.OW * t.C;
        if (t.addend && t.addend != t.dx) std::memcpy(dxc, t.addend + r0 * g.OW * t.C, size_t(P * t.C) * 4);
        runProduct(t.xgrad.of(P), tid, dyc, t.WT, dxc);
      } else {
        float* buf = threadBuffer(kTaps, tid, 0).data() + t.taps;
        runProduct(t.xgrad.of(P), tid, dyc, t.WT, buf);
        scatterTaps(g, t, buf, r0, r1);
      }
    }
  });
  if (anyDw || db) {
    const float* total = sumThreadBuffers(kAcc, g.nthr, g.accSize);
    for (const Term& t : g.terms)
      if (t.dw) std::copy(total + t.acc, total + t.acc + t.KC() * g.O, t.dw);
    if (db) std::copy(total + g.accSize - g.O, total + g.accSize, db->f32());
  }
}

/** Throws unless every term is a one-row convolution giving dy, with gradients of its tensors' shapes. */
void checkTerms(const std::vector<RowConvTerm>& terms, const Shape& y) {
  if (terms.empty()) throw ArgumentError("needs at least one term");
  for (size_t i = 0; i < terms.size(); i++) {
    const RowConvTerm& t = terms[i];
    const std::string term = "term " + std::to_string(i);
    checkConvShapes(t.x.shape, t.w.shape, y, t.p);
    if (!rowConvFits(t.x.shape, t.w.shape, y, t.p)) {
      throw ArgumentError(term + " (x " + fmtShape(t.x.shape) + ", w " + fmtShape(t.w.shape) + ") is not a one-row convolution giving " + fmtShape(y));
    }
    // The gradients are read with their own shapes: they must be their tensors'.
    for (auto [name, b, like] : {std::tuple<const char*, const Buf*, const Buf*>{"dx", t.dx, &t.x}, {"addend", t.addend, &t.x}, {"dw", t.dw, &t.w}}) {
      if (!b) continue;
      if (b->size != like->size) throw ArgumentError(std::string(name) + " of " + term + " holds " + std::to_string(b->size) + " elements, expected " + std::to_string(like->size));
      if (b->shape != like->shape) throw ArgumentError(std::string(name) + " of " + term + " has shape " + fmtShape(b->shape) + ", expected " + fmtShape(like->shape));
    }
    if (t.addend && !t.dx) throw ArgumentError(term + " has an addend but no dx");
    if (t.addend && t.addend->f32() != t.dx->f32()) {
      const float *a = t.addend->f32(), *d = t.dx->f32();
      if (a < d + t.dx->size && d < a + t.addend->size) {
        throw ArgumentError("the addend of " + term + " overlaps its dx without being it: pass dx itself (in place) or separate memory");
      }
    }
  }
}

}  // namespace

bool rowConvFits(const Shape& x, const Shape& w, const Shape& y, const ConvParams& p) {
  return w.size() == 4 && w[0] == 1 && p.strideH == 1 && p.strideW == 1 && p.padTop == 0 && y[1] == x[1];
}

void rowConvSumBackward(const std::vector<RowConvTerm>& terms, const Buf& dy, const Buf* db) {
  for (const RowConvTerm& t : terms) {
    if (t.p.bf16) throw ArgumentError("computes in fp32 only: a bf16 sum of convolutions takes conv2dBackward per term");
  }
  checkTerms(terms, dy.shape);
  rowConvSum(terms, dy, db);
}

void rowConvBackward(const Buf& x, const Buf& dy, const Buf& w, const Buf* dx, const Buf* dw, const Buf* db, const ConvParams& p) {
  rowConvSum({RowConvTerm{x, w, p, dx, nullptr, dw}}, dy, db);
}

}  // namespace arpix
