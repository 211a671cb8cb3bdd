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
#include "quant-ptq/ptq_gguf.h"
#include "quant-ptq/ptq_smooth.h"
#include "quant-ptq/ptq_kv.h"

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
            "                 [--block-size N] [--threads N] [--force] [--json]\n"
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
            "                     default none); --block-size N lazy-batch columns (default 128).\n"
            "                     The summary gives each Linear's output error RTN vs GPTQ\n");
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

/* ---- summary ------------------------------------------------------------------------------------ */

/* Text summary: which tensors the group fallback applied to; long lists are cut (--json has all). */
#define FALLBACK_SHOWN 8

static void print_fallback_text(const lq_ptq_summary *r) {
    for (int act = LQ_PTQ_FALLBACK_CHANNEL; act <= LQ_PTQ_FALLBACK_IGNORE; act++) {
        int64_t n = 0, shown = 0;
        for (int64_t i = 0; i < r->n_fallback; i++) n += r->fallback[i].action == (lq_ptq_group_fallback)act;
        if (n == 0) continue;
        printf("  fallback    %lld tensor%s %s (group size does not divide their columns):\n",
               (long long)n, n == 1 ? "" : "s",
               act == LQ_PTQ_FALLBACK_CHANNEL ? "quantized per output channel" : "kept in float");
        for (int64_t i = 0; i < r->n_fallback; i++) {
            const lq_ptq_fallback_stat *f = &r->fallback[i];
            if (f->action != (lq_ptq_group_fallback)act) continue;
            if (shown++ == FALLBACK_SHOWN) {
                printf("              ... and %lld more (--json lists all)\n", (long long)(n - FALLBACK_SHOWN));
                break;
            }
            printf("              %s (%lld x %lld, group %d)\n", f->name, (long long)f->rows,
                   (long long)f->cols, (int)f->group_size);
        }
    }
}

/* Text summary of the clip search: totals, then one line per tensor (what it chose). */
static void print_clip_text(const lq_ptq_summary *r) {
    lq_clip_stats tot = {0};
    int64_t n = 0;
    for (int64_t i = 0; i < r->n_quantized; i++) {
        const lq_clip_stats *c = &r->tensors[i].clip;
        if (!c->groups) continue;
        n++;
        tot.groups += c->groups;
        tot.clipped += c->clipped;
        tot.ratio_sum += c->ratio_sum;
    }
    if (!n) return;
    printf("  clip search %lld of %lld groups clipped, mean ratio %.4f; per tensor (clipped groups, "
           "mean / min ratio, weighted error vs no clipping):\n", (long long)tot.clipped,
           (long long)tot.groups, tot.ratio_sum / (double)tot.groups);
    for (int64_t i = 0; i < r->n_quantized; i++) {
        const lq_ptq_tensor_stat *t = &r->tensors[i];
        const lq_clip_stats *c = &t->clip;
        if (!c->groups) continue;
        printf("              %s%s: %lld/%lld, %.4f / %.2f, %+.2f%%\n", t->name,
               t->calibrated ? " (calibrated)" : "", (long long)c->clipped, (long long)c->groups,
               c->ratio_sum / (double)c->groups, c->ratio_min,
               c->err_plain > 0 ? 100.0 * (c->err_chosen / c->err_plain - 1.0) : 0.0);
    }
}

