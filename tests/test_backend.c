/* test_backend.c - the backend op tables (libquant/src/model/backend.h, internal).
 *
 * - a table that lacks an op a model needs is refused, and the message names the op;
 * - the CPU table's windowed attention equals plain causal attention over the last `window`
 *   cache rows, computed here with doubles straight from the definition (softmax of q.k * scale,
 *   weighted sum of v) - the reference the Mistral fixture then checks end to end.
 */
#include <criterion/criterion.h>

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "../libquant/src/model/backend.h"
#include "lq_test_util.h"

static bool no_rmsnorm(lq_op op) { return op != LQ_OP_RMSNORM; }

Test(backend, refuses_a_table_without_a_needed_op) {
    char bin[1024];
    lq_test_shared("models/stories260K/stories260K.bin", bin, sizeof bin);
    lq_model *m;
    cr_assert_eq(lq_model_load(bin, &m), LQ_OK, "%s", lq_last_error());
    cr_assert_eq(lq_backend_check(m, &lq_backend_cpu), LQ_OK, "%s", lq_last_error());
    lq_backend_ops partial = lq_backend_cpu;
    partial.name = "partial";
    partial.supports = no_rmsnorm;
    cr_assert_eq(lq_backend_check(m, &partial), LQ_ERR_UNSUPPORTED);
    cr_assert(strstr(lq_last_error(), "'rmsnorm'") && strstr(lq_last_error(), "partial"), "%s", lq_last_error());
    /* Gemma 3's GeGLU and embedding scale run on the CPU table (test_arch checks them against
     * transformers); the CUDA table has neither and refuses a Gemma session by name */
    cr_assert(lq_backend_cpu.supports(LQ_OP_GEGLU_TANH) && lq_backend_cpu.supports(LQ_OP_SCALE));
    lq_model_free(m);
}

/* out[t][h] from the definition, over cache rows lo..p with lo = max(0, p - window + 1). */
static void attention_def(const lq_attn_args *a, double *out) {
    const int hd = a->head_dim, group = a->n_heads / a->n_kv_heads;
    const int64_t qd = (int64_t)a->n_heads * hd, kvd = (int64_t)a->n_kv_heads * hd;
    for (int t = 0; t < a->n_tok; t++)
        for (int h = 0; h < a->n_heads; h++) {
            const int p = a->pos0 + t, lo = a->window > 0 && p - a->window + 1 > 0 ? p - a->window + 1 : 0;
            const float *q = a->q + t * qd + (int64_t)h * hd;
            double sc[64], mx = -INFINITY, sum = 0.0;
            for (int i = lo; i <= p; i++) {
                double d = 0.0;
                for (int k = 0; k < hd; k++) d += (double)q[k] * a->kc[i * kvd + (int64_t)(h / group) * hd + k];
                sc[i - lo] = d * a->scale;
                mx = sc[i - lo] > mx ? sc[i - lo] : mx;
            }
            for (int i = lo; i <= p; i++) sum += sc[i - lo] = exp(sc[i - lo] - mx);
            for (int k = 0; k < hd; k++) {
                double o = 0.0;
                for (int i = lo; i <= p; i++) o += sc[i - lo] / sum * a->vc[i * kvd + (int64_t)(h / group) * hd + k];
                out[t * qd + (int64_t)h * hd + k] = o;
            }
        }
}

Test(backend, cpu_windowed_attention_matches_definition) {
    enum { N_CTX = 40, HD = 8, NH = 4, NKV = 2, N_TOK = 5, POS0 = 30 };
    const int64_t qd = NH * HD, kvd = NKV * HD;
    float *q = malloc(N_TOK * qd * sizeof *q), *kc = malloc(N_CTX * kvd * sizeof *kc);
    float *vc = malloc(N_CTX * kvd * sizeof *vc), *out = malloc(N_TOK * qd * sizeof *out);
    double *want = malloc(N_TOK * qd * sizeof *want);
    uint32_t s = 12345;
    for (int64_t i = 0; i < N_TOK * qd; i++) q[i] = (float)((s = s * 1664525u + 1013904223u) >> 8) / (1 << 24) - 0.5f;
    for (int64_t i = 0; i < N_CTX * kvd; i++) {
        kc[i] = (float)((s = s * 1664525u + 1013904223u) >> 8) / (1 << 24) - 0.5f;
        vc[i] = (float)((s = s * 1664525u + 1013904223u) >> 8) / (1 << 24) - 0.5f;
    }
    void *ctx;
    cr_assert_eq(lq_backend_cpu.ctx_create(NULL, N_CTX, NULL, &ctx), LQ_OK);
    const int windows[] = {0, 1, 7, 34, 35, 100};
    for (size_t w = 0; w < sizeof windows / sizeof windows[0]; w++) {
        lq_attn_args a = {.out = out, .q = q, .kc = kc, .vc = vc, .n_tok = N_TOK, .pos0 = POS0,
                          .n_heads = NH, .n_kv_heads = NKV, .head_dim = HD, .window = windows[w],
                          .scale = 1.0f / sqrtf((float)HD)};
        cr_assert_eq(lq_backend_cpu.attention(ctx, &a), LQ_OK);
        attention_def(&a, want);
        /* f32 dots of 8 terms and a softmax over <= 35 scores: a few ulps of values ~0.5 */
        for (int64_t i = 0; i < N_TOK * qd; i++)
            cr_assert(fabs(out[i] - want[i]) <= 1e-5, "window %d: out[%lld] = %g, definition %g", windows[w],
                      (long long)i, (double)out[i], want[i]);
    }
    lq_backend_cpu.ctx_free(ctx);
    free(q); free(kc); free(vc); free(out); free(want);
}

