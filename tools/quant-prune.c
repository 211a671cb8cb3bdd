/* quant-prune - magnitude, N:M and structured pruning into a checkpoint the engine runs.
 *
 *   quant-prune --model DIR --method magnitude|nm|ffn|heads|wanda|sparsegpt [--sparsity S]
 *               [--global] [--nm N:M | --pattern N:M] [--keep R] [--layer-keep L=R]...
 *               [--target P]... [--ignore P]... [--override P=S]... [--bitmask]
 *               [--calib TEXT]... [--calib-samples N] [--calib-len L] [--calib-seed N]
 *               [--dampening F] [--block-size B] [--tokenizer FILE] [--threads N]
 *               [--force] [--json] --out DIR
 *
 * The work is lq_prune_run (libquant/include/libquant/lq_prune.h), and for wanda / sparsegpt
 * lq_sparse_prune (lq_sparsegpt.h, through quant-prune/prune_calib.c). This file is the CLI
 * around them: the atomic output directory (lq_tool), tokenizer files carried over, progress,
 * summary.
 */
#include "tool_cli.h"
#include "tool_convert_hf.h"
#include "tool_progress.h"
#include "tool_outdir.h"
#include "tool_output.h"
#include "quant-prune/prune_calib.h"

#include <limits.h>
#include <stdlib.h>
#include <string.h>

#include "libquant/lq_prune.h"
#include "lq_eval.h"

#define TOOL "quant-prune"
#define MAX_RULES 64

static void usage(FILE *f) {
    fprintf(f,
            "usage: " TOOL " --model DIR --method magnitude|nm|ffn|heads|wanda|sparsegpt --out DIR\n"
            "                   [--sparsity S] [--global] [--nm N:M | --pattern N:M] [--keep R]\n"
            "                   [--layer-keep L=R]... [--target P]... [--ignore P]... [--override P=S]...\n"
            "                   [--bitmask] [--calib TEXT]... [--calib-samples N] [--calib-len L]\n"
            "                   [--calib-seed N] [--dampening F] [--block-size B] [--tokenizer FILE]\n"
            "                   [--threads N] [--force] [--json]\n"
            "\n"
            "Prune a Llama-family checkpoint and write a directory quant-eval / quant-run / quant-ptq\n"
            "read directly. --model is an HF directory or a GGUF file (read as the HF directory\n"
            "quant-convert makes of it: dequantized, q/k rows in HF's layout, tokenizer carried).\n"
            "  magnitude  zero the smallest |w| of every linear layer to --sparsity S (per layer, or\n"
            "             one threshold over all of them with --global); written dense, the zeros in\n"
            "             place and the sparsity recorded in config.json's \"sparsity_config\"\n"
            "  nm         in every group of M consecutive input weights keep the N largest (--nm 2:4,\n"
            "             default; 4:8, ...); dense like magnitude\n"
            "  ffn        remove FFN intermediate neurons (rows of gate/up, columns of down): a smaller\n"
            "             dense model\n"
            "  heads      remove attention heads: whole KV groups with their query heads\n"
            "  wanda      calibrated (--calib): zero the lowest |w| * ||x_col||_2 of every output row\n"
            "             (Sun et al.), unstructured (--sparsity S) or N:M (--pattern N:M); layer by\n"
            "             layer, each layer calibrated on the outputs of the pruned ones before it\n"
            "  sparsegpt  calibrated (--calib): SparseGPT (Frantar & Alistarh): the OBS column sweep\n"
            "             on H = 2 X^T X updates the surviving weights to make up for the pruned ones;\n"
            "             unstructured or N:M; dense like magnitude (llm-compressor's SparseGPTModifier)\n"
            "\n"
            "  --sparsity S       fraction removed, in [0, 1) (magnitude; for ffn/heads = 1 - keep)\n"
            "  --global           magnitude: one threshold over every targeted weight\n"
            "  --nm N:M           N:M pattern: N kept of every M input weights (M must divide the input\n"
            "                     features of every target); --pattern N:M is the same\n"
            "  --keep R           ffn/heads: fraction of units kept in every layer, (0, 1]\n"
            "  --layer-keep L=R   ffn/heads: keep ratio R for layer L (repeatable); layers of\n"
            "                     different sizes are recorded in config.json per layer\n"
            "  --target P         prune only matching modules (default: every Linear but lm_head\n"
            "                     and MoE routers; experts are pruned one by one)\n"
            "  --ignore P         leave matching modules alone (ffn/heads: the whole layer)\n"
            "  --override P=S     magnitude: matching modules get sparsity S (0 = dense); may name lm_head\n"
            "                     patterns: exact module name, a last component ('q_proj'), 'Linear',\n"
            "                     or 're:REGEX' (matched from the start); each must match something\n"
            "  --bitmask          magnitude/nm: write compressed-tensors' sparse-bitmask layout\n"
            "                     (sparse-24-bitmask for 2:4) instead of dense weights. Few loaders\n"
            "                     read it: transformers with compressed-tensors >= 0.20 loads it as\n"
            "                     random weights without an error (the tool prints which do)\n"
            "  --dense            the default (accepted for old scripts)\n"
            "  --calib TEXT       wanda/sparsegpt: calibration text (repeatable): --calib-samples N\n"
            "                     windows (default 128) of --calib-len L tokens (default 512) drawn with\n"
            "                     --calib-seed (default 0); --tokenizer FILE (default: the model's)\n"
            "  --dampening F      sparsegpt: F * mean(diag H) added to H's diagonal (default 0.01)\n"
            "  --block-size B     sparsegpt: columns per lazy block and mask selection (default 128)\n"
            "  --threads N        calibration threads (wanda/sparsegpt; the writer is single-threaded)\n"
            "  --out DIR          output directory (must not exist unless --force; never the input)\n"
            "  --force            replace an existing DIR\n"
            "  --json             print the summary as JSON on stdout\n"
            "  --help             this text\n"
            "\n"
            "Exit codes: 0 ok, 2 bad arguments, 3 bad input file, 4 I/O, 1 other.\n");
}

