/* tool_sample.c - decoding options shared by quant-run and quant-distill (tool_sample.h). */
#include "tool_sample.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

void tool_sample_args_init(tool_sample_args *s) {
    *s = (tool_sample_args){.sp = lq_sample_params_default(), .beams = 1, .n_best = 1,
                            .length_penalty = 1.0f};
}

bool tool_sample_arg(tool_args *t, tool_sample_args *s, int *rc) {
    bool ok = true;
    *rc = 0;
    if (tool_args_value(t, "--temperature")) {
        ok = tool_parse_float(t->value, 0, 100, &s->sp.temperature);
        s->set_temp = true;
    } else if (tool_args_value(t, "--top-k")) {
        ok = tool_parse_int(t->value, 0, &s->sp.top_k);
        s->set_k = true;
    } else if (tool_args_value(t, "--top-p")) {
        ok = tool_parse_float(t->value, 1e-6f, 1, &s->sp.top_p);
        s->set_p = true;
    } else if (tool_args_value(t, "--min-p")) {
        ok = tool_parse_float(t->value, 0, 1, &s->sp.min_p);
        s->set_minp = true;
    } else if (tool_args_value(t, "--seed")) {
        ok = tool_parse_u64(t->value, &s->sp.seed);
        s->set_seed = true;
    } else if (tool_args_value(t, "--repeat-penalty")) {
        ok = tool_parse_float(t->value, 1e-3f, 100, &s->sp.repeat_penalty);
        s->set_penalty = true;
    } else if (tool_args_value(t, "--repeat-last-n")) {
        ok = tool_parse_int(t->value, 0, &s->sp.repeat_last_n);
    } else if (tool_args_value(t, "--beams")) {
        ok = tool_parse_int(t->value, 1, &s->beams);
    } else if (tool_args_value(t, "--n-best")) {
        ok = tool_parse_int(t->value, 1, &s->n_best);
        s->set_beam_opts = true;
    } else if (tool_args_value(t, "--length-penalty")) {
        ok = tool_parse_float(t->value, -10, 10, &s->length_penalty);
        s->set_beam_opts = true;
    } else {
        return false;
    }
    if (!ok) *rc = tool_args_bad_value(t);
    return true;
}

int tool_sample_finish(tool_sample_args *s, bool clock_seed) {
    s->sampling = s->set_temp || s->set_k || s->set_p || s->set_minp || s->set_seed;
    if (s->beams > 1 && (s->sampling || s->set_penalty))
        return tool_bad_args("--beams scores raw log-probabilities: it takes no sampling or "
                             "penalty options");
    if (s->set_beam_opts && s->beams == 1)
        return tool_bad_args("--n-best and --length-penalty need --beams N with N > 1");
    if (s->n_best > s->beams)
        return tool_bad_args("--n-best %d is more than --beams %d", s->n_best, s->beams);
    if (s->sampling) {
        if (!s->set_temp) s->sp.temperature = TOOL_SAMPLE_DEF_TEMPERATURE;
        if (!s->set_k) s->sp.top_k = TOOL_SAMPLE_DEF_TOP_K;
        if (!s->set_p) s->sp.top_p = TOOL_SAMPLE_DEF_TOP_P;
        if (!s->set_minp) s->sp.min_p = TOOL_SAMPLE_DEF_MIN_P;
        if (!s->set_seed)
            s->sp.seed = clock_seed ? ((uint64_t)time(NULL) << 20) ^ (uint64_t)getpid() : 0;
    }
    return 0;
}

void tool_sample_usage(FILE *f) {
    fprintf(f,
            "  --temperature T       0 = greedy; usual 0.7-1.0 (sampling default %.1f)\n"
            "  --top-k K             keep the K most likely tokens, 0 = off (default %d)\n"
            "  --top-p P             keep the smallest set with probability mass >= P, 1 = off\n"
            "                        (default %.2f)\n"
            "  --min-p P             keep tokens with probability >= P x the top one, 0 = off\n"
            "                        (default %.2f)\n"
            "  --seed S              random seed (64-bit)\n"
            "  --repeat-penalty R    CTRL repetition penalty over the last --repeat-last-n tokens\n"
            "                        (default 1 = off; usual 1.05-1.3)\n"
            "  --repeat-last-n N     tokens of context the penalty looks at (default 64)\n"
            "  --beams N             beam search with N beams (no sampling options)\n"
            "  --length-penalty A    rank hypotheses by log-prob / length^A (default 1.0)\n",
            TOOL_SAMPLE_DEF_TEMPERATURE, TOOL_SAMPLE_DEF_TOP_K, TOOL_SAMPLE_DEF_TOP_P,
            TOOL_SAMPLE_DEF_MIN_P);
}

json_t *tool_json_float(float x) {
    char buf[32];
    snprintf(buf, sizeof buf, "%.7g", x);
    return json_real(strtod(buf, NULL));
}

json_t *tool_json_text(const char *bytes, size_t len, bool *lossy) {
    char *buf = malloc(len * 3 + 1);
    if (!buf) return json_null();
    size_t n = lq_utf8_repair(bytes, len, buf, lossy);
    json_t *j = json_stringn(buf, n);
    free(buf);
    return j ? j : json_null();
}
