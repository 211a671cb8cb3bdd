/* float_input.h - the check quant-ptq and quant-prune share: their input must be a float model.
 *
 * Both tools read float weights; a checkpoint that is already quantized has none under the
 * names they look for, so without this check quant-prune would "prune" nothing and exit 0. */
#ifndef LQ_FLOAT_INPUT_H
#define LQ_FLOAT_INPUT_H

#include "libquant/lq_checkpoint.h"

/* LQ_OK for a float checkpoint. LQ_ERR_UNSUPPORTED, naming the file (a config.json that has a
 * compressed-tensors quantization_config) or the first quantized tensor (a *_scale / *_packed
 * name, an int8 or FP8 dtype), with "<verb> the original float model" as the way out; then
 * LQ_ERR_FORMAT for a NaN/Inf weight anywhere (lq_checkpoint_check_finite), before any work. */
lq_status lq_check_float_input(const lq_checkpoint *c, const char *verb);

#endif
