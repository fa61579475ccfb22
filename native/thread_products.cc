// See thread_products.h.
#include "thread_products.h"

#include <memory>
#include <unordered_map>

namespace arpix {
namespace {

using dnnl::memory;
using Key = CacheKey<7>;
std::unordered_map<Key, std::unique_ptr<ThreadProduct>, CacheKeyHash<7>> products;

std::vector<dnnl::stream>& streams() {
  static std::vector<dnnl::stream> s;
  return s;
}

}  // namespace

AlignedFloats& threadBuffer(int which, int thread, int64_t floats) {
  static std::vector<AlignedFloats> buffers[kThreadBuffers + 1];
  std::vector<AlignedFloats>& b = buffers[which];
  if (int64_t(b.size()) <= thread) b.resize(size_t(thread) + 1);
  if (int64_t(b[size_t(thread)].size()) < floats) b[size_t(thread)].resize(size_t(floats));
  return b[size_t(thread)];
}

float* sumThreadBuffers(int which, int nthr, int64_t n) {
  float* total = threadBuffer(which, 0, 0).data();
  for (int t = 1; t < nthr; t++) {
    const float* part = threadBuffer(which, t, 0).data();
    for (int64_t i = 0; i < n; i++) total[i] += part[i];
  }
  return total;
}

const ThreadProduct& threadProduct(const ProductShape& s, int nthr) {
  // oneDNN sizes a primitive's work split for the threads it was built under (see onednn_conv.cc):
  // a product built for one thread (a cached sampling step) is another primitive.
  const Key key{{s.batch, s.M, s.K, s.N, int64_t(s.transA), int64_t(s.accumulate), omp_get_max_threads()}};
  auto it = products.find(key);
  if (it == products.end()) {
    const auto f32 = memory::data_type::f32;
    auto dense = [&](int64_t r, int64_t c) { return memory::desc({s.batch, r, c}, f32, memory::dims{r * c, c, 1}); };
    auto p = std::make_unique<ThreadProduct>();
    p->a = s.transA ? memory::desc({s.batch, s.M, s.K}, f32, memory::dims{s.M * s.K, 1, s.M}) : dense(s.M, s.K);
    p->b = dense(s.K, s.N);
    p->c = dense(s.M, s.N);
    dnnl::primitive_attr attr;
    attr.set_scratchpad_mode(dnnl::scratchpad_mode::user);
    if (s.accumulate) {
      dnnl::post_ops ops;
      ops.append_sum(1.0f);
      attr.set_post_ops(ops);
    }
    dnnl::matmul::primitive_desc pd(dnnl::matmul::desc(p->a, p->b, p->c), attr, cpuEngine());
    p->scratch = pd.scratchpad_desc();
    p->prim = dnnl::matmul(pd);
    it = products.emplace(key, std::move(p)).first;
  }
  // The scratchpad is the last of the thread buffers.
  ThreadProduct& p = *it->second;
  for (int t = 0; t < nthr; t++) threadBuffer(kThreadBuffers, t, int64_t(p.scratch.get_size()) / 4 + 1);
  while (int(streams().size()) < nthr) streams().emplace_back(cpuEngine());
  while (int(p.args.size()) < nthr) {
    ThreadProduct::Args& r = p.args.emplace_back();
    r.a = memory(p.a, cpuEngine(), DNNL_MEMORY_NONE), r.b = memory(p.b, cpuEngine(), DNNL_MEMORY_NONE);
    r.c = memory(p.c, cpuEngine(), DNNL_MEMORY_NONE), r.scratch = memory(p.scratch, cpuEngine(), DNNL_MEMORY_NONE);
    r.map = {{DNNL_ARG_SRC, r.a}, {DNNL_ARG_WEIGHTS, r.b}, {DNNL_ARG_DST, r.c}, {DNNL_ARG_SCRATCHPAD, r.scratch}};
  }
  return p;
}

void runProduct(const ThreadProduct& p, int tid, const float* a, const float* b, float* c) {
  ThreadProduct::Args& r = p.args[size_t(tid)];
  // The map holds handles to the same memory objects: re-pointing them re-points its arguments.
  r.a.set_data_handle(const_cast<float*>(a));
  r.b.set_data_handle(const_cast<float*>(b));
  r.c.set_data_handle(c);
  r.scratch.set_data_handle(threadBuffer(kThreadBuffers, tid, 0).data());
  dnnl::stream& st = streams()[size_t(tid)];
  p.prim.execute(st, r.map);
  st.wait();
}

void clearThreadProducts() { products.clear(); }
int64_t threadProductCount() { return int64_t(products.size()); }

}  // namespace arpix
