/* quant-distill - run a teacher model over a corpus and store what a student learns from:
 * top-k soft labels per position (+ the log of the remaining mass) and optionally hidden
 * states of chosen layers (f16), in resumable zlib-compressed shards (docs/DISTILL_FORMAT.md).
 *
 *   quant-distill --model PATH [--tokenizer F] --file TEXT --out DIR [--k 32] [--ctx N]
 *                 [--per-line [--separator S]] [--features L,L] [--logp-dtype f32|f16] ...
 *   quant-distill --inspect PATH [--record I] [--positions N] [--json]
 */
#include "lq_eval.h"
#include "libquant/lq_distill.h"
#include "lq_blocks.h"
#include "tool_cli.h"
#include "tool_progress.h"
#include "tool_model.h"
#include "tool_sample.h"

#include <jansson.h>
#include <math.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define TOOL "quant-distill"

static void usage(FILE *f) {
    fprintf(f,
        "usage: " TOOL " --model PATH [--tokenizer FILE] --file TEXT --out DIR [--k N]\n"
        "                     [--ctx N] [--per-line [--separator STR]] [--features L,L,...]\n"
        "                     [--logp-dtype f32|f16] [--block-kib N] [--shard-kib N]\n"
        "                     [--threads N] [--json]\n"
        "       " TOOL " --model PATH (--prompts FILE [--separator S] | --prompt TEXT)\n"
        "                     --sequences N [--max-tokens T] [decoding options] --out DIR\n"
        "       " TOOL " --inspect PATH [--record I] [--positions N] [--json]\n"
        "\n"
        "Runs the teacher (--model) over the corpus (--file) and writes, for every position, the\n"
        "top-k next-token ids with their log-probabilities and the log of the mass outside the\n"
        "top-k, into DIR (manifest.json + shard-NNNNN.lqd; layout in docs/DISTILL_FORMAT.md).\n"
        "The corpus is streamed: memory does not grow with its size.\n"
        "  default           chunks: the text is tokenized as a whole (as quant-eval does; read\n"
        "                    in segments cut where the tokens cannot change) and cut into\n"
        "                    records of BOS + (ctx - 1) tokens (ctx default 512)\n"
        "  --per-line        one record per non-empty line (or --separator unit), BOS first,\n"
        "                    cut into pieces of ctx tokens (ctx default: the model's context)\n"
        "  --k N             top-k per position (default 32, at most the vocabulary)\n"
        "  --features L,...  also store the residual stream after these layers as f16 (0 = after\n"
        "                    the first layer, n_layers = after the final norm)\n"
        "  --logp-dtype T    f32 (default) or f16 for the stored log-probs\n"
        "  --block-kib N     raw KiB per compressed block, the commit unit (default 1024)\n"
        "  --shard-kib N     seal a shard once it reaches this size (default 262144 = 256 MiB)\n"
        "Resuming: if DIR holds an unfinished run of the same teacher, tokenizer, corpus and\n"
        "settings, the run continues after its last commit; another teacher's DIR is refused.\n"
        "\n"
        "Sequences: --sequences N writes N continuations of every prompt (non-empty lines of\n"
        "--prompts, or --separator units; or the one --prompt, which may be empty) to\n"
        "DIR/sequences.jsonl, one JSON record per line (prompt, text, token ids, log-probs, seed,\n"
        "options). Greedy by default; sampling and beam options as quant-run (--seed default 0;\n"
        "every record has its own seed derived from it, so a resumed run writes the same bytes);\n"
        "--beams B keeps the N best hypotheses (N <= B). --max-tokens T: default 256.\n"
        "  --inspect PATH    print the dataset summary and record I (--record, default 0), the\n"
        "                    first --positions N positions (default 4; --json: all)\n"
        "  --model PATH      Hugging Face directory or llama2.c .bin\n"
        "  --tokenizer FILE  tokenizer.bin (required for a .bin model), tokenizer.json or .gguf\n"
        "  --threads N       worker threads (default: all CPUs)\n"
        "  --json            one JSON object on stdout\n"
        "  --help            this text\n"
        "\n"
        "Decoding options (--sequences):\n");
    tool_sample_usage(f);
    fprintf(f, "\nExit codes: 0 ok, 2 bad arguments, 3 bad input file, 4 I/O, 1 other.\n");
}

