/* quant-eval - perplexity of a model on a text file, its KL divergence against a baseline, a
 * llama-bench style speed test, or a comparison table of several checkpoints.
 *
 *   quant-eval --model PATH [--tokenizer F] --file TEXT [--ctx N] [--per-line]
 *              [--separator S] [--threads N] [--chunks N] [--json]
 *   quant-eval --model PATH --file TEXT --kld BASELINE [--base-tokenizer F] [...] [--json]
 *   quant-eval --model PATH --bench [--n-prompt 512] [--n-gen 128] [--reps 5] [--threads N]
 *              [--json]
 *   quant-eval --model PATH --file TEXT --draft-eval BASELINE [--draft-max K] [...] [--json]
 *   quant-eval --compare DIR... --file TEXT [--baseline DIR] [--bench] [--draft-eval]
 *              [--json | --markdown] [--html FILE]
 *   quant-eval --model PATH --serve-bench [...] | --batch-curve B1,B2,... (quant-eval/serve.c)
 */
#include "lq_eval.h"
#include "lq_bandwidth.h"
#include "quant-eval/kv_report.h"
#include "quant-eval/run_draft.h"
#include "quant-eval/serve.h"
#include "report_html.h"
#include "tool_cli.h"
#include "tool_model.h"
#include "tool_progress.h"

#include <jansson.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define TOOL "quant-eval"
/* Streaming buffer for the bandwidth yardstick: far larger than any last-level cache. */
#define BW_BYTES ((size_t)512 << 20)
#define BW_REPS 5

static void usage(FILE *f) {
    fprintf(f,
            "usage: " TOOL " --model PATH [--tokenizer FILE] --file TEXT [--ctx N] [--per-line]\n"
            "                  [--separator STR] [--chunks N] [--threads N] [--json]\n"
            "       " TOOL " --model PATH --file TEXT --kld BASELINE [--base-tokenizer FILE]\n"
            "                  [--base-f32-act]\n"
            "                  [--ctx N | --per-line [--separator STR]] [--json]\n"
            "       " TOOL " --model PATH --bench [--n-prompt N] [--n-gen N] [--reps N]\n"
            "                  [--threads N] [--device cpu|cuda] [--json]\n"
            "       " TOOL " --model PATH --file TEXT --draft-eval BASELINE [--draft-max K]\n"
            "                  [--draft-prompt N] [--draft-gen N] [--chunks N] [--json]\n"
            "       " TOOL " --compare DIR... --file TEXT [--baseline DIR] [--bench] [--draft-eval]\n"
            "                  [--ctx N | --per-line ...] [--json | --markdown] [--html FILE]\n"
            "       " TOOL " --model PATH --serve-bench [...] | --batch-curve B1,B2,... [...]\n"
            "                  (serving under load: " TOOL " --serve-bench --help)\n"
            "\n"
            "Perplexity (default: the llama.cpp protocol): the text is tokenized once and cut into\n"
            "chunks of --ctx tokens (default 512, at most the model's context); each chunk starts\n"
            "with BOS at position 0 and its second half is scored. Prints PPL +/- its standard\n"
            "error, tokens scored, seconds and tok/s.\n"
            "  --per-line        score each non-empty line (or --separator unit) on its own: BOS,\n"
            "                    positions from 0, every token after the first scored; CRLF\n"
            "                    line ends read as LF in either case\n"
            "  --separator STR   unit separator for --per-line (e.g. '<|endoftext|>')\n"
            "  --chunks N        evaluate at most N chunks; with --per-line, the first N units\n"
            "                    (non-empty lines or separator units), each scored whole\n"
            "\n"
            "KL divergence (--kld BASELINE), as llama-perplexity --kl-divergence: the baseline and\n"
            "the model run over the same chunks (their tokenizers must be identical); for every\n"
            "scored token KL(P_base || Q_model) of the next-token distributions and whether the\n"
            "argmaxes agree. Prints both PPLs, their difference and ratio, mean KLD +/- stderr,\n"
            "its percentiles, \"same top p\" and the token-probability change.\n"
            "  --base-tokenizer FILE  the baseline's tokenizer (for a llama2.c .bin baseline)\n"
            "  --base-f32-act    run the baseline with f32 activations (the int8-activation\n"
            "                    path off): --kld M on M itself measures that path's effect\n"
            "\n"
            "Draft acceptance (--draft-eval BASELINE): the model as speculative draft of the\n"
            "baseline. The text is cut into the chunks of the perplexity protocol; after each\n"
            "chunk's first --draft-prompt tokens (default 64) the baseline generates\n"
            "--draft-gen tokens (default 64) greedily with speculative decoding, the model\n"
            "proposing up to --draft-max (default 4) at a time. Prints the acceptance rate\n"
            "(accepted / drafted), the per-position agreement (accepted / judged: positions\n"
            "after a rejection are not judged), alpha = mean sum min(p, q) of the two raw\n"
            "distributions at the judged positions (speculative sampling's acceptance\n"
            "probability at temperature 1) and the mean accepted length per baseline forward.\n"
            "With --compare, --draft-eval (no value) adds \"accept %%\" and \"alpha\" columns\n"
            "against --baseline.\n"
            "\n"
            "Comparison (--compare DIR...): one row per checkpoint with its format, size on disk,\n"
            "bits per weight (linear layers, whole model), PPL, delta PPL, mean KLD and top-1\n"
            "agreement against the baseline (--baseline DIR, default the first DIR), and with\n"
            "--bench prefill / decode tok/s (default --n-prompt 128 --n-gen 32 --reps 3) and the\n"
            "share of the read-bandwidth bound decode reaches. A Markdown table on stdout, or one\n"
            "JSON object with --json. --tokenizer applies to every DIR.\n"
            "  --html FILE       also write the table as a self-contained HTML page (no scripts,\n"
            "                    nothing fetched; light and dark color schemes) with SVG plots of\n"
            "                    mean KLD and delta PPL against bits per weight and, with --bench,\n"
            "                    of decode and prefill tok/s against size on disk\n"
            "\n"
            "Speed (--bench), in the manner of llama-bench: prefill tok/s of one forward over\n"
            "--n-prompt random ids (default 512), decode tok/s of --n-gen one-token steps\n"
            "(default 128), median/min/max over --reps (default 5), peak RSS, weight bytes per\n"
            "token, and the machine's read bandwidth measured in the same run with the ratio\n"
            "decode achieves (bytes/token x tok/s / bandwidth).\n"
            "\n"
            "  --model PATH      Hugging Face directory, GGUF file or llama2.c .bin\n"
            "  --tokenizer FILE  tokenizer.bin (required for a .bin model), tokenizer.json or .gguf\n"
            "  --threads N       worker threads (default: all CPUs)\n"
            "  --device D        cpu (default) or cuda: run --model on the GPU (perplexity, --kld,\n"
            "                    --bench; needs a build with CUDA). With cuda, --bench reports no\n"
            "                    CPU bandwidth ratio (bench/cuda_workbench measures the GPU one)\n"
            "  --kv-cache T      KV cache of --model: f32 (default), f16, q8 (int8, a scale per\n"
            "                    token and head) or fp8 (E4M3, likewise); --kld's baseline keeps\n"
            "                    f32, so --kld M --model M measures the cache alone. Default: the\n"
            "                    checkpoint's kv_cache_scheme (static scales), else f32. CPU only\n"
            "  --json            one JSON object on stdout\n"
            "  --help            this text\n"
            "\n"
            "Exit codes: 0 ok, 2 bad arguments, 3 bad input file, 4 I/O, 1 other.\n");
}

