/* distill_seq_run.c - lq_seq_run: continuations sampled from the teacher, one JSON record per
 * line (docs/DISTILL_FORMAT.md, "Sequences"), written through lq_seq_writer so a killed run
 * resumed with the same options ends with the same bytes (every record has its own seed). */
#include "distill_run_internal.h"

#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "libquant/lq_beam.h"
#include "libquant/lq_sample.h"

/* Everything a sequences run needs between records. */
typedef struct seq_run {
    const lq_seq_run_opts *o;
    const lq_model *m;
    const lq_tokenizer *tok;
    lq_session *sess;
    lq_seq_writer *w;
    json_t *params;   /* the decoding options, repeated in every record */
    const char *mode; /* "greedy", "sample" or "beam" */
    int32_t stop[2];
    int32_t *gen;     /* (max_tokens) tokens of the record being generated */
    double *gen_lp;   /* (max_tokens) their raw log-probs */
    int n_gen;
    int64_t added, total;
    uint64_t prompt_off; /* prompts file: byte offset of the current unit (for its line number) */
} seq_run;

static json_t *json_ints(const int32_t *v, int64_t n) {
    json_t *a = json_array();
    for (int64_t i = 0; i < n; i++) json_array_append_new(a, json_integer(v[i]));
    return a;
}

/* Bytes that may not be UTF-8 (a byte-fallback piece can be half a character) as a JSON
 * string: invalid bytes become U+FFFD. */
static json_t *json_text(const char *bytes, size_t len, bool *lossy) {
    char *buf = malloc(len * 3 + 1);
    if (!buf) return json_null();
    size_t n = lq_utf8_repair(bytes, len, buf, lossy);
    json_t *j = json_stringn(buf, n);
    free(buf);
    return j ? j : json_null();
}

/* A float option as the decimal the user typed (0.8, not 0.80000001192092896). */
static json_t *json_float(float x) {
    char buf[32];
    snprintf(buf, sizeof buf, "%.7g", x);
    return json_real(strtod(buf, NULL));
}

static void progress(seq_run *q, int64_t done) {
    if (q->o->hooks.progress) q->o->hooks.progress(q->o->hooks.user, done, q->total, "sequences");
}

/* 1-based line of the prompt whose raw unit starts at byte `off` of `path`: the newlines before
 * it, plus those of the blank run a separator unit is stripped of. 0 if the file cannot be read. */
static int64_t prompt_line(const char *path, uint64_t off) {
    FILE *f = fopen(path, "rb");
    if (!f) return 0;
    int64_t line = 1;
    uint64_t pos = 0;
    bool lead = true;
    char buf[65536];
    size_t n;
    while (lead && (n = fread(buf, 1, sizeof buf, f)) > 0) {
        for (size_t i = 0; i < n && lead; i++, pos++) {
            char ch = buf[i];
            if (pos >= off && ch != '\n' && ch != '\r' && ch != ' ' && ch != '\t') lead = false;
            else if (ch == '\n') line++;
        }
    }
    fclose(f);
    return line;
}

/* Refuse prompt i: from a prompts file the message names the file and line (issue 10 defect 16:
 * it named the output directory). */
static lq_status seq_prompt_fail(const seq_run *q, int64_t i, const char *what) {
    if (q->o->prompts)
        return lq_fail(LQ_ERR_INVALID_ARG, "%s:%lld: prompt %lld (counting from 0) %s", q->o->prompts,
                       (long long)prompt_line(q->o->prompts, q->prompt_off), (long long)i, what);
    return lq_fail(LQ_ERR_INVALID_ARG, "the prompt %s", what);
}

static bool seq_on_token(void *user, const lq_sample_info *t) {
    seq_run *q = user;
    if (q->n_gen >= q->o->max_tokens) return false;
    q->gen[q->n_gen] = t->id;
    q->gen_lp[q->n_gen++] = t->logprob;
    return true;
}

