/* tool_convert_hf.c - llama2.c / GGUF checkpoints as Hugging Face directories (tool_convert_hf.h).
 *
 * llama2.c and llama.cpp store each llama q/k head with its rotary pairs interleaved (2i, 2i+1);
 * HF rotates the halves (i, i + hd/2). The rows are permuted so the output is a plain HF
 * checkpoint: hf_row[h*hd + i] = row[h*hd + 2i], hf_row[h*hd + hd/2 + i] = row[h*hd + 2i + 1]
 * (the inverse of llama2.c export.py's permute_reverse and of convert_hf_to_gguf.py's permute).
 * GGUF tensors of any type are dequantized to f32 first. llama.cpp's RoPE frequency factors
 * (rope_freqs.weight, Llama 3's scaling) become config.json's rope_scaling llama3 when one
 * reproduces them (lq_rope_llama3_from_factors), else the conversion is refused naming the tensor.
 */
#include "tool_convert_hf.h"

#include <errno.h>
#include <limits.h>
#include <sys/stat.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tool_cli.h"
#include "tool_outdir.h"

/* Source row of output row r for a q/k projection with heads of hd rows (identity for others). */
static int64_t src_row(int64_t r, int hd, bool permute) {
    if (!permute) return r;
    int64_t h = r / hd, j = r % hd, half = hd / 2;
    return h * hd + (j < half ? 2 * j : 2 * (j - half) + 1);
}