#define MAX_COMPARE 64

typedef struct args {
    const char *model, *tokenizer, *file, *separator;
    const char *kld, *base_tokenizer, *baseline, *html;
    const char *command;           /* the command line, for the --html page */
    const char *dirs[MAX_COMPARE]; /* --compare: the checkpoints, in table order */
    int n_dirs;
    int ctx, threads, chunks, n_prompt, n_gen, reps;
    bool per_line, json, bench, compare, markdown, base_f32_act;
    bool bench_sizes_set;          /* --n-prompt / --n-gen / --reps given */
    const char *draft_eval;        /* --draft-eval BASELINE (not with --compare) */
    bool draft_cmp;                /* --compare ... --draft-eval */
    int draft_max, draft_prompt, draft_gen;
    lq_device device;              /* --device: where --model runs */
    lq_kv_type kv_cache;           /* --kv-cache: element type of --model's KV cache */
    bool kv_cache_set;
} args;

/* The cache --model runs with (--kv-cache, else the checkpoint's kv_cache_scheme, else f32) in a
 * result's JSON (quant-eval/kv_report.c, shared with the serving modes) or one text line. */
static void kv_print(const args *a, const lq_model *m) {
    const lq_kv_type t = lq_model_kv_cache(m);
    if (!a->kv_cache_set && t == LQ_KV_F32) return;
    const size_t b = lq_model_kv_bytes_per_pos(m, t), b16 = lq_model_kv_bytes_per_pos(m, LQ_KV_F16);
    printf("KV cache: %s%s, %zu bytes per position (%.3f of f16's %zu)\n", lq_kv_type_name(t),
           quant_eval_kv_static(m) ? " (static scales from the checkpoint)" : "", b, b16 ? (double)b / (double)b16 : 0.0, b16);
}

