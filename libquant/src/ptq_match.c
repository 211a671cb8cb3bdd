/* ptq_match.c - module-name patterns as llm-compressor spells them (lq_ptq_rule in lq_ptq.h).
 *
 * compressed-tensors utils/match.py: "re:<regex>" is Python re.match (anchored at the start,
 * not at the end) against the module name; anything else is an exact module name or a class name
 * ("Linear"). We add one convenience: a bare name without dots ("q_proj") matches every module
 * whose last component is that name. The config we write lists exact names, so readers never
 * need our extension.
 */
#define PCRE2_CODE_UNIT_WIDTH 8
#include "ptq_internal.h"

#include <pcre2.h>
#include <stdio.h>
#include <string.h>

lq_status lq_ptq_pattern_check(const char *pattern) {
    if (strncmp(pattern, "re:", 3) != 0) return LQ_OK;
    int err;
    PCRE2_SIZE off;
    pcre2_code *re = pcre2_compile((PCRE2_SPTR)(pattern + 3), PCRE2_ZERO_TERMINATED, 0, &err, &off, NULL);
    if (!re) {
        PCRE2_UCHAR msg[160];
        pcre2_get_error_message(err, msg, sizeof msg);
        return lq_fail(LQ_ERR_INVALID_ARG, "pattern '%s': bad regex at offset %zu: %s", pattern,
                       (size_t)off, (const char *)msg);
    }
    pcre2_code_free(re);
    return LQ_OK;
}

bool lq_ptq_pattern_match(const char *pattern, const char *module) {
    if (strncmp(pattern, "re:", 3) == 0) {
        int err;
        PCRE2_SIZE off;
        pcre2_code *re = pcre2_compile((PCRE2_SPTR)(pattern + 3), PCRE2_ZERO_TERMINATED, PCRE2_ANCHORED,
                                       &err, &off, NULL);
        if (!re) return false;
        pcre2_match_data *md = pcre2_match_data_create_from_pattern(re, NULL);
        int rc = md ? pcre2_match(re, (PCRE2_SPTR)module, strlen(module), 0, 0, md, NULL) : -1;
        pcre2_match_data_free(md);
        pcre2_code_free(re);
        return rc >= 0;
    }
    if (strcmp(pattern, "Linear") == 0) return true; /* every module we plan is a linear layer */
    if (strcmp(pattern, module) == 0) return true;
    if (!strchr(pattern, '.')) {
        const char *last = strrchr(module, '.');
        return strcmp(last ? last + 1 : module, pattern) == 0;
    }
    return false;
}
