/* test_kv_cache.c - compact KV caches (f16 / q8 / fp8, lq_kv.h and lq_model_set_kv_cache).
 *
 * Kernels: the encoder against llama.cpp's q8_0 rule written out by hand on known values (d =
 * amax / 127, q = round(x / d), half away from zero) and the E4M3 / f16 codecs of lq_blocks.h
 * (tested against torch's casts in test_formats); the AVX2 attention loops against their _ref
 * twins at every head size class (multiple of 8, tail) for every type.
 *
 * Engine: a session with a q8 / fp8 / f16 cache against an f32-cache session whose attention op
 * first rounds the step's new K / V rows through the same encoder (an emulation built from the
 * f32 program and lq_kv_store_row / lq_kv_load_row only): both attend over the same values, so
 * they agree to f32 rounding, prefill then decode: the logits of TinyStories-656K (GQA 8 / 4
 * heads, head_dim 16), the residual stream after SmolLM2's first two layers (GQA 9 / 3, head_dim
 * 64; deeper, its 30 layers turn the dot products' term order into logit changes the size of the
 * cache's own effect). Then what the type costs: the KL divergence from the f32 cache stays small
 * and in the order f16 < q8 < fp8, the bytes per position are the layout's, and the places
 * without compact caches refuse with a reason.
 */
#include <criterion/criterion.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "../libquant/src/model/session_internal.h"
#include "libquant/lq_batch.h"
#include "lq_blocks.h"
#include "lq_kv.h"
#include "lq_ops.h"

#define KT_RNG_SEED 0x6b76ull
#include "kern_test_util.h"
#include "lq_test_util.h"

/* ---- kernels -------------------------------------------------------------------------------- */

Test(kv_rows, names_and_sizes) {
    lq_kv_type t;
    cr_assert_eq(lq_kv_type_parse("q8_0", &t), 0);
    cr_assert_eq(t, LQ_KV_Q8);
    cr_assert_eq(lq_kv_type_parse("fp8", &t), 0);
    cr_assert_eq(t, LQ_KV_FP8);
    cr_assert_eq(lq_kv_type_parse("q4", &t), -1);
    cr_assert_str_eq(lq_kv_type_name(LQ_KV_F16), "f16");
    cr_assert_null(lq_kv_type_name(LQ_KV_TYPE_COUNT));
    /* 3 heads of 64: codes, then 3 f32 scales */
    cr_assert_eq(lq_kv_row_bytes(LQ_KV_F32, 3, 64, NULL), 768u);
    cr_assert_eq(lq_kv_row_bytes(LQ_KV_F16, 3, 64, NULL), 384u);
    cr_assert_eq(lq_kv_row_bytes(LQ_KV_Q8, 3, 64, NULL), 192u + 12u);
    cr_assert_eq(lq_kv_row_bytes(LQ_KV_FP8, 3, 6, NULL), 20u + 12u); /* 18 codes padded to 20 */
}

Test(kv_rows, q8_codes_are_llama_cpp_q8_0_per_head) {
    /* head 0: amax 2.54 -> d = 0.02; head 1: all zero -> d = 0, codes 0 */
    const float x[8] = {2.54f, -1.27f, 0.01f, -0.03f, 0, 0, 0, 0};
    unsigned char row[16];
    lq_kv_store_row(LQ_KV_Q8, row, x, 2, 4, NULL);
    const int8_t want[4] = {127, -64 /* -63.5 rounds away from zero */, 1 /* 0.5 -> 1 */, -2 /* -1.5 -> -2 */};
    float d0, d1;
    memcpy(&d0, row + 8, 4);
    memcpy(&d1, row + 12, 4);
    cr_assert_float_eq(d0, 2.54f / 127.0f, 0);
    cr_assert_eq(d1, 0.0f);
    for (int j = 0; j < 4; j++) {
        /* the exact rule: round(x * (1 / d)) of the f32 values */
        const int8_t rule = (int8_t)roundf(x[j] * (1.0f / d0));
        cr_assert_eq((int8_t)row[j], rule, "code %d: %d, rule %d", j, (int8_t)row[j], rule);
        cr_assert(abs((int8_t)row[j] - want[j]) <= 1, "code %d: %d, about %d", j, (int8_t)row[j], want[j]);
        cr_assert_eq(row[4 + j], 0);
    }
    float back[8];
    lq_kv_load_row(LQ_KV_Q8, row, back, 2, 4, NULL);
    for (int j = 0; j < 4; j++) cr_assert(fabsf(back[j] - x[j]) <= d0 / 2 * 1.0001f, "value %d: %g vs %g", j, back[j], x[j]);
}

Test(kv_rows, round_trip_error_bounds) {
    enum { H = 3, D = 64 };
    float x[H * D], y[H * D];
    unsigned char row[H * D * 4];
    for (int rep = 0; rep < 20; rep++) {
        fill(x, H * D, -8.0f, 8.0f);
        x[rep % (H * D)] *= 30.0f; /* an outlier in one head */
        for (int t = 0; t < LQ_KV_TYPE_COUNT; t++) {
            lq_kv_store_row((lq_kv_type)t, row, x, H, D, NULL);
            lq_kv_load_row((lq_kv_type)t, row, y, H, D, NULL);
            for (int h = 0; h < H; h++) {
                float amax = 0;
                for (int j = 0; j < D; j++) amax = fmaxf(amax, fabsf(x[h * D + j]));
                for (int j = 0; j < D; j++) {
                    const float v = x[h * D + j], e = fabsf(y[h * D + j] - v);
                    float bound = 0; /* f32: exact */
                    if (t == LQ_KV_F16) bound = fabsf(v) * 0x1p-11f;
                    if (t == LQ_KV_Q8) bound = amax / 127.0f * 0.5001f;
                    /* E4M3: half an ulp of 3 mantissa bits, or half the subnormal step */
                    if (t == LQ_KV_FP8) bound = fmaxf(fabsf(v) * 0x1p-4f, amax / 448.0f * 0x1p-10f) * 1.001f;
                    cr_assert(e <= bound, "%s head %d value %d: %g -> %g (bound %g)", lq_kv_type_name(t), h, j, v,
                              y[h * D + j], bound);
                }
            }
        }
    }
}

