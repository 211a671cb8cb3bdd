/* test_tokenizer_hf.c - tokenizer.json files against the Hugging Face `tokenizers` library.
 *
 * tests/fixtures/tok_vectors/ holds ids the library produced (scripts/tok_vectors/make_vectors.py,
 * tokenizers 0.23.3) for the shared tokenizers (TinyStories-656K, GPT-2), for variants of them
 * with each normalizer / pre-tokenizer / BPE option swapped in, and for small vocabularies
 * trained with continuing_subword_prefix / end_of_word_suffix; over hand-written corner cases,
 * the TinyStories sample and WikiText-2 test lines. Every id must match.
 * Also: what we refuse (by name), and a pre-tokenizer regex that backtracks past PCRE2's limit. */
#include <criterion/criterion.h>
#include <dirent.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "libquant/lq_tokenizer.h"
#include "lq_test_util.h"

#define VEC_DIR LQ_FIXTURES_DIR "/tok_vectors"

static json_t *load_json(const char *path) {
    json_error_t err;
    json_t *j = json_load_file(path, 0, &err);
    cr_assert_not_null(j, "%s: line %d: %s", path, err.line, err.text);
    return j;
}

/* Write `j` to a fresh temp file; returns its path (static buffer per call site: copy it). */
static void dump_tmp(const json_t *j, char *path, size_t cap) {
    snprintf(path, cap, "/tmp/lq_tok_hf_XXXXXX");
    int fd = mkstemp(path);
    cr_assert(fd >= 0);
    close(fd);
    cr_assert_eq(json_dump_file(j, path, JSON_COMPACT), 0);
}

/* The tokenizer a vector file describes: a shared file with keys replaced, or an inline one. */
static json_t *build_spec(const json_t *spec) {
    const json_t *in = json_object_get(spec, "inline");
    if (in) return json_deep_copy(in);
    char p[1024];
    json_t *j = load_json(lq_test_shared(json_string_value(json_object_get(spec, "shared")), p, sizeof p));
    const char *k;
    json_t *v;
    json_object_foreach(json_object_get(spec, "set"), k, v) json_object_set(j, k, v);
    json_object_foreach(json_object_get(spec, "model"), k, v) json_object_set(json_object_get(j, "model"), k, v);
    return j;
}

static lq_status load_spec_json(const json_t *j, lq_tokenizer **t, char *path, size_t cap) {
    dump_tmp(j, path, cap);
    lq_status s = lq_tokenizer_load_hf_json(path, t);
    return s;
}

static int cmp_str(const void *a, const void *b) { return strcmp(*(char *const *)a, *(char *const *)b); }

/* Check one vector file; returns the number of cases. */
static int check_file(const char *name, const json_t *texts) {
    char vp[1024], tp[256];
    snprintf(vp, sizeof vp, "%s/%s", VEC_DIR, name);
    json_t *doc = load_json(vp);
    json_t *tj = build_spec(json_object_get(doc, "tokenizer"));
    lq_tokenizer *t = NULL;
    lq_status s = load_spec_json(tj, &t, tp, sizeof tp);
    cr_assert_eq(s, LQ_OK, "%s: %s", name, lq_last_error());
    unlink(tp);
    const json_t *ids = json_object_get(doc, "ids");
    size_t n = json_array_size(ids);
    cr_assert(n > 0 && n <= json_array_size(texts), "%s: %zu cases", name, n);
    int32_t *got = malloc(65536 * sizeof *got);
    for (size_t i = 0; i < n; i++) {
        const json_t *tx = json_array_get(texts, i), *want = json_array_get(ids, i);
        int64_t m = 0;
        s = lq_tokenizer_encode(t, json_string_value(tx), json_string_length(tx), false, true, got, 65536, &m);
        cr_assert_eq(s, LQ_OK, "%s case %zu: %s", name, i, lq_last_error());
        size_t bad = SIZE_MAX, wn = json_array_size(want);
        for (size_t k = 0; k < wn && k < (size_t)m && bad == SIZE_MAX; k++)
            if (got[k] != json_integer_value(json_array_get(want, k))) bad = k;
        if (bad == SIZE_MAX && (size_t)m != wn) bad = (size_t)m < wn ? (size_t)m : wn;
        cr_expect(bad == SIZE_MAX, "%s case %zu ('%.60s'): %lld ids, library %zu; first difference at %zu (got %d, want %lld)",
                  name, i, json_string_value(tx), (long long)m, wn, bad, bad < (size_t)m ? got[bad] : -1,
                  bad < wn ? (long long)json_integer_value(json_array_get(want, bad)) : -1LL);
    }
    /* the post-processor's BOS (TemplateProcessing) */
    const json_t *ws = json_object_get(doc, "with_special"), *wt = json_object_get(doc, "with_special_text");
    int64_t m = 0;
    cr_assert_eq(lq_tokenizer_encode(t, json_string_value(wt), json_string_length(wt), lq_tokenizer_add_bos_default(t),
                                     true, got, 65536, &m),
                 LQ_OK);
    cr_expect_eq((size_t)m, json_array_size(ws), "%s: with special tokens: %lld ids, library %zu", name, (long long)m,
                 json_array_size(ws));
    for (size_t k = 0; k < (size_t)m && k < json_array_size(ws); k++)
        cr_expect_eq(got[k], json_integer_value(json_array_get(ws, k)), "%s: with special tokens, id %zu", name, k);
    free(got);
    lq_tokenizer_free(t);
    json_decref(tj);
    json_decref(doc);
    return (int)n;
}

