/* quant-distill - run a teacher model over a corpus and store what a student learns from:
 * top-k soft labels per position (+ the log of the remaining mass) and optionally hidden
 * states of chosen layers (f16), in resumable zlib-compressed shards (docs/DISTILL_FORMAT.md).
 *
 *   quant-distill --model PATH [--tokenizer F] --file TEXT --out DIR [--k 32] [--ctx N]
 *                 [--per-line [--separator S]] [--features L,L] [--logp-dtype f32|f16] ...
 *   quant-distill --inspect PATH [--record I] [--positions N] [--json]
 */
#include "lq_eval.h"
#include "libquant/lq_distill.h"
#include "lq_blocks.h"
#include "tool_cli.h"

#include <jansson.h>
#include <math.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define TOOL "quant-distill"
/* Raw text per tokenizer call in chunked mode: big enough to amortize, small enough to bound
 * memory whatever the corpus size. */
#define PIECE_BYTES ((size_t)64 << 10)

static void usage(FILE *f) {
    fprintf(f,
        "usage: " TOOL " --model PATH [--tokenizer FILE] --file TEXT --out DIR [--k N]\n"
        "                     [--ctx N] [--per-line [--separator STR]] [--features L,L,...]\n"
        "                     [--logp-dtype f32|f16] [--block-kib N] [--shard-kib N]\n"
        "                     [--threads N] [--json]\n"
        "       " TOOL " --inspect PATH [--record I] [--positions N] [--json]\n"
        "\n"
        "Runs the teacher (--model) over the corpus (--file) and writes, for every position, the\n"
        "top-k next-token ids with their log-probabilities and the log of the mass outside the\n"
        "top-k, into DIR (manifest.json + shard-NNNNN.lqd; layout in docs/DISTILL_FORMAT.md).\n"
        "The corpus is streamed: memory does not grow with its size.\n"
        "  default           chunks: the text is read in line-aligned pieces, tokenized, and cut\n"
        "                    into records of BOS + (ctx - 1) tokens (ctx default 512)\n"
        "  --per-line        one record per non-empty line (or --separator unit), BOS first,\n"
        "                    cut into pieces of ctx tokens (ctx default: the model's context)\n"
        "  --k N             top-k per position (default 32, at most the vocabulary)\n"
        "  --features L,...  also store the residual stream after these layers as f16 (0 = after\n"
        "                    the first layer, n_layers = after the final norm)\n"
        "  --logp-dtype T    f32 (default) or f16 for the stored log-probs\n"
        "  --block-kib N     raw KiB per compressed block, the commit unit (default 1024)\n"
        "  --shard-kib N     seal a shard once it reaches this size (default 262144 = 256 MiB)\n"
        "Resuming: if DIR holds an unfinished run of the same teacher, tokenizer, corpus and\n"
        "settings, the run continues after its last commit; another teacher's DIR is refused.\n"
        "\n"
        "  --inspect PATH    print the dataset summary and record I (--record, default 0), the\n"
        "                    first --positions N positions (default 4; --json: all)\n"
        "  --model PATH      Hugging Face directory or llama2.c .bin\n"
        "  --tokenizer FILE  tokenizer.bin (required for a .bin model), tokenizer.json or .gguf\n"
        "  --threads N       worker threads (default: all CPUs)\n"
        "  --json            one JSON object on stdout\n"
        "  --help            this text\n"
        "\n"
        "Exit codes: 0 ok, 2 bad arguments, 3 bad input file, 4 I/O, 1 other.\n");
}

typedef struct args {
    const char *model, *tokenizer, *file, *out, *separator, *inspect, *features;
    int k, ctx, threads, block_kib, shard_kib, positions;
    int64_t record;
    int debug_stop_after; /* test hook: SIGKILL itself after adding this many records */
    bool per_line, json, f16;
} args;

