/* arch.c - the architecture registry and the generic facts about roles (arch.h). */
#include "arch.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* One line per architecture: its descriptor lives in arch_<name>.c. */
extern const lq_arch lq_arch_llama, lq_arch_mistral, lq_arch_qwen2, lq_arch_qwen3, lq_arch_gemma3;
extern const lq_arch lq_arch_mixtral, lq_arch_qwen2_moe;
static const lq_arch *const g_archs[] = {&lq_arch_llama, &lq_arch_mistral, &lq_arch_qwen2, &lq_arch_qwen3,
                                          &lq_arch_gemma3, &lq_arch_mixtral, &lq_arch_qwen2_moe};
enum { N_ARCHS = sizeof g_archs / sizeof g_archs[0] };

static const lq_role_info g_roles[LQ_ROLE_COUNT] = {
    [LQ_ROLE_ATTN_NORM] = {"attn_norm", LQ_KIND_NORM, LQ_GROUP_NONE, LQ_AXIS_NONE, LQ_WIDTH_ONE, -1},
    [LQ_ROLE_Q] = {"q", LQ_KIND_LINEAR, LQ_GROUP_ATTN, LQ_AXIS_ROWS, LQ_WIDTH_QGROUP, LQ_ROLE_ATTN_NORM},
    [LQ_ROLE_K] = {"k", LQ_KIND_LINEAR, LQ_GROUP_ATTN, LQ_AXIS_ROWS, LQ_WIDTH_HEAD, LQ_ROLE_ATTN_NORM},
    [LQ_ROLE_V] = {"v", LQ_KIND_LINEAR, LQ_GROUP_ATTN, LQ_AXIS_ROWS, LQ_WIDTH_HEAD, LQ_ROLE_ATTN_NORM},
    [LQ_ROLE_O] = {"o", LQ_KIND_LINEAR, LQ_GROUP_ATTN, LQ_AXIS_COLS, LQ_WIDTH_QGROUP, -1},
    [LQ_ROLE_Q_NORM] = {"q_norm", LQ_KIND_NORM, LQ_GROUP_NONE, LQ_AXIS_NONE, LQ_WIDTH_ONE, -1},
    [LQ_ROLE_K_NORM] = {"k_norm", LQ_KIND_NORM, LQ_GROUP_NONE, LQ_AXIS_NONE, LQ_WIDTH_ONE, -1},
    [LQ_ROLE_POST_ATTN_NORM] = {"post_attn_norm", LQ_KIND_NORM, LQ_GROUP_NONE, LQ_AXIS_NONE, LQ_WIDTH_ONE, -1},
    [LQ_ROLE_FFN_NORM] = {"ffn_norm", LQ_KIND_NORM, LQ_GROUP_NONE, LQ_AXIS_NONE, LQ_WIDTH_ONE, -1},
    [LQ_ROLE_GATE] = {"gate", LQ_KIND_LINEAR, LQ_GROUP_FFN, LQ_AXIS_ROWS, LQ_WIDTH_ONE, LQ_ROLE_FFN_NORM},
    [LQ_ROLE_UP] = {"up", LQ_KIND_LINEAR, LQ_GROUP_FFN, LQ_AXIS_ROWS, LQ_WIDTH_ONE, LQ_ROLE_FFN_NORM},
    [LQ_ROLE_DOWN] = {"down", LQ_KIND_LINEAR, LQ_GROUP_FFN, LQ_AXIS_COLS, LQ_WIDTH_ONE, -1},
    [LQ_ROLE_POST_FFN_NORM] = {"post_ffn_norm", LQ_KIND_NORM, LQ_GROUP_NONE, LQ_AXIS_NONE, LQ_WIDTH_ONE, -1},
    [LQ_ROLE_ROUTER] = {"router", LQ_KIND_LINEAR, LQ_GROUP_NONE, LQ_AXIS_NONE, LQ_WIDTH_ONE, LQ_ROLE_FFN_NORM},
    [LQ_ROLE_EXP_GATE] = {"expert_gate", LQ_KIND_LINEAR, LQ_GROUP_EXPERT, LQ_AXIS_ROWS, LQ_WIDTH_ONE, LQ_ROLE_FFN_NORM},
    [LQ_ROLE_EXP_UP] = {"expert_up", LQ_KIND_LINEAR, LQ_GROUP_EXPERT, LQ_AXIS_ROWS, LQ_WIDTH_ONE, LQ_ROLE_FFN_NORM},
    [LQ_ROLE_EXP_DOWN] = {"expert_down", LQ_KIND_LINEAR, LQ_GROUP_EXPERT, LQ_AXIS_COLS, LQ_WIDTH_ONE, -1},
    [LQ_ROLE_SHEXP_GATE] = {"shared_gate", LQ_KIND_LINEAR, LQ_GROUP_SHARED_EXPERT, LQ_AXIS_ROWS, LQ_WIDTH_ONE, LQ_ROLE_FFN_NORM},
    [LQ_ROLE_SHEXP_UP] = {"shared_up", LQ_KIND_LINEAR, LQ_GROUP_SHARED_EXPERT, LQ_AXIS_ROWS, LQ_WIDTH_ONE, LQ_ROLE_FFN_NORM},
    [LQ_ROLE_SHEXP_DOWN] = {"shared_down", LQ_KIND_LINEAR, LQ_GROUP_SHARED_EXPERT, LQ_AXIS_COLS, LQ_WIDTH_ONE, -1},
    [LQ_ROLE_SHEXP_ROUTER] = {"shared_expert_gate", LQ_KIND_LINEAR, LQ_GROUP_NONE, LQ_AXIS_NONE, LQ_WIDTH_ONE, LQ_ROLE_FFN_NORM},
};

