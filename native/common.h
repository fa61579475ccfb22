// Shared vocabulary of the arpix addon: the buffer a kernel sees, errors that name the kernel, and
// the broadcasting plan used by every elementwise loop. No Node-API and no oneDNN in here, so the
// arithmetic files stay plain C++/OpenMP.
#pragma once

#include <omp.h>

#include <array>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <stdexcept>
#include <string>
#include <vector>

namespace arpix {

enum class DType { F32, I32 };

inline const char* dtypeName(DType d) { return d == DType::F32 ? "float32" : "int32"; }

using Shape = std::vector<int64_t>;

inline int64_t numel(const Shape& s) {
  int64_t n = 1;
  for (int64_t d : s) n *= d;
  return n;
}

inline std::string fmtShape(const Shape& s) {
  std::string r = "[";
  for (size_t i = 0; i < s.size(); i++) r += (i ? ", " : "") + std::to_string(s[i]);
  return r + "]";
}

/** A tensor as the C++ side sees it: JS-owned contiguous row-major memory plus its shape. */
struct Buf {
  void* data = nullptr;
  int64_t size = 0;
  DType dtype = DType::F32;
  Shape shape;
  // Identity and write counter of the JS storage; 0 when unknown (then nothing is cached).
  int64_t storageId = 0;
  int64_t version = 0;

  float* f32() const { return static_cast<float*>(data); }
  int32_t* i32() const { return static_cast<int32_t*>(data); }
};

/** An error whose message already starts with the kernel's name; becomes a JS Error. */
struct KernelError : std::runtime_error {
  KernelError(const std::string& kernel, const std::string& detail)
      : std::runtime_error(kernel + ": " + detail) {}
};

/**
 * An argument check inside a kernel failed. The message names the argument; the binding puts the
 * kernel's name (its descriptor's) in front.
 */
struct ArgumentError : std::invalid_argument {
  using std::invalid_argument::invalid_argument;
};

inline void requireDType(const char* kernel, const char* arg, const Buf& b, DType want) {
  if (b.dtype != want) {
    throw KernelError(kernel, std::string(arg) + " has dtype " + dtypeName(b.dtype) + ", expected " + dtypeName(want));
  }
}

/** Below this many elements the OpenMP fork/join costs more than it saves. */
constexpr int64_t kParallelMin = 32768;

inline bool worthParallel(int64_t work) { return work >= kParallelMin && omp_get_max_threads() > 1; }

/**
 * float32 → bfloat16, rounding to nearest even (the rounding of oneDNN's reorders and of the ts
 * reference's roundBf16); NaN stays a quiet NaN of the same sign. Overflow rounds to ±∞ as IEEE does.
 */
inline uint16_t bf16Of(float f) {
  uint32_t u;
  std::memcpy(&u, &f, 4);
  if ((u & 0x7fffffffu) > 0x7f800000u) return uint16_t((u >> 16) | 0x40u);
  return uint16_t((u + 0x7fffu + ((u >> 16) & 1u)) >> 16);
}

/** f rounded to the nearest bfloat16 value (ties to even), as a float: the ts reference's roundBf16. */
inline float roundBf16(float f) {
  const uint32_t u = uint32_t(bf16Of(f)) << 16;
  float r;
  std::memcpy(&r, &u, 4);
  return r;
}

/** n floats → bfloat16 (one pass, in parallel when large). */
inline void toBf16(const float* src, uint16_t* dst, int64_t n) {
#pragma omp parallel for schedule(static) if (n >= 4 * kParallelMin)
  for (int64_t i = 0; i < n; i++) dst[i] = bf16Of(src[i]);
}

/** JavaScript's ToInt32: what storing a double into an Int32Array does (NaN/±∞ → 0, wraps mod 2^32). */
inline int32_t jsToInt32(double v) {
  if (v > -2147483649.0 && v < 2147483648.0) return static_cast<int32_t>(v);  // truncates; NaN fails both tests
  if (!std::isfinite(v)) return 0;
  double m = std::fmod(std::trunc(v), 4294967296.0);
  if (m < 0) m += 4294967296.0;
  return static_cast<int32_t>(static_cast<uint32_t>(m));
}

/**
 * Broadcasting of K operands against an output shape, with size-1 output axes dropped and
 * adjacent axes merged wherever every operand is contiguous across them. After planning, the
 * innermost axis has stride 0 or 1 in every operand, so inner loops specialise on that.
 */
template <int K>
struct BroadcastPlan {
  Shape shape;                                 // merged output shape (rank >= 1)
  std::array<std::vector<int64_t>, K> strides;  // per operand, in elements, per merged axis

