/* libquant.h - the public API in one include. */
#ifndef LIBQUANT_H
#define LIBQUANT_H
#include "libquant/lq_status.h"
#include "libquant/lq_tensor.h"
#include "libquant/lq_file.h"
#include "libquant/lq_safetensors.h"
#include "libquant/lq_checkpoint.h"
#include "libquant/lq_tokenizer.h"
#include "libquant/lq_chat.h"
#include "libquant/lq_model.h"
#include "libquant/lq_sample.h"
#include "libquant/lq_beam.h"
#include "libquant/lq_spec.h"
#define LQ_VERSION_STRING "0.1.0"
#endif
