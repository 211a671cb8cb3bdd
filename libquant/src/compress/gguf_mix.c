/* gguf_mix.c - llama-quantize's per-tensor type choice (see lq_gguf_quant.h).
 *
 * A port of llama.cpp 0c1e57098 src/llama-quant.cpp (tensor_allows_quantization,
 * tensor_get_category, llama_tensor_get_type(_impl), tensor_type_fallback) restricted to the
 * file types whose block formats we have (no IQ1/IQ2/IQ3/TQ/MXFP4; with an imatrix, has_imatrix
 * takes llama.cpp's two imatrix branches of ffn_down that concern them). The rules are llama.cpp's; where they read model facts we
 * take them from the plan options: n_gqa = n_head / n_head_kv, n_expert, falcon. Not ported: the
 * LLM_TYPE_70B attn_v bump (llama.cpp detects 70B by layer count and size; no such model here).
 */
#include "libquant/lq_gguf_quant.h"
#include "libquant/lq_gguf_write.h"

#define PCRE2_CODE_UNIT_WIDTH 8
#include <ctype.h>
#include <pcre2.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

/* ---- names -------------------------------------------------------------------------------------- */

static const char *const g_type_names[] = {
    [0] = "f32", [1] = "f16", [2] = "q4_0", [3] = "q4_1", [6] = "q5_0", [7] = "q5_1", [8] = "q8_0",
    [9] = "q8_1", [10] = "q2_K", [11] = "q3_K", [12] = "q4_K", [13] = "q5_K", [14] = "q6_K",
    [15] = "q8_K", [20] = "iq4_nl", [23] = "iq4_xs", [30] = "bf16",
};
#define N_TYPE_NAMES ((int)(sizeof g_type_names / sizeof g_type_names[0]))

const char *lq_ggml_type_name(int type) {
    return type >= 0 && type < N_TYPE_NAMES ? g_type_names[type] : NULL;
}

int lq_ggml_type_parse(const char *name) {
    for (int i = 0; i < N_TYPE_NAMES; i++)
        if (g_type_names[i] && strcasecmp(g_type_names[i], name) == 0) return i;
    return -1;
}

/* llama_ftype ids (llama.h) of the file types below. */
enum {
    FT_F32 = 0, FT_F16 = 1, FT_Q4_0 = 2, FT_Q4_1 = 3, FT_Q8_0 = 7, FT_Q5_0 = 8, FT_Q5_1 = 9,
    FT_Q2_K = 10, FT_Q3_K_S = 11, FT_Q3_K_M = 12, FT_Q3_K_L = 13, FT_Q4_K_S = 14, FT_Q4_K_M = 15,
    FT_Q5_K_S = 16, FT_Q5_K_M = 17, FT_Q6_K = 18, FT_IQ4_NL = 25, FT_IQ4_XS = 30, FT_BF16 = 32,
};

/* llama-quantize's QUANT_OPTIONS names (tools/quantize/quantize.cpp), aliases included. */
static const lq_gguf_ftype g_ftypes[] = {
    {"F32", FT_F32, LQ_GGML_F32},       {"F16", FT_F16, LQ_GGML_F16},
    {"BF16", FT_BF16, LQ_GGML_BF16},    {"Q8_0", FT_Q8_0, LQ_GGML_Q8_0},
    {"Q4_0", FT_Q4_0, LQ_GGML_Q4_0},    {"Q4_1", FT_Q4_1, LQ_GGML_Q4_1},
    {"Q5_0", FT_Q5_0, LQ_GGML_Q5_0},    {"Q5_1", FT_Q5_1, LQ_GGML_Q5_1},
    {"IQ4_NL", FT_IQ4_NL, LQ_GGML_IQ4_NL}, {"IQ4_XS", FT_IQ4_XS, LQ_GGML_IQ4_XS},
    {"Q2_K", FT_Q2_K, LQ_GGML_Q2_K},
    {"Q3_K_S", FT_Q3_K_S, LQ_GGML_Q3_K}, {"Q3_K_M", FT_Q3_K_M, LQ_GGML_Q3_K},
    {"Q3_K_L", FT_Q3_K_L, LQ_GGML_Q3_K}, {"Q3_K", FT_Q3_K_M, LQ_GGML_Q3_K},
    {"Q4_K_S", FT_Q4_K_S, LQ_GGML_Q4_K}, {"Q4_K_M", FT_Q4_K_M, LQ_GGML_Q4_K},
    {"Q4_K", FT_Q4_K_M, LQ_GGML_Q4_K},
    {"Q5_K_S", FT_Q5_K_S, LQ_GGML_Q5_K}, {"Q5_K_M", FT_Q5_K_M, LQ_GGML_Q5_K},
    {"Q5_K", FT_Q5_K_M, LQ_GGML_Q5_K},   {"Q6_K", FT_Q6_K, LQ_GGML_Q6_K},
};
#define N_FTYPES ((int)(sizeof g_ftypes / sizeof g_ftypes[0]))