/* Returns -1 to go on, else an exit code. */
static int parse_args(int argc, char **argv, args *a) {
    *a = (args){.n_prompt = 512, .n_gen = 128, .reps = 5, .draft_max = 4, .draft_prompt = 64,
                .draft_gen = 64};
    /* --draft-eval takes the baseline, except with --compare (the baseline is --baseline) */
    for (int i = 1; i < argc; i++) a->compare |= strcmp(argv[i], "--compare") == 0;
    tool_args t = tool_args_begin(argc, argv);
    while (tool_args_next(&t)) {
        int *num = NULL, min = 0; /* an integer option: where it goes, its smallest value */
        if (tool_args_help(&t)) { usage(stdout); return 0; }
        else if (tool_args_value(&t, "--model")) a->model = t.value;
        else if (tool_args_value(&t, "--tokenizer")) a->tokenizer = t.value;
        else if (tool_args_value(&t, "--file")) a->file = t.value;
        else if (tool_args_value(&t, "--separator")) a->separator = t.value;
        else if (tool_args_flag(&t, "--per-line")) a->per_line = true;
        else if (tool_args_flag(&t, "--base-f32-act")) a->base_f32_act = true;
        else if (tool_args_flag(&t, "--json")) a->json = true;
        else if (tool_args_flag(&t, "--bench")) a->bench = true;
        else if (tool_args_flag(&t, "--compare")) a->compare = true;
        else if (tool_args_flag(&t, "--markdown")) a->markdown = true;
        else if (tool_args_value(&t, "--kld")) a->kld = t.value;
        else if (a->compare && tool_args_flag(&t, "--draft-eval")) a->draft_cmp = true;
        else if (!a->compare && tool_args_value(&t, "--draft-eval")) a->draft_eval = t.value;
        else if (tool_args_value(&t, "--draft-max")) { num = &a->draft_max; min = 1; }
        else if (tool_args_value(&t, "--draft-prompt")) { num = &a->draft_prompt; min = 1; }
        else if (tool_args_value(&t, "--draft-gen")) { num = &a->draft_gen; min = 1; }
        else if (tool_args_value(&t, "--base-tokenizer")) a->base_tokenizer = t.value;
        else if (tool_args_value(&t, "--baseline")) a->baseline = t.value;
        else if (tool_args_value(&t, "--html")) a->html = t.value;
        else if (tool_args_value(&t, "--kv-cache")) {
            if (lq_kv_type_parse(t.value, &a->kv_cache) != 0) return tool_args_bad_value(&t);
            a->kv_cache_set = true;
        }
        else if (tool_args_value(&t, "--device")) {
            if ((a->device = lq_device_from_name(t.value)) == LQ_DEVICE_COUNT) return tool_args_bad_value(&t);
        }
        else if (a->compare && tool_args_positional(&t)) {
            if (a->n_dirs == MAX_COMPARE)
                return tool_bad_args("--compare takes at most %d checkpoints", MAX_COMPARE);
            a->dirs[a->n_dirs++] = t.arg;
        }
        else if (tool_args_value(&t, "--ctx")) { num = &a->ctx; min = 2; }
        else if (tool_args_value(&t, "--threads")) { num = &a->threads; min = 1; }
        else if (tool_args_value(&t, "--chunks")) { num = &a->chunks; min = 1; }
        else if (tool_args_value(&t, "--n-prompt")) { num = &a->n_prompt; min = 0; }
        else if (tool_args_value(&t, "--n-gen")) { num = &a->n_gen; min = 0; }
        else if (tool_args_value(&t, "--reps")) { num = &a->reps; min = 1; }
        else return tool_args_unknown(&t);
        if (num && !tool_parse_int(t.value, min, num)) return tool_args_bad_value(&t);
        if (num == &a->n_prompt || num == &a->n_gen || num == &a->reps) a->bench_sizes_set = true;
    }
    if (a->compare) {
        if (a->model) return tool_bad_args("--compare takes checkpoints, not --model");
        if (a->kv_cache_set) return tool_bad_args("--kv-cache goes with --model, not --compare");
        if (a->kld) return tool_bad_args("--compare and --kld are exclusive (use --baseline)");
        if (a->n_dirs == 0) return tool_bad_args("--compare needs at least one checkpoint");
        if (!a->file) return tool_bad_args("--compare needs --file TEXT");
        if (a->json && a->markdown) return tool_bad_args("--json and --markdown are exclusive");
        if (a->separator && !a->per_line) return tool_bad_args("--separator needs --per-line");
        if (!a->bench_sizes_set) {
            a->n_prompt = 128;
            a->n_gen = 32;
            a->reps = 3;
        }
        if (a->bench && a->n_prompt == 0 && a->n_gen == 0)
            return tool_bad_args("--n-prompt and --n-gen are both 0: nothing to measure");
        return -1;
    }
    if (a->baseline) return tool_bad_args("--baseline goes with --compare (use --kld)");
    if (a->html) return tool_bad_args("--html goes with --compare");
    if (a->markdown) return tool_bad_args("--markdown goes with --compare");
    if (a->base_tokenizer && !a->kld && !a->draft_eval)
        return tool_bad_args("--base-tokenizer needs --kld or --draft-eval");
    if (a->base_f32_act && !a->kld) return tool_bad_args("--base-f32-act needs --kld");
    if (a->kld && !a->file) return tool_bad_args("--kld needs --file TEXT");
    if (a->kld && a->bench) return tool_bad_args("--kld and --bench are exclusive");
    if (a->draft_eval && (a->kld || a->bench))
        return tool_bad_args("--draft-eval goes without --kld and --bench");
    if (a->draft_eval && !a->file) return tool_bad_args("--draft-eval needs --file TEXT");
    if (!a->model) return tool_bad_args("--model is required");
    if (!a->bench && !a->file) return tool_bad_args("--file TEXT (or --bench) is required");
    if (a->bench && a->file) return tool_bad_args("--bench and --file are exclusive");
    if (a->separator && !a->per_line) return tool_bad_args("--separator needs --per-line");
    if (a->bench && a->n_prompt == 0 && a->n_gen == 0)
        return tool_bad_args("--n-prompt and --n-gen are both 0: nothing to measure");
    return -1;
}

/* Options of a perplexity / KL run, drawing `bar` (begun here; the caller ends it) unless --json. */
static lq_ppl_opts ppl_opts(const args *a, tool_progress *bar, const char *label) {
    tool_progress_begin(bar, label, 1, !a->json);
    return (lq_ppl_opts){.n_ctx = a->ctx, .per_line = a->per_line, .separator = a->separator,
                         .max_chunks = a->chunks, .progress = tool_progress_cb,
                         .progress_user = bar};
}

/* --draft-eval's options: the perplexity chunks, the draft sizes (progress set by the caller) */
static lq_draft_eval_opts draft_opts(const args *a) {
    lq_draft_eval_opts o = {.n_prompt = a->draft_prompt, .n_gen = a->draft_gen,
                            .draft_max = a->draft_max};
    o.chunks = (lq_ppl_opts){.n_ctx = a->ctx, .per_line = a->per_line, .separator = a->separator,
                             .max_chunks = a->chunks};
    return o;
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
    tool_progress bar;
    lq_ppl_opts o = ppl_opts(a, &bar, "perplexity");
    lq_ppl_result r;
    s = lq_eval_perplexity(m, tok, pool, text, len, &o, &r);
    tool_progress_end(&bar);
    free(text);
    lq_tokenizer_free(tok);
    if (s != LQ_OK) return tool_error(tool_exit_code(s), "%s: %s", a->file, lq_last_error());
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
        quant_eval_kv_json(j, m);
        tool_print_json(j);
    } else {
        kv_print(a, m);
        printf("PPL = %.6f +/- %.5f\n", r.ppl, r.ppl_stderr);
        printf("tokens scored: %lld (mean NLL %.6f, total NLL %.6f, %lld chunks)\n",
               (long long)r.n_scored, r.nll_mean, r.nll_sum, (long long)r.n_chunks);
        printf("time: %.3f s, %.1f scored tok/s\n", r.seconds, tps);
    }
    return 0;
}

