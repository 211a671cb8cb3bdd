/* test_calib.c - the per-Linear input hook and the imatrix statistics built on it (issue 11
 * item 5, issue 18 item 2).
 *
 * References from outside the code under test: the stories260K checkpoint's own tensors (the
 * embedding rows and input_layernorm weights: layer 0's q/k/v input must be RMSNorm(embedding)
 * * weight, computed here in double), the residual-stream layer hook (the head's input is the
 * final norm it shows), and the mean squares recomputed in double from the raw inputs the hook
 * hands out (llama.cpp imatrix's definition: sum of x^2 per input column / tokens).
 */
#include <criterion/criterion.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "libquant/lq_calib.h"
#include "libquant/lq_checkpoint.h"
#include "libquant/lq_model.h"
#include "lq_test_util.h"

#define MAX_MOD 64

/* Raw recorder: per module, sum of x^2 per column in double and every call's shape. */
typedef struct rec {
    char module[MAX_MOD][96];
    char role[MAX_MOD][8];
    int layer[MAX_MOD];
    int64_t cols[MAX_MOD], tokens[MAX_MOD], calls[MAX_MOD];
    double *sq[MAX_MOD];
    int n;
    float *q0_in;      /* layer 0 q_proj input of the first call (n x dim) */
    float *head_in;    /* head input of the first call */
    int q0_n, head_n;
    float *final_norm; /* layer hook at n_layers, first call */
} rec;

static void raw_hook(void *user, const lq_linear_input *in) {
    rec *r = user;
    int i = 0;
    while (i < r->n && strcmp(r->module[i], in->module) != 0) i++;
    if (i == r->n) {
        cr_assert(r->n < MAX_MOD);
        snprintf(r->module[i], sizeof r->module[i], "%s", in->module);
        snprintf(r->role[i], sizeof r->role[i], "%s", in->role);
        r->layer[i] = in->layer;
        r->cols[i] = in->cols;
        r->sq[i] = calloc((size_t)in->cols, sizeof(double));
        r->n++;
    }
    cr_assert_eq(in->expert, -1);
    cr_assert_eq(r->cols[i], in->cols, "%s: width changed", in->module);
    for (int t = 0; t < in->n_tokens; t++)
        for (int64_t j = 0; j < in->cols; j++) r->sq[i][j] += (double)in->x[t * in->cols + j] * in->x[t * in->cols + j];
    r->tokens[i] += in->n_tokens;
    r->calls[i]++;
    size_t bytes = (size_t)in->n_tokens * (size_t)in->cols * sizeof(float);
    if (!r->q0_in && strcmp(in->module, "model.layers.0.self_attn.q_proj") == 0) {
        r->q0_in = malloc(bytes);
        memcpy(r->q0_in, in->x, bytes);
        r->q0_n = in->n_tokens;
    }
    if (!r->head_in && strcmp(in->role, "head") == 0) {
        r->head_in = malloc(bytes);
        memcpy(r->head_in, in->x, bytes);
        r->head_n = in->n_tokens;
    }
}

static void layer_hook(void *user, int layer, const float *x, int n, int pos) {
    rec *r = user;
    (void)pos;
    if (layer == 5 && !r->final_norm) {
        r->final_norm = malloc((size_t)n * 64 * sizeof(float));
        memcpy(r->final_norm, x, (size_t)n * 64 * sizeof(float));
    }
}

