/* test_prune.c - pruning masks, the compressed-tensors sparse layouts, quant-prune end to end.
 *
 * References outside our code:
 *   - compressed-tensors 0.10 (sparse_compressors/sparse_bitmask.py, utils/helpers.py):
 *     bitmask = numpy.packbits(w != 0, axis=-1, bitorder="little"); the hand-worked bytes below
 *     were checked with numpy (packbits([[1,0,1,1,0,0,0,0,1]], bitorder="little") = [13, 1]);
 *     compressed = w[w != 0] in row order, row_offsets = cumsum(row_counts) - row_counts.
 *     sparse_24_bitmask.py: get_24_bytemasks keeps the top-2 |w| of every 4.
 *   - The structured model must compute what the dense model computes with the removed units'
 *     weights zeroed: the masked model is built here directly from stories260K with
 *     lq_st_save, independent of the pruning writer, and both run through the engine.
 */
#include <criterion/criterion.h>

#include <jansson.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "libquant.h"
#include "libquant/lq_prune.h"
#include "libquant/lq_ptq.h"
#include "lq_test_util.h"

static char g_root[256], g_bin[1024];

static void setup(void) {
    char tmpl[] = "/tmp/lq_test_prune_XXXXXX";
    cr_assert_not_null(mkdtemp(tmpl));
    snprintf(g_root, sizeof g_root, "%s", tmpl);
    lq_test_shared("models/stories260K/stories260K.bin", g_bin, sizeof g_bin);
}

static void teardown(void) {
    char cmd[512];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", g_root);
    cr_expect_eq(system(cmd), 0);
}

TestSuite(prune, .init = setup, .fini = teardown);

/* ---- layouts, hand-worked ------------------------------------------------------------------- */

Test(prune, bitmask_packbits_little_hand_worked) {
    const uint8_t mask[9] = {1, 0, 1, 1, 0, 0, 0, 0, 1};
    uint8_t bits[2];
    lq_bitmask_pack(mask, 1, 9, bits);
    cr_assert_eq(bits[0], 13); /* numpy: packbits(..., bitorder="little") = [13, 1] */
    cr_assert_eq(bits[1], 1);
    uint8_t back[9];
    bits[1] |= 0xf0; /* pad bits are ignored, as numpy unpackbits(count=cols) does */
    lq_bitmask_unpack(bits, 1, 9, back);
    cr_assert_arr_eq(back, mask, 9);
}

Test(prune, sparse_bitmask_hand_worked) {
    /* [[0, 1.5, 0], [2, -0.0, -3]]: -0.0 != 0 is false in torch, so it is not stored */
    const float w[6] = {0.0f, 1.5f, 0.0f, 2.0f, -0.0f, -3.0f};
    float vals[6];
    uint8_t bits[2];
    int64_t ro[2];
    int64_t nnz = lq_sparse_compress(w, LQ_DTYPE_F32, 2, 3, NULL, vals, bits, ro);
    cr_assert_eq(nnz, 3);
    cr_assert(vals[0] == 1.5f && vals[1] == 2.0f && vals[2] == -3.0f);
    cr_assert_eq(bits[0], 0x02); /* packbits([0,1,0]) little */
    cr_assert_eq(bits[1], 0x05); /* packbits([1,0,1]) little */
    cr_assert(ro[0] == 0 && ro[1] == 1);
    float d[6];
    cr_assert_eq(lq_sparse_decompress(vals, nnz, bits, ro, LQ_DTYPE_F32, 2, 3, d, "t"), LQ_OK);
    const float want[6] = {0.0f, 1.5f, 0.0f, 2.0f, 0.0f, -3.0f};
    cr_assert_arr_eq(d, want, sizeof want);
    /* a bitmask that disagrees with the stored values is refused */
    cr_assert_eq(lq_sparse_decompress(vals, 2, bits, NULL, LQ_DTYPE_F32, 2, 3, d, "t"), LQ_ERR_FORMAT);
    int64_t bad_ro[2] = {0, 2};
    cr_assert_eq(lq_sparse_decompress(vals, 3, bits, bad_ro, LQ_DTYPE_F32, 2, 3, d, "t"), LQ_ERR_FORMAT);
}