static int parse_args(int argc, char **argv, args *a) {
    *a = (args){.k = LQ_DISTILL_DEFAULT_K, .block_kib = 1024, .shard_kib = 256 << 10, .positions = 4};
    tool_args t = tool_args_begin(argc, argv);
    while (tool_args_next(&t)) {
        int *num = NULL, min = 0;
        if (tool_args_help(&t)) { usage(stdout); return 0; }
        else if (tool_args_value(&t, "--model")) a->model = t.value;
        else if (tool_args_value(&t, "--tokenizer")) a->tokenizer = t.value;
        else if (tool_args_value(&t, "--file")) a->file = t.value;
        else if (tool_args_value(&t, "--out")) a->out = t.value;
        else if (tool_args_value(&t, "--separator")) a->separator = t.value;
        else if (tool_args_value(&t, "--inspect")) a->inspect = t.value;
        else if (tool_args_value(&t, "--features")) a->features = t.value;
        else if (tool_args_flag(&t, "--per-line")) a->per_line = true;
        else if (tool_args_flag(&t, "--json")) a->json = true;
        else if (tool_args_value(&t, "--logp-dtype")) {
            if (strcmp(t.value, "f16") == 0) a->f16 = true;
            else if (strcmp(t.value, "f32") != 0) return tool_args_bad_value(&t);
        }
        else if (tool_args_value(&t, "--record")) {
            uint64_t v;
            if (!tool_parse_u64(t.value, &v) || v > INT64_MAX) return tool_args_bad_value(&t);
            a->record = (int64_t)v;
        }
        else if (tool_args_value(&t, "--k")) { num = &a->k; min = 1; }
        else if (tool_args_value(&t, "--ctx")) { num = &a->ctx; min = 1; }
        else if (tool_args_value(&t, "--threads")) { num = &a->threads; min = 1; }
        else if (tool_args_value(&t, "--block-kib")) { num = &a->block_kib; min = 1; }
        else if (tool_args_value(&t, "--shard-kib")) { num = &a->shard_kib; min = 1; }
        else if (tool_args_value(&t, "--positions")) { num = &a->positions; min = 0; }
        else if (tool_args_value(&t, "--debug-stop-after")) { num = &a->debug_stop_after; min = 1; }
        else return tool_args_unknown(&t);
        if (num && !tool_parse_int(t.value, min, num)) return tool_args_bad_value(&t);
    }
    if (a->inspect) return -1;
    if (!a->model) return tool_bad_args("--model is required (or --inspect PATH)");
    if (!a->file) return tool_bad_args("--file TEXT is required");
    if (!a->out) return tool_bad_args("--out DIR is required");
    if (a->separator && !a->per_line) return tool_bad_args("--separator needs --per-line");
    return -1;
}

/* ---- inspect --------------------------------------------------------------------------------- */

static json_t *json_floats(const float *v, int64_t n) {
    json_t *a = json_array();
    for (int64_t i = 0; i < n; i++)
        json_array_append_new(a, isfinite(v[i]) ? json_real(v[i]) : json_null());
    return a;
}

static json_t *json_ints(const int32_t *v, int64_t n) {
    json_t *a = json_array();
    for (int64_t i = 0; i < n; i++) json_array_append_new(a, json_integer(v[i]));
    return a;
}