static int run_bench(const args *a, const lq_model *m, lq_pool *pool) {
    tool_progress bar;
    tool_progress_begin(&bar, "bench", 1, !a->json);
    lq_bench_opts o = {.n_prompt = a->n_prompt, .n_gen = a->n_gen, .reps = a->reps, .seed = 42,
                       .progress = tool_progress_cb, .progress_user = &bar};
    lq_bench_result r;
    lq_status s = lq_eval_bench(m, pool, &o, &r);
    tool_progress_end(&bar);
    if (s != LQ_OK) return tool_fail(s);
    uint64_t peak_rss = tool_peak_rss_bytes();
    /* measured after the runs, so its 512 MB buffer does not inflate the model's peak RSS */
    /* The CPU's read bandwidth is no yardstick for a GPU run (0: no ratio). */
    double bw_gbs = a->device == LQ_DEVICE_CPU ? lq_measure_read_bandwidth(pool, BW_BYTES, BW_REPS) : 0;
    double achieved_gbs = (double)r.weight_bytes_per_token * r.decode.median / 1e9;
    double ratio = bw_gbs > 0 ? achieved_gbs / bw_gbs : 0;
    const lq_config *c = lq_model_config(m);
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
        json_object_set_new(j, "peak_rss_bytes", json_integer((json_int_t)peak_rss));
        json_object_set_new(j, "weight_bytes_per_token",
                            json_integer((json_int_t)r.weight_bytes_per_token));
        json_object_set_new(j, "bandwidth_gb_s", json_real(bw_gbs));
        json_object_set_new(j, "decode_gb_s", json_real(achieved_gbs));
        json_object_set_new(j, "bandwidth_ratio", json_real(ratio));
        quant_eval_kv_json(j, m);
        tool_print_json(j);
    } else {
        kv_print(a, m);
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
        printf("peak RSS: %.1f MiB\n", peak_rss / (1024.0 * 1024.0));
        printf("weight bytes/token: %.1f MB; decode reads %.2f GB/s; measured read bandwidth "
               "%.2f GB/s; ratio %.1f%%\n",
               r.weight_bytes_per_token / 1e6, achieved_gbs, bw_gbs, 100.0 * ratio);
    }
    return 0;
}

/* ---- --kld ---------------------------------------------------------------------------------- */

static int read_text(const char *path, char **text, size_t *len) {
    lq_status s = lq_text_read_file(path, text, len);
    if (s != LQ_OK) return tool_fail(s);
    if (*len == 0) {
        free(*text);
        *text = NULL;
        return tool_error(2, "%s: the file is empty", path);
    }
    return 0;
}

static json_t *kld_json(const lq_kld_result *r) {
    json_t *j = json_object();
    json_object_set_new(j, "tokens_scored", json_integer(r->n_scored));
    json_object_set_new(j, "tokens_total", json_integer(r->base.n_tokens));
    json_object_set_new(j, "chunks", json_integer(r->base.n_chunks));
    json_object_set_new(j, "ppl", json_real(r->model.ppl));
    json_object_set_new(j, "ppl_stderr", json_real(r->model.ppl_stderr));
    json_object_set_new(j, "ppl_base", json_real(r->base.ppl));
    json_object_set_new(j, "ppl_base_stderr", json_real(r->base.ppl_stderr));
    json_object_set_new(j, "nll_sum", json_real(r->model.nll_sum));
    json_object_set_new(j, "nll_sum_base", json_real(r->base.nll_sum));
    json_object_set_new(j, "delta_ppl", json_real(r->ppl_diff));
    json_object_set_new(j, "delta_ppl_stderr", json_real(r->ppl_diff_stderr));
    json_object_set_new(j, "delta_ppl_pct", json_real(r->ppl_diff_pct));
    json_object_set_new(j, "ppl_ratio", json_real(r->ppl_ratio));
    json_object_set_new(j, "ln_ppl_ratio", json_real(r->ln_ppl_ratio));
    json_object_set_new(j, "ln_ppl_ratio_stderr", json_real(r->ln_ppl_ratio_stderr));
    json_object_set_new(j, "ln_ppl_correlation", json_real(r->ln_ppl_cor));
    json_t *k = json_object();
    json_object_set_new(k, "mean", json_real(r->kld_mean));
    json_object_set_new(k, "stderr", json_real(r->kld_stderr));
    json_object_set_new(k, "min", json_real(r->kld_min));
    json_object_set_new(k, "p1", json_real(r->kld_p1));
    json_object_set_new(k, "p5", json_real(r->kld_p5));
    json_object_set_new(k, "p10", json_real(r->kld_p10));
    json_object_set_new(k, "median", json_real(r->kld_median));
    json_object_set_new(k, "p90", json_real(r->kld_p90));
    json_object_set_new(k, "p95", json_real(r->kld_p95));
    json_object_set_new(k, "p99", json_real(r->kld_p99));
    json_object_set_new(k, "p99_9", json_real(r->kld_p999));
    json_object_set_new(k, "max", json_real(r->kld_max));
    json_object_set_new(j, "kld", k);
    json_object_set_new(j, "same_top", json_real(r->same_top));
    json_object_set_new(j, "same_top_stderr", json_real(r->same_top_stderr));
    json_t *p = json_object();
    json_object_set_new(p, "mean", json_real(r->dp_mean));
    json_object_set_new(p, "stderr", json_real(r->dp_stderr));
    json_object_set_new(p, "rms", json_real(r->dp_rms));
    json_object_set_new(p, "rms_stderr", json_real(r->dp_rms_stderr));
    json_object_set_new(j, "delta_p", p);
    json_t *lr = json_object();
    json_object_set_new(lr, "p1", json_real(r->lr_p1));
    json_object_set_new(lr, "p5", json_real(r->lr_p5));
    json_object_set_new(lr, "p10", json_real(r->lr_p10));
    json_object_set_new(j, "ln_p_ratio", lr);
    json_object_set_new(j, "seconds", json_real(r->seconds));
    return j;
}