Test(prune, nm_24_hand_worked) {
    /* get_24_bytemasks: top-2 |w| of each group of 4 */
    const float w[8] = {0.1f, -0.5f, 0.3f, 0.2f, 4.0f, 0.0f, 0.0f, -4.0f};
    float s[8];
    for (int i = 0; i < 8; i++) s[i] = fabsf(w[i]);
    uint8_t keep[8];
    lq_prune_mask_nm(s, 1, 8, 2, 4, keep);
    const uint8_t want[8] = {0, 1, 1, 0, 1, 0, 0, 1};
    cr_assert_arr_eq(keep, want, 8);
    /* the 2:4 layout stores the kept positions: [rows, cols/2] values */
    float vals[8];
    uint8_t bits[1];
    cr_assert_eq(lq_sparse_compress(w, LQ_DTYPE_F32, 1, 8, keep, vals, bits, NULL), 4);
    cr_assert(vals[0] == -0.5f && vals[1] == 0.3f && vals[2] == 4.0f && vals[3] == -4.0f);
    cr_assert_eq(bits[0], 0x96); /* bits 1, 2, 4, 7 */
}

Test(prune, bitmask_round_trip_bit_exact) {
    /* awkward sizes, every dtype; ~60% zeros; -0.0 becomes +0.0 (the only change torch makes) */
    const int64_t shapes[][2] = {{1, 1}, {3, 31}, {5, 33}, {7, 129}, {2, 1023}};
    const lq_dtype dts[] = {LQ_DTYPE_F32, LQ_DTYPE_F16, LQ_DTYPE_BF16};
    uint32_t seed = 12345;
    for (size_t si = 0; si < sizeof shapes / sizeof shapes[0]; si++)
        for (size_t di = 0; di < 3; di++) {
            int64_t r = shapes[si][0], c = shapes[si][1], n = r * c;
            size_t es = lq_dtype_size(dts[di]);
            uint8_t *d = malloc((size_t)n * es), *v = malloc((size_t)n * es), *back = malloc((size_t)n * es);
            uint8_t *bits = malloc((size_t)(r * lq_bitmask_row_bytes(c)));
            int64_t *ro = malloc((size_t)r * sizeof *ro);
            int64_t want_nnz = 0;
            for (int64_t i = 0; i < n; i++) {
                seed = seed * 1664525u + 1013904223u;
                uint32_t x = seed >> 8;
                bool zero = (x % 10) < 6;
                if (es == 4) {
                    uint32_t b = zero ? ((x & 1) ? 0x80000000u : 0u) : (0x3f000000u | (x & 0x807fffffu));
                    memcpy(d + i * 4, &b, 4);
                } else {
                    uint16_t h = zero ? ((x & 1) ? 0x8000u : 0u) : (uint16_t)(0x3800u | (x & 0x83ffu));
                    memcpy(d + i * 2, &h, 2);
                }
                want_nnz += !zero;
            }
            int64_t nnz = lq_sparse_compress(d, dts[di], r, c, NULL, v, bits, ro);
            cr_assert_eq(nnz, want_nnz);
            cr_assert_eq(lq_sparse_decompress(v, nnz, bits, ro, dts[di], r, c, back, "t"), LQ_OK);
            for (int64_t i = 0; i < n; i++) {
                uint8_t want[4];
                memcpy(want, d + i * es, es);
                /* -0 -> +0: clear the sign of a zero */
                if (es == 4) {
                    uint32_t b;
                    memcpy(&b, want, 4);
                    if ((b & 0x7fffffffu) == 0) b = 0;
                    memcpy(want, &b, 4);
                } else {
                    uint16_t h;
                    memcpy(&h, want, 2);
                    if ((h & 0x7fffu) == 0) h = 0;
                    memcpy(want, &h, 2);
                }
                cr_assert(memcmp(want, back + i * es, es) == 0, "dtype %d shape %lldx%lld element %lld",
                          (int)dts[di], (long long)r, (long long)c, (long long)i);
            }
            free(d), free(v), free(back), free(bits), free(ro);
        }
}

Test(prune, topk_exact_with_ties) {
    enum { N = 1001 };
    float s[N];
    for (int i = 0; i < N; i++) s[i] = (float)((i * 37) % 50); /* many ties */
    uint8_t keep[N];
    for (int64_t k = 0; k <= N; k += 77) {
        cr_assert(lq_prune_mask_topk(s, N, k, keep));
        int64_t zeros = 0;
        float max_pruned = -1.0f, min_kept = 1e9f;
        for (int i = 0; i < N; i++) {
            zeros += !keep[i];
            if (!keep[i] && s[i] > max_pruned) max_pruned = s[i];
            if (keep[i] && s[i] < min_kept) min_kept = s[i];
        }
        cr_assert_eq(zeros, k);
        cr_assert(max_pruned <= min_kept, "k %lld: pruned %g > kept %g", (long long)k, max_pruned, min_kept);
    }
}

