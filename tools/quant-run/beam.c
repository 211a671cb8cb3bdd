/* beam.c - quant-run --beams N (run_beam.h). Beam search scores raw log-probabilities: its
 * tokens are listed with "logprob" only. */
#include "run_beam.h"
#include "run_output.h"

#include "lq_eval.h"
#include "tool_cli.h"
#include "tool_model.h"

#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>

static bool hyp_log(const lq_tokenizer *tok, int32_t prev, const lq_beam_hyp *h,
                    tool_tok_log *l) {
    for (int i = 0; i < h->n; i++) {
        char piece[256];
        size_t k = 0;
        /* the stop token ends the text: it is listed with its log-probability, but no bytes */
        if (!(h->finished && i == h->n - 1)) {
            k = lq_tokenizer_decode_token(tok, prev, h->tokens[i], piece, sizeof piece);
            if (k > sizeof piece) k = sizeof piece;
        }
        if (!tool_log_push(l, h->tokens[i], h->logprobs[i], h->logprobs[i], piece, k)) return false;
        prev = h->tokens[i];
    }
    return true;
}

int tool_beam_run(const tool_sample_args *dec, int max_tokens, bool json, const lq_model *m,
                  lq_pool *pool, const lq_tokenizer *tok, const int32_t *ids, int n,
                  const char *prompt, size_t plen) {
    int32_t stop[2] = {lq_tokenizer_eos(tok), lq_tokenizer_bos(tok)};
    lq_beam_opts o = {.n_beams = dec->beams, .n_best = dec->n_best,
                      .length_penalty = dec->length_penalty, .max_new = max_tokens,
                      .stop_ids = stop, .n_stop = 2, .vocab = lq_tokenizer_vocab_size(tok)};
    lq_beam_result r;
    lq_status s = lq_beam_search(m, pool, ids, n, &o, &r);
    if (s != LQ_OK) return tool_fail(s);
    int rc = 0;
    tool_tok_log *logs = calloc((size_t)(r.n_hyps > 0 ? r.n_hyps : 1), sizeof *logs);
    if (!logs) {
        rc = tool_fail(lq_fail(LQ_ERR_NOMEM, "out of memory for %d hypotheses", r.n_hyps));
        goto done;
    }
    for (int h = 0; h < r.n_hyps; h++)
        if (!hyp_log(tok, ids[n - 1], &r.hyps[h], &logs[h])) {
            rc = tool_fail(lq_fail(LQ_ERR_NOMEM, "out of memory for the hypotheses' text"));
            goto done;
        }
    double fps = r.decode_s > 0 ? (double)r.n_forward / r.decode_s : 0;
    double pps = r.prefill_s > 0 ? (double)r.n_prompt / r.prefill_s : 0;
    int best_n = r.n_hyps > 0 ? r.hyps[0].n - (r.hyps[0].finished ? 1 : 0) : 0;
    if (json) {
        json_t *j = json_object();
        json_object_set_new(j, "mode", json_string("beam"));
        json_t *p = json_object();
        json_object_set_new(p, "beams", json_integer(dec->beams));
        json_object_set_new(p, "n_best", json_integer(dec->n_best));
        json_object_set_new(p, "length_penalty", tool_json_float(dec->length_penalty));
        json_object_set_new(j, "params", p);
        json_object_set_new(j, "prompt", tool_json_text(prompt, plen, NULL));
        json_object_set_new(j, "prompt_tokens", json_integer(n));
        json_t *hs = json_array();
        for (int h = 0; h < r.n_hyps; h++) {
            const lq_beam_hyp *y = &r.hyps[h];
            json_t *o1 = json_object();
            json_object_set_new(o1, "text", tool_json_text(logs[h].text, logs[h].len, NULL));
            json_object_set_new(o1, "n_tokens", json_integer(y->n));
            json_object_set_new(o1, "logprob_sum", json_real(y->logprob_sum));
            json_object_set_new(o1, "score", json_real(y->score));
            json_object_set_new(o1, "stop", json_string(tool_stop_reason(y->finished, y->n,
                                                                    max_tokens)));
            json_object_set_new(o1, "tokens", tool_log_json(&logs[h], false));
            if (h == 0) { /* the best one also at the top level, as in the other modes */
                json_object_set_new(j, "text", tool_json_text(logs[h].text, logs[h].len, NULL));
                json_object_set_new(j, "n_generated", json_integer(best_n));
                json_object_set_new(j, "stop", json_string(tool_stop_reason(y->finished, y->n,
                                                                       max_tokens)));
                json_object_set_new(j, "logprob_sum", json_real(y->logprob_sum));
                json_object_set_new(j, "tokens", tool_log_json(&logs[h], false));
            }
            json_array_append_new(hs, o1);
        }
        json_object_set_new(j, "hypotheses", hs);
        json_object_set_new(j, "tokens_per_second", json_real(fps));
        json_object_set_new(j, "prefill_tokens_per_second", json_real(pps));
        if (!tool_print_json(j)) {
            rc = tool_error(1, "cannot format the JSON output");
            goto done;
        }
    } else {
        tool_out_state out = {0};
        for (int h = 0; h < r.n_hyps; h++) {
            if (r.n_hyps > 1) { /* a header per hypothesis only when there are several */
                char head[160];
                int k = snprintf(head, sizeof head,
                                 "%s--- hypothesis %d: score %.4f, log-prob %.4f, %d tokens%s ---\n",
                                 h > 0 ? "\n" : "", h + 1, r.hyps[h].score,
                                 r.hyps[h].logprob_sum, r.hyps[h].n,
                                 r.hyps[h].finished ? " (eos)" : "");
                tool_out_write(&out, head, (size_t)k);
            }
            tool_out_write(&out, prompt, plen);
            tool_out_write(&out, logs[h].text, logs[h].len);
            if (out.bytes > 0 && out.last != '\n') tool_out_write(&out, "\n", 1);
        }
    }
    if ((rc = tool_finish_stdout()) != 0) goto done;
    fprintf(stderr, "%d tokens, %d beams: %lld forwards at %.2f tok/s (prefill %.2f tok/s)\n",
            best_n, dec->beams, (long long)r.n_forward, fps, pps);
done:
    for (int h = 0; logs && h < r.n_hyps; h++) tool_log_free(&logs[h]);
    free(logs);
    lq_beam_result_free(&r);
    return rc;
}