typedef struct args {
    const char *model, *tokenizer, *file, *out, *separator, *inspect, *features;
    const char *prompts, *prompt; /* --sequences: a prompt file (units), or one prompt */
    int sequences, max_tokens;
    tool_sample_args dec;
    int k, ctx, threads, block_kib, shard_kib, positions;
    int64_t record;
    int debug_stop_after; /* test hook: SIGKILL itself after adding this many records */
    int debug_piece_bytes; /* test hook: chunked-mode segment size (many cuts on a small text) */
    bool per_line, json, f16;
} args;

static int parse_args(int argc, char **argv, args *a) {
    *a = (args){.k = LQ_DISTILL_DEFAULT_K, .block_kib = 1024, .shard_kib = 256 << 10, .positions = 4,
                .max_tokens = 256};
    tool_sample_args_init(&a->dec);
    bool set_k = false;
    tool_args t = tool_args_begin(argc, argv);
    while (tool_args_next(&t)) {
        int *num = NULL, min = 0, rc = 0;
        if (tool_args_help(&t)) { usage(stdout); return 0; }
        else if (tool_sample_arg(&t, &a->dec, &rc)) { if (rc) return rc; }
        else if (tool_args_value(&t, "--prompts")) a->prompts = t.value;
        else if (tool_args_value(&t, "--prompt")) a->prompt = t.value;
        else if (tool_args_value(&t, "--sequences")) { num = &a->sequences; min = 1; }
        else if (tool_args_value(&t, "--max-tokens")) { num = &a->max_tokens; min = 1; }
        else if (tool_args_value(&t, "--model")) a->model = t.value;
        else if (tool_args_value(&t, "--tokenizer")) a->tokenizer = t.value;
        else if (tool_args_value(&t, "--file")) a->file = t.value;
        else if (tool_args_value(&t, "--out")) a->out = t.value;
        else if (tool_args_value(&t, "--separator")) a->separator = t.value;
        else if (tool_args_value(&t, "--inspect")) a->inspect = t.value;
        else if (tool_args_value(&t, "--features")) a->features = t.value;
        else if (tool_args_flag(&t, "--per-line")) a->per_line = true;
        else if (tool_args_flag(&t, "--json")) a->json = true;
        else if (tool_args_value(&t, "--logp-dtype")) {
            if (strcmp(t.value, "f16") == 0) a->f16 = true;
            else if (strcmp(t.value, "f32") != 0) return tool_args_bad_value(&t);
        }
        else if (tool_args_value(&t, "--record")) {
            uint64_t v;
            if (!tool_parse_u64(t.value, &v) || v > INT64_MAX) return tool_args_bad_value(&t);
            a->record = (int64_t)v;
        }
        else if (tool_args_value(&t, "--k")) { num = &a->k; min = 1; set_k = true; }
        else if (tool_args_value(&t, "--ctx")) { num = &a->ctx; min = 1; }
        else if (tool_args_value(&t, "--threads")) { num = &a->threads; min = 1; }
        else if (tool_args_value(&t, "--block-kib")) { num = &a->block_kib; min = 1; }
        else if (tool_args_value(&t, "--shard-kib")) { num = &a->shard_kib; min = 1; }
        else if (tool_args_value(&t, "--positions")) { num = &a->positions; min = 0; }
        else if (tool_args_value(&t, "--debug-stop-after")) { num = &a->debug_stop_after; min = 1; }
        else if (tool_args_value(&t, "--debug-piece-bytes")) { num = &a->debug_piece_bytes; min = 8; }
        else return tool_args_unknown(&t);
        if (num && !tool_parse_int(t.value, min, num)) return tool_args_bad_value(&t);
    }
    if (a->inspect) return -1;
    if (!a->model) return tool_bad_args("--model is required (or --inspect PATH)");
    if (a->sequences > 0) {
        if (!a->prompts == !a->prompt)
            return tool_bad_args("--sequences needs --prompts FILE or --prompt TEXT (one of them)");
        if (a->file || a->per_line || a->features || set_k)
            return tool_bad_args("--sequences writes sequences.jsonl: --file, --per-line, "
                                 "--features and --k are for soft labels");
        if (!a->out) return tool_bad_args("--out DIR is required");
        if (a->separator && !a->prompts) return tool_bad_args("--separator needs --prompts");
        if (a->dec.n_best > 1)
            return tool_bad_args("--n-best: with --beams, --sequences N keeps the N best");
        int rc = tool_sample_finish(&a->dec, false); /* no seed: 0, so a rerun resumes */
        if (rc) return rc;
        if (a->dec.beams > 1 && a->sequences > a->dec.beams)
            return tool_bad_args("--sequences %d is more than --beams %d (beam search keeps the "
                                 "N best hypotheses)", a->sequences, a->dec.beams);
        return -1;
    }
    if (a->prompts || a->prompt || a->dec.beams > 1 || a->dec.set_temp || a->dec.set_k ||
        a->dec.set_p || a->dec.set_minp || a->dec.set_seed || a->dec.set_penalty)
        return tool_bad_args("--prompts, --prompt and decoding options need --sequences N");
    if (!a->file) return tool_bad_args("--file TEXT is required");
    if (!a->out) return tool_bad_args("--out DIR is required");
    if (a->separator && !a->per_line) return tool_bad_args("--separator needs --per-line");
    return -1;
}