Test(kv_rows, static_scales_round_and_saturate) {
    /* q8 with a static scale 0.5 per head: compressed-tensors' int8 (torch.round: half to even,
     * then clamp to [-128, 127]); fp8 saturates at 448 */
    const float fixed[2] = {0.5f, 0.25f};
    const float x[4] = {1.25f, -224.0f, 0.3f, 40.0f};
    unsigned char row[4];
    cr_assert_eq(lq_kv_row_bytes(LQ_KV_Q8, 2, 2, fixed), 4u);
    lq_kv_store_row(LQ_KV_Q8, row, x, 2, 2, fixed);
    cr_assert_eq((int8_t)row[0], 2);    /* 2.5 -> 2 (even) */
    cr_assert_eq((int8_t)row[1], -128); /* -448 saturates at -128 */
    cr_assert_eq((int8_t)row[2], 1);    /* 1.2 -> 1 */
    cr_assert_eq((int8_t)row[3], 127);  /* 160 saturates */
    float y[4];
    lq_kv_load_row(LQ_KV_Q8, row, y, 2, 2, fixed);
    cr_assert(y[0] == 1.0f && y[1] == -64.0f && y[2] == 0.25f && y[3] == 31.75f, "%g %g %g %g", y[0], y[1], y[2], y[3]);
    lq_kv_store_row(LQ_KV_FP8, row, x, 2, 2, fixed);
    lq_kv_load_row(LQ_KV_FP8, row, y, 2, 2, fixed);
    /* on E4M3's grid: 2.5, -448 (its top), 160; and 400 (between 384 and 416) rounds to even 384 */
    cr_assert(y[0] == 1.25f && y[1] == -224.0f && y[3] == 40.0f, "%g %g %g", y[0], y[1], y[3]);
    const float over[2] = {-200.0f, 1000.0f};
    lq_kv_store_row(LQ_KV_FP8, row, over, 1, 2, fixed);
    lq_kv_load_row(LQ_KV_FP8, row, y, 1, 2, fixed);
    cr_assert(y[0] == -192.0f && y[1] == 224.0f, "%g %g", y[0], y[1]);
    cr_assert(fabsf(y[2] - 0.3f) <= 0.3f * 0x1p-4f, "%g", y[2]);
}

Test(kv_rows, avx2_loops_equal_ref) {
    enum { ROWS = 37, MAXH = 4, MAXD = 72 };
    const int heads[] = {1, 3, 4}, dims[] = {8, 16, 36, 64, 72};
    static unsigned char rows[ROWS * MAXH * MAXD * 4 + ROWS * 64];
    float x[MAXH * MAXD], q[MAXD], w[ROWS], got[ROWS], want[ROWS], yg[MAXD], yw[MAXD];
    const float statics[MAXH] = {0.02f, 0.011f, 0.03f, 0.007f}; /* some values saturate */
    for (int t = 0; t < LQ_KV_TYPE_COUNT; t++)
        for (int st = 0; st < 2; st++)
        for (size_t a = 0; a < sizeof heads / sizeof heads[0]; a++)
            for (size_t b = 0; b < sizeof dims / sizeof dims[0]; b++) {
                const int H = heads[a], D = dims[b];
                const float *fixed = st && (t == LQ_KV_Q8 || t == LQ_KV_FP8) ? statics : NULL;
                const size_t rb = lq_kv_row_bytes((lq_kv_type)t, H, D, fixed);
                if (fixed) cr_assert_eq(rb, (size_t)(H * D), "static rows are their codes");
                for (int r = 0; r < ROWS; r++) {
                    fill(x, H * D, -3.0f, 3.0f);
                    lq_kv_store_row((lq_kv_type)t, rows + (size_t)r * rb, x, H, D, fixed);
                }
                fill(q, D, -1.0f, 1.0f);
                fill(w, ROWS, 0.0f, 0.1f);
                for (int h = 0; h < H; h++) {
                    lq_kv_dot_rows((lq_kv_type)t, q, rows, rb, ROWS, h, H, D, fixed, 0.125f, got);
                    lq_kv_dot_rows_ref((lq_kv_type)t, q, rows, rb, ROWS, h, H, D, fixed, 0.125f, want);
                    int64_t i = first_mismatch(got, want, NULL, ROWS, 1e-5, 1e-5);
                    cr_assert(i < 0, "%s H=%d D=%d head %d dot row %lld: %g vs %g", lq_kv_type_name(t), H, D, h,
                              (long long)i, i < 0 ? 0 : got[i], i < 0 ? 0 : want[i]);
                    fill(yg, D, -1.0f, 1.0f);
                    memcpy(yw, yg, sizeof yw);
                    lq_kv_axpy_rows((lq_kv_type)t, yg, w, rows, rb, ROWS, h, H, D, fixed);
                    lq_kv_axpy_rows_ref((lq_kv_type)t, yw, w, rows, rb, ROWS, h, H, D, fixed);
                    i = first_mismatch(yg, yw, NULL, D, 1e-5, 1e-5);
                    cr_assert(i < 0, "%s H=%d D=%d head %d axpy value %lld: %g vs %g", lq_kv_type_name(t), H, D, h,
                              (long long)i, i < 0 ? 0 : yg[i], i < 0 ? 0 : yw[i]);
                }
            }
}

/* ---- engine --------------------------------------------------------------------------------- */

enum { N_PROMPT = 12, N_DECODE = 6, N_STEPS = N_PROMPT + N_DECODE };

/* The emulation: the f32 program, its attention op rounding the step's K / V rows through the
 * encoder of g_emul first. */
static lq_kv_type g_emul;
static const lq_backend_ops *g_real;
static const float *g_kfix, *g_vfix; /* static scales, the same for every layer, or NULL */

static void round_rows(float *cache, int pos0, int n, int n_heads, int hd, const float *fixed) {
    static unsigned char buf[1 << 16];
    const int64_t kvd = (int64_t)n_heads * hd;
    cr_assert(lq_kv_row_bytes(g_emul, n_heads, hd, fixed) <= sizeof buf);
    for (int t = pos0; t < pos0 + n; t++) {
        lq_kv_store_row(g_emul, buf, cache + t * kvd, n_heads, hd, fixed);
        lq_kv_load_row(g_emul, buf, cache + t * kvd, n_heads, hd, fixed);
    }
}

static lq_status emul_attention(void *ctx, const lq_attn_args *a) {
    cr_assert_eq(a->kv, LQ_KV_F32);
    round_rows((float *)a->kc, a->pos0, a->n_tok, a->n_kv_heads, a->head_dim, g_kfix);
    round_rows((float *)a->vc, a->pos0, a->n_tok, a->n_kv_heads, a->head_dim, g_vfix);
    return g_real->attention(ctx, a);
}

/* Logits of every step: a prefill of N_PROMPT ids, then N_DECODE single-token decodes. */
static void run(lq_session *s, int vocab, float *out) {
    int32_t ids[N_STEPS] = {1, 9690, 198, 2683, 314, 260, 3575, 282, 4649, 30, 1073, 655, 28, 4191, 2234, 17, 905, 41};
    for (int i = 0; i < N_STEPS; i++) ids[i] %= vocab;
    cr_assert_eq(lq_forward(s, ids, N_PROMPT, 0, out, true), LQ_OK, "%s", lq_last_error());
    for (int i = N_PROMPT; i < N_STEPS; i++)
        cr_assert_eq(lq_forward(s, ids + i, 1, i, out + (size_t)i * vocab, false), LQ_OK, "%s", lq_last_error());
}

/* KL(P || Q) of two logit rows. */
static double kld_row(const float *p, const float *q, int n) {
    double mp = -INFINITY, mq = -INFINITY, sp = 0, sq = 0, k = 0;
    for (int i = 0; i < n; i++) mp = fmax(mp, p[i]), mq = fmax(mq, q[i]);
    for (int i = 0; i < n; i++) sp += exp(p[i] - mp), sq += exp(q[i] - mq);
    for (int i = 0; i < n; i++) {
        const double lp = p[i] - mp - log(sp), lq = q[i] - mq - log(sq);
        k += exp(lp) * (lp - lq);
    }
    return k;
}

