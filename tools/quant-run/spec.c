/* spec.c - quant-run --draft: speculative generation (lq_spec_generate), then the target alone
 * on the same prompt for the speedup and, for greedy, the identity check. */
#include "run_spec.h"

#include "lq_eval.h"
#include "tool_cli.h"
#include "tool_model.h"

#include <stdlib.h>
#include <string.h>

int tool_spec_load(tool_spec *sp, const char *target_path, const lq_model *target,
                   const lq_tokenizer *ttok, const char *draft_path, const char *tok_path,
                   int draft_max) {
    memset(sp, 0, sizeof *sp);
    sp->target_path = target_path;
    sp->draft_path = draft_path;
    sp->draft_max = draft_max;
    int rc = tool_load_model(draft_path, tok_path, &sp->draft, &sp->draft_tok);
    if (rc) return rc;
    int tv = lq_model_config(target)->vocab_size, dv = lq_model_config(sp->draft)->vocab_size;
    uint64_t th = lq_tokenizer_hash(ttok), dh = lq_tokenizer_hash(sp->draft_tok);
    if (tv != dv || th != dh)
        return tool_error(tool_exit_code(LQ_ERR_MISMATCH),
                          "the draft's vocabulary differs from the target's: %s has %d tokens "
                          "(tokenizer %016llx), %s has %d (tokenizer %016llx)",
                          target_path, tv, (unsigned long long)th, draft_path, dv,
                          (unsigned long long)dh);
    return 0;
}

void tool_spec_free(tool_spec *sp) {
    lq_tokenizer_free(sp->draft_tok);
    lq_model_free(sp->draft);
    free(sp->ids);
    memset(sp, 0, sizeof *sp);
}

/* ---- generation ----------------------------------------------------------------------------- */

typedef struct spec_cb {
    tool_spec *sp;
    lq_sample_token_fn inner;
    void *user;
    bool oom;
} spec_cb;

static bool keep_id(tool_spec *sp, int32_t id) {
    if (sp->n_ids == sp->cap_ids) {
        int64_t cap = sp->cap_ids ? 2 * sp->cap_ids : 256;
        int32_t *p = realloc(sp->ids, (size_t)cap * sizeof *p);
        if (!p) return false;
        sp->ids = p;
        sp->cap_ids = cap;
    }
    sp->ids[sp->n_ids++] = id;
    return true;
}

static bool on_spec_token(void *user, const lq_sample_info *t) {
    spec_cb *c = user;
    if (!keep_id(c->sp, t->id)) {
        c->oom = true;
        return false;
    }
    return c->inner ? c->inner(c->user, t) : true;
}

/* The target alone compares against the speculative ids token by token as they come. */
typedef struct base_cb {
    const tool_spec *sp;
    int64_t i;
    bool same;
} base_cb;

static bool on_base_token(void *user, const lq_sample_info *t) {
    base_cb *b = user;
    if (b->i >= b->sp->n_ids || b->sp->ids[b->i] != t->id) b->same = false;
    b->i++;
    return true;
}

static lq_status run_alone(tool_spec *sp, const lq_model *m, lq_session *s,
                           const lq_sample_params *params, const int32_t *prompt, int n_prompt,
                           const lq_sample_gen_opts *o) {
    lq_sampler *smp = NULL;
    LQ_TRY(lq_sampler_create(params, &smp));
    base_cb b = {.sp = sp, .same = true};
    lq_sample_gen_result r;
    lq_status st = lq_sample_generate(m, s, smp, prompt, n_prompt, o, on_base_token, &b, &r);
    lq_sampler_free(smp);
    if (st != LQ_OK) return st;
    sp->base_ran = true;
    sp->base_generated = r.n_generated;
    sp->base_decode_tok_s = r.decode_s > 0 ? (double)r.n_decode / r.decode_s : 0;
    sp->base_total_s = r.prefill_s + r.decode_s;
    sp->identical = b.same && b.i == sp->n_ids;
    return LQ_OK;
}

lq_status tool_spec_generate(tool_spec *sp, const lq_model *m, lq_pool *pool,
                             const lq_sample_params *params, const int32_t *prompt, int n_prompt,
                             const lq_sample_gen_opts *o, lq_sample_token_fn cb, void *user,
                             lq_sample_gen_result *out) {
    memset(out, 0, sizeof *out);
    sp->greedy = params->temperature == 0.0f;
    /* positions up to n_prompt + max_new - 1 are forwarded (the last token never is) */
    int64_t want = (int64_t)n_prompt + o->max_new;
    int tmax = lq_model_config(m)->max_seq_len, dmax = lq_model_config(sp->draft)->max_seq_len;
    int tctx = want < tmax ? (int)want : tmax, dctx = want < dmax ? (int)want : dmax;
    lq_session *ts = NULL, *ds = NULL;
    LQ_TRY(lq_session_create(m, tctx, pool, &ts));
    lq_status st = lq_session_create(sp->draft, dctx, pool, &ds);
    if (st != LQ_OK) {
        lq_session_free(ts);
        return st;
    }
    lq_spec_lm t = lq_spec_lm_session(ts, m), d = lq_spec_lm_session(ds, sp->draft);
    lq_spec_opts so = {.draft_max = sp->draft_max, .max_new = o->max_new, .stop_ids = o->stop_ids,
                       .n_stop = o->n_stop, .vocab = o->vocab};
    spec_cb c = {.sp = sp, .inner = cb, .user = user};
    st = lq_spec_generate(&t, &d, params, prompt, n_prompt, &so, on_spec_token, &c, &sp->r);
    if (st == LQ_OK && c.oom) st = lq_fail(LQ_ERR_NOMEM, "out of memory for the generated ids");
    lq_session_free(ds);
    /* the target alone, after: its session is the speculative run's, restarted at position 0 */
    if (st == LQ_OK) st = run_alone(sp, m, ts, params, prompt, n_prompt, o);
    lq_session_free(ts);
    const lq_spec_result *r = &sp->r;
    *out = (lq_sample_gen_result){.n_prompt = r->n_prompt, .n_generated = r->n_generated,
                                  .prefill_s = r->prefill_s,
                                  .n_decode = r->n_generated > 0 ? r->n_generated - 1 : 0,
                                  .decode_s = r->decode_s, .hit_stop = r->hit_stop};
    return st;
}