/* One record as a JSON line (see docs/DISTILL_FORMAT.md, "Sequences"). */
static lq_status seq_emit(seq_run *q, int64_t index, int64_t prompt_i, int sample,
                          const char *prompt, size_t plen, const int32_t *pids, int np,
                          const int32_t *ids, const double *lp, int n, const char *stop,
                          const uint64_t *seed, const lq_beam_hyp *hyp) {
    json_t *j = json_object();
    json_object_set_new(j, "index", json_integer(index));
    json_object_set_new(j, "prompt_index", json_integer(prompt_i));
    json_object_set_new(j, "sample", json_integer(sample));
    json_object_set_new(j, "prompt", json_text(prompt, plen, NULL));
    json_object_set_new(j, "prompt_tokens", json_ints(pids, np));
    /* the text as a reader sees it: pieces decoded after the prompt's last token */
    size_t cap = 64 + (size_t)n * 32, len = 0;
    char *text = malloc(cap);
    if (!text) {
        json_decref(j);
        return lq_fail(LQ_ERR_NOMEM, "out of memory for record %lld", (long long)index);
    }
    int32_t prev = pids[np - 1];
    for (int i = 0; i < n; i++) {
        char piece[256];
        size_t k = lq_tokenizer_decode_token(q->tok, prev, ids[i], piece, sizeof piece);
        if (k > sizeof piece) k = sizeof piece;
        if (len + k > cap) {
            cap = 2 * (len + k);
            char *nt = realloc(text, cap);
            if (!nt) {
                free(text);
                json_decref(j);
                return lq_fail(LQ_ERR_NOMEM, "out of memory for record %lld", (long long)index);
            }
            text = nt;
        }
        memcpy(text + len, piece, k);
        len += k;
        prev = ids[i];
    }
    json_object_set_new(j, "text", json_text(text, len, NULL));
    free(text);
    json_object_set_new(j, "tokens", json_ints(ids, n));
    json_t *lps = json_array();
    double sum = 0;
    for (int i = 0; i < n; i++) {
        json_array_append_new(lps, json_real(lp[i]));
        sum += lp[i];
    }
    json_object_set_new(j, "logprobs", lps);
    json_object_set_new(j, "stop", json_string(stop));
    json_object_set_new(j, "mode", json_string(q->mode));
    if (seed) { /* a string: JSON readers lose integers above 2^53 */
        char sb[32];
        snprintf(sb, sizeof sb, "%llu", (unsigned long long)*seed);
        json_object_set_new(j, "seed", json_string(sb));
    }
    if (hyp) {
        /* beam scores count the stop token, which "tokens" leaves out */
        json_object_set_new(j, "logprob_sum", json_real(hyp->logprob_sum));
        json_object_set_new(j, "score", json_real(hyp->score));
    } else {
        json_object_set_new(j, "logprob_sum", json_real(sum));
    }
    json_object_set(j, "params", q->params);
    char *line = json_dumps(j, JSON_COMPACT | JSON_PRESERVE_ORDER);
    json_decref(j);
    if (!line) return lq_fail(LQ_ERR_NOMEM, "cannot format record %lld", (long long)index);
    lq_status st = lq_seq_writer_append(q->w, line, strlen(line));
    free(line);
    if (st != LQ_OK) return st;
    q->added++;
    if (q->o->hooks.record) q->o->hooks.record(q->o->hooks.user, q->added);
    return LQ_OK;
}

static const char *stop_name(bool hit_stop, int n, int max_tokens) {
    return hit_stop ? "eos" : n >= max_tokens ? "max_tokens" : "context";
}

