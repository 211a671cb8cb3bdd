/* fuzz_gguf_model.c - libFuzzer target for a GGUF file opened as a model: lq_checkpoint_open's
 * GGUF path (io/checkpoint_gguf.c: general.architecture through the descriptors, the "<arch>.*"
 * metadata into lq_config, tensor renaming, types, vocabulary checks), then lq_model_load (the
 * descriptor's shapes against the views) and one forward step of token 0.
 *
 * Each input is written to a memfd and opened by its /proc/self/fd path (detected by the GGUF
 * magic, not a suffix). Whatever the bytes: open fails with one line, or every view lies inside
 * the mapping (first and last byte read, a block view's first element dequantized), the config
 * has positive sizes, and a model that loads runs one token.
 * Seeds: tests/fuzz/corpus/gguf_model (the tiny llama / qwen2 / gemma3 fixtures of
 * tests/fixtures/gguf, F32).
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "libquant/lq_checkpoint.h"
#include "libquant/lq_model.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static int g_fd = -1;
static char g_path[64];
static volatile float g_sink;

static void check_message(void) {
    const char *msg = lq_last_error();
    if (!*msg || strchr(msg, '\n')) {
        fprintf(stderr, "bad message: '%s'\n", msg);
        abort();
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    if (g_fd < 0) {
        g_fd = memfd_create("fuzz_gguf_model", 0);
        if (g_fd < 0) return 0;
        snprintf(g_path, sizeof g_path, "/proc/self/fd/%d", g_fd);
    }
    if (ftruncate(g_fd, 0) != 0 || pwrite(g_fd, data, size, 0) != (ssize_t)size) return 0;
    lq_checkpoint *c = NULL;
    if (lq_checkpoint_open(g_path, &c) != LQ_OK) {
        check_message();
        return 0;
    }
    const lq_config *cfg = lq_checkpoint_config(c);
    if (cfg->dim <= 0 || cfg->n_layers <= 0 || cfg->vocab_size <= 0 || cfg->n_heads <= 0 || cfg->head_dim <= 0)
        abort();
    for (int64_t i = 0; i < lq_checkpoint_count(c); i++) {
        const lq_tensor *t = lq_checkpoint_get(c, i);
        const unsigned char *p = t->data;
        if (t->nbytes) g_sink += p[0] + p[t->nbytes - 1];
        if (lq_tensor_numel(t) > 0 && (t->dtype == LQ_DTYPE_BLOCKS || t->dtype == LQ_DTYPE_F32))
            g_sink += lq_tensor_get_f32(t, 0);
        if (lq_checkpoint_find(c, t->name) == NULL) abort();
    }
    lq_checkpoint_close(c);
    lq_model *m = NULL;
    if (lq_model_load(g_path, &m) != LQ_OK) {
        check_message();
        return 0;
    }
    lq_session *s = NULL;
    if (lq_session_create(m, 2, NULL, &s) == LQ_OK) {
        int32_t tok = 0;
        float *logits = malloc((size_t)lq_model_config(m)->vocab_size * sizeof *logits);
        if (logits && lq_forward(s, &tok, 1, 0, logits, false) == LQ_OK) g_sink += logits[0];
        free(logits);
        lq_session_free(s);
    } else {
        check_message();
    }
    lq_model_free(m);
    return 0;
}
