/* gguf.c - quant-ptq --format gguf (see ptq_gguf.h). */
#include "quant-ptq/ptq_gguf.h"
#include "quant-ptq/ptq_smooth.h"

#include "tool_cli.h"
#include "tool_gguf.h"

#include "libquant/lq_calib.h"

#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define MAX_RULES 64

static void usage(FILE *f) {
    fprintf(f,
            "usage: quant-ptq --format gguf --model PATH --type T --out FILE.gguf\n"
            "                 [--tensor-type PATTERN=TYPE]... [--pure] [--output-tensor-type TYPE]\n"
            "                 [--token-embedding-type TYPE] [--imatrix FILE] [--target-bpw B]\n"
            "                 [--tokenizer FILE]\n"
            "                 [--threads N] [--force] [--json]\n"
            "\n"
            "Write the model as a GGUF file that llama.cpp loads, quantized as llama-quantize does\n"
            "(with --imatrix as llama-quantize --imatrix does): the same float input gives the same\n"
            "tensor bytes.\n"
            "\n"
            "  --model PATH       Hugging Face directory, llama2.c .bin (with --tokenizer) or GGUF\n"
            "                     file (its tensors are dequantized to f32 first, as\n"
            "                     llama-quantize --allow-requantize does, and its metadata kept)\n"
            "  --type T           llama-quantize's type: F32 F16 BF16 Q8_0 Q4_0 Q4_1 Q5_0 Q5_1\n"
            "                     IQ4_NL IQ4_XS Q6_K, or a mix: Q2_K Q3_K_S Q3_K_M (Q3_K) Q3_K_L\n"
            "                     Q4_K_S Q4_K_M (Q4_K) Q5_K_S Q5_K_M (Q5_K). Mixes follow\n"
            "                     llama.cpp's rules per tensor (output and tied embedding Q6_K,\n"
            "                     attn_v / ffn_down bumps on use_more_bits layers, a type whose\n"
            "                     block size does not divide the columns falls back: Q4_K->Q5_0,\n"
            "                     Q5_K->Q5_1, Q6_K->Q8_0, Q2_K/Q3_K->Q4_0, IQ4_XS->IQ4_NL)\n"
            "  --tensor-type P=T  tensors whose GGUF name matches regex P (searched, lower-cased;\n"
            "                     first match wins) get ggml type T, e.g. 'attn_v=q8_0' (repeatable)\n"
            "  --pure             no mix rules: every weight gets --type's block type\n"
            "  --output-tensor-type T, --token-embedding-type T   as llama-quantize's options\n"
            "  --imatrix FILE     importance matrix (quant-imatrix or llama-imatrix; GGUF or the\n"
            "                     legacy .dat): the quantizers weight each column's error by it,\n"
            "                     and llama.cpp's imatrix rules pick ffn_down's types\n"
            "  --target-bpw B     choose each quantized tensor's type (Q2_K..Q6_K, IQ4_XS, Q4_0..Q8_0,\n"
            "                     IQ4_NL) to fit B bits per weight over the file, least summed\n"
            "                     imatrix-weighted relative output error (uniform weights without\n"
            "                     --imatrix); prints the plan. --type (default Q4_K_M) then only\n"
            "                     says which tensors are quantized\n"
            "  --tokenizer FILE   tokenizer to embed: tokenizer.json, llama2.c tokenizer.bin, or a\n"
            "                     .gguf whose tokenizer.* keys are copied (default: the model's own)\n"
            "  --method awq --calib TEXT... [--calib-samples N] [--calib-len L] [--calib-seed S]\n"
            "                     [--duo-scaling V] [--awq-grid N]: AWQ first (quant-ptq --help),\n"
            "                     its search scoring 4-bit groups of 32 with zero points (Q4_K's\n"
            "                     sub-blocks), then the GGUF types from the smoothed weights\n"
            "  --threads N        worker threads (default: all CPUs)\n"
            "  --out FILE         output file (written as FILE.tmp.<pid>, renamed when complete)\n"
            "  --force            replace an existing FILE\n"
            "  --json             print the summary as JSON on stdout\n"
            "\n"
            "Exit codes: 0 ok, 2 bad arguments, 3 bad input file, 4 I/O, 1 other.\n");
}

bool ptq_gguf_wanted(int argc, char **argv) {
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--format=gguf") == 0) return true;
        if (strcmp(argv[i], "--format") == 0 && i + 1 < argc && strcmp(argv[i + 1], "gguf") == 0) return true;
    }
    return false;
}

static int parse_type(const char *opt, const char *v, int *out) {
    if ((*out = lq_ggml_type_parse(v)) < 0) return tool_bad_args("%s: unknown ggml type '%s'", opt, v);
    return 0;
}

