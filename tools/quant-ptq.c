/* quant-ptq - post-training quantization (round to nearest, or GPTQ) into a compressed-tensors
 * directory.
 *
 *   quant-ptq --model DIR --scheme W8A16|W4A16|W3A16|FP8|W8A8 --out DIR [--group-size N] [--sym|--asym]
 *             [--group-fallback refuse|channel|ignore] [--ignore PATTERN]...
 *             [--override PATTERN=SCHEME]... [--rounding amax|signed-max] [--clip-search]
 *             [--calib TEXT [--calib-tokens N] [--tokenizer FILE]]
 *             [--method gptq --calib TEXT... [--calib-samples N] [--calib-len L] ...]
 *             [--threads N] [--force] [--json]
 *
 * The work is lq_ptq_quantize (GPTQ: lq_gptq_quantize through tools/common/tool_gptq.c) (libquant/include/libquant/lq_ptq.h): one tensor at a time from
 * the mapped input, so peak memory is about the largest tensor plus the mapping. This file is the
 * CLI around it: the atomic output directory (lq_tool), the tokenizer files carried over, the
 * progress bar and the summary.
 */
#include "tool_cli.h"
#include "tool_convert_hf.h"
#include "tool_gptq.h"
#include "tool_progress.h"
#include "tool_outdir.h"
#include "tool_output.h"
#include "quant-ptq/ptq_automix.h"
#include "quant-ptq/ptq_gguf.h"
#include "quant-ptq/ptq_smooth.h"
#include "quant-ptq/ptq_kv.h"
#include "quant-ptq/ptq_report.h"

#include <limits.h>
#include <stdlib.h>
#include <string.h>

#include "libquant/lq_calib.h"
#include "libquant/lq_ptq.h"
#include "libquant/lq_tokenizer.h"
#include "lq_eval.h"

#define TOOL "quant-ptq"
#define MAX_RULES 64

