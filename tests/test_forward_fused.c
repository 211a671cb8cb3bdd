/* test_forward_fused.c - the layer program's fused projections (q/k/v and gate/up through the
 * table's matmul_multi) give the logits of the unfused program (one matmul per role) bit for bit,
 * on a real model: SmolLM2-135M-Instruct Q4_1 (shared; Q4_1 matrices on the integer path, wide
 * enough that every projection runs on the pool), 2 threads, a prefill then single-token decodes.
 *
 * The unfused program is the same session with matmul_multi removed from its table (what a
 * backend without the op runs). Its own correctness is anchored outside the project by
 * test_gguf_model's smollm2_q4_1_chat_answer_equals_llama_cpp (which now runs the fused path).
 */
#include <criterion/criterion.h>

#include <stdlib.h>
#include <string.h>

#include "../libquant/src/model/session_internal.h"
#include "lq_ops.h"
#include "lq_test_util.h"

enum { N_PROMPT = 7, N_DECODE = 3 };

/* Logits of every step (N_PROMPT rows of the prefill, then one per decode) into out. */
static void run(lq_session *s, int vocab, float *out) {
    int32_t ids[N_PROMPT + N_DECODE] = {1, 9690, 198, 2683, 314, 260, 3575, 282, 4649, 30};
    for (int i = 0; i < N_PROMPT + N_DECODE; i++) ids[i] %= vocab; /* stories260K has 512 */
    cr_assert_eq(lq_forward(s, ids, N_PROMPT, 0, out, true), LQ_OK, "%s", lq_last_error());
    for (int i = 0; i < N_DECODE; i++)
        cr_assert_eq(lq_forward(s, ids + N_PROMPT + i, 1, N_PROMPT + i, out + (size_t)(N_PROMPT + i) * vocab, false),
                     LQ_OK, "%s", lq_last_error());
}

static void check_model(const char *rel, lq_act_mode mode) {
    char path[1024];
    lq_test_shared(rel, path, sizeof path);
    lq_model *m;
    cr_assert_eq(lq_model_load(path, &m), LQ_OK, "%s", lq_last_error());
    lq_matmul_set_act_mode(mode);
    const int vocab = lq_model_config(m)->vocab_size;
    const size_t n = (size_t)(N_PROMPT + N_DECODE) * (size_t)vocab;
    float *fused = malloc(n * sizeof *fused), *plain = malloc(n * sizeof *plain);
    lq_pool *pool = lq_pool_create(2);
    lq_session *s;
    cr_assert_eq(lq_session_create(m, 32, pool, &s), LQ_OK, "%s", lq_last_error());
    cr_assert_not_null(s->ops->matmul_multi, "the CPU table fuses");
    run(s, vocab, fused);
    lq_backend_ops unfused = *s->ops;
    unfused.matmul_multi = NULL;
    const lq_backend_ops *own = s->ops;
    s->ops = &unfused;
    run(s, vocab, plain);
    s->ops = own;
    for (size_t i = 0; i < n; i++)
        cr_assert(memcmp(&fused[i], &plain[i], sizeof(float)) == 0,
                  "%s (act mode %d): step %zu logit %zu: fused %.9g, unfused %.9g", rel, (int)mode, i / vocab,
                  i % vocab, fused[i], plain[i]);
    lq_session_free(s);
    lq_pool_free(pool);
    free(fused);
    free(plain);
    lq_model_free(m);
    lq_matmul_set_act_mode(LQ_ACT_MODE_AUTO);
}

Test(forward_fused, smollm2_q4_1_equals_unfused) {
    check_model("models/SmolLM2-135M-Instruct-Q4_1/SmolLM2-135M-Instruct.Q4_1.gguf", LQ_ACT_MODE_AUTO);
}

Test(forward_fused, smollm2_q4_1_f32_activations_equals_unfused) {
    check_model("models/SmolLM2-135M-Instruct-Q4_1/SmolLM2-135M-Instruct.Q4_1.gguf", LQ_ACT_MODE_F32);
}

/* stories260K (dim 64): every projection is below the parallel threshold, the fused group runs
 * on the caller. */
Test(forward_fused, stories260k_equals_unfused) { check_model("models/stories260K/stories260K.bin", LQ_ACT_MODE_AUTO); }
