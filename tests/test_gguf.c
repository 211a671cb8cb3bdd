/* test_gguf.c - the GGUF reader on llama.cpp's vocab files (facts from models/SOURCES.md) and on
 * hand-built / truncated / corrupted files. */
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "libquant/lq_gguf.h"
#include "lq_test_util.h"

static lq_gguf *open_shared(const char *rel) {
    char p[1024];
    lq_gguf *g = NULL;
    lq_status s = lq_gguf_open(lq_test_shared(rel, p, sizeof p), &g);
    cr_assert_eq(s, LQ_OK, "%s", lq_last_error());
    return g;
}

Test(gguf, llama_spm_vocab) {
    lq_gguf *g = open_shared("models/llama2-tokenizer/ggml-vocab-llama-spm.gguf");
    cr_assert_eq(lq_gguf_version(g), 3);
    cr_assert_eq(lq_gguf_kv_count(g), 22);
    cr_assert_eq(lq_gguf_tensor_count(g), 0);
    lq_gguf_str s;
    cr_assert_eq(lq_gguf_get_str(g, "tokenizer.ggml.model", &s), LQ_OK);
    cr_assert(s.len == 5 && memcmp(s.data, "llama", 5) == 0);
    lq_gguf_type et;
    int64_t n;
    cr_assert_eq(lq_gguf_get_arr(g, "tokenizer.ggml.tokens", &et, &n), LQ_OK);
    cr_assert(et == LQ_GGUF_TYPE_STRING && n == 32000);
    cr_assert_eq(lq_gguf_arr_str(g, "tokenizer.ggml.tokens", 15043, &s), LQ_OK); /* "▁Hello" (llama.cpp vectors) */
    cr_assert(s.len == 8 && memcmp(s.data, "\xe2\x96\x81Hello", 8) == 0);
    cr_assert_eq(lq_gguf_arr_str(g, "tokenizer.ggml.tokens", 1, &s), LQ_OK);
    cr_assert(s.len == 3 && memcmp(s.data, "<s>", 3) == 0);
    cr_assert_eq(lq_gguf_arr_str(g, "tokenizer.ggml.tokens", 32000, &s), LQ_ERR_INVALID_ARG);
    cr_assert_eq(lq_gguf_get_arr(g, "tokenizer.ggml.scores", &et, &n), LQ_OK);
    cr_assert(et == LQ_GGUF_TYPE_FLOAT32 && n == 32000);
    cr_assert_eq(lq_gguf_get_arr(g, "tokenizer.ggml.token_type", &et, &n), LQ_OK);
    cr_assert(et == LQ_GGUF_TYPE_INT32 && n == 32000);
    int64_t v;
    cr_assert_eq(lq_gguf_arr_i64(g, "tokenizer.ggml.token_type", 1, &v), LQ_OK);
    cr_assert_eq(v, 3); /* <s> is a control token */
    cr_assert_eq(lq_gguf_get_i64(g, "tokenizer.ggml.bos_token_id", &v), LQ_OK);
    cr_assert_eq(v, 1);
    cr_assert_eq(lq_gguf_get_i64(g, "tokenizer.ggml.eos_token_id", &v), LQ_OK);
    cr_assert_eq(v, 2);
    cr_assert_eq(lq_gguf_get_i64(g, "tokenizer.ggml.unknown_token_id", &v), LQ_OK);
    cr_assert_eq(v, 0);
    bool b = false;
    cr_assert_eq(lq_gguf_get_bool(g, "tokenizer.ggml.add_bos_token", &b), LQ_OK);
    cr_assert(b);
    /* wrong type / absent key: clear statuses, messages name the key */
    cr_assert_eq(lq_gguf_get_i64(g, "tokenizer.ggml.model", &v), LQ_ERR_FORMAT);
    cr_assert(strstr(lq_last_error(), "tokenizer.ggml.model"));
    cr_assert_eq(lq_gguf_get_i64(g, "no.such.key", &v), LQ_ERR_NOT_FOUND);
    cr_assert_eq(lq_gguf_find(g, "no.such.key"), -1);
    cr_assert_eq(lq_gguf_alignment(g), 32);
    lq_gguf_close(g);
}

