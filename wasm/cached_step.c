// Row LSTM's cached step (rowLstmStep in src/kernels/contracts.ts): one pixel, every layer, in one
// call. The TypeScript side keeps the plan resident — its weights packed for gemm_packed, and
// mirrors of its state arrays — and copies in, before each call, the state this pixel reads, and
// out, after it, what the pixel wrote. The products and the cell's gates are float32 SIMD (fmath.h).

#include "arpix.h"
#include "fmath.h"

// The plan descriptor: int32 fields at these indices (src/backends/wasm/row-lstm.ts writes it).
enum {
  P_N, P_H, P_W, P_C, P_HID, P_K, P_L, P_Y, P_X, P_OUT, P_OUT_HIDDEN,
  P_IMAGE, P_FIRST_TAPS, P_T0, P_FIRST_W, P_FIRST_B, P_SKIP_W, P_SKIP_B, P_OH_W, P_OH_B, P_OUT_W, P_OUT_B,
  P_LOGITS, P_SCRATCH, P_LAYERS = 32,
};
// Each layer's fields, from P_LAYERS + l·LAYER_FIELDS.
enum { L_ROWS, L_TAPS, L_TI, L_GATES, L_GATE_BIAS, L_OUT_W, L_OUT_B, L_PREV_H, L_PREV_C, L_CUR_H, L_CUR_C, LAYER_FIELDS };

#define PTR(type, v) ((type)(uintptr_t)(v))

static void relu_inplace(float *a, int n) {
  for (int i = 0; i < n; i++) a[i] = a[i] > 0 ? a[i] : 0;
}