/* Static scales for the emulation tests: the largest |K| and |V| of each kv head over every layer
 * on the test's ids, over the grid's top (127 or 448), the same for every layer (the emulation's
 * attention op does not know the layer). lq_session_kv_absmax's per-layer maxima are checked
 * against what the attention op itself sees, layer by layer, on the way. */
enum { MAX_KVH = 16, MAX_LAYERS = 64 };
static float g_kscale[MAX_KVH], g_vscale[MAX_KVH];
static float g_seen_k[MAX_LAYERS * MAX_KVH], g_seen_v[MAX_LAYERS * MAX_KVH];
static int g_calls, g_layers;

static void amax_rows(const float *rows, int n, int n_heads, int hd, float *out) {
    for (int t = 0; t < n; t++)
        for (int h = 0; h < n_heads; h++)
            for (int j = 0; j < hd; j++) out[h] = fmaxf(out[h], fabsf(rows[((int64_t)t * n_heads + h) * hd + j]));
}

static lq_status record_attention(void *ctx, const lq_attn_args *a) {
    const int l = g_calls++ % g_layers; /* one prefill: the layers in order */
    amax_rows(a->kc, a->pos0 + a->n_tok, a->n_kv_heads, a->head_dim, g_seen_k + l * MAX_KVH);
    amax_rows(a->vc, a->pos0 + a->n_tok, a->n_kv_heads, a->head_dim, g_seen_v + l * MAX_KVH);
    return g_real->attention(ctx, a);
}

static void set_static(lq_model *m, lq_kv_type t) {
    const lq_config *c = lq_model_config(m);
    const int nl = c->n_layers, nh = c->n_kv_heads;
    cr_assert(nh <= MAX_KVH && nl <= MAX_LAYERS);
    int32_t ids[N_STEPS] = {1, 9690, 198, 2683, 314, 260, 3575, 282, 4649, 30, 1073, 655, 28, 4191, 2234, 17, 905, 41};
    for (int i = 0; i < N_STEPS; i++) ids[i] %= c->vocab_size;
    float *logits = malloc((size_t)c->vocab_size * sizeof *logits);
    float *ka = calloc((size_t)nl * nh, sizeof *ka), *va = calloc((size_t)nl * nh, sizeof *va);
    float *k = malloc((size_t)nl * nh * sizeof *k), *v = malloc((size_t)nl * nh * sizeof *v);
    memset(g_seen_k, 0, sizeof g_seen_k);
    memset(g_seen_v, 0, sizeof g_seen_v);
    g_calls = 0, g_layers = nl;
    lq_session *s;
    cr_assert_eq(lq_session_create(m, 32, NULL, &s), LQ_OK, "%s", lq_last_error());
    lq_backend_ops ops = *s->ops;
    ops.attention = record_attention;
    g_real = s->ops;
    s->ops = &ops;
    cr_assert_eq(lq_forward(s, ids, N_STEPS, 0, logits, false), LQ_OK, "%s", lq_last_error());
    s->ops = g_real;
    cr_assert_eq(lq_session_kv_absmax(s, N_STEPS, ka, va), LQ_OK, "%s", lq_last_error());
    lq_session_free(s);
    cr_assert_eq(g_calls, nl);
    const float top = t == LQ_KV_Q8 ? 127.0f : LQ_E4M3_MAX;
    for (int h = 0; h < nh; h++) g_kscale[h] = g_vscale[h] = 0;
    for (int l = 0; l < nl; l++)
        for (int h = 0; h < nh; h++) {
            cr_assert(ka[l * nh + h] == g_seen_k[l * MAX_KVH + h] && va[l * nh + h] == g_seen_v[l * MAX_KVH + h],
                      "layer %d head %d: absmax %g / %g, the attention op saw %g / %g", l, h, ka[l * nh + h],
                      va[l * nh + h], g_seen_k[l * MAX_KVH + h], g_seen_v[l * MAX_KVH + h]);
            g_kscale[h] = fmaxf(g_kscale[h], ka[l * nh + h] / top);
            g_vscale[h] = fmaxf(g_vscale[h], va[l * nh + h] / top);
        }
    for (int l = 0; l < nl; l++)
        for (int h = 0; h < nh; h++) k[l * nh + h] = g_kscale[h], v[l * nh + h] = g_vscale[h];
    cr_assert_eq(lq_model_set_kv_scales(m, k, v), LQ_OK, "%s", lq_last_error());
    cr_assert(lq_model_kv_static(m) && lq_model_kv_scale(m, nl - 1, true, nh - 1) == g_vscale[nh - 1]);
    g_kfix = g_kscale, g_vfix = g_vscale;
    free(logits);
    free(ka);
    free(va);
    free(k);
    free(v);
}

static lq_model *load(const char *rel) {
    char path[1024];
    lq_test_shared(rel, path, sizeof path);
    lq_model *m;
    cr_assert_eq(lq_model_load(path, &m), LQ_OK, "%s", lq_last_error());
    return m;
}

/* The residual stream after the first LAYERS decoder layers, every step (prefill, then decodes),
 * through session s: (N_STEPS, dim) into out. */
enum { LAYERS = 2 };
static void run_layers(lq_session *s, int dim, float *out) {
    int32_t ids[N_STEPS] = {1, 9690, 198, 2683, 314, 260, 3575, 282, 4649, 30, 1073, 655, 28, 4191, 2234, 17, 905, 41};
    cr_assert_eq(lq_session_embed(s, ids, N_STEPS, out), LQ_OK, "%s", lq_last_error());
    for (int l = 0; l < LAYERS; l++) {
        cr_assert_eq(lq_session_forward_layer(s, l, out, N_PROMPT, 0), LQ_OK, "%s", lq_last_error());
        for (int i = N_PROMPT; i < N_STEPS; i++)
            cr_assert_eq(lq_session_forward_layer(s, l, out + (size_t)i * dim, 1, i), LQ_OK, "%s", lq_last_error());
    }
}

/* A deep model turns any rounding difference (here: the order of a dot product's terms) into
 * logit changes of the size of the cache's own effect, so on SmolLM2 the emulation is compared
 * after the first two layers (the second attends over rows the first computed), to f32 rounding. */
