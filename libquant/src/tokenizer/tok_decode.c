/* tok_decode.c - ids back to text.
 *
 * SPM: "▁" -> " ", <0xNN> -> the byte, the dummy-prefix space of the first piece (at the start
 * or right after BOS) is dropped, so decode(encode(x)) == x. Byte-level: each code point of the
 * piece maps back to its byte. Both: control tokens (BOS/EOS, <|endoftext|>) decode to nothing,
 * as llama.cpp's token_to_piece does without `special`; user-defined added tokens decode to
 * their text; the unknown token decodes to " ⁇ " like SentencePiece.
 */
#include "tok_internal.h"

#include <stdlib.h>
#include <string.h>

static size_t put(char *buf, size_t cap, size_t n, const char *s, size_t len) {
    if (n < cap) memcpy(buf + n, s, (cap - n < len) ? cap - n : len);
    return n + len;
}

static size_t decode_spm(const lq_tokenizer *t, int prev, int id, char *buf, size_t cap) {
    const char *p = t->piece[id];
    size_t len = t->piece_len[id], n = 0;
    bool strip = t->add_space_prefix && (prev < 0 || prev == t->bos);
    for (size_t i = 0; i < len;) {
        if (len - i >= 3 && memcmp(p + i, "\xe2\x96\x81", 3) == 0) {
            if (!(strip && i == 0)) n = put(buf, cap, n, " ", 1);
            i += 3;
        } else {
            n = put(buf, cap, n, p + i, 1);
            i++;
        }
    }
    return n;
}

static size_t decode_bytes(const lq_tokenizer *t, int id, char *buf, size_t cap) {
    const unsigned char *p = (const unsigned char *)t->piece[id];
    size_t len = t->piece_len[id], n = 0;
    for (size_t i = 0; i < len;) {
        size_t cl = tok_utf8_len(p + i, len - i);
        unsigned cp = cl == 1 ? p[i] : cl == 2 ? ((p[i] & 0x1Fu) << 6 | (p[i + 1] & 0x3Fu)) : 0x10000;
        if (cp < 512 && t->cp_byte[cp] >= 0 && (cl > 1 || cp < 0x80)) {
            char b = (char)t->cp_byte[cp];
            n = put(buf, cap, n, &b, 1);
        } else {
            n = put(buf, cap, n, (const char *)p + i, cl); /* not a mapped byte: keep as is */
        }
        i += cl;
    }
    return n;
}

size_t lq_tokenizer_decode_token(const lq_tokenizer *t, int prev, int id, char *buf, size_t cap) {
    if (id < 0 || id >= t->n_vocab) return 0;
    switch (t->type[id]) {
    case TOK_TYPE_CONTROL:
    case TOK_TYPE_UNUSED: return 0;
    case TOK_TYPE_UNKNOWN: return put(buf, cap, 0, " \xe2\x81\x87 ", 5);
    case TOK_TYPE_USER_DEFINED: return put(buf, cap, 0, t->piece[id], t->piece_len[id]);
    case TOK_TYPE_BYTE: {
        int b = tok_parse_byte_piece(t->piece[id], t->piece_len[id]);
        if (b >= 0) {
            char c = (char)b;
            return put(buf, cap, 0, &c, 1);
        }
        break;
    }
    default: break;
    }
    return t->kind == LQ_TOK_SPM ? decode_spm(t, prev, id, buf, cap) : decode_bytes(t, id, buf, cap);
}

lq_status lq_tokenizer_decode(const lq_tokenizer *t, const int32_t *ids, int64_t n, char **out) {
    *out = NULL;
    size_t cap = 64, len = 0;
    char *s = malloc(cap);
    if (!s) return lq_fail(LQ_ERR_NOMEM, "tokenizer: out of memory");
    int prev = -1;
    for (int64_t i = 0; i < n; i++) {
        if (ids[i] < 0 || ids[i] >= t->n_vocab) {
            free(s);
            return lq_fail(LQ_ERR_INVALID_ARG, "lq_tokenizer_decode: id %d at position %lld out of range [0, %d)",
                           ids[i], (long long)i, t->n_vocab);
        }
        size_t need = lq_tokenizer_decode_token(t, prev, ids[i], NULL, 0);
        if (len + need + 1 > cap) {
            while (len + need + 1 > cap) cap *= 2;
            char *ns = realloc(s, cap);
            if (!ns) {
                free(s);
                return lq_fail(LQ_ERR_NOMEM, "tokenizer: out of memory");
            }
            s = ns;
        }
        len += lq_tokenizer_decode_token(t, prev, ids[i], s + len, cap - len);
        prev = ids[i];
    }
    s[len] = 0;
    *out = s;
    return LQ_OK;
}
