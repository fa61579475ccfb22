// One binding for every kernel. A kernel's arguments are declared once, in the KERNELS table of
// src/kernels/contracts.ts; the addon receives that table at load (bindKernels) and pairs each
// entry with the C++ function registered under its name (native/addon.cc). The kind of every C++
// parameter follows from its type (Param below), and a function whose parameters disagree with its
// entry is refused, naming the kernel and the argument. A call is then unpacked by the one wrapper
// callKernel<&fn>: the JS adapter passes argument i of the contract as argument i of the call —
// tensors as their typed arrays, attributes as numbers, booleans and strings — and writes every
// shape and struct attribute, in argument order, into the binding's frame: a Float64Array shared
// with the adapter, so no JS array is read on the hot path. The wrapper checks what the entry
// declares (dtypes, element counts against shapes and against other arguments, broadcasting), and
// names the kernel and the argument in every error; checks of a kernel's geometry live beside it.
#pragma once

#include <node_api.h>

#include <memory>
#include <optional>
#include <string>
#include <tuple>
#include <type_traits>
#include <utility>
#include <vector>

#include "common.h"

namespace arpix {

/** The kinds of kernel arguments (KernelArg['kind'] in src/kernels/descriptor.ts). */
enum class ArgKind : uint8_t { Tensor, Tensors, ConvTerms, Number, Int, Uint, Bool, Choice, Ints, ConvParams, AttentionAttrs, AdamHyper, RowLstmPlan };

/** How a tensor's element count follows from another argument's (SizeRule in descriptor.ts). */
enum class SizeRule : uint8_t { None, Same, Rows, Last, Twice };

/** One argument of a kernel, as its descriptor declares it. */
struct ArgSpec {
  std::string name;
  ArgKind kind = ArgKind::Number;
  bool nullable = false;
  bool identity = false;          // storage id and version follow the shape in the frame
  uint32_t dtypes = 0;            // tensors and lists: bit per DType accepted (when dtypeLike < 0)
  int dtypeLike = -1;             // or the argument whose dtype it must have
  SizeRule size = SizeRule::None;
  int sizeOf = -1;                // the argument the size rule refers to
  int broadcastTo = -1;
  std::vector<std::string> choices;
};

/** The numbers of a call, written by the JS adapter (src/backends/native/kernels.ts). */
struct Frame {
  const double* data = nullptr;
  size_t capacity = 0;
  napi_ref ref = nullptr;  // keeps the Float64Array alive
};

struct KernelSpec {
  std::string name;
  std::vector<ArgSpec> args;
  const Frame* frame = nullptr;
};

/** rowConvSumBackward's terms and the gradient Bufs they point to. */
struct ConvTermList {
  std::vector<RowConvTerm> terms;
  std::vector<std::unique_ptr<Buf>> owned;
};

constexpr size_t kMaxArgs = 16;

/** One call of a kernel: its JS arguments, its descriptor and a cursor into the frame. */
class Call {
 public:
  Call(napi_env env, napi_callback_info info);
  const KernelSpec& spec() const { return *spec_; }

  // Argument i, by kind; each reads its part of the frame, so they run in argument order.
  Buf tensor(size_t i);
  std::optional<Buf> nullableTensor(size_t i);
  std::vector<Buf> tensors(size_t i);
  ConvTermList convTerms(size_t i);
  double number(size_t i);
  int64_t integer(size_t i);
  uint64_t unsignedInteger(size_t i);
  bool boolean(size_t i);
  const std::string& choice(size_t i);
  std::vector<int64_t> ints(size_t i);
  ConvParams convParams(size_t i);
  AttentionAttrs attentionAttrs(size_t i);
  AdamHyper adamHyper(size_t i);
  RowLstmStepPlan& rowLstmPlan(size_t i);

  /** Records tensor argument i (null when absent), or list argument i, for the rules. */
  void seeTensor(size_t i, const Buf* b) { bufs_[i] = b; }
  void seeList(size_t i, const std::vector<Buf>* list) { lists_[i] = list; }
  /** The rules between arguments: dtype of another, element counts, broadcasting. */
  void checkRules() const;

  napi_value undefinedResult() const;
  napi_value intResult(int64_t v) const;
  /** Throws msg as a JS Error, with the kernel's name in front when prefix (a KernelError names its own). */
  napi_value fail(const std::string& msg, bool prefix) const;

 private:
  double next(const std::string& what) {
    if (at_ >= spec_->frame->capacity) frameEnded(what);
    return spec_->frame->data[at_++];
  }
  [[noreturn]] static void frameEnded(const std::string& what);
  Shape shapeOf(const std::string& what);
  Buf typedArray(napi_value v, const std::string& what, const ArgSpec& a, bool withIdentity);
  void checkDType(const Buf& b, const std::string& what, const ArgSpec& a) const;

