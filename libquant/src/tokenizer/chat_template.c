/* chat_template.c - recognize a chat template's family from its Jinja source and render a
 * conversation as that template does (lq_chat.h).
 *
 * Detection follows llama.cpp's llm_chat_detect_template (src/llama-chat.cpp): marker strings,
 * checked in the same order. Rendering follows the Jinja templates themselves, not llama.cpp's
 * approximations where the two differ (llama.cpp drops Llama-2's BOS and spaces, keeps Mistral
 * v3's system message first, pads Gemma's system with a trim): the model was trained on what
 * the template produces, and transformers' apply_chat_template is the reference the tests use.
 * Options a family's templates vary in (Llama-2's strip() and per-turn BOS, ChatML's default
 * system prompt, Llama 3.1's date) are read from the template text.
 */
#include "libquant/lq_chat.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

typedef enum chat_kind {
    CHAT_CHATML,
    CHAT_GEMMA,
    CHAT_LLAMA3,
    CHAT_LLAMA31,
    CHAT_LLAMA2,      /* [INST] ... [/INST], no <<SYS>> block: a system message is a prefix line */
    CHAT_LLAMA2_SYS,  /* Llama-2-chat: <<SYS>> block inside the first [INST] */
    CHAT_MISTRAL_V1,
    CHAT_MISTRAL_V3,
    CHAT_MISTRAL_V3_TEKKEN,
    CHAT_MISTRAL_V7,
    CHAT_MISTRAL_V7_TEKKEN,
    CHAT_PHI3,
    CHAT_ZEPHYR,
    CHAT_COUNT
} chat_kind;

static const char *const kind_names[CHAT_COUNT] = {
    [CHAT_CHATML] = "chatml",
    [CHAT_GEMMA] = "gemma",
    [CHAT_LLAMA3] = "llama3",
    [CHAT_LLAMA31] = "llama3.1",
    [CHAT_LLAMA2] = "llama2",
    [CHAT_LLAMA2_SYS] = "llama2-sys",
    [CHAT_MISTRAL_V1] = "mistral-v1",
    [CHAT_MISTRAL_V3] = "mistral-v3",
    [CHAT_MISTRAL_V3_TEKKEN] = "mistral-v3-tekken",
    [CHAT_MISTRAL_V7] = "mistral-v7",
    [CHAT_MISTRAL_V7_TEKKEN] = "mistral-v7-tekken",
    [CHAT_PHI3] = "phi3",
    [CHAT_ZEPHYR] = "zephyr",
};

struct lq_chat_template {
    chat_kind kind;
    char *default_system; /* chatml: the system turn the template inserts when there is none */
    char date[32];        /* llama3.1: "Today Date: ..." */
    bool strip;           /* llama2: content.strip() */
    bool bos_per_turn;    /* llama2: bos_token + '[INST] ' on every user turn */
    bool bos_first;       /* llama2 (plain): {{ bos_token }} once at the start */
    bool eos_in_template; /* zephyr: turns end with eos_token (else the literal <|endoftext|>) */
};

/* ---- detection ---------------------------------------------------------------------------- */

static bool has(const char *s, const char *needle) { return strstr(s, needle) != NULL; }

/* The text of a Jinja string literal starting at p up to `end` (exclusive), with the escapes
 * templates use (\n, \', \", \\) undone. NULL if the literal holds a quote, i.e. it is not one
 * literal but an expression. */
static char *literal_text(const char *p, const char *end) {
    char *out = malloc((size_t)(end - p) + 1);
    if (!out) return NULL;
    size_t n = 0;
    for (; p < end; p++) {
        if (*p == '\'' || *p == '"') {
            free(out);
            return NULL;
        }
        if (*p == '\\' && p + 1 < end) {
            p++;
            out[n++] = *p == 'n' ? '\n' : *p == 't' ? '\t' : *p;
        } else {
            out[n++] = *p;
        }
    }
    out[n] = 0;
    return out;
}

/* ChatML templates that insert a system turn of their own when the conversation has none
 * (SmolLM2, Qwen2.5) spell it as one literal: '<|im_start|>system\n<text><|im_end|>'. The
 * literal that writes a given system message is an expression ('...system\n' + messages[0]
 * ...), so the first literal with text and no quote is the default. */
