/* quant-imatrix - llama-imatrix's job: an importance matrix (per Linear, the sums of squared input
 * activations over calibration text and the token counts) in llama.cpp's GGUF imatrix format or
 * its legacy .dat, for quant-ptq --imatrix and llama-quantize --imatrix alike.
 *
 * The protocol is llama-imatrix's (tools/imatrix/imatrix.cpp): the text is tokenized with the
 * model's BOS when it adds one, cut into floor(n / ctx) chunks of ctx tokens (at most --chunks),
 * each run from position 0 with its first token replaced by BOS (when the model adds one), every
 * decoder-layer Linear's input summed (the output head is not). The statistics are
 * lq_imatrix (compress/calib.c, through the per-Linear input hook); the files imatrix_file.c.
 * `--show FILE` reads either format back and prints its entries.
 */
#include "lq_eval.h"
#include "tool_cli.h"
#include "tool_output.h"
#include "tool_progress.h"

#include "libquant/lq_calib.h"
#include "libquant/lq_model.h"
#include "lq_pool.h"
#include "libquant/lq_tokenizer.h"

#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#define TOOL "quant-imatrix"

static double now_seconds(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + 1e-9 * (double)t.tv_nsec;
}

static void usage(FILE *f) {
    fprintf(f,
            "usage: quant-imatrix --model PATH --calib TEXT --out FILE [--chunks N] [--ctx N]\n"
            "                     [--output-format gguf|dat] [--tokenizer FILE] [--threads N]\n"
            "                     [--force] [--json]\n"
            "       quant-imatrix --show FILE [--json]\n"
            "\n"
            "Collect an importance matrix as llama-imatrix does: per decoder-layer Linear, the sum\n"
            "of each input column's squares over the calibration tokens and the token count.\n"
            "llama-quantize --imatrix and quant-ptq --format gguf --imatrix read the file.\n"
            "\n"
            "  --model PATH          HF directory, GGUF file or llama2.c .bin (with --tokenizer)\n"
            "  --calib TEXT          calibration text (plain UTF-8); it needs 2 x ctx tokens\n"
            "  --chunks N            use at most N chunks (default: all whole chunks)\n"
            "  --ctx N               chunk length in tokens (default 512, llama-imatrix's)\n"
            "  --output-format F     gguf (default, llama-imatrix's) or dat (its legacy format)\n"
            "  --out FILE            output (written as FILE.tmp.<pid>, renamed when complete)\n"
            "  --show FILE           print a GGUF or .dat imatrix's metadata and entries\n"
            "  --tokenizer FILE      tokenizer (default: the model's own)\n"
            "  --threads N           worker threads (default: all CPUs)\n"
            "  --force               replace an existing FILE\n"
            "  --json                print the summary as JSON on stdout\n"
            "\n"
            "Exit codes: 0 ok, 2 bad arguments, 3 bad input file, 4 I/O, 1 other.\n");
}

/* ---- --show ------------------------------------------------------------------------------------- */

static int show(const char *path, bool json) {
    lq_imatrix *im;
    lq_status s = lq_imatrix_load(path, &im);
    if (s != LQ_OK) return tool_fail_at("cannot read imatrix", path, s);
    const int64_t n = lq_imatrix_count(im);
    if (json) {
        printf("{\"file\": ");
        tool_print_json_string(path);
        printf(", \"chunk_count\": %lld, \"chunk_size\": %lld, \"datasets\": [",
               (long long)lq_imatrix_chunk_count(im), (long long)lq_imatrix_chunk_size(im));
        for (int64_t i = 0; i < lq_imatrix_dataset_count(im); i++) {
            if (i) printf(", ");
            tool_print_json_string(lq_imatrix_dataset(im, i));
        }
        printf("], \"entries\": [");
    } else {
        printf("%s: %lld entries, %lld chunks of %lld tokens", path, (long long)n,
               (long long)lq_imatrix_chunk_count(im), (long long)lq_imatrix_chunk_size(im));
        for (int64_t i = 0; i < lq_imatrix_dataset_count(im); i++)
            printf("%s%s", i ? ", " : ", datasets: ", lq_imatrix_dataset(im, i));
        printf("\n  %-36s %6s %9s %12s %12s\n", "tensor", "cols", "count", "mean x^2", "max x^2");
    }
    for (int64_t i = 0; i < n; i++) {
        const char *name;
        int64_t cols, cnt;
        const double *sum;
        lq_imatrix_entry(im, i, &name, &cols, &cnt, &sum);
        double tot = 0, mx = 0;
        for (int64_t j = 0; j < cols; j++) {
            tot += sum[j];
            mx = sum[j] > mx ? sum[j] : mx;
        }
        const double c = cnt > 0 ? (double)cnt : 1.0;
        if (json) {
            printf("%s{\"name\": ", i ? ", " : "");
            tool_print_json_string(name);
            printf(", \"cols\": %lld, \"count\": %lld, \"sum\": %.9g, \"mean\": %.9g, \"max\": %.9g}", (long long)cols,
                   (long long)cnt, tot, tot / c / (double)cols, mx / c);
        } else {
            printf("  %-36s %6lld %9lld %12.6g %12.6g\n", name, (long long)cols, (long long)cnt,
                   tot / c / (double)cols, mx / c);
        }
    }
    if (json) printf("]}\n");
    lq_imatrix_free(im);
    return tool_finish_stdout();
}