static int run_inspect(const args *a) {
    lq_distill_reader *r = NULL;
    lq_status s = lq_distill_open(a->inspect, &r);
    if (s != LQ_OK) return tool_fail(s);
    const lq_distill_meta *m = lq_distill_reader_meta(r);
    int64_t n_rec = lq_distill_count(r), n_tok = lq_distill_token_count(r);
    uint64_t bytes = lq_distill_file_bytes(r);
    if (a->record >= n_rec) {
        lq_distill_close(r);
        return tool_error(2, "%s: record %lld out of range (%lld records)", a->inspect,
                          (long long)a->record, (long long)n_rec);
    }
    lq_distill_record rec;
    s = lq_distill_get(r, a->record, &rec);
    if (s != LQ_OK) {
        lq_distill_close(r);
        return tool_fail(s);
    }
    int k = m->k;
    if (a->json) {
        json_t *j = json_object();
        char h[17];
        snprintf(h, sizeof h, "%016llx", (unsigned long long)m->teacher_id);
        json_object_set_new(j, "teacher_id", json_string(h));
        snprintf(h, sizeof h, "%016llx", (unsigned long long)m->tokenizer_hash);
        json_object_set_new(j, "tokenizer_hash", json_string(h));
        json_object_set_new(j, "teacher_name", json_string(m->teacher_name));
        json_object_set_new(j, "vocab", json_integer(m->vocab));
        json_object_set_new(j, "k", json_integer(k));
        json_object_set_new(j, "n_ctx", json_integer(m->n_ctx));
        json_object_set_new(j, "logp_dtype", json_string(lq_dtype_name(m->logp_dtype)));
        json_object_set_new(j, "feat_layers", json_ints(m->feat_layers, m->n_feat_layers));
        json_object_set_new(j, "records", json_integer(n_rec));
        json_object_set_new(j, "tokens", json_integer(n_tok));
        json_object_set_new(j, "bytes", json_integer((json_int_t)bytes));
        json_t *o = json_object();
        json_object_set_new(o, "index", json_integer(a->record));
        json_object_set_new(o, "source_offset", json_integer((json_int_t)rec.source_offset));
        json_object_set_new(o, "tokens", json_ints(rec.tokens, rec.n));
        json_t *pos = json_array();
        for (int t = 0; t < rec.n; t++) {
            json_t *p = json_object();
            json_object_set_new(p, "ids", json_ints(rec.topk_ids + (size_t)t * k, k));
            json_object_set_new(p, "logp", json_floats(rec.topk_logp + (size_t)t * k, k));
            json_object_set_new(p, "rest_logp", isfinite(rec.rest_logp[t])
                                                    ? json_real(rec.rest_logp[t]) : json_null());
            json_array_append_new(pos, p);
        }
        json_object_set_new(o, "positions", pos);
        if (rec.features) {
            json_t *fa = json_array();
            size_t per = (size_t)rec.n * (size_t)m->dim;
            for (int l = 0; l < m->n_feat_layers; l++) {
                json_t *row = json_array();
                for (size_t i = 0; i < per; i++)
                    json_array_append_new(row, json_real(lq_f16_to_f32(rec.features[l * per + i])));
                json_array_append_new(fa, row);
            }
            json_object_set_new(o, "features", fa);
        }
        json_object_set_new(j, "record", o);
        char *txt = json_dumps(j, JSON_COMPACT | JSON_PRESERVE_ORDER);
        json_decref(j);
        if (txt) printf("%s\n", txt);
        free(txt);
    } else {
        printf("dataset: %s\n", a->inspect);
        printf("teacher: %016llx (%s), tokenizer %016llx, vocab %d, k %d, ctx %d, mode %s, "
               "log-probs %s, %d feature layers\n", (unsigned long long)m->teacher_id,
               m->teacher_name, (unsigned long long)m->tokenizer_hash, m->vocab, k, m->n_ctx,
               m->mode == LQ_DISTILL_MODE_CHUNKS ? "chunks" : "per-unit",
               lq_dtype_name(m->logp_dtype), m->n_feat_layers);
        printf("records: %lld, tokens: %lld, bytes: %llu (%.1f bytes/token)\n",
               (long long)n_rec, (long long)n_tok, (unsigned long long)bytes,
               n_tok > 0 ? (double)bytes / (double)n_tok : 0.0);
        printf("record %lld: %d tokens from corpus byte %llu\n", (long long)a->record, rec.n,
               (unsigned long long)rec.source_offset);
        int show = a->positions < rec.n ? a->positions : rec.n;
        for (int t = 0; t < show; t++) {
            printf("  pos %d token %d -> next %d:", t, rec.tokens[t],
                   t + 1 < rec.n ? rec.tokens[t + 1] : -1);
            int kk = k < 5 ? k : 5;
            for (int i = 0; i < kk; i++)
                printf(" %d:%.4f", rec.topk_ids[(size_t)t * k + i],
                       rec.topk_logp[(size_t)t * k + i]);
            printf("%s rest %.4f\n", k > kk ? " ..." : "", rec.rest_logp[t]);
        }
    }
    lq_distill_close(r);
    return 0;
}

/* ---- distill --------------------------------------------------------------------------------- */

typedef struct run {
    const args *a;
    const lq_model *m;
    const lq_tokenizer *tok;
    lq_pool *pool;
    lq_session *sess;
    lq_distill_writer *w;
    lq_distill_meta meta;
    int vocab, k, ctx;
    float *logits;          /* (ctx, vocab) */
    int32_t *ids;           /* (ctx, k) */
    float *logp;            /* (ctx, k) */
    float *rest;            /* (ctx) */
    uint16_t *feat;         /* (n_feat_layers, ctx, dim) */
    int cur_n;              /* tokens of the record being computed (hook layout) */
    int64_t added;
    lq_progress bar;
} run;

static void feature_hook(void *user, int layer, const float *x, int n, int pos) {
    run *r = user;
    const lq_distill_meta *m = &r->meta;
    for (int l = 0; l < m->n_feat_layers; l++) {
        if (m->feat_layers[l] != layer) continue;
        size_t dim = (size_t)m->dim;
        uint16_t *dst = r->feat + ((size_t)l * (size_t)r->cur_n + (size_t)pos) * dim;
        for (size_t i = 0; i < (size_t)n * dim; i++) dst[i] = lq_f32_to_f16(x[i]);
    }
}

