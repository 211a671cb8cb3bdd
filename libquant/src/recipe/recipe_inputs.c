/* recipe_inputs.c - what a recipe run needs before it starts (lq_recipe_check_inputs), and a
 * modifier in words (lq_recipe_describe_modifier).
 *
 * `quant-recipe check --model` and `run` call the same check, so check finds every error run
 * could find before its first step: an hour of quantization must not end in "no tokenizer". */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "libquant/lq_checkpoint.h"
#include "libquant/lq_ptq.h"
#include "libquant/lq_recipe.h"
#include "libquant/lq_tokenizer.h"

static lq_status at_stage(const lq_recipe *r, const lq_recipe_stage *st, lq_status s, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

/* "<what> (<stage> at file:line:col)" */
static lq_status at_stage(const lq_recipe *r, const lq_recipe_stage *st, lq_status s, const char *fmt, ...) {
    char what[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(what, sizeof what, fmt, ap);
    va_end(ap);
    return lq_fail(s, "%s (%s at %s:%d:%d)", what, st->name, r->path, st->pos.line, st->pos.col);
}

static lq_status check_files(const lq_recipe *r) {
    for (int i = 0; i < r->n_stages; i++) {
        const lq_recipe_stage *st = &r->stages[i];
        char **files = st->kind == LQ_STAGE_EVAL ? st->eval.files : st->distill.files;
        int n = st->kind == LQ_STAGE_EVAL ? st->eval.n_files : st->kind == LQ_STAGE_DISTILL ? st->distill.n_files : 0;
        for (int f = 0; f < n; f++)
            if (access(files[f], R_OK) != 0)
                return lq_fail(LQ_ERR_IO, "%s (%s at %s:%d:%d): %s", files[f], st->name, r->path, st->pos.line,
                               st->pos.col, strerror(errno));
        if (st->kind == LQ_STAGE_DISTILL && st->distill.teacher[0] && access(st->distill.teacher, R_OK) != 0)
            return lq_fail(LQ_ERR_IO, "teacher %s (%s at %s:%d:%d): %s", st->distill.teacher, st->name, r->path,
                           st->pos.line, st->pos.col, strerror(errno));
    }
    return LQ_OK;
}

/* The model's config (vocabulary, layers) and that its tokenizer loads. */
static lq_status probe_model(const char *model, const char *tokenizer, bool need_tok, lq_config *cfg) {
    lq_checkpoint *ck = NULL;
    LQ_TRY(lq_checkpoint_open(model, &ck));
    *cfg = *lq_checkpoint_config(ck);
    lq_checkpoint_close(ck);
    if (!need_tok) return LQ_OK;
    lq_tokenizer *t = NULL;
    LQ_TRY(lq_tokenizer_load_for_model(model, tokenizer, cfg->vocab_size, &t));
    lq_tokenizer_free(t);
    return LQ_OK;
}

static lq_status check_distill(const lq_recipe *r, const lq_recipe_stage *st, const char *model,
                               const char *tokenizer) {
    const lq_recipe_distill *ds = &st->distill;
    const char *teacher = ds->teacher[0] ? ds->teacher : model;
    lq_config cfg;
    lq_status s = probe_model(teacher, ds->tokenizer[0] ? ds->tokenizer : tokenizer, true, &cfg);
    if (s != LQ_OK) {
        char msg[768];
        snprintf(msg, sizeof msg, "%s", lq_last_error());
        return at_stage(r, st, s, "teacher %s: %s", teacher, msg);
    }
    if (ds->k > cfg.vocab_size)
        return at_stage(r, st, LQ_ERR_INVALID_ARG, "distill_stage k %d is larger than the vocabulary (%d) of %s",
                        ds->k, cfg.vocab_size, teacher);
    for (int l = 0; l < ds->n_feat_layers; l++)
        if (ds->feat_layers[l] > cfg.n_layers)
            return at_stage(r, st, LQ_ERR_INVALID_ARG, "distill_stage features: layer %d of a %d-layer teacher "
                            "(layers are 0 .. %d)", ds->feat_layers[l], cfg.n_layers, cfg.n_layers);
    return LQ_OK;
}

lq_status lq_recipe_check_inputs(const lq_recipe *r, const char *model, const char *tokenizer,
                                 const char *report_file) {
    LQ_TRY(check_files(r));
    if (report_file && access(report_file, R_OK) != 0)
        return lq_fail(LQ_ERR_IO, "%s: %s", report_file, strerror(errno));
    if (!model) return LQ_OK;
    /* every model an eval_stage or the report scores is the input or a step of it; each step
     * carries the input's tokenizer files, so the input's tokenizer decides for all of them */
    const lq_recipe_stage *scorer = NULL;
    for (int i = 0; i < r->n_stages && !scorer; i++)
        if (r->stages[i].kind == LQ_STAGE_EVAL) scorer = &r->stages[i];
    lq_config cfg;
    lq_status s = probe_model(model, tokenizer, scorer || report_file, &cfg);
    if (s != LQ_OK && scorer) {
        char msg[768];
        snprintf(msg, sizeof msg, "%s", lq_last_error());
        return at_stage(r, scorer, s, "%s", msg);
    }
    LQ_TRY(s);
    for (int i = 0; i < r->n_stages; i++)
        if (r->stages[i].kind == LQ_STAGE_DISTILL) LQ_TRY(check_distill(r, &r->stages[i], model, tokenizer));
    return LQ_OK;
}

/* ---- a modifier in words ---------------------------------------------------------------------- */

static void add(char *buf, size_t cap, size_t *n, const char *fmt, ...) __attribute__((format(printf, 4, 5)));

static void add(char *buf, size_t cap, size_t *n, const char *fmt, ...) {
    if (*n >= cap) return;
    va_list ap;
    va_start(ap, fmt);
    int k = vsnprintf(buf + *n, cap - *n, fmt, ap);
    va_end(ap);
    if (k > 0) *n += (size_t)k;
}

static void add_list(char *buf, size_t cap, size_t *n, const char *key, char **v, int count) {
    if (!count) return;
    add(buf, cap, n, " %s=[", key);
    for (int i = 0; i < count; i++) add(buf, cap, n, "%s%s", i ? ", " : "", v[i]);
    add(buf, cap, n, "]");
}

void lq_recipe_describe_modifier(const lq_recipe_modifier *m, char *buf, size_t cap) {
    size_t n = 0;
    if (cap) buf[0] = 0;
    add(buf, cap, &n, "%s", lq_modifier_name(m->kind));
    if (m->target_bpw > 0) {
        add(buf, cap, &n, " target_bpw=%g candidates=[", m->target_bpw);
        for (int i = 0; i < m->n_cand; i++) {
            char name[64];
            lq_ptq_candidate_name(&m->cand[i], name, sizeof name);
            add(buf, cap, &n, "%s%s", i ? ", " : "", name);
        }
        add(buf, cap, &n, "]");
    } else if (m->scheme != LQ_WFMT_NONE) {
        add(buf, cap, &n, " scheme=%s", lq_preset_name(m->scheme, m->asym));
    }
    if (m->group_size > 0 && m->target_bpw <= 0) add(buf, cap, &n, " group_size=%d", m->group_size);
    if (m->group_size < 0 && m->target_bpw <= 0) add(buf, cap, &n, " group_size=channel");
    if (m->group_fallback != LQ_GROUP_FALLBACK_REFUSE)
        add(buf, cap, &n, " group_fallback=%s", m->group_fallback == LQ_GROUP_FALLBACK_CHANNEL ? "channel" : "ignore");
    if (m->kind == LQ_MOD_STRUCTURED_PRUNING)
        add(buf, cap, &n, " structure=%s", m->structure == LQ_STRUCTURE_FFN ? "ffn" : "heads");
    if (m->sparsity >= 0 && m->kind != LQ_MOD_QUANTIZATION && m->kind != LQ_MOD_GPTQ && m->kind != LQ_MOD_AWQ &&
        m->kind != LQ_MOD_SMOOTHQUANT && m->kind != LQ_MOD_CONSTANT_PRUNING)
        add(buf, cap, &n, " sparsity=%g", m->sparsity);
    if (m->mask == LQ_MASK_NM) add(buf, cap, &n, " mask=%d:%d", m->mask_n, m->mask_m);
    if (m->kind == LQ_MOD_SMOOTHQUANT) add(buf, cap, &n, " smoothing_strength=%g", m->smoothing_strength);
    add_list(buf, cap, &n, "targets", m->targets, m->n_targets);
    add_list(buf, cap, &n, "ignore", m->ignore, m->n_ignore);
}