static void check_first_layers(const char *rel, lq_kv_type t, bool stat) {
    setenv("LQ_ATTN_GEMM", "0", 1); /* as check_type */
    lq_model *m = load(rel);
    g_kfix = g_vfix = NULL;
    if (stat) set_static(m, t);
    lq_matmul_set_act_mode(LQ_ACT_MODE_F32);
    const int dim = lq_model_config(m)->dim;
    const size_t n = (size_t)N_STEPS * (size_t)dim;
    float *got = malloc(n * sizeof *got), *emul = malloc(n * sizeof *emul);
    lq_session *s;
    cr_assert_eq(lq_session_create(m, 32, NULL, &s), LQ_OK, "%s", lq_last_error());
    lq_backend_ops ops = *s->ops;
    ops.attention = emul_attention;
    g_real = s->ops, g_emul = t;
    s->ops = &ops;
    run_layers(s, dim, emul);
    s->ops = g_real;
    lq_session_free(s);
    cr_assert_eq(lq_model_set_kv_cache(m, t), LQ_OK);
    cr_assert_eq(lq_session_create(m, 32, NULL, &s), LQ_OK, "%s", lq_last_error());
    run_layers(s, dim, got);
    lq_session_free(s);
    for (int step = 0; step < N_STEPS; step++) {
        const float *g = got + (size_t)step * dim, *e = emul + (size_t)step * dim;
        float mx = 0;
        for (int i = 0; i < dim; i++) mx = fmaxf(mx, fabsf(e[i]));
        for (int i = 0; i < dim; i++)
            cr_assert(fabsf(g[i] - e[i]) <= 1e-5f * mx, "%s %s step %d x[%d] after %d layers: %.8g, emulated %.8g", rel,
                      lq_kv_type_name(t), step, i, LAYERS, g[i], e[i]);
    }
    lq_matmul_set_act_mode(LQ_ACT_MODE_AUTO);
    free(got);
    free(emul);
    lq_model_free(m);
    unsetenv("LQ_ATTN_GEMM");
}

/* Compact cache of type t on model rel against the emulation (whole model when `logits`, to f32
 * rounding); returns the largest per-step KL divergence from the plain f32 cache. */
static double check_type(const char *rel, lq_kv_type t, bool logits, bool stat) {
    /* Compact caches attend with the per-row loop; an f32 cache's prefill would take sgemm tiles,
     * whose different summation order is not the cache's effect (test_backend checks the tiles). */
    setenv("LQ_ATTN_GEMM", "0", 1);
    lq_model *m = load(rel);
    g_kfix = g_vfix = NULL;
    lq_matmul_set_act_mode(LQ_ACT_MODE_F32); /* the int8-activation path would amplify ulps */
    const int vocab = lq_model_config(m)->vocab_size;
    const size_t n = (size_t)N_STEPS * (size_t)vocab;
    float *got = malloc(n * sizeof *got), *emul = malloc(n * sizeof *emul), *plain = malloc(n * sizeof *plain);
    lq_pool *pool = lq_pool_create(2);
    lq_session *s;
    cr_assert_eq(lq_session_create(m, 32, pool, &s), LQ_OK, "%s", lq_last_error());
    run(s, vocab, plain);
    if (stat) set_static(m, t);
    lq_backend_ops ops = *s->ops;
    ops.attention = emul_attention;
    g_real = s->ops, g_emul = t;
    s->ops = &ops;
    run(s, vocab, emul);
    s->ops = g_real;
    lq_session_free(s);

    cr_assert_eq(lq_model_set_kv_cache(m, t), LQ_OK);
    cr_assert_eq(lq_session_create(m, 32, pool, &s), LQ_OK, "%s", lq_last_error());
    cr_assert_eq(lq_session_kv_cache(s), t);
    cr_assert_eq(s->kv_fixed != NULL, stat);
    run(s, vocab, got);
    lq_session_free(s);
    double worst = 0;
    for (int step = 0; step < N_STEPS; step++) {
        const float *g = got + (size_t)step * vocab, *e = emul + (size_t)step * vocab;
        float mx = 0;
        for (int i = 0; i < vocab; i++) mx = fmaxf(mx, fabsf(e[i]));
        for (int i = 0; i < vocab && logits; i++)
            cr_assert(fabsf(g[i] - e[i]) <= 1e-5f * mx, "%s %s step %d logit %d: %.7g, emulated %.7g", rel,
                      lq_kv_type_name(t), step, i, g[i], e[i]);
        worst = fmax(worst, kld_row(plain + (size_t)step * vocab, g, vocab));
    }
    lq_matmul_set_act_mode(LQ_ACT_MODE_AUTO);
    lq_pool_free(pool);
    free(got);
    free(emul);
    free(plain);
    lq_model_free(m);
    unsetenv("LQ_ATTN_GEMM");
    return worst;
}

#define SMOL "models/SmolLM2-135M-Instruct-Q4_1/SmolLM2-135M-Instruct.Q4_1.gguf"
#define TINY "models/TinyStories-656K"

Test(kv_cache, compact_caches_attend_over_the_encoded_rows, .timeout = 300) {
    const char *models[] = {TINY, SMOL};
    for (int i = 0; i < 2; i++) {
        const bool deep = i == 1;
        if (deep)
            for (int t = LQ_KV_F16; t < LQ_KV_TYPE_COUNT; t++) {
                check_first_layers(models[i], (lq_kv_type)t, false);
                if (t != LQ_KV_F16) check_first_layers(models[i], (lq_kv_type)t, true);
            }
        const double f16 = check_type(models[i], LQ_KV_F16, !deep, false);
        const double q8 = check_type(models[i], LQ_KV_Q8, !deep, false);
        const double fp8 = check_type(models[i], LQ_KV_FP8, !deep, false);
        const double q8s = check_type(models[i], LQ_KV_Q8, !deep, true);
        const double fp8s = check_type(models[i], LQ_KV_FP8, !deep, true);
        cr_log_info("%s: worst-step KLD from the f32 cache: f16 %.3g, q8 %.3g, fp8 %.3g; static q8 %.3g, fp8 %.3g",
                    models[i], f16, q8, fp8, q8s, fp8s);
        /* static scales (one per head for every token, here even for every layer) are coarser than
         * per-token ones, not broken; SmolLM2's layers differ too much in range for one scale */
        if (!deep) cr_assert(q8s < 1e-1 && fp8s < 1e-1, "%s: static KLD q8 %g, fp8 %g", models[i], q8s, fp8s);
        /* the order of precision, and each far from a broken cache (KLD ~ 1) */
        cr_assert(f16 < 1e-4 && q8 < 2e-2 && fp8 < 1e-1, "%s: KLD f16 %g, q8 %g, fp8 %g", models[i], f16, q8, fp8);
        cr_assert(f16 < q8 && q8 < fp8, "%s: KLD f16 %g, q8 %g, fp8 %g", models[i], f16, q8, fp8);
    }
}

Test(kv_cache, bytes_per_position) {
    lq_model *m = load(SMOL); /* 30 layers, 3 kv heads of 64 */
    cr_assert_eq(lq_model_kv_bytes_per_pos(m, LQ_KV_F32), 30u * 2 * 192 * 4);
    cr_assert_eq(lq_model_kv_bytes_per_pos(m, LQ_KV_F16), 30u * 2 * 192 * 2);
    cr_assert_eq(lq_model_kv_bytes_per_pos(m, LQ_KV_Q8), 30u * 2 * (192 + 12));
    cr_assert_eq(lq_model_kv_bytes_per_pos(m, LQ_KV_FP8), 30u * 2 * (192 + 12));
    lq_model_free(m);
}

