// Convolution on oneDNN (2.x API): forward, backward-data and backward-weights in channels-last
// (nhwc) with HWIO weights, plus the best-configuration probe used by the benchmarks.
//
// Every oneDNN convolution call lives in this file. Porting to oneDNN 3.x means replacing the
// `*::desc` + `primitive_desc(desc, engine[, hint])` pairs below with the 3.x constructors that
// take the descriptors directly, and `dnnl::memory::desc::data` uses (none here).
//
// Caches (all under onednnLock):
// - primitives, keyed by every shape and parameter, built once per geometry;
// - reordered weights, keyed by (storage id, target layout) and stamped with the storage version:
//   while a weight tensor is unchanged, repeated calls skip the reorder entirely.
#include <algorithm>
#include <chrono>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <map>
#include <optional>
#include <memory>
#include <random>
#include <unordered_map>

#include "common.h"
#include "onednn_common.h"

namespace arpix {
namespace {

using dnnl::memory;
using tag = memory::format_tag;
using dt = memory::data_type;

struct Geometry {
  int64_t N, H, W, C, O, KH, KW, OH, OW;
  int64_t sh, sw, pt, pl, pb, pr, dh, dw;
  /** bf16 operands (x, w; dy, w; x, dy), fp32 accumulation and results. */
  bool bf16;
};

Geometry geometry(const Shape& x, const Shape& w, const Shape& y, const ConvParams& p) {
  Geometry g{};
  g.N = x[0], g.H = x[1], g.W = x[2], g.C = x[3];
  g.KH = w[0], g.KW = w[1], g.O = w[3];
  g.OH = y[1], g.OW = y[2];
  g.sh = p.strideH, g.sw = p.strideW, g.pt = p.padTop, g.pl = p.padLeft, g.dh = p.dilationH, g.dw = p.dilationW;
  g.bf16 = p.bf16;
  // Bottom/right padding follow from the output size: the last output row reads input row
  // (OH-1)·sh − pt + (KH-1)·dh, which is H − 1 + pb.
  g.pb = (g.OH - 1) * g.sh + (g.KH - 1) * g.dh + 1 - g.H - g.pt;
  g.pr = (g.OW - 1) * g.sw + (g.KW - 1) * g.dw + 1 - g.W - g.pl;
  return g;
}

enum class Kind : int64_t { Fwd = 0, FwdBias = 1, BwdData = 2, BwdWeights = 3, FwdSum = 4, FwdBiasSum = 5, BwdWeightsBias = 6, FwdRes = 7, FwdBiasRes = 8 };

bool isForward(Kind k) { return k == Kind::Fwd || k == Kind::FwdBias || k == Kind::FwdSum || k == Kind::FwdBiasSum || k == Kind::FwdRes || k == Kind::FwdBiasRes; }
bool hasBias(Kind k) { return k == Kind::FwdBias || k == Kind::FwdBiasSum || k == Kind::FwdBiasRes; }
bool accumulates(Kind k) { return k == Kind::FwdSum || k == Kind::FwdBiasSum; }
/** Adds a residual tensor of dst's shape as it writes (a binary post-op; direct nhwc plans only). */
bool addsResidual(Kind k) { return k == Kind::FwdRes || k == Kind::FwdBiasRes; }

using Key = CacheKey<20>;
using KeyHash = CacheKeyHash<20>;

Key keyOf(Kind kind, const Geometry& g) {
  // The thread count is part of the key: oneDNN's JIT kernels partition work for the number of
  // threads they were created with, so setThreads() must lead to new primitives.
  return Key{{int64_t(kind), g.N, g.H, g.W, g.C, g.O, g.KH, g.KW, g.OH, g.OW, g.sh, g.sw, g.pt, g.pl, g.pb, g.pr, g.dh, g.dw,
              int64_t(omp_get_max_threads()), int64_t(g.bf16)}};
}

// oneDNN describes tensors by logical dims in NCHW / OIHW order; the tag gives the memory order.
memory::desc actMd(int64_t N, int64_t C, int64_t H, int64_t W, tag t = tag::nhwc, dt type = dt::f32) {
  return memory::desc({N, C, H, W}, type, t);
}
memory::desc weightMd(const Geometry& g, tag t = tag::hwio, dt type = dt::f32) { return memory::desc({g.O, g.C, g.KH, g.KW}, type, t); }
/** The type of a product's operands: bf16 in mixed precision (their copies, converted per call), else f32. */
dt operandType(const Geometry& g) { return g.bf16 ? dt::bf16 : dt::f32; }

/**
 * An input rows/columns window that oneDNN can express: when the output never reaches the last
 * rows or columns of the input (negative bottom/right padding), the input is cropped to the part
 * that is read, described with the full tensor's strides.
 */
struct Window {
  int64_t H, W, pb, pr;
  bool cropped;
};
Window windowOf(const Geometry& g) {
  Window w{g.H, g.W, g.pb, g.pr, false};
  // oneDNN sizes outputs as ⌊(H + pt + pb − extent) / stride⌋ + 1, so a bottom padding up to
  // stride − 1 above the exact one describes the same output: a strided layer whose last rows are
  // never read (PixelCNN++'s down-sampling) needs no crop. A cropped window is a strided view that
  // oneDNN only runs on its reference loops (50–100× slower), so crop only when unavoidable.
  if (g.pb < 0 && g.pb + g.sh - 1 >= 0) w.pb = 0;
  if (g.pr < 0 && g.pr + g.sw - 1 >= 0) w.pr = 0;
  if (w.pb < 0) w.H += w.pb, w.pb = 0, w.cropped = true;
  if (w.pr < 0) w.W += w.pr, w.pr = 0, w.cropped = true;
  return w;
}
memory::desc inputMd(const Geometry& g, const Window& win, dt type = dt::f32) {
  if (!win.cropped) return actMd(g.N, g.C, g.H, g.W, tag::nhwc, type);
  // Same memory as the full nhwc tensor, fewer rows/columns visible.
  return memory::desc({g.N, g.C, win.H, win.W}, type, memory::dims{g.H * g.W * g.C, 1, g.W * g.C, g.C});
}

struct ConvGeomArgs {
  memory::dims strides, dilates, padL, padR;
};
ConvGeomArgs convArgs(const Geometry& g, const Window& win) {
  // oneDNN counts dilation from 0 (0 = dense), arpix from 1.
  return {{g.sh, g.sw}, {g.dh - 1, g.dw - 1}, {g.pt, g.pl}, {win.pb, win.pr}};
}

/**
 * How a geometry runs. Direct convolution reads and writes the user's nhwc memory in place.
 * Winograd F(4×4, 3×3) does ~2.2× fewer multiplications for 3×3 stride-1 layers but oneDNN only
 * implements it on blocked nChw16c activations, so it costs a reorder in and out; it is chosen
 * by a fixed rule (never by timing, so that the same program always computes the same numbers).
 */
struct Plan {
  dnnl::algorithm algo;
  tag act;  // nhwc (user memory) or nChw16c (reordered copies)
};

/**
 * The algorithm policy: "auto" (the rule below), "direct" or "winograd" (where eligible). Starts
 * from ARPIX_CONV_ALGO; setConvAlgorithm() changes it and drops the cached primitives.
 */
std::string& algoPolicy() {
  static std::string policy = [] {
    const char* v = std::getenv("ARPIX_CONV_ALGO");
    return std::string(v && *v ? v : "auto");
  }();
  return policy;
}

bool preferWinograd(const Geometry& g, const Window& win) {
  const std::string& policy = algoPolicy();
  if (policy == "direct" || g.bf16) return false;  // oneDNN's Winograd is fp32 only
  const bool eligible = g.KH == 3 && g.KW == 3 && g.sh == 1 && g.sw == 1 && g.dh == 1 && g.dw == 1 && !win.cropped &&
                        g.C % 16 == 0 && g.O % 16 == 0;
  if (!eligible) return false;
  if (policy == "winograd") return true;
  // Measured on the 2-core AVX-512 development machine (native kernels, both algorithms, 3×3 on
  // [N, H, W, C] → C): Winograd, reorders included, wins by 15-60% once there are enough output
  // pixels to amortise the reorders — 2048 with 64+ channels (e.g. [32, 8, 8, 64], [8, 16, 16,
  // 160]), 8192 with 32+ ([32, 28, 28, 32]) — and loses by up to 4x on small ones ([1, 8, 8, 64],
  // [8, 16, 16, 32], [1, 16, 16, 256]).
  const int64_t pixels = g.N * g.OH * g.OW, ch = std::min(g.C, g.O);
  return (ch >= 64 && pixels >= 2048) || (ch >= 32 && pixels >= 8192);
}

memory::desc activationMd(const Geometry& g, const Window& win, bool input, tag act, dt type = dt::f32) {
  if (act == tag::nhwc) return input ? inputMd(g, win, type) : actMd(g.N, g.O, g.OH, g.OW, tag::nhwc, type);
  return input ? actMd(g.N, g.C, g.H, g.W, act, type) : actMd(g.N, g.O, g.OH, g.OW, act, type);
}

/**
 * accumulate: a sum post-op, so the primitive adds its result to what dst holds; residual: a binary
 * add post-op reading a tensor of dst's layout (DNNL_ARG_SRC_1 of post-op 0).
 */
dnnl::convolution_forward::primitive_desc forwardPd(const Geometry& g, const Window& win, bool bias, const Plan& plan, bool accumulate = false, bool residual = false) {
  ConvGeomArgs a = convArgs(g, win);
  memory::desc src = activationMd(g, win, true, plan.act, operandType(g)), dst = activationMd(g, win, false, plan.act);
  memory::desc w = weightMd(g, tag::any, operandType(g));
  const auto prop = dnnl::prop_kind::forward_training;
  dnnl::primitive_attr attr;
  if (accumulate) {
    dnnl::post_ops ops;
    ops.append_sum(1.0f);
    attr.set_post_ops(ops);
  }
  if (residual) {
    dnnl::post_ops ops;
    ops.append_binary(dnnl::algorithm::binary_add, dst);
    attr.set_post_ops(ops);
  }
  if (bias) {
    dnnl::convolution_forward::desc d(prop, plan.algo, src, w, memory::desc({g.O}, dt::f32, tag::x), dst, a.strides, a.dilates, a.padL, a.padR);
    return dnnl::convolution_forward::primitive_desc(d, attr, cpuEngine());
  }
  dnnl::convolution_forward::desc d(prop, plan.algo, src, w, dst, a.strides, a.dilates, a.padL, a.padR);
  return dnnl::convolution_forward::primitive_desc(d, attr, cpuEngine());
}

/** A cached primitive with what it needs to run against user (JS) memory. */
struct ConvEntry {
  dnnl::primitive prim;
  std::string impl;             // oneDNN's implementation name, e.g. "jit:avx512_core" or "ref:any"
  std::string what;             // kind and geometry, for convImplementations()
  memory::desc src, dst, bias;  // user-side descriptors of the activations
  memory::desc weights;         // the layout the primitive wants (forward / backward-data) or produces
  memory::desc userWeights;     // hwio
  bool weightsNeedReorder = false;
  dnnl::reorder weightReorder;  // hwio → weights, or (backward-weights) weights → hwio
  memory diffWeights;           // backward-weights scratch in the primitive's layout
  memory::desc diffBias;        // backward-weights with the bias gradient: its descriptor
  Window win{};
  // Blocked plans only: copies of the input-side (src / diff_src) and output-side (dst / diff_dst)
  // activations in the primitive's layout, and the reorders that fill or empty them.
  bool blocked = false;
  memory blkIn, blkOut;
  dnnl::reorder inToBlk, blkToIn, outToBlk, blkToOut;
};

std::unordered_map<Key, std::unique_ptr<ConvEntry>, KeyHash> convCache;

struct WeightEntry {
  int64_t version;
  memory::desc md;
  memory mem;
  uint64_t lastUse;
};
// Reordered weights by storage id. Storages that die (e.g. weights recomputed every step by
// weight normalisation) cannot be detected from here, so the cache is bounded by bytes and the
// least recently used copies go first.
std::unordered_map<int64_t, std::vector<WeightEntry>> weightCache;
constexpr size_t kWeightCacheBytes = size_t(256) << 20;
size_t weightCacheBytes = 0;
uint64_t useClock = 0;

void evictWeightsOver(size_t budget) {
  while (weightCacheBytes > budget) {
    int64_t oldestId = 0;
    size_t oldestAt = 0;
    uint64_t oldest = UINT64_MAX;
    for (auto& [id, list] : weightCache) {
      for (size_t i = 0; i < list.size(); i++) {
        if (list[i].lastUse < oldest) oldest = list[i].lastUse, oldestId = id, oldestAt = i;
      }
    }
    if (oldest == UINT64_MAX) return;
    auto& list = weightCache[oldestId];
    weightCacheBytes -= list[oldestAt].md.get_size();
    list.erase(list.begin() + std::ptrdiff_t(oldestAt));
    if (list.empty()) weightCache.erase(oldestId);
  }
}

void buildEntry(ConvEntry& e, Kind kind, const Geometry& g, const Plan& plan) {
  const Window& win = e.win;
  ConvGeomArgs a = convArgs(g, win);
  // In mixed precision the operands are bf16: x and w forward, dy and w backward-data, x and dy
  // backward-weights; what a primitive writes (y, dx, dw, db) stays fp32.
  const dt op = operandType(g);
  memory::desc in = activationMd(g, win, true, plan.act);
  memory::desc inOp = activationMd(g, win, true, plan.act, op), outOp = activationMd(g, win, false, plan.act, op);
  if (isForward(kind)) {
    auto pd = forwardPd(g, win, hasBias(kind), plan, accumulates(kind), addsResidual(kind));
    e.prim = dnnl::convolution_forward(pd);
    e.impl = pd.impl_info_str();
    e.src = pd.src_desc();
    e.dst = pd.dst_desc();
    e.weights = pd.weights_desc();
    if (hasBias(kind)) e.bias = pd.bias_desc();
  } else if (kind == Kind::BwdData) {
    auto hint = forwardPd(g, win, false, plan);
    dnnl::convolution_backward_data::desc d(plan.algo, in, weightMd(g, tag::any, op), outOp, a.strides, a.dilates, a.padL, a.padR);
    dnnl::convolution_backward_data::primitive_desc pd(d, cpuEngine(), hint);
    e.prim = dnnl::convolution_backward_data(pd);
    e.impl = pd.impl_info_str();
    e.src = pd.diff_src_desc();
    e.dst = pd.diff_dst_desc();
    e.weights = pd.weights_desc();
  } else {
    const bool bias = kind == Kind::BwdWeightsBias;
    auto hint = forwardPd(g, win, bias, plan);
    auto d = bias ? dnnl::convolution_backward_weights::desc(plan.algo, inOp, weightMd(g, tag::any), memory::desc({g.O}, dt::f32, tag::x), outOp, a.strides, a.dilates, a.padL, a.padR)
                  : dnnl::convolution_backward_weights::desc(plan.algo, inOp, weightMd(g, tag::any), outOp, a.strides, a.dilates, a.padL, a.padR);
    dnnl::convolution_backward_weights::primitive_desc pd(d, cpuEngine(), hint);
    e.prim = dnnl::convolution_backward_weights(pd);
    e.impl = pd.impl_info_str();
    e.src = pd.src_desc();
    e.dst = pd.diff_dst_desc();
    e.weights = pd.diff_weights_desc();
    if (bias) e.diffBias = pd.diff_bias_desc();
  }
  e.blocked = plan.act != tag::nhwc;
  if (e.blocked) {
    const memory::desc userIn = inputMd(g, win), userOut = actMd(g.N, g.O, g.OH, g.OW);
    e.blkIn = memory(e.src, cpuEngine());
    e.blkOut = memory(e.dst, cpuEngine());
    auto rd = [&](const memory::desc& from, const memory::desc& to) {
      return dnnl::reorder(dnnl::reorder::primitive_desc(cpuEngine(), from, cpuEngine(), to));
    };
    if (kind == Kind::BwdData) e.blkToIn = rd(e.src, userIn);
    else e.inToBlk = rd(userIn, e.src);
    if (isForward(kind)) e.blkToOut = rd(e.dst, userOut);
    if (!isForward(kind) || accumulates(kind)) e.outToBlk = rd(userOut, e.dst);
    e.src = userIn;
    e.dst = userOut;
  }
}

ConvEntry& entryFor(Kind kind, const Geometry& g) {
  Key key = keyOf(kind, g);
  auto it = convCache.find(key);
  if (it != convCache.end()) return *it->second;
  auto e = std::make_unique<ConvEntry>();
  e->win = windowOf(g);
  e->userWeights = weightMd(g);
  bool built = false;
  if (preferWinograd(g, e->win) && !addsResidual(kind)) {
    try {
      buildEntry(*e, kind, g, {dnnl::algorithm::convolution_winograd, tag::nChw16c});
      built = true;
    } catch (const dnnl::error&) {
      // Not implemented for this geometry on this CPU: direct below.
    }
  }
  if (!built) {
    try {
      buildEntry(*e, kind, g, {dnnl::algorithm::convolution_direct, tag::nhwc});
    } catch (const dnnl::error&) {
      if (!g.bf16) throw;
      throw ArgumentError(bf16Unavailable());
    }
  }
  e->weightsNeedReorder = !(e->weights == e->userWeights);
  if (e->weightsNeedReorder) {
    if (kind == Kind::BwdWeights || kind == Kind::BwdWeightsBias) {
      e->diffWeights = memory(e->weights, cpuEngine());
      e->weightReorder = dnnl::reorder(dnnl::reorder::primitive_desc(cpuEngine(), e->weights, cpuEngine(), e->userWeights));
    } else {
      e->weightReorder = dnnl::reorder(dnnl::reorder::primitive_desc(cpuEngine(), e->userWeights, cpuEngine(), e->weights));
    }
  }
  static const char* kindNames[] = {"forward", "forward+bias", "backward-data", "backward-weights", "forward (accumulate)", "forward+bias (accumulate)", "backward-weights+bias", "forward (residual)", "forward+bias (residual)"};
  e->what = std::string(kindNames[int(kind)]) + " x[" + std::to_string(g.N) + "," + std::to_string(g.H) + "," + std::to_string(g.W) + "," + std::to_string(g.C) +
            "] k" + std::to_string(g.KH) + "x" + std::to_string(g.KW) + " →" + std::to_string(g.O) + " stride " + std::to_string(g.sh) + "x" + std::to_string(g.sw) +
            " dilation " + std::to_string(g.dh) + "x" + std::to_string(g.dw) + (e->blocked ? " (nChw16c)" : " (nhwc)") + (g.bf16 ? " bf16" : "");
  ConvEntry& ref = *e;
  convCache.emplace(key, std::move(e));
  return ref;
}

/** The weights in the layout e wants: the user's memory, a cached reorder, or a fresh one. */
memory weightsFor(ConvEntry& e, const Buf& w) {
  memory user(e.userWeights, cpuEngine(), w.data);
  if (!e.weightsNeedReorder) return user;
  if (w.storageId > 0) {
    auto& list = weightCache[w.storageId];
    for (WeightEntry& we : list) {
      if (!(we.md == e.weights)) continue;
      if (we.version != w.version) {
        e.weightReorder.execute(cpuStream(), user, we.mem);
        we.version = w.version;
      }
      we.lastUse = ++useClock;
      return we.mem;
    }
    memory mem(e.weights, cpuEngine());
    e.weightReorder.execute(cpuStream(), user, mem);
    list.push_back({w.version, e.weights, mem, ++useClock});
    weightCacheBytes += e.weights.get_size();
    evictWeightsOver(kWeightCacheBytes);
    return mem;
  }
  memory mem(e.weights, cpuEngine());
  e.weightReorder.execute(cpuStream(), user, mem);
  return mem;
}

/**
 * A bf16 copy of n floats in grow-only scratch (used under onednnLock): slot 0 holds the input-side
 * operand (x), slot 1 the output-side one (dy). The copy lives until the next call on that slot.
 */
uint16_t* bf16Copy(int slot, const float* src, int64_t n) {
  static std::vector<uint16_t> buffers[2];
  std::vector<uint16_t>& b = buffers[slot];
  if (int64_t(b.size()) < n) b.resize(size_t(n));
  toBf16(src, b.data(), n);
  return b.data();
}

/** A copy of n floats rounded to bf16 values (nearest even), in grow-only scratch slot 0 or 1 (under onednnLock). */
float* bf16Rounded(int slot, const float* src, int64_t n) {
  static std::vector<float> buffers[2];
  std::vector<float>& b = buffers[slot];
  if (int64_t(b.size()) < n) b.resize(size_t(n));
  float* out = b.data();
#pragma omp parallel for schedule(static) if (n >= 4 * kParallelMin)
  for (int64_t i = 0; i < n; i++) {
    const uint32_t u = uint32_t(bf16Of(src[i])) << 16;
    std::memcpy(out + i, &u, 4);
  }
  return out;
}

/** Every tap of every output pixel falls in the padding (a degenerate but legal geometry). */
bool noInputRead(const Geometry& g) {
  const Window w = windowOf(g);
  return w.H <= 0 || w.W <= 0;
}

}  // namespace

namespace {

// Blocked copies of forward inputs kept for backward-weights (the Winograd plans): the forward
// pass reorders x into nChw16c anyway, so keeping that copy saves backward-weights the same
// reorder. A copy is found by the handle conv2d returned and used only while the storage id and
// version of x are unchanged (otherwise x was written in place and is reordered again). Copies go
// when used, or oldest first beyond a byte budget (a graph dropped without backward).
struct KeptInput {
  memory mem;
  int64_t storageId, version;
  size_t bytes;
};
std::map<int64_t, KeptInput> keptInputs;
int64_t nextKeptHandle = 1;
size_t keptBytes = 0;
constexpr size_t kKeptBytes = size_t(1) << 30;

void dropKept(std::map<int64_t, KeptInput>::iterator it) {
  keptBytes -= it->second.bytes;
  keptInputs.erase(it);
}

int64_t keepInput(const memory& mem, const Buf& x) {
  const size_t bytes = mem.get_desc().get_size();
  while (keptBytes + bytes > kKeptBytes && !keptInputs.empty()) dropKept(keptInputs.begin());
  const int64_t handle = nextKeptHandle++;
  keptInputs.emplace(handle, KeptInput{mem, x.storageId, x.version, bytes});
  keptBytes += bytes;
  return handle;
}

}  // namespace

void checkConvShapes(const Shape& x, const Shape& w, const Shape& y, const ConvParams& p) {
  bool ok = x.size() == 4 && w.size() == 4 && y.size() == 4 && x[0] == y[0] && x[3] == w[2] && y[3] == w[3];
  ok = ok && p.strideH >= 1 && p.strideW >= 1 && p.dilationH >= 1 && p.dilationW >= 1 && p.padTop >= 0 && p.padLeft >= 0;
  if (!ok) throw ArgumentError("shapes x " + fmtShape(x) + ", w " + fmtShape(w) + " and y " + fmtShape(y) + " (or the conv params) do not fit");
}

int64_t conv2d(const Buf& x, const Buf& w, const Buf* bias, const Buf& out, const ConvParams& p, bool accumulate, bool keep, const Buf* residual) {
  checkConvShapes(x.shape, w.shape, out.shape, p);
  if (residual) {
    if (residual->size != out.size) throw ArgumentError("residual holds " + std::to_string(residual->size) + " elements, expected the output's " + std::to_string(out.size));
    if (accumulate) throw ArgumentError("takes a residual or accumulates into out, not both");
    if (residual->f32() < out.f32() + out.size && out.f32() < residual->f32() + residual->size) throw ArgumentError("residual overlaps out: pass separate memory");
  }
  const Geometry g = geometry(x.shape, w.shape, out.shape, p);
  if (out.size == 0) return 0;
  // Where no post-op adds the residual, out starts as a copy of it and the convolution accumulates.
  auto startFromResidual = [&] {
    std::memcpy(out.f32(), residual->f32(), size_t(out.size) * 4);
    accumulate = true, residual = nullptr;
  };
  if (x.size == 0 || w.size == 0 || noInputRead(g)) {
    // No taps contribute: the output is the bias alone (added to out when accumulating).
    if (residual) startFromResidual();
    float* o = out.f32();
    for (int64_t i = 0; i < out.size; i += g.O)
      for (int64_t c = 0; c < g.O; c++) o[i + c] = (accumulate ? o[i + c] : 0.0f) + (bias ? bias->f32()[c] : 0.0f);
    return 0;
  }
  if (!p.bf16 && rowWinogradFits(w.shape, p)) {
    if (residual) startFromResidual();
    rowWinogradForward(x, w, bias, out, p, accumulate);
    return 0;
  }
  std::lock_guard<std::mutex> lock(onednnLock());
  // The binary post-op only on pointwise layers (ResNet-style residuals): oneDNN 2.6 skips post-ops
  // on output rows that lie entirely in padding (a test holds the copy path to the reference there).
  const bool pointwise = g.KH == 1 && g.KW == 1 && g.sh == 1 && g.sw == 1 && g.pt == 0 && g.pl == 0 && g.pb == 0 && g.pr == 0;
  if (residual && (!pointwise || preferWinograd(g, windowOf(g)) || entryFor(bias ? Kind::FwdBiasRes : Kind::FwdRes, g).impl.rfind("ref", 0) == 0)) {
    startFromResidual();  // elsewhere, or without a fast implementation of the post-op
  }
  const Kind kind = residual ? (bias ? Kind::FwdBiasRes : Kind::FwdRes) : accumulate ? (bias ? Kind::FwdBiasSum : Kind::FwdSum) : (bias ? Kind::FwdBias : Kind::Fwd);
  ConvEntry& e = entryFor(kind, g);
  memory wm = weightsFor(e, w);
  memory src(e.src, cpuEngine(), g.bf16 ? static_cast<void*>(bf16Copy(0, x.f32(), x.size)) : x.data), dst(e.dst, cpuEngine(), out.data);
  int64_t handle = 0;
  memory in = src;
  if (e.blocked) {
    in = keep && x.storageId > 0 ? memory(e.blkIn.get_desc(), cpuEngine()) : e.blkIn;
    e.inToBlk.execute(cpuStream(), src, in);
    if (accumulate) e.outToBlk.execute(cpuStream(), dst, e.blkOut);
  }
  std::unordered_map<int, memory> args{{DNNL_ARG_SRC, in}, {DNNL_ARG_WEIGHTS, wm}, {DNNL_ARG_DST, e.blocked ? e.blkOut : dst}};
  if (bias) args.emplace(DNNL_ARG_BIAS, memory(e.bias, cpuEngine(), bias->data));
  if (residual) args.emplace(DNNL_ARG_ATTR_MULTIPLE_POST_OP(0) | DNNL_ARG_SRC_1, memory(e.dst, cpuEngine(), residual->data));
  e.prim.execute(cpuStream(), args);
  if (e.blocked) e.blkToOut.execute(cpuStream(), e.blkOut, dst);
  cpuStream().wait();
  if (e.blocked && keep && x.storageId > 0) handle = keepInput(in, x);
  return handle;
}

namespace {

/**
 * The backward pass on the convolutions arpix computes itself (winograd_rows.cc, row_conv.cc)
 * when one applies to the layer; false leaves it to oneDNN. The geometry must read input; x is
 * read only for dw (backward-data passes an empty Buf and x's shape).
 */
bool ownBackward(const Shape& xShape, const Buf& x, const Buf& dy, const Buf& w, const Buf* dx, const Buf* dw, const Buf* db, const ConvParams& p) {
  if (p.bf16) return false;  // they compute in fp32; bf16 runs on oneDNN
  if (rowWinogradFits(w.shape, p)) rowWinogradBackward(x, dy, w, dx, dw, db, p);
  else if (rowConvFits(xShape, w.shape, dy.shape, p)) rowConvBackward(x, dy, w, dx, dw, db, p);
  else return false;
  return true;
}

/**
 * Backward-data of geometry g (under the lock, geometry not degenerate). Returns the blocked copy
 * of dy it made, or null on an nhwc plan: backward-weights can use it instead of its own reorder.
 */
const memory* backwardDataOn(const Geometry& g, const Buf& dy, const Buf& w, const Buf& dx) {
  ConvEntry& e = entryFor(Kind::BwdData, g);
  // Rows/columns outside the window are never read by the forward pass: their gradient is 0.
  if (e.win.cropped) std::memset(dx.data, 0, size_t(dx.size) * 4);
  memory wm = weightsFor(e, w);
  memory diffSrc(e.src, cpuEngine(), dx.data), diffDst(e.dst, cpuEngine(), g.bf16 ? static_cast<void*>(bf16Copy(1, dy.f32(), dy.size)) : dy.data);
  if (e.blocked) e.outToBlk.execute(cpuStream(), diffDst, e.blkOut);
  e.prim.execute(cpuStream(), {{DNNL_ARG_DIFF_SRC, e.blocked ? e.blkIn : diffSrc}, {DNNL_ARG_WEIGHTS, wm}, {DNNL_ARG_DIFF_DST, e.blocked ? e.blkOut : diffDst}});
  if (e.blocked) e.blkToIn.execute(cpuStream(), e.blkIn, diffSrc);
  cpuStream().wait();
  return e.blocked ? &e.blkOut : nullptr;
}

}  // namespace

void conv2dBackwardData(const Buf& dy, const Buf& w, const Buf& dx, const ConvParams& p) {
  checkConvShapes(dx.shape, w.shape, dy.shape, p);
  const Geometry g = geometry(dx.shape, w.shape, dy.shape, p);
  if (dx.size == 0) return;
  if (dy.size == 0 || w.size == 0 || noInputRead(g)) {
    std::memset(dx.data, 0, size_t(dx.size) * 4);
    return;
  }
  if (ownBackward(dx.shape, Buf{}, dy, w, &dx, nullptr, nullptr, p)) return;
  std::lock_guard<std::mutex> lock(onednnLock());
  backwardDataOn(g, dy, w, dx);
}

namespace {

/**
 * Backward-weights (and the bias gradient when db is given) of geometry g on raw nhwc memory. On a
 * blocked plan, blockedX / blockedDy are copies already made (by the forward pass, by
 * backward-data) that are used instead of reordering again when their layout is the one wanted.
 */
void backwardWeightsOn(const Geometry& g, void* x, void* dy, void* dw, void* db, const memory* blockedX = nullptr, const memory* blockedDy = nullptr) {
  ConvEntry& e = entryFor(db ? Kind::BwdWeightsBias : Kind::BwdWeights, g);
  memory user(e.userWeights, cpuEngine(), dw);
  if (g.bf16) {
    x = bf16Copy(0, static_cast<const float*>(x), g.N * g.H * g.W * g.C);
    dy = bf16Copy(1, static_cast<const float*>(dy), g.N * g.OH * g.OW * g.O);
  }
  memory src(e.src, cpuEngine(), x), diffDst(e.dst, cpuEngine(), dy);
  memory diffW = e.weightsNeedReorder ? e.diffWeights : user;
  memory in = e.blkIn, out = e.blkOut;
  if (e.blocked) {
    if (blockedX && blockedX->get_desc() == e.blkIn.get_desc()) in = *blockedX;
    else e.inToBlk.execute(cpuStream(), src, e.blkIn);
    if (blockedDy && blockedDy->get_desc() == e.blkOut.get_desc()) out = *blockedDy;
    else e.outToBlk.execute(cpuStream(), diffDst, e.blkOut);
  }
  std::unordered_map<int, memory> args{{DNNL_ARG_SRC, e.blocked ? in : src}, {DNNL_ARG_DIFF_WEIGHTS, diffW}, {DNNL_ARG_DIFF_DST, e.blocked ? out : diffDst}};
  if (db) args.emplace(DNNL_ARG_DIFF_BIAS, memory(e.diffBias, cpuEngine(), db));
  e.prim.execute(cpuStream(), args);
  if (e.weightsNeedReorder) e.weightReorder.execute(cpuStream(), diffW, user);
  cpuStream().wait();
}

/**
 * The dh×dw interleaved phases of an nhwc tensor as a batch: out[(a·dw + b)·N + n, i, j, :] =
 * src[n, i·dh + a − offH, j·dw + b − offW, :], zero where that falls outside src; out is
 * [dh·dw·N, PH, PW, C]. One pass that pads and permutes at once.
 */
void phasesOf(const float* src, int64_t N, int64_t H, int64_t W, int64_t C, int64_t dh, int64_t dw, int64_t offH, int64_t offW,
              int64_t PH, int64_t PW, float* out) {
  const int64_t rows = dh * dw * N * PH;
#pragma omp parallel for schedule(static)
  for (int64_t r = 0; r < rows; r++) {
    const int64_t i = r % PH, pn = r / PH, n = pn % N, phase = pn / N, a = phase / dw, b = phase % dw;
    float* o = out + r * PW * C;
    const int64_t y = i * dh + a - offH;
    if (y < 0 || y >= H) {
      std::memset(o, 0, size_t(PW * C) * 4);
      continue;
    }
    const float* row = src + (n * H + y) * W * C;
    for (int64_t j = 0; j < PW; j++) {
      const int64_t xx = j * dw + b - offW;
      if (xx < 0 || xx >= W) std::memset(o + j * C, 0, size_t(C) * 4);
      else std::memcpy(o + j * C, row + xx * C, size_t(C) * 4);
    }
  }
}

/** Grow-only scratch for the phase copies (used under onednnLock). */
float* scratch(int which, int64_t floats) {
  static std::vector<float> buffers[2];
  std::vector<float>& b = buffers[which];
  if (int64_t(b.size()) < floats) b.resize(size_t(floats));
  return b.data();
}

}  // namespace

namespace {

/** db = Σ dy over N, H, W, from dy's fp32 values. */
void biasGradient(const Buf& dy, int64_t O, const Buf& db) {
  float* b = db.f32();
  const float* d = dy.f32();
  std::fill(b, b + O, 0.0f);
  for (int64_t i = 0; i < dy.size; i += O)
    for (int64_t c = 0; c < O; c++) b[c] += d[i + c];
}

/** The weight-gradient part of a backward pass (under the lock); blocked copies as backwardWeightsOn. */
void weightGradients(const Geometry& g, const Buf& x, const Buf& dy, const Buf& dw, const Buf* db, const memory* blockedX, const memory* blockedDy) {
  if (dw.size == 0 || x.size == 0 || dy.size == 0 || noInputRead(g)) {
    // Nothing to convolve: dw is 0, and only the bias saw the output gradient.
    if (dw.size > 0) std::memset(dw.data, 0, size_t(dw.size) * 4);
    if (db) biasGradient(dy, g.O, *db);
    return;
  }
  if (g.bf16 && db) {
    // The bias gradient from dy as it is, not from its bf16 copy (no product to speed up there).
    biasGradient(dy, g.O, *db);
    db = nullptr;
  }
  if (g.bf16 && (g.sh > 1 || g.sw > 1)) {
    // oneDNN 2.6's bf16 backward-weights of strided layers ran 0.5 ms or 250 ms by turns
    // ([32, 29, 30, 32], 2×3 stride 2, avx512_core_bf16, on nhwc and blocked layouts alike,
    // depending on what memory held before). These layers are few (PixelCNN++'s down-sampling):
    // their operands are rounded to bf16 values in fp32 copies, and the fp32 primitive computes
    // exactly the products of bf16 operands, accumulated in fp32, as a bf16 one would.
    Geometry fp32 = g;
    fp32.bf16 = false;
    Buf xr = x, dyr = dy;
    xr.data = bf16Rounded(0, x.f32(), x.size), xr.storageId = 0;
    dyr.data = bf16Rounded(1, dy.f32(), dy.size), dyr.storageId = 0;
    weightGradients(fp32, xr, dyr, dw, nullptr, nullptr, nullptr);
    return;
  }
  if ((g.dh == 1 && g.dw == 1) || g.sh != 1 || g.sw != 1) {
    backwardWeightsOn(g, x.data, dy.data, dw.data, db ? db->data : nullptr, blockedX, blockedDy);
    return;
  }
  // Dilated, stride 1: oneDNN 2.6 runs this through an im2col + gemm:jit implementation, whose gemm
  // corrupts the heap when a signal arrives mid-call (thread_products.h), and its blocked-layout
  // path is the reference loop. (Gated PixelCNN's layers no longer come here: their vertical
  // layers run on winograd_rows.cc, their one-row layers' backward on row_conv.cc.) Output
  // rows oy ≡ a (mod dh) read only padded input rows ≡ a, so each of the dh×dw phases is an
  // undilated convolution (space-to-batch, as atrous convolution is often computed) on the JIT
  // kernels, and one batched call adds the phases' gradients. Phase rows past the output are zero
  // in dy, so they add nothing to either gradient.
  const int64_t jh = (g.OH + g.dh - 1) / g.dh, jw = (g.OW + g.dw - 1) / g.dw;
  const int64_t ph = jh + g.KH - 1, pw = jw + g.KW - 1;
  Geometry plain = g;
  plain.N = g.dh * g.dw * g.N, plain.H = ph, plain.W = pw, plain.OH = jh, plain.OW = jw;
  plain.pt = plain.pl = plain.pb = plain.pr = 0, plain.dh = plain.dw = 1;
  float* xs = scratch(0, plain.N * ph * pw * g.C);
  float* dys = scratch(1, plain.N * jh * jw * g.O);
  phasesOf(x.f32(), g.N, g.H, g.W, g.C, g.dh, g.dw, g.pt, g.pl, ph, pw, xs);
  phasesOf(dy.f32(), g.N, g.OH, g.OW, g.O, g.dh, g.dw, 0, 0, jh, jw, dys);
  backwardWeightsOn(plain, xs, dys, dw.data, db ? db->data : nullptr);
}

}  // namespace

void conv2dBackwardWeights(const Buf& x, const Buf& dy, const Buf& dw, const ConvParams& p, const Buf* db) {
  checkConvShapes(x.shape, dw.shape, dy.shape, p);
  const Geometry g = geometry(x.shape, dw.shape, dy.shape, p);
  if (dw.size > 0 && x.size > 0 && dy.size > 0 && !noInputRead(g) && ownBackward(x.shape, x, dy, dw, nullptr, &dw, db, p)) return;
  std::lock_guard<std::mutex> lock(onednnLock());
  weightGradients(g, x, dy, dw, db, nullptr, nullptr);
}

void conv2dBackward(const Buf& x, const Buf& dy, const Buf& w, const Buf* dx, const Buf* dw, const Buf* db, const ConvParams& p, int64_t saved) {
  checkConvShapes(x.shape, w.shape, dy.shape, p);
  // The gradients are read with their own shapes: they must be their tensors'.
  if (dx && dx->shape != x.shape) throw ArgumentError("dx " + fmtShape(dx->shape) + " must have x's shape " + fmtShape(x.shape));
  if (dw && dw->shape != w.shape) throw ArgumentError("dw " + fmtShape(dw->shape) + " must have w's shape " + fmtShape(w.shape));
  const Geometry g = geometry(x.shape, w.shape, dy.shape, p);
  if (x.size > 0 && w.size > 0 && dy.size > 0 && !noInputRead(g) && ownBackward(x.shape, x, dy, w, dx && dx->size > 0 ? dx : nullptr, dw, db, p)) {
    if (saved != 0) releaseConvInput(saved);
    return;
  }
  std::lock_guard<std::mutex> lock(onednnLock());
  // The forward pass's blocked copy of x, if it kept one and x has not been written since.
  std::optional<memory> keptX;
  if (auto it = keptInputs.find(saved); it != keptInputs.end()) {
    if (it->second.storageId == x.storageId && it->second.version == x.version) keptX = it->second.mem;
    dropKept(it);
  }
  const memory* blockedDy = nullptr;
  if (dx && dx->size > 0) {
    if (dy.size == 0 || w.size == 0 || noInputRead(g)) std::memset(dx->data, 0, size_t(dx->size) * 4);
    else blockedDy = backwardDataOn(g, dy, w, *dx);
  }
  if (dw) weightGradients(g, x, dy, *dw, db, keptX ? &*keptX : nullptr, blockedDy);
  else if (db) weightGradients(g, x, dy, Buf{}, db, nullptr, nullptr);
}

void releaseConvInput(int64_t saved) {
  std::lock_guard<std::mutex> lock(onednnLock());
  if (auto it = keptInputs.find(saved); it != keptInputs.end()) dropKept(it);
}

void setConvAlgorithm(const std::string& policy) {
  if (policy != "auto" && policy != "direct" && policy != "winograd") {
    throw KernelError("setConvAlgorithm", "policy must be 'auto', 'direct' or 'winograd', got '" + policy + "'");
  }
  std::lock_guard<std::mutex> lock(onednnLock());
  if (policy == algoPolicy()) return;
  algoPolicy() = policy;
  convCache.clear();
}

std::string convAlgorithm() {
  std::lock_guard<std::mutex> lock(onednnLock());
  return algoPolicy();
}

void clearConvCaches() {
  convCache.clear();
  keptInputs.clear();
  keptBytes = 0;
  weightCache.clear();
  weightCacheBytes = 0;
}
int64_t convPrimitiveCount() { return int64_t(convCache.size()); }
int64_t convKeptInputCount() { return int64_t(keptInputs.size()); }

std::vector<std::pair<std::string, std::string>> convImplementations() {
  std::lock_guard<std::mutex> lock(onednnLock());
  std::vector<std::pair<std::string, std::string>> out;
  for (auto& [key, e] : convCache) out.emplace_back(e->what, e->impl);
  return out;
}
int64_t convWeightCount() {
  int64_t n = 0;
  for (auto& kv : weightCache) n += int64_t(kv.second.size());
  return n;
}

// ---------------------------------------------------------------------------------------------
// Best-configuration probe: the ceiling the bench suite reports utilisation against. Everything
// (layout choice, algorithm, timing) happens here so no binding overhead is measured.

namespace {

struct ProbeConfig {
  const char* name;
  tag act;
  dnnl::algorithm algo;
};

double medianOf(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  size_t m = v.size() / 2;
  return v.size() % 2 ? v[m] : 0.5 * (v[m - 1] + v[m]);
}

struct Timing {
  double median, min;
};

template <class Run>
Timing timeIt(Run run, int iters) {
  run();
  run();  // warm-up: page faults, caches, JIT kernels
  std::vector<double> t;
  for (int i = 0; i < iters; i++) {
    auto t0 = std::chrono::steady_clock::now();
    run();
    t.push_back(std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count());
  }
  return {medianOf(t), *std::min_element(t.begin(), t.end())};
}

memory randomMemory(const memory::desc& md) {
  memory m(md, cpuEngine());
  float* p = static_cast<float*>(m.get_data_handle());
  std::mt19937 rng(42);
  std::uniform_real_distribution<float> u(-1.0f, 1.0f);
  size_t n = md.get_size() / sizeof(float);
  for (size_t i = 0; i < n; i++) p[i] = u(rng);
  return m;
}

}  // namespace

std::array<ConvBenchResult, 3> convBenchBest(int64_t N, int64_t H, int64_t W, int64_t Cin, int64_t Cout, int64_t k, int iters) {
  std::lock_guard<std::mutex> lock(onednnLock());
  const ProbeConfig configs[] = {
      {"nhwc/direct", tag::nhwc, dnnl::algorithm::convolution_direct},
      {"nhwc/auto", tag::nhwc, dnnl::algorithm::convolution_auto},
      {"nChw16c/direct", tag::nChw16c, dnnl::algorithm::convolution_direct},
      {"nChw16c/auto", tag::nChw16c, dnnl::algorithm::convolution_auto},
      {"any/direct", tag::any, dnnl::algorithm::convolution_direct},
  };
  const int64_t pad = (k - 1) / 2;
  const memory::dims strides{1, 1}, dil{0, 0}, padL{pad, pad}, padR{k - 1 - pad, k - 1 - pad};
  const memory::desc wAny({Cout, Cin, k, k}, dt::f32, tag::any);
  std::array<ConvBenchResult, 3> best{{{"", 1e30, 1e30}, {"", 1e30, 1e30}, {"", 1e30, 1e30}}};
  auto consider = [&](int which, const char* name, Timing t) {
    if (t.median < best[size_t(which)].seconds) best[size_t(which)] = {name, t.median, t.min};
  };
  dnnl::stream& s = cpuStream();
  for (const ProbeConfig& c : configs) {
    const memory::desc src = actMd(N, Cin, H, W, c.act), dst = actMd(N, Cout, H, W, c.act);
    try {
      dnnl::convolution_forward::desc fd(dnnl::prop_kind::forward_training, c.algo, src, wAny, dst, strides, dil, padL, padR);
      dnnl::convolution_forward::primitive_desc fpd(fd, cpuEngine());
      memory xs = randomMemory(fpd.src_desc()), ws = randomMemory(fpd.weights_desc()), ys = randomMemory(fpd.dst_desc());
      dnnl::convolution_forward fwd(fpd);
      consider(0, c.name, timeIt([&] {
        fwd.execute(s, {{DNNL_ARG_SRC, xs}, {DNNL_ARG_WEIGHTS, ws}, {DNNL_ARG_DST, ys}});
        s.wait();
      }, iters));

      dnnl::convolution_backward_data::desc bd(c.algo, src, wAny, dst, strides, dil, padL, padR);
      dnnl::convolution_backward_data::primitive_desc bpd(bd, cpuEngine(), fpd);
      memory dxs = randomMemory(bpd.diff_src_desc()), bws = randomMemory(bpd.weights_desc()), dys = randomMemory(bpd.diff_dst_desc());
      dnnl::convolution_backward_data bwdData(bpd);
      consider(1, c.name, timeIt([&] {
        bwdData.execute(s, {{DNNL_ARG_DIFF_SRC, dxs}, {DNNL_ARG_WEIGHTS, bws}, {DNNL_ARG_DIFF_DST, dys}});
        s.wait();
      }, iters));

      dnnl::convolution_backward_weights::desc wd(c.algo, src, wAny, dst, strides, dil, padL, padR);
      dnnl::convolution_backward_weights::primitive_desc wpd(wd, cpuEngine(), fpd);
      memory wxs = randomMemory(wpd.src_desc()), dws = randomMemory(wpd.diff_weights_desc()), wdys = randomMemory(wpd.diff_dst_desc());
      dnnl::convolution_backward_weights bwdW(wpd);
      consider(2, c.name, timeIt([&] {
        bwdW.execute(s, {{DNNL_ARG_SRC, wxs}, {DNNL_ARG_DIFF_WEIGHTS, dws}, {DNNL_ARG_DIFF_DST, wdys}});
        s.wait();
      }, iters));
    } catch (const dnnl::error&) {
      // This configuration is not implemented for the shape; the others still count.
    }
  }
  return best;
}

}  // namespace arpix