Test(hf, library_vectors, .timeout = 300) {
    json_t *texts_doc = load_json(VEC_DIR "/texts.json");
    const json_t *texts = json_object_get(texts_doc, "texts");
    DIR *d = opendir(VEC_DIR);
    cr_assert_not_null(d);
    char *names[256];
    int nn = 0;
    struct dirent *e;
    while ((e = readdir(d)) && nn < 256) {
        size_t l = strlen(e->d_name);
        if (l > 5 && strcmp(e->d_name + l - 5, ".json") == 0 && strcmp(e->d_name, "texts.json") != 0 &&
            strcmp(e->d_name, "wikitext_whole.json") != 0)
            names[nn++] = strdup(e->d_name);
    }
    closedir(d);
    qsort(names, (size_t)nn, sizeof *names, cmp_str);
    int cases = 0;
    for (int i = 0; i < nn; i++) {
        cases += check_file(names[i], texts);
        free(names[i]);
    }
    cr_log_info("%d tokenizers, %d cases", nn, cases);
    cr_assert_geq(nn, 40, "only %d vector files", nn);
    cr_assert_geq(cases, 2500);
    json_decref(texts_doc);
}

/* The whole WikiText-2 test split in one encode, as a perplexity run tokenizes it: the number of
 * ids and two checksums equal the library's, and (optimized builds) it takes under 3 s of CPU. */
Test(hf, wikitext_whole_file_matches_library, .timeout = 300) {
    json_t *doc = load_json(VEC_DIR "/wikitext_whole.json");
    char p[1024];
    size_t len;
    char *text = lq_test_read_file(lq_test_shared(json_string_value(json_object_get(doc, "text")), p, sizeof p), &len);
    cr_assert(text);
    const char *name;
    json_t *r;
    json_object_foreach(json_object_get(doc, "results"), name, r) {
        lq_tokenizer *t = NULL;
        cr_assert_eq(lq_tokenizer_load_hf_json(lq_test_shared(json_string_value(json_object_get(r, "tokenizer")), p,
                                                              sizeof p),
                                               &t),
                     LQ_OK, "%s", lq_last_error());
        int64_t n = 0, want = json_integer_value(json_object_get(r, "n"));
        struct timespec a, b;
        /* CPU time: the suites share two cores with other work, wall time says little */
        clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &a);
        cr_assert_eq(lq_tokenizer_encode(t, text, len, false, false, NULL, 0, &n), LQ_ERR_INVALID_ARG);
        clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &b);
        cr_assert_eq(n, want, "%s: %lld ids, library %lld", name, (long long)n, (long long)want);
        int32_t *ids = malloc((size_t)n * sizeof *ids);
        cr_assert_eq(lq_tokenizer_encode(t, text, len, false, false, ids, n, &n), LQ_OK);
        uint64_t sum = 0, wsum = 0;
        for (int64_t i = 0; i < n; i++) {
            sum += (uint64_t)ids[i];
            wsum += (uint64_t)(i + 1) * (uint64_t)ids[i];
        }
        cr_expect_eq(sum, (uint64_t)json_integer_value(json_object_get(r, "sum")), "%s: sum of ids", name);
        cr_expect_eq(wsum, (uint64_t)json_integer_value(json_object_get(r, "wsum")), "%s: weighted sum of ids", name);
        double sec = (double)(b.tv_sec - a.tv_sec) + 1e-9 * (double)(b.tv_nsec - a.tv_nsec);
        cr_log_info("%s: %lld ids in %.3f s CPU", name, (long long)n, sec);
