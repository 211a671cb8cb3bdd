/* fuzz_llama2c.c - libFuzzer target for the two llama2.c readers: the checkpoint (.bin: a 28-byte
 * header of int32 sizes, then f32 arrays in a fixed order) through lq_checkpoint_open, and the
 * tokenizer.bin (max_token_length, then score / length / bytes per token) through
 * lq_tokenizer_load_llama2c at two vocabulary sizes (the checkpoint's, when it opened, and 512,
 * tok512.bin's).
 *
 * Each input is written to a memfd and opened by its /proc/self/fd path (no .safetensors or .json
 * suffix: the llama2.c path). Whatever the bytes: open fails with one line, or every tensor view
 * lies inside the mapping (its first and last byte are read) and the config has positive sizes;
 * a loaded tokenizer encodes and decodes a fixed text.
 * Seeds: tests/fuzz/corpus/llama2c (a shrunk checkpoint of stories260K's layout, shared and
 * unshared head, and stories260K's tok512.bin).
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "libquant/lq_checkpoint.h"
#include "libquant/lq_tokenizer.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static int g_fd = -1;
static char g_path[64];
static volatile unsigned g_sink;

static void check_message(void) {
    const char *msg = lq_last_error();
    if (!*msg || strchr(msg, '\n')) {
        fprintf(stderr, "bad message: '%s'\n", msg);
        abort();
    }
}

static void run_tokenizer(int vocab) {
    lq_tokenizer *t = NULL;
    if (lq_tokenizer_load_llama2c(g_path, vocab, &t) != LQ_OK) {
        check_message();
        return;
    }
    static const char text[] = "Once upon a time, \xc3\xa4 3.14\n\tx <s>";
    int32_t ids[256];
    int64_t n = 0;
    if (lq_tokenizer_encode(t, text, sizeof text - 1, true, false, ids, 256, &n) == LQ_OK) {
        char *s = NULL;
        if (lq_tokenizer_decode(t, ids, n, &s) == LQ_OK) free(s);
    }
    lq_tokenizer_free(t);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    if (g_fd < 0) {
        g_fd = memfd_create("fuzz_llama2c", 0);
        if (g_fd < 0) return 0;
        snprintf(g_path, sizeof g_path, "/proc/self/fd/%d", g_fd);
    }
    if (ftruncate(g_fd, 0) != 0 || pwrite(g_fd, data, size, 0) != (ssize_t)size) return 0;
    lq_checkpoint *c = NULL;
    int vocab = 0;
    if (lq_checkpoint_open(g_path, &c) == LQ_OK) {
        const lq_config *cfg = lq_checkpoint_config(c);
        if (cfg->dim <= 0 || cfg->n_layers <= 0 || cfg->vocab_size <= 0 || cfg->n_heads <= 0) abort();
        vocab = cfg->vocab_size;
        for (int64_t i = 0; i < lq_checkpoint_count(c); i++) {
            const lq_tensor *t = lq_checkpoint_get(c, i);
            const unsigned char *p = t->data;
            if (t->nbytes) g_sink += p[0] + p[t->nbytes - 1];
            if (lq_checkpoint_find(c, t->name) == NULL) abort();
        }
        lq_checkpoint_close(c);
    } else {
        check_message();
    }
    if (vocab > 0 && vocab <= 4096) run_tokenizer(vocab);
    run_tokenizer(512);
    return 0;
}
