/* test_tokenizer_bpe.c - byte-level BPE (GPT-2 vocab) against llama.cpp's test vectors, loaded
 * from GGUF and from the HF tokenizer.json; round trips; bad tokenizer.json files. */
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "libquant/lq_tokenizer.h"
#include "lq_test_util.h"
#include "tok_test_vectors.h"

#define GPT2_DIR "models/gpt2-tokenizer/"

#define GPT2_VECTORS GPT2_DIR "ggml-vocab-gpt-2.gguf"

static lq_tokenizer *load_json(void) {
    char p[1024];
    lq_tokenizer *t = NULL;
    lq_status s = lq_tokenizer_load_hf_json(lq_test_shared(GPT2_DIR "tokenizer.json", p, sizeof p), &t);
    cr_assert_eq(s, LQ_OK, "%s", lq_last_error());
    return t;
}

static lq_tokenizer *load_gguf(void) { return tok_load_gguf(GPT2_DIR "ggml-vocab-gpt-2.gguf"); }

Test(bpe, metadata) {
    lq_tokenizer *a = load_json(), *b = load_gguf();
    for (int k = 0; k < 2; k++) {
        lq_tokenizer *t = k ? b : a;
        cr_assert_eq(lq_tokenizer_kind(t), LQ_TOK_BPE_BYTES);
        cr_assert_eq(lq_tokenizer_vocab_size(t), 50257);
        cr_assert_eq(lq_tokenizer_eos(t), 50256);
        cr_assert(!lq_tokenizer_add_bos_default(t));
        cr_assert_str_eq(lq_tokenizer_piece(t, 50256), "<|endoftext|>");
        cr_assert_str_eq(lq_tokenizer_piece(t, 220), "\xc4\xa0"); /* "Ġ" = byte 0x20 */
    }
    cr_assert_eq(lq_tokenizer_hash(a), lq_tokenizer_hash(b));
    lq_tokenizer_free(a);
    lq_tokenizer_free(b);
}

Test(bpe, llamacpp_vectors_gguf) {
    lq_tokenizer *t = load_gguf();
    tok_vectors_check_shared(t, GPT2_VECTORS, "gguf");
    lq_tokenizer_free(t);
}

Test(bpe, llamacpp_vectors_tokenizer_json) {
    lq_tokenizer *t = load_json();
    tok_vectors_check_shared(t, GPT2_VECTORS, "tokenizer.json");
    lq_tokenizer_free(t);
}

Test(bpe, hf_json_round_trip_vectors) {
    lq_tokenizer *a = load_gguf();
    char path[] = "/tmp/lq_tok_bpe_XXXXXX";
    tok_save_hf_json_tmp(a, path);
    lq_tokenizer *b = tok_load_hf_json_unlink(path);
    cr_assert_eq(lq_tokenizer_hash(a), lq_tokenizer_hash(b));
    tok_vectors_check_shared(b, GPT2_VECTORS, "saved tokenizer.json");
    lq_tokenizer_free(a);
    lq_tokenizer_free(b);
}

Test(bpe, special_tokens) {
    lq_tokenizer *t = load_json();
    const char *x = "a<|endoftext|>b";
    int32_t ids[32];
    int64_t n;
    cr_assert_eq(lq_tokenizer_encode(t, x, strlen(x), false, true, ids, 32, &n), LQ_OK);
    cr_assert_eq(n, 3);
    cr_assert(ids[0] == 64 && ids[1] == 50256 && ids[2] == 65, "%d %d %d", ids[0], ids[1], ids[2]);
    /* without parse_special the marker is ordinary text: "<", "|", "endoftext", "|", ">" */
    cr_assert_eq(lq_tokenizer_encode(t, x, strlen(x), false, false, ids, 32, &n), LQ_OK);
    cr_assert_gt(n, 3);
    for (int64_t i = 0; i < n; i++) cr_assert_neq(ids[i], 50256);
    lq_tokenizer_free(t);
}

Test(bpe, decode_round_trip) {
    lq_tokenizer *t = load_json();
    const char *cases[] = {"Hello world", " Hello  world\n\n", "\xc3\x84pfel \xf0\x9f\xa6\x99 \xe1\x9e\x80", "3.33 '' y'all",
                           "\t \n", "", "\xff\xfe invalid utf8 \xc3"};
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        int32_t ids[256];
        int64_t n;
        size_t len = strlen(cases[i]);
        cr_assert_eq(lq_tokenizer_encode(t, cases[i], len, false, false, ids, 256, &n), LQ_OK, "%s", lq_last_error());
        char *back;
        cr_assert_eq(lq_tokenizer_decode(t, ids, n, &back), LQ_OK);
        cr_assert_str_eq(back, cases[i], "case %zu", i);
        free(back);
    }
    char buf[8];
    cr_assert_eq(lq_tokenizer_decode_token(t, -1, 220, buf, sizeof buf), 1);
    cr_assert_eq(buf[0], ' ');
    lq_tokenizer_free(t);
}