Test(kv_cache, copy_cache_keeps_the_type_and_refuses_a_mix) {
    lq_model *m = load(TINY);
    const int vocab = lq_model_config(m)->vocab_size;
    float *a = malloc((size_t)N_STEPS * vocab * sizeof *a), *b = malloc((size_t)N_STEPS * vocab * sizeof *b);
    cr_assert_eq(lq_model_set_kv_cache(m, LQ_KV_Q8), LQ_OK);
    lq_session *s1, *s2, *s3;
    cr_assert_eq(lq_session_create(m, 32, NULL, &s1), LQ_OK);
    cr_assert_eq(lq_session_create(m, 32, NULL, &s2), LQ_OK);
    run(s1, vocab, a);
    /* a fork continues exactly where the original would */
    cr_assert_eq(lq_session_copy_cache(s2, s1, N_STEPS - 1), LQ_OK, "%s", lq_last_error());
    const int32_t next = 7;
    cr_assert_eq(lq_forward(s1, &next, 1, N_STEPS - 1, a, false), LQ_OK);
    cr_assert_eq(lq_forward(s2, &next, 1, N_STEPS - 1, b, false), LQ_OK);
    cr_assert(memcmp(a, b, (size_t)vocab * sizeof *a) == 0, "the forked q8 cache gives other logits");
    cr_assert_eq(lq_model_set_kv_cache(m, LQ_KV_F32), LQ_OK);
    cr_assert_eq(lq_session_create(m, 32, NULL, &s3), LQ_OK);
    cr_assert_eq(lq_session_copy_cache(s3, s1, 4), LQ_ERR_INVALID_ARG);
    cr_assert(strstr(lq_last_error(), "q8") != NULL, "%s", lq_last_error());
    lq_session_free(s1);
    lq_session_free(s2);
    lq_session_free(s3);
    free(a);
    free(b);
    lq_model_free(m);
}

/* ---- batched sessions: the paged cache in a compact type ------------------------------------
 * A batch (lq_batch) with a compact cache against an f32 batch whose attention_paged op first
 * rounds the step's new K / V rows in the pages through the same encoder (the emulation above,
 * on pages): both run the same GEMMs and attend over the same values, so their logits agree to
 * f32 rounding (1e-5 of the logit scale, as check_type). The schedule has prompts inside one
 * page, across two and three, decode steps, a prefill chunk next to decodes, and a fork whose
 * first write copies a shared compact page. Then the cost against the plain f32 batch (the same
 * KLD bounds as the single-sequence sessions above) and the pages' bytes (the row layout). */
static lq_kv_type g_pemul;
static const lq_model *g_pmodel;
static const lq_backend_ops *g_preal;

static void round_page_rows(const lq_attn_paged_args *a, int64_t off, bool v, int layer) {
    float fixed[MAX_KVH], *fx = NULL;
    if (lq_model_kv_static(g_pmodel) && (g_pemul == LQ_KV_Q8 || g_pemul == LQ_KV_FP8)) {
        for (int h = 0; h < a->n_kv_heads; h++) fixed[h] = lq_model_kv_scale(g_pmodel, layer, v, h);
        fx = fixed;
    }
    static unsigned char buf[1 << 16];
    for (int i = 0; i < a->n_seqs; i++) {
        const lq_attn_seq *sq = &a->seqs[i];
        for (int p = sq->pos0; p < sq->pos0 + sq->n_tok; p++) {
            float *row = (float *)((char *)sq->pages[p / a->page_tokens] + off +
                                   (size_t)(p % a->page_tokens) * a->kv_row_bytes);
            lq_kv_store_row(g_pemul, buf, row, a->n_kv_heads, a->head_dim, fx);
            lq_kv_load_row(g_pemul, buf, row, a->n_kv_heads, a->head_dim, fx);
        }
    }
}

static lq_status emul_attention_paged(void *ctx, const lq_attn_paged_args *a) {
    cr_assert_eq(a->kv, LQ_KV_F32);
    /* layers of equal width: K of layer l starts l * page_tokens rows into a page */
    const int layer = (int)(a->k_off / ((int64_t)a->page_tokens * (int64_t)a->kv_row_bytes));
    round_page_rows(a, a->k_off, false, layer);
    round_page_rows(a, a->v_off, true, layer);
    return g_preal->attention_paged(ctx, a);
}

enum { B_SEQ = 5, B_STEPS = 6, B_ROWS = 16 };

/* The schedule through batch b; every logits row into out (B_ROWS * B_STEPS rows of vocab), the
 * number of rows in *n_rows. Sequence 4 is a fork of sequence 3 after the prompts. */
static void run_batch(lq_batch *b, int vocab, float *out, int *n_rows) {
    static const int plen[4] = {5, 16, 17, 33};
    int32_t toks[B_SEQ][64];
    uint32_t r = 7;
    for (int i = 0; i < B_SEQ; i++)
        for (int t = 0; t < 64; t++) toks[i][t] = 1 + (int32_t)((r = r * 1664525u + 1013904223u) >> 8) % (vocab - 1);
    int seq[B_SEQ], len[B_SEQ] = {0};
    for (int i = 0; i < 4; i++) cr_assert_eq(lq_batch_seq_open(b, &seq[i]), LQ_OK);
    *n_rows = 0;
    for (int st = 0; st < B_STEPS; st++) {
        if (st == 1) {
            cr_assert_eq(lq_batch_seq_fork(b, seq[3], &seq[4]), LQ_OK, "%s", lq_last_error());
            len[4] = len[3];
            memcpy(toks[4], toks[3], (size_t)len[3] * sizeof(int32_t));
        }
        lq_batch_item it[B_SEQ];
        int ni = 0, rows = 0;
        for (int i = 0; i < (st ? B_SEQ : 4); i++) {
            const int n = st == 0 ? plen[i] : st == 3 && i == 0 ? 3 : 1; /* step 3: a chunk of 3 */
            const bool all = st == 3 && i == 0;
            it[ni++] = (lq_batch_item){.seq = seq[i], .tokens = &toks[i][len[i]], .n = n,
                                       .logits = all ? LQ_BATCH_LOGITS_ALL : LQ_BATCH_LOGITS_LAST};
            rows += all ? n : 1;
            len[i] += n;
        }
        cr_assert(*n_rows + rows <= B_ROWS * B_STEPS);
        cr_assert_eq(lq_batch_forward(b, it, ni, out + (size_t)*n_rows * vocab), LQ_OK, "step %d: %s", st,
                     lq_last_error());
        *n_rows += rows;
    }
}

/* Logits of the schedule through a batch of m's cache type; with `emul`, through an f32 batch
 * whose attention_paged rounds the new rows as type `emul`. Returns the page bytes. */
static size_t batch_logits(lq_model *m, lq_pool *pool, const lq_kv_type *emul, float *out, int *n_rows) {
    lq_backend_ops ops;
    const lq_backend_ops *real = m->cpu->ops;
    if (emul) {
        cr_assert_eq(lq_model_set_kv_cache(m, LQ_KV_F32), LQ_OK);
        ops = *real;
        ops.attention_paged = emul_attention_paged;
        g_preal = real, g_pemul = *emul, g_pmodel = m;
        m->cpu->ops = &ops;
    }
    lq_batch *b = NULL;
    const lq_batch_opts bo = {.n_ctx = 64};
    cr_assert_eq(lq_batch_create(m, &bo, pool, &b), LQ_OK, "%s", lq_last_error());
    run_batch(b, lq_model_config(m)->vocab_size, out, n_rows);
    lq_kv_stats ks;
    lq_batch_kv_stats(b, &ks);
    cr_assert_eq(ks.kv_type, lq_model_kv_cache(m));
    /* 5 sequences of 10, 21, 22, 38, 38 positions, sequence 4 sharing 2 of 3's 3 pages */
    cr_assert_eq(ks.pages_in_use, 1 + 2 + 2 + 3 + 1, "pages in use %lld", (long long)ks.pages_in_use);
    lq_batch_free(b);
    m->cpu->ops = real;
    return ks.page_bytes;
}

