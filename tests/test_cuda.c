/* test_cuda.c - the CUDA backend against the CPU specs.
 *
 * Every device kernel is compared with its CPU _ref twin (the spec): the GEMV (batch 1..8) and
 * the prefill GEMM of every weight format of the traits table at awkward shapes (W4A16 at every
 * group size, symmetric and with zero points), bit-exact dequantization, RMSNorm, RoPE, SwiGLU,
 * attention over a cache; then the whole engine: stories260K on the device scores
 * data/tinystories_sample.txt with llama2.c's reference perplexity (SOURCES.md, 3.548202) and
 * gives the same greedy text as the CPU. Tests that need a GPU skip (cr_skip_test) where there is
 * none or the build has no CUDA; what runs everywhere: device names and the one-line error of
 * --device cuda when it cannot be honoured.
 */
#include <criterion/criterion.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "libquant/lq_model.h"
#include "libquant/lq_tokenizer.h"
#include "lq_blocks.h"
#include "lq_eval.h"
#include "lq_format.h"
#include "lq_ops.h"
#include "lq_test_util.h"
#ifdef LQ_HAVE_CUDA
#include "lq_cuda.h"
#endif

#define REF_PPL 3.548202 /* SOURCES.md: llama2.c fp32 forward on tinystories_sample.txt */

static char g_model[1024], g_tok[1024], g_text[1024], g_run[1024];

static void paths(void) {
    lq_test_shared("models/stories260K/stories260K.bin", g_model, sizeof g_model);
    lq_test_shared("models/stories260K/tok512.bin", g_tok, sizeof g_tok);
    lq_test_shared("data/tinystories_sample.txt", g_text, sizeof g_text);
    lq_test_tool("quant-run", g_run, sizeof g_run);
}

static int have_device(void) {
#ifdef LQ_HAVE_CUDA
    return lq_cuda_device_count() > 0;
#else
    return 0;
#endif
}


/* ---- runs everywhere ---------------------------------------------------------------------- */

Test(cuda_api, device_names) {
    cr_expect_eq(lq_device_from_name("cpu"), LQ_DEVICE_CPU);
    cr_expect_eq(lq_device_from_name("cuda"), LQ_DEVICE_CUDA);
    cr_expect_eq(lq_device_from_name("gpu"), LQ_DEVICE_COUNT);
    cr_expect_eq(lq_device_from_name(NULL), LQ_DEVICE_COUNT);
    cr_expect_str_eq(lq_device_name(LQ_DEVICE_CUDA), "cuda");
}

/* Without a usable GPU, asking for one is a clean LQ_ERR_UNSUPPORTED naming cuda, and the model
 * stays usable on the CPU. */
Test(cuda_api, unavailable_device_is_a_clean_error, .init = paths) {
    if (have_device()) cr_skip_test("a CUDA device is present: covered by the device tests");
    lq_model *m = NULL;
    cr_assert_eq(lq_model_load(g_model, &m), LQ_OK, "%s", lq_last_error());
    cr_expect_eq(lq_model_to_device(m, LQ_DEVICE_CUDA), LQ_ERR_UNSUPPORTED);
    cr_expect(strstr(lq_last_error(), "cuda") != NULL, "message: %s", lq_last_error());
    cr_expect_eq(lq_model_device(m), LQ_DEVICE_CPU);
    lq_session *s = NULL;
    cr_expect_neq(lq_session_create_ex(m, 16, NULL, LQ_DEVICE_CUDA, &s), LQ_OK);
    cr_expect_null(s);
    cr_assert_eq(lq_session_create(m, 16, NULL, &s), LQ_OK);
    cr_expect_eq(lq_session_device(s), LQ_DEVICE_CPU);
    lq_session_free(s);
    lq_model_free(m);
}

