// Matrix products and convolutions in float32 SIMD. The right operand (weights) is packed once into
// panels of NR = 8 columns; a block of four output rows by one panel keeps its 4 × 8 sums in eight
// vector registers, and each output adds its K products in order (k = 0, 1, …) whatever the
// blocking, so an output's value depends on its inputs alone, not on M or on where it sits.
//
// A convolution is the same product with each output pixel's row of the left operand gathered
// tap by tap: four row pointers per kernel tap, pointing at a zero row where the tap falls in the
// padding.

#include "arpix.h"

EXPORT(pack_b) void pack_b(const float *b, int k, int n, int trans_b, float *bp) {
  int panels = (n + NR - 1) / NR;
  for (int p = 0; p < panels; p++) {
    float *dst = bp + (long)p * k * NR;
    for (int kk = 0; kk < k; kk++) {
      for (int j = 0; j < NR; j++) {
        int col = p * NR + j;
        dst[kk * NR + j] = col >= n ? 0.0f : trans_b ? b[(long)col * k + kk] : b[(long)kk * n + col];
      }
    }
  }
}

/**
 * Sums for 4 rows × 8 columns over `taps` groups of `cin` inputs: row r's inputs of tap t start at
 * rows[t·4 + r]; the panel holds the taps' weights one after another ([taps·cin, 8]).
 */
static inline void block_4x8(const float *const *rows, int taps, int cin, const float *panel, v128_t acc[8]) {
  v128_t c00 = acc[0], c01 = acc[1], c10 = acc[2], c11 = acc[3], c20 = acc[4], c21 = acc[5], c30 = acc[6], c31 = acc[7];
  const float *w = panel;
  for (int t = 0; t < taps; t++) {
    const float *x0 = rows[4 * t], *x1 = rows[4 * t + 1], *x2 = rows[4 * t + 2], *x3 = rows[4 * t + 3];
    for (int i = 0; i < cin; i++) {
      v128_t b0 = wasm_v128_load(w), b1 = wasm_v128_load(w + 4);
      w += NR;
      v128_t a = wasm_v128_load32_splat(x0 + i);
      c00 = wasm_f32x4_add(c00, wasm_f32x4_mul(a, b0));
      c01 = wasm_f32x4_add(c01, wasm_f32x4_mul(a, b1));
      a = wasm_v128_load32_splat(x1 + i);
      c10 = wasm_f32x4_add(c10, wasm_f32x4_mul(a, b0));
      c11 = wasm_f32x4_add(c11, wasm_f32x4_mul(a, b1));
      a = wasm_v128_load32_splat(x2 + i);
      c20 = wasm_f32x4_add(c20, wasm_f32x4_mul(a, b0));
      c21 = wasm_f32x4_add(c21, wasm_f32x4_mul(a, b1));
      a = wasm_v128_load32_splat(x3 + i);
      c30 = wasm_f32x4_add(c30, wasm_f32x4_mul(a, b0));
      c31 = wasm_f32x4_add(c31, wasm_f32x4_mul(a, b1));
    }
  }
  acc[0] = c00; acc[1] = c01; acc[2] = c10; acc[3] = c11; acc[4] = c20; acc[5] = c21; acc[6] = c30; acc[7] = c31;
}

/**
 * The sums' starting values for rows out[r] (r < m) and columns col … col + nv − 1: what out holds
 * when accumulating, else 0; then + bias.
 */