static void kld_print(const lq_kld_result *r) {
    printf("tokens scored: %lld (%lld chunks), %.3f s\n\n", (long long)r->n_scored,
           (long long)r->base.n_chunks, r->seconds);
    printf("====== Perplexity statistics ======\n");
    printf("Mean PPL(Q)                   : %10.6f +/- %10.6f\n", r->model.ppl,
           r->model.ppl_stderr);
    printf("Mean PPL(base)                : %10.6f +/- %10.6f\n", r->base.ppl, r->base.ppl_stderr);
    printf("Cor(ln(PPL(Q)), ln(PPL(base))): %6.2f%%\n", 100.0 * r->ln_ppl_cor);
    printf("Mean ln(PPL(Q)/PPL(base))     : %10.6f +/- %10.6f\n", r->ln_ppl_ratio,
           r->ln_ppl_ratio_stderr);
    printf("Mean PPL(Q)/PPL(base)         : %10.6f +/- %10.6f\n", r->ppl_ratio,
           r->ppl_ratio * r->ln_ppl_ratio_stderr);
    printf("Mean PPL(Q)-PPL(base)         : %10.6f +/- %10.6f (%+.3f%%)\n\n", r->ppl_diff,
           r->ppl_diff_stderr, r->ppl_diff_pct);
    printf("====== KL divergence statistics ======\n");
    printf("Mean    KLD: %10.6f +/- %10.6f\n", r->kld_mean, r->kld_stderr);
    printf("Maximum KLD: %10.6f\n", r->kld_max);
    printf("99.9%%   KLD: %10.6f\n", r->kld_p999);
    printf("99.0%%   KLD: %10.6f\n", r->kld_p99);
    printf("95.0%%   KLD: %10.6f\n", r->kld_p95);
    printf("90.0%%   KLD: %10.6f\n", r->kld_p90);
    printf("Median  KLD: %10.6f\n", r->kld_median);
    printf("10.0%%   KLD: %10.6f\n", r->kld_p10);
    printf(" 5.0%%   KLD: %10.6f\n", r->kld_p5);
    printf(" 1.0%%   KLD: %10.6f\n", r->kld_p1);
    printf("Minimum KLD: %10.6f\n\n", r->kld_min);
    printf("====== Token probability statistics ======\n");
    printf("Mean    dp: %6.3f +/- %5.3f %%\n", 100.0 * r->dp_mean, 100.0 * r->dp_stderr);
    printf("RMS dp    : %6.3f +/- %5.3f %%\n", 100.0 * r->dp_rms, 100.0 * r->dp_rms_stderr);
    printf("Same top p: %6.3f +/- %5.3f %%\n", 100.0 * r->same_top, 100.0 * r->same_top_stderr);
    printf(" 1.0%%   ln(q/p) of the correct token: %10.6f\n", r->lr_p1);
    printf(" 5.0%%   ln(q/p) of the correct token: %10.6f\n", r->lr_p5);
    printf("10.0%%   ln(q/p) of the correct token: %10.6f\n", r->lr_p10);
}


static int run_kld(const args *a, const lq_model *m, lq_pool *pool) {
    lq_model *base = NULL;
    lq_tokenizer *btok = NULL, *tok = NULL;
    char *text = NULL;
    size_t len = 0;
    int rc = tool_load_model(a->kld, a->base_tokenizer, &base, &btok);
    if (rc) return rc;
    /* the baseline is the exact model: an f32 cache even where its checkpoint has a kv_cache_scheme */
    lq_status s0 = lq_model_set_kv_cache(base, LQ_KV_F32);
    if (s0 != LQ_OK) rc = tool_fail(s0);
    lq_status s = rc ? LQ_OK : lq_eval_load_tokenizer(m, a->model, a->tokenizer, &tok);
    if (s != LQ_OK) rc = tool_fail(s);
    if (!rc) rc = read_text(a->file, &text, &len);
    lq_kld_result r;
    if (!rc) {
        tool_progress bar;
        lq_ppl_opts o = ppl_opts(a, &bar, "kl-divergence");
        o.base_f32_act = a->base_f32_act;
        s = lq_eval_kl_divergence(base, btok, m, tok, pool, text, len, &o, &r);
        tool_progress_end(&bar);
        if (s != LQ_OK) rc = tool_error(tool_exit_code(s), "%s: %s", a->file, lq_last_error());
    }
    if (!rc) {
        if (a->json) {
            json_t *j = kld_json(&r);
            json_object_set_new(j, "model", json_string(a->model));
            json_object_set_new(j, "baseline", json_string(a->kld));
            json_object_set_new(j, "base_f32_act", json_boolean(a->base_f32_act));
            json_object_set_new(j, "file", json_string(a->file));
            json_object_set_new(j, "mode", json_string(a->per_line ? "per-line" : "chunks"));
            json_object_set_new(j, "threads", json_integer(lq_pool_size(pool)));
            quant_eval_kv_json(j, m);
            tool_print_json(j);
        } else {
            printf("model: %s\nbaseline: %s\n", a->model, a->kld);
            kv_print(a, m);
            kld_print(&r);
        }
    }
    free(text);
    lq_tokenizer_free(tok);
    lq_tokenizer_free(btok);
    lq_model_free(base);
    return rc;
}

