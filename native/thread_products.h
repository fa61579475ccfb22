// Work split by chunks over OpenMP threads, each chunk's matrix products run by its own thread on
// oneDNN matmul (brgemm) with its own stream and scratchpad: the pattern of the convolutions that
// arpix computes itself (winograd_rows.cc, row_conv.cc), whose chunks stay in a core's L2 cache
// between their transforms and their products. Used under onednnLock; products and buffers are
// prepared before a parallel region and only read inside it.
//
// oneDNN 2.6's dnnl_sgemm, and matmuls it serves as "gemm:jit" (e.g. a transposed batched
// operand), corrupt the heap when a signal (the profiler's SIGPROF, a Ctrl-C) arrives mid-call;
// the layouts used here all run on brgemm (a test holds this under a sampling profiler).
#pragma once

#include <algorithm>
#include <string>
#include <new>
#include <unordered_map>
#include <vector>

#include "common.h"
#include "onednn_common.h"

namespace arpix {

/** out[b] = op(A[b]) · B[b] (+ out[b]), b < batch, all dense row-major; op(A) = Aᵀ when transA (A stored [K, M]). */
struct ProductShape {
  int64_t batch, M, K, N;
  bool transA, accumulate;
};

struct ThreadProduct {
  dnnl::matmul prim;
  dnnl::memory::desc a, b, c, scratch;
  // Each thread's memory objects and argument map, made once and re-pointed per call: creating
  // four dnnl::memory per product cost ~1.2 µs, and a training step runs ~10,000 products.
  struct Args {
    dnnl::memory a, b, c, scratch;
    std::unordered_map<int, dnnl::memory> map;
  };
  mutable std::vector<Args> args;
};

/** The product of that shape, built once; also sizes every thread's scratchpad for nthr threads. */
const ThreadProduct& threadProduct(const ProductShape& s, int nthr);

/** Runs p on the calling thread (inside a parallel region: oneDNN runs serially there). */
void runProduct(const ThreadProduct& p, int tid, const float* a, const float* b, float* c);

/** Allocates on 64-byte (cache-line) boundaries: brgemm runs ~4 % faster on aligned operands. */
template <class T>
struct CacheAligned {
  using value_type = T;
  CacheAligned() = default;
  template <class U>
  CacheAligned(const CacheAligned<U>&) {}
  T* allocate(size_t n) {
    void* p = ::operator new(n * sizeof(T), std::align_val_t(64));
    return static_cast<T*>(p);
  }
  void deallocate(T* p, size_t) { ::operator delete(p, std::align_val_t(64)); }
  template <class U>
  bool operator==(const CacheAligned<U>&) const { return true; }
  template <class U>
  bool operator!=(const CacheAligned<U>&) const { return false; }
};
using AlignedFloats = std::vector<float, CacheAligned<float>>;

/** A per-thread buffer of at least `floats` floats (0: as it is), grown only outside parallel regions. */
AlignedFloats& threadBuffer(int which, int thread, int64_t floats);
constexpr int kThreadBuffers = 8;

/** Adds threads 1 … nthr−1's buffer `which` into thread 0's, over its first n floats; returns thread 0's. */
float* sumThreadBuffers(int which, int nthr, int64_t n);

/** Threads used for `chunks` chunks. */
inline int chunkThreads(int64_t chunks) { return int(std::min<int64_t>(omp_get_max_threads(), std::max<int64_t>(chunks, 1))); }

/** Runs body(first, end, thread) over [0, items) in chunks of `step` on all threads; rethrows the first error. */
template <class F>
void forChunks(int64_t items, int64_t step, F body) {
  const int64_t chunks = (items + step - 1) / step;
  std::string error;
#pragma omp parallel num_threads(chunkThreads(chunks))
  {
    const int tid = omp_get_thread_num();
#pragma omp for schedule(static)
    for (int64_t k = 0; k < chunks; k++) {
      try {
        body(k * step, std::min(items, (k + 1) * step), tid);
      } catch (const std::exception& e) {
#pragma omp critical
        if (error.empty()) error = e.what();
      }
    }
  }
  if (!error.empty()) throw std::runtime_error(error);
}

/**
 * Runs body(first, end, thread) with thread t taking ranges[t] in chunks of `step`, in order: for
 * work whose chunks write overlapping memory unless one thread does them all (ranges.size()
 * threads); rethrows the first error.
 */
template <class F>
void forThreadRanges(const std::vector<std::pair<int64_t, int64_t>>& ranges, int64_t step, F body) {
  std::string error;
#pragma omp parallel num_threads(int(ranges.size()))
  {
    const int tid = omp_get_thread_num();
    const auto [begin, end] = ranges[size_t(tid)];
    try {
      for (int64_t first = begin; first < end; first += step) body(first, std::min(end, first + step), tid);
    } catch (const std::exception& e) {
#pragma omp critical
      if (error.empty()) error = e.what();
    }
  }
  if (!error.empty()) throw std::runtime_error(error);
}

}  // namespace arpix