/* ---- collection --------------------------------------------------------------------------------- */

typedef struct job {
    const char *model, *calib, *tok_path, *out;
    int chunks, ctx;
    lq_imatrix_format fmt;
    bool json;
    lq_pool *pool;
} job;

/* ids of the whole text as llama-imatrix gets them (common_tokenize with add_special: BOS first
 * when the model adds one). *where names what failed. */
static lq_status tokenize(const job *j, const lq_model *m, lq_tokenizer **tok, int32_t **ids, int64_t *n,
                          const char **where) {
    char *text = NULL;
    size_t len = 0;
    *where = j->model;
    lq_status st = lq_tokenizer_load_for_model(j->model, j->tok_path, lq_model_config(m)->vocab_size, tok);
    if (st != LQ_OK) return st;
    *where = j->calib;
    if ((st = lq_text_read_file(j->calib, &text, &len)) != LQ_OK) return st;
    const bool bos = lq_tokenizer_add_bos_default(*tok);
    st = lq_tokenizer_encode(*tok, text, len, bos, false, NULL, 0, n);
    if (st == LQ_ERR_INVALID_ARG) st = LQ_OK; /* cap 0: n is the count */
    if (st == LQ_OK && !(*ids = malloc((size_t)(*n ? *n : 1) * sizeof **ids))) st = lq_fail(LQ_ERR_NOMEM, "out of memory");
    if (st == LQ_OK) st = lq_tokenizer_encode(*tok, text, len, bos, false, *ids, *n, n);
    free(text);
    return st;
}

static void summary(const job *j, lq_imatrix *im, int64_t n_tokens, int n_chunk, double secs) {
    if (j->json) {
        printf("{\"out\": ");
        tool_print_json_string(j->out);
        printf(", \"format\": \"%s\", \"entries\": %lld, \"chunks\": %d, \"chunk_size\": %d, \"text_tokens\": %lld, "
               "\"seconds\": %.3f, \"peak_rss\": %llu}\n", j->fmt == LQ_IMATRIX_DAT ? "dat" : "gguf",
               (long long)lq_imatrix_count(im), n_chunk, j->ctx, (long long)n_tokens, secs,
               (unsigned long long)tool_peak_rss_bytes());
        return;
    }
    printf("%s: imatrix (%s) of %lld Linear inputs over %d chunks x %d tokens (text: %lld tokens)\n", j->out,
           j->fmt == LQ_IMATRIX_DAT ? "legacy .dat" : "GGUF", (long long)lq_imatrix_count(im), n_chunk, j->ctx,
           (long long)n_tokens);
    printf("  time        %.2f s, peak RSS %.1f MiB\n", secs, tool_peak_rss_bytes() / 1048576.0);
}