/* The records of prompt i from sample `first` on. */
static lq_status seq_prompt(seq_run *q, int64_t i, int first, const char *prompt, size_t plen) {
    const lq_seq_run_opts *o = q->o;
    bool bos = lq_tokenizer_bos(q->tok) >= 0 &&
               (lq_tokenizer_add_bos_default(q->tok) || plen == 0);
    int32_t *pids = NULL;
    int64_t cap = 0, np = 0;
    lq_status st = lqd_encode(q->tok, prompt, plen, bos, false, &pids, &cap, &np);
    int max_ctx = lq_model_config(q->m)->max_seq_len;
    char what[96];
    if (st == LQ_OK && np == 0) st = seq_prompt_fail(q, i, "is empty and the tokenizer has no BOS");
    if (st == LQ_OK && np >= max_ctx) {
        snprintf(what, sizeof what, "has %lld tokens, more than fit the context of %d (with room for one "
                 "generated)", (long long)np, max_ctx);
        st = seq_prompt_fail(q, i, what);
    }
    int64_t base = i * o->sequences;
    if (st == LQ_OK && o->beams > 1) {
        /* one search gives the prompt's N records: the N best hypotheses */
        lq_beam_opts bo = {.n_beams = o->beams, .n_best = o->sequences,
                          .length_penalty = o->length_penalty, .max_new = o->max_tokens,
                           .stop_ids = q->stop, .n_stop = 2,
                           .vocab = lq_tokenizer_vocab_size(q->tok)};
        lq_beam_result r;
        st = lq_beam_search(q->m, o->pool, pids, (int)np, &bo, &r);
        if (st == LQ_OK && r.n_hyps < o->sequences)
            st = lq_fail(LQ_ERR_UNSUPPORTED, "prompt %lld: beam search found %d hypotheses, "
                         "fewer than --sequences %d", (long long)i, r.n_hyps, o->sequences);
        for (int h = first; st == LQ_OK && h < o->sequences; h++) {
            const lq_beam_hyp *y = &r.hyps[h];
            int n = y->n - (y->finished ? 1 : 0);
            st = seq_emit(q, base + h, i, h, prompt, plen, pids, (int)np, y->tokens, y->logprobs,
                          n, stop_name(y->finished, y->n, o->max_tokens), NULL, y);
            progress(q, base + h + 1);
        }
        if (r.hyps) lq_beam_result_free(&r);
    } else {
        bool greedy = o->sp.temperature == 0;
        for (int j = first; st == LQ_OK && j < o->sequences; j++) {
            /* each record's own stream: a resumed run can start at any record */
            lq_sample_params sp = o->sp;
            sp.seed = lq_seq_record_seed(o->sp.seed, (uint64_t)i, (uint64_t)j);
            lq_sampler *smp = NULL;
            if ((st = lq_sampler_create(&sp, &smp)) != LQ_OK) break;
            lq_sample_gen_opts go = {.max_new = o->max_tokens, .stop_ids = q->stop, .n_stop = 2,
                                    .vocab = lq_tokenizer_vocab_size(q->tok)};
            lq_sample_gen_result r;
            q->n_gen = 0;
            st = lq_sample_generate(q->m, q->sess, smp, pids, (int)np, &go, seq_on_token, q, &r);
            lq_sampler_free(smp);
            if (st == LQ_OK)
                st = seq_emit(q, base + j, i, j, prompt, plen, pids, (int)np, q->gen, q->gen_lp,
                              q->n_gen, stop_name(r.hit_stop, q->n_gen, o->max_tokens),
                              greedy ? NULL : &sp.seed, NULL);
            progress(q, base + j + 1);
        }
    }
    free(pids);
    return st;
}

/* ---- the run --------------------------------------------------------------------------------- */

/* run_id of the prompts: FNV-1a 64 of the one prompt's text, or of the prompt file as for a
 * corpus (its first and last 64 KiB and size) and the separator. */
static lq_status prompts_id(const lq_seq_run_opts *o, uint64_t *id) {
    if (o->prompts) {
        uint64_t size;
        return lq_distill_corpus_id(o->prompts, o->separator, false, id, &size);
    }
    uint64_t h = 0xcbf29ce484222325ull;
    for (const char *p = o->prompt; *p; p++) h = (h ^ (unsigned char)*p) * 0x100000001b3ull;
    *id = h;
    return LQ_OK;
}

