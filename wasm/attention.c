// Attention in float32 SIMD: the cached step of sampling (one query against the KV cache) and the
// forward pass of evaluation. The pattern (src/kernels/attention.ts) comes as patternCode()'s
// integers: causal [0], full [1], local1d [2, block, memory], local2d [3, height, width,
// blockHeight, blockWidth, memoryHeight, memoryWidth, raster].

#include "arpix.h"
#include "fmath.h"

static void coords(const int *p, int i, int *y, int *x) {
  int height = p[1], width = p[2], bh = p[3], bw = p[4];
  (void)height;
  if (p[7]) {
    *y = i / width;
    *x = i % width;
    return;
  }
  int block = bh * bw, per_row = width / bw;
  int b = i / block, r = i - b * block;
  int by = b / per_row, bx = b - by * per_row;
  *y = by * bh + r / bw;
  *x = bx * bw + r % bw;
}

static int allowed(const int *p, int i, int j) {
  switch (p[0]) {
    case 1: return 1;
    case 0: return j <= i;
    case 2: return j <= i && j >= (i / p[1]) * p[1] - p[2];
    default: {
      if (j > i) return 0;
      int yi, xi, yj, xj;
      coords(p, i, &yi, &xi);
      coords(p, j, &yj, &xj);
      int by = (yi / p[3]) * p[3], bx = (xi / p[4]) * p[4];
      return yj >= by - p[5] && yj < by + p[3] && xj >= bx - p[6] && xj < bx + p[4] + p[6];
    }
  }
}

/** The first key position query i may read (every allowed j is at or after it). */
static int first_key(const int *p, int i) {
  if (p[0] == 2) {
    int lo = (i / p[1]) * p[1] - p[2];
    return lo > 0 ? lo : 0;
  }
  if (p[0] == 3 && p[7]) {
    int width = p[2];
    int by = ((i / width) / p[3]) * p[3];
    int lo = (by - p[5]) * width;
    return lo > 0 ? lo : 0;
  }
  return 0;
}

static inline float hsum(v128_t v) {
  v = wasm_f32x4_add(v, wasm_i32x4_shuffle(v, v, 2, 3, 0, 1));
  v = wasm_f32x4_add(v, wasm_i32x4_shuffle(v, v, 1, 0, 3, 2));
  return wasm_f32x4_extract_lane(v, 0);
}

static inline float dot(const float *a, const float *b, int d) {
  int t = 0;
  float s = 0;
  if (d >= 4) {
    v128_t acc = wasm_f32x4_mul(wasm_v128_load(a), wasm_v128_load(b));
    for (t = 4; t + 4 <= d; t += 4) acc = wasm_f32x4_add(acc, wasm_f32x4_mul(wasm_v128_load(a + t), wasm_v128_load(b + t)));
    s = hsum(acc);
  }
  for (; t < d; t++) s += a[t] * b[t];
  return s;
}

/**
 * One query row against keys lo … last (rows `stride` apart): p[j − lo] = exp(s_j − m) for the
 * allowed keys and 0 for the masked ones, s_j = scale·q·k_j; returns Σ p (and the max in *m).
 */
