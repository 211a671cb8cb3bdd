/* float_input.c - refuse an already-quantized checkpoint (float_input.h). */
#include "float_input.h"

#include <string.h>

#include "libquant/lq_ptq.h"

static bool has_suffix(const char *s, const char *suf) {
    size_t a = strlen(s), b = strlen(suf);
    return a >= b && memcmp(s + a - b, suf, b) == 0;
}

lq_status lq_check_float_input(const lq_checkpoint *c, const char *verb) {
    const char *cj = lq_checkpoint_config_json(c);
    lq_ct_config ct;
    /* Any quantization_config but a missing one: a sparse-only config was already consumed by
     * the loader (the weights it describes are decoded to float). */
    if (cj && lq_ct_config_parse(cj, lq_checkpoint_path(c), &ct) != LQ_ERR_NOT_FOUND)
        return lq_fail(LQ_ERR_UNSUPPORTED, "%s: already quantized (config.json has a "
                       "quantization_config); %s the original float model", lq_checkpoint_path(c), verb);
    for (int64_t i = 0; i < lq_checkpoint_count(c); i++) {
        const lq_tensor *t = lq_checkpoint_get(c, i);
        if (has_suffix(t->name, "_scale") || has_suffix(t->name, "_packed") ||
            t->dtype == LQ_DTYPE_I8 || t->dtype == LQ_DTYPE_F8_E4M3)
            return lq_fail(LQ_ERR_UNSUPPORTED, "%s: tensor '%s': already quantized; %s the "
                           "original float model", lq_checkpoint_path(c), t->name, verb);
    }
    return lq_checkpoint_check_finite(c, verb);
}
