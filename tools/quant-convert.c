/* quant-convert - between llama2.c, Hugging Face directories and GGUF.
 *
 *   quant-convert --llama2c FILE.bin --tokenizer tokenizer.bin --out DIR [--dtype T] [--force]
 *   quant-convert --model FILE.gguf --out DIR [--dtype T] [--force]            GGUF -> HF
 *   quant-convert --model PATH --out FILE.gguf [--outtype T] [--tokenizer F]   any -> GGUF
 *
 * HF output: DIR/config.json, DIR/generation_config.json, DIR/model.safetensors and
 * DIR/tokenizer.json, q/k rows in HF's rotary layout, GGUF tensors of any type dequantized
 * (tools/common/tool_convert_hf.c, which quant-ptq and quant-prune use on a GGUF input too).
 * GGUF output is lq_gguf_export (lq_gguf_quant.h), as quant-ptq --format gguf writes it.
 */
#include "tool_cli.h"
#include "tool_convert_hf.h"
#include "tool_gguf.h"
#include "tool_outdir.h"

#include <stdlib.h>
#include <string.h>

#define TOOL "quant-convert"

static void usage(FILE *f) {
    fprintf(f,
            "usage: " TOOL " --llama2c FILE.bin --tokenizer tokenizer.bin --out DIR\n"
            "                     [--dtype f32|f16|bf16] [--force]\n"
            "       " TOOL " --model FILE.gguf --out DIR [--dtype f32|f16|bf16] [--force]\n"
            "       " TOOL " --model PATH --out FILE.gguf [--outtype f32|f16|bf16]\n"
            "                     [--tokenizer FILE] [--force] [--json]\n"
            "\n"
            "Convert a llama2.c legacy checkpoint or a GGUF file (any tensor type, dequantized) to a\n"
            "Hugging Face directory: config.json, generation_config.json, model.safetensors (q/k rows\n"
            "permuted to HF rotary layout) and tokenizer.json. The directory is built as\n"
            "DIR.tmp.<pid> and renamed when complete. An --out ending in .gguf writes GGUF instead\n"
            "(from an HF directory, a llama2.c .bin or a GGUF file), as llama.cpp's\n"
            "convert_hf_to_gguf.py does (llama q/k rows in its interleaved order, 1-D tensors f32).\n"
            "\n"
            "  --llama2c FILE    llama2.c .bin (7 x int32 header + f32 arrays)\n"
            "  --model PATH      GGUF file (to HF), or any checkpoint (to GGUF)\n"
            "  --tokenizer FILE  llama2.c tokenizer.bin matching the model vocabulary; for GGUF\n"
            "                    output also tokenizer.json or a .gguf whose tokenizer.* is copied\n"
            "  --out PATH        output directory, or FILE.gguf (must not exist unless --force)\n"
            "  --dtype T         HF output: f32 (default, lossless), f16 or bf16\n"
            "  --outtype T       GGUF output: f32 (default), f16 or bf16 (more: quant-ptq --format gguf)\n"
            "  --force           replace an existing output\n"
            "  --json            GGUF output: print the summary as JSON\n"
            "  --help            this text\n"
            "\n"
            "Exit codes: 0 ok, 2 bad arguments, 3 bad input file, 4 I/O, 1 other.\n");
}

static bool ends_with(const char *s, const char *suf) {
    size_t a = strlen(s), b = strlen(suf);
    return a >= b && strcmp(s + a - b, suf) == 0;
}

/* --out FILE.gguf: the GGUF writer. */
static int to_gguf(const char *in, const char *tok, const char *out, const char *outtype, bool force, bool json) {
    lq_gguf_export_opts o = {.type = outtype, .tokenizer = tok, .output_type = -1, .token_embd_type = -1};
    o.pool = lq_pool_create(0);
    int rc = tool_gguf_run(in, out, &o, force, json);
    lq_pool_free(o.pool);
    return rc;
}

int main(int argc, char **argv) {
    tool_init(TOOL, usage);
    const char *in = NULL, *model = NULL, *tok = NULL, *out_dir = NULL, *outtype = "F32";
    lq_dtype dt = LQ_DTYPE_F32;
    bool force = false, json = false;
    tool_args a = tool_args_begin(argc, argv);
    while (tool_args_next(&a)) {
        if (tool_args_help(&a)) {
            usage(stdout);
            return 0;
        } else if (tool_args_flag(&a, "--force")) {
            force = true;
        } else if (tool_args_flag(&a, "--json")) {
            json = true;
        } else if (tool_args_value(&a, "--llama2c")) {
            in = a.value;
        } else if (tool_args_value(&a, "--model")) {
            model = a.value;
        } else if (tool_args_value(&a, "--tokenizer")) {
            tok = a.value;
        } else if (tool_args_value(&a, "--out")) {
            out_dir = a.value;
        } else if (tool_args_value(&a, "--dtype")) {
            if (!tool_parse_dtype(a.value, &dt)) return tool_bad_args("--dtype must be f32, f16 or bf16, not %s", a.value);
        } else if (tool_args_value(&a, "--outtype")) {
            lq_dtype ot;
            if (!tool_parse_dtype(a.value, &ot)) return tool_bad_args("--outtype must be f32, f16 or bf16, not %s", a.value);
            outtype = ot == LQ_DTYPE_F32 ? "F32" : ot == LQ_DTYPE_F16 ? "F16" : "BF16";
        } else {
            return tool_args_unknown(&a);
        }
    }
    if (in && model) return tool_bad_args("--llama2c and --model are exclusive");
    if (!in) in = model;
    if (!in || !out_dir) return tool_bad_args("--llama2c or --model, and --out are required");
    if (ends_with(out_dir, ".gguf")) return to_gguf(in, tok, out_dir, outtype, force, json);
    if (model && !tok) tok = model; /* a GGUF file carries its vocabulary */
    if (!tok) return tool_bad_args("--llama2c needs --tokenizer");
    const char *inputs[] = {in, tok, NULL};
    lq_status s = tool_outdir_check_inputs(out_dir, inputs);
    if (s != LQ_OK) return tool_fail_at("refusing to write into the input", out_dir, s);

    const char *what, *where;
    s = tool_convert_to_hf(in, tok, model != NULL, out_dir, dt, force, &what, &where);
    if (s != LQ_OK) return tool_fail_at(what, where, s);
    return 0;
}
