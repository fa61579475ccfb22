// Fused multi-head attention, flash-attention style (Dao et al. 2022; the backward of FlashAttention-2):
// softmax(scale·Q Kᵀ + mask)·V over tiles of TQ queries × TK keys, with an online softmax, so the
// L×L matrix is never formed and tiles the pattern masks entirely are never touched. The forward
// keeps each query's log-sum-exp; the backward recomputes the probabilities of each tile from it.
//
// Layout (src/kernels/contracts.ts): qkv [N, L, 3C] = [q | k | v] on the last axis, C = heads·d,
// head-major; out [N, L, C]; lse [N, heads, L]. A head's rows are strided by 3C floats; each tile
// is copied into a small per-thread buffer (Q and V as rows, K transposed), padded with zeros to
// a multiple of 16 floats per head so the products below run on whole 16-float vectors.
//
// The products are register-blocked loops over GCC/Clang vector types (16 floats: one AVX-512
// register, two AVX2 ones): at head sizes of 16–128 a oneDNN call per 64×64 tile costs more in
// overhead than the tile's arithmetic.
//
// Threads: the forward runs one task per (image, head, query tile), the backward one per
// (image, head) — a task then owns its dQ, dK and dV rows, so no two threads write one row.
//
// Mixed precision (AttentionAttrs.bf16; BF16_OPERANDS in src/kernels/contracts.ts defines it): Q,
// K, V, dO and the computed P̃, P and dS are rounded to bfloat16 as the products' operands; the
// softmax statistics, the row dots and the accumulation stay fp32. Where the CPU has AVX512-BF16
// (and oneDNN's ISA cap, ONEDNN_MAX_CPU_ISA, allows it) the products run on its dot products, which
// multiply two pairs of bf16 along the sum and add both into an fp32 lane: every operand is stored
// as 32-bit words of two bf16 adjacent along its product's sum (Q and dO rows pair along the head,
// K transposed in pairs along the head, V, and Q and dO for dK and dV, in pairs of rows). Elsewhere
// the same operands are rounded into the fp32 loops above — the same numbers, only slower. The
// dot products count operands below float32's normal range (2^-126) as zero, which moves no
// result by more than fp32 accumulation does.
#include <algorithm>
#include <cstring>
#include <limits>
#include <map>
#include <mutex>
#include <vector>

#include "common.h"
#include "thread_products.h"
#include "vmath.h"

#if defined(__x86_64__) && (defined(__clang__) || __GNUC__ >= 10)
#include <immintrin.h>
#define ARPIX_AVX512_BF16 1
// The bf16 kernels are compiled for AVX512-BF16 whatever the build's -march, and run only where
// hardwareBf16() says the CPU has it.
#define BF16_TARGET __attribute__((target("avx512bf16,avx512f,avx512bw,avx512vl,avx512dq")))
#endif

namespace arpix {
namespace {

typedef float vf __attribute__((vector_size(64)));
typedef float vfu __attribute__((vector_size(64), aligned(4)));

inline vf load(const float* p) { return *reinterpret_cast<const vfu*>(p); }
inline void store(float* p, vf v) { *reinterpret_cast<vfu*>(p) = v; }

constexpr int TQ = 64;  // queries per tile
constexpr int TK = 64;  // keys per tile (a multiple of 16: four vectors per row of S)
constexpr float kNegInf = -std::numeric_limits<float>::infinity();

enum TileClass : uint8_t { kEmpty = 0, kPartial = 1, kFull = 2 };

/** The pattern of src/kernels/attention.ts, with the 2-D coordinates of every position precomputed. */
struct Pattern {
  int kind = 0;  // 0 causal, 1 full, 2 local1d, 3 local2d
  int64_t block = 1, memory = 0;
  int64_t height = 1, width = 1, bh = 1, bw = 1, mh = 0, mw = 0;
  bool raster = false;  // local2d: the grid in raster order, rather than blocks in raster order
  // local2d: row, column, and the top row / left column of the position's block
  std::vector<int32_t> y, x, by, bx;

  int64_t lower1d(int64_t i) const { return (i / block) * block - memory; }

  bool allowed(int64_t i, int64_t j) const {
    switch (kind) {
      case 0: return j <= i;
      case 1: return true;
      case 2: return j <= i && j >= lower1d(i);
      default:
        return j <= i && y[j] >= by[i] - mh && y[j] < by[i] + bh && x[j] >= bx[i] - mw && x[j] < bx[i] + bw + mw;
    }
  }

