/* quant-synth - a Hugging Face directory with random weights of a real model's shapes.
 *
 *   quant-synth --shape NAME [--dtype f32|f16|bf16] [--seed N] --out DIR [--force]
 *
 * For benchmarks and memory tests at real sizes without downloading weights: linear weights are
 * N(0, 0.02) from a seeded PRNG (the usual Llama init std), norms are 1.0. Tensors are streamed
 * through the safetensors writer one chunk at a time, so a 1B model in bf16 (2.5 GB) never sits
 * in memory.
 */
#include "tool_cli.h"
#include "tool_outdir.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#define TOOL "quant-synth"

typedef struct synth_shape {
    const char *name;
    lq_config cfg;
} synth_shape;

/* Shapes from the public configs. llama2.c models (stories*) share the classifier with the
 * embedding (model.py ties output.weight to tok_embeddings.weight), hence tied. */
static const synth_shape g_shapes[] = {
    {"stories110M", {.arch = "LlamaForCausalLM", .dim = 768, .hidden_dim = 2048, .n_layers = 12, .n_heads = 12,
                     .n_kv_heads = 12, .head_dim = 64, .vocab_size = 32000, .max_seq_len = 1024,
                     .rope_theta = 10000.0f, .norm_eps = 1e-5f, .tied_embeddings = true, .bos_id = 1, .eos_id = 2}},
    {"smollm-135m", {.arch = "LlamaForCausalLM", .dim = 576, .hidden_dim = 1536, .n_layers = 30, .n_heads = 9,
                     .n_kv_heads = 3, .head_dim = 64, .vocab_size = 49152, .max_seq_len = 2048,
                     .rope_theta = 10000.0f, .norm_eps = 1e-5f, .tied_embeddings = true, .bos_id = 0, .eos_id = 0}},
    {"llama-3.2-1b", {.arch = "LlamaForCausalLM", .dim = 2048, .hidden_dim = 8192, .n_layers = 16, .n_heads = 32,
                      .n_kv_heads = 8, .head_dim = 64, .vocab_size = 128256, .max_seq_len = 131072,
                      .rope_theta = 500000.0f, .norm_eps = 1e-5f, .tied_embeddings = true,
                      .rope_type = LQ_ROPE_LLAMA3, .rope_scale_factor = 32.0f, .rope_low_freq_factor = 1.0f, .rope_high_freq_factor = 4.0f,
                      .rope_orig_max_pos = 8192, .bos_id = 128000, .eos_id = 128001}},
    {"stories260K-like", {.arch = "LlamaForCausalLM", .dim = 64, .hidden_dim = 172, .n_layers = 5, .n_heads = 8,
                          .n_kv_heads = 4, .head_dim = 8, .vocab_size = 512, .max_seq_len = 512,
                          .rope_theta = 10000.0f, .norm_eps = 1e-5f, .tied_embeddings = true, .bos_id = 1, .eos_id = 2}},
};

static void usage(FILE *f) {
    fprintf(f,
            "usage: " TOOL " --shape NAME [--dtype f32|f16|bf16] [--seed N] --out DIR [--force]\n"
            "\n"
            "Write a Hugging Face directory (config.json, generation_config.json, model.safetensors)\n"
            "with random weights of a real model's shapes: linear weights ~ N(0, 0.02), norms 1.0.\n"
            "No tokenizer is written (benchmarks feed token ids).\n"
            "\n"
            "  --shape NAME   stories110M | smollm-135m | llama-3.2-1b | stories260K-like\n"
            "  --dtype T      f32 (default), f16 or bf16\n"
            "  --seed N       PRNG seed (default 1): same seed, same bytes\n"
            "  --out DIR      output directory (must not exist unless --force)\n"
            "  --force        replace an existing DIR\n"
            "  --help         this text\n"
            "\n"
            "Exit codes: 0 ok, 2 bad arguments, 3 bad input file, 4 I/O, 1 other.\n");
}

/* ---- PRNG: splitmix64 (seeding) + xoshiro256** -> Box-Muller normals ------------------------ */