static void topk_task(void *ctx, int64_t t, int tid) {
    (void)tid;
    run *r = ctx;
    lq_distill_topk(r->logits + (size_t)t * (size_t)r->vocab, r->vocab, r->k,
                    r->ids + (size_t)t * (size_t)r->k, r->logp + (size_t)t * (size_t)r->k,
                    r->rest + t);
}

/* Forward one record's tokens at position 0 and add its soft labels (and features). */
static lq_status emit(run *r, const int32_t *tokens, int n, uint64_t source_offset) {
    r->cur_n = n;
    LQ_TRY(lq_forward(r->sess, tokens, n, 0, r->logits, true));
    lq_pool_run(r->pool, topk_task, r, n);
    lq_distill_record rec = {.n = n, .source_offset = source_offset, .tokens = tokens,
                             .topk_ids = r->ids, .topk_logp = r->logp, .rest_logp = r->rest,
                             .features = r->meta.n_feat_layers ? r->feat : NULL};
    LQ_TRY(lq_distill_writer_add(r->w, &rec));
    r->added++;
    if (r->a->debug_stop_after > 0 && r->added >= r->a->debug_stop_after)
        raise(SIGKILL); /* the resume test: die like a crash, no cleanup, no final commit */
    return LQ_OK;
}

static lq_status encode(const lq_tokenizer *tok, const char *text, size_t len, bool bos,
                        int32_t **ids, int64_t *cap, int64_t *n) {
    int64_t need = 0;
    lq_status s = lq_tokenizer_encode(tok, text, len, bos, false, *ids, *cap, &need);
    if (s == LQ_ERR_INVALID_ARG && need > *cap) {
        int32_t *nb = realloc(*ids, (size_t)need * sizeof *nb);
        if (!nb) return lq_fail(LQ_ERR_NOMEM, "cannot allocate %lld token ids", (long long)need);
        *ids = nb;
        *cap = need;
        s = lq_tokenizer_encode(tok, text, len, bos, false, *ids, *cap, &need);
    }
    *n = need;
    return s;
}

static lq_status run_per_line(run *r, uint64_t start) {
    const args *a = r->a;
    lq_corpus *c = NULL;
    LQ_TRY(lq_corpus_open(a->file, start, &c));
    bool bos = lq_tokenizer_bos(r->tok) >= 0;
    int32_t *ids = NULL;
    int64_t cap = 0, n = 0;
    char cursor[64];
    lq_status st = LQ_OK;
    uint64_t end = start;
    for (;;) {
        const char *text;
        size_t len;
        uint64_t uoff, noff;
        st = lq_corpus_next_unit(c, a->separator, &text, &len, &uoff, &noff);
        if (st != LQ_OK || !text) break;
        st = encode(r->tok, text, len, bos, &ids, &cap, &n);
        for (int64_t p = 0; p < n && st == LQ_OK; p += r->ctx) {
            int piece = (int)(n - p < r->ctx ? n - p : r->ctx);
            st = emit(r, ids + p, piece, uoff);
        }
        if (st != LQ_OK) break;
        end = noff;
        snprintf(cursor, sizeof cursor, "u %llu", (unsigned long long)end);
        st = lq_distill_writer_commit(r->w, cursor, false);
        if (st != LQ_OK) break;
        lq_progress_update(&r->bar, (int64_t)end);
    }
    if (st == LQ_OK) {
        snprintf(cursor, sizeof cursor, "u %llu", (unsigned long long)lq_corpus_size(c));
        st = lq_distill_writer_finish(r->w, cursor);
    }
    free(ids);
    lq_corpus_close(c);
    return st;
}

/* Chunked mode keeps an invariant that makes its cursor small: after each record, the tokens
 * left over are a suffix of the last piece read (a record takes `body` tokens, and a piece is
 * read only while fewer than `body` are buffered, so a record always swallows every earlier
 * piece). The cursor is "c <offset of that piece> <its tokens already consumed>"; a resumed run
 * re-reads and re-encodes the piece (pieces are cut the same way from the same offset) and
 * drops the consumed tokens. */
