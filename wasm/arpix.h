// Shared declarations of arpix's WebAssembly kernels (built by scripts/build-wasm.mjs into
// build/wasm/arpix.wasm; src/backends/wasm/ is the TypeScript side). Freestanding C: no libc, every
// function it needs is here or in its own file. Pointers are offsets into the module's one linear
// memory, which the TypeScript side fills before a call and reads after it.
//
// Determinism: WebAssembly's float arithmetic is IEEE 754 without fused multiply-adds (the build
// passes -ffp-contract=off, and no relaxed-simd), and every reduction here runs in a fixed order
// that depends on the shapes alone, so one .wasm gives the same bits on every machine.

#ifndef ARPIX_WASM_H
#define ARPIX_WASM_H

#include <stdint.h>
#include <wasm_simd128.h>

#define EXPORT(name) __attribute__((export_name(#name))) 

// ---- portable math (math.c): the ts reference's functions, in the same double operations ----

void arpix_math_init(void);
double pm_exp(double x);
double pm_expm1(double x);
double pm_log(double x);
double pm_log1p(double x);
double pm_tanh(double x);
double pm_sigmoid(double x);
double pm_softplus(double x);
double pm_erf(double x);

static inline double pm_floor(double x) { return __builtin_floor(x); }
static inline double pm_fabs(double x) { return __builtin_fabs(x); }
static inline double pm_sqrt(double x) { return __builtin_sqrt(x); }
/** Math.max / Math.min of JavaScript: NaN when either is NaN, +0 above −0. */
static inline double js_max(double a, double b) {
  if (a != a || b != b) return a + b;
  if (a == b) return (a == 0 && __builtin_signbit(a)) ? b : a;
  return a > b ? a : b;
}

static inline double js_min(double a, double b) {
  if (a != a || b != b) return a + b;
  if (a == b) return (a == 0 && __builtin_signbit(b)) ? b : a;
  return a < b ? a : b;
}

// ---- matrix products (gemm.c) ----

/** Columns per packed panel of a product's right operand. */
#define NR 8

/** B as [K, N] (or [N, K] when transB) → panels of NR columns, zero past N: bp[(p·K + k)·NR + j]. */
void pack_b(const float *b, int k, int n, int trans_b, float *bp);

/**
 * out[M, N] = init + a[M, K] · B, B packed by pack_b; `a` rows `lda` apart. init: out's values when
 * accumulate, else 0; then + bias[N] when given. Each output sums its K products in order.
 */
void gemm_packed(const float *a, int lda, int m, int k, const float *bp, int n, float *out, int ldo, const float *bias, int accumulate);

// ---- threads (threads.c) ----

/** One work item of a parallel loop: item `item`, run by worker `worker` (0 … arpix_workers() − 1). */
typedef void (*par_body)(void *ctx, int item, int worker);

/**
 * Runs body(ctx, i, worker) for i = 0 … items − 1, spread over the pool's threads in the threads
 * build (ARPIX_THREADS), inline otherwise, or when the pool has one thread, the loop is nested in
 * another, or items · work (multiply-adds an item costs) is too small to be worth waking helpers.
 * The items must write disjoint outputs: each is computed by the same code whatever thread runs it,
 * so the bits never depend on the thread count.
 */
void parallel_for(int items, double work, par_body body, void *ctx);

/** Workers a parallel loop started now may use (the size of per-worker scratch a caller gives). */
int arpix_workers(void);

void *memcpy(void *dst, const void *src, unsigned long n);
void *memset(void *dst, int c, unsigned long n);

#endif