static int collect(const job *j) {
    lq_model *m = NULL;
    lq_tokenizer *tok = NULL;
    lq_session *s = NULL;
    lq_imatrix *im = NULL;
    int32_t *ids = NULL;
    int64_t n = 0;
    int n_chunk = 0, rc = 0;
    const char *what = "cannot load", *where = j->model;
    lq_status st = lq_model_load(j->model, &m);
    if (st == LQ_OK) {
        what = "cannot tokenize";
        st = tokenize(j, m, &tok, &ids, &n, &where);
    }
    if (st == LQ_OK && n < 2 * (int64_t)j->ctx) {
        what = "calibration text too short";
        st = lq_fail(LQ_ERR_INVALID_ARG, "%lld tokens; a context of %d needs at least %d", (long long)n, j->ctx,
                     2 * j->ctx);
    }
    if (st == LQ_OK) {
        n_chunk = (int)(n / j->ctx);
        if (j->chunks > 0 && j->chunks < n_chunk) n_chunk = j->chunks;
        what = "cannot calibrate";
        where = j->model;
        st = lq_session_create(m, j->ctx, j->pool, &s);
    }
    if (st == LQ_OK) st = lq_imatrix_create(&im);
    if (st == LQ_OK) st = lq_imatrix_set_config(im, lq_model_config(m));
    tool_progress prog;
    tool_progress_begin(&prog, "imatrix", n_chunk, !j->json);
    double t0 = now_seconds();
    const int32_t bos = tok && lq_tokenizer_add_bos_default(tok) ? lq_tokenizer_bos(tok) : -1;
    for (int c = 0; st == LQ_OK && c < n_chunk; c++) {
        st = lq_imatrix_collect(m, s, ids + (int64_t)c * j->ctx, j->ctx, j->ctx, bos, im);
        tool_progress_update(&prog, c + 1);
    }
    tool_progress_end(&prog);
    if (st == LQ_OK) {
        lq_imatrix_set_chunks(im, n_chunk, j->ctx);
        st = lq_imatrix_add_dataset(im, j->calib);
    }
    if (st == LQ_OK) {
        what = "cannot write imatrix";
        where = j->out;
        st = lq_imatrix_save(im, j->out, j->fmt);
    }
    if (st == LQ_OK) summary(j, im, n, n_chunk, now_seconds() - t0);
    else rc = tool_fail_at(what, where, st);
    lq_imatrix_free(im);
    lq_session_free(s);
    free(ids);
    lq_tokenizer_free(tok);
    lq_model_free(m);
    return rc ? rc : tool_finish_stdout();
}

int main(int argc, char **argv) {
    tool_init(TOOL, usage);
    job j = {.ctx = 512, .fmt = LQ_IMATRIX_GGUF};
    const char *show_path = NULL;
    bool force = false;
    int threads = 0;
    tool_args a = tool_args_begin(argc, argv);
    while (tool_args_next(&a)) {
        if (tool_args_help(&a)) {
            usage(stdout);
            return 0;
        } else if (tool_args_flag(&a, "--force")) {
            force = true;
        } else if (tool_args_flag(&a, "--json")) {
            j.json = true;
        } else if (tool_args_value(&a, "--model")) {
            j.model = a.value;
        } else if (tool_args_value(&a, "--calib")) {
            j.calib = a.value;
        } else if (tool_args_value(&a, "--out")) {
            j.out = a.value;
        } else if (tool_args_value(&a, "--show")) {
            show_path = a.value;
        } else if (tool_args_value(&a, "--tokenizer")) {
            j.tok_path = a.value;
        } else if (tool_args_value(&a, "--chunks")) {
            if (!tool_parse_int(a.value, 1, &j.chunks)) return tool_args_bad_value(&a);
        } else if (tool_args_value(&a, "--ctx")) {
            if (!tool_parse_int(a.value, 16, &j.ctx)) return tool_args_bad_value(&a); /* llama: >= 16 */
        } else if (tool_args_value(&a, "--threads")) {
            if (!tool_parse_int(a.value, 1, &threads)) return tool_args_bad_value(&a);
        } else if (tool_args_value(&a, "--output-format")) {
            if (strcmp(a.value, "gguf") == 0) j.fmt = LQ_IMATRIX_GGUF;
            else if (strcmp(a.value, "dat") == 0) j.fmt = LQ_IMATRIX_DAT;
            else return tool_args_bad_value(&a);
        } else {
            return tool_args_unknown(&a);
        }
    }
    if (show_path) {
        if (j.model || j.calib || j.out) return tool_bad_args("--show takes no --model, --calib or --out");
        return show(show_path, j.json);
    }
    if (!j.model || !j.calib || !j.out) return tool_bad_args("--model, --calib and --out are required");
    struct stat sb;
    if (!force && stat(j.out, &sb) == 0)
        return tool_fail_at("refusing to overwrite", j.out, lq_fail(LQ_ERR_EXISTS, "%s exists (--force replaces it)", j.out));
    j.pool = lq_pool_create(threads);
    int rc = collect(&j);
    lq_pool_free(j.pool);
    return rc;
}
