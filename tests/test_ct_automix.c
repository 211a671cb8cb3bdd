/* test_ct_automix.c - quant-ptq --target-bpw for compressed-tensors output (lq_ptq_automix.h):
 * the plan fits the target within one tensor's step, its extremes are the extreme candidates,
 * and what lq_ptq_quantize writes from it is that size and loads in our engine.
 *
 * References: compressed-tensors' storage arithmetic (lq_ct_weight_bytes: packed int32 words,
 * one scale per row and group in the model dtype, the 16-byte weight_shape; ct_layout.c cites it)
 * and the target itself. On TinyStories-656K (f32, tied head left float): at three targets the
 * written quantized tensors take at most target x params / 8 bytes and miss it by less than the
 * largest single-tensor step; a target above W8A16 everywhere plans all W8A16, the smallest
 * feasible target all W3A16 g128 and a byte less is refused; every output loads and has a
 * finite perplexity that does not fall as the target falls by a lot. */
#include <criterion/criterion.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "libquant/lq_model.h"
#include "libquant/lq_ptq_automix.h"
#include "lq_eval.h"
#include "lq_test_ppl.h"
#include "lq_test_util.h"

static const char *model_dir(void) {
    static char dir[1024];
    return lq_test_shared("models/TinyStories-656K", dir, sizeof dir);
}

static lq_ptq_automix_plan plan_at(const lq_ptq_candidate *cand, int n_cand, double bpw, lq_status want) {
    lq_ptq_opts o = {.scheme = cand[0].fmt};
    lq_ptq_automix_plan p;
    lq_status st = lq_ptq_automix(model_dir(), &o, cand, n_cand, bpw, &p);
    cr_assert_eq(st, want, "target %.4f: %s", bpw, lq_last_error());
    return p;
}

/* Write the plan; returns the summary (out receives the directory). */
static lq_ptq_summary write_plan(const lq_ptq_automix_plan *p, const lq_ptq_candidate *cand, char *out) {
    strcpy(out, "/tmp/lq_test_ctmix_XXXXXX");
    cr_assert_not_null(mkdtemp(out));
    lq_ptq_opts o = {.scheme = cand[0].fmt, .overrides = p->rules, .n_overrides = (int)p->n};
    lq_ptq_summary s;
    cr_assert_eq(lq_ptq_quantize(model_dir(), out, &o, &s), LQ_OK, "%s", lq_last_error());
    return s;
}

static double ppl_of(const char *dir) { return lq_test_story_ppl(dir, model_dir()); }

static void rm_out(const char *out) {
    char cmd[1200];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", out);
    cr_assert_eq(system(cmd), 0);
}

Test(ct_automix, output_fits_the_target_within_one_step_and_loads, .timeout = 300) {
    lq_ptq_candidate cand[LQ_PTQ_AUTOMIX_MAX_CAND];
    const int nc = lq_ptq_automix_defaults(cand, LQ_PTQ_AUTOMIX_MAX_CAND);
    const double targets[] = {6.0, 4.5, 3.5};
    double prev_err = -1, prev_ppl = 0;
    for (size_t k = 0; k < sizeof targets / sizeof targets[0]; k++) {
        lq_ptq_automix_plan p = plan_at(cand, nc, targets[k], LQ_OK);
        char out[64];
        lq_ptq_summary s = write_plan(&p, cand, out);
        const double want = targets[k] * (double)s.params_quantized / 8.0;
        cr_assert_eq(s.params_quantized, p.params);
        cr_assert_eq(s.n_quantized, p.n);
        cr_assert_eq(s.qbytes_out, p.bytes, "written %llu bytes, planned %llu", (unsigned long long)s.qbytes_out,
                     (unsigned long long)p.bytes);
        cr_assert_leq((double)s.qbytes_out, want, "target %.2f: %llu bytes over %.0f", targets[k],
                      (unsigned long long)s.qbytes_out, want);
        cr_assert_leq(s.bits_per_weight, targets[k]);
        cr_assert_lt(want - (double)s.qbytes_out, (double)p.max_step + 1.0, "target %.2f: %llu bytes, %.0f wanted, step %llu",
                     targets[k], (unsigned long long)s.qbytes_out, want, (unsigned long long)p.max_step);
        for (int64_t i = 0; i < s.n_quantized; i++) { /* the writer used the plan's scheme */
            const lq_ptq_candidate *c = &cand[p.tensors[i].choice];
            cr_assert_str_eq(s.tensors[i].name, p.tensors[i].module);
            cr_assert_eq(s.tensors[i].scheme, c->fmt, "%s", s.tensors[i].name);
            cr_assert_eq(s.tensors[i].group_size, c->group_size, "%s", s.tensors[i].name);
        }
        cr_assert_geq(p.err_total, prev_err, "a smaller budget gave a smaller error");
        prev_err = p.err_total;
        const double ppl = ppl_of(out);
        cr_assert(isfinite(ppl) && ppl > 1.0, "target %.2f: ppl %g", targets[k], ppl);
        if (k > 0) cr_assert_gt(ppl, prev_ppl * 0.9, "ppl %g at %.2f vs %g at %.2f", ppl, targets[k], prev_ppl, targets[k - 1]);
        prev_ppl = ppl;
        rm_out(out);
        lq_ptq_summary_free(&s);
        lq_ptq_automix_free(&p);
    }
}