/* Count the prompt units (for progress) without holding them. */
static lq_status count_prompts(const lq_seq_run_opts *o, int64_t *n) {
    *n = 0;
    if (!o->prompts) {
        *n = 1;
        return LQ_OK;
    }
    lq_corpus *c = NULL;
    LQ_TRY(lq_corpus_open(o->prompts, 0, &c));
    lq_status st;
    for (;;) {
        const char *text;
        size_t len;
        uint64_t uo, no;
        st = lq_corpus_next_unit(c, o->separator, &text, &len, &uo, &no);
        if (st != LQ_OK || !text) break;
        (*n)++;
    }
    lq_corpus_close(c);
    return st;
}

static json_t *seq_params(const lq_seq_run_opts *o) {
    json_t *p = json_object();
    json_object_set_new(p, "max_tokens", json_integer(o->max_tokens));
    if (o->beams > 1) {
        json_object_set_new(p, "beams", json_integer(o->beams));
        json_object_set_new(p, "length_penalty", json_float(o->length_penalty));
        return p;
    }
    json_object_set_new(p, "temperature", json_float(o->sp.temperature));
    json_object_set_new(p, "top_k", json_integer(o->sp.top_k));
    json_object_set_new(p, "top_p", json_float(o->sp.top_p));
    json_object_set_new(p, "min_p", json_float(o->sp.min_p));
    json_object_set_new(p, "repeat_penalty", json_float(o->sp.repeat_penalty));
    json_object_set_new(p, "repeat_last_n", json_integer(o->sp.repeat_last_n));
    char sb[32];
    snprintf(sb, sizeof sb, "%llu", (unsigned long long)o->sp.seed);
    json_object_set_new(p, "seed", json_string(sb));
    return p;
}

/* What fixes the records: a resumed run must match it (lq_seq_writer_open). */
static char *seq_settings(const seq_run *q, uint64_t pid, int64_t n_prompts) {
    json_t *set = json_object();
    char h[17];
    snprintf(h, sizeof h, "%016llx", (unsigned long long)lq_distill_teacher_id(q->m));
    json_object_set_new(set, "teacher_id", json_string(h));
    json_object_set_new(set, "teacher_name", json_string(q->o->teacher_name ? q->o->teacher_name : ""));
    snprintf(h, sizeof h, "%016llx", (unsigned long long)lq_tokenizer_hash(q->tok));
    json_object_set_new(set, "tokenizer_hash", json_string(h));
    snprintf(h, sizeof h, "%016llx", (unsigned long long)pid);
    json_object_set_new(set, "prompts_id", json_string(h));
    json_object_set_new(set, "prompts", json_integer(n_prompts));
    json_object_set_new(set, "sequences", json_integer(q->o->sequences));
    json_object_set_new(set, "mode", json_string(q->mode));
    json_object_set(set, "params", q->params);
    char *txt = json_dumps(set, JSON_COMPACT | JSON_PRESERVE_ORDER);
    json_decref(set);
    return txt;
}

/* Every prompt from the first one not fully committed. */
static lq_status seq_all(seq_run *q, int64_t n_prompts, int64_t resumed) {
    const lq_seq_run_opts *o = q->o;
    int64_t first_prompt = resumed / o->sequences;
    if (o->prompt) return seq_prompt(q, 0, (int)(resumed % o->sequences), o->prompt, strlen(o->prompt));
    lq_corpus *c = NULL;
    LQ_TRY(lq_corpus_open(o->prompts, 0, &c));
    lq_status s = LQ_OK;
    for (int64_t i = 0; s == LQ_OK && i < n_prompts; i++) {
        const char *text;
        size_t len;
        uint64_t uo, no;
        if ((s = lq_corpus_next_unit(c, o->separator, &text, &len, &uo, &no)) != LQ_OK) break;
        if (!text) {
            s = lq_fail(LQ_ERR_MISMATCH, "%s: fewer prompts than counted: was it changed?", o->prompts);
            break;
        }
        if (i < first_prompt) continue; /* committed before the restart */
        q->prompt_off = uo;
        s = seq_prompt(q, i, i == first_prompt ? (int)(resumed % o->sequences) : 0, text, len);
    }
    lq_corpus_close(c);
    return s;
}