static char *chatml_default_system(const char *tmpl) {
    static const char head[] = "<|im_start|>system";
    for (const char *p = strstr(tmpl, head); p; p = strstr(p + 1, head)) {
        const char *q = p + sizeof head - 1;
        if (*q == '\n') q++;
        else if (q[0] == '\\' && q[1] == 'n') q += 2;
        else continue;
        const char *end = strstr(q, "<|im_end|>");
        if (!end || end == q) continue;
        char *text = literal_text(q, end);
        if (text) return text;
    }
    return NULL;
}

/* Llama 3.1's system header carries a date: transformers defines strftime_now, so a template
 * that calls it (Llama 3.2, 3.3) gets today's date; else the template's literal (3.1:
 * {%- set date_string = "26 Jul 2024" %}). */
static void llama31_date(const char *tmpl, char *out, size_t cap) {
    if (has(tmpl, "strftime_now")) {
        time_t now = time(NULL);
        struct tm tm;
        if (localtime_r(&now, &tm) && strftime(out, cap, "%d %b %Y", &tm) > 0) return;
    }
    const char *p = strstr(tmpl, "date_string = \"");
    if (p) {
        p += strlen("date_string = \"");
        const char *e = strchr(p, '"');
        if (e && (size_t)(e - p) < cap) {
            memcpy(out, p, (size_t)(e - p));
            out[e - p] = 0;
            return;
        }
    }
    snprintf(out, cap, "26 Jul 2024");
}

/* Families whose marker strings llama.cpp recognizes but that are not implemented here: named in
 * the refusal, so the message says what the template is. */
static const char *known_unsupported(const char *t) {
    if (has(t, "<|im_start|>") && has(t, "<|im_sep|>")) return "phi4";
    if (has(t, "<|im_start|>") && has(t, "<end_of_utterance>")) return "smolvlm";
    if (has(t, "[gMASK]")) return "chatglm";
    if (has(t, "<|START_OF_TURN_TOKEN|>")) return "command-r";
    if (has(t, "<|start_of_role|>")) return "granite";
    if (has(t, "<|header_start|>")) return "llama4";
    if (has(t, "<|start|>") && has(t, "<|channel|>")) return "gpt-oss";
    return NULL;
}

static int detect(const char *t, lq_chat_template *c) {
    if (known_unsupported(t)) return -1;
    if (has(t, "<|im_start|>")) return CHAT_CHATML;
    if (strncmp(t, "mistral", 7) == 0 || has(t, "[INST]")) {
        if (has(t, "[SYSTEM_PROMPT]"))
            return has(t, "[SYSTEM_PROMPT] ") ? CHAT_MISTRAL_V7 : CHAT_MISTRAL_V7_TEKKEN;
        /* the official v1 / v3 / v3-tekken templates (mistralai cookbook) */
        if (has(t, "' [INST] ' + system_message") || has(t, "[AVAILABLE_TOOLS]")) {
            if (has(t, " [INST]")) return CHAT_MISTRAL_V1;
            if (has(t, "\"[INST]\"")) return CHAT_MISTRAL_V3_TEKKEN;
            return CHAT_MISTRAL_V3;
        }
        c->strip = has(t, "content.strip()");
        c->bos_per_turn = has(t, "bos_token + '[INST]");
        c->bos_first = !c->bos_per_turn && has(t, "bos_token");
        return has(t, "<<SYS>>") ? CHAT_LLAMA2_SYS : CHAT_LLAMA2;
    }
    if (has(t, "<|assistant|>") && has(t, "<|end|>")) return CHAT_PHI3;
    /* zephyr (HuggingFaceH4, TinyLlama): turns end with eos_token; StableLM's with <|endoftext|> */
    if (has(t, "<|user|>") && has(t, "<|assistant|>") &&
        (has(t, "eos_token") || has(t, "<|endoftext|>"))) {
        c->eos_in_template = !has(t, "<|endoftext|>");
        return CHAT_ZEPHYR;
    }
    if (has(t, "<start_of_turn>")) return CHAT_GEMMA;
    if (has(t, "<|start_header_id|>") && has(t, "<|end_header_id|>"))
        return has(t, "Cutting Knowledge Date") ? CHAT_LLAMA31 : CHAT_LLAMA3;
    return -1;
}

