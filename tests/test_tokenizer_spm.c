/* test_tokenizer_spm.c - SentencePiece-style BPE (Llama 2 vocab, stories260K tok512) against
 * external references: llama.cpp's test vectors for the Llama-2 SPM vocab, and llama2.c's own
 * encoding of the TinyStories sample (data/reference, see models/SOURCES.md). */
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "libquant/lq_tokenizer.h"
#include "lq_test_util.h"
#include "tok_test_vectors.h"

#define LLAMA_DIR "models/llama2-tokenizer/"

#define LLAMA_VECTORS LLAMA_DIR "ggml-vocab-llama-spm.gguf"

static lq_tokenizer *load_bin(const char *rel, int vocab) {
    char p[1024];
    lq_tokenizer *t = NULL;
    lq_status s = lq_tokenizer_load_llama2c(lq_test_shared(rel, p, sizeof p), vocab, &t);
    cr_assert_eq(s, LQ_OK, "%s", lq_last_error());
    return t;
}

static lq_tokenizer *load_gguf(void) { return tok_load_gguf(LLAMA_DIR "ggml-vocab-llama-spm.gguf"); }

Test(spm, gguf_metadata) {
    lq_tokenizer *t = load_gguf();
    cr_assert_eq(lq_tokenizer_kind(t), LQ_TOK_SPM);
    cr_assert_eq(lq_tokenizer_vocab_size(t), 32000);
    cr_assert_eq(lq_tokenizer_bos(t), 1);
    cr_assert_eq(lq_tokenizer_eos(t), 2);
    cr_assert(lq_tokenizer_add_bos_default(t));
    cr_assert_str_eq(lq_tokenizer_piece(t, 15043), "\xe2\x96\x81Hello");
    cr_assert_null(lq_tokenizer_piece(t, 32000));
    lq_tokenizer_free(t);
}

Test(spm, llamacpp_vectors_gguf) {
    lq_tokenizer *t = load_gguf();
    tok_vectors_check_shared(t, LLAMA_VECTORS, "gguf");
    lq_tokenizer_free(t);
}

Test(spm, llamacpp_vectors_tokenizer_bin) {
    lq_tokenizer *t = load_bin(LLAMA_DIR "tokenizer.bin", 32000);
    tok_vectors_check_shared(t, LLAMA_VECTORS, "tokenizer.bin");
    lq_tokenizer_free(t);
}

Test(spm, same_vocab_same_hash) {
    lq_tokenizer *a = load_bin(LLAMA_DIR "tokenizer.bin", 32000), *b = load_gguf();
    for (int i = 0; i < 32000; i++) cr_assert_str_eq(lq_tokenizer_piece(a, i), lq_tokenizer_piece(b, i), "id %d", i);
    cr_assert_eq(lq_tokenizer_hash(a), lq_tokenizer_hash(b));
    lq_tokenizer *c = load_bin("models/stories260K/tok512.bin", 512);
    cr_assert_neq(lq_tokenizer_hash(a), lq_tokenizer_hash(c));
    lq_tokenizer_free(a);
    lq_tokenizer_free(b);
    lq_tokenizer_free(c);
}

/* Save as HF tokenizer.json (Llama-2 layout), load it back: same pieces, same encodings. */
Test(spm, hf_json_round_trip_vectors) {
    lq_tokenizer *a = load_bin(LLAMA_DIR "tokenizer.bin", 32000);
    char path[] = "/tmp/lq_tok_spm_XXXXXX";
    tok_save_hf_json_tmp(a, path);
    lq_tokenizer *b = tok_load_hf_json_unlink(path);
    cr_assert_eq(lq_tokenizer_kind(b), LQ_TOK_SPM);
    cr_assert_eq(lq_tokenizer_vocab_size(b), 32000);
    cr_assert_eq(lq_tokenizer_bos(b), 1);
    cr_assert_eq(lq_tokenizer_eos(b), 2);
    cr_assert(lq_tokenizer_add_bos_default(b));
    cr_assert_eq(lq_tokenizer_hash(a), lq_tokenizer_hash(b));
    tok_vectors_check_shared(b, LLAMA_VECTORS, "tokenizer.json");
    lq_tokenizer_free(a);
    lq_tokenizer_free(b);
}

/* The newer HF Llama layout: no normalizer, a Metaspace pre-tokenizer (prepend_scheme "first",
 * split false) does the "▁" work. Rewrite our saved file that way. The `tokenizers` library's
 * Metaspace adds no "▁" to a text that already starts with one (a space), where SentencePiece
 * adds its dummy prefix regardless: they disagree on exactly the llama.cpp cases that start with
 * a space (15 of 46, checked with tokenizers 0.23.3), so only the others must match here; the
 * library's own ids for the Metaspace layouts are in tests/fixtures/tok_vectors (test_tokenizer_hf). */