static float row_softmax(const float *q, const float *k, long stride, int d, float scale, const int *pat, int i, int lo, int last, float *p, float *m_out) {
  int count = last - lo + 1;
  float m = -__builtin_inff();
  int dense = pat[0] <= 1 || pat[0] == 2;  // every key lo … last is allowed
  int from = lo;
  if (dense && d >= 4 && (d & 3) == 0) {
    // Four keys at a time: four products of d channels, then their four sums at once — each the
    // one dot() forms, (a0 + a2) + (a1 + a3) of its lanes — and the maximum lane by lane.
    v128_t m4 = wasm_f32x4_splat(-__builtin_inff()), sc = wasm_f32x4_splat(scale);
    for (; from + 4 <= last + 1; from += 4) {
      const float *k0 = k + (long)from * stride, *k1 = k0 + stride, *k2 = k1 + stride, *k3 = k2 + stride;
      v128_t qv = wasm_v128_load(q);
      v128_t a0 = wasm_f32x4_mul(qv, wasm_v128_load(k0)), a1 = wasm_f32x4_mul(qv, wasm_v128_load(k1));
      v128_t a2 = wasm_f32x4_mul(qv, wasm_v128_load(k2)), a3 = wasm_f32x4_mul(qv, wasm_v128_load(k3));
      for (int t = 4; t < d; t += 4) {
        qv = wasm_v128_load(q + t);
        a0 = wasm_f32x4_add(a0, wasm_f32x4_mul(qv, wasm_v128_load(k0 + t)));
        a1 = wasm_f32x4_add(a1, wasm_f32x4_mul(qv, wasm_v128_load(k1 + t)));
        a2 = wasm_f32x4_add(a2, wasm_f32x4_mul(qv, wasm_v128_load(k2 + t)));
        a3 = wasm_f32x4_add(a3, wasm_f32x4_mul(qv, wasm_v128_load(k3 + t)));
      }
      v128_t s01 = wasm_f32x4_add(wasm_i32x4_shuffle(a0, a1, 0, 4, 1, 5), wasm_i32x4_shuffle(a0, a1, 2, 6, 3, 7));
      v128_t s23 = wasm_f32x4_add(wasm_i32x4_shuffle(a2, a3, 0, 4, 1, 5), wasm_i32x4_shuffle(a2, a3, 2, 6, 3, 7));
      v128_t sv = wasm_f32x4_mul(wasm_f32x4_add(wasm_i32x4_shuffle(s01, s23, 0, 1, 4, 5), wasm_i32x4_shuffle(s01, s23, 2, 3, 6, 7)), sc);
      wasm_v128_store(p + (from - lo), sv);
      m4 = wasm_f32x4_pmax(m4, sv);  // lane < s ? s : lane — `if (s > m) m = s`, as below
    }
    float lanes[4];
    wasm_v128_store(lanes, m4);
    for (int l = 0; l < 4; l++) if (lanes[l] > m) m = lanes[l];
  }
  for (int j = from; j <= last; j++) {
    if (!dense && !allowed(pat, i, j)) {
      p[j - lo] = -__builtin_inff();
      continue;
    }
    float s = dot(q, k + (long)j * stride, d) * scale;
    p[j - lo] = s;
    if (s > m) m = s;
  }
  v128_t mv = wasm_f32x4_splat(m), sum = wasm_f32x4_splat(0);
  int j = 0;
  for (; j + 4 <= count; j += 4) {
    v128_t e = expf4(wasm_f32x4_sub(wasm_v128_load(p + j), mv));
    wasm_v128_store(p + j, e);
    sum = wasm_f32x4_add(sum, e);
  }
  float s = hsum(sum);
  for (; j < count; j++) {
    float e = wasm_f32x4_extract_lane(expf4(wasm_f32x4_splat(p[j] - m)), 0);
    p[j] = e;
    s += e;
  }
  *m_out = m;
  return s;
}

/** out[0 … d) = Σ_j p[j − lo]·v_j / sum over values lo … last (rows `stride` apart). */
static void weighted_values(const float *p, const float *v, long stride, int d, int lo, int last, float sum, float *out) {
  int t = 0;
  float inv = 1.0f / sum;
  for (; t + 8 <= d; t += 8) {
    v128_t a0 = wasm_f32x4_splat(0), a1 = a0;
    for (int j = lo; j <= last; j++) {
      v128_t pj = wasm_v128_load32_splat(p + (j - lo));
      const float *vr = v + (long)j * stride + t;
      a0 = wasm_f32x4_add(a0, wasm_f32x4_mul(pj, wasm_v128_load(vr)));
      a1 = wasm_f32x4_add(a1, wasm_f32x4_mul(pj, wasm_v128_load(vr + 4)));
    }
    wasm_v128_store(out + t, wasm_f32x4_mul(a0, wasm_f32x4_splat(inv)));
    wasm_v128_store(out + t + 4, wasm_f32x4_mul(a1, wasm_f32x4_splat(inv)));
  }
  for (; t + 4 <= d; t += 4) {
    v128_t a0 = wasm_f32x4_splat(0);
    for (int j = lo; j <= last; j++) a0 = wasm_f32x4_add(a0, wasm_f32x4_mul(wasm_v128_load32_splat(p + (j - lo)), wasm_v128_load(v + (long)j * stride + t)));
    wasm_v128_store(out + t, wasm_f32x4_mul(a0, wasm_f32x4_splat(inv)));
  }
  for (; t < d; t++) {
    float a = 0;
    for (int j = lo; j <= last; j++) a += p[j - lo] * v[(long)j * stride + t];
    out[t] = a * inv;
  }
}

/**
 * out[0 … c) for one image: each channel's Σ_j p_h[j − lo]·v_j / sum_h over values lo … last (rows
 * c apart), h its head, whose weights p_h are `cp` floats after p_(h−1). Heads of d = 4k channels:
 * up to 32 channels at once — eight independent sums where weighted_values has two — each summed
 * over j in the same order, so the same bits.
 */
