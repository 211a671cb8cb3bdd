/* test_imatrix_file.c - llama.cpp's imatrix files (lq_imatrix_save / lq_imatrix_load).
 *
 * References from outside the code under test: the sums of squares recomputed in double from the
 * raw inputs the per-Linear hook hands out (llama-imatrix's definition: per input column, the
 * sum of x^2 over the tokens, and the token count), and the GGUF names llama.cpp gives the
 * stories260K ("llama") projections (blk.N.attn_q.weight ...). A GGUF imatrix written by us is
 * read back by the gguf PyPI package in scripts/imatrix_compare.py (not here: no Python in CI), by
 * our validating GGUF reader here, and by lq_imatrix_load; the legacy .dat is read back too.
 */
#include <criterion/criterion.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "libquant/lq_calib.h"
#include "libquant/lq_gguf.h"
#include "libquant/lq_model.h"
#include "lq_test_util.h"

#define NMOD 40

typedef struct raw {
    char module[NMOD][96];
    int64_t cols[NMOD], tokens[NMOD];
    double *sq[NMOD];
    int n;
} raw;

static void raw_hook(void *user, const lq_linear_input *in) {
    raw *r = user;
    int i = 0;
    while (i < r->n && strcmp(r->module[i], in->module) != 0) i++;
    if (i == r->n) {
        cr_assert(r->n < NMOD);
        snprintf(r->module[i], sizeof r->module[i], "%s", in->module);
        r->cols[i] = in->cols;
        r->sq[i] = calloc((size_t)in->cols, sizeof(double));
        r->n++;
    }
    for (int t = 0; t < in->n_tokens; t++)
        for (int64_t j = 0; j < in->cols; j++) r->sq[i][j] += (double)in->x[t * in->cols + j] * in->x[t * in->cols + j];
    r->tokens[i] += in->n_tokens;
}

/* llama.cpp's GGUF name of a stories260K projection module. */
static void gguf_name(const char *module, char *buf, size_t cap) {
    static const char *const map[][2] = {{"self_attn.q_proj", "attn_q"}, {"self_attn.k_proj", "attn_k"},
                                         {"self_attn.v_proj", "attn_v"}, {"self_attn.o_proj", "attn_output"},
                                         {"mlp.gate_proj", "ffn_gate"},  {"mlp.up_proj", "ffn_up"},
                                         {"mlp.down_proj", "ffn_down"}};
    int l;
    char rest[64];
    cr_assert_eq(sscanf(module, "model.layers.%d.%63s", &l, rest), 2, "%s", module);
    for (size_t i = 0; i < sizeof map / sizeof map[0]; i++)
        if (strcmp(rest, map[i][0]) == 0) {
            snprintf(buf, cap, "blk.%d.%s.weight", l, map[i][1]);
            return;
        }
    cr_assert_fail("unknown module %s", module);
}