#include <jansson.h>
Test(spm, hf_json_metaspace_layout) {
    lq_tokenizer *a = load_bin(LLAMA_DIR "tokenizer.bin", 32000);
    char path[] = "/tmp/lq_tok_meta_XXXXXX";
    tok_save_hf_json_tmp(a, path);
    json_error_t err;
    json_t *root = json_load_file(path, 0, &err);
    cr_assert_not_null(root);
    json_object_set_new(root, "normalizer", json_null());
    json_object_set_new(root, "pre_tokenizer",
                        json_pack("{s:s, s:s, s:s, s:b}", "type", "Metaspace", "replacement", "\xe2\x96\x81",
                                  "prepend_scheme", "first", "split", 0));
    cr_assert_eq(json_dump_file(root, path, 0), 0);
    json_decref(root);
    lq_tokenizer *b = tok_load_hf_json_unlink(path);
    tok_vectors_check_shared_filtered(b, LLAMA_VECTORS, "metaspace tokenizer.json", false);
    lq_tokenizer_free(a);
    lq_tokenizer_free(b);
}

/* llama2.c's encode(text, bos=1, eos=0) of each TinyStories unit with tok512. */
Test(spm, stories260K_tok512_reference) {
    lq_tokenizer *t = load_bin("models/stories260K/tok512.bin", 512);
    char p1[1024], p2[1024];
    char *text = lq_test_read_file(lq_test_shared("data/tinystories_sample.txt", p1, sizeof p1), NULL);
    char *ref = lq_test_read_file(
        lq_test_shared("data/reference/stories260K_tok512.tinystories_sample.tokens.txt", p2, sizeof p2), NULL);
    cr_assert(text && ref);
    char *unit = text, *line = ref;
    int units = 0;
    while (unit && *line) {
        char *end = strstr(unit, "<|endoftext|>");
        char *stop = end ? end : unit + strlen(unit);
        char *b = unit, *e = stop;
        while (b < e && (*b == ' ' || *b == '\r' || *b == '\n')) b++;
        while (e > b && (e[-1] == ' ' || e[-1] == '\r' || e[-1] == '\n')) e--;
        char *eol = strchr(line, '\n');
        if (eol) *eol = 0;
        char *s;
        long count = strtol(line, &s, 10);
        int32_t got[4096];
        int64_t n = 0;
        cr_assert_eq(lq_tokenizer_encode(t, b, (size_t)(e - b), true, false, got, 4096, &n), LQ_OK, "%s",
                     lq_last_error());
        cr_assert_eq(n, count, "unit %d: %lld ids, reference %ld", units, (long long)n, count);
        for (int64_t k = 0; k < n; k++) {
            long want = strtol(s, &s, 10);
            cr_assert_eq(got[k], want, "unit %d id %lld: got %d want %ld", units, (long long)k, got[k], want);
        }
        units++;
        line = eol ? eol + 1 : line + strlen(line);
        unit = end ? end + strlen("<|endoftext|>") : NULL;
    }
    cr_assert_eq(units, 5);
    free(text);
    free(ref);
    lq_tokenizer_free(t);
}

static void round_trip(const lq_tokenizer *t, const char *x) {
    int32_t ids[4096];
    int64_t n;
    cr_assert_eq(lq_tokenizer_encode(t, x, strlen(x), true, false, ids, 4096, &n), LQ_OK);
    char *back;
    cr_assert_eq(lq_tokenizer_decode(t, ids, n, &back), LQ_OK);
    cr_assert_str_eq(back, x);
    free(back);
}

Test(spm, decode_round_trip) {
    lq_tokenizer *t = load_bin(LLAMA_DIR "tokenizer.bin", 32000);
    const char *cases[] = {"Hello world", " Hello world", "  two leading", "trailing  ", "\n\tline\n",
                           "Ä\xc3\xa4pfel \xf0\x9f\xa6\x99 emoji", "\xe1\x9e\x80\xe1\x9e\xb6 khmer bytes", "a", " ", ""};
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) round_trip(t, cases[i]);
    /* pieces: "▁" -> space, <0x0A> -> newline, dummy prefix dropped after BOS only */
    char buf[16];
    cr_assert_eq(lq_tokenizer_decode_token(t, 1, 15043, buf, sizeof buf), 5);
    cr_assert_eq(memcmp(buf, "Hello", 5), 0);
    cr_assert_eq(lq_tokenizer_decode_token(t, 3186, 15043, buf, sizeof buf), 6);
    cr_assert_eq(memcmp(buf, " Hello", 6), 0);
    cr_assert_eq(lq_tokenizer_decode_token(t, 15043, 13, buf, sizeof buf), 1);
    cr_assert_eq(buf[0], '\n');
    cr_assert_eq(lq_tokenizer_decode_token(t, -1, 1, buf, sizeof buf), 0);
    lq_tokenizer_free(t);
}

