/* ptq_names.c - names of quant-ptq's enumerated options: the symmetric integer scale rules
 * (lq_rounding, lq_format.h) and the W4A16 group fallback actions (lq_ptq_group_fallback,
 * lq_ptq.h). The same spellings serve the command-line options (--rounding, --group-fallback),
 * the recipe key and the "lq.rounding" entry of the output's safetensors metadata. */
#include "libquant/lq_ptq.h"

#include <string.h>

static const char *const g_rounding[LQ_ROUND_COUNT] = {
    [LQ_ROUND_AMAX] = "amax",
    [LQ_ROUND_SIGNED_MAX] = "signed-max",
};

static const char *const g_fallback[LQ_PTQ_FALLBACK_COUNT] = {
    [LQ_PTQ_FALLBACK_REFUSE] = "refuse",
    [LQ_PTQ_FALLBACK_CHANNEL] = "channel",
    [LQ_PTQ_FALLBACK_IGNORE] = "ignore",
};

/* index of s in names[0 .. n), or -1 (also for NULL) */
static int name_index(const char *const *names, int n, const char *s) {
    if (!s) return -1;
    for (int i = 0; i < n; i++)
        if (strcmp(s, names[i]) == 0) return i;
    return -1;
}

const char *lq_rounding_name(lq_rounding r) {
    return (r >= 0 && r < LQ_ROUND_COUNT) ? g_rounding[r] : "?";
}

bool lq_rounding_parse(const char *s, lq_rounding *out) {
    const int i = name_index(g_rounding, LQ_ROUND_COUNT, s);
    if (i >= 0) *out = (lq_rounding)i;
    return i >= 0;
}

const char *lq_ptq_group_fallback_name(lq_ptq_group_fallback f) {
    return (f >= 0 && f < LQ_PTQ_FALLBACK_COUNT) ? g_fallback[f] : "?";
}

bool lq_ptq_group_fallback_parse(const char *s, lq_ptq_group_fallback *out) {
    const int i = name_index(g_fallback, LQ_PTQ_FALLBACK_COUNT, s);
    if (i >= 0) *out = (lq_ptq_group_fallback)i;
    return i >= 0;
}