static void check_batch_type(lq_kv_type t, bool stat) {
    lq_model *m = load(TINY);
    lq_matmul_set_act_mode(LQ_ACT_MODE_F32);
    const int vocab = lq_model_config(m)->vocab_size;
    const size_t n = (size_t)B_ROWS * B_STEPS * (size_t)vocab;
    float *got = malloc(n * sizeof *got), *emul = malloc(n * sizeof *emul), *plain = malloc(n * sizeof *plain);
    lq_pool *pool = lq_pool_create(2);
    int rows_p, rows_e, rows_g;
    const size_t f32_page = batch_logits(m, pool, NULL, plain, &rows_p);
    g_kfix = g_vfix = NULL;
    if (stat) set_static(m, t);
    batch_logits(m, pool, &t, emul, &rows_e);
    cr_assert_eq(lq_model_set_kv_cache(m, t), LQ_OK);
    const size_t page = batch_logits(m, pool, NULL, got, &rows_g);
    cr_assert(rows_p == rows_e && rows_e == rows_g);
    /* The two runs' attention sums differ in order (codes times a scale vs decoded f32 values), so
     * layer 2's K / V inputs differ in their last bits, and a value within an ulp of a rounding
     * boundary can take the neighbouring code in one run: one cached value moves by one step
     * (1/127 of its row's range for q8), and the rows attending over it move by up to ~1e-3 of the
     * largest logit. Every other row must agree to f32 rounding (1e-5); a few rows may carry a
     * flipped code (measured: 2 of 31 q8 rows at 4.8e-4 when the f32 rows summed their lanes in
     * another order than the compact ones; 0 since both use lq_dot_f32_rows_ref's order, worst
     * 7.8e-7). An f16 cache stores values an f32 cache would hold exactly and now sums them in the
     * same order, so it has no code to flip: none of its rows may leave f32 rounding. */
    double worst = 0;
    int flipped = 0;
    for (int r = 0; r < rows_g; r++) {
        const float *g = got + (size_t)r * vocab, *e = emul + (size_t)r * vocab;
        float mx = 0, dr = 0;
        for (int i = 0; i < vocab; i++) mx = fmaxf(mx, fabsf(e[i]));
        for (int i = 0; i < vocab; i++) dr = fmaxf(dr, fabsf(g[i] - e[i]));
        cr_assert(dr <= 2e-3f * mx, "batch %s%s row %d: logits %.3g from the emulation (max logit %.3g)",
                  lq_kv_type_name(t), stat ? " static" : "", r, dr, mx);
        flipped += dr > 1e-5f * mx;
        worst = fmax(worst, kld_row(plain + (size_t)r * vocab, g, vocab));
    }
    cr_assert(flipped <= (t == LQ_KV_F16 ? 0 : 4), "batch %s%s: %d of %d rows beyond f32 rounding of the emulation",
              lq_kv_type_name(t), stat ? " static" : "", flipped, rows_g);
    cr_log_info("batch %s%s: worst-row KLD from the f32 cache %.3g", lq_kv_type_name(t), stat ? " static" : "", worst);
    /* the single-sequence bounds of compact_caches_attend_over_the_encoded_rows (f16 < 1e-4,
     * q8 < 2e-2, fp8 and static scales < 1e-1) */
    cr_assert(worst < (t == LQ_KV_F16 ? 1e-4 : t == LQ_KV_Q8 && !stat ? 2e-2 : 1e-1), "batch %s%s: KLD %g",
              lq_kv_type_name(t), stat ? " static" : "", worst);
    /* TinyStories-656K: 2 layers, 4 kv heads of 16; a page is 16 positions of K and V of both:
     * f32 rows 256 bytes, f16 128, q8 / fp8 64 codes + 4 scales (80), static ones 64 */
    const size_t row = t == LQ_KV_F16 ? 128 : stat ? 64 : 80;
    cr_assert_eq(f32_page, 16u * 2 * 2 * 256);
    cr_assert_eq(page, 16u * 2 * 2 * row, "%s page: %zu bytes", lq_kv_type_name(t), page);
    lq_matmul_set_act_mode(LQ_ACT_MODE_AUTO);
    lq_pool_free(pool);
    free(got);
    free(emul);
    free(plain);
    lq_model_free(m);
}

Test(kv_cache, batched_sessions_attend_over_the_encoded_pages, .timeout = 300) {
    for (int t = LQ_KV_F16; t < LQ_KV_TYPE_COUNT; t++) {
        check_batch_type((lq_kv_type)t, false);
        if (t != LQ_KV_F16) check_batch_type((lq_kv_type)t, true);
    }
    lq_model *m = load(TINY);
    cr_assert_eq(lq_model_set_kv_cache(m, (lq_kv_type)9), LQ_ERR_INVALID_ARG);
    /* a table without the kv_store op (CUDA's) refuses a compact cache naming the type and itself,
     * single-sequence and batched alike */
    const lq_backend_ops *real = m->cpu->ops;
    lq_backend_ops ops = *real;
    ops.name = "nokv";
    ops.kv_store = NULL;
    m->cpu->ops = &ops;
    cr_assert_eq(lq_model_set_kv_cache(m, LQ_KV_Q8), LQ_OK);
    lq_session *s = NULL;
    lq_batch *b = NULL;
    cr_assert_eq(lq_session_create(m, 32, NULL, &s), LQ_ERR_UNSUPPORTED);
    cr_assert(strstr(lq_last_error(), "q8") && strstr(lq_last_error(), "nokv backend keeps an f32 cache"), "%s",
              lq_last_error());
    cr_assert_eq(lq_batch_create(m, NULL, NULL, &b), LQ_ERR_UNSUPPORTED);
    cr_assert(strstr(lq_last_error(), "q8") && strstr(lq_last_error(), "nokv backend keeps an f32 cache"), "%s",
              lq_last_error());
    cr_assert(s == NULL && b == NULL);
    m->cpu->ops = real;
    lq_model_free(m);
}

/* quant-eval ARGS run in dir (exit 0 asserted); its stdout, which the caller frees */
static char *quant_eval_json(const char *dir, const char *args) {
    char err[2048], out[1024];
    cr_assert_eq(lq_test_run_tool("quant-eval", args, dir, err, sizeof err), 0, "%s", err);
    snprintf(out, sizeof out, "%s/stdout.txt", dir);
    char *j = lq_test_read_file(out, NULL);
    cr_assert_not_null(j, "quant-eval %s: no output", args);
    return j;
}

