// Elementwise kernels: unary maps, clamp, broadcasting binary ops, where, cast.
// Semantics follow src/backends/ts/elementwise.ts exactly. float32 math runs in float (the ts
// reference computes in double and rounds once; the difference is an ulp or so). int32 math runs
// in double and is stored the way an Int32Array store would (JS ToInt32), so results match the
// reference bit for bit, including division by zero (→ 0) and wrap-around.
#include <algorithm>
#include <cmath>
#include <cstring>
#include <limits>

#include "common.h"
#include "vmath.h"

namespace arpix {
namespace {

// ---------- unary ----------

inline float softplusF(float x) { return std::max(x, 0.0f) + std::log1p(std::exp(-std::fabs(x))); }
inline double softplusD(double x) { return std::max(x, 0.0) + std::log1p(std::exp(-std::fabs(x))); }

// float32 uses the vectorisable versions of vmath.h; int32 inputs (computed in double) use libm.
template <class T>
inline T sigmoidT(T x) {
  // Split by sign so exp never overflows.
  if (x >= 0) return T(1) / (T(1) + std::exp(-x));
  T e = std::exp(x);
  return e / (T(1) + e);
}
template <>
inline float sigmoidT<float>(float x) { return vsigmoid(x); }
template <class T>
inline T expT(T x) { return std::exp(x); }
template <>
inline float expT<float>(float x) { return vexp(x); }
template <class T>
inline T expm1T(T x) { return std::expm1(x); }
template <>
inline float expm1T<float>(float x) { return vexpm1(x); }
template <class T>
inline T tanhT(T x) { return std::tanh(x); }
template <>
inline float tanhT<float>(float x) { return vtanh(x); }

template <class T>
inline T signT(T x) { return x > 0 ? T(1) : x < 0 ? T(-1) : T(0); }

// One functor per op so the compiler sees a plain loop per (op, type).
#define ARPIX_UNARY_OPS(X)                                        \
  X(neg, -x)                                                      \
  X(exp, expT(x))                                                 \
  X(log, std::log(x))                                             \
  X(sqrt, std::sqrt(x))                                           \
  X(rsqrt, T(1) / std::sqrt(x))                                   \
  X(abs, std::fabs(x))                                            \
  X(sign, signT(x))                                               \
  X(square, x * x)                                                \
  X(reciprocal, T(1) / x)                                         \
  X(tanh, tanhT(x))                                               \
  X(sigmoid, sigmoidT(x))                                         \
  X(relu, (x > 0 ? x : T(0)))                                     \
  X(elu, (x > 0 ? x : expm1T(x)))                                \
  X(softplus, softplusT(x))                                       \
  X(logSigmoid, -softplusT(-x))

template <class T>
inline T softplusT(T x);
template <>
inline float softplusT<float>(float x) { return softplusF(x); }
template <>
inline double softplusT<double>(double x) { return softplusD(x); }

#define ARPIX_DEFINE_UNARY(name, expr) \
  struct U_##name {                    \
    template <class T>                 \
    static T f(T x) { return expr; }   \
  };
ARPIX_UNARY_OPS(ARPIX_DEFINE_UNARY)
#undef ARPIX_DEFINE_UNARY

template <class Op>
void unaryLoop(const Buf& x, const Buf& out) {
  const int64_t n = out.size;
  if (x.dtype == DType::F32) {
    const float* a = x.f32();
    float* o = out.f32();
// (not `parallel for simd`: GCC 12 generates far slower code for that combination here)
#pragma omp parallel for schedule(static) if (worthParallel(n))
    for (int64_t i = 0; i < n; i++) o[i] = Op::f(a[i]);
  } else {
    const int32_t* a = x.i32();
    int32_t* o = out.i32();
#pragma omp parallel for schedule(static) if (worthParallel(n))
    for (int64_t i = 0; i < n; i++) o[i] = jsToInt32(Op::f(double(a[i])));
  }
}

// ---------- binary ----------

// Math.max / Math.min: NaN wins.
template <class T>
inline T jsMax(T a, T b) { return (a != a || b != b) ? std::numeric_limits<T>::quiet_NaN() : (a > b ? a : b); }
template <class T>
inline T jsMin(T a, T b) { return (a != a || b != b) ? std::numeric_limits<T>::quiet_NaN() : (a < b ? a : b); }

#define ARPIX_BINARY_OPS(X)                 \
  X(add, a + b)                             \
  X(sub, a - b)                             \
  X(mul, a * b)                             \
  X(div, a / b)                             \
  X(pow, std::pow(a, b))                    \
  X(maximum, jsMax(a, b))                   \
  X(minimum, jsMin(a, b))                   \
  X(greater, (a > b ? T(1) : T(0)))         \
  X(greaterEqual, (a >= b ? T(1) : T(0)))   \
  X(less, (a < b ? T(1) : T(0)))            \
  X(lessEqual, (a <= b ? T(1) : T(0)))      \
  X(equal, (a == b ? T(1) : T(0)))          \
  X(notEqual, (a != b ? T(1) : T(0)))

#define ARPIX_DEFINE_BINARY(name, expr)   \
  struct B_##name {                       \
    template <class T>                    \
    static T f(T a, T b) { return expr; } \
  };
