/* serve.c - quant-eval --serve-bench (a request trace through continuous batching) and
 * --batch-curve (llama-batched-bench's B = 1..32 decode curve), on lq_eval_serve_bench and
 * lq_eval_batch_curve. */
#include "quant-eval/serve.h"
#include "quant-eval/kv_report.h"

#include "lq_eval.h"
#include "tool_cli.h"
#include "tool_model.h"
#include "tool_progress.h"

#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define TOOL "quant-eval"
#define MAX_CURVE 32

static void usage(FILE *f) {
    fprintf(f,
            "usage: " TOOL " --model PATH --serve-bench [--requests N] [--rate R] [--prompt-len A[:B]]\n"
            "                  [--gen-len A[:B]] [--trace FILE] [--budget N] [--max-seqs N]\n"
            "                  [--prefill-chunk N] [--page-tokens N] [--seed N] [--kv-cache T]\n"
            "                  [--threads N] [--json]\n"
            "       " TOOL " --model PATH --batch-curve B1,B2,... [--n-prompt N] [--n-gen N]\n"
            "                  [--kv-cache T] [--threads N] [--json]\n"
            "\n"
            "Serving under load (CPU). --serve-bench replays a request trace in real time through\n"
            "the continuous-batching scheduler (lq_sched.h: each step one batched forward of at\n"
            "most --budget token rows, decode tokens first, then prompt chunks, then new requests\n"
            "as KV pages allow) over the paged KV cache, and reports throughput, time to first\n"
            "token and per-token latency percentiles, and KV memory. Prompts are random ids; each\n"
            "request generates exactly its output length (greedy).\n"
            "  --requests N       synthetic trace: N requests (default 32)\n"
            "  --rate R           Poisson arrivals, R requests/s (default 0: all at once)\n"
            "  --prompt-len A:B   prompt lengths uniform in [A, B] (default 32:256)\n"
            "  --gen-len A:B      output lengths uniform in [A, B] (default 16:128)\n"
            "  --trace FILE       the trace instead: lines 'ARRIVAL_S PROMPT_LEN GEN_LEN'\n"
            "  --budget N         token rows per step (default 256)\n"
            "  --max-seqs N       requests running at once (default 64)\n"
            "  --prefill-chunk N  prompt tokens per request per step (default: the budget)\n"
            "  --page-tokens N    KV page size (default 16)\n"
            "  --seed N           lengths, arrivals and prompt ids (default 42)\n"
            "--batch-curve measures as llama-batched-bench does: for each B, B sequences of\n"
            "--n-prompt random ids (default 128) prefilled, then --n-gen (default 32) decode steps\n"
            "of B tokens; prefill and decode tok/s per B.\n"
            "  --kv-cache T       the pages' rows: f32, f16, q8 (int8, a scale per token and\n"
            "                     head; llama.cpp's -ctk/-ctv q8_0) or fp8 (E4M3, likewise).\n"
            "                     Default: the checkpoint's kv_cache_scheme (static scales), else\n"
            "                     f32. KV bytes follow the type (a q8 page is ~0.27 of an f32 one)\n"
            "  --threads N        worker threads (default: all CPUs)\n"
            "  --json             one JSON object on stdout\n"
            "\n"
            "Exit codes: 0 ok, 2 bad arguments, 3 bad input file, 4 I/O, 1 other.\n");
}

bool quant_eval_is_serve(int argc, char **argv) {
    for (int i = 1; i < argc; i++)
        if (!strcmp(argv[i], "--serve-bench") || !strcmp(argv[i], "--batch-curve")) return true;
    return false;
}

typedef struct sargs {
    const char *model, *curve;
    bool serve, json;
    int threads, n_prompt, n_gen;
    int batch[MAX_CURVE], n_batch;
    lq_serve_opts o;
    lq_kv_type kv_cache; /* --kv-cache */
    bool kv_cache_set;
} sargs;

