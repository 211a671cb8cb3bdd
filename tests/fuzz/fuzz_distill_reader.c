/* fuzz_distill_reader.c - libFuzzer target for the distillation shard reader.
 *
 * The input is one shard in memory (lq_distill_open_mem: header, index or block scan). Whatever
 * the bytes, open must fail cleanly or give records whose arrays lie inside what the reader
 * allocated and whose ids are inside the vocabulary: every element of the first records is read
 * (ASan catches an escape; the id checks catch what ASan cannot).
 * Build: CC=clang cmake -DQUANT_FUZZ=ON; run: ./fuzz_distill_reader -max_total_time=60 corpus
 */
#include <stdint.h>
#include <stdlib.h>

#include "libquant/lq_distill.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    lq_distill_reader *r = NULL;
    if (lq_distill_open_mem(data, size, "fuzz.lqd", &r) != LQ_OK) return 0;
    const lq_distill_meta *m = lq_distill_reader_meta(r);
    volatile float sink = 0;
    int64_t n = lq_distill_count(r);
    for (int64_t i = 0; i < n && i < 16; i++) {
        lq_distill_record rec;
        if (lq_distill_get(r, i, &rec) != LQ_OK) continue;
        for (int t = 0; t < rec.n; t++) {
            if (rec.tokens[t] < 0 || rec.tokens[t] >= m->vocab) abort();
            sink += rec.rest_logp[t];
        }
        for (int64_t j = 0; j < (int64_t)rec.n * m->k; j++) {
            if (rec.topk_ids[j] < 0 || rec.topk_ids[j] >= m->vocab) abort();
            sink += rec.topk_logp[j];
        }
        int64_t nf = (int64_t)m->n_feat_layers * rec.n * m->dim;
        for (int64_t j = 0; j < nf; j++) sink += (float)rec.features[j];
    }
    (void)sink;
    lq_distill_close(r);
    return 0;
}