ARPIX_BINARY_OPS(ARPIX_DEFINE_BINARY)
#undef ARPIX_DEFINE_BINARY

// int32 division truncates toward zero, as Math.trunc(a / b) stored into an Int32Array.
struct B_intDiv {
  static double f(double a, double b) { return std::trunc(a / b); }
};

template <class To>
inline To store(float v);
template <>
inline float store<float>(float v) { return v; }
template <>
inline int32_t store<int32_t>(float v) { return jsToInt32(v); }
template <class To>
inline To store(double v);
template <>
inline float store<float>(double v) { return float(v); }
template <>
inline int32_t store<int32_t>(double v) { return jsToInt32(v); }

// Compute type: float for float32 inputs, double (exact for int32) for int32 inputs.
template <class Ti>
struct Calc { using type = double; };
template <>
struct Calc<float> { using type = float; };

template <class Op, class Ti, class To>
void binaryTyped(const Buf& a, const Buf& b, const Buf& out) {
  using C = typename Calc<Ti>::type;
  const Ti* pa = static_cast<const Ti*>(a.data);
  const Ti* pb = static_cast<const Ti*>(b.data);
  To* po = static_cast<To*>(out.data);
  auto plan = planBroadcast<2>(out.shape, {&a.shape, &b.shape});
  const int64_t sa = plan.strides[0].back(), sb = plan.strides[1].back();
  forEachRow<2>(plan, [&](const std::array<int64_t, 2>& off, int64_t o0, int64_t L) {
    const Ti* x = pa + off[0];
    const Ti* y = pb + off[1];
    To* o = po + o0;
    // The inner stride of each operand is 0 (broadcast) or 1; one plain loop per pattern.
    if (sa == 1 && sb == 1) {
      for (int64_t i = 0; i < L; i++) o[i] = store<To>(Op::f(C(x[i]), C(y[i])));
    } else if (sa == 1) {
      const C yv = C(y[0]);
      for (int64_t i = 0; i < L; i++) o[i] = store<To>(Op::f(C(x[i]), yv));
    } else if (sb == 1) {
      const C xv = C(x[0]);
      for (int64_t i = 0; i < L; i++) o[i] = store<To>(Op::f(xv, C(y[i])));
    } else {
      const To v = store<To>(Op::f(C(x[0]), C(y[0])));
      for (int64_t i = 0; i < L; i++) o[i] = v;
    }
  });
}

template <class Op>
void binaryDispatch(const Buf& a, const Buf& b, const Buf& out) {
  if (a.dtype == DType::F32) {
    if (out.dtype == DType::F32) binaryTyped<Op, float, float>(a, b, out);
    else binaryTyped<Op, float, int32_t>(a, b, out);
  } else {
    if (out.dtype == DType::F32) binaryTyped<Op, int32_t, float>(a, b, out);
    else binaryTyped<Op, int32_t, int32_t>(a, b, out);
  }
}

template <class T, class Tc>
void whereTyped(const Buf& cond, const Buf& a, const Buf& b, const Buf& out) {
  const Tc* pc = static_cast<const Tc*>(cond.data);
  const T* pa = static_cast<const T*>(a.data);
  const T* pb = static_cast<const T*>(b.data);
  T* po = static_cast<T*>(out.data);
  auto plan = planBroadcast<3>(out.shape, {&cond.shape, &a.shape, &b.shape});
  const int64_t sc = plan.strides[0].back(), sa = plan.strides[1].back(), sb = plan.strides[2].back();
  forEachRow<3>(plan, [&](const std::array<int64_t, 3>& off, int64_t o0, int64_t L) {
    const Tc* c = pc + off[0];
    const T* x = pa + off[1];
    const T* y = pb + off[2];
    T* o = po + o0;
    if (sc == 1 && sa == 1 && sb == 1) {
      for (int64_t i = 0; i < L; i++) o[i] = c[i] != 0 ? x[i] : y[i];
    } else {
      for (int64_t i = 0; i < L; i++) o[i] = c[i * sc] != 0 ? x[i * sa] : y[i * sb];
    }
  });
}

}  // namespace