/* The first characters of the template, on one line, for the refusal. */
static void quote_start(const char *t, char *out, size_t cap) {
    size_t n = 0;
    for (; *t && n + 5 < cap && n < 60; t++) {
        unsigned char ch = (unsigned char)*t;
        if (ch == '\n') { out[n++] = '\\'; out[n++] = 'n'; }
        else if (ch < 0x20) out[n++] = ' ';
        else out[n++] = (char)ch;
    }
    out[n] = 0;
    if (*t) snprintf(out + n, cap - n, "...");
}

lq_status lq_chat_template_parse(const char *tmpl, const char *what, lq_chat_template **out) {
    *out = NULL;
    const char *src = what ? what : "chat template";
    if (!tmpl || !*tmpl) return lq_fail(LQ_ERR_INVALID_ARG, "%s: the chat template is empty", src);
    lq_chat_template *c = calloc(1, sizeof *c);
    if (!c) return lq_fail(LQ_ERR_NOMEM, "%s: out of memory", src);
    int kind = -1;
    for (int k = 0; k < CHAT_COUNT; k++)
        if (strcmp(tmpl, kind_names[k]) == 0) kind = k;
    if (kind < 0) {
        kind = detect(tmpl, c);
    } else if (kind == CHAT_LLAMA2 || kind == CHAT_LLAMA2_SYS) { /* by name: Llama-2-chat */
        c->strip = c->bos_per_turn = true;
    } else if (kind == CHAT_ZEPHYR) {
        c->eos_in_template = true;
    }
    if (kind < 0) {
        char start[80];
        quote_start(tmpl, start, sizeof start);
        const char *fam = known_unsupported(tmpl);
        free(c);
        if (fam)
            return lq_fail(LQ_ERR_UNSUPPORTED, "%s: the %s chat template is not supported "
                           "(template starts \"%s\")", src, fam, start);
        return lq_fail(LQ_ERR_UNSUPPORTED,
                       "%s: unknown chat template (starts \"%s\"); supported: chatml, gemma, "
                       "llama3, llama2, mistral-v1/v3/v7, phi3, zephyr (--chat-template NAME "
                       "picks one)", src, start);
    }
    c->kind = (chat_kind)kind;
    if (c->kind == CHAT_CHATML) c->default_system = chatml_default_system(tmpl);
    if (c->kind == CHAT_LLAMA31) llama31_date(tmpl, c->date, sizeof c->date);
    *out = c;
    return LQ_OK;
}

void lq_chat_template_free(lq_chat_template *t) {
    if (!t) return;
    free(t->default_system);
    free(t);
}

const char *lq_chat_template_name(const lq_chat_template *t) { return kind_names[t->kind]; }

const char *lq_chat_template_default_system(const lq_chat_template *t) {
    return t->default_system;
}

void lq_chat_template_drop_default_system(lq_chat_template *t) {
    free(t->default_system);
    t->default_system = NULL;
}

const char *lq_chat_template_end_of_turn(const lq_chat_template *t, const char *eos_text) {
    switch (t->kind) {
    case CHAT_CHATML: return "<|im_end|>";
    case CHAT_GEMMA: return "<end_of_turn>";
    case CHAT_LLAMA3:
    case CHAT_LLAMA31: return "<|eot_id|>";
    case CHAT_PHI3: return "<|end|>";
    case CHAT_ZEPHYR: return t->eos_in_template ? eos_text : "<|endoftext|>";
    default: return eos_text;
    }
}

/* ---- rendering ---------------------------------------------------------------------------- */

typedef struct sbuf {
    char *p;
    size_t n, cap;
    bool oom;
} sbuf;

static void put_n(sbuf *b, const char *s, size_t len) {
    if (b->oom || len == 0) return;
    if (b->n + len + 1 > b->cap) {
        size_t cap = (b->n + len + 1) * 2;
        char *p = realloc(b->p, cap);
        if (!p) {
            b->oom = true;
            return;
        }
        b->p = p;
        b->cap = cap;
    }
    memcpy(b->p + b->n, s, len);
    b->n += len;
    b->p[b->n] = 0;
}

static void put(sbuf *b, const char *s) {
    if (s) put_n(b, s, strlen(s));
}

/* Python's str.strip() (Jinja's trim filter): the characters str.isspace() accepts, ASCII
 * (space, \t \n \v \f \r, the separators \x1c-\x1f) and Unicode (U+0085, U+00A0, U+1680,
 * U+2000-U+200A, U+2028, U+2029, U+202F, U+205F, U+3000), the latter in UTF-8. */