Test(bpe, wikitext_speed, .timeout = 120) {
    lq_tokenizer *t = load_gguf();
    tok_wikitext_speed(t, false, 200000, 400000, 3.0, "wikitext-2 test (gpt2)");
    lq_tokenizer_free(t);
}

/* ---- bad tokenizer.json ------------------------------------------------------------------- */

static lq_status load_text(const char *json, const char *tag) {
    char path[256];
    snprintf(path, sizeof path, "/tmp/lq_tok_bad_%s_%d.json", tag, (int)getpid());
    FILE *f = fopen(path, "wb");
    cr_assert(f);
    fputs(json, f);
    fclose(f);
    lq_tokenizer *t = (lq_tokenizer *)1;
    lq_status s = lq_tokenizer_load_hf_json(path, &t);
    cr_assert_null(t);
    if (s != LQ_OK) cr_assert(strstr(lq_last_error(), path), "message must name the file: %s", lq_last_error());
    unlink(path);
    return s;
}

Test(bpe, bad_json) {
    cr_assert_eq(load_text("this is not json", "notjson"), LQ_ERR_FORMAT);
    cr_assert_eq(load_text("{\"model\": {\"type\": \"BPE\", \"vocab\": {\"a\": 0", "trunc"), LQ_ERR_FORMAT);
    cr_assert_eq(load_text("[1, 2]", "array"), LQ_ERR_FORMAT);
    cr_assert_eq(load_text("{\"model\": {\"type\": \"BPE\", \"merges\": []}}", "novocab"), LQ_ERR_FORMAT);
    cr_assert(strstr(lq_last_error(), "model.vocab"), "%s", lq_last_error());
    cr_assert_eq(load_text("{\"model\": {\"type\": \"BPE\", \"byte_fallback\": true, \"vocab\": {\"a\": -3}}}", "negid"),
                 LQ_ERR_FORMAT);
    cr_assert_eq(load_text("{\"model\": {\"type\": \"Unigram\", \"vocab\": []}}", "unigram"), LQ_ERR_UNSUPPORTED);
    cr_assert_eq(load_text("{\"pre_tokenizer\": {\"type\": \"ByteLevel\"}, \"model\": {\"type\": \"BPE\", "
                           "\"vocab\": {\"a\": 0, \"b\": 1}, \"merges\": [\"a c\"]}}",
                           "badmerge"),
                 LQ_ERR_FORMAT);
    cr_assert_eq(load_text("{\"pre_tokenizer\": {\"type\": \"Split\", \"pattern\": {\"Regex\": \"(\"}, \"behavior\": "
                           "\"Isolated\"}, \"decoder\": {\"type\": \"ByteLevel\"}, \"model\": {\"type\": \"BPE\", "
                           "\"vocab\": {\"a\": 0}, \"merges\": []}}",
                           "badregex"),
                 LQ_ERR_FORMAT);
    lq_tokenizer *t = NULL;
    cr_assert_eq(lq_tokenizer_load_hf_json("/nonexistent/tokenizer.json", &t), LQ_ERR_IO);
    cr_assert_eq(lq_tokenizer_load_dir("/nonexistent", &t), LQ_ERR_NOT_FOUND);
}

Test(bpe, load_dir) {
    char p[1024];
    lq_tokenizer *t = NULL;
    cr_assert_eq(lq_tokenizer_load_dir(lq_test_shared(GPT2_DIR, p, sizeof p), &t), LQ_OK, "%s", lq_last_error());
    cr_assert_eq(lq_tokenizer_vocab_size(t), 50257);
    lq_tokenizer_free(t);
}

/* Both loaders against the canonical HF gpt2 vocab.json (a separate external file). */
#include <jansson.h>
Test(bpe, pieces_match_vocab_json) {
    char p[1024];
    json_error_t err;
    json_t *v = json_load_file(lq_test_shared(GPT2_DIR "vocab.json", p, sizeof p), 0, &err);
    cr_assert_not_null(v, "%s", err.text);
    cr_assert_eq(json_object_size(v), 50257);
    lq_tokenizer *a = load_json(), *b = load_gguf();
    const char *key;
    json_t *id;
    json_object_foreach(v, key, id) {
        int i = (int)json_integer_value(id);
        cr_assert_str_eq(lq_tokenizer_piece(a, i), key, "json id %d", i);
        cr_assert_str_eq(lq_tokenizer_piece(b, i), key, "gguf id %d", i);
    }
    json_decref(v);
    lq_tokenizer_free(a);
    lq_tokenizer_free(b);
}
