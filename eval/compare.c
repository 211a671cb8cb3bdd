/* compare.c - what a comparison table says about a checkpoint besides its quality: the format
 * its linear layers run in, its size on disk and its bits per weight.
 *
 * The format label comes from the weights the engine actually bound (lq_weight), not from the
 * config's quantization_config: the table then shows what was measured, and a checkpoint the
 * binder reads differently from what its config claims cannot be mislabelled.
 */
#include "lq_eval.h"

#include <stdio.h>
#include <string.h>

/* Whether every row of a per-channel scale vector holds the same value: a per-tensor scale is
 * bound as per-channel scales that are all equal. */
static bool scales_all_equal(const lq_weight *w) {
    const float *s = w->aux[0];
    if (!s || w->rows < 2) return false;
    for (int64_t r = 1; r < w->rows; r++)
        if (s[r] != s[0]) return false;
    return true;
}

/* The label of one weight, built from the traits row's name (no switch on formats): quantized
 * names upper-cased as llm-compressor spells its schemes ("w8a16" -> "W8A16", "fp8_e4m3" ->
 * "FP8"), plus what tells two rows of a table apart: the group size, zero points ("-asym"), a
 * single per-tensor scale ("-tensor"). Float formats keep their dtype name ("f32", "bf16"). */
static void weight_label(const lq_weight *w, char *buf, size_t cap) {
    const lq_wfmt_traits *t = lq_wfmt_get(w->fmt);
    const char *name = t && t->name ? t->name : "?";
    if (!w->aux[0]) { /* a float format: no side tensors */
        snprintf(buf, cap, "%s", name);
        return;
    }
    char up[32];
    size_t n = 0;
    for (; name[n] && name[n] != '_' && n + 1 < sizeof up; n++)
        up[n] = (char)(name[n] >= 'a' && name[n] <= 'z' ? name[n] - 'a' + 'A' : name[n]);
    up[n] = 0;
    char group[24] = "";
    if (w->group_size > 0 && w->group_size < w->cols)
        snprintf(group, sizeof group, "-g%d", (int)w->group_size);
    else if (w->group_size <= 0 && !w->aux[1] && scales_all_equal(w))
        snprintf(group, sizeof group, "-tensor");
    snprintf(buf, cap, "%s%s%s", up, group, w->aux[1] ? "-asym" : "");
}

/* "model.layers.<l>.<self_attn|mlp>.<x>_proj.<anything>": a tensor of a decoder linear layer
 * (its weight, or for a quantized one weight_packed / weight_scale / weight_zero_point /
 * weight_shape). */
/* A tensor of a decoder layer's Linear (weight, scales, zero points, bias): its module, the name
 * up to the last '.', is one the model binds as a Linear (any architecture: Mixtral's experts
 * are "...experts.3.w1", not "_proj"). */
static bool is_linear_tensor(const lq_model *m, const char *name) {
    if (strncmp(name, "model.layers.", 13) != 0) return false;
    const char *dot = strrchr(name, '.');
    char module[256];
    if (!dot || (size_t)(dot - name) >= sizeof module) return false;
    memcpy(module, name, (size_t)(dot - name));
    module[dot - name] = 0;
    return lq_model_find_linear(m, module) != NULL;
}

lq_status lq_eval_model_info(const lq_model *m, lq_model_info *out) {
    memset(out, 0, sizeof *out);
    /* distinct labels in order of first appearance: "W4A16-g32" or "W4A16-g32+W8A16" */
    char labels[4][48];
    int n_labels = 0;
    bool more = false;
    {
        for (int i = 0; i < lq_model_linear_count(m); i++) {
            const lq_weight *w = lq_model_linear(m, i, NULL, 0);
            char cur[48];
            weight_label(w, cur, sizeof cur);
            int k = 0;
            while (k < n_labels && strcmp(labels[k], cur) != 0) k++;
            if (k == n_labels) {
                if (n_labels < 4) snprintf(labels[n_labels++], sizeof labels[0], "%s", cur);
                else more = true;
            }
            out->linear_params += w->rows * w->cols;
        }
    }
    size_t used = 0;
    for (int k = 0; k < n_labels && used < sizeof out->format; k++)
        used += (size_t)snprintf(out->format + used, sizeof out->format - used, "%s%s",
                                 k ? "+" : "", labels[k]);
    if (more || used >= sizeof out->format)
        snprintf(out->format, sizeof out->format, "mixed");

    uint64_t all_bytes = 0;
    int64_t n = lq_checkpoint_count(lq_model_checkpoint(m));
    for (int64_t i = 0; i < n; i++) {
        const lq_tensor *t = lq_checkpoint_get(lq_model_checkpoint(m), i);
        all_bytes += t->nbytes;
        if (is_linear_tensor(m, t->name)) out->linear_bytes += t->nbytes;
    }
    if (out->linear_bytes == 0)
        return lq_fail(LQ_ERR_FORMAT, "%s: no decoder linear-layer tensor found",
                       lq_checkpoint_path(lq_model_checkpoint(m)));
    out->disk_bytes = lq_checkpoint_file_bytes(lq_model_checkpoint(m));
    out->n_params = lq_model_param_count(m);
    out->bpw_linear = out->linear_params ? 8.0 * (double)out->linear_bytes
                                               / (double)out->linear_params
                                         : 0.0;
    out->bpw_overall = out->n_params ? 8.0 * (double)all_bytes / (double)out->n_params : 0.0;
    return LQ_OK;
}