/* Runs cmd, returns its exit status; stderr goes to err (NUL-terminated). */
static int run_capture(const char *cmd, char *err, size_t cap) {
    char path[] = "/tmp/lq_test_cuda_XXXXXX";
    int fd = mkstemp(path);
    cr_assert(fd >= 0);
    close(fd);
    char full[4096];
    snprintf(full, sizeof full, "%s 2>%s >/dev/null", cmd, path);
    int rc = system(full);
    FILE *f = fopen(path, "rb");
    size_t n = f ? fread(err, 1, cap - 1, f) : 0;
    err[n] = 0;
    if (f) fclose(f);
    remove(path);
    cr_assert(rc != -1 && WIFEXITED(rc), "%s did not exit normally", cmd);
    return WEXITSTATUS(rc);
}

Test(cuda_api, quant_run_device_flag, .init = paths) {
    char cmd[4096], err[4096];
    snprintf(cmd, sizeof cmd, "'%s' --model '%s' --tokenizer '%s' --prompt '' --max-tokens 2 --device tpu",
             g_run, g_model, g_tok);
    cr_expect_eq(run_capture(cmd, err, sizeof err), 2, "bad --device value: %s", err);
    if (have_device()) return; /* the run below would succeed: covered by engine tests */
    snprintf(cmd, sizeof cmd, "'%s' --model '%s' --tokenizer '%s' --prompt '' --max-tokens 2 --device cuda",
             g_run, g_model, g_tok);
    int rc = run_capture(cmd, err, sizeof err);
    cr_expect_neq(rc, 0);
    cr_expect(strncmp(err, "quant-run: error: ", 18) == 0, "stderr: %s", err);
    cr_expect(strstr(err, "cuda") != NULL, "stderr: %s", err);
    const char *nl = strchr(err, '\n');
    cr_expect(nl && nl[1] == 0, "one line expected: %s", err);
}

#ifdef LQ_HAVE_CUDA

static void need_device(void) {
    if (lq_cuda_device_count() <= 0) cr_skip_test("no CUDA device (cudaGetDeviceCount found none)");
}

/* ---- helpers -------------------------------------------------------------------------------- */

static uint64_t g_rng = 0x9e3779b97f4a7c15ull;
static uint32_t rng_u32(void) { /* xorshift64*: the same inputs on every machine */
    g_rng ^= g_rng >> 12; g_rng ^= g_rng << 25; g_rng ^= g_rng >> 27;
    return (uint32_t)((g_rng * 0x2545f4914f6cdd1dull) >> 32);
}
static float rng_f(float lo, float hi) { return lo + (hi - lo) * (float)(rng_u32() >> 8) * (1.0f / 16777216.0f); }
static void fill(float *v, int64_t n, float lo, float hi) { for (int64_t i = 0; i < n; i++) v[i] = rng_f(lo, hi); }

typedef struct hweight { /* a host weight with its own buffers */
    lq_weight w;
    void *data;
    float *aux0, *aux1;
} hweight;

/* Make a rows x cols weight of format fmt from random f32 (quantized with quantize_ref). */
static int make_weight(lq_wfmt fmt, int64_t rows, int64_t cols, int32_t gs, int asym, hweight *h) {
    memset(h, 0, sizeof *h);
    const lq_quant_params p = {.group_size = gs, .asym = asym};
    size_t rb;
    int64_t a0, a1;
    if (!lq_wfmt_sizes(fmt, rows, cols, &p, &rb, &a0, &a1)) return 0;
    float *src = malloc((size_t)(rows * cols) * sizeof(float));
    cr_assert(src);
    fill(src, rows * cols, -1.0f, 1.0f);
    h->data = malloc((size_t)rows * rb);
    cr_assert(h->data);
    h->w = (lq_weight){.fmt = fmt, .rows = rows, .cols = cols, .data = h->data, .row_bytes = rb};
    const lq_wfmt_traits *t = lq_wfmt_get(fmt);
    if (t->quantize_ref) {
        h->aux0 = malloc((size_t)(a0 > 0 ? a0 : 1) * sizeof(float));
        h->aux1 = a1 > 0 ? malloc((size_t)a1 * sizeof(float)) : NULL;
        h->w.aux[0] = h->aux0;
        h->w.aux[1] = h->aux1;
        t->quantize_ref(src, &p, &h->w);
    } else { /* float formats store the values */
        for (int64_t i = 0; i < rows * cols; i++) {
            if (fmt == LQ_WFMT_F32) ((float *)h->data)[i] = src[i];
            else if (fmt == LQ_WFMT_F16) ((uint16_t *)h->data)[i] = lq_f32_to_f16(src[i]);
            else ((uint16_t *)h->data)[i] = lq_f32_to_bf16(src[i]);
        }
    }
    free(src);
    return 1;
}
static void hfree(hweight *h) { free(h->data); free(h->aux0); free(h->aux1); }

