// The one place that owns oneDNN's global state: a CPU engine, a stream, and the lock that keeps
// the primitive caches consistent when several Node worker threads load the addon (they share
// this library's statics). Included only by the onednn_*.cc adapter files.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <mutex>

#include "oneapi/dnnl/dnnl.hpp"

namespace arpix {

/** A primitive-cache key: every shape and parameter that selects a primitive, FNV-1a hashed. */
template <size_t N>
struct CacheKey {
  std::array<int64_t, N> v;
  bool operator==(const CacheKey& o) const { return v == o.v; }
};
template <size_t N>
struct CacheKeyHash {
  size_t operator()(const CacheKey<N>& k) const {
    size_t h = 1469598103934665603ull;
    for (int64_t x : k.v) h = (h ^ size_t(x)) * 1099511628211ull;
    return h;
  }
};

dnnl::engine& cpuEngine();
dnnl::stream& cpuStream();
std::mutex& onednnLock();

// Per-adapter cache hooks, gathered by clearOnednnCaches / onednnCacheSizes.
void clearConvCaches();
void clearMatmulCaches();
void clearThreadProducts();
int64_t convPrimitiveCount();
int64_t convWeightCount();
int64_t convKeptInputCount();
int64_t matmulPrimitiveCount();
int64_t threadProductCount();

}  // namespace arpix