static inline void block_init(float *const *out, int m, int col, int nv, const float *bias, int accumulate, v128_t acc[8]) {
  if (nv == NR && !accumulate) {
    v128_t b0 = bias ? wasm_v128_load(bias + col) : wasm_f32x4_splat(0);
    v128_t b1 = bias ? wasm_v128_load(bias + col + 4) : wasm_f32x4_splat(0);
    for (int r = 0; r < 4; r++) {
      acc[2 * r] = b0;
      acc[2 * r + 1] = b1;
    }
    return;
  }
  if (nv == NR && !bias) {
    for (int r = 0; r < 4; r++) {
      const float *o = out[r < m ? r : m - 1] + col;
      acc[2 * r] = wasm_v128_load(o);
      acc[2 * r + 1] = wasm_v128_load(o + 4);
    }
    return;
  }
  float tmp[NR];
  for (int r = 0; r < 4; r++) {
    for (int j = 0; j < NR; j++) {
      float v = (accumulate && r < m && j < nv) ? out[r][col + j] : 0.0f;
      if (bias && j < nv) v += bias[col + j];
      tmp[j] = v;
    }
    acc[2 * r] = wasm_v128_load(tmp);
    acc[2 * r + 1] = wasm_v128_load(tmp + 4);
  }
}

static inline void block_store(float *const *out, int m, int col, int nv, const v128_t acc[8]) {
  for (int r = 0; r < m; r++) {
    float *o = out[r] + col;
    if (nv == NR) {
      wasm_v128_store(o, acc[2 * r]);
      wasm_v128_store(o + 4, acc[2 * r + 1]);
    } else {
      float tmp[NR];
      wasm_v128_store(tmp, acc[2 * r]);
      wasm_v128_store(tmp + 4, acc[2 * r + 1]);
      for (int j = 0; j < nv; j++) o[j] = tmp[j];
    }
  }
}

/**
 * Rows orows[0 … mv) of a product over n columns whose left operand is gathered: row r's inputs
 * of tap t start at rows[4·t + r] (cin floats each); weights packed over K = taps·cin; + bias
 * when given.
 */
static inline void gathered_panels(float *const *orows, int mv, const float *const *rows, int taps, int cin, const float *wp, int n, const float *bias, int accumulate) {
  int panels = (n + NR - 1) / NR;
  long K = (long)taps * cin;
  for (int p = 0; p < panels; p++) {
    int col = p * NR;
    int nv = n - col < NR ? n - col : NR;
    v128_t acc[8];
    block_init(orows, mv, col, nv, bias, accumulate, acc);
    block_4x8(rows, taps, cin, wp + (long)p * K * NR, acc);
    block_store(orows, mv, col, nv, acc);
  }
}

void gather_gemm(float *const *orows, int mv, const float *const *rows, int taps, int cin, const float *wp, int n, int accumulate) {
  gathered_panels(orows, mv, rows, taps, cin, wp, n, 0, accumulate);
}

struct gemm_job {
  const float *a, *bp, *bias;
  float *out;
  int lda, m, k, n, ldo, accumulate;
};

/** Rows 4·blk … of a product, every panel: one item of gemm_packed's loop. */
static void gemm_rows(void *ctx, int blk, int worker) {
  const struct gemm_job *j = ctx;
  int i = 4 * blk, m = j->m, k = j->k, n = j->n;
  int panels = (n + NR - 1) / NR;
  int mv = m - i < 4 ? m - i : 4;
  const float *rows[4];
  float *orows[4];
  for (int r = 0; r < 4; r++) {
    int rr = r < mv ? r : mv - 1;  // a short block repeats its last row and stores only its own
    rows[r] = j->a + (long)(i + rr) * j->lda;
    orows[r] = j->out + (long)(i + rr) * j->ldo;
  }
  for (int p = 0; p < panels; p++) {
    int col = p * NR;
    int nv = n - col < NR ? n - col : NR;
    v128_t acc[8];
    block_init(orows, mv, col, nv, j->bias, j->accumulate, acc);
    block_4x8(rows, 1, k, j->bp + (long)p * k * NR, acc);
    block_store(orows, mv, col, nv, acc);
  }
}

EXPORT(gemm_packed) void gemm_packed(const float *a, int lda, int m, int k, const float *bp, int n, float *out, int ldo, const float *bias, int accumulate) {
  struct gemm_job j = { a, bp, bias, out, lda, m, k, n, ldo, accumulate };
  parallel_for((m + 3) / 4, 4.0 * k * n, gemm_rows, &j);
}