const lq_arch *lq_arch_find(const char *hf_name) {
    for (int i = 0; hf_name && i < N_ARCHS; i++)
        if (strcmp(g_archs[i]->hf_name, hf_name) == 0) return g_archs[i];
    return NULL;
}

const lq_arch *lq_arch_find_gguf(const char *gguf_name) {
    for (int i = 0; gguf_name && i < N_ARCHS; i++)
        if (strcmp(g_archs[i]->gguf_name, gguf_name) == 0) return g_archs[i];
    return NULL;
}

const char *lq_arch_known_list(void) {
    static char buf[512];
    if (!buf[0]) {
        size_t k = 0;
        for (int i = 0; i < N_ARCHS && k < sizeof buf; i++)
            k += (size_t)snprintf(buf + k, sizeof buf - k, "%s%s", i ? ", " : "", g_archs[i]->hf_name);
    }
    return buf;
}

lq_status lq_arch_for_config(const lq_config *c, const char *path, const lq_arch **out) {
    *out = lq_arch_find(c->arch);
    if (!*out)
        return lq_fail(LQ_ERR_UNSUPPORTED, "%s: architecture \"%s\" is not supported (known: %s)", path,
                       c->arch, lq_arch_known_list());
    return LQ_OK;
}

const lq_role_info *lq_role_get(lq_role r) {
    return (int)r >= 0 && r < LQ_ROLE_COUNT ? &g_roles[r] : NULL;
}

const lq_role_spec *lq_arch_role(const lq_arch *a, lq_role r) {
    for (int i = 0; i < a->n_roles; i++)
        if (a->roles[i].role == r) return &a->roles[i];
    return NULL;
}

int64_t lq_arch_sym_value(const lq_config *c, lq_sym s, int l) {
    switch (s) {
    case LQ_SYM_DIM: return c->dim;
    case LQ_SYM_HIDDEN: return lq_config_layer_hidden(c, l);
    case LQ_SYM_QDIM: return (int64_t)lq_config_layer_heads(c, l) * c->head_dim;
    case LQ_SYM_KVDIM: return (int64_t)lq_config_layer_kv_heads(c, l) * c->head_dim;
    case LQ_SYM_HEAD_DIM: return c->head_dim;
    case LQ_SYM_VOCAB: return c->vocab_size;
    case LQ_SYM_EXPERTS: return c->n_experts;
    case LQ_SYM_EXPERT_HIDDEN: return c->expert_hidden_dim;
    case LQ_SYM_SHARED_HIDDEN: return c->shared_hidden_dim;
    case LQ_SYM_ONE: return 1;
    default: return 0;
    }
}

