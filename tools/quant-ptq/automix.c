/* automix.c - quant-ptq --target-bpw for compressed-tensors output (see ptq_automix.h). */
#include "quant-ptq/ptq_automix.h"

#include "tool_cli.h"
#include "tool_output.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void ptq_automix_usage(FILE *f) {
    fprintf(f,
            "  --target-bpw B     mixed precision to a size: each quantized Linear gets one of the\n"
            "                     --scheme candidates (comma-separated, PRESET or PRESET:GROUP;\n"
            "                     default W8A16,W4A16:128,W4A16:32,W3A16:128) so that the bits per\n"
            "                     weight over them (payload + scales + zero points) is at most B,\n"
            "                     least summed relative output error: each input column weighted by\n"
            "                     its mean square activation over --calib TEXT (or an --imatrix),\n"
            "                     else the plain weight error. Written as one config group per chosen\n"
            "                     scheme; the plan is printed (--json: \"automix\"). A candidate\n"
            "                     whose group does not divide a layer's columns is skipped for it.\n"
            "                     --ignore / --override only say which layers are quantized (e.g.\n"
            "                     --override lm_head=W8A16 adds the head); the plan picks each one's\n"
            "                     scheme. Round to nearest only (no --method, --group-size, --sym/--asym)\n");
}

int ptq_automix_candidates(ptq_automix *m, const char *list) {
    if (!list) {
        m->n_cand = lq_ptq_automix_defaults(m->cand, LQ_PTQ_AUTOMIX_MAX_CAND);
        return 0;
    }
    char buf[512];
    if (strlen(list) >= sizeof buf) return tool_bad_args("--scheme: list too long");
    strcpy(buf, list);
    m->n_cand = 0;
    for (char *save = NULL, *tok = strtok_r(buf, ",", &save); tok; tok = strtok_r(NULL, ",", &save)) {
        if (m->n_cand == LQ_PTQ_AUTOMIX_MAX_CAND)
            return tool_bad_args("--scheme: at most %d candidates with --target-bpw", LQ_PTQ_AUTOMIX_MAX_CAND);
        if (!lq_ptq_candidate_parse(tok, &m->cand[m->n_cand]))
            return tool_bad_args("--scheme: unknown candidate '%s' (W8A16, W4A16[:G], W4A16_ASYM[:G], W3A16[:G], "
                                 "FP8, W8A8; G = group size)", tok);
        m->n_cand++;
    }
    if (m->n_cand == 0) return tool_bad_args("--scheme: no candidate in '%s'", list);
    return 0;
}

lq_status ptq_automix_run(ptq_automix *m, const char *model, lq_ptq_opts *o) {
    LQ_TRY(lq_ptq_automix(model, o, m->cand, m->n_cand, m->target, &m->plan));
    return lq_ptq_automix_apply(&m->plan, o, &m->rules);
}

static void print_json(const ptq_automix *m) {
    const lq_ptq_automix_plan *p = &m->plan;
    char name[64];
    printf(", \"automix\": {\"target_bpw\": %.4f, \"params\": %lld, \"budget\": %llu, \"bytes\": %llu, "
           "\"bits_per_weight\": %.4f, \"max_step\": %llu, \"err_total\": %.6g, \"proxy\": \"%s\", \"plan\": [",
           m->target, (long long)p->params, (unsigned long long)p->budget, (unsigned long long)p->bytes,
           8.0 * (double)p->bytes / (double)p->params, (unsigned long long)p->max_step, p->err_total,
           p->calibrated ? "calibrated" : "weight");
    for (int64_t i = 0; i < p->n; i++) {
        const lq_ptq_automix_tensor *t = &p->tensors[i];
        lq_ptq_candidate_name(&m->cand[t->choice], name, sizeof name);
        printf("%s{\"name\": ", i ? ", " : "");
        tool_print_json_string(t->module);
        printf(", \"scheme\": \"%s\", \"rows\": %lld, \"cols\": %lld, \"bytes\": %llu, \"proxy\": %.6g}", name,
               (long long)t->rows, (long long)t->cols, (unsigned long long)t->bytes, t->err);
    }
    printf("]}");
}

void ptq_automix_print(const ptq_automix *m, bool json) {
    if (m->target <= 0) return;
    if (json) {
        print_json(m);
        return;
    }
    const lq_ptq_automix_plan *p = &m->plan;
    char name[64];
    printf("  target-bpw  %.3f bits/weight over %lld quantized weights: %.4f MiB of %.4f MiB budget "
           "(%.4f bits/weight; largest single step %.4f MiB), summed %s proxy %.6g\n",
           m->target, (long long)p->params, p->bytes / 1048576.0, p->budget / 1048576.0,
           8.0 * (double)p->bytes / (double)p->params, p->max_step / 1048576.0,
           p->calibrated ? "calibrated output-error" : "weight-error", p->err_total);
    for (int k = 0; k < m->n_cand; k++) {
        int64_t cnt = 0;
        for (int64_t i = 0; i < p->n; i++) cnt += p->tensors[i].choice == k;
        lq_ptq_candidate_name(&m->cand[k], name, sizeof name);
        printf("              %-16s %lld tensor%s\n", name, (long long)cnt, cnt == 1 ? "" : "s");
    }
    for (int64_t i = 0; i < p->n; i++) {
        const lq_ptq_automix_tensor *t = &p->tensors[i];
        lq_ptq_candidate_name(&m->cand[t->choice], name, sizeof name);
        printf("    %-48s %-16s %10llu bytes  proxy %.6g\n", t->module, name, (unsigned long long)t->bytes, t->err);
    }
}

void ptq_automix_free(ptq_automix *m) {
    lq_ptq_automix_free(&m->plan);
    free(m->rules);
    m->rules = NULL;
}
