// The generic kernel binding (binding.h): reading the descriptor table at load, unpacking a call's
// arguments by kind, and the checks every descriptor can declare.
#include "binding.h"

#include <cmath>
#include <cstring>

namespace arpix {
namespace {

const char* const kKindNames[] = {"tensor", "tensors", "convTerms", "number", "int", "uint", "bool", "choice", "ints", "convParams", "attentionAttrs", "adamHyper", "rowLstmPlan"};

const char* kindName(ArgKind k) { return kKindNames[size_t(k)]; }

uint32_t bit(DType d) { return 1u << unsigned(d); }

/** The dtypes a descriptor may name, as the addon calls them (KernelDType in src/kernels/descriptor.ts). */
bool dtypeNamed(const std::string& name, DType& d) {
  if (name == "float32") d = DType::F32;
  else if (name == "int32") d = DType::I32;
  else return false;
  return true;
}

std::string dtypesText(uint32_t set) {
  std::string r;
  for (DType d : {DType::F32, DType::I32}) {
    if (!(set & bit(d))) continue;
    r += (r.empty() ? "" : " or ") + std::string(dtypeName(d));
  }
  return r;
}

constexpr double kSafeInteger = 9007199254740992.0;  // 2^53

bool isCount(double d) { return d >= 0 && d < kSafeInteger && d == std::trunc(d); }

[[noreturn]] void badShape(const std::string& what) { throw ArgumentError(what + " has a bad shape in the frame"); }

// ---- the environment's bindings ----

/** Every descriptor and frame bindKernels made in one environment (they live as long as it does). */
struct Bindings {
  std::vector<std::unique_ptr<KernelSpec>> specs;
  std::vector<std::unique_ptr<Frame>> frames;
};

Bindings& bindingsOf(napi_env env) {
  void* data = nullptr;
  napi_get_instance_data(env, &data);
  if (!data) {
    data = new Bindings();
    napi_set_instance_data(env, data, [](napi_env, void* d, void*) { delete static_cast<Bindings*>(d); }, nullptr);
  }
  return *static_cast<Bindings*>(data);
}

// ---- reading the table (load time: plain and thorough rather than fast) ----

/** A load-time failure: the table and the registered C++ functions disagree. */
struct BindError : std::runtime_error {
  using std::runtime_error::runtime_error;
};

napi_value property(napi_env env, napi_value object, const char* name) {
  napi_value v;
  if (napi_get_named_property(env, object, name, &v) != napi_ok) throw BindError(std::string("cannot read ") + name);
  return v;
}

napi_valuetype typeOf(napi_env env, napi_value v) {
  napi_valuetype t = napi_undefined;
  napi_typeof(env, v, &t);
  return t;
}

std::optional<std::string> stringOf(napi_env env, napi_value v) {
  if (typeOf(env, v) != napi_string) return std::nullopt;
  size_t length = 0;
  napi_get_value_string_utf8(env, v, nullptr, 0, &length);
  std::string s(length, '\0');
  napi_get_value_string_utf8(env, v, s.data(), length + 1, &length);
  return s;
}

bool flag(napi_env env, napi_value object, const char* name) {
  bool b = false;
  napi_value v = property(env, object, name);
  return typeOf(env, v) == napi_boolean && napi_get_value_bool(env, v, &b) == napi_ok && b;
}

std::vector<napi_value> elements(napi_env env, napi_value array) {
  bool isArray = false;
  napi_is_array(env, array, &isArray);
  if (!isArray) throw BindError("is not an array");
  uint32_t n = 0;
  napi_get_array_length(env, array, &n);
  std::vector<napi_value> r(n);
  for (uint32_t i = 0; i < n; i++) napi_get_element(env, array, i, &r[i]);
  return r;
}

ArgKind kindNamed(const std::string& name) {
  for (size_t k = 0; k < std::size(kKindNames); k++) {
    if (name == kKindNames[k]) return ArgKind(k);
  }
  throw BindError("has kind '" + name + "', which the addon does not know");
}

/** Argument i of a descriptor, with the rules' references still as names (resolved by the caller). */
struct ArgDraft {
  ArgSpec spec;
  std::string dtypeLike, sizeOf, broadcastTo;
};

ArgDraft argumentOf(napi_env env, napi_value a) {
  ArgDraft d;
  auto name = stringOf(env, property(env, a, "name"));
  auto kind = stringOf(env, property(env, a, "kind"));
  if (!name || !kind) throw BindError("needs a name and a kind");
  d.spec.name = *name;
  d.spec.kind = kindNamed(*kind);
  d.spec.nullable = flag(env, a, "nullable");
  d.spec.identity = flag(env, a, "identity");
  napi_value dtype = property(env, a, "dtype");
  if (auto like = stringOf(env, dtype)) {
    if (like->rfind("like ", 0) != 0) throw BindError("'" + d.spec.name + "' has dtype '" + *like + "' (expected a list, or 'like <argument>')");
    d.dtypeLike = like->substr(5);
  } else if (typeOf(env, dtype) != napi_undefined) {
    for (napi_value e : elements(env, dtype)) {
      DType t;
      auto s = stringOf(env, e);
      if (!s || !dtypeNamed(*s, t)) throw BindError("'" + d.spec.name + "' takes dtype '" + s.value_or("?") + "', which the addon does not know");
      d.spec.dtypes |= bit(t);
    }
  }
  if (auto size = stringOf(env, property(env, a, "size"))) {
    d.spec.size = SizeRule::Same, d.sizeOf = *size;
    for (auto [prefix, rule] : {std::pair<const char*, SizeRule>{"rows of ", SizeRule::Rows}, {"last of ", SizeRule::Last}, {"twice ", SizeRule::Twice}}) {
      if (size->rfind(prefix, 0) == 0) d.spec.size = rule, d.sizeOf = size->substr(std::strlen(prefix));
    }
  }
  if (auto b = stringOf(env, property(env, a, "broadcast"))) d.broadcastTo = *b;
  if (d.spec.kind == ArgKind::Choice) {
    for (napi_value e : elements(env, property(env, a, "values"))) d.spec.choices.push_back(stringOf(env, e).value_or(""));
  }
  return d;
}

/** The descriptor of kernel `name`, checked against its registered C++ function. */
std::unique_ptr<KernelSpec> specOf(napi_env env, napi_value entry, const Registration& reg) {
  auto spec = std::make_unique<KernelSpec>();
  spec->name = reg.name;
  std::vector<ArgDraft> drafts;
  for (napi_value a : elements(env, property(env, entry, "args"))) drafts.push_back(argumentOf(env, a));
  if (drafts.size() != reg.params.size()) {
    throw BindError("its entry declares " + std::to_string(drafts.size()) + " arguments, its C++ function takes " + std::to_string(reg.params.size()));
  }
  auto indexOf = [&](const std::string& name, const std::string& user) {
    for (size_t i = 0; i < drafts.size(); i++) {
      if (drafts[i].spec.name == name && drafts[i].spec.kind == ArgKind::Tensor && name != user) return int(i);
    }
    throw BindError("'" + user + "' refers to '" + name + "', which is not another tensor argument");
  };
  for (size_t i = 0; i < drafts.size(); i++) {
    ArgSpec& a = drafts[i].spec;
    const auto [kind, nullable] = reg.params[i];
    if (a.kind != kind || a.nullable != nullable) {
      auto what = [](ArgKind k, bool n) { return std::string(n ? "nullable " : "") + kindName(k); };
      throw BindError("argument " + std::to_string(i + 1) + " '" + a.name + "' is a " + what(a.kind, a.nullable) + " in KERNELS but a " + what(kind, nullable) + " in its C++ function");
    }
    const bool holdsTensors = a.kind == ArgKind::Tensor || a.kind == ArgKind::Tensors || a.kind == ArgKind::ConvTerms;
    if (holdsTensors && a.dtypes == 0 && drafts[i].dtypeLike.empty()) throw BindError("'" + a.name + "' declares no dtype");
    if (!drafts[i].dtypeLike.empty()) a.dtypeLike = indexOf(drafts[i].dtypeLike, a.name);
    if (a.size != SizeRule::None) a.sizeOf = indexOf(drafts[i].sizeOf, a.name);
    if (!drafts[i].broadcastTo.empty()) a.broadcastTo = indexOf(drafts[i].broadcastTo, a.name);
    spec->args.push_back(a);
  }
  auto returns = stringOf(env, property(env, entry, "returns"));
  if (returns.has_value() != reg.returnsInt || (returns && *returns != "int")) {
    throw BindError(std::string("its entry returns ") + (returns ? *returns : "nothing") + ", its C++ function " + (reg.returnsInt ? "an int64_t" : "nothing"));
  }
  return spec;
}

void adoptFrame(napi_env env, napi_value value, Frame& f) {
  napi_typedarray_type type;
  size_t length = 0;
  void* data = nullptr;
  if (napi_get_typedarray_info(env, value, &type, &length, &data, nullptr, nullptr) != napi_ok || type != napi_float64_array) {
    throw BindError("the frame must be a Float64Array");
  }
  if (f.ref) napi_delete_reference(env, f.ref);
  napi_create_reference(env, value, 1, &f.ref);
  f.data = static_cast<const double*>(data), f.capacity = length;
}

napi_value throwError(napi_env env, const std::string& msg) {
  bool pending = false;
  napi_is_exception_pending(env, &pending);
  if (!pending) napi_throw_error(env, nullptr, msg.c_str());
  return nullptr;
}

// useFrame(frame): the adapter outgrew its frame and hands over a larger one.
napi_value useFrame(napi_env env, napi_callback_info info) {
  size_t argc = 1;
  napi_value frame;
  void* data = nullptr;
  napi_get_cb_info(env, info, &argc, &frame, nullptr, &data);
  try {
    adoptFrame(env, frame, *static_cast<Frame*>(data));
  } catch (const std::exception& e) {
    return throwError(env, std::string("useFrame: ") + e.what());
  }
  return nullptr;
}

}  // namespace

napi_value bindKernels(napi_env env, napi_callback_info info, const std::vector<Registration>& kernels) {
  size_t argc = 2;
  napi_value argv[2];
  napi_get_cb_info(env, info, &argc, argv, nullptr, nullptr);
  std::string kernel;
  try {
    Bindings& bindings = bindingsOf(env);
    bindings.frames.push_back(std::make_unique<Frame>());
    Frame* frame = bindings.frames.back().get();
    adoptFrame(env, argv[1], *frame);
    if (typeOf(env, argv[0]) != napi_object) throw BindError("the kernel table must be an object");
    napi_value functions, result, useFrameFn;
    napi_create_object(env, &functions);
    napi_create_object(env, &result);
    for (const Registration& reg : kernels) {
      kernel = reg.name;
      napi_value entry = property(env, argv[0], reg.name);
      if (typeOf(env, entry) != napi_object) {
        kernel.clear();
        throw BindError("kernel '" + std::string(reg.name) + "' is registered in native/addon.cc but has no entry in KERNELS (src/kernels/contracts.ts)");
      }
      std::unique_ptr<KernelSpec> spec = specOf(env, entry, reg);
      spec->frame = frame;
      napi_value fn;
      napi_create_function(env, reg.name, NAPI_AUTO_LENGTH, reg.callback, spec.get(), &fn);
      napi_set_named_property(env, functions, reg.name, fn);
      bindings.specs.push_back(std::move(spec));
    }
    napi_create_function(env, "useFrame", NAPI_AUTO_LENGTH, useFrame, frame, &useFrameFn);
    napi_set_named_property(env, result, "kernels", functions);
    napi_set_named_property(env, result, "useFrame", useFrameFn);
    return result;
  } catch (const std::exception& e) {
    return throwError(env, "arpix addon: " + (kernel.empty() ? std::string() : "kernel '" + kernel + "': ") + e.what());
  }
}

Buf bufOf(napi_env env, napi_value v, const std::string& kernel, const std::string& arg) {
  napi_typedarray_type type;
  size_t length = 0;
  void* data = nullptr;
  if (napi_get_typedarray_info(env, v, &type, &length, &data, nullptr, nullptr) != napi_ok) throw KernelError(kernel, arg + " must be a typed array");
  Buf b;
  if (type == napi_float32_array) b.dtype = DType::F32;
  else if (type == napi_int32_array) b.dtype = DType::I32;
  else throw KernelError(kernel, arg + " must be a Float32Array or Int32Array");
  b.data = data, b.size = int64_t(length), b.shape = {b.size};
  return b;
}

// ---- a call ----

Call::Call(napi_env env, napi_callback_info info) : env_(env) {
  void* data = nullptr;
  napi_get_cb_info(env, info, &argc_, argv_, nullptr, &data);
  spec_ = static_cast<const KernelSpec*>(data);
}

void Call::frameEnded(const std::string& what) {
  throw ArgumentError(what + ": the call's frame ended early (the adapter and the addon disagree)");
}

Shape Call::shapeOf(const std::string& what) {
  // One bounds check for the whole shape: this runs for every tensor of every call.
  const Frame& f = *spec_->frame;
  const double* p = f.data + at_;
  const size_t left = f.capacity - at_;
  if (left < 1 || !(p[0] >= 0 && p[0] <= 64) || p[0] != double(size_t(p[0])) || left < 1 + size_t(p[0])) badShape(what);
  Shape s(static_cast<size_t>(p[0]));
  for (size_t k = 0; k < s.size(); k++) {
    const double d = p[1 + k];
    if (!(d >= 0 && d < kSafeInteger) || d != double(int64_t(d))) badShape(what);
    s[k] = int64_t(d);
  }
  at_ += 1 + s.size();
  return s;
}

Buf Call::typedArray(napi_value v, const std::string& what, const ArgSpec& a, bool withIdentity) {
  // One napi_get_typedarray_info call: it also tells a typed array from anything else.
  napi_typedarray_type type;
  size_t length = 0;
  void* data = nullptr;
  if (napi_get_typedarray_info(env_, v, &type, &length, &data, nullptr, nullptr) != napi_ok) throw ArgumentError(what + " must be a typed array");
  Buf b;
  switch (type) {
    case napi_float32_array: b.dtype = DType::F32; break;
    case napi_int32_array: b.dtype = DType::I32; break;
    case napi_float64_array: throw ArgumentError(what + " has dtype float64; native kernels take float32 and int32 (route float64 to the ts backend)");
    default: throw ArgumentError(what + " must be a Float32Array or Int32Array");
  }
  b.size = int64_t(length);
  b.data = data;  // already advanced by the byte offset
  b.shape = shapeOf(what);
  if (numel(b.shape) != b.size) {
    throw ArgumentError(what + " holds " + std::to_string(b.size) + " elements but its shape " + fmtShape(b.shape) + " needs " + std::to_string(numel(b.shape)));
  }
  if (withIdentity) b.storageId = int64_t(next(what)), b.version = int64_t(next(what));
  checkDType(b, what, a);
  return b;
}

void Call::checkDType(const Buf& b, const std::string& what, const ArgSpec& a) const {
  if (a.dtypeLike < 0 && !(a.dtypes & bit(b.dtype))) {
    throw ArgumentError(what + " has dtype " + dtypeName(b.dtype) + ", expected " + dtypesText(a.dtypes));
  }
}

Buf Call::tensor(size_t i) {
  const ArgSpec& a = spec_->args[i];
  return typedArray(argv_[i], a.name, a, a.identity);
}

std::optional<Buf> Call::nullableTensor(size_t i) {
  const napi_valuetype t = typeOf(env_, argv_[i]);
  if (t == napi_null || t == napi_undefined) return std::nullopt;
  return tensor(i);
}

std::vector<Buf> Call::tensors(size_t i) {
  const ArgSpec& a = spec_->args[i];
  uint32_t n = 0;
  if (napi_get_array_length(env_, argv_[i], &n) != napi_ok) throw ArgumentError(a.name + " must be an array of typed arrays");
  if (next(a.name) != double(n)) throw ArgumentError(a.name + ": the frame and the array count different tensors");
  std::vector<Buf> xs(n);
  for (uint32_t k = 0; k < n; k++) {
    napi_value e;
    napi_get_element(env_, argv_[i], k, &e);
    xs[k] = typedArray(e, a.name + "[" + std::to_string(k) + "]", a, false);
  }
  return xs;
}

ConvTermList Call::convTerms(size_t i) {
  // argv[i] holds [x, w, dx, addend, dw] per term (the last three may be null); the frame the
  // count, then per term x's and w's shapes, the conv params and the shapes of those present.
  const ArgSpec& a = spec_->args[i];
  uint32_t n = 0;
  if (napi_get_array_length(env_, argv_[i], &n) != napi_ok || n % 5 != 0) throw ArgumentError(a.name + " must be an array of [x, w, dx, addend, dw] quintuples");
  if (next(a.name) != double(n / 5)) throw ArgumentError(a.name + ": the frame and the array count different terms");
  ConvTermList list;
  auto at = [&](uint32_t k) {
    napi_value e;
    napi_get_element(env_, argv_[i], k, &e);
    return e;
  };
  for (uint32_t t = 0; t < n / 5; t++) {
    const std::string term = a.name + "[" + std::to_string(t) + "].";
    RowConvTerm r;
    r.x = typedArray(at(5 * t), term + "x", a, false);
    r.w = typedArray(at(5 * t + 1), term + "w", a, false);
    r.p = convParams(i);
    const char* names[3] = {"dx", "addend", "dw"};
    const Buf** slots[3] = {&r.dx, &r.addend, &r.dw};
    for (uint32_t k = 0; k < 3; k++) {
      napi_value v = at(5 * t + 2 + k);
      const napi_valuetype type = typeOf(env_, v);
      if (type == napi_null || type == napi_undefined) continue;
      list.owned.push_back(std::make_unique<Buf>(typedArray(v, term + names[k], a, false)));
      *slots[k] = list.owned.back().get();
    }
    list.terms.push_back(r);
  }
  return list;
}

double Call::number(size_t i) {
  double d = 0;
  if (napi_get_value_double(env_, argv_[i], &d) != napi_ok) throw ArgumentError(spec_->args[i].name + " must be a number");
  return d;
}

int64_t Call::integer(size_t i) {
  const double d = number(i);
  if (!(std::fabs(d) < kSafeInteger) || d != std::trunc(d)) throw ArgumentError(spec_->args[i].name + " must be an integer, got " + std::to_string(d));
  return int64_t(d);
}

uint64_t Call::unsignedInteger(size_t i) {
  const double d = number(i);
  if (!isCount(d)) throw ArgumentError(spec_->args[i].name + " must be a non-negative safe integer");
  return uint64_t(d);
}

bool Call::boolean(size_t i) {
  bool b = false;
  if (napi_get_value_bool(env_, argv_[i], &b) != napi_ok) throw ArgumentError(spec_->args[i].name + " must be a boolean");
  return b;
}

const std::string& Call::choice(size_t i) {
  const ArgSpec& a = spec_->args[i];
  char text[64];
  size_t length = 0;
  if (napi_get_value_string_utf8(env_, argv_[i], text, sizeof text, &length) != napi_ok) throw ArgumentError(a.name + " must be a string");
  for (const std::string& c : a.choices) {
    if (c.size() == length && std::memcmp(c.data(), text, length) == 0) return c;
  }
  std::string list;
  for (const std::string& c : a.choices) list += (list.empty() ? "'" : ", '") + c + "'";
  throw ArgumentError(a.name + " must be one of " + list + ", got '" + std::string(text, length) + "'");
}

std::vector<int64_t> Call::ints(size_t i) {
  const std::string& name = spec_->args[i].name;
  const double n = next(name);
  if (!isCount(n)) throw ArgumentError(name + " has a bad length");
  std::vector<int64_t> r(static_cast<size_t>(n));
  for (int64_t& v : r) {
    const double d = next(name);
    if (!(std::fabs(d) < kSafeInteger) || d != std::trunc(d)) throw ArgumentError(name + " must hold integers");
    v = int64_t(d);
  }
  return r;
}

ConvParams Call::convParams(size_t i) {
  const std::string& name = spec_->args[i].name;
  int64_t v[8];
  for (int64_t& x : v) {
    const double d = next(name);
    if (!(std::fabs(d) < kSafeInteger) || d != std::trunc(d)) throw ArgumentError(name + " must hold integers");
    x = int64_t(d);
  }
  return {v[0], v[1], v[2], v[3], v[4], v[5], v[6] != 0, v[7] != 0};
}

AttentionAttrs Call::attentionAttrs(size_t i) {
  const std::string& name = spec_->args[i].name;
  AttentionAttrs a;
  a.heads = int64_t(next(name));
  a.scale = next(name);
  a.bf16 = next(name) != 0;
  const double n = next(name);
  if (!isCount(n) || n > 16) throw ArgumentError(name + " has a bad pattern");
  a.pattern.resize(size_t(n));
  for (int64_t& v : a.pattern) v = int64_t(next(name));
  return a;
}

AdamHyper Call::adamHyper(size_t i) {
  const std::string& name = spec_->args[i].name;
  AdamHyper h;
  for (double* v : {&h.beta1, &h.beta2, &h.eps, &h.stepSize, &h.bc2Sqrt, &h.decay, &h.l2}) *v = next(name);
  return h;
}

RowLstmStepPlan& Call::rowLstmPlan(size_t i) {
  void* p = nullptr;
  if (typeOf(env_, argv_[i]) != napi_external || napi_get_value_external(env_, argv_[i], &p) != napi_ok || !p) {
    throw ArgumentError(spec_->args[i].name + " must be a handle from rowLstmPlan");
  }
  return *static_cast<RowLstmStepPlan*>(p);
}

void Call::checkRules() const {
  const std::vector<ArgSpec>& args = spec_->args;
  for (size_t i = 0; i < args.size(); i++) {
    const ArgSpec& a = args[i];
    if (const std::vector<Buf>* list = lists_[i]; list && a.dtypeLike >= 0) {
      const Buf* like = bufs_[a.dtypeLike];
      for (size_t k = 0; like && k < list->size(); k++) {
        if ((*list)[k].dtype != like->dtype) {
          throw ArgumentError(a.name + "[" + std::to_string(k) + "] has dtype " + dtypeName((*list)[k].dtype) + ", expected " + args[size_t(a.dtypeLike)].name + "'s " + dtypeName(like->dtype));
        }
      }
    }
    const Buf* b = bufs_[i];
    if (!b) continue;
    if (const Buf* like = a.dtypeLike >= 0 ? bufs_[a.dtypeLike] : nullptr; like && like->dtype != b->dtype) {
      throw ArgumentError(a.name + " has dtype " + dtypeName(b->dtype) + ", expected " + args[size_t(a.dtypeLike)].name + "'s " + dtypeName(like->dtype));
    }
    if (const Buf* of = a.sizeOf >= 0 ? bufs_[a.sizeOf] : nullptr) {
      const int64_t last = of->shape.empty() ? 1 : of->shape.back();
      int64_t rows = 1;
      for (size_t d = 0; d + 1 < of->shape.size(); d++) rows *= of->shape[d];
      const int64_t want = a.size == SizeRule::Same ? of->size : a.size == SizeRule::Rows ? rows : a.size == SizeRule::Last ? last : 2 * of->size;
      if (b->size != want) {
        const std::string& ref = args[size_t(a.sizeOf)].name;
        const std::string why = a.size == SizeRule::Same ? "as many as " + ref
                                : a.size == SizeRule::Rows ? "one per row of " + ref + " " + fmtShape(of->shape)
                                : a.size == SizeRule::Last ? "the last axis of " + ref + " " + fmtShape(of->shape)
                                                           : "twice " + ref + "'s";
        throw ArgumentError(a.name + " holds " + std::to_string(b->size) + " elements, expected " + std::to_string(want) + " (" + why + ")");
      }
    }
    if (const Buf* out = a.broadcastTo >= 0 ? bufs_[a.broadcastTo] : nullptr) {
      const Shape &in = b->shape, &o = out->shape;
      bool ok = in.size() <= o.size();
      for (size_t j = 0; ok && j < in.size(); j++) {
        const int64_t d = in[in.size() - 1 - j];
        ok = d == o[o.size() - 1 - j] || d == 1;
      }
      if (!ok) throw ArgumentError(a.name + " " + fmtShape(in) + " does not broadcast to " + args[size_t(a.broadcastTo)].name + " " + fmtShape(o));
    }
  }
}

napi_value Call::undefinedResult() const {
  napi_value v;
  napi_get_undefined(env_, &v);
  return v;
}

napi_value Call::intResult(int64_t v) const {
  napi_value r;
  napi_create_double(env_, double(v), &r);
  return r;
}

napi_value Call::fail(const std::string& msg, bool prefix) const {
  return throwError(env_, prefix ? spec_->name + ": " + msg : msg);
}

}  // namespace arpix