int ptq_gguf_main(int argc, char **argv) {
    tool_init("quant-ptq", usage);
    const char *model = NULL, *out = NULL;
    bool force = false, json = false;
    int threads = 0, rc, n_rules = 0;
    lq_gguf_tensor_rule rules[MAX_RULES];
    static char pats[MAX_RULES][256];
    lq_gguf_export_opts o = {.output_type = -1, .token_embd_type = -1};
    ptq_smooth sm = {0};
    tool_gptq gq = {0};
    tool_args a = tool_args_begin(argc, argv);
    while (tool_args_next(&a)) {
        if (tool_args_help(&a)) {
            usage(stdout);
            return 0;
        } else if (tool_args_flag(&a, "--force")) {
            force = true;
        } else if (tool_args_flag(&a, "--json")) {
            json = true;
        } else if (tool_args_flag(&a, "--pure")) {
            o.pure = true;
        } else if (tool_args_value(&a, "--format")) {
            if (strcmp(a.value, "gguf") != 0) return tool_args_bad_value(&a);
        } else if (tool_args_value(&a, "--model")) {
            model = a.value;
        } else if (tool_args_value(&a, "--out")) {
            out = a.value;
        } else if (tool_args_value(&a, "--type")) {
            if (!lq_gguf_ftype_find(a.value)) return tool_bad_args("unknown --type '%s' (%s)", a.value, lq_gguf_ftype_list());
            o.type = a.value;
        } else if (tool_args_value(&a, "--tensor-type")) {
            if (n_rules == MAX_RULES) return tool_bad_args("more than %d --tensor-type rules", MAX_RULES);
            if ((rc = tool_gguf_parse_rule(a.value, pats[n_rules], sizeof pats[0], &rules[n_rules])) != 0) return rc;
            n_rules++;
        } else if (tool_args_value(&a, "--output-tensor-type")) {
            if ((rc = parse_type("--output-tensor-type", a.value, &o.output_type)) != 0) return rc;
        } else if (tool_args_value(&a, "--token-embedding-type")) {
            if ((rc = parse_type("--token-embedding-type", a.value, &o.token_embd_type)) != 0) return rc;
        } else if (tool_args_value(&a, "--target-bpw")) {
            float b;
            if (!tool_parse_float(a.value, 0.5f, 32.0f, &b)) return tool_args_bad_value(&a);
            o.target_bpw = b;
        } else if (tool_args_value(&a, "--imatrix")) {
            o.imatrix_path = a.value;
        } else if (tool_args_value(&a, "--tokenizer")) {
            o.tokenizer = a.value;
        } else if (tool_args_value(&a, "--threads")) {
            if (!tool_parse_int(a.value, 1, &threads)) return tool_args_bad_value(&a);
        } else if (ptq_smooth_arg(&a, &sm, &gq, &rc)) {
            if (rc) return rc;
        } else if (tool_args_value(&a, "--calib")) {
            if (gq.n_calib == TOOL_GPTQ_MAX_CALIB) return tool_bad_args("at most %d --calib files", TOOL_GPTQ_MAX_CALIB);
            gq.calib[gq.n_calib++] = a.value;
        } else if (tool_gptq_arg(&a, &gq, &rc)) {
            if (rc) return rc;
        } else {
            return tool_args_unknown(&a);
        }
    }
    if (!o.type && o.target_bpw > 0) o.type = "Q4_K_M";
    if (!model || !out || !o.type) return tool_bad_args("--model, --type and --out are required");
    if (gq.on) return tool_bad_args("--format gguf writes llama-quantize's types: no GPTQ");
    if (sm.on && sm.o.method != LQ_SMOOTH_AWQ) return tool_bad_args("--format gguf smooths with --method awq only");
    lq_ptq_opts po = {.scheme = LQ_WFMT_W4A16, .group_size = 32, .asym = true};
    if ((rc = ptq_smooth_check(&sm, &gq, &po, gq.n_calib, gq.calib)) != 0) return rc;
    if ((rc = tool_gptq_check(&gq, &po)) != 0) return rc;
    if (!sm.on && gq.n_calib) return tool_bad_args("--calib goes with --method awq");
    o.rules = rules;
    o.n_rules = n_rules;
    if (o.imatrix_path) {
        lq_status st = lq_imatrix_load(o.imatrix_path, &o.imatrix);
        if (st != LQ_OK) return tool_fail_at("cannot read imatrix", o.imatrix_path, st);
    }
    o.pool = lq_pool_create(threads);
    char tmp[4096] = "";
    const char *src = model;
    if (sm.on) { /* the smoothed float model next to the output, removed whatever happens */
        snprintf(tmp, sizeof tmp, "%s.smooth.XXXXXX", out);
        sm.o.pool = o.pool;
        lq_status s = mkdtemp(tmp) ? LQ_OK : lq_fail(LQ_ERR_IO, "%s: cannot create a temporary directory", tmp);
        if (s != LQ_OK) tmp[0] = 0;
        if (s == LQ_OK) s = ptq_smooth_run(&sm, model, tmp, o.tokenizer, !json);
        if (s != LQ_OK) rc = tool_fail_at("cannot smooth", model, s);
        src = sm.dir;
    }
    if (rc == 0) rc = tool_gguf_run(src, out, &o, force, json);
    if (rc == 0 && sm.on && !json) ptq_smooth_print(&sm, false);
    ptq_smooth_cleanup(&sm);
    if (tmp[0]) rmdir(tmp);
    lq_pool_free(o.pool);
    lq_imatrix_free(o.imatrix);
    return rc;
}