/**
 * out[B, M, N] = op(a) · op(b) for each of `batch` products, a and b already in [M, K] row-major
 * (the TypeScript side transposes a when asked) and b packed; a_step and bp_step the elements
 * between batches (0 when shared).
 */
EXPORT(matmul_f32) void matmul_f32(const float *a, long a_step, const float *bp, long bp_step, float *out, int batch, int m, int k, int n) {
  for (int p = 0; p < batch; p++) gemm_packed(a + p * a_step, k, m, k, bp + p * bp_step, n, out + (long)p * m * n, n, 0, 0);
}

/** a [M, K] → at [K, M] (the transposed left operand of a product). */
EXPORT(transpose_f32) void transpose_f32(const float *a, int rows, int cols, float *at) {
  for (int r = 0; r < rows; r++)
    for (int c = 0; c < cols; c++) at[(long)c * rows + r] = a[(long)r * cols + c];
}

/** A convolution's operands and geometry, for its loops' items. */
struct conv_job {
  const float *x, *wp, *bias, *zero;
  float *out;
  int accumulate, data;
  int n, h, w, cin, oh, ow, cout, kh, kw, sh, sw, pt, pl, dh, dw;
};

static void conv_geom(struct conv_job *j, const int *geom) {
  j->n = geom[0]; j->h = geom[1]; j->w = geom[2]; j->cin = geom[3]; j->oh = geom[4]; j->ow = geom[5]; j->cout = geom[6];
  j->kh = geom[7]; j->kw = geom[8]; j->sh = geom[9]; j->sw = geom[10]; j->pt = geom[11]; j->pl = geom[12]; j->dh = geom[13]; j->dw = geom[14];
}

/**
 * Rows 4·blk … of a convolution's product, every panel, the row pointers on this thread's stack:
 * output pixels reading x (conv2d_f32), or, for the data gradient (`data`), input pixels reading
 * the output pixels whose taps read them (x is dy, out is dx).
 */
static void conv_pixels(void *ctx, int blk, int worker) {
  const struct conv_job *j = ctx;
  int data = j->data, kh = j->kh, kw = j->kw, taps = kh * kw;
  int gh = data ? j->h : j->oh, gw = data ? j->w : j->ow;   // the grid of this product's rows
  int sh = data ? j->oh : j->h, sw = data ? j->ow : j->w;   // the grid its rows read
  int kdim = data ? j->cout : j->cin, n = data ? j->cin : j->cout;
  const float *rows[4 * taps];
  long pixels = (long)j->n * gh * gw, q = 4L * blk;
  int mv = pixels - q < 4 ? (int)(pixels - q) : 4;
  float *orows[4];
  for (int r = 0; r < 4; r++) {
    long pix = q + (r < mv ? r : mv - 1);
    orows[r] = j->out + pix * n;
    int b = (int)(pix / ((long)gh * gw));
    int rem = (int)(pix - (long)b * gh * gw);
    int y = rem / gw, x = rem - y * gw;
    for (int ky = 0; ky < kh; ky++) {
      int sy;
      if (!data) {
        sy = y * j->sh - j->pt + ky * j->dh;
      } else {
        int ny = y + j->pt - ky * j->dh;  // = oy·sh when output row oy reads this input row at tap ky
        sy = ny >= 0 && ny % j->sh == 0 ? ny / j->sh : -1;
      }
      for (int kx = 0; kx < kw; kx++) {
        int sx;
        if (!data) {
          sx = x * j->sw - j->pl + kx * j->dw;
        } else {
          int nx = x + j->pl - kx * j->dw;
          sx = nx >= 0 && nx % j->sw == 0 ? nx / j->sw : -1;
        }
        int ok = sy >= 0 && sy < sh && sx >= 0 && sx < sw;
        rows[4 * (ky * kw + kx) + r] = ok ? j->x + (((long)b * sh + sy) * sw + sx) * kdim : j->zero;
      }
    }
  }
  gathered_panels(orows, mv, rows, taps, kdim, j->wp, n, j->bias, j->accumulate);
}