#ifdef NDEBUG
        cr_expect_lt(sec, 3.0, "%s: encoding WikiText-2 took %.2f s", name, sec);
#endif
        free(ids);
        lq_tokenizer_free(t);
    }
    free(text);
    json_decref(doc);
}

/* ---- refusals ---------------------------------------------------------------------------- */

/* TinyStories-656K's tokenizer.json with `key` replaced by the JSON text `val` (model.* keys
 * go into the model): must be refused with `code`, naming the file and `needle`. */
static void refuse(const char *key, const char *val, lq_status code, const char *needle) {
    char p[1024], tp[256];
    json_t *j = load_json(lq_test_shared("models/TinyStories-656K/tokenizer.json", p, sizeof p));
    json_error_t err;
    json_t *v = json_loads(val, JSON_DECODE_ANY, &err);
    cr_assert_not_null(v, "%s", val);
    if (strncmp(key, "model.", 6) == 0) json_object_set_new(json_object_get(j, "model"), key + 6, v);
    else json_object_set_new(j, key, v);
    lq_tokenizer *t = (lq_tokenizer *)1;
    lq_status s = load_spec_json(j, &t, tp, sizeof tp);
    cr_expect_eq(s, code, "%s = %s: %s (%s)", key, val, lq_status_name(s), s ? lq_last_error() : "loaded");
    cr_expect_null(t);
    if (s != LQ_OK) {
        cr_expect(strstr(lq_last_error(), tp), "message must name the file: %s", lq_last_error());
        cr_expect(strstr(lq_last_error(), needle), "message must name '%s': %s", needle, lq_last_error());
    }
    lq_tokenizer_free(s == LQ_OK ? t : NULL);
    unlink(tp);
    json_decref(j);
}

Test(hf, refuses_unknown_steps_by_name) {
    refuse("normalizer", "{\"type\": \"Precompiled\", \"precompiled_charsmap\": \"\"}", LQ_ERR_UNSUPPORTED, "Precompiled");
    refuse("normalizer", "{\"type\": \"BertNormalizer\"}", LQ_ERR_UNSUPPORTED, "BertNormalizer");
    refuse("normalizer", "{\"type\": \"Sequence\", \"normalizers\": [{\"type\": \"Lowercase\"}, {\"type\": \"Nmt\"}]}",
           LQ_ERR_UNSUPPORTED, "Nmt");
    refuse("normalizer", "{\"type\": \"Replace\", \"pattern\": {\"String\": \"\"}, \"content\": \"x\"}", LQ_ERR_UNSUPPORTED,
           "empty pattern");
    refuse("pre_tokenizer", "{\"type\": \"UnicodeScripts\"}", LQ_ERR_UNSUPPORTED, "UnicodeScripts");
    refuse("pre_tokenizer", "{\"type\": \"Sequence\", \"pretokenizers\": [{\"type\": \"Whitespace\"}, {\"type\": \"Bogus\"}]}",
           LQ_ERR_UNSUPPORTED, "Bogus");
    refuse("pre_tokenizer", "{\"type\": \"Split\", \"pattern\": {\"Regex\": \"(unclosed\"}, \"behavior\": \"Isolated\", \"invert\": false}",
           LQ_ERR_FORMAT, "(unclosed");
    refuse("pre_tokenizer", "{\"type\": \"Split\", \"pattern\": {\"Regex\": \"a\"}, \"behavior\": \"Sideways\", \"invert\": false}",
           LQ_ERR_UNSUPPORTED, "Sideways");
    refuse("pre_tokenizer", "{\"type\": \"Metaspace\", \"replacement\": \"\\u2581\", \"prepend_scheme\": \"sometimes\"}",
           LQ_ERR_UNSUPPORTED, "sometimes");
    refuse("pre_tokenizer", "{\"type\": \"ByteLevel\", \"trim_offsets\": true}", LQ_ERR_FORMAT, "add_prefix_space");
    refuse("model.dropout", "0.1", LQ_ERR_UNSUPPORTED, "dropout");
}