static void usage(FILE *f) {
    fprintf(f,
            "usage: " TOOL " --model DIR --scheme W8A16|W4A16|W3A16|FP8|W8A8 --out DIR\n"
            "                 [--group-size N] [--sym|--asym] [--group-fallback refuse|channel|ignore]\n"
            "                 [--ignore PATTERN]... [--override PATTERN=SCHEME]...\n"
            "                 [--rounding amax|signed-max] [--clip-search [--calib TEXT]]\n"
            "                 [--method rtn|gptq] [--calib TEXT]... [--calib-samples N] [--calib-len L]\n"
            "                 [--calib-seed N] [--dampening F] [--actorder none|weight|static]\n"
            "                 [--block-size N] [--pattern N:M] [--threads N] [--force] [--json]\n"
            "       " TOOL " --model DIR --target-bpw B [--scheme CAND,CAND,...] [--calib TEXT] --out DIR\n"
            "\n"
            "Quantize every linear layer of a Llama-family checkpoint (round to nearest) and write a\n"
            "compressed-tensors directory (config.json with quantization_config, model.safetensors,\n"
            "and tokenizer.json / tokenizer_config.json / generation_config.json when present) that\n"
            "vLLM / transformers load and that quant-eval and quant-run run directly.\n"
            "\n"
            "  --model DIR        input: Hugging Face directory with float weights (quant-convert\n"
            "                     turns a llama2.c .bin into one), or a GGUF file, read as the HF\n"
            "                     directory quant-convert makes of it (dequantized, q/k rows in HF's\n"
            "                     layout, its tokenizer and chat template carried)\n"
            "  --scheme S         W8A16 (int8 per channel), W4A16 (int4 per group), W3A16 (int3 per\n"
            "                     group, packed 32 codes in 3 words as compressed-tensors 0.19\n"
            "                     does), FP8 (E4M3 per channel, weight-only), W8A8 (int8 per\n"
            "                     channel x int8 tokens); compressed-tensors' preset names too:\n"
            "                     W4A16_ASYM (= W4A16 --asym), INT8 (= W8A8), FP8_DYNAMIC (= FP8)\n"
            "  --group-size N     W4A16 / W3A16 group along input features (default 128, as\n"
            "                     llm-compressor's presets; -1: one per row);\n"
            "                     must divide every quantized tensor's columns, else see below\n"
            "  --group-fallback A what to do with a W4A16 / W3A16 tensor whose columns the group size does\n"
            "                     not divide (compressed-tensors has no partial groups): refuse\n"
            "                     (default: fail, naming it), channel (same bits, one group per\n"
            "                     row, written as its own config group), ignore (keep it float)\n"
            "  --sym, --asym      W4A16 / W3A16 symmetric (default) or asymmetric with zero points\n"
            "  --ignore P         keep matching modules in float (repeatable). The list defaults\n"
            "                     to lm_head; any --ignore REPLACES it (like a recipe's `ignore:`),\n"
            "                     so '--ignore lm_head --ignore q_proj' keeps the head in float and\n"
            "                     '--ignore q_proj' quantizes it with --scheme\n"
            "  --override P=S     give matching modules scheme S (or 'none'), e.g.\n"
            "                     --override 're:.*down_proj$=W8A16' (repeatable; last match wins;\n"
            "                     beats --ignore and its default: --override lm_head=W8A16)\n"
            "                     patterns: exact module name, a last component ('q_proj'),\n"
            "                     'Linear', or 're:REGEX' (matched from the start of the name)\n"
            "                     The embedding is never quantized. A quantized head of a tied\n"
            "                     model is written as its own lm_head (config untied); the\n"
            "                     embedding stays dense\n"
            "  --rounding R       symmetric integer scale rule (W4A16 / W3A16 --sym, W8A16, W8A8):\n"
            "                     amax (default): max|w| / 7.5 (int8: / 127.5, int3: / 3.5), codes clamped to\n"
            "                     [-8, 7]: the bytes llm-compressor's RTN writes; signed-max:\n"
            "                     llama.cpp Q4_0's rule, scale = (signed weight of largest\n"
            "                     magnitude) / -8 (int8: / -128), so that weight is exact and the\n"
            "                     other sign keeps 7 steps (lower error; scales may be negative).\n"
            "                     Recorded as \"lq.rounding\" in model.safetensors' __metadata__\n"
            "  --clip-search      search each group's clipping ratio (1.00 .. 0.50) for the least\n"
            "                     weighted error; a ratio is kept only if it lowers that error.\n"
            "                     Weights: with --calib, each input column's mean square\n"
            "                     activation (the layer's output error); without, w^2 + mean(w^2)\n"
            "                     of the group. The summary reports per tensor what it chose\n"
            "  --calib TEXT       calibration text for --clip-search: tokenized, run through the\n"
            "                     model in chunks of 512 tokens (BOS first when the tokenizer adds\n"
            "                     one); every Linear's mean square input per column (llama.cpp's\n"
            "                     imatrix) weights its groups' error\n"
            "  --calib-tokens N   calibration tokens used, from the start of TEXT (default 8192)\n"
            "  --imatrix FILE     instead of --calib: an importance matrix file (quant-imatrix or\n"
            "                     llama-imatrix; GGUF or legacy .dat) with those mean squares\n"
            "  --tokenizer FILE   tokenizer for --calib (default: the model's tokenizer.json)\n"
            "  --method M         rtn (default) or gptq (W4A16, W3A16, W8A16): GPTQ layer by layer on\n"
            "                     --calib texts (repeatable): --calib-samples N windows (default\n"
            "                     128) of --calib-len L tokens (default 512) drawn with\n"
            "                     --calib-seed (default 0); --dampening F of mean(diag H)\n"
            "                     (default 0.01); --actorder none|weight|static (static = weight;\n"
            "                     default none); --block-size N lazy-batch columns (default 128);\n"
            "                     --pattern N:M also prunes in the same sweep (SparseGPT's rule,\n"
            "                     keep N of every M columns, e.g. 2:4: llm-compressor's 2:4 + W4A16).\n"
            "                     Weights already 0 (a quant-prune output) stay 0: the pattern survives.\n"
            "                     The summary gives each Linear's output error RTN vs GPTQ\n");
    ptq_automix_usage(f);
    ptq_smooth_usage(f);
    fprintf(f,
            "  --kv-cache-scheme T  also quantize the KV cache: fp8 (E4M3, vLLM's fp8 cache) or\n"
            "                     int8, static scales max|K|, max|V| / 448 (127) measured on the\n"
            "                     float model over the --calib texts (--calib-samples windows,\n"
            "                     default 32, of --calib-len tokens), written as compressed-\n"
            "                     tensors' kv_cache_scheme + each attention's k_scale / v_scale;\n"
            "                     quant-eval / quant-run then run that cache by default\n"
            "  --kv-cache-strategy S  tensor (default: one scale per layer) or attn_head (one per\n"
            "                     kv head)\n"
            "  --threads N        worker threads (default: all CPUs)\n"
            "  --out DIR          output directory (must not exist unless --force)\n"
            "  --force            replace an existing DIR\n"
            "  --json             print the summary as JSON on stdout\n"
            "  --help             this text\n"
            "\n"
            "\n"
            "GGUF output (llama.cpp's types and mixes): quant-ptq --format gguf --help\n"
            "\n"
            "Exit codes: 0 ok, 2 bad arguments, 3 bad input file, 4 I/O, 1 other.\n");
}

