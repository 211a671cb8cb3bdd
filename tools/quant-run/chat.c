/* chat.c - quant-run --chat (run_chat.h).
 *
 * Each turn renders the whole conversation through the template and prefills it from position
 * 0: the engine's generate call starts a fresh cache, and a re-rendered history need not be the
 * previous prompt plus the new turn token for token (templates trim, Llama 3.1 re-dates, the
 * reply is re-tokenized from its text), so reusing the cache would need that proof first.
 * Prefill is the cheap part of a turn on the models quant-run serves.
 */
#include "run_chat.h"
#include "lq_eval.h"
#include "tool_cli.h"
#include "tool_model.h"
#include "tool_sample.h"

#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

typedef struct chat {
    const tool_chat_opts *o;
    const lq_model *m;
    const lq_tokenizer *tok;
    lq_pool *pool;
    lq_chat_template *tmpl;
    const char *bos, *eos;
    int32_t stop[3];
    int n_stop;
    lq_chat_msg *msgs; /* contents malloc'd */
    int n_msgs, cap_msgs;
} chat;

/* The template: --chat-template NAME (a family) or FILE (a Jinja template), else the model's. */
static lq_status load_template(const tool_chat_opts *o, lq_chat_template **out) {
    char *text = NULL;
    const char *what = o->template_arg;
    lq_status s;
    lq_chat_template *probe = NULL;
    if (o->template_arg && lq_chat_template_parse(o->template_arg, NULL, &probe) == LQ_OK &&
        access(o->template_arg, F_OK) != 0) {
        *out = probe; /* a family name that is not also a file here */
        return LQ_OK;
    }
    lq_chat_template_free(probe);
    if (o->template_arg) {
        size_t len;
        s = lq_text_read_file(o->template_arg, &text, &len);
    } else {
        s = lq_chat_template_read(o->model_path, o->tok_path, &text);
        what = o->tok_path && strstr(o->tok_path, ".gguf") ? o->tok_path : o->model_path;
    }
    if (s == LQ_OK) s = lq_chat_template_parse(text, what, out);
    free(text);
    return s;
}

/* Id of a token given by its text when the text encodes (specials on) to exactly one id. */
static int32_t single_token(const lq_tokenizer *tok, const char *text) {
    if (!text || !*text) return -1;
    int32_t ids[4];
    int64_t n = 0;
    if (lq_tokenizer_encode(tok, text, strlen(text), false, true, ids, 4, &n) != LQ_OK || n != 1)
        return -1;
    return ids[0];
}

static bool push_msg(chat *c, const char *role, const char *text, size_t len) {
    if (c->n_msgs == c->cap_msgs) {
        int cap = c->cap_msgs ? 2 * c->cap_msgs : 8;
        lq_chat_msg *m = realloc(c->msgs, (size_t)cap * sizeof *m);
        if (!m) return false;
        c->msgs = m;
        c->cap_msgs = cap;
    }
    char *copy = malloc(len + 1);
    if (!copy) return false;
    memcpy(copy, text, len);
    copy[len] = 0;
    c->msgs[c->n_msgs++] = (lq_chat_msg){.role = role, .content = copy};
    return true;
}

/* The reply as it streams: decoded pieces appended (and printed unless --json). */
typedef struct reply {
    const lq_tokenizer *tok;
    int32_t prev;
    bool stream, oom;
    char *text;
    size_t len, cap;
} reply;

static bool on_token(void *user, const lq_sample_info *t) {
    reply *r = user;
    char piece[256];
    size_t n = lq_tokenizer_decode_token(r->tok, r->prev, t->id, piece, sizeof piece);
    if (n > sizeof piece) n = sizeof piece;
    r->prev = t->id;
    if (r->len + n + 1 > r->cap) {
        size_t cap = (r->len + n + 1) * 2;
        char *p = realloc(r->text, cap);
        if (!p) {
            r->oom = true;
            return false;
        }
        r->text = p;
        r->cap = cap;
    }
    memcpy(r->text + r->len, piece, n);
    r->len += n;
    r->text[r->len] = 0;
    if (r->stream) {
        fwrite(piece, 1, n, stdout);
        fflush(stdout);
        return !ferror(stdout);
    }
    return true;
}