/* With a Lowercase normalizer in front, the library makes "ONCE UPON A TIME" the 5 ids
 * "▁" "on" "ce▁" "upon▁a▁tim" "e" (ts_lowercase.json, text 10); before the pipeline was ported
 * we ignored every normalizer but Prepend/Replace and made 17. */
Test(hf, lowercase_normalizer_applies) {
    char p[1024], tp[256];
    json_t *j = load_json(lq_test_shared("models/TinyStories-656K/tokenizer.json", p, sizeof p));
    json_t *norm = json_object_get(j, "normalizer");
    json_array_insert_new(json_object_get(norm, "normalizers"), 0, json_pack("{s:s}", "type", "Lowercase"));
    lq_tokenizer *t = NULL;
    cr_assert_eq(load_spec_json(j, &t, tp, sizeof tp), LQ_OK, "%s", lq_last_error());
    unlink(tp);
    int32_t ids[64];
    int64_t n = 0;
    cr_assert_eq(lq_tokenizer_encode(t, "ONCE UPON A TIME", 16, false, false, ids, 64, &n), LQ_OK);
    static const int32_t want[5] = {80, 111, 201, 282, 57};
    cr_assert_eq(n, 5, "%lld ids", (long long)n);
    for (int k = 0; k < 5; k++) cr_expect_eq(ids[k], want[k], "id %d", k);
    lq_tokenizer_free(t);
    json_decref(j);
}

/* Fuzz finding (tokenizer_json timeout): three chained Replace " " normalizers whose contents
 * hold 89, 79 and 4 spaces turn the fuzz target's 30-byte text into 8.3 MB (computed with
 * Python's str.replace over the file's normalizers), seconds of linear work per encode. The
 * normalizers' growth is bounded; past it the encode is refused, by file and step, at once.
 * Criterion's timeout, not a timed assertion, holds the "at once". */
Test(hf, normalizer_growth_is_refused, .timeout = 10) {
    const char *path = LQ_FIXTURES_DIR "/../fuzz/corpus/tokenizer_json/repro_timeout_replace_chain.json";
    lq_tokenizer *t = NULL;
    cr_assert_eq(lq_tokenizer_load_hf_json(path, &t), LQ_OK, "%s", lq_last_error());
    static const char text[] = "Hello world! <s> 3.14 \xc3\xa4\xf0\x9f\xa6\x99\n\t  x";
    int32_t ids[256];
    int64_t n = 0;
    cr_assert_eq(lq_tokenizer_encode(t, text, sizeof text - 1, true, true, ids, 256, &n), LQ_ERR_UNSUPPORTED);
    const char *msg = lq_last_error();
    cr_expect(strstr(msg, "repro_timeout_replace_chain.json") != NULL, "%s", msg);
    cr_expect(strstr(msg, "normalizer step") != NULL, "%s", msg);
    lq_tokenizer_free(t);
}

/* Fuzz finding (tokenizer_json timeout, fourth campaign): one added token with id 10,305,101 in a
 * file of 8 entries gave the vocabulary ten million slots (1.3 GB and 10 s under ASan). Ids that
 * sparse are refused at load, naming the file; a real vocabulary with holes still loads. */
Test(hf, sparse_ids_are_refused, .timeout = 10) {
    const char *path = LQ_FIXTURES_DIR "/../fuzz/corpus/tokenizer_json/repro_timeout_sparse_ids.json";
    lq_tokenizer *t = NULL;
    cr_assert_eq(lq_tokenizer_load_hf_json(path, &t), LQ_ERR_FORMAT);
    const char *msg = lq_last_error();
    cr_expect(strstr(msg, "repro_timeout_sparse_ids.json") != NULL, "%s", msg);
    cr_expect(strstr(msg, "10305101") != NULL, "%s", msg);
    /* TinyStories-656K (2,048 pieces) with an added token at id 60000, a hole of ~58,000 ids: loads */
    char p[1024], tp[256];
    json_t *j = load_json(lq_test_shared("models/TinyStories-656K/tokenizer.json", p, sizeof p));
    json_array_append_new(json_object_get(j, "added_tokens"),
                          json_pack("{s:i, s:s, s:b}", "id", 60000, "content", "<extra>", "special", 1));
    cr_assert_eq(load_spec_json(j, &t, tp, sizeof tp), LQ_OK, "%s", lq_last_error());
    unlink(tp);
    cr_expect_eq(lq_tokenizer_vocab_size(t), 60001);
    lq_tokenizer_free(t);
    json_decref(j);
}

