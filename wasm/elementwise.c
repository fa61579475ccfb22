// Elementwise, fused and row-wise float32 kernels. Where the ts reference computes in double and
// rounds once on storing (transcendental functions, layer norm, softmax), these do the same double
// operations in the same order, so they store the same bits; + − × ÷ √, max and min are computed
// in float32 directly, which rounds to the same value as double-then-float for these operations.

#include "arpix.h"
#include "vmath.h"
#include "fmath.h"

/** Lane 0, and lane j, of four floats. */
static inline float f4_1(v128_t v) { return wasm_f32x4_extract_lane(v, 0); }
static inline float f4_lane(v128_t v, int j) {
  float t[4];
  wasm_v128_store(t, v);
  return t[j];
}

/** Four floats through a double function of two lanes, twice. */
#define MAP4(fn, v) to4f(fn(lo2d(v)), fn(hi2d(v)))

// The op codes are the indices of UNARY_OPS and BINARY_OPS in src/kernels/contracts.ts.
enum { U_NEG, U_EXP, U_LOG, U_SQRT, U_RSQRT, U_ABS, U_SIGN, U_SQUARE, U_RECIPROCAL, U_TANH, U_SIGMOID, U_RELU, U_ELU, U_SOFTPLUS, U_LOGSIGMOID };
enum { B_ADD, B_SUB, B_MUL, B_DIV, B_POW, B_MAXIMUM, B_MINIMUM, B_GREATER, B_GREATER_EQUAL, B_LESS, B_LESS_EQUAL, B_EQUAL, B_NOT_EQUAL };

static inline double elu(double x) { return x > 0 ? x : pm_expm1(x); }

static double unary_scalar(int op, double x) {
  switch (op) {
    case U_EXP: return pm_exp(x);
    case U_LOG: return pm_log(x);
    case U_RSQRT: return 1 / pm_sqrt(x);
    case U_SIGN: return x > 0 ? 1 : x < 0 ? -1 : 0;
    case U_TANH: return pm_tanh(x);
    case U_SIGMOID: return pm_sigmoid(x);
    case U_RELU: return x > 0 ? x : 0;
    case U_ELU: return elu(x);
    case U_SOFTPLUS: return pm_softplus(x);
    case U_LOGSIGMOID: return -pm_softplus(-x);
    default: return x;
  }
}

EXPORT(unary_f32) void unary_f32(const float *x, float *out, int n, int op) {
  int i = 0;
  switch (op) {
    case U_NEG: for (; i + 4 <= n; i += 4) wasm_v128_store(out + i, wasm_f32x4_neg(wasm_v128_load(x + i))); break;
    case U_ABS: for (; i + 4 <= n; i += 4) wasm_v128_store(out + i, wasm_f32x4_abs(wasm_v128_load(x + i))); break;
    case U_SQRT: for (; i + 4 <= n; i += 4) wasm_v128_store(out + i, wasm_f32x4_sqrt(wasm_v128_load(x + i))); break;
    case U_SQUARE: for (; i + 4 <= n; i += 4) { v128_t v = wasm_v128_load(x + i); wasm_v128_store(out + i, wasm_f32x4_mul(v, v)); } break;
    case U_RECIPROCAL: for (; i + 4 <= n; i += 4) wasm_v128_store(out + i, wasm_f32x4_div(wasm_f32x4_splat(1), wasm_v128_load(x + i))); break;
    case U_EXP: for (; i + 4 <= n; i += 4) wasm_v128_store(out + i, MAP4(exp2d, wasm_v128_load(x + i))); break;
    case U_TANH: for (; i + 4 <= n; i += 4) wasm_v128_store(out + i, MAP4(tanh2d, wasm_v128_load(x + i))); break;
    case U_SIGMOID: for (; i + 4 <= n; i += 4) wasm_v128_store(out + i, MAP4(sigmoid2d, wasm_v128_load(x + i))); break;
    case U_ELU: for (; i + 4 <= n; i += 4) wasm_v128_store(out + i, MAP4(elu2d, wasm_v128_load(x + i))); break;
    case U_RELU: {
      // x > 0 ? x : 0 — NaN and −0 give +0, as the reference's comparison does.
      const v128_t zero = wasm_f32x4_splat(0);
      for (; i + 4 <= n; i += 4) { v128_t v = wasm_v128_load(x + i); wasm_v128_store(out + i, wasm_v128_and(v, wasm_f32x4_gt(v, zero))); }
      break;
    }
    default: break;
  }
  for (; i < n; i++) {
    float v = x[i];
    switch (op) {
      case U_NEG: out[i] = -v; break;
      case U_ABS: out[i] = __builtin_fabsf(v); break;
      case U_SQRT: out[i] = __builtin_sqrtf(v); break;
      case U_SQUARE: out[i] = v * v; break;
      case U_RECIPROCAL: out[i] = 1.0f / v; break;
      default: out[i] = (float)unary_scalar(op, v);
    }
  }
}

