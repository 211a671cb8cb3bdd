/* test_rope_freqs.c - Llama 3 RoPE scaling through GGUF: llama.cpp's rope_freqs.weight tensor,
 * written from a llama3 rope_scaling (gguf_export.c), read as RoPE frequency divisors
 * (checkpoint_gguf.c, model_bind.c), and turned back into rope_scaling by quant-convert.
 *
 * External references:
 *   - tests/fixtures/rope_freqs/converter.txt: the factors llama.cpp's convert_hf_to_gguf.py
 *     computes (LlamaModel.generate_extra_tensors), run with torch by
 *     scripts/rope_freqs/make_vectors.py, as f32 bits; and the same definition written out below
 *     in double (conv_ref);
 *   - TinyStories-656K (shared, transformers' f32 safetensors) copied with a llama3 rope_scaling
 *     of our choosing (factor 8, low 1, high 4, original_max_position_embeddings 64, so that at
 *     head_dim 16 one pair is kept, two are interpolated and five slowed): the HF model, which
 *     applies transformers' _compute_llama3_parameters, is the reference for the GGUF one, and the
 *     numbers we put in that config are what quant-convert must give back.
 */
#include <criterion/criterion.h>

#include <jansson.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "libquant.h"
#include "libquant/lq_gguf.h"
#include "libquant/lq_gguf_quant.h"
#include "libquant/lq_gguf_write.h"
#include "lq_test_util.h"

/* The scaling given to TinyStories: its head_dim is 128 / 8 = 16 (8 rotary pairs). */
#define SC_FACTOR 8.0
#define SC_LOW 1.0
#define SC_HIGH 4.0
#define SC_OLD_CTX 64
#define N_TOK 120 /* positions 0..119, past the "original" context of 64 */

static char g_dir[256];

static void setup(void) {
    snprintf(g_dir, sizeof g_dir, "/tmp/lq_test_rope_freqs_%d", (int)getpid());
    char cmd[1024];
    snprintf(cmd, sizeof cmd, "rm -rf '%s' && mkdir -p '%s'", g_dir, g_dir);
    cr_assert_eq(system(cmd), 0);
}

static void teardown(void) {
    char cmd[1024];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", g_dir);
    (void)system(cmd);
}

TestSuite(rope_freqs, .init = setup, .fini = teardown);

/* ---- the converter's definition ------------------------------------------------------------- */

/* convert_hf_to_gguf.py's factor of rotary pair i, in double: freq = 1 / base^(2i/d),
 * wavelen = 2 pi / freq; < old/hi: 1; > old/lo: factor; else 1 / ((1 - s) / factor + s) with
 * s = (old / wavelen - lo) / (hi - lo). */
static double conv_ref(double base, int d, int i, double factor, double lo, double hi, double old) {
    double freq = 1.0 / pow(base, (2.0 * i) / d), wl = 2.0 * M_PI / freq;
    if (wl < old / hi) return 1.0;
    if (wl > old / lo) return factor;
    double s = (old / wl - lo) / (hi - lo);
    return 1.0 / ((1.0 - s) / factor + s);
}

static uint32_t bits(float f) {
    uint32_t u;
    memcpy(&u, &f, 4);
    return u;
}

typedef struct vec {
    char name[64];
    double base, factor, lo, hi;
    int d, old;
    int n;
    float want[256];
} vec;