Test(ct_automix, extremes_are_the_extreme_candidates, .timeout = 120) {
    lq_ptq_candidate cand[LQ_PTQ_AUTOMIX_MAX_CAND];
    const int nc = lq_ptq_automix_defaults(cand, LQ_PTQ_AUTOMIX_MAX_CAND);
    cr_assert_eq(cand[0].fmt, LQ_WFMT_W8A16);
    cr_assert_eq(cand[nc - 1].fmt, LQ_WFMT_W3A16);
    lq_ptq_automix_plan p = plan_at(cand, nc, 30.0, LQ_OK); /* W8A16 is under 9 bits everywhere */
    uint64_t smallest = 0;
    for (int64_t i = 0; i < p.n; i++) {
        cr_assert_eq(p.tensors[i].choice, 0, "%s: candidate %d", p.tensors[i].module, p.tensors[i].choice);
        uint64_t lo = UINT64_MAX;
        for (int k = 0; k < nc; k++) {
            const uint64_t b = lq_ct_weight_bytes(cand[k].fmt, cand[k].group_size, cand[k].asym, p.tensors[i].rows,
                                                  p.tensors[i].cols, 4);
            lo = b < lo ? b : lo;
        }
        cr_assert_eq(lo, lq_ct_weight_bytes(LQ_WFMT_W3A16, 128, false, p.tensors[i].rows, p.tensors[i].cols, 4));
        smallest += lo;
    }
    const int64_t params = p.params;
    lq_ptq_automix_free(&p);
    /* the smallest feasible target (half a byte of slack against the floor) and a byte less */
    p = plan_at(cand, nc, (8.0 * (double)smallest + 4.0) / (double)params, LQ_OK);
    for (int64_t i = 0; i < p.n; i++) cr_assert_eq(p.tensors[i].choice, nc - 1, "%s", p.tensors[i].module);
    cr_assert_eq(p.bytes, smallest);
    lq_ptq_automix_free(&p);
    p = plan_at(cand, nc, (8.0 * (double)(smallest - 1)) / (double)params, LQ_ERR_INVALID_ARG);
}

Test(ct_automix, candidates_parse_and_refuse) {
    lq_ptq_candidate c;
    cr_assert(lq_ptq_candidate_parse("W4A16:32", &c));
    cr_assert(c.fmt == LQ_WFMT_W4A16 && c.group_size == 32 && !c.asym);
    cr_assert(lq_ptq_candidate_parse("w3a16", &c));
    cr_assert(c.fmt == LQ_WFMT_W3A16 && c.group_size == 128);
    cr_assert(lq_ptq_candidate_parse("W4A16_ASYM:64", &c) && c.asym && c.group_size == 64);
    cr_assert(lq_ptq_candidate_parse("W8A16", &c) && c.group_size == 0);
    cr_assert_not(lq_ptq_candidate_parse("W8A16:32", &c)); /* per channel: no group */
    cr_assert_not(lq_ptq_candidate_parse("W4A16:0", &c));
    cr_assert_not(lq_ptq_candidate_parse("W4A16:", &c));
    cr_assert_not(lq_ptq_candidate_parse("none", &c));
    cr_assert_not(lq_ptq_candidate_parse("Q4_K", &c));
    char name[32];
    lq_ptq_candidate_name(&(lq_ptq_candidate){LQ_WFMT_W4A16, 32, false}, name, sizeof name);
    cr_assert_str_eq(name, "W4A16 g32");
}

/* The tool: --json carries the plan, config.json one group per chosen scheme naming every
 * quantized Linear once; a bad candidate is one error line and exit 2, nothing written. */
Test(ct_automix, quant_ptq_target_bpw_cli, .timeout = 120) {
    char tool[1024], out[64], cmd[4096];
    lq_test_tool("quant-ptq", tool, sizeof tool);
    snprintf(out, sizeof out, "/tmp/lq_test_ctmix_cli_%d", (int)getpid());
    snprintf(cmd, sizeof cmd, "'%s' --model '%s' --target-bpw 4.5 --threads 1 --json --out '%s' > '%s.json'", tool,
             model_dir(), out, out);
    cr_assert_eq(lq_test_exit_code(system(cmd)), 0, "%s", cmd);
    char path[128];
    snprintf(path, sizeof path, "%s.json", out);
    char *js = lq_test_read_file(path, NULL);
    cr_assert_not_null(js);
    cr_assert_not_null(strstr(js, "\"automix\": {\"target_bpw\": 4.5000"), "%s", js);
    free(js);
    unlink(path);
    snprintf(path, sizeof path, "%s/config.json", out);
    char *cfg = lq_test_read_file(path, NULL);
    cr_assert_not_null(cfg);
    lq_ct_config c;
    cr_assert_eq(lq_ct_config_parse(cfg, path, &c), LQ_OK, "%s", lq_last_error());
    free(cfg);
    cr_assert_geq(c.n_groups, 2, "a 4.5-bit plan of TinyStories-656K mixes schemes");
    int64_t targets = 0;
    for (int g = 0; g < c.n_groups; g++) targets += c.groups[g].n_targets;
    cr_assert_eq(targets, 14, "2 layers x 7 projections, each in one group");
    rm_out(out);
    snprintf(cmd, sizeof cmd, "'%s' --model '%s' --target-bpw 4.5 --scheme W4A16,Q4_K --out '%s' 2> '%s.err'", tool,
             model_dir(), out, out);
    cr_assert_eq(lq_test_exit_code(system(cmd)), 2, "%s", cmd);
    cr_assert_not(lq_test_exists(out));
    snprintf(path, sizeof path, "%s.err", out);
    char *err = lq_test_read_file(path, NULL);
    cr_assert(err && strstr(err, "quant-ptq: error: --scheme: unknown candidate 'Q4_K'"), "%s", err ? err : "");
    free(err);
    unlink(path);
}