static int print_json(const chat *c, const char *prompt, int64_t n_prompt, const reply *r,
                      const lq_sample_gen_result *g) {
    json_t *j = json_object();
    json_object_set_new(j, "mode", json_string(c->o->sp.temperature == 0 ? "greedy" : "sample"));
    json_object_set_new(j, "chat_template", json_string(lq_chat_template_name(c->tmpl)));
    json_object_set_new(j, "prompt", tool_json_text(prompt, strlen(prompt), NULL));
    json_object_set_new(j, "prompt_tokens", json_integer(n_prompt));
    json_object_set_new(j, "text", tool_json_text(r->text ? r->text : "", r->len, NULL));
    json_object_set_new(j, "n_generated", json_integer(g->n_generated));
    json_object_set_new(j, "stop", json_string(g->hit_stop ? "end_of_turn" : "max_tokens"));
    json_object_set_new(j, "tokens_per_second",
                        json_real(g->decode_s > 0 ? (double)g->n_decode / g->decode_s : 0));
    return tool_print_json(j) ? 0 : tool_error(1, "cannot format the JSON output");
}

/* One assistant turn after the conversation so far; the reply joins the history. */
static int turn(chat *c, int index) {
    char *prompt = NULL;
    size_t plen = 0;
    lq_status s = lq_chat_render(c->tmpl, c->msgs, c->n_msgs, c->bos, c->eos, true, &prompt, &plen);
    if (s != LQ_OK) return tool_fail(s);
    int rc = 0;
    int32_t *ids = NULL;
    lq_session *sess = NULL;
    lq_sampler *smp = NULL;
    reply r = {.tok = c->tok, .prev = -1, .stream = !c->o->json};
    int64_t n = 0;
    s = lq_tokenizer_encode(c->tok, prompt, plen, false, true, NULL, 0, &n);
    if ((s == LQ_OK || s == LQ_ERR_INVALID_ARG) && !(ids = malloc((size_t)(n > 0 ? n : 1) * sizeof *ids)))
        s = lq_fail(LQ_ERR_NOMEM, "cannot allocate %lld prompt ids", (long long)n);
    else if (s == LQ_OK || s == LQ_ERR_INVALID_ARG)
        s = lq_tokenizer_encode(c->tok, prompt, plen, false, true, ids, n, &n);
    if (s != LQ_OK) { rc = tool_fail(s); goto done; }
    int max_ctx = lq_model_config(c->m)->max_seq_len;
    if (n == 0 || n >= max_ctx) {
        rc = tool_error(2, "the conversation is %lld tokens; the context holds %d", (long long)n, max_ctx);
        goto done;
    }
    int n_ctx = (int)n + c->o->max_tokens < max_ctx ? (int)n + c->o->max_tokens : max_ctx;
    lq_sample_params sp = c->o->sp;
    sp.seed += (uint64_t)index; /* each turn its own stream, the whole chat repeatable */
    if ((s = lq_session_create(c->m, n_ctx, c->pool, &sess)) != LQ_OK ||
        (s = lq_sampler_create(&sp, &smp)) != LQ_OK) {
        rc = tool_fail(s);
        goto done;
    }
    lq_sample_gen_opts go = {.max_new = c->o->max_tokens, .stop_ids = c->stop, .n_stop = c->n_stop,
                             .vocab = lq_tokenizer_vocab_size(c->tok)};
    lq_sample_gen_result g;
    r.prev = ids[n - 1];
    s = lq_sample_generate(c->m, sess, smp, ids, (int)n, &go, on_token, &r, &g);
    if (s == LQ_OK && r.oom) s = lq_fail(LQ_ERR_NOMEM, "out of memory for the reply");
    if (r.stream) fputc('\n', stdout);
    if (s != LQ_OK) { rc = tool_fail(s); goto done; }
    if (c->o->json && (rc = print_json(c, prompt, n, &r, &g)) != 0) goto done;
    if ((rc = tool_finish_stdout()) != 0) goto done;
    fprintf(stderr, "%lld tokens, %.2f tok/s (prefill %lld tokens, %.2f tok/s)\n",
            (long long)g.n_generated, g.decode_s > 0 ? (double)g.n_decode / g.decode_s : 0,
            (long long)g.n_prompt, g.prefill_s > 0 ? (double)g.n_prompt / g.prefill_s : 0);
    if (!push_msg(c, "assistant", r.text ? r.text : "", r.len))
        rc = tool_fail(lq_fail(LQ_ERR_NOMEM, "out of memory for the history"));
done:
    free(r.text);
    lq_sampler_free(smp);
    lq_session_free(sess);
    free(ids);
    free(prompt);
    return rc;
}