static bool py_space_cp(uint32_t c) {
    return c == ' ' || (c >= 9 && c <= 13) || (c >= 28 && c <= 31) || c == 0x85 || c == 0xA0 ||
           c == 0x1680 || (c >= 0x2000 && c <= 0x200A) || c == 0x2028 || c == 0x2029 ||
           c == 0x202F || c == 0x205F || c == 0x3000;
}

/* The code point of the UTF-8 sequence of `n` bytes at p (n from its lead byte), or -1 when the
 * bytes are not one well-formed sequence of the whitespace lengths (1 to 3 bytes). */
static int32_t utf8_at(const unsigned char *p, size_t n) {
    if (n == 1) return p[0] < 0x80 ? p[0] : -1;
    if (n == 2 && (p[0] & 0xE0) == 0xC0 && (p[1] & 0xC0) == 0x80)
        return ((p[0] & 0x1F) << 6) | (p[1] & 0x3F);
    if (n == 3 && (p[0] & 0xF0) == 0xE0 && (p[1] & 0xC0) == 0x80 && (p[2] & 0xC0) == 0x80)
        return ((p[0] & 0x0F) << 12) | ((p[1] & 0x3F) << 6) | (p[2] & 0x3F);
    return -1;
}

/* Bytes of a whitespace character starting at s[a] (at most `left` bytes), 0 if none. */
static size_t space_len(const unsigned char *s, size_t left) {
    size_t n = s[0] < 0x80 ? 1 : (s[0] & 0xE0) == 0xC0 ? 2 : (s[0] & 0xF0) == 0xE0 ? 3 : 0;
    if (n == 0 || n > left) return 0;
    int32_t c = utf8_at(s, n);
    return c >= 0 && py_space_cp((uint32_t)c) ? n : 0;
}

/* Bytes of a whitespace character ending just before s[e] (looking back at most e bytes). */
static size_t space_len_back(const unsigned char *s, size_t e) {
    for (size_t n = 1; n <= 3 && n <= e; n++)
        if (space_len(s + e - n, n) == n) return n;
    return 0;
}

static void put_trim(sbuf *b, const char *str) {
    const unsigned char *s = (const unsigned char *)str;
    size_t a = 0, e = strlen(str), k;
    while (a < e && (k = space_len(s + a, e - a)) > 0) a += k;
    while (e > a && (k = space_len_back(s + a, e - a)) > 0) e -= k;
    put_n(b, str + a, e - a);
}

/* Messages after the system one; *sys is its content or NULL. */
typedef struct conv {
    const lq_chat_msg *m;
    int n;
    const char *sys;
} conv;

static bool is_role(const lq_chat_msg *m, const char *r) { return strcmp(m->role, r) == 0; }

static void render_chatml(const lq_chat_template *t, const conv *c, sbuf *b, bool gen) {
    const char *sys = c->sys ? c->sys : t->default_system;
    if (sys) {
        put(b, "<|im_start|>system\n");
        put(b, sys);
        put(b, "<|im_end|>\n");
    }
    for (int i = 0; i < c->n; i++) {
        put(b, "<|im_start|>");
        put(b, c->m[i].role);
        put(b, "\n");
        put(b, c->m[i].content);
        put(b, "<|im_end|>\n");
    }
    if (gen) put(b, "<|im_start|>assistant\n");
}

/* Gemma 3: the system message, then a blank line, opens the first turn; every content trimmed.
 * Gemma 1/2 templates refuse a system message; it is placed the same way (llama.cpp does so). */
static void render_gemma(const conv *c, sbuf *b, const char *bos, bool gen) {
    put(b, bos);
    for (int i = 0; i < c->n; i++) {
        put(b, "<start_of_turn>");
        put(b, is_role(&c->m[i], "assistant") ? "model" : c->m[i].role);
        put(b, "\n");
        if (i == 0 && c->sys) {
            put(b, c->sys);
            put(b, "\n\n");
        }
        put_trim(b, c->m[i].content);
        put(b, "<end_of_turn>\n");
    }
    if (gen) put(b, "<start_of_turn>model\n");
}

static void llama3_turn(sbuf *b, const char *role, const char *content) {
    put(b, "<|start_header_id|>");
    put(b, role);
    put(b, "<|end_header_id|>\n\n");
    put_trim(b, content);
    put(b, "<|eot_id|>");
}