EXPORT(row_lstm_step_f32) void row_lstm_step_f32(const int *plan) {
  int n = plan[P_N], H = plan[P_H], W = plan[P_W], C = plan[P_C], h = plan[P_HID], k = plan[P_K], L = plan[P_L];
  int y = plan[P_Y], x = plan[P_X], P = plan[P_OUT], oh = plan[P_OUT_HIDDEN];
  int f2 = 2 * h, g4 = 4 * h, r = k / 2, t0 = plan[P_T0];
  const float *image = PTR(const float *, plan[P_IMAGE]);
  const int *first_taps = PTR(const int *, plan[P_FIRST_TAPS]);
  float *scratch = PTR(float *, plan[P_SCRATCH]);

  // The scratch: x0 [n, t0·C] | f [n, 2h] | taps [n, K] | z [n, 4h] | hx [n, h] | skipIn [n, L·2h] | two hidden [n, max(2h, oh)].
  int kmax = 0;
  for (int l = 0; l < L; l++) {
    const int *lp = plan + P_LAYERS + l * LAYER_FIELDS;
    int kk = lp[L_TI] * f2 + k * h;
    if (kk > kmax) kmax = kk;
  }
  int wide = f2 > oh ? f2 : oh;
  float *x0 = scratch;
  float *f = x0 + n * t0 * C + 4;
  float *taps = f + n * f2 + 4;
  float *z = taps + n * kmax + 4;
  float *hx = z + n * g4 + 4;
  float *skip_in = hx + n * h + 4;
  float *hid1 = skip_in + n * L * f2 + 4;
  float *hid2 = hid1 + n * wide + 4;

  for (int i = 0; i < n; i++) {
    for (int t = 0; t < t0; t++) {
      int yy = y + first_taps[2 * t], xx = x + first_taps[2 * t + 1];
      int ok = yy >= 0 && yy < H && xx >= 0 && xx < W;
      for (int c = 0; c < C; c++) x0[(i * t0 + t) * C + c] = ok ? image[(((long)i * H + yy) * W + xx) * C + c] : 0.0f;
    }
  }
  gemm_packed(x0, t0 * C, n, t0 * C, PTR(const float *, plan[P_FIRST_W]), f2, f, f2, PTR(const float *, plan[P_FIRST_B]), 0);

  for (int l = 0; l < L; l++) {
    const int *lp = plan + P_LAYERS + l * LAYER_FIELDS;
    float *input = PTR(float *, lp[L_ROWS]);
    const int *input_taps = PTR(const int *, lp[L_TAPS]);
    int ti = lp[L_TI];
    int K = ti * f2 + k * h;
    const float *prev_h = PTR(const float *, lp[L_PREV_H]), *prev_c = PTR(const float *, lp[L_PREV_C]);
    float *cur_h = PTR(float *, lp[L_CUR_H]), *cur_c = PTR(float *, lp[L_CUR_C]);
    for (int i = 0; i < n; i++) for (int c = 0; c < f2; c++) input[((long)i * W + x) * f2 + c] = f[i * f2 + c];
    for (int i = 0; i < n; i++) {
      float *ti_row = taps + (long)i * K;
      for (int t = 0; t < ti; t++) {
        int xx = x + input_taps[t];
        for (int c = 0; c < f2; c++) ti_row[t * f2 + c] = xx >= 0 ? input[((long)i * W + xx) * f2 + c] : 0.0f;
      }
      for (int kk = 0; kk < k; kk++) {
        int xx = x - r + kk;
        int ok = xx >= 0 && xx < W;
        for (int c = 0; c < h; c++) ti_row[ti * f2 + kk * h + c] = ok ? prev_h[((long)i * W + xx) * h + c] : 0.0f;
      }
    }
    // z = gateBias (each image its own row) + taps · gates
    const float *gate_bias = PTR(const float *, lp[L_GATE_BIAS]);
    for (int i = 0; i < n * g4; i++) z[i] = gate_bias[i];
    gemm_packed(taps, K, n, K, PTR(const float *, lp[L_GATES]), g4, z, g4, 0, 1);
    for (int i = 0; i < n; i++) {
      long at = ((long)i * W + x) * h;
      const float *zi = z + i * g4;
      for (int j = 0; j < h; j += 4) {
        // groups of four channels; past h they read the next gate block (or scratch) and store nothing
        v128_t o = sigmoidf4(wasm_v128_load(zi + j)), fg = sigmoidf4(wasm_v128_load(zi + h + j));
        v128_t ig = sigmoidf4(wasm_v128_load(zi + 2 * h + j)), g = tanhf4(wasm_v128_load(zi + 3 * h + j));
        float pc[4] = {0, 0, 0, 0};
        int m = h - j < 4 ? h - j : 4;
        for (int q = 0; q < m; q++) pc[q] = prev_c[at + j + q];
        v128_t c = wasm_f32x4_add(wasm_f32x4_mul(fg, wasm_v128_load(pc)), wasm_f32x4_mul(ig, g));
        v128_t hv = wasm_f32x4_mul(o, tanhf4(c));
        float cs[4], hs[4];
        wasm_v128_store(cs, c);
        wasm_v128_store(hs, hv);
        for (int q = 0; q < m; q++) {
          cur_c[at + j + q] = cs[q];
          cur_h[at + j + q] = hs[q];
          hx[i * h + j + q] = hs[q];
        }
      }
    }
    // f = input at x + output(h): the next layer's input, and this layer's skip term
    for (int i = 0; i < n; i++) for (int c = 0; c < f2; c++) f[i * f2 + c] = input[((long)i * W + x) * f2 + c];
    gemm_packed(hx, h, n, h, PTR(const float *, lp[L_OUT_W]), f2, f, f2, PTR(const float *, lp[L_OUT_B]), 1);
    for (int i = 0; i < n; i++) for (int c = 0; c < f2; c++) skip_in[((long)i * L + l) * f2 + c] = f[i * f2 + c];
  }
  gemm_packed(skip_in, L * f2, n, L * f2, PTR(const float *, plan[P_SKIP_W]), f2, hid1, f2, PTR(const float *, plan[P_SKIP_B]), 0);
  relu_inplace(hid1, n * f2);
  gemm_packed(hid1, f2, n, f2, PTR(const float *, plan[P_OH_W]), oh, hid2, oh, PTR(const float *, plan[P_OH_B]), 0);
  relu_inplace(hid2, n * oh);
  gemm_packed(hid2, oh, n, oh, PTR(const float *, plan[P_OUT_W]), P, PTR(float *, plan[P_LOGITS]), P, PTR(const float *, plan[P_OUT_B]), 0);
}