static lq_status run_chunks(run *r, const char *cursor) {
    const args *a = r->a;
    int bos_id = lq_tokenizer_bos(r->tok);
    bool bos = bos_id >= 0 && lq_tokenizer_add_bos_default(r->tok);
    int body = bos ? r->ctx - 1 : r->ctx; /* text tokens per record */
    if (body < 1) return lq_fail(LQ_ERR_INVALID_ARG, "--ctx %d leaves no room after BOS", r->ctx);
    uint64_t last_off = 0;  /* offset of the last piece read */
    int64_t skip = 0;       /* tokens of the first piece to drop on resume */
    if (*cursor) {
        unsigned long long o = 0;
        long long k = 0;
        if (sscanf(cursor, "c %llu %lld", &o, &k) != 2 || k < 0)
            return lq_fail(LQ_ERR_FORMAT, "%s: bad chunk cursor '%s'", a->out, cursor);
        last_off = o;
        skip = k;
    }
    /* buf[0] is the BOS slot; buf[1 .. 1 + have) are buffered text tokens */
    int64_t bcap = (int64_t)r->ctx + 1, have = 0, last_n = 0;
    int32_t *buf = malloc((size_t)bcap * sizeof *buf);
    if (!buf) return lq_fail(LQ_ERR_NOMEM, "cannot allocate the token buffer");
    lq_corpus *c = NULL;
    lq_status st = lq_corpus_open(a->file, last_off, &c);
    int32_t *ids = NULL;
    int64_t icap = 0, n = 0;
    uint64_t rec_off = last_off; /* piece holding the next record's first text token */
    bool eof = false;
    char cur[64];
    while (st == LQ_OK) {
        while (have < body && !eof && st == LQ_OK) {
            const char *text;
            size_t len;
            uint64_t poff, noff;
            st = lq_corpus_next_piece(c, PIECE_BYTES, &text, &len, &poff, &noff);
            if (st != LQ_OK) break;
            if (!text) {
                eof = true;
                break;
            }
            st = encode(r->tok, text, len, false, &ids, &icap, &n);
            if (st != LQ_OK) break;
            int64_t drop = skip < n ? skip : n;
            skip = 0;
            if (have == 0) rec_off = poff;
            if (1 + have + n > bcap) {
                int64_t nc = 1 + have + n;
                int32_t *nb = realloc(buf, (size_t)nc * sizeof *nb);
                if (!nb) {
                    st = lq_fail(LQ_ERR_NOMEM, "cannot grow the token buffer");
                    break;
                }
                buf = nb;
                bcap = nc;
            }
            memcpy(buf + 1 + have, ids + drop, (size_t)(n - drop) * sizeof *ids);
            have += n - drop;
            last_off = poff;
            last_n = n;
            lq_progress_update(&r->bar, (int64_t)noff);
        }
        if (st != LQ_OK || have == 0) break;
        int take = (int)(have < body ? have : body);
        if (bos) buf[0] = (int32_t)bos_id;
        st = emit(r, bos ? buf : buf + 1, bos ? take + 1 : take, rec_off);
        if (st != LQ_OK) break;
        memmove(buf + 1, buf + 1 + take, (size_t)(have - take) * sizeof *buf);
        have -= take;
        if (have > last_n) {
            st = lq_fail(LQ_ERR_INVALID_ARG, "chunk cursor invariant broken (%lld > %lld)",
                         (long long)have, (long long)last_n);
            break;
        }
        if (have > 0) rec_off = last_off;
        snprintf(cur, sizeof cur, "c %llu %lld", (unsigned long long)last_off,
                 (long long)(last_n - have));
        st = lq_distill_writer_commit(r->w, cur, false);
    }
    if (st == LQ_OK) {
        snprintf(cur, sizeof cur, "c %llu %lld", (unsigned long long)last_off, (long long)last_n);
        st = lq_distill_writer_finish(r->w, cur);
    }
    free(ids);
    free(buf);
    lq_corpus_close(c);
    return st;
}

/* run_id: what besides teacher and tokenizer decides the records: the corpus (size and FNV-1a
 * of its first and last 64 KiB), the separator and whether BOS is added. */