  napi_env env_;
  napi_value argv_[kMaxArgs];
  size_t argc_ = kMaxArgs;
  const KernelSpec* spec_ = nullptr;
  size_t at_ = 0;
  const Buf* bufs_[kMaxArgs] = {};
  const std::vector<Buf>* lists_[kMaxArgs] = {};
};

// ---- C++ parameter types and the argument kinds they stand for ----

struct NotTensor {
  template <class H>
  static void see(Call&, size_t, const H&) {}
};

template <class P>
struct Param;  // no specialisation: the type has no argument kind (add one here and in descriptor.ts)

template <>
struct Param<const Buf&> {
  static constexpr ArgKind kind = ArgKind::Tensor;
  static constexpr bool nullable = false;
  using Held = Buf;
  static Held read(Call& c, size_t i) { return c.tensor(i); }
  static const Buf& pass(const Held& h) { return h; }
  static void see(Call& c, size_t i, const Held& h) { c.seeTensor(i, &h); }
};

template <>
struct Param<const Buf*> {
  static constexpr ArgKind kind = ArgKind::Tensor;
  static constexpr bool nullable = true;
  using Held = std::optional<Buf>;
  static Held read(Call& c, size_t i) { return c.nullableTensor(i); }
  static const Buf* pass(const Held& h) { return h ? &*h : nullptr; }
  static void see(Call& c, size_t i, const Held& h) { c.seeTensor(i, pass(h)); }
};

/** The parameter types whose argument one Call method reads; `h` is what the wrapper holds. */
#define ARPIX_PARAM(Type, Kind, HeldType, readExpr, passExpr)  \
  template <>                                                   \
  struct Param<Type> : NotTensor {                              \
    static constexpr ArgKind kind = ArgKind::Kind;              \
    static constexpr bool nullable = false;                     \
    using Held = HeldType;                                      \
    static Held read(Call& c, size_t i) { return readExpr; }    \
    static Type pass(const Held& h) { return passExpr; }        \
  };
ARPIX_PARAM(double, Number, double, c.number(i), h)
ARPIX_PARAM(int64_t, Int, int64_t, c.integer(i), h)
ARPIX_PARAM(uint64_t, Uint, uint64_t, c.unsignedInteger(i), h)
ARPIX_PARAM(bool, Bool, bool, c.boolean(i), h)
ARPIX_PARAM(const std::string&, Choice, const std::string*, &c.choice(i), *h)
ARPIX_PARAM(const std::vector<int64_t>&, Ints, std::vector<int64_t>, c.ints(i), h)
ARPIX_PARAM(const std::vector<RowConvTerm>&, ConvTerms, ConvTermList, c.convTerms(i), h.terms)
ARPIX_PARAM(const ConvParams&, ConvParams, ConvParams, c.convParams(i), h)
ARPIX_PARAM(const AttentionAttrs&, AttentionAttrs, AttentionAttrs, c.attentionAttrs(i), h)
ARPIX_PARAM(const AdamHyper&, AdamHyper, AdamHyper, c.adamHyper(i), h)
ARPIX_PARAM(RowLstmStepPlan&, RowLstmPlan, RowLstmStepPlan*, &c.rowLstmPlan(i), *h)
#undef ARPIX_PARAM

template <>
struct Param<const std::vector<Buf>&> {
  static constexpr ArgKind kind = ArgKind::Tensors;
  static constexpr bool nullable = false;
  using Held = std::vector<Buf>;
  static Held read(Call& c, size_t i) { return c.tensors(i); }
  static const Held& pass(const Held& h) { return h; }
  static void see(Call& c, size_t i, const Held& h) { c.seeList(i, &h); }
};

/** What a registered C++ kernel is, for bindKernels to pair with its descriptor. */
struct Registration {
  const char* name;
  napi_callback callback;
  std::vector<std::pair<ArgKind, bool>> params;  // kind, nullable
  bool returnsInt;
};

template <auto Fn>
napi_value callKernel(napi_env env, napi_callback_info info);

template <class F>
struct FunctionTraits;

template <class R, class... P>
struct FunctionTraits<R (*)(P...)> {
  static constexpr size_t arity = sizeof...(P);
  template <auto Fn>
  static Registration registration(const char* name) {
    static_assert(std::is_void_v<R> || std::is_same_v<R, int64_t>, "a kernel returns nothing or an int64_t");
    static_assert(sizeof...(P) <= kMaxArgs, "a kernel takes at most kMaxArgs arguments");
    return {name, &callKernel<Fn>, {{Param<P>::kind, Param<P>::nullable}...}, !std::is_void_v<R>};
  }
};

template <class R, class... P, size_t... I>
napi_value invoke(R (*fn)(P...), Call& c, std::index_sequence<I...>) {
  // Braced initialisation evaluates left to right: the arguments read the frame in order.
  std::tuple<typename Param<P>::Held...> held{Param<P>::read(c, I)...};
  (Param<P>::see(c, I, std::get<I>(held)), ...);
  c.checkRules();
  if constexpr (std::is_void_v<R>) {
    fn(Param<P>::pass(std::get<I>(held))...);
    return c.undefinedResult();
  } else {
    return c.intResult(fn(Param<P>::pass(std::get<I>(held))...));
  }
}

/** The Node-API callback of kernel function Fn; its descriptor comes with the call (the function's data). */
template <auto Fn>
napi_value callKernel(napi_env env, napi_callback_info info) {
  Call c(env, info);
  try {
    return invoke(Fn, c, std::make_index_sequence<FunctionTraits<decltype(Fn)>::arity>{});
  } catch (const KernelError& e) {
    return c.fail(e.what(), false);
  } catch (const std::exception& e) {
    return c.fail(e.what(), true);
  }
}

/** The Registration of C++ function `fn` as the kernel of the same name. */
#define ARPIX_KERNEL(fn) FunctionTraits<decltype(&fn)>::registration<&fn>(#fn)

/**
 * bindKernels(table, frame) → {kernels, useFrame}: every registered kernel whose parameters agree
 * with its entry in table (KERNELS), as a function; throws, naming the kernel and the argument,
 * when one does not. useFrame(frame) hands over a larger frame.
 */
napi_value bindKernels(napi_env env, napi_callback_info info, const std::vector<Registration>& kernels);

/** A typed array as a Buf of its length (no shape), for the hand-bound functions. */
Buf bufOf(napi_env env, napi_value v, const std::string& kernel, const std::string& arg);

}  // namespace arpix