/* "A" or "A:B" with 1 <= A <= B. */
static bool parse_range(const char *s, int *lo, int *hi) {
    char buf[64];
    snprintf(buf, sizeof buf, "%s", s);
    char *colon = strchr(buf, ':');
    if (colon) *colon = 0;
    if (!tool_parse_int(buf, 1, lo)) return false;
    if (!colon) {
        *hi = *lo;
        return true;
    }
    return tool_parse_int(colon + 1, *lo, hi);
}

static bool parse_list(const char *s, int *v, int *n) {
    char buf[256];
    snprintf(buf, sizeof buf, "%s", s);
    *n = 0;
    for (char *save = NULL, *tok = strtok_r(buf, ",", &save); tok; tok = strtok_r(NULL, ",", &save))
        if (*n == MAX_CURVE || !tool_parse_int(tok, 1, &v[(*n)++])) return false;
    return *n > 0;
}

static int parse(int argc, char **argv, sargs *a) {
    *a = (sargs){.n_prompt = 128, .n_gen = 32};
    tool_args t = tool_args_begin(argc, argv);
    while (tool_args_next(&t)) {
        int *num = NULL, min = 1;
        if (tool_args_help(&t)) { usage(stdout); return 0; }
        else if (tool_args_value(&t, "--model")) a->model = t.value;
        else if (tool_args_flag(&t, "--serve-bench")) a->serve = true;
        else if (tool_args_flag(&t, "--json")) a->json = true;
        else if (tool_args_value(&t, "--batch-curve")) {
            a->curve = t.value;
            if (!parse_list(t.value, a->batch, &a->n_batch)) return tool_args_bad_value(&t);
        }
        else if (tool_args_value(&t, "--trace")) a->o.trace = t.value;
        else if (tool_args_value(&t, "--kv-cache")) {
            if (lq_kv_type_parse(t.value, &a->kv_cache) != 0) return tool_args_bad_value(&t);
            a->kv_cache_set = true;
        }
        else if (tool_args_value(&t, "--prompt-len")) {
            if (!parse_range(t.value, &a->o.prompt_min, &a->o.prompt_max)) return tool_args_bad_value(&t);
        }
        else if (tool_args_value(&t, "--gen-len")) {
            if (!parse_range(t.value, &a->o.gen_min, &a->o.gen_max)) return tool_args_bad_value(&t);
        }
        else if (tool_args_value(&t, "--rate")) {
            float r;
            if (!tool_parse_float(t.value, 0.0f, 1e6f, &r)) return tool_args_bad_value(&t);
            a->o.rate = r;
        }
        else if (tool_args_value(&t, "--seed")) {
            if (!tool_parse_u64(t.value, &a->o.seed)) return tool_args_bad_value(&t);
        }
        else if (tool_args_value(&t, "--requests")) num = &a->o.n_requests;
        else if (tool_args_value(&t, "--budget")) num = &a->o.token_budget;
        else if (tool_args_value(&t, "--max-seqs")) num = &a->o.max_seqs;
        else if (tool_args_value(&t, "--prefill-chunk")) num = &a->o.prefill_chunk;
        else if (tool_args_value(&t, "--page-tokens")) num = &a->o.page_tokens;
        else if (tool_args_value(&t, "--threads")) num = &a->threads;
        else if (tool_args_value(&t, "--n-prompt")) num = &a->n_prompt;
        else if (tool_args_value(&t, "--n-gen")) num = &a->n_gen;
        else return tool_args_unknown(&t);
        if (num && !tool_parse_int(t.value, min, num)) return tool_args_bad_value(&t);
    }
    if (!a->model) return tool_bad_args("--model is required");
    if (a->serve == (a->curve != NULL)) return tool_bad_args("give one of --serve-bench and --batch-curve");
    if (a->o.page_tokens > 256) return tool_bad_args("--page-tokens: at most 256");
    return -1;
}

