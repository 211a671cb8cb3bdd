/* ptq_rounding.c - names of the symmetric integer scale rules (lq_rounding, lq_format.h). The
 * same spellings serve quant-ptq --rounding and the "lq.rounding" entry of the output's
 * safetensors metadata. */
#include "libquant/lq_ptq.h"

#include <string.h>

static const char *const g_names[LQ_ROUND_COUNT] = {
    [LQ_ROUND_AMAX] = "amax",
    [LQ_ROUND_SIGNED_MAX] = "signed-max",
};

const char *lq_rounding_name(lq_rounding r) {
    return (r >= 0 && r < LQ_ROUND_COUNT) ? g_names[r] : "?";
}

bool lq_rounding_parse(const char *s, lq_rounding *out) {
    if (!s) return false;
    for (int i = 0; i < LQ_ROUND_COUNT; i++)
        if (strcmp(s, g_names[i]) == 0) {
            *out = (lq_rounding)i;
            return true;
        }
    return false;
}