static void print_summary(const lq_ptq_summary *r, const lq_ptq_opts *o, const char *out, bool json,
                          const tool_gptq *gq, const ptq_smooth *sm, const ptq_kv *kv) {
    const char *scheme = lq_ptq_scheme_name(o->scheme), *fallback = lq_ptq_group_fallback_name(o->group_fallback);
    uint64_t rss = tool_peak_rss_bytes();
    if (json) {
        printf("{\"out\": ");
        tool_print_json_string(out);
        printf(", \"scheme\": \"%s\", \"rounding\": \"%s\", \"clip_search\": \"%s\", \"group_fallback\": \"%s\", "
               "\"fallback\": [", scheme, lq_rounding_name(o->rounding),
               !o->clip_search ? "none" : o->calib ? "calibrated" : "weighted", fallback);
        for (int64_t i = 0; i < r->n_fallback; i++) {
            const lq_ptq_fallback_stat *f = &r->fallback[i];
            printf("%s{\"name\": ", i ? ", " : "");
            tool_print_json_string(f->name);
            printf(", \"rows\": %lld, \"cols\": %lld, \"group_size\": %d, \"action\": \"%s\"}",
                   (long long)f->rows, (long long)f->cols, (int)f->group_size,
                   lq_ptq_group_fallback_name(f->action));
        }
        printf("], \"tensors\": %lld, \"quantized\": %lld, \"params\": %lld, "
               "\"params_quantized\": %lld, \"bytes_in\": %llu, \"bytes_out\": %llu, "
               "\"quantized_bytes_in\": %llu, \"quantized_bytes_out\": %llu, \"bits_per_weight\": %.4f, "
               "\"mean_rel_err\": %.6g, \"worst_rel_err\": %.6g, \"worst_tensor\": ",
               (long long)r->n_tensors, (long long)r->n_quantized, (long long)r->params_total,
               (long long)r->params_quantized, (unsigned long long)r->bytes_in,
               (unsigned long long)r->bytes_out, (unsigned long long)r->qbytes_in,
               (unsigned long long)r->qbytes_out, r->bits_per_weight, r->mean_rel_err, r->worst_rel_err);
        tool_print_json_string(r->worst_tensor);
        printf(", \"seconds\": %.3f, \"peak_rss\": %llu, \"per_tensor\": [", r->seconds,
               (unsigned long long)rss);
        for (int64_t i = 0; i < r->n_quantized; i++) {
            const lq_ptq_tensor_stat *t = &r->tensors[i];
            printf("%s{\"name\": ", i ? ", " : "");
            tool_print_json_string(t->name);
            printf(", \"scheme\": \"%s\", \"group_size\": %d, \"fell_back\": %s, \"rows\": %lld, "
                   "\"cols\": %lld, \"bytes_in\": %llu, \"bytes_out\": %llu, \"rel_err\": %.6g",
                   lq_ptq_scheme_name(t->scheme), (int)t->group_size, t->fell_back ? "true" : "false",
                   (long long)t->rows, (long long)t->cols,
                   (unsigned long long)t->bytes_in, (unsigned long long)t->bytes_out, t->rel_err);
            if (t->clip.groups > 0)
                printf(", \"clip\": {\"calibrated\": %s, \"groups\": %lld, \"clipped\": %lld, "
                       "\"mean_ratio\": %.4f, \"min_ratio\": %.2f, \"err_plain\": %.6g, "
                       "\"err_chosen\": %.6g}",
                       t->calibrated ? "true" : "false", (long long)t->clip.groups,
                       (long long)t->clip.clipped, t->clip.ratio_sum / (double)t->clip.groups,
                       t->clip.ratio_min, t->clip.err_plain, t->clip.err_chosen);
            printf("}");
        }
        printf("]");
        if (gq) tool_gptq_print(gq, true);
        if (sm) ptq_smooth_print(sm, true);
        ptq_kv_print(kv, true);
        printf("}\n");
        return;
    }
    printf("%s: %lld of %lld tensors quantized (%s, rounding %s), %lld of %lld parameters\n", out,
           (long long)r->n_quantized, (long long)r->n_tensors, scheme, lq_rounding_name(o->rounding),
           (long long)r->params_quantized, (long long)r->params_total);
    printf("  size        %.2f MiB -> %.2f MiB (quantized tensors %.2f -> %.2f MiB, %.3f bits/weight)\n",
           r->bytes_in / 1048576.0, r->bytes_out / 1048576.0, r->qbytes_in / 1048576.0,
           r->qbytes_out / 1048576.0, r->bits_per_weight);
    printf("  rel. error  ||W-Q||/||W|| mean %.5f, worst %.5f (%s)\n", r->mean_rel_err,
           r->worst_rel_err, r->worst_tensor[0] ? r->worst_tensor : "-");
    print_fallback_text(r);
    print_clip_text(r);
    if (gq) tool_gptq_print(gq, false);
    if (sm) ptq_smooth_print(sm, false);
    ptq_kv_print(kv, false);
    printf("  time        %.2f s%s, peak RSS %.1f MiB\n",
           r->seconds + (gq ? gq->sum.calib_seconds : 0.0) + (sm ? sm->sum.seconds : 0.0),
           gq || sm ? " (calibration included)" : "", rss / 1048576.0);
}