/* ---- summary ------------------------------------------------------------------------------------ */

static double frac(int64_t a, int64_t b) { return b > 0 ? (double)a / (double)b : 0.0; }

static void print_summary(const lq_prune_summary *r, const char *out, bool json, const prune_calib *pc) {
    const char *method = pc->on ? lq_sparse_method_name(pc->o.method) : lq_prune_method_name(r->method);
    if (json) {
        printf("{\"out\": ");
        tool_print_json_string(out);
        printf(", \"method\": \"%s\", \"tensors\": %lld, \"params_in\": %lld, \"params_out\": %lld, "
               "\"nonzero_in\": %lld, \"nonzero_out\": %lld, \"target_params\": %lld, \"target_zeros\": %lld, "
               "\"target_sparsity\": %.6f, \"global_sparsity\": %.6f, \"bytes_in\": %llu, \"bytes_out\": %llu, "
               "\"seconds\": %.3f, \"per_tensor\": [",
               method, (long long)r->n_tensors, (long long)r->params_in,
               (long long)r->params_out, (long long)r->nonzero_in, (long long)r->nonzero_out,
               (long long)r->target_params, (long long)r->target_zeros, frac(r->target_zeros, r->target_params),
               r->global_sparsity, (unsigned long long)r->bytes_in, (unsigned long long)r->bytes_out, r->seconds);
        for (int64_t i = 0; i < r->n_tensors; i++) {
            const lq_prune_tensor_stat *t = &r->tensors[i];
            int64_t n_out = t->rows_out * t->cols_out;
            printf("%s{\"name\": ", i ? ", " : "");
            tool_print_json_string(t->name);
            printf(", \"shape_in\": [%lld, %lld], \"shape_out\": [%lld, %lld], \"nonzero_in\": %lld, "
                   "\"nonzero_out\": %lld, \"sparsity\": %.6f, \"sparse_layout\": %s, \"bytes_in\": %llu, "
                   "\"bytes_out\": %llu}",
                   (long long)t->rows_in, (long long)t->cols_in, (long long)t->rows_out, (long long)t->cols_out,
                   (long long)t->nonzero_in, (long long)t->nonzero_out, 1.0 - frac(t->nonzero_out, n_out),
                   t->sparse ? "true" : "false", (unsigned long long)t->bytes_in, (unsigned long long)t->bytes_out);
        }
        printf("], \"layers\": [");
        for (int l = 0; l < r->n_layers; l++)
            printf("%s{\"units_in\": %d, \"units_out\": %d}", l ? ", " : "", r->layer_units_in[l],
                   r->layer_units_out[l]);
        printf("]");
        if (pc->on) prune_calib_print(pc, true);
        printf("}\n");
        return;
    }
    printf("%s: %s pruning\n", out, method);
    printf("  %-52s %15s %15s %9s\n", "tensor", "shape in", "shape out", "sparsity");
    for (int64_t i = 0; i < r->n_tensors; i++) {
        const lq_prune_tensor_stat *t = &r->tensors[i];
        if (t->nonzero_out == t->nonzero_in && t->rows_out == t->rows_in && t->cols_out == t->cols_in) continue;
        char a[32], b[32];
        snprintf(a, sizeof a, "%lldx%lld", (long long)t->rows_in, (long long)t->cols_in);
        snprintf(b, sizeof b, "%lldx%lld", (long long)t->rows_out, (long long)t->cols_out);
        printf("  %-52s %15s %15s %8.2f%%%s\n", t->name, a, b,
               100.0 * (1.0 - frac(t->nonzero_out, t->rows_out * t->cols_out)), t->sparse ? " (sparse)" : "");
    }
    for (int l = 0; l < r->n_layers; l++)
        if (r->layer_units_out[l] != r->layer_units_in[l])
            printf("  layer %d: %d of %d %s kept\n", l, r->layer_units_out[l], r->layer_units_in[l],
                   r->method == LQ_PRUNE_FFN ? "FFN neurons" : "KV head groups");
    printf("  parameters  %lld -> %lld (non-zero %lld -> %lld); pruned matrices %.2f%% zero; model %.2f%% zero\n",
           (long long)r->params_in, (long long)r->params_out, (long long)r->nonzero_in, (long long)r->nonzero_out,
           100.0 * frac(r->target_zeros, r->target_params), 100.0 * r->global_sparsity);
    printf("  size        %.3f MiB -> %.3f MiB, %.2f s\n", r->bytes_in / 1048576.0, r->bytes_out / 1048576.0,
           r->seconds);
    if (pc->on) prune_calib_print(pc, false);
}