typedef struct rng {
    uint64_t s[4];
} rng;

static uint64_t splitmix64(uint64_t *x) {
    uint64_t z = (*x += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

static uint64_t rotl(uint64_t x, int k) { return (x << k) | (x >> (64 - k)); }

static uint64_t rng_next(rng *r) {
    uint64_t *s = r->s, res = rotl(s[1] * 5, 7) * 9, t = s[1] << 17;
    s[2] ^= s[0];
    s[3] ^= s[1];
    s[1] ^= s[2];
    s[0] ^= s[3];
    s[2] ^= t;
    s[3] = rotl(s[3], 45);
    return res;
}

/* Uniform in (0, 1]: never 0, so log() below is finite. */
static double rng_unit(rng *r) { return (double)((rng_next(r) >> 11) + 1) * 0x1.0p-53; }

static void fill_normal(rng *r, float *x, int64_t n, float std) {
    for (int64_t i = 0; i < n; i += 2) {
        double u = rng_unit(r), v = rng_unit(r);
        double m = sqrt(-2.0 * log(u)) * std;
        x[i] = (float)(m * cos(2.0 * M_PI * v));
        if (i + 1 < n) x[i + 1] = (float)(m * sin(2.0 * M_PI * v));
    }
}

/* ---- tensor list ---------------------------------------------------------------------------- */

typedef struct synth_tensor {
    char name[96];
    int ndim;
    int64_t shape[2];
    bool is_norm;
} synth_tensor;

static int build_list(const lq_config *g, synth_tensor *out) {
    int n = 0;
    int64_t q = (int64_t)g->n_heads * g->head_dim, kv = (int64_t)g->n_kv_heads * g->head_dim;
#define ADD(nm, nd, r, c, norm)                                   \
    do {                                                          \
        snprintf(out[n].name, sizeof out[n].name, "%s", nm);      \
        out[n].ndim = nd;                                         \
        out[n].shape[0] = r;                                      \
        out[n].shape[1] = c;                                      \
        out[n].is_norm = norm;                                    \
        n++;                                                      \
    } while (0)
    char nm[96];
    ADD("model.embed_tokens.weight", 2, g->vocab_size, g->dim, false);
    for (int l = 0; l < g->n_layers; l++) {
        static const struct { const char *suf; int kind; } per[] = {
            {"input_layernorm.weight", 0}, {"self_attn.q_proj.weight", 1}, {"self_attn.k_proj.weight", 2},
            {"self_attn.v_proj.weight", 2}, {"self_attn.o_proj.weight", 3}, {"post_attention_layernorm.weight", 0},
            {"mlp.gate_proj.weight", 4}, {"mlp.up_proj.weight", 4}, {"mlp.down_proj.weight", 5},
        };
        for (size_t k = 0; k < sizeof per / sizeof per[0]; k++) {
            snprintf(nm, sizeof nm, "model.layers.%d.%s", l, per[k].suf);
            switch (per[k].kind) {
            case 0: ADD(nm, 1, g->dim, 0, true); break;
            case 1: ADD(nm, 2, q, g->dim, false); break;
            case 2: ADD(nm, 2, kv, g->dim, false); break;
            case 3: ADD(nm, 2, g->dim, q, false); break;
            case 4: ADD(nm, 2, g->hidden_dim, g->dim, false); break;
            default: ADD(nm, 2, g->dim, g->hidden_dim, false); break;
            }
        }
    }
    ADD("model.norm.weight", 1, g->dim, 0, true);
    if (!g->tied_embeddings) ADD("lm_head.weight", 2, g->vocab_size, g->dim, false);
#undef ADD
    return n;
}

static lq_status write_weights(const lq_config *g, const char *path, lq_dtype dt, uint64_t seed) {
    int cap = 9 * g->n_layers + 3;
    synth_tensor *ts = calloc((size_t)cap, sizeof *ts);
    if (!ts) return lq_fail(LQ_ERR_NOMEM, "%s: out of memory", path);
    int n = build_list(g, ts);
    lq_st_writer *w;
    lq_status st = lq_st_writer_create(path, &w);
    if (st != LQ_OK) {
        free(ts);
        return st;
    }
    st = lq_st_writer_metadata(w, "format", "pt");
    for (int i = 0; st == LQ_OK && i < n; i++) st = lq_st_writer_declare(w, ts[i].name, dt, ts[i].ndim, ts[i].shape);
    rng r;
    uint64_t sm = seed;
    for (int k = 0; k < 4; k++) r.s[k] = splitmix64(&sm);
    enum { CHUNK = 1 << 20 };
    float *buf = malloc(CHUNK * sizeof *buf);
    void *conv = malloc(CHUNK * sizeof(float));
    if (!buf || !conv) st = lq_fail(LQ_ERR_NOMEM, "%s: out of memory", path);
    for (int i = 0; st == LQ_OK && i < n; i++) {
        int64_t total = ts[i].ndim == 2 ? ts[i].shape[0] * ts[i].shape[1] : ts[i].shape[0];
        for (int64_t done = 0; st == LQ_OK && done < total; done += CHUNK) {
            int64_t k = total - done < CHUNK ? total - done : CHUNK;
            if (ts[i].is_norm) {
                for (int64_t j = 0; j < k; j++) buf[j] = 1.0f;
            } else {
                fill_normal(&r, buf, k, 0.02f);
            }
            tool_convert_f32(buf, k, dt, conv);
            st = lq_st_writer_write(w, conv, (size_t)k * lq_dtype_size(dt));
        }
    }
    free(buf);
    free(conv);
    free(ts);
    if (st != LQ_OK) {
        lq_st_writer_abort(w);
        return st;
    }
    return lq_st_writer_commit(w);
}

int main(int argc, char **argv) {
    tool_init(TOOL, usage);
    const char *shape = NULL, *out_dir = NULL;
    lq_dtype dt = LQ_DTYPE_F32;
    uint64_t seed = 1;
    bool force = false;
    tool_args a = tool_args_begin(argc, argv);
    while (tool_args_next(&a)) {
        if (tool_args_help(&a)) {
            usage(stdout);
            return 0;
        } else if (tool_args_flag(&a, "--force")) {
            force = true;
        } else if (tool_args_value(&a, "--shape")) {
            shape = a.value;
        } else if (tool_args_value(&a, "--out")) {
            out_dir = a.value;
        } else if (tool_args_value(&a, "--dtype")) {
            if (!tool_parse_dtype(a.value, &dt)) return tool_bad_args("--dtype must be f32, f16 or bf16, not %s", a.value);
        } else if (tool_args_value(&a, "--seed")) {
            if (!tool_parse_u64(a.value, &seed)) return tool_bad_args("--seed must be a non-negative integer, not %s", a.value);
        } else {
            return tool_args_unknown(&a);
        }
    }
    if (!shape || !out_dir) return tool_bad_args("--shape and --out are required");
    const synth_shape *sh = NULL;
    for (size_t i = 0; i < sizeof g_shapes / sizeof g_shapes[0]; i++)
        if (strcmp(shape, g_shapes[i].name) == 0) sh = &g_shapes[i];
    if (!sh) return tool_bad_args("unknown --shape %s", shape);

    tool_outdir od;
    char path[PATH_MAX + 64];
    lq_status s = tool_outdir_begin(&od, out_dir, force);
    if (s != LQ_OK) return tool_fail_at("cannot create output", out_dir, s);
    const char *what = "cannot write config";
    s = tool_outdir_write_config(&od, &sh->cfg, dt);
    if (s == LQ_OK) {
        what = "cannot write weights";
        s = tool_outdir_file(&od, "model.safetensors", path, sizeof path);
        if (s == LQ_OK) s = write_weights(&sh->cfg, path, dt, seed);
    }
    if (s == LQ_OK) {
        what = "cannot finish output";
        s = tool_outdir_commit(&od);
    }
    if (s != LQ_OK) {
        tool_outdir_abort(&od);
        return tool_fail_at(what, out_dir, s);
    }
    return 0;
}