/* ---- calibration ------------------------------------------------------------------------------ */

#define CALIB_CTX 512

/* Run the first max_tokens tokens of text_path through the model and collect its imatrix.
 * Returns 0 or the exit code (the error printed). */
static int collect_calib(const char *model, const char *tok_path, const char *text_path, int max_tokens,
                         lq_pool *pool, lq_imatrix **out) {
    lq_model *m = NULL;
    lq_tokenizer *tok = NULL;
    lq_session *s = NULL;
    char *text = NULL;
    int32_t *ids = NULL;
    size_t len = 0;
    int64_t n = 0;
    const char *what = "cannot load", *where = model;
    lq_status st = lq_model_load(model, &m);
    if (st == LQ_OK) st = lq_tokenizer_load_for_model(model, tok_path, lq_model_config(m)->vocab_size, &tok);
    if (st == LQ_OK) {
        what = "cannot read calibration text";
        where = text_path;
        st = lq_text_read_file(text_path, &text, &len);
    }
    if (st == LQ_OK) st = lq_tokenizer_encode(tok, text, len, false, false, NULL, 0, &n);
    if (st == LQ_ERR_INVALID_ARG) st = LQ_OK; /* cap 0: n is the count */
    if (st == LQ_OK && n < 2) st = lq_fail(LQ_ERR_FORMAT, "%lld tokens: too short to calibrate", (long long)n);
    if (st == LQ_OK && !(ids = malloc((size_t)n * sizeof *ids))) st = lq_fail(LQ_ERR_NOMEM, "out of memory");
    if (st == LQ_OK) st = lq_tokenizer_encode(tok, text, len, false, false, ids, n, &n);
    int ctx = CALIB_CTX;
    if (m && lq_model_config(m)->max_seq_len < ctx) ctx = lq_model_config(m)->max_seq_len;
    if (st == LQ_OK) {
        what = "cannot calibrate";
        where = model;
        st = lq_session_create(m, ctx, pool, &s);
    }
    if (st == LQ_OK) st = lq_imatrix_create(out);
    if (st == LQ_OK) {
        int32_t bos = lq_tokenizer_add_bos_default(tok) ? lq_tokenizer_bos(tok) : -1;
        st = lq_imatrix_collect(m, s, ids, n < max_tokens ? n : max_tokens, ctx, bos, *out);
    }
    lq_session_free(s);
    free(ids);
    free(text);
    lq_tokenizer_free(tok);
    lq_model_free(m);
    if (st == LQ_OK) return 0;
    lq_imatrix_free(*out);
    *out = NULL;
    return tool_fail_at(what, where, st);
}

/* An imatrix file for the clip search; its GGUF names found by HF module name through the
 * model's architecture. Returns 0 or the exit code (the error printed). */
static int load_imatrix(const char *model, const char *path, lq_imatrix **out) {
    lq_checkpoint *c = NULL;
    lq_status st = lq_imatrix_load(path, out);
    if (st != LQ_OK) return tool_fail_at("cannot read imatrix", path, st);
    st = lq_checkpoint_open(model, &c);
    if (st == LQ_OK) st = lq_imatrix_set_config(*out, lq_checkpoint_config(c));
    lq_checkpoint_close(c);
    if (st == LQ_OK) return 0;
    lq_imatrix_free(*out);
    *out = NULL;
    return tool_fail_at("cannot load", model, st);
}

/* ---- main ----------------------------------------------------------------------------------------- */