const lq_gguf_ftype *lq_gguf_ftype_find(const char *name) {
    for (int i = 0; i < N_FTYPES; i++)
        if (strcasecmp(g_ftypes[i].name, name) == 0) return &g_ftypes[i];
    return NULL;
}

const char *lq_gguf_ftype_list(void) {
    static char buf[256];
    if (!buf[0])
        for (int i = 0; i < N_FTYPES; i++) {
            if (i) strcat(buf, ", ");
            strcat(buf, g_ftypes[i].name);
        }
    return buf;
}

/* ---- categories ------------------------------------------------------------------------------- */

typedef enum cat {
    C_TOKEN_EMBD, C_ATTN_Q, C_ATTN_V, C_ATTN_K, C_ATTN_QKV, C_ATTN_KV_B, C_ATTN_OUTPUT,
    C_FFN_UP, C_FFN_GATE, C_FFN_DOWN, C_OUTPUT, C_OTHER
} cat;

static bool has(const char *s, const char *sub) { return strstr(s, sub) != NULL; }

/* tensor_get_category: the first matching test wins, in llama.cpp's order. */
static cat category(const char *n) {
    if (strcmp(n, "output.weight") == 0) return C_OUTPUT;
    if (strcmp(n, "token_embd.weight") == 0 || strcmp(n, "per_layer_token_embd.weight") == 0) return C_TOKEN_EMBD;
    if (has(n, "attn_qkv.weight")) return C_ATTN_QKV;
    if (has(n, "attn_kv_b.weight")) return C_ATTN_KV_B;
    if (has(n, "attn_v.weight")) return C_ATTN_V;
    if (has(n, "attn_k.weight")) return C_ATTN_K;
    if (has(n, "attn_q.weight")) return C_ATTN_Q;
    if (has(n, "attn_output.weight")) return C_ATTN_OUTPUT;
    if (has(n, "ffn_up")) return C_FFN_UP;
    if (has(n, "ffn_gate")) return C_FFN_GATE;
    if (has(n, "ffn_down")) return C_FFN_DOWN;
    return C_OTHER;
}

static bool is_attn_v(cat c) { return c == C_ATTN_V || c == C_ATTN_QKV || c == C_ATTN_KV_B; }

/* tensor_allows_quantization, the parts that name tensors a decoder of ours can have. */
static bool allows_quantization(const lq_gguf_plan_tensor *t) {
    if (t->n_dims < 2) return false;
    const char *n = t->name;
    size_t len = strlen(n);
    if (len < 6 || strcmp(n + len - 6, "weight") != 0) return false;
    static const char *const never[] = {"_norm.weight", "ffn_gate_inp.weight", "altup", "laurel",
                                        "per_layer_model_proj", "ssm_conv1d", "attn_rel_b.weight",
                                        ".position_embd"};
    for (size_t i = 0; i < sizeof never / sizeof never[0]; i++)
        if (has(n, never[i])) return false;
    return strcmp(n, "position_embd.weight") != 0 && strcmp(n, "token_types.weight") != 0;
}

