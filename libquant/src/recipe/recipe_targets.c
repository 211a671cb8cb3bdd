/* recipe_targets.c - target / ignore patterns (lq_targets.h). */
#define PCRE2_CODE_UNIT_WIDTH 8
#include "libquant/lq_targets.h"

#include <pcre2.h>
#include <stdlib.h>
#include <string.h>

typedef enum target_kind { T_REGEX, T_CLASS, T_ALL, T_EXACT, T_SUFFIX } target_kind;

struct lq_target {
    target_kind kind;
    lq_module_class cls;   /* T_CLASS */
    pcre2_code *re;        /* T_REGEX */
    pcre2_match_data *md;
    char *spec;
};

const char *lq_module_class_name(lq_module_class c) {
    switch (c) {
    case LQ_MODULE_LINEAR: return "Linear";
    case LQ_MODULE_EMBEDDING: return "Embedding";
    case LQ_MODULE_NORM: return "LlamaRMSNorm";
    default: return "";
    }
}

static bool ends_with(const char *s, size_t n, const char *suffix) {
    size_t k = strlen(suffix);
    return n >= k && memcmp(s + n - k, suffix, k) == 0;
}

lq_module_class lq_module_of_tensor(const lq_tensor *t, char *module, size_t cap) {
    const char *name = t->name ? t->name : "";
    size_t n = strlen(name);
    bool w = ends_with(name, n, ".weight");
    size_t m = w ? n - 7 : n;
    if (cap) {
        size_t k = m < cap - 1 ? m : cap - 1;
        memcpy(module, name, k);
        module[k] = 0;
    }
    if (!w) return LQ_MODULE_OTHER;
    if (ends_with(name, m, "embed_tokens")) return LQ_MODULE_EMBEDDING;
    if (t->ndim == 1 && ends_with(name, m, "norm")) return LQ_MODULE_NORM;
    /* Every other 2-D "<m>.weight" of a Llama checkpoint is an nn.Linear (the projections and
     * lm_head); embeddings were caught above. */
    if (t->ndim == 2) return LQ_MODULE_LINEAR;
    return LQ_MODULE_OTHER;
}

lq_status lq_target_compile(const char *spec, lq_target **out) {
    *out = NULL;
    if (!spec || !*spec) return lq_fail(LQ_ERR_INVALID_ARG, "empty target pattern");
    lq_target *t = calloc(1, sizeof *t);
    if (!t || !(t->spec = strdup(spec))) {
        free(t);
        return lq_fail(LQ_ERR_NOMEM, "out of memory compiling target '%s'", spec);
    }
    if (strncmp(spec, "re:", 3) == 0) {
        int err;
        PCRE2_SIZE off;
        /* PCRE2_ANCHORED: Python's re.match anchors at the start only. */
        t->re = pcre2_compile((PCRE2_SPTR)(spec + 3), PCRE2_ZERO_TERMINATED, PCRE2_ANCHORED, &err,
                              &off, NULL);
        if (!t->re) {
            PCRE2_UCHAR msg[160];
            pcre2_get_error_message(err, msg, sizeof msg);
            lq_target_free(t);
            return lq_fail(LQ_ERR_INVALID_ARG, "target '%s': bad regex at offset %zu: %s", spec,
                           (size_t)off, (const char *)msg);
        }
        t->md = pcre2_match_data_create_from_pattern(t->re, NULL);
        if (!t->md) {
            lq_target_free(t);
            return lq_fail(LQ_ERR_NOMEM, "out of memory compiling target '%s'", spec);
        }
        t->kind = T_REGEX;
    } else if (strcmp(spec, "Linear") == 0 || strcmp(spec, "__ALL_PRUNABLE__") == 0) {
        t->kind = T_CLASS;
        t->cls = LQ_MODULE_LINEAR;
    } else if (strcmp(spec, "Embedding") == 0) {
        t->kind = T_CLASS;
        t->cls = LQ_MODULE_EMBEDDING;
    } else if (strcmp(spec, "LlamaRMSNorm") == 0 || strcmp(spec, "RMSNorm") == 0) {
        t->kind = T_CLASS;
        t->cls = LQ_MODULE_NORM;
    } else if (strcmp(spec, "__ALL__") == 0) {
        t->kind = T_ALL;
    } else {
        t->kind = strchr(spec, '.') ? T_EXACT : T_SUFFIX;
    }
    *out = t;
    return LQ_OK;
}

void lq_target_free(lq_target *t) {
    if (!t) return;
    pcre2_match_data_free(t->md);
    pcre2_code_free(t->re);
    free(t->spec);
    free(t);
}

const char *lq_target_spec(const lq_target *t) { return t->spec; }

bool lq_target_match(const lq_target *t, const char *module, lq_module_class cls) {
    switch (t->kind) {
    case T_REGEX:
        return pcre2_match(t->re, (PCRE2_SPTR)module, strlen(module), 0, 0, t->md, NULL) >= 0;
    case T_CLASS: return cls == t->cls;
    case T_ALL: return cls != LQ_MODULE_OTHER;
    case T_EXACT: return strcmp(t->spec, module) == 0;
    case T_SUFFIX: {
        const char *last = strrchr(module, '.');
        return strcmp(last ? last + 1 : module, t->spec) == 0;
    }
    }
    return false;
}

lq_status lq_target_match_spec(const char *spec, const char *module, lq_module_class cls,
                               bool *out) {
    lq_target *t;
    LQ_TRY(lq_target_compile(spec, &t));
    *out = lq_target_match(t, module, cls);
    lq_target_free(t);
    return LQ_OK;
}