Test(kv_cache, quant_eval_reports_the_cache) {
    char model[1024], text[1024], args[4096], err[2048];
    lq_test_shared(TINY, model, sizeof model);
    lq_test_shared("data/tinystories_sample.txt", text, sizeof text);
    char dir[] = "/tmp/lq_kv_XXXXXX";
    cr_assert_not_null(mkdtemp(dir));
    snprintf(args, sizeof args, "--model '%s' --file '%s' --ctx 64 --chunks 2 --kv-cache q8 --json", model, text);
    char *j = quant_eval_json(dir, args);
    cr_assert(strstr(j, "\"kv_cache\": \"q8\""), "%s", j);
    /* TinyStories-656K: 2 layers, 4 kv heads of 16: 2 x 2 x (64 codes + 16 scale bytes) */
    cr_assert(strstr(j, "\"kv_cache_bytes_per_pos\": 320"), "%s", j);
    free(j);
    /* the serving modes: the pages hold q8 rows, and the bytes in use say so. TinyStories-656K's
     * page: 16 positions x 320 bytes (f32: x 1024) */
    snprintf(args, sizeof args, "--model '%s' --serve-bench --requests 4 --prompt-len 8:40 --gen-len 2:6 --kv-cache q8 "
             "--json --threads 1", model);
    j = quant_eval_json(dir, args);
    cr_assert(strstr(j, "\"kv_cache\": \"q8\"") && strstr(j, "\"kv_cache_scales\": \"per-token\"") &&
                  strstr(j, "\"page_bytes\": 5120") && strstr(j, "\"kv_peak_bytes\""),
              "%s", j);
    free(j);
    /* --batch-curve: 2 sequences of 8 + 4 positions hold one page each after the decode */
    snprintf(args, sizeof args, "--model '%s' --batch-curve 1,2 --n-prompt 8 --n-gen 4 --kv-cache fp8 --json "
             "--threads 1", model);
    j = quant_eval_json(dir, args);
    cr_assert(strstr(j, "\"kv_cache\": \"fp8\"") && strstr(j, "\"kv_bytes\": 5120") &&
                  strstr(j, "\"kv_bytes\": 10240"),
              "%s", j);
    free(j);
    snprintf(args, sizeof args, "--model '%s' --batch-curve 1 --kv-cache q4", model);
    cr_assert_eq(lq_test_run_tool("quant-eval", args, dir, err, sizeof err), 2);
    cr_assert(strstr(err, "--kv-cache") != NULL, "%s", err);
    snprintf(args, sizeof args, "--model '%s' --file '%s' --kv-cache q4", model, text);
    cr_assert_eq(lq_test_run_tool("quant-eval", args, dir, err, sizeof err), 2);
    cr_assert(strstr(err, "--kv-cache") != NULL, "%s", err);
    char rm[1100];
    snprintf(rm, sizeof rm, "rm -rf '%s'", dir);
    cr_assert_eq(system(rm), 0);
}

/* ---- kv_cache_scheme: written by quant-ptq, bound by the engine ---------------------------- */

#include "libquant/lq_gptq.h"
#include "libquant/lq_tokenizer.h"

static char *run_dir(void) {
    static char dir[64];
    snprintf(dir, sizeof dir, "/tmp/lq_kvs_XXXXXX");
    cr_assert_not_null(mkdtemp(dir));
    return dir;
}

/* Replace the value of config.json's kv_cache_scheme with `json`. */
static void set_kv_scheme(const char *path, const char *json) {
    size_t len;
    char *s = lq_test_read_file(path, &len);
    cr_assert_not_null(s);
    const char *key = "\"kv_cache_scheme\": ";
    char *p = strstr(s, key);
    cr_assert_not_null(p, "%s: no kv_cache_scheme", path);
    char *v = p + strlen(key), *e = v;
    if (*e == '{')
        for (int depth = 0; *e; e++) {
            depth += *e == '{' ? 1 : *e == '}' ? -1 : 0;
            if (depth == 0) break;
        }
    else
        e += 3; /* null */
    cr_assert(*e, "%s: unterminated kv_cache_scheme", path);
    FILE *f = fopen(path, "w");
    fwrite(s, 1, (size_t)(v - s), f);
    fputs(json, f);
    fputs(e + 1, f);
    fclose(f);
    free(s);
}

