/* bench.c - quant-eval --bench (eval_modes.h): llama-bench's prefill / decode speed of --model on
 * lq_eval_bench, with peak RSS and the share of the machine's read bandwidth decode reaches. */
#include "quant-eval/eval_modes.h"
#include "quant-eval/kv_report.h"

#include "lq_bandwidth.h"
#include "tool_cli.h"
#include "tool_model.h"
#include "tool_progress.h"

#include <jansson.h>
#include <stdio.h>

int quant_eval_run_bench(const quant_eval_args *a, const lq_model *m, lq_pool *pool) {
    tool_progress bar;
    tool_progress_begin(&bar, "bench", 1, !a->json);
    lq_bench_opts o = {.n_prompt = a->n_prompt, .n_gen = a->n_gen, .reps = a->reps, .seed = 42,
                       .progress = tool_progress_cb, .progress_user = &bar};
    lq_bench_result r;
    lq_status s = lq_eval_bench(m, pool, &o, &r);
    tool_progress_end(&bar);
    if (s != LQ_OK) return tool_fail(s);
    uint64_t peak_rss = tool_peak_rss_bytes();
    /* measured after the runs, so its 512 MB buffer does not inflate the model's peak RSS */
    /* The CPU's read bandwidth is no yardstick for a GPU run (0: no ratio). */
    double bw_gbs = a->device == LQ_DEVICE_CPU ? lq_measure_read_bandwidth(pool, BW_BYTES, BW_REPS) : 0;
    double achieved_gbs = (double)r.weight_bytes_per_token * r.decode.median / 1e9;
    double ratio = bw_gbs > 0 ? achieved_gbs / bw_gbs : 0;
    const lq_config *c = lq_model_config(m);
    if (a->json) {
        json_t *j = json_object();
        json_object_set_new(j, "model", json_string(a->model));
        json_object_set_new(j, "params", json_integer(r.n_params));
        json_object_set_new(j, "threads", json_integer(r.threads));
        json_object_set_new(j, "n_prompt", json_integer(a->n_prompt));
        json_object_set_new(j, "n_gen", json_integer(a->n_gen));
        json_object_set_new(j, "reps", json_integer(a->reps));
        json_t *p = json_object();
        json_object_set_new(p, "median", json_real(r.prefill.median));
        json_object_set_new(p, "min", json_real(r.prefill.min));
        json_object_set_new(p, "max", json_real(r.prefill.max));
        json_object_set_new(j, "prefill_tok_s", p);
        json_t *d = json_object();
        json_object_set_new(d, "median", json_real(r.decode.median));
        json_object_set_new(d, "min", json_real(r.decode.min));
        json_object_set_new(d, "max", json_real(r.decode.max));
        json_object_set_new(j, "decode_tok_s", d);
        json_object_set_new(j, "peak_rss_bytes", json_integer((json_int_t)peak_rss));
        json_object_set_new(j, "weight_bytes_per_token",
                            json_integer((json_int_t)r.weight_bytes_per_token));
        json_object_set_new(j, "bandwidth_gb_s", json_real(bw_gbs));
        json_object_set_new(j, "decode_gb_s", json_real(achieved_gbs));
        json_object_set_new(j, "bandwidth_ratio", json_real(ratio));
        quant_eval_kv_json(j, m);
        tool_print_json(j);
    } else {
        quant_eval_kv_print(a, m);
        printf("model: %s (%s, dim %d, %d layers, vocab %d, %.1f M params), %d threads\n",
               a->model, c->arch, c->dim, c->n_layers, c->vocab_size, r.n_params / 1e6,
               r.threads);
        printf("| test   |  tokens |  median tok/s |     min tok/s |     max tok/s |\n");
        printf("| ------ | ------: | ------------: | ------------: | ------------: |\n");
        if (a->n_prompt > 0)
            printf("| pp%-4d | %7d | %13.2f | %13.2f | %13.2f |\n", a->n_prompt, a->n_prompt,
                   r.prefill.median, r.prefill.min, r.prefill.max);
        if (a->n_gen > 0)
            printf("| tg%-4d | %7d | %13.2f | %13.2f | %13.2f |\n", a->n_gen, a->n_gen,
                   r.decode.median, r.decode.min, r.decode.max);
        printf("peak RSS: %.1f MiB\n", peak_rss / (1024.0 * 1024.0));
        printf("weight bytes/token: %.1f MB; decode reads %.2f GB/s; measured read bandwidth "
               "%.2f GB/s; ratio %.1f%%\n",
               r.weight_bytes_per_token / 1e6, achieved_gbs, bw_gbs, 100.0 * ratio);
    }
    return 0;
}
