/* quant-info - describe a checkpoint: architecture, config, every tensor, size, bits per weight.
 *
 *   quant-info PATH [--json]
 */
#include "tool_cli.h"

#include <jansson.h>
#include <stdlib.h>

#define TOOL "quant-info"

static void usage(FILE *f) {
    fprintf(f,
            "usage: " TOOL " PATH [--json]\n"
            "\n"
            "Print a checkpoint's architecture and config, then every tensor (name, shape, dtype,\n"
            "bytes), the parameter count, the weight-file size and the bits per weight\n"
            "(file bytes * 8 / parameters).\n"
            "\n"
            "  PATH     Hugging Face directory (config.json + *.safetensors), GGUF file or llama2.c .bin\n"
            "  --json   one JSON object on stdout instead of text\n"
            "  --help   this text\n"
            "\n"
            "Exit codes: 0 ok, 2 bad arguments, 3 bad input file, 4 I/O, 1 other.\n");
}

static void shape_str(const lq_tensor *t, char *buf, size_t cap) {
    size_t k = 0;
    k += (size_t)snprintf(buf + k, cap - k, "[");
    for (int i = 0; i < t->ndim && k < cap; i++)
        k += (size_t)snprintf(buf + k, cap - k, "%s%lld", i ? ", " : "", (long long)t->shape[i]);
    if (k < cap) snprintf(buf + k, cap - k, "]");
}

static const char *format_name(const lq_checkpoint *c) {
    switch (lq_checkpoint_kind(c)) {
    case LQ_CKPT_HF_DIR: return "hf-safetensors";
    case LQ_CKPT_GGUF: return "gguf";
    default: return "llama2c";
    }
}

/* A tensor stored once under two names (a tied embedding's safetensors alias) counts once. */
static int64_t param_count(const lq_checkpoint *c) {
    int64_t n = 0;
    for (int64_t i = 0; i < lq_checkpoint_count(c); i++) {
        const lq_tensor *t = lq_checkpoint_get(c, i);
        bool seen = false;
        for (int64_t j = 0; j < i && !seen; j++) seen = lq_checkpoint_get(c, j)->data == t->data && t->nbytes > 0;
        if (!seen) n += lq_tensor_numel(t);
    }
    return n;
}

/* llama.cpp's RoPE frequency factors (a GGUF's rope_freqs.weight) as the llama3 rope_scaling
 * quant-convert would write for them. */
static void print_rope_freqs(const lq_checkpoint *c) {
    lq_config r = *lq_checkpoint_config(c);
    float *f = malloc((size_t)(r.head_dim / 2 + 1) * sizeof *f);
    bool present = false;
    if (f && lq_checkpoint_rope_freqs(c, f, &present) == LQ_OK && present) {
        if (lq_rope_llama3_from_factors(f, &r, lq_checkpoint_path(c)) == LQ_OK && r.rope_type == LQ_ROPE_LLAMA3)
            printf("rope_freqs (llama.cpp's RoPE factors) = llama3: factor %g, low_freq_factor %g, high_freq_factor %g, "
                   "original_max_pos %d\n", (double)r.rope_scale_factor, (double)r.rope_low_freq_factor,
                   (double)r.rope_high_freq_factor, r.rope_orig_max_pos);
        else
            printf("rope_freqs (llama.cpp's RoPE factors): not a llama3 rope_scaling\n");
    }
    free(f);
}

