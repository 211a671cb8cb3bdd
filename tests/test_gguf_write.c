/* test_gguf_write.c - the GGUF writer: files llama.cpp wrote (shared SmolLM2 Q4_1 model, llama
 * SPM vocab) rewritten pair by pair and tensor by tensor come out byte-identical; a hand-built file
 * with every value type reads back through lq_gguf; alignment, padding, refusals. */
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "libquant/lq_gguf.h"
#include "libquant/lq_gguf_write.h"
#include "lq_test_util.h"

static void tmp_path(char *buf, size_t cap, const char *tag) {
    snprintf(buf, cap, "/tmp/lq_test_gguf_write_%d_%s.gguf", (int)getpid(), tag);
}

/* Rewrite `src` with our writer and compare the files byte for byte. */
static void rewrite_same(const char *rel) {
    char in[1024], out[256];
    lq_test_shared(rel, in, sizeof in);
    tmp_path(out, sizeof out, "copy");
    lq_gguf *g;
    cr_assert_eq(lq_gguf_open(in, &g), LQ_OK, "%s", lq_last_error());
    lq_gguf_writer *w;
    cr_assert_eq(lq_gguf_writer_create(out, &w), LQ_OK, "%s", lq_last_error());
    for (int64_t i = 0; i < lq_gguf_kv_count(g); i++)
        cr_assert_eq(lq_gguf_writer_kv_copy(w, g, i), LQ_OK, "%s", lq_last_error());
    for (int64_t i = 0; i < lq_gguf_tensor_count(g); i++) {
        const lq_gguf_tensor_info *t = lq_gguf_tensor(g, i);
        cr_assert_eq(lq_gguf_writer_tensor(w, t->name, (int)t->n_dims, t->ne, t->type), LQ_OK, "%s", lq_last_error());
        cr_assert_eq(lq_gguf_writer_tensor_nbytes(w, i), t->nbytes);
    }
    for (int64_t i = 0; i < lq_gguf_tensor_count(g); i++) {
        const lq_gguf_tensor_info *t = lq_gguf_tensor(g, i);
        cr_assert_eq(lq_gguf_writer_write(w, (const char *)lq_gguf_file_data(g) + t->offset, t->nbytes), LQ_OK);
    }
    cr_assert_eq(lq_gguf_writer_commit(w), LQ_OK, "%s", lq_last_error());
    size_t n;
    char *bytes = lq_test_read_file(out, &n);
    cr_assert(bytes);
    cr_assert_eq(n, lq_gguf_file_size(g), "%s: %zu bytes, original %zu", rel, n, lq_gguf_file_size(g));
    cr_assert(memcmp(bytes, lq_gguf_file_data(g), n) == 0, "%s: bytes differ", rel);
    free(bytes);
    lq_gguf_close(g);
    unlink(out);
}

/* llama-quantize's output (tensors, alignment padding after every tensor, the last one too). */
Test(gguf_write, rewrites_llama_cpp_model_byte_identical) {
    rewrite_same("models/SmolLM2-135M-Instruct-Q4_1/SmolLM2-135M-Instruct.Q4_1.gguf");
}

/* A vocab-only file: string arrays of 32000 entries, no tensors, no data section. */
Test(gguf_write, rewrites_llama_cpp_vocab_byte_identical) {
    rewrite_same("models/llama2-tokenizer/ggml-vocab-llama-spm.gguf");
}

