/* lq_eval.h - evaluation harness: perplexity, greedy generation, speed benchmark, and the small
 * helpers the user-facing tools (quant-eval, quant-run) share.
 *
 * Uses only the public libquant API. Everything returns an lq_status and records a one-line
 * message with lq_fail(); nothing here exits.
 */
#ifndef LQ_EVAL_H
#define LQ_EVAL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "libquant.h"

#ifdef __cplusplus
extern "C" {
#endif

/* ---- text files and units (text.c) ----------------------------------------------------------- */

/* Read a whole file into a NUL-terminated malloc'd buffer (*len excludes the NUL). */
lq_status lq_text_read_file(const char *path, char **out, size_t *len);

/* One unit of text: a view into the caller's buffer, never owned. */
typedef struct lq_text_unit {
    const char *text;
    size_t len;
} lq_text_unit;

/* Split text into units: on `separator` when it is non-NULL and non-empty, else on newlines.
 * Each unit is stripped of surrounding spaces, tabs, CR and LF; empty units are dropped.
 * *out is a malloc'd array (free() it; may be NULL when *n_out is 0). */
lq_status lq_text_split(const char *text, size_t len, const char *separator, lq_text_unit **out,
                        int64_t *n_out);

/* ---- time and progress (clock.c) ------------------------------------------------------------- */

/* Monotonic wall clock in seconds. */
double lq_eval_now(void);

/* Progress of a long evaluation: called after each step with the steps done so far, their total
 * (chunks, units or benchmark runs) and what runs ("perplexity", "kl-divergence", "bench").
 * lq_eval never draws anything itself; tools pass tool_progress_cb (tools/common). */
typedef void (*lq_eval_progress_fn)(void *user, int64_t done, int64_t total, const char *what);

/* ---- tokenizer for a model (text.c) ---------------------------------------------------------- */

/* The tokenizer that goes with a model: `tok_path` if given (".json": HF tokenizer.json, ".gguf":
 * GGUF vocab, else llama2.c tokenizer.bin sized by the model's vocab), else tokenizer.json inside
 * the model directory. A llama2.c .bin model without tok_path is LQ_ERR_INVALID_ARG. A tokenizer
 * whose ids do not fit the model's vocabulary is LQ_ERR_MISMATCH. */
lq_status lq_eval_load_tokenizer(const lq_model *m, const char *model_path, const char *tok_path,
                                 lq_tokenizer **out);

/* Encode a whole text (no special-token parsing; BOS first when add_bos) into a malloc'd array
 * *ids of *n ids (free() it). Long texts are encoded in segments of about 1 MiB cut where the
 * tokenizer proves the ids cannot change (lq_tokenizer_safe_cut), so the tokenizer's scratch
 * stays that of one segment (a 50 MB line: 2.2 GB peak RSS encoded whole); a tokenizer without
 * safe cuts gets the text in one call. `what` prefixes allocation errors. (chunks.c) */
lq_status lq_eval_encode_text(const lq_tokenizer *tok, const char *text, size_t len, bool add_bos,
                              const char *what, int32_t **ids, int64_t *n);

/* ---- perplexity (perplexity.c) --------------------------------------------------------------- */

typedef struct lq_ppl_opts {
    /* Tokens per chunk (chunked mode) or per piece (per-line mode). <= 0: 512 in chunked mode,
     * the model's max_seq_len in per-line mode; always capped at max_seq_len. */
    int n_ctx;
    /* false: llama.cpp protocol. The whole text is encoded once (BOS first when the tokenizer
     * wants one) and cut into non-overlapping chunks of n_ctx tokens; each chunk's first token
     * is replaced by BOS, positions restart at 0, and only the second half is scored
     * (predictions of tokens n_ctx/2 + 1 .. n_ctx - 1).
     * true: each unit (line, or text between separators) is encoded with BOS on its own, cut
     * into pieces of n_ctx tokens each restarting at position 0, and every token after the
     * first of a piece is scored (the llama2.c reference protocol).
     * In per-line mode a CRLF inside a unit is read as LF, as the newline split already strips
     * the CR of each line: a --separator unit of CRLF lines scores what its LF twin scores. */
    bool per_line;
    const char *separator;  /* per-line mode: unit separator; NULL/"" = newline */
    /* <= 0: all. Chunked mode: at most this many chunks. Per-line mode: the first this many units
     * (non-empty lines or separator units), each scored whole in as many pieces as it takes. */
    int64_t max_chunks;
    lq_eval_progress_fn progress; /* NULL: silent */
    void *progress_user;
    /* KL divergence only: run the baseline with f32 activations (lq_matmul_set_act_mode
     * LQ_ACT_MODE_F32 around its forwards) and the model with the process's mode, so --kld on
     * the model itself measures what the integer-activation path changes. */
    bool base_f32_act;
} lq_ppl_opts;

typedef struct lq_ppl_result {
    double ppl;         /* exp(mean NLL) */
    double ppl_stderr;  /* llama.cpp: ppl * sqrt((E[nll^2] - E[nll]^2) / (n - 1)) */
    double nll_sum;     /* total NLL, natural log */
    double nll_mean;
    int64_t n_scored;   /* predicted tokens */
    int64_t n_tokens;   /* tokens the text encoded to (all units together in per-line mode) */
    int64_t n_chunks;   /* chunks (or pieces) evaluated */
    double seconds;     /* wall time of the forward passes and scoring, excluding tokenization */
} lq_ppl_result;

/* Perplexity of `text` (len bytes). The pool is borrowed (NULL = single thread). Every chunk is
 * evaluated with one lq_forward call returning all logits (prefill as GEMM); log-softmax is
 * computed in double. Empty text, or text too short for one chunk, is LQ_ERR_INVALID_ARG. */
lq_status lq_eval_perplexity(const lq_model *m, const lq_tokenizer *tok, lq_pool *pool,
                             const char *text, size_t len, const lq_ppl_opts *opts,
                             lq_ppl_result *out);

/* Negative log-likelihood -log softmax(logits)[target], computed in double. */
double lq_eval_nll(const float *logits, int vocab, int target);

/* ---- greedy generation (generate.c) ---------------------------------------------------------- */

/* Called once per generated token with its decoded bytes; return false to stop early. */
typedef bool (*lq_gen_token_fn)(void *user, int32_t id, const char *bytes, size_t len);

typedef struct lq_gen_result {
    int64_t n_prompt;     /* tokens prefilled */
    int64_t n_generated;  /* tokens emitted (EOS not counted) */
    double prefill_s;     /* seconds of the prompt forward */
    int64_t n_decode;     /* one-token forwards run (the first token comes from the prefill) */
    double decode_s;      /* seconds of the one-token forwards */
    bool hit_eos;
} lq_gen_result;

/* Greedy (argmax over the tokenizer's ids, lowest id on ties) decoding with session `s` of model
 * `m`: prefill `prompt` (n_prompt >= 1 tokens, BOS included by the caller) at position 0 with
 * one forward, then generate up to max_new tokens
 * one at a time. Stops at EOS (or BOS, which llama2.c models emit at a story's end), at
 * max_new, or when the session's context is full. `cb` may be NULL. */
lq_status lq_eval_generate_greedy(const lq_model *m, lq_session *s, const lq_tokenizer *tok,
                                  const int32_t *prompt, int n_prompt, int max_new,
                                  lq_gen_token_fn cb, void *user, lq_gen_result *out);

/* Index of the largest of n values (lowest index on ties). */
int lq_eval_argmax(const float *x, int n);

/* ---- speed benchmark (bench.c) --------------------------------------------------------------- */

typedef struct lq_bench_opts {
    int n_prompt;       /* prefill: one forward of this many random token ids (default 512) */
    int n_gen;          /* decode: this many one-token forwards (default 128) */
    int reps;           /* repetitions; medians are reported (default 5) */
    uint64_t seed;      /* random token ids */
    lq_eval_progress_fn progress; /* NULL: silent */
    void *progress_user;
} lq_bench_opts;

typedef struct lq_bench_stat {
    double median, min, max;  /* tokens per second */
} lq_bench_stat;

typedef struct lq_bench_result {
    lq_bench_stat prefill;    /* zero when n_prompt == 0 */
    lq_bench_stat decode;     /* zero when n_gen == 0 */
    uint64_t weight_bytes_per_token;
    int64_t n_params;
    int threads;
} lq_bench_result;

/* llama-bench style speed test: after one warm-up of each kind, `reps` prefills and `reps`
 * decodes on a fresh position 0. n_prompt / n_gen beyond the model's context are
 * LQ_ERR_INVALID_ARG. */
lq_status lq_eval_bench(const lq_model *m, lq_pool *pool, const lq_bench_opts *opts,
                        lq_bench_result *out);

/* Median / min / max of n values (sorts a copy). */
lq_bench_stat lq_bench_summarize(const double *v, int n);

/* ---- serving under load (serve_bench.c): continuous batching, the batch-size curve ---------- */

typedef struct lq_serve_opts {
    int n_requests;             /* synthetic trace: requests (default 32) */
    int prompt_min, prompt_max; /* prompt lengths, uniform (default 32 .. 256) */
    int gen_min, gen_max;       /* output lengths, uniform (default 16 .. 128) */
    double rate;                /* arrivals per second, Poisson; 0: all arrive at once */
    uint64_t seed;              /* lengths, arrival gaps and prompt ids */
    const char *trace;          /* a file instead: one request a line, "ARRIVAL_S PROMPT_LEN
                                 * GEN_LEN" ('#' comments, blank lines skipped) */
    int token_budget, max_seqs, prefill_chunk; /* lq_sched_opts (0: its defaults) */
    int page_tokens;            /* lq_batch_opts (0: 16) */
    int64_t max_pages;          /* 0: enough for max_seqs requests of the longest trace entry */
    lq_eval_progress_fn progress; /* per finished request; NULL: silent */
    void *progress_user;
} lq_serve_opts;

typedef struct lq_serve_result {
    int n_requests, max_running;
    int64_t prompt_tokens, gen_tokens, steps;
    double seconds;                     /* first arrival to last token */
    double gen_tok_s, total_tok_s;      /* generated / prompt + generated tokens per second */
    double ttft_mean, ttft_p50, ttft_p90, ttft_p99; /* time to first token from arrival, s */
    double itl_mean, itl_p50, itl_p90, itl_p99;     /* gap between a request's tokens, s */
    int page_tokens;
    lq_kv_type kv_type;                 /* the cache's rows (the model's lq_model_kv_cache) */
    size_t page_bytes;                  /* in kv_type: a q8 page is ~0.27 of an f32 one */
    int64_t kv_peak_pages, kv_peak_tokens;  /* pages in use at the fullest step, tokens held then */
    double kv_mean_bytes;               /* pages in use x page bytes, mean over steps */
    int64_t kv_pages_allocated;         /* the pool's high-water mark */
} lq_serve_result;

/* Replay a request trace through lq_sched in real time (arrivals on the wall clock; an idle
 * scheduler sleeps until the next one); prompts are random ids, every request generates exactly
 * its length (greedy, no stop token). A bad trace line is LQ_ERR_FORMAT naming file:line. */
lq_status lq_eval_serve_bench(const lq_model *m, lq_pool *pool, const lq_serve_opts *o, lq_serve_result *r);

/* llama-batched-bench's measurement on lq_batch: for each B, B sequences of n_prompt random ids
 * prefilled (steps of at most 512 rows), then n_gen decode steps of B tokens. The KV cache is
 * the model's type (lq_model_set_kv_cache), as in lq_eval_serve_bench. */
typedef struct lq_batch_point {
    int batch;
    double pp_s, tg_s;         /* seconds of the prefill and of the decode phase */
    double pp_tok_s, tg_tok_s; /* B x n_prompt / pp_s, B x n_gen / tg_s */
    int64_t kv_bytes;          /* KV pages in use after the last decode step x page bytes */
} lq_batch_point;
lq_status lq_eval_batch_curve(const lq_model *m, lq_pool *pool, const int *batch, int n_batch, int n_prompt,
                              int n_gen, uint64_t seed, lq_batch_point *out);

/* ---- KL divergence against a baseline model (kld.c) ------------------------------------------ */

/* What one scored token contributes: the baseline's next-token distribution P against the
 * model's Q, both from a log-softmax in double. */
typedef struct lq_kld_token {
    double kld;        /* KL(P || Q) = sum_i p_i (ln p_i - ln q_i), natural log, >= 0 */
    double nll_base;   /* -ln p[target] */
    double nll;        /* -ln q[target] */
    bool same_top;     /* argmax P == argmax Q (lowest index on ties) */
} lq_kld_token;

/* KL(P || Q) of the distributions softmax(base_logits) and softmax(logits) over `vocab` entries,
 * plus the target's NLL under each and whether their argmaxes agree. Log-softmax in double;
 * terms with p_i == 0 contribute 0 (the limit of p ln p). */
void lq_eval_kld_token(const float *base_logits, const float *logits, int vocab, int target,
                       lq_kld_token *out);

/* KL(P || Q) alone (same definition). */
double lq_eval_kld(const float *base_logits, const float *logits, int vocab);

typedef struct lq_kld_result {
    lq_ppl_result base;      /* perplexity of the baseline on the same tokens */
    lq_ppl_result model;     /* perplexity of the model */
    int64_t n_scored;        /* tokens compared */
    /* llama-perplexity --kl-divergence definitions (tools/perplexity/perplexity.cpp):
     * mean ± sqrt((E[x^2] - E[x]^2) / (n - 1)); percentiles interpolate linearly at
     * fraction * (n - 1) of the sorted values; the median averages the middle two. */
    double kld_mean, kld_stderr;
    double kld_min, kld_p1, kld_p5, kld_p10, kld_median, kld_p90, kld_p95, kld_p99, kld_p999,
        kld_max;
    double same_top, same_top_stderr;         /* share of tokens with the same argmax; binomial */
    double ln_ppl_ratio, ln_ppl_ratio_stderr; /* mean ln(PPL(Q)/PPL(base)), covariance-aware */
    double ppl_ratio;                         /* exp(ln_ppl_ratio) */
    double ppl_diff, ppl_diff_stderr;         /* PPL(Q) - PPL(base) */
    double ppl_diff_pct;                      /* 100 * ppl_diff / PPL(base) */
    double ln_ppl_cor;                        /* correlation of the per-token NLLs */
    /* Δp = q[target] - p[target]: mean, RMS (each ± its stderr) */
    double dp_mean, dp_stderr, dp_rms, dp_rms_stderr;
    /* percentiles 1/5/10 of ln(q[target] / p[target]) = nll_base - nll: how badly the worst
     * tokens lost probability of the correct continuation */
    double lr_p1, lr_p5, lr_p10;
    double seconds;          /* both models' forwards and the scoring */
} lq_kld_result;

/* Run the baseline and the model over the same chunks of `text` (the protocol and options of
 * lq_eval_perplexity, the baseline's context capping both) and compare their next-token
 * distributions token by token. Chunk by chunk: only two chunks of logits are ever held (plus
 * two doubles per scored token for the percentiles). The tokenizers must be the same
 * (lq_tokenizer_hash) and the models' vocabularies equal, else LQ_ERR_MISMATCH; the text is
 * tokenized once with `tok`. */
lq_status lq_eval_kl_divergence(const lq_model *base, const lq_tokenizer *base_tok,
                                const lq_model *m, const lq_tokenizer *tok, lq_pool *pool,
                                const char *text, size_t len, const lq_ppl_opts *opts,
                                lq_kld_result *out);

/* Percentile `fraction` in [0, 1] of n sorted values, llama.cpp style: linear interpolation at
 * fraction * (n - 1). 0 when n == 0. */
double lq_eval_percentile(const double *sorted, int64_t n, double fraction);

/* ---- a model as draft of its baseline (draft_eval.c) ------------------------------------------- */

typedef struct lq_draft_eval_opts {
    /* The chunks of lq_eval_perplexity (n_ctx, per_line, separator, max_chunks, progress): each
     * chunk's first n_prompt tokens are a prompt (BOS first as that protocol puts it). */
    lq_ppl_opts chunks;
    int n_prompt;   /* prompt tokens per chunk (default 64, at most the chunk) */
    int n_gen;      /* tokens generated greedily after each prompt (default 64) */
    int draft_max;  /* K (default 4) */
} lq_draft_eval_opts;

typedef struct lq_draft_eval_result {
    int64_t n_chunks, n_generated;
    int64_t n_drafted, n_accepted, n_judged, n_cycles; /* summed lq_spec_result fields */
    double accept_rate;    /* accepted / drafted: what speculation with this K gets */
    double accept_pos;     /* accepted / judged: share of positions where the draft's argmax is
                            * the baseline's, given the accepted (= the baseline's greedy) prefix */
    double alpha;          /* mean over judged positions of sum min(p, q) at temperature 1:
                            * the acceptance probability of speculative sampling there */
    double mean_accepted;  /* accepted draft tokens per baseline forward */
    double seconds;
} lq_draft_eval_result;

/* The model as draft of `base` on `text`: per chunk, greedy speculative decoding (lq_spec.h)
 * of n_gen tokens after the chunk's first n_prompt tokens, base verifying, K = draft_max; the
 * counts summed over chunks. The text is tokenized once with base_tok; the tokenizers must be
 * the same (lq_tokenizer_hash) and the vocabularies equal, else LQ_ERR_MISMATCH. */
lq_status lq_eval_draft(const lq_model *base, const lq_tokenizer *base_tok, const lq_model *m,
                        const lq_tokenizer *tok, lq_pool *pool, const char *text, size_t len,
                        const lq_draft_eval_opts *opts, lq_draft_eval_result *out);

/* ---- model summaries for comparison tables (compare.c) --------------------------------------- */

typedef struct lq_model_info {
    char format[48];          /* linear layers' format: "f32", "bf16", "W8A16", "W4A16-g128",
                               * "W4A16-g128-asym", "FP8", "FP8-tensor", "W8A8"; several joined
                               * with "+" in order of first use ("W4A16-g32+W8A16"), or "mixed" */
    uint64_t disk_bytes;      /* the checkpoint's files */
    int64_t n_params;         /* lq_model_param_count */
    int64_t linear_params;    /* weights of the decoder layers' linear projections */
    uint64_t linear_bytes;    /* their stored tensors: payload, scales, zero points, shapes */
    double bpw_linear;        /* 8 * linear_bytes / linear_params */
    double bpw_overall;       /* 8 * (every tensor's bytes) / n_params */
} lq_model_info;

/* Describe a loaded model from its bound weights and the checkpoint's tensors. */
lq_status lq_eval_model_info(const lq_model *m, lq_model_info *out);

#ifdef __cplusplus
}
#endif
#endif