/* ---- main ----------------------------------------------------------------------------------------- */

/* The parsed command line. */
typedef struct ptq_cli {
    const char *model, *out_dir, *scheme_arg, *calib, *tok_path, *imatrix_path;
    int calib_tokens, threads, group_size;
    bool force, json, asym, sym;
    lq_ptq_opts o;
    const char *ignore[MAX_RULES];
    lq_ptq_rule rules[MAX_RULES];
    char *rule_buf[MAX_RULES]; /* the --override patterns, owned */
    int n_rule_buf;
    tool_gptq gq;
    ptq_smooth sm;
    ptq_kv kv;
    ptq_automix mx;
} ptq_cli;

/* --target-bpw: --scheme lists the candidates; what a single scheme's options would set is the
 * candidates' own. -1 to go on, else the exit code. */
static int check_automix(ptq_cli *c) {
    int rc;
    if (!c->model || !c->out_dir) return tool_bad_args("--model and --out are required");
    if ((rc = ptq_automix_candidates(&c->mx, c->scheme_arg)) != 0) return rc;
    if (c->group_size || c->asym || c->sym)
        return tool_bad_args("--target-bpw: give group sizes and symmetry in the candidates "
                             "(--scheme W8A16,W4A16:32,W4A16_ASYM:128), not --group-size / --sym / --asym");
    if (c->gq.on || c->sm.on) return tool_bad_args("--target-bpw: round to nearest only (no --method gptq|awq|smoothquant)");
    c->o.scheme = c->mx.cand[0].fmt; /* every planned module gets its own rule */
    if ((rc = ptq_kv_check(&c->kv, &c->gq, false, c->tok_path)) != 0) return rc;
    if (c->imatrix_path && c->calib) return tool_bad_args("--imatrix and --calib are exclusive");
    c->o.ignore = c->ignore;
    c->o.overrides = c->rules;
    return -1;
}

