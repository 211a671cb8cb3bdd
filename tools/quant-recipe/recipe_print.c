/* recipe_print.c - quant-recipe check's text and JSON output (recipe_print.h). */
#include "recipe_print.h"

#include <stdio.h>

#include "libquant/lq_ptq.h"
#include "tool_output.h"

void recipe_print_text(const lq_recipe *r, const lq_plan *p, const lq_checkpoint *ck) {
    printf("recipe %s: %d stage%s\n", r->path, r->n_stages, r->n_stages == 1 ? "" : "s");
    int k = 0;
    for (int i = 0; i < r->n_stages; i++) {
        const lq_recipe_stage *st = &r->stages[i];
        printf("stage %d: %s (line %d)\n", i + 1, st->name, st->pos.line);
        if (st->kind == LQ_STAGE_EVAL) {
            printf("  eval: %d file%s, ctx %d%s", st->eval.n_files, st->eval.n_files == 1 ? "" : "s",
                   st->eval.ctx, st->eval.per_line ? ", per line" : "");
            if (st->eval.max_ppl_increase >= 0) {
                if (st->eval.ppl_increase_relative) printf(", max PPL increase %.4g%%", st->eval.max_ppl_increase * 100);
                else printf(", max PPL increase %.4g", st->eval.max_ppl_increase);
            }
            if (st->eval.max_kld >= 0) printf(", max mean KLD %.4g", st->eval.max_kld);
            if (st->eval.min_top1 >= 0) printf(", min top-1 agreement %.4g%%", st->eval.min_top1 * 100);
            printf(", against the %s model\n", st->eval.baseline == LQ_EVAL_BASE_PREVIOUS ? "previous" : "original");
        } else if (st->kind == LQ_STAGE_DISTILL) {
            printf("  distill: teacher %s, file %s, k %d", st->distill.teacher[0] ? st->distill.teacher : "(input model)",
                   st->distill.files[0], st->distill.k);
            if (st->distill.ctx) printf(", ctx %d", st->distill.ctx);
            printf("%s, log-probs %s, %d feature layer%s\n", st->distill.per_line ? ", per line" : "",
                   st->distill.logp_f16 ? "f16" : "f32", st->distill.n_feat_layers,
                   st->distill.n_feat_layers == 1 ? "" : "s");
        }
        for (int j = 0; j < st->n_mods; j++, k++) {
            const lq_recipe_modifier *m = &st->mods[j];
            char what[1024];
            lq_recipe_describe_modifier(m, what, sizeof what);
            printf("  %s: %s%s\n", m->group, what, lq_modifier_available(m->kind) ? "" : "  [not available in this build]");
            if (!p) continue;
            const lq_plan_modifier *pm = &p->mods[k];
            printf("    touches %lld tensor%s, %lld parameters:\n", (long long)pm->n_tensors,
                   pm->n_tensors == 1 ? "" : "s", (long long)pm->params);
            for (int64_t t = 0; t < pm->n_tensors; t++)
                printf("      %s [%lld, %lld]\n", pm->tensors[t].name, (long long)pm->tensors[t].rows,
                       (long long)pm->tensors[t].cols);
        }
    }
    if (p) {
        printf("model %s: %lld parameters, %.3f MB\n", lq_checkpoint_path(ck), (long long)p->params_total,
               p->bytes_in / 1e6);
        printf("estimated output: %.3f MB (%.2fx smaller), %lld parameters quantized\n", p->bytes_out / 1e6,
               p->bytes_out ? (double)p->bytes_in / (double)p->bytes_out : 0.0, (long long)p->params_quantized);
    }
}

void recipe_print_json(const lq_recipe *r, const lq_plan *p, lq_status avail) {
    printf("{\"recipe\": ");
    tool_print_json_string(r->path);
    printf(", \"available\": %s, \"stages\": [", avail == LQ_OK ? "true" : "false");
    int k = 0;
    for (int i = 0; i < r->n_stages; i++) {
        const lq_recipe_stage *st = &r->stages[i];
        printf("%s{\"name\": ", i ? ", " : "");
        tool_print_json_string(st->name);
        printf(", \"kind\": \"%s\", \"modifiers\": [",
               st->kind == LQ_STAGE_EVAL ? "eval" : st->kind == LQ_STAGE_DISTILL ? "distill" : "modifiers");
        for (int j = 0; j < st->n_mods; j++, k++) {
            const lq_recipe_modifier *m = &st->mods[j];
            printf("%s{\"modifier\": \"%s\", \"line\": %d, \"available\": %s", j ? ", " : "",
                   lq_modifier_name(m->kind), m->pos.line, lq_modifier_available(m->kind) ? "true" : "false");
            if (m->scheme != LQ_WFMT_NONE) printf(", \"scheme\": \"%s\"", lq_preset_name(m->scheme, m->asym));
            if (p) {
                const lq_plan_modifier *pm = &p->mods[k];
                printf(", \"params\": %lld, \"tensors\": [", (long long)pm->params);
                for (int64_t t = 0; t < pm->n_tensors; t++) {
                    if (t) printf(", ");
                    tool_print_json_string(pm->tensors[t].name);
                }
                printf("]");
            }
            printf("}");
        }
        printf("]}");
    }
    printf("]");
    if (p)
        printf(", \"params_total\": %lld, \"params_quantized\": %lld, \"bytes_in\": %llu, \"bytes_out_est\": %llu",
               (long long)p->params_total, (long long)p->params_quantized, (unsigned long long)p->bytes_in,
               (unsigned long long)p->bytes_out);
    printf("}\n");
}