/* ---- quant-prune end to end ---------------------------------------------------------------------- */

static int run_tool(const char *args, char *err, size_t cap) {
    int code = lq_test_run_tool("quant-prune", args, g_root, err, cap);
    cr_assert(code >= 0, "quant-prune %s did not exit", args);
    return code;
}

/* Count set bits of the bitmask tensors of a written sparse checkpoint, per module, and check
 * the N:M pattern (n of every m) when n > 0. */
static void check_sparse_file(const char *dir, double sparsity, int n, int m, int expect_modules) {
    char path[600];
    snprintf(path, sizeof path, "%s/model.safetensors", dir);
    lq_st_file *f;
    cr_assert_eq(lq_st_open(path, &f), LQ_OK, "%s", lq_last_error());
    int modules = 0;
    for (int64_t i = 0; i < lq_st_count(f); i++) {
        const lq_tensor *t = lq_st_get(f, i);
        size_t L = strlen(t->name);
        if (L < 8 || strcmp(t->name + L - 8, ".bitmask") != 0) continue;
        modules++;
        char sname[300];
        snprintf(sname, sizeof sname, "%.*s.shape", (int)(L - 8), t->name);
        const lq_tensor *sh = lq_st_find(f, sname);
        cr_assert_not_null(sh);
        cr_assert_eq(sh->dtype, LQ_DTYPE_I64);
        int64_t dims[2]; /* memcpy: safetensors payloads are not aligned */
        memcpy(dims, sh->data, sizeof dims);
        int64_t rows = dims[0], cols = dims[1];
        cr_assert_eq(t->dtype, LQ_DTYPE_U8);
        cr_assert(t->shape[0] == rows && t->shape[1] == (cols + 7) / 8);
        uint8_t *mask = malloc((size_t)(rows * cols));
        lq_bitmask_unpack(t->data, rows, cols, mask);
        int64_t set = 0;
        for (int64_t j = 0; j < rows * cols; j++) set += mask[j];
        if (n > 0) {
            for (int64_t g = 0; g < rows * cols; g += m) {
                int k = 0;
                for (int j = 0; j < m; j++) k += mask[g + j];
                /* sparse-24 stores every kept position: exactly n; sparse-bitmask the non-zeros */
                cr_assert(m == 4 ? k == n : k <= n, "%s group %lld holds %d of %d", t->name, (long long)g, k, m);
            }
        } else {
            /* stories260K has no zero weights, so the stored count is exactly numel - k */
            int64_t k = (int64_t)floor(sparsity * (double)(rows * cols) + 0.5);
            cr_assert_eq(set, rows * cols - k, "%s: %lld set, want %lld", t->name, (long long)set,
                         (long long)(rows * cols - k));
        }
        free(mask);
    }
    cr_assert_eq(modules, expect_modules);
    lq_st_close(f);
}