/* ---- inspect --------------------------------------------------------------------------------- */

static json_t *json_floats(const float *v, int64_t n) {
    json_t *a = json_array();
    for (int64_t i = 0; i < n; i++)
        json_array_append_new(a, isfinite(v[i]) ? json_real(v[i]) : json_null());
    return a;
}

static json_t *json_ints(const int32_t *v, int64_t n) {
    json_t *a = json_array();
    for (int64_t i = 0; i < n; i++) json_array_append_new(a, json_integer(v[i]));
    return a;
}

static int run_inspect(const args *a) {
    lq_distill_reader *r = NULL;
    lq_status s = lq_distill_open(a->inspect, &r);
    if (s != LQ_OK) return tool_fail(s);
    const lq_distill_meta *m = lq_distill_reader_meta(r);
    int64_t n_rec = lq_distill_count(r), n_tok = lq_distill_token_count(r);
    uint64_t bytes = lq_distill_file_bytes(r);
    if (a->record >= n_rec) {
        lq_distill_close(r);
        return tool_error(2, "%s: record %lld out of range (%lld records)", a->inspect,
                          (long long)a->record, (long long)n_rec);
    }
    lq_distill_record rec;
    s = lq_distill_get(r, a->record, &rec);
    if (s != LQ_OK) {
        lq_distill_close(r);
        return tool_fail(s);
    }
    int k = m->k;
    if (a->json) {
        json_t *j = json_object();
        char h[17];
        snprintf(h, sizeof h, "%016llx", (unsigned long long)m->teacher_id);
        json_object_set_new(j, "teacher_id", json_string(h));
        snprintf(h, sizeof h, "%016llx", (unsigned long long)m->tokenizer_hash);
        json_object_set_new(j, "tokenizer_hash", json_string(h));
        json_object_set_new(j, "teacher_name", json_string(m->teacher_name));
        json_object_set_new(j, "vocab", json_integer(m->vocab));
        json_object_set_new(j, "k", json_integer(k));
        json_object_set_new(j, "n_ctx", json_integer(m->n_ctx));
        json_object_set_new(j, "logp_dtype", json_string(lq_dtype_name(m->logp_dtype)));
        json_object_set_new(j, "feat_layers", json_ints(m->feat_layers, m->n_feat_layers));
        json_object_set_new(j, "records", json_integer(n_rec));
        json_object_set_new(j, "tokens", json_integer(n_tok));
        json_object_set_new(j, "bytes", json_integer((json_int_t)bytes));
        json_t *o = json_object();
        json_object_set_new(o, "index", json_integer(a->record));
        json_object_set_new(o, "source_offset", json_integer((json_int_t)rec.source_offset));
        json_object_set_new(o, "tokens", json_ints(rec.tokens, rec.n));
        json_t *pos = json_array();
        for (int t = 0; t < rec.n; t++) {
            json_t *p = json_object();
            json_object_set_new(p, "ids", json_ints(rec.topk_ids + (size_t)t * k, k));
            json_object_set_new(p, "logp", json_floats(rec.topk_logp + (size_t)t * k, k));
            json_object_set_new(p, "rest_logp", isfinite(rec.rest_logp[t])
                                                    ? json_real(rec.rest_logp[t]) : json_null());
            json_array_append_new(pos, p);
        }
        json_object_set_new(o, "positions", pos);
        if (rec.features) {
            json_t *fa = json_array();
            size_t per = (size_t)rec.n * (size_t)m->dim;
            for (int l = 0; l < m->n_feat_layers; l++) {
                json_t *row = json_array();
                for (size_t i = 0; i < per; i++)
                    json_array_append_new(row, json_real(lq_f16_to_f32(rec.features[l * per + i])));
                json_array_append_new(fa, row);
            }
            json_object_set_new(o, "features", fa);
        }
        json_object_set_new(j, "record", o);
        char *txt = json_dumps(j, JSON_COMPACT | JSON_PRESERVE_ORDER);
        json_decref(j);
        if (txt) printf("%s\n", txt);
        free(txt);
    } else {
        printf("dataset: %s\n", a->inspect);
        printf("teacher: %016llx (%s), tokenizer %016llx, vocab %d, k %d, ctx %d, mode %s, "
               "log-probs %s, %d feature layers\n", (unsigned long long)m->teacher_id,
               m->teacher_name, (unsigned long long)m->tokenizer_hash, m->vocab, k, m->n_ctx,
               m->mode == LQ_DISTILL_MODE_CHUNKS ? "chunks" : "per-unit",
               lq_dtype_name(m->logp_dtype), m->n_feat_layers);
        printf("records: %lld, tokens: %lld, bytes: %llu (%.1f bytes/token)\n",
               (long long)n_rec, (long long)n_tok, (unsigned long long)bytes,
               n_tok > 0 ? (double)bytes / (double)n_tok : 0.0);
        printf("record %lld: %d tokens from corpus byte %llu\n", (long long)a->record, rec.n,
               (unsigned long long)rec.source_offset);
        int show = a->positions < rec.n ? a->positions : rec.n;
        for (int t = 0; t < show; t++) {
            printf("  pos %d token %d -> next %d:", t, rec.tokens[t],
                   t + 1 < rec.n ? rec.tokens[t + 1] : -1);
            int kk = k < 5 ? k : 5;
            for (int i = 0; i < kk; i++)
                printf(" %d:%.4f", rec.topk_ids[(size_t)t * k + i],
                       rec.topk_logp[(size_t)t * k + i]);
            printf("%s rest %.4f\n", k > kk ? " ..." : "", rec.rest_logp[t]);
        }
    }
    lq_distill_close(r);
    return 0;
}