static bool is_quantized(int type) { return type != LQ_GGML_F32 && type != LQ_GGML_F16 && type != LQ_GGML_BF16; }

static int64_t block_elems(int type) {
    uint64_t be, bb;
    return lq_ggml_type_layout((uint32_t)type, &be, &bb) ? (int64_t)be : 1;
}

/* ---- the rules -------------------------------------------------------------------------------- */

typedef struct state {
    const lq_gguf_plan_opts *o;
    int ft;
    int n_attention_wv, i_attention_wv, n_ffn_down, i_ffn_down, n_ffn_gate, i_ffn_gate, n_ffn_up, i_ffn_up;
    bool tied;
} state;

static bool use_more_bits(int i, int n) { return i < n / 8 || i >= 7 * n / 8 || (i - n / 8) % 3 == 2; }

/* layer_info: the counter, except for MoE models whose experts are not in layer order. */
static int layer_of(const state *s, int counter, const char *name) {
    int l = counter;
    if (s->o->n_expert > 1 && sscanf(name, "blk.%d.", &l) != 1) l = counter;
    return l;
}

static int attn_v_type(state *s, int t) {
    int ft = s->ft, gqa = s->o->n_head_kv > 0 ? s->o->n_head / s->o->n_head_kv : 1;
    if (ft == FT_Q2_K) t = gqa >= 4 ? LQ_GGML_Q4_K : LQ_GGML_Q3_K;
    else if (ft == FT_Q3_K_M) t = s->i_attention_wv < 2 ? LQ_GGML_Q5_K : LQ_GGML_Q4_K;
    else if (ft == FT_Q3_K_L) t = LQ_GGML_Q5_K;
    else if ((ft == FT_IQ4_NL || ft == FT_IQ4_XS) && gqa >= 4) t = LQ_GGML_Q5_K;
    else if ((ft == FT_Q4_K_M || ft == FT_Q5_K_M) && use_more_bits(s->i_attention_wv, s->n_attention_wv))
        t = LQ_GGML_Q6_K;
    else if (ft == FT_Q4_K_S && s->i_attention_wv < 4) t = LQ_GGML_Q5_K;
    if (s->o->n_expert == 8) t = LQ_GGML_Q8_0;
    ++s->i_attention_wv;
    return t;
}

static int ffn_down_type(state *s, int t, const char *name) {
    int ft = s->ft, i = layer_of(s, s->i_ffn_down, name), n = s->n_ffn_down;
    bool falcon = s->o->falcon;
    if (ft == FT_Q2_K) t = LQ_GGML_Q3_K;
    else if (ft == FT_Q3_K_M)
        t = i < n / 16 ? LQ_GGML_Q5_K : !falcon || use_more_bits(i, n) ? LQ_GGML_Q4_K : LQ_GGML_Q3_K;
    else if (ft == FT_Q3_K_L) t = falcon ? LQ_GGML_Q4_K : LQ_GGML_Q5_K;
    else if (ft == FT_Q4_K_M) {
        if (falcon) t = i < n / 16 ? LQ_GGML_Q6_K : use_more_bits(i, n) ? LQ_GGML_Q5_K : LQ_GGML_Q4_K;
        else if (use_more_bits(i, n)) t = LQ_GGML_Q6_K;
    } else if (i < n / 8 && (ft == FT_IQ4_NL || ft == FT_IQ4_XS) && !s->o->has_imatrix) t = LQ_GGML_Q5_K;
    else if (ft == FT_Q5_K_M && use_more_bits(i, n)) t = LQ_GGML_Q6_K;
    else if (ft == FT_Q4_K_S && !falcon && i < n / 8) t = LQ_GGML_Q5_K;
    else if ((ft == FT_Q4_0 || ft == FT_Q5_0) && s->o->has_imatrix && i < n / 8)
        t = ft == FT_Q4_0 ? LQ_GGML_Q4_1 : LQ_GGML_Q5_1; /* llama.cpp's guard, with an imatrix only */
    ++s->i_ffn_down;
    return t;
}

