/* tok_hf.h - the Hugging Face `tokenizers` pipeline for tokenizer.json files, ported step by step
 * so that our ids equal the library's (tokenizers 0.23, checked on generated vectors in
 * tests/fixtures/tok_vectors):
 *
 *   1. added tokens with normalized=false are cut out of the raw text;
 *   2. every other fragment runs through the normalizers (tok_hf_norm.c);
 *   3. added tokens with normalized=true (their content normalized the same way) are cut out of
 *      the normalized text;
 *   4. the pre-tokenizers split each fragment into words (tok_hf_pretok.c);
 *   5. the BPE model turns each word into ids (tok_hf_bpe.c: byte_fallback, unk / fuse_unk,
 *      ignore_merges, continuing_subword_prefix, end_of_word_suffix).
 *
 * Every normalizer and pre-tokenizer is compiled at load time into a flat list of primitive
 * steps; a type we do not implement is refused by name when the file is loaded, never skipped.
 */
#ifndef LQ_TOK_HF_H
#define LQ_TOK_HF_H

#include "tok_internal.h"

/* ---- normalizers -------------------------------------------------------------------------- */

typedef enum hf_norm_kind {
    HFN_PREPEND,      /* s: text put in front of a non-empty fragment */
    HFN_REPLACE_STR,  /* s -> s2, every non-overlapping occurrence, left to right */
    HFN_REPLACE_RE,   /* re -> s2 */
    HFN_LOWERCASE,    /* Unicode lowercase, as Rust's char::to_lowercase */
    HFN_STRIP,        /* left / right: drop leading / trailing White_Space */
    HFN_STRIP_ACCENTS,/* drop General_Category=Mark */
    HFN_NFC,
    HFN_NFD,
    HFN_NFKC,
    HFN_NFKD,
    HFN_BYTELEVEL,    /* every byte -> its GPT-2 code point */
} hf_norm_kind;

typedef struct hf_norm {
    hf_norm_kind kind;
    char *s, *s2;
    size_t n, n2;
    pcre2_code *re;
    char *re_src;
    bool left, right;
} hf_norm;

/* ---- pre-tokenizers ------------------------------------------------------------------------- */

/* SplitDelimiterBehavior */
typedef enum hf_split_beh { HFB_REMOVED, HFB_ISOLATED, HFB_MERGED_PREV, HFB_MERGED_NEXT, HFB_CONTIGUOUS } hf_split_beh;

/* Character classes that split on one character at a time (tokenizers' `Fn(char) -> bool` pattern). */
typedef enum hf_char_class { HFC_WHITESPACE, HFC_PUNCT, HFC_NUMERIC, HFC_CHAR } hf_char_class;

typedef enum hf_pre_kind {
    HFP_SPLIT_RE,     /* re, beh, invert */
    HFP_SPLIT_CHAR,   /* cls (+ cp for HFC_CHAR), beh, invert */
    HFP_METASPACE,    /* ' ' -> s, then prepend s per scheme (split is a separate HFP_SPLIT_CHAR) */
    HFP_PREFIX_SPACE, /* ByteLevel add_prefix_space: " " in front of a word not starting with one */
    HFP_BYTEMAP,      /* ByteLevel: every byte -> its GPT-2 code point */
} hf_pre_kind;

typedef enum hf_prepend_scheme { HFS_ALWAYS, HFS_FIRST, HFS_NEVER } hf_prepend_scheme;

typedef struct hf_pre {
    hf_pre_kind kind;
    hf_split_beh beh;
    bool invert;
    hf_char_class cls;
    uint32_t cp;
    pcre2_code *re;
    char *re_src;
    char *s;
    size_t n;
    hf_prepend_scheme scheme;
} hf_pre;

/* ---- added tokens ---------------------------------------------------------------------------- */

typedef struct hf_added {
    int32_t id;
    char *content;    /* as matched: normalized with the normalizers if `normalized` */
    size_t n;
    bool normalized, special, lstrip, rstrip, single_word;
} hf_added;

/* ---- the pipeline --------------------------------------------------------------------------- */

typedef struct tok_hf {
    hf_norm *norm;
    int n_norm;
    hf_pre *pre;
    int n_pre;
    hf_added *added;  /* sorted longest content first (leftmost-longest matching) */
    int n_added;
    bool added_first[2][256]; /* [normalized][byte]: some added token of that class starts with it */
    /* BPE model */
    int32_t unk;      /* -1: unknown characters are dropped, as the library does without unk_token */
    bool unk_missing; /* unk_token names no vocabulary entry: encoding an unknown character fails */
    bool fuse_unk, byte_fallback, ignore_merges;
    char *cont_prefix, *eow_suffix; /* NULL if absent */
    size_t cont_n, eow_n;
    int32_t byte_tok[256]; /* id of "<0xNN>" in the vocabulary, -1 if absent */
} tok_hf;

void tok_hf_free(tok_hf *h);

/* Build t->hf from the parsed tokenizer.json root (after the vocabulary and merges are loaded). */
struct json_t;
lq_status tok_hf_load(lq_tokenizer *t, const struct json_t *root, const char *path);

/* Encode one text through the pipeline. `lead`: the text starts the input (Prepend / Metaspace
 * "first" apply at its start); lq_tokenizer_encode_next passes false. `parse_added`: cut out the
 * added tokens (our parse_special). */
lq_status tok_hf_encode(const lq_tokenizer *t, const char *text, size_t len, bool lead, bool parse_added,
                        tok_ids *out);

/* ---- pieces used by the pipeline files ------------------------------------------------------ */

/* A growable byte buffer. */
typedef struct hf_buf {
    char *p;
    size_t n, cap;
} hf_buf;
bool hf_buf_put(hf_buf *b, const void *s, size_t n);

/* Normalize s[0..n) into `out` (cleared first). *lead0 in: the fragment's first byte is the
 * input's first; out: still true after normalization (Strip / Replace may drop it). */
lq_status tok_hf_normalize(const lq_tokenizer *t, const char *s, size_t n, bool cont, hf_buf *out, bool *lead0);

/* A word list: word i is buf[off[i] .. off[i] + len[i]); first[i]: it starts at the input's
 * first byte (Metaspace "first"). */
typedef struct hf_words {
    hf_buf buf;
    size_t *off, *len;
    bool *first;
    size_t n, cap;
} hf_words;
bool hf_words_add(hf_words *w, const char *s, size_t n, bool first);
void hf_words_free(hf_words *w);

/* Run the pre-tokenizers over `in` (consumed: its storage is reused). */
lq_status tok_hf_pretokenize(const lq_tokenizer *t, hf_words *in, hf_words *scratch, hf_words **result);

/* The BPE model on one word (tokenizers' BPE::tokenize). */
lq_status tok_hf_bpe_word(const lq_tokenizer *t, const char *w, size_t n, tok_ids *out);

/* Rust's char::is_whitespace (the White_Space property). */
bool tok_hf_is_white(int32_t c);

/* Whether lq_tokenizer_safe_cut's rules hold for this pipeline: false unless it is the Llama-2
 * layout (Prepend + Replace, or Metaspace "first") or plain ByteLevel; *words / *lines: the "▁"
 * and newline rules may be used. */
bool tok_hf_cut_rules(const lq_tokenizer *t, bool *words, bool *lines);

/* GPT-2 bytes_to_unicode of each byte of s, appended to out. */
bool hf_bytemap(const lq_tokenizer *t, const char *s, size_t n, hf_buf *out);

#endif