/* ---- distill (lq_distill_run) ----------------------------------------------------------------- */

typedef struct distill_ui {
    const args *a;
    tool_progress bar;
} distill_ui;

static void on_begin(void *user, int64_t resumed, uint64_t corpus_bytes) {
    distill_ui *u = user;
    if (resumed > 0 && !u->a->json)
        fprintf(stderr, TOOL ": resuming %s after %lld committed records\n", u->a->out,
                (long long)resumed);
    tool_progress_begin(&u->bar, "distill", (int64_t)corpus_bytes, !u->a->json);
}

static void on_progress(void *user, int64_t done, int64_t total, const char *what) {
    tool_progress_cb(&((distill_ui *)user)->bar, done, total, what);
}

static void on_record(void *user, int64_t added) {
    const args *a = ((distill_ui *)user)->a;
    if (a->debug_stop_after > 0 && added >= a->debug_stop_after)
        raise(SIGKILL); /* the resume test: die like a crash, no cleanup, no final commit */
}

/* "--features 0,5": layer numbers 0 .. n_layers. */
static int parse_features(const args *a, const lq_model *m, int32_t *layers, int *n) {
    *n = 0;
    for (const char *p = a->features; p && *p;) {
        char *e = NULL;
        long v = strtol(p, &e, 10);
        if (e == p || v < 0 || v > lq_model_config(m)->n_layers || (*e && *e != ','))
            return tool_bad_args("--features '%s': layers are 0 .. %d, comma separated",
                                 a->features, lq_model_config(m)->n_layers);
        if (*n == LQ_DISTILL_MAX_FEAT_LAYERS)
            return tool_bad_args("--features: at most %d layers", LQ_DISTILL_MAX_FEAT_LAYERS);
        layers[(*n)++] = (int32_t)v;
        p = *e ? e + 1 : e;
    }
    return 0;
}

static void print_summary(const args *a, const lq_distill_run_result *res) {
    double bpt = res->tokens ? (double)res->bytes / (double)res->tokens : 0.0;
    if (a->json) {
        json_t *j = json_object();
        json_object_set_new(j, "out", json_string(a->out));
        json_object_set_new(j, "records", json_integer(res->records));
        json_object_set_new(j, "tokens", json_integer(res->tokens));
        json_object_set_new(j, "bytes", json_integer((json_int_t)res->bytes));
        json_object_set_new(j, "bytes_per_token", json_real(bpt));
        json_object_set_new(j, "resumed_from", json_integer(res->resumed_from));
        json_object_set_new(j, "already_complete", json_boolean(res->already_complete));
        tool_print_json(j);
        return;
    }
    if (!res->already_complete)
        fprintf(stderr, TOOL ": %lld records in %.2f s\n", (long long)res->added, res->seconds);
    printf("%s: %lld records, %lld tokens, %llu bytes (%.1f bytes/token)%s\n", a->out,
           (long long)res->records, (long long)res->tokens, (unsigned long long)res->bytes, bpt,
           res->already_complete ? " (already complete)" : "");
}

