/* tok_core.c - the tokenizer object: builder, piece/merge hash tables, the bigram heap shared by
 * both merge algorithms, accessors, the vocabulary hash and load_dir. */
#include "tok_internal.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

const char *const tok_re_gpt2 =
    "'s|'t|'re|'ve|'m|'ll|'d| ?\\p{L}+| ?\\p{N}+| ?[^\\s\\p{L}\\p{N}]+|\\s+(?!\\S)|\\s+";

/* ---- object --------------------------------------------------------------------------------- */

lq_status tok_new(lq_tok_kind kind, int64_t n_vocab, const char *path, lq_tokenizer **out) {
    *out = NULL;
    if (n_vocab <= 0 || n_vocab > TOK_MAX_VOCAB)
        return lq_fail(LQ_ERR_FORMAT, "%s: vocabulary size %lld out of range", path, (long long)n_vocab);
    lq_tokenizer *t = calloc(1, sizeof *t);
    if (!t) return lq_fail(LQ_ERR_NOMEM, "%s: out of memory", path);
    t->kind = kind;
    t->n_vocab = (int32_t)n_vocab;
    t->piece = calloc((size_t)n_vocab, sizeof *t->piece);
    t->piece_len = calloc((size_t)n_vocab, sizeof *t->piece_len);
    t->score = calloc((size_t)n_vocab, sizeof *t->score);
    t->type = malloc((size_t)n_vocab);
    t->src_path = strdup(path);
    if (!t->piece || !t->piece_len || !t->score || !t->type || !t->src_path) {
        lq_tokenizer_free(t);
        return lq_fail(LQ_ERR_NOMEM, "%s: out of memory", path);
    }
    memset(t->type, TOK_TYPE_UNUSED, (size_t)n_vocab);
    t->bos = t->eos = t->unk = -1;
    *out = t;
    return LQ_OK;
}

void lq_tokenizer_free(lq_tokenizer *t) {
    if (!t) return;
    if (t->piece)
        for (int32_t i = 0; i < t->n_vocab; i++) free(t->piece[i]);
    free(t->piece);
    free(t->piece_len);
    free(t->score);
    free(t->type);
    free(t->map);
    free(t->merges);
    free(t->mtab);
    for (int i = 0; i < t->n_re; i++) {
        free(t->re_src[i]);
        pcre2_code_free(t->re[i]);
    }
    free(t->special);
    tok_hf_free(t->hf);
    free(t->src_path);
    free(t);
}

lq_status tok_set_piece(lq_tokenizer *t, int32_t id, const char *s, size_t len, float score, int type,
                        const char *path) {
    if (id < 0 || id >= t->n_vocab)
        return lq_fail(LQ_ERR_FORMAT, "%s: token id %d out of range [0, %d)", path, id, t->n_vocab);
    if (len > UINT32_MAX / 2) return lq_fail(LQ_ERR_FORMAT, "%s: token %d: piece too long", path, id);
    char *p = malloc(len + 1);
    if (!p) return lq_fail(LQ_ERR_NOMEM, "%s: out of memory", path);
    memcpy(p, s, len);
    p[len] = 0;
    free(t->piece[id]);
    t->piece[id] = p;
    t->piece_len[id] = (uint32_t)len;
    t->score[id] = score;
    t->type[id] = (uint8_t)type;
    return LQ_OK;
}