static bool ends_with(const char *s, const char *suf) {
    size_t a = strlen(s), b = strlen(suf);
    return a >= b && strcmp(s + a - b, suf) == 0;
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
        if (strcmp(t->name, LQ_ROPE_FREQS_TENSOR) == 0) continue; /* config.json's rope_scaling now */
        st = lq_st_writer_declare(w, t->name, dt, t->ndim, t->shape);
    }
    /* One row at a time: peak memory is a row, whatever the model size. */
    float *row = NULL;
    void *out = NULL;
    for (int64_t i = 0; st == LQ_OK && i < lq_checkpoint_count(c); i++) {
        const lq_tensor *t = lq_checkpoint_get(c, i);
        if (strcmp(t->name, LQ_ROPE_FREQS_TENSOR) == 0) continue;
        int64_t rows = t->ndim == 2 ? t->shape[0] : 1;
        int64_t cols = t->ndim == 2 ? t->shape[1] : t->shape[0];
        bool permute = interleaved && is_qk(t->name);
        /* llama.cpp's converter stores Gemma's norm weights as 1 + w (every *norm.weight: the
         * layer norms, q_norm / k_norm, the final norm); HF stores w */
        const bool unfold = cfg->norm_offset_folded && ends_with(t->name, "norm.weight");
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
            if (unfold)
                for (int64_t k = 0; k < cols; k++) row[k] -= 1.0f;
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

/* llama.cpp's RoPE frequency factors as the llama3 rope_scaling that gives them (HF has no
 * tensor for them). With linear scaling as well, HF's one rope_type cannot say both. */
static lq_status rope_scaling_of_factors(const lq_checkpoint *c, lq_config *cfg) {
    float *f = malloc((size_t)(cfg->head_dim / 2 + 1) * sizeof *f);
    bool present = false;
    if (!f) return lq_fail(LQ_ERR_NOMEM, "out of memory");
    lq_status s = lq_checkpoint_rope_freqs(c, f, &present);
    if (s == LQ_OK && present && cfg->rope_type != LQ_ROPE_DEFAULT)
        s = lq_fail(LQ_ERR_UNSUPPORTED, "%s: tensor '%s' with %s RoPE scaling as well: a Hugging Face config has "
                    "one rope_type", lq_checkpoint_path(c), LQ_ROPE_FREQS_TENSOR, lq_rope_type_name(cfg->rope_type));
    if (s == LQ_OK && present) s = lq_rope_llama3_from_factors(f, cfg, lq_checkpoint_path(c));
    free(f);
    return s;
}

/* The directory's parts into dir (which exists); chat: the GGUF's chat template or NULL. */
static lq_status write_dir(const char *dir, const lq_checkpoint *c, const lq_tokenizer *t, const char *chat,
                           lq_dtype dt, const char **what) {
    char path[PATH_MAX + 64];
    lq_config cfg = *lq_checkpoint_config(c);
    cfg.rope_interleaved = false;   /* rows are permuted to the HF halves layout below */
    cfg.norm_offset_folded = false; /* and Gemma's norms unfolded to HF's w */
    *what = "cannot carry the RoPE frequency factors";
    LQ_TRY(rope_scaling_of_factors(c, &cfg));
    *what = "cannot write config";
    char *text = NULL;
    LQ_TRY(tool_config_text(&cfg, dt, &text));
    lq_status s = lq_config_json_save(dir, text);
    free(text);
    LQ_TRY(s);
    LQ_TRY(tool_write_generation_config(dir, &cfg));
    *what = "cannot write weights";
    if (snprintf(path, sizeof path, "%s/model.safetensors", dir) >= (int)sizeof path)
        return lq_fail(LQ_ERR_INVALID_ARG, "%s: path too long", dir);
    LQ_TRY(write_weights(c, path, dt));
    *what = "cannot write tokenizer";
    snprintf(path, sizeof path, "%s/tokenizer.json", dir);
    LQ_TRY(lq_tokenizer_save_hf_json(t, path));
    if (!chat) return LQ_OK;
    /* where transformers >= 4.47 saves (and prefers) the template; lq_chat_template_read too */
    *what = "cannot write chat template";
    snprintf(path, sizeof path, "%s/chat_template.jinja", dir);
    return tool_write_text(path, chat);
}

/* Open in (checking its kind) and its tokenizer; then write into dir: inside a temp output of the
 * caller (nested: dir is created here, the caller's abort removes it) or atomically (tool_outdir). */
static lq_status convert(const char *in, const char *tok, bool gguf, const char *out_dir, lq_dtype dt, bool force,
                         bool nested, const char **what, const char **where) {
    *what = "cannot open checkpoint";
    *where = in;
    lq_checkpoint *c;
    LQ_TRY(lq_checkpoint_open(in, &c));
    const lq_ckpt_kind kind = lq_checkpoint_kind(c);
    if (kind != (gguf ? LQ_CKPT_GGUF : LQ_CKPT_LLAMA2C)) {
        lq_checkpoint_close(c);
        *what = gguf ? "not a GGUF file" : "not a llama2.c checkpoint";
        return lq_fail(LQ_ERR_INVALID_ARG, gguf ? "%s: --model to an HF directory expects a .gguf file"
                                                : "%s: --llama2c expects a .bin file", in);
    }
    const lq_config *cfg = lq_checkpoint_config(c);
    lq_tokenizer *t;
    *what = "cannot load tokenizer";
    *where = tok ? tok : in;
    lq_status s = gguf ? lq_tokenizer_load_for_model(in, tok ? tok : in, cfg->vocab_size, &t)
                       : lq_tokenizer_load_llama2c(tok, cfg->vocab_size, &t);
    if (s != LQ_OK) {
        lq_checkpoint_close(c);
        return s;
    }
    char *chat = NULL; /* a GGUF without tokenizer.chat_template has none to carry over */
    if (gguf && lq_chat_template_read(in, NULL, &chat) != LQ_OK) chat = NULL;
    *what = "cannot create output";
    *where = out_dir;
    if (nested) {
        s = mkdir(out_dir, 0755) == 0 ? LQ_OK : lq_fail(LQ_ERR_IO, "%s: cannot create: %s", out_dir, strerror(errno));
        if (s == LQ_OK) s = write_dir(out_dir, c, t, chat, dt, what);
    } else {
        tool_outdir od;
        s = tool_outdir_begin(&od, out_dir, force);
        if (s == LQ_OK) {
            s = write_dir(od.tmp, c, t, chat, dt, what);
            if (s == LQ_OK) {
                *what = "cannot finish output";
                s = tool_outdir_commit(&od);
            }
            if (s != LQ_OK) tool_outdir_abort(&od);
        }
    }
    free(chat);
    lq_tokenizer_free(t);
    lq_checkpoint_close(c);
    return s;
}

lq_status tool_convert_to_hf(const char *in, const char *tok, bool gguf, const char *out_dir, lq_dtype dt,
                             bool force, const char **what, const char **where) {
    return convert(in, tok, gguf, out_dir, dt, force, false, what, where);
}

/* One open: whether path is a GGUF file and whether any of its tensors is block-quantized (not
 * F32 / F16 / BF16). A path that does not open is "not GGUF": the tool's own open reports it. */
static bool gguf_kind(const char *path, bool *blocks) {
    *blocks = false;
    lq_checkpoint *c;
    if (lq_checkpoint_open(path, &c) != LQ_OK) return false;
    const bool g = lq_checkpoint_kind(c) == LQ_CKPT_GGUF;
    for (int64_t i = 0; g && !*blocks && i < lq_checkpoint_count(c); i++)
        *blocks = lq_checkpoint_get(c, i)->dtype == LQ_DTYPE_BLOCKS;
    lq_checkpoint_close(c);
    return g;
}

int tool_output_hf_source(const char *tool, tool_outdir *od, const char **model, char *buf, size_t cap) {
    const char *input = *model;
    buf[0] = 0;
    bool blocks;
    if (!gguf_kind(input, &blocks)) return 0;
    lq_status s = LQ_OK;
    if (snprintf(buf, cap, "%s/.from-gguf", od->tmp) >= (int)cap)
        s = lq_fail(LQ_ERR_INVALID_ARG, "%s: path too long", od->tmp);
    if (s == LQ_OK) {
        fprintf(stderr, "%s: %s is GGUF: converting it to a float Hugging Face directory first (as quant-convert)\n",
                tool, input);
        if (blocks)
            fprintf(stderr, "%s: warning: %s holds quantized tensors; its dequantized values are re-quantized "
                            "(as llama-quantize --allow-requantize): quantize from the float model when you have it\n",
                    tool, input);
        const char *what, *where;
        s = convert(input, NULL, true, buf, LQ_DTYPE_F32, false, true, &what, &where);
    }
    if (s != LQ_OK) {
        buf[0] = 0;
        tool_outdir_abort(od); /* removes the partial conversion with the rest of od->tmp */
        return tool_fail_at("cannot convert", input, s);
    }
    *model = buf;
    return 0;
}
