/* ptq_fallback.c - names of the W4A16 group fallback actions (lq_ptq_group_fallback, lq_ptq.h).
 * The same spellings serve the quant-ptq --group-fallback option and the recipe key. */
#include "libquant/lq_ptq.h"

#include <string.h>

static const char *const g_names[LQ_PTQ_FALLBACK_COUNT] = {
    [LQ_PTQ_FALLBACK_REFUSE] = "refuse",
    [LQ_PTQ_FALLBACK_CHANNEL] = "channel",
    [LQ_PTQ_FALLBACK_IGNORE] = "ignore",
};

const char *lq_ptq_group_fallback_name(lq_ptq_group_fallback f) {
    return (f >= 0 && f < LQ_PTQ_FALLBACK_COUNT) ? g_names[f] : "?";
}

bool lq_ptq_group_fallback_parse(const char *s, lq_ptq_group_fallback *out) {
    if (!s) return false;
    for (int i = 0; i < LQ_PTQ_FALLBACK_COUNT; i++)
        if (strcmp(s, g_names[i]) == 0) {
            *out = (lq_ptq_group_fallback)i;
            return true;
        }
    return false;
}
