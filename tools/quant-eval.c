/* quant-eval - perplexity of a model on a text file, or a llama-bench style speed test.
 *
 *   quant-eval --model PATH [--tokenizer F] --file TEXT [--ctx N] [--per-line]
 *              [--separator S] [--threads N] [--chunks N] [--json]
 *   quant-eval --model PATH --bench [--n-prompt 512] [--n-gen 128] [--reps 5] [--threads N]
 *              [--json]
 */
#include "lq_eval.h"
#include "lq_bandwidth.h"
#include "tool_cli.h"

#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define TOOL "quant-eval"
/* Streaming buffer for the bandwidth yardstick: far larger than any last-level cache. */
#define BW_BYTES ((size_t)512 << 20)
#define BW_REPS 5

static void usage(FILE *f) {
    fprintf(f,
            "usage: " TOOL " --model PATH [--tokenizer FILE] --file TEXT [--ctx N] [--per-line]\n"
            "                  [--separator STR] [--chunks N] [--threads N] [--json]\n"
            "       " TOOL " --model PATH --bench [--n-prompt N] [--n-gen N] [--reps N]\n"
            "                  [--threads N] [--json]\n"
            "\n"
            "Perplexity (default: the llama.cpp protocol): the text is tokenized once and cut into\n"
            "chunks of --ctx tokens (default 512, at most the model's context); each chunk starts\n"
            "with BOS at position 0 and its second half is scored. Prints PPL +/- its standard\n"
            "error, tokens scored, seconds and tok/s.\n"
            "  --per-line        score each non-empty line (or --separator unit) on its own: BOS,\n"
            "                    positions from 0, every token after the first scored\n"
            "  --separator STR   unit separator for --per-line (e.g. '<|endoftext|>')\n"
            "  --chunks N        evaluate at most N chunks\n"
            "\n"
            "Speed (--bench), in the manner of llama-bench: prefill tok/s of one forward over\n"
            "--n-prompt random ids (default 512), decode tok/s of --n-gen one-token steps\n"
            "(default 128), median/min/max over --reps (default 5), peak RSS, weight bytes per\n"
            "token, and the machine's read bandwidth measured in the same run with the ratio\n"
            "decode achieves (bytes/token x tok/s / bandwidth).\n"
            "\n"
            "  --model PATH      Hugging Face directory or llama2.c .bin\n"
            "  --tokenizer FILE  tokenizer.bin (required for a .bin model), tokenizer.json or .gguf\n"
            "  --threads N       worker threads (default: all CPUs)\n"
            "  --json            one JSON object on stdout\n"
            "  --help            this text\n"
            "\n"
            "Exit codes: 0 ok, 2 bad arguments, 3 bad input file, 4 I/O, 1 other.\n");
}

typedef struct args {
    const char *model, *tokenizer, *file, *separator;
    int ctx, threads, chunks, n_prompt, n_gen, reps;
    bool per_line, json, bench;
} args;

/* Returns -1 to go on, else an exit code. */
static int parse_args(int argc, char **argv, args *a) {
    *a = (args){.n_prompt = 512, .n_gen = 128, .reps = 5};
    tool_args t = tool_args_begin(argc, argv);
    while (tool_args_next(&t)) {
        int *num = NULL, min = 0; /* an integer option: where it goes, its smallest value */
        if (tool_args_help(&t)) { usage(stdout); return 0; }
        else if (tool_args_value(&t, "--model")) a->model = t.value;
        else if (tool_args_value(&t, "--tokenizer")) a->tokenizer = t.value;
        else if (tool_args_value(&t, "--file")) a->file = t.value;
        else if (tool_args_value(&t, "--separator")) a->separator = t.value;
        else if (tool_args_flag(&t, "--per-line")) a->per_line = true;
        else if (tool_args_flag(&t, "--json")) a->json = true;
        else if (tool_args_flag(&t, "--bench")) a->bench = true;
        else if (tool_args_value(&t, "--ctx")) { num = &a->ctx; min = 2; }
        else if (tool_args_value(&t, "--threads")) { num = &a->threads; min = 1; }
        else if (tool_args_value(&t, "--chunks")) { num = &a->chunks; min = 1; }
        else if (tool_args_value(&t, "--n-prompt")) { num = &a->n_prompt; min = 0; }
        else if (tool_args_value(&t, "--n-gen")) { num = &a->n_gen; min = 0; }
        else if (tool_args_value(&t, "--reps")) { num = &a->reps; min = 1; }
        else return tool_args_unknown(&t);
        if (num && !tool_parse_int(t.value, min, num)) return tool_args_bad_value(&t);
    }
    if (!a->model) return tool_bad_args("--model is required");
    if (!a->bench && !a->file) return tool_bad_args("--file TEXT (or --bench) is required");
    if (a->bench && a->file) return tool_bad_args("--bench and --file are exclusive");
    if (a->separator && !a->per_line) return tool_bad_args("--separator needs --per-line");
    if (a->bench && a->n_prompt == 0 && a->n_gen == 0)
        return tool_bad_args("--n-prompt and --n-gen are both 0: nothing to measure");
    return -1;
}

