/* fuzz_gguf.c - libFuzzer target: arbitrary bytes as a GGUF file. Open must fail cleanly or
 * yield a file whose every key, array element and tensor can be read; the tokenizer loader
 * runs on it too. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "libquant/lq_gguf.h"
#include "libquant/lq_tokenizer.h"

static volatile uint64_t g_sink;

static void touch(const lq_gguf *g) {
    for (int64_t i = 0; i < lq_gguf_kv_count(g); i++) {
        const char *key = lq_gguf_kv_key(g, i);
        lq_gguf_type et;
        int64_t n;
        lq_gguf_type t = lq_gguf_kv_type(g, i, &et, &n);
        int64_t v;
        double d;
        bool b;
        lq_gguf_str s;
        if (t == LQ_GGUF_TYPE_ARRAY) {
            for (int64_t k = 0; k < n && k < 64; k++) {
                if (lq_gguf_arr_str(g, key, k, &s) == LQ_OK && s.len) g_sink += (unsigned char)s.data[s.len - 1];
                if (lq_gguf_arr_i64(g, key, k, &v) == LQ_OK) g_sink += (uint64_t)v;
                if (lq_gguf_arr_f64(g, key, k, &d) == LQ_OK) g_sink += (uint64_t)(d == d);
            }
            if (n > 0 && lq_gguf_arr_str(g, key, n - 1, &s) == LQ_OK && s.len) g_sink += (unsigned char)s.data[0];
        } else {
            if (lq_gguf_get_i64(g, key, &v) == LQ_OK) g_sink += (uint64_t)v;
            if (lq_gguf_get_f64(g, key, &d) == LQ_OK) g_sink += (uint64_t)(d == d);
            if (lq_gguf_get_bool(g, key, &b) == LQ_OK) g_sink += b;
            if (lq_gguf_get_str(g, key, &s) == LQ_OK && s.len) g_sink += (unsigned char)s.data[s.len - 1];
        }
    }
    const unsigned char *base = lq_gguf_file_data(g);
    for (int64_t i = 0; i < lq_gguf_tensor_count(g); i++) {
        const lq_gguf_tensor_info *t = lq_gguf_tensor(g, i);
        if (t->nbytes) g_sink += base[t->offset] + base[t->offset + t->nbytes - 1];
        g_sink += lq_gguf_find_tensor(g, t->name) != NULL;
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    char path[64];
    snprintf(path, sizeof path, "/tmp/lq_fuzz_gguf_%d.gguf", (int)getpid());
    FILE *f = fopen(path, "wb");
    if (!f) return 0;
    fwrite(data, 1, size, f);
    fclose(f);
    lq_gguf *g = NULL;
    if (lq_gguf_open(path, &g) == LQ_OK) {
        touch(g);
        lq_gguf_close(g);
    }
    lq_tokenizer *t = NULL;
    if (lq_tokenizer_load_gguf(path, &t) == LQ_OK) {
        static const char text[] = "Hello world! 3.14 \xc3\xa4\xf0\x9f\xa6\x99\n\t  x";
        int32_t ids[256];
        int64_t n = 0;
        if (lq_tokenizer_encode(t, text, sizeof text - 1, true, true, ids, 256, &n) == LQ_OK) {
            char *s = NULL;
            if (lq_tokenizer_decode(t, ids, n, &s) == LQ_OK) free(s);
        }
        lq_tokenizer_free(t);
    }
    unlink(path);
    return 0;
}
