/* lq_tokenizer.h - SentencePiece-style BPE (byte fallback) and byte-level BPE tokenizers.
 *
 * Two algorithms behind one opaque object:
 *   - LQ_TOK_SPM: Llama 1/2 family. Text gets the "▁" dummy prefix, spaces become "▁", pieces
 *     are merged by highest score; characters outside the vocabulary fall back to <0xNN> bytes.
 *     Loaded from llama2.c tokenizer.bin, HF tokenizer.json (model.type BPE, byte_fallback) or a
 *     GGUF vocab (tokenizer.ggml.model = "llama").
 *   - LQ_TOK_BPE_BYTES: GPT-2 / Llama 3 / Qwen / SmolLM. Text is split by the pre-tokenizer regex
 *     (PCRE2, Unicode classes), bytes are mapped to printable code points, pieces merged by merge
 *     rank. Loaded from HF tokenizer.json (ByteLevel pre-tokenizer) or GGUF (model = "gpt2").
 * Special / added tokens (e.g. "<|endoftext|>") are matched verbatim before the model runs when
 * `parse_special` is set.
 */
#ifndef LQ_TOKENIZER_H
#define LQ_TOKENIZER_H

#include <stddef.h>
#include <stdint.h>
#include <stdbool.h>
#include "lq_status.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef enum lq_tok_kind {
    LQ_TOK_SPM = 0,
    LQ_TOK_BPE_BYTES = 1,
} lq_tok_kind;

typedef struct lq_tokenizer lq_tokenizer;

/* llama2.c tokenizer.bin: int32 max_token_length, then per token: f32 score, int32 len, bytes.
 * vocab_size comes from the model header (the file does not store it); ids 0/1/2 are
 * <unk>/<s>/</s>. */
lq_status lq_tokenizer_load_llama2c(const char *path, int vocab_size, lq_tokenizer **out);
/* Hugging Face tokenizer.json (SPM-style BPE with byte_fallback, or ByteLevel BPE). */
lq_status lq_tokenizer_load_hf_json(const char *path, lq_tokenizer **out);
/* Vocabulary of a GGUF file (tokenizer.ggml.* keys); tensors are ignored. */
lq_status lq_tokenizer_load_gguf(const char *path, lq_tokenizer **out);
/* A model directory: tokenizer.json inside it. */
lq_status lq_tokenizer_load_dir(const char *dir, lq_tokenizer **out);
void lq_tokenizer_free(lq_tokenizer *t);
/* Copy `len` bytes that may not be UTF-8 (a byte-fallback piece can be half a character) into
 * `out` (room for 3 * len bytes) as valid UTF-8: each byte that does not start a valid sequence
 * (no overlongs, no surrogates, nothing above U+10FFFF) becomes U+FFFD. Returns the bytes
 * written; *lossy (may be NULL) tells whether any byte was replaced. */
size_t lq_utf8_repair(const char *in, size_t len, char *out, bool *lossy);

/* The tokenizer that goes with a model of `vocab_size` tokens: `tok_path` if given (".json": HF
 * tokenizer.json, ".gguf": GGUF vocab, else llama2.c tokenizer.bin sized by vocab_size), else
 * tokenizer.json inside the model directory. A llama2.c .bin model without tok_path is
 * LQ_ERR_INVALID_ARG; a tokenizer whose ids do not fit vocab_size is LQ_ERR_MISMATCH. */
lq_status lq_tokenizer_load_for_model(const char *model_path, const char *tok_path, int vocab_size,
                                      lq_tokenizer **out);

lq_tok_kind lq_tokenizer_kind(const lq_tokenizer *t);
int lq_tokenizer_vocab_size(const lq_tokenizer *t);
int lq_tokenizer_bos(const lq_tokenizer *t); /* -1 if none */
int lq_tokenizer_eos(const lq_tokenizer *t); /* -1 if none */
/* Whether the model expects BOS first (SPM Llama: yes; GPT-2: no). */
bool lq_tokenizer_add_bos_default(const lq_tokenizer *t);
/* Stable 64-bit hash (FNV-1a) of the vocabulary and merges: identifies a tokenizer in files. */
uint64_t lq_tokenizer_hash(const lq_tokenizer *t);

