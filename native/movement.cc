// Data movement: permute, pad, slice, concat, row gathers and scatters, one-hot. Elements are
// 4 bytes in both native dtypes, so copies move bits and never convert.
// Semantics follow src/backends/ts/movement.ts.
#include <algorithm>
#include <cstring>

#include "common.h"

namespace arpix {
namespace {

using Bits = uint32_t;

/**
 * A copy between two strided views of the same shape, planned like a broadcast: size-1 axes
 * dropped, axes merged where both sides are contiguous across them. strides[0] is the
 * destination, strides[1] the source.
 */
BroadcastPlan<2> planCopy(const Shape& shape, const std::vector<int64_t>& dst, const std::vector<int64_t>& src) {
  BroadcastPlan<2> p;
  for (size_t i = 0; i < shape.size(); i++) {
    if (shape[i] == 1) continue;
    if (!p.shape.empty() && p.strides[0].back() == dst[i] * shape[i] && p.strides[1].back() == src[i] * shape[i]) {
      p.shape.back() *= shape[i];
      p.strides[0].back() = dst[i];
      p.strides[1].back() = src[i];
      continue;
    }
    p.shape.push_back(shape[i]);
    p.strides[0].push_back(dst[i]);
    p.strides[1].push_back(src[i]);
  }
  if (p.shape.empty()) {
    p.shape.push_back(1);
    p.strides[0].push_back(1);
    p.strides[1].push_back(1);
  }
  return p;
}

std::vector<int64_t> stridesOf(const Shape& s) {
  std::vector<int64_t> r(s.size());
  int64_t acc = 1;
  for (size_t i = s.size(); i-- > 0;) {
    r[i] = acc;
    acc *= s[i];
  }
  return r;
}

void copyStrided(Bits* dst, const Bits* src, const Shape& shape, const std::vector<int64_t>& ds, const std::vector<int64_t>& ss) {
  if (numel(shape) == 0) return;
  BroadcastPlan<2> p = planCopy(shape, ds, ss);
  const int64_t dI = p.strides[0].back(), sI = p.strides[1].back();
  const size_t rank = p.shape.size();
  // A transpose of the two innermost axes (the source is contiguous along the second-last axis
  // of the destination): copy in square tiles so both sides stay in cache.
  if (rank >= 2 && dI == 1 && sI != 1 && p.strides[1][rank - 2] == 1 && p.shape[rank - 2] >= 16 && p.shape[rank - 1] >= 16) {
    const int64_t A = p.shape[rank - 2], B = p.shape[rank - 1];
    const int64_t dA = p.strides[0][rank - 2], sB = sI;
    const size_t nOuter = rank - 2;
    int64_t R = 1;
    for (size_t d = 0; d < nOuter; d++) R *= p.shape[d];
    constexpr int64_t T = 32;
    auto tile = [&](Bits* d, const Bits* s) {
      for (int64_t a0 = 0; a0 < A; a0 += T)
        for (int64_t b0 = 0; b0 < B; b0 += T)
          for (int64_t a = a0; a < std::min(A, a0 + T); a++)
            for (int64_t b = b0; b < std::min(B, b0 + T); b++) d[a * dA + b] = s[a + b * sB];
    };
    if (R == 1) {
      // One big matrix: split its rows (of the destination) across threads.
#pragma omp parallel for schedule(static) if (worthParallel(A * B))
      for (int64_t a0 = 0; a0 < A; a0 += T)
        for (int64_t b0 = 0; b0 < B; b0 += T)
          for (int64_t a = a0; a < std::min(A, a0 + T); a++)
            for (int64_t b = b0; b < std::min(B, b0 + T); b++) dst[a * dA + b] = src[a + b * sB];
      return;
    }
#pragma omp parallel for schedule(static) if (worthParallel(numel(shape)))
    for (int64_t r = 0; r < R; r++) {
      int64_t rem = r, od = 0, os = 0;
      for (size_t d = nOuter; d-- > 0;) {
        const int64_t i = rem % p.shape[d];
        rem /= p.shape[d];
        od += i * p.strides[0][d];
        os += i * p.strides[1][d];
      }
      tile(dst + od, src + os);
    }
    return;
  }
  forEachRow<2>(p, [&](const std::array<int64_t, 2>& off, int64_t, int64_t L) {
    Bits* d = dst + off[0];
    const Bits* s = src + off[1];
    if (dI == 1 && sI == 1) {
      std::memcpy(d, s, size_t(L) * sizeof(Bits));
    } else {
      for (int64_t i = 0; i < L; i++) d[i * dI] = s[i * sI];
    }
  });
}

void fillValue(const Buf& out, double value) {
  if (out.dtype == DType::F32) {
    std::fill(out.f32(), out.f32() + out.size, float(value));
  } else {
    std::fill(out.i32(), out.i32() + out.size, jsToInt32(value));
  }
}

}  // namespace

void permute(const Buf& x, const Buf& out, const std::vector<int64_t>& perm) {
  std::vector<bool> seen(x.shape.size(), false);
  bool ok = perm.size() == x.shape.size() && out.shape.size() == x.shape.size();
  for (size_t i = 0; ok && i < perm.size(); i++) {
    ok = perm[i] >= 0 && size_t(perm[i]) < perm.size() && !seen[size_t(perm[i])] && out.shape[i] == x.shape[size_t(perm[i])];
    if (ok) seen[size_t(perm[i])] = true;
  }
  if (!ok) throw ArgumentError("perm does not map x " + fmtShape(x.shape) + " onto out " + fmtShape(out.shape));
  const auto xs = stridesOf(x.shape);
  std::vector<int64_t> src(perm.size());
  for (size_t i = 0; i < perm.size(); i++) src[i] = xs[size_t(perm[i])];
  copyStrided(static_cast<Bits*>(out.data), static_cast<const Bits*>(x.data), out.shape, stridesOf(out.shape), src);
}

void pad(const Buf& x, const Buf& out, const std::vector<int64_t>& before, double value) {
  bool ok = before.size() == x.shape.size() && out.shape.size() == x.shape.size();
  for (size_t i = 0; ok && i < before.size(); i++) ok = before[i] >= 0 && before[i] + x.shape[i] <= out.shape[i];
  if (!ok) throw ArgumentError("x " + fmtShape(x.shape) + " padded does not fit out " + fmtShape(out.shape));
  fillValue(out, value);
  const auto os = stridesOf(out.shape);
  int64_t base = 0;
  for (size_t i = 0; i < before.size(); i++) base += before[i] * os[i];
  copyStrided(static_cast<Bits*>(out.data) + base, static_cast<const Bits*>(x.data), x.shape, os, stridesOf(x.shape));
}

void slice(const Buf& x, const Buf& out, const std::vector<int64_t>& begin) {
  bool ok = begin.size() == x.shape.size() && out.shape.size() == x.shape.size();
  for (size_t i = 0; ok && i < begin.size(); i++) ok = begin[i] >= 0 && begin[i] + out.shape[i] <= x.shape[i];
  if (!ok) throw ArgumentError("a slice of " + fmtShape(out.shape) + " does not fit in x " + fmtShape(x.shape));
  const auto xs = stridesOf(x.shape);
  int64_t base = 0;
  for (size_t i = 0; i < begin.size(); i++) base += begin[i] * xs[i];
  copyStrided(static_cast<Bits*>(out.data), static_cast<const Bits*>(x.data) + base, out.shape, stridesOf(out.shape), xs);
}

void concat(const std::vector<Buf>& xs, const Buf& out, int64_t axis) {
  if (axis < 0 || size_t(axis) >= out.shape.size()) throw ArgumentError("axis " + std::to_string(axis) + " is out of range");
  int64_t total = 0;
  for (size_t i = 0; i < xs.size(); i++) {
    const Shape& s = xs[i].shape;
    bool ok = s.size() == out.shape.size();
    for (size_t d = 0; ok && d < s.size(); d++) ok = int64_t(d) == axis || s[d] == out.shape[d];
    if (!ok) throw ArgumentError("input " + std::to_string(i) + " " + fmtShape(s) + " does not fit out " + fmtShape(out.shape));
    total += s[size_t(axis)];
  }
  if (total != out.shape[size_t(axis)]) throw ArgumentError("inputs add up to " + std::to_string(total) + " along axis " + std::to_string(axis) + ", out has " + std::to_string(out.shape[size_t(axis)]));
  int64_t outer = 1, inner = 1;
  for (int64_t i = 0; i < axis; i++) outer *= out.shape[size_t(i)];
  for (size_t i = size_t(axis) + 1; i < out.shape.size(); i++) inner *= out.shape[i];
  const int64_t rowOut = out.shape[size_t(axis)] * inner;
  Bits* o = static_cast<Bits*>(out.data);
  // Viewed as [outer, axis·inner]: each input contributes one contiguous run per outer index.
#pragma omp parallel for schedule(static) if (worthParallel(out.size) && outer > 1)
  for (int64_t r = 0; r < outer; r++) {
    int64_t offset = 0;
    for (const Buf& x : xs) {
      const int64_t run = x.shape[size_t(axis)] * inner;
      std::memcpy(o + r * rowOut + offset, static_cast<const Bits*>(x.data) + r * run, size_t(run) * sizeof(Bits));
      offset += run;
    }
  }
}

void gatherRows(const Buf& table, const Buf& idx, const Buf& out) {
  const int64_t V = table.shape.empty() ? 0 : table.shape[0];
  const int64_t d = V == 0 ? 0 : table.size / V;
  const int64_t J = idx.size;
  if (out.size != J * d) throw ArgumentError("out must hold " + std::to_string(J * d) + " elements");
  const int32_t* ix = idx.i32();
  for (int64_t j = 0; j < J; j++) {
    if (ix[j] < 0 || ix[j] >= V) throw KernelError("gatherRows", "idx[" + std::to_string(j) + "] = " + std::to_string(ix[j]) + " is out of range for a table of " + std::to_string(V) + " rows");
  }
  const Bits* t = static_cast<const Bits*>(table.data);
  Bits* o = static_cast<Bits*>(out.data);
#pragma omp parallel for schedule(static) if (worthParallel(J * d))
  for (int64_t j = 0; j < J; j++) std::memcpy(o + j * d, t + int64_t(ix[j]) * d, size_t(d) * sizeof(Bits));
}

namespace {
template <class T>
void scatterAddTyped(const Buf& g, const int32_t* ix, int64_t J, const Buf& out, int64_t d) {
  const T* gd = static_cast<const T*>(g.data);
  T* o = static_cast<T*>(out.data);
  std::memset(o, 0, size_t(out.size) * sizeof(T));
  // Threads own bands of columns, and every column is summed in j order: the same float32
  // additions in the same order as the reference, so the result is identical.
  const int nt = (worthParallel(J * d) && d >= 64) ? omp_get_max_threads() : 1;
#pragma omp parallel num_threads(nt)
  {
    int t = omp_get_thread_num(), n = omp_get_num_threads();
    const int64_t c0 = d * t / n, c1 = d * (t + 1) / n;
    for (int64_t j = 0; j < J; j++) {
      T* row = o + int64_t(ix[j]) * d;
      const T* src = gd + j * d;
      if constexpr (std::is_same_v<T, float>) {
        for (int64_t c = c0; c < c1; c++) row[c] += src[c];
      } else {
        for (int64_t c = c0; c < c1; c++) row[c] = int32_t(uint32_t(row[c]) + uint32_t(src[c]));
      }
    }
  }
}
}  // namespace

void scatterAddRows(const Buf& g, const Buf& idx, const Buf& out) {
  const int64_t V = out.shape.empty() ? 0 : out.shape[0];
  const int64_t d = V == 0 ? 0 : out.size / V;
  const int64_t J = idx.size;
  if (g.size != J * d) throw ArgumentError("g must hold " + std::to_string(J * d) + " elements");
  const int32_t* ix = idx.i32();
  for (int64_t j = 0; j < J; j++) {
    if (ix[j] < 0 || ix[j] >= V) throw KernelError("scatterAddRows", "idx[" + std::to_string(j) + "] = " + std::to_string(ix[j]) + " is out of range for " + std::to_string(V) + " rows");
  }
  if (g.dtype == DType::F32) scatterAddTyped<float>(g, ix, J, out, d);
  else scatterAddTyped<int32_t>(g, ix, J, out, d);
}

void oneHot(const Buf& idx, const Buf& out) {
  if (out.shape.empty() || idx.size * out.shape.back() != out.size) throw ArgumentError("out " + fmtShape(out.shape) + " must be idx's shape plus a depth axis");
  const int64_t depth = out.shape.back();
  const int64_t J = idx.size;
  const int32_t* ix = idx.i32();
  for (int64_t j = 0; j < J; j++) {
    if (ix[j] < 0 || ix[j] >= depth) throw KernelError("oneHot", "idx[" + std::to_string(j) + "] = " + std::to_string(ix[j]) + " is out of range for depth " + std::to_string(depth));
  }
  std::memset(out.data, 0, size_t(out.size) * 4);
  if (out.dtype == DType::F32) {
    for (int64_t j = 0; j < J; j++) out.f32()[j * depth + ix[j]] = 1.0f;
  } else {
    for (int64_t j = 0; j < J; j++) out.i32()[j * depth + ix[j]] = 1;
  }
}

}  // namespace arpix