/* One context per test process (Criterion forks each test): cuBLAS handles are slow to make. */
static lq_cuda_ctx *g_ctx;
static lq_cuda_ctx *ctx_get(void) {
    if (!g_ctx) cr_assert_eq(lq_cuda_ctx_create(&g_ctx), LQ_CUDA_OK, "%s", lq_cuda_last_error());
    return g_ctx;
}

static float *dev_from(const float *h, int64_t n) {
    float *d = NULL;
    cr_assert_eq(lq_cuda_alloc((void **)&d, (size_t)n * sizeof(float)), LQ_CUDA_OK, "%s", lq_cuda_last_error());
    cr_assert_eq(lq_cuda_upload(ctx_get(), d, h, (size_t)n * sizeof(float)), LQ_CUDA_OK);
    cr_assert_eq(lq_cuda_sync(ctx_get()), LQ_CUDA_OK);
    return d;
}

static void no_hook(void *user, int layer, const float *x, int n, int pos) {
    (void)user; (void)layer; (void)x; (void)n; (void)pos;
}

static void to_host(lq_cuda_ctx *ctx, float *h, const float *d, int64_t n) {
    cr_assert_eq(lq_cuda_download(ctx, h, d, (size_t)n * sizeof(float)), LQ_CUDA_OK, "%s",
                 lq_cuda_last_error());
}

/* One matmul of w (fmt, rows x cols) on n tokens through `path`, against lq_matmul_ref, with the
 * device table's tolerance |cuda - ref| <= atol + rtol * sum_c |W[r][c] x[c]|. */
static void check_matmul(lq_wfmt fmt, int64_t rows, int64_t cols, int32_t gs, int asym, int n,
                         lq_cuda_path path) {
    hweight h;
    if (!make_weight(fmt, rows, cols, gs, asym, &h)) return; /* shape the format refuses */
    float *X = malloc((size_t)(n * cols) * sizeof(float));
    float *ref = malloc((size_t)(n * rows) * sizeof(float));
    float *got = malloc((size_t)(n * rows) * sizeof(float));
    float *deq = malloc((size_t)(rows * cols) * sizeof(float));
    cr_assert(X && ref && got && deq);
    fill(X, n * cols, -1.0f, 1.0f);
    lq_matmul_ref(&h.w, X, n, ref);
    lq_wfmt_get(fmt)->dequant_ref(&h.w, 0, rows, deq);

    lq_cuda_ctx *ctx = ctx_get();
    lq_cuda_weight dw;
    cr_assert_eq(lq_cuda_weight_upload(&h.w, &dw), LQ_CUDA_OK, "%s", lq_cuda_last_error());
    float *dX = dev_from(X, n * cols), *dY = NULL;
    cr_assert_eq(lq_cuda_alloc((void **)&dY, (size_t)(n * rows) * sizeof(float)), LQ_CUDA_OK);
    cr_assert_eq(lq_cuda_matmul_path(ctx, &dw, dX, n, dY, path), LQ_CUDA_OK, "%s", lq_cuda_last_error());
    to_host(ctx, got, dY, n * rows);
    double atol, rtol;
    lq_cuda_tolerance(fmt, &atol, &rtol);
    for (int t = 0; t < n; t++)
        for (int64_t r = 0; r < rows; r++) {
            double abs_sum = 0;
            if (fmt != LQ_WFMT_W8A8) /* W8A8's bound is 0: exact */
                for (int64_t c = 0; c < cols; c++) abs_sum += fabs((double)deq[r * cols + c] * X[t * cols + c]);
            const double g = got[t * rows + r], e = ref[t * rows + r];
            cr_assert(fabs(g - e) <= atol + rtol * abs_sum,
                      "%s %lldx%lld gs %d asym %d n %d path %d: token %d row %lld: cuda %.9g ref %.9g",
                      lq_wfmt_get(fmt)->name, (long long)rows, (long long)cols, gs, asym, n, (int)path,
                      t, (long long)r, g, e);
        }

    /* dequantize: the same f32 operations as dequant_ref, so bit for bit */
    float *dD = NULL;
    cr_assert_eq(lq_cuda_alloc((void **)&dD, (size_t)(rows * cols) * sizeof(float)), LQ_CUDA_OK);
    cr_assert_eq(lq_cuda_dequant_rows(ctx, &dw, NULL, 0, rows, dD), LQ_CUDA_OK, "%s", lq_cuda_last_error());
    float *hd = malloc((size_t)(rows * cols) * sizeof(float));
    to_host(ctx, hd, dD, rows * cols);
    for (int64_t i = 0; i < rows * cols; i++)
        cr_assert(memcmp(&hd[i], &deq[i], sizeof(float)) == 0, "%s dequant [%lld][%lld]: cuda %.9g ref %.9g",
                  lq_wfmt_get(fmt)->name, (long long)(i / cols), (long long)(i % cols), hd[i], deq[i]);
    free(hd);
    lq_cuda_free(dD);
    lq_cuda_free(dX);
    lq_cuda_free(dY);
    lq_cuda_weight_free(&dw);
    free(X); free(ref); free(got); free(deq);
    hfree(&h);
}