Test(gguf_write, every_value_type_round_trips) {
    char out[256];
    tmp_path(out, sizeof out, "types");
    lq_gguf_writer *w;
    cr_assert_eq(lq_gguf_writer_create(out, &w), LQ_OK);
    uint8_t u8 = 200;
    int8_t i8 = -100;
    uint16_t u16 = 60000;
    int16_t i16 = -30000;
    uint64_t u64 = 1ull << 40;
    int64_t i64 = -(1ll << 40);
    double f64 = 0.1;
    cr_assert_eq(lq_gguf_writer_kv(w, "t.u8", LQ_GGUF_TYPE_UINT8, &u8), LQ_OK);
    cr_assert_eq(lq_gguf_writer_kv(w, "t.i8", LQ_GGUF_TYPE_INT8, &i8), LQ_OK);
    cr_assert_eq(lq_gguf_writer_kv(w, "t.u16", LQ_GGUF_TYPE_UINT16, &u16), LQ_OK);
    cr_assert_eq(lq_gguf_writer_kv(w, "t.i16", LQ_GGUF_TYPE_INT16, &i16), LQ_OK);
    cr_assert_eq(lq_gguf_writer_kv_u32(w, "t.u32", 4000000000u), LQ_OK);
    cr_assert_eq(lq_gguf_writer_kv_i32(w, "t.i32", -7), LQ_OK);
    cr_assert_eq(lq_gguf_writer_kv_f32(w, "t.f32", 1e-5f), LQ_OK);
    cr_assert_eq(lq_gguf_writer_kv_bool(w, "t.bool", true), LQ_OK);
    cr_assert_eq(lq_gguf_writer_kv_str(w, "t.str", "first"), LQ_OK);
    cr_assert_eq(lq_gguf_writer_kv_str(w, "t.str", "héllo"), LQ_OK); /* replaced in place */
    cr_assert_eq(lq_gguf_writer_kv(w, "t.u64", LQ_GGUF_TYPE_UINT64, &u64), LQ_OK);
    cr_assert_eq(lq_gguf_writer_kv(w, "t.i64", LQ_GGUF_TYPE_INT64, &i64), LQ_OK);
    cr_assert_eq(lq_gguf_writer_kv(w, "t.f64", LQ_GGUF_TYPE_FLOAT64, &f64), LQ_OK);
    const int32_t ia[3] = {1, -2, 3};
    const char *sa[3] = {"a", "", "\xe2\x96\x81x"};
    cr_assert_eq(lq_gguf_writer_kv_arr(w, "t.arr_i32", LQ_GGUF_TYPE_INT32, ia, 3), LQ_OK);
    cr_assert_eq(lq_gguf_writer_kv_arr_str(w, "t.arr_str", sa, NULL, 3), LQ_OK);
    cr_assert_eq(lq_gguf_writer_kv_u32(w, "general.alignment", 64), LQ_OK);
    cr_assert_eq(lq_gguf_writer_kv_u32(w, "general.alignment", 48), LQ_ERR_INVALID_ARG);
    cr_assert_eq(lq_gguf_writer_kv_strn(w, "t.gone", "x", 1), LQ_OK);
    lq_gguf_writer_kv_remove(w, "t.gone");
    /* Q8_0 (block 32, 34 bytes) 64 x 2: 136 bytes; F32 3 floats; F16 2x2 */
    const int64_t ne_q[2] = {64, 2}, ne_f[1] = {3}, ne_h[2] = {2, 2};
    cr_assert_eq(lq_gguf_writer_tensor(w, "q", 2, ne_q, 8), LQ_OK);
    cr_assert_eq(lq_gguf_writer_tensor(w, "f", 1, ne_f, 0), LQ_OK);
    cr_assert_eq(lq_gguf_writer_tensor(w, "h", 2, ne_h, 1), LQ_OK);
    cr_assert_eq(lq_gguf_writer_tensor(w, "h", 2, ne_h, 1), LQ_ERR_INVALID_ARG); /* twice */
    const int64_t bad[1] = {33};
    cr_assert_eq(lq_gguf_writer_tensor(w, "bad", 1, bad, 8), LQ_ERR_INVALID_ARG); /* not 32k */
    uint8_t q[136];
    for (int i = 0; i < 136; i++) q[i] = (uint8_t)(i * 7);
    const float f[3] = {1.5f, -2.0f, 3.25f};
    const uint16_t h[4] = {0x3c00, 0xc000, 0x0001, 0x7bff};
    cr_assert_eq(lq_gguf_writer_write(w, q, 100), LQ_OK); /* chunking does not matter */
    cr_assert_eq(lq_gguf_writer_write(w, q + 100, 36), LQ_OK);
    cr_assert_eq(lq_gguf_writer_kv_u32(w, "t.late", 1), LQ_ERR_INVALID_ARG); /* header written */
    cr_assert_eq(lq_gguf_writer_write(w, f, sizeof f), LQ_OK);
    cr_assert_eq(lq_gguf_writer_write(w, h, sizeof h), LQ_OK);
    cr_assert_eq(lq_gguf_writer_commit(w), LQ_OK, "%s", lq_last_error());

    lq_gguf *g;
    cr_assert_eq(lq_gguf_open(out, &g), LQ_OK, "%s", lq_last_error());
    cr_assert_eq(lq_gguf_version(g), 3);
    cr_assert_eq(lq_gguf_kv_count(g), 15);
    cr_assert_str_eq(lq_gguf_kv_key(g, 9), "t.u64"); /* order of first set kept */
    cr_assert_eq(lq_gguf_find(g, "t.gone"), -1);
    int64_t v;
    double d;
    bool b;
    lq_gguf_str s;
    cr_assert(lq_gguf_get_i64(g, "t.u8", &v) == LQ_OK && v == 200);
    cr_assert(lq_gguf_get_i64(g, "t.i8", &v) == LQ_OK && v == -100);
    cr_assert(lq_gguf_get_i64(g, "t.u16", &v) == LQ_OK && v == 60000);
    cr_assert(lq_gguf_get_i64(g, "t.i16", &v) == LQ_OK && v == -30000);
    cr_assert(lq_gguf_get_i64(g, "t.u32", &v) == LQ_OK && v == 4000000000ll);
    cr_assert(lq_gguf_get_i64(g, "t.i32", &v) == LQ_OK && v == -7);
    cr_assert(lq_gguf_get_f64(g, "t.f32", &d) == LQ_OK && d == (double)1e-5f);
    cr_assert(lq_gguf_get_bool(g, "t.bool", &b) == LQ_OK && b);
    cr_assert(lq_gguf_get_str(g, "t.str", &s) == LQ_OK && s.len == 6 && memcmp(s.data, "héllo", 6) == 0);
    cr_assert(lq_gguf_get_i64(g, "t.u64", &v) == LQ_OK && v == (1ll << 40));
    cr_assert(lq_gguf_get_i64(g, "t.i64", &v) == LQ_OK && v == -(1ll << 40));
    cr_assert(lq_gguf_get_f64(g, "t.f64", &d) == LQ_OK && d == 0.1);
    lq_gguf_type et;
    int64_t n;
    cr_assert(lq_gguf_get_arr(g, "t.arr_i32", &et, &n) == LQ_OK && et == LQ_GGUF_TYPE_INT32 && n == 3);
    cr_assert(lq_gguf_arr_i64(g, "t.arr_i32", 1, &v) == LQ_OK && v == -2);
    cr_assert(lq_gguf_get_arr(g, "t.arr_str", &et, &n) == LQ_OK && et == LQ_GGUF_TYPE_STRING && n == 3);
    cr_assert(lq_gguf_arr_str(g, "t.arr_str", 1, &s) == LQ_OK && s.len == 0);
    cr_assert(lq_gguf_arr_str(g, "t.arr_str", 2, &s) == LQ_OK && s.len == 4 && memcmp(s.data, sa[2], 4) == 0);
    cr_assert_eq(lq_gguf_alignment(g), 64);
    cr_assert_eq(lq_gguf_data_offset(g) % 64, 0);
    cr_assert_eq(lq_gguf_tensor_count(g), 3);
    const lq_gguf_tensor_info *tq = lq_gguf_find_tensor(g, "q"), *tf = lq_gguf_find_tensor(g, "f"),
                              *th = lq_gguf_find_tensor(g, "h");
    cr_assert(tq && tf && th);
    cr_assert(tq->type == 8 && tq->ne[0] == 64 && tq->ne[1] == 2 && tq->nbytes == 136);
    cr_assert_eq(tq->offset, lq_gguf_data_offset(g));
    cr_assert_eq(tf->offset, lq_gguf_data_offset(g) + 192); /* 136 rounded up to 64 */
    cr_assert_eq(th->offset, tf->offset + 64);
    const char *base = lq_gguf_file_data(g);
    cr_assert(memcmp(base + tq->offset, q, 136) == 0);
    cr_assert(memcmp(base + tf->offset, f, sizeof f) == 0);
    cr_assert(memcmp(base + th->offset, h, sizeof h) == 0);
    cr_assert_eq(lq_gguf_file_size(g), th->offset + 64); /* the last tensor is padded too */
    lq_gguf_close(g);
    unlink(out);
}

