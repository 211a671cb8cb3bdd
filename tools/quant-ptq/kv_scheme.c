/* kv_scheme.c - quant-ptq --kv-cache-scheme (ptq_kv.h). */
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "libquant/lq_calib.h"
#include "ptq_kv.h"

/* Calibration windows when --calib-samples is not given: the cache scales are maxima, which a
 * few thousand tokens already pin (llm-compressor's examples use more because they calibrate
 * weights in the same pass). */
#define KV_DEFAULT_SAMPLES 32

bool ptq_kv_arg(tool_args *a, ptq_kv *k, int *rc) {
    *rc = 0;
    if (tool_args_value(a, "--kv-cache-scheme")) {
        k->on = true;
        if (strcmp(a->value, "fp8") == 0) k->is_float = true;
        else if (strcmp(a->value, "int8") == 0) k->is_float = false;
        else *rc = tool_bad_args("--kv-cache-scheme must be fp8 or int8, not '%s'", a->value);
    } else if (tool_args_value(a, "--kv-cache-strategy")) {
        if (strcmp(a->value, "attn_head") == 0 || strcmp(a->value, "head") == 0) k->per_head = true;
        else if (strcmp(a->value, "tensor") == 0) k->per_head = false;
        else *rc = tool_bad_args("--kv-cache-strategy must be tensor or attn_head, not '%s'", a->value);
    } else {
        return false;
    }
    return true;
}

int ptq_kv_check(ptq_kv *k, tool_gptq *g, bool smoothing, const char *tok_path) {
    if (!k->on) return 0;
    if (g->n_calib == 0) return tool_bad_args("--kv-cache-scheme needs calibration text (--calib FILE)");
    k->src = g->o.calib;
    k->src.files = g->calib;
    k->src.n_files = g->n_calib;
    k->src.tokenizer = tok_path;
    if (k->src.n_samples == 0) k->src.n_samples = KV_DEFAULT_SAMPLES;
    if (!g->on && !smoothing) g->o.calib = (lq_calib_source){0}; /* the options were ours */
    return 0;
}

lq_status ptq_kv_run(ptq_kv *k, const char *model, lq_ptq_opts *o, bool show_progress) {
    if (!k->on) return LQ_OK;
    if (show_progress)
        fprintf(stderr, "kv cache: calibrating %s scales on %lld windows of %d tokens\n", k->is_float ? "fp8" : "int8",
                (long long)k->src.n_samples, k->src.sample_len > 0 ? k->src.sample_len : 512);
    LQ_TRY(lq_kv_calibrate(model, &k->src, o->pool, k->is_float, k->per_head, &k->kv));
    o->kv = &k->kv;
    return LQ_OK;
}

void ptq_kv_print(const ptq_kv *k, bool json) {
    if (!k->on || !k->kv.k_scale) return;
    const int n = k->kv.n_layers * (k->kv.per_head ? k->kv.n_kv_heads : 1);
    float kmin = INFINITY, kmax = 0, vmin = INFINITY, vmax = 0;
    for (int i = 0; i < n; i++) {
        kmin = fminf(kmin, k->kv.k_scale[i]), kmax = fmaxf(kmax, k->kv.k_scale[i]);
        vmin = fminf(vmin, k->kv.v_scale[i]), vmax = fmaxf(vmax, k->kv.v_scale[i]);
    }
    const char *type = k->is_float ? "float" : "int", *strat = k->kv.per_head ? "attn_head" : "tensor";
    if (json)
        printf(", \"kv_cache\": {\"type\": \"%s\", \"strategy\": \"%s\", \"scales\": %d, \"k_scale_min\": %.9g, "
               "\"k_scale_max\": %.9g, \"v_scale_min\": %.9g, \"v_scale_max\": %.9g}",
               type, strat, 2 * n, kmin, kmax, vmin, vmax);
    else
        printf("kv cache: 8-bit %s, static per %s (%d scales): k_scale %.4g .. %.4g, v_scale %.4g .. %.4g\n", type,
               k->kv.per_head ? "kv head" : "layer", 2 * n, kmin, kmax, vmin, vmax);
}

void ptq_kv_free(ptq_kv *k) { lq_ptq_kv_free(&k->kv); }