lq_status tok_add_regex(lq_tokenizer *t, const char *re, const char *path) {
    if (t->n_re >= TOK_MAX_REGEX)
        return lq_fail(LQ_ERR_UNSUPPORTED, "%s: more than %d pre-tokenizer regexes", path, TOK_MAX_REGEX);
    int err;
    PCRE2_SIZE erroff;
    uint32_t opts = PCRE2_UTF | PCRE2_UCP;
#ifdef PCRE2_MATCH_INVALID_UTF
    opts |= PCRE2_MATCH_INVALID_UTF; /* invalid UTF-8 input never matches instead of erroring */
#endif
    pcre2_code *code = pcre2_compile((PCRE2_SPTR)re, PCRE2_ZERO_TERMINATED, opts, &err, &erroff, NULL);
    if (!code) {
        PCRE2_UCHAR msg[256];
        pcre2_get_error_message(err, msg, sizeof msg);
        return lq_fail(LQ_ERR_FORMAT, "%s: pre-tokenizer regex at offset %zu: %s", path, (size_t)erroff,
                       (const char *)msg);
    }
    (void)pcre2_jit_compile(code, PCRE2_JIT_COMPLETE); /* optional speed-up; the interpreter is the fallback */
    char *src = strdup(re);
    if (!src) {
        pcre2_code_free(code);
        return lq_fail(LQ_ERR_NOMEM, "%s: out of memory", path);
    }
    t->re[t->n_re] = code;
    t->re_src[t->n_re] = src;
    t->n_re++;
    return LQ_OK;
}

lq_status tok_regex_error(const lq_tokenizer *t, const char *re_src, int rc, size_t at) {
    PCRE2_UCHAR msg[128];
    pcre2_get_error_message(rc, msg, sizeof msg);
    size_t n = strlen(re_src);
    return lq_fail(LQ_ERR_UNSUPPORTED, "%s: pre-tokenizer regex '%.*s%s' failed at byte %zu of the text it splits: %s",
                   t->src_path ? t->src_path : "tokenizer", (int)(n > 200 ? 200 : n), re_src, n > 200 ? "..." : "",
                   at, (const char *)msg);
}

/* ---- piece map ------------------------------------------------------------------------------ */

static uint32_t fnv1a32(const char *s, size_t n) {
    uint32_t h = 2166136261u;
    for (size_t i = 0; i < n; i++) {
        h ^= (unsigned char)s[i];
        h *= 16777619u;
    }
    return h;
}

int32_t tok_find(const lq_tokenizer *t, const char *s, size_t len) {
    if (!t->map) return -1;
    uint32_t i = fnv1a32(s, len) & t->map_mask;
    for (;;) {
        int32_t id = t->map[i];
        if (id < 0) return -1;
        if (t->piece_len[id] == len && memcmp(t->piece[id], s, len) == 0) return id;
        i = (i + 1) & t->map_mask;
    }
}

int tok_parse_byte_piece(const char *s, size_t len) {
    if (len != 6 || memcmp(s, "<0x", 3) != 0 || s[5] != '>') return -1;
    int v = 0;
    for (int i = 3; i < 5; i++) {
        char c = s[i];
        int d = (c >= '0' && c <= '9') ? c - '0' : (c >= 'A' && c <= 'F') ? c - 'A' + 10 : -1;
        if (d < 0) return -1;
        v = v * 16 + d;
    }
    return v;
}

static int cmp_special_len(const void *a, const void *b, void *ctx) {
    const lq_tokenizer *t = ctx;
    int32_t x = *(const int32_t *)a, y = *(const int32_t *)b;
    if (t->piece_len[x] != t->piece_len[y]) return t->piece_len[x] > t->piece_len[y] ? -1 : 1;
    return x < y ? -1 : x > y;
}

