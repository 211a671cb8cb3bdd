/* fuzz_config_json.c - libFuzzer target: arbitrary bytes as a Hugging Face config.json.
 *
 * The same text goes through both parsers that read config.json: lq_config_parse_json (the
 * architecture) and lq_ct_config_parse (the compressed-tensors quantization_config). Each must
 * either fail with one line naming the file or give values a loader can trust: a parsed config
 * has positive sizes and per-layer lists no longer than LQ_MAX_LAYERS, renders back to JSON
 * (lq_config_to_json) and that rendering parses again to the same sizes; a parsed
 * quantization_config has at most LQ_CT_MAX_GROUPS groups with NUL-terminated names.
 * Seeds: scripts/fuzz_seeds.py (TinyStories-656K's config.json, llm-compressor-style
 * quantization_config variants, per-layer sizes); committed ones in tests/fuzz/corpus/config_json.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "libquant/lq_checkpoint.h"
#include "libquant/lq_ptq.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define PATH "dir/config.json"

/* A refusal is one non-empty line that names the file. */
static void check_message(void) {
    const char *msg = lq_last_error();
    if (!*msg || strchr(msg, '\n') || !strstr(msg, PATH)) {
        fprintf(stderr, "bad message: '%s'\n", msg);
        abort();
    }
}

static void check_config(const lq_config *c) {
    if (c->dim <= 0 || c->n_layers <= 0 || c->n_heads <= 0 || c->n_kv_heads <= 0 || c->head_dim <= 0 ||
        c->vocab_size <= 0 || c->hidden_dim <= 0 || c->max_seq_len <= 0)
        abort();
    if (memchr(c->arch, 0, sizeof c->arch) == NULL) abort();
    for (int l = 0; l < c->n_layers && l < LQ_MAX_LAYERS; l++)
        if (lq_config_layer_hidden(c, l) <= 0 || lq_config_layer_heads(c, l) <= 0 ||
            lq_config_layer_kv_heads(c, l) <= 0)
            abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    char *text = malloc(size + 1);
    if (!text) return 0;
    memcpy(text, data, size);
    text[size] = 0;

    lq_config cfg;
    if (lq_config_parse_json(text, PATH, &cfg) == LQ_OK) {
        check_config(&cfg);
        char *out = NULL;
        if (lq_config_to_json(&cfg, &out) == LQ_OK) {
            lq_config again;
            /* what we write, we read back the same */
            if (lq_config_parse_json(out, PATH, &again) != LQ_OK || again.dim != cfg.dim ||
                again.n_layers != cfg.n_layers || again.vocab_size != cfg.vocab_size ||
                again.hidden_dim != cfg.hidden_dim || again.n_kv_heads != cfg.n_kv_heads) {
                fprintf(stderr, "round trip failed: %s\n", lq_last_error());
                abort();
            }
            free(out);
        }
    } else {
        check_message();
    }

    lq_ct_config ct;
    lq_status s = lq_ct_config_parse(text, PATH, &ct);
    if (s == LQ_OK) {
        if (ct.n_groups < 0 || ct.n_groups > LQ_CT_MAX_GROUPS || ct.n_ignore < 0) abort();
        for (int i = 0; i < ct.n_groups; i++)
            if (!memchr(ct.groups[i].name, 0, sizeof ct.groups[i].name) || ct.groups[i].n_targets < 0) abort();
        if (!memchr(ct.format, 0, sizeof ct.format) || !memchr(ct.status, 0, sizeof ct.status)) abort();
    } else if (s != LQ_ERR_NOT_FOUND) {
        check_message();
    }
    free(text);
    return 0;
}
