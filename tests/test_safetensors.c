/* test_safetensors.c - safetensors reader against a file written by the reference implementation,
 * and the streaming writer: round trip, alignment, chunking, atomicity. */
#include <criterion/criterion.h>

#include <dirent.h>
#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "libquant.h"
#include "lq_test_util.h"

/* Bytes written by the Hugging Face safetensors package (Rust core, v0.4+) for
 *   save_file({"a": np.arange(6, dtype=float32).reshape(2, 3), "b": np.ones(3, dtype=float16),
 *              "z": np.zeros((0, 4), dtype=float32)}, path, metadata={"format": "pt"})
 * It orders tensors by alignment (F32 before F16) and keeps the zero-size "z" at offset 24. */
static const unsigned char k_reference[] = {
    200,0,0,0,0,0,0,0,123,34,95,95,109,101,116,97,100,97,116,97,95,95,34,58,123,34,102,111,114,109,97,
    116,34,58,34,112,116,34,125,44,34,97,34,58,123,34,100,116,121,112,101,34,58,34,70,51,50,34,44,34,
    115,104,97,112,101,34,58,91,50,44,51,93,44,34,100,97,116,97,95,111,102,102,115,101,116,115,34,58,
    91,48,44,50,52,93,125,44,34,122,34,58,123,34,100,116,121,112,101,34,58,34,70,51,50,34,44,34,115,
    104,97,112,101,34,58,91,48,44,52,93,44,34,100,97,116,97,95,111,102,102,115,101,116,115,34,58,91,
    50,52,44,50,52,93,125,44,34,98,34,58,123,34,100,116,121,112,101,34,58,34,70,49,54,34,44,34,115,
    104,97,112,101,34,58,91,51,93,44,34,100,97,116,97,95,111,102,102,115,101,116,115,34,58,91,50,52,
    44,51,48,93,125,125,0,0,0,0,0,0,128,63,0,0,0,64,0,0,64,64,0,0,128,64,0,0,160,64,0,60,0,60,0,60};

static char g_dir[64];

static void setup(void) {
    snprintf(g_dir, sizeof g_dir, "/tmp/lq_st_XXXXXX");
    cr_assert_not_null(mkdtemp(g_dir));
}

static int rm_cb(const char *p, const struct stat *sb, int f, struct FTW *ftw) {
    (void)sb; (void)f; (void)ftw;
    return remove(p);
}

static void teardown(void) { nftw(g_dir, rm_cb, 8, FTW_DEPTH | FTW_PHYS); }

static int count_entries(const char *dir) {
    DIR *d = opendir(dir);
    int n = 0;
    struct dirent *e;
    while ((e = readdir(d)))
        if (strcmp(e->d_name, ".") && strcmp(e->d_name, "..")) n++;
    closedir(d);
    return n;
}

TestSuite(safetensors, .init = setup, .fini = teardown);

Test(safetensors, reads_reference_file) {
    char path[128];
    snprintf(path, sizeof path, "%s/ref.safetensors", g_dir);
    FILE *f = fopen(path, "wb");
    fwrite(k_reference, 1, sizeof k_reference, f);
    fclose(f);
    lq_st_file *st;
    cr_assert_eq(lq_st_open(path, &st), LQ_OK, "%s", lq_last_error());
    cr_assert_eq(lq_st_count(st), 3);
    cr_assert_eq(lq_st_file_size(st), sizeof k_reference);
    cr_assert_str_eq(lq_st_metadata(st, "format"), "pt");
    cr_assert_null(lq_st_metadata(st, "nope"));
    /* File order = offset order: a [0,24), z [24,24), b [24,30). */
    cr_assert_str_eq(lq_st_get(st, 0)->name, "a");
    cr_assert_str_eq(lq_st_get(st, 2)->name, "b");
    const lq_tensor *a = lq_st_find(st, "a");
    cr_assert_eq(a->dtype, LQ_DTYPE_F32);
    cr_assert_eq(a->ndim, 2);
    cr_assert_eq(a->shape[0], 2);
    cr_assert_eq(a->shape[1], 3);
    for (int i = 0; i < 6; i++) cr_assert_eq(lq_tensor_get_f32(a, i), (float)i);
    const lq_tensor *b = lq_st_find(st, "b");
    cr_assert_eq(b->dtype, LQ_DTYPE_F16);
    cr_assert_eq(b->nbytes, 6);
    for (int i = 0; i < 3; i++) cr_assert_eq(lq_tensor_get_f32(b, i), 1.0f);
    const lq_tensor *z = lq_st_find(st, "z");
    cr_assert_eq(z->nbytes, 0);
    cr_assert_eq(z->shape[0], 0);
    cr_assert_eq(z->shape[1], 4);
    cr_assert_null(lq_st_find(st, "c"));
    lq_st_close(st);
}

