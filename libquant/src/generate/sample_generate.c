/* sample_generate.c - the decode loop for sampling: prefill once, then one lq_sampler_sample
 * and one one-token forward per generated token. Greedy is the sampler at temperature 0, so
 * this loop serves every strategy but beam search (beam.c). */
#include "libquant/lq_sample.h"

#include <stdlib.h>
#include <time.h>

static double now_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static bool is_stop(const lq_sample_gen_opts *o, int32_t id) {
    for (int i = 0; i < o->n_stop; i++)
        if (o->stop_ids[i] == id) return true;
    return false;
}

lq_status lq_sample_generate(const lq_model *m, lq_session *s, lq_sampler *smp,
                             const int32_t *prompt, int n_prompt, const lq_sample_gen_opts *o,
                             lq_sample_token_fn cb, void *user, lq_sample_gen_result *out) {
    lq_sample_gen_result r = {0};
    if (out) *out = r;
    if (n_prompt < 1)
        return lq_fail(LQ_ERR_INVALID_ARG, "generate: the prompt is empty (BOS at least)");
    int n_ctx = lq_session_n_ctx(s);
    if (n_prompt > n_ctx)
        return lq_fail(LQ_ERR_INVALID_ARG, "generate: prompt of %d tokens exceeds context %d",
                       n_prompt, n_ctx);
    int V = lq_model_config(m)->vocab_size;
    /* padded checkpoints: only ids the tokenizer can decode are candidates */
    int vocab = o->vocab > 0 && o->vocab < V ? o->vocab : V;
    float *logits = malloc((size_t)V * sizeof *logits);
    if (!logits) return lq_fail(LQ_ERR_NOMEM, "generate: cannot allocate logits");

    double t0 = now_s();
    lq_status st = lq_forward(s, prompt, n_prompt, 0, logits, false);
    r.prefill_s = now_s() - t0;
    r.n_prompt = n_prompt;
    for (int i = 0; i < n_prompt; i++) lq_sampler_accept(smp, prompt[i]);
    int pos = n_prompt;
    double t1 = now_s();
    while (st == LQ_OK && r.n_generated < o->max_new) {
        lq_sample_info info;
        if ((st = lq_sampler_sample(smp, logits, vocab, &info)) != LQ_OK) break;
        if (is_stop(o, info.id)) {
            r.hit_stop = true;
            break;
        }
        r.n_generated++;
        lq_sampler_accept(smp, info.id);
        if (cb && !cb(user, &info)) break;
        if (r.n_generated >= o->max_new || pos >= n_ctx) break;
        st = lq_forward(s, &info.id, 1, pos, logits, false);
        pos++;
        r.n_decode++;
    }
    r.decode_s = now_s() - t1;
    free(logits);
    if (out) *out = r;
    return st;
}
