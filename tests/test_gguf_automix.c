/* test_gguf_automix.c - quant-ptq --format gguf --target-bpw (lq_gguf_export_opts.target_bpw):
 * the knapsack hits the target within one tensor's step, on TinyStories-656K.
 *
 * References: the size arithmetic of ggml's block types (bytes per 32 weights: Q4_0 18, Q8_0 34,
 * ...; ggml-common.h) and the target itself. Checked: the file's tensor bytes are at or under
 * target_bpw x params / 8 and miss it by less than the largest single-tensor step; a higher
 * target never gives a larger summed error; an impossible target is refused. */
#include <criterion/criterion.h>
#include <stdio.h>
#include <unistd.h>

#include "libquant/lq_gguf_quant.h"
#include "lq_test_util.h"

static lq_gguf_export_summary run(double bpw, lq_status want) {
    char dir[1024], out[256];
    lq_test_shared("models/TinyStories-656K", dir, sizeof dir);
    snprintf(out, sizeof out, "/tmp/lq_test_automix_%d.gguf", (int)getpid());
    lq_gguf_export_opts o = {.type = "Q4_K_M", .output_type = -1, .token_embd_type = -1, .target_bpw = bpw};
    lq_gguf_export_summary s;
    lq_status st = lq_gguf_export(dir, out, &o, &s);
    cr_assert_eq(st, want, "target %.2f: %s", bpw, lq_last_error());
    unlink(out);
    return s;
}

Test(gguf_automix, knapsack_hits_the_target_within_one_tensor, .timeout = 120) {
    double prev_err = 1e300;
    const double targets[] = {4.6, 5.5, 7.0, 8.6};
    for (size_t k = 0; k < sizeof targets / sizeof targets[0]; k++) {
        lq_gguf_export_summary s = run(targets[k], LQ_OK);
        const double want_bytes = targets[k] * (double)s.params / 8.0;
        uint64_t fixed = 0, chosen = 0;
        int quantized = 0;
        for (int64_t i = 0; i < s.n_tensors; i++) {
            if (s.tensors[i].automix_err < 0) fixed += s.tensors[i].bytes;
            else chosen += s.tensors[i].bytes, quantized++;
        }
        cr_assert_gt(quantized, 0);
        cr_assert_eq(chosen, s.automix_bytes);
        cr_assert_eq(fixed + chosen, s.bytes_out);
        cr_assert_leq((double)s.bytes_out, want_bytes, "target %.2f: %llu bytes over %.0f", targets[k],
                      (unsigned long long)s.bytes_out, want_bytes);
        cr_assert_lt(want_bytes - (double)s.bytes_out, (double)s.automix_max_step + 1.0,
                     "target %.2f: %llu bytes, %.0f wanted, largest step %llu", targets[k],
                     (unsigned long long)s.bytes_out, want_bytes, (unsigned long long)s.automix_max_step);
        cr_assert_leq(s.automix_err, prev_err, "a larger budget gave a larger error");
        prev_err = s.automix_err;
        lq_gguf_export_summary_free(&s);
    }
    lq_gguf_export_summary s = run(1.0, LQ_ERR_INVALID_ARG); /* below Q2_K everywhere */
    (void)s;
}