/* Every line of tests/fixtures/rope_freqs/converter.txt. */
static int load_vectors(vec *v, int cap) {
    char path[1024], line[8192];
    snprintf(path, sizeof path, "%s/rope_freqs/converter.txt", LQ_FIXTURES_DIR);
    FILE *f = fopen(path, "r");
    cr_assert_not_null(f, "%s", path);
    int n = 0;
    while (n < cap && fgets(line, sizeof line, f)) {
        if (line[0] == '#') continue;
        vec *x = &v[n];
        int pos = 0;
        cr_assert_eq(sscanf(line, "%63s %lf %d %lf %lf %lf %d : %n", x->name, &x->base, &x->d, &x->factor, &x->lo,
                            &x->hi, &x->old, &pos), 7, "bad line: %s", line);
        const char *p = line + pos;
        unsigned u;
        int k;
        for (x->n = 0; x->n < 256 && sscanf(p, "%x%n", &u, &k) == 1; x->n++, p += k) memcpy(&x->want[x->n], &u, 4);
        cr_assert_eq(x->n, x->d / 2, "%s: %d factors for head_dim %d", x->name, x->n, x->d);
        n++;
    }
    fclose(f);
    cr_assert(n >= 3);
    return n;
}

static lq_config llama3_cfg(double base, int d, double factor, double lo, double hi, int old) {
    lq_config c = {.rope_theta = (float)base, .head_dim = d, .rope_type = LQ_ROPE_LLAMA3,
                   .rope_scale_factor = (float)factor, .rope_low_freq_factor = (float)lo,
                   .rope_high_freq_factor = (float)hi, .rope_orig_max_pos = old};
    return c;
}

/* The writer's factors are torch's (the converter's) bit for bit on these configs, and within f32
 * rounding of the definition in double (|a - b| <= 2e-6 |b|: the converter's f32 pow, reciprocals
 * and the difference s near 0 each round once). */
Test(rope_freqs, factors_equal_the_converters) {
    static vec v[8];
    int n = load_vectors(v, 8);
    for (int k = 0; k < n; k++) {
        const vec *x = &v[k];
        lq_config c = llama3_cfg(x->base, x->d, x->factor, x->lo, x->hi, x->old);
        float got[256];
        lq_rope_llama3_factors(&c, got);
        int band = 0;
        for (int i = 0; i < x->n; i++) {
            cr_assert_eq(bits(got[i]), bits(x->want[i]), "%s: factor %d is %.9g, the converter's %.9g", x->name, i,
                         (double)got[i], (double)x->want[i]);
            double ref = conv_ref(x->base, x->d, i, x->factor, x->lo, x->hi, x->old);
            cr_assert(fabs((double)got[i] - ref) <= 2e-6 * ref, "%s: factor %d is %.9g, definition %.9g", x->name, i,
                      (double)got[i], ref);
            band += ref != 1.0 && ref != x->factor;
        }
        cr_assert(band >= 2, "%s: only %d interpolated pairs, the band is not exercised", x->name, band);
    }
}

/* GGUF -> HF recovers a rope_scaling that gives the very factors: Meta's configs come back as
 * written (factor / low / high / original_max_position_embeddings), the awkward one reproduces
 * its factors, and no recovered value is needed beyond f32 rounding. */