/* ---- main ------------------------------------------------------------------------------------------ */

/* The parsed command line. */
typedef struct prune_cli {
    const char *model, *out_dir, *method_arg;
    bool force, json, have_sparsity, have_keep, have_nm;
    float sparsity, keep;
    int threads;
    lq_prune_opts o;
    const char *targets[MAX_RULES], *ignore[MAX_RULES];
    lq_prune_rule rules[MAX_RULES];
    char *rule_buf[MAX_RULES]; /* the --override patterns, owned */
    int n_rule_buf;
    float layer_keep[LQ_MAX_LAYERS];
    int n_layer_keep;
    prune_calib pc;
} prune_cli;

/* The combinations parse_args cannot see one option at a time; fills c->o. -1 to go on, else
 * the exit code (the error printed). */
static int check_args(prune_cli *c) {
    int rc = 0;
    if (!c->model || !c->out_dir || !c->method_arg) return tool_bad_args("--model, --method and --out are required");
    if (prune_calib_method(&c->pc, c->method_arg)) {
        /* the mask's structure: N:M with --pattern, else unstructured at --sparsity */
        if (c->have_nm && c->have_sparsity && c->sparsity != (float)(c->o.nm_m - c->o.nm_n) / (float)c->o.nm_m)
            return tool_bad_args("--sparsity %g contradicts --pattern %d:%d (which prunes %g)", (double)c->sparsity,
                                 c->o.nm_n, c->o.nm_m, (double)(c->o.nm_m - c->o.nm_n) / c->o.nm_m);
        if (!c->have_nm && !c->have_sparsity)
            return tool_bad_args("--method %s needs --sparsity S or --pattern N:M", c->method_arg);
        c->o.method = c->have_nm ? LQ_PRUNE_NM : LQ_PRUNE_MAGNITUDE;
    } else if (!lq_prune_method_parse(c->method_arg, &c->o.method)) {
        return tool_bad_args("unknown method '%s' (magnitude, nm, ffn, heads, wanda or sparsegpt)", c->method_arg);
    }
    if ((rc = prune_calib_check(&c->pc)) != 0) return rc;
    bool structured = c->o.method == LQ_PRUNE_FFN || c->o.method == LQ_PRUNE_HEADS;
    if (c->o.method == LQ_PRUNE_MAGNITUDE && !c->have_sparsity) return tool_bad_args("--method magnitude needs --sparsity S");
    if (c->have_nm && c->o.method != LQ_PRUNE_NM) return tool_bad_args("--nm / --pattern apply to --method nm, wanda and sparsegpt");
    if (structured) {
        if (c->have_keep && c->have_sparsity) return tool_bad_args("give --keep R or --sparsity S, not both");
        if (!c->have_keep && !c->have_sparsity && c->n_layer_keep == 0)
            return tool_bad_args("--method %s needs --keep R (or --sparsity S, or --layer-keep)", c->method_arg);
        c->o.keep = c->have_keep ? c->keep : c->have_sparsity ? 1.0f - c->sparsity : 1.0f;
        c->o.layer_keep = c->n_layer_keep > 0 ? c->layer_keep : NULL;
        c->o.n_layer_keep = c->n_layer_keep;
    } else if (c->have_keep || c->n_layer_keep > 0) {
        return tool_bad_args("--keep / --layer-keep apply to --method ffn and heads");
    }
    if ((c->o.global || c->o.n_overrides > 0) && (c->o.method != LQ_PRUNE_MAGNITUDE || c->pc.on))
        return tool_bad_args("--global and --override apply to --method magnitude only");
    if (c->o.n_targets > 0 && structured) return tool_bad_args("--target applies to magnitude and nm (use --ignore)");
    if (c->o.bitmask_output && structured) return tool_bad_args("--bitmask applies to magnitude and nm");
    c->o.sparsity = c->sparsity;
    c->o.targets = c->targets;
    c->o.ignore = c->ignore;
    c->o.overrides = c->rules;
    return -1;
}