Test(gguf, gpt2_vocab) {
    lq_gguf *g = open_shared("models/gpt2-tokenizer/ggml-vocab-gpt-2.gguf");
    lq_gguf_type et;
    int64_t n, v;
    cr_assert_eq(lq_gguf_get_arr(g, "tokenizer.ggml.tokens", &et, &n), LQ_OK);
    cr_assert_eq(n, 50257);
    cr_assert_eq(lq_gguf_get_arr(g, "tokenizer.ggml.merges", &et, &n), LQ_OK);
    cr_assert(et == LQ_GGUF_TYPE_STRING && n == 50000);
    lq_gguf_str s;
    cr_assert_eq(lq_gguf_arr_str(g, "tokenizer.ggml.merges", 0, &s), LQ_OK); /* first line of merges.txt */
    cr_assert(s.len == 4 && memcmp(s.data, "\xc4\xa0 t", 4) == 0, "%.*s", (int)s.len, s.data);
    cr_assert_eq(lq_gguf_get_i64(g, "tokenizer.ggml.bos_token_id", &v), LQ_OK);
    cr_assert_eq(v, 50256);
    lq_gguf_close(g);
}

/* ---- hand-built files ----------------------------------------------------------------------- */

typedef struct buf {
    unsigned char d[4096];
    size_t n;
} buf;
static void put(buf *b, const void *p, size_t n) {
    cr_assert(b->n + n <= sizeof b->d);
    memcpy(b->d + b->n, p, n);
    b->n += n;
}
static void u32(buf *b, uint32_t v) { put(b, &v, 4); }
static void u64(buf *b, uint64_t v) { put(b, &v, 8); }
static void str(buf *b, const char *s) {
    u64(b, strlen(s));
    put(b, s, strlen(s));
}

static const char *write_tmp(const buf *b, size_t n) {
    static char path[64];
    snprintf(path, sizeof path, "/tmp/lq_gguf_test_%d.gguf", (int)getpid());
    FILE *f = fopen(path, "wb");
    cr_assert(f);
    cr_assert_eq(fwrite(b->d, 1, n, f), n);
    fclose(f);
    return path;
}

/* GGUF v3, 1 tensor "w" F32 [4, 2] at offset 0, keys: a string, a u32 array, alignment 32. */
static void build_small(buf *b) {
    b->n = 0;
    put(b, "GGUF", 4);
    u32(b, 3);
    u64(b, 1); /* tensors */
    u64(b, 3); /* kv */
    str(b, "general.name");
    u32(b, LQ_GGUF_TYPE_STRING);
    str(b, "tiny");
    str(b, "test.arr");
    u32(b, LQ_GGUF_TYPE_ARRAY);
    u32(b, LQ_GGUF_TYPE_UINT32);
    u64(b, 3);
    u32(b, 7);
    u32(b, 8);
    u32(b, 9);
    str(b, "general.alignment");
    u32(b, LQ_GGUF_TYPE_UINT32);
    u32(b, 32);
    str(b, "w");
    u32(b, 2);
    u64(b, 4);
    u64(b, 2);
    u32(b, 0); /* F32 */
    u64(b, 0);
    while (b->n % 32) put(b, "", 1);
    float x[8] = {1, 2, 3, 4, 5, 6, 7, 8};
    put(b, x, sizeof x);
}

Test(gguf, small_file_with_tensor) {
    buf b;
    build_small(&b);
    const char *path = write_tmp(&b, b.n);
    lq_gguf *g = NULL;
    cr_assert_eq(lq_gguf_open(path, &g), LQ_OK, "%s", lq_last_error());
    cr_assert_eq(lq_gguf_tensor_count(g), 1);
    const lq_gguf_tensor_info *t = lq_gguf_find_tensor(g, "w");
    cr_assert_not_null(t);
    cr_assert(t->n_dims == 2 && t->ne[0] == 4 && t->ne[1] == 2 && t->type == 0 && t->nbytes == 32);
    cr_assert_eq(t->offset, lq_gguf_data_offset(g));
    cr_assert_eq(t->offset % 32, 0);
    float x[8];
    memcpy(x, (const char *)lq_gguf_file_data(g) + t->offset, sizeof x);
    cr_assert(x[0] == 1.0f && x[7] == 8.0f);
    int64_t v;
    cr_assert_eq(lq_gguf_arr_i64(g, "test.arr", 2, &v), LQ_OK);
    cr_assert_eq(v, 9);
    double d;
    cr_assert_eq(lq_gguf_arr_f64(g, "test.arr", 0, &d), LQ_OK);
    cr_assert_eq(d, 7.0);
    lq_gguf_close(g);
    unlink(path);
}