/* Defect 13: a Split regex that backtracks exponentially stops at PCRE2's match limit; the
 * error names the tokenizer file and the pattern and is LQ_ERR_UNSUPPORTED (tools exit 3: see
 * backtracking_regex_bytelevel_and_tool_exit). */
Test(hf, backtracking_regex_is_named) {
    char p[1024], tp[256];
    json_t *j = load_json(lq_test_shared("models/TinyStories-656K/tokenizer.json", p, sizeof p));
    json_object_set_new(j, "pre_tokenizer",
                        json_pack("{s:s, s:{s:s}, s:s, s:b}", "type", "Split", "pattern", "Regex", "(a+)+$", "behavior",
                                  "Isolated", "invert", 0));
    lq_tokenizer *t = NULL;
    cr_assert_eq(load_spec_json(j, &t, tp, sizeof tp), LQ_OK, "%s", lq_last_error());
    char text[64];
    memset(text, 'a', 40);
    text[40] = '!';
    text[41] = 0;
    int64_t n = 0;
    lq_status s = lq_tokenizer_encode(t, text, 41, false, false, NULL, 0, &n);
    cr_assert_eq(s, LQ_ERR_UNSUPPORTED, "%s: %s", lq_status_name(s), lq_last_error());
    cr_expect(strstr(lq_last_error(), tp), "must name the file: %s", lq_last_error());
    cr_expect(strstr(lq_last_error(), "(a+)+$"), "must name the pattern: %s", lq_last_error());
    lq_tokenizer_free(t);
    unlink(tp);
    json_decref(j);
}

/* lq_tokenizer_safe_cut on tokenizer.json pipelines: encoding at the cuts piece by piece gives
 * the ids of the whole text (quant-distill's chunked mode). */
static void cut_equals_whole(lq_tokenizer *t, const char *rel, const char *textrel) {
    char q[1024];
    size_t len;
    char *text = lq_test_read_file(lq_test_shared(textrel, q, sizeof q), &len);
    cr_assert(text);
    if (len > 60000) len = 60000;
    while (len > 0 && ((unsigned char)text[len] & 0xC0) == 0x80) len--;
    int64_t nw = 0, np = 0;
    cr_assert_eq(lq_tokenizer_encode(t, text, len, false, false, NULL, 0, &nw), LQ_ERR_INVALID_ARG);
    int32_t *whole = malloc((size_t)nw * sizeof *whole), *parts = malloc((size_t)nw * 2 * sizeof *parts);
    cr_assert_eq(lq_tokenizer_encode(t, text, len, false, false, whole, nw, &nw), LQ_OK);
    size_t pos = 0;
    int cuts = 0;
    while (pos < len) {
        /* as quant-distill: widen the window until it holds a safe cut */
        size_t want = 700, c = 0;
        while (c == 0 && want < len - pos) {
            c = lq_tokenizer_safe_cut(t, text + pos, want + 1);
            if (c == 0) want *= 2;
        }
        if (c == 0) c = len - pos;
        int64_t m = 0;
        lq_status s = pos == 0 ? lq_tokenizer_encode(t, text, c, false, false, parts + np, nw * 2 - np, &m)
                               : lq_tokenizer_encode_next(t, text + pos, c, parts + np, nw * 2 - np, &m);
        cr_assert_eq(s, LQ_OK, "%s", lq_last_error());
        np += m;
        pos += c;
        cuts++;
    }
    cr_assert_eq(np, nw, "%s: %lld ids in pieces, %lld whole", rel, (long long)np, (long long)nw);
    cr_assert_eq(memcmp(parts, whole, (size_t)nw * sizeof *whole), 0, "%s: ids differ", rel);
    cr_log_info("%s on %s: %d pieces", rel, textrel, cuts);
    cr_assert_geq(cuts, (int)(len / 4000), "%s: only %d pieces in %zu bytes", rel, cuts, len);
    free(whole);
    free(parts);
    free(text);
}

