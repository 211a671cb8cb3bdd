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
#include "tool_cli.h"
#include "tool_progress.h"
#include "tool_model.h"
#include "tool_sample.h"
#include "quant-distill/distill_inspect.h"

#include <jansson.h>
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
        "                    first --positions N positions (default 4; --json: all); of a\n"
        "                    --sequences DIR: its settings and record I\n"
        "  --model PATH      Hugging Face directory, GGUF file or llama2.c .bin\n"
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

/* ---- sequences (lq_seq_run) ------------------------------------------------------------------- */

static void print_seq_summary(const args *a, const lq_seq_run_result *res) {
    if (a->json) {
        json_t *j = json_object();
        json_object_set_new(j, "out", json_string(a->out));
        json_object_set_new(j, "sequences", json_integer(res->records));
        json_object_set_new(j, "prompts", json_integer(res->prompts));
        json_object_set_new(j, "mode", json_string(res->mode));
        json_object_set_new(j, "params", json_loads(res->params_json, 0, NULL));
        json_object_set_new(j, "resumed_from", json_integer(res->resumed_from));
        json_object_set_new(j, "already_complete", json_boolean(res->already_complete));
        tool_print_json(j);
        return;
    }
    if (!res->already_complete)
        fprintf(stderr, TOOL ": %lld sequences in %.2f s\n", (long long)res->added, res->seconds);
    printf("%s/sequences.jsonl: %lld sequences from %lld prompts (%s)%s\n", a->out, (long long)res->records,
           (long long)res->prompts, res->mode, res->already_complete ? " (already complete)" : "");
}

static void on_seq_begin(void *user, int64_t resumed, uint64_t total) {
    distill_ui *u = user;
    if (resumed > 0 && !u->a->json)
        fprintf(stderr, TOOL ": resuming %s after %lld committed records\n", u->a->out, (long long)resumed);
    tool_progress_begin(&u->bar, "sequences", (int64_t)total, !u->a->json);
}

static int run_sequences(const args *a) {
    lq_model *m;
    lq_tokenizer *tok;
    int rc = tool_load_model(a->model, a->tokenizer, &m, &tok);
    if (rc) return rc;
    lq_pool *pool = lq_pool_create(a->threads);
    if (!pool) rc = tool_error(1, "cannot start %d threads", a->threads);
    if (!rc) {
        const char *base = strrchr(a->model, '/');
        distill_ui ui = {.a = a};
        lq_seq_run_opts o = {.prompts = a->prompts, .prompt = a->prompts ? NULL : a->prompt,
                             .separator = a->separator, .out = a->out,
                             .teacher_name = base && base[1] ? base + 1 : a->model, .sequences = a->sequences,
                             .max_tokens = a->max_tokens, .sp = a->dec.sp, .beams = a->dec.beams,
                             .length_penalty = a->dec.length_penalty, .pool = pool,
                             .hooks = {.begin = on_seq_begin, .progress = on_progress, .record = on_record,
                                       .user = &ui}};
        lq_seq_run_result res;
        lq_status s = lq_seq_run(m, tok, &o, &res);
        tool_progress_end(&ui.bar);
        if (s != LQ_OK) rc = tool_fail(s);
        else print_seq_summary(a, &res);
        free(res.params_json);
    }
    lq_pool_free(pool);
    lq_tokenizer_free(tok);
    lq_model_free(m);
    return rc;
}

int main(int argc, char **argv) {
    tool_init(TOOL, usage);
    args a;
    int rc = parse_args(argc, argv, &a);
    if (rc >= 0) return rc;
    if (a.inspect) rc = distill_inspect(a.inspect, a.record, a.positions, a.json);
    else rc = a.sequences > 0 ? run_sequences(&a) : run_distill(&a);
    return rc ? rc : tool_finish_stdout();
}