static void print_json(json_t *o) {
    char *s = json_dumps(o, JSON_INDENT(2) | JSON_PRESERVE_ORDER);
    if (s) {
        printf("%s\n", s);
        free(s);
    }
    json_decref(o);
}

static int run_ppl(const args *a, const lq_model *m, lq_pool *pool) {
    lq_tokenizer *tok = NULL;
    lq_status s = lq_eval_load_tokenizer(m, a->model, a->tokenizer, &tok);
    if (s != LQ_OK) return tool_fail(s);
    char *text = NULL;
    size_t len = 0;
    s = lq_text_read_file(a->file, &text, &len);
    if (s != LQ_OK) {
        lq_tokenizer_free(tok);
        return tool_fail(s);
    }
    if (len == 0) {
        free(text);
        lq_tokenizer_free(tok);
        return tool_error(2, "%s: the file is empty", a->file);
    }
    lq_ppl_opts o = {.n_ctx = a->ctx, .per_line = a->per_line, .separator = a->separator,
                     .max_chunks = a->chunks, .progress = !a->json};
    lq_ppl_result r;
    s = lq_eval_perplexity(m, tok, pool, text, len, &o, &r);
    free(text);
    lq_tokenizer_free(tok);
    if (s != LQ_OK) return tool_error(lq_status_exit_code(s), "%s: %s", a->file, lq_last_error());
    double tps = r.seconds > 0 ? (double)r.n_scored / r.seconds : 0;
    if (a->json) {
        json_t *j = json_object();
        json_object_set_new(j, "model", json_string(a->model));
        json_object_set_new(j, "file", json_string(a->file));
        json_object_set_new(j, "mode", json_string(a->per_line ? "per-line" : "chunks"));
        json_object_set_new(j, "ppl", json_real(r.ppl));
        json_object_set_new(j, "ppl_stderr", json_real(r.ppl_stderr));
        json_object_set_new(j, "nll_sum", json_real(r.nll_sum));
        json_object_set_new(j, "nll_mean", json_real(r.nll_mean));
        json_object_set_new(j, "tokens_scored", json_integer(r.n_scored));
        json_object_set_new(j, "tokens_total", json_integer(r.n_tokens));
        json_object_set_new(j, "chunks", json_integer(r.n_chunks));
        json_object_set_new(j, "seconds", json_real(r.seconds));
        json_object_set_new(j, "tokens_per_second", json_real(tps));
        json_object_set_new(j, "threads", json_integer(lq_pool_size(pool)));
        print_json(j);
    } else {
        printf("PPL = %.6f +/- %.5f\n", r.ppl, r.ppl_stderr);
        printf("tokens scored: %lld (mean NLL %.6f, total NLL %.6f, %lld chunks)\n",
               (long long)r.n_scored, r.nll_mean, r.nll_sum, (long long)r.n_chunks);
        printf("time: %.3f s, %.1f scored tok/s\n", r.seconds, tps);
    }
    return 0;
}