Test(hf, safe_cut_matches_whole_text) {
    char p[1024];
    lq_tokenizer *t = NULL;
    cr_assert_eq(lq_tokenizer_load_hf_json(lq_test_shared("models/gpt2-tokenizer/tokenizer.json", p, sizeof p), &t),
                 LQ_OK);
    cut_equals_whole(t, "gpt2 tokenizer.json", "data/wikitext-2-raw-v1.test.hfjoin.txt");
    lq_tokenizer_free(t);
    /* the Llama-2 layout (Prepend + Replace normalizers, byte_fallback), written from tokenizer.bin */
    lq_tokenizer *a = NULL;
    cr_assert_eq(lq_tokenizer_load_llama2c(lq_test_shared("models/llama2-tokenizer/tokenizer.bin", p, sizeof p), 32000, &a),
                 LQ_OK);
    char path[] = "/tmp/lq_tok_hf_llama_XXXXXX";
    int fd = mkstemp(path);
    cr_assert(fd >= 0);
    close(fd);
    cr_assert_eq(lq_tokenizer_save_hf_json(a, path), LQ_OK, "%s", lq_last_error());
    cr_assert_eq(lq_tokenizer_load_hf_json(path, &t), LQ_OK, "%s", lq_last_error());
    unlink(path);
    cut_equals_whole(t, "llama-2 tokenizer.json", "data/wikitext-2-raw-v1.test.hfjoin.txt");
    cut_equals_whole(t, "llama-2 tokenizer.json", "data/tinystories_sample.txt");
    lq_tokenizer_free(t);
    lq_tokenizer_free(a);
    /* TinyStories-656K's pieces run across newlines and end in "▁" ("▁\n", ".\nThe▁"): no
     * position is safe, and none may be offered */
    cr_assert_eq(lq_tokenizer_load_hf_json(lq_test_shared("models/TinyStories-656K/tokenizer.json", p, sizeof p), &t),
                 LQ_OK);
    size_t len;
    char *text = lq_test_read_file(lq_test_shared("data/tinystories_sample.txt", p, sizeof p), &len);
    cr_assert(text);
    cr_expect_eq(lq_tokenizer_safe_cut(t, text, len), 0);
    free(text);
    lq_tokenizer_free(t);
}

/* A tokenizer.json pipeline is not written back (the file should be copied instead). */
Test(hf, save_refuses_json_pipeline) {
    char p[1024];
    lq_tokenizer *t = NULL;
    cr_assert_eq(lq_tokenizer_load_hf_json(lq_test_shared("models/TinyStories-656K/tokenizer.json", p, sizeof p), &t),
                 LQ_OK);
    unlink("/tmp/lq_tok_hf_never.json");
    cr_expect_eq(lq_tokenizer_save_hf_json(t, "/tmp/lq_tok_hf_never.json"), LQ_ERR_UNSUPPORTED);
    cr_expect(access("/tmp/lq_tok_hf_never.json", F_OK) != 0);
    lq_tokenizer_free(t);
}

/* Defect 13 as the audit met it: a byte-level tokenizer.json (GPT-2 vocabulary) whose Split
 * regex backtracks, and quant-eval on a tokenizer.json whose regex does: exit 3, one line naming
 * the tokenizer file and the pattern (was: exit 2, "pre-tokenizer regex failed: match limit"). */