static void print_text(const lq_checkpoint *c) {
    const lq_config *g = lq_checkpoint_config(c);
    printf("path: %s\n", lq_checkpoint_path(c));
    printf("format: %s\n", format_name(c));
    printf("architecture: %s\n", g->arch);
    printf("dim %d, hidden_dim %d, layers %d, heads %d, kv_heads %d, head_dim %d, vocab %d, max_seq_len %d\n",
           g->dim, g->hidden_dim, g->n_layers, g->n_heads, g->n_kv_heads, g->head_dim, g->vocab_size,
           g->max_seq_len);
    printf("rope_theta %g, norm_eps %g, tied_embeddings %s, rope_interleaved %s, bos %d, eos %d\n",
           (double)g->rope_theta, (double)g->norm_eps, g->tied_embeddings ? "true" : "false",
           g->rope_interleaved ? "true" : "false", g->bos_id, g->eos_id);
    if (g->rope_type == LQ_ROPE_LLAMA3)
        printf("rope_scaling llama3: factor %g, low_freq_factor %g, high_freq_factor %g, original_max_pos %d\n",
               (double)g->rope_scale_factor, (double)g->rope_low_freq_factor, (double)g->rope_high_freq_factor,
               g->rope_orig_max_pos);
    else if (g->rope_type != LQ_ROPE_DEFAULT)
        printf("rope_scaling %s: factor %g\n", lq_rope_type_name(g->rope_type), (double)g->rope_scale_factor);
    if (g->sliding_window > 0) printf("sliding_window %d\n", g->sliding_window);
    print_rope_freqs(c);
    printf("tensors: %lld\n", (long long)lq_checkpoint_count(c));
    char shp[128];
    for (int64_t i = 0; i < lq_checkpoint_count(c); i++) {
        const lq_tensor *t = lq_checkpoint_get(c, i);
        shape_str(t, shp, sizeof shp);
        printf("  %-52s %-16s %-8s %12zu\n", t->name, shp, lq_tensor_type_name(t), t->nbytes);
    }
    int64_t params = param_count(c);
    uint64_t bytes = lq_checkpoint_file_bytes(c);
    printf("parameters: %lld\n", (long long)params);
    printf("file bytes: %llu\n", (unsigned long long)bytes);
    printf("bits per weight: %.3f\n", params > 0 ? (double)bytes * 8.0 / (double)params : 0.0);
}

static int print_json(const lq_checkpoint *c) {
    const lq_config *g = lq_checkpoint_config(c);
    char *cfg_text;
    lq_status s = lq_config_to_json(g, &cfg_text);
    if (s != LQ_OK) return tool_fail_at("cannot render config", lq_checkpoint_path(c), s);
    json_t *cfg = json_loads(cfg_text, 0, NULL);
    free(cfg_text);
    json_t *tensors = json_array();
    for (int64_t i = 0; i < lq_checkpoint_count(c); i++) {
        const lq_tensor *t = lq_checkpoint_get(c, i);
        json_t *shape = json_array();
        for (int d = 0; d < t->ndim; d++) json_array_append_new(shape, json_integer(t->shape[d]));
        json_array_append_new(tensors, json_pack("{s:s, s:o, s:s, s:I}", "name", t->name, "shape", shape,
                                                 "dtype", lq_tensor_type_name(t), "bytes", (json_int_t)t->nbytes));
    }
    int64_t params = param_count(c);
    uint64_t bytes = lq_checkpoint_file_bytes(c);
    json_t *root = json_pack("{s:s, s:s, s:s, s:o, s:o, s:I, s:I, s:f}", "path", lq_checkpoint_path(c), "format",
                             format_name(c),
                             "architecture", g->arch, "config", cfg ? cfg : json_null(), "tensors", tensors,
                             "parameters", (json_int_t)params, "file_bytes", (json_int_t)bytes,
                             "bits_per_weight", params > 0 ? (double)bytes * 8.0 / (double)params : 0.0);
    if (!root) return tool_fail_at("cannot render JSON", lq_checkpoint_path(c), lq_fail(LQ_ERR_NOMEM, "out of memory"));
    json_dumpf(root, stdout, JSON_INDENT(2) | JSON_PRESERVE_ORDER);
    printf("\n");
    json_decref(root);
    return 0;
}

int main(int argc, char **argv) {
    tool_init(TOOL, usage);
    const char *path = NULL;
    bool as_json = false;
    tool_args a = tool_args_begin(argc, argv);
    while (tool_args_next(&a)) {
        if (tool_args_help(&a)) {
            usage(stdout);
            return 0;
        } else if (tool_args_flag(&a, "--json")) {
            as_json = true;
        } else if (!tool_args_positional(&a)) {
            return tool_args_unknown(&a);
        } else if (!path) {
            path = a.arg;
        } else {
            return tool_bad_args("more than one PATH (%s)", a.arg);
        }
    }
    if (!path) return tool_bad_args("missing PATH");
    lq_checkpoint *c;
    lq_status s = lq_checkpoint_open(path, &c);
    if (s != LQ_OK) return tool_fail_at("cannot open checkpoint", path, s);
    int rc = 0;
    if (as_json) rc = print_json(c);
    else print_text(c);
    lq_checkpoint_close(c);
    return rc ? rc : tool_finish_stdout();
}