static int attn_output_type(const state *s, int t) {
    int ft = s->ft;
    if (s->o->falcon) return ft == FT_Q3_K_L ? LQ_GGML_Q4_K : t;
    if (s->o->n_expert == 8) {
        if (ft == FT_Q2_K || ft == FT_Q3_K_S || ft == FT_Q3_K_M || ft == FT_IQ4_NL || ft == FT_Q4_K_S ||
            ft == FT_Q4_K_M || ft == FT_IQ4_XS)
            t = LQ_GGML_Q5_K;
        return t;
    }
    if (ft == FT_Q2_K) t = LQ_GGML_Q3_K;
    else if (ft == FT_Q3_K_M) t = LQ_GGML_Q4_K;
    else if (ft == FT_Q3_K_L) t = LQ_GGML_Q5_K;
    return t;
}

/* llama_tensor_get_type_impl for our file types. */
static int mix_type(state *s, int t, const lq_gguf_plan_tensor *x, cat c) {
    int ft = s->ft;
    if (c == C_OUTPUT || (s->tied && c == C_TOKEN_EMBD)) {
        if (s->o->output_type >= 0) return s->o->output_type;
        if (s->o->falcon || x->ne[0] % block_elems(t) != 0) return LQ_GGML_Q8_0;
        return t != LQ_GGML_Q8_0 ? LQ_GGML_Q6_K : t;
    }
    if (c == C_TOKEN_EMBD) return s->o->token_embd_type >= 0 ? s->o->token_embd_type : t;
    if (is_attn_v(c)) return attn_v_type(s, t);
    if (c == C_ATTN_K) return s->o->n_expert == 8 ? LQ_GGML_Q8_0 : t;
    if (c == C_FFN_DOWN) return ffn_down_type(s, t, x->name);
    if (c == C_ATTN_OUTPUT) return attn_output_type(s, t);
    if (c == C_ATTN_QKV) {
        if (ft == FT_Q3_K_M || ft == FT_Q3_K_L) return LQ_GGML_Q4_K;
        if (ft == FT_Q4_K_M) return LQ_GGML_Q5_K;
        if (ft == FT_Q5_K_M) return LQ_GGML_Q6_K;
        return t;
    }
    if (c == C_FFN_GATE) ++s->i_ffn_gate;
    if (c == C_FFN_UP) ++s->i_ffn_up;
    return t;
}

/* tensor_type_fallback: a type whose block does not divide the columns. */
static int fallback(int t, int64_t cols, bool *fell) {
    if (cols % block_elems(t) == 0) return t;
    *fell = true;
    int r = t;
    switch (t) {
    case LQ_GGML_IQ4_XS: r = LQ_GGML_IQ4_NL; break;
    case LQ_GGML_Q2_K: case LQ_GGML_Q3_K: r = LQ_GGML_Q4_0; break;
    case LQ_GGML_Q4_K: r = LQ_GGML_Q5_0; break;
    case LQ_GGML_Q5_K: r = LQ_GGML_Q5_1; break;
    case LQ_GGML_Q6_K: r = LQ_GGML_Q8_0; break;
    default: break; /* a 32-block type: F16 below */
    }
    return cols % block_elems(r) == 0 ? r : LQ_GGML_F16;
}

/* ---- the plan ---------------------------------------------------------------------------------- */

/* llama_model_loader's weight_name_comparer: layer number ("blk.N.", -1 for others), then name. */
typedef struct ord {
    int layer;
    const char *name;
    int64_t idx;
} ord;

static int loader_order(const void *a, const void *b) {
    const ord *x = a, *y = b;
    if (x->layer != y->layer) return x->layer < y->layer ? -1 : 1;
    return strcmp(x->name, y->name);
}

typedef struct rules {
    pcre2_code **re;
    pcre2_match_data *md;
    int n;
} rules;