static const int64_t k_cols[] = {1, 3, 31, 33, 127, 129, 256, 1023, 4096};
static const int64_t k_rows[] = {1, 5, 67};

static void check_format_all_shapes(lq_wfmt fmt) {
    for (size_t i = 0; i < sizeof k_cols / sizeof k_cols[0]; i++)
        for (size_t j = 0; j < sizeof k_rows / sizeof k_rows[0]; j++)
            for (int n = 1; n <= LQ_CUDA_GEMV_MAX_BATCH; n += (n < 3 ? 1 : 5)) /* 1, 2, 3, 8 */
                check_matmul(fmt, k_rows[j], k_cols[i], 0, 0, n, LQ_CUDA_PATH_GEMV);
    for (size_t i = 0; i < sizeof k_cols / sizeof k_cols[0]; i++) {
        check_matmul(fmt, 67, k_cols[i], 0, 0, 13, LQ_CUDA_PATH_GEMM);
        check_matmul(fmt, 67, k_cols[i], 0, 0, 20, LQ_CUDA_PATH_AUTO);
    }
}

Test(cuda_kernels, f32) { need_device(); check_format_all_shapes(LQ_WFMT_F32); }
Test(cuda_kernels, f16) { need_device(); check_format_all_shapes(LQ_WFMT_F16); }
Test(cuda_kernels, bf16) { need_device(); check_format_all_shapes(LQ_WFMT_BF16); }
Test(cuda_kernels, w8a16) { need_device(); check_format_all_shapes(LQ_WFMT_W8A16); }
Test(cuda_kernels, fp8_e4m3) { need_device(); check_format_all_shapes(LQ_WFMT_FP8_E4M3); }
Test(cuda_kernels, w8a8_exact) { need_device(); check_format_all_shapes(LQ_WFMT_W8A8); }

/* W4A16 at every group size: per row (0), multiples of 32 (the chunk-uniform path), and sizes
 * that split a 32-column chunk (8, 16, 48: the per-element path); symmetric and asymmetric. */
Test(cuda_kernels, w4a16_every_group_size) {
    need_device();
    const int32_t gss[] = {0, 8, 16, 32, 48, 64, 128};
    const int64_t cols[] = {33, 96, 384, 1152, 4096};
    for (size_t g = 0; g < sizeof gss / sizeof gss[0]; g++)
        for (size_t c = 0; c < sizeof cols / sizeof cols[0]; c++)
            for (int asym = 0; asym <= 1; asym++) {
                check_matmul(LQ_WFMT_W4A16, 37, cols[c], gss[g], asym, 1, LQ_CUDA_PATH_GEMV);
                check_matmul(LQ_WFMT_W4A16, 37, cols[c], gss[g], asym, 8, LQ_CUDA_PATH_GEMV);
                check_matmul(LQ_WFMT_W4A16, 37, cols[c], gss[g], asym, 11, LQ_CUDA_PATH_GEMM);
            }
}