static void weighted_heads(const float *p, int cp, const float *v, int c, int d, int lo, int last, const float *sums, float *out) {
  int t = 0;
  for (; t + 32 <= c; t += 32) {
    const float *ph[8];
    for (int i = 0; i < 8; i++) ph[i] = p + (long)((t + 4 * i) / d) * cp - lo;
    v128_t a0 = wasm_f32x4_splat(0), a1 = a0, a2 = a0, a3 = a0, a4 = a0, a5 = a0, a6 = a0, a7 = a0;
    for (int j = lo; j <= last; j++) {
      const float *vr = v + (long)j * c + t;
      a0 = wasm_f32x4_add(a0, wasm_f32x4_mul(wasm_v128_load32_splat(ph[0] + j), wasm_v128_load(vr)));
      a1 = wasm_f32x4_add(a1, wasm_f32x4_mul(wasm_v128_load32_splat(ph[1] + j), wasm_v128_load(vr + 4)));
      a2 = wasm_f32x4_add(a2, wasm_f32x4_mul(wasm_v128_load32_splat(ph[2] + j), wasm_v128_load(vr + 8)));
      a3 = wasm_f32x4_add(a3, wasm_f32x4_mul(wasm_v128_load32_splat(ph[3] + j), wasm_v128_load(vr + 12)));
      a4 = wasm_f32x4_add(a4, wasm_f32x4_mul(wasm_v128_load32_splat(ph[4] + j), wasm_v128_load(vr + 16)));
      a5 = wasm_f32x4_add(a5, wasm_f32x4_mul(wasm_v128_load32_splat(ph[5] + j), wasm_v128_load(vr + 20)));
      a6 = wasm_f32x4_add(a6, wasm_f32x4_mul(wasm_v128_load32_splat(ph[6] + j), wasm_v128_load(vr + 24)));
      a7 = wasm_f32x4_add(a7, wasm_f32x4_mul(wasm_v128_load32_splat(ph[7] + j), wasm_v128_load(vr + 28)));
    }
    v128_t acc[8] = {a0, a1, a2, a3, a4, a5, a6, a7};
    for (int i = 0; i < 8; i++) wasm_v128_store(out + t + 4 * i, wasm_f32x4_mul(acc[i], wasm_f32x4_splat(1.0f / sums[(t + 4 * i) / d])));
  }
  for (; t < c; t += 4) {
    const float *ph = p + (long)(t / d) * cp - lo;
    v128_t a = wasm_f32x4_splat(0);
    for (int j = lo; j <= last; j++) a = wasm_f32x4_add(a, wasm_f32x4_mul(wasm_v128_load32_splat(ph + j), wasm_v128_load(v + (long)j * c + t)));
    wasm_v128_store(out + t, wasm_f32x4_mul(a, wasm_f32x4_splat(1.0f / sums[t / d])));
  }
}

struct step_job {
  const float *q, *k, *v;
  float *out, *scratch, *stage;
  const int *pat;
  int rows, c, heads, position, lo;
  float scale;
};

/** Floats of attention_step_f32's scratch per worker (its stage: 2·count·c). */
static inline long step_scratch(int heads, int count) { return ((long)heads * (count + 4) + heads + 4 + 3) & ~3L; }

/** Image b of attention_step_f32, in worker `worker`'s scratch and stage. */
static void step_image(void *ctx, int b, int worker) {
  const struct step_job *j = ctx;
  int c = j->c, heads = j->heads, lo = j->lo, position = j->position, rows = j->rows;
  int d = c / heads;
  int count = position - lo + 1;
  int cp = (count + 3) & ~3;  // each head's weights, 16-byte aligned
  float *scratch = j->scratch + worker * step_scratch(heads, count);
  float *stage = j->stage ? j->stage + worker * 2L * count * c : 0;
  float *sums = scratch + (long)heads * cp;
  const float *kb = j->k + (long)b * rows * c - (long)lo * c;
  const float *vb = j->v + (long)b * rows * c - (long)lo * c;
  if (stage) {
    __builtin_memcpy(stage, kb + (long)lo * c, 4L * count * c);
    __builtin_memcpy(stage + (long)count * c, vb + (long)lo * c, 4L * count * c);
    kb = stage - (long)lo * c;
    vb = stage + (long)count * c - (long)lo * c;
  }
  for (int h = 0; h < heads; h++) {
    float m;
    sums[h] = row_softmax(j->q + (long)b * c + h * d, kb + h * d, c, d, j->scale, j->pat, position, lo, position, scratch + (long)h * cp, &m);
  }
  if ((d & 3) == 0) {
    weighted_heads(scratch, cp, vb, c, d, lo, position, sums, j->out + (long)b * c);
  } else {
    for (int h = 0; h < heads; h++) weighted_values(scratch + (long)h * cp, vb + h * d, c, d, lo, position, sums[h], j->out + (long)b * c + h * d);
  }
}