Test(prune, magnitude_exact_sparsity_and_runs) {
    char args[2048], err[1024], out[600];
    snprintf(out, sizeof out, "%s/mag", g_root);
    snprintf(args, sizeof args, "--model '%s' --method magnitude --sparsity 0.3 --override o_proj=0.6 "
             "--ignore 're:model.layers.4.mlp.*' --bitmask --out '%s'", g_bin, out);
    cr_assert_eq(run_tool(args, err, sizeof err), 0, "%s", err);
    /* 35 linears - 3 ignored; checked per module below (o_proj at 0.6 fails the 0.3 count) */
    char path[700];
    snprintf(path, sizeof path, "%s/model.safetensors", out);
    lq_st_file *f;
    cr_assert_eq(lq_st_open(path, &f), LQ_OK);
    int sparse = 0;
    for (int64_t i = 0; i < lq_st_count(f); i++) {
        const lq_tensor *t = lq_st_get(f, i);
        size_t L = strlen(t->name);
        if (L < 8 || strcmp(t->name + L - 8, ".bitmask") != 0) continue;
        sparse++;
        int64_t rows = t->shape[0];
        char sname[300];
        snprintf(sname, sizeof sname, "%.*s.shape", (int)(L - 8), t->name);
        int64_t dims[2];
        memcpy(dims, lq_st_find(f, sname)->data, sizeof dims);
        int64_t cols = dims[1];
        double sp = strstr(t->name, "o_proj") ? 0.6 : 0.3;
        int64_t k = (int64_t)floor(sp * (double)(rows * cols) + 0.5), set = 0;
        uint8_t *mask = malloc((size_t)(rows * cols));
        lq_bitmask_unpack(t->data, rows, cols, mask);
        for (int64_t j = 0; j < rows * cols; j++) set += mask[j];
        free(mask);
        cr_assert_eq(set, rows * cols - k, "%s", t->name);
        cr_assert_null(strstr(t->name, "layers.4.mlp"));
    }
    cr_assert_eq(sparse, 32);
    /* the ignored modules stay dense float */
    cr_assert_not_null(lq_st_find(f, "model.layers.4.mlp.up_proj.weight"));
    lq_st_close(f);
    snprintf(path, sizeof path, "%s/config.json", out);
    char *cfg = lq_test_read_file(path, NULL);
    cr_assert(cfg && strstr(cfg, "\"sparse-bitmask\"") && strstr(cfg, "\"sparsity_config\"") &&
              strstr(cfg, "\"unstructured\""));
    free(cfg);
    /* the engine runs it: the decompressed weights are the original ones where kept */
    lq_model *m;
    cr_assert_eq(lq_model_load(out, &m), LQ_OK, "%s", lq_last_error());
    lq_checkpoint *orig;
    cr_assert_eq(lq_checkpoint_open(g_bin, &orig), LQ_OK);
    const lq_tensor *a = lq_checkpoint_find(orig, "model.layers.2.mlp.up_proj.weight");
    const lq_tensor *b = lq_checkpoint_find(lq_model_checkpoint(m), "model.layers.2.mlp.up_proj.weight");
    cr_assert(a && b && a->nbytes == b->nbytes);
    int64_t zeros = 0;
    for (int64_t i = 0; i < lq_tensor_numel(a); i++) {
        float x = ((const float *)a->data)[i], y = ((const float *)b->data)[i];
        cr_assert(y == 0.0f || y == x);
        zeros += y == 0.0f;
    }
    cr_assert_eq(zeros, (int64_t)floor(0.3 * 172 * 64 + 0.5));
    lq_session *s;
    cr_assert_eq(lq_session_create(m, 64, NULL, &s), LQ_OK);
    float *logits = malloc(512 * sizeof *logits);
    int32_t toks[4] = {1, 403, 407, 261};
    cr_assert_eq(lq_forward(s, toks, 4, 0, logits, false), LQ_OK);
    for (int i = 0; i < 512; i++) cr_assert(isfinite(logits[i]));
    free(logits);
    lq_session_free(s);
    lq_checkpoint_close(orig);
    lq_model_free(m);
}

/* Issue 10 B: transformers with compressed-tensors >= 0.20 loads a sparse-bitmask directory
 * without error as random weights, so the default output is dense (zeros in place, the sparsity
 * as top-level config metadata); the bitmask layout only on request, naming its readers. */
Test(prune, default_output_is_dense_with_sparsity_metadata) {
    char args[2048], err[2048], out[600], path[700];
    snprintf(out, sizeof out, "%s/dense_default", g_root);
    snprintf(args, sizeof args, "--model '%s' --method magnitude --sparsity 0.5 --ignore down_proj --out '%s'",
             g_bin, out);
    cr_assert_eq(run_tool(args, err, sizeof err), 0, "%s", err);
    snprintf(path, sizeof path, "%s/model.safetensors", out);
    lq_st_file *f;
    cr_assert_eq(lq_st_open(path, &f), LQ_OK, "%s", lq_last_error());
    for (int64_t i = 0; i < lq_st_count(f); i++) {
        const lq_tensor *t = lq_st_get(f, i);
        size_t L = strlen(t->name);
        cr_assert(L < 8 || strcmp(t->name + L - 8, ".bitmask") != 0, "bitmask tensor %s", t->name);
    }
    const lq_tensor *up = lq_st_find(f, "model.layers.1.mlp.up_proj.weight");
    cr_assert(up && up->dtype == LQ_DTYPE_F32 && up->ndim == 2);
    int64_t zeros = 0, n = lq_tensor_numel(up);
    for (int64_t i = 0; i < n; i++) zeros += lq_tensor_get_f32(up, i) == 0.0f;
    cr_expect_eq(zeros, n / 2, "up_proj: %lld zeros of %lld", (long long)zeros, (long long)n);
    lq_st_close(f);
    snprintf(path, sizeof path, "%s/config.json", out);
    json_error_t je;
    json_t *cfg = json_load_file(path, 0, &je);
    cr_assert(cfg, "%s", je.text);
    cr_expect_null(json_object_get(cfg, "quantization_config"), "dense output has a quantization_config");
    json_t *sc = json_object_get(cfg, "sparsity_config");
    cr_assert(json_is_object(sc), "no top-level sparsity_config");
    cr_expect_str_eq(json_string_value(json_object_get(sc, "format")), "dense");
    cr_expect_str_eq(json_string_value(json_object_get(sc, "sparsity_structure")), "unstructured");
    json_t *ign = json_object_get(sc, "ignore");
    cr_expect(json_is_array(ign) && json_array_size(ign) == 5, "ignore lists the 5 down_proj");
    json_decref(cfg);
    lq_model *m;
    cr_assert_eq(lq_model_load(out, &m), LQ_OK, "%s", lq_last_error());
    lq_model_free(m);
    /* --bitmask: the layout, and a note naming who reads it */
    snprintf(out, sizeof out, "%s/bitmask_flag", g_root);
    snprintf(args, sizeof args, "--model '%s' --method magnitude --sparsity 0.5 --bitmask --out '%s'", g_bin, out);
    cr_assert_eq(run_tool(args, err, sizeof err), 0, "%s", err);
    cr_expect(strstr(err, "compressed-tensors >= 0.20") && strstr(err, "random weights"), "note: %s", err);
    check_sparse_file(out, 0.5, 0, 0, 35);
}

