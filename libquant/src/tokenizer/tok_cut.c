/* tok_cut.c - lq_tokenizer_safe_cut: where a long text can be cut so that encoding it piece by
 * piece gives exactly the ids of encoding it whole (quant-distill's chunked mode).
 *
 * Why each rule holds (the cut is at c; L = text[0..c), R = the rest):
 *   SPM merges adjacent symbols into a vocabulary piece. If no piece could span the cut, the
 *   merges left and right of it never interact; each side's merges come off the heap in the
 *   same relative order (score, then position, and positions on one side keep their order),
 *   so each side ends as it would alone. Byte fallback is per symbol. The only other
 *   non-local step is the dummy prefix, which lq_tokenizer_encode_next leaves out.
 *     - word rule: with spm_word_split no mergeable piece holds "▁" after a non-"▁"
 *       character, so no piece spans "x|▁" (x != "▁").
 *     - newline rule: a piece spanning "\n|y" would hold "\n" before its last byte.
 *   GPT-2's pre-tokenizer ('s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|
 *   \s+(?!\S)|\s+) has no look-behind, so matches from c on depend only on R; at " y" (y
 *   printable) the space starts a match in both scans. Left of c: no match holds a non-space
 *   followed by a space, so a match ending in a non-space ends at c; a whitespace run w ending
 *   at c is matched, in the whole text, by \s+(?!\S) up to c (backtracking off the space of
 *   " y"), and, at the end of L alone, by \s+(?!\S) whole: the same pre-token. BPE then runs
 *   per pre-token.
 *   tokenizer.json pipelines: only the two layouts above qualify (tok_hf_cut_rules), and a
 *   character the vocabulary lacks must not sit next to the cut: the library holds an unknown
 *   character back until the next known one (fuse_unk joins them), so the cut character ("▁" /
 *   "\n") must itself be a vocabulary piece. */
#include "tok_hf.h"

#include <string.h>

/* No piece holds a newline before its last byte (so none spans "\n|y"). */
static bool no_newline_inside(const lq_tokenizer *t) {
    for (int32_t id = 0; id < t->n_vocab; id++) {
        uint32_t n = t->piece_len[id];
        if (n > 1 && memchr(t->piece[id], '\n', n - 1)) return false;
    }
    return true;
}

static bool printable_ascii(unsigned char ch) { return ch >= 0x21 && ch <= 0x7E; }

size_t lq_tokenizer_safe_cut(const lq_tokenizer *t, const char *text, size_t len) {
    if (!t || !text || len < 2) return 0;
    bool hf_words_ok = true, hf_lines_ok = true;
    if (t->hf && !tok_hf_cut_rules(t, &hf_words_ok, &hf_lines_ok)) return 0;
    if (t->kind == LQ_TOK_SPM) {
        bool words = t->spm_word_split && hf_words_ok, lines = hf_lines_ok && no_newline_inside(t);
        for (size_t c = len - 1; c >= 1; c--) {
            /* the character before must not be "▁" itself (literal U+2581 in the text) */
            if (words && text[c] == ' ' && text[c - 1] != ' ' &&
                !(c >= 3 && memcmp(text + c - 3, "\xe2\x96\x81", 3) == 0))
                return c;
            if (lines && text[c - 1] == '\n') return c;
        }
        return 0;
    }
    if (!t->hf && (t->n_re != 1 || strcmp(t->re_src[0], tok_re_gpt2) != 0)) return 0;
    for (size_t c = len - 2; c >= 1; c--)
        if (text[c] == ' ' && printable_ascii((unsigned char)text[c + 1])) return c;
    return 0;
}