/**
 * conv2d (src/kernels/contracts.ts) on x [N, H, W, Cin] with weights packed from HWIO as
 * [kh·kw·Cin, Cout] into out [N, OH, OW, Cout]: out = (out when accumulating, residual when given,
 * else 0) + bias + Σ taps. geom: n, h, w, cin, oh, ow, cout, kh, kw, stride h/w, pad top/left,
 * dilation h/w. `zero` has room for cin zeros; `rows` is unused (each thread keeps its row pointers
 * on its stack).
 */
EXPORT(conv2d_f32) void conv2d_f32(const float *x, const float *wp, const float *bias, float *out, const float *residual, int accumulate, const int *geom, const float **rows, float *zero) {
  struct conv_job j = { .x = x, .wp = wp, .bias = bias, .zero = zero, .out = out, .accumulate = accumulate };
  conv_geom(&j, geom);
  for (int i = 0; i < j.cin; i++) zero[i] = 0;
  long pixels = (long)j.n * j.oh * j.ow;
  if (residual && !accumulate) {
    for (long i = 0; i < pixels * j.cout; i++) out[i] = residual[i];
    j.accumulate = 1;
  }
  parallel_for((int)((pixels + 3) / 4), 4.0 * j.kh * j.kw * j.cin * j.cout, conv_pixels, &j);
}

/**
 * Weights HWIO [taps, cin, cout] packed for conv2dBackwardData: the product's right operand is
 * B[t·cout + c, i] = w[t, i, c] (each tap's matrix transposed), in panels of NR columns over cin.
 */
EXPORT(pack_conv_transposed) void pack_conv_transposed(const float *w, int taps, int cin, int cout, float *bp) {
  int panels = (cin + NR - 1) / NR;
  long K = (long)taps * cout;
  for (int p = 0; p < panels; p++) {
    float *dst = bp + (long)p * K * NR;
    for (int t = 0; t < taps; t++) {
      for (int c = 0; c < cout; c++) {
        for (int j = 0; j < NR; j++) {
          int i = p * NR + j;
          dst[((long)t * cout + c) * NR + j] = i >= cin ? 0.0f : w[((long)t * cin + i) * cout + c];
        }
      }
    }
  }
}

/**
 * conv2dBackwardData: dx [N, H, W, Cin] = Σ over the output pixels and taps that read each input
 * pixel of dy · wᵀ, gathered per input pixel (each dx element is written once, its sum in tap
 * order). Weights packed by pack_conv_transposed; geom and scratch as conv2d_f32's (zero: cout zeros).
 */
EXPORT(conv2d_backward_data_f32) void conv2d_backward_data_f32(const float *dy, const float *wp, float *dx, const int *geom, const float **rows, float *zero) {
  struct conv_job j = { .x = dy, .wp = wp, .zero = zero, .out = dx, .data = 1 };
  conv_geom(&j, geom);
  for (int c = 0; c < j.cout; c++) zero[c] = 0;
  long pixels = (long)j.n * j.h * j.w;
  parallel_for((int)((pixels + 3) / 4), 4.0 * j.kh * j.kw * j.cin * j.cout, conv_pixels, &j);
}

/** Pixels of a chunk one item of the filter gradient's gather copies. */
#define GATHER_PIXELS 32

struct gather_job {
  const float *x;
  float *at;
  const int *pb, *py, *px;
  int pc, h, w, cin, kh, kw, dh, dw;
};

