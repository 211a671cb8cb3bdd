/* lq_ptq_automix.h - automatic mixed precision for compressed-tensors output (quant-ptq
 * --target-bpw B without --format gguf; issue 14 item 5).
 *
 * Each Linear the ptq options quantize gets one of several candidate schemes (W8A16, W4A16 with
 * group 128 or 32, W3A16 ...) so that the bits per weight over those Linears (payload + scales +
 * zero points + weight_shape, as lq_ct_weight_bytes counts them) is at or under B and the summed
 * error proxy is least. The proxy of a tensor and candidate is its relative output error
 *     E||(W - Q(W)) x||^2 / E||W x||^2
 * under the diagonal model of the inputs x: each input column weighted by its mean square
 * activation over the calibration text (llama.cpp's imatrix, lq_ptq_opts.calib), or uniformly
 * without calibration (the plain relative weight error), as GGUF's --target-bpw does
 * (gguf_automix.c). The plan becomes per-module rules (lq_ptq_rule with own_params) that
 * lq_ptq_quantize writes as one config group per chosen scheme.
 */
#ifndef LQ_PTQ_AUTOMIX_H
#define LQ_PTQ_AUTOMIX_H

#include <stddef.h>

#include "lq_ptq.h"

#ifdef __cplusplus
extern "C" {
#endif

/* One candidate scheme: a format with compressed-tensors storage and its parameters. */
typedef struct lq_ptq_candidate {
    lq_wfmt fmt;
    int32_t group_size;  /* grouped formats (W4A16, W3A16): > 0; others 0 (per channel) */
    bool asym;
} lq_ptq_candidate;

/* Each chosen candidate becomes one config group, and the reader takes at most LQ_CT_MAX_GROUPS. */
#define LQ_PTQ_AUTOMIX_MAX_CAND LQ_CT_MAX_GROUPS

/* The default candidates: W8A16, W4A16 g128, W4A16 g32, W3A16 g128 (symmetric: transformers 5
 * refuses asymmetric W4A16 checkpoints). Returns how many were written (<= max). */
int lq_ptq_automix_defaults(lq_ptq_candidate *out, int max);

/* "PRESET" or "PRESET:G" (a preset of lq_preset_find with group size G, e.g. "W4A16:32");
 * false (nothing written) for an unknown name, "none", a group on a per-channel format, or a
 * group size < 1. */
bool lq_ptq_candidate_parse(const char *s, lq_ptq_candidate *out);

/* "W4A16 g32", "W8A16", "W4A16_ASYM g128" into buf. */
void lq_ptq_candidate_name(const lq_ptq_candidate *c, char *buf, size_t n);

typedef struct lq_ptq_automix_tensor {
    char module[160];        /* "model.layers.0.mlp.down_proj" */
    int64_t rows, cols;
    int choice;              /* index into the candidates */
    uint64_t bytes;          /* its stored bytes as that candidate */
    double err;              /* its error proxy as that candidate */
} lq_ptq_automix_tensor;

typedef struct lq_ptq_automix_plan {
    int64_t n;
    lq_ptq_automix_tensor *tensors;  /* n entries, input order */
    lq_ptq_rule *rules;              /* n rules (exact module names, own_params), for overrides */
    int64_t params;                  /* weights of the planned Linears */
    uint64_t budget, bytes;          /* target_bpw * params / 8 (floor), and what the plan takes */
    uint64_t max_step;               /* largest single-tensor step: budget - bytes < max_step */
    double err_total;                /* summed proxy */
    bool calibrated;                 /* the proxy was weighted by opts->calib */
} lq_ptq_automix_plan;

void lq_ptq_automix_free(lq_ptq_automix_plan *p); /* NULL ok */

/* Plan the Linears of the HF checkpoint model_path that opts quantizes (opts->scheme != NONE
 * for them after ignore and overrides; a quantized head of a tied model is planned from the
 * embedding, as lq_ptq_quantize writes it) among cand[0..n_cand). Candidates a tensor's shape
 * does not allow (group size not dividing its columns) are skipped for it. Errors:
 * LQ_ERR_INVALID_ARG for no candidate, a candidate without compressed-tensors storage, or a
 * target below what the smallest candidates take (both sizes in the message); LQ_ERR_UNSUPPORTED
 * naming a tensor no candidate fits. */
lq_status lq_ptq_automix(const char *model_path, const lq_ptq_opts *opts, const lq_ptq_candidate *cand,
                         int n_cand, double target_bpw, lq_ptq_automix_plan *out);

/* Make `opts` write the plan: its overrides become its own rules followed by the plan's (last
 * match wins, so the plan, which only holds modules opts quantizes, decides their schemes). The
 * new rule array is returned in *owned; free it after lq_ptq_quantize. */
lq_status lq_ptq_automix_apply(const lq_ptq_automix_plan *plan, lq_ptq_opts *opts, lq_ptq_rule **owned);

#ifdef __cplusplus
}
#endif
#endif