Test(rope_freqs, recovered_scaling_reproduces_the_factors) {
    static vec v[8];
    int n = load_vectors(v, 8);
    for (int k = 0; k < n; k++) {
        const vec *x = &v[k];
        lq_config c = {.rope_theta = (float)x->base, .head_dim = x->d};
        cr_assert_eq(lq_rope_llama3_from_factors(x->want, &c, "fixture"), LQ_OK, "%s: %s", x->name, lq_last_error());
        cr_assert_eq(c.rope_type, LQ_ROPE_LLAMA3, "%s", x->name);
        cr_assert_eq(c.rope_scale_factor, (float)x->factor, "%s", x->name);
        float again[256];
        lq_rope_llama3_factors(&c, again);
        for (int i = 0; i < x->n; i++)
            cr_assert(fabsf(again[i] - x->want[i]) <= 4e-6f * x->want[i], "%s: factor %d %.9g vs %.9g", x->name, i,
                      (double)again[i], (double)x->want[i]);
        if (x->lo == 1.0) { /* low 1 is what recovery assumes: the rest must come back exactly */
            cr_assert_eq(c.rope_low_freq_factor, 1.0f, "%s", x->name);
            cr_assert_eq(c.rope_high_freq_factor, (float)x->hi, "%s: high %.9g", x->name, (double)c.rope_high_freq_factor);
            cr_assert_eq(c.rope_orig_max_pos, x->old, "%s: original context %d", x->name, c.rope_orig_max_pos);
        }
    }
    /* all ones: no scaling; out of order or non-llama3 shapes: refused naming the tensor */
    float ones[8] = {1, 1, 1, 1, 1, 1, 1, 1}, bad[8] = {1, 5, 2, 8, 8, 8, 8, 8}, rising[8] = {8, 8, 8, 1, 1, 1, 1, 1};
    lq_config c = {.rope_theta = 10000.0f, .head_dim = 16};
    cr_assert_eq(lq_rope_llama3_from_factors(ones, &c, "x"), LQ_OK);
    cr_assert_eq(c.rope_type, LQ_ROPE_DEFAULT);
    cr_assert_eq(lq_rope_llama3_from_factors(bad, &c, "x.gguf"), LQ_ERR_UNSUPPORTED);
    cr_assert(strstr(lq_last_error(), "x.gguf") && strstr(lq_last_error(), "rope_freqs.weight"), "%s", lq_last_error());
    cr_assert_eq(lq_rope_llama3_from_factors(rising, &c, "x.gguf"), LQ_ERR_UNSUPPORTED);
}

/* ---- TinyStories with llama3 scaling -------------------------------------------------------- */

/* A copy of TinyStories-656K at dst whose config.json has rope_scaling `rs` (JSON text). */
static void make_scaled(const char *dst, const char *rs) {
    char src[1024], cmd[4096], cfgp[1100];
    lq_test_shared("models/TinyStories-656K", src, sizeof src);
    snprintf(cmd, sizeof cmd, "rm -rf '%s' && cp -r '%s' '%s'", dst, src, dst);
    cr_assert_eq(system(cmd), 0);
    snprintf(cfgp, sizeof cfgp, "%s/config.json", dst);
    json_error_t e;
    json_t *root = json_load_file(cfgp, 0, &e), *scaling = json_loads(rs, 0, &e);
    cr_assert(root && scaling, "%s", e.text);
    json_object_set_new(root, "rope_scaling", scaling);
    cr_assert_eq(json_dump_file(root, cfgp, JSON_INDENT(2)), 0);
    json_decref(root);
}

static const char *const k_llama3 =
    "{\"rope_type\": \"llama3\", \"factor\": 8.0, \"low_freq_factor\": 1.0, \"high_freq_factor\": 4.0,"
    " \"original_max_position_embeddings\": 64}";

/* All logits of N_TOK fixed tokens (one prefill) of the model at path. */
static float *logits_of(const char *path) {
    lq_model *m;
    cr_assert_eq(lq_model_load(path, &m), LQ_OK, "%s: %s", path, lq_last_error());
    const int vocab = lq_model_config(m)->vocab_size;
    int32_t tok[N_TOK];
    for (int i = 0; i < N_TOK; i++) tok[i] = (int32_t)((i * 37 + 11) % vocab);
    float *out = malloc((size_t)N_TOK * (size_t)vocab * sizeof *out);
    lq_session *s;
    cr_assert_eq(lq_session_create(m, N_TOK, NULL, &s), LQ_OK, "%s", lq_last_error());
    cr_assert_eq(lq_forward(s, tok, N_TOK, 0, out, true), LQ_OK, "%s", lq_last_error());
    lq_session_free(s);
    lq_model_free(m);
    return out;
}

/* max |a - b| over max |b|, and the first worst index. */
static double rel_diff(const float *a, const float *b, int64_t n, int64_t *at) {
    double worst = 0, scale = 0;
    for (int64_t i = 0; i < n; i++) {
        double d = fabs((double)a[i] - (double)b[i]);
        if (d > worst) worst = d, *at = i;
        scale = fmax(scale, fabs((double)b[i]));
    }
    return worst / scale;
}

