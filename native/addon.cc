// Node-API surface of the arpix addon. This file only translates JS values into Bufs (typed-array
// pointers, no copies) and C++ exceptions into JS errors that name the kernel; the arithmetic
// lives in the other files. Attribute translation and argument checks happen in TypeScript
// (src/backends/native/); what is checked here protects memory: dtypes and element counts.
#include <napi.h>
#include <malloc.h>
#include <memory>
#include <optional>
#include <omp.h>

#include "common.h"

namespace arpix {
namespace {

Shape shapeOf(const char* kernel, const char* arg, const Napi::Value& v) {
  if (!v.IsArray()) throw KernelError(kernel, std::string(arg) + " shape must be an array");
  Napi::Array arr = v.As<Napi::Array>();
  Shape s(arr.Length());
  for (uint32_t i = 0; i < arr.Length(); i++) {
    double d = arr.Get(i).As<Napi::Number>().DoubleValue();
    if (!(d >= 0) || d != double(int64_t(d))) throw KernelError(kernel, std::string(arg) + " shape has a bad dimension");
    s[i] = int64_t(d);
  }
  return s;
}

std::vector<int64_t> intsOf(const Napi::Value& v) {
  Napi::Array arr = v.As<Napi::Array>();
  std::vector<int64_t> r(arr.Length());
  for (uint32_t i = 0; i < arr.Length(); i++) r[i] = arr.Get(i).As<Napi::Number>().Int64Value();
  return r;
}

/** A typed array as a Buf; with a shape, its length must match the shape's element count. */
Buf bufOf(const char* kernel, const char* arg, const Napi::Value& data, const Napi::Value* shape) {
  // One napi_get_typedarray_info call: node-addon-api's accessors each repeat it.
  napi_typedarray_type type;
  size_t length = 0;
  void* ptr = nullptr;
  if (!data.IsTypedArray() || napi_get_typedarray_info(data.Env(), data, &type, &length, &ptr, nullptr, nullptr) != napi_ok) {
    throw KernelError(kernel, std::string(arg) + " must be a typed array");
  }
  Buf b;
  switch (type) {
    case napi_float32_array: b.dtype = DType::F32; break;
    case napi_int32_array: b.dtype = DType::I32; break;
    case napi_float64_array:
      throw KernelError(kernel, std::string(arg) + " has dtype float64; native kernels take float32 and int32 (route float64 to the ts backend)");
    default:
      throw KernelError(kernel, std::string(arg) + " must be a Float32Array or Int32Array");
  }
  b.size = int64_t(length);
  b.data = ptr;  // already advanced by the byte offset
  if (shape) {
    b.shape = shapeOf(kernel, arg, *shape);
    if (numel(b.shape) != b.size) {
      throw KernelError(kernel, std::string(arg) + " holds " + std::to_string(b.size) + " elements but its shape " + fmtShape(b.shape) + " needs " + std::to_string(numel(b.shape)));
    }
  } else {
    b.shape = {b.size};
  }
  return b;
}

Buf bufOf(const char* kernel, const char* arg, const Napi::Value& data) { return bufOf(kernel, arg, data, nullptr); }
Buf bufOf(const char* kernel, const char* arg, const Napi::Value& data, const Napi::Value& shape) { return bufOf(kernel, arg, data, &shape); }

void sameSize(const char* kernel, const Buf& x, const Buf& out) {
  if (x.size != out.size) throw KernelError(kernel, "x holds " + std::to_string(x.size) + " elements but out holds " + std::to_string(out.size));
}

ConvParams convParamsOf(const Napi::Value& v) {
  auto p = intsOf(v);
  if (p.size() != 6 && p.size() != 7) throw std::runtime_error("conv params must be [strideH, strideW, padTop, padLeft, dilationH, dilationW, rowWinograd?]");
  return {p[0], p[1], p[2], p[3], p[4], p[5], p.size() == 7 && p[6] != 0};
}

/** Runs body, turning any C++ exception into a JS Error (kernel errors already carry the name). */
template <class F>
Napi::Value guarded(const Napi::CallbackInfo& info, const char* kernel, F body) {
  try {
    return body();
  } catch (const Napi::Error&) {
    throw;
  } catch (const KernelError& e) {
    throw Napi::Error::New(info.Env(), e.what());
  } catch (const std::exception& e) {
    throw Napi::Error::New(info.Env(), std::string(kernel) + ": " + e.what());
  }
}

#define ARPIX_EXPORT(name) Napi::Value name##Js(const Napi::CallbackInfo& info)

// unary(x, out, op)
ARPIX_EXPORT(unary) {
  return guarded(info, "unary", [&] {
    Buf x = bufOf("unary", "x", info[0]), out = bufOf("unary", "out", info[1]);
    sameSize("unary", x, out);
    unary(x, out, info[2].As<Napi::String>().Utf8Value());
    return info.Env().Undefined();
  });
}

// unaryBackward(x, y, g, dx, op)
ARPIX_EXPORT(unaryBackward) {
  return guarded(info, "unaryBackward", [&] {
    Buf x = bufOf("unaryBackward", "x", info[0]), y = bufOf("unaryBackward", "y", info[1]);
    Buf g = bufOf("unaryBackward", "g", info[2]), dx = bufOf("unaryBackward", "dx", info[3]);
    sameSize("unaryBackward", x, y);
    sameSize("unaryBackward", x, g);
    sameSize("unaryBackward", x, dx);
    unaryBackward(x, y, g, dx, info[4].As<Napi::String>().Utf8Value());
    return info.Env().Undefined();
  });
}

// clamp(x, out, lo, hi)
ARPIX_EXPORT(clamp) {
  return guarded(info, "clamp", [&] {
    Buf x = bufOf("clamp", "x", info[0]), out = bufOf("clamp", "out", info[1]);
    sameSize("clamp", x, out);
    clamp(x, out, info[2].As<Napi::Number>().DoubleValue(), info[3].As<Napi::Number>().DoubleValue());
    return info.Env().Undefined();
  });
}

void checkBroadcast(const char* kernel, const char* arg, const Shape& in, const Shape& out) {
  bool ok = in.size() <= out.size();
  for (size_t j = 0; ok && j < in.size(); j++) {
    int64_t d = in[in.size() - 1 - j], o = out[out.size() - 1 - j];
    ok = d == o || d == 1;
  }
  if (!ok) throw KernelError(kernel, std::string(arg) + " " + fmtShape(in) + " does not broadcast to out " + fmtShape(out));
}

// binary(a, aShape, b, bShape, out, outShape, op)
ARPIX_EXPORT(binary) {
  return guarded(info, "binary", [&] {
    Buf a = bufOf("binary", "a", info[0], info[1]), b = bufOf("binary", "b", info[2], info[3]);
    Buf out = bufOf("binary", "out", info[4], info[5]);
    checkBroadcast("binary", "a", a.shape, out.shape);
    checkBroadcast("binary", "b", b.shape, out.shape);
    binary(a, b, out, info[6].As<Napi::String>().Utf8Value());
    return info.Env().Undefined();
  });
}

// where(cond, condShape, a, aShape, b, bShape, out, outShape)
ARPIX_EXPORT(where) {
  return guarded(info, "where", [&] {
    Buf c = bufOf("where", "cond", info[0], info[1]), a = bufOf("where", "a", info[2], info[3]);
    Buf b = bufOf("where", "b", info[4], info[5]), out = bufOf("where", "out", info[6], info[7]);
    checkBroadcast("where", "cond", c.shape, out.shape);
    checkBroadcast("where", "a", a.shape, out.shape);
    checkBroadcast("where", "b", b.shape, out.shape);
    where(c, a, b, out);
    return info.Env().Undefined();
  });
}

// reduce(x, xShape, out, outShape, axes, op)
ARPIX_EXPORT(reduce) {
  return guarded(info, "reduce", [&] {
    Buf x = bufOf("reduce", "x", info[0], info[1]), out = bufOf("reduce", "out", info[2], info[3]);
    if (out.shape.size() != x.shape.size()) throw KernelError("reduce", "out " + fmtShape(out.shape) + " must keep x's rank " + fmtShape(x.shape));
    for (size_t i = 0; i < x.shape.size(); i++) {
      if (out.shape[i] != x.shape[i] && out.shape[i] != 1) throw KernelError("reduce", "out " + fmtShape(out.shape) + " is not a keep-dims reduction of x " + fmtShape(x.shape));
    }
    reduce(x, out, intsOf(info[4]), info[5].As<Napi::String>().Utf8Value());
    return info.Env().Undefined();
  });
}

// argmaxLast(x, xShape, out)
ARPIX_EXPORT(argmaxLast) {
  return guarded(info, "argmaxLast", [&] {
    Buf x = bufOf("argmaxLast", "x", info[0], info[1]), out = bufOf("argmaxLast", "out", info[2]);
    const int64_t k = x.shape.empty() ? 1 : x.shape.back();
    if (out.size * k != x.size && x.size != 0) throw KernelError("argmaxLast", "out must hold one element per row of x " + fmtShape(x.shape));
    argmaxLast(x, out);
    return info.Env().Undefined();
  });
}

// softmaxLast(x, xShape, out, log)
ARPIX_EXPORT(softmaxLast) {
  return guarded(info, "softmaxLast", [&] {
    Buf x = bufOf("softmaxLast", "x", info[0], info[1]), out = bufOf("softmaxLast", "out", info[2]);
    sameSize("softmaxLast", x, out);
    softmaxLast(x, out, info[3].As<Napi::Boolean>().Value());
    return info.Env().Undefined();
  });
}

// matmul(a, aShape, b, bShape, out, outShape, transA, transB)
ARPIX_EXPORT(matmul) {
  return guarded(info, "matmul", [&] {
    Buf a = bufOf("matmul", "a", info[0], info[1]), b = bufOf("matmul", "b", info[2], info[3]);
    Buf out = bufOf("matmul", "out", info[4], info[5]);
    const bool ta = info[6].As<Napi::Boolean>().Value(), tb = info[7].As<Napi::Boolean>().Value();
    auto rankOk = [](const Shape& s) { return s.size() == 2 || s.size() == 3; };
    if (!rankOk(a.shape) || !rankOk(b.shape) || !rankOk(out.shape)) throw KernelError("matmul", "operands must be 2-D or 3-D");
    const int64_t M = ta ? a.shape.back() : a.shape[a.shape.size() - 2], K = ta ? a.shape[a.shape.size() - 2] : a.shape.back();
    const int64_t Kb = tb ? b.shape.back() : b.shape[b.shape.size() - 2], N = tb ? b.shape[b.shape.size() - 2] : b.shape.back();
    const size_t orank = out.shape.size();
    bool ok = K == Kb && out.shape[orank - 2] == M && out.shape[orank - 1] == N;
    if (orank == 2) ok = ok && a.shape.size() == 2 && b.shape.size() == 2;
    if (orank == 3) ok = ok && (a.shape.size() == 2 || a.shape[0] == out.shape[0]) && (b.shape.size() == 2 || b.shape[0] == out.shape[0]);
    if (!ok) throw KernelError("matmul", "shapes a " + fmtShape(a.shape) + ", b " + fmtShape(b.shape) + " and out " + fmtShape(out.shape) + " do not fit");
    matmul(a, b, out, ta, tb);
    return info.Env().Undefined();
  });
}

void checkConv(const char* kernel, const Shape& x, const Shape& w, const Shape& y, const ConvParams& p) {
  bool ok = x.size() == 4 && w.size() == 4 && y.size() == 4 && x[0] == y[0] && x[3] == w[2] && y[3] == w[3];
  ok = ok && p.strideH >= 1 && p.strideW >= 1 && p.dilationH >= 1 && p.dilationW >= 1 && p.padTop >= 0 && p.padLeft >= 0;
  if (!ok) throw KernelError(kernel, "shapes x " + fmtShape(x) + ", w " + fmtShape(w) + " and y " + fmtShape(y) + " (or the conv params) do not fit");
}

Buf weightBufOf(const char* kernel, const Napi::CallbackInfo& info, size_t at) {
  Buf w = bufOf(kernel, "w", info[at], info[at + 1]);
  w.storageId = info[at + 2].As<Napi::Number>().Int64Value();
  w.version = info[at + 3].As<Napi::Number>().Int64Value();
  return w;
}

// conv2d(x, xShape, w, wShape, wStorageId, wVersion, bias | null, out, outShape, params, accumulate, xStorageId, xVersion, keep, residual | null) → handle
ARPIX_EXPORT(conv2d) {
  return guarded(info, "conv2d", [&] {
    Buf x = bufOf("conv2d", "x", info[0], info[1]);
    Buf w = weightBufOf("conv2d", info, 2);
    Buf out = bufOf("conv2d", "out", info[7], info[8]);
    ConvParams p = convParamsOf(info[9]);
    checkConv("conv2d", x.shape, w.shape, out.shape, p);
    const bool accumulate = info[10].ToBoolean().Value();
    x.storageId = info[11].As<Napi::Number>().Int64Value();
    x.version = info[12].As<Napi::Number>().Int64Value();
    const bool keep = info[13].ToBoolean().Value();
    std::optional<Buf> residual;
    if (!info[14].IsNull() && !info[14].IsUndefined()) {
      residual = bufOf("conv2d", "residual", info[14]);
      if (residual->size != out.size) throw KernelError("conv2d", "residual holds " + std::to_string(residual->size) + " elements, expected the output's " + std::to_string(out.size));
      if (accumulate) throw KernelError("conv2d", "takes a residual or accumulates into out, not both");
      if (residual->f32() < out.f32() + out.size && out.f32() < residual->f32() + residual->size) throw KernelError("conv2d", "residual overlaps out: pass separate memory");
      residual->shape = out.shape;
    }
    std::optional<Buf> bias;
    if (!info[6].IsNull() && !info[6].IsUndefined()) {
      bias = bufOf("conv2d", "bias", info[6]);
      if (bias->size != w.shape[3]) throw KernelError("conv2d", "bias holds " + std::to_string(bias->size) + " elements, expected " + std::to_string(w.shape[3]));
    }
    const int64_t handle = conv2d(x, w, bias ? &*bias : nullptr, out, p, accumulate, keep, residual ? &*residual : nullptr);
    return Napi::Number::New(info.Env(), double(handle));
  });
}

// conv2dBackwardData(dy, dyShape, w, wShape, wStorageId, wVersion, dx, dxShape, params)
ARPIX_EXPORT(conv2dBackwardData) {
  return guarded(info, "conv2dBackwardData", [&] {
    Buf dy = bufOf("conv2dBackwardData", "dy", info[0], info[1]);
    Buf w = weightBufOf("conv2dBackwardData", info, 2);
    Buf dx = bufOf("conv2dBackwardData", "dx", info[6], info[7]);
    ConvParams p = convParamsOf(info[8]);
    checkConv("conv2dBackwardData", dx.shape, w.shape, dy.shape, p);
    conv2dBackwardData(dy, w, dx, p);
    return info.Env().Undefined();
  });
}

// conv2dBackwardWeights(x, xShape, dy, dyShape, dw, dwShape, params, db | null)
ARPIX_EXPORT(conv2dBackwardWeights) {
  return guarded(info, "conv2dBackwardWeights", [&] {
    Buf x = bufOf("conv2dBackwardWeights", "x", info[0], info[1]);
    Buf dy = bufOf("conv2dBackwardWeights", "dy", info[2], info[3]);
    Buf dw = bufOf("conv2dBackwardWeights", "dw", info[4], info[5]);
    ConvParams p = convParamsOf(info[6]);
    checkConv("conv2dBackwardWeights", x.shape, dw.shape, dy.shape, p);
    if (info[7].IsNull() || info[7].IsUndefined()) {
      conv2dBackwardWeights(x, dy, dw, nullptr, p);
    } else {
      Buf db = bufOf("conv2dBackwardWeights", "db", info[7]);
      if (db.size != dw.shape[3]) throw KernelError("conv2dBackwardWeights", "db holds " + std::to_string(db.size) + " elements, expected " + std::to_string(dw.shape[3]));
      conv2dBackwardWeights(x, dy, dw, &db, p);
    }
    return info.Env().Undefined();
  });
}

// conv2dBackward(x, xShape, xStorageId, xVersion, dy, dyShape, w, wShape, wStorageId, wVersion, dx | null, dw | null, db | null, params, saved)
ARPIX_EXPORT(conv2dBackward) {
  return guarded(info, "conv2dBackward", [&] {
    Buf x = bufOf("conv2dBackward", "x", info[0], info[1]);
    x.storageId = info[2].As<Napi::Number>().Int64Value();
    x.version = info[3].As<Napi::Number>().Int64Value();
    Buf dy = bufOf("conv2dBackward", "dy", info[4], info[5]);
    Buf w = weightBufOf("conv2dBackward", info, 6);
    ConvParams p = convParamsOf(info[13]);
    checkConv("conv2dBackward", x.shape, w.shape, dy.shape, p);
    // An optional gradient output: null, or a typed array of `size` elements viewed with `shape`.
    auto gradient = [&](size_t at, const char* arg, const Shape& shape, int64_t size) {
      std::optional<Buf> b;
      if (info[at].IsNull()) return b;
      b = bufOf("conv2dBackward", arg, info[at]);
      b->shape = shape;
      if (b->size != size) throw KernelError("conv2dBackward", std::string(arg) + " holds " + std::to_string(b->size) + " elements, expected " + std::to_string(size));
      return b;
    };
    std::optional<Buf> dx = gradient(10, "dx", x.shape, x.size), dw = gradient(11, "dw", w.shape, w.size), db = gradient(12, "db", Shape{w.shape[3]}, w.shape[3]);
    conv2dBackward(x, dy, w, dx ? &*dx : nullptr, dw ? &*dw : nullptr, db ? &*db : nullptr, p, info[14].As<Napi::Number>().Int64Value());
    return info.Env().Undefined();
  });
}

/**
 * The terms of rowConvSumBackward: [x, xShape, w, wShape, params, dx | null, addend | null,
 * dw | null] each, checked against y's shape. `owned` keeps the gradient Bufs the terms point to.
 */
std::vector<RowConvTerm> rowTermsOf(const char* kernel, const Napi::Value& v, const Shape& y, std::vector<std::unique_ptr<Buf>>& owned) {
  Napi::Array arr = v.As<Napi::Array>();
  if (arr.Length() == 0) throw KernelError(kernel, "needs at least one term");
  std::vector<RowConvTerm> terms;
  for (uint32_t i = 0; i < arr.Length(); i++) {
    Napi::Array t = arr.Get(i).As<Napi::Array>();
    RowConvTerm r;
    r.x = bufOf(kernel, "x", t.Get(0u), t.Get(1u));
    r.w = bufOf(kernel, "w", t.Get(2u), t.Get(3u));
    r.p = convParamsOf(t.Get(4u));
    requireDType(kernel, "x", r.x, DType::F32);
    requireDType(kernel, "w", r.w, DType::F32);
    checkConv(kernel, r.x.shape, r.w.shape, y, r.p);
    if (!rowConvFits(r.x.shape, r.w.shape, y, r.p)) {
      throw KernelError(kernel, "term " + std::to_string(i) + " (x " + fmtShape(r.x.shape) + ", w " + fmtShape(r.w.shape) + ") is not a one-row convolution giving " + fmtShape(y));
    }
    auto grad = [&](uint32_t at, const char* arg, const Buf& like) -> const Buf* {
      if (t.Get(at).IsNull()) return nullptr;
      owned.push_back(std::make_unique<Buf>(bufOf(kernel, arg, t.Get(at))));
      Buf& b = *owned.back();
      requireDType(kernel, arg, b, DType::F32);
      if (b.size != like.size) throw KernelError(kernel, std::string(arg) + " of term " + std::to_string(i) + " holds " + std::to_string(b.size) + " elements, expected " + std::to_string(like.size));
      b.shape = like.shape;
      return &b;
    };
    r.dx = grad(5, "dx", r.x);
    r.addend = grad(6, "addend", r.x);
    r.dw = grad(7, "dw", r.w);
    if (r.addend && !r.dx) throw KernelError(kernel, "term " + std::to_string(i) + " has an addend but no dx");
    if (r.addend && r.addend->f32() != r.dx->f32()) {
      const float *a = r.addend->f32(), *d = r.dx->f32();
      if (a < d + r.dx->size && d < a + r.addend->size) {
        throw KernelError(kernel, "the addend of term " + std::to_string(i) + " overlaps its dx without being it: pass dx itself (in place) or separate memory");
      }
    }
    terms.push_back(r);
  }
  return terms;
}

// rowConvSumBackward(terms [[x, xShape, w, wShape, params, dx | null, addend | null, dw | null]], dy, dyShape, db | null)
ARPIX_EXPORT(rowConvSumBackward) {
  return guarded(info, "rowConvSumBackward", [&] {
    Buf dy = bufOf("rowConvSumBackward", "dy", info[1], info[2]);
    requireDType("rowConvSumBackward", "dy", dy, DType::F32);
    std::vector<std::unique_ptr<Buf>> owned;
    const std::vector<RowConvTerm> terms = rowTermsOf("rowConvSumBackward", info[0], dy.shape, owned);
    std::optional<Buf> db;
    if (!info[3].IsNull()) {
      db = bufOf("rowConvSumBackward", "db", info[3]);
      requireDType("rowConvSumBackward", "db", *db, DType::F32);
      if (db->size != dy.shape[3]) throw KernelError("rowConvSumBackward", "db holds " + std::to_string(db->size) + " elements, expected " + std::to_string(dy.shape[3]));
    }
    rowConvSumBackward(terms, dy, db ? &*db : nullptr);
    return info.Env().Undefined();
  });
}

// convImplementations() → [{what, impl}]
ARPIX_EXPORT(convImplementations) {
  return guarded(info, "convImplementations", [&] {
    auto list = convImplementations();
    Napi::Array a = Napi::Array::New(info.Env(), list.size());
    for (size_t i = 0; i < list.size(); i++) {
      Napi::Object o = Napi::Object::New(info.Env());
      o.Set("what", list[i].first);
      o.Set("impl", list[i].second);
      a.Set(uint32_t(i), o);
    }
    return Napi::Value(a);
  });
}

// addressMod64(arrayBuffer) → the address of its first byte modulo 64 (to align views on cache lines)
ARPIX_EXPORT(addressMod64) {
  return guarded(info, "addressMod64", [&] {
    if (!info[0].IsArrayBuffer()) throw KernelError("addressMod64", "takes an ArrayBuffer");
    const auto address = reinterpret_cast<uintptr_t>(info[0].As<Napi::ArrayBuffer>().Data());
    return Napi::Number::New(info.Env(), double(address % 64));
  });
}

// releaseConvInput(handle)
ARPIX_EXPORT(releaseConvInput) {
  return guarded(info, "releaseConvInput", [&] {
    releaseKeptInput(info[0].As<Napi::Number>().Int64Value());
    return info.Env().Undefined();
  });
}

// permute(x, xShape, out, outShape, perm)
ARPIX_EXPORT(permute) {
  return guarded(info, "permute", [&] {
    Buf x = bufOf("permute", "x", info[0], info[1]), out = bufOf("permute", "out", info[2], info[3]);
    auto perm = intsOf(info[4]);
    std::vector<bool> seen(x.shape.size(), false);
    bool ok = perm.size() == x.shape.size() && out.shape.size() == x.shape.size();
    for (size_t i = 0; ok && i < perm.size(); i++) {
      ok = perm[i] >= 0 && size_t(perm[i]) < perm.size() && !seen[size_t(perm[i])] && out.shape[i] == x.shape[size_t(perm[i])];
      if (ok) seen[size_t(perm[i])] = true;
    }
    if (!ok) throw KernelError("permute", "perm does not map x " + fmtShape(x.shape) + " onto out " + fmtShape(out.shape));
    permute(x, out, perm);
    return info.Env().Undefined();
  });
}

// pad(x, xShape, out, outShape, before, value)
ARPIX_EXPORT(pad) {
  return guarded(info, "pad", [&] {
    Buf x = bufOf("pad", "x", info[0], info[1]), out = bufOf("pad", "out", info[2], info[3]);
    auto before = intsOf(info[4]);
    bool ok = before.size() == x.shape.size() && out.shape.size() == x.shape.size();
    for (size_t i = 0; ok && i < before.size(); i++) ok = before[i] >= 0 && before[i] + x.shape[i] <= out.shape[i];
    if (!ok) throw KernelError("pad", "x " + fmtShape(x.shape) + " padded does not fit out " + fmtShape(out.shape));
    pad(x, out, before, info[5].As<Napi::Number>().DoubleValue());
    return info.Env().Undefined();
  });
}

// slice(x, xShape, out, outShape, begin)
ARPIX_EXPORT(slice) {
  return guarded(info, "slice", [&] {
    Buf x = bufOf("slice", "x", info[0], info[1]), out = bufOf("slice", "out", info[2], info[3]);
    auto begin = intsOf(info[4]);
    bool ok = begin.size() == x.shape.size() && out.shape.size() == x.shape.size();
    for (size_t i = 0; ok && i < begin.size(); i++) ok = begin[i] >= 0 && begin[i] + out.shape[i] <= x.shape[i];
    if (!ok) throw KernelError("slice", "a slice of " + fmtShape(out.shape) + " does not fit in x " + fmtShape(x.shape));
    slice(x, out, begin);
    return info.Env().Undefined();
  });
}

// concat([x...], [xShape...], out, outShape, axis)
ARPIX_EXPORT(concat) {
  return guarded(info, "concat", [&] {
    Napi::Array datas = info[0].As<Napi::Array>(), shapes = info[1].As<Napi::Array>();
    Buf out = bufOf("concat", "out", info[2], info[3]);
    const int64_t axis = info[4].As<Napi::Number>().Int64Value();
    if (axis < 0 || size_t(axis) >= out.shape.size()) throw KernelError("concat", "axis " + std::to_string(axis) + " is out of range");
    std::vector<Buf> xs;
    int64_t total = 0;
    for (uint32_t i = 0; i < datas.Length(); i++) {
      Napi::Value sv = shapes.Get(i);
      Buf x = bufOf("concat", "input", datas.Get(i), sv);
      bool ok = x.shape.size() == out.shape.size();
      for (size_t d = 0; ok && d < x.shape.size(); d++) ok = int64_t(d) == axis || x.shape[d] == out.shape[d];
      if (!ok) throw KernelError("concat", "input " + std::to_string(i) + " " + fmtShape(x.shape) + " does not fit out " + fmtShape(out.shape));
      total += x.shape[size_t(axis)];
      xs.push_back(x);
    }
    if (total != out.shape[size_t(axis)]) throw KernelError("concat", "inputs add up to " + std::to_string(total) + " along axis " + std::to_string(axis) + ", out has " + std::to_string(out.shape[size_t(axis)]));
    concat(xs, out, axis);
    return info.Env().Undefined();
  });
}

// gatherRows(table, tableShape, idx, out)
ARPIX_EXPORT(gatherRows) {
  return guarded(info, "gatherRows", [&] {
    Buf t = bufOf("gatherRows", "table", info[0], info[1]);
    Buf idx = bufOf("gatherRows", "idx", info[2]), out = bufOf("gatherRows", "out", info[3]);
    const int64_t d = t.shape.empty() || t.shape[0] == 0 ? 0 : t.size / t.shape[0];
    if (out.size != idx.size * d) throw KernelError("gatherRows", "out must hold " + std::to_string(idx.size * d) + " elements");
    gatherRows(t, idx, out);
    return info.Env().Undefined();
  });
}

// scatterAddRows(g, idx, out, outShape)
ARPIX_EXPORT(scatterAddRows) {
  return guarded(info, "scatterAddRows", [&] {
    Buf g = bufOf("scatterAddRows", "g", info[0]), idx = bufOf("scatterAddRows", "idx", info[1]);
    Buf out = bufOf("scatterAddRows", "out", info[2], info[3]);
    const int64_t d = out.shape.empty() || out.shape[0] == 0 ? 0 : out.size / out.shape[0];
    if (g.size != idx.size * d) throw KernelError("scatterAddRows", "g must hold " + std::to_string(idx.size * d) + " elements");
    scatterAddRows(g, idx, out);
    return info.Env().Undefined();
  });
}

// pickLast(x, xShape, idx, out)
ARPIX_EXPORT(pickLast) {
  return guarded(info, "pickLast", [&] {
    Buf x = bufOf("pickLast", "x", info[0], info[1]);
    Buf idx = bufOf("pickLast", "idx", info[2]), out = bufOf("pickLast", "out", info[3]);
    const int64_t k = x.shape.empty() ? 1 : x.shape.back();
    if (out.size != idx.size || out.size * k != x.size) throw KernelError("pickLast", "idx and out must hold one element per row of x " + fmtShape(x.shape));
    pickLast(x, idx, out);
    return info.Env().Undefined();
  });
}

// pickLastBackward(g, idx, out, outShape)
ARPIX_EXPORT(pickLastBackward) {
  return guarded(info, "pickLastBackward", [&] {
    Buf g = bufOf("pickLastBackward", "g", info[0]), idx = bufOf("pickLastBackward", "idx", info[1]);
    Buf out = bufOf("pickLastBackward", "out", info[2], info[3]);
    const int64_t k = out.shape.empty() ? 1 : out.shape.back();
    if (g.size != idx.size || g.size * k != out.size) throw KernelError("pickLastBackward", "g and idx must hold one element per row of out " + fmtShape(out.shape));
    pickLastBackward(g, idx, out);
    return info.Env().Undefined();
  });
}

// cast(x, out)
ARPIX_EXPORT(cast) {
  return guarded(info, "cast", [&] {
    Buf x = bufOf("cast", "x", info[0]), out = bufOf("cast", "out", info[1]);
    sameSize("cast", x, out);
    cast(x, out);
    return info.Env().Undefined();
  });
}

// oneHot(idx, out, outShape)
ARPIX_EXPORT(oneHot) {
  return guarded(info, "oneHot", [&] {
    Buf idx = bufOf("oneHot", "idx", info[0]), out = bufOf("oneHot", "out", info[1], info[2]);
    if (out.shape.empty() || idx.size * out.shape.back() != out.size) throw KernelError("oneHot", "out " + fmtShape(out.shape) + " must be idx's shape plus a depth axis");
    oneHot(idx, out);
    return info.Env().Undefined();
  });
}

// gate(x, xShape, out, outShape)
ARPIX_EXPORT(gate) {
  return guarded(info, "gate", [&] {
    Buf x = bufOf("gate", "x", info[0], info[1]), out = bufOf("gate", "out", info[2], info[3]);
    if (out.shape.empty() || out.size * 2 != x.size) throw KernelError("gate", "x " + fmtShape(x.shape) + " must have twice the channels of out " + fmtShape(out.shape));
    gate(x, out);
    return info.Env().Undefined();
  });
}

// gateBackward(x, xShape, g, gShape, dx)
ARPIX_EXPORT(gateBackward) {
  return guarded(info, "gateBackward", [&] {
    Buf x = bufOf("gateBackward", "x", info[0], info[1]), g = bufOf("gateBackward", "g", info[2], info[3]);
    Buf dx = bufOf("gateBackward", "dx", info[4]);
    if (g.shape.empty() || g.size * 2 != x.size || dx.size != x.size) throw KernelError("gateBackward", "x " + fmtShape(x.shape) + ", g " + fmtShape(g.shape) + " and dx do not fit");
    gateBackward(x, g, dx);
    return info.Env().Undefined();
  });
}

// softmaxCrossEntropy(logits, logitsShape, targets, loss, probs)
ARPIX_EXPORT(softmaxCrossEntropy) {
  return guarded(info, "softmaxCrossEntropy", [&] {
    Buf x = bufOf("softmaxCrossEntropy", "logits", info[0], info[1]), t = bufOf("softmaxCrossEntropy", "targets", info[2]);
    Buf loss = bufOf("softmaxCrossEntropy", "loss", info[3]), probs = bufOf("softmaxCrossEntropy", "probs", info[4]);
    const int64_t k = x.shape.empty() ? 1 : x.shape.back();
    if (t.size * k != x.size || loss.size != t.size || probs.size != x.size) throw KernelError("softmaxCrossEntropy", "logits " + fmtShape(x.shape) + ", targets, loss and probs do not fit");
    softmaxCrossEntropy(x, t, loss, probs);
    return info.Env().Undefined();
  });
}

// adamUpdate(p, g, m, v, [beta1, beta2, eps, stepSize, bc2Sqrt, decay, l2])
ARPIX_EXPORT(adamUpdate) {
  return guarded(info, "adamUpdate", [&] {
    Buf p = bufOf("adamUpdate", "p", info[0]), g = bufOf("adamUpdate", "g", info[1]);
    Buf m = bufOf("adamUpdate", "m", info[2]), v = bufOf("adamUpdate", "v", info[3]);
    if (g.size != p.size || m.size != p.size || v.size != p.size) throw KernelError("adamUpdate", "p, g, m and v must hold the same number of elements");
    const Napi::Array a = info[4].As<Napi::Array>();
    if (a.Length() != 7) throw KernelError("adamUpdate", "hyper must be [beta1, beta2, eps, stepSize, bc2Sqrt, decay, l2]");
    double h[7];
    for (uint32_t i = 0; i < 7; i++) h[i] = a.Get(i).As<Napi::Number>().DoubleValue();
    adamUpdate(p, g, m, v, AdamHyper{h[0], h[1], h[2], h[3], h[4], h[5], h[6]});
    return info.Env().Undefined();
  });
}

// lstmScan(xg, xgShape, w, wShape, h0, c0, hs, cs, acts, pad)
ARPIX_EXPORT(lstmScan) {
  return guarded(info, "lstmScan", [&] {
    const char* k = "lstmScan";
    Buf xg = bufOf(k, "xg", info[0], info[1]), w = bufOf(k, "w", info[2], info[3]);
    Buf h0 = bufOf(k, "h0", info[4]), c0 = bufOf(k, "c0", info[5]), hs = bufOf(k, "hs", info[6]), cs = bufOf(k, "cs", info[7]), acts = bufOf(k, "acts", info[8]);
    const int64_t pad = info[9].As<Napi::Number>().Int64Value();
    for (const Buf* b : {&xg, &w, &h0, &c0, &hs, &cs, &acts}) requireDType(k, "every argument", *b, DType::F32);
    if (xg.shape.size() != 4 || w.shape.size() != 3 || xg.shape[3] != 4 * w.shape[1] || w.shape[2] != xg.shape[3] || h0.size != w.shape[1] || c0.size != w.shape[1] ||
        hs.size * 4 != xg.size || cs.size != hs.size || acts.size != xg.size || pad < 0 || pad >= w.shape[0]) {
      throw KernelError(k, "xg " + fmtShape(xg.shape) + ", w " + fmtShape(w.shape) + " and the states do not fit");
    }
    lstmScan(xg, w, h0, c0, hs, cs, acts, pad);
    return info.Env().Undefined();
  });
}

// lstmScanBackward(w, wShape, h0, c0, hs, cs, acts, actsShape, dhs, dxg, dw, dh0, dc0, pad)
ARPIX_EXPORT(lstmScanBackward) {
  return guarded(info, "lstmScanBackward", [&] {
    const char* k = "lstmScanBackward";
    Buf w = bufOf(k, "w", info[0], info[1]), h0 = bufOf(k, "h0", info[2]), c0 = bufOf(k, "c0", info[3]), hs = bufOf(k, "hs", info[4]), cs = bufOf(k, "cs", info[5]);
    Buf acts = bufOf(k, "acts", info[6], info[7]), dhs = bufOf(k, "dhs", info[8]), dxg = bufOf(k, "dxg", info[9]), dw = bufOf(k, "dw", info[10]);
    Buf dh0 = bufOf(k, "dh0", info[11]), dc0 = bufOf(k, "dc0", info[12]);
    const int64_t pad = info[13].As<Napi::Number>().Int64Value();
    for (const Buf* b : {&w, &h0, &c0, &hs, &cs, &acts, &dhs, &dxg, &dw, &dh0, &dc0}) requireDType(k, "every argument", *b, DType::F32);
    if (acts.shape.size() != 4 || w.shape.size() != 3 || acts.shape[3] != 4 * w.shape[1] || w.shape[2] != acts.shape[3] || h0.size != w.shape[1] || c0.size != w.shape[1] ||
        hs.size * 4 != acts.size || cs.size != hs.size || dhs.size != hs.size || dxg.size != acts.size || dw.size != w.size || dh0.size != h0.size || dc0.size != c0.size || pad < 0 || pad >= w.shape[0]) {
      throw KernelError(k, "acts " + fmtShape(acts.shape) + ", w " + fmtShape(w.shape) + " and the gradients do not fit");
    }
    lstmScanBackward(w, h0, c0, hs, cs, acts, dhs, dxg, dw, dh0, dc0, pad);
    return info.Env().Undefined();
  });
}

// gatedResidual(x, xShape, h, hShape, out)
ARPIX_EXPORT(gatedResidual) {
  return guarded(info, "gatedResidual", [&] {
    Buf x = bufOf("gatedResidual", "x", info[0], info[1]), h = bufOf("gatedResidual", "h", info[2], info[3]);
    Buf out = bufOf("gatedResidual", "out", info[4]);
    if (x.shape.empty() || h.size != 2 * x.size || out.size != x.size) throw KernelError("gatedResidual", "x " + fmtShape(x.shape) + ", h " + fmtShape(h.shape) + " and out do not fit");
    gatedResidual(x, h, out);
    return info.Env().Undefined();
  });
}

// gatedResidualBackward(h, hShape, g, gShape, dh)
ARPIX_EXPORT(gatedResidualBackward) {
  return guarded(info, "gatedResidualBackward", [&] {
    Buf h = bufOf("gatedResidualBackward", "h", info[0], info[1]), g = bufOf("gatedResidualBackward", "g", info[2], info[3]);
    Buf dh = bufOf("gatedResidualBackward", "dh", info[4]);
    if (g.shape.empty() || h.size != 2 * g.size || dh.size != h.size) throw KernelError("gatedResidualBackward", "h " + fmtShape(h.shape) + ", g " + fmtShape(g.shape) + " and dh do not fit");
    gatedResidualBackward(h, g, dh);
    return info.Env().Undefined();
  });
}

// concatElu(x, xShape, out, outShape)
ARPIX_EXPORT(concatElu) {
  return guarded(info, "concatElu", [&] {
    Buf x = bufOf("concatElu", "x", info[0], info[1]), out = bufOf("concatElu", "out", info[2], info[3]);
    if (x.shape.empty() || out.size != 2 * x.size) throw KernelError("concatElu", "x " + fmtShape(x.shape) + " and out " + fmtShape(out.shape) + " do not fit");
    concatElu(x, out);
    return info.Env().Undefined();
  });
}

// concatEluBackward(x, xShape, g, gShape, dx)
ARPIX_EXPORT(concatEluBackward) {
  return guarded(info, "concatEluBackward", [&] {
    Buf x = bufOf("concatEluBackward", "x", info[0], info[1]), g = bufOf("concatEluBackward", "g", info[2], info[3]);
    Buf dx = bufOf("concatEluBackward", "dx", info[4]);
    if (x.shape.empty() || g.size != 2 * x.size || dx.size != x.size) throw KernelError("concatEluBackward", "x " + fmtShape(x.shape) + ", g " + fmtShape(g.shape) + " and dx do not fit");
    concatEluBackward(x, g, dx);
    return info.Env().Undefined();
  });
}

// layerNorm(x, xShape, weight, bias, out, mean, rstd, eps, rms)
ARPIX_EXPORT(layerNorm) {
  return guarded(info, "layerNorm", [&] {
    Buf x = bufOf("layerNorm", "x", info[0], info[1]);
    std::optional<Buf> w, b;
    if (!info[2].IsNull()) w = bufOf("layerNorm", "weight", info[2]);
    if (!info[3].IsNull()) b = bufOf("layerNorm", "bias", info[3]);
    Buf out = bufOf("layerNorm", "out", info[4]), mean = bufOf("layerNorm", "mean", info[5]), rstd = bufOf("layerNorm", "rstd", info[6]);
    requireDType("layerNorm", "x", x, DType::F32);
    const int64_t c = x.shape.empty() ? 1 : x.shape.back(), rows = c == 0 ? 0 : x.size / c;
    if (out.size != x.size || mean.size != rows || rstd.size != rows || (w && w->size != c) || (b && b->size != c)) {
      throw KernelError("layerNorm", "x " + fmtShape(x.shape) + ", weight, bias, out, mean and rstd do not fit");
    }
    layerNorm(x, w ? &*w : nullptr, b ? &*b : nullptr, out, mean, rstd, info[7].As<Napi::Number>().DoubleValue(), info[8].As<Napi::Boolean>().Value());
    return info.Env().Undefined();
  });
}

// layerNormBackward(x, xShape, weight, mean, rstd, g, dx, dweight, dbias, rms)
ARPIX_EXPORT(layerNormBackward) {
  return guarded(info, "layerNormBackward", [&] {
    const char* k = "layerNormBackward";
    Buf x = bufOf(k, "x", info[0], info[1]);
    std::optional<Buf> w, dw, db;
    if (!info[2].IsNull()) w = bufOf(k, "weight", info[2]);
    Buf mean = bufOf(k, "mean", info[3]), rstd = bufOf(k, "rstd", info[4]), g = bufOf(k, "g", info[5]), dx = bufOf(k, "dx", info[6]);
    if (!info[7].IsNull()) dw = bufOf(k, "dweight", info[7]);
    if (!info[8].IsNull()) db = bufOf(k, "dbias", info[8]);
    const int64_t c = x.shape.empty() ? 1 : x.shape.back(), rows = c == 0 ? 0 : x.size / c;
    if (g.size != x.size || dx.size != x.size || mean.size != rows || rstd.size != rows || (w && w->size != c) || (dw && dw->size != c) || (db && db->size != c)) {
      throw KernelError(k, "x " + fmtShape(x.shape) + ", weight, mean, rstd, g and the gradients do not fit");
    }
    layerNormBackward(x, w ? &*w : nullptr, mean, rstd, g, dx, dw ? &*dw : nullptr, db ? &*db : nullptr, info[9].As<Napi::Boolean>().Value());
    return info.Env().Undefined();
  });
}

// gelu(x, out, tanh)
ARPIX_EXPORT(gelu) {
  return guarded(info, "gelu", [&] {
    Buf x = bufOf("gelu", "x", info[0]), out = bufOf("gelu", "out", info[1]);
    requireDType("gelu", "x", x, DType::F32);
    sameSize("gelu", x, out);
    gelu(x, out, info[2].As<Napi::Boolean>().Value());
    return info.Env().Undefined();
  });
}

// geluBackward(x, g, dx, tanh)
ARPIX_EXPORT(geluBackward) {
  return guarded(info, "geluBackward", [&] {
    Buf x = bufOf("geluBackward", "x", info[0]), g = bufOf("geluBackward", "g", info[1]), dx = bufOf("geluBackward", "dx", info[2]);
    requireDType("geluBackward", "x", x, DType::F32);
    sameSize("geluBackward", x, g);
    sameSize("geluBackward", x, dx);
    geluBackward(x, g, dx, info[3].As<Napi::Boolean>().Value());
    return info.Env().Undefined();
  });
}

// attention(qkv, qkvShape, out, lse, heads, scale, pattern)
ARPIX_EXPORT(attention) {
  return guarded(info, "attention", [&] {
    Buf qkv = bufOf("attention", "qkv", info[0], info[1]), out = bufOf("attention", "out", info[2]), lse = bufOf("attention", "lse", info[3]);
    attention(qkv, out, lse, info[4].As<Napi::Number>().Int64Value(), info[5].As<Napi::Number>().DoubleValue(), intsOf(info[6]));
    return info.Env().Undefined();
  });
}

// attentionBackward(qkv, qkvShape, out, lse, g, dqkv, heads, scale, pattern)
ARPIX_EXPORT(attentionBackward) {
  return guarded(info, "attentionBackward", [&] {
    const char* k = "attentionBackward";
    Buf qkv = bufOf(k, "qkv", info[0], info[1]), out = bufOf(k, "out", info[2]), lse = bufOf(k, "lse", info[3]);
    Buf g = bufOf(k, "g", info[4]), dqkv = bufOf(k, "dqkv", info[5]);
    attentionBackward(qkv, out, lse, g, dqkv, info[6].As<Napi::Number>().Int64Value(), info[7].As<Napi::Number>().DoubleValue(), intsOf(info[8]));
    return info.Env().Undefined();
  });
}

// attentionStep(q, qShape, k, kShape, v, vShape, out, position, heads, scale, pattern, length)
ARPIX_EXPORT(attentionStep) {
  return guarded(info, "attentionStep", [&] {
    const char* k = "attentionStep";
    Buf q = bufOf(k, "q", info[0], info[1]), kc = bufOf(k, "k", info[2], info[3]), vc = bufOf(k, "v", info[4], info[5]), out = bufOf(k, "out", info[6]);
    attentionStep(q, kc, vc, out, info[7].As<Napi::Number>().Int64Value(), info[8].As<Napi::Number>().Int64Value(), info[9].As<Napi::Number>().DoubleValue(), intsOf(info[10]), info[11].As<Napi::Number>().Int64Value());
    return info.Env().Undefined();
  });
}

// dropoutMask(out, seed, offset, p)
ARPIX_EXPORT(dropoutMask) {
  return guarded(info, "dropoutMask", [&] {
    Buf out = bufOf("dropoutMask", "out", info[0]);
    const double seed = info[1].As<Napi::Number>().DoubleValue(), offset = info[2].As<Napi::Number>().DoubleValue();
    const double p = info[3].As<Napi::Number>().DoubleValue();
    if (!(seed >= 0 && offset >= 0 && seed < 9007199254740992.0 && offset < 9007199254740992.0)) throw KernelError("dropoutMask", "seed and offset must be non-negative safe integers");
    dropoutMask(out, uint64_t(seed), uint64_t(offset), p);
    return info.Env().Undefined();
  });
}

// softmaxCrossEntropyBackward(probs, probsShape, targets, g, dx)
ARPIX_EXPORT(softmaxCrossEntropyBackward) {
  return guarded(info, "softmaxCrossEntropyBackward", [&] {
    Buf p = bufOf("softmaxCrossEntropyBackward", "probs", info[0], info[1]), t = bufOf("softmaxCrossEntropyBackward", "targets", info[2]);
    Buf g = bufOf("softmaxCrossEntropyBackward", "g", info[3]), dx = bufOf("softmaxCrossEntropyBackward", "dx", info[4]);
    const int64_t k = p.shape.empty() ? 1 : p.shape.back();
    if (t.size * k != p.size || g.size != t.size || dx.size != p.size) throw KernelError("softmaxCrossEntropyBackward", "probs " + fmtShape(p.shape) + ", targets, g and dx do not fit");
    softmaxCrossEntropyBackward(p, t, g, dx);
    return info.Env().Undefined();
  });
}

ARPIX_EXPORT(threads) { return Napi::Number::New(info.Env(), omp_get_max_threads()); }

ARPIX_EXPORT(setThreads) {
  return guarded(info, "setThreads", [&] {
    const int n = info[0].As<Napi::Number>().Int32Value();
    if (n < 1) throw KernelError("setThreads", "n must be at least 1, got " + std::to_string(n));
    omp_set_num_threads(n);
    return info.Env().Undefined();
  });
}

ARPIX_EXPORT(setConvAlgorithm) {
  return guarded(info, "setConvAlgorithm", [&] {
    setConvAlgorithm(info[0].As<Napi::String>().Utf8Value());
    return info.Env().Undefined();
  });
}

ARPIX_EXPORT(convAlgorithm) { return Napi::String::New(info.Env(), convAlgorithm()); }

ARPIX_EXPORT(onednnVersion) { return Napi::String::New(info.Env(), onednnVersion()); }

ARPIX_EXPORT(clearCaches) {
  return guarded(info, "clearCaches", [&] {
    clearOnednnCaches();
    return info.Env().Undefined();
  });
}

ARPIX_EXPORT(cacheSizes) {
  auto s = onednnCacheSizes();
  Napi::Object o = Napi::Object::New(info.Env());
  o.Set("primitives", Napi::Number::New(info.Env(), double(s[0])));
  o.Set("weights", Napi::Number::New(info.Env(), double(s[1])));
  o.Set("keptInputs", Napi::Number::New(info.Env(), double(s[2])));
  return o;
}

// ---- cached sampling steps ----

/** A float32 field of a plan object, which must hold exactly `size` elements. */
float* planFloats(const char* kernel, const Napi::Object& o, const char* name, int64_t size) {
  Buf b = bufOf(kernel, name, o.Get(name));
  requireDType(kernel, name, b, DType::F32);
  if (b.size != size) throw KernelError(kernel, std::string(name) + " holds " + std::to_string(b.size) + " elements, expected " + std::to_string(size));
  return b.f32();
}

int64_t planInt(const char* kernel, const Napi::Object& o, const char* name, int64_t min) {
  Napi::Value v = o.Get(name);
  if (!v.IsNumber()) throw KernelError(kernel, std::string(name) + " must be a number");
  const double d = v.As<Napi::Number>().DoubleValue();
  if (!(d >= double(min)) || d != double(int64_t(d))) throw KernelError(kernel, std::string(name) + " must be an integer ≥ " + std::to_string(min));
  return int64_t(d);
}

std::vector<int64_t> planTaps(const char* kernel, const Napi::Object& o, const char* name) {
  Buf b = bufOf(kernel, name, o.Get(name));
  requireDType(kernel, name, b, DType::I32);
  return std::vector<int64_t>(b.i32(), b.i32() + b.size);
}

StepDense planDense(const char* kernel, const Napi::Object& parent, const char* name, int64_t cin, int64_t cout) {
  Napi::Value v = parent.Get(name);
  if (!v.IsObject()) throw KernelError(kernel, std::string(name) + " must be an object {weight, bias, cin, cout}");
  Napi::Object o = v.As<Napi::Object>();
  StepDense d;
  d.cin = planInt(kernel, o, "cin", 0), d.cout = planInt(kernel, o, "cout", 1);
  if ((cin >= 0 && d.cin != cin) || (cout >= 0 && d.cout != cout)) throw KernelError(kernel, std::string(name) + " has the wrong shape");
  d.w = planFloats(kernel, o, "weight", d.cin * d.cout);
  d.b = planFloats(kernel, o, "bias", d.cout);
  return d;
}

// rowLstmPlan(plan) → a handle for rowLstmStep. The plan's arrays must outlive the handle (the
// JS adapter keeps both together) and be views of explicitly created ArrayBuffers, whose memory
// never moves.
ARPIX_EXPORT(rowLstmPlan) {
  return guarded(info, "rowLstmPlan", [&] {
    const char* k = "rowLstmPlan";
    if (!info[0].IsObject()) throw KernelError(k, "the plan must be an object");
    Napi::Object o = info[0].As<Napi::Object>();
    auto p = std::make_unique<RowLstmStepPlan>();
    p->n = planInt(k, o, "n", 1), p->H = planInt(k, o, "height", 1), p->W = planInt(k, o, "width", 1);
    p->C = planInt(k, o, "channels", 1), p->h = planInt(k, o, "hidden", 1), p->k = planInt(k, o, "kernel", 1);
    if (p->k % 2 == 0) throw KernelError(k, "kernel must be odd");
    const int64_t n = p->n, W = p->W, h = p->h, F = 2 * h, G = 4 * h;
    p->image = planFloats(k, o, "image", n * p->H * W * p->C);
    p->firstTaps = planTaps(k, o, "firstTaps");
    if (p->firstTaps.size() % 2) throw KernelError(k, "firstTaps must hold (dy, dx) pairs");
    const int64_t t0 = int64_t(p->firstTaps.size()) / 2;
    p->first = planDense(k, o, "first", t0 * p->C, F);
    Napi::Value lv = o.Get("layers"), rv = o.Get("rows");
    if (!lv.IsArray() || !rv.IsArray()) throw KernelError(k, "layers and rows must be arrays");
    Napi::Array layers = lv.As<Napi::Array>(), rows = rv.As<Napi::Array>();
    const int64_t L = layers.Length();
    if (L < 1 || int64_t(rows.Length()) != L) throw KernelError(k, "needs at least one layer and one input row per layer");
    int64_t maxK = t0 * p->C;
    for (int64_t l = 0; l < L; l++) {
      Napi::Value rowValue = rows.Get(uint32_t(l));
      Buf row = bufOf(k, "rows[l]", rowValue);
      requireDType(k, "rows[l]", row, DType::F32);
      if (row.size != n * W * F) throw KernelError(k, "rows[" + std::to_string(l) + "] must hold n·W·2h elements");
      p->rows.push_back(row.f32());
      if (!layers.Get(uint32_t(l)).IsObject()) throw KernelError(k, "every layer must be an object");
      Napi::Object lo = layers.Get(uint32_t(l)).As<Napi::Object>();
      RowLstmStepLayer layer;
      layer.inputTaps = planTaps(k, lo, "inputTaps");
      for (int64_t dx : layer.inputTaps) {
        if (dx > 0) throw KernelError(k, "inputTaps must be ≤ 0 (a later column is not causal)");
      }
      const int64_t K = int64_t(layer.inputTaps.size()) * F + p->k * h;
      maxK = std::max(maxK, K);
      layer.gates = planFloats(k, lo, "gates", K * G);
      layer.gateBias = planFloats(k, lo, "gateBias", n * G);
      layer.output = planDense(k, lo, "output", h, F);
      layer.prevH = planFloats(k, lo, "prevH", n * W * h), layer.prevC = planFloats(k, lo, "prevC", n * W * h);
      layer.curH = planFloats(k, lo, "curH", n * W * h), layer.curC = planFloats(k, lo, "curC", n * W * h);
      p->layers.push_back(std::move(layer));
    }
    p->skip = planDense(k, o, "skip", L * F, -1);
    p->outHidden = planDense(k, o, "outHidden", p->skip.cout, -1);
    p->out = planDense(k, o, "out", p->outHidden.cout, -1);
    p->logits = planFloats(k, o, "logits", n * p->out.cout);
    p->taps.resize(size_t(n * maxK)), p->z.resize(size_t(n * G)), p->hx.resize(size_t(n * h)), p->f.resize(size_t(n * F));
    p->skipIn.resize(size_t(n * L * F)), p->a.resize(size_t(n * p->skip.cout)), p->b.resize(size_t(n * p->outHidden.cout));
    return Napi::Value(Napi::External<RowLstmStepPlan>::New(info.Env(), p.release(), [](Napi::Env, RowLstmStepPlan* q) { delete q; }));
  });
}

// rowLstmStep(handle, y, x)
ARPIX_EXPORT(rowLstmStep) {
  return guarded(info, "rowLstmStep", [&] {
    if (!info[0].IsExternal()) throw KernelError("rowLstmStep", "the first argument must be a handle from rowLstmPlan");
    RowLstmStepPlan& p = *info[0].As<Napi::External<RowLstmStepPlan>>().Data();
    const int64_t y = info[1].As<Napi::Number>().Int64Value(), x = info[2].As<Napi::Number>().Int64Value();
    if (y < 0 || y >= p.H || x < 0 || x >= p.W) throw KernelError("rowLstmStep", "pixel (" + std::to_string(y) + ", " + std::to_string(x) + ") is off the image");
    rowLstmStep(p, y, x);
    return info.Env().Undefined();
  });
}

// convBenchBest(N, H, W, Cin, Cout, k, iters) → {forward, backwardData, backwardWeights}: {seconds, config}
ARPIX_EXPORT(convBenchBest) {
  return guarded(info, "convBenchBest", [&] {
    int64_t v[7];
    for (int i = 0; i < 7; i++) v[i] = info[i].As<Napi::Number>().Int64Value();
    for (int i = 0; i < 7; i++) {
      if (v[i] < 1) throw KernelError("convBenchBest", "every argument must be a positive integer");
    }
    auto r = convBenchBest(v[0], v[1], v[2], v[3], v[4], v[5], int(v[6]));
    Napi::Env env = info.Env();
    Napi::Object o = Napi::Object::New(env);
    const char* names[3] = {"forward", "backwardData", "backwardWeights"};
    for (int i = 0; i < 3; i++) {
      Napi::Object e = Napi::Object::New(env);
      e.Set("seconds", Napi::Number::New(env, r[size_t(i)].seconds));
      e.Set("minSeconds", Napi::Number::New(env, r[size_t(i)].minSeconds));
      e.Set("config", Napi::String::New(env, r[size_t(i)].config));
      o.Set(names[i], e);
    }
    return Napi::Value(o);
  });
}

#define ARPIX_REGISTER(name) exports.Set(#name, Napi::Function::New(env, name##Js, #name))

Napi::Object init(Napi::Env env, Napi::Object exports) {
  ARPIX_REGISTER(unary);
  ARPIX_REGISTER(unaryBackward);
  ARPIX_REGISTER(clamp);
  ARPIX_REGISTER(binary);
  ARPIX_REGISTER(where);
  ARPIX_REGISTER(reduce);
  ARPIX_REGISTER(argmaxLast);
  ARPIX_REGISTER(softmaxLast);
  ARPIX_REGISTER(matmul);
  ARPIX_REGISTER(conv2d);
  ARPIX_REGISTER(conv2dBackwardData);
  ARPIX_REGISTER(conv2dBackwardWeights);
  ARPIX_REGISTER(conv2dBackward);
  ARPIX_REGISTER(releaseConvInput);
  ARPIX_REGISTER(addressMod64);
  ARPIX_REGISTER(convImplementations);
  ARPIX_REGISTER(permute);
  ARPIX_REGISTER(pad);
  ARPIX_REGISTER(slice);
  ARPIX_REGISTER(concat);
  ARPIX_REGISTER(gatherRows);
  ARPIX_REGISTER(scatterAddRows);
  ARPIX_REGISTER(pickLast);
  ARPIX_REGISTER(pickLastBackward);
  ARPIX_REGISTER(cast);
  ARPIX_REGISTER(oneHot);
  ARPIX_REGISTER(rowConvSumBackward);
  ARPIX_REGISTER(gate);
  ARPIX_REGISTER(gateBackward);
  ARPIX_REGISTER(softmaxCrossEntropy);
  ARPIX_REGISTER(softmaxCrossEntropyBackward);
  ARPIX_REGISTER(dropoutMask);
  ARPIX_REGISTER(concatElu);
  ARPIX_REGISTER(adamUpdate);
  ARPIX_REGISTER(lstmScan);
  ARPIX_REGISTER(lstmScanBackward);
  ARPIX_REGISTER(gatedResidual);
  ARPIX_REGISTER(gatedResidualBackward);
  ARPIX_REGISTER(concatEluBackward);
  ARPIX_REGISTER(layerNorm);
  ARPIX_REGISTER(layerNormBackward);
  ARPIX_REGISTER(gelu);
  ARPIX_REGISTER(geluBackward);
  ARPIX_REGISTER(attention);
  ARPIX_REGISTER(attentionBackward);
  ARPIX_REGISTER(attentionStep);
  ARPIX_REGISTER(rowLstmPlan);
  ARPIX_REGISTER(rowLstmStep);
  ARPIX_REGISTER(threads);
  ARPIX_REGISTER(setThreads);
  ARPIX_REGISTER(setConvAlgorithm);
  ARPIX_REGISTER(convAlgorithm);
  ARPIX_REGISTER(onednnVersion);
  ARPIX_REGISTER(clearCaches);
  ARPIX_REGISTER(cacheSizes);
  ARPIX_REGISTER(convBenchBest);
  return exports;
}

}  // namespace
}  // namespace arpix

static Napi::Object initArpix(Napi::Env env, Napi::Object exports) {
  // Every op allocates its output as a fresh typed array. glibc serves blocks above its mmap
  // threshold with new mappings, so each activation-sized output page-faults on first touch (a
  // 6.4 MB add took 2.6 ms instead of 1.0 ms). Serving them from the heap, and keeping freed heap
  // instead of returning it to the system, reuses warm pages step after step.
  mallopt(M_MMAP_THRESHOLD, 256 << 20);
  mallopt(M_TRIM_THRESHOLD, 512 << 20);
  return arpix::init(env, exports);
}
NODE_API_MODULE(arpix_native, initArpix)