/* Llama 3: BOS, then each message (trimmed) in its header; 3.1+ always opens with a system
 * header holding the knowledge cutoff and date before the (trimmed) system message. */
static void render_llama3(const lq_chat_template *t, const conv *c, sbuf *b, const char *bos,
                          bool gen) {
    put(b, bos);
    if (t->kind == CHAT_LLAMA31) {
        put(b, "<|start_header_id|>system<|end_header_id|>\n\nCutting Knowledge Date: "
               "December 2023\nToday Date: ");
        put(b, t->date);
        put(b, "\n\n");
        if (c->sys) put_trim(b, c->sys);
        put(b, "<|eot_id|>");
    } else if (c->sys) {
        llama3_turn(b, "system", c->sys);
    }
    for (int i = 0; i < c->n; i++) llama3_turn(b, c->m[i].role, c->m[i].content);
    if (gen) put(b, "<|start_header_id|>assistant<|end_header_id|>\n\n");
}

static void put_maybe_strip(sbuf *b, const char *s, bool strip) {
    if (strip) put_trim(b, s);
    else put(b, s);
}

/* Llama-2-chat: bos_token + '[INST] ' + content.strip() + ' [/INST]' per user turn, the first
 * one's content being '<<SYS>>\n' + system + '\n<</SYS>>\n\n' + message (stripped whole);
 * ' ' + answer.strip() + ' ' + eos_token per assistant turn. The plain form (old Mistral
 * Instruct) has one BOS, no spaces around the answer, and no system block. */
static lq_status render_llama2(const lq_chat_template *t, const conv *c, sbuf *b,
                               const char *bos, const char *eos) {
    bool sys_block = t->kind == CHAT_LLAMA2_SYS;
    if (t->bos_first) put(b, bos);
    for (int i = 0; i < c->n; i++) {
        const char *content = c->m[i].content;
        if (is_role(&c->m[i], "user")) {
            if (t->bos_per_turn) put(b, bos);
            put(b, "[INST] ");
            if (i == 0 && c->sys) {
                sbuf u = {0};
                put(&u, sys_block ? "<<SYS>>\n" : "");
                put(&u, c->sys);
                put(&u, sys_block ? "\n<</SYS>>\n\n" : "\n");
                put(&u, content);
                if (u.oom) return lq_fail(LQ_ERR_NOMEM, "chat template: out of memory");
                put_maybe_strip(b, u.p ? u.p : "", t->strip);
                free(u.p);
            } else {
                put_maybe_strip(b, content, t->strip);
            }
            put(b, " [/INST]");
        } else {
            if (sys_block) put(b, " ");
            put_maybe_strip(b, content, t->strip);
            if (sys_block) put(b, " ");
            put(b, eos);
        }
    }
    return LQ_OK;
}

/* The mistralai templates: v1 ' [INST] ' with the system message before the first user message;
 * v3 / v3-tekken put it into the last message when that is a user one (loop.last; else it is
 * dropped, as there); v7 has its own [SYSTEM_PROMPT] block.
 * Tekken variants have no spaces around the markers; v3 trims answers. */
static void render_mistral(const lq_chat_template *t, const conv *c, sbuf *b, const char *bos,
                           const char *eos) {
    bool v1 = t->kind == CHAT_MISTRAL_V1, v7 = t->kind == CHAT_MISTRAL_V7 ||
                                                t->kind == CHAT_MISTRAL_V7_TEKKEN;
    bool tekken = t->kind == CHAT_MISTRAL_V3_TEKKEN || t->kind == CHAT_MISTRAL_V7_TEKKEN;
    const char *sp = tekken ? "" : " ";
    put(b, bos);
    if (v7 && c->sys) {
        put(b, "[SYSTEM_PROMPT]");
        put(b, sp);
        put(b, c->sys);
        put(b, "[/SYSTEM_PROMPT]");
    }
    int first_user = -1;
    for (int i = 0; i < c->n && first_user < 0; i++)
        if (is_role(&c->m[i], "user")) first_user = i;
    for (int i = 0; i < c->n; i++) {
        if (is_role(&c->m[i], "user")) {
            put(b, v1 ? " [INST] " : "[INST]");
            if (!v1) put(b, sp);
            if (!v7 && c->sys && i == (v1 ? first_user : c->n - 1)) {
                put(b, c->sys);
                put(b, "\n\n");
            }
            put(b, c->m[i].content);
            put(b, v1 ? " [/INST]" : "[/INST]");
        } else {
            put(b, sp);
            if (t->kind == CHAT_MISTRAL_V3) put_trim(b, c->m[i].content);
            else put(b, c->m[i].content);
            put(b, eos);
        }
    }
}