static json_t *pcts(double mean, double p50, double p90, double p99) {
    json_t *j = json_object();
    json_object_set_new(j, "mean", json_real(mean));
    json_object_set_new(j, "p50", json_real(p50));
    json_object_set_new(j, "p90", json_real(p90));
    json_object_set_new(j, "p99", json_real(p99));
    return j;
}

static int run_serve(const sargs *a, const lq_model *m, lq_pool *pool) {
    tool_progress bar;
    tool_progress_begin(&bar, "serve-bench", 1, !a->json);
    lq_serve_opts o = a->o;
    o.progress = tool_progress_cb;
    o.progress_user = &bar;
    lq_serve_result r;
    lq_status s = lq_eval_serve_bench(m, pool, &o, &r);
    tool_progress_end(&bar);
    if (s != LQ_OK) return tool_fail(s);
    const double peak_mib = (double)r.kv_peak_pages * (double)r.page_bytes / (1024.0 * 1024.0);
    const double held = r.kv_peak_tokens > 0 ? (double)r.kv_peak_pages * r.page_tokens / (double)r.kv_peak_tokens : 0;
    if (a->json) {
        json_t *j = json_object();
        json_object_set_new(j, "model", json_string(a->model));
        json_object_set_new(j, "threads", json_integer(lq_pool_size(pool)));
        json_object_set_new(j, "requests", json_integer(r.n_requests));
        json_object_set_new(j, "prompt_tokens", json_integer(r.prompt_tokens));
        json_object_set_new(j, "generated_tokens", json_integer(r.gen_tokens));
        json_object_set_new(j, "steps", json_integer(r.steps));
        json_object_set_new(j, "max_running", json_integer(r.max_running));
        json_object_set_new(j, "seconds", json_real(r.seconds));
        json_object_set_new(j, "generated_tok_s", json_real(r.gen_tok_s));
        json_object_set_new(j, "total_tok_s", json_real(r.total_tok_s));
        json_object_set_new(j, "ttft_s", pcts(r.ttft_mean, r.ttft_p50, r.ttft_p90, r.ttft_p99));
        json_object_set_new(j, "inter_token_s", pcts(r.itl_mean, r.itl_p50, r.itl_p90, r.itl_p99));
        quant_eval_kv_json(j, m);
        json_object_set_new(j, "page_tokens", json_integer(r.page_tokens));
        json_object_set_new(j, "page_bytes", json_integer((json_int_t)r.page_bytes));
        json_object_set_new(j, "kv_peak_pages", json_integer(r.kv_peak_pages));
        json_object_set_new(j, "kv_peak_tokens", json_integer(r.kv_peak_tokens));
        json_object_set_new(j, "kv_peak_bytes", json_real((double)r.kv_peak_pages * (double)r.page_bytes));
        json_object_set_new(j, "kv_mean_bytes", json_real(r.kv_mean_bytes));
        json_object_set_new(j, "kv_pages_allocated", json_integer(r.kv_pages_allocated));
        json_object_set_new(j, "peak_rss_bytes", json_integer((json_int_t)tool_peak_rss_bytes()));
        tool_print_json(j);
    } else {
        printf("requests: %d (%lld prompt + %lld generated tokens), %lld steps, at most %d running, %d threads\n",
               r.n_requests, (long long)r.prompt_tokens, (long long)r.gen_tokens, (long long)r.steps,
               r.max_running, lq_pool_size(pool));
        printf("time: %.3f s; generated %.2f tok/s; prompt + generated %.2f tok/s\n", r.seconds, r.gen_tok_s,
               r.total_tok_s);
        printf("time to first token (ms): mean %.1f  p50 %.1f  p90 %.1f  p99 %.1f\n", 1e3 * r.ttft_mean,
               1e3 * r.ttft_p50, 1e3 * r.ttft_p90, 1e3 * r.ttft_p99);
        printf("per-token latency (ms):   mean %.1f  p50 %.1f  p90 %.1f  p99 %.1f\n", 1e3 * r.itl_mean,
               1e3 * r.itl_p50, 1e3 * r.itl_p90, 1e3 * r.itl_p99);
        printf("KV cache (%s%s): peak %lld pages of %d tokens (%.1f MiB) for %lld tokens held (x%.3f); mean %.1f "
               "MiB; pool high-water %lld pages\n",
               lq_kv_type_name(r.kv_type), quant_eval_kv_static(m) ? ", static scales" : "",
               (long long)r.kv_peak_pages, r.page_tokens, peak_mib, (long long)r.kv_peak_tokens, held,
               r.kv_mean_bytes / (1024.0 * 1024.0), (long long)r.kv_pages_allocated);
    }
    return 0;
}