Test(kv_scheme, quant_ptq_writes_what_the_engine_binds, .timeout = 300) {
    char model[1024], text[1024], args[4096], err[4096], out[1200], cfg[1300];
    lq_test_shared(TINY, model, sizeof model);
    lq_test_shared("data/tinystories_sample.txt", text, sizeof text);
    const char *dir = run_dir();
    snprintf(out, sizeof out, "%s/q", dir);
    snprintf(args, sizeof args,
             "--model '%s' --scheme W8A16 --out '%s' --kv-cache-scheme fp8 --kv-cache-strategy attn_head "
             "--calib '%s' --calib-samples 4 --calib-len 64 --json", model, out, text);
    cr_assert_eq(lq_test_run_tool("quant-ptq", args, dir, err, sizeof err), 0, "%s", err);

    /* expected: max |K|, |V| per layer and kv head over the same four windows, as the attention op
     * sees them in the float model, / 448 */
    lq_model *m = load(TINY);
    const lq_config *c = lq_model_config(m);
    const int nl = c->n_layers, nh = c->n_kv_heads, hd = c->head_dim;
    lq_tokenizer *tok;
    cr_assert_eq(lq_tokenizer_load_for_model(model, NULL, c->vocab_size, &tok), LQ_OK, "%s", lq_last_error());
    const char *files[] = {text};
    lq_calib_set set;
    cr_assert_eq(lq_calib_samples(tok, files, 1, 4, 64, 0, &set), LQ_OK, "%s", lq_last_error());
    cr_assert_eq(set.n_samples, 4);
    memset(g_seen_k, 0, sizeof g_seen_k);
    memset(g_seen_v, 0, sizeof g_seen_v);
    g_layers = nl;
    float *logits = malloc((size_t)c->vocab_size * sizeof *logits);
    for (int64_t i = 0; i < set.n_samples; i++) {
        lq_session *s;
        cr_assert_eq(lq_session_create(m, 64, NULL, &s), LQ_OK);
        lq_backend_ops ops = *s->ops;
        ops.attention = record_attention;
        g_real = s->ops, g_calls = 0;
        s->ops = &ops;
        cr_assert_eq(lq_forward(s, set.ids + i * set.len, set.len, 0, logits, false), LQ_OK);
        s->ops = g_real;
        lq_session_free(s);
    }
    free(logits);
    lq_calib_set_free(&set);
    lq_tokenizer_free(tok);
    lq_model_free(m);

    snprintf(cfg, sizeof cfg, "%s/config.json", out);
    char *cj = lq_test_read_file(cfg, NULL);
    cr_assert(cj && strstr(cj, "\"kv_cache_scheme\"") && strstr(cj, "\"attn_head\"") && strstr(cj, "\"float\""),
              "%s", cj ? cj : "(none)");
    free(cj);
    lq_model *q;
    cr_assert_eq(lq_model_load(out, &q), LQ_OK, "%s", lq_last_error());
    cr_assert_eq(lq_model_kv_cache(q), LQ_KV_FP8, "the checkpoint's scheme is the default cache");
    cr_assert(lq_model_kv_static(q));
    for (int l = 0; l < nl; l++)
        for (int h = 0; h < nh; h++) {
            const float k = g_seen_k[l * MAX_KVH + h] / LQ_E4M3_MAX, v = g_seen_v[l * MAX_KVH + h] / LQ_E4M3_MAX;
            /* quant-ptq ran on its thread pool (other sums' order): equal to f32 rounding */
            cr_assert(k > 0 && fabsf(lq_model_kv_scale(q, l, false, h) - k) <= 1e-6f * k &&
                          fabsf(lq_model_kv_scale(q, l, true, h) - v) <= 1e-6f * v,
                      "layer %d head %d: k_scale %g, v_scale %g; the maxima / 448: %g, %g", l, h,
                      lq_model_kv_scale(q, l, false, h), lq_model_kv_scale(q, l, true, h), k, v);
        }
    cr_assert_eq(lq_model_kv_bytes_per_pos(q, LQ_KV_FP8), (size_t)nl * 2 * nh * hd, "codes only");
    lq_model_free(q);

    /* the scheme runs in batched sessions too: serve-bench pages its static-scale fp8 rows, a page
     * 16 positions of codes only */
    snprintf(args, sizeof args, "--model '%s' --serve-bench --requests 3 --prompt-len 5:20 --gen-len 2:4 --json "
             "--threads 1", out);
    cr_assert_eq(lq_test_run_tool("quant-eval", args, dir, err, sizeof err), 0, "%s", err);
    snprintf(cfg, sizeof cfg, "%s/stdout.txt", dir);
    cj = lq_test_read_file(cfg, NULL);
    char want[64];
    snprintf(want, sizeof want, "\"page_bytes\": %d", 16 * nl * 2 * nh * hd);
    cr_assert(cj && strstr(cj, "\"kv_cache\": \"fp8\"") && strstr(cj, "\"kv_cache_scales\": \"static\"") &&
                  strstr(cj, want) && strstr(cj, "\"requests\": 3"),
              "%s", cj ? cj : "(none)");
    free(cj);
    snprintf(cfg, sizeof cfg, "%s/config.json", out);

    /* what the engine cannot run is refused, naming the key or the tensor */
    set_kv_scheme(cfg, "{\"num_bits\": 8, \"type\": \"float\", \"strategy\": \"channel\", \"dynamic\": false}");
    cr_assert_neq(lq_model_load(out, &q), LQ_OK);
    cr_assert(strstr(lq_last_error(), "strategy") && strstr(lq_last_error(), "channel"), "%s", lq_last_error());
    set_kv_scheme(cfg, "{\"num_bits\": 8, \"type\": \"int\", \"symmetric\": false, \"strategy\": \"tensor\"}");
    cr_assert_neq(lq_model_load(out, &q), LQ_OK);
    cr_assert(strstr(lq_last_error(), "symmetric"), "%s", lq_last_error());
    set_kv_scheme(cfg, "{\"num_bits\": 4, \"type\": \"int\", \"strategy\": \"tensor\"}");
    cr_assert_neq(lq_model_load(out, &q), LQ_OK);
    cr_assert(strstr(lq_last_error(), "4-bit"), "%s", lq_last_error());
    char rm[200];
    snprintf(rm, sizeof rm, "rm -rf '%s'", dir);
    cr_assert_eq(system(rm), 0);
}

Test(kv_scheme, a_missing_scale_tensor_is_named) {
    char model[1024], args[4096], err[4096], out[1200], cfg[1300];
    lq_test_shared(TINY, model, sizeof model);
    const char *dir = run_dir();
    snprintf(out, sizeof out, "%s/q", dir);
    snprintf(args, sizeof args, "--model '%s' --scheme W8A16 --out '%s'", model, out);
    cr_assert_eq(lq_test_run_tool("quant-ptq", args, dir, err, sizeof err), 0, "%s", err);
    snprintf(cfg, sizeof cfg, "%s/config.json", out);
    set_kv_scheme(cfg, "{\"num_bits\": 8, \"type\": \"int\", \"symmetric\": true, \"strategy\": \"tensor\", "
                       "\"dynamic\": false}");
    lq_model *q;
    cr_assert_eq(lq_model_load(out, &q), LQ_ERR_FORMAT);
    cr_assert(strstr(lq_last_error(), "model.layers.0.self_attn.k_scale"), "%s", lq_last_error());
    /* a dynamic scheme needs no tensors: per-token scales */
    set_kv_scheme(cfg, "{\"num_bits\": 8, \"type\": \"int\", \"symmetric\": true, \"dynamic\": true}");
    cr_assert_eq(lq_model_load(out, &q), LQ_OK, "%s", lq_last_error());
    cr_assert_eq(lq_model_kv_cache(q), LQ_KV_Q8);
    cr_assert(!lq_model_kv_static(q));
    lq_model_free(q);
    char rm[200];
    snprintf(rm, sizeof rm, "rm -rf '%s'", dir);
    cr_assert_eq(system(rm), 0);
}

Test(kv_scheme, a_recipe_kv_cache_scheme_runs_as_llm_compressor_writes_it, .timeout = 300) {
    char model[1024], text[1024], args[4096], err[4096], out[1200], recipe[1200];
    lq_test_shared(TINY, model, sizeof model);
    lq_test_shared("data/tinystories_sample.txt", text, sizeof text);
    const char *dir = run_dir();
    snprintf(recipe, sizeof recipe, "%s/recipe.yaml", dir);
    FILE *f = fopen(recipe, "w");
    cr_assert_not_null(f);
    /* the shape of llm-compressor's FP8 KV-cache examples */
    fputs("quant_stage:\n  quant_modifiers:\n    QuantizationModifier:\n      ignore: [\"lm_head\"]\n"
          "      scheme: FP8\n      kv_cache_scheme:\n        num_bits: 8\n        type: int\n"
          "        strategy: attn_head\n        dynamic: false\n        symmetric: true\n        observer: minmax\n",
          f);
    fclose(f);
    snprintf(out, sizeof out, "%s/out", dir);
    snprintf(args, sizeof args, "run '%s' --model '%s' --out '%s' --calib '%s' --calib-samples 2 --calib-len 64",
             recipe, model, out, text);
    cr_assert_eq(lq_test_run_tool("quant-recipe", args, dir, err, sizeof err), 0, "%s", err);
    lq_model *q;
    cr_assert_eq(lq_model_load(out, &q), LQ_OK, "%s", lq_last_error());
    cr_assert_eq(lq_model_kv_cache(q), LQ_KV_Q8);
    cr_assert(lq_model_kv_static(q) && lq_model_kv_scale(q, 1, true, 3) > 0);
    lq_model_free(q);
    /* without calibration text the run stops, naming the argument */
    snprintf(args, sizeof args, "run '%s' --model '%s' --out '%s/out2'", recipe, model, dir);
    cr_assert_neq(lq_test_run_tool("quant-recipe", args, dir, err, sizeof err), 0);
    cr_assert(strstr(err, "kv_cache_scheme") && strstr(err, "--calib"), "%s", err);
    char rm[200];
    snprintf(rm, sizeof rm, "rm -rf '%s'", dir);
    cr_assert_eq(system(rm), 0);
}