Test(safetensors, writer_round_trip_and_alignment) {
    char path[128];
    snprintf(path, sizeof path, "%s/rt.safetensors", g_dir);
    float w[5 * 3];
    for (int i = 0; i < 15; i++) w[i] = (float)i * 0.5f - 3.0f;
    uint16_t h[7] = {0x3c00, 0x4000, 0xc000, 0x7bff, 0x0001, 0x8000, 0x3555};
    const int64_t sw[2] = {5, 3}, sh[1] = {7}, sz[2] = {0, 9};
    lq_st_writer *wr;
    cr_assert_eq(lq_st_writer_create(path, &wr), LQ_OK);
    cr_assert_eq(lq_st_writer_metadata(wr, "format", "pt"), LQ_OK);
    cr_assert_eq(lq_st_writer_declare(wr, "layer.w", LQ_DTYPE_F32, 2, sw), LQ_OK);
    cr_assert_eq(lq_st_writer_declare(wr, "empty", LQ_DTYPE_F32, 2, sz), LQ_OK);
    cr_assert_eq(lq_st_writer_declare(wr, "half \"quoted\"", LQ_DTYPE_BF16, 1, sh), LQ_OK);
    cr_assert_eq(lq_st_writer_declare(wr, "layer.w", LQ_DTYPE_F32, 2, sw), LQ_ERR_INVALID_ARG);
    /* Chunks that do not line up with tensor boundaries. */
    unsigned char all[60 + 14];
    memcpy(all, w, 60);
    memcpy(all + 60, h, 14);
    cr_assert_eq(lq_st_writer_write(wr, all, 7), LQ_OK);
    cr_assert_eq(lq_st_writer_write(wr, all + 7, 60), LQ_OK);
    cr_assert_eq(lq_st_writer_declare(wr, "late", LQ_DTYPE_F32, 2, sw), LQ_ERR_INVALID_ARG);
    cr_assert_eq(lq_st_writer_write(wr, all + 67, 7), LQ_OK);
    cr_assert_eq(lq_st_writer_commit(wr), LQ_OK, "%s", lq_last_error());
    cr_assert_eq(count_entries(g_dir), 1, "temporary file left behind");

    size_t len;
    unsigned char *raw = (unsigned char *)lq_test_read_file(path, &len);
    uint64_t n = 0;
    for (int i = 7; i >= 0; i--) n = (n << 8) | raw[i];
    cr_assert_eq((8 + n) % 8, 0, "data section must start 8-byte aligned");
    cr_assert_eq(len, 8 + n + 74);
    cr_assert_eq(raw[8], '{');
    size_t k = 8 + n;
    while (raw[k - 1] == ' ') k--; /* padding is spaces after the closing brace */
    cr_assert_eq(raw[k - 1], '}');
    cr_assert_eq(memcmp(raw + 8 + n, all, 74), 0);
    free(raw);

    lq_st_file *st;
    cr_assert_eq(lq_st_open(path, &st), LQ_OK, "%s", lq_last_error());
    cr_assert_eq(lq_st_count(st), 3);
    cr_assert_str_eq(lq_st_metadata(st, "format"), "pt");
    const lq_tensor *t = lq_st_find(st, "layer.w");
    cr_assert_eq(memcmp(t->data, w, 60), 0);
    cr_assert_eq((uintptr_t)t->data % 8, 0);
    t = lq_st_find(st, "half \"quoted\"");
    cr_assert_not_null(t);
    cr_assert_eq(t->dtype, LQ_DTYPE_BF16);
    cr_assert_eq(memcmp(t->data, h, 14), 0);
    cr_assert_eq(lq_st_find(st, "empty")->nbytes, 0);
    lq_st_close(st);
}