Test(hf, backtracking_regex_bytelevel_and_tool_exit) {
    char p[1024], tp[256];
    json_t *j = load_json(lq_test_shared("models/gpt2-tokenizer/tokenizer.json", p, sizeof p));
    json_object_set_new(j, "pre_tokenizer",
                        json_pack("{s:s, s:[{s:s, s:{s:s}, s:s, s:b}, {s:s, s:b, s:b, s:b}]}", "type", "Sequence",
                                  "pretokenizers", "type", "Split", "pattern", "Regex", "(a+)+$", "behavior", "Isolated",
                                  "invert", 0, "type", "ByteLevel", "add_prefix_space", 0, "trim_offsets", 1,
                                  "use_regex", 0));
    lq_tokenizer *t = NULL;
    cr_assert_eq(load_spec_json(j, &t, tp, sizeof tp), LQ_OK, "%s", lq_last_error());
    const char *text = "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa!";
    int64_t n = 0;
    lq_status s = lq_tokenizer_encode(t, text, strlen(text), false, false, NULL, 0, &n);
    cr_expect_eq(s, LQ_ERR_UNSUPPORTED, "%s: %s", lq_status_name(s), lq_last_error());
    cr_expect(strstr(lq_last_error(), tp) && strstr(lq_last_error(), "(a+)+$"), "%s", lq_last_error());
    lq_tokenizer_free(t);
    unlink(tp);
    json_decref(j);

    /* quant-eval: stories260K with its tok512 vocabulary as a tokenizer.json carrying the regex */
    char dir[] = "/tmp/lq_tok_hf_d13_XXXXXX"; /* short paths: the tool command line is built in 4 KiB */
    cr_assert_not_null(mkdtemp(dir));
    lq_tokenizer *a = NULL;
    cr_assert_eq(lq_tokenizer_load_llama2c(lq_test_shared("models/stories260K/tok512.bin", p, sizeof p), 512, &a), LQ_OK);
    char tok[128], txt[128], args[1024], err[4096];
    snprintf(tok, sizeof tok, "%s/tokenizer.json", dir);
    snprintf(txt, sizeof txt, "%s/text.txt", dir);
    cr_assert_eq(lq_tokenizer_save_hf_json(a, tok), LQ_OK, "%s", lq_last_error());
    lq_tokenizer_free(a);
    j = load_json(tok);
    json_object_set_new(j, "pre_tokenizer",
                        json_pack("{s:s, s:{s:s}, s:s, s:b}", "type", "Split", "pattern", "Regex", "(a+)+$", "behavior",
                                  "Isolated", "invert", 0));
    cr_assert_eq(json_dump_file(j, tok, 0), 0);
    json_decref(j);
    FILE *f = fopen(txt, "w");
    cr_assert(f);
    fprintf(f, "%s\n", text);
    fclose(f);
    char model[512];
    snprintf(model, sizeof model, "%s/models/stories260K/stories260K.bin", lq_test_shared_dir());
    snprintf(args, sizeof args, "--model '%.500s' --tokenizer '%s' --file '%s'", model, tok, txt);
    int code = lq_test_run_tool("quant-eval", args, dir, err, sizeof err);
    cr_expect_eq(code, 3, "exit %d: %s", code, err);
    cr_expect(strstr(err, tok) && strstr(err, "(a+)+$"), "must name the file and the pattern: %s", err);
    char *nl = strchr(err, '\n');
    cr_expect(nl && nl[1] == 0, "one line: %s", err);
    char cmd[1024];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    cr_expect_eq(system(cmd), 0);
}

/* transformers' tokenizer.json converted from a GGUF byte-level vocabulary (SmolLM2) carries
 * byte_fallback and a ByteFallback decoder next to its ByteLevel pre-tokenizer: the pieces are
 * byte-level, and must decode as such (read as SentencePiece, quant-run printed garbage). */
Test(hf, gguf_converted_bytelevel_decodes) {
    json_t *doc = load_json(VEC_DIR "/gpt2_gguf_converted.json");
    json_t *tj = build_spec(json_object_get(doc, "tokenizer"));
    char tp[256];
    lq_tokenizer *t = NULL;
    cr_assert_eq(load_spec_json(tj, &t, tp, sizeof tp), LQ_OK, "%s", lq_last_error());
    unlink(tp);
    cr_expect_eq(lq_tokenizer_kind(t), LQ_TOK_BPE_BYTES);
    static const char *const x[] = {"The capital of France is Paris.", "  two spaces\n\ttab", "\xc3\x87" "a va? \xf0\x9f\xa6\x99"};
    for (size_t i = 0; i < sizeof x / sizeof x[0]; i++) {
        int32_t ids[256];
        int64_t n = 0;
        cr_assert_eq(lq_tokenizer_encode(t, x[i], strlen(x[i]), false, false, ids, 256, &n), LQ_OK);
        char *back = NULL;
        cr_assert_eq(lq_tokenizer_decode(t, ids, n, &back), LQ_OK);
        cr_expect_str_eq(back, x[i]);
        free(back);
    }
    lq_tokenizer_free(t);
    json_decref(tj);
    json_decref(doc);
}