/* Prefill (>= 8 query rows) as sgemm tiles of 32 rows (attn_cpu_gemm.c, the default in builds
 * with OpenBLAS): two tiles here, the second past the first's keys, GQA, windows that cut inside
 * a tile; against the definition and against the per-row loop (LQ_ATTN_GEMM=0), on 1 and 2 threads. */
Test(backend, cpu_prefill_attention_gemm_matches_definition) {
    enum { N_CTX = 64, HD = 16, NH = 6, NKV = 2, N_TOK = 45, POS0 = 10 };
    const int64_t qd = NH * HD, kvd = NKV * HD;
    float *q = malloc(N_TOK * qd * sizeof *q), *kc = malloc(N_CTX * kvd * sizeof *kc);
    float *vc = malloc(N_CTX * kvd * sizeof *vc), *out = malloc(N_TOK * qd * sizeof *out);
    float *loop = malloc(N_TOK * qd * sizeof *loop);
    double *want = malloc(N_TOK * qd * sizeof *want);
    uint32_t s = 777;
    for (int64_t i = 0; i < N_TOK * qd; i++) q[i] = (float)((s = s * 1664525u + 1013904223u) >> 8) / (1 << 23) - 1.0f;
    for (int64_t i = 0; i < N_CTX * kvd; i++) {
        kc[i] = (float)((s = s * 1664525u + 1013904223u) >> 8) / (1 << 23) - 1.0f;
        vc[i] = (float)((s = s * 1664525u + 1013904223u) >> 8) / (1 << 24) - 0.5f;
    }
    lq_pool *pool = lq_pool_create(2);
    for (int threads = 1; threads <= 2; threads++) {
        void *ctx, *ctx_loop;
        setenv("LQ_ATTN_GEMM", "0", 1);
        cr_assert_eq(lq_backend_cpu.ctx_create(NULL, N_CTX, threads == 2 ? pool : NULL, &ctx_loop), LQ_OK);
        unsetenv("LQ_ATTN_GEMM");
        cr_assert_eq(lq_backend_cpu.ctx_create(NULL, N_CTX, threads == 2 ? pool : NULL, &ctx), LQ_OK);
        const int windows[] = {0, 1, 7, 20, 100};
        for (size_t w = 0; w < sizeof windows / sizeof windows[0]; w++) {
            lq_attn_args a = {.out = out, .q = q, .kc = kc, .vc = vc, .n_tok = N_TOK, .pos0 = POS0,
                              .n_heads = NH, .n_kv_heads = NKV, .head_dim = HD, .window = windows[w],
                              .scale = 1.0f / sqrtf((float)HD)};
            cr_assert_eq(lq_backend_cpu.attention(ctx, &a), LQ_OK);
            a.out = loop;
            cr_assert_eq(lq_backend_cpu.attention(ctx_loop, &a), LQ_OK);
            attention_def(&a, want);
            /* f32 dots of 16 terms, softmax over <= 55 scores, |v| <= 0.5: a few ulps (both paths
             * measured ~4e-8 from the double evaluation) */
            for (int64_t i = 0; i < N_TOK * qd; i++) {
                cr_assert(fabs(out[i] - want[i]) <= 1e-6, "%d threads, window %d: out[%lld] = %.9g, definition %.9g",
                          threads, windows[w], (long long)i, (double)out[i], want[i]);
                cr_assert(fabs(out[i] - loop[i]) <= 1e-6, "%d threads, window %d: out[%lld] = %.9g, per-row loop %.9g",
                          threads, windows[w], (long long)i, (double)out[i], (double)loop[i]);
            }
        }
        lq_backend_cpu.ctx_free(ctx);
        lq_backend_cpu.ctx_free(ctx_loop);
    }
    lq_pool_free(pool);
    free(q); free(kc); free(vc); free(out); free(loop); free(want);
}