static const vec *tinystories_vec(vec *v, int n) {
    for (int k = 0; k < n; k++)
        if (strcmp(v[k].name, "tinystories-llama3") == 0) return &v[k];
    cr_assert_fail("no tinystories-llama3 line in converter.txt");
    return NULL;
}

/* The rope_freqs.weight of a GGUF file: F32, 8 values, the converter's bits; no scaling key. */
static void expect_rope_freqs(const char *gguf_path) {
    static vec v[8];
    const vec *ts = tinystories_vec(v, load_vectors(v, 8));
    lq_gguf *g;
    cr_assert_eq(lq_gguf_open(gguf_path, &g), LQ_OK, "%s", lq_last_error());
    const lq_gguf_tensor_info *ti = lq_gguf_find_tensor(g, "rope_freqs.weight");
    cr_assert_not_null(ti, "%s: no rope_freqs.weight", gguf_path);
    cr_assert(ti->type == 0 && ti->n_dims == 1 && ti->ne[0] == 8, "%s: type %u, %u dims, ne0 %lld", gguf_path,
              ti->type, ti->n_dims, (long long)ti->ne[0]);
    const float *f = (const float *)((const char *)lq_gguf_file_data(g) + ti->offset);
    for (int i = 0; i < 8; i++)
        cr_assert_eq(bits(f[i]), bits(ts->want[i]), "%s: factor %d %.9g, converter %.9g", gguf_path, i, (double)f[i],
                     (double)ts->want[i]);
    cr_assert(lq_gguf_find(g, "llama.rope.scaling.type") < 0, "the converter writes no scaling key for llama3");
    int64_t ctx = 0;
    cr_assert_eq(lq_gguf_get_i64(g, "llama.context_length", &ctx), LQ_OK);
    cr_assert_eq(ctx, 512); /* max_position_embeddings, as the converter writes it */
    lq_gguf_close(g);
}

/* HF (transformers' llama3 inv_freq) and GGUF written from it (rope_freqs divisors) give the same
 * logits over 120 positions. Tolerance 2e-6 of the largest logit: the only difference is where
 * the scaling is rounded (the HF table is freq * scale in double, the GGUF one freq / f32 factor),
 * a few 1e-8 relative in each frequency, times positions < 120. The unscaled model differs by
 * orders of magnitude more, so the scaling is really applied. */
Test(rope_freqs, hf_and_gguf_give_the_same_logits) {
    char hf[512], gg[512];
    snprintf(hf, sizeof hf, "%s/ts-llama3", g_dir);
    snprintf(gg, sizeof gg, "%s/ts-llama3.gguf", g_dir);
    make_scaled(hf, k_llama3);
    lq_gguf_export_opts o = {.type = "F32", .output_type = -1, .token_embd_type = -1};
    cr_assert_eq(lq_gguf_export(hf, gg, &o, NULL), LQ_OK, "%s", lq_last_error());
    expect_rope_freqs(gg);

    float *a = logits_of(hf), *b = logits_of(gg);
    char plain[1024];
    float *p = logits_of(lq_test_shared("models/TinyStories-656K", plain, sizeof plain));
    const int64_t n = (int64_t)N_TOK * 2048;
    int64_t at = 0;
    double d = rel_diff(b, a, n, &at);
    cr_expect(d <= 2e-6, "GGUF vs HF logits differ by %.3g of the largest (index %lld: %.7g vs %.7g)", d,
              (long long)at, (double)b[at], (double)a[at]);
    double dp = rel_diff(p, a, n, &at);
    cr_expect(dp > 1e-3, "the scaled and unscaled models agree to %.3g: the scaling did not bite", dp);
    free(a);
    free(b);
    free(p);
}