/* Read and check the arguments into c: -1 to go on, else the exit code (the error printed). */
static int parse_args(int argc, char **argv, ptq_cli *c) {
    int rc = 0;
    c->calib_tokens = 8192;
    tool_args a = tool_args_begin(argc, argv);
    while (tool_args_next(&a)) {
        if (tool_args_help(&a)) {
            usage(stdout);
            return 0;
        } else if (tool_args_flag(&a, "--force")) {
            c->force = true;
        } else if (tool_args_flag(&a, "--json")) {
            c->json = true;
        } else if (tool_args_flag(&a, "--asym")) {
            c->asym = true;
        } else if (tool_args_flag(&a, "--sym")) {
            c->sym = true;
        } else if (tool_args_flag(&a, "--clip-search")) {
            c->o.clip_search = true;
        } else if (tool_args_value(&a, "--rounding")) {
            if (!lq_rounding_parse(a.value, &c->o.rounding))
                return tool_bad_args("--rounding must be amax or signed-max, not '%s'", a.value);
        } else if (ptq_smooth_arg(&a, &c->sm, &c->gq, &rc)) {
            if (rc) return rc;
        } else if (ptq_kv_arg(&a, &c->kv, &rc)) {
            if (rc) return rc;
        } else if (tool_gptq_arg(&a, &c->gq, &rc)) {
            if (rc) return rc;
        } else if (tool_args_value(&a, "--calib")) {
            c->calib = a.value;
            if (c->gq.n_calib < TOOL_GPTQ_MAX_CALIB) c->gq.calib[c->gq.n_calib++] = a.value;
        } else if (tool_args_value(&a, "--tokenizer")) {
            c->tok_path = a.value;
        } else if (tool_args_value(&a, "--imatrix")) {
            c->imatrix_path = a.value;
        } else if (tool_args_value(&a, "--calib-tokens")) {
            if (!tool_parse_int(a.value, 2, &c->calib_tokens)) return tool_args_bad_value(&a);
        } else if (tool_args_value(&a, "--model")) {
            c->model = a.value;
        } else if (tool_args_value(&a, "--out")) {
            c->out_dir = a.value;
        } else if (tool_args_value(&a, "--scheme")) {
            c->scheme_arg = a.value;
        } else if (tool_args_value(&a, "--threads")) {
            if (!tool_parse_int(a.value, 1, &c->threads)) return tool_args_bad_value(&a);
        } else if (tool_args_value(&a, "--target-bpw")) {
            float b;
            if (!tool_parse_float(a.value, 0.5f, 32.0f, &b)) return tool_args_bad_value(&a);
            c->mx.target = b;
        } else if (tool_args_value(&a, "--group-size")) {
            if (!tool_parse_int(a.value, -1, &c->group_size) || c->group_size == 0)
                return tool_bad_args("--group-size must be a positive integer or -1, not '%s'", a.value);
        } else if (tool_args_value(&a, "--group-fallback")) {
            if (!lq_ptq_group_fallback_parse(a.value, &c->o.group_fallback))
                return tool_bad_args("--group-fallback must be refuse, channel or ignore, not '%s'", a.value);
        } else if (tool_args_value(&a, "--ignore")) {
            if (c->o.n_ignore == MAX_RULES) return tool_bad_args("at most %d --ignore patterns", MAX_RULES);
            c->ignore[c->o.n_ignore++] = a.value;
            c->o.ignore_replaces_default = true;
        } else if (tool_args_value(&a, "--override")) {
            const char *eq = strrchr(a.value, '=');
            const lq_preset *pre = eq && eq != a.value ? lq_preset_find(eq + 1) : NULL;
            if (!pre || pre->asym)
                return tool_bad_args("--override expects PATTERN=SCHEME (W8A16, W4A16, W3A16, FP8, W8A8 or "
                                     "none; --asym sets the symmetry), not '%s'", a.value);
            const lq_wfmt sc = pre->fmt;
            if (c->o.n_overrides == MAX_RULES) return tool_bad_args("at most %d --override rules", MAX_RULES);
            char *pat = strndup(a.value, (size_t)(eq - a.value));
            if (!pat) return tool_fail(lq_fail(LQ_ERR_NOMEM, "out of memory"));
            c->rule_buf[c->n_rule_buf++] = pat;
            c->rules[c->o.n_overrides++] = (lq_ptq_rule){.pattern = pat, .scheme = sc};
        } else {
            return tool_args_unknown(&a);
        }
    }
    if (c->mx.target > 0) return check_automix(c);
    if (!c->model || !c->out_dir || !c->scheme_arg) return tool_bad_args("--model, --scheme and --out are required");
    const lq_preset *preset = lq_preset_find(c->scheme_arg);
    if (!preset || preset->fmt == LQ_WFMT_NONE)
        return tool_bad_args("unknown scheme '%s' (W8A16, W4A16, W4A16_ASYM, W3A16, FP8, W8A8)", c->scheme_arg);
    c->o.scheme = preset->fmt;
    if (preset->asym && c->sym) return tool_bad_args("--sym contradicts scheme %s", preset->name);
    c->asym = c->asym || preset->asym;
    if (c->asym && c->sym) return tool_bad_args("--sym and --asym are exclusive");
    c->o.asym = c->asym;
    c->o.group_size = c->group_size;
    if ((rc = ptq_kv_check(&c->kv, &c->gq, c->sm.on, c->tok_path)) != 0) return rc;
    if ((rc = ptq_smooth_check(&c->sm, &c->gq, &c->o, c->gq.n_calib, c->gq.calib)) != 0) return rc;
    if ((rc = tool_gptq_check(&c->gq, &c->o)) != 0) return rc;
    if (c->calib && !c->o.clip_search && !c->gq.on && !c->sm.on && !c->kv.on)
        return tool_bad_args("--calib weights the clip search: add --clip-search");
    if (c->imatrix_path && (c->calib || c->gq.on || c->sm.on))
        return tool_bad_args("--imatrix and --calib / --method gptq|awq|smoothquant are exclusive");
    if (c->imatrix_path && !c->o.clip_search) return tool_bad_args("--imatrix weights the clip search: add --clip-search");
    c->o.ignore = c->ignore;
    c->o.overrides = c->rules;
    return -1;
}

