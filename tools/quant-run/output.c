/* output.c - quant-run's streamed text and token log (run_output.h). */
#include "run_output.h"

#include "tool_sample.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void tool_out_write(tool_out_state *o, const char *bytes, size_t len) {
    if (len == 0) return;
    fwrite(bytes, 1, len, stdout);
    o->bytes += len;
    o->last = bytes[len - 1];
}

bool tool_log_push(tool_tok_log *l, int32_t id, double lp, double lp_proc, const char *piece,
                   size_t plen) {
    if (l->n + 1 >= l->cap) {
        int cap = l->cap ? 2 * l->cap : 256;
        int32_t *ids = realloc(l->ids, (size_t)cap * sizeof *ids);
        if (ids) l->ids = ids;
        double *lp1 = realloc(l->lp, (size_t)cap * sizeof *lp1);
        if (lp1) l->lp = lp1;
        double *lp2 = realloc(l->lp_proc, (size_t)cap * sizeof *lp2);
        if (lp2) l->lp_proc = lp2;
        size_t *off = realloc(l->off, (size_t)(cap + 1) * sizeof *off);
        if (off) l->off = off;
        if (!ids || !lp1 || !lp2 || !off) return false;
        if (l->cap == 0) l->off[0] = 0;
        l->cap = cap;
    }
    if (l->len + plen + 1 > l->cap_text) {
        size_t cap = (l->len + plen + 1) * 2;
        char *t = realloc(l->text, cap);
        if (!t) return false;
        l->text = t;
        l->cap_text = cap;
    }
    memcpy(l->text + l->len, piece, plen);
    l->len += plen;
    l->ids[l->n] = id;
    l->lp[l->n] = lp;
    l->lp_proc[l->n] = lp_proc;
    l->off[++l->n] = l->len;
    return true;
}

void tool_log_free(tool_tok_log *l) {
    free(l->ids);
    free(l->lp);
    free(l->lp_proc);
    free(l->off);
    free(l->text);
    memset(l, 0, sizeof *l);
}

/* [{"id", "text", ("bytes" when text is lossy), "logprob", ("logprob_processed")}] */
json_t *tool_log_json(const tool_tok_log *l, bool processed) {
    json_t *arr = json_array();
    for (int i = 0; i < l->n; i++) {
        json_t *t = json_object();
        const char *p = l->text + l->off[i];
        size_t n = l->off[i + 1] - l->off[i];
        bool lossy = false;
        json_object_set_new(t, "id", json_integer(l->ids[i]));
        json_object_set_new(t, "text", tool_json_text(p, n, &lossy));
        if (lossy) {
            json_t *b = json_array();
            for (size_t k = 0; k < n; k++) json_array_append_new(b, json_integer((unsigned char)p[k]));
            json_object_set_new(t, "bytes", b);
        }
        json_object_set_new(t, "logprob", json_real(l->lp[i]));
        if (processed) json_object_set_new(t, "logprob_processed", json_real(l->lp_proc[i]));
        json_array_append_new(arr, t);
    }
    return arr;
}

double tool_log_sum(const tool_tok_log *l) {
    double s = 0;
    for (int i = 0; i < l->n; i++) s += l->lp[i];
    return s;
}

const char *tool_stop_reason(bool hit_stop, int64_t n, int max_tokens) {
    return hit_stop ? "eos" : n >= max_tokens ? "max_tokens" : "context";
}