/* ---- element-wise ops and attention ------------------------------------------------------------ */

Test(cuda_ops, rmsnorm_swiglu_add_rope) {
    need_device();
    const int64_t rows = 3, dim = 1031;
    float *x = malloc(rows * dim * sizeof(float)), *wt = malloc(dim * sizeof(float));
    float *up = malloc(rows * dim * sizeof(float)), *ref = malloc(rows * dim * sizeof(float));
    float *got = malloc(rows * dim * sizeof(float));
    fill(x, rows * dim, -2, 2);
    fill(wt, dim, 0.5f, 1.5f);
    fill(up, rows * dim, -2, 2);
    lq_cuda_ctx *ctx = ctx_get();
    float *dx = dev_from(x, rows * dim), *dw = dev_from(wt, dim), *dup = dev_from(up, rows * dim);
    float *dout = dev_from(x, rows * dim);

    /* RMSNorm: both sum squares in double and apply (x * scale) * w in f32: equal except when the
     * double sums round differently to the f32 scale (<= 1 ulp of scale: 2 ulp of the result). */
    for (int64_t r = 0; r < rows; r++) lq_rmsnorm_ref(ref + r * dim, x + r * dim, wt, dim, 1e-5f);
    cr_assert_eq(lq_cuda_rmsnorm(ctx, dout, dx, dw, rows, dim, 1e-5f), LQ_CUDA_OK);
    to_host(ctx, got, dout, rows * dim);
    for (int64_t i = 0; i < rows * dim; i++)
        cr_assert(fabsf(got[i] - ref[i]) <= 2.5e-7f * fabsf(ref[i]), "rmsnorm [%lld]: %.9g vs %.9g",
                  (long long)i, got[i], ref[i]);

    /* SwiGLU: expf on the device is within 2 ulp (CUDA guide), one division and two products:
     * 4 ulp of the result, 5e-7 relative, plus 1e-7 absolute near zero. */
    memcpy(ref, x, rows * dim * sizeof(float));
    lq_swiglu_ref(ref, up, rows * dim);
    cr_assert_eq(lq_cuda_copy(ctx, dout, dx, rows * dim * sizeof(float)), LQ_CUDA_OK);
    cr_assert_eq(lq_cuda_swiglu(ctx, dout, dup, rows * dim), LQ_CUDA_OK);
    to_host(ctx, got, dout, rows * dim);
    for (int64_t i = 0; i < rows * dim; i++)
        cr_assert(fabsf(got[i] - ref[i]) <= 1e-7f + 5e-7f * fabsf(ref[i]), "swiglu [%lld]: %.9g vs %.9g",
                  (long long)i, got[i], ref[i]);

    /* add: one f32 addition, exact same result */
    cr_assert_eq(lq_cuda_copy(ctx, dout, dx, rows * dim * sizeof(float)), LQ_CUDA_OK);
    cr_assert_eq(lq_cuda_add(ctx, dout, dup, rows * dim), LQ_CUDA_OK);
    to_host(ctx, got, dout, rows * dim);
    for (int64_t i = 0; i < rows * dim; i++) cr_assert_eq(got[i], x[i] + up[i]);

    /* bias add: one f32 addition per element, exact (the CPU table adds b[i % cols] to row t) */
    cr_assert_eq(lq_cuda_copy(ctx, dout, dx, rows * dim * sizeof(float)), LQ_CUDA_OK);
    cr_assert_eq(lq_cuda_add_bias(ctx, dout, dw, rows, dim), LQ_CUDA_OK);
    to_host(ctx, got, dout, rows * dim);
    for (int64_t i = 0; i < rows * dim; i++) cr_assert_eq(got[i], x[i] + wt[i % dim]);

    /* RoPE, both pair layouts, positions up to 4000: angles are the same f32 products; sinf/cosf
     * differ by <= 2 ulp and nvcc may fuse a*c - b*s: 1e-6 of the pair's magnitude (|x| <= 2). */
    const int hd = 64, nh = 4, ntok = 3, pos0 = 3997;
    float invf[32];
    for (int i = 0; i < hd / 2; i++) invf[i] = (float)(1.0 / pow(10000.0, 2.0 * i / hd));
    float *dinv = dev_from(invf, hd / 2);
    for (int inter = 0; inter <= 1; inter++) {
        memcpy(ref, x, ntok * nh * hd * sizeof(float));
        for (int t = 0; t < ntok; t++)
            for (int h = 0; h < nh; h++) lq_rope_ref(ref + (t * nh + h) * hd, hd, pos0 + t, invf, inter);
        cr_assert_eq(lq_cuda_copy(ctx, dout, dx, ntok * nh * hd * sizeof(float)), LQ_CUDA_OK);
        cr_assert_eq(lq_cuda_rope(ctx, dout, ntok, nh * hd, nh, hd, pos0, dinv, inter), LQ_CUDA_OK);
        to_host(ctx, got, dout, ntok * nh * hd);
        for (int i = 0; i < ntok * nh * hd; i++)
            cr_assert(fabsf(got[i] - ref[i]) <= 4e-6f, "rope (interleaved %d) [%d]: %.9g vs %.9g", inter, i,
                      got[i], ref[i]);
    }
    lq_cuda_free(dinv);
    lq_cuda_free(dx); lq_cuda_free(dw); lq_cuda_free(dup); lq_cuda_free(dout);
    free(x); free(wt); free(up); free(ref); free(got);
}