/* Read and check the arguments into c: -1 to go on, else the exit code (the error printed). */
static int parse_args(int argc, char **argv, prune_cli *c) {
    int rc = 0;
    c->keep = 1.0f;
    c->o.nm_n = 2;
    c->o.nm_m = 4;
    for (int l = 0; l < LQ_MAX_LAYERS; l++) c->layer_keep[l] = -1.0f;
    tool_args a = tool_args_begin(argc, argv);
    while (tool_args_next(&a)) {
        if (tool_args_help(&a)) {
            usage(stdout);
            return 0;
        } else if (tool_args_flag(&a, "--force")) {
            c->force = true;
        } else if (tool_args_flag(&a, "--json")) {
            c->json = true;
        } else if (tool_args_flag(&a, "--global")) {
            c->o.global = true;
        } else if (tool_args_flag(&a, "--dense")) {
            c->o.bitmask_output = false;
        } else if (tool_args_flag(&a, "--bitmask")) {
            c->o.bitmask_output = true;
        } else if (tool_args_value(&a, "--model")) {
            c->model = a.value;
        } else if (tool_args_value(&a, "--out")) {
            c->out_dir = a.value;
        } else if (tool_args_value(&a, "--method")) {
            c->method_arg = a.value;
        } else if (tool_args_value(&a, "--sparsity")) {
            if (!tool_parse_float(a.value, 0.0f, 1.0f, &c->sparsity) || c->sparsity >= 1.0f)
                return tool_bad_args("--sparsity must be in [0, 1), not '%s'", a.value);
            c->have_sparsity = true;
        } else if (tool_args_value(&a, "--keep")) {
            if (!tool_parse_float(a.value, 0.0f, 1.0f, &c->keep) || c->keep <= 0.0f)
                return tool_bad_args("--keep must be in (0, 1], not '%s'", a.value);
            c->have_keep = true;
        } else if (prune_calib_arg(&a, &c->pc, &rc)) {
            if (rc) return rc;
        } else if (tool_args_value(&a, "--nm") || tool_args_value(&a, "--pattern")) {
            if (!tool_parse_nm(a.value, &c->o.nm_n, &c->o.nm_m) || c->o.nm_n > c->o.nm_m || c->o.nm_m > 64)
                return tool_bad_args("--nm / --pattern expect N:M with 0 < N <= M <= 64 (2:4, 4:8), not '%s'",
                                     a.value);
            c->have_nm = true;
        } else if (tool_args_value(&a, "--layer-keep")) {
            const char *eq = strchr(a.value, '=');
            char lb[16];
            int l;
            float r;
            size_t k = eq ? (size_t)(eq - a.value) : 0;
            if (!eq || k == 0 || k >= sizeof lb) return tool_bad_args("--layer-keep expects L=R, not '%s'", a.value);
            memcpy(lb, a.value, k);
            lb[k] = 0;
            if (!tool_parse_int(lb, 0, &l) || l >= LQ_MAX_LAYERS || !tool_parse_float(eq + 1, 0.0f, 1.0f, &r) ||
                r <= 0.0f)
                return tool_bad_args("--layer-keep expects LAYER=RATIO with a ratio in (0, 1], not '%s'", a.value);
            c->layer_keep[l] = r;
            if (l + 1 > c->n_layer_keep) c->n_layer_keep = l + 1;
        } else if (tool_args_value(&a, "--target")) {
            if (c->o.n_targets == MAX_RULES) return tool_bad_args("at most %d --target patterns", MAX_RULES);
            c->targets[c->o.n_targets++] = a.value;
        } else if (tool_args_value(&a, "--ignore")) {
            if (c->o.n_ignore == MAX_RULES) return tool_bad_args("at most %d --ignore patterns", MAX_RULES);
            c->ignore[c->o.n_ignore++] = a.value;
        } else if (tool_args_value(&a, "--override")) {
            const char *eq = strrchr(a.value, '=');
            float sp;
            if (!eq || eq == a.value || !tool_parse_float(eq + 1, 0.0f, 1.0f, &sp) || sp >= 1.0f)
                return tool_bad_args("--override expects PATTERN=SPARSITY with a sparsity in [0, 1), not '%s'",
                                     a.value);
            if (c->o.n_overrides == MAX_RULES) return tool_bad_args("at most %d --override rules", MAX_RULES);
            char *pat = strndup(a.value, (size_t)(eq - a.value));
            if (!pat) return tool_fail(lq_fail(LQ_ERR_NOMEM, "out of memory"));
            c->rule_buf[c->n_rule_buf++] = pat;
            c->rules[c->o.n_overrides++] = (lq_prune_rule){.pattern = pat, .sparsity = sp};
        } else if (tool_args_value(&a, "--threads")) {
            if (!tool_parse_int(a.value, 1, &c->threads)) return tool_args_bad_value(&a);
        } else {
            return tool_args_unknown(&a);
        }
    }
    return check_args(c);
}