Test(prune, global_magnitude_exact_total) {
    lq_prune_opts o = {.method = LQ_PRUNE_MAGNITUDE, .sparsity = 0.45f, .global = true, .bitmask_output = true};
    char out[600];
    snprintf(out, sizeof out, "%s/glob", g_root);
    cr_assert_eq(mkdir(out, 0755), 0);
    lq_prune_summary sum;
    cr_assert_eq(lq_prune_run(g_bin, out, &o, &sum), LQ_OK, "%s", lq_last_error());
    cr_assert_eq(sum.target_zeros, (int64_t)floor(0.45 * (double)sum.target_params + 0.5));
    /* one threshold: per-tensor sparsities differ */
    double lo = 1, hi = 0;
    for (int64_t i = 0; i < sum.n_tensors; i++) {
        const lq_prune_tensor_stat *t = &sum.tensors[i];
        if (!t->sparse) continue;
        double sp = 1.0 - (double)t->nonzero_out / (double)(t->rows_out * t->cols_out);
        lo = sp < lo ? sp : lo;
        hi = sp > hi ? sp : hi;
    }
    cr_assert(hi - lo > 0.05, "per-tensor sparsity %g..%g", lo, hi);
    lq_prune_summary_free(&sum);
}

Test(prune, nm_pattern_in_every_group) {
    char args[2048], err[1024], out[600];
    snprintf(out, sizeof out, "%s/nm24", g_root);
    snprintf(args, sizeof args, "--model '%s' --method nm --nm 2:4 --bitmask --out '%s'", g_bin, out);
    cr_assert_eq(run_tool(args, err, sizeof err), 0, "%s", err);
    check_sparse_file(out, 0, 2, 4, 35);
    char path[700];
    snprintf(path, sizeof path, "%s/config.json", out);
    char *cfg = lq_test_read_file(path, NULL);
    cr_assert(cfg && strstr(cfg, "\"sparse-24-bitmask\"") && strstr(cfg, "\"2:4\""));
    free(cfg);
    /* 4:8 with down_proj (172 columns) left dense */
    snprintf(out, sizeof out, "%s/nm48", g_root);
    snprintf(args, sizeof args, "--model '%s' --method nm --nm 4:8 --ignore down_proj --bitmask --out '%s'",
             g_bin, out);
    cr_assert_eq(run_tool(args, err, sizeof err), 0, "%s", err);
    check_sparse_file(out, 0, 4, 8, 30);
    lq_model *m;
    cr_assert_eq(lq_model_load(out, &m), LQ_OK, "%s", lq_last_error());
    lq_model_free(m);
}

/* ---- structured = masked dense ------------------------------------------------------------------- */

/* Write stories260K as an HF directory with the units the summary removed zeroed: FFN neuron i
 * -> row i of gate/up and column i of down; KV group g -> its query heads' columns of o_proj
 * (then nothing of the group reaches the residual stream). */