Test(linear_hook, imatrix_matches_raw_inputs_on_stories260k, .timeout = 120) {
    char bin[1024];
    lq_test_shared("models/stories260K/stories260K.bin", bin, sizeof bin);
    lq_model *m = NULL;
    cr_assert_eq(lq_model_load(bin, &m), LQ_OK, "%s", lq_last_error());
    const int n_ids = 100, ctx = 40; /* chunks of 40, 40 and 20 tokens */
    int32_t ids[100];
    for (int i = 0; i < n_ids; i++) ids[i] = (int32_t)((i * 37 + 11) % 512);

    /* the imatrix, through lq_imatrix_collect */
    lq_session *s = NULL;
    cr_assert_eq(lq_session_create(m, ctx, NULL, &s), LQ_OK);
    lq_imatrix *im = NULL;
    cr_assert_eq(lq_imatrix_create(&im), LQ_OK);
    cr_assert_eq(lq_imatrix_collect(m, s, ids, n_ids, ctx, 1, im), LQ_OK, "%s", lq_last_error());

    /* the same chunks by hand with the raw recorder (and the residual hook) */
    static rec r;
    memset(&r, 0, sizeof r);
    lq_session_set_linear_hook(s, raw_hook, &r);
    lq_session_set_layer_hook(s, layer_hook, &r);
    float *logits = malloc((size_t)ctx * 512 * sizeof(float));
    for (int at = 0; at < n_ids; at += ctx) {
        int32_t chunk[40];
        int len = n_ids - at < ctx ? n_ids - at : ctx;
        memcpy(chunk, ids + at, (size_t)len * sizeof *chunk);
        chunk[0] = 1;
        cr_assert_eq(lq_forward(s, chunk, len, 0, logits, true), LQ_OK);
    }
    /* 5 layers x 7 projections + the head, every one before each of the 3 forwards */
    cr_assert_eq(r.n, 36, "modules seen: %d", r.n);
    cr_assert_eq(lq_imatrix_count(im), 36);
    for (int i = 0; i < r.n; i++) {
        cr_assert_eq(r.calls[i], 3, "%s: %lld calls", r.module[i], (long long)r.calls[i]);
        cr_assert_eq(r.tokens[i], n_ids, "%s: %lld tokens", r.module[i], (long long)r.tokens[i]);
        int64_t want_cols = strcmp(r.role[i], "down") == 0 ? 172 : 64;
        cr_assert_eq(r.cols[i], want_cols, "%s: %lld columns", r.module[i], (long long)r.cols[i]);
        int64_t nt = 0;
        const float *ms = lq_imatrix_get(im, r.module[i], r.cols[i], &nt);
        cr_assert_not_null(ms, "%s missing from the imatrix", r.module[i]);
        cr_assert_eq(nt, n_ids);
        for (int64_t j = 0; j < r.cols[i]; j++) {
            double want = r.sq[i][j] / n_ids;
            cr_assert(fabs(ms[j] - want) <= 1e-6 * want + 1e-30, "%s col %lld: %g vs %g", r.module[i],
                      (long long)j, ms[j], want);
        }
    }
    cr_assert_null(lq_imatrix_get(im, "model.layers.0.self_attn.q_proj", 65, NULL), "wrong width accepted");

    /* layer 0's q input is RMSNorm(embedding row) * input_layernorm, from the checkpoint */
    const lq_tensor *emb = lq_checkpoint_find(lq_model_checkpoint(m), "model.embed_tokens.weight");
    const lq_tensor *nw = lq_checkpoint_find(lq_model_checkpoint(m), "model.layers.0.input_layernorm.weight");
    cr_assert(emb && nw);
    cr_assert_eq(r.q0_n, ctx);
    for (int t = 0; t < r.q0_n; t++) {
        int id = t == 0 ? 1 : ids[t];
        double ss = 0;
        for (int j = 0; j < 64; j++) ss += pow(lq_tensor_get_f32(emb, (int64_t)id * 64 + j), 2);
        double inv = 1.0 / sqrt(ss / 64 + lq_model_config(m)->norm_eps);
        for (int j = 0; j < 64; j++) {
            double want = lq_tensor_get_f32(emb, (int64_t)id * 64 + j) * inv * lq_tensor_get_f32(nw, j);
            cr_assert(fabs(r.q0_in[t * 64 + j] - want) <= 1e-5 + 1e-5 * fabs(want), "q0 input [%d][%d]: %g vs %g",
                      t, j, r.q0_in[t * 64 + j], want);
        }
    }
    /* the head multiplies the final norm the residual hook shows, every row */
    cr_assert_eq(r.head_n, ctx);
    cr_assert_eq(memcmp(r.head_in, r.final_norm, (size_t)ctx * 64 * sizeof(float)), 0);

    for (int i = 0; i < r.n; i++) free(r.sq[i]);
    free(r.q0_in); free(r.head_in); free(r.final_norm); free(logits);
    lq_imatrix_free(im);
    lq_session_free(s);
    lq_model_free(m);
}

/* Every Linear input of one layer, concatenated in call order. */
typedef struct seen {
    float *x;
    size_t n, cap;
    int calls;
} seen;

static void seen_hook(void *user, const lq_linear_input *in) {
    seen *s = user;
    size_t k = (size_t)in->n_tokens * (size_t)in->cols;
    if (s->n + k > s->cap) {
        s->cap = 2 * (s->n + k);
        s->x = realloc(s->x, s->cap * sizeof *s->x);
        cr_assert_not_null(s->x);
    }
    memcpy(s->x + s->n, in->x, k * sizeof *s->x);
    s->n += k;
    s->calls++;
}

/* lq_session_observe_layer (the calibration pass that skips the down projections) shows every
 * Linear the same input as lq_session_forward_layer, bit for bit, and leaves x alone. */
Test(linear_hook, observe_layer_sees_what_forward_layer_sees, .timeout = 60) {
    char bin[1024];
    lq_test_shared("models/stories260K/stories260K.bin", bin, sizeof bin);
    lq_model *m = NULL;
    cr_assert_eq(lq_model_load(bin, &m), LQ_OK, "%s", lq_last_error());
    const int n = 24;
    lq_session *s = NULL;
    cr_assert_eq(lq_session_create(m, n, NULL, &s), LQ_OK);
    int32_t ids[24];
    for (int i = 0; i < n; i++) ids[i] = i == 0 ? 1 : (int32_t)((i * 53 + 7) % 512);
    float x[24 * 64], x0[24 * 64], y[24 * 64];
    cr_assert_eq(lq_session_embed(s, ids, n, x), LQ_OK);
    for (int l = 0; l < 2; l++) { /* layer 1 too: its input differs from the embedding */
        memcpy(x0, x, sizeof x);
        seen fw = {0}, ob = {0};
        lq_session_set_linear_hook(s, seen_hook, &ob);
        cr_assert_eq(lq_session_observe_layer(s, l, x, n, 0), LQ_OK, "%s", lq_last_error());
        cr_assert_eq(memcmp(x, x0, sizeof x), 0, "observe_layer changed its input");
        memcpy(y, x, sizeof x);
        lq_session_set_linear_hook(s, seen_hook, &fw);
        cr_assert_eq(lq_session_forward_layer(s, l, y, n, 0), LQ_OK);
        lq_session_set_linear_hook(s, NULL, NULL);
        cr_assert_eq(ob.calls, 7, "layer %d: %d Linears observed", l, ob.calls);
        cr_assert_eq(fw.calls, ob.calls);
        cr_assert_eq(fw.n, ob.n);
        cr_assert_eq(memcmp(fw.x, ob.x, fw.n * sizeof *fw.x), 0, "layer %d: a Linear saw other inputs", l);
        cr_assert_neq(memcmp(y, x, sizeof x), 0, "forward_layer did not change x");
        memcpy(x, y, sizeof x);
        free(fw.x);
        free(ob.x);
    }
    lq_session_free(s);
    lq_model_free(m);
}