void unary(const Buf& x, const Buf& out, const std::string& op) {
#define ARPIX_CASE(name, expr) \
  if (op == #name) return unaryLoop<U_##name>(x, out);
  ARPIX_UNARY_OPS(ARPIX_CASE)
#undef ARPIX_CASE
  throw KernelError("unary", "unknown op '" + op + "'");
}

namespace {
template <class F>
void unaryBackwardLoop(const Buf& x, const Buf& y, const Buf& g, const Buf& dx, F f) {
  const float* a = x.f32();
  const float* b = y.f32();
  const float* c = g.f32();
  float* o = dx.f32();
  const int64_t n = dx.size;
#pragma omp parallel for schedule(static) if (worthParallel(n))
  for (int64_t i = 0; i < n; i++) o[i] = f(a[i], b[i], c[i]);
}
}  // namespace

void unaryBackward(const Buf& x, const Buf& y, const Buf& g, const Buf& dx, const std::string& op) {
  if (op == "exp") return unaryBackwardLoop(x, y, g, dx, [](float, float v, float d) { return d * v; });
  if (op == "tanh") return unaryBackwardLoop(x, y, g, dx, [](float, float v, float d) { return d * (1.0f - v * v); });
  if (op == "sigmoid") return unaryBackwardLoop(x, y, g, dx, [](float, float v, float d) { return d * (v * (1.0f - v)); });
  if (op == "relu") return unaryBackwardLoop(x, y, g, dx, [](float u, float, float d) { return d * (u > 0 ? 1.0f : 0.0f); });
  if (op == "elu") return unaryBackwardLoop(x, y, g, dx, [](float u, float v, float d) { return d * (u > 0 ? 1.0f : v + 1.0f); });
  if (op == "softplus") return unaryBackwardLoop(x, y, g, dx, [](float u, float, float d) { return d * vsigmoid(u); });
  if (op == "logSigmoid") return unaryBackwardLoop(x, y, g, dx, [](float u, float, float d) { return d * vsigmoid(-u); });
  throw KernelError("unaryBackward", "unknown op '" + op + "'");
}

void clamp(const Buf& x, const Buf& out, double lo, double hi) {
  const int64_t n = out.size;
  if (x.dtype == DType::F32) {
    const float* a = x.f32();
    float* o = out.f32();
    // Math.min(Math.max(v, lo), hi) in double, then rounded to float (NaN stays NaN).
#pragma omp parallel for schedule(static) if (worthParallel(n))
    for (int64_t i = 0; i < n; i++) o[i] = float(jsMin(jsMax(double(a[i]), lo), hi));
  } else {
    const int32_t* a = x.i32();
    int32_t* o = out.i32();
#pragma omp parallel for schedule(static) if (worthParallel(n))
    for (int64_t i = 0; i < n; i++) o[i] = jsToInt32(jsMin(jsMax(double(a[i]), lo), hi));
  }
}

void binary(const Buf& a, const Buf& b, const Buf& out, const std::string& op) {
  if (op == "div" && out.dtype == DType::I32) return binaryDispatch<B_intDiv>(a, b, out);
#define ARPIX_CASE(name, expr) \
  if (op == #name) return binaryDispatch<B_##name>(a, b, out);
  ARPIX_BINARY_OPS(ARPIX_CASE)
#undef ARPIX_CASE
  throw KernelError("binary", "unknown op '" + op + "'");
}

void where(const Buf& cond, const Buf& a, const Buf& b, const Buf& out) {
  if (out.dtype == DType::F32) {
    if (cond.dtype == DType::F32) whereTyped<float, float>(cond, a, b, out);
    else whereTyped<float, int32_t>(cond, a, b, out);
  } else {
    if (cond.dtype == DType::F32) whereTyped<int32_t, float>(cond, a, b, out);
    else whereTyped<int32_t, int32_t>(cond, a, b, out);
  }
}

void cast(const Buf& x, const Buf& out) {
  const int64_t n = out.size;
  if (x.dtype == out.dtype) {
    std::memcpy(out.data, x.data, size_t(n) * 4);
  } else if (out.dtype == DType::I32) {
    const float* a = x.f32();
    int32_t* o = out.i32();
#pragma omp parallel for schedule(static) if (worthParallel(n))
    for (int64_t i = 0; i < n; i++) o[i] = jsToInt32(a[i]);
  } else {
    const int32_t* a = x.i32();
    float* o = out.f32();
#pragma omp parallel for schedule(static) if (worthParallel(n))
    for (int64_t i = 0; i < n; i++) o[i] = float(a[i]);
  }
}

}  // namespace arpix