/* GGUF -> HF (quant-convert) gives back the rope_scaling we wrote and no extra tensor, so the HF
 * model is the original one: the same logits bit for bit. GGUF -> GGUF (quant-ptq --format gguf
 * on a GGUF) and HF -> quantized GGUF keep the tensor F32 and unchanged. */
Test(rope_freqs, round_trips_through_the_tools) {
    char hf[512], gg[512], back[512], q1[512], q2[512], args[2048], err[1024];
    snprintf(hf, sizeof hf, "%s/ts-llama3", g_dir);
    snprintf(gg, sizeof gg, "%s/ts-llama3.gguf", g_dir);
    snprintf(back, sizeof back, "%s/ts-llama3-back", g_dir);
    snprintf(q1, sizeof q1, "%s/from-hf-q8.gguf", g_dir);
    snprintf(q2, sizeof q2, "%s/from-gguf-q8.gguf", g_dir);
    make_scaled(hf, k_llama3);
    snprintf(args, sizeof args, "--model '%s' --out '%s'", hf, gg);
    cr_assert_eq(lq_test_run_tool("quant-convert", args, g_dir, err, sizeof err), 0, "%s", err);
    expect_rope_freqs(gg);
    snprintf(args, sizeof args, "--model '%s' --out '%s'", gg, back);
    cr_assert_eq(lq_test_run_tool("quant-convert", args, g_dir, err, sizeof err), 0, "%s", err);
    lq_checkpoint *c;
    cr_assert_eq(lq_checkpoint_open(back, &c), LQ_OK, "%s", lq_last_error());
    const lq_config *cfg = lq_checkpoint_config(c);
    cr_assert_eq(cfg->rope_type, LQ_ROPE_LLAMA3);
    cr_assert_eq(cfg->rope_scale_factor, (float)SC_FACTOR);
    cr_assert_eq(cfg->rope_low_freq_factor, (float)SC_LOW);
    cr_assert_eq(cfg->rope_high_freq_factor, (float)SC_HIGH);
    cr_assert_eq(cfg->rope_orig_max_pos, SC_OLD_CTX);
    cr_assert_null(lq_checkpoint_find(c, "rope_freqs.weight"), "the HF directory carries no rope_freqs tensor");
    lq_checkpoint_close(c);
    float *a = logits_of(hf), *b = logits_of(back);
    cr_expect(memcmp(a, b, (size_t)N_TOK * 2048 * sizeof *a) == 0, "HF -> GGUF -> HF changed the logits");
    free(a);
    free(b);

    snprintf(args, sizeof args, "--format gguf --model '%s' --type Q8_0 --out '%s'", hf, q1);
    cr_assert_eq(lq_test_run_tool("quant-ptq", args, g_dir, err, sizeof err), 0, "%s", err);
    expect_rope_freqs(q1);
    snprintf(args, sizeof args, "--format gguf --model '%s' --type Q8_0 --out '%s'", gg, q2);
    cr_assert_eq(lq_test_run_tool("quant-ptq", args, g_dir, err, sizeof err), 0, "%s", err);
    expect_rope_freqs(q2);
}

/* ---- bad input ------------------------------------------------------------------------------ */

/* src re-written to dst with rope_freqs.weight (added or replaced) of `type`, n values from data
 * (nbytes), and linear RoPE scaling keys when `linear` is set. */