static int run_distill(const args *a) {
    lq_model *m;
    lq_tokenizer *tok;
    int rc = tool_load_model(a->model, a->tokenizer, &m, &tok);
    if (rc) return rc;
    int32_t layers[LQ_DISTILL_MAX_FEAT_LAYERS];
    int n_layers = 0;
    if (a->k > lq_model_config(m)->vocab_size)
        rc = tool_bad_args("--k %d is larger than the vocabulary (%d)", a->k, lq_model_config(m)->vocab_size);
    if (!rc) rc = parse_features(a, m, layers, &n_layers);
    lq_pool *pool = rc ? NULL : lq_pool_create(a->threads);
    if (!rc && !pool) rc = tool_error(1, "cannot start %d threads", a->threads);
    if (!rc) {
        const char *base = strrchr(a->model, '/');
        distill_ui ui = {.a = a};
        lq_distill_run_opts o = {
            .corpus = a->file, .out = a->out, .teacher_name = base && base[1] ? base + 1 : a->model,
            .k = a->k, .ctx = a->ctx, .per_unit = a->per_line, .separator = a->separator,
            .feat_layers = layers, .n_feat_layers = n_layers, .logp_f16 = a->f16,
            .block_bytes = (size_t)a->block_kib << 10, .shard_bytes = (uint64_t)a->shard_kib << 10,
            .segment_bytes = (size_t)a->debug_piece_bytes, .pool = pool,
            .hooks = {.begin = on_begin, .progress = on_progress, .record = on_record, .user = &ui}};
        lq_distill_run_result res;
        lq_status s = lq_distill_run(m, tok, &o, &res);
        tool_progress_end(&ui.bar);
        if (s != LQ_OK) rc = tool_fail(s);
        else print_summary(a, &res);
    }
    lq_pool_free(pool);
    lq_tokenizer_free(tok);
    lq_model_free(m);
    return rc;
}

/* ---- sequences ------------------------------------------------------------------------------- */

/* Everything a sequences run needs between records. */
typedef struct seq_run {
    const args *a;
    const lq_model *m;
    const lq_tokenizer *tok;
    lq_pool *pool;
    lq_session *sess;
    lq_seq_writer *w;
    json_t *params;   /* the decoding options, repeated in every record */
    const char *mode; /* "greedy", "sample" or "beam" */
    int32_t stop[2];
    int32_t *gen;     /* (max_tokens) tokens of the record being generated */
    double *gen_lp;   /* (max_tokens) their raw log-probs */
    int n_gen;
    int64_t added;
    tool_progress bar;
    uint64_t prompt_off; /* --prompts: byte offset of the current unit (for its line number) */
    bool prompt_named;   /* the last error already names the prompt's file and line */
} seq_run;

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

/* Refuse prompt i: with --prompts the message names the file and line (defect 16: it named the
 * output directory), with --prompt the option. */
static lq_status seq_prompt_fail(seq_run *q, int64_t i, const char *what) {
    q->prompt_named = true;
    if (q->a->prompts)
        return lq_fail(LQ_ERR_INVALID_ARG, "%s:%lld: prompt %lld (counting from 0) %s", q->a->prompts,
                       (long long)prompt_line(q->a->prompts, q->prompt_off), (long long)i, what);
    return lq_fail(LQ_ERR_INVALID_ARG, "--prompt: the prompt %s", what);
}

static bool seq_on_token(void *user, const lq_sample_info *t) {
    seq_run *q = user;
    if (q->n_gen >= q->a->max_tokens) return false;
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
    json_object_set_new(j, "prompt", tool_json_text(prompt, plen, NULL));
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
    json_object_set_new(j, "text", tool_json_text(text, len, NULL));
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
    if (q->a->debug_stop_after > 0 && q->added >= q->a->debug_stop_after)
        raise(SIGKILL); /* the resume test: die like a crash, right after a commit */
    return LQ_OK;
}

static const char *stop_name(bool hit_stop, int n, int max_tokens) {
    return hit_stop ? "eos" : n >= max_tokens ? "max_tokens" : "context";
}

