/* tok_save_gguf.c - a tokenizer's tokenizer.ggml.* pairs, as llama.cpp's converter writes them
 * (gguf-py vocab.py / convert_hf_to_gguf.py): SPM -> model "llama" with tokens, scores and
 * token types; byte-level BPE -> model "gpt2" with tokens, token types and merges ("a b" in rank
 * order); then the special ids and add_bos_token. The pre-tokenizer name is the caller's
 * (llama.cpp identifies it by hashing the tokenizer's output, which C cannot reproduce). */
#include "tok_internal.h"
#include "libquant/lq_gguf_write.h"

#include <stdlib.h>
#include <string.h>

static lq_status merges_kv(const lq_tokenizer *t, lq_gguf_writer *w) {
    char **s = calloc((size_t)(t->n_merges ? t->n_merges : 1), sizeof *s);
    if (!s) return lq_fail(LQ_ERR_NOMEM, "out of memory");
    lq_status st = LQ_OK;
    for (int64_t i = 0; i < t->n_merges && st == LQ_OK; i++) {
        int32_t l = t->merges[i][0], r = t->merges[i][1];
        size_t ll = t->piece_len[l], rl = t->piece_len[r];
        if (!(s[i] = malloc(ll + rl + 2))) {
            st = lq_fail(LQ_ERR_NOMEM, "out of memory");
            break;
        }
        memcpy(s[i], t->piece[l], ll);
        s[i][ll] = ' ';
        memcpy(s[i] + ll + 1, t->piece[r], rl);
        s[i][ll + rl + 1] = 0;
    }
    if (st == LQ_OK) st = lq_gguf_writer_kv_arr_str(w, "tokenizer.ggml.merges", (const char *const *)s, NULL, t->n_merges);
    for (int64_t i = 0; i < t->n_merges; i++) free(s[i]);
    free(s);
    return st;
}

lq_status lq_tokenizer_write_gguf(const lq_tokenizer *t, lq_gguf_writer *w, const char *pre, int bos, int eos) {
    bool spm = t->kind == LQ_TOK_SPM;
    int32_t *types = malloc((size_t)t->n_vocab * sizeof *types);
    size_t *lens = malloc((size_t)t->n_vocab * sizeof *lens);
    lq_status st = types && lens ? LQ_OK : lq_fail(LQ_ERR_NOMEM, "out of memory");
    for (int32_t i = 0; st == LQ_OK && i < t->n_vocab; i++) {
        types[i] = t->type[i] ? t->type[i] : TOK_TYPE_NORMAL;
        lens[i] = t->piece_len[i];
    }
    if (st == LQ_OK) st = lq_gguf_writer_kv_str(w, "tokenizer.ggml.model", spm ? "llama" : "gpt2");
    if (st == LQ_OK) st = lq_gguf_writer_kv_str(w, "tokenizer.ggml.pre", pre ? pre : "default");
    if (st == LQ_OK)
        st = lq_gguf_writer_kv_arr_str(w, "tokenizer.ggml.tokens", (const char *const *)t->piece, lens, t->n_vocab);
    if (st == LQ_OK && spm)
        st = lq_gguf_writer_kv_arr(w, "tokenizer.ggml.scores", LQ_GGUF_TYPE_FLOAT32, t->score, t->n_vocab);
    if (st == LQ_OK) st = lq_gguf_writer_kv_arr(w, "tokenizer.ggml.token_type", LQ_GGUF_TYPE_INT32, types, t->n_vocab);
    if (st == LQ_OK && !spm) st = merges_kv(t, w);
    if (bos < 0) bos = t->bos;
    if (eos < 0) eos = t->eos;
    if (st == LQ_OK && bos >= 0) st = lq_gguf_writer_kv_u32(w, "tokenizer.ggml.bos_token_id", (uint32_t)bos);
    if (st == LQ_OK && eos >= 0) st = lq_gguf_writer_kv_u32(w, "tokenizer.ggml.eos_token_id", (uint32_t)eos);
    if (st == LQ_OK && t->unk >= 0) st = lq_gguf_writer_kv_u32(w, "tokenizer.ggml.unknown_token_id", (uint32_t)t->unk);
    if (st == LQ_OK) st = lq_gguf_writer_kv_bool(w, "tokenizer.ggml.add_bos_token", t->add_bos);
    if (st == LQ_OK && spm && !t->add_space_prefix)
        st = lq_gguf_writer_kv_bool(w, "tokenizer.ggml.add_space_prefix", false);
    free(types);
    free(lens);
    return st;
}