/* A commit short of the declared bytes fails and leaves neither the file nor its temporary. */
Test(gguf_write, short_payload_leaves_nothing) {
    char out[256];
    tmp_path(out, sizeof out, "short");
    lq_gguf_writer *w;
    cr_assert_eq(lq_gguf_writer_create(out, &w), LQ_OK);
    const int64_t ne[1] = {4};
    cr_assert_eq(lq_gguf_writer_tensor(w, "x", 1, ne, 0), LQ_OK);
    const float f[3] = {0};
    cr_assert_eq(lq_gguf_writer_write(w, f, sizeof f), LQ_OK);
    cr_assert_eq(lq_gguf_writer_commit(w), LQ_ERR_INVALID_ARG);
    cr_assert(strstr(lq_last_error(), "'x': 12 of 16 bytes"), "%s", lq_last_error());
    cr_assert_not(lq_test_exists(out));
    cr_assert_not(lq_test_leftovers(out));
    cr_assert_eq(lq_gguf_writer_create(out, &w), LQ_OK);
    cr_assert_eq(lq_gguf_writer_tensor(w, "x", 1, ne, 0), LQ_OK);
    const float g5[5] = {0};
    cr_assert_eq(lq_gguf_writer_write(w, g5, sizeof g5), LQ_ERR_INVALID_ARG); /* too many */
    lq_gguf_writer_abort(w);
    cr_assert_not(lq_test_exists(out));
    cr_assert_not(lq_test_leftovers(out));
}