static void rules_free(rules *r) {
    for (int i = 0; i < r->n; i++) pcre2_code_free(r->re[i]);
    free(r->re);
    pcre2_match_data_free(r->md);
}

static lq_status rules_compile(const lq_gguf_plan_opts *o, rules *r) {
    memset(r, 0, sizeof *r);
    if (o->n_rules <= 0) return LQ_OK;
    if (!(r->re = calloc((size_t)o->n_rules, sizeof *r->re)) || !(r->md = pcre2_match_data_create(32, NULL)))
        return lq_fail(LQ_ERR_NOMEM, "out of memory");
    for (int i = 0; i < o->n_rules; i++, r->n++) {
        char pat[512];
        snprintf(pat, sizeof pat, "%s", o->rules[i].pattern);
        for (char *p = pat; *p; p++) *p = (char)tolower((unsigned char)*p); /* as llama-quantize */
        int err;
        PCRE2_SIZE off;
        r->re[i] = pcre2_compile((PCRE2_SPTR)pat, PCRE2_ZERO_TERMINATED, 0, &err, &off, NULL);
        if (!r->re[i]) {
            PCRE2_UCHAR msg[160];
            pcre2_get_error_message(err, msg, sizeof msg);
            return lq_fail(LQ_ERR_INVALID_ARG, "--tensor-type '%s': bad regex at offset %zu: %s",
                           o->rules[i].pattern, (size_t)off, (const char *)msg);
        }
    }
    return LQ_OK;
}

/* The first rule whose regex occurs in the name (std::regex_search), or -1. */
static int rules_match(const rules *r, const lq_gguf_tensor_rule *src, const char *name) {
    for (int i = 0; i < r->n; i++)
        if (pcre2_match(r->re[i], (PCRE2_SPTR)name, strlen(name), 0, 0, r->md, NULL) >= 0) return src[i].type;
    return -1;
}

static int tensor_type(state *s, const rules *r, lq_gguf_plan_tensor *x) {
    const lq_gguf_plan_opts *o = s->o;
    int dflt = o->ftype->default_type;
    if (!allows_quantization(x)) return LQ_GGML_F32;
    cat c = category(x->name);
    if (o->token_embd_type >= 0 && c == C_TOKEN_EMBD) return o->token_embd_type;
    if (o->output_type >= 0 && c == C_OUTPUT) return o->output_type;
    if (!is_quantized(dflt)) return dflt;
    int t = rules_match(r, o->rules, x->name);
    bool manual = t >= 0;
    if (!manual) t = dflt;
    if (!manual && !o->pure) t = mix_type(s, t, x, c);
    return fallback(t, x->ne[0], &x->fell_back);
}

lq_status lq_gguf_plan(const lq_gguf_plan_opts *o, lq_gguf_plan_tensor *t, int64_t n) {
    rules r;
    lq_status st = rules_compile(o, &r);
    ord *order = st == LQ_OK ? malloc((size_t)(n > 0 ? n : 1) * sizeof *order) : NULL;
    if (st == LQ_OK && !order) st = lq_fail(LQ_ERR_NOMEM, "out of memory");
    if (st != LQ_OK) {
        rules_free(&r);
        return st;
    }
    state s = {.o = o, .ft = o->ftype->ftype, .tied = true};
    for (int64_t i = 0; i < n; i++) {
        int l = -1;
        if (sscanf(t[i].name, "blk.%d.", &l) != 1) l = -1;
        order[i] = (ord){l, t[i].name, i};
        t[i].fell_back = false;
        cat c = category(t[i].name);
        if (is_attn_v(c)) s.n_attention_wv++;
        if (c == C_OUTPUT) s.tied = false;
    }
    s.n_ffn_down = s.n_ffn_gate = s.n_ffn_up = o->n_layers;
    qsort(order, (size_t)n, sizeof *order, loader_order);
    for (int64_t k = 0; k < n; k++) t[order[k].idx].type = tensor_type(&s, &r, &t[order[k].idx]);
    free(order);
    rules_free(&r);
    return LQ_OK;
}