Test(spm, encode_capacity_and_bos) {
    lq_tokenizer *t = load_bin(LLAMA_DIR "tokenizer.bin", 32000);
    int64_t n = -1;
    /* size query with cap 0 */
    cr_assert_eq(lq_tokenizer_encode(t, "Hello world", 11, true, false, NULL, 0, &n), LQ_ERR_INVALID_ARG);
    cr_assert_eq(n, 3);
    int32_t ids[3];
    cr_assert_eq(lq_tokenizer_encode(t, "Hello world", 11, true, false, ids, 3, &n), LQ_OK);
    cr_assert(ids[0] == 1 && ids[1] == 15043 && ids[2] == 3186);
    /* with parse_special "<s>" is BOS; the text after it gets the dummy prefix again */
    int32_t sp[8];
    cr_assert_eq(lq_tokenizer_encode(t, "<s>Hello", 8, false, true, sp, 8, &n), LQ_OK);
    cr_assert_eq(n, 2);
    cr_assert(sp[0] == 1 && sp[1] == 15043);
    lq_tokenizer_free(t);
}

/* WikiText-2 test split (1.3 MB) with the 32000 vocab must be fast enough for perplexity runs. */
Test(spm, wikitext_speed, .timeout = 120) {
    lq_tokenizer *t = load_bin(LLAMA_DIR "tokenizer.bin", 32000);
    /* we have no external token count for this file: a loose sanity range; the speed is the point */
    tok_wikitext_speed(t, true, 300000, 400000, 2.0, "wikitext-2 test");
    lq_tokenizer_free(t);
}

/* ---- bad input ---------------------------------------------------------------------------- */

static void write_file(const char *path, const void *data, size_t n) {
    FILE *f = fopen(path, "wb");
    cr_assert(f);
    cr_assert_eq(fwrite(data, 1, n, f), n);
    fclose(f);
}

Test(spm, truncated_tokenizer_bin) {
    char p[1024];
    size_t len;
    char *data = lq_test_read_file(lq_test_shared("models/stories260K/tok512.bin", p, sizeof p), &len);
    cr_assert(data);
    const char *tmp = "/tmp/lq_tok_trunc.bin";
    size_t cuts[] = {0, 2, 4, 7, 11, len / 2, len - 1};
    for (size_t i = 0; i < sizeof cuts / sizeof cuts[0]; i++) {
        write_file(tmp, data, cuts[i]);
        lq_tokenizer *t = (lq_tokenizer *)1;
        lq_status s = lq_tokenizer_load_llama2c(tmp, 512, &t);
        cr_assert_eq(s, LQ_ERR_FORMAT, "cut at %zu: %s", cuts[i], lq_status_name(s));
        cr_assert_null(t);
        cr_assert(strstr(lq_last_error(), tmp), "message must name the file: %s", lq_last_error());
    }
    /* a token length past max_token_length (corrupt length field of token 0) */
    memcpy(data + 8, "\xff\xff\xff\x7f", 4);
    write_file(tmp, data, len);
    lq_tokenizer *t = NULL;
    cr_assert_eq(lq_tokenizer_load_llama2c(tmp, 512, &t), LQ_ERR_FORMAT);
    cr_assert(strstr(lq_last_error(), "token 0"), "%s", lq_last_error());
    cr_assert_eq(lq_tokenizer_load_llama2c("/nonexistent/tok.bin", 512, &t), LQ_ERR_IO);
    cr_assert_eq(lq_tokenizer_load_llama2c(tmp, 0, &t), LQ_ERR_INVALID_ARG);
    unlink(tmp);
    free(data);
}

Test(spm, truncated_gguf_vocab) {
    char p[1024];
    size_t len;
    char *data = lq_test_read_file(lq_test_shared(LLAMA_DIR "ggml-vocab-llama-spm.gguf", p, sizeof p), &len);
    cr_assert(data);
    const char *tmp = "/tmp/lq_tok_trunc.gguf";
    write_file(tmp, data, len / 3);
    lq_tokenizer *t = (lq_tokenizer *)1;
    cr_assert_eq(lq_tokenizer_load_gguf(tmp, &t), LQ_ERR_FORMAT);
    cr_assert_null(t);
    cr_assert(strstr(lq_last_error(), tmp), "%s", lq_last_error());
    unlink(tmp);
    free(data);
}

Test(spm, parse_special_unk_and_eos) {
    lq_tokenizer *t = load_gguf();
    const char *x = "a</s><unk>";
    int32_t ids[16];
    int64_t n;
    cr_assert_eq(lq_tokenizer_encode(t, x, strlen(x), false, true, ids, 16, &n), LQ_OK);
    cr_assert_eq(n, 3);
    cr_assert(ids[0] == 263 && ids[1] == 2 && ids[2] == 0, "%d %d %d", ids[0], ids[1], ids[2]); /* 263 = "▁a" */
    cr_assert_str_eq(lq_tokenizer_piece(t, 263), "\xe2\x96\x81" "a");
    lq_tokenizer_free(t);
}
