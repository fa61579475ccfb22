// lstmScan's forward pass (src/kernels/contracts.ts): the whole recurrence of a Row LSTM or a
// Diagonal BiLSTM in one call. Step t's pre-activations for every (image, position) row are one
// product: xg[t] plus the previous step's h at positions l − pad … l − pad + k − 1 (zeros off the
// row, h0 before the first step) times w [k·H, 4H] packed, gathered as conv2d gathers its taps;
// then the cell in float32 SIMD (fmath.h). The sums run in tap order, fixed by the shapes.

#include "arpix.h"
#include "fmath.h"

void gather_gemm(float *const *orows, int mv, const float *const *rows, int taps, int cin, const float *wp, int n, int accumulate);

EXPORT(lstm_scan_f32) void lstm_scan_f32(const float *xg, const float *wp, const float *h0, const float *c0, float *hs, float *cs, float *acts, int T, int B, int L, int H, int k, int pad, const float **rows, float *zero) {
  int G = 4 * H;
  long BL = (long)B * L;
  for (int i = 0; i < H; i++) zero[i] = 0;
  for (int t = 0; t < T; t++) {
    float *z = acts + t * BL * G;
    for (long i = 0; i < BL * G; i++) z[i] = xg[t * BL * G + i];
    for (long q = 0; q < BL; q += 4) {
      int mv = BL - q < 4 ? (int)(BL - q) : 4;
      float *orows[4];
      for (int r = 0; r < 4; r++) {
        long row = q + (r < mv ? r : mv - 1);
        orows[r] = z + row * G;
        int b = (int)(row / L), l = (int)(row - (long)b * L);
        for (int kk = 0; kk < k; kk++) {
          int p = l - pad + kk;
          const float *src = zero;
          if (p >= 0 && p < L) src = t == 0 ? h0 : hs + (((long)(t - 1) * B + b) * L + p) * H;
          rows[4 * kk + r] = src;
        }
      }
      gather_gemm(orows, mv, (const float *const *)rows, k, H, wp, G, 1);
    }
    // The cell: gates [o, f, i, g] in place of z, c and h.
    for (long row = 0; row < BL; row++) {
      float *zr = z + row * G;
      const float *cp = t == 0 ? c0 : cs + ((t - 1) * BL + row) * H;
      float *cr = cs + (t * BL + row) * H, *hr = hs + (t * BL + row) * H;
      for (int j = 0; j < H; j += 4) {
        int m = H - j < 4 ? H - j : 4;
        float in[4][4] = {{0}}, cprev[4] = {0};
        for (int q = 0; q < m; q++) {
          for (int s = 0; s < 4; s++) in[s][q] = zr[s * H + j + q];
          cprev[q] = cp[j + q];
        }
        v128_t o = sigmoidf4(wasm_v128_load(in[0])), f = sigmoidf4(wasm_v128_load(in[1]));
        v128_t ig = sigmoidf4(wasm_v128_load(in[2])), g = tanhf4(wasm_v128_load(in[3]));
        v128_t c = wasm_f32x4_add(wasm_f32x4_mul(f, wasm_v128_load(cprev)), wasm_f32x4_mul(ig, g));
        v128_t h = wasm_f32x4_mul(o, tanhf4(c));
        float out[6][4];
        wasm_v128_store(out[0], o);
        wasm_v128_store(out[1], f);
        wasm_v128_store(out[2], ig);
        wasm_v128_store(out[3], g);
        wasm_v128_store(out[4], c);
        wasm_v128_store(out[5], h);
        for (int q = 0; q < m; q++) {
          for (int s = 0; s < 4; s++) zr[s * H + j + q] = out[s][q];
          cr[j + q] = out[4][q];
          hr[j + q] = out[5][q];
        }
      }
    }
  }
}
