// Node-API surface of the arpix addon: the kernels, bound by the generic binding (binding.h) to
// their descriptors in src/kernels/contracts.ts, and a few hand-bound functions (threads, caches,
// the conv probe, the Row LSTM step plan). The arithmetic lives in the other files.
#include <napi.h>
#include <malloc.h>
#include <memory>
#include <omp.h>

#include "binding.h"
#include "common.h"

namespace arpix {
namespace {

/**
 * The kernels: each C++ function is bound to the KERNELS entry of its name, and refused at load
 * when its parameters disagree with it.
 */
const std::vector<Registration>& kernels() {
  static const std::vector<Registration> list = {
      ARPIX_KERNEL(unary), ARPIX_KERNEL(unaryBackward), ARPIX_KERNEL(clamp), ARPIX_KERNEL(binary), ARPIX_KERNEL(where),
      ARPIX_KERNEL(reduce), ARPIX_KERNEL(argmaxLast), ARPIX_KERNEL(softmaxLast), ARPIX_KERNEL(matmul),
      ARPIX_KERNEL(conv2d), ARPIX_KERNEL(conv2dBackwardData), ARPIX_KERNEL(conv2dBackwardWeights), ARPIX_KERNEL(conv2dBackward),
      ARPIX_KERNEL(releaseConvInput), ARPIX_KERNEL(rowConvSumBackward),
      ARPIX_KERNEL(permute), ARPIX_KERNEL(pad), ARPIX_KERNEL(slice), ARPIX_KERNEL(concat), ARPIX_KERNEL(gatherRows),
      ARPIX_KERNEL(scatterAddRows), ARPIX_KERNEL(pickLast), ARPIX_KERNEL(pickLastBackward), ARPIX_KERNEL(cast), ARPIX_KERNEL(oneHot),
      ARPIX_KERNEL(gate), ARPIX_KERNEL(gateBackward), ARPIX_KERNEL(softmaxCrossEntropy), ARPIX_KERNEL(softmaxCrossEntropyBackward),
      ARPIX_KERNEL(adamUpdate), ARPIX_KERNEL(gatedResidual), ARPIX_KERNEL(gatedResidualBackward), ARPIX_KERNEL(concatElu),
      ARPIX_KERNEL(concatEluBackward), ARPIX_KERNEL(lstmScan), ARPIX_KERNEL(lstmScanBackward), ARPIX_KERNEL(dropoutMask),
      ARPIX_KERNEL(layerNorm), ARPIX_KERNEL(layerNormBackward), ARPIX_KERNEL(gelu), ARPIX_KERNEL(geluBackward),
      ARPIX_KERNEL(attention), ARPIX_KERNEL(attentionBackward), ARPIX_KERNEL(attentionStep), ARPIX_KERNEL(rowLstmStep),
  };
  return list;
}

napi_value bindKernelsJs(napi_env env, napi_callback_info info) { return bindKernels(env, info, kernels()); }

/** Runs body, turning any C++ exception into a JS Error (kernel errors already carry the name). */
template <class F>
Napi::Value guarded(const Napi::CallbackInfo& info, const char* what, F body) {
  try {
    return body();
  } catch (const Napi::Error&) {
    throw;
  } catch (const KernelError& e) {
    throw Napi::Error::New(info.Env(), e.what());
  } catch (const std::exception& e) {
    throw Napi::Error::New(info.Env(), std::string(what) + ": " + e.what());
  }
}

#define ARPIX_EXPORT(name) Napi::Value name##Js(const Napi::CallbackInfo& info)

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
// cpuCapabilities() → {isa, bf16Conv, bf16Matmul}
ARPIX_EXPORT(cpuCapabilities) {
  return guarded(info, "cpuCapabilities", [&] {
    const CpuCapabilities c = cpuCapabilities();
    Napi::Object o = Napi::Object::New(info.Env());
    o.Set("isa", c.isa);
    o.Set("bf16Conv", c.bf16Conv);
    o.Set("bf16Matmul", c.bf16Matmul);
    return Napi::Value(o);
  });
}

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
  Buf b = bufOf(o.Env(), o.Get(name), kernel, name);
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
  Buf b = bufOf(o.Env(), o.Get(name), kernel, name);
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
      Buf row = bufOf(info.Env(), rowValue, k, "rows[l]");
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
  napi_value bind;
  napi_create_function(env, "bindKernels", NAPI_AUTO_LENGTH, bindKernelsJs, nullptr, &bind);
  exports.Set("bindKernels", Napi::Value(env, bind));
  ARPIX_REGISTER(addressMod64);
  ARPIX_REGISTER(convImplementations);
  ARPIX_REGISTER(rowLstmPlan);
  ARPIX_REGISTER(threads);
  ARPIX_REGISTER(setThreads);
  ARPIX_REGISTER(setConvAlgorithm);
  ARPIX_REGISTER(convAlgorithm);
  ARPIX_REGISTER(onednnVersion);
  ARPIX_REGISTER(cpuCapabilities);
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