Test(safetensors, abort_leaves_no_file) {
    char path[128];
    snprintf(path, sizeof path, "%s/ab.safetensors", g_dir);
    const int64_t s[1] = {4};
    float x[4] = {1, 2, 3, 4};
    lq_st_writer *w;
    cr_assert_eq(lq_st_writer_create(path, &w), LQ_OK);
    cr_assert_eq(lq_st_writer_declare(w, "x", LQ_DTYPE_F32, 1, s), LQ_OK);
    cr_assert_eq(lq_st_writer_write(w, x, 8), LQ_OK);
    cr_assert_eq(count_entries(g_dir), 1); /* the .tmp.<pid> file exists while writing */
    lq_st_writer_abort(w);
    cr_assert_eq(count_entries(g_dir), 0);
    lq_st_writer_abort(NULL);
}

Test(safetensors, short_or_long_payload_fails_without_file) {
    char path[128];
    snprintf(path, sizeof path, "%s/short.safetensors", g_dir);
    const int64_t s[1] = {4};
    float x[5] = {1, 2, 3, 4, 5};
    lq_st_writer *w;
    cr_assert_eq(lq_st_writer_create(path, &w), LQ_OK);
    cr_assert_eq(lq_st_writer_declare(w, "x", LQ_DTYPE_F32, 1, s), LQ_OK);
    cr_assert_eq(lq_st_writer_write(w, x, 12), LQ_OK);
    cr_assert_eq(lq_st_writer_commit(w), LQ_ERR_INVALID_ARG);
    cr_assert(strstr(lq_last_error(), "'x'"), "%s", lq_last_error());
    cr_assert_eq(count_entries(g_dir), 0);

    cr_assert_eq(lq_st_writer_create(path, &w), LQ_OK);
    cr_assert_eq(lq_st_writer_declare(w, "x", LQ_DTYPE_F32, 1, s), LQ_OK);
    cr_assert_eq(lq_st_writer_write(w, x, 20), LQ_ERR_INVALID_ARG);
    cr_assert_eq(count_entries(g_dir), 0, "a failed write removes the temporary at once");
    lq_st_writer_abort(w);
    cr_assert_eq(count_entries(g_dir), 0);
}

Test(safetensors, save_convenience) {
    char path[128];
    snprintf(path, sizeof path, "%s/save.safetensors", g_dir);
    int32_t ids[3] = {7, -1, 1 << 30};
    lq_tensor t = {.name = "ids", .dtype = LQ_DTYPE_I32, .ndim = 1, .shape = {3}, .data = ids, .nbytes = 12};
    cr_assert_eq(lq_st_save(path, &t, 1), LQ_OK, "%s", lq_last_error());
    lq_st_file *st;
    cr_assert_eq(lq_st_open(path, &st), LQ_OK, "%s", lq_last_error());
    cr_assert_eq(lq_st_get(st, 0)->dtype, LQ_DTYPE_I32);
    cr_assert_eq(memcmp(lq_st_get(st, 0)->data, ids, 12), 0);
    lq_st_close(st);
    /* Replacing an existing file is atomic too (rename over it). */
    ids[0] = 8;
    cr_assert_eq(lq_st_save(path, &t, 1), LQ_OK);
    cr_assert_eq(lq_st_open(path, &st), LQ_OK);
    cr_assert_eq(((const int32_t *)lq_st_get(st, 0)->data)[0], 8);
    lq_st_close(st);
    cr_assert_eq(count_entries(g_dir), 1);
}