/**
 * attentionStep: q [n, c] at sequence position `position` against k, v [n, rows, c]; out [n, c].
 * Image b's key j is row j − lo of its `rows` (the caller copies rows lo … position only, or
 * passes a resident cache from its row lo on, rows = the cache's length). Images are split between
 * the workers. scratch: step_scratch(heads, position − lo + 1) floats per worker
 * (arpix_workers()). stage: null, or room for 2·(position − lo + 1)·c floats per worker where each
 * image's keys and values are first copied: a resident cache was last read a whole step ago and is
 * cold, and one sequential copy fetches it faster than the head-by-head passes below, which then
 * read it warm.
 */
EXPORT(attention_step_f32) void attention_step_f32(const float *q, const float *k, const float *v, float *out, int n, int rows, int c, int heads, float scale, int position, int lo, const int *pat, float *scratch, float *stage) {
  struct step_job j = { q, k, v, out, scratch, stage, pat, rows, c, heads, position, lo, scale };
  parallel_for(n, 2.0 * (position - lo + 1) * c, step_image, &j);
}

void gemm_packed(const float *a, int lda, int m, int k, const float *bp, int n, float *out, int ldo, const float *bias, int accumulate);

/** Floats of attention_f32's scratch per worker: lp·d + dp·lp + 8·d + 4·lp + 128 (lp, dp: l and d rounded up to 8). */
static inline long attention_scratch(int l, int d) {
  long lp = (l + NR - 1) / NR * NR, dp = (d + NR - 1) / NR * NR;
  return (lp * d + dp * lp + 8L * d + 4 * lp + 128 + 3) & ~3L;
}

struct attention_job {
  const float *qkv;
  float *out, *lse, *scratch;
  const int *pat;
  int l, c, heads;
  float scale;
};