static void write_masked(const char *dir, const lq_prune_summary *sum, bool ffn) {
    lq_checkpoint *c;
    cr_assert_eq(lq_checkpoint_open(g_bin, &c), LQ_OK);
    const lq_config *cfg = lq_checkpoint_config(c);
    cr_assert_eq(mkdir(dir, 0755), 0);
    int64_t n = lq_checkpoint_count(c);
    lq_tensor *ts = calloc((size_t)n, sizeof *ts);
    float **bufs = calloc((size_t)n, sizeof *bufs);
    int group = cfg->n_heads / cfg->n_kv_heads;
    for (int64_t i = 0; i < n; i++) {
        ts[i] = *lq_checkpoint_get(c, i);
        int l;
        char part[64];
        if (sscanf(ts[i].name, "model.layers.%d.%63s", &l, part) != 2) continue;
        bool rows = ffn && (strcmp(part, "mlp.gate_proj.weight") == 0 || strcmp(part, "mlp.up_proj.weight") == 0);
        bool cols = ffn ? strcmp(part, "mlp.down_proj.weight") == 0 : strcmp(part, "self_attn.o_proj.weight") == 0;
        if (!rows && !cols) continue;
        int64_t R = ts[i].shape[0], C = ts[i].shape[1];
        float *w = malloc(ts[i].nbytes);
        memcpy(w, ts[i].data, ts[i].nbytes);
        for (int u = 0; u < sum->layer_units_in[l]; u++) {
            bool kept = false;
            for (int k = 0; k < sum->layer_units_out[l]; k++) kept |= sum->layer_kept[l][k] == u;
            if (kept) continue;
            int64_t width = ffn ? 1 : (int64_t)group * cfg->head_dim;
            for (int64_t j = u * width; j < (u + 1) * width; j++)
                for (int64_t x = 0; x < (rows ? C : R); x++) w[rows ? j * C + x : x * C + j] = 0.0f;
        }
        bufs[i] = w;
        ts[i].data = w;
    }
    char path[700], *json;
    snprintf(path, sizeof path, "%s/model.safetensors", dir);
    cr_assert_eq(lq_st_save(path, ts, n), LQ_OK, "%s", lq_last_error());
    cr_assert_eq(lq_config_to_json(cfg, &json), LQ_OK);
    snprintf(path, sizeof path, "%s/config.json", dir);
    FILE *f = fopen(path, "w");
    fputs(json, f);
    fclose(f);
    free(json);
    for (int64_t i = 0; i < n; i++) free(bufs[i]);
    free(bufs);
    free(ts);
    lq_checkpoint_close(c);
}

/* Logits of a 40-token prompt (prefill) and one decode step for both models. */
static void assert_same_function(const char *a_dir, const char *b_dir) {
    lq_model *a, *b;
    cr_assert_eq(lq_model_load(a_dir, &a), LQ_OK, "%s", lq_last_error());
    cr_assert_eq(lq_model_load(b_dir, &b), LQ_OK, "%s", lq_last_error());
    lq_session *sa, *sb;
    cr_assert_eq(lq_session_create(a, 64, NULL, &sa), LQ_OK);
    cr_assert_eq(lq_session_create(b, 64, NULL, &sb), LQ_OK);
    enum { T = 40, V = 512 };
    int32_t toks[T + 1];
    for (int i = 0; i <= T; i++) toks[i] = i == 0 ? 1 : (int32_t)((i * 97 + 13) % V);
    float *la = malloc((size_t)T * V * sizeof *la), *lb = malloc((size_t)T * V * sizeof *lb);
    cr_assert_eq(lq_forward(sa, toks, T, 0, la, true), LQ_OK);
    cr_assert_eq(lq_forward(sb, toks, T, 0, lb, true), LQ_OK);
    /* Same sums without the zero terms: only the summation order of the kernels differs. Logits
     * are O(10); 1e-3 absolute is ~100 f32 ulps of accumulated reordering over 5 layers. */
    for (int i = 0; i < T * V; i++)
        cr_assert(fabsf(la[i] - lb[i]) <= 1e-3f + 1e-4f * fabsf(la[i]), "logit %d: %g vs %g", i, la[i], lb[i]);
    cr_assert_eq(lq_forward(sa, toks + T, 1, T, la, false), LQ_OK);
    cr_assert_eq(lq_forward(sb, toks + T, 1, T, lb, false), LQ_OK);
    for (int i = 0; i < V; i++) cr_assert(fabsf(la[i] - lb[i]) <= 1e-3f + 1e-4f * fabsf(la[i]), "decode logit %d", i);
    free(la), free(lb);
    lq_session_free(sa), lq_session_free(sb);
    lq_model_free(a), lq_model_free(b);
}