/* Attention over a cache of 300 positions, GQA 8 heads / 2 kv heads, head_dim 32, 64, 100, 128,
 * 3 query rows at positions 297..299 and one at position 0, without and with a sliding window
 * (the query at p sees p - window + 1 .. p, as the CPU table's attention op). The CPU spec: scores in f32 (dot in
 * double), two-pass softmax, then sum p_i v_i. The device's online softmax rescales partial sums
 * (a few roundings per position) and uses expf (2 ulp): outputs are convex combinations of
 * values in [-1, 1], so we allow 2e-5 absolute. */
static void attention_case(int hd, int n_tok, int pos0, int window) {
    const int nh = 8, nkv = 2, n_ctx = 300;
    const int64_t qd = (int64_t)nh * hd, kvd = (int64_t)nkv * hd;
    float *q = malloc(n_tok * qd * sizeof(float)), *kc = malloc(n_ctx * kvd * sizeof(float));
    float *vc = malloc(n_ctx * kvd * sizeof(float)), *ref = malloc(n_tok * qd * sizeof(float));
    float *got = malloc(n_tok * qd * sizeof(float)), *sc = malloc(n_ctx * sizeof(float));
    fill(q, n_tok * qd, -1, 1);
    fill(kc, n_ctx * kvd, -1, 1);
    fill(vc, n_ctx * kvd, -1, 1);
    const float scale = 1.0f / sqrtf((float)hd);
    for (int t = 0; t < n_tok; t++)
        for (int h = 0; h < nh; h++) {
            const int kvh = h / (nh / nkv), p = pos0 + t;
            const int lo = window > 0 && p - window + 1 > 0 ? p - window + 1 : 0;
            for (int i = lo; i <= p; i++)
                sc[i - lo] = lq_dot_f32_ref(q + t * qd + h * hd, kc + i * kvd + kvh * hd, hd) * scale;
            lq_softmax_ref(sc, p - lo + 1);
            float *o = ref + t * qd + h * hd;
            memset(o, 0, hd * sizeof(float));
            for (int i = lo; i <= p; i++) lq_axpy_f32_ref(o, sc[i - lo], vc + i * kvd + kvh * hd, hd);
        }
    lq_cuda_ctx *ctx = ctx_get();
    float *dq = dev_from(q, n_tok * qd), *dk = dev_from(kc, n_ctx * kvd), *dv = dev_from(vc, n_ctx * kvd);
    float *dout = dev_from(got, n_tok * qd);
    cr_assert_eq(lq_cuda_attention(ctx, dout, dq, dk, dv, n_tok, pos0, nh, nkv, hd, window, scale), LQ_CUDA_OK,
                 "%s", lq_cuda_last_error());
    to_host(ctx, got, dout, n_tok * qd);
    for (int64_t i = 0; i < n_tok * qd; i++)
        cr_assert(fabsf(got[i] - ref[i]) <= 2e-5f, "attention hd %d pos0 %d window %d [%lld]: %.9g vs %.9g", hd,
                  pos0, window, (long long)i, got[i], ref[i]);
    lq_cuda_free(dq); lq_cuda_free(dk); lq_cuda_free(dv); lq_cuda_free(dout);
    free(q); free(kc); free(vc); free(ref); free(got); free(sc);
}