/* ---- --compare ------------------------------------------------------------------------------ */

typedef struct compare_row {
    const char *path;
    lq_model_info info;
    bool is_baseline;
    double base_ppl;  /* the baseline's PPL on the same tokens */
    double ppl, ppl_stderr, delta_ppl, delta_ppl_pct, kld_mean, kld_stderr, same_top;
    int64_t n_scored;
    bool benched;
    lq_bench_result bench;
    bool drafted;                 /* --draft-eval: the row as draft of the baseline */
    lq_draft_eval_result draft;
} compare_row;

static const char *base_name(const char *path) {
    size_t n = strlen(path);
    while (n > 1 && path[n - 1] == '/') n--;   /* "dir/" names the same as "dir" */
    static char buf[PATH_MAX];
    snprintf(buf, sizeof buf, "%.*s", (int)n, path);
    const char *slash = strrchr(buf, '/');
    return slash && slash[1] ? slash + 1 : buf;
}

static void row_name(const char *path, char *out, size_t cap) {
    snprintf(out, cap, "%s", base_name(path));
}

/* Quality (and speed) of one checkpoint against the loaded baseline. */
static int compare_one(const args *a, const lq_model *base, const lq_tokenizer *btok,
                       bool is_base, const char *text, size_t len, lq_pool *pool,
                       compare_row *row) {
    lq_model *m = NULL;
    lq_tokenizer *tok = NULL;
    int rc = tool_load_model(row->path, a->tokenizer, &m, &tok);
    if (rc) return rc;
    lq_status s = lq_eval_model_info(m, &row->info);
    tool_progress bar;
    lq_ppl_opts o = ppl_opts(a, &bar, "compare");
    row->is_baseline = is_base;
    if (s == LQ_OK && is_base) {
        /* KL of a distribution against itself is 0 and every argmax agrees: no second pass */
        lq_ppl_result p;
        s = lq_eval_perplexity(m, tok, pool, text, len, &o, &p);
        if (s == LQ_OK) {
            row->ppl = row->base_ppl = p.ppl;
            row->ppl_stderr = p.ppl_stderr;
            row->same_top = 1.0;
            row->n_scored = p.n_scored;
        }
    } else if (s == LQ_OK) {
        lq_kld_result r;
        s = lq_eval_kl_divergence(base, btok, m, tok, pool, text, len, &o, &r);
        if (s == LQ_OK) {
            row->ppl = r.model.ppl;
            row->base_ppl = r.base.ppl;
            row->ppl_stderr = r.model.ppl_stderr;
            row->delta_ppl = r.ppl_diff;
            row->delta_ppl_pct = r.ppl_diff_pct;
            row->kld_mean = r.kld_mean;
            row->kld_stderr = r.kld_stderr;
            row->same_top = r.same_top;
            row->n_scored = r.n_scored;
        }
    }
    tool_progress_end(&bar);
    if (s == LQ_OK && a->draft_cmp && is_base) {
        /* a model drafting for itself agrees everywhere: no second pass (as same_top = 1) */
        row->drafted = true;
        row->draft = (lq_draft_eval_result){.accept_rate = 1, .accept_pos = 1, .alpha = 1};
    } else if (s == LQ_OK && a->draft_cmp) {
        lq_draft_eval_opts d = draft_opts(a);
        tool_progress_begin(&bar, "draft-eval", 1, !a->json);
        d.chunks.progress = tool_progress_cb;
        d.chunks.progress_user = &bar;
        s = lq_eval_draft(base, btok, m, tok, pool, text, len, &d, &row->draft);
        tool_progress_end(&bar);
        row->drafted = s == LQ_OK;
    }
    if (s == LQ_OK && a->bench) {
        tool_progress_begin(&bar, "bench", 1, !a->json);
        lq_bench_opts bo = {.n_prompt = a->n_prompt, .n_gen = a->n_gen, .reps = a->reps,
                            .seed = 42, .progress = tool_progress_cb, .progress_user = &bar};
        s = lq_eval_bench(m, pool, &bo, &row->bench);
        tool_progress_end(&bar);
        row->benched = s == LQ_OK;
    }
    if (s != LQ_OK) rc = tool_fail_at("cannot evaluate", row->path, s);
    lq_tokenizer_free(tok);
    lq_model_free(m);
    return rc;
}

static double bw_ratio(const compare_row *r, double bw_gbs) {
    if (!r->benched || bw_gbs <= 0) return 0.0;
    return (double)r->bench.weight_bytes_per_token * r->bench.decode.median / 1e9 / bw_gbs;
}

