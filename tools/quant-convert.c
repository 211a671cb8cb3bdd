/* quant-convert - llama2.c legacy .bin (+ tokenizer.bin) -> Hugging Face directory.
 *
 *   quant-convert --llama2c FILE.bin --tokenizer tokenizer.bin --out DIR [--dtype f32|f16|bf16] [--force]
 *
 * Writes DIR/config.json, DIR/generation_config.json, DIR/model.safetensors and
 * DIR/tokenizer.json. llama2.c stores each q/k head with its rotary pairs interleaved
 * (2i, 2i+1); HF rotates the halves (i, i + hd/2). The rows are permuted so the output is a
 * plain HF checkpoint: hf_row[h*hd + i] = l2c_row[h*hd + 2i], hf_row[h*hd + hd/2 + i] =
 * l2c_row[h*hd + 2i + 1] (the inverse of llama2.c export.py's permute_reverse).
 */
#include "tool_cli.h"
#include "tool_outdir.h"

#include <stdlib.h>
#include <string.h>

#define TOOL "quant-convert"

static void usage(FILE *f) {
    fprintf(f,
            "usage: " TOOL " --llama2c FILE.bin --tokenizer tokenizer.bin --out DIR\n"
            "                     [--dtype f32|f16|bf16] [--force]\n"
            "\n"
            "Convert a llama2.c legacy checkpoint to a Hugging Face directory: config.json,\n"
            "generation_config.json, model.safetensors (q/k rows permuted to HF rotary layout) and\n"
            "tokenizer.json. The directory is built as DIR.tmp.<pid> and renamed when complete.\n"
            "\n"
            "  --llama2c FILE    llama2.c .bin (7 x int32 header + f32 arrays)\n"
            "  --tokenizer FILE  llama2.c tokenizer.bin matching the model vocabulary\n"
            "  --out DIR         output directory (must not exist unless --force)\n"
            "  --dtype T         f32 (default, lossless), f16 or bf16\n"
            "  --force           replace an existing DIR\n"
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
        bool permute = is_qk(t->name);
        free(row);
        free(out);
        row = malloc((size_t)cols * sizeof *row);
        out = malloc((size_t)cols * lq_dtype_size(dt));
        if (!row || !out) {
            st = lq_fail(LQ_ERR_NOMEM, "%s: out of memory", path);
            break;
        }
        for (int64_t r = 0; st == LQ_OK && r < rows; r++) {
            const char *src = (const char *)t->data + (size_t)(src_row(r, cfg->head_dim, permute) * cols) * 4;
            memcpy(row, src, (size_t)cols * 4);
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

int main(int argc, char **argv) {
    tool_init(TOOL, usage);
    const char *in = NULL, *tok = NULL, *out_dir = NULL;
    lq_dtype dt = LQ_DTYPE_F32;
    bool force = false;
    tool_args a = tool_args_begin(argc, argv);
    while (tool_args_next(&a)) {
        if (tool_args_help(&a)) {
            usage(stdout);
            return 0;
        } else if (tool_args_flag(&a, "--force")) {
            force = true;
        } else if (tool_args_value(&a, "--llama2c")) {
            in = a.value;
        } else if (tool_args_value(&a, "--tokenizer")) {
            tok = a.value;
        } else if (tool_args_value(&a, "--out")) {
            out_dir = a.value;
        } else if (tool_args_value(&a, "--dtype")) {
            if (!tool_parse_dtype(a.value, &dt)) return tool_bad_args("--dtype must be f32, f16 or bf16, not %s", a.value);
        } else {
            return tool_args_unknown(&a);
        }
    }
    if (!in || !tok || !out_dir) return tool_bad_args("--llama2c, --tokenizer and --out are required");
    const char *inputs[] = {in, tok, NULL};
    lq_status s = tool_outdir_check_inputs(out_dir, inputs);
    if (s != LQ_OK) return tool_fail_at("refusing to write into the input", out_dir, s);

    lq_checkpoint *c;
    s = lq_checkpoint_open(in, &c);
    if (s != LQ_OK) return tool_fail_at("cannot open checkpoint", in, s);
    if (lq_checkpoint_kind(c) != LQ_CKPT_LLAMA2C) {
        lq_checkpoint_close(c);
        return tool_fail_at("not a llama2.c checkpoint", in, lq_fail(LQ_ERR_INVALID_ARG, "--llama2c expects a .bin file"));
    }
    lq_config cfg = *lq_checkpoint_config(c);
    lq_tokenizer *t;
    s = lq_tokenizer_load_llama2c(tok, cfg.vocab_size, &t);
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