static void structured_case(lq_prune_method method, float keep, const float *layer_keep, int n_lk,
                            const char *tag, bool want_layer_keys) {
    lq_prune_opts o = {.method = method, .keep = keep, .layer_keep = layer_keep, .n_layer_keep = n_lk};
    char out[600], masked[600], path[700];
    snprintf(out, sizeof out, "%s/%s", g_root, tag);
    snprintf(masked, sizeof masked, "%s/%s_masked", g_root, tag);
    cr_assert_eq(mkdir(out, 0755), 0);
    lq_prune_summary sum;
    cr_assert_eq(lq_prune_run(g_bin, out, &o, &sum), LQ_OK, "%s", lq_last_error());
    cr_assert_eq(sum.n_layers, 5);
    write_masked(masked, &sum, method == LQ_PRUNE_FFN);
    assert_same_function(out, masked);
    snprintf(path, sizeof path, "%s/config.json", out);
    char *cfg = lq_test_read_file(path, NULL);
    cr_assert_not_null(cfg);
    cr_assert_eq(strstr(cfg, "layer_intermediate_sizes") != NULL, want_layer_keys, "%s", cfg);
    lq_config c;
    cr_assert_eq(lq_config_parse_json(cfg, path, &c), LQ_OK);
    for (int l = 0; l < 5; l++) {
        int units = method == LQ_PRUNE_FFN ? lq_config_layer_hidden(&c, l) : lq_config_layer_kv_heads(&c, l);
        cr_assert_eq(units, sum.layer_units_out[l]);
        if (method == LQ_PRUNE_HEADS) cr_assert_eq(lq_config_layer_heads(&c, l), 2 * units);
    }
    free(cfg);
    lq_prune_summary_free(&sum);
}

Test(prune, ffn_uniform_equals_masked_dense) {
    structured_case(LQ_PRUNE_FFN, 0.5f, NULL, 0, "ffn50", false);
}

Test(prune, ffn_per_layer_equals_masked_dense) {
    const float lk[5] = {0.3f, -1.0f, 1.0f, -1.0f, 0.9f};
    structured_case(LQ_PRUNE_FFN, 0.6f, lk, 5, "ffnpl", true);
}

Test(prune, heads_uniform_equals_masked_dense) {
    structured_case(LQ_PRUNE_HEADS, 0.5f, NULL, 0, "h50", false);
}

Test(prune, heads_per_layer_equals_masked_dense) {
    const float lk[5] = {0.25f, 0.75f, 1.0f, 0.5f, 0.75f};
    structured_case(LQ_PRUNE_HEADS, 1.0f, lk, 5, "hpl", true);
}

/* ---- prune -> quantize ----------------------------------------------------------------------------- */

Test(prune, prune_then_quantize_runs_with_zeros_kept) {
    char sp[600], q[600];
    snprintf(sp, sizeof sp, "%s/sp", g_root);
    snprintf(q, sizeof q, "%s/q", g_root);
    cr_assert_eq(mkdir(sp, 0755), 0);
    cr_assert_eq(mkdir(q, 0755), 0);
    lq_prune_opts o = {.method = LQ_PRUNE_NM, .nm_n = 2, .nm_m = 4};
    cr_assert_eq(lq_prune_run(g_bin, sp, &o, NULL), LQ_OK, "%s", lq_last_error());
    lq_ptq_opts po = {.scheme = LQ_WFMT_W8A16};
    cr_assert_eq(lq_ptq_quantize(sp, q, &po, NULL), LQ_OK, "%s", lq_last_error());
    lq_model *m;
    cr_assert_eq(lq_model_load(q, &m), LQ_OK, "%s", lq_last_error());
    /* symmetric int8: a zero weight has code 0, so the 2:4 pattern survives quantization */
    const lq_weight *w = lq_test_linear(m, 1, "mlp.up_proj");
    cr_assert_eq(w->fmt, LQ_WFMT_W8A16);
    float *row = malloc((size_t)w->cols * sizeof *row);
    const lq_wfmt_traits *tr = lq_wfmt_get(w->fmt);
    for (int64_t r = 0; r < w->rows; r++) {
        tr->dequant_ref(w, r, r + 1, row);
        for (int64_t g = 0; g < w->cols; g += 4) {
            int nz = 0;
            for (int j = 0; j < 4; j++) nz += row[g + j] != 0.0f;
            cr_assert(nz <= 2, "row %lld group %lld: %d non-zeros", (long long)r, (long long)g, nz);
        }
    }
    free(row);
    lq_session *s;
    cr_assert_eq(lq_session_create(m, 32, NULL, &s), LQ_OK);
    float logits[512];
    int32_t t = 1;
    cr_assert_eq(lq_forward(s, &t, 1, 0, logits, false), LQ_OK);
    for (int i = 0; i < 512; i++) cr_assert(isfinite(logits[i]));
    lq_session_free(s);
    lq_model_free(m);
}