EXPORT(clamp_f32) void clamp_f32(const float *x, float *out, int n, double lo, double hi) {
  for (int i = 0; i < n; i++) out[i] = (float)js_min(js_max(x[i], lo), hi);
}

static inline v128_t binary4(int op, v128_t a, v128_t b) {
  const v128_t one = wasm_f32x4_splat(1);
  switch (op) {
    case B_ADD: return wasm_f32x4_add(a, b);
    case B_SUB: return wasm_f32x4_sub(a, b);
    case B_MUL: return wasm_f32x4_mul(a, b);
    case B_DIV: return wasm_f32x4_div(a, b);
    case B_MAXIMUM: return wasm_f32x4_max(a, b);
    case B_MINIMUM: return wasm_f32x4_min(a, b);
    case B_GREATER: return wasm_v128_and(wasm_f32x4_gt(a, b), one);
    case B_GREATER_EQUAL: return wasm_v128_and(wasm_f32x4_ge(a, b), one);
    case B_LESS: return wasm_v128_and(wasm_f32x4_lt(a, b), one);
    case B_LESS_EQUAL: return wasm_v128_and(wasm_f32x4_le(a, b), one);
    case B_EQUAL: return wasm_v128_and(wasm_f32x4_eq(a, b), one);
    default: return wasm_v128_and(wasm_f32x4_ne(a, b), one);
  }
}

static inline float binary1(int op, float a, float b) {
  return wasm_f32x4_extract_lane(binary4(op, wasm_f32x4_splat(a), wasm_f32x4_splat(b)), 0);
}

/** One contiguous run of n outputs, a and b stepping by sa and sb (each 0 or 1). */
static void binary_run(int op, const float *a, int sa, const float *b, int sb, float *out, int n) {
  int i = 0;
  if (sa && sb) {
    for (; i + 4 <= n; i += 4) wasm_v128_store(out + i, binary4(op, wasm_v128_load(a + i), wasm_v128_load(b + i)));
  } else if (sa) {
    v128_t bv = wasm_f32x4_splat(b[0]);
    for (; i + 4 <= n; i += 4) wasm_v128_store(out + i, binary4(op, wasm_v128_load(a + i), bv));
  } else if (sb) {
    v128_t av = wasm_f32x4_splat(a[0]);
    for (; i + 4 <= n; i += 4) wasm_v128_store(out + i, binary4(op, av, wasm_v128_load(b + i)));
  }
  for (; i < n; i++) out[i] = binary1(op, a[sa * i], b[sb * i]);
}

/**
 * out = op(a, b) broadcast. dims [rank] is out's shape with adjacent axes merged where both
 * operands allow, strides [2·rank] the element strides of a then b on those axes (0 where
 * broadcast); the last axis's strides are 0 or 1.
 */
EXPORT(binary_f32) void binary_f32(const float *a, const float *b, float *out, int op, int rank, const int *dims, const int *strides) {
  if (rank == 0) {
    out[0] = binary1(op, a[0], b[0]);
    return;
  }
  const int *sa = strides, *sb = strides + rank;
  int inner = dims[rank - 1];
  int outer = 1;
  for (int d = 0; d < rank - 1; d++) outer *= dims[d];
  if (inner == 0 || outer == 0) return;
  int idx[8] = {0};
  int oa = 0, ob = 0;
  for (int o = 0; o < outer; o++) {
    binary_run(op, a + oa, sa[rank - 1], b + ob, sb[rank - 1], out + (long)o * inner, inner);
    for (int d = rank - 2; d >= 0; d--) {
      idx[d]++;
      oa += sa[d];
      ob += sb[d];
      if (idx[d] < dims[d]) break;
      oa -= sa[d] * dims[d];
      ob -= sb[d] * dims[d];
      idx[d] = 0;
    }
  }
}