lq_status tok_finalize(lq_tokenizer *t, const char *path) {
    uint32_t cap = 16;
    while (cap < (uint32_t)t->n_vocab * 2u) cap <<= 1;
    t->map = malloc(cap * sizeof *t->map);
    t->special = malloc((size_t)t->n_vocab * sizeof *t->special);
    if (!t->map || !t->special) return lq_fail(LQ_ERR_NOMEM, "%s: out of memory", path);
    memset(t->map, 0xff, cap * sizeof *t->map);
    t->map_mask = cap - 1;
    for (int b = 0; b < 256; b++) t->byte_id[b] = -1;
    for (int32_t id = 0; id < t->n_vocab; id++) {
        if (!t->piece[id]) {
            /* ids no file entry named: an empty, unused slot */
            lq_status s = tok_set_piece(t, id, "", 0, 0.0f, TOK_TYPE_UNUSED, path);
            if (s != LQ_OK) return s;
        }
        if (t->piece_len[id] == 0) continue;
        /* duplicates keep the first id, as SentencePiece and HF do */
        if (tok_find(t, t->piece[id], t->piece_len[id]) >= 0) continue;
        uint32_t i = fnv1a32(t->piece[id], t->piece_len[id]) & t->map_mask;
        while (t->map[i] >= 0) i = (i + 1) & t->map_mask;
        t->map[i] = id;
        if (t->type[id] == TOK_TYPE_BYTE) {
            int b = tok_parse_byte_piece(t->piece[id], t->piece_len[id]);
            if (b >= 0 && t->byte_id[b] < 0) t->byte_id[b] = id;
        }
        /* matched verbatim with parse_special: the same set llama.cpp caches as special */
        if (t->type[id] == TOK_TYPE_CONTROL || t->type[id] == TOK_TYPE_USER_DEFINED || t->type[id] == TOK_TYPE_UNKNOWN)
            t->special[t->n_special++] = id;
    }
    qsort_r(t->special, (size_t)t->n_special, sizeof *t->special, cmp_special_len, t);

    /* GPT-2 bytes_to_unicode: printable Latin-1 bytes map to themselves, the other 68 bytes to
     * U+0100.. in byte order, so every byte has a visible, non-space code point. */
    for (int i = 0; i < 512; i++) t->cp_byte[i] = -1;
    int extra = 0;
    for (int b = 0; b < 256; b++) {
        bool keep = (b >= 33 && b <= 126) || (b >= 161 && b <= 172) || (b >= 174 && b <= 255);
        t->byte_cp[b] = (uint16_t)(keep ? b : 256 + extra++);
        t->cp_byte[t->byte_cp[b]] = (int16_t)b;
    }
    t->spm_word_split = true;
    for (int32_t id = 0; id < t->n_vocab && t->spm_word_split; id++) {
        int ty = t->type[id];
        if (ty != TOK_TYPE_NORMAL && ty != TOK_TYPE_USER_DEFINED && ty != TOK_TYPE_UNDEFINED) continue;
        const char *p = t->piece[id];
        for (uint32_t k = 1; k + 3 <= t->piece_len[id]; k++)
            if (memcmp(p + k, "\xe2\x96\x81", 3) == 0 && !(k >= 3 && memcmp(p + k - 3, "\xe2\x96\x81", 3) == 0)) {
                t->spm_word_split = false;
                break;
            }
    }
    if (t->bos >= t->n_vocab) t->bos = -1;
    if (t->eos >= t->n_vocab) t->eos = -1;
    if (t->unk >= t->n_vocab) t->unk = -1;
    return LQ_OK;
}

/* ---- merge table (byte-level BPE) ----------------------------------------------------------- */

lq_status tok_merges_reserve(lq_tokenizer *t, int64_t n, const char *path) {
    if (n < 0 || n > TOK_MAX_VOCAB * 4LL) return lq_fail(LQ_ERR_FORMAT, "%s: %lld merges out of range", path, (long long)n);
    uint32_t cap = 16;
    while (cap < (uint64_t)n * 2) cap <<= 1;
    t->merges = malloc(((size_t)n + 1) * sizeof *t->merges);
    t->mtab = malloc(cap * sizeof *t->mtab);
    if (!t->merges || !t->mtab) return lq_fail(LQ_ERR_NOMEM, "%s: out of memory", path);
    for (uint32_t i = 0; i < cap; i++) t->mtab[i].key = UINT64_MAX;
    t->mtab_mask = cap - 1;
    t->n_merges = 0;
    return LQ_OK;
}

static uint32_t hash64(uint64_t k) {
    k ^= k >> 33;
    k *= 0xff51afd7ed558ccdULL;
    k ^= k >> 33;
    return (uint32_t)k;
}

