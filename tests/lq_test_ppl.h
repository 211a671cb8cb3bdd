/* lq_test_ppl.h - the perplexity the calibration suites compare: a checkpoint scored per story on
 * the shared TinyStories sample (the llama2.c reference protocol), with the tokenizer of tok_dir
 * (compressed outputs may carry none). Criterion suites only: it asserts on failure. */
#ifndef LQ_TEST_PPL_H
#define LQ_TEST_PPL_H

#include <criterion/criterion.h>
#include <stdlib.h>

#include "libquant/lq_model.h"
#include "lq_eval.h"
#include "lq_test_util.h"

static inline lq_ppl_result lq_test_story_score(const char *dir, const char *tok_dir) {
    lq_model *m;
    cr_assert_eq(lq_model_load(dir, &m), LQ_OK, "%s", lq_last_error());
    lq_tokenizer *tok;
    cr_assert_eq(lq_eval_load_tokenizer(m, tok_dir, NULL, &tok), LQ_OK, "%s", lq_last_error());
    char path[1024];
    size_t len = 0;
    char *text = lq_test_read_file(lq_test_shared("data/tinystories_sample.txt", path, sizeof path), &len);
    lq_ppl_opts o = {.per_line = true, .separator = "<|endoftext|>"};
    lq_ppl_result r;
    cr_assert_eq(lq_eval_perplexity(m, tok, NULL, text, len, &o, &r), LQ_OK, "%s", lq_last_error());
    free(text);
    lq_tokenizer_free(tok);
    lq_model_free(m);
    return r;
}

static inline double lq_test_story_ppl(const char *dir, const char *tok_dir) {
    return lq_test_story_score(dir, tok_dir).ppl;
}

#endif