// ---- fused activations (src/backends/ts/fused.ts) ----

EXPORT(gate_f32) void gate_f32(const float *x, float *out, int rows, int c) {
  for (int r = 0; r < rows; r++) {
    const float *a = x + 2L * r * c, *b = a + c;
    float *o = out + (long)r * c;
    int i = 0;
    for (; i + 4 <= c; i += 4) {
      wasm_v128_store(o + i, wasm_f32x4_mul(tanhf4(wasm_v128_load(a + i)), sigmoidf4(wasm_v128_load(b + i))));
    }
    for (; i < c; i++) o[i] = f4_1(wasm_f32x4_mul(tanhf4(F4(a[i])), sigmoidf4(F4(b[i]))));
  }
}

EXPORT(gated_residual_f32) void gated_residual_f32(const float *x, const float *h, float *out, int rows, int c) {
  for (int r = 0; r < rows; r++) {
    const float *a = h + 2L * r * c, *b = a + c, *xr = x + (long)r * c;
    float *o = out + (long)r * c;
    int i = 0;
    for (; i + 4 <= c; i += 4) {
      wasm_v128_store(o + i, wasm_f32x4_add(wasm_v128_load(xr + i), wasm_f32x4_mul(wasm_v128_load(a + i), sigmoidf4(wasm_v128_load(b + i)))));
    }
    for (; i < c; i++) o[i] = xr[i] + a[i] * f4_1(sigmoidf4(F4(b[i])));
  }
}

EXPORT(concat_elu_f32) void concat_elu_f32(const float *x, float *out, int rows, int c) {
  for (int r = 0; r < rows; r++) {
    const float *xr = x + (long)r * c;
    float *o = out + 2L * r * c;
    int i = 0;
    for (; i + 4 <= c; i += 4) {
      v128_t v = wasm_v128_load(xr + i);
      wasm_v128_store(o + i, eluf4(v));
      wasm_v128_store(o + c + i, eluf4(wasm_f32x4_neg(v)));
    }
    for (; i < c; i++) {
      o[i] = f4_1(eluf4(F4(xr[i])));
      o[c + i] = f4_1(eluf4(F4(-xr[i])));
    }
  }
}

// ---- row-wise: softmax, cross-entropy, layer norm, GELU ----

EXPORT(softmax_last_f32) void softmax_last_f32(const float *x, float *out, int rows, int k, int log_out) {
  for (int j = 0; j < rows; j++) {
    const float *xr = x + (long)j * k;
    float *o = out + (long)j * k;
    double m = -__builtin_inf();
    for (int i = 0; i < k; i++) m = js_max(m, xr[i]);
    double s = 0;
    int i = 0;
    v128_t mv = D2(m);
    for (; i + 2 <= k; i += 2) {
      v128_t e = exp2d(wasm_f64x2_sub(wasm_f64x2_promote_low_f32x4(wasm_v128_load64_zero(xr + i)), mv));
      s += wasm_f64x2_extract_lane(e, 0);
      s += wasm_f64x2_extract_lane(e, 1);
    }
    for (; i < k; i++) s += pm_exp(xr[i] - m);
    if (log_out) {
      double ls = pm_log(s);
      for (i = 0; i < k; i++) o[i] = (float)(xr[i] - m - ls);
    } else {
      v128_t sv = D2(s);
      for (i = 0; i + 2 <= k; i += 2) {
        v128_t e = exp2d(wasm_f64x2_sub(wasm_f64x2_promote_low_f32x4(wasm_v128_load64_zero(xr + i)), mv));
        wasm_v128_store64_lane(o + i, wasm_f32x4_demote_f64x2_zero(wasm_f64x2_div(e, sv)), 0);
      }
      for (; i < k; i++) o[i] = (float)(pm_exp(xr[i] - m) / s);
    }
  }
}