Test(cuda_ops, attention) {
    need_device();
    const int hds[] = {32, 64, 100, 128};
    for (size_t i = 0; i < sizeof hds / sizeof hds[0]; i++) {
        attention_case(hds[i], 3, 297, 0);
        attention_case(hds[i], 1, 0, 0);
        attention_case(hds[i], 3, 297, 5);   /* Mistral-style window, shorter than the context */
        attention_case(hds[i], 1, 0, 5);
    }
}

/* ---- the engine --------------------------------------------------------------------------------- */

/* The reference perplexity of SOURCES.md (llama2.c's fp32 forward), within 0.1% as the issue
 * asks; the CPU engine matches it to 1e-5 (test_perplexity). */
Test(cuda_engine, stories260K_perplexity_matches_llama2c, .init = paths) {
    need_device();
    lq_model *m = NULL;
    lq_tokenizer *tok = NULL;
    cr_assert_eq(lq_model_load(g_model, &m), LQ_OK, "%s", lq_last_error());
    cr_assert_eq(lq_model_to_device(m, LQ_DEVICE_CUDA), LQ_OK, "%s", lq_last_error());
    cr_assert_eq(lq_eval_load_tokenizer(m, g_model, g_tok, &tok), LQ_OK, "%s", lq_last_error());
    char *text = NULL;
    size_t len = 0;
    cr_assert_eq(lq_text_read_file(g_text, &text, &len), LQ_OK);
    lq_ppl_opts o = {.per_line = true, .separator = "<|endoftext|>"};
    lq_ppl_result r;
    cr_assert_eq(lq_eval_perplexity(m, tok, NULL, text, len, &o, &r), LQ_OK, "%s", lq_last_error());
    cr_expect_eq(r.n_scored, 1804);
    cr_expect(fabs(r.ppl - REF_PPL) <= 1e-3 * REF_PPL, "cuda PPL %.6f, llama2.c %.6f", r.ppl, REF_PPL);
    free(text);
    lq_tokenizer_free(tok);
    lq_model_free(m);
}

/* Prefill of 37 tokens then 20 decode steps: the device logits follow the CPU's (same model,
 * same tokens) within `atol` (logits of these models are O(10); per-op differences of a few f32
 * ulps over a few layers), and greedy picks the same token at every step. The CUDA table runs
 * the same layer program as the CPU table (forward.c), so this compares the two tables op by op
 * end to end, for every architecture whose fixture is given. Returns the CUDA session for more
 * checks (caller frees it and the models). */
