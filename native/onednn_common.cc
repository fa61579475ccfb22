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

}  // namespace arpix
