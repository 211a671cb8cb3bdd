/* tok_internal.h - private declarations shared by the tokenizer files (tok_*.c).
 *
 * One object for both algorithms. Loaders fill it through the builder functions
 * (tok_new / tok_set_piece / ... / tok_finalize); encoders only read it, so a finalized
 * tokenizer can be used from several threads at once.
 */
#ifndef LQ_TOK_INTERNAL_H
#define LQ_TOK_INTERNAL_H

#include "libquant/lq_tokenizer.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define PCRE2_CODE_UNIT_WIDTH 8
#include <pcre2.h>

/* Token types, numbered as GGUF's tokenizer.ggml.token_type (llama.cpp llama_token_type). */
enum {
    TOK_TYPE_UNDEFINED = 0,
    TOK_TYPE_NORMAL = 1,
    TOK_TYPE_UNKNOWN = 2,
    TOK_TYPE_CONTROL = 3,
    TOK_TYPE_USER_DEFINED = 4,
    TOK_TYPE_UNUSED = 5,
    TOK_TYPE_BYTE = 6,
};

#define TOK_MAX_REGEX 4
#define TOK_MAX_VOCAB (1 << 24) /* sanity bound on ids read from files */
#define TOK_MAX_ID_GAP 65536    /* a tokenizer.json's largest id may exceed 2 x its entries by this */

/* Merge table slot (byte-level BPE): key = left id << 32 | right id. */
typedef struct tok_merge_slot {
    uint64_t key; /* UINT64_MAX = empty */
    int32_t rank;
    int32_t id;   /* id of the merged piece */
} tok_merge_slot;

struct lq_tokenizer {
    lq_tok_kind kind;
    int32_t n_vocab;
    char **piece;         /* [n_vocab] NUL-terminated piece text as the vocabulary stores it */
    uint32_t *piece_len;  /* [n_vocab] bytes */
    float *score;         /* [n_vocab] SPM merge priority (higher merges first) */
    uint8_t *type;        /* [n_vocab] TOK_TYPE_* */

    /* piece text -> id, open addressing on FNV-1a; slots hold ids, -1 = empty */
    int32_t *map;
    uint32_t map_mask;

    int32_t bos, eos, unk; /* -1 if none */
    bool add_bos;

    /* SPM */
    bool add_space_prefix;  /* the "▁" dummy prefix */
    int32_t byte_id[256];   /* id of <0xNN>, -1 if absent */
    /* no mergeable piece has "▁" after another character: merges never cross the start of a
     * "▁"-word, so words can be merged one at a time (small heaps, same result) */
    bool spm_word_split;

    /* byte-level BPE */
    int64_t n_merges;
    int32_t (*merges)[2];   /* [n_merges] (left id, right id) in rank order */
    tok_merge_slot *mtab;
    uint32_t mtab_mask;
    bool ignore_merges;     /* a whole pre-token found in the vocab is emitted as is (Llama 3) */
    int n_re;
    char *re_src[TOK_MAX_REGEX]; /* pre-tokenizer regexes, applied in sequence (HF Split) */
    pcre2_code *re[TOK_MAX_REGEX];
    uint16_t byte_cp[256];  /* GPT-2 bytes_to_unicode: byte -> code point */
    int16_t cp_byte[512];   /* inverse (code point < 512), -1 if not a byte */

    /* tokenizer.json: the `tokenizers` pipeline (tok_hf.h); NULL for the other formats */
    struct tok_hf *hf;
    char *src_path; /* the file it was loaded from, for errors found while encoding */

    /* ids matched verbatim with parse_special (CONTROL, USER_DEFINED, UNKNOWN), longest first */
    int32_t *special;
    int32_t n_special;
};

/* GPT-2's pre-tokenizer regex (also the default for ByteLevel with use_regex). */
extern const char *const tok_re_gpt2;

/* ---- builder (tok_core.c) ------------------------------------------------------------------ */

/* New empty tokenizer: all pieces "", type UNUSED, score 0. */
lq_status tok_new(lq_tok_kind kind, int64_t n_vocab, const char *path, lq_tokenizer **out);
/* Copy a piece; `path` is for messages. */
lq_status tok_set_piece(lq_tokenizer *t, int32_t id, const char *s, size_t len, float score, int type,
                        const char *path);