/* One line of stdin without its line end; NULL at EOF. */
static char *read_line(size_t *len) {
    char *line = NULL;
    size_t cap = 0;
    ssize_t k = getline(&line, &cap, stdin);
    if (k < 0) {
        free(line);
        return NULL;
    }
    while (k > 0 && (line[k - 1] == '\n' || line[k - 1] == '\r')) line[--k] = 0;
    *len = (size_t)k;
    return line;
}

static int chat_loop(chat *c, const char *prompt, size_t plen) {
    if (prompt) {
        if (!push_msg(c, "user", prompt, plen))
            return tool_fail(lq_fail(LQ_ERR_NOMEM, "out of memory for the prompt"));
        return turn(c, 0);
    }
    bool tty = isatty(0);
    for (int i = 0;; i++) {
        if (tty) fputs("> ", stderr);
        size_t len = 0;
        char *line = read_line(&len);
        if (!line || len == 0) {
            free(line);
            return 0;
        }
        bool ok = push_msg(c, "user", line, len);
        free(line);
        if (!ok) return tool_fail(lq_fail(LQ_ERR_NOMEM, "out of memory for the history"));
        int rc = turn(c, i);
        if (rc) return rc;
    }
}

int tool_chat_run(const tool_chat_opts *o, const lq_model *m, const lq_tokenizer *tok,
                  lq_pool *pool, const char *prompt, size_t plen) {
    chat c = {.o = o, .m = m, .tok = tok, .pool = pool};
    lq_status s = load_template(o, &c.tmpl);
    if (s != LQ_OK) return tool_fail(s);
    if (o->system && !*o->system) lq_chat_template_drop_default_system(c.tmpl);
    int bos = lq_tokenizer_bos(tok), eos = lq_tokenizer_eos(tok);
    c.bos = bos >= 0 ? lq_tokenizer_piece(tok, bos) : "";
    c.eos = eos >= 0 ? lq_tokenizer_piece(tok, eos) : "";
    /* a reply ends at the template's end-of-turn token, at EOS, or (llama2.c models) at BOS */
    const char *eot_text = lq_chat_template_end_of_turn(c.tmpl, c.eos);
    int32_t eot = single_token(tok, eot_text);
    if (eot < 0 && eot_text && *eot_text)
        fprintf(stderr, "%s: note: the end of turn \"%s\" is not one token of this tokenizer; "
                "replies end at EOS or --max-tokens\n", tool_name(), eot_text);
    int32_t cand[3] = {eot, eos, bos};
    for (int i = 0; i < 3; i++)
        if (cand[i] >= 0) c.stop[c.n_stop++] = cand[i];
    if (o->system && *o->system && !push_msg(&c, "system", o->system, strlen(o->system))) {
        lq_chat_template_free(c.tmpl);
        return tool_fail(lq_fail(LQ_ERR_NOMEM, "out of memory for the system prompt"));
    }
    int rc = chat_loop(&c, prompt, plen);
    for (int i = 0; i < c.n_msgs; i++) free((char *)c.msgs[i].content);
    free(c.msgs);
    lq_chat_template_free(c.tmpl);
    return rc;
}