  /** The first key position query i may see (a lower bound for local2d). */
  int64_t firstKey(int64_t i) const {
    switch (kind) {
      case 2: return std::max<int64_t>(0, lower1d(i));
      case 3: {
        const int64_t top = std::max<int64_t>(0, by[i] - mh), left = std::max<int64_t>(0, bx[i] - mw);
        if (raster) return top * width + left;
        return ((top / bh) * (width / bw) + left / bw) * bh * bw;
      }
      default: return 0;
    }
  }
};

Pattern patternOf(const std::vector<int64_t>& code, int64_t L) {
  Pattern p;
  if (code.empty()) throw std::runtime_error("empty attention pattern");
  p.kind = int(code[0]);
  if (p.kind == 2) {
    if (code.size() != 3 || code[1] < 1 || code[2] < 0) throw std::runtime_error("local1d pattern must be [2, block >= 1, memory >= 0]");
    p.block = code[1], p.memory = code[2];
  } else if (p.kind == 3) {
    if ((code.size() != 7 && code.size() != 8) || (code.size() == 8 && code[7] != 0 && code[7] != 1)) {
      throw std::runtime_error("local2d pattern must be [3, height, width, blockHeight, blockWidth, memoryHeight, memoryWidth, order 0 (block) or 1 (raster)]");
    }
    p.height = code[1], p.width = code[2], p.bh = code[3], p.bw = code[4], p.mh = code[5], p.mw = code[6];
    p.raster = code.size() == 8 && code[7] == 1;
    if (p.bh < 1 || p.bw < 1 || p.height % p.bh || p.width % p.bw || p.height * p.width != L || p.mh < 0 || p.mw < 0) {
      throw std::runtime_error("local2d pattern does not tile a grid of the sequence's length");
    }
    p.y.resize(size_t(L)), p.x.resize(size_t(L)), p.by.resize(size_t(L)), p.bx.resize(size_t(L));
    const int64_t bs = p.bh * p.bw, perRow = p.width / p.bw;
    for (int64_t s = 0; s < L; s++) {
      if (p.raster) {
        const int64_t yy = s / p.width, xx = s % p.width;
        p.y[size_t(s)] = int32_t(yy), p.x[size_t(s)] = int32_t(xx);
        p.by[size_t(s)] = int32_t((yy / p.bh) * p.bh), p.bx[size_t(s)] = int32_t((xx / p.bw) * p.bw);
        continue;
      }
      const int64_t b = s / bs, r = s % bs, byk = b / perRow, bxk = b % perRow;
      p.by[size_t(s)] = int32_t(byk * p.bh), p.bx[size_t(s)] = int32_t(bxk * p.bw);
      p.y[size_t(s)] = int32_t(byk * p.bh + r / p.bw), p.x[size_t(s)] = int32_t(bxk * p.bw + r % p.bw);
    }
  } else if (p.kind != 0 && p.kind != 1) {
    throw std::runtime_error("unknown attention pattern kind " + std::to_string(p.kind));
  }
  return p;
}

/** Whether every, some or none of the (query, key) pairs of a tile are allowed. */
TileClass classify(const Pattern& p, int64_t i0, int64_t i1, int64_t j0, int64_t j1) {
  switch (p.kind) {
    case 1: return kFull;
    case 0: return j0 > i1 - 1 ? kEmpty : j1 - 1 <= i0 ? kFull : kPartial;
    case 2:
      if (j0 > i1 - 1 || j1 - 1 < p.lower1d(i0)) return kEmpty;
      return j1 - 1 <= i0 && j0 >= p.lower1d(i1 - 1) ? kFull : kPartial;
    default: {
      int64_t count = 0;
      for (int64_t i = i0; i < i1; i++)
        for (int64_t j = j0; j < j1; j++) count += p.allowed(i, j);
      return count == 0 ? kEmpty : count == (i1 - i0) * (j1 - j0) ? kFull : kPartial;
    }
  }
}

/** Tile classes [query tile][key tile]; local2d's (counted pair by pair) are cached by pattern and length. */
const std::vector<uint8_t>& tileClasses(const Pattern& p, const std::vector<int64_t>& code, int64_t L) {
  static std::mutex lock;
  static std::map<std::vector<int64_t>, std::vector<uint8_t>> cache;
  std::vector<int64_t> key = code;
  key.push_back(L);
  std::lock_guard<std::mutex> guard(lock);
  auto it = cache.find(key);
  if (it != cache.end()) return it->second;
  if (cache.size() > 64) cache.clear();
  const int64_t nq = (L + TQ - 1) / TQ, nk = (L + TK - 1) / TK;
  std::vector<uint8_t> c(size_t(nq * nk));
  for (int64_t a = 0; a < nq; a++)
    for (int64_t b = 0; b < nk; b++) c[size_t(a * nk + b)] = classify(p, a * TQ, std::min(L, (a + 1) * TQ), b * TK, std::min(L, (b + 1) * TK));
  return cache.emplace(key, std::move(c)).first->second;
}

/**
 * Bit c set when query i may read key j0 + c, for the c < nk keys of a tile (TK = 64 bits). Causal
 * and local 1-D rows are one interval of columns; local 2-D partial tiles are tested key by key.
 */
uint64_t columnMask(const Pattern& p, uint8_t cls, int64_t i, int64_t j0, int nk) {
  const uint64_t valid = nk >= 64 ? ~uint64_t(0) : (uint64_t(1) << nk) - 1;
  if (cls == kFull) return valid;
  if (p.kind == 3) {
    uint64_t m = 0;
    for (int c = 0; c < nk; c++) m |= uint64_t(p.allowed(i, j0 + c)) << c;
    return m;
  }
  const int64_t lo = std::max<int64_t>(0, p.kind == 2 ? p.lower1d(i) - j0 : 0), hi = std::min<int64_t>(nk - 1, i - j0);
  if (hi < lo) return 0;
  const uint64_t upTo = hi >= 63 ? ~uint64_t(0) : (uint64_t(1) << (hi + 1)) - 1;
  return upTo & ~((uint64_t(1) << lo) - 1) & valid;
}

/**
 * x rounded up to a multiple of ln 2: the bf16 forward's shift, so that exp(S − shift) changes by
 * powers of two only from one running maximum to the next, which bf16 rounding commutes with.
 */
inline float ln2Ceil(float x) { return std::ceil(x * 1.44269504f) * 0.693147181f; }

/**
 * The online-softmax update of one row of logits s (TK of them; columns outside `mask` are not
 * visible): returns false when nothing is visible, else replaces s by exp(s − m') — exactly 0 where
 * masked, so no future value can leak in — with m' = max(m, max s), and writes m' and the sum.
 * With ln2Shift the row's maximum is first rounded up to a multiple of ln 2 (the bf16 forward's).
 */
inline bool softmaxRow(float* s, uint64_t mask, float m, float& mNew, float& sum, bool ln2Shift) {
  if (mask == 0) {
    std::memset(s, 0, sizeof(float) * TK);
    return false;
  }
#if defined(__AVX512F__)
  __m512 v[4];
  __m512 mx = _mm512_set1_ps(kNegInf);
  for (int q = 0; q < 4; q++) {
    v[q] = _mm512_mask_mov_ps(_mm512_set1_ps(kNegInf), __mmask16(mask >> (16 * q)), _mm512_loadu_ps(s + 16 * q));
    mx = _mm512_max_ps(mx, v[q]);
  }
  const float rowMax = _mm512_reduce_max_ps(mx);
  mNew = std::max(m, ln2Shift ? ln2Ceil(rowMax) : rowMax);
  __m512 acc = _mm512_setzero_ps();
  const __m512 sub = _mm512_set1_ps(mNew);
  for (int q = 0; q < 4; q++) {
    const __m512 e = _mm512_maskz_mov_ps(__mmask16(mask >> (16 * q)), vexp16(_mm512_sub_ps(v[q], sub)));
    _mm512_storeu_ps(s + 16 * q, e);
    acc = _mm512_add_ps(acc, e);
  }
  sum = _mm512_reduce_add_ps(acc);
#else
  float mx = kNegInf;
  for (int c = 0; c < TK; c++) if ((mask >> c) & 1) mx = std::max(mx, s[c]);
  mNew = std::max(m, ln2Shift ? ln2Ceil(mx) : mx);
  sum = 0.0f;
  for (int c = 0; c < TK; c++) {
    s[c] = (mask >> c) & 1 ? vexp(s[c] - mNew) : 0.0f;
    sum += s[c];
  }
#endif
  return true;
}

/** The backward's row: p = exp(scale·s − lse) (0 where masked) in s, and dS = p ⊙ (dP − D)·scale in dp. */
inline void gradientRow(float* s, float* dp, uint64_t mask, float scale, float lse, float rowDot) {
#if defined(__AVX512F__)
  const __m512 sc = _mm512_set1_ps(scale), l = _mm512_set1_ps(lse), d = _mm512_set1_ps(rowDot);
  for (int q = 0; q < 4; q++) {
    const __m512 pr = _mm512_maskz_mov_ps(__mmask16(mask >> (16 * q)), vexp16(_mm512_fmsub_ps(_mm512_loadu_ps(s + 16 * q), sc, l)));
    _mm512_storeu_ps(s + 16 * q, pr);
    _mm512_storeu_ps(dp + 16 * q, _mm512_mul_ps(_mm512_mul_ps(pr, _mm512_sub_ps(_mm512_loadu_ps(dp + 16 * q), d)), sc));
  }
#else
  for (int c = 0; c < TK; c++) {
    s[c] = (mask >> c) & 1 ? vexp(s[c] * scale - lse) : 0.0f;
    dp[c] = s[c] * (dp[c] - rowDot) * scale;
  }
#endif
}

// ---- tile products (D = 16·DV floats per row of the padded head) ----

/** S[r][0..TK) = Σ_t A[r][t] · Bt[t][0..TK) for r < rows: A [rows][D] by Bt [D][TK] (a key tile transposed, rows ldb apart). */
template <int DV>
void productABt(const float* A, const float* Bt, int64_t ldb, float* S, int rows) {
  constexpr int D = DV * 16;
  int r = 0;
  for (; r + 4 <= rows; r += 4) {
    vf acc[4][4] = {};
    for (int t = 0; t < D; t++) {
      const vf b0 = load(Bt + t * ldb), b1 = load(Bt + t * ldb + 16), b2 = load(Bt + t * ldb + 32), b3 = load(Bt + t * ldb + 48);
      for (int q = 0; q < 4; q++) {
        const float a = A[(r + q) * D + t];
        acc[q][0] += a * b0, acc[q][1] += a * b1, acc[q][2] += a * b2, acc[q][3] += a * b3;
      }
    }
    for (int q = 0; q < 4; q++)
      for (int v = 0; v < 4; v++) store(S + (r + q) * TK + 16 * v, acc[q][v]);
  }
  for (; r < rows; r++) {
    vf acc[4] = {};
    for (int t = 0; t < D; t++) {
      const float a = A[r * D + t];
      for (int v = 0; v < 4; v++) acc[v] += a * load(Bt + t * ldb + 16 * v);
    }
    for (int v = 0; v < 4; v++) store(S + r * TK + 16 * v, acc[v]);
  }
}

/**
 * Out[r][:] += Σ_s A[r·rs + s·ss] · B[s][:] for r < rows, s < sums: B [sums][D], Out [rows][D].
 * With (rs, ss) = (TK, 1) it is P·V (and dS·K); with (1, TK) it is Pᵀ·dO (and dSᵀ·Q).
 */
template <int DV>
void accumulateProduct(const float* A, int rs, int ss, const float* B, float* Out, int rows, int sums) {
  constexpr int D = DV * 16;
  constexpr int R = DV <= 2 ? 6 : DV <= 4 ? 4 : 2;  // rows per block: R·DV accumulators in registers
  int r = 0;
  for (; r + R <= rows; r += R) {
    vf acc[R][DV];
    for (int q = 0; q < R; q++)
      for (int v = 0; v < DV; v++) acc[q][v] = load(Out + (r + q) * D + 16 * v);
    for (int s = 0; s < sums; s++) {
      vf b[DV];
      for (int v = 0; v < DV; v++) b[v] = load(B + s * D + 16 * v);
      for (int q = 0; q < R; q++) {
        const float a = A[(r + q) * rs + s * ss];
        for (int v = 0; v < DV; v++) acc[q][v] += a * b[v];
      }
    }
    for (int q = 0; q < R; q++)
      for (int v = 0; v < DV; v++) store(Out + (r + q) * D + 16 * v, acc[q][v]);
  }
  for (; r < rows; r++) {
    vf acc[DV];
    for (int v = 0; v < DV; v++) acc[v] = load(Out + r * D + 16 * v);
    for (int s = 0; s < sums; s++) {
      const float a = A[r * rs + s * ss];
      for (int v = 0; v < DV; v++) acc[v] += a * load(B + s * D + 16 * v);
    }
    for (int v = 0; v < DV; v++) store(Out + r * D + 16 * v, acc[v]);
  }
}

/** Sizes and base pointers of one call. */
struct Geometry {
  int64_t N, L, C, H, d, D;  // D: d padded to a multiple of 16
  float scale;
};

/** A value as it is, or rounded to bfloat16 (a mixed-precision operand in the fp32 loops). */
inline float operand(float x, bool round) { return round ? roundBf16(x) : x; }

/** Rounds rows [0, rows) of a tile [.][TK] to bfloat16 in place (P or dS on the fp32 loops). */
void roundTile(float* s, int rows) {
  for (int64_t i = 0; i < int64_t(rows) * TK; i++) s[i] = roundBf16(s[i]);
}

/**
 * Copies rows [j0, j0 + n) of a head (at `base`, rows `stride` apart) into rows of D floats,
 * zero-padded, times mul; with round, each value rounded to bfloat16 first.
 */
void copyRows(const float* base, int64_t stride, int64_t n, int64_t d, int64_t D, int rowsOut, float* out, float mul = 1.0f, bool round = false) {
  for (int r = 0; r < rowsOut; r++) {
    float* o = out + int64_t(r) * D;
    if (r < n) {
      const float* s = base + r * stride;
      for (int64_t t = 0; t < d; t++) o[t] = operand(s[t], round) * mul;
      for (int64_t t = d; t < D; t++) o[t] = 0.0f;
    } else {
      std::memset(o, 0, size_t(D) * 4);
    }
  }
}

/** Copies n rows of a head transposed into [D][TK], zero-padded (with round, rounded to bfloat16). */
void copyTransposed(const float* base, int64_t stride, int64_t n, int64_t d, int64_t D, float* out, bool round) {
  std::memset(out, 0, size_t(D * TK) * 4);
  for (int64_t c = 0; c < n; c++) {
    const float* s = base + c * stride;
    for (int64_t t = 0; t < d; t++) out[t * TK + c] = operand(s[t], round);
  }
}

/**
 * Every head's keys transposed ([D][Lp], Lp = L padded to whole key tiles) and values as padded rows
 * ([Lp][D]), made once per call so the forward's tasks, which each visit many key tiles, copy none.
 */
struct Panels {
  AlignedFloats kt, v;
  int64_t lp = 0;
};

Panels& forwardPanels(const Geometry& g, const float* qkv, int nthr, bool round) {
  static Panels panels;
  const int64_t lp = (g.L + TK - 1) / TK * TK, per = g.D * lp, C3 = 3 * g.C;
  panels.lp = lp;
  if (int64_t(panels.kt.size()) < g.N * g.H * per) panels.kt.resize(size_t(g.N * g.H * per)), panels.v.resize(size_t(g.N * g.H * per));
#pragma omp parallel for schedule(static) num_threads(nthr)
  for (int64_t nh = 0; nh < g.N * g.H; nh++) {
    const float* head = qkv + (nh / g.H) * g.L * C3 + (nh % g.H) * g.d;
    float* kt = panels.kt.data() + nh * per;
    std::memset(kt, 0, sizeof(float) * size_t(per));
    for (int64_t j = 0; j < g.L; j++)
      for (int64_t t = 0; t < g.d; t++) kt[t * lp + j] = operand(head[g.C + j * C3 + t], round);
    copyRows(head + 2 * g.C, C3, g.L, g.d, g.D, int(lp), panels.v.data() + nh * per, 1.0f, round);
  }
  return panels;
}

/** One query tile; with round, bf16's operands rounded into these fp32 loops (see the file's comment). */
/** A query tile's results: out rows O / l (the head's d columns of rows D apart) and lse = m + log l. */
inline void writeRows(const Geometry& g, const float* O, int64_t D, const float* m, const float* l, float* out, float* lse, int64_t n, int64_t h, int64_t i0, int nq) {
  for (int r = 0; r < nq; r++) {
    const float inv = 1.0f / l[r];
    float* o = out + (n * g.L + i0 + r) * g.C + h * g.d;
    for (int64_t t = 0; t < g.d; t++) o[t] = O[r * D + t] * inv;
    lse[(n * g.H + h) * g.L + i0 + r] = m[r] + std::log(l[r]);
  }
}

template <int DV>
void forwardTask(const Geometry& g, const Pattern& p, const std::vector<uint8_t>& classes, const Panels& panels, const float* qkv, float* out, float* lse, int64_t n, int64_t h, int64_t qt, int tid, bool round) {
  constexpr int D = DV * 16;
  const int64_t L = g.L, C3 = 3 * g.C, nkt = (L + TK - 1) / TK, lp = panels.lp;
  float* Q = threadBuffer(0, tid, 0).data();
  float* O = threadBuffer(1, tid, 0).data();
  float* S = threadBuffer(2, tid, 0).data();
  const float* Kt = panels.kt.data() + (n * g.H + h) * D * lp;
  const float* V = panels.v.data() + (n * g.H + h) * D * lp;
  float m[TQ], l[TQ];
  const int64_t i0 = qt * TQ;
  const int nq = int(std::min<int64_t>(TQ, L - i0));
  const float* head = qkv + n * L * C3 + h * g.d;
  copyRows(head + i0 * C3, C3, nq, g.d, D, nq, Q, g.scale, round);
  std::memset(O, 0, sizeof(float) * size_t(TQ * D));
  for (int r = 0; r < TQ; r++) m[r] = kNegInf, l[r] = 0.0f;
  for (int64_t kt = 0; kt < nkt; kt++) {
    const uint8_t cls = classes[size_t(qt * nkt + kt)];
    if (cls == kEmpty) continue;
    const int64_t j0 = kt * TK;
    const int nk = int(std::min<int64_t>(TK, L - j0));
    productABt<DV>(Q, Kt + j0, lp, S, nq);
    for (int r = 0; r < nq; r++) {
      float mNew, sum;
      if (!softmaxRow(S + r * TK, columnMask(p, cls, i0 + r, j0, nk), m[r], mNew, sum, round)) continue;
      const float corr = vexp(m[r] - mNew);
      if (corr != 1.0f) {
        for (int t = 0; t < D; t++) O[r * D + t] *= corr;
      }
      l[r] = l[r] * corr + sum;
      m[r] = mNew;
    }
    if (round) roundTile(S, nq);
    accumulateProduct<DV>(S, TK, 1, V + j0 * D, O, nq, nk);
  }
  writeRows(g, O, D, m, l, out, lse, n, h, i0, nq);
}

template <int DV>
void backwardTask(const Geometry& g, const Pattern& p, const std::vector<uint8_t>& classes, const float* qkv, const float* out, const float* lse, const float* dout, float* dqkv, int64_t n, int64_t h, int tid, bool round) {
  constexpr int D = DV * 16;
  const int64_t L = g.L, C3 = 3 * g.C, nqt = (L + TQ - 1) / TQ, nkt = (L + TK - 1) / TK;
  float* Qall = threadBuffer(0, tid, 0).data();  // the head's queries and output gradients as padded rows [L][D]
  float* Gall = threadBuffer(1, tid, 0).data();
  float* S = threadBuffer(2, tid, 0).data();  // S, then P
  float* Kt = threadBuffer(3, tid, 0).data();
  float* Vt = threadBuffer(4, tid, 0).data();
  float* Kr = threadBuffer(5, tid, 0).data();
  float* dKV = threadBuffer(6, tid, 0).data();  // dK [TK][D], then dV [TK][D], then dP/dS [TQ][TK]
  float* dQ = threadBuffer(7, tid, 0).data();   // [L][D], then the row dots [L]
  float* dK = dKV;
  float* dV = dKV + TK * D;
  float* dS = dKV + 2 * TK * D;
  float* rowDot = dQ + L * D;
  const float* head = qkv + n * L * C3 + h * g.d;
  const float* lseRow = lse + (n * g.H + h) * L;
  // D_i = dO_i · O_i: the softmax backward's row term.
  for (int64_t i = 0; i < L; i++) {
    const float* a = dout + (n * L + i) * g.C + h * g.d;
    const float* b = out + (n * L + i) * g.C + h * g.d;
    float s = 0.0f;
#pragma omp simd reduction(+ : s)
    for (int64_t t = 0; t < g.d; t++) s += a[t] * b[t];
    rowDot[i] = s;
  }
  std::memset(dQ, 0, sizeof(float) * size_t(L * D));
  copyRows(head, C3, L, g.d, D, int(L), Qall, 1.0f, round);
  copyRows(dout + n * L * g.C + h * g.d, g.C, L, g.d, D, int(L), Gall, 1.0f, round);
  for (int64_t kt = 0; kt < nkt; kt++) {
    const int64_t j0 = kt * TK;
    const int nk = int(std::min<int64_t>(TK, L - j0));
    copyTransposed(head + g.C + j0 * C3, C3, nk, g.d, D, Kt, round);
    copyTransposed(head + 2 * g.C + j0 * C3, C3, nk, g.d, D, Vt, round);
    copyRows(head + g.C + j0 * C3, C3, nk, g.d, D, nk, Kr, 1.0f, round);
    std::memset(dKV, 0, sizeof(float) * size_t(2 * TK * D));
    for (int64_t qt = 0; qt < nqt; qt++) {
      const uint8_t cls = classes[size_t(qt * nkt + kt)];
      if (cls == kEmpty) continue;
      const int64_t i0 = qt * TQ;
      const int nq = int(std::min<int64_t>(TQ, L - i0));
      const float* Q = Qall + i0 * D;
      const float* G = Gall + i0 * D;
      productABt<DV>(Q, Kt, TK, S, nq);
      productABt<DV>(G, Vt, TK, dS, nq);
      for (int r = 0; r < nq; r++) {
        const int64_t i = i0 + r;
        gradientRow(S + r * TK, dS + r * TK, columnMask(p, cls, i, j0, nk), g.scale, lseRow[i], rowDot[i]);
      }
      if (round) roundTile(S, nq), roundTile(dS, nq);
      accumulateProduct<DV>(S, 1, TK, G, dV, nk, nq);
      accumulateProduct<DV>(dS, 1, TK, Q, dK, nk, nq);
      accumulateProduct<DV>(dS, TK, 1, Kr, dQ + i0 * D, nq, nk);
    }
    for (int c = 0; c < nk; c++) {
      float* rowK = dqkv + (n * L + j0 + c) * C3 + g.C + h * g.d;
      float* rowV = rowK + g.C;
      for (int64_t t = 0; t < g.d; t++) rowK[t] = dK[c * D + t], rowV[t] = dV[c * D + t];
    }
  }
  for (int64_t i = 0; i < L; i++) {
    float* rowQ = dqkv + (n * L + i) * C3 + h * g.d;
    for (int64_t t = 0; t < g.d; t++) rowQ[t] = dQ[i * D + t];
  }
}

// ---- bf16 on AVX512-BF16 dot products ----

#if ARPIX_AVX512_BF16

/** Whether the CPU has AVX512-BF16 and oneDNN's ISA cap (ONEDNN_MAX_CPU_ISA, for tests) allows it. */
bool hardwareBf16() {
  static const bool yes = [] {
    const unsigned need = unsigned(dnnl::cpu_isa::avx512_core_bf16);
    return __builtin_cpu_supports("avx512bf16") && __builtin_cpu_supports("avx512bw") && __builtin_cpu_supports("avx512vl") &&
           (unsigned(dnnl::get_effective_cpu_isa()) & need) == need;
  }();
  return yes;
}

// Two bf16 in one 32-bit word, the first in the low half (memory order): one step of a dot
// product's sum. may_alias: the words live in the float thread buffers.
typedef uint32_t word __attribute__((may_alias));
using AlignedWords = std::vector<uint32_t, CacheAligned<uint32_t>>;

/** n rows of a head, `stride` floats apart, d used: row r, or null past the last. */
struct HeadRows {
  const float* base;
  int64_t stride, n, d;
  const float* row(int64_t r) const { return r < n ? base + r * stride : nullptr; }
  /** Fetches row r + 16 ahead of its use: the rows are strided by 3C floats, beyond the hardware prefetcher's reach for short runs. */
  void prefetch(int64_t r) const {
    if (r + 16 < n) __builtin_prefetch(base + (r + 16) * stride), __builtin_prefetch(base + (r + 16) * stride + d - 1);
  }
};

/** Floats [16v, 16v + 16) of a row of d (zero past d, or for a null row). */
BF16_TARGET inline __m512 load16(const float* row, int64_t d, int v) {
  const int64_t left = d - 16 * v;
  if (!row || left <= 0) return _mm512_setzero_ps();
  return _mm512_maskz_loadu_ps(left >= 16 ? __mmask16(0xffff) : __mmask16((1u << left) - 1), row + 16 * v);
}

/** A row of d floats as D/2 words paired along the row (8 words per 16 floats). */
template <int DV>
BF16_TARGET inline void packRow(const float* row, int64_t d, word* out) {
  for (int v = 0; v < DV; v++) _mm256_storeu_si256(reinterpret_cast<__m256i*>(out + 8 * v), (__m256i)_mm512_cvtneps_pbh(load16(row, d, v)));
}

/** Two rows of d floats as D words, word t = (a[t], b[t]). */
template <int DV>
BF16_TARGET inline void packPair(const float* a, const float* b, int64_t d, word* out) {
  // cvtne2ps gives the 16 bf16 of a, then b's; vpermw interleaves them.
  alignas(64) static const uint16_t interleave[32] = {0, 16, 1, 17, 2, 18, 3, 19, 4, 20, 5, 21, 6, 22, 7, 23, 8, 24, 9, 25, 10, 26, 11, 27, 12, 28, 13, 29, 14, 30, 15, 31};
  const __m512i idx = _mm512_load_si512(interleave);
  for (int v = 0; v < DV; v++) {
    const __m512i both = (__m512i)_mm512_cvtne2ps_pbh(load16(b, d, v), load16(a, d, v));
    _mm512_storeu_si512(out + 16 * v, _mm512_permutexvar_epi16(idx, both));
  }
}

/** rowsOut rows as words paired along the row: [rowsOut][D/2], word (r, u) = (x[r][2u], x[r][2u + 1]). */
template <int DV>
BF16_TARGET void packRows(const HeadRows& x, int64_t rowsOut, word* out) {
  for (int64_t r = 0; r < rowsOut; r++) x.prefetch(r), packRow<DV>(x.row(r), x.d, out + r * 8 * DV);
}

/** Pairs of rows: [pairsOut][D], word (q, t) = (x[2q][t], x[2q + 1][t]). */
template <int DV>
BF16_TARGET void packRowPairs(const HeadRows& x, int64_t pairsOut, word* out) {
  for (int64_t q = 0; q < pairsOut; q++) {
    x.prefetch(2 * q), x.prefetch(2 * q + 1);
    packPair<DV>(x.row(2 * q), x.row(2 * q + 1), x.d, out + q * 16 * DV);
  }
}

/** Transposed, paired along the row: [D/2][ld] words, word (u, c) = (x[c][2u], x[c][2u + 1]) for c < cols. */
template <int DV>
BF16_TARGET void packColumns(const HeadRows& x, int64_t cols, int64_t ld, word* out) {
  alignas(64) uint32_t w[8 * DV];
  for (int64_t c = 0; c < cols; c++) {
    x.prefetch(c);
    packRow<DV>(x.row(c), x.d, w);
    for (int u = 0; u < 8 * DV; u++) out[u * ld + c] = w[u];
  }
}

/** R rows of dotProduct (below) from row r. */
template <int NV, int R, bool ACC>
BF16_TARGET inline void dotRows(const word* A, int64_t rs, int64_t ss, const word* B, int64_t ldb, float* Out, int64_t ldo, int r, int pairs, float scale) {
  __m512 acc[R][NV];
  for (int q = 0; q < R; q++)
    for (int v = 0; v < NV; v++) acc[q][v] = ACC ? _mm512_loadu_ps(Out + (r + q) * ldo + 16 * v) : _mm512_setzero_ps();
  for (int s = 0; s < pairs; s++) {
    __m512bh b[NV];
    for (int v = 0; v < NV; v++) b[v] = (__m512bh)_mm512_loadu_si512(B + s * ldb + 16 * v);
    for (int q = 0; q < R; q++) {
      const __m512bh a = (__m512bh)_mm512_set1_epi32(int(A[(r + q) * rs + s * ss]));
      for (int v = 0; v < NV; v++) acc[q][v] = _mm512_dpbf16_ps(acc[q][v], a, b[v]);
    }
  }
  const __m512 sc = _mm512_set1_ps(scale);
  for (int q = 0; q < R; q++)
    for (int v = 0; v < NV; v++) _mm512_storeu_ps(Out + (r + q) * ldo + 16 * v, ACC ? acc[q][v] : _mm512_mul_ps(acc[q][v], sc));
}

/**
 * Out[r][0, 16·NV) = scale · Σ_s A(r, s) · B[s] (with ACC: Out[r] += Σ_s A(r, s) · B[s]) for
 * r < rows, s < pairs: A(r, s), a word of two bf16 along the sum, at A[r·rs + s·ss]; B[s] a row
 * of 16·NV words, each two bf16 of one output column, rows ldb words apart; Out rows ldo floats apart.
 */
template <int NV, bool ACC>
BF16_TARGET void dotProduct(const word* A, int64_t rs, int64_t ss, const word* B, int64_t ldb, float* Out, int64_t ldo, int rows, int pairs, float scale = 1.0f) {
  // Rows per block: R·NV accumulators and NV operands in 32 registers, R dividing the tiles' 64 rows.
  constexpr int R = NV <= 3 ? 8 : NV <= 5 ? 4 : 2;
  int r = 0;
  for (; r + R <= rows; r += R) dotRows<NV, R, ACC>(A, rs, ss, B, ldb, Out, ldo, r, pairs, scale);
  for (; r < rows; r++) dotRows<NV, 1, ACC>(A, rs, ss, B, ldb, Out, ldo, r, pairs, scale);
}

/** Rows r < n of a tile [.][TK] as words paired along the row: [n][TK/2] (rounded to nearest even). */
BF16_TARGET void packTileRows(const float* S, int n, word* out) {
  for (int r = 0; r < n; r++)
    for (int h = 0; h < 2; h++) {
      const float* s = S + r * TK + 32 * h;
      _mm512_storeu_si512(out + r * (TK / 2) + 16 * h, (__m512i)_mm512_cvtne2ps_pbh(_mm512_loadu_ps(s + 16), _mm512_loadu_ps(s)));
    }
}

/** Rows r < n of a tile [.][TK] in pairs of rows: [⌈n/2⌉][TK], word (q, c) = (S[2q][c], S[2q + 1][c]), row n zero. */
BF16_TARGET void packTileRowPairs(const float* S, int n, word* out) {
  for (int q = 0; 2 * q < n; q++) packPair<TK / 16>(S + 2 * q * TK, 2 * q + 1 < n ? S + (2 * q + 1) * TK : nullptr, TK, out + q * TK);
}

/**
 * Every head's Q paired along the head ([Lp][D/2] words), K transposed in pairs along the head
 * ([D/2][Lp]) and V in pairs of keys ([Lp/2][D]), Lp = L padded to whole tiles: packed once per
 * call, 64 rows of an image at a time, so that the tasks, which each visit many key tiles, read
 * only these.
 */
struct PanelsBf16 {
  AlignedWords q, kt, v;
  int64_t lp = 0;
};

template <int DV>
BF16_TARGET PanelsBf16& forwardPanelsBf16(const Geometry& g, const float* qkv) {
  static PanelsBf16 panels;
  const int64_t lp = (g.L + TK - 1) / TK * TK, W = g.D / 2, per = W * lp, C3 = 3 * g.C, tiles = lp / TK;
  panels.lp = lp;
  if (int64_t(panels.kt.size()) < g.N * g.H * per) {
    for (AlignedWords* w : {&panels.q, &panels.kt, &panels.v}) w->resize(size_t(g.N * g.H * per));
  }
#pragma omp parallel for schedule(static) num_threads(chunkThreads(g.N * tiles))
  for (int64_t chunk = 0; chunk < g.N * tiles; chunk++) {
    const int64_t n = chunk / tiles, j0 = chunk % tiles * TK;
    for (int64_t h = 0; h < g.H; h++) {
      const HeadRows x{qkv + n * g.L * C3 + h * g.d + j0 * C3, C3, g.L - j0, g.d};
      const int64_t at = (n * g.H + h) * per;
      packRows<DV>(x, TK, panels.q.data() + at + j0 * W);
      packColumns<DV>({x.base + g.C, C3, x.n, g.d}, TK, lp, panels.kt.data() + at + j0);
      packRowPairs<DV>({x.base + 2 * g.C, C3, x.n, g.d}, TK / 2, panels.v.data() + at + j0 / 2 * g.D);
    }
  }
  return panels;
}

/** forwardTask on bf16 dot products: S = scale·Q·Kᵀ, the online softmax in fp32, P̃ rounded for P̃·V. */
template <int DV>
BF16_TARGET void forwardTaskBf16(const Geometry& g, const Pattern& p, const std::vector<uint8_t>& classes, const PanelsBf16& panels, float* out, float* lse, int64_t n, int64_t h, int64_t qt, int tid) {
  constexpr int D = DV * 16, W = D / 2;  // W: words per row of Q
  const int64_t L = g.L, nkt = (L + TK - 1) / TK, lp = panels.lp;
  float* O = threadBuffer(1, tid, 0).data();
  float* S = threadBuffer(2, tid, 0).data();  // S, then P̃ [TQ][TK]
  word* P = reinterpret_cast<word*>(S + TQ * TK);  // P̃ as words [TQ][TK/2]
  const int64_t i0 = qt * TQ;
  const word* Q = panels.q.data() + (n * g.H + h) * W * lp + i0 * W;
  const word* Kt = panels.kt.data() + (n * g.H + h) * W * lp;
  const word* V = panels.v.data() + (n * g.H + h) * W * lp;
  float m[TQ], l[TQ];
  const int nq = int(std::min<int64_t>(TQ, L - i0));
  std::memset(O, 0, sizeof(float) * size_t(TQ * D));
  for (int r = 0; r < TQ; r++) m[r] = kNegInf, l[r] = 0.0f;
  for (int64_t kt = 0; kt < nkt; kt++) {
    const uint8_t cls = classes[size_t(qt * nkt + kt)];
    if (cls == kEmpty) continue;
    const int64_t j0 = kt * TK;
    const int nk = int(std::min<int64_t>(TK, L - j0));
    dotProduct<4, false>(Q, W, 1, Kt + j0, lp, S, TK, nq, W, g.scale);
    for (int r = 0; r < nq; r++) {
      float mNew, sum;
      if (!softmaxRow(S + r * TK, columnMask(p, cls, i0 + r, j0, nk), m[r], mNew, sum, true)) continue;
      // A power of two (ln2Ceil): what was accumulated is rescaled as if P̃ had been rounded now.
      const float corr = vexp(m[r] - mNew);
      if (corr != 1.0f) {
        for (int t = 0; t < D; t++) O[r * D + t] *= corr;
      }
      l[r] = l[r] * corr + sum;
      m[r] = mNew;
    }
    packTileRows(S, nq, P);
    dotProduct<DV, true>(P, TK / 2, 1, V + j0 / 2 * D, D, O, D, nq, (nk + 1) / 2);
  }
  writeRows(g, O, D, m, l, out, lse, n, h, i0, nq);
}

/**
 * backwardTask on bf16 dot products: S = Q·Kᵀ and dP = dO·Vᵀ from Q, dO paired along the head and
 * K, V transposed in pairs; P and dS (fp32 from gradientRow) rounded in pairs of queries for
 * dV = Pᵀ·dO and dK = dSᵀ·Q (with Q and dO in pairs of rows), and dS paired along the keys for
 * dQ = dS·K (K in pairs of keys).
 */
template <int DV>
BF16_TARGET void backwardTaskBf16(const Geometry& g, const Pattern& p, const std::vector<uint8_t>& classes, const float* qkv, const float* out, const float* lse, const float* dout, float* dqkv, int64_t n, int64_t h, int tid) {
  constexpr int D = DV * 16, W = D / 2;
  const int64_t L = g.L, C3 = 3 * g.C, nqt = (L + TQ - 1) / TQ, nkt = (L + TK - 1) / TK, Lp = nqt * TQ;
  word* Qrows = reinterpret_cast<word*>(threadBuffer(0, tid, 0).data());  // [Lp][W], then in pairs of rows [Lp/2][D]
  word* Qpairs = Qrows + Lp * W;
  word* Grows = reinterpret_cast<word*>(threadBuffer(1, tid, 0).data());  // dO, the same two ways
  word* Gpairs = Grows + Lp * W;
  float* S = threadBuffer(2, tid, 0).data();  // S, then P [TQ][TK]; then dP, then dS [TQ][TK]
  float* dS = S + TQ * TK;
  word* Kcols = reinterpret_cast<word*>(threadBuffer(3, tid, 0).data());  // K and V transposed [W][TK], K in pairs of keys [TK/2][D]
  word* Vcols = Kcols + W * TK;
  word* Kpairs = Vcols + W * TK;
  word* Ppairs = reinterpret_cast<word*>(threadBuffer(4, tid, 0).data());  // P and dS in pairs of queries [TQ/2][TK], dS rows [TQ][TK/2]
  word* dSpairs = Ppairs + TQ / 2 * TK;
  word* dSrows = dSpairs + TQ / 2 * TK;
  float* dK = threadBuffer(6, tid, 0).data();  // dK, dV [TK][D]
  float* dV = dK + TK * D;
  float* dQ = threadBuffer(7, tid, 0).data();  // [L][D], then the row dots [L]
  float* rowDot = dQ + L * D;
  const float* head = qkv + n * L * C3 + h * g.d;
  const float* gHead = dout + n * L * g.C + h * g.d;
  const float* lseRow = lse + (n * g.H + h) * L;
  // D_i = dO_i · O_i, of dO and O as they are: no product's operand.
  const HeadRows outRows{out + n * L * g.C + h * g.d, g.C, L, g.d}, gRows{gHead, g.C, L, g.d};
  for (int64_t i = 0; i < L; i++) {
    outRows.prefetch(i), gRows.prefetch(i);
    const float* a = gHead + i * g.C;
    const float* b = outRows.row(i);
    float s = 0.0f;
#pragma omp simd reduction(+ : s)
    for (int64_t t = 0; t < g.d; t++) s += a[t] * b[t];
    rowDot[i] = s;
  }
  std::memset(dQ, 0, sizeof(float) * size_t(L * D));
  packRows<DV>({head, C3, L, g.d}, Lp, Qrows);
  packRowPairs<DV>({head, C3, L, g.d}, Lp / 2, Qpairs);
  packRows<DV>(gRows, Lp, Grows);
  packRowPairs<DV>(gRows, Lp / 2, Gpairs);
  for (int64_t kt = 0; kt < nkt; kt++) {
    const int64_t j0 = kt * TK;
    const int nk = int(std::min<int64_t>(TK, L - j0));
    const int keyPairs = (nk + 1) / 2;
    packColumns<DV>({head + g.C + j0 * C3, C3, nk, g.d}, TK, TK, Kcols);
    packColumns<DV>({head + 2 * g.C + j0 * C3, C3, nk, g.d}, TK, TK, Vcols);
    packRowPairs<DV>({head + g.C + j0 * C3, C3, nk, g.d}, TK / 2, Kpairs);
    std::memset(dK, 0, sizeof(float) * size_t(2 * TK * D));
    for (int64_t qt = 0; qt < nqt; qt++) {
      const uint8_t cls = classes[size_t(qt * nkt + kt)];
      if (cls == kEmpty) continue;
      const int64_t i0 = qt * TQ;
      const int nq = int(std::min<int64_t>(TQ, L - i0));
      const int queryPairs = (nq + 1) / 2;
      dotProduct<4, false>(Qrows + i0 * W, W, 1, Kcols, TK, S, TK, nq, W);
      dotProduct<4, false>(Grows + i0 * W, W, 1, Vcols, TK, dS, TK, nq, W);
      for (int r = 0; r < nq; r++) {
        const int64_t i = i0 + r;
        gradientRow(S + r * TK, dS + r * TK, columnMask(p, cls, i, j0, nk), g.scale, lseRow[i], rowDot[i]);
      }
      packTileRowPairs(S, nq, Ppairs);
      packTileRowPairs(dS, nq, dSpairs);
      packTileRows(dS, nq, dSrows);
      dotProduct<DV, true>(Ppairs, 1, TK, Gpairs + i0 / 2 * D, D, dV, D, nk, queryPairs);
      dotProduct<DV, true>(dSpairs, 1, TK, Qpairs + i0 / 2 * D, D, dK, D, nk, queryPairs);
      dotProduct<DV, true>(dSrows, TK / 2, 1, Kpairs, D, dQ + i0 * D, D, nq, keyPairs);
    }
    for (int c = 0; c < nk; c++) {
      float* rowK = dqkv + (n * L + j0 + c) * C3 + g.C + h * g.d;
      float* rowV = rowK + g.C;
      for (int64_t t = 0; t < g.d; t++) rowK[t] = dK[c * D + t], rowV[t] = dV[c * D + t];
    }
  }
  for (int64_t i = 0; i < L; i++) {
    float* rowQ = dqkv + (n * L + i) * C3 + h * g.d;
    for (int64_t t = 0; t < g.d; t++) rowQ[t] = dQ[i * D + t];
  }
}

#endif  // ARPIX_AVX512_BF16

Geometry geometryOf(const char* kernel, const Buf& qkv, int64_t heads, double scale) {
  if (qkv.shape.size() != 3 || qkv.shape[2] % 3 != 0) throw KernelError(kernel, "qkv must be [N, L, 3C], got " + fmtShape(qkv.shape));
  Geometry g;
  g.N = qkv.shape[0], g.L = qkv.shape[1], g.C = qkv.shape[2] / 3, g.H = heads;
  if (heads < 1 || g.C % heads != 0) throw KernelError(kernel, "heads must divide the channels");
  g.d = g.C / heads;
  g.D = (g.d + 15) / 16 * 16;
  if (g.D > 128) throw KernelError(kernel, "head size " + std::to_string(g.d) + " above 128 is not supported natively");
  g.scale = float(scale);
  return g;
}

/** Sizes thread buffer `which` to `floats` for every thread (outside parallel regions). */
void reserve(int which, int nthr, int64_t floats) {
  for (int t = 0; t < nthr; t++) threadBuffer(which, t, floats);
}

template <class F>
void dispatchDV(int64_t D, F f) {
  switch (D / 16) {
    case 1: f(std::integral_constant<int, 1>{}); break;
    case 2: f(std::integral_constant<int, 2>{}); break;
    case 3: f(std::integral_constant<int, 3>{}); break;
    case 4: f(std::integral_constant<int, 4>{}); break;
    case 5: f(std::integral_constant<int, 5>{}); break;
    case 6: f(std::integral_constant<int, 6>{}); break;
    case 7: f(std::integral_constant<int, 7>{}); break;
    default: f(std::integral_constant<int, 8>{}); break;
  }
}

}  // namespace

void attention(const Buf& qkv, const Buf& out, const Buf& lse, const AttentionAttrs& a) {
  const std::vector<int64_t>& code = a.pattern;
  const Geometry g = geometryOf("attention", qkv, a.heads, a.scale);
  if (out.size != g.N * g.L * g.C || lse.size != g.N * g.H * g.L) throw KernelError("attention", "out or lse has the wrong size");
  if (g.N * g.L == 0) return;
  const Pattern p = patternOf(code, g.L);
  const std::vector<uint8_t>& classes = tileClasses(p, code, g.L);
  const int64_t nqt = (g.L + TQ - 1) / TQ, tasks = g.N * g.H * nqt;
  const int nthr = chunkThreads(tasks);
  reserve(0, nthr, TQ * g.D), reserve(1, nthr, TQ * g.D), reserve(2, nthr, TQ * TK + TQ * TK / 2);
  const float* x = qkv.f32();
  float* o = out.f32();
  float* ls = lse.f32();
#if ARPIX_AVX512_BF16
  if (a.bf16 && hardwareBf16()) {
    dispatchDV(g.D, [&](auto dv) {
      constexpr int DV = decltype(dv)::value;
      const PanelsBf16& panels = forwardPanelsBf16<DV>(g, x);
#pragma omp parallel for schedule(dynamic) num_threads(nthr)
      for (int64_t task = 0; task < tasks; task++) {
        const int64_t qt = task % nqt, nh = task / nqt;
        forwardTaskBf16<DV>(g, p, classes, panels, o, ls, nh / g.H, nh % g.H, qt, omp_get_thread_num());
      }
    });
    return;
  }
#endif
  const Panels& panels = forwardPanels(g, x, chunkThreads(g.N * g.H), a.bf16);
  dispatchDV(g.D, [&](auto dv) {
    constexpr int DV = decltype(dv)::value;
#pragma omp parallel for schedule(dynamic) num_threads(nthr)
    for (int64_t task = 0; task < tasks; task++) {
      const int64_t qt = task % nqt, nh = task / nqt;
      forwardTask<DV>(g, p, classes, panels, x, o, ls, nh / g.H, nh % g.H, qt, omp_get_thread_num(), a.bf16);
    }
  });
}

void attentionBackward(const Buf& qkv, const Buf& out, const Buf& lse, const Buf& dout, const Buf& dqkv, const AttentionAttrs& a) {
  const std::vector<int64_t>& code = a.pattern;
  const Geometry g = geometryOf("attentionBackward", qkv, a.heads, a.scale);
  if (out.size != g.N * g.L * g.C || dout.size != out.size || lse.size != g.N * g.H * g.L || dqkv.size != qkv.size) {
    throw KernelError("attentionBackward", "out, lse, g or dqkv has the wrong size");
  }
  if (g.N * g.L == 0) return;
  const Pattern p = patternOf(code, g.L);
  const std::vector<uint8_t>& classes = tileClasses(p, code, g.L);
  const int64_t tasks = g.N * g.H;
  const int nthr = chunkThreads(tasks);
  const float* x = qkv.f32();
#if ARPIX_AVX512_BF16
  if (a.bf16 && hardwareBf16()) {
    // In 32-bit words (see backwardTaskBf16): the queries and dO two ways, key and value tiles,
    // P and dS as words, dK and dV, dQ and the row dots.
    const int64_t lp = (g.L + TQ - 1) / TQ * TQ;
    reserve(0, nthr, lp * g.D), reserve(1, nthr, lp * g.D), reserve(2, nthr, 2 * TQ * TK);
    reserve(3, nthr, 3 * g.D / 2 * TK), reserve(4, nthr, 3 * TQ / 2 * TK);
    reserve(6, nthr, 2 * TK * g.D), reserve(7, nthr, g.L * g.D + g.L);
    dispatchDV(g.D, [&](auto dv) {
      constexpr int DV = decltype(dv)::value;
#pragma omp parallel for schedule(dynamic) num_threads(nthr)
      for (int64_t task = 0; task < tasks; task++) {
        backwardTaskBf16<DV>(g, p, classes, x, out.f32(), lse.f32(), dout.f32(), dqkv.f32(), task / g.H, task % g.H, omp_get_thread_num());
      }
    });
    return;
  }
#endif
  reserve(0, nthr, g.L * g.D), reserve(1, nthr, g.L * g.D), reserve(2, nthr, TQ * TK);
  reserve(3, nthr, g.D * TK), reserve(4, nthr, g.D * TK), reserve(5, nthr, TK * g.D);
  reserve(6, nthr, 2 * TK * g.D + TQ * TK), reserve(7, nthr, g.L * g.D + g.L);
  dispatchDV(g.D, [&](auto dv) {
    constexpr int DV = decltype(dv)::value;
#pragma omp parallel for schedule(dynamic) num_threads(nthr)
    for (int64_t task = 0; task < tasks; task++) {
      backwardTask<DV>(g, p, classes, x, out.f32(), lse.f32(), dout.f32(), dqkv.f32(), task / g.H, task % g.H, omp_get_thread_num(), a.bf16);
    }
  });
}

void attentionStep(const Buf& q, const Buf& k, const Buf& v, const Buf& out, int64_t position, const AttentionAttrs& a) {
  const char* kernel = "attentionStep";
  const std::vector<int64_t>& code = a.pattern;
  const int64_t heads = a.heads;
  const double scale = a.scale;
  if (q.shape.size() != 2 || k.shape.size() != 3 || v.shape != k.shape || k.shape[0] != q.shape[0] || k.shape[2] != q.shape[1] || out.size != q.size) {
    throw KernelError(kernel, "q " + fmtShape(q.shape) + ", k " + fmtShape(k.shape) + ", v " + fmtShape(v.shape) + " and out do not fit");
  }
  const int64_t N = q.shape[0], C = q.shape[1], T = k.shape[1];
  // A local2d pattern's sequence is its grid (the caches may hold more rows); any other's is T.
  const int64_t length = code.size() >= 3 && code[0] == 3 ? code[1] * code[2] : T;
  if (heads < 1 || C % heads != 0) throw KernelError(kernel, "heads must divide the channels");
  if (position < 0 || position >= T || position >= length) throw KernelError(kernel, "position is outside the caches");
  const int64_t d = C / heads;
  const Pattern p = patternOf(code, length);
  const int64_t first = std::min(position, p.firstKey(position));
  const int64_t keys = position - first + 1;
  const float sc = float(scale);
  const bool parallel = worthParallel(N * heads * keys * d * 2);
#pragma omp parallel for if (parallel) schedule(static)
  for (int64_t nh = 0; nh < N * heads; nh++) {
    const int64_t n = nh / heads, h = nh % heads;
    std::vector<float> s(static_cast<size_t>(keys));
    const float* qr = q.f32() + n * C + h * d;
    float mx = kNegInf;
    for (int64_t j = first; j <= position; j++) {
      float& sj = s[size_t(j - first)];
      if (!p.allowed(position, j)) {
        sj = kNegInf;
        continue;
      }
      const float* kr = k.f32() + (n * T + j) * C + h * d;
      float dot = 0.0f;
#pragma omp simd reduction(+ : dot)
      for (int64_t t = 0; t < d; t++) dot += qr[t] * kr[t];
      sj = dot * sc;
      mx = std::max(mx, sj);
    }
    float sum = 0.0f;
    for (int64_t j = 0; j < keys; j++) sum += s[size_t(j)] = vexp(s[size_t(j)] - mx);
    float* o = out.f32() + n * C + h * d;
    std::fill(o, o + d, 0.0f);
    for (int64_t j = first; j <= position; j++) {
      const float w = s[size_t(j - first)] / sum;
      if (w == 0.0f) continue;
      const float* vr = v.f32() + (n * T + j) * C + h * d;
#pragma omp simd
      for (int64_t t = 0; t < d; t++) o[t] += w * vr[t];
    }
  }
}

}  // namespace arpix
