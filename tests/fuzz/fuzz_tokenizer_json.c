/* fuzz_tokenizer_json.c - libFuzzer target: arbitrary bytes as a tokenizer.json. A load must
 * either fail with a status and a message or produce a tokenizer that encodes, decodes and
 * saves without memory errors. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "libquant/lq_tokenizer.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    /* tmpfs when there is one (every execution writes and removes this file), else /tmp */
    static const char *dir;
    if (!dir) dir = access("/dev/shm", W_OK) == 0 ? "/dev/shm" : "/tmp";
    char path[64];
    snprintf(path, sizeof path, "%s/lq_fuzz_tok_%d.json", dir, (int)getpid());
    FILE *f = fopen(path, "wb");
    if (!f) return 0;
    fwrite(data, 1, size, f);
    fclose(f);
    lq_tokenizer *t = NULL;
    if (lq_tokenizer_load_hf_json(path, &t) == LQ_OK) {
        static const char text[] = "Hello world! <s> 3.14 \xc3\xa4\xf0\x9f\xa6\x99\n\t  x";
        int32_t ids[256];
        int64_t n = 0;
        if (lq_tokenizer_encode(t, text, sizeof text - 1, true, true, ids, 256, &n) == LQ_OK) {
            char *s = NULL;
            if (lq_tokenizer_decode(t, ids, n, &s) == LQ_OK) free(s);
        }
        char out[80];
        snprintf(out, sizeof out, "%s.out", path);
        if (lq_tokenizer_save_hf_json(t, out) == LQ_OK) unlink(out);
        (void)lq_tokenizer_hash(t);
        lq_tokenizer_free(t);
    }
    unlink(path);
    return 0;
}