  int64_t inner() const { return shape.back(); }
  int64_t rows() const {
    int64_t r = 1;
    for (size_t i = 0; i + 1 < shape.size(); i++) r *= shape[i];
    return r;
  }
};

template <int K>
BroadcastPlan<K> planBroadcast(const Shape& out, const std::array<const Shape*, K>& ins) {
  const size_t rank = out.size();
  std::array<std::vector<int64_t>, K> full;
  for (int k = 0; k < K; k++) {
    const Shape& s = *ins[k];
    full[k].assign(rank, 0);
    int64_t acc = 1;
    for (size_t j = 0; j < s.size(); j++) {
      size_t i = s.size() - 1 - j;  // operand axis, right-aligned with out
      size_t o = rank - 1 - j;
      full[k][o] = (s[i] == 1) ? 0 : acc;
      acc *= s[i];
    }
  }
  BroadcastPlan<K> p;
  for (size_t o = 0; o < rank; o++) {
    if (out[o] == 1) continue;
    if (!p.shape.empty()) {
      bool merge = true;
      for (int k = 0; k < K; k++) {
        if (p.strides[k].back() != full[k][o] * out[o]) merge = false;
      }
      if (merge) {
        p.shape.back() *= out[o];
        for (int k = 0; k < K; k++) p.strides[k].back() = full[k][o];
        continue;
      }
    }
    p.shape.push_back(out[o]);
    for (int k = 0; k < K; k++) p.strides[k].push_back(full[k][o]);
  }
  if (p.shape.empty()) {
    p.shape.push_back(1);
    for (int k = 0; k < K; k++) p.strides[k].push_back(0);
  }
  return p;
}

/**
 * Runs row(offsets, outOffset, length) over every innermost row of a plan, splitting rows across
 * threads when the work is large (or, for a single long row, splitting that row). Offsets are in
 * elements of each operand; the output is contiguous.
 */
template <int K, class RowFn>
void forEachRow(const BroadcastPlan<K>& p, RowFn row) {
  const int64_t L = p.inner();
  const int64_t R = p.rows();
  const int64_t total = L * R;
  if (total == 0) return;
  const size_t outer = p.shape.size() - 1;
  if (R == 1) {
    // One long row: cut it into pieces, one per thread.
    if (!worthParallel(total)) {
      std::array<int64_t, K> off{};
      row(off, int64_t(0), L);
      return;
    }
#pragma omp parallel
    {
      int nt = omp_get_num_threads(), t = omp_get_thread_num();
      int64_t b = L * t / nt, e = L * (t + 1) / nt;
      std::array<int64_t, K> off;
      for (int k = 0; k < K; k++) off[k] = b * p.strides[k].back();
      if (e > b) row(off, b, e - b);
    }
    return;
  }
  auto runRange = [&](int64_t r0, int64_t r1) {
    if (r0 >= r1) return;
    std::vector<int64_t> idx(outer);
    int64_t rem = r0;
    for (size_t d = outer; d-- > 0;) {
      idx[d] = rem % p.shape[d];
      rem /= p.shape[d];
    }
    std::array<int64_t, K> off{};
    for (int k = 0; k < K; k++)
      for (size_t d = 0; d < outer; d++) off[k] += idx[d] * p.strides[k][d];
    for (int64_t r = r0; r < r1; r++) {
      row(off, r * L, L);
      // Odometer step over the outer axes.
      for (size_t d = outer; d-- > 0;) {
        idx[d]++;
        for (int k = 0; k < K; k++) off[k] += p.strides[k][d];
        if (idx[d] < p.shape[d]) break;
        for (int k = 0; k < K; k++) off[k] -= p.strides[k][d] * p.shape[d];
        idx[d] = 0;
      }
    }
  };
  if (!worthParallel(total)) {
    runRange(0, R);
    return;
  }
#pragma omp parallel
  {
    int nt = omp_get_num_threads(), t = omp_get_thread_num();
    runRange(R * t / nt, R * (t + 1) / nt);
  }
}

// ---- kernels (one declaration per contract entry; attributes already translated by TS) ----

void unary(const Buf& x, const Buf& out, const std::string& op);
/** dx = g · op'(x) from x, y = op(x) and g (float32); see the kernel contract. */
void unaryBackward(const Buf& x, const Buf& y, const Buf& g, const Buf& dx, const std::string& op);
void clamp(const Buf& x, const Buf& out, double lo, double hi);
void binary(const Buf& a, const Buf& b, const Buf& out, const std::string& op);
void where(const Buf& cond, const Buf& a, const Buf& b, const Buf& out);
void cast(const Buf& x, const Buf& out);

void reduce(const Buf& x, const Buf& out, const std::vector<int64_t>& axes, const std::string& op);
void argmaxLast(const Buf& x, const Buf& out);
void softmaxLast(const Buf& x, const Buf& out, bool log);
void pickLast(const Buf& x, const Buf& idx, const Buf& out);
void pickLastBackward(const Buf& g, const Buf& idx, const Buf& out);

void permute(const Buf& x, const Buf& out, const std::vector<int64_t>& perm);
void pad(const Buf& x, const Buf& out, const std::vector<int64_t>& before, double value);
void slice(const Buf& x, const Buf& out, const std::vector<int64_t>& begin);
void concat(const std::vector<Buf>& xs, const Buf& out, int64_t axis);
void gatherRows(const Buf& table, const Buf& idx, const Buf& out);
void scatterAddRows(const Buf& g, const Buf& idx, const Buf& out);
void oneHot(const Buf& idx, const Buf& out);

struct ConvParams {
  int64_t strideH, strideW, padTop, padLeft, dilationH, dilationW;
  /** The layer allows 1-D Winograd along rows (winograd_rows.cc says when that is sound). */
  bool rowWinograd = false;
  /** Mixed precision: the products' operands rounded to bfloat16, accumulation and outputs fp32. */
  bool bf16 = false;
};
/** Whether a convolution with weights w [kH, kW, Cin, Cout] runs on rowWinograd*: kW = 3, stride 1, allowed by p. */
bool rowWinogradFits(const Shape& w, const ConvParams& p);
void rowWinogradForward(const Buf& x, const Buf& w, const Buf* bias, const Buf& out, const ConvParams& p, bool accumulate);
/** Whether the backward pass of a convolution runs on rowConvBackward: a 1×k kernel, stride 1, no vertical padding. */
bool rowConvFits(const Shape& x, const Shape& w, const Shape& y, const ConvParams& p);
/**
 * One convolution of rowConvSumBackward: x (empty when only dx is wanted), w [1, KW, C, O], its
 * geometry, its gradients (null when not wanted) and dx's addend.
 */
struct RowConvTerm {
  Buf x, w;
  ConvParams p;
  const Buf* dx = nullptr;
  const Buf* addend = nullptr;
  const Buf* dw = nullptr;
};
/**
 * The gradients of y = Σ conv(x_t, w_t) (+ biases) for dy, over convolutions that fit rowConvFits
 * each giving dy's shape: dx_t = addend_t (or 0) + ∂/∂x_t, dw_t and db = Σ dy, each skipped when null.
 */
void rowConvSumBackward(const std::vector<RowConvTerm>& terms, const Buf& dy, const Buf* db);
/** dx (overwritten), dw and db of a 1×k convolution (x is read only for dw); each skipped when null. */
void rowConvBackward(const Buf& x, const Buf& dy, const Buf& w, const Buf* dx, const Buf* dw, const Buf* db, const ConvParams& p);
/** dx (overwritten), dw and db of a rowWinograd convolution (x is read only for dw); each skipped when null. */
void rowWinogradBackward(const Buf& x, const Buf& dy, const Buf& w, const Buf* dx, const Buf* dw, const Buf* db, const ConvParams& p);
/**
 * out = conv(x, w) + bias, or out += that when accumulate. With keep, a blocked copy of x that the
 * plan made is kept for conv2dBackward: the handle is returned (0 when nothing was kept).
 */
int64_t conv2d(const Buf& x, const Buf& w, const Buf* bias, const Buf& out, const ConvParams& p, bool accumulate, bool keep, const Buf* residual = nullptr);
void conv2dBackwardData(const Buf& dy, const Buf& w, const Buf& dx, const ConvParams& p);
/** dw = ∂/∂w, and db = Σ dy over N, H, W when db is given. */
void conv2dBackwardWeights(const Buf& x, const Buf& dy, const Buf& dw, const ConvParams& p, const Buf* db);
/**
 * The gradients a training step needs in one call: dx, dw and db (each optional), sharing the
 * blocked copy of dy between backward-data and backward-weights and using the forward's kept copy
 * of x (handle `saved`, released here).
 */
void conv2dBackward(const Buf& x, const Buf& dy, const Buf& w, const Buf* dx, const Buf* dw, const Buf* db, const ConvParams& p, int64_t saved);
void releaseConvInput(int64_t saved);
/** Throws unless x [N, H, W, C], w [kH, kW, C, O] and y [N, OH, OW, O] fit each other and p is sane. */
void checkConvShapes(const Shape& x, const Shape& w, const Shape& y, const ConvParams& p);
/** Every cached convolution primitive: (kind and geometry, oneDNN implementation name). */
std::vector<std::pair<std::string, std::string>> convImplementations();

/**
 * "auto": Winograd where a measured rule says it is faster, else direct; "direct": never Winograd
 * (bit-for-bit the same per output pixel whatever the batch or image size); "winograd": wherever
 * eligible. Changing it drops the cached convolution primitives.
 */
void setConvAlgorithm(const std::string& policy);
std::string convAlgorithm();

struct ConvBenchResult {
  std::string config;  // which configuration won, e.g. "nChw16c/direct"
  double seconds;      // median seconds per call of that configuration
  double minSeconds;   // its fastest call
};
/** Times the fastest oneDNN configuration for one conv shape: {forward, backward-data, backward-weights}. */
std::array<ConvBenchResult, 3> convBenchBest(int64_t N, int64_t H, int64_t W, int64_t Cin, int64_t Cout, int64_t k, int iters);

void gate(const Buf& x, const Buf& out);
struct AdamHyper {
  double beta1, beta2, eps, stepSize, bc2Sqrt, decay, l2;
};
/** One Adam step in place on p, m, v (src/kernels/contracts.ts gives the formula), float64 arithmetic, float32 stores. */
void adamUpdate(const Buf& p, const Buf& g, const Buf& m, const Buf& v, const AdamHyper& h);
/** out = x + a ⊙ σ(b) for h = [a, b] along the last axis. */
void gatedResidual(const Buf& x, const Buf& h, const Buf& out);
/** dh = [g ⊙ σ(b), g ⊙ a ⊙ σ(b)(1 − σ(b))]. */
void gatedResidualBackward(const Buf& h, const Buf& g, const Buf& dh);
/** out [..., 2C] = [elu(x), elu(−x)] for x [..., C]. */
void concatElu(const Buf& x, const Buf& out);
/** dx = g[..., :C] · elu'(x) − g[..., C:] · elu'(−x). */
void concatEluBackward(const Buf& x, const Buf& g, const Buf& dx);
/** out[i] = u_i ≥ p ? float(1 / (1 − p)) : 0, u_i the i-th uniform of Philox stream (seed, offset) as tensor/random.ts draws it. */
void dropoutMask(const Buf& out, uint64_t seed, uint64_t offset, double p);
void gateBackward(const Buf& x, const Buf& g, const Buf& dx);
void softmaxCrossEntropy(const Buf& logits, const Buf& targets, const Buf& loss, const Buf& probs);
void softmaxCrossEntropyBackward(const Buf& probs, const Buf& targets, const Buf& g, const Buf& dx);

void matmul(const Buf& a, const Buf& b, const Buf& out, bool transA, bool transB, bool bf16);

/** PixelRNN's LSTM recurrence over all steps (src/kernels/contracts.ts): hs, cs and the activated gates acts. */
void lstmScan(const Buf& xg, const Buf& w, const Buf& h0, const Buf& c0, const Buf& hs, const Buf& cs, const Buf& acts, int64_t pad);
/** Its backward through time: dxg, dw, dh0, dc0 (overwritten). */
void lstmScanBackward(const Buf& w, const Buf& h0, const Buf& c0, const Buf& hs, const Buf& cs, const Buf& acts, const Buf& dhs, const Buf& dxg, const Buf& dw, const Buf& dh0, const Buf& dc0, int64_t pad);
// ---- cached sampling steps (native/cached_step.cc) ----

/** A dense layer of a cached step: out [n, cout] = in [n, cin] · w [cin, cout] + b. */
struct StepDense {
  const float* w = nullptr;
  const float* b = nullptr;
  int64_t cin = 0, cout = 0;
};

struct RowLstmStepLayer {
  std::vector<int64_t> inputTaps;  // dx ≤ 0 of the input row
  const float* gates = nullptr;     // [taps·2h + k·h, 4h]
  const float* gateBias = nullptr;  // [n, 4h]
  StepDense output;                 // h → 2h
  float *prevH = nullptr, *prevC = nullptr, *curH = nullptr, *curC = nullptr;  // [n, W, h]
};

/** rowLstmStep's plan (RowLSTMStepPlan in src/kernels/contracts.ts): pointers into JS-owned arrays, plus scratch. */
struct RowLstmStepPlan {
  int64_t n = 0, H = 0, W = 0, C = 0, h = 0, k = 0;
  float* image = nullptr;
  std::vector<int64_t> firstTaps;  // (dy, dx) pairs
  StepDense first, skip, outHidden, out;
  std::vector<float*> rows;  // [n, W, 2h] per layer
  std::vector<RowLstmStepLayer> layers;
  float* logits = nullptr;
  std::vector<float> taps, z, hx, f, skipIn, a, b;  // scratch
};

/** One pixel of a Row LSTM's cached sampler through every layer (see the contract). */
void rowLstmStep(RowLstmStepPlan& p, int64_t y, int64_t x);

// ---- the transformer core (native/transformer.cc, native/attention.cc) ----

/** Layer norm (or RMS norm with rms) over the last axis; writes mean (not with rms) and rstd per row. */
void layerNorm(const Buf& x, const Buf* weight, const Buf* bias, const Buf& out, const Buf& mean, const Buf& rstd, double eps, bool rms);
void layerNormBackward(const Buf& x, const Buf* weight, const Buf& mean, const Buf& rstd, const Buf& g, const Buf& dx, const Buf* dweight, const Buf* dbias, bool rms);
void gelu(const Buf& x, const Buf& out, bool tanhForm);
void geluBackward(const Buf& x, const Buf& g, const Buf& dx, bool tanhForm);
/** AttentionAttrs of src/kernels/attention.ts: `pattern` is its patternCode(). */
struct AttentionAttrs {
  int64_t heads = 1;
  double scale = 1;
  /** Mixed precision (attention.cc says which operands are rounded); attentionStep ignores it. */
  bool bf16 = false;
  std::vector<int64_t> pattern;
};
/** Packed multi-head attention (qkv [N, L, 3C] → out [N, L, C], lse [N, heads, L]). */
void attention(const Buf& qkv, const Buf& out, const Buf& lse, const AttentionAttrs& a);
void attentionBackward(const Buf& qkv, const Buf& out, const Buf& lse, const Buf& dout, const Buf& dqkv, const AttentionAttrs& a);
/**
 * One query row q [N, C] at `position` against caches k, v [N, T, C]; the sequence is T long, or
 * a local2d pattern's grid.
 */
void attentionStep(const Buf& q, const Buf& k, const Buf& v, const Buf& out, int64_t position, const AttentionAttrs& a);

std::string onednnVersion();
/**
 * What oneDNN can do on this CPU: its effective ISA (after ONEDNN_MAX_CPU_ISA) and the
 * implementations it picks for a small bf16 convolution and matmul ("" where it refuses bf16).
 */
struct CpuCapabilities {
  std::string isa, bf16Conv, bf16Matmul;
};
CpuCapabilities cpuCapabilities();
/** The message of a bf16 product asked for where oneDNN cannot build one (AVX2). */
std::string bf16Unavailable();
/** Drops every cached primitive and reordered weight (tests; memory pressure). */
void clearOnednnCaches();
/** {primitives, reordered weights} currently cached; for tests that check reuse. */
std::array<int64_t, 3> onednnCacheSizes();

}  // namespace arpix