static double now_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

/* Generate what the writer does not hold yet. */
static lq_status seq_generate(seq_run *q, int64_t n_prompts, lq_seq_run_result *res) {
    const lq_seq_run_opts *o = q->o;
    q->gen = malloc((size_t)o->max_tokens * sizeof *q->gen);
    q->gen_lp = malloc((size_t)o->max_tokens * sizeof *q->gen_lp);
    if (!q->gen || !q->gen_lp)
        return lq_fail(LQ_ERR_NOMEM, "cannot allocate buffers for %d tokens", o->max_tokens);
    /* one session of the whole context, reused by every record (each starts at 0) */
    if (o->beams <= 1) LQ_TRY(lq_session_create(q->m, lq_model_config(q->m)->max_seq_len, o->pool, &q->sess));
    if (o->hooks.begin) o->hooks.begin(o->hooks.user, res->resumed_from, (uint64_t)q->total);
    progress(q, res->resumed_from);
    double t0 = now_s();
    lq_status s = seq_all(q, n_prompts, res->resumed_from);
    if (s == LQ_OK) s = lq_seq_writer_finish(q->w);
    res->seconds = now_s() - t0;
    res->added = q->added;
    return s;
}

lq_status lq_seq_run(const lq_model *m, const lq_tokenizer *tok, const lq_seq_run_opts *o, lq_seq_run_result *res) {
    *res = (lq_seq_run_result){0};
    if (o->sequences < 1 || o->max_tokens < 1 || !o->prompt == !o->prompts)
        return lq_fail(LQ_ERR_INVALID_ARG, "sequences: need sequences >= 1, max_tokens >= 1 and one of a "
                       "prompt or a prompt file");
    /* llama2.c models end a story with BOS, HF models with EOS: both stop */
    seq_run q = {.o = o, .m = m, .tok = tok, .params = seq_params(o),
                 .stop = {lq_tokenizer_eos(tok), lq_tokenizer_bos(tok)}};
    q.mode = o->beams > 1 ? "beam" : o->sp.temperature == 0 ? "greedy" : "sample";
    res->mode = q.mode;
    uint64_t pid = 0;
    int64_t n_prompts = 0;
    char *settings = NULL;
    lq_status s = prompts_id(o, &pid);
    if (s == LQ_OK) s = count_prompts(o, &n_prompts);
    if (s == LQ_OK && n_prompts == 0)
        s = lq_fail(LQ_ERR_INVALID_ARG, "%s: no prompts (every unit is blank)", o->prompts);
    if (s == LQ_OK && !(settings = seq_settings(&q, pid, n_prompts)))
        s = lq_fail(LQ_ERR_NOMEM, "out of memory");
    if (s == LQ_OK) s = lq_seq_writer_open(o->out, settings, &q.w);
    if (s == LQ_OK) {
        res->prompts = n_prompts;
        res->resumed_from = lq_seq_writer_records(q.w);
        res->already_complete = lq_seq_writer_complete(q.w);
        q.total = n_prompts * o->sequences;
        if (!res->already_complete) s = seq_generate(&q, n_prompts, res);
        res->records = lq_seq_writer_records(q.w);
    }
    if (s == LQ_OK && !(res->params_json = json_dumps(q.params, JSON_COMPACT | JSON_PRESERVE_ORDER)))
        s = lq_fail(LQ_ERR_NOMEM, "out of memory");
    lq_session_free(q.sess);
    lq_seq_writer_free(q.w);
    json_decref(q.params);
    free(q.gen);
    free(q.gen_lp);
    free(settings);
    return s;
}
