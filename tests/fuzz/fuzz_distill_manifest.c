/* fuzz_distill_manifest.c - libFuzzer target for the three readers of a distillation directory's
 * manifest.json: lq_distill_open (a dataset read through its manifest), lq_distill_writer_open
 * (a resume: the manifest of an unfinished run) and lq_seq_writer_open (a --sequences resume).
 *
 * Input: manifest.json bytes, the separator line "\n--LQ-FUZZ-SHARD--\n", then the payload the
 * manifest points at; the payload is written as both shard-00000.lqd and sequences.jsonl in a
 * scratch directory (the fuzzer may rename the file in the manifest: a missing file must be
 * refused like any other damage). Whatever the bytes, each reader fails with one line or gives
 * records whose ids are inside the vocabulary (the reader) and a record count the writer can
 * continue from. The writers truncate the payload to the committed bytes, as a resume does,
 * inside the scratch directory only, which is on /dev/shm: the writers fsync, and on a disk that
 * costs a hundred executions a second.
 * Seeds: scripts/fuzz_seeds.py (a sealed and an unsealed quant-distill run, a sequences run,
 * and defect 3's edited cursor); committed ones in tests/fuzz/corpus/distill_manifest.
 */
#include <jansson.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "libquant/lq_distill.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static const char SEP[] = "\n--LQ-FUZZ-SHARD--\n";
static char g_dir[64];

static void put(const char *name, const void *p, size_t n) {
    char path[128];
    snprintf(path, sizeof path, "%s/%s", g_dir, name);
    FILE *f = fopen(path, "wb");
    if (!f) abort();
    if (n) fwrite(p, 1, n, f);
    fclose(f);
}

static void check_message(void) {
    const char *msg = lq_last_error();
    if (!*msg || strchr(msg, '\n')) {
        fprintf(stderr, "bad message: '%s'\n", msg);
        abort();
    }
}

static void read_records(lq_distill_reader *r) {
    const lq_distill_meta *m = lq_distill_reader_meta(r);
    volatile float sink = 0;
    int64_t n = lq_distill_count(r);
    for (int64_t i = 0; i < n && i < 8; i++) {
        lq_distill_record rec;
        if (lq_distill_get(r, i, &rec) != LQ_OK) {
            check_message();
            continue;
        }
        for (int t = 0; t < rec.n; t++) {
            if (rec.tokens[t] < 0 || rec.tokens[t] >= m->vocab) abort();
            sink += rec.rest_logp[t];
        }
        for (int64_t j = 0; j < (int64_t)rec.n * m->k; j++)
            if (rec.topk_ids[j] < 0 || rec.topk_ids[j] >= m->vocab) abort();
    }
    (void)sink;
}

/* The settings object of a sequences manifest, as the run that wrote it would pass it. */
static char *seq_settings(const char *manifest) {
    json_t *j = json_loads(manifest, 0, NULL);
    json_t *s = json_object_get(j, "settings");
    char *txt = json_is_object(s) ? json_dumps(s, JSON_COMPACT | JSON_PRESERVE_ORDER) : strdup("{}");
    json_decref(j);
    return txt;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    if (!g_dir[0]) {
        snprintf(g_dir, sizeof g_dir, "/dev/shm/lq_fuzz_manifest_%d", (int)getpid());
        if (mkdir(g_dir, 0700) != 0) { /* no /dev/shm: slower, same results */
            snprintf(g_dir, sizeof g_dir, "/tmp/lq_fuzz_manifest_%d", (int)getpid());
            mkdir(g_dir, 0700);
        }
    }
    const uint8_t *sep = memmem(data, size, SEP, sizeof SEP - 1);
    size_t mlen = sep ? (size_t)(sep - data) : size;
    const uint8_t *payload = sep ? sep + sizeof SEP - 1 : data + size;
    size_t plen = (size_t)(data + size - payload);
    char *manifest = strndup((const char *)data, mlen);
    if (!manifest) return 0;
    put("manifest.json", data, mlen);
    put("shard-00000.lqd", payload, plen);
    put("sequences.jsonl", payload, plen);

    /* 1. the reader */
    lq_distill_meta meta = {.vocab = 512, .k = 3, .dim = 64, .n_ctx = 64, .logp_dtype = LQ_DTYPE_F32};
    lq_distill_reader *r = NULL;
    if (lq_distill_open(g_dir, &r) == LQ_OK) {
        meta = *lq_distill_reader_meta(r);
        read_records(r);
        lq_distill_close(r);
    } else {
        check_message();
    }
    /* 2. a resume of the writer with the meta the manifest describes */
    lq_distill_writer *w = NULL;
    if (lq_distill_writer_open(g_dir, &meta, NULL, &w) == LQ_OK) {
        if (lq_distill_writer_records(w) < 0) abort();
        (void)strlen(lq_distill_writer_cursor(w));
        lq_distill_writer_free(w);
    } else {
        check_message();
    }
    /* 3. a --sequences resume */
    char *settings = seq_settings(manifest);
    lq_seq_writer *q = NULL;
    if (settings && lq_seq_writer_open(g_dir, settings, &q) == LQ_OK) {
        if (lq_seq_writer_records(q) < 0) abort();
        lq_seq_writer_free(q);
    } else if (settings) {
        check_message();
    }
    free(settings);
    free(manifest);
    return 0;
}
