/* tok_test_vectors.h - llama.cpp tokenizer test vectors (tests/test-tokenizer-0 layout):
 * `.inp` holds the cases, each followed by a line "__ggml_vocab_test__" (the newline before the
 * separator is not part of the case); `.out` holds one line of space-separated ids per case,
 * without BOS. */
#ifndef TOK_TEST_VECTORS_H
#define TOK_TEST_VECTORS_H

#include <criterion/criterion.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "libquant/lq_tokenizer.h"
#include "lq_test_util.h"

typedef struct tok_case {
    const char *text;
    size_t len;
    int32_t ids[1024];
    int n;
} tok_case;

/* Parse both files; returns the number of cases (cases[] and *inp_buf are malloc'd). */
static inline int tok_vectors_load(const char *inp_path, const char *out_path, tok_case **cases, char **inp_buf) {
    static const char sep[] = "\n__ggml_vocab_test__\n";
    size_t il = 0, ol = 0;
    char *inp = lq_test_read_file(inp_path, &il), *out = lq_test_read_file(out_path, &ol);
    cr_assert(inp && out, "cannot read %s / %s", inp_path, out_path);
    int cap = 128, n = 0;
    tok_case *c = calloc((size_t)cap, sizeof *c);
    char *p = inp, *q = out;
    /* the first case starts at offset 0; each ends where "\n__ggml_vocab_test__\n" begins, except an
     * empty first case which is directly followed by the separator line */
    while (p < inp + il && n < cap) {
        char *e = strstr(p, sep);
        if (!e) break;
        c[n].text = p;
        c[n].len = (size_t)(e - p);
        char *eol = strchr(q, '\n');
        cr_assert(eol, "%s: missing line for case %d", out_path, n);
        *eol = 0;
        char *s = q;
        while (*s) {
            char *end;
            long v = strtol(s, &end, 10);
            if (end == s) break;
            cr_assert(c[n].n < 1024);
            c[n].ids[c[n].n++] = (int32_t)v;
            s = end;
        }
        q = eol + 1;
        p = e + strlen(sep);
        n++;
    }
    free(out);
    *cases = c;
    *inp_buf = inp;
    return n;
}

/* Encode every case (no BOS, parse_special as test-tokenizer-0 does) and compare; without
 * `leading_space`, cases whose text starts with a space are skipped. */
static inline void tok_vectors_check_ex(const lq_tokenizer *t, const char *inp_path, const char *out_path,
                                        const char *what, bool leading_space) {
    tok_case *c;
    char *inp;
    int n = tok_vectors_load(inp_path, out_path, &c, &inp);
    cr_assert_geq(n, 40, "%s: only %d cases parsed", inp_path, n);
    int32_t got[4096];
    for (int i = 0; i < n; i++) {
        if (!leading_space && c[i].len > 0 && c[i].text[0] == ' ') continue;
        int64_t m = 0;
        lq_status s = lq_tokenizer_encode(t, c[i].text, c[i].len, false, true, got, 4096, &m);
        cr_assert_eq(s, LQ_OK, "%s case %d: %s", what, i, lq_last_error());
        int first_bad = -1;
        for (int k = 0; k < m && k < c[i].n; k++)
            if (got[k] != c[i].ids[k]) { first_bad = k; break; }
        cr_expect(m == c[i].n && first_bad < 0,
                  "%s case %d ('%.*s'): %lld ids vs %d expected; first mismatch at %d (got %d, want %d)", what, i,
                  (int)c[i].len, c[i].text, (long long)m, c[i].n, first_bad, first_bad >= 0 ? got[first_bad] : -1,
                  first_bad >= 0 ? c[i].ids[first_bad] : -1);
    }
    free(c);
    free(inp);
}

static inline void tok_vectors_check(const lq_tokenizer *t, const char *inp_path, const char *out_path,
                                     const char *what) {
    tok_vectors_check_ex(t, inp_path, out_path, what, true);
}

/* tok_vectors_check(_ex) on the shared pair "<rel>.inp" / "<rel>.out". */
static inline void tok_vectors_check_shared_filtered(const lq_tokenizer *t, const char *rel, const char *what,
                                                     bool leading_space) {
    char inp_rel[512], out_rel[512], inp[1024], out[1024];
    snprintf(inp_rel, sizeof inp_rel, "%s.inp", rel);
    snprintf(out_rel, sizeof out_rel, "%s.out", rel);
    tok_vectors_check_ex(t, lq_test_shared(inp_rel, inp, sizeof inp), lq_test_shared(out_rel, out, sizeof out), what,
                         leading_space);
}

static inline void tok_vectors_check_shared(const lq_tokenizer *t, const char *rel, const char *what) {
    tok_vectors_check_shared_filtered(t, rel, what, true);
}

/* Load a shared GGUF vocab; any failure ends the test with the library's message. */
static inline lq_tokenizer *tok_load_gguf(const char *rel) {
    char p[1024];
    lq_tokenizer *t = NULL;
    lq_status s = lq_tokenizer_load_gguf(lq_test_shared(rel, p, sizeof p), &t);
    cr_assert_eq(s, LQ_OK, "%s", lq_last_error());
    return t;
}

/* Save t as HF tokenizer.json under a fresh mkstemp name built from path (a "...XXXXXX" template,
 * rewritten in place); the caller loads it back (tok_load_hf_json_unlink) or edits it first. */
static inline void tok_save_hf_json_tmp(const lq_tokenizer *t, char *path) {
    int fd = mkstemp(path);
    cr_assert(fd >= 0);
    close(fd);
    cr_assert_eq(lq_tokenizer_save_hf_json(t, path), LQ_OK, "%s", lq_last_error());
}

static inline lq_tokenizer *tok_load_hf_json_unlink(const char *path) {
    lq_tokenizer *b = NULL;
    cr_assert_eq(lq_tokenizer_load_hf_json(path, &b), LQ_OK, "%s", lq_last_error());
    unlink(path);
    return b;
}

/* Encode the WikiText-2 test split (size query only): the token count must lie in (lo, hi) and,
 * in optimized builds, take under max_sec (perplexity runs tokenize it whole). */
static inline void tok_wikitext_speed(const lq_tokenizer *t, bool add_bos, int64_t lo, int64_t hi, double max_sec,
                                      const char *log_label) {
    char p[1024];
    size_t len;
    char *text = lq_test_read_file(lq_test_shared("data/wikitext-2-raw-v1.test.hfjoin.txt", p, sizeof p), &len);
    cr_assert(text);
    struct timespec a, b;
    clock_gettime(CLOCK_MONOTONIC, &a);
    int64_t n = 0;
    cr_assert_eq(lq_tokenizer_encode(t, text, len, add_bos, false, NULL, 0, &n), LQ_ERR_INVALID_ARG);
    clock_gettime(CLOCK_MONOTONIC, &b);
    double sec = (double)(b.tv_sec - a.tv_sec) + 1e-9 * (double)(b.tv_nsec - a.tv_nsec);
    cr_assert(n > lo && n < hi, "%lld tokens", (long long)n);
#ifdef NDEBUG
    cr_assert_lt(sec, max_sec, "encoding WikiText-2 took %.2f s", sec);
#else
    (void)max_sec;
#endif
    cr_log_info("%s: %lld tokens in %.3f s", log_label, (long long)n, sec);
    free(text);
}

#endif