/** Image item / heads, head item % heads of attention_f32, in worker `worker`'s scratch. */
static void attention_head(void *ctx, int item, int worker) {
  const struct attention_job *job = ctx;
  int l = job->l, c = job->c, heads = job->heads;
  int b = item / heads, h = item - b * heads;
  float scale = job->scale;
  const int *pat = job->pat;
  float *out = job->out, *lse = job->lse;
  int d = c / heads;
  long row = 3L * c;
  int lp = (l + NR - 1) / NR * NR, dp = (d + NR - 1) / NR * NR;
  float *kp = job->scratch + worker * attention_scratch(l, d);  // Kᵀ packed: [d, l] in panels of 8 keys
  float *vp = kp + (long)lp * d;       // V packed: [lp, d] in panels of 8 channels
  float *qb = vp + (long)dp * lp;       // 4 query rows [4, d]
  float *s = qb + 4L * d + 16;         // 4 score rows [4, lp]
  float *ob = s + 4L * lp + 16;        // 4 output rows [4, d]
  int causal_like = pat[0] == 0 || pat[0] == 2;
  const float *base = job->qkv + (long)b * l * row;
  // Kᵀ: panel p holds keys p·8 … p·8 + 7, channel t at [(p·d + t)·8 + jj]; V as pack_b would.
  for (int p = 0; p < lp / NR; p++) {
    for (int t = 0; t < d; t++) {
      for (int jj = 0; jj < NR; jj++) {
        int j = p * NR + jj;
        kp[((long)p * d + t) * NR + jj] = j < l ? base[(long)j * row + c + h * d + t] : 0.0f;
      }
    }
  }
  // (each value panel padded with zero rows to lp keys: a block's last panel of scores may reach past l)
  for (int p = 0; p < dp / NR; p++) {
    for (int j = 0; j < lp; j++) {
      for (int jj = 0; jj < NR; jj++) {
        int t = p * NR + jj;
        vp[((long)p * lp + j) * NR + jj] = t < d && j < l ? base[(long)j * row + 2 * c + h * d + t] : 0.0f;
      }
    }
  }
  for (int i0 = 0; i0 < l; i0 += 4) {
    int mv = l - i0 < 4 ? l - i0 : 4;
    int last = pat[0] == 1 ? l - 1 : i0 + mv - 1;  // the keys any of the block's queries may read
    int lo = first_key(pat, i0);
    for (int r = 0; r < mv; r++) {
      for (int t = 0; t < d; t++) qb[r * d + t] = base[(long)(i0 + r) * row + h * d + t];
    }
    // scores for keys lo/8·8 … last of the block's rows (whole panels)
    int p0 = lo / NR, p1 = last / NR;
    float inv[4];
    int span = (p1 - p0 + 1) * NR;
    gemm_packed(qb, d, mv, d, kp + (long)p0 * d * NR, span, s, lp, 0, 0);
    for (int r = 0; r < mv; r++) {
      int i = i0 + r;
      float *sr = s + (long)r * lp;
      int first = first_key(pat, i) - p0 * NR, end = (pat[0] == 1 ? l - 1 : i) - p0 * NR;  // this query's keys [first, end]
      // scale the keys this query reads, −∞ for the rest (a pattern with holes asks allowed())
      int j = 0;
      for (; j < first && j < span; j++) sr[j] = -__builtin_inff();
      int stop = end + 1 < span ? end + 1 : span;
      if (causal_like || pat[0] == 1) {
        v128_t sv = wasm_f32x4_splat(scale);
        for (; j + 4 <= stop; j += 4) wasm_v128_store(sr + j, wasm_f32x4_mul(wasm_v128_load(sr + j), sv));
        for (; j < stop; j++) sr[j] *= scale;
      } else {
        for (; j < stop; j++) sr[j] = allowed(pat, i, j + p0 * NR) ? sr[j] * scale : -__builtin_inff();
      }
      for (; j < span; j++) sr[j] = -__builtin_inff();
      v128_t mx = wasm_f32x4_splat(-__builtin_inff());
      for (j = 0; j < span; j += 4) mx = wasm_f32x4_pmax(mx, wasm_v128_load(sr + j));
      mx = wasm_f32x4_pmax(mx, wasm_i32x4_shuffle(mx, mx, 2, 3, 0, 1));
      mx = wasm_f32x4_pmax(mx, wasm_i32x4_shuffle(mx, mx, 1, 0, 3, 2));
      float m = wasm_f32x4_extract_lane(mx, 0);
      v128_t mvv = wasm_f32x4_splat(m), sum = wasm_f32x4_splat(0);
      for (j = 0; j < span; j += 4) {
        v128_t e = expf4(wasm_f32x4_sub(wasm_v128_load(sr + j), mvv));
        wasm_v128_store(sr + j, e);
        sum = wasm_f32x4_add(sum, e);
      }
      float total = hsum(sum);
      lse[((long)b * heads + h) * l + i] = (float)(m + pm_log(total));
      inv[r] = 1.0f / total;
    }
    // outputs: P [mv, span] · V rows p0·8 … (a panel-aligned window of each value panel)
    int panels = dp / NR;
    for (int p = 0; p < panels; p++) {
      int nv = d - p * NR < NR ? d - p * NR : NR;
      gemm_packed(s, lp, mv, span, vp + ((long)p * lp + p0 * NR) * NR, nv, ob + p * NR, d, 0, 0);
    }
    // the softmax's normalisation, once per output instead of once per key
    for (int r = 0; r < mv; r++) {
      for (int t = 0; t < d; t++) out[((long)b * l + i0 + r) * c + h * d + t] = ob[r * d + t] * inv[r];
    }
  }
}

/**
 * attention forward: qkv [n, l, 3c] → out [n, l, c], lse [n, heads, l]. Per image and head, the
 * keys are packed as the right operand of S = Q·Kᵀ ([d, l] in panels of 8 keys) and the values as
 * that of O = P·V ([l, d]); a block of 4 queries takes its scores over the keys it may read,
 * its softmax (exp in float32, masked keys 0), and its outputs, through gemm_packed.
 * scratch: attention_scratch(l, d) floats per worker (arpix_workers()); images × heads split
 * between the workers.
 */
EXPORT(attention_f32) void attention_f32(const float *qkv, float *out, float *lse, int n, int l, int c, int heads, float scale, const int *pat, float *scratch) {
  struct attention_job job = { qkv, out, lse, scratch, pat, l, c, heads, scale };
  parallel_for(n * heads, 2.0 * l * l * (c / heads), attention_head, &job);
}
