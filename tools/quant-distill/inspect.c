/* inspect.c - quant-distill --inspect (distill_inspect.h): read a dataset through the library's
 * readers and print its summary and record I; --json gives every position of the record. */
#include "distill_inspect.h"
#include "libquant/lq_distill.h"
#include "lq_blocks.h"
#include "tool_cli.h"
#include "tool_model.h"

#include <jansson.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>

/* ---- inspect --------------------------------------------------------------------------------- */

static json_t *json_floats(const float *v, int64_t n) {
    json_t *a = json_array();
    for (int64_t i = 0; i < n; i++)
        json_array_append_new(a, isfinite(v[i]) ? json_real(v[i]) : json_null());
    return a;
}

static json_t *json_ints(const int32_t *v, int64_t n) {
    json_t *a = json_array();
    for (int64_t i = 0; i < n; i++) json_array_append_new(a, json_integer(v[i]));
    return a;
}

/* A --sequences directory: its settings and record I (a line of sequences.jsonl). */
static int inspect_seq(const char *path, int64_t record, bool json) {
    lq_seq_reader *r = NULL;
    lq_status s = lq_seq_open(path, &r);
    if (s != LQ_OK) return tool_fail(s);
    const char *line = NULL;
    size_t len = 0;
    int64_t n = lq_seq_count(r);
    int rc = 0;
    if (lq_seq_get(r, record, &line, &len) != LQ_OK) {
        rc = tool_error(2, "%s: record %lld out of range (%lld records)", path, (long long)record,
                        (long long)n);
    } else if (json) {
        json_t *j = json_object();
        json_object_set_new(j, "records", json_integer(n));
        json_object_set_new(j, "complete", json_boolean(lq_seq_is_complete(r)));
        json_object_set_new(j, "settings", json_loads(lq_seq_settings(r), 0, NULL));
        json_object_set_new(j, "record", json_loadb(line, len, 0, NULL));
        tool_print_json(j);
    } else {
        printf("dataset: %s\nsequences: %lld records (%s), settings %s\nrecord %lld: %.*s\n", path,
               (long long)n, lq_seq_is_complete(r) ? "complete" : "unfinished", lq_seq_settings(r),
               (long long)record, (int)len, line);
    }
    lq_seq_close(r);
    return rc;
}

int distill_inspect(const char *path, int64_t record, int positions, bool json) {
    if (lq_seq_is_dataset(path)) return inspect_seq(path, record, json);
    lq_distill_reader *r = NULL;
    lq_status s = lq_distill_open(path, &r);
    if (s != LQ_OK) return tool_fail(s);
    const lq_distill_meta *m = lq_distill_reader_meta(r);
    int64_t n_rec = lq_distill_count(r), n_tok = lq_distill_token_count(r);
    uint64_t bytes = lq_distill_file_bytes(r);
    if (record >= n_rec) {
        lq_distill_close(r);
        return tool_error(2, "%s: record %lld out of range (%lld records)", path,
                          (long long)record, (long long)n_rec);
    }
    lq_distill_record rec;
    s = lq_distill_get(r, record, &rec);
    if (s != LQ_OK) {
        lq_distill_close(r);
        return tool_fail(s);
    }
    int k = m->k;
    if (json) {
        json_t *j = json_object();
        char h[17];
        snprintf(h, sizeof h, "%016llx", (unsigned long long)m->teacher_id);
        json_object_set_new(j, "teacher_id", json_string(h));
        snprintf(h, sizeof h, "%016llx", (unsigned long long)m->tokenizer_hash);
        json_object_set_new(j, "tokenizer_hash", json_string(h));
        json_object_set_new(j, "teacher_name", json_string(m->teacher_name));
        json_object_set_new(j, "vocab", json_integer(m->vocab));
        json_object_set_new(j, "k", json_integer(k));
        json_object_set_new(j, "n_ctx", json_integer(m->n_ctx));
        json_object_set_new(j, "logp_dtype", json_string(lq_dtype_name(m->logp_dtype)));
        json_object_set_new(j, "feat_layers", json_ints(m->feat_layers, m->n_feat_layers));
        json_object_set_new(j, "records", json_integer(n_rec));
        json_object_set_new(j, "tokens", json_integer(n_tok));
        json_object_set_new(j, "bytes", json_integer((json_int_t)bytes));
        json_t *o = json_object();
        json_object_set_new(o, "index", json_integer(record));
        json_object_set_new(o, "source_offset", json_integer((json_int_t)rec.source_offset));
        json_object_set_new(o, "tokens", json_ints(rec.tokens, rec.n));
        json_t *pos = json_array();
        for (int t = 0; t < rec.n; t++) {
            json_t *p = json_object();
            json_object_set_new(p, "ids", json_ints(rec.topk_ids + (size_t)t * k, k));
            json_object_set_new(p, "logp", json_floats(rec.topk_logp + (size_t)t * k, k));
            json_object_set_new(p, "rest_logp", isfinite(rec.rest_logp[t])
                                                    ? json_real(rec.rest_logp[t]) : json_null());
            json_array_append_new(pos, p);
        }
        json_object_set_new(o, "positions", pos);
        if (rec.features) {
            json_t *fa = json_array();
            size_t per = (size_t)rec.n * (size_t)m->dim;
            for (int l = 0; l < m->n_feat_layers; l++) {
                json_t *row = json_array();
                for (size_t i = 0; i < per; i++)
                    json_array_append_new(row, json_real(lq_f16_to_f32(rec.features[l * per + i])));
                json_array_append_new(fa, row);
            }
            json_object_set_new(o, "features", fa);
        }
        json_object_set_new(j, "record", o);
        char *txt = json_dumps(j, JSON_COMPACT | JSON_PRESERVE_ORDER);
        json_decref(j);
        if (txt) printf("%s\n", txt);
        free(txt);
    } else {
        printf("dataset: %s\n", path);
        printf("teacher: %016llx (%s), tokenizer %016llx, vocab %d, k %d, ctx %d, mode %s, "
               "log-probs %s, %d feature layers\n", (unsigned long long)m->teacher_id,
               m->teacher_name, (unsigned long long)m->tokenizer_hash, m->vocab, k, m->n_ctx,
               m->mode == LQ_DISTILL_MODE_CHUNKS ? "chunks" : "per-unit",
               lq_dtype_name(m->logp_dtype), m->n_feat_layers);
        printf("records: %lld, tokens: %lld, bytes: %llu (%.1f bytes/token)\n",
               (long long)n_rec, (long long)n_tok, (unsigned long long)bytes,
               n_tok > 0 ? (double)bytes / (double)n_tok : 0.0);
        printf("record %lld: %d tokens from corpus byte %llu\n", (long long)record, rec.n,
               (unsigned long long)rec.source_offset);
        int show = positions < rec.n ? positions : rec.n;
        for (int t = 0; t < show; t++) {
            printf("  pos %d token %d -> next %d:", t, rec.tokens[t],
                   t + 1 < rec.n ? rec.tokens[t + 1] : -1);
            int kk = k < 5 ? k : 5;
            for (int i = 0; i < kk; i++)
                printf(" %d:%.4f", rec.topk_ids[(size_t)t * k + i],
                       rec.topk_logp[(size_t)t * k + i]);
            printf("%s rest %.4f\n", k > kk ? " ..." : "", rec.rest_logp[t]);
        }
    }
    lq_distill_close(r);
    return 0;
}
