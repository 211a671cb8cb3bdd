/* tool_gguf.c - see tool_gguf.h. */
#include "tool_gguf.h"

#include "tool_cli.h"
#include "tool_outdir.h"
#include "tool_output.h"
#include "tool_progress.h"

#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

int tool_gguf_parse_rule(const char *arg, char *pat, size_t cap, lq_gguf_tensor_rule *out) {
    const char *eq = strrchr(arg, '=');
    if (!eq || eq == arg || !eq[1]) return tool_bad_args("--tensor-type wants PATTERN=TYPE, not '%s'", arg);
    if ((size_t)(eq - arg) >= cap) return tool_bad_args("--tensor-type pattern longer than %zu bytes", cap - 1);
    memcpy(pat, arg, (size_t)(eq - arg));
    pat[eq - arg] = 0;
    int t = lq_ggml_type_parse(eq + 1);
    if (t < 0) return tool_bad_args("--tensor-type %s: unknown ggml type '%s' (f32, f16, bf16, q8_0, q4_0, "
                                    "q4_1, q5_0, q5_1, q2_K .. q6_K, iq4_nl, iq4_xs)", pat, eq + 1);
    out->pattern = pat;
    out->type = t;
    return 0;
}

static void print_summary(const lq_gguf_export_summary *s, const char *out, const char *type, bool json) {
    uint64_t rss = tool_peak_rss_bytes();
    if (json) {
        printf("{\"out\": ");
        tool_print_json_string(out);
        printf(", \"type\": ");
        tool_print_json_string(type);
        printf(", \"file_type\": %d, \"tensors\": %lld, \"params\": %lld, \"bytes_in\": %llu, "
               "\"bytes_out\": %llu, \"bits_per_weight\": %.4f, \"seconds\": %.3f, \"peak_rss\": %llu, "
               "\"per_tensor\": [", s->ftype, (long long)s->n_tensors, (long long)s->params,
               (unsigned long long)s->bytes_in, (unsigned long long)s->bytes_out, s->bits_per_weight,
               s->seconds, (unsigned long long)rss);
        for (int64_t i = 0; i < s->n_tensors; i++) {
            const lq_gguf_export_tensor *t = &s->tensors[i];
            printf("%s{\"name\": ", i ? ", " : "");
            tool_print_json_string(t->name);
            printf(", \"type\": \"%s\", \"rows\": %lld, \"cols\": %lld, \"bytes\": %llu, \"fell_back\": %s",
                   lq_ggml_type_name(t->type), (long long)t->rows, (long long)t->cols,
                   (unsigned long long)t->bytes, t->fell_back ? "true" : "false");
            if (t->automix_err >= 0) printf(", \"automix_err\": %.6g", t->automix_err);
            printf("}");
        }
        printf("]");
        if (s->automix_budget)
            printf(", \"automix\": {\"budget\": %llu, \"bytes\": %llu, \"max_step\": %llu, \"err_total\": %.6g}",
                   (unsigned long long)s->automix_budget, (unsigned long long)s->automix_bytes,
                   (unsigned long long)s->automix_max_step, s->automix_err);
        printf("}\n");
        return;
    }
    if (s->automix_budget) {
        printf("plan (--target-bpw; error = imatrix-weighted relative output error of the tensor):\n");
        for (int64_t i = 0; i < s->n_tensors; i++)
            if (s->tensors[i].automix_err >= 0)
                printf("  %-32s %-7s %10.6f\n", s->tensors[i].name, lq_ggml_type_name(s->tensors[i].type),
                       s->tensors[i].automix_err);
        printf("  chosen tensors take %.3f of %.3f MiB budget (largest single step %.3f MiB), summed error %.4f\n",
               s->automix_bytes / 1048576.0, s->automix_budget / 1048576.0, s->automix_max_step / 1048576.0,
               s->automix_err);
    }
    printf("%s: GGUF %s (file type %d), %lld tensors, %lld parameters\n", out, type, s->ftype,
           (long long)s->n_tensors, (long long)s->params);
    printf("  size        %.2f MiB -> %.2f MiB (%.3f bits/weight)\n", s->bytes_in / 1048576.0,
           s->bytes_out / 1048576.0, s->bits_per_weight);
    printf("  types      ");
    for (int t = 0; t < 32; t++)
        if (s->n_by_type[t]) printf(" %s x%lld", lq_ggml_type_name(t), (long long)s->n_by_type[t]);
    printf("\n");
    int64_t fb = 0;
    for (int64_t i = 0; i < s->n_tensors; i++) fb += s->tensors[i].fell_back;
    if (fb) printf("  fallback    %lld tensors whose columns the block size does not divide (--json lists them)\n", (long long)fb);
    printf("  time        %.2f s, peak RSS %.1f MiB\n", s->seconds, rss / 1048576.0);
}

int tool_gguf_run(const char *model, const char *out, lq_gguf_export_opts *o, bool force, bool json) {
    struct stat sb;
    if (!force && stat(out, &sb) == 0)
        return tool_fail_at("refusing to overwrite", out, lq_fail(LQ_ERR_EXISTS, "%s exists (--force replaces it)", out));
    char a[PATH_MAX], b[PATH_MAX];
    const char *inputs[] = {model, o->tokenizer};
    for (int i = 0; i < 2; i++)
        if (inputs[i] && realpath(inputs[i], a) && realpath(out, b) && strcmp(a, b) == 0)
            return tool_fail_at("refusing to write over the input", out, lq_fail(LQ_ERR_INVALID_ARG, "%s is an input", out));
    tool_progress prog;
    tool_progress_begin(&prog, "writing", 1, !json);
    o->progress = tool_progress_cb;
    o->user = &prog;
    lq_gguf_export_summary sum;
    lq_status s = lq_gguf_export(model, out, o, &sum);
    tool_progress_end(&prog);
    if (s != LQ_OK) return tool_fail_at("cannot write GGUF", model, s);
    print_summary(&sum, out, o->type ? o->type : "F32", json);
    lq_gguf_export_summary_free(&sum);
    return tool_finish_stdout();
}
