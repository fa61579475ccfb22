// Convolutions with 3-wide kernels computed by 1-D Winograd F(4, 3) along the width (Lavin &
// Gray 2016, "Fast Algorithms for Convolutional Neural Networks", the 1-D minimal filtering
// algorithm with interpolation points 0, ±1, ±2, ∞), rows direct. Four outputs of a row cost six
// products per input channel instead of twelve: a Gated PixelCNN vertical convolution (2×3)
// does half the multiplications of the direct kernel.
//
// Rounding mixes every input of a six-column tile into each of its four outputs, so a layer may
// use this only when every column it could read is already visible to every output of the row
// (Gated PixelCNN's vertical stack: the rows it reads are all above the current pixel). Rows are
// never mixed: an output depends on exactly the rows the direct convolution reads.
//
// Work is split by output rows; each thread transforms a chunk of tiles into its own buffers
// (they stay in its L2 cache), multiplies them on oneDNN (thread_products.h) and transforms back. Dilation d: the output columns x ≡ q (mod d) form an
// undilated 1-D convolution over the input columns ≡ q − padLeft, tiled on their own.
#include <algorithm>
#include <array>
#include <cstring>
#include <vector>

#include "thread_products.h"

namespace arpix {
namespace {

constexpr int64_t kTile = 4;    // outputs per tile
constexpr int64_t kAlpha = 6;   // transform points
constexpr int64_t kChunkTiles = 96;
// The thread buffers (thread_products.h) this file uses: U and Uᵀ (thread 0's), then per thread
// the transformed input (later its gradient), the products, and the weight-gradient accumulators.
enum Buffers : int { kU = 0, kV = 1, kM = 2, kAcc = 3, kUT = 4 };

struct RowGeom {
  int64_t N, H, W, C, O, KH, OH, OW, pt, pl, dh, dw;
  int64_t K;                                      // KH · C: the sgemm's inner size
  std::vector<std::pair<int64_t, int64_t>> tiles;  // (phase q, first index j0) of each tile of a row
};

RowGeom rowGeom(const Shape& x, const Shape& w, const Shape& y, const ConvParams& p) {
  RowGeom g{};
  g.N = x[0], g.H = x[1], g.W = x[2], g.C = x[3];
  g.KH = w[0], g.O = w[3];
  g.OH = y[1], g.OW = y[2];
  g.pt = p.padTop, g.pl = p.padLeft, g.dh = p.dilationH, g.dw = p.dilationW;
  g.K = g.KH * g.C;
  for (int64_t q = 0; q < std::min(g.dw, g.OW); q++) {
    const int64_t count = (g.OW - q + g.dw - 1) / g.dw;
    for (int64_t j0 = 0; j0 < count; j0 += kTile) g.tiles.emplace_back(q, j0);
  }
  return g;
}

/** Rows of the output per chunk: about kChunkTiles tiles. */
int64_t chunkRows(const RowGeom& g) { return std::max<int64_t>(1, kChunkTiles / int64_t(g.tiles.size())); }

/** The input column read by tap u (0..5) of a tile, or −1 when it is padding. */
inline int64_t tileColumn(const RowGeom& g, int64_t q, int64_t j0, int64_t u) {
  const int64_t c = q - g.pl + g.dw * (j0 + u);
  return c >= 0 && c < g.W ? c : -1;
}

/** Number of outputs of a tile inside the row (4, fewer for the last tile of a phase). */
inline int64_t tileOutputs(const RowGeom& g, int64_t q, int64_t j0) {
  const int64_t count = (g.OW - q + g.dw - 1) / g.dw;
  return std::min(kTile, count - j0);
}

/** Row t's slices of the six planes of a [6, T, width] buffer (plane = T · width), at base. */
template <class F>
std::array<F*, kAlpha> planes(F* base, int64_t plane) {
  return {base, base + plane, base + 2 * plane, base + 3 * plane, base + 4 * plane, base + 5 * plane};
}

/** Pointers `step` floats apart from first: the kTile outputs of a tile along a row. */
template <class F>
std::array<F*, kTile> tileOutputsAt(F* first, int64_t step) {
  return {first, first + step, first + 2 * step, first + 3 * step};
}

/** U_s[ky·C + c][o] = Σ_v G[s][v] · w[ky][v][c][o]: the weights at the six points. */
void transformWeights(const RowGeom& g, const float* w, float* U) {
  const int64_t plane = g.K * g.O, CO = g.C * g.O;
  for (int64_t ky = 0; ky < g.KH; ky++) {
    const float* w0 = w + (ky * 3 + 0) * CO;
    const float* w1 = w + (ky * 3 + 1) * CO;
    const float* w2 = w + (ky * 3 + 2) * CO;
    float* u = U + ky * CO;
    for (int64_t i = 0; i < CO; i++) {
      const float a = w0[i], b = w1[i], c = w2[i];
      u[0 * plane + i] = a * 0.25f;
      u[1 * plane + i] = -(a + b + c) * (1.0f / 6);
      u[2 * plane + i] = -(a - b + c) * (1.0f / 6);
      u[3 * plane + i] = a * (1.0f / 24) + b * (1.0f / 12) + c * (1.0f / 6);
      u[4 * plane + i] = a * (1.0f / 24) - b * (1.0f / 12) + c * (1.0f / 6);
      u[5 * plane + i] = c;
    }
  }
}

/** dw[ky][v][c][o] = Σ_s G[s][v] · dU_s[ky·C + c][o]: the transpose of transformWeights. */
void weightGradientFromPoints(const RowGeom& g, const float* dU, float* dw) {
  const int64_t plane = g.K * g.O, CO = g.C * g.O;
  for (int64_t ky = 0; ky < g.KH; ky++) {
    const float* d = dU + ky * CO;
    float* w0 = dw + (ky * 3 + 0) * CO;
    float* w1 = dw + (ky * 3 + 1) * CO;
    float* w2 = dw + (ky * 3 + 2) * CO;
    for (int64_t i = 0; i < CO; i++) {
      const float d0 = d[i], d1 = d[plane + i], d2 = d[2 * plane + i], d3 = d[3 * plane + i], d4 = d[4 * plane + i], d5 = d[5 * plane + i];
      w0[i] = d0 * 0.25f - (d1 + d2) * (1.0f / 6) + (d3 + d4) * (1.0f / 24);
      w1[i] = (d2 - d1) * (1.0f / 6) + (d3 - d4) * (1.0f / 12);
      w2[i] = (d3 + d4 - d1 - d2) * (1.0f / 6) + d5;
    }
  }
}

/**
 * V_s[t][ky·C + c] = Σ_u Bᵀ[s][u] · x[n, iy, col_u, c] for the chunk's tiles (rows r0 … r1 of the
 * flattened [N, OH] output rows), zeros for padding. V holds six [tiles, K] planes.
 */
void transformInput(const RowGeom& g, const float* x, const float* zeros, int64_t r0, int64_t r1, float* V) {
  const int64_t T = (r1 - r0) * int64_t(g.tiles.size());
  const int64_t plane = T * g.K, C = g.C;
  int64_t t = 0;
  for (int64_t r = r0; r < r1; r++) {
    const int64_t n = r / g.OH, y = r % g.OH;
    for (const auto& [q, j0] : g.tiles) {
      for (int64_t ky = 0; ky < g.KH; ky++) {
        float* v = V + t * g.K + ky * C;
        const int64_t iy = y - g.pt + ky * g.dh;
        if (iy < 0 || iy >= g.H) {
          for (int64_t s = 0; s < kAlpha; s++) std::memset(v + s * plane, 0, size_t(C) * 4);
          continue;
        }
        const float* row = x + (n * g.H + iy) * g.W * C;
        const float* d[kAlpha];
        for (int64_t u = 0; u < kAlpha; u++) {
          const int64_t col = tileColumn(g, q, j0, u);
          d[u] = col < 0 ? zeros : row + col * C;
        }
        const auto o = planes(v, plane);
#pragma omp simd
        for (int64_t c = 0; c < C; c++) {
          const float d0 = d[0][c], d1 = d[1][c], d2 = d[2][c], d3 = d[3][c], d4 = d[4][c], d5 = d[5][c];
          o[0][c] = 4 * d0 - 5 * d2 + d4;
          o[1][c] = -4 * (d1 + d2) + d3 + d4;
          o[2][c] = 4 * (d1 - d2) - d3 + d4;
          o[3][c] = 2 * (d3 - d1) - d2 + d4;
          o[4][c] = 2 * (d1 - d3) - d2 + d4;
          o[5][c] = 4 * d1 - 5 * d3 + d5;
        }
      }
      t++;
    }
  }
}

/** The four outputs of a tile from its six products: Aᵀ · m. */
struct TileOut {
  float r0, r1, r2, r3;
};
inline TileOut outputsOf(float m0, float m1, float m2, float m3, float m4, float m5) {
  return {m0 + m1 + m2 + m3 + m4, m1 - m2 + 2 * (m3 - m4), m1 + m2 + 4 * (m3 + m4), m1 - m2 + 8 * (m3 - m4) + m5};
}

/** out[n, y, x_r, o] (+)= bias[o] + Σ_s Aᵀ[r][s] · M_s[t][o] for the tile outputs inside the row. */
void transformOutput(const RowGeom& g, const float* M, const float* bias, bool accumulate, int64_t r0, int64_t r1, float* out) {
  const int64_t T = (r1 - r0) * int64_t(g.tiles.size());
  const int64_t plane = T * g.O, O = g.O;
  std::vector<float> zeroBias;
  if (!bias) zeroBias.assign(size_t(O), 0.0f);
  const float* __restrict b = bias ? bias : zeroBias.data();
  int64_t t = 0;
  for (int64_t r = r0; r < r1; r++) {
    float* row = out + r * g.OW * O;
    for (const auto& [q, j0] : g.tiles) {
      const auto m = planes(M + t * O, plane);
      const int64_t outs = tileOutputs(g, q, j0);
      if (outs == kTile) {
        const auto y = tileOutputsAt(row + (q + g.dw * j0) * O, g.dw * O);
        if (accumulate) {
#pragma omp simd
          for (int64_t o = 0; o < O; o++) {
            const TileOut v = outputsOf(m[0][o], m[1][o], m[2][o], m[3][o], m[4][o], m[5][o]);
            y[0][o] += b[o] + v.r0, y[1][o] += b[o] + v.r1, y[2][o] += b[o] + v.r2, y[3][o] += b[o] + v.r3;
          }
        } else {
#pragma omp simd
          for (int64_t o = 0; o < O; o++) {
            const TileOut v = outputsOf(m[0][o], m[1][o], m[2][o], m[3][o], m[4][o], m[5][o]);
            y[0][o] = b[o] + v.r0, y[1][o] = b[o] + v.r1, y[2][o] = b[o] + v.r2, y[3][o] = b[o] + v.r3;
          }
        }
      } else {
        for (int64_t o = 0; o < O; o++) {
          const TileOut v = outputsOf(m[0][o], m[1][o], m[2][o], m[3][o], m[4][o], m[5][o]);
          const float rs[kTile] = {v.r0, v.r1, v.r2, v.r3};
          for (int64_t k = 0; k < outs; k++) {
            float& y = row[(q + g.dw * (j0 + k)) * O + o];
            y = (accumulate ? y : 0.0f) + b[o] + rs[k];
          }
        }
      }
      t++;
    }
  }
}

/** dM_s[t][o] = Σ_r Aᵀ[r][s] · dy[n, y, x_r, o]: the transpose of transformOutput (0 past the row). */
void transformOutputGradient(const RowGeom& g, const float* dy, int64_t r0, int64_t r1, float* dM) {
  const int64_t T = (r1 - r0) * int64_t(g.tiles.size());
  const int64_t plane = T * g.O, O = g.O;
  int64_t t = 0;
  for (int64_t r = r0; r < r1; r++) {
    const float* row = dy + r * g.OW * O;
    for (const auto& [q, j0] : g.tiles) {
      float* m = dM + t * O;
      const int64_t outs = tileOutputs(g, q, j0);
      if (outs == kTile) {
        const auto e = tileOutputsAt(row + (q + g.dw * j0) * O, g.dw * O);
        const auto n = planes(m, plane);
#pragma omp simd
        for (int64_t o = 0; o < O; o++) {
          const float a = e[0][o], b = e[1][o], c = e[2][o], d = e[3][o];
          n[0][o] = a;
          n[1][o] = a + b + c + d;
          n[2][o] = a - b + c - d;
          n[3][o] = a + 2 * b + 4 * c + 8 * d;
          n[4][o] = a - 2 * b + 4 * c - 8 * d;
          n[5][o] = d;
        }
      } else {
        for (int64_t o = 0; o < O; o++) {
          float e[kTile] = {0, 0, 0, 0};
          for (int64_t k = 0; k < outs; k++) e[k] = row[(q + g.dw * (j0 + k)) * O + o];
          m[o] = e[0];
          m[plane + o] = e[0] + e[1] + e[2] + e[3];
          m[2 * plane + o] = e[0] - e[1] + e[2] - e[3];
          m[3 * plane + o] = e[0] + 2 * e[1] + 4 * e[2] + 8 * e[3];
          m[4 * plane + o] = e[0] - 2 * e[1] + 4 * e[2] - 8 * e[3];
          m[5 * plane + o] = e[3];
        }
      }
      t++;
    }
  }
}

/**
 * dx[n, iy, col_u, c] += Σ_s Bᵀ[s][u] · dV_s[t][c] for kernel row ky (iy = y − pt + ky·dh): the
 * transpose of transformInput. dV holds six [tiles, C] planes. Each output row writes one input
 * row, so chunks of rows never write the same memory within one ky.
 */
void scatterInputGradient(const RowGeom& g, const float* dV, int64_t ky, int64_t r0, int64_t r1, float* dx) {
  const int64_t T = (r1 - r0) * int64_t(g.tiles.size());
  const int64_t plane = T * g.C, C = g.C;
  int64_t t = 0;
  for (int64_t r = r0; r < r1; r++) {
    const int64_t n = r / g.OH, y = r % g.OH;
    const int64_t iy = y - g.pt + ky * g.dh;
    if (iy < 0 || iy >= g.H) {
      t += int64_t(g.tiles.size());
      continue;
    }
    float* row = dx + (n * g.H + iy) * g.W * C;
    for (const auto& [q, j0] : g.tiles) {
      const float* v = dV + t * C;
      float* d[kAlpha];
      for (int64_t u = 0; u < kAlpha; u++) {
        const int64_t col = tileColumn(g, q, j0, u);
        d[u] = col < 0 ? nullptr : row + col * C;
      }
      const auto p = planes(v, plane);
      // Column u of the tile gets (Bᵀ)ᵀ row u of the six planes.
      if (float* o = d[0]) {
#pragma omp simd
        for (int64_t c = 0; c < C; c++) o[c] += 4 * p[0][c];
      }
      if (float* o = d[1]) {
#pragma omp simd
        for (int64_t c = 0; c < C; c++) o[c] += 4 * (p[2][c] - p[1][c]) + 2 * (p[4][c] - p[3][c]) + 4 * p[5][c];
      }
      if (float* o = d[2]) {
#pragma omp simd
        for (int64_t c = 0; c < C; c++) o[c] += -5 * p[0][c] - 4 * (p[1][c] + p[2][c]) - p[3][c] - p[4][c];
      }
      if (float* o = d[3]) {
#pragma omp simd
        for (int64_t c = 0; c < C; c++) o[c] += p[1][c] - p[2][c] + 2 * (p[3][c] - p[4][c]) - 5 * p[5][c];
      }
      if (float* o = d[4]) {
#pragma omp simd
        for (int64_t c = 0; c < C; c++) o[c] += p[0][c] + p[1][c] + p[2][c] + p[3][c] + p[4][c];
      }
      if (float* o = d[5]) {
#pragma omp simd
        for (int64_t c = 0; c < C; c++) o[c] += p[5][c];
      }
      t++;
    }
  }
}

int64_t rowsOf(const RowGeom& g) { return g.N * g.OH; }

/** The products of a kind for every chunk size (in tiles) a call uses. */
struct Products {
  std::vector<std::pair<int64_t, const ThreadProduct*>> byTiles;
  const ThreadProduct& forTiles(int64_t T) const {
    for (const auto& [t, p] : byTiles)
      if (t == T) return *p;
    throw std::logic_error("rowWinograd: no product for a chunk of " + std::to_string(T) + " tiles");
  }
};

// The six products of a chunk are one batched matmul ([6, …] operands) on the chunk's thread.
enum class Product {
  Forward,     // M[6, T, O] = V[6, T, K] · U[6, K, O]
  WeightGrad,  // dU[6, K, O] += V[6, T, K]ᵀ · dM[6, T, O]
  InputGrad,   // dV[6, T, C] = dM[6, T, O] · Uᵀ[ky][6, O, C]
};

/** Chunk sizes, in rows, of rows r0 … r1 cut every chunkRows(g). */
void chunkSizes(const RowGeom& g, int64_t r0, int64_t r1, std::vector<int64_t>& out) {
  for (int64_t r = r0; r < r1; r += chunkRows(g)) {
    const int64_t n = std::min(r1, r + chunkRows(g)) - r;
    if (std::find(out.begin(), out.end(), n) == out.end()) out.push_back(n);
  }
}

Products productsFor(Product kind, const RowGeom& g, const std::vector<int64_t>& rowCounts, int nthr) {
  Products ps;
  for (int64_t rows : rowCounts) {
    const int64_t T = rows * int64_t(g.tiles.size());
    const ProductShape shape = kind == Product::Forward ? ProductShape{kAlpha, T, g.K, g.O, false, false}
      : kind == Product::WeightGrad ? ProductShape{kAlpha, g.K, T, g.O, true, true}
      : ProductShape{kAlpha, T, g.O, g.C, false, false};
    ps.byTiles.emplace_back(T, &threadProduct(shape, nthr));
  }
  return ps;
}

}  // namespace

bool rowWinogradFits(const Shape& w, const ConvParams& p) {
  return p.rowWinograd && w.size() == 4 && w[1] == 3 && p.strideH == 1 && p.strideW == 1;
}

void rowWinogradForward(const Buf& x, const Buf& w, const Buf* bias, const Buf& out, const ConvParams& p, bool accumulate) {
  const RowGeom g = rowGeom(x.shape, w.shape, out.shape, p);
  const int64_t maxT = chunkRows(g) * int64_t(g.tiles.size());
  std::lock_guard<std::mutex> lock(onednnLock());
  AlignedFloats& U = threadBuffer(kU, 0, kAlpha * g.K * g.O);
  transformWeights(g, w.f32(), U.data());
  const std::vector<float> zeros(size_t(g.C), 0.0f);
  const int nthr = chunkThreads((rowsOf(g) + chunkRows(g) - 1) / chunkRows(g));
  for (int t = 0; t < nthr; t++) {
    threadBuffer(kV, t, kAlpha * maxT * g.K);
    threadBuffer(kM, t, kAlpha * maxT * g.O);
  }
  std::vector<int64_t> sizes;
  chunkSizes(g, 0, rowsOf(g), sizes);
  const Products forward = productsFor(Product::Forward, g, sizes, nthr);
  forChunks(rowsOf(g), chunkRows(g), [&](int64_t r0, int64_t r1, int tid) {
    const int64_t T = (r1 - r0) * int64_t(g.tiles.size());
    float* V = threadBuffer(kV, tid, 0).data();
    float* M = threadBuffer(kM, tid, 0).data();
    transformInput(g, x.f32(), zeros.data(), r0, r1, V);
    runProduct(forward.forTiles(T), tid, V, U.data(), M);
    transformOutput(g, M, bias ? bias->f32() : nullptr, accumulate, r0, r1, out.f32());
  });
}

void rowWinogradBackward(const Buf& x, const Buf& dy, const Buf& w, const Buf* dx, const Buf* dw, const Buf* db, const ConvParams& p) {
  const RowGeom g = rowGeom(dx ? dx->shape : x.shape, w.shape, dy.shape, p);
  const int64_t maxT = chunkRows(g) * int64_t(g.tiles.size());
  std::lock_guard<std::mutex> lock(onednnLock());
  const int64_t planeU = g.K * g.O;
  AlignedFloats& U = threadBuffer(kU, 0, kAlpha * planeU);
  // Uᵀ per kernel row, [KH][6][O][C], for the input gradient.
  AlignedFloats& UT = threadBuffer(kUT, 0, dx ? kAlpha * planeU : 0);
  if (dx) {
    transformWeights(g, w.f32(), U.data());
    for (int64_t ky = 0; ky < g.KH; ky++)
      for (int64_t s = 0; s < kAlpha; s++) {
        float* dst = UT.data() + (ky * kAlpha + s) * g.O * g.C;
        const float* src = U.data() + s * planeU + ky * g.C * g.O;
        for (int64_t c = 0; c < g.C; c++)
          for (int64_t o = 0; o < g.O; o++) dst[o * g.C + c] = src[c * g.O + o];
      }
  }
  const std::vector<float> zeros(size_t(g.C), 0.0f);
  const int64_t rows = rowsOf(g), step = chunkRows(g);
  // Output rows of different images write different rows of dx. With whole images per thread, one
  // pass makes every gradient of a chunk from one transform of its dy; otherwise (fewer images than
  // twice the threads) one pass per kernel row, in which every output row writes one row of dx.
  const int maxThreads = omp_get_max_threads();
  const bool byImages = g.N >= 2 * int64_t(maxThreads);
  std::vector<std::pair<int64_t, int64_t>> ranges;
  std::vector<int64_t> sizes;
  if (byImages) {
    for (int t = 0; t < maxThreads; t++) ranges.emplace_back(t * g.N / maxThreads * g.OH, (t + 1) * g.N / maxThreads * g.OH);
    for (const auto& [r0, r1] : ranges) chunkSizes(g, r0, r1, sizes);
  } else {
    chunkSizes(g, 0, rows, sizes);
  }
  const int nthr = byImages ? maxThreads : chunkThreads((rows + step - 1) / step);
  for (int t = 0; t < nthr; t++) {
    threadBuffer(kV, t, kAlpha * maxT * g.K);  // V, then dV
    threadBuffer(kM, t, kAlpha * maxT * g.O);  // dM
    if (dw || db) {
      // dU accumulators (and the bias gradient behind them), zeroed per call.
      AlignedFloats& acc = threadBuffer(kAcc, t, kAlpha * planeU + g.O);
      std::fill(acc.begin(), acc.begin() + kAlpha * planeU + g.O, 0.0f);
    }
  }
  const Products weightGrad = dw ? productsFor(Product::WeightGrad, g, sizes, nthr) : Products{};
  const Products inputGrad = dx ? productsFor(Product::InputGrad, g, sizes, nthr) : Products{};
  if (dx) std::memset(dx->data, 0, size_t(dx->size) * 4);
  // The gradients of chunk r0 … r1: the weights' when `weights`, and dx's through kernel rows ky0 … ky1.
  auto chunk = [&](int64_t r0, int64_t r1, int tid, bool weights, int64_t ky0, int64_t ky1) {
    const int64_t T = (r1 - r0) * int64_t(g.tiles.size());
    float* V = threadBuffer(kV, tid, 0).data();
    float* dM = threadBuffer(kM, tid, 0).data();
    transformOutputGradient(g, dy.f32(), r0, r1, dM);
    if (weights) {
      float* dU = threadBuffer(kAcc, tid, 0).data();
      if (dw) {
        transformInput(g, x.f32(), zeros.data(), r0, r1, V);
        runProduct(weightGrad.forTiles(T), tid, V, dM, dU);
      }
      if (db) {
        float* b = dU + kAlpha * planeU;
        const float* d = dy.f32() + r0 * g.OW * g.O;
        for (int64_t i = 0; i < (r1 - r0) * g.OW; i++)
          for (int64_t o = 0; o < g.O; o++) b[o] += d[i * g.O + o];
      }
    }
    if (!dx) return;
    for (int64_t ky = ky0; ky < ky1; ky++) {
      // dV_s = dM_s · (U_s rows of kernel row ky)ᵀ → [T, C], then scattered into dx.
      runProduct(inputGrad.forTiles(T), tid, dM, UT.data() + ky * kAlpha * g.O * g.C, V);
      scatterInputGradient(g, V, ky, r0, r1, dx->f32());
    }
  };
  if (byImages) {
    forThreadRanges(ranges, step, [&](int64_t r0, int64_t r1, int tid) { chunk(r0, r1, tid, dw || db, 0, dx ? g.KH : 0); });
  } else {
    for (int64_t ky = 0; ky < g.KH; ky++) {
      const bool weights = ky == 0 && (dw || db);
      if (!weights && !dx) break;
      forChunks(rows, step, [&](int64_t r0, int64_t r1, int tid) { chunk(r0, r1, tid, weights, ky, dx ? ky + 1 : ky); });
    }
  }
  if (dw || db) {
    const float* total = sumThreadBuffers(kAcc, nthr, kAlpha * planeU + g.O);
    if (dw) weightGradientFromPoints(g, total, dw->f32());
    if (db) std::copy(total + kAlpha * planeU, total + kAlpha * planeU + g.O, db->f32());
  }
}

}  // namespace arpix