static lq_status corpus_run_id(const args *a, uint64_t *out, uint64_t *size) {
    FILE *f = fopen(a->file, "rb");
    if (!f) return lq_fail(LQ_ERR_IO, "%s: cannot open", a->file);
    fseeko(f, 0, SEEK_END);
    off_t sz = ftello(f);
    *size = sz > 0 ? (uint64_t)sz : 0;
    uint64_t h = 0xcbf29ce484222325ull;
    unsigned char b[4096];
    off_t starts[2] = {0, sz > (64 << 10) ? sz - (64 << 10) : 0};
    for (int s = 0; s < 2; s++) {
        fseeko(f, starts[s], SEEK_SET);
        size_t total = 0, got;
        while (total < (64 << 10) && (got = fread(b, 1, sizeof b, f)) > 0) {
            for (size_t i = 0; i < got; i++) h = (h ^ b[i]) * 0x100000001b3ull;
            total += got;
        }
    }
    fclose(f);
    h = (h ^ (uint64_t)sz) * 0x100000001b3ull;
    const char *sep = a->separator ? a->separator : "";
    for (const char *p = sep; *p; p++) h = (h ^ (unsigned char)*p) * 0x100000001b3ull;
    *out = h;
    return LQ_OK;
}

static lq_status parse_features(const args *a, const lq_model *m, lq_distill_meta *meta) {
    if (!a->features) return LQ_OK;
    const char *p = a->features;
    while (*p) {
        char *e = NULL;
        long v = strtol(p, &e, 10);
        if (e == p || v < 0 || v > m->cfg.n_layers || (*e && *e != ','))
            return lq_fail(LQ_ERR_INVALID_ARG, "--features '%s': layers are 0 .. %d, comma "
                           "separated", a->features, m->cfg.n_layers);
        if (meta->n_feat_layers == LQ_DISTILL_MAX_FEAT_LAYERS)
            return lq_fail(LQ_ERR_INVALID_ARG, "--features: at most %d layers",
                           LQ_DISTILL_MAX_FEAT_LAYERS);
        meta->feat_layers[meta->n_feat_layers++] = (int32_t)v;
        p = *e ? e + 1 : e;
    }
    return LQ_OK;
}