/* Quantize as c says into its output directory, atomically; returns the exit code. */
static int run(ptq_cli *c) {
    int rc = 0;
    lq_imatrix *im = NULL;
    lq_ptq_calib pc;
    tool_outdir od;
    if ((rc = tool_output_start(&od, c->out_dir, c->model, c->force)) != 0) goto out;
    /* A GGUF model is read as the HF directory quant-convert makes of it (inside od.tmp). */
    const char *input = c->model;
    char from_gguf[PATH_MAX];
    if ((rc = tool_output_hf_source(TOOL, &od, &c->model, from_gguf, sizeof from_gguf)) != 0) goto out;
    c->o.pool = lq_pool_create(c->threads);
    if (c->calib && (c->o.clip_search || c->mx.target > 0) && !c->gq.on && !c->sm.on) { /* smoothed models clip-search without data */
        if ((rc = ptq_collect_calib(c->model, c->tok_path, c->calib, c->calib_tokens, c->o.pool, &im)) != 0) {
            tool_outdir_abort(&od);
            goto out;
        }
        pc = lq_imatrix_ptq_calib(im);
        c->o.calib = &pc;
    } else if (c->imatrix_path) {
        if ((rc = ptq_load_imatrix(c->model, c->imatrix_path, &im)) != 0) {
            tool_outdir_abort(&od);
            goto out;
        }
        pc = lq_imatrix_ptq_calib(im);
        c->o.calib = &pc;
    }
    tool_progress prog;
    tool_progress_begin(&prog, "quantizing", 1, !c->json); /* total set by the first callback */
    c->o.progress = tool_progress_cb;
    c->o.user = &prog;
    lq_ptq_summary sum;
    const char *src = c->model; /* the smoothed float model when smoothing */
    c->sm.o.pool = c->o.pool;
    lq_status s = c->sm.on ? ptq_smooth_run(&c->sm, c->model, od.tmp, c->tok_path, !c->json) : LQ_OK;
    if (c->sm.on) src = c->sm.dir;
    if (s == LQ_OK) s = ptq_kv_run(&c->kv, src, &c->o, !c->json);
    if (s == LQ_OK && c->mx.target > 0) s = ptq_automix_run(&c->mx, src, &c->o);
    if (s == LQ_OK)
        s = c->gq.on ? tool_gptq_run(&c->gq, src, od.tmp, c->tok_path, &c->o, !c->json)
                     : lq_ptq_quantize(src, od.tmp, &c->o, &sum);
    if (c->gq.on && s == LQ_OK) sum = c->gq.sum.ptq, c->gq.sum.ptq = (lq_ptq_summary){0};
    tool_progress_end(&prog);
    if (s != LQ_OK) {
        tool_outdir_abort(&od);
        /* The refusal names one tensor; the fix is an option of this tool, so say which. */
        bool indivisible = s == LQ_ERR_INVALID_ARG && strstr(lq_last_error(), "does not divide");
        rc = tool_fail_at("cannot quantize", input, s);
        if (indivisible)
            fprintf(stderr, TOOL ": hint: --group-fallback channel quantizes such tensors per output "
                            "channel, --group-fallback ignore keeps them in float\n");
        goto out;
    }
    s = lq_checkpoint_copy_side_files(c->model, od.tmp);
    if (s == LQ_OK && c->sm.on) s = ptq_smooth_drop_dir(&c->sm);
    if (s == LQ_OK && from_gguf[0] && tool_rm_tree(from_gguf) != 0)
        s = lq_fail(LQ_ERR_IO, "%s: cannot remove", from_gguf);
    if (s == LQ_OK) s = tool_outdir_commit(&od);
    if (s != LQ_OK) {
        tool_outdir_abort(&od);
        lq_ptq_summary_free(&sum);
        rc = tool_fail_at("cannot write output", c->out_dir, s);
        goto out;
    }
    ptq_print_summary(&sum, &c->o, c->out_dir, c->json, c->gq.on ? &c->gq : NULL, c->sm.on ? &c->sm : NULL,
                      &c->kv, &c->mx);
    lq_ptq_summary_free(&sum);
    rc = tool_finish_stdout();
out:
    lq_imatrix_free(im);
    lq_pool_free(c->o.pool);
    return rc;
}

int main(int argc, char **argv) {
    if (ptq_gguf_wanted(argc, argv)) return ptq_gguf_main(argc, argv); /* llama-quantize's job */
    tool_init(TOOL, usage);
    ptq_cli cli = {0};
    int rc = parse_args(argc, argv, &cli);
    if (rc < 0) rc = run(&cli);
    tool_gptq_free(&cli.gq);
    ptq_smooth_cleanup(&cli.sm);
    ptq_kv_free(&cli.kv);
    ptq_automix_free(&cli.mx);
    for (int i = 0; i < cli.n_rule_buf; i++) free(cli.rule_buf[i]);
    return rc;
}
