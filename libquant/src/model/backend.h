/* backend.h - the engine's device backends, as forward.c and model.c see them (internal).
 *
 * A backend model is a device copy of an lq_model's weights; a backend session its KV cache and
 * activations. forward.c hands a session over to the backend when it has one, so the CPU path
 * stays as it was. Built without CUDA, every entry point fails with LQ_ERR_UNSUPPORTED and a
 * one-line reason (backend_cuda.c). */
#ifndef LQ_BACKEND_H
#define LQ_BACKEND_H

#include <stdbool.h>
#include <stdint.h>

#include "libquant/lq_model.h"

typedef struct lq_backend_model lq_backend_model;
typedef struct lq_backend_session lq_backend_session;

lq_status lq_backend_model_create(const lq_model *m, lq_device d, lq_backend_model **out);
void lq_backend_model_free(lq_backend_model *bm); /* NULL is a no-op */
lq_device lq_backend_model_device(const lq_backend_model *bm);

lq_status lq_backend_session_create(const lq_model *m, int n_ctx, lq_backend_session **out);
void lq_backend_session_free(lq_backend_session *bs); /* NULL is a no-op */
/* lq_forward on the device; arguments already validated by forward.c. */
lq_status lq_backend_forward(lq_backend_session *bs, const int32_t *tokens, int n, int pos,
                             float *logits, bool all_logits, bool has_hook);
/* KV rows [0, n_pos) from src to dst; both must be device sessions of the same model. */
lq_status lq_backend_copy_cache(lq_backend_session *dst, const lq_backend_session *src, int n_pos);

#endif
