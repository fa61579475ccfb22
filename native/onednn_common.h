// The one place that owns oneDNN's global state: a CPU engine, a stream, and the lock that keeps
// the primitive caches consistent when several Node worker threads load the addon (they share
// this library's statics). Included only by the onednn_*.cc adapter files.
#pragma once

#include <mutex>

#include "oneapi/dnnl/dnnl.hpp"

namespace arpix {

dnnl::engine& cpuEngine();
dnnl::stream& cpuStream();
std::mutex& onednnLock();

// Per-adapter cache hooks, gathered by clearOnednnCaches / onednnCacheSizes.
void clearConvCaches();
void clearMatmulCaches();
int64_t convPrimitiveCount();
int64_t convWeightCount();
int64_t matmulPrimitiveCount();

}  // namespace arpix