int main(int argc, char **argv) {
    if (ptq_gguf_wanted(argc, argv)) return ptq_gguf_main(argc, argv); /* llama-quantize's job */
    tool_init(TOOL, usage);
    const char *model = NULL, *out_dir = NULL, *scheme_arg = NULL, *calib = NULL, *tok_path = NULL;
    const char *imatrix_path = NULL;
    int calib_tokens = 8192;
    lq_imatrix *im = NULL;
    lq_ptq_calib pc;
    bool force = false, json = false, asym = false, sym = false;
    int threads = 0;
    lq_ptq_opts o = {0};
    const char *ignore[MAX_RULES];
    lq_ptq_rule rules[MAX_RULES];
    char *rule_buf[MAX_RULES];
    int n_rule_buf = 0;
    int group_size = 0, rc = 0;
    tool_gptq gq = {0};
    ptq_smooth sm = {0};
    ptq_kv kv = {0};
    tool_args a = tool_args_begin(argc, argv);
    while (tool_args_next(&a)) {
        if (tool_args_help(&a)) {
            usage(stdout);
            return 0;
        } else if (tool_args_flag(&a, "--force")) {
            force = true;
        } else if (tool_args_flag(&a, "--json")) {
            json = true;
        } else if (tool_args_flag(&a, "--asym")) {
            asym = true;
        } else if (tool_args_flag(&a, "--sym")) {
            sym = true;
        } else if (tool_args_flag(&a, "--clip-search")) {
            o.clip_search = true;
        } else if (tool_args_value(&a, "--rounding")) {
            if (!lq_rounding_parse(a.value, &o.rounding))
                return tool_bad_args("--rounding must be amax or signed-max, not '%s'", a.value);
        } else if (ptq_smooth_arg(&a, &sm, &gq, &rc)) {
            if (rc) return rc;
        } else if (ptq_kv_arg(&a, &kv, &rc)) {
            if (rc) return rc;
        } else if (tool_gptq_arg(&a, &gq, &rc)) {
            if (rc) return rc;
        } else if (tool_args_value(&a, "--calib")) {
            calib = a.value;
            if (gq.n_calib < TOOL_GPTQ_MAX_CALIB) gq.calib[gq.n_calib++] = a.value;
        } else if (tool_args_value(&a, "--tokenizer")) {
            tok_path = a.value;
        } else if (tool_args_value(&a, "--imatrix")) {
            imatrix_path = a.value;
        } else if (tool_args_value(&a, "--calib-tokens")) {
            if (!tool_parse_int(a.value, 2, &calib_tokens)) return tool_args_bad_value(&a);
        } else if (tool_args_value(&a, "--model")) {
            model = a.value;
        } else if (tool_args_value(&a, "--out")) {
            out_dir = a.value;
        } else if (tool_args_value(&a, "--scheme")) {
            scheme_arg = a.value;
        } else if (tool_args_value(&a, "--threads")) {
            if (!tool_parse_int(a.value, 1, &threads)) return tool_args_bad_value(&a);
        } else if (tool_args_value(&a, "--group-size")) {
            if (!tool_parse_int(a.value, -1, &group_size) || group_size == 0)
                return tool_bad_args("--group-size must be a positive integer or -1, not '%s'", a.value);
        } else if (tool_args_value(&a, "--group-fallback")) {
            if (!lq_ptq_group_fallback_parse(a.value, &o.group_fallback))
                return tool_bad_args("--group-fallback must be refuse, channel or ignore, not '%s'", a.value);
        } else if (tool_args_value(&a, "--ignore")) {
            if (o.n_ignore == MAX_RULES) return tool_bad_args("at most %d --ignore patterns", MAX_RULES);
            ignore[o.n_ignore++] = a.value;
            o.ignore_replaces_default = true;
        } else if (tool_args_value(&a, "--override")) {
            const char *eq = strrchr(a.value, '=');
            const lq_preset *pre = eq && eq != a.value ? lq_preset_find(eq + 1) : NULL;
            if (!pre || pre->asym)
                return tool_bad_args("--override expects PATTERN=SCHEME (W8A16, W4A16, W3A16, FP8, W8A8 or "
                                     "none; --asym sets the symmetry), not '%s'", a.value);
            const lq_wfmt sc = pre->fmt;
            if (o.n_overrides == MAX_RULES) return tool_bad_args("at most %d --override rules", MAX_RULES);
            char *pat = strndup(a.value, (size_t)(eq - a.value));
            if (!pat) return tool_fail(lq_fail(LQ_ERR_NOMEM, "out of memory"));
            rule_buf[n_rule_buf++] = pat;
            rules[o.n_overrides++] = (lq_ptq_rule){.pattern = pat, .scheme = sc};
        } else {
            return tool_args_unknown(&a);
        }
    }
    if (!model || !out_dir || !scheme_arg) return tool_bad_args("--model, --scheme and --out are required");
    const lq_preset *preset = lq_preset_find(scheme_arg);
    if (!preset || preset->fmt == LQ_WFMT_NONE)
        return tool_bad_args("unknown scheme '%s' (W8A16, W4A16, W4A16_ASYM, W3A16, FP8, W8A8)", scheme_arg);
    o.scheme = preset->fmt;
    if (preset->asym && sym) return tool_bad_args("--sym contradicts scheme %s", preset->name);
    asym = asym || preset->asym;
    if (asym && sym) return tool_bad_args("--sym and --asym are exclusive");
    o.asym = asym;
    o.group_size = group_size;
    if ((rc = ptq_kv_check(&kv, &gq, sm.on, tok_path)) != 0) return rc;
    if ((rc = ptq_smooth_check(&sm, &gq, &o, gq.n_calib, gq.calib)) != 0) return rc;
    if ((rc = tool_gptq_check(&gq, &o)) != 0) return rc;
    if (calib && !o.clip_search && !gq.on && !sm.on && !kv.on)
        return tool_bad_args("--calib weights the clip search: add --clip-search");
    if (imatrix_path && (calib || gq.on || sm.on))
        return tool_bad_args("--imatrix and --calib / --method gptq|awq|smoothquant are exclusive");
    if (imatrix_path && !o.clip_search) return tool_bad_args("--imatrix weights the clip search: add --clip-search");
    o.ignore = ignore;
    o.overrides = rules;

    tool_outdir od;
    if ((rc = tool_output_start(&od, out_dir, model, force)) != 0) goto out;
    /* A GGUF model is read as the HF directory quant-convert makes of it (inside od.tmp). */
    const char *input = model;
    char from_gguf[PATH_MAX];
    if ((rc = tool_output_hf_source(TOOL, &od, &model, from_gguf, sizeof from_gguf)) != 0) goto out;
    o.pool = lq_pool_create(threads);
    if (calib && o.clip_search && !gq.on && !sm.on) { /* smoothed models clip-search without data */
        if ((rc = collect_calib(model, tok_path, calib, calib_tokens, o.pool, &im)) != 0) {
            tool_outdir_abort(&od);
            goto out;
        }
        pc = lq_imatrix_ptq_calib(im);
        o.calib = &pc;
    } else if (imatrix_path) {
        if ((rc = load_imatrix(model, imatrix_path, &im)) != 0) {
            tool_outdir_abort(&od);
            goto out;
        }
        pc = lq_imatrix_ptq_calib(im);
        o.calib = &pc;
    }
    tool_progress prog;
    tool_progress_begin(&prog, "quantizing", 1, !json); /* total set by the first callback */
    o.progress = tool_progress_cb;
    o.user = &prog;
    lq_ptq_summary sum;
    const char *src = model; /* the smoothed float model when smoothing */
    sm.o.pool = o.pool;
    lq_status s = sm.on ? ptq_smooth_run(&sm, model, od.tmp, tok_path, !json) : LQ_OK;
    if (sm.on) src = sm.dir;
    if (s == LQ_OK) s = ptq_kv_run(&kv, src, &o, !json);
    if (s == LQ_OK)
        s = gq.on ? tool_gptq_run(&gq, src, od.tmp, tok_path, &o, !json) : lq_ptq_quantize(src, od.tmp, &o, &sum);
    if (gq.on && s == LQ_OK) sum = gq.sum.ptq, gq.sum.ptq = (lq_ptq_summary){0};
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
    s = lq_checkpoint_copy_side_files(model, od.tmp);
    if (s == LQ_OK && sm.on) s = ptq_smooth_drop_dir(&sm);
    if (s == LQ_OK && from_gguf[0] && tool_rm_tree(from_gguf) != 0)
        s = lq_fail(LQ_ERR_IO, "%s: cannot remove", from_gguf);
    if (s == LQ_OK) s = tool_outdir_commit(&od);
    if (s != LQ_OK) {
        tool_outdir_abort(&od);
        lq_ptq_summary_free(&sum);
        rc = tool_fail_at("cannot write output", out_dir, s);
        goto out;
    }
    print_summary(&sum, &o, out_dir, json, gq.on ? &gq : NULL, sm.on ? &sm : NULL, &kv);
    lq_ptq_summary_free(&sum);
    rc = tool_finish_stdout();
out:
    tool_gptq_free(&gq);
    ptq_smooth_cleanup(&sm);
    ptq_kv_free(&kv);
    lq_imatrix_free(im);
    lq_pool_free(o.pool);
    for (int i = 0; i < n_rule_buf; i++) free(rule_buf[i]);
    return rc;
}
