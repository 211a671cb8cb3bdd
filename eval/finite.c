/* finite.c - refuse a model whose float weights hold NaN or Inf (lq_eval.h).
 *
 * quant-ptq and quant-prune refuse such weights, naming the tensor; quant-eval and quant-run
 * used to run them and print "PPL = nan" with exit 0. One scan of the float tensors at load
 * (memory bandwidth: ~0.1 s per GB) gives the same refusal. Quantized tensors are left to the
 * weight binders, which already refuse non-finite scales. */
#include "lq_eval.h"

#include <math.h>
#include <string.h>

/* Index of the first non-finite element of t, or -1. */
static int64_t first_non_finite(const lq_tensor *t) {
    const unsigned char *p = t->data;
    switch (t->dtype) {
    case LQ_DTYPE_F32:
        for (size_t i = 0; i + 4 <= t->nbytes; i += 4) {
            float v;
            memcpy(&v, p + i, 4);
            if (!isfinite(v)) return (int64_t)(i / 4);
        }
        return -1;
    case LQ_DTYPE_F64:
        for (size_t i = 0; i + 8 <= t->nbytes; i += 8) {
            double v;
            memcpy(&v, p + i, 8);
            if (!isfinite(v)) return (int64_t)(i / 8);
        }
        return -1;
    case LQ_DTYPE_F16: /* exponent 0x1f: Inf or NaN */
    case LQ_DTYPE_BF16: /* exponent 0xff */
        for (size_t i = 0; i + 2 <= t->nbytes; i += 2) {
            unsigned h = (unsigned)p[i] | (unsigned)p[i + 1] << 8;
            unsigned mask = t->dtype == LQ_DTYPE_F16 ? 0x7c00u : 0x7f80u;
            if ((h & mask) == mask) return (int64_t)(i / 2);
        }
        return -1;
    case LQ_DTYPE_F8_E4M3: /* e4m3fn has no Inf; S.1111.111 is NaN */
        for (size_t i = 0; i < t->nbytes; i++)
            if ((p[i] & 0x7f) == 0x7f) return (int64_t)i;
        return -1;
    default:
        return -1;
    }
}

lq_status lq_eval_check_finite(const lq_model *m) {
    const lq_checkpoint *c = lq_model_checkpoint(m);
    for (int64_t i = 0; c && i < lq_checkpoint_count(c); i++) {
        const lq_tensor *t = lq_checkpoint_get(c, i);
        int64_t at = first_non_finite(t);
        if (at >= 0)
            return lq_fail(LQ_ERR_FORMAT, "%s: tensor '%s': non-finite weight at element %lld; refusing to "
                           "run a model whose outputs would be NaN", lq_checkpoint_path(c), t->name, (long long)at);
    }
    return LQ_OK;
}