static lq_session *follow_cpu(const char *path, float atol, lq_model **pmc, lq_model **pmg, lq_session **psc,
                              int *pos_out, int32_t *next_out) {
    lq_model *mc = NULL, *mg = NULL;
    cr_assert_eq(lq_model_load(path, &mc), LQ_OK, "%s", lq_last_error());
    cr_assert_eq(lq_model_load(path, &mg), LQ_OK);
    cr_assert_eq(lq_model_to_device(mg, LQ_DEVICE_CUDA), LQ_OK, "%s", lq_last_error());
    lq_session *sc = NULL, *sg = NULL;
    cr_assert_eq(lq_session_create(mc, 64, NULL, &sc), LQ_OK);
    cr_assert_eq(lq_session_create(mg, 64, NULL, &sg), LQ_OK, "%s", lq_last_error());
    cr_expect_eq(lq_session_device(sg), LQ_DEVICE_CUDA);
    const int vocab = lq_model_config(mc)->vocab_size, n0 = 37;
    int32_t toks[64];
    toks[0] = 1;
    for (int i = 1; i < n0; i++) toks[i] = (int32_t)(rng_u32() % (uint32_t)vocab);
    float *lc = malloc((size_t)n0 * vocab * sizeof(float)), *lg = malloc((size_t)n0 * vocab * sizeof(float));
    cr_assert_eq(lq_forward(sc, toks, n0, 0, lc, true), LQ_OK);
    cr_assert_eq(lq_forward(sg, toks, n0, 0, lg, true), LQ_OK, "%s", lq_last_error());
    for (int64_t i = 0; i < (int64_t)n0 * vocab; i++)
        cr_assert(fabsf(lc[i] - lg[i]) <= atol, "%s: prefill logit %lld: cpu %.6f cuda %.6f", path, (long long)i,
                  lc[i], lg[i]);
    int pos = n0;
    int32_t next = 0;
    for (int step = 0; step < 20; step++, pos++) {
        float *l = lc + (int64_t)(n0 - 1) * vocab, *g = lg + (int64_t)(n0 - 1) * vocab;
        if (step > 0) { l = lc; g = lg; }
        int am = 0;
        for (int v = 1; v < vocab; v++) if (l[v] > l[am]) am = v;
        int ag = 0;
        for (int v = 1; v < vocab; v++) if (g[v] > g[ag]) ag = v;
        cr_expect_eq(am, ag, "%s: step %d: cpu argmax %d, cuda %d", path, step, am, ag);
        next = am;
        cr_assert_eq(lq_forward(sc, &next, 1, pos, lc, false), LQ_OK);
        cr_assert_eq(lq_forward(sg, &next, 1, pos, lg, false), LQ_OK, "%s", lq_last_error());
        for (int v = 0; v < vocab; v++)
            cr_assert(fabsf(lc[v] - lg[v]) <= atol, "%s: decode step %d logit %d: cpu %.6f cuda %.6f", path, step,
                      v, lc[v], lg[v]);
    }
    free(lc);
    free(lg);
    *pmc = mc, *pmg = mg, *psc = sc, *pos_out = pos, *next_out = next;
    return sg;
}

Test(cuda_engine, logits_follow_cpu_prefill_and_decode, .init = paths) {
    need_device();
    lq_model *mc, *mg;
    lq_session *sc;
    int pos;
    int32_t next;
    lq_session *sg = follow_cpu(g_model, 1e-3f, &mc, &mg, &sc, &pos, &next);
    float *lg = malloc((size_t)lq_model_config(mc)->vocab_size * sizeof(float));
    /* hooks are CPU-only: a clean error, not a silent no-op */
    lq_session_set_layer_hook(sg, no_hook, NULL);
    cr_expect_eq(lq_forward(sg, &next, 1, pos, lg, false), LQ_ERR_UNSUPPORTED);
    lq_session_free(sc);
    lq_session_free(sg);
    lq_model_free(mc);
    lq_model_free(mg);
    free(lg);
}

/* The architecture fixtures (tests/fixtures/arch: q/k/v biases, q/k norms, sliding window 8 <
 * 57 positions, llama3 RoPE scaling) through both tables. */
Test(cuda_engine, architectures_follow_cpu) {
    need_device();
    const char *names[] = {"llama3", "mistral", "qwen2", "qwen3"};
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++) {
        char dir[1024];
        snprintf(dir, sizeof dir, "%s/arch/%s", LQ_FIXTURES_DIR, names[i]);
        lq_model *mc, *mg;
        lq_session *sc;
        int pos;
        int32_t next;
        lq_session *sg = follow_cpu(dir, 1e-3f, &mc, &mg, &sc, &pos, &next);
        lq_session_free(sc);
        lq_session_free(sg);
        lq_model_free(mc);
        lq_model_free(mg);
    }
}

#else /* !LQ_HAVE_CUDA: the device suites exist and say why they do not run */

Test(cuda_kernels, all_formats) { cr_skip_test("built without CUDA (QUANT_CUDA=OFF or no nvcc)"); }
Test(cuda_engine, stories260K) { cr_skip_test("built without CUDA (QUANT_CUDA=OFF or no nvcc)"); }

#endif /* LQ_HAVE_CUDA */
