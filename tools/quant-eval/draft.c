/* draft.c - quant-eval --draft-eval BASELINE (run_draft.h). */
#include "run_draft.h"

#include "tool_cli.h"
#include "tool_model.h"
#include "tool_progress.h"

#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>

int tool_draft_eval_run(const tool_draft_args *a, const lq_model *m, lq_pool *pool) {
    lq_model *base = NULL;
    lq_tokenizer *btok = NULL, *tok = NULL;
    char *text = NULL;
    size_t len = 0;
    int rc = tool_load_model(a->baseline, a->base_tokenizer ? a->base_tokenizer : a->tokenizer,
                             &base, &btok);
    if (rc) return rc;
    lq_status s = lq_eval_load_tokenizer(m, a->model, a->tokenizer, &tok);
    if (s == LQ_OK) s = lq_text_read_file(a->file, &text, &len);
    if (s != LQ_OK) {
        rc = tool_fail(s);
        goto done;
    }
    if (len == 0) {
        rc = tool_error(2, "%s: the file is empty", a->file);
        goto done;
    }
    lq_draft_eval_result r;
    tool_progress bar;
    tool_progress_begin(&bar, "draft-eval", 1, !a->json);
    lq_draft_eval_opts o = a->opts;
    o.chunks.progress = tool_progress_cb;
    o.chunks.progress_user = &bar;
    s = lq_eval_draft(base, btok, m, tok, pool, text, len, &o, &r);
    tool_progress_end(&bar);
    if (s != LQ_OK) {
        rc = tool_error(tool_exit_code(s), "%s: %s", a->file, lq_last_error());
        goto done;
    }
    if (a->json) {
        json_t *j = json_object();
        json_object_set_new(j, "model", json_string(a->model));
        json_object_set_new(j, "baseline", json_string(a->baseline));
        json_object_set_new(j, "file", json_string(a->file));
        json_object_set_new(j, "chunks", json_integer(r.n_chunks));
        json_object_set_new(j, "draft_max", json_integer(a->opts.draft_max));
        json_object_set_new(j, "n_prompt", json_integer(a->opts.n_prompt));
        json_object_set_new(j, "n_gen", json_integer(a->opts.n_gen));
        json_object_set_new(j, "generated", json_integer(r.n_generated));
        json_object_set_new(j, "drafted", json_integer(r.n_drafted));
        json_object_set_new(j, "accepted", json_integer(r.n_accepted));
        json_object_set_new(j, "judged", json_integer(r.n_judged));
        json_object_set_new(j, "target_forwards", json_integer(r.n_cycles));
        json_object_set_new(j, "acceptance_rate", json_real(r.accept_rate));
        json_object_set_new(j, "acceptance_per_position", json_real(r.accept_pos));
        json_object_set_new(j, "alpha", json_real(r.alpha));
        json_object_set_new(j, "mean_accepted_length", json_real(r.mean_accepted));
        json_object_set_new(j, "seconds", json_real(r.seconds));
        if (!tool_print_json(j)) rc = tool_error(1, "cannot format the JSON output");
    } else {
        printf("model: %s\nbaseline (target): %s\n", a->model, a->baseline);
        printf("%lld chunks: %d-token prompts, %d greedy tokens each, draft-max %d\n",
               (long long)r.n_chunks, a->opts.n_prompt, a->opts.n_gen, a->opts.draft_max);
        printf("acceptance rate:        %6.2f %% (%lld of %lld drafted)\n", 100.0 * r.accept_rate,
               (long long)r.n_accepted, (long long)r.n_drafted);
        printf("per-position agreement: %6.2f %% (%lld of %lld judged)\n", 100.0 * r.accept_pos,
               (long long)r.n_accepted, (long long)r.n_judged);
        printf("alpha (sum min(p, q)):  %8.4f\n", r.alpha);
        printf("mean accepted length:   %8.3f per target forward (%lld forwards)\n",
               r.mean_accepted, (long long)r.n_cycles);
        printf("time: %.1f s\n", r.seconds);
    }
done:
    free(text);
    lq_tokenizer_free(tok);
    lq_tokenizer_free(btok);
    lq_model_free(base);
    return rc;
}