static int run_bench(const args *a, const lq_model *m, lq_pool *pool) {
    lq_bench_opts o = {.n_prompt = a->n_prompt, .n_gen = a->n_gen, .reps = a->reps, .seed = 42,
                       .progress = !a->json};
    lq_bench_result r;
    lq_status s = lq_eval_bench(m, pool, &o, &r);
    if (s != LQ_OK) return tool_fail(s);
    /* measured after the runs, so its 512 MB buffer does not inflate the model's peak RSS */
    double bw_gbs = lq_measure_read_bandwidth(pool, BW_BYTES, BW_REPS);
    double achieved_gbs = (double)r.weight_bytes_per_token * r.decode.median / 1e9;
    double ratio = bw_gbs > 0 ? achieved_gbs / bw_gbs : 0;
    const lq_config *c = &m->cfg;
    if (a->json) {
        json_t *j = json_object();
        json_object_set_new(j, "model", json_string(a->model));
        json_object_set_new(j, "params", json_integer(r.n_params));
        json_object_set_new(j, "threads", json_integer(r.threads));
        json_object_set_new(j, "n_prompt", json_integer(a->n_prompt));
        json_object_set_new(j, "n_gen", json_integer(a->n_gen));
        json_object_set_new(j, "reps", json_integer(a->reps));
        json_t *p = json_object();
        json_object_set_new(p, "median", json_real(r.prefill.median));
        json_object_set_new(p, "min", json_real(r.prefill.min));
        json_object_set_new(p, "max", json_real(r.prefill.max));
        json_object_set_new(j, "prefill_tok_s", p);
        json_t *d = json_object();
        json_object_set_new(d, "median", json_real(r.decode.median));
        json_object_set_new(d, "min", json_real(r.decode.min));
        json_object_set_new(d, "max", json_real(r.decode.max));
        json_object_set_new(j, "decode_tok_s", d);
        json_object_set_new(j, "peak_rss_bytes", json_integer((json_int_t)r.peak_rss));
        json_object_set_new(j, "weight_bytes_per_token",
                            json_integer((json_int_t)r.weight_bytes_per_token));
        json_object_set_new(j, "bandwidth_gb_s", json_real(bw_gbs));
        json_object_set_new(j, "decode_gb_s", json_real(achieved_gbs));
        json_object_set_new(j, "bandwidth_ratio", json_real(ratio));
        print_json(j);
    } else {
        printf("model: %s (%s, dim %d, %d layers, vocab %d, %.1f M params), %d threads\n",
               a->model, c->arch, c->dim, c->n_layers, c->vocab_size, r.n_params / 1e6,
               r.threads);
        printf("| test   |  tokens |  median tok/s |     min tok/s |     max tok/s |\n");
        printf("| ------ | ------: | ------------: | ------------: | ------------: |\n");
        if (a->n_prompt > 0)
            printf("| pp%-4d | %7d | %13.2f | %13.2f | %13.2f |\n", a->n_prompt, a->n_prompt,
                   r.prefill.median, r.prefill.min, r.prefill.max);
        if (a->n_gen > 0)
            printf("| tg%-4d | %7d | %13.2f | %13.2f | %13.2f |\n", a->n_gen, a->n_gen,
                   r.decode.median, r.decode.min, r.decode.max);
        printf("peak RSS: %.1f MiB\n", r.peak_rss / (1024.0 * 1024.0));
        printf("weight bytes/token: %.1f MB; decode reads %.2f GB/s; measured read bandwidth "
               "%.2f GB/s; ratio %.1f%%\n",
               r.weight_bytes_per_token / 1e6, achieved_gbs, bw_gbs, 100.0 * ratio);
    }
    return 0;
}

int main(int argc, char **argv) {
    tool_init(TOOL, usage);
    args a;
    int rc = parse_args(argc, argv, &a);
    if (rc >= 0) return rc;
    lq_model *m = NULL;
    lq_status s = lq_model_load(a.model, &m);
    if (s != LQ_OK) return tool_fail(s);
    lq_pool *pool = lq_pool_create(a.threads);
    if (!pool) {
        lq_model_free(m);
        return tool_error(1, "cannot create a pool of %d threads", a.threads);
    }
    rc = a.bench ? run_bench(&a, m, pool) : run_ppl(&a, m, pool);
    lq_pool_free(pool);
    lq_model_free(m);
    return rc ? rc : tool_finish_stdout();
}
