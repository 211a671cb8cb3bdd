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
 *
 * This file: the options, perplexity and the dispatch. --kld, --bench and --compare are in
 * quant-eval/kld.c, bench.c and compare.c (eval_modes.h), --draft-eval in quant-eval/draft.c.
 */
#include "lq_eval.h"
#include "quant-eval/eval_modes.h"
#include "quant-eval/kv_report.h"
#include "quant-eval/run_draft.h"
#include "quant-eval/serve.h"
#include "tool_cli.h"
#include "tool_model.h"
#include "tool_progress.h"

#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define TOOL "quant-eval"

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

/* Returns -1 to go on, else an exit code. */
static int parse_args(int argc, char **argv, quant_eval_args *a) {
    *a = (quant_eval_args){.n_prompt = 512, .n_gen = 128, .reps = 5, .draft_max = 4, .draft_prompt = 64,
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

/* ---- shared by the modes (eval_modes.h) ------------------------------------------------------ */

/* The cache --model runs with (--kv-cache, else the checkpoint's kv_cache_scheme, else f32) in a
 * result's JSON (quant-eval/kv_report.c, shared with the serving modes) or one text line. */
void quant_eval_kv_print(const quant_eval_args *a, const lq_model *m) {
    const lq_kv_type t = lq_model_kv_cache(m);
    if (!a->kv_cache_set && t == LQ_KV_F32) return;
    const size_t b = lq_model_kv_bytes_per_pos(m, t), b16 = lq_model_kv_bytes_per_pos(m, LQ_KV_F16);
    printf("KV cache: %s%s, %zu bytes per position (%.3f of f16's %zu)\n", lq_kv_type_name(t),
           quant_eval_kv_static(m) ? " (static scales from the checkpoint)" : "", b, b16 ? (double)b / (double)b16 : 0.0, b16);
}

/* Options of a perplexity / KL run, drawing `bar` (begun here; the caller ends it) unless --json. */
lq_ppl_opts quant_eval_ppl_opts(const quant_eval_args *a, tool_progress *bar, const char *label) {
    tool_progress_begin(bar, label, 1, !a->json);
    return (lq_ppl_opts){.n_ctx = a->ctx, .per_line = a->per_line, .separator = a->separator,
                         .max_chunks = a->chunks, .progress = tool_progress_cb,
                         .progress_user = bar};
}

/* --draft-eval's options: the perplexity chunks, the draft sizes (progress set by the caller) */
lq_draft_eval_opts quant_eval_draft_opts(const quant_eval_args *a) {
    lq_draft_eval_opts o = {.n_prompt = a->draft_prompt, .n_gen = a->draft_gen,
                            .draft_max = a->draft_max};
    o.chunks = (lq_ppl_opts){.n_ctx = a->ctx, .per_line = a->per_line, .separator = a->separator,
                             .max_chunks = a->chunks};
    return o;
}

int quant_eval_read_text(const char *path, char **text, size_t *len) {
    lq_status s = lq_text_read_file(path, text, len);
    if (s != LQ_OK) return tool_fail(s);
    if (*len == 0) {
        free(*text);
        *text = NULL;
        return tool_error(2, "%s: the file is empty", path);
    }
    return 0;
}

/* ---- perplexity (the default mode) ----------------------------------------------------------- */

static int run_ppl(const quant_eval_args *a, const lq_model *m, lq_pool *pool) {
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
    lq_ppl_opts o = quant_eval_ppl_opts(a, &bar, "perplexity");
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
        quant_eval_kv_print(a, m);
        printf("PPL = %.6f +/- %.5f\n", r.ppl, r.ppl_stderr);
        printf("tokens scored: %lld (mean NLL %.6f, total NLL %.6f, %lld chunks)\n",
               (long long)r.n_scored, r.nll_mean, r.nll_sum, (long long)r.n_chunks);
        printf("time: %.3f s, %.1f scored tok/s\n", r.seconds, tps);
    }
    return 0;
}

/* ---- main ------------------------------------------------------------------------------------ */

int main(int argc, char **argv) {
    if (quant_eval_is_serve(argc, argv)) return quant_eval_serve(argc, argv);
    tool_init(TOOL, usage);
    quant_eval_args a;
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
        rc = quant_eval_run_compare(&a, pool);
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
                              .opts = quant_eval_draft_opts(&a)};
        rc = tool_draft_eval_run(&da, m, pool);
    } else {
        rc = a.bench ? quant_eval_run_bench(&a, m, pool)
             : a.kld ? quant_eval_run_kld(&a, m, pool)
                     : run_ppl(&a, m, pool);
    }
    lq_pool_free(pool);
    lq_model_free(m);
    return rc ? rc : tool_finish_stdout();
}
