/* quant-convert - between llama2.c, Hugging Face directories and GGUF.
 *
 *   quant-convert --llama2c FILE.bin --tokenizer tokenizer.bin --out DIR [--dtype T] [--force]
 *   quant-convert --model FILE.gguf --out DIR [--dtype T] [--force]            GGUF -> HF
 *   quant-convert --model PATH --out FILE.gguf [--outtype T] [--tokenizer F]   any -> GGUF
 *
 * HF output: DIR/config.json, DIR/generation_config.json, DIR/model.safetensors and
 * DIR/tokenizer.json. llama2.c and llama.cpp store each llama q/k head with its rotary pairs
 * interleaved (2i, 2i+1); HF rotates the halves (i, i + hd/2). The rows are permuted so the
 * output is a plain HF checkpoint: hf_row[h*hd + i] = row[h*hd + 2i], hf_row[h*hd + hd/2 + i] =
 * row[h*hd + 2i + 1] (the inverse of llama2.c export.py's permute_reverse and of
 * convert_hf_to_gguf.py's permute). GGUF tensors of any type are dequantized to f32 first.
 * GGUF output is lq_gguf_export (lq_gguf_quant.h), as quant-ptq --format gguf writes it.
 */
#include "tool_cli.h"
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

/* Source row of output row r for a q/k projection with heads of hd rows (identity for others). */
static int64_t src_row(int64_t r, int hd, bool permute) {
    if (!permute) return r;
    int64_t h = r / hd, j = r % hd, half = hd / 2;
    return h * hd + (j < half ? 2 * j : 2 * (j - half) + 1);
}

static bool is_qk(const char *name) {
    size_t n = strlen(name);
    const char *q = "self_attn.q_proj.weight", *k = "self_attn.k_proj.weight";
    size_t m = strlen(q);
    return n >= m && (strcmp(name + n - m, q) == 0 || strcmp(name + n - m, k) == 0);
}

static lq_status write_weights(const lq_checkpoint *c, const char *path, lq_dtype dt) {
    const lq_config *cfg = lq_checkpoint_config(c);
    bool interleaved = cfg->rope_interleaved;
    lq_st_writer *w;
    LQ_TRY(lq_st_writer_create(path, &w));
    lq_status st = lq_st_writer_metadata(w, "format", "pt");
    for (int64_t i = 0; st == LQ_OK && i < lq_checkpoint_count(c); i++) {
        const lq_tensor *t = lq_checkpoint_get(c, i);
        st = lq_st_writer_declare(w, t->name, dt, t->ndim, t->shape);
    }
    /* One row at a time: peak memory is a row, whatever the model size. */
    float *row = NULL;
    void *out = NULL;
    for (int64_t i = 0; st == LQ_OK && i < lq_checkpoint_count(c); i++) {
        const lq_tensor *t = lq_checkpoint_get(c, i);
        int64_t rows = t->ndim == 2 ? t->shape[0] : 1;
        int64_t cols = t->ndim == 2 ? t->shape[1] : t->shape[0];
        bool permute = interleaved && is_qk(t->name);
        free(row);
        free(out);
        row = malloc((size_t)cols * sizeof *row);
        out = malloc((size_t)cols * lq_dtype_size(dt));
        if (!row || !out) {
            st = lq_fail(LQ_ERR_NOMEM, "%s: out of memory", path);
            break;
        }
        for (int64_t r = 0; st == LQ_OK && r < rows; r++) {
            /* f32 as stored (llama2.c), other dtypes and GGUF blocks dequantized */
            lq_tensor_read_f32(t, src_row(r, cfg->head_dim, permute) * cols, cols, row);
            tool_convert_f32(row, cols, dt, out);
            st = lq_st_writer_write(w, out, (size_t)cols * lq_dtype_size(dt));
        }
    }
    free(row);
    free(out);
    if (st != LQ_OK) {
        lq_st_writer_abort(w);
        return st;
    }
    return lq_st_writer_commit(w);
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

    lq_checkpoint *c;
    s = lq_checkpoint_open(in, &c);
    if (s != LQ_OK) return tool_fail_at("cannot open checkpoint", in, s);
    if (lq_checkpoint_kind(c) == LQ_CKPT_HF_DIR || (!model && lq_checkpoint_kind(c) != LQ_CKPT_LLAMA2C)) {
        lq_checkpoint_close(c);
        return tool_fail_at(model ? "already a Hugging Face directory" : "not a llama2.c checkpoint", in,
                            lq_fail(LQ_ERR_INVALID_ARG, model ? "--model to an HF directory expects a .gguf file"
                                                              : "--llama2c expects a .bin file"));
    }
    lq_config cfg = *lq_checkpoint_config(c);
    if (cfg.norm_offset_folded) { /* GGUF Gemma: norms hold 1 + w; HF stores w (not converted yet) */
        lq_checkpoint_close(c);
        return tool_fail_at("cannot convert", in, lq_fail(LQ_ERR_UNSUPPORTED, "%s: %s stores its norms with "
                            "the offset folded in (1 + w); writing it as an HF directory is not supported",
                            in, cfg.arch));
    }
    lq_tokenizer *t;
    s = model ? lq_tokenizer_load_for_model(in, tok, cfg.vocab_size, &t) : lq_tokenizer_load_llama2c(tok, cfg.vocab_size, &t);
    if (s != LQ_OK) {
        lq_checkpoint_close(c);
        return tool_fail_at("cannot load tokenizer", tok, s);
    }
    tool_outdir od;
    char path[PATH_MAX + 64];
    s = tool_outdir_begin(&od, out_dir, force);
    if (s != LQ_OK) {
        lq_tokenizer_free(t);
        lq_checkpoint_close(c);
        return tool_fail_at("cannot create output", out_dir, s);
    }
    const char *what = "cannot write config";
    cfg.rope_interleaved = false; /* rows are permuted to the HF halves layout below */
    s = tool_outdir_write_config(&od, &cfg, dt);
    if (s == LQ_OK) {
        what = "cannot write weights";
        s = tool_outdir_file(&od, "model.safetensors", path, sizeof path);
        if (s == LQ_OK) s = write_weights(c, path, dt);
    }
    if (s == LQ_OK) {
        what = "cannot write tokenizer";
        s = tool_outdir_file(&od, "tokenizer.json", path, sizeof path);
        if (s == LQ_OK) s = lq_tokenizer_save_hf_json(t, path);
    }
    if (s == LQ_OK) {
        what = "cannot finish output";
        s = tool_outdir_commit(&od);
    }
    if (s != LQ_OK) tool_outdir_abort(&od);
    lq_tokenizer_free(t);
    lq_checkpoint_close(c);
    if (s != LQ_OK) return tool_fail_at(what, out_dir, s);
    return 0;
}