/* ---- bad input ------------------------------------------------------------------------------------------ */

/* one_line: a library refusal prints exactly one line; an argument error prints its line and
 * then the usage text. Either way no output directory (not even a temp one) is left. */
static void expect_error(const char *args, int want_rc, const char *needle, bool one_line) {
    char full[2048], err[8192];
    snprintf(full, sizeof full, "--model '%s' %s --out '%s/bad'", g_bin, args, g_root);
    int rc = run_tool(full, err, sizeof err);
    cr_assert_eq(rc, want_rc, "%s -> %d: %s", args, rc, err);
    cr_assert(strncmp(err, "quant-prune: error: ", 20) == 0, "%s", err);
    char *nl = strchr(err, '\n');
    cr_assert_not_null(nl);
    *nl = 0;
    cr_assert_not_null(strstr(err, needle), "'%s' not in: %s", needle, err);
    if (one_line) cr_assert_eq(nl[1], 0, "more than one line after: %s", err);
    char p[600], cmd[700];
    struct stat sb;
    snprintf(p, sizeof p, "%s/bad", g_root);
    cr_assert_neq(stat(p, &sb), 0);
    snprintf(cmd, sizeof cmd, "ls -d '%s'/bad.* 2>/dev/null | grep -q .", g_root);
    cr_assert_neq(system(cmd), 0, "a temp output was left behind");
}

Test(prune, bad_inputs_one_line_each) {
    expect_error("--method magnitude --sparsity 1", 2, "[0, 1)", false);
    expect_error("--method magnitude --sparsity -0.1", 2, "[0, 1)", false);
    expect_error("--method nm --nm 4:8", 2, "multiple of 8", true);
    expect_error("--method heads --keep 0.1", 2, "removes every one", true);
    expect_error("--method ffn --keep 0.5 --layer-keep 2=0.001", 2, "layer 2", true);
    expect_error("--method magnitude --sparsity 0.5 --target nonexistent_proj", 2, "matches no module", true);
    expect_error("--method magnitude --sparsity 0.5 --ignore 're:model.layers.9.*'", 2, "matches no module", true);
    expect_error("--method bogus", 2, "unknown method", false);
    /* issue 10 defect 11: stories260K has 5 layers; layer 99 used to be ignored silently */
    expect_error("--method ffn --keep 0.5 --layer-keep 99=0.25", 2, "--layer-keep 99=0.25: the model has 5 layers",
                 true);
    expect_error("--method heads --layer-keep 5=0.5", 2, "has 5 layers (0..4)", true);
    /* never into the input */
    char args[2048], err[1024];
    snprintf(args, sizeof args, "--model '%s' --method magnitude --sparsity 0.5 --out '%s' --force", g_root,
             g_root);
    cr_assert_eq(run_tool(args, err, sizeof err), 2, "%s", err);
}

/* issue 10 defect 6: an already-quantized model used to be "pruned" (nothing matched, exit 0,
 * an unchanged copy written). It is refused as quant-ptq refuses it, for every method. */
Test(prune, quantized_input_refused) {
    char hf[600], q[600], cmd[4096], err[4096];
    snprintf(hf, sizeof hf, "%s/hf", g_root);
    snprintf(q, sizeof q, "%s/q", g_root);
    cr_assert_eq(lq_test_convert_stories260k(hf, cmd, sizeof cmd), 0, "%s", cmd);
    cr_assert_eq(mkdir(q, 0755), 0);
    lq_ptq_opts po = {.scheme = LQ_WFMT_W8A16};
    cr_assert_eq(lq_ptq_quantize(hf, q, &po, NULL), LQ_OK, "%s", lq_last_error());
    const char *methods[] = {"--method magnitude --sparsity 0.5", "--method nm", "--method ffn --keep 0.5",
                             "--method heads --keep 0.5"};
    for (int i = 0; i < 4; i++) {
        char args[2048];
        snprintf(args, sizeof args, "--model '%s' %s --out '%s/pq'", q, methods[i], g_root);
        cr_assert_eq(run_tool(args, err, sizeof err), 3, "%s: %s", methods[i], err);
        cr_assert_not_null(strstr(err, "already quantized"), "%s", err);
        cr_assert_not_null(strstr(err, "prune the original float model"), "%s", err);
        cr_assert_eq(strchr(err, '\n'), err + strlen(err) - 1, "one line: %s", err);
        struct stat sb;
        snprintf(args, sizeof args, "%s/pq", g_root);
        cr_assert_neq(stat(args, &sb), 0, "no output for a refused input");
    }
}
