// Matrix products on oneDNN's matmul primitive (2.x API). Transposition is expressed through
// strides, so no operand is ever copied; a 2-D operand shared across a batch becomes a 3-D
// descriptor with batch 1, which the primitive broadcasts.
// Porting to oneDNN 3.x: matmul::desc disappears and matmul::primitive_desc takes the
// descriptors directly.
#include <cstring>
#include <memory>
#include <unordered_map>
#include <vector>

#include "common.h"
#include "onednn_common.h"

namespace arpix {
namespace {

using dnnl::memory;
using dt = memory::data_type;

using Key = CacheKey<11>;
using KeyHash = CacheKeyHash<11>;

struct MatmulEntry {
  dnnl::matmul prim;
  memory::desc a, b, out;
};

std::unordered_map<Key, std::unique_ptr<MatmulEntry>, KeyHash> cache;

/**
 * A row-major [rows, cols] matrix (or [batch, rows, cols] stack) seen as its logical [r, c]
 * operand: transposed means the logical operand is the stored matrix's transpose.
 */
memory::desc operandMd(bool batched3d, int64_t batch, int64_t rows, int64_t cols, bool transposed, dt type) {
  const int64_t r = transposed ? cols : rows, c = transposed ? rows : cols;
  const int64_t sr = transposed ? 1 : cols, sc = transposed ? cols : 1;
  if (!batched3d) return memory::desc({r, c}, type, memory::dims{sr, sc});
  return memory::desc({batch, r, c}, type, memory::dims{rows * cols, sr, sc});
}

/** A bf16 copy of an operand's storage in grow-only scratch (slot 0: a, 1: b; used under onednnLock). */
void* bf16Copy(int slot, const Buf& x) {
  static std::vector<uint16_t> buffers[2];
  std::vector<uint16_t>& b = buffers[slot];
  if (int64_t(b.size()) < x.size) b.resize(size_t(x.size));
  toBf16(x.f32(), b.data(), x.size);
  return b.data();
}

}  // namespace

constexpr int64_t kSerialMatmulMacs = int64_t(1) << 19;

void matmul(const Buf& a, const Buf& b, const Buf& out, bool transA, bool transB, bool bf16) {
  const size_t ar = a.shape.size(), br = b.shape.size(), orank = out.shape.size();
  auto rankOk = [](size_t r) { return r == 2 || r == 3; };
  if (!rankOk(ar) || !rankOk(br) || !rankOk(orank)) throw ArgumentError("operands must be 2-D or 3-D");
  const int64_t ra = a.shape[ar - 2], ca = a.shape[ar - 1];
  const int64_t rb = b.shape[br - 2], cb = b.shape[br - 1];
  const int64_t M = transA ? ca : ra, K = transA ? ra : ca, N = transB ? rb : cb;
  bool fits = K == (transB ? cb : rb) && out.shape[orank - 2] == M && out.shape[orank - 1] == N;
  if (orank == 2) fits = fits && ar == 2 && br == 2;
  if (orank == 3) fits = fits && (ar == 2 || a.shape[0] == out.shape[0]) && (br == 2 || b.shape[0] == out.shape[0]);
  if (!fits) throw ArgumentError("shapes a " + fmtShape(a.shape) + ", b " + fmtShape(b.shape) + " and out " + fmtShape(out.shape) + " do not fit");
  const bool batched = orank == 3;
  const int64_t B = batched ? out.shape[0] : 1;
  if (out.size == 0) return;
  if (K == 0) {
    std::memset(out.data, 0, size_t(out.size) * 4);
    return;
  }
  const int64_t Ba = ar == 3 ? B : 1, Bb = br == 3 ? B : 1;
  std::lock_guard<std::mutex> lock(onednnLock());
  // Small products (the cached sampler's per-pixel steps: [16, 128] × [128, 128]) run on one
  // thread: a fork/join costs more than the work, and far more when another process holds the
  // other core (measured 17 us on one thread against 930 us on two under load).
  const bool serial = B * M * N * K < kSerialMatmulMacs;
  const int threadsBefore = omp_get_max_threads();
  if (serial) omp_set_num_threads(1);
  struct RestoreThreads {
    bool active; int n;
    ~RestoreThreads() { if (active) omp_set_num_threads(n); }
  } restore{serial, threadsBefore};
  Key key{{batched, Ba, Bb, ra, ca, rb, cb, transA, transB, omp_get_max_threads(), bf16}};  // threads: see onednn_conv.cc
  auto it = cache.find(key);
  if (it == cache.end()) {
    auto e = std::make_unique<MatmulEntry>();
    // Mixed precision: bf16 copies of both operands, the product accumulated and written in fp32.
    const dt type = bf16 ? dt::bf16 : dt::f32;
    e->a = operandMd(batched, Ba, ra, ca, transA, type);
    e->b = operandMd(batched, Bb, rb, cb, transB, type);
    e->out = batched ? memory::desc({B, M, N}, dt::f32, memory::format_tag::abc) : memory::desc({M, N}, dt::f32, memory::format_tag::ab);
    dnnl::matmul::desc d(e->a, e->b, e->out);
    try {
      e->prim = dnnl::matmul(dnnl::matmul::primitive_desc(d, cpuEngine()));
    } catch (const dnnl::error&) {
      if (!bf16) throw;
      throw ArgumentError(bf16Unavailable());
    }
    it = cache.emplace(key, std::move(e)).first;
  }
  MatmulEntry& e = *it->second;
  memory ma(e.a, cpuEngine(), bf16 ? bf16Copy(0, a) : a.data), mb(e.b, cpuEngine(), bf16 ? bf16Copy(1, b) : b.data), mo(e.out, cpuEngine(), out.data);
  e.prim.execute(cpuStream(), {{DNNL_ARG_SRC, ma}, {DNNL_ARG_WEIGHTS, mb}, {DNNL_ARG_DST, mo}});
  cpuStream().wait();
}

void clearMatmulCaches() { cache.clear(); }
int64_t matmulPrimitiveCount() { return int64_t(cache.size()); }

}  // namespace arpix