/** Pixels GATHER_PIXELS·item … of a chunk: their inputs of every tap into `at` ([taps·cin, pc]). */
static void gather_pixels(void *ctx, int item, int worker) {
  const struct gather_job *g = ctx;
  int pc = g->pc, cin = g->cin, h = g->h, w = g->w;
  int r0 = item * GATHER_PIXELS, r1 = pc - r0 < GATHER_PIXELS ? pc : r0 + GATHER_PIXELS;
  for (int ky = 0; ky < g->kh; ky++) {
    for (int kx = 0; kx < g->kw; kx++) {
      float *dst = g->at + (long)(ky * g->kw + kx) * cin * pc;
      for (int r = r0; r < r1; r++) {
        int iy = g->py[r] + ky * g->dh, ix = g->px[r] + kx * g->dw;
        if (iy >= 0 && iy < h && ix >= 0 && ix < w) {
          const float *src = g->x + (((long)g->pb[r] * h + iy) * w + ix) * cin;
          for (int i = 0; i < cin; i++) dst[(long)i * pc + r] = src[i];
        } else {
          for (int i = 0; i < cin; i++) dst[(long)i * pc + r] = 0;
        }
      }
    }
  }
}

/**
 * conv2dBackwardWeights: dw [kh·kw·Cin, Cout] = Σ over the output pixels, in order, of the
 * gathered inputs · dy — a product whose sum runs over the pixels, taken `chunk` pixels at a time:
 * each chunk's gathered inputs transposed into `at` ([taps·cin, chunk]) and its dy packed into
 * `dyp` (panels of NR), then added to dw, so that each dw element adds its products pixel by pixel
 * whatever the chunk. With db (not null), also db [Cout] = Σ dy over the pixels, in order; with
 * dw null, only db. geom as conv2d_f32's; `pix` has room for 3·chunk integers.
 */
EXPORT(conv2d_backward_weights_f32) void conv2d_backward_weights_f32(const float *x, const float *dy, float *dw, float *db, const int *geom, float *at, float *dyp, int *pix, int chunk) {
  int n = geom[0], h = geom[1], w = geom[2], cin = geom[3], oh = geom[4], ow = geom[5], cout = geom[6];
  int kh = geom[7], kw = geom[8], sh = geom[9], sw = geom[10], pt = geom[11], pl = geom[12], dh = geom[13], dw_ = geom[14];
  int taps = kh * kw;
  long pixels = (long)n * oh * ow;
  int m = taps * cin;
  if (db) {
    for (int c = 0; c < cout; c++) db[c] = 0;
    for (long q = 0; q < pixels; q++) {
      const float *g = dy + q * cout;
      int c = 0;
      for (; c + 4 <= cout; c += 4) wasm_v128_store(db + c, wasm_f32x4_add(wasm_v128_load(db + c), wasm_v128_load(g + c)));
      for (; c < cout; c++) db[c] += g[c];
    }
  }
  if (!dw) return;
  if (pixels == 0) {
    for (long i = 0; i < (long)m * cout; i++) dw[i] = 0;
    return;
  }
  int *pb = pix, *py = pix + chunk, *px = pix + 2 * chunk;
  for (long q0 = 0; q0 < pixels; q0 += chunk) {
    int pc = pixels - q0 < chunk ? (int)(pixels - q0) : chunk;
    // Each pixel of the chunk: its image, and the input row and column its first tap reads.
    for (int r = 0; r < pc; r++) {
      long q = q0 + r;
      int b = (int)(q / ((long)oh * ow));
      int rem = (int)(q - (long)b * oh * ow);
      int oy = rem / ow, ox = rem - oy * ow;
      pb[r] = b;
      py[r] = oy * sh - pt;
      px[r] = ox * sw - pl;
    }
    struct gather_job g = { x, at, pb, py, px, pc, h, w, cin, kh, kw, dh, dw_ };
    parallel_for((pc + GATHER_PIXELS - 1) / GATHER_PIXELS, (double)GATHER_PIXELS * taps * cin, gather_pixels, &g);
    pack_b(dy + q0 * cout, pc, cout, 0, dyp);
    gemm_packed(at, pc, m, pc, dyp, cout, dw, cout, 0, q0 > 0);
  }
}