bool lq_arch_expert_module(const lq_arch *a, lq_role r, int l, int e, char *buf, size_t cap) {
    const lq_role_spec *s = lq_arch_role(a, r);
    if (!s || ((s->flags & LQ_RF_PER_EXPERT) != 0) != (e >= 0)) return false;
    int k = snprintf(buf, cap, "model.layers.%d.", l);
    if (k < 0 || (size_t)k >= cap) return false;
    if (e >= 0) snprintf(buf + k, cap - (size_t)k, s->hf, e); /* the spec's one "%d" */
    else snprintf(buf + k, cap - (size_t)k, "%s", s->hf);
    return true;
}

bool lq_arch_module(const lq_arch *a, lq_role r, int l, char *buf, size_t cap) {
    return lq_arch_expert_module(a, r, l, -1, buf, cap);
}

bool lq_arch_attn_module(const lq_arch *a, int l, char *buf, size_t cap) {
    if (!lq_arch_module(a, LQ_ROLE_Q, l, buf, cap)) return false;
    char *dot = strrchr(buf, '.'); /* model.layers.3.self_attn.q_proj -> model.layers.3.self_attn */
    if (dot) *dot = 0;
    return dot != NULL;
}

bool lq_arch_layer_has(const lq_role_spec *sp, const lq_config *c, int l) {
    if (sp->flags & LQ_RF_SPARSE_LAYER) return lq_config_layer_moe(c, l);
    if (sp->flags & LQ_RF_DENSE_LAYER) return !lq_config_layer_moe(c, l);
    return true;
}

/* Length of the prefix of `name` that the role pattern `hf` matches ("%d": one decimal index,
 * stored in *e), or 0. */
static size_t match_hf(const char *hf, const char *name, int *e) {
    const char *n = name;
    for (const char *p = hf; *p; p++) {
        if (p[0] == '%' && p[1] == 'd') {
            if (*n < '0' || *n > '9') return 0;
            long v = 0;
            while (*n >= '0' && *n <= '9' && v < 1000000) v = v * 10 + (*n++ - '0');
            *e = (int)v;
            p++;
        } else if (*n++ != *p) {
            return 0;
        }
    }
    return (size_t)(n - name);
}

int lq_arch_role_of_expert(const lq_arch *a, const char *name, int *layer, int *expert) {
    int l = -1, pos = 0;
    if (sscanf(name, "model.layers.%d.%n", &l, &pos) != 1 || pos == 0 || l < 0) return -1;
    const char *rest = name + pos;
    for (int i = 0; i < a->n_roles; i++) {
        int e = -1;
        size_t n = match_hf(a->roles[i].hf, rest, &e);
        if (n > 0 && (rest[n] == 0 || rest[n] == '.')) {
            if (layer) *layer = l;
            if (expert) *expert = e;
            return (int)a->roles[i].role;
        }
    }
    return -1;
}

int lq_arch_role_of(const lq_arch *a, const char *name, int *layer) {
    return lq_arch_role_of_expert(a, name, layer, NULL);
}

const lq_role_info *lq_arch_linear_info(const lq_arch *a, const char *module) {
    if (!a) return NULL;
    int r = lq_arch_role_of(a, module, NULL);
    if (r < 0 || g_roles[r].kind != LQ_KIND_LINEAR) return NULL;
    return &g_roles[r];
}

bool lq_arch_is_router(const lq_arch *a, const char *module) {
    if (a) {
        int r = lq_arch_role_of(a, module, NULL);
        return r == LQ_ROLE_ROUTER || r == LQ_ROLE_SHEXP_ROUTER;
    }
    /* No descriptor (quant-ptq and quant-prune run on any checkpoint): the module names of
     * llm-compressor's MoE ignore list, re:.*mlp.gate$ (Qwen2-MoE, OLMoE), re:.*shared_expert_gate$,
     * plus Mixtral's block_sparse_moe.gate. */
    static const char *const tails[] = {".block_sparse_moe.gate", ".mlp.gate", ".mlp.shared_expert_gate"};
    size_t n = strlen(module);
    for (size_t i = 0; i < sizeof tails / sizeof tails[0]; i++) {
        size_t k = strlen(tails[i]);
        if (n > k && strcmp(module + n - k, tails[i]) == 0) return true;
    }
    return false;
}

int64_t lq_unit_width_value(lq_unit_width w, int64_t head_dim, int group) {
    switch (w) {
    case LQ_WIDTH_HEAD: return head_dim;
    case LQ_WIDTH_QGROUP: return (int64_t)group * head_dim;
    default: return 1;
    }
}