bool tok_merge_find(const lq_tokenizer *t, int32_t l, int32_t r, int32_t *rank, int32_t *id) {
    if (!t->mtab || l < 0 || r < 0) return false;
    uint64_t key = (uint64_t)(uint32_t)l << 32 | (uint32_t)r;
    for (uint32_t i = hash64(key) & t->mtab_mask;; i = (i + 1) & t->mtab_mask) {
        if (t->mtab[i].key == UINT64_MAX) return false;
        if (t->mtab[i].key == key) {
            *rank = t->mtab[i].rank;
            *id = t->mtab[i].id;
            return true;
        }
    }
}

lq_status tok_add_merge(lq_tokenizer *t, const char *l, size_t ll, const char *r, size_t rl,
                        const char *path, int64_t rank) {
    return tok_add_merge_ex(t, l, ll, r, rl, 0, false, path, rank);
}

lq_status tok_add_merge_ex(lq_tokenizer *t, const char *l, size_t ll, const char *r, size_t rl, size_t r_skip,
                           bool last_wins, const char *path, int64_t rank) {
    int32_t li = tok_find(t, l, ll), ri = tok_find(t, r, rl);
    if (r_skip > rl) r_skip = rl;
    char stack[256];
    char *cat = ll + rl <= sizeof stack ? stack : malloc(ll + rl);
    if (!cat) return lq_fail(LQ_ERR_NOMEM, "%s: out of memory", path);
    memcpy(cat, l, ll);
    memcpy(cat + ll, r + r_skip, rl - r_skip);
    int32_t mi = tok_find(t, cat, ll + rl - r_skip);
    if (cat != stack) free(cat);
    if (li < 0 || ri < 0 || mi < 0)
        return lq_fail(LQ_ERR_FORMAT, "%s: merge %lld ('%.*s' '%.*s'): a piece is not in the vocabulary", path,
                       (long long)rank, (int)(ll > 64 ? 64 : ll), l, (int)(rl > 64 ? 64 : rl), r);
    if ((uint64_t)(t->n_merges + 1) * 2 > (uint64_t)t->mtab_mask + 1)
        return lq_fail(LQ_ERR_FORMAT, "%s: more merges than declared", path);
    uint64_t key = (uint64_t)(uint32_t)li << 32 | (uint32_t)ri;
    uint32_t i = hash64(key) & t->mtab_mask;
    while (t->mtab[i].key != UINT64_MAX && t->mtab[i].key != key) i = (i + 1) & t->mtab_mask;
    /* a repeated pair keeps its first rank (llama.cpp), or its last (`tokenizers` builds a map) */
    if (t->mtab[i].key == key && !last_wins) return LQ_OK;
    t->mtab[i] = (tok_merge_slot){key, (int32_t)t->n_merges, mi};
    t->merges[t->n_merges][0] = li;
    t->merges[t->n_merges][1] = ri;
    t->n_merges++;
    return LQ_OK;
}

/* ---- small containers ----------------------------------------------------------------------- */

bool tok_ids_push(tok_ids *a, int32_t id) {
    if (a->n == a->cap) {
        int64_t nc = a->cap ? a->cap * 2 : 256;
        int32_t *v = realloc(a->v, (size_t)nc * sizeof *v);
        if (!v) return false;
        a->v = v;
        a->cap = nc;
    }
    a->v[a->n++] = id;
    return true;
}

/* true if a should pop before b */
static bool bigram_before(const tok_bigram *a, const tok_bigram *b) {
    return a->score > b->score || (a->score == b->score && a->left < b->left);
}

bool tok_heap_push(tok_heap *h, tok_bigram b) {
    if (h->n == h->cap) {
        int64_t nc = h->cap ? h->cap * 2 : 64;
        tok_bigram *v = realloc(h->v, (size_t)nc * sizeof *v);
        if (!v) return false;
        h->v = v;
        h->cap = nc;
    }
    int64_t i = h->n++;
    while (i > 0) {
        int64_t p = (i - 1) / 2;
        if (!bigram_before(&b, &h->v[p])) break;
        h->v[i] = h->v[p];
        i = p;
    }
    h->v[i] = b;
    return true;
}