/* Prune as c says into its output directory, atomically; returns the exit code. */
static int run(prune_cli *c) {
    int rc = 0;
    tool_outdir od;
    if ((rc = tool_output_start(&od, c->out_dir, c->model, c->force)) != 0) goto out;
    /* A GGUF model is read as the HF directory quant-convert makes of it (inside od.tmp). */
    const char *input = c->model;
    char from_gguf[PATH_MAX];
    if ((rc = tool_output_hf_source(TOOL, &od, &c->model, from_gguf, sizeof from_gguf)) != 0) goto out;
    tool_progress prog;
    tool_progress_begin(&prog, "pruning", 1, !c->json);
    c->o.progress = tool_progress_cb;
    c->o.user = &prog;
    lq_prune_summary sum;
    lq_status s;
    if (c->pc.on) {
        c->o.pool = lq_pool_create(c->threads);
        s = prune_calib_run(&c->pc, c->model, od.tmp, &c->o, !c->json);
        sum = c->pc.sum.prune;
        memset(&c->pc.sum.prune, 0, sizeof c->pc.sum.prune); /* sum owns it now */
    } else {
        s = lq_prune_run(c->model, od.tmp, &c->o, &sum);
    }
    tool_progress_end(&prog);
    if (s != LQ_OK) {
        tool_outdir_abort(&od);
        rc = tool_fail_at("cannot prune", input, s);
        goto out;
    }
    s = lq_checkpoint_copy_side_files(c->model, od.tmp);
    if (s == LQ_OK && from_gguf[0] && tool_rm_tree(from_gguf) != 0)
        s = lq_fail(LQ_ERR_IO, "%s: cannot remove", from_gguf);
    if (s == LQ_OK) s = tool_outdir_commit(&od);
    if (s != LQ_OK) {
        tool_outdir_abort(&od);
        lq_prune_summary_free(&sum);
        rc = tool_fail_at("cannot write output", c->out_dir, s);
        goto out;
    }
    /* stderr, so --json output stays one document */
    if (c->o.bitmask_output) fprintf(stderr, TOOL ": note: %s\n", lq_prune_bitmask_readers());
    print_summary(&sum, c->out_dir, c->json, &c->pc);
    lq_prune_summary_free(&sum);
    rc = tool_finish_stdout();
out:
    lq_pool_free(c->o.pool);
    return rc;
}

int main(int argc, char **argv) {
    tool_init(TOOL, usage);
    prune_cli cli = {0};
    int rc = parse_args(argc, argv, &cli);
    if (rc < 0) rc = run(&cli);
    prune_calib_free(&cli.pc);
    for (int i = 0; i < cli.n_rule_buf; i++) free(cli.rule_buf[i]);
    return rc;
}