static int run_distill(const args *a) {
    lq_model *m = NULL;
    lq_status s = lq_model_load(a->model, &m);
    if (s != LQ_OK) return tool_fail(s);
    lq_tokenizer *tok = NULL;
    s = lq_eval_load_tokenizer(m, a->model, a->tokenizer, &tok);
    if (s != LQ_OK) {
        lq_model_free(m);
        return tool_fail(s);
    }
    int rc = 0;
    run r = {.a = a, .m = m, .tok = tok, .vocab = m->cfg.vocab_size, .k = a->k};
    lq_distill_meta *meta = &r.meta;
    uint64_t corpus_size = 0;
    int max_ctx = m->cfg.max_seq_len;
    r.ctx = a->ctx > 0 ? a->ctx : (a->per_line ? max_ctx : 512);
    if (r.ctx > max_ctx) r.ctx = max_ctx;
    if (a->k > r.vocab) {
        rc = tool_bad_args("--k %d is larger than the vocabulary (%d)", a->k, r.vocab);
        goto done;
    }
    if ((s = parse_features(a, m, meta)) != LQ_OK) {
        rc = tool_bad_args("%s", lq_last_error());
        goto done;
    }
    if ((s = corpus_run_id(a, &meta->run_id, &corpus_size)) != LQ_OK) {
        rc = tool_fail(s);
        goto done;
    }
    if (corpus_size == 0) {
        rc = tool_error(2, "%s: the corpus is empty", a->file);
        goto done;
    }
    meta->teacher_id = lq_distill_teacher_id(m);
    meta->tokenizer_hash = lq_tokenizer_hash(tok);
    meta->vocab = r.vocab;
    meta->k = a->k;
    meta->dim = m->cfg.dim;
    meta->n_ctx = r.ctx;
    meta->mode = a->per_line ? LQ_DISTILL_MODE_PER_UNIT : LQ_DISTILL_MODE_CHUNKS;
    meta->logp_dtype = a->f16 ? LQ_DTYPE_F16 : LQ_DTYPE_F32;
    const char *base = strrchr(a->model, '/');
    snprintf(meta->teacher_name, sizeof meta->teacher_name, "%s", base && base[1] ? base + 1 : a->model);

    lq_distill_writer_opts wo = {.block_bytes = (size_t)a->block_kib << 10,
                                 .shard_bytes = (uint64_t)a->shard_kib << 10};
    if ((s = lq_distill_writer_open(a->out, meta, &wo, &r.w)) != LQ_OK) {
        rc = tool_fail_at("cannot write", a->out, s);
        goto done;
    }
    int64_t resumed = lq_distill_writer_records(r.w);
    bool complete = lq_distill_writer_complete(r.w);
    if (!complete) {
        r.pool = lq_pool_create(a->threads);
        size_t nl = (size_t)r.ctx * (size_t)r.vocab, nk = (size_t)r.ctx * (size_t)r.k;
        r.logits = malloc(nl * sizeof *r.logits);
        r.ids = malloc(nk * sizeof *r.ids);
        r.logp = malloc(nk * sizeof *r.logp);
        r.rest = malloc((size_t)r.ctx * sizeof *r.rest);
        size_t nf = (size_t)meta->n_feat_layers * (size_t)r.ctx * (size_t)meta->dim;
        r.feat = nf ? malloc(nf * sizeof *r.feat) : NULL;
        if (!r.pool || !r.logits || !r.ids || !r.logp || !r.rest || (nf && !r.feat)) {
            rc = tool_error(1, "cannot allocate buffers for ctx %d x vocab %d", r.ctx, r.vocab);
            goto done;
        }
        if ((s = lq_session_create(m, r.ctx, r.pool, &r.sess)) != LQ_OK) {
            rc = tool_fail(s);
            goto done;
        }
        if (meta->n_feat_layers) lq_session_set_layer_hook(r.sess, feature_hook, &r);
        const char *cur = lq_distill_writer_cursor(r.w);
        if (resumed > 0 && !a->json)
            fprintf(stderr, TOOL ": resuming %s after %lld committed records\n", a->out,
                    (long long)resumed);
        lq_progress_begin(&r.bar, "distill", (int64_t)corpus_size, !a->json);
        double t0 = lq_eval_now();
        if (a->per_line) {
            uint64_t start = 0;
            if (*cur && sscanf(cur, "u %llu", (unsigned long long *)&start) != 1) start = 0;
            s = run_per_line(&r, start);
        } else {
            s = run_chunks(&r, cur);
        }
        lq_progress_end(&r.bar);
        double secs = lq_eval_now() - t0;
        if (s != LQ_OK) {
            rc = tool_error(lq_status_exit_code(s), "%s: %s", a->file, lq_last_error());
            goto done;
        }
        if (!a->json)
            fprintf(stderr, TOOL ": %lld records in %.2f s\n", (long long)r.added, secs);
    }
    /* summary from the files themselves */
    lq_distill_reader *rd = NULL;
    if ((s = lq_distill_open(a->out, &rd)) != LQ_OK) {
        rc = tool_fail(s);
        goto done;
    }
    int64_t nrec = lq_distill_count(rd), ntok = lq_distill_token_count(rd);
    uint64_t bytes = lq_distill_file_bytes(rd);
    lq_distill_close(rd);
    if (a->json) {
        json_t *j = json_object();
        json_object_set_new(j, "out", json_string(a->out));
        json_object_set_new(j, "records", json_integer(nrec));
        json_object_set_new(j, "tokens", json_integer(ntok));
        json_object_set_new(j, "bytes", json_integer((json_int_t)bytes));
        json_object_set_new(j, "bytes_per_token", json_real(ntok ? (double)bytes / (double)ntok : 0));
        json_object_set_new(j, "resumed_from", json_integer(resumed));
        json_object_set_new(j, "already_complete", json_boolean(complete));
        char *txt = json_dumps(j, JSON_INDENT(2) | JSON_PRESERVE_ORDER);
        json_decref(j);
        if (txt) printf("%s\n", txt);
        free(txt);
    } else {
        printf("%s: %lld records, %lld tokens, %llu bytes (%.1f bytes/token)%s\n", a->out,
               (long long)nrec, (long long)ntok, (unsigned long long)bytes,
               ntok ? (double)bytes / (double)ntok : 0.0, complete ? " (already complete)" : "");
    }
done:
    lq_session_free(r.sess);
    lq_distill_writer_free(r.w);
    lq_pool_free(r.pool);
    free(r.logits);
    free(r.ids);
    free(r.logp);
    free(r.rest);
    free(r.feat);
    lq_tokenizer_free(tok);
    lq_model_free(m);
    return rc;
}

int main(int argc, char **argv) {
    tool_init(TOOL, usage);
    args a;
    int rc = parse_args(argc, argv, &a);
    if (rc >= 0) return rc;
    rc = a.inspect ? run_inspect(&a) : run_distill(&a);
    return rc ? rc : tool_finish_stdout();
}