static void rewrite(const char *src, const char *dst, uint32_t type, int64_t n, const void *data, size_t nbytes,
                    bool linear) {
    lq_gguf *g;
    cr_assert_eq(lq_gguf_open(src, &g), LQ_OK, "%s", lq_last_error());
    lq_gguf_str arch;
    cr_assert_eq(lq_gguf_get_str(g, "general.architecture", &arch), LQ_OK);
    lq_gguf_writer *w;
    cr_assert_eq(lq_gguf_writer_create(dst, &w), LQ_OK, "%s", lq_last_error());
    for (int64_t i = 0; i < lq_gguf_kv_count(g); i++) cr_assert_eq(lq_gguf_writer_kv_copy(w, g, i), LQ_OK);
    if (linear) {
        char k[64];
        snprintf(k, sizeof k, "%.*s.rope.scaling.type", (int)arch.len, arch.data);
        cr_assert_eq(lq_gguf_writer_kv_str(w, k, "linear"), LQ_OK);
        snprintf(k, sizeof k, "%.*s.rope.scaling.factor", (int)arch.len, arch.data);
        cr_assert_eq(lq_gguf_writer_kv_f32(w, k, 2.0f), LQ_OK);
    }
    for (int64_t i = 0; i < lq_gguf_tensor_count(g); i++) {
        const lq_gguf_tensor_info *t = lq_gguf_tensor(g, i);
        if (strcmp(t->name, "rope_freqs.weight") == 0) continue;
        cr_assert_eq(lq_gguf_writer_tensor(w, t->name, (int)t->n_dims, t->ne, t->type), LQ_OK, "%s", lq_last_error());
    }
    int64_t ne[4] = {n, 1, 1, 1};
    cr_assert_eq(lq_gguf_writer_tensor(w, "rope_freqs.weight", 1, ne, type), LQ_OK, "%s", lq_last_error());
    for (int64_t i = 0; i < lq_gguf_tensor_count(g); i++) {
        const lq_gguf_tensor_info *t = lq_gguf_tensor(g, i);
        if (strcmp(t->name, "rope_freqs.weight") == 0) continue;
        cr_assert_eq(lq_gguf_writer_write(w, (const char *)lq_gguf_file_data(g) + t->offset, (size_t)t->nbytes), LQ_OK);
    }
    cr_assert_eq(lq_gguf_writer_write(w, data, nbytes), LQ_OK, "%s", lq_last_error());
    cr_assert_eq(lq_gguf_writer_commit(w), LQ_OK, "%s", lq_last_error());
    lq_gguf_close(g);
}

static void expect_open_refused(const char *path, const char *also) {
    lq_checkpoint *c = NULL;
    cr_assert_neq(lq_checkpoint_open(path, &c), LQ_OK, "%s opened", path);
    const char *e = lq_last_error();
    cr_assert(strstr(e, "rope_freqs.weight") && strstr(e, also) && !strchr(e, '\n'), "%s", e);
}

/* A rope_freqs tensor of the wrong length, type or values: refused at open, one line naming it.
 * One that no llama3 rope_scaling gives (llama.cpp would still run it, and so do we) cannot
 * become a Hugging Face config: quant-convert refuses it by name, exit 3, nothing written; so
 * does one next to linear scaling keys. */