/* The records of prompt i from sample `first` on. */
static lq_status seq_prompt(seq_run *q, int64_t i, int first, const char *prompt, size_t plen) {
    const args *a = q->a;
    bool bos = lq_tokenizer_bos(q->tok) >= 0 &&
               (lq_tokenizer_add_bos_default(q->tok) || plen == 0);
    int32_t *pids = NULL;
    int64_t cap = 0, np = 0;
    lq_status st = lq_tokenizer_encode(q->tok, prompt, plen, bos, false, NULL, 0, &cap);
    if ((st == LQ_OK || st == LQ_ERR_INVALID_ARG) && !(pids = malloc((size_t)(cap + 1) * sizeof *pids)))
        st = lq_fail(LQ_ERR_NOMEM, "prompt %lld: out of memory", (long long)i);
    else if (st == LQ_OK || st == LQ_ERR_INVALID_ARG)
        st = lq_tokenizer_encode(q->tok, prompt, plen, bos, false, pids, cap + 1, &np);
    int max_ctx = lq_model_config(q->m)->max_seq_len;
    char what[96];
    if (st == LQ_OK && np == 0) st = seq_prompt_fail(q, i, "is empty and the tokenizer has no BOS");
    if (st == LQ_OK && np >= max_ctx) {
        snprintf(what, sizeof what, "has %lld tokens, more than fit the context of %d (with room for one "
                 "generated)", (long long)np, max_ctx);
        st = seq_prompt_fail(q, i, what);
    }
    int64_t base = i * a->sequences;
    if (st == LQ_OK && a->dec.beams > 1) {
        /* one search gives the prompt's N records: the N best hypotheses */
        lq_beam_opts o = {.n_beams = a->dec.beams, .n_best = a->sequences,
                          .length_penalty = a->dec.length_penalty, .max_new = a->max_tokens,
                          .stop_ids = q->stop, .n_stop = 2,
                          .vocab = lq_tokenizer_vocab_size(q->tok)};
        lq_beam_result r;
        st = lq_beam_search(q->m, q->pool, pids, (int)np, &o, &r);
        if (st == LQ_OK && r.n_hyps < a->sequences)
            st = lq_fail(LQ_ERR_UNSUPPORTED, "prompt %lld: beam search found %d hypotheses, "
                         "fewer than --sequences %d", (long long)i, r.n_hyps, a->sequences);
        for (int h = first; st == LQ_OK && h < a->sequences; h++) {
            const lq_beam_hyp *y = &r.hyps[h];
            int n = y->n - (y->finished ? 1 : 0);
            st = seq_emit(q, base + h, i, h, prompt, plen, pids, (int)np, y->tokens, y->logprobs,
                          n, stop_name(y->finished, y->n, a->max_tokens), NULL, y);
            tool_progress_update(&q->bar, base + h + 1);
        }
        if (r.hyps) lq_beam_result_free(&r);
    } else {
        bool greedy = a->dec.sp.temperature == 0;
        for (int j = first; st == LQ_OK && j < a->sequences; j++) {
            /* each record's own stream: a resumed run can start at any record */
            lq_sample_params sp = a->dec.sp;
            sp.seed = lq_seq_record_seed(a->dec.sp.seed, (uint64_t)i, (uint64_t)j);
            lq_sampler *smp = NULL;
            if ((st = lq_sampler_create(&sp, &smp)) != LQ_OK) break;
            lq_sample_gen_opts o = {.max_new = a->max_tokens, .stop_ids = q->stop, .n_stop = 2,
                                    .vocab = lq_tokenizer_vocab_size(q->tok)};
            lq_sample_gen_result r;
            q->n_gen = 0;
            st = lq_sample_generate(q->m, q->sess, smp, pids, (int)np, &o, seq_on_token, q, &r);
            lq_sampler_free(smp);
            if (st == LQ_OK)
                st = seq_emit(q, base + j, i, j, prompt, plen, pids, (int)np, q->gen, q->gen_lp,
                              q->n_gen, stop_name(r.hit_stop, q->n_gen, a->max_tokens),
                              greedy ? NULL : &sp.seed, NULL);
            tool_progress_update(&q->bar, base + j + 1);
        }
    }
    free(pids);
    return st;
}

/* run_id of the prompts: FNV-1a 64 of the --prompt text, or of the prompt file as for a corpus
 * (its first and last 64 KiB and size) and the separator. */