/* ---- report --------------------------------------------------------------------------------- */

typedef struct spec_numbers {
    double accept_rate;   /* accepted / drafted */
    double mean_accepted; /* accepted draft tokens per target forward */
    double tok_per_fwd;   /* tokens emitted per target forward (accepted + 1) */
    double tok_s;         /* decode tok/s after the first token */
    double speedup;       /* tok_s / the target alone's decode tok/s */
} spec_numbers;

static spec_numbers numbers(const tool_spec *sp) {
    const lq_spec_result *r = &sp->r;
    spec_numbers n = {0};
    if (r->n_drafted > 0) n.accept_rate = (double)r->n_accepted / (double)r->n_drafted;
    if (r->n_cycles > 0) {
        n.mean_accepted = (double)r->n_accepted / (double)r->n_cycles;
        n.tok_per_fwd = (double)(r->n_generated - 1) / (double)r->n_cycles;
    }
    if (r->decode_s > 0 && r->n_generated > 1) n.tok_s = (double)(r->n_generated - 1) / r->decode_s;
    if (sp->base_ran && sp->base_decode_tok_s > 0) n.speedup = n.tok_s / sp->base_decode_tok_s;
    return n;
}

void tool_spec_print(const tool_spec *sp, FILE *f) {
    spec_numbers n = numbers(sp);
    const lq_spec_result *r = &sp->r;
    fprintf(f, "speculative (draft %s, draft-max %d): accepted %lld of %lld drafted (%.1f%%), "
               "mean accepted length %.2f, %.2f tokens per target forward (%lld forwards)\n",
            sp->draft_path, sp->draft_max, (long long)r->n_accepted, (long long)r->n_drafted,
            100.0 * n.accept_rate, n.mean_accepted, n.tok_per_fwd, (long long)r->n_cycles);
    fprintf(f, "time: draft %.2f s, verify %.2f s; target alone %.2f tok/s -> speedup %.2fx",
            r->draft_s, r->verify_s, sp->base_decode_tok_s, n.speedup);
    if (sp->greedy)
        fprintf(f, "; output %s the target alone's\n", sp->identical ? "identical to" : "DIFFERS from");
    else /* the same distribution, other draws: equality says nothing */
        fprintf(f, " (sampling: the target alone drew its own text)\n");
}

void tool_spec_json(const tool_spec *sp, json_t *j) {
    spec_numbers n = numbers(sp);
    const lq_spec_result *r = &sp->r;
    json_t *d = json_object();
    json_object_set_new(d, "draft", json_string(sp->draft_path));
    json_object_set_new(d, "draft_max", json_integer(sp->draft_max));
    json_object_set_new(d, "drafted", json_integer(r->n_drafted));
    json_object_set_new(d, "accepted", json_integer(r->n_accepted));
    json_object_set_new(d, "judged", json_integer(r->n_judged));
    json_object_set_new(d, "target_forwards", json_integer(r->n_cycles));
    json_object_set_new(d, "draft_forwards", json_integer(r->n_draft_fwd));
    json_object_set_new(d, "acceptance_rate", json_real(n.accept_rate));
    json_object_set_new(d, "mean_accepted_length", json_real(n.mean_accepted));
    json_object_set_new(d, "tokens_per_target_forward", json_real(n.tok_per_fwd));
    json_object_set_new(d, "draft_seconds", json_real(r->draft_s));
    json_object_set_new(d, "verify_seconds", json_real(r->verify_s));
    json_object_set_new(d, "decode_seconds", json_real(r->decode_s));
    json_object_set_new(d, "target_alone_tokens_per_second", json_real(sp->base_decode_tok_s));
    json_object_set_new(d, "target_alone_generated", json_integer(sp->base_generated));
    json_object_set_new(d, "speedup", json_real(n.speedup));
    /* greedy only: sampled texts are different draws of one distribution */
    json_object_set_new(d, "identical", sp->greedy ? json_boolean(sp->identical) : json_null());
    json_object_set_new(j, "speculative", d);
}
