/* tok_load_llama2c.c - llama2.c tokenizer.bin: int32 max_token_length, then for each of
 * vocab_size tokens: f32 score, int32 len, len bytes. Pieces store ' ' where SentencePiece has
 * "▁"; we turn them back into "▁" so all SPM loaders share one representation. */
#include "tok_internal.h"
#include "libquant/lq_file.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

lq_status lq_tokenizer_load_llama2c(const char *path, int vocab_size, lq_tokenizer **out) {
    *out = NULL;
    if (vocab_size <= 0 || vocab_size > TOK_MAX_VOCAB)
        return lq_fail(LQ_ERR_INVALID_ARG, "%s: vocab_size %d out of range", path, vocab_size);
    FILE *f;
    LQ_TRY(lq_file_fopen_input(path, &f));
    lq_tokenizer *t = NULL;
    char *raw = NULL, *norm = NULL;
    lq_status st = tok_new(LQ_TOK_SPM, vocab_size, path, &t);
    int32_t max_len;
    if (st == LQ_OK && fread(&max_len, 4, 1, f) != 1)
        st = lq_fail(LQ_ERR_FORMAT, "%s: truncated header (no max_token_length)", path);
    if (st == LQ_OK && (max_len <= 0 || max_len > (1 << 20)))
        st = lq_fail(LQ_ERR_FORMAT, "%s: max_token_length %d out of range", path, max_len);
    if (st == LQ_OK) {
        raw = malloc((size_t)max_len + 1);
        norm = malloc(3 * (size_t)max_len + 1);
        if (!raw || !norm) st = lq_fail(LQ_ERR_NOMEM, "%s: out of memory", path);
    }
    for (int i = 0; st == LQ_OK && i < vocab_size; i++) {
        float score;
        int32_t len;
        if (fread(&score, 4, 1, f) != 1 || fread(&len, 4, 1, f) != 1) {
            st = lq_fail(LQ_ERR_FORMAT, "%s: truncated at token %d of %d", path, i, vocab_size);
            break;
        }
        if (len < 0 || len > max_len) {
            st = lq_fail(LQ_ERR_FORMAT, "%s: token %d: length %d outside [0, max_token_length=%d]", path, i, len,
                         max_len);
            break;
        }
        if (fread(raw, 1, (size_t)len, f) != (size_t)len) {
            st = lq_fail(LQ_ERR_FORMAT, "%s: truncated in the text of token %d of %d", path, i, vocab_size);
            break;
        }
        /* llama2.c's export stores BOS/EOS as "\n<s>\n" / "\n</s>\n": use the SentencePiece text */
        int32_t k0 = 0;
        if ((i == 1 || i == 2) && len >= 2 && raw[0] == '\n' && raw[len - 1] == '\n') {
            k0 = 1;
            len--;
        }
        size_t n = 0;
        for (int32_t k = k0; k < len; k++) {
            if (raw[k] == ' ') {
                memcpy(norm + n, "\xe2\x96\x81", 3);
                n += 3;
            } else {
                norm[n++] = raw[k];
            }
        }
        /* llama2.c files carry no token types: ids 0/1/2 are <unk>/<s>/</s> by construction,
         * <0xNN> pieces are the byte-fallback tokens */
        int type = i == 0 ? TOK_TYPE_UNKNOWN : (i == 1 || i == 2) ? TOK_TYPE_CONTROL
                 : tok_parse_byte_piece(norm, n) >= 0 ? TOK_TYPE_BYTE : TOK_TYPE_NORMAL;
        st = tok_set_piece(t, i, norm, n, score, type, path);
    }
    fclose(f);
    free(raw);
    free(norm);
    if (st == LQ_OK) {
        t->unk = 0;
        t->bos = vocab_size > 1 ? 1 : -1;
        t->eos = vocab_size > 2 ? 2 : -1;
        t->add_bos = true;
        t->add_space_prefix = true;
        st = tok_finalize(t, path);
    }
    if (st != LQ_OK) {
        lq_tokenizer_free(t);
        return st;
    }
    *out = t;
    return LQ_OK;
}