bool tok_heap_pop(tok_heap *h, tok_bigram *out) {
    if (h->n == 0) return false;
    *out = h->v[0];
    tok_bigram last = h->v[--h->n];
    int64_t i = 0;
    for (;;) {
        int64_t c = 2 * i + 1;
        if (c >= h->n) break;
        if (c + 1 < h->n && bigram_before(&h->v[c + 1], &h->v[c])) c++;
        if (!bigram_before(&h->v[c], &last)) break;
        h->v[i] = h->v[c];
        i = c;
    }
    if (h->n > 0) h->v[i] = last;
    return true;
}

size_t tok_utf8_len(const unsigned char *s, size_t avail) {
    unsigned char c = s[0];
    size_t n = c < 0x80 ? 1 : (c >> 5) == 6 ? 2 : (c >> 4) == 14 ? 3 : (c >> 3) == 30 ? 4 : 1;
    if (n > avail) return 1;
    for (size_t i = 1; i < n; i++)
        if ((s[i] & 0xC0) != 0x80) return 1;
    return n;
}

/* ---- accessors ------------------------------------------------------------------------------ */

lq_tok_kind lq_tokenizer_kind(const lq_tokenizer *t) { return t->kind; }
int lq_tokenizer_vocab_size(const lq_tokenizer *t) { return t->n_vocab; }
int lq_tokenizer_bos(const lq_tokenizer *t) { return t->bos; }
int lq_tokenizer_eos(const lq_tokenizer *t) { return t->eos; }
bool lq_tokenizer_add_bos_default(const lq_tokenizer *t) { return t->add_bos && t->bos >= 0; }

const char *lq_tokenizer_piece(const lq_tokenizer *t, int id) {
    return (id >= 0 && id < t->n_vocab) ? t->piece[id] : NULL;
}

/* FNV-1a 64 over kind, vocabulary size, every piece (length-prefixed) and the merge pairs.
 * Scores and types are left out on purpose: the same vocabulary loaded from tokenizer.bin,
 * GGUF or tokenizer.json (where scores are derived from merge ranks) hashes the same. */
static uint64_t fnv_bytes(uint64_t h, const void *p, size_t n) {
    const unsigned char *b = p;
    for (size_t i = 0; i < n; i++) {
        h ^= b[i];
        h *= 1099511628211ULL;
    }
    return h;
}
static uint64_t fnv_u32(uint64_t h, uint32_t v) {
    unsigned char b[4] = {(unsigned char)v, (unsigned char)(v >> 8), (unsigned char)(v >> 16),
                          (unsigned char)(v >> 24)};
    return fnv_bytes(h, b, 4);
}

uint64_t lq_tokenizer_hash(const lq_tokenizer *t) {
    uint64_t h = 14695981039346656037ULL;
    h = fnv_u32(h, (uint32_t)t->kind);
    h = fnv_u32(h, (uint32_t)t->n_vocab);
    for (int32_t i = 0; i < t->n_vocab; i++) {
        h = fnv_u32(h, t->piece_len[i]);
        h = fnv_bytes(h, t->piece[i], t->piece_len[i]);
    }
    /* SPM vocabularies hash without merges: tokenizer.bin and GGUF have none, and the merges of
     * a tokenizer.json follow from the pieces' scores */
    int64_t nm = t->kind == LQ_TOK_SPM ? 0 : t->n_merges;
    h = fnv_u32(h, (uint32_t)nm);
    for (int64_t i = 0; i < nm; i++) {
        h = fnv_u32(h, (uint32_t)t->merges[i][0]);
        h = fnv_u32(h, (uint32_t)t->merges[i][1]);
    }
    return h;
}