static void compare_markdown(const args *a, const compare_row *rows, int n, double base_ppl,
                             const char *base_path, double bw_gbs) {
    printf("file: %s (%s), baseline: %s (PPL %.4f)\n\n", a->file,
           a->per_line ? "per-line" : "chunks", base_path, base_ppl);
    printf("| model | format | size MiB | bpw linear | bpw all | PPL | dPPL | dPPL %% | "
           "mean KLD | same top %% |");
    if (a->draft_cmp) printf(" accept %% | alpha |");
    if (a->bench) printf(" pp%d tok/s | tg%d tok/s | tg / BW bound |", a->n_prompt, a->n_gen);
    printf("\n| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |");
    if (a->draft_cmp) printf(" ---: | ---: |");
    if (a->bench) printf(" ---: | ---: | ---: |");
    printf("\n");
    for (int i = 0; i < n; i++) {
        const compare_row *r = &rows[i];
        char name[PATH_MAX];
        row_name(r->path, name, sizeof name);
        printf("| %s | %s | %.2f | %.2f | %.2f | %.4f | %+.4f | %+.2f | %.6f | %.2f |", name,
               r->info.format, r->info.disk_bytes / (1024.0 * 1024.0), r->info.bpw_linear,
               r->info.bpw_overall, r->ppl, r->delta_ppl, r->delta_ppl_pct, r->kld_mean,
               100.0 * r->same_top);
        if (a->draft_cmp) printf(" %.2f | %.4f |", 100.0 * r->draft.accept_rate, r->draft.alpha);
        if (a->bench)
            printf(" %.1f | %.1f | %.0f%% |", r->bench.prefill.median, r->bench.decode.median,
                   100.0 * bw_ratio(r, bw_gbs));
        printf("\n");
    }
    if (a->bench)
        printf("\nread bandwidth %.2f GB/s (measured in this run), %d threads\n", bw_gbs,
               n ? rows[0].bench.threads : 0);
    if (a->draft_cmp)
        printf("\naccept %%: greedy speculative acceptance as draft of the baseline (draft-max %d, "
               "%d-token prompts, %d generated per chunk); alpha: mean sum min(p, q)\n",
               a->draft_max, a->draft_prompt, a->draft_gen);
}

static void compare_json(const args *a, const compare_row *rows, int n, double base_ppl,
                         const char *base_path, double bw_gbs, lq_pool *pool) {
    json_t *j = json_object();
    json_object_set_new(j, "file", json_string(a->file));
    json_object_set_new(j, "mode", json_string(a->per_line ? "per-line" : "chunks"));
    json_object_set_new(j, "baseline", json_string(base_path));
    json_object_set_new(j, "baseline_ppl", json_real(base_ppl));
    json_object_set_new(j, "threads", json_integer(lq_pool_size(pool)));
    if (a->bench) {
        json_object_set_new(j, "n_prompt", json_integer(a->n_prompt));
        json_object_set_new(j, "n_gen", json_integer(a->n_gen));
        json_object_set_new(j, "reps", json_integer(a->reps));
        json_object_set_new(j, "bandwidth_gb_s", json_real(bw_gbs));
    }
    json_t *arr = json_array();
    for (int i = 0; i < n; i++) {
        const compare_row *r = &rows[i];
        char name[PATH_MAX];
        row_name(r->path, name, sizeof name);
        json_t *o = json_object();
        json_object_set_new(o, "name", json_string(name));
        json_object_set_new(o, "path", json_string(r->path));
        json_object_set_new(o, "baseline", json_boolean(r->is_baseline));
        json_object_set_new(o, "format", json_string(r->info.format));
        json_object_set_new(o, "disk_bytes", json_integer((json_int_t)r->info.disk_bytes));
        json_object_set_new(o, "params", json_integer(r->info.n_params));
        json_object_set_new(o, "bpw_linear", json_real(r->info.bpw_linear));
        json_object_set_new(o, "bpw_overall", json_real(r->info.bpw_overall));
        json_object_set_new(o, "ppl", json_real(r->ppl));
        json_object_set_new(o, "ppl_stderr", json_real(r->ppl_stderr));
        json_object_set_new(o, "delta_ppl", json_real(r->delta_ppl));
        json_object_set_new(o, "delta_ppl_pct", json_real(r->delta_ppl_pct));
        json_object_set_new(o, "kld_mean", json_real(r->kld_mean));
        json_object_set_new(o, "kld_stderr", json_real(r->kld_stderr));
        json_object_set_new(o, "same_top", json_real(r->same_top));
        json_object_set_new(o, "tokens_scored", json_integer(r->n_scored));
        if (r->drafted) {
            json_object_set_new(o, "draft_acceptance_rate", json_real(r->draft.accept_rate));
            json_object_set_new(o, "draft_acceptance_per_position", json_real(r->draft.accept_pos));
            json_object_set_new(o, "draft_alpha", json_real(r->draft.alpha));
            json_object_set_new(o, "draft_mean_accepted_length", json_real(r->draft.mean_accepted));
        }
        if (r->benched) {
            json_object_set_new(o, "prefill_tok_s", json_real(r->bench.prefill.median));
            json_object_set_new(o, "decode_tok_s", json_real(r->bench.decode.median));
            json_object_set_new(o, "weight_bytes_per_token",
                                json_integer((json_int_t)r->bench.weight_bytes_per_token));
            json_object_set_new(o, "decode_bandwidth_ratio", json_real(bw_ratio(r, bw_gbs)));
        } else {
            json_object_set_new(o, "prefill_tok_s", json_null());
            json_object_set_new(o, "decode_tok_s", json_null());
        }
        json_array_append_new(arr, o);
    }
    json_object_set_new(j, "rows", arr);
    tool_print_json(j);
}