static void expect_fail(const buf *b, size_t n, lq_status want, const char *what) {
    const char *path = write_tmp(b, n);
    lq_gguf *g = (lq_gguf *)1;
    lq_status s = lq_gguf_open(path, &g);
    cr_assert_eq(s, want, "%s: got %s (%s)", what, lq_status_name(s), lq_last_error());
    cr_assert_null(g);
    cr_assert(strstr(lq_last_error(), path), "%s: message must name the file: %s", what, lq_last_error());
    unlink(path);
}

Test(gguf, every_truncation_fails_cleanly) {
    buf b;
    build_small(&b);
    /* every cut inside the header or the tensor data is an error, never a crash */
    for (size_t n = 0; n < b.n; n++) expect_fail(&b, n, LQ_ERR_FORMAT, "truncated");
}

Test(gguf, corrupt_lengths) {
    buf b;
    build_small(&b);
    buf c = b;
    memcpy(c.d, "GGUX", 4);
    expect_fail(&c, c.n, LQ_ERR_FORMAT, "magic");
    c = b;
    uint32_t one = 1;
    memcpy(c.d + 4, &one, 4);
    expect_fail(&c, c.n, LQ_ERR_UNSUPPORTED, "version 1");
    c = b;
    uint64_t huge = UINT64_MAX / 2;
    memcpy(c.d + 16, &huge, 8); /* n_kv */
    expect_fail(&c, c.n, LQ_ERR_FORMAT, "kv count");
    c = b;
    memcpy(c.d + 24, &huge, 8); /* length of the first key */
    expect_fail(&c, c.n, LQ_ERR_FORMAT, "key length");
    c = b;
    memcpy(c.d + 24 + 8 + 12 + 4, &huge, 8); /* length of the string value */
    expect_fail(&c, c.n, LQ_ERR_FORMAT, "string length");
    c = b;
    size_t arr_n = 24 + 8 + 12 + 4 + 8 + 4 + 8 + 8 + 4 + 4; /* the array's element count */
    memcpy(c.d + arr_n, &huge, 8);
    expect_fail(&c, c.n, LQ_ERR_FORMAT, "array count");
    c = b;
    uint32_t nested = LQ_GGUF_TYPE_ARRAY;
    memcpy(c.d + arr_n - 4, &nested, 4);
    expect_fail(&c, c.n, LQ_ERR_UNSUPPORTED, "nested array");
    /* tensor offset past the end */
    c = b;
    size_t toff = c.n - 32 - 32; /* data (32) + padding: find the offset field by searching */
    for (size_t i = 0; i + 8 <= b.n; i++) {
        /* the tensor info ends with type 0 (u32) + offset 0 (u64) right after ne = 4, 2 */
        static const unsigned char pat[] = {4, 0, 0, 0, 0, 0, 0, 0, 2, 0, 0, 0, 0, 0, 0, 0};
        if (memcmp(b.d + i, pat, sizeof pat) == 0) toff = i + sizeof pat + 4;
    }
    uint64_t far = 4096;
    memcpy(c.d + toff, &far, 8);
    expect_fail(&c, c.n, LQ_ERR_FORMAT, "tensor offset");
    uint64_t unaligned = 4;
    c = b;
    memcpy(c.d + toff, &unaligned, 8);
    expect_fail(&c, c.n, LQ_ERR_FORMAT, "unaligned tensor");
    c = b;
    uint64_t big_ne = (uint64_t)1 << 40;
    memcpy(c.d + toff - 4 - 16, &big_ne, 8);
    expect_fail(&c, c.n, LQ_ERR_FORMAT, "tensor size");
    lq_gguf *g = NULL;
    cr_assert_eq(lq_gguf_open("/nonexistent.gguf", &g), LQ_ERR_IO);
}

Test(gguf, truncated_real_vocab) {
    char p[1024];
    size_t len;
    char *data = lq_test_read_file(lq_test_shared("models/llama2-tokenizer/ggml-vocab-llama-spm.gguf", p, sizeof p), &len);
    cr_assert(data);
    char path[64];
    snprintf(path, sizeof path, "/tmp/lq_gguf_trunc_%d.gguf", (int)getpid());
    size_t cuts[] = {100, 1000, len / 2, len - 1};
    for (size_t i = 0; i < 4; i++) {
        FILE *f = fopen(path, "wb");
        fwrite(data, 1, cuts[i], f);
        fclose(f);
        lq_gguf *g = NULL;
        cr_assert_eq(lq_gguf_open(path, &g), LQ_ERR_FORMAT, "cut %zu", cuts[i]);
        cr_assert(strstr(lq_last_error(), path));
    }
    unlink(path);
    free(data);
}
