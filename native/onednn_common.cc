// Global oneDNN engine and stream, and the cache-wide entry points declared in common.h.
#include "onednn_common.h"

#include <string>

#include "common.h"

namespace arpix {

dnnl::engine& cpuEngine() {
  static dnnl::engine eng(dnnl::engine::kind::cpu, 0);
  return eng;
}

dnnl::stream& cpuStream() {
  static dnnl::stream s(cpuEngine());
  return s;
}

std::mutex& onednnLock() {
  static std::mutex m;
  return m;
}

std::string onednnVersion() {
  const dnnl_version_t* v = dnnl::version();
  return std::to_string(v->major) + "." + std::to_string(v->minor) + "." + std::to_string(v->patch);
}

void clearOnednnCaches() {
  std::lock_guard<std::mutex> g(onednnLock());
  clearConvCaches();
  clearMatmulCaches();
  clearThreadProducts();
}

std::array<int64_t, 3> onednnCacheSizes() {
  std::lock_guard<std::mutex> g(onednnLock());
  return {convPrimitiveCount() + matmulPrimitiveCount() + threadProductCount(), convWeightCount(), convKeptInputCount()};
}

namespace {

/** The implementation oneDNN picks for a small bf16 product made by make, or "" when it refuses one. */
template <class Make>
std::string bf16Impl(Make make) {
  try {
    return make();
  } catch (const dnnl::error&) {
    return "";
  }
}

/** oneDNN's effective ISA (after ONEDNN_MAX_CPU_ISA) by its name; takes no lock. */
std::string isaName() {
  switch (dnnl::get_effective_cpu_isa()) {
    case dnnl::cpu_isa::sse41: return "sse41";
    case dnnl::cpu_isa::avx: return "avx";
    case dnnl::cpu_isa::avx2: return "avx2";
    case dnnl::cpu_isa::avx2_vnni: return "avx2_vnni";
    case dnnl::cpu_isa::avx512_core: return "avx512_core";
    case dnnl::cpu_isa::avx512_core_vnni: return "avx512_core_vnni";
    case dnnl::cpu_isa::avx512_core_bf16: return "avx512_core_bf16";
    case dnnl::cpu_isa::avx512_core_amx: return "avx512_core_amx";
    default: return "other (" + std::to_string(int(dnnl::get_effective_cpu_isa())) + ")";
  }
}

}  // namespace

std::string bf16Unavailable() {
  return "bf16 was asked for, but oneDNN has no bf16 products on this CPU (its ISA here is " + isaName() +
         "): compute in fp32 — train.precision=auto or fp32 does, and withPrecision('fp32')";
}

CpuCapabilities cpuCapabilities() {
  using dnnl::memory;
  using dt = memory::data_type;
  using tag = memory::format_tag;
  CpuCapabilities c;
  c.isa = isaName();
  std::lock_guard<std::mutex> g(onednnLock());
  // The shapes of a small training layer: what a bf16 run would ask for.
  c.bf16Conv = bf16Impl([] {
    const memory::desc src({8, 32, 8, 8}, dt::bf16, tag::nhwc), dst({8, 32, 8, 8}, dt::f32, tag::nhwc), w({32, 32, 3, 3}, dt::bf16, tag::any);
    dnnl::convolution_forward::desc d(dnnl::prop_kind::forward_training, dnnl::algorithm::convolution_direct, src, w, dst, {1, 1}, {0, 0}, {1, 1}, {1, 1});
    return std::string(dnnl::convolution_forward::primitive_desc(d, cpuEngine()).impl_info_str());
  });
  c.bf16Matmul = bf16Impl([] {
    dnnl::matmul::desc d(memory::desc({64, 64}, dt::bf16, tag::ab), memory::desc({64, 64}, dt::bf16, tag::ab), memory::desc({64, 64}, dt::f32, tag::ab));
    return std::string(dnnl::matmul::primitive_desc(d, cpuEngine()).impl_info_str());
  });
  return c;
}

}  // namespace arpix
