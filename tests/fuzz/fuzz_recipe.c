/* fuzz_recipe.c - libFuzzer target: arbitrary bytes as a YAML recipe. lq_recipe_parse must either
 * fail with a one-line message naming the file, or yield a recipe whose every field can be read
 * (and freed: LeakSanitizer checks both paths). Seeds: recipes/ and tests/fuzz/corpus/recipe/. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "libquant/lq_recipe.h"
#include "libquant/lq_targets.h"

static volatile uint64_t g_sink;

static void touch_list(char **l, int n) {
    for (int i = 0; i < n; i++) g_sink += strlen(l[i]);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    lq_recipe r;
    lq_status s = lq_recipe_parse((const char *)data, size, "f.yaml", &r);
    if (s != LQ_OK) {
        const char *msg = lq_last_error();
        /* A clear error: one line that says where. */
        if (!*msg || strchr(msg, '\n') || !strstr(msg, "f.yaml")) {
            fprintf(stderr, "bad message: '%s'\n", msg);
            abort();
        }
        return 0;
    }
    for (int i = 0; i < r.n_stages; i++) {
        const lq_recipe_stage *st = &r.stages[i];
        g_sink += st->pos.line + strlen(st->name);
        touch_list(st->eval.files, st->eval.n_files);
        touch_list(st->distill.files, st->distill.n_files);
        for (int j = 0; j < st->n_mods; j++) {
            const lq_recipe_modifier *m = &st->mods[j];
            touch_list(m->targets, m->n_targets);
            touch_list(m->ignore, m->n_ignore);
            /* Every accepted pattern compiles (the parser checked it) and matches without error. */
            for (int k = 0; k < m->n_targets; k++) {
                bool hit;
                if (lq_target_match_spec(m->targets[k], "model.layers.0.mlp.down_proj", LQ_MODULE_LINEAR, &hit) != LQ_OK)
                    abort();
                g_sink += hit;
            }
        }
    }
    g_sink += lq_recipe_check_available(&r);
    lq_recipe_free(&r);
    return 0;
}