/* Phi-3: <|role|>\n content <|end|>\n (an empty system message is left out); zephyr: the same
 * with EOS (or <|endoftext|>) ending each turn. */
static void render_phi3_zephyr(const lq_chat_template *t, const conv *c, sbuf *b,
                               const char *eos, bool gen) {
    const char *end = t->kind == CHAT_PHI3 ? "<|end|>" : lq_chat_template_end_of_turn(t, eos);
    if (c->sys && (t->kind != CHAT_PHI3 || *c->sys)) {
        put(b, "<|system|>\n");
        put(b, c->sys);
        put(b, end);
        put(b, "\n");
    }
    for (int i = 0; i < c->n; i++) {
        put(b, "<|");
        put(b, c->m[i].role);
        put(b, "|>\n");
        put(b, c->m[i].content);
        put(b, end);
        put(b, "\n");
    }
    if (gen) put(b, "<|assistant|>\n");
}

lq_status lq_chat_render(const lq_chat_template *t, const lq_chat_msg *msgs, int n,
                         const char *bos_text, const char *eos_text, bool add_generation_prompt,
                         char **out, size_t *len) {
    *out = NULL;
    if (len) *len = 0;
    if (n < 0 || (n > 0 && !msgs)) return lq_fail(LQ_ERR_INVALID_ARG, "chat: no messages");
    conv c = {.m = msgs, .n = n};
    for (int i = 0; i < n; i++) {
        if (!msgs[i].role || !msgs[i].content)
            return lq_fail(LQ_ERR_INVALID_ARG, "chat: message %d has no role or content", i);
        bool sys = is_role(&msgs[i], "system");
        if (sys && i > 0)
            return lq_fail(LQ_ERR_INVALID_ARG, "chat: a system message must come first "
                           "(message %d)", i);
        if (!sys && !is_role(&msgs[i], "user") && !is_role(&msgs[i], "assistant"))
            return lq_fail(LQ_ERR_INVALID_ARG, "chat: message %d has role '%s' (system, user "
                           "or assistant)", i, msgs[i].role);
    }
    if (n > 0 && is_role(&msgs[0], "system")) {
        c.sys = msgs[0].content;
        c.m++;
        c.n--;
    }
    const char *bos = bos_text ? bos_text : "", *eos = eos_text ? eos_text : "";
    sbuf b = {0};
    put_n(&b, "", 0);
    lq_status s = LQ_OK;
    switch (t->kind) {
    case CHAT_CHATML: render_chatml(t, &c, &b, add_generation_prompt); break;
    case CHAT_GEMMA: render_gemma(&c, &b, bos, add_generation_prompt); break;
    case CHAT_LLAMA3:
    case CHAT_LLAMA31: render_llama3(t, &c, &b, bos, add_generation_prompt); break;
    case CHAT_LLAMA2:
    case CHAT_LLAMA2_SYS: s = render_llama2(t, &c, &b, bos, eos); break;
    case CHAT_MISTRAL_V1:
    case CHAT_MISTRAL_V3:
    case CHAT_MISTRAL_V3_TEKKEN:
    case CHAT_MISTRAL_V7:
    case CHAT_MISTRAL_V7_TEKKEN: render_mistral(t, &c, &b, bos, eos); break;
    case CHAT_PHI3:
    case CHAT_ZEPHYR: render_phi3_zephyr(t, &c, &b, eos, add_generation_prompt); break;
    default: s = lq_fail(LQ_ERR_UNSUPPORTED, "chat: template kind %d", (int)t->kind);
    }
    if (s == LQ_OK && b.oom) s = lq_fail(LQ_ERR_NOMEM, "chat: out of memory rendering %d messages", n);
    if (s != LQ_OK) {
        free(b.p);
        return s;
    }
    if (!b.p && !(b.p = calloc(1, 1))) return lq_fail(LQ_ERR_NOMEM, "chat: out of memory");
    *out = b.p;
    if (len) *len = b.n;
    return LQ_OK;
}