static int run_curve(const sargs *a, const lq_model *m, lq_pool *pool) {
    lq_batch_point pts[MAX_CURVE];
    lq_status s = lq_eval_batch_curve(m, pool, a->batch, a->n_batch, a->n_prompt, a->n_gen, 42, pts);
    if (s != LQ_OK) return tool_fail(s);
    if (a->json) {
        json_t *j = json_object(), *arr = json_array();
        json_object_set_new(j, "model", json_string(a->model));
        json_object_set_new(j, "threads", json_integer(lq_pool_size(pool)));
        json_object_set_new(j, "n_prompt", json_integer(a->n_prompt));
        json_object_set_new(j, "n_gen", json_integer(a->n_gen));
        quant_eval_kv_json(j, m);
        for (int i = 0; i < a->n_batch; i++) {
            json_t *p = json_object();
            json_object_set_new(p, "batch", json_integer(pts[i].batch));
            json_object_set_new(p, "pp_s", json_real(pts[i].pp_s));
            json_object_set_new(p, "pp_tok_s", json_real(pts[i].pp_tok_s));
            json_object_set_new(p, "tg_s", json_real(pts[i].tg_s));
            json_object_set_new(p, "tg_tok_s", json_real(pts[i].tg_tok_s));
            json_object_set_new(p, "kv_bytes", json_integer((json_int_t)pts[i].kv_bytes));
            json_array_append_new(arr, p);
        }
        json_object_set_new(j, "points", arr);
        tool_print_json(j);
    } else {
        printf("model: %s, %d threads, prompt %d, generate %d, KV cache %s%s\n", a->model, lq_pool_size(pool),
               a->n_prompt, a->n_gen, lq_kv_type_name(lq_model_kv_cache(m)),
               quant_eval_kv_static(m) ? " (static scales)" : "");
        printf("|   B | prefill tok/s | decode tok/s | decode vs B=%d | KV MiB |\n", pts[0].batch);
        printf("| --: | ------------: | -----------: | -----------: | -----: |\n");
        for (int i = 0; i < a->n_batch; i++)
            printf("| %3d | %13.2f | %12.2f | %12.2fx | %6.2f |\n", pts[i].batch, pts[i].pp_tok_s, pts[i].tg_tok_s,
                   pts[0].tg_tok_s > 0 ? pts[i].tg_tok_s / pts[0].tg_tok_s : 0,
                   (double)pts[i].kv_bytes / (1024.0 * 1024.0));
    }
    return 0;
}

int quant_eval_serve(int argc, char **argv) {
    tool_init(TOOL, usage);
    sargs a;
    int rc = parse(argc, argv, &a);
    if (rc >= 0) return rc;
    lq_model *m = NULL;
    lq_status s = lq_model_load(a.model, &m);
    if (s == LQ_OK && a.kv_cache_set) s = lq_model_set_kv_cache(m, a.kv_cache);
    if (s != LQ_OK) {
        lq_model_free(m);
        return tool_fail(s);
    }
    lq_pool *pool = lq_pool_create(a.threads);
    if (!pool) {
        lq_model_free(m);
        return tool_error(1, "cannot create a pool of %d threads", a.threads);
    }
    rc = a.serve ? run_serve(&a, m, pool) : run_curve(&a, m, pool);
    lq_pool_free(pool);
    lq_model_free(m);
    return rc ? rc : tool_finish_stdout();
}
