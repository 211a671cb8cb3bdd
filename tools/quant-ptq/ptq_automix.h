/* ptq_automix.h - quant-ptq --target-bpw B for compressed-tensors output: per Linear one of the
 * candidate schemes (--scheme LIST, default W8A16, W4A16 g128, W4A16 g32, W3A16 g128) to fit B
 * bits per weight over the quantized Linears (lq_ptq_automix.h), written as one config group per
 * chosen scheme. */
#ifndef PTQ_AUTOMIX_H
#define PTQ_AUTOMIX_H

#include <stdbool.h>
#include <stdio.h>

#include "libquant/lq_ptq.h"
#include "libquant/lq_ptq_automix.h"

typedef struct ptq_automix {
    double target;               /* bits per weight; 0: off */
    int n_cand;
    lq_ptq_candidate cand[LQ_PTQ_AUTOMIX_MAX_CAND];
    lq_ptq_automix_plan plan;
    lq_ptq_rule *rules;          /* the user's overrides, then the plan's (owned) */
} ptq_automix;

/* The --target-bpw lines of quant-ptq --help. */
void ptq_automix_usage(FILE *f);
/* --scheme's comma-separated candidates ("W8A16,W4A16:32,W3A16"); with list NULL the defaults.
 * 0 or the bad-arguments exit code (the error printed). */
int ptq_automix_candidates(ptq_automix *m, const char *list);
/* Plan `model` under o (its calib weights the proxy), then point o's overrides at the user's rules
 * plus the plan's. */
lq_status ptq_automix_run(ptq_automix *m, const char *model, lq_ptq_opts *o);
/* The plan: per tensor scheme, bytes and proxy, and the totals; text lines, or the JSON field to
 * add to the summary object (", \"automix\": {...}"). Nothing when m is off. */
void ptq_automix_print(const ptq_automix *m, bool json);
void ptq_automix_free(ptq_automix *m);

#endif
