/* checkpoint_hf.c - Hugging Face directory: config.json + model.safetensors, or the shards listed
 * by model.safetensors.index.json. Tensors are views into the mapped shards. */
#include "checkpoint_internal.h"

#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#define LQ_MAX_CONFIG_BYTES ((size_t)16 << 20)

static char *join(const char *dir, const char *name) {
    size_t n = strlen(dir) + strlen(name) + 2;
    char *p = malloc(n);
    if (p) snprintf(p, n, "%s/%s", dir, name);
    return p;
}

static bool file_exists(const char *path) {
    struct stat sb;
    return stat(path, &sb) == 0 && S_ISREG(sb.st_mode);
}

static bool has_suffix(const char *s, const char *suf) {
    size_t n = strlen(s), k = strlen(suf);
    return n >= k && strcmp(s + n - k, suf) == 0;
}

/* Tensors stored once under another name. safetensors refuses shared storage, so transformers
 * (safetensors' _remove_duplicate_names) saves a tied tensor once and records the dropped name in
 * __metadata__ as {"model.embed_tokens.weight": "lm_head.weight"}: the dropped name becomes a
 * second view of the kept tensor. A tensor-like key (".weight" / ".bias") that is not itself a
 * tensor must name one of this shard's tensors; other entries ("format": "pt") are not aliases. */
static lq_status add_aliases(lq_checkpoint *c, const lq_st_file *f) {
    const char *key, *val;
    for (int64_t i = 0; lq_st_metadata_at(f, i, &key, &val); i++) {
        if (!(has_suffix(key, ".weight") || has_suffix(key, ".bias")) || lq_checkpoint_find(c, key)) continue;
        const lq_tensor *target = val ? lq_st_find(f, val) : NULL;
        if (!target)
            return lq_fail(LQ_ERR_FORMAT, "%s: __metadata__ names tensor '%s' an alias of '%s', which is not "
                           "in the file", lq_st_path(f), key, val ? val : "(not a string)");
        lq_tensor t = *target;
        t.name = key; /* owned by the shard's metadata, alive as long as the shard */
        LQ_TRY(lq_ckpt_push(c, &t));
    }
    return LQ_OK;
}

/* Map one shard and append its tensors; a name already seen in an earlier shard is an error. */
static lq_status add_shard(lq_checkpoint *c, const char *path) {
    lq_st_file **ns = realloc(c->shards, (size_t)(c->n_shards + 1) * sizeof *ns);
    if (!ns) return lq_fail(LQ_ERR_NOMEM, "%s: out of memory", path);
    c->shards = ns;
    lq_st_file *f;
    LQ_TRY(lq_st_open(path, &f));
    c->shards[c->n_shards++] = f;
    c->file_bytes += lq_st_file_size(f);
    for (int64_t i = 0; i < lq_st_count(f); i++) {
        const lq_tensor *t = lq_st_get(f, i);
        if (lq_checkpoint_find(c, t->name))
            return lq_fail(LQ_ERR_FORMAT, "%s: tensor '%s': also present in an earlier shard", path, t->name);
        LQ_TRY(lq_ckpt_push(c, t));
    }
    return add_aliases(c, f);
}

/* A shard file name from the index must stay inside the directory. */
static bool safe_shard_name(const char *s) {
    return s[0] && s[0] != '.' && !strchr(s, '/') && !strchr(s, '\\');
}

static lq_status load_index(lq_checkpoint *c, const char *dir, const char *index_path) {
    char *text;
    LQ_TRY(lq_read_text_file(index_path, LQ_MAX_CONFIG_BYTES, &text, NULL));
    json_error_t jerr;
    json_t *root = json_loads(text, 0, &jerr);
    free(text);
    if (!root)
        return lq_fail(LQ_ERR_FORMAT, "%s: not valid JSON (line %d col %d: %s)", index_path, jerr.line,
                       jerr.column, jerr.text);
    lq_status st = LQ_OK;
    json_t *wm = json_object_get(root, "weight_map");
    json_t *opened = json_object(); /* shard name -> true, in first-seen order */
    if (!json_is_object(wm)) {
        st = lq_fail(LQ_ERR_FORMAT, "%s: no \"weight_map\" object", index_path);
        goto done;
    }
    const char *name;
    json_t *shard;
    json_object_foreach(wm, name, shard) {
        if (!json_is_string(shard) || !safe_shard_name(json_string_value(shard))) {
            st = lq_fail(LQ_ERR_FORMAT, "%s: tensor '%s': bad shard file name", index_path, name);
            goto done;
        }
        const char *sn = json_string_value(shard);
        if (json_object_get(opened, sn)) continue;
        json_object_set_new(opened, sn, json_true());
        char *sp = join(dir, sn);
        if (!sp) {
            st = lq_fail(LQ_ERR_NOMEM, "%s: out of memory", index_path);
            goto done;
        }
        st = add_shard(c, sp);
        free(sp);
        if (st != LQ_OK) goto done;
    }
    /* Every tensor the index promises must be in the shard it names. */
    json_object_foreach(wm, name, shard) {
        const lq_tensor *t = lq_checkpoint_find(c, name);
        bool in_shard = false;
        if (t) {
            for (int i = 0; i < c->n_shards && !in_shard; i++) {
                const char *p = lq_st_path(c->shards[i]);
                const char *base = strrchr(p, '/');
                in_shard = strcmp(base ? base + 1 : p, json_string_value(shard)) == 0 &&
                           lq_st_find(c->shards[i], name) != NULL;
            }
        }
        if (!in_shard) {
            st = lq_fail(LQ_ERR_FORMAT, "%s: tensor '%s': listed in weight_map but not in shard %s",
                         index_path, name, json_string_value(shard));
            goto done;
        }
    }
done:
    json_decref(opened);
    json_decref(root);
    return st;
}

lq_status lq_ckpt_load_hf(lq_checkpoint *c, const char *dir) {
    c->kind = LQ_CKPT_HF_DIR;
    char *cfg_path = join(dir, "config.json");
    char *single = join(dir, "model.safetensors");
    char *index = join(dir, "model.safetensors.index.json");
    lq_status st = LQ_OK;
    if (!cfg_path || !single || !index) {
        st = lq_fail(LQ_ERR_NOMEM, "%s: out of memory", dir);
        goto done;
    }
    st = lq_read_text_file(cfg_path, LQ_MAX_CONFIG_BYTES, &c->config_json, NULL);
    if (st != LQ_OK) goto done;
    st = lq_config_parse_json(c->config_json, cfg_path, &c->cfg);
    if (st != LQ_OK) goto done;
    if (file_exists(single)) st = add_shard(c, single);
    else if (file_exists(index)) st = load_index(c, dir, index);
    else st = lq_fail(LQ_ERR_NOT_FOUND, "%s: no model.safetensors or model.safetensors.index.json", dir);
done:
    free(cfg_path);
    free(single);
    free(index);
    return st;
}