/* Add a pre-tokenizer regex (compiled with PCRE2 UTF|UCP). */
lq_status tok_add_regex(lq_tokenizer *t, const char *re, const char *path);
/* Build the lookup tables (piece map, byte ids, specials, byte map). Call after all pieces. */
lq_status tok_finalize(lq_tokenizer *t, const char *path);
/* Add merges in rank order (byte-level BPE), after tok_finalize; left/right are piece strings.
 * LQ_ERR_FORMAT if a side or the concatenation is not in the vocabulary. */
lq_status tok_add_merge(lq_tokenizer *t, const char *l, size_t ll, const char *r, size_t rl,
                        const char *path, int64_t rank);
/* tok_add_merge with the `tokenizers` rules: the merged piece is l + r[r_skip..) (r_skip = the
 * length of continuing_subword_prefix) and, with last_wins, a repeated pair takes the new rank. */
lq_status tok_add_merge_ex(lq_tokenizer *t, const char *l, size_t ll, const char *r, size_t rl, size_t r_skip,
                           bool last_wins, const char *path, int64_t rank);
lq_status tok_merges_reserve(lq_tokenizer *t, int64_t n, const char *path);
/* Id of a piece, -1 if absent. */
int32_t tok_find(const lq_tokenizer *t, const char *s, size_t len);
/* Merge (rank, merged id) of a pair of ids; false if the pair does not merge. */
bool tok_merge_find(const lq_tokenizer *t, int32_t l, int32_t r, int32_t *rank, int32_t *id);
/* "<0xNN>" -> NN; -1 if the piece is not of that form. */
int tok_parse_byte_piece(const char *s, size_t len);

/* ---- growable id vector ---------------------------------------------------------------------- */

typedef struct tok_ids {
    int32_t *v;
    int64_t n, cap;
} tok_ids;
bool tok_ids_push(tok_ids *a, int32_t id);

/* ---- merge engine shared by both algorithms (tok_core.c) ------------------------------------ */

typedef struct tok_sym {
    int64_t prev, next; /* -1 at the ends */
    size_t off, n;      /* bytes of text; n == 0 once merged into its left neighbour */
    int32_t id;         /* vocabulary id of the text, -1 if not a token */
} tok_sym;

typedef struct tok_bigram {
    double score;       /* higher merges first; ties go to the leftmost pair */
    int64_t left, right;
    size_t size;        /* bytes of the merged text: detects stale entries */
    int32_t id;         /* merged id */
} tok_bigram;

typedef struct tok_heap {
    tok_bigram *v;
    int64_t n, cap;
} tok_heap;
bool tok_heap_push(tok_heap *h, tok_bigram b);
bool tok_heap_pop(tok_heap *h, tok_bigram *out);

/* ---- encoders ------------------------------------------------------------------------------- */

/* Encode one raw-text fragment (no special tokens inside) and append ids. `prefix` asks for the
 * SPM dummy prefix (start of text or after a special token). */
lq_status tok_spm_encode(const lq_tokenizer *t, const char *text, size_t len, bool prefix, tok_ids *out);
lq_status tok_bpe_encode(const lq_tokenizer *t, const char *text, size_t len, tok_ids *out);

/* A pre-tokenizer regex failed while encoding (PCRE2's match or depth limit on a backtracking
 * pattern): LQ_ERR_UNSUPPORTED naming the tokenizer file and the pattern. */
lq_status tok_regex_error(const lq_tokenizer *t, const char *re_src, int rc, size_t at);

/* Encode through the tokenizer.json pipeline (tok_hf_encode.c). */
lq_status tok_hf_encode(const lq_tokenizer *t, const char *text, size_t len, bool lead, bool parse_added,
                        tok_ids *out);
void tok_hf_free(struct tok_hf *h);

/* Bytes of a UTF-8 sequence starting at s[0] if it is well formed and fits, else 1. */
size_t tok_utf8_len(const unsigned char *s, size_t avail);

/* Byte b as the UTF-8 of its GPT-2 byte-level code point (below U+0200, so 1 or 2 bytes): the
 * one encoding both byte-level paths use (tok_bpe_bytes.c, tokenizer.json's ByteLevel). */
static inline size_t tok_byte_utf8(const lq_tokenizer *t, unsigned char b, char u[2]) {
    unsigned cp = t->byte_cp[b];
    if (cp < 0x80) {
        u[0] = (char)cp;
        return 1;
    }
    u[0] = (char)(0xC0 | (cp >> 6));
    u[1] = (char)(0x80 | (cp & 0x3F));
    return 2;
}

#endif