static lq_status prompts_id(const args *a, uint64_t *id) {
    if (a->prompts) {
        uint64_t size;
        return lq_distill_corpus_id(a->prompts, a->separator, false, id, &size);
    }
    uint64_t h = 0xcbf29ce484222325ull;
    for (const char *p = a->prompt; *p; p++) h = (h ^ (unsigned char)*p) * 0x100000001b3ull;
    *id = h;
    return LQ_OK;
}

/* Count the prompt units (for progress) without holding them. */
static lq_status count_prompts(const args *a, int64_t *n) {
    *n = 0;
    if (!a->prompts) {
        *n = 1;
        return LQ_OK;
    }
    lq_corpus *c = NULL;
    LQ_TRY(lq_corpus_open(a->prompts, 0, &c));
    lq_status st;
    for (;;) {
        const char *text;
        size_t len;
        uint64_t uo, no;
        st = lq_corpus_next_unit(c, a->separator, &text, &len, &uo, &no);
        if (st != LQ_OK || !text) break;
        (*n)++;
    }
    lq_corpus_close(c);
    return st;
}

static json_t *seq_params(const args *a) {
    json_t *p = json_object();
    const tool_sample_args *d = &a->dec;
    json_object_set_new(p, "max_tokens", json_integer(a->max_tokens));
    if (d->beams > 1) {
        json_object_set_new(p, "beams", json_integer(d->beams));
        json_object_set_new(p, "length_penalty", tool_json_float(d->length_penalty));
        return p;
    }
    json_object_set_new(p, "temperature", tool_json_float(d->sp.temperature));
    json_object_set_new(p, "top_k", json_integer(d->sp.top_k));
    json_object_set_new(p, "top_p", tool_json_float(d->sp.top_p));
    json_object_set_new(p, "min_p", tool_json_float(d->sp.min_p));
    json_object_set_new(p, "repeat_penalty", tool_json_float(d->sp.repeat_penalty));
    json_object_set_new(p, "repeat_last_n", json_integer(d->sp.repeat_last_n));
    char sb[32];
    snprintf(sb, sizeof sb, "%llu", (unsigned long long)d->sp.seed);
    json_object_set_new(p, "seed", json_string(sb));
    return p;
}