/* The --html page: the same rows as the table. */
static int compare_html(const args *a, const compare_row *rows, int n, double base_ppl,
                        const char *base_path, double bw_gbs, lq_pool *pool) {
    lq_report_row *rr = calloc((size_t)n, sizeof *rr);
    char (*names)[256] = calloc((size_t)n, sizeof *names);
    if (!rr || !names) {
        free(rr);
        free(names);
        return tool_error(1, "cannot allocate the report rows");
    }
    for (int i = 0; i < n; i++) {
        const compare_row *r = &rows[i];
        row_name(r->path, names[i], sizeof names[i]);
        rr[i] = (lq_report_row){
            .name = names[i], .path = r->path, .format = r->info.format,
            .is_baseline = r->is_baseline, .disk_bytes = r->info.disk_bytes,
            .bpw_linear = r->info.bpw_linear, .bpw_overall = r->info.bpw_overall, .ppl = r->ppl,
            .ppl_stderr = r->ppl_stderr, .delta_ppl = r->delta_ppl,
            .delta_ppl_pct = r->delta_ppl_pct, .kld_mean = r->kld_mean,
            .kld_stderr = r->kld_stderr, .same_top = r->same_top, .benched = r->benched,
            .prefill_tok_s = r->bench.prefill.median, .decode_tok_s = r->bench.decode.median,
            .bw_ratio = bw_ratio(r, bw_gbs), .drafted = r->drafted,
            .draft_accept = r->draft.accept_rate, .draft_alpha = r->draft.alpha};
    }
    lq_report rep = {.file = a->file, .mode = a->per_line ? "per-line" : "chunks",
                     .baseline = base_path, .baseline_ppl = base_ppl,
                     .threads = lq_pool_size(pool), .bench = a->bench, .n_prompt = a->n_prompt,
                     .n_gen = a->n_gen, .bandwidth_gb_s = bw_gbs, .command = a->command,
                     .draft_eval = a->draft_cmp, .draft_max = a->draft_max,
                     .rows = rr, .n_rows = n};
    lq_status s = lq_report_write_html(&rep, a->html);
    free(rr);
    free(names);
    return s == LQ_OK ? 0 : tool_fail_at("cannot write the report", a->html, s);
}

static int run_compare(const args *a, lq_pool *pool) {
    const char *base_path = a->baseline ? a->baseline : a->dirs[0];
    lq_model *base = NULL;
    lq_tokenizer *btok = NULL;
    char *text = NULL;
    size_t len = 0;
    compare_row *rows = calloc((size_t)a->n_dirs, sizeof *rows);
    if (!rows) return tool_error(1, "cannot allocate %d rows", a->n_dirs);
    int rc = tool_load_model(base_path, a->tokenizer, &base, &btok);
    if (!rc) rc = read_text(a->file, &text, &len);
    double base_ppl = 0;
    for (int i = 0; i < a->n_dirs && !rc; i++) {
        rows[i].path = a->dirs[i];
        bool is_base = strcmp(a->dirs[i], base_path) == 0;
        if (!a->json && isatty(2)) fprintf(stderr, "%s: evaluating %s\n", TOOL, a->dirs[i]);
        rc = compare_one(a, base, btok, is_base, text, len, pool, &rows[i]);
        if (!rc) base_ppl = rows[i].base_ppl; /* the same for every row: same tokens */
    }
    double bw_gbs = 0;
    /* measured after every model ran, so its 512 MB buffer does not inflate their peak RSS */
    if (!rc && a->bench) bw_gbs = lq_measure_read_bandwidth(pool, BW_BYTES, BW_REPS);
    if (!rc) {
        if (a->json) compare_json(a, rows, a->n_dirs, base_ppl, base_path, bw_gbs, pool);
        else compare_markdown(a, rows, a->n_dirs, base_ppl, base_path, bw_gbs);
        if (a->html) rc = compare_html(a, rows, a->n_dirs, base_ppl, base_path, bw_gbs, pool);
    }
    free(rows);
    free(text);
    lq_tokenizer_free(btok);
    lq_model_free(base);
    return rc;
}

int main(int argc, char **argv) {
    if (quant_eval_is_serve(argc, argv)) return quant_eval_serve(argc, argv);
    tool_init(TOOL, usage);
    args a;
    int rc = parse_args(argc, argv, &a);
    if (rc >= 0) return rc;
    char *command = NULL; /* "quant-eval --compare ..." for the --html page */
    if (a.html) {
        size_t n = 1;
        for (int i = 0; i < argc; i++) n += strlen(i ? argv[i] : TOOL) + 3;
        if ((command = malloc(n))) {
            command[0] = 0;
            for (int i = 0; i < argc; i++) {
                const char *w = i ? argv[i] : TOOL;
                bool quote = strpbrk(w, " \t\"'$<>|&;()*?[]") != NULL;
                strcat(command, i ? " " : "");
                strcat(command, quote ? "'" : "");
                strcat(command, w);
                strcat(command, quote ? "'" : "");
            }
        }
        a.command = command;
    }
    if (a.compare) {
        lq_pool *pool = lq_pool_create(a.threads);
        if (!pool) return tool_error(1, "cannot create a pool of %d threads", a.threads);
        rc = run_compare(&a, pool);
        lq_pool_free(pool);
        free(command);
        return rc ? rc : tool_finish_stdout();
    }
    lq_model *m = NULL;
    lq_status s = lq_model_load(a.model, &m);
    if (s == LQ_OK && (s = lq_model_to_device(m, a.device)) == LQ_OK && a.kv_cache_set)
        s = lq_model_set_kv_cache(m, a.kv_cache);
    if (s != LQ_OK) lq_model_free(m);
    if (s != LQ_OK) return tool_fail(s);
    lq_pool *pool = lq_pool_create(a.threads);
    if (!pool) {
        lq_model_free(m);
        return tool_error(1, "cannot create a pool of %d threads", a.threads);
    }
    if (a.draft_eval) {
        tool_draft_args da = {.model = a.model, .baseline = a.draft_eval, .tokenizer = a.tokenizer,
                              .base_tokenizer = a.base_tokenizer, .file = a.file, .json = a.json,
                              .opts = draft_opts(&a)};
        rc = tool_draft_eval_run(&da, m, pool);
    } else {
        rc = a.bench ? run_bench(&a, m, pool) : a.kld ? run_kld(&a, m, pool) : run_ppl(&a, m, pool);
    }
    lq_pool_free(pool);
    lq_model_free(m);
    return rc ? rc : tool_finish_stdout();
}
