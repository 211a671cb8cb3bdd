/* prune_internal.h - pruning plumbing shared inside libquant (not public).
 *
 * lq_sparse_expand is called by lq_checkpoint_open (checkpoint.c) on every HF checkpoint: a
 * compressed-tensors sparse checkpoint (sparse-bitmask / sparse-24-bitmask) is presented as the
 * dense model it encodes, so binders, quant-ptq and every tool read it unchanged.
 */
#ifndef LQ_PRUNE_INTERNAL_H
#define LQ_PRUNE_INTERNAL_H

#include "checkpoint_internal.h"

/* Dense buffers a checkpoint owns for its decompressed tensors. */
typedef struct lq_sparse_store lq_sparse_store;

/* Replace every "<m>.bitmask" + "<m>.compressed" + "<m>.shape" (+ "<m>.row_offsets") group by
 * a dense "<m>.weight" view of a buffer owned by c->sparse, and drop "sparsity_config" from
 * c->config_json (the checkpoint now presents dense tensors; a quantization_config left with
 * nothing else goes too). No-op without a sparsity_config. */
lq_status lq_sparse_expand(lq_checkpoint *c);
void lq_sparse_store_free(lq_sparse_store *s);

#endif