Test(imatrix_file, gguf_and_dat_round_trip_stories260k, .timeout = 120) {
    char bin[1024];
    lq_test_shared("models/stories260K/stories260K.bin", bin, sizeof bin);
    lq_model *m = NULL;
    cr_assert_eq(lq_model_load(bin, &m), LQ_OK, "%s", lq_last_error());
    const int n_ids = 96, ctx = 32; /* 3 whole chunks, llama-imatrix's protocol */
    int32_t ids[96];
    for (int i = 0; i < n_ids; i++) ids[i] = (int32_t)((i * 53 + 7) % 512);
    lq_session *s = NULL;
    cr_assert_eq(lq_session_create(m, ctx, NULL, &s), LQ_OK);
    lq_imatrix *im = NULL;
    cr_assert_eq(lq_imatrix_create(&im), LQ_OK);
    cr_assert_eq(lq_imatrix_collect(m, s, ids, n_ids, ctx, 1, im), LQ_OK, "%s", lq_last_error());
    cr_assert_eq(lq_imatrix_set_config(im, lq_model_config(m)), LQ_OK, "%s", lq_last_error());
    lq_imatrix_set_chunks(im, 3, ctx);
    cr_assert_eq(lq_imatrix_add_dataset(im, "calib.txt"), LQ_OK);

    static raw r;
    memset(&r, 0, sizeof r);
    lq_session_set_linear_hook(s, raw_hook, &r);
    float *logits = malloc((size_t)ctx * 512 * sizeof(float));
    for (int at = 0; at < n_ids; at += ctx) {
        int32_t chunk[32];
        memcpy(chunk, ids + at, sizeof chunk);
        chunk[0] = 1;
        cr_assert_eq(lq_forward(s, chunk, ctx, 0, logits, true), LQ_OK);
    }
    cr_assert_eq(r.n, 36); /* 5 layers x 7 projections + the head */

    char gpath[256], dpath[256];
    snprintf(gpath, sizeof gpath, "/tmp/lq_test_imatrix_%d.gguf", (int)getpid());
    snprintf(dpath, sizeof dpath, "/tmp/lq_test_imatrix_%d.dat", (int)getpid());
    cr_assert_eq(lq_imatrix_save(im, gpath, LQ_IMATRIX_GGUF), LQ_OK, "%s", lq_last_error());
    cr_assert_eq(lq_imatrix_save(im, dpath, LQ_IMATRIX_DAT), LQ_OK, "%s", lq_last_error());

    /* the GGUF layout, through the GGUF reader: metadata and two F32 tensors per projection */
    lq_gguf *g = NULL;
    cr_assert_eq(lq_gguf_open(gpath, &g), LQ_OK, "%s", lq_last_error());
    lq_gguf_str str;
    int64_t v;
    cr_assert_eq(lq_gguf_get_str(g, "general.type", &str), LQ_OK);
    cr_assert(str.len == 7 && memcmp(str.data, "imatrix", 7) == 0);
    cr_assert_eq(lq_gguf_get_i64(g, "imatrix.chunk_count", &v), LQ_OK);
    cr_assert_eq(v, 3);
    cr_assert_eq(lq_gguf_get_i64(g, "imatrix.chunk_size", &v), LQ_OK);
    cr_assert_eq(v, ctx);
    cr_assert_eq(lq_gguf_arr_str(g, "imatrix.datasets", 0, &str), LQ_OK);
    cr_assert(str.len == 9 && memcmp(str.data, "calib.txt", 9) == 0);
    cr_assert_eq(lq_gguf_tensor_count(g), 70, "the head is not stored (llama-imatrix without --process-output)");
    for (int i = 0; i < r.n; i++) {
        if (strcmp(r.module[i], "lm_head") == 0) continue;
        char gn[96], tn[128];
        gguf_name(r.module[i], gn, sizeof gn);
        snprintf(tn, sizeof tn, "%s.in_sum2", gn);
        const lq_gguf_tensor_info *t = lq_gguf_find_tensor(g, tn);
        cr_assert_not_null(t, "%s missing", tn);
        cr_assert(t->type == 0 && t->n_dims == 1 && t->ne[0] == r.cols[i]);
        const float *sums = (const float *)((const char *)lq_gguf_file_data(g) + t->offset);
        for (int64_t j = 0; j < r.cols[i]; j++)
            cr_assert(fabs(sums[j] - r.sq[i][j]) <= 1e-6 * r.sq[i][j] + 1e-30, "%s[%lld]: %g vs %g", tn,
                      (long long)j, sums[j], r.sq[i][j]);
        snprintf(tn, sizeof tn, "%s.counts", gn);
        t = lq_gguf_find_tensor(g, tn);
        cr_assert(t && t->type == 0 && t->ne[0] == 1);
        cr_assert_eq(*(const float *)((const char *)lq_gguf_file_data(g) + t->offset), (float)n_ids);
    }
    lq_gguf_close(g);

    /* both files back through lq_imatrix_load: means by GGUF name, and by HF name once it knows
     * the model */
    const char *paths[2] = {gpath, dpath};
    for (int f = 0; f < 2; f++) {
        lq_imatrix *back = NULL;
        cr_assert_eq(lq_imatrix_load(paths[f], &back), LQ_OK, "%s", lq_last_error());
        cr_assert_eq(lq_imatrix_count(back), 35);
        cr_assert_eq(lq_imatrix_chunk_count(back), 3);
        cr_assert_str_eq(lq_imatrix_dataset(back, 0), "calib.txt");
        cr_assert_null(lq_imatrix_get(back, "model.layers.0.self_attn.q_proj", 64, NULL), "HF name without a config");
        cr_assert_eq(lq_imatrix_set_config(back, lq_model_config(m)), LQ_OK);
        for (int i = 0; i < r.n; i++) {
            if (strcmp(r.module[i], "lm_head") == 0) continue;
            char gn[96];
            gguf_name(r.module[i], gn, sizeof gn);
            const float *a = lq_imatrix_get(back, gn, r.cols[i], NULL);
            cr_assert_not_null(a, "%s: %s missing", paths[f], gn);
            float mean_a[200];
            memcpy(mean_a, a, (size_t)r.cols[i] * sizeof(float));
            const float *b = lq_imatrix_get(back, r.module[i], r.cols[i], NULL);
            cr_assert_not_null(b, "%s by HF name", r.module[i]);
            for (int64_t j = 0; j < r.cols[i]; j++) {
                const double want = r.sq[i][j] / n_ids;
                cr_assert(fabs(mean_a[j] - want) <= 1e-6 * want + 1e-30, "%s %s[%lld]: %g vs %g", paths[f], gn,
                          (long long)j, mean_a[j], want);
                cr_assert_eq(mean_a[j], b[j]);
            }
        }
        lq_imatrix_free(back);
    }
    unlink(gpath);
    unlink(dpath);
    for (int i = 0; i < r.n; i++) free(r.sq[i]);
    free(logits);
    lq_imatrix_free(im);
    lq_session_free(s);
    lq_model_free(m);
}

Test(imatrix_file, bad_files_are_refused_by_name) {
    char path[256];
    snprintf(path, sizeof path, "/tmp/lq_test_imatrix_bad_%d.dat", (int)getpid());
    /* one entry whose 1000 values run past the end */
    const int32_t head[] = {1, 3};
    FILE *f = fopen(path, "wb");
    fwrite(head, sizeof head, 1, f);
    fwrite("abc", 3, 1, f);
    const int32_t nv[] = {1, 1000};
    fwrite(nv, sizeof nv, 1, f);
    fclose(f);
    lq_imatrix *im = NULL;
    cr_assert_eq(lq_imatrix_load(path, &im), LQ_ERR_FORMAT);
    cr_assert_null(im);
    cr_assert(strstr(lq_last_error(), path) && strstr(lq_last_error(), "'abc'"), "%s", lq_last_error());
    f = fopen(path, "wb");
    fclose(f);
    cr_assert_eq(lq_imatrix_load(path, &im), LQ_ERR_FORMAT);
    unlink(path);
}