static int run_sequences(const args *a) {
    lq_model *m;
    lq_tokenizer *tok;
    int rc = tool_load_model(a->model, a->tokenizer, &m, &tok);
    if (rc) return rc;
    lq_status s = LQ_OK;
    lq_corpus *c = NULL;
    char *settings_txt = NULL;
    seq_run q = {.a = a, .m = m, .tok = tok, .params = seq_params(a),
                 .stop = {lq_tokenizer_eos(tok), lq_tokenizer_bos(tok)}};
    /* llama2.c models end a story with BOS, HF models with EOS: both stop */
    q.mode = a->dec.beams > 1 ? "beam" : a->dec.sp.temperature == 0 ? "greedy" : "sample";
    uint64_t pid = 0;
    int64_t n_prompts = 0;
    if ((s = prompts_id(a, &pid)) != LQ_OK || (s = count_prompts(a, &n_prompts)) != LQ_OK) {
        rc = tool_fail(s);
        goto done;
    }
    if (n_prompts == 0) {
        rc = tool_error(2, "%s: no prompts (every unit is blank)", a->prompts);
        goto done;
    }
    json_t *set = json_object();
    char h[17];
    snprintf(h, sizeof h, "%016llx", (unsigned long long)lq_distill_teacher_id(m));
    json_object_set_new(set, "teacher_id", json_string(h));
    const char *base = strrchr(a->model, '/');
    json_object_set_new(set, "teacher_name", json_string(base && base[1] ? base + 1 : a->model));
    snprintf(h, sizeof h, "%016llx", (unsigned long long)lq_tokenizer_hash(tok));
    json_object_set_new(set, "tokenizer_hash", json_string(h));
    snprintf(h, sizeof h, "%016llx", (unsigned long long)pid);
    json_object_set_new(set, "prompts_id", json_string(h));
    json_object_set_new(set, "prompts", json_integer(n_prompts));
    json_object_set_new(set, "sequences", json_integer(a->sequences));
    json_object_set_new(set, "mode", json_string(q.mode));
    json_object_set(set, "params", q.params);
    settings_txt = json_dumps(set, JSON_COMPACT | JSON_PRESERVE_ORDER);
    json_decref(set);
    if (!settings_txt || (s = lq_seq_writer_open(a->out, settings_txt, &q.w)) != LQ_OK) {
        rc = settings_txt ? tool_fail_at("cannot write", a->out, s) : tool_error(1, "out of memory");
        goto done;
    }
    int64_t resumed = lq_seq_writer_records(q.w), total = n_prompts * a->sequences;
    bool complete = lq_seq_writer_complete(q.w);
    if (!complete) {
        q.gen = malloc((size_t)a->max_tokens * sizeof *q.gen);
        q.gen_lp = malloc((size_t)a->max_tokens * sizeof *q.gen_lp);
        q.pool = lq_pool_create(a->threads);
        if (!q.gen || !q.gen_lp || !q.pool) {
            rc = tool_error(1, "cannot allocate buffers for %d tokens", a->max_tokens);
            goto done;
        }
        /* one session of the whole context, reused by every record (each starts at 0) */
        if (a->dec.beams == 1 &&
            (s = lq_session_create(m, lq_model_config(m)->max_seq_len, q.pool, &q.sess)) != LQ_OK) {
            rc = tool_fail(s);
            goto done;
        }
        if (resumed > 0 && !a->json)
            fprintf(stderr, TOOL ": resuming %s after %lld committed records\n", a->out,
                    (long long)resumed);
        tool_progress_begin(&q.bar, "sequences", total, !a->json);
        tool_progress_update(&q.bar, resumed);
        double t0 = lq_eval_now();
        int64_t first_prompt = resumed / a->sequences;
        if (a->prompt) {
            s = seq_prompt(&q, 0, (int)(resumed % a->sequences), a->prompt, strlen(a->prompt));
        } else if ((s = lq_corpus_open(a->prompts, 0, &c)) == LQ_OK) {
            for (int64_t i = 0; s == LQ_OK && i < n_prompts; i++) {
                const char *text;
                size_t len;
                uint64_t uo, no;
                if ((s = lq_corpus_next_unit(c, a->separator, &text, &len, &uo, &no)) != LQ_OK)
                    break;
                if (!text) {
                    s = lq_fail(LQ_ERR_MISMATCH, "%s: fewer prompts than counted: was it "
                                "changed?", a->prompts);
                    break;
                }
                if (i < first_prompt) continue; /* committed before the restart */
                q.prompt_off = uo;
                s = seq_prompt(&q, i, i == first_prompt ? (int)(resumed % a->sequences) : 0,
                               text, len);
            }
        }
        if (s == LQ_OK) s = lq_seq_writer_finish(q.w);
        tool_progress_end(&q.bar);
        double secs = lq_eval_now() - t0;
        if (s != LQ_OK) {
            rc = q.prompt_named ? tool_error(tool_exit_code(s), "%s", lq_last_error())
                                : tool_error(tool_exit_code(s), "%s: %s", a->out, lq_last_error());
            goto done;
        }
        if (!a->json)
            fprintf(stderr, TOOL ": %lld sequences in %.2f s\n", (long long)q.added, secs);
    }
    if (a->json) {
        json_t *j = json_object();
        json_object_set_new(j, "out", json_string(a->out));
        json_object_set_new(j, "sequences", json_integer(lq_seq_writer_records(q.w)));
        json_object_set_new(j, "prompts", json_integer(n_prompts));
        json_object_set_new(j, "mode", json_string(q.mode));
        json_object_set(j, "params", q.params);
        json_object_set_new(j, "resumed_from", json_integer(resumed));
        json_object_set_new(j, "already_complete", json_boolean(complete));
        tool_print_json(j);
    } else {
        printf("%s/sequences.jsonl: %lld sequences from %lld prompts (%s)%s\n", a->out,
               (long long)lq_seq_writer_records(q.w), (long long)n_prompts, q.mode,
               complete ? " (already complete)" : "");
    }
done:
    lq_corpus_close(c);
    lq_session_free(q.sess);
    lq_seq_writer_free(q.w);
    lq_pool_free(q.pool);
    json_decref(q.params);
    free(q.gen);
    free(q.gen_lp);
    free(settings_txt);
    lq_tokenizer_free(tok);
    lq_model_free(m);
    return rc;
}

int main(int argc, char **argv) {
    tool_init(TOOL, usage);
    args a;
    int rc = parse_args(argc, argv, &a);
    if (rc >= 0) return rc;
    rc = a.inspect ? run_inspect(&a) : a.sequences > 0 ? run_sequences(&a) : run_distill(&a);
    return rc ? rc : tool_finish_stdout();
}