Test(rope_freqs, bad_tensors_refused_by_name) {
    char hf[512], gg[512], bad[512], out[512], args[2048], err[1024];
    snprintf(hf, sizeof hf, "%s/ts-llama3", g_dir);
    snprintf(gg, sizeof gg, "%s/ts-llama3.gguf", g_dir);
    snprintf(bad, sizeof bad, "%s/bad.gguf", g_dir);
    snprintf(out, sizeof out, "%s/bad-hf", g_dir);
    make_scaled(hf, k_llama3);
    lq_gguf_export_opts o = {.type = "F32", .output_type = -1, .token_embd_type = -1};
    cr_assert_eq(lq_gguf_export(hf, gg, &o, NULL), LQ_OK, "%s", lq_last_error());

    const float seven[7] = {1, 2, 3, 4, 5, 6, 7};
    rewrite(gg, bad, 0, 7, seven, sizeof seven, false);
    expect_open_refused(bad, "8 values");
    const uint16_t halfs[8] = {0x3c00, 0x3c00, 0x3c00, 0x3c00, 0x3c00, 0x3c00, 0x3c00, 0x3c00};
    rewrite(gg, bad, 1, 8, halfs, sizeof halfs, false);
    expect_open_refused(bad, "F16");
    const float zero[8] = {1, 1, 0, 8, 8, 8, 8, 8};
    rewrite(gg, bad, 0, 8, zero, sizeof zero, false);
    expect_open_refused(bad, "factor 2");

    const float odd[8] = {1, 5, 2, 8, 8, 8, 8, 8};
    rewrite(gg, bad, 0, 8, odd, sizeof odd, false);
    lq_model *m;
    cr_assert_eq(lq_model_load(bad, &m), LQ_OK, "%s", lq_last_error());
    lq_model_free(m);
    snprintf(args, sizeof args, "--model '%s' --out '%s'", bad, out);
    cr_assert_eq(lq_test_run_tool("quant-convert", args, g_dir, err, sizeof err), 3, "%s", err);
    cr_assert(strstr(err, "rope_freqs.weight") && strstr(err, "llama3") && strchr(err, '\n') == err + strlen(err) - 1,
              "%s", err);
    cr_assert_not(lq_test_exists(out));

    const float ok[8] = {1, 1.5f, 4, 8, 8, 8, 8, 8};
    rewrite(gg, bad, 0, 8, ok, sizeof ok, true);
    cr_assert_eq(lq_test_run_tool("quant-convert", args, g_dir, err, sizeof err), 3, "%s", err);
    cr_assert(strstr(err, "rope_freqs.weight") && strstr(err, "linear"), "%s", err);
    cr_assert_not(lq_test_exists(out));

    /* an architecture llama.cpp reads no factors for: the tensor is not one of its tensors */
    char q2[1024];
    snprintf(q2, sizeof q2, "%s/gguf/qwen2.gguf", LQ_FIXTURES_DIR);
    const float f4[4] = {1, 1, 1, 1};
    rewrite(q2, bad, 0, 4, f4, sizeof f4, false);
    expect_open_refused(bad, "qwen2");
}

/* Writing: a llama3 rope_scaling in an architecture llama.cpp has no rope_freqs for (Qwen2) is
 * refused naming it, nothing written. */
Test(rope_freqs, writer_refuses_llama3_without_rope_freqs) {
    char src[1024], dir[512], cfgp[600], out[512], cmd[2048];
    snprintf(src, sizeof src, "%s/arch/qwen2", LQ_FIXTURES_DIR);
    snprintf(dir, sizeof dir, "%s/qwen2-llama3", g_dir);
    snprintf(out, sizeof out, "%s/qwen2.gguf", g_dir);
    snprintf(cmd, sizeof cmd, "cp -r '%s' '%s'", src, dir);
    cr_assert_eq(system(cmd), 0);
    snprintf(cfgp, sizeof cfgp, "%s/config.json", dir);
    json_error_t e;
    json_t *root = json_load_file(cfgp, 0, &e);
    cr_assert_not_null(root);
    json_object_set_new(root, "rope_parameters",
                        json_pack("{s:f, s:s, s:f, s:f, s:f, s:i}", "rope_theta", 1000000.0, "rope_type", "llama3",
                                  "factor", 8.0, "low_freq_factor", 1.0, "high_freq_factor", 4.0,
                                  "original_max_position_embeddings", 64));
    cr_assert_eq(json_dump_file(root, cfgp, 0), 0);
    json_decref(root);
    /* the fixture has no tokenizer: the tokenizer of the GGUF fixture of the same model */
    char tok[1024];
    snprintf(tok, sizeof tok, "%s/gguf/qwen2.gguf", LQ_FIXTURES_DIR);
    lq_gguf_export_opts o = {.type = "F32", .tokenizer = tok, .output_type = -1, .token_embd_type = -1};
    cr_assert_eq(lq_gguf_export(dir, out, &o, NULL), LQ_ERR_UNSUPPORTED);
    cr_assert(strstr(lq_last_error(), "llama3") && strstr(lq_last_error(), "qwen2"), "%s", lq_last_error());
    cr_assert_not(lq_test_exists(out));
    cr_assert_not(lq_test_leftovers(out));
}
