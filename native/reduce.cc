// Reductions and last-axis kernels: reduce (sum/max/min), argmaxLast, softmaxLast, pickLast and
// its backward. Semantics follow src/backends/ts/reduce.ts and movement.ts.
#include <algorithm>
#include <cmath>
#include <cstring>
#include <limits>

#include "common.h"
#include "vmath.h"

namespace arpix {
namespace {

// ---------- reduce ----------

enum class ROp { Sum, Max, Min };

// Accumulator type: double for float32 sums (at least as accurate as the reference's running
// float32 sum), int64 for int32 sums (wrapped once at the end, which equals wrapping every step).
template <class T>
struct Acc { using type = T; };
template <>
struct Acc<float> { using type = double; };
template <>
struct Acc<int32_t> { using type = int64_t; };

template <ROp op, class A>
inline A combine(A acc, A v) {
  if constexpr (op == ROp::Sum) {
    return acc + v;
  } else if constexpr (std::is_floating_point_v<A>) {
    // Math.max / Math.min: a NaN anywhere makes the result NaN.
    if (acc != acc || v != v) return std::numeric_limits<A>::quiet_NaN();
    return op == ROp::Max ? (v > acc ? v : acc) : (v < acc ? v : acc);
  } else {
    return op == ROp::Max ? std::max(acc, v) : std::min(acc, v);
  }
}

template <ROp op, class A>
inline A identity() {
  if constexpr (op == ROp::Sum) return A(0);
  else if constexpr (std::is_floating_point_v<A>) return op == ROp::Max ? -std::numeric_limits<A>::infinity() : std::numeric_limits<A>::infinity();
  else return op == ROp::Max ? std::numeric_limits<A>::min() : std::numeric_limits<A>::max();
}

template <class T, class A>
inline T finish(A v) {
  if constexpr (std::is_same_v<T, float>) return float(v);
  else return static_cast<int32_t>(static_cast<uint32_t>(static_cast<uint64_t>(v)));
}

/** x viewed as alternating groups of kept / reduced axes, with size-1 axes dropped. */
struct ReducePlan {
  Shape size;
  std::vector<bool> reduced;
};

ReducePlan planReduce(const Shape& x, const Shape& out) {
  ReducePlan p;
  for (size_t i = 0; i < x.size(); i++) {
    if (x[i] == 1) continue;
    bool r = out[i] == 1;
    if (!p.size.empty() && p.reduced.back() == r) {
      p.size.back() *= x[i];
    } else {
      p.size.push_back(x[i]);
      p.reduced.push_back(r);
    }
  }
  return p;
}

template <ROp op, class T>
void reduceTyped(const Buf& xb, const Buf& ob) {
  using A = typename Acc<T>::type;
  const T* x = static_cast<const T*>(xb.data);
  T* o = static_cast<T*>(ob.data);
  const int64_t nOut = ob.size;
  if (xb.size == 0) {
    // Empty reduction: the identity, stored as the reference stores it (±Infinity → 0 in int32).
    T v;
    if constexpr (std::is_same_v<T, float>) v = identity<op, float>();
    else v = 0;
    std::fill(o, o + nOut, v);
    return;
  }
  ReducePlan p = planReduce(xb.shape, ob.shape);
  const size_t g = p.size.size();
  if (g == 0 || (g == 1 && !p.reduced[0])) {
    std::memcpy(o, x, size_t(nOut) * sizeof(T));
    return;
  }
  if (g == 1 || (g == 2 && !p.reduced[0])) {
    // Rows reduced along their contiguous tail: [K, R] (K = 1 when everything is reduced).
    const int64_t K = g == 1 ? 1 : p.size[0], R = p.size.back();
#pragma omp parallel for schedule(static) if (worthParallel(K * R) && K > 1)
    for (int64_t k = 0; k < K; k++) {
      const T* row = x + k * R;
      A acc = identity<op, A>();
      if constexpr (op == ROp::Sum) {
        for (int64_t r = 0; r < R; r++) acc += A(row[r]);
      } else {
        for (int64_t r = 0; r < R; r++) acc = combine<op, A>(acc, A(row[r]));
      }
      o[k] = finish<T, A>(acc);
    }
    return;
  }
  if (g == 2) {
    // Leading axes reduced: [R, K], e.g. a bias gradient summed over N·H·W. Each thread sums a
    // band of rows into its own partial, so the inner loop stays contiguous.
    {
      const int64_t R = p.size[0], K = p.size[1];
      int nt = worthParallel(R * K) ? omp_get_max_threads() : 1;
      std::vector<A> partial(size_t(nt) * size_t(K), identity<op, A>());
#pragma omp parallel num_threads(nt)
      {
        int t = omp_get_thread_num(), n = omp_get_num_threads();
        A* acc = partial.data() + size_t(t) * size_t(K);
        for (int64_t r = R * t / n; r < R * (t + 1) / n; r++) {
          const T* row = x + r * K;
          if constexpr (op == ROp::Sum) {
            for (int64_t k = 0; k < K; k++) acc[k] += A(row[k]);
          } else {
            for (int64_t k = 0; k < K; k++) acc[k] = combine<op, A>(acc[k], A(row[k]));
          }
        }
      }
      for (int64_t k = 0; k < K; k++) {
        A v = partial[size_t(k)];
        for (int t = 1; t < nt; t++) v = combine<op, A>(v, partial[size_t(t) * size_t(K) + size_t(k)]);
        o[k] = finish<T, A>(v);
      }
      return;
    }
  }
  if (g == 3 && !p.reduced[0]) {
    // [K1, R, K2]: a column reduction per leading index (e.g. sum over H·W per image and channel).
    const int64_t K1 = p.size[0], R = p.size[1], K2 = p.size[2];
#pragma omp parallel for schedule(static) if (worthParallel(K1 * R * K2) && K1 > 1)
    for (int64_t a = 0; a < K1; a++) {
      std::vector<A> acc(size_t(K2), identity<op, A>());
      const T* base = x + a * R * K2;
      for (int64_t r = 0; r < R; r++) {
        const T* row = base + r * K2;
        for (int64_t k = 0; k < K2; k++) acc[size_t(k)] = combine<op, A>(acc[size_t(k)], A(row[k]));
      }
      for (int64_t k = 0; k < K2; k++) o[a * K2 + k] = finish<T, A>(acc[size_t(k)]);
    }
    return;
  }
  // General case: walk x in order with out's broadcast strides, as the reference does.
  Shape sh = p.size;
  std::vector<int64_t> os(g, 0);
  {
    int64_t acc = 1;
    for (size_t i = g; i-- > 0;) {
      if (!p.reduced[i]) {
        os[i] = acc;
        acc *= sh[i];
      }
    }
  }
  std::vector<A> acc(size_t(nOut), identity<op, A>());
  std::vector<int64_t> idx(g, 0);
  int64_t oo = 0;
  const int64_t n = xb.size;
  for (int64_t i = 0; i < n; i++) {
    acc[size_t(oo)] = combine<op, A>(acc[size_t(oo)], A(x[i]));
    for (size_t d = g; d-- > 0;) {
      idx[d]++;
      oo += os[d];
      if (idx[d] < sh[d]) break;
      oo -= os[d] * sh[d];
      idx[d] = 0;
    }
  }
  for (int64_t k = 0; k < nOut; k++) o[k] = finish<T, A>(acc[size_t(k)]);
}

template <ROp op>
void reduceDispatch(const Buf& x, const Buf& out) {
  if (x.dtype == DType::F32) reduceTyped<op, float>(x, out);
  else reduceTyped<op, int32_t>(x, out);
}

}  // namespace

void reduce(const Buf& x, const Buf& out, const std::vector<int64_t>&, const std::string& op) {
  bool keepDims = out.shape.size() == x.shape.size();
  for (size_t i = 0; keepDims && i < x.shape.size(); i++) keepDims = out.shape[i] == x.shape[i] || out.shape[i] == 1;
  if (!keepDims) throw ArgumentError("out " + fmtShape(out.shape) + " is not a keep-dims reduction of x " + fmtShape(x.shape));
  if (op == "sum") return reduceDispatch<ROp::Sum>(x, out);
  if (op == "max") return reduceDispatch<ROp::Max>(x, out);
  if (op == "min") return reduceDispatch<ROp::Min>(x, out);
  throw KernelError("reduce", "unknown op '" + op + "'");
}

void argmaxLast(const Buf& x, const Buf& out) {
  const int64_t k = x.shape.empty() ? 1 : x.shape.back();
  const int64_t J = out.size;
  int32_t* o = out.i32();
  auto run = [&](auto* xd) {
#pragma omp parallel for schedule(static) if (worthParallel(J * k))
    for (int64_t j = 0; j < J; j++) {
      const auto* row = xd + j * k;
      int64_t best = 0;
      // Strictly greater: the first maximum wins and a NaN never does (as in the reference).
      for (int64_t i = 1; i < k; i++)
        if (row[i] > row[best]) best = i;
      o[j] = int32_t(best);
    }
  };
  if (x.dtype == DType::F32) run(x.f32());
  else run(x.i32());
}

void softmaxLast(const Buf& x, const Buf& out, bool log) {
  const int64_t k = x.shape.empty() ? 1 : x.shape.back();
  if (k == 0) return;
  const int64_t rows = x.size / k;
  const float* xd = x.f32();
  float* od = out.f32();
#pragma omp parallel for schedule(static) if (worthParallel(x.size))
  for (int64_t j = 0; j < rows; j++) {
    const float* a = xd + j * k;
    float* o = od + j * k;
    const ExpRow r = expRow(a, o, k);
    if (r.special) {
      // NaN anywhere, or a +∞ / all −∞ row: the reference's arithmetic gives NaNs; match it with
      // the straightforward formula rather than the fast path.
      double s = 0;
      for (int64_t i = 0; i < k; i++) s += std::exp(double(a[i]) - double(r.max));
      for (int64_t i = 0; i < k; i++) {
        o[i] = log ? float(double(a[i]) - r.max - std::log(s)) : float(std::exp(double(a[i]) - r.max) / s);
      }
      continue;
    }
    if (log) {
      const float shift = float(double(r.max) + std::log(r.sum));
      for (int64_t i = 0; i < k; i++) o[i] = a[i] - shift;
    } else {
      const float inv = float(1.0 / r.sum);
      for (int64_t i = 0; i < k; i++) o[i] *= inv;
    }
  }
}

void pickLast(const Buf& x, const Buf& idx, const Buf& out) {
  if (x.shape.empty()) throw ArgumentError("x must have at least one axis");
  const int64_t k = x.shape.back();
  const int64_t J = out.size;
  const int32_t* ix = idx.i32();
  const uint32_t* xd = static_cast<const uint32_t*>(x.data);  // 4-byte elements copied as bits
  uint32_t* o = static_cast<uint32_t*>(out.data);
  for (int64_t j = 0; j < J; j++) {
    if (ix[j] < 0 || ix[j] >= k) throw KernelError("pickLast", "idx[" + std::to_string(j) + "] = " + std::to_string(ix[j]) + " is out of range for a last axis of " + std::to_string(k));
  }
#pragma omp parallel for schedule(static) if (worthParallel(J))
  for (int64_t j = 0; j < J; j++) o[j] = xd[j * k + ix[j]];
}

void pickLastBackward(const Buf& g, const Buf& idx, const Buf& out) {
  if (out.shape.empty()) throw ArgumentError("out must have at least one axis");
  const int64_t k = out.shape.back();
  const int64_t J = idx.size;
  const int32_t* ix = idx.i32();
  for (int64_t j = 0; j < J; j++) {
    if (ix[j] < 0 || ix[j] >= k) throw KernelError("pickLastBackward", "idx[" + std::to_string(j) + "] = " + std::to_string(ix[j]) + " is out of range for a last axis of " + std::to_string(k));
  }
  const uint32_t* gd = static_cast<const uint32_t*>(g.data);
  uint32_t* o = static_cast<uint32_t*>(out.data);
  std::memset(o, 0, size_t(out.size) * 4);
  for (int64_t j = 0; j < J; j++) o[j * k + ix[j]] = gd[j];
}

}  // namespace arpix