EXPORT(softmax_cross_entropy_f32) void softmax_cross_entropy_f32(const float *x, const int *targets, float *loss, float *probs, int rows, int k) {
  for (int j = 0; j < rows; j++) {
    const float *xr = x + (long)j * k;
    float *p = probs + (long)j * k;
    double m = -__builtin_inf();
    for (int i = 0; i < k; i++) m = js_max(m, xr[i]);
    double s = 0;
    int i = 0;
    for (; i + 2 <= k; i += 2) {
      v128_t e = exp2d(wasm_f64x2_sub(wasm_f64x2_promote_low_f32x4(wasm_v128_load64_zero(xr + i)), D2(m)));
      wasm_v128_store64_lane(p + i, wasm_f32x4_demote_f64x2_zero(e), 0);
      s += wasm_f64x2_extract_lane(e, 0);
      s += wasm_f64x2_extract_lane(e, 1);
    }
    for (; i < k; i++) {
      double e = pm_exp(xr[i] - m);
      p[i] = (float)e;
      s += e;
    }
    for (i = 0; i < k; i++) p[i] = (float)(p[i] / s);
    loss[j] = (float)(m + pm_log(s) - xr[targets[j]]);
  }
}

EXPORT(layer_norm_f32) void layer_norm_f32(const float *x, const float *weight, const float *bias, float *out, float *mean, float *rstd, int rows, int c, double eps, int rms) {
  for (int r = 0; r < rows; r++) {
    const float *xr = x + (long)r * c;
    double mu = 0;
    if (!rms) {
      for (int i = 0; i < c; i++) mu += xr[i];
      mu /= c;
      mean[r] = (float)mu;
    }
    double sq = 0;
    for (int i = 0; i < c; i++) sq += (xr[i] - mu) * (xr[i] - mu);
    double rs = 1 / pm_sqrt(sq / c + eps);
    rstd[r] = (float)rs;
    for (int i = 0; i < c; i++) {
      double y = (xr[i] - mu) * rs;
      if (weight) y *= weight[i];
      if (bias) y += bias[i];
      out[(long)r * c + i] = (float)y;
    }
  }
}

EXPORT(gelu_f32) void gelu_f32(const float *x, float *out, int n, int tanh_form) {
  const double SQRT_2_OVER_PI = pm_sqrt(2 / 3.141592653589793);
  const double GELU_C = 0.044715;
  if (tanh_form) {
    int i = 0;
    for (; i < n; i += 4) {
      // the last group reads up to three floats past x (scratch) and keeps only its own
      v128_t v = wasm_v128_load(x + i);
      v128_t cube = wasm_f32x4_mul(wasm_f32x4_mul(wasm_f32x4_mul(F4((float)GELU_C), v), v), v);
      v128_t t = tanhf4(wasm_f32x4_mul(F4((float)SQRT_2_OVER_PI), wasm_f32x4_add(v, cube)));
      v128_t y = wasm_f32x4_mul(wasm_f32x4_mul(F4(0.5f), v), wasm_f32x4_add(F4(1), t));
      if (i + 4 <= n) wasm_v128_store(out + i, y);
      else for (int j = 0; i + j < n; j++) out[i + j] = f4_lane(y, j);
    }
    return;
  }
  for (int i = 0; i < n; i++) {
    double v = x[i];
    out[i] = (float)(0.5 * v * (1 + pm_erf(v / 1.4142135623730951)));
  }
}

// ---- reductions ----

enum { R_SUM, R_MAX, R_MIN };

/**
 * reduce (keep-dims) of x [dims] into out: ostrides are out's element strides on x's axes, 0 on
 * the reduced ones. Like the reference, every element of x is combined into its output element
 * in x's row-major order, in float32 (the reference stores each partial result into a float32
 * array, which rounds the same way), so the bits are the reference's.
 */