/* Encode `len` bytes of UTF-8 text. Writes at most `cap` ids to `out`, stores the full count in
 * *n_out (so a caller can size the buffer with cap = 0 first). add_bos prepends BOS;
 * parse_special recognizes added/special tokens in the text. Returns LQ_ERR_INVALID_ARG if
 * cap was too small (ids are truncated, *n_out is the needed size). */
lq_status lq_tokenizer_encode(const lq_tokenizer *t, const char *text, size_t len, bool add_bos,
                              bool parse_special, int32_t *out, int64_t cap, int64_t *n_out);

/* Streaming a long text in bounded memory (additive; used by quant-distill's chunked mode).
 *
 * lq_tokenizer_safe_cut: the largest c in [1, len) such that, for EVERY continuation R of
 * text[0..c), encoding text[0..c) + R (without parse_special) gives the ids of text[0..c)
 * followed by lq_tokenizer_encode_next(R): no merge or pre-token crosses the cut, and nothing
 * at the cut depends on what follows. 0 when the text holds no such position. The next byte,
 * text[c], is always inside the text (the rules look at it). Rules, each proven on the
 * algorithm (docs/DISTILL_FORMAT.md):
 *   - SPM, when no mergeable piece has "▁" after another character (merges stay inside
 *     words): before a space that follows a non-space;
 *   - SPM, when no piece has a newline before its last byte: after a newline;
 *   - byte-level BPE with exactly GPT-2's pre-tokenizer regex: before an ASCII space followed
 *     by a printable ASCII character (the space starts the next pre-token, and a whitespace run
 *     before it ends the same way whether or not more text follows).
 * Other tokenizers (custom regexes) get 0: callers then keep more text together. */
size_t lq_tokenizer_safe_cut(const lq_tokenizer *t, const char *text, size_t len);

/* Encode text that continues earlier text at a safe cut: as lq_tokenizer_encode without BOS
 * and without parse_special, but without the SPM dummy prefix at its start. */
lq_status lq_tokenizer_encode_next(const lq_tokenizer *t, const char *text, size_t len,
                                   int32_t *out, int64_t cap, int64_t *n_out);

/* Encode a whole text (parse_special off) into a malloc'd array *ids of *n ids (free() it),
 * giving exactly the ids of one lq_tokenizer_encode call, but in segments of about `segment`
 * bytes cut at lq_tokenizer_safe_cut positions so the tokenizer's scratch stays that of one
 * segment (a 50 MB line in one call: 2.2 GB). Where a window of text holds no safe cut it
 * doubles, so a tokenizer without safe cuts gets the whole text in one call. */
lq_status lq_tokenizer_encode_long(const lq_tokenizer *t, const char *text, size_t len, bool add_bos,
                                   size_t segment, int32_t **ids, int64_t *n);

/* Bytes of one token as it appears in decoded text ("▁" -> " ", <0x0A> -> "\n", byte-level
 * code points -> bytes). `prev` is the previous token id or -1: SPM drops the dummy-prefix
 * space of the first piece after BOS. Returns the length, writes at most cap bytes (no NUL). */
size_t lq_tokenizer_decode_token(const lq_tokenizer *t, int prev, int id, char *buf, size_t cap);
/* Decode a sequence to a NUL-terminated string; caller frees *out. Incomplete UTF-8 is kept. */
lq_status lq_tokenizer_decode(const lq_tokenizer *t, const int32_t *ids, int64_t n, char **out);

/* Raw piece text of a token id as the vocabulary stores it (NULL if out of range). */
const char *lq_tokenizer_piece(const lq_tokenizer *t, int id);

/* Write an HF tokenizer.json equivalent to this tokenizer (used by quant-convert). */
lq_status lq_tokenizer_save_hf_json(const lq_tokenizer *t, const char *path);

/* Add this tokenizer's tokenizer.ggml.* pairs to a GGUF writer (lq_gguf_write.h) as llama.cpp's
 * converter writes them; `pre` is tokenizer.ggml.pre (NULL: "default"), bos/eos override the
 * tokenizer's ids when >= 0 (config.json's). */
struct lq_gguf_writer;
lq_status lq_tokenizer_write_gguf(const lq_tokenizer *t, struct lq_gguf_writer *w, const char *pre, int bos,
                                  int eos);

#ifdef __cplusplus
}
#endif
#endif