EXPORT(reduce_f32) void reduce_f32(const float *x, float *out, int out_size, int op, int rank, const int *dims, const int *ostrides) {
  float init = op == R_SUM ? 0.0f : op == R_MAX ? -__builtin_inff() : __builtin_inff();
  for (int i = 0; i < out_size; i++) out[i] = init;
  if (rank == 0) {
    out[0] = binary1(op == R_SUM ? B_ADD : op == R_MAX ? B_MAXIMUM : B_MINIMUM, out[0], x[0]);
    return;
  }
  int bop = op == R_SUM ? B_ADD : op == R_MAX ? B_MAXIMUM : B_MINIMUM;
  int inner = dims[rank - 1], sin = ostrides[rank - 1];
  long outer = 1;
  for (int d = 0; d < rank - 1; d++) outer *= dims[d];
  if (inner == 0 || outer == 0) return;
  int idx[8] = {0};
  long io = 0;
  const float *xp = x;
  for (long o = 0; o < outer; o++, xp += inner) {
    if (sin == 0) {
      float acc = out[io];
      for (int j = 0; j < inner; j++) acc = binary1(bop, acc, xp[j]);
      out[io] = acc;
    } else {
      binary_run(bop, out + io, 1, xp, 1, out + io, inner);
    }
    for (int d = rank - 2; d >= 0; d--) {
      idx[d]++;
      io += ostrides[d];
      if (idx[d] < dims[d]) break;
      io -= (long)ostrides[d] * dims[d];
      idx[d] = 0;
    }
  }
}

// The op codes are the indices of UNARY_GRAD_OPS in src/kernels/contracts.ts.
enum { G_EXP, G_TANH, G_SIGMOID, G_RELU, G_ELU, G_SOFTPLUS, G_LOGSIGMOID };

/** dx = g · op'(x) for two lanes, in the reference's double operations (see unary_backward_f32). */
static inline v128_t unary_grad2d(int op, v128_t x, v128_t y, v128_t g) {
  const v128_t one = D2(1), zero = D2(0);
  switch (op) {
    case G_EXP: return wasm_f64x2_mul(g, y);
    case G_TANH: return wasm_f64x2_mul(g, wasm_f64x2_sub(one, wasm_f64x2_mul(y, y)));
    case G_SIGMOID: return wasm_f64x2_mul(g, wasm_f64x2_mul(y, wasm_f64x2_sub(one, y)));
    case G_RELU: return wasm_f64x2_mul(g, sel(wasm_f64x2_gt(x, zero), one, zero));
    case G_ELU: return wasm_f64x2_mul(g, sel(wasm_f64x2_gt(x, zero), one, wasm_f64x2_add(y, one)));
    case G_SOFTPLUS: return wasm_f64x2_mul(g, sigmoid2d(x));
    default: return wasm_f64x2_mul(g, sigmoid2d(wasm_f64x2_neg(x)));
  }
}

static inline v128_t unary_grad4(int op, v128_t x, v128_t y, v128_t g) {
  // One product of floats rounds to the same float in float32 as in double.
  if (op == G_EXP) return wasm_f32x4_mul(g, y);
  if (op == G_RELU) return wasm_f32x4_mul(g, sel(wasm_f32x4_gt(x, wasm_f32x4_splat(0)), wasm_f32x4_splat(1), wasm_f32x4_splat(0)));
  return to4f(unary_grad2d(op, lo2d(x), lo2d(y), lo2d(g)), unary_grad2d(op, hi2d(x), hi2d(y), hi2d(g)));
}

/**
 * unaryBackward: dx = g · op'(x) from x, y = op(x) and g, each computed in double from the floats
 * and rounded once on storing, as the reference does (the same bits).
 */
EXPORT(unary_backward_f32) void unary_backward_f32(const float *x, const float *y, const float *g, float *dx, int n, int op) {
  int i = 0;
  for (; i + 4 <= n; i += 4) wasm_v128_store(dx + i, unary_grad4(op, wasm_v128_load(x + i), wasm_v128_load(y + i), wasm_v128_load(g + i)));
  if (i == n) return;
  float xt[4] = {0}, yt[4] = {0}, gt[4] = {0}, out[4];
  for (int j = 0; i + j < n; j++) {
    xt[j] = x[i + j];
    yt[j] = y[i + j];
    gt[j] = g[i + j];
  }
  wasm_v128_store(out, unary_grad4(op, wasm_v128_load(xt), wasm_v128_load(yt), wasm_v128_load(gt)));
  for (int j = 0; i + j < n; j++) dx[i + j] = out[j];
}
