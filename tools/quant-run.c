/* quant-run - text generation: greedy, sampling (penalty, temperature, top-k, top-p, min-p) or
 * beam search, streamed to stdout token by token (beam search prints its result at the end).
 *
 *   quant-run --model PATH [--tokenizer FILE] --prompt TEXT|--prompt-file F [--max-tokens N]
 *             [--temperature T] [--top-k K] [--top-p P] [--min-p P] [--seed S]
 *             [--repeat-penalty R] [--repeat-last-n N]
 *             [--beams N] [--n-best K] [--length-penalty A] [--threads N] [--json]
 *   quant-run --model PATH --chat [--system TEXT] [--chat-template NAME|FILE] [--prompt TEXT]
 *   quant-run --model PATH --draft MODEL [--draft-max K] --prompt TEXT [decoding options]
 *
 * This file: the options, greedy / sampling and the dispatch. Beam search, --chat and --draft
 * are in quant-run/beam.c, chat.c and spec.c; the output helpers in quant-run/output.c.
 */
#include "lq_eval.h"
#include "quant-run/run_beam.h"
#include "quant-run/run_chat.h"
#include "quant-run/run_output.h"
#include "quant-run/run_spec.h"
#include "tool_cli.h"
#include "tool_model.h"
#include "tool_sample.h"

#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define TOOL "quant-run"

static void usage(FILE *f) {
    fprintf(f,
            "usage: " TOOL " --model PATH [--tokenizer FILE] (--prompt TEXT | --prompt-file F)\n"
            "                 [--max-tokens N] [--temperature T] [--top-k K] [--top-p P]\n"
            "                 [--min-p P] [--seed S] [--repeat-penalty R] [--repeat-last-n N]\n"
            "                 [--beams N] [--n-best K] [--length-penalty A] [--threads N]\n"
            "                 [--device cpu|cuda] [--kv-cache f32|f16|q8|fp8] [--json]\n"
            "       " TOOL " --model PATH --chat [--system TEXT] [--chat-template NAME|FILE]\n"
            "                 [--prompt TEXT | --prompt-file F] [decoding options]\n"
            "       " TOOL " --model PATH --draft MODEL [--draft-max K] (--prompt TEXT | ...)\n"
            "                 [greedy or sampling options]\n"
            "\n"
            "Generates text after the prompt (BOS first when the tokenizer wants one), until EOS\n"
            "or --max-tokens. The prompt and then each token are printed to stdout as they are\n"
            "decoded; speed goes to stderr as \"N tokens, X tok/s (prefill Y tok/s)\".\n"
            "\n"
            "Chat (--chat): the conversation goes through the model's chat template (GGUF\n"
            "tokenizer.chat_template; chat_template.jinja or tokenizer_config.json's\n"
            "chat_template in a directory), recognized by\n"
            "family as llama.cpp does and rendered as transformers renders it: chatml, gemma,\n"
            "llama3, llama3.1, llama2, mistral-v1/v3/v3-tekken/v7/v7-tekken, phi3, zephyr; any\n"
            "other template is refused. With --prompt (or --prompt-file) one reply is printed;\n"
            "without, each stdin line is a user turn (history kept; each turn prefills the\n"
            "whole conversation again) until EOF or an empty line.\n"
            "A reply ends at the template's end-of-turn token (<|im_end|>, <end_of_turn>,\n"
            "<|eot_id|>, <|end|>) or EOS, or after --max-tokens.\n"
            "  --chat                apply the chat template\n"
            "  --system TEXT         system message; '' = none, not even the default system\n"
            "                        prompt some templates insert (SmolLM2, Qwen2.5)\n"
            "  --chat-template X     a family name above, or a file holding a Jinja template, for\n"
            "                        models that ship none or ship one that is not recognized\n"
            "\n"
            "Decoding:\n"
            "  greedy (the default)  argmax at every step: the same text on every run\n"
            "  sampling              chosen by giving any of --temperature, --top-k, --top-p,\n"
            "                        --min-p, --seed; the others then default to temperature %.1f,\n"
            "                        top-k %d, top-p %.2f, min-p %.2f. Processors run in the order\n"
            "                        repetition penalty -> temperature -> top-k -> top-p -> min-p.\n"
            "                        --temperature 0 is greedy.\n"
            "  beam search           --beams N (N > 1): prints the best hypothesis (or the\n"
            "                        --n-best best) when the search ends\n"
            "\n"
            "Speculative decoding (--draft MODEL): the draft proposes up to --draft-max tokens\n"
            "(default 4), the model checks them in one forward and keeps the accepted prefix.\n"
            "Greedy: the text is the model's own greedy text. Sampling: the rejection rule of\n"
            "Leviathan et al. / Chen et al. on the processed distributions of both models, so\n"
            "the text follows the model's sampling distribution (not the same draws as without\n"
            "--draft). The draft needs the same vocabulary and tokenizer. Afterwards the model\n"
            "runs alone on the same prompt; stderr (or --json \"speculative\") reports the\n"
            "acceptance rate, mean accepted length, tokens per target forward, the speedup\n"
            "over the model alone (decode tok/s) and whether the text is identical.\n"
            "  --draft MODEL         draft model (directory, GGUF or .bin; --tokenizer applies)\n"
            "  --draft-max K         most draft tokens per target forward (default 4)\n"
            "\n"
            "  --model PATH          Hugging Face directory, GGUF file or llama2.c .bin\n"
            "  --tokenizer FILE      tokenizer.bin (required for a .bin model), tokenizer.json or .gguf\n"
            "  --prompt TEXT         prompt text (may be empty: generation starts from BOS)\n"
            "  --prompt-file F       read the prompt from a file\n"
            "  --max-tokens N        most tokens to generate (default 256)\n"
            "  --temperature T       0 = greedy; usual 0.7-1.0 (sampling default %.1f)\n"
            "  --top-k K             keep the K most likely tokens, 0 = off; usual 40-100 (default %d)\n"
            "  --top-p P             keep the smallest set with probability mass >= P, 1 = off;\n"
            "                        usual 0.9-0.95 (default %.2f)\n"
            "  --min-p P             keep tokens with probability >= P x the top one, 0 = off\n"
            "                        (default %.2f)\n"
            "  --seed S              random seed (64-bit); the same seed and options give the same\n"
            "                        text on every machine (default: from the clock, printed on\n"
            "                        stderr and in --json)\n"
            "  --repeat-penalty R    divide positive / multiply negative logits of the last\n"
            "                        --repeat-last-n context tokens by R (CTRL rule); 1 = off (default);\n"
            "                        usual 1.05-1.3. Applies to greedy and sampling\n"
            "  --repeat-last-n N     tokens of context the penalty looks at (default 64)\n"
            "  --beams N             beam search with N beams (default 1: no beam search)\n"
            "  --n-best K            print the K best hypotheses (default 1, at most --beams)\n"
            "  --length-penalty A    rank hypotheses by log-prob / length^A (default 1.0; 0 = total\n"
            "                        log-prob); length counts the EOS token\n"
            "  --threads N           worker threads (default: all CPUs)\n"
            "  --device D            cpu (default) or cuda: weights, KV cache and compute on the\n"
            "                        GPU (needs a build with CUDA)\n"
            "  --kv-cache T          KV cache type: f32 (default), f16, q8 (int8, a scale per token\n"
            "                        and head, as llama.cpp's -ctk q8_0) or fp8 (E4M3, likewise);\n"
            "                        CPU, one sequence (not with --beams). Default: the\n"
            "                        checkpoint's kv_cache_scheme, else f32\n"
            "  --json                no streaming: one JSON object on stdout with the chosen token\n"
            "                        ids, texts and log-probabilities. \"logprob\" is under the\n"
            "                        model's unprocessed distribution (log-softmax of its logits);\n"
            "                        \"logprob_processed\" under the distribution actually sampled\n"
            "                        from (after penalty, temperature and truncation; 0 for greedy).\n"
            "                        Beam search reports \"logprob\" only (it scores raw log-probs)\n"
            "  --help                this text\n"
            "\n"
            "Exit codes: 0 ok, 2 bad arguments, 3 bad input file, 4 I/O, 1 other.\n",
            TOOL_SAMPLE_DEF_TEMPERATURE, TOOL_SAMPLE_DEF_TOP_K, TOOL_SAMPLE_DEF_TOP_P,
            TOOL_SAMPLE_DEF_MIN_P, TOOL_SAMPLE_DEF_TEMPERATURE, TOOL_SAMPLE_DEF_TOP_K,
            TOOL_SAMPLE_DEF_TOP_P, TOOL_SAMPLE_DEF_MIN_P);
}

/* ---- options ----------------------------------------------------------------------------------- */

typedef struct run_args {
    const char *model, *tok_path, *prompt, *prompt_file;
    const char *system, *chat_template; /* --system, --chat-template */
    bool chat;
    int max_tokens, threads;
    tool_sample_args dec; /* decoding options, checked and defaulted by tool_sample_finish */
    bool json;
    lq_device device;     /* --device: where the model runs */
    lq_kv_type kv_cache;  /* --kv-cache */
    bool kv_cache_set;
    const char *draft;    /* --draft MODEL: speculative decoding */
    int draft_max;        /* --draft-max K */
} run_args;

static int parse_args(int argc, char **argv, run_args *a) {
    *a = (run_args){.max_tokens = 256, .draft_max = 4};
    tool_sample_args_init(&a->dec);
    int rc = 0;
    tool_args t = tool_args_begin(argc, argv);
    while (tool_args_next(&t)) {
        if (tool_args_help(&t)) {
            usage(stdout);
            return -1;
        } else if (tool_args_value(&t, "--model")) {
            a->model = t.value;
        } else if (tool_args_value(&t, "--tokenizer")) {
            a->tok_path = t.value;
        } else if (tool_args_value(&t, "--prompt")) {
            a->prompt = t.value;
        } else if (tool_args_value(&t, "--prompt-file")) {
            a->prompt_file = t.value;
        } else if (tool_args_value(&t, "--max-tokens")) {
            if (!tool_parse_int(t.value, 0, &a->max_tokens)) return tool_args_bad_value(&t);
        } else if (tool_args_value(&t, "--threads")) {
            if (!tool_parse_int(t.value, 1, &a->threads)) return tool_args_bad_value(&t);
        } else if (tool_args_value(&t, "--device")) {
            if ((a->device = lq_device_from_name(t.value)) == LQ_DEVICE_COUNT) return tool_args_bad_value(&t);
        } else if (tool_args_value(&t, "--kv-cache")) {
            if (lq_kv_type_parse(t.value, &a->kv_cache) != 0) return tool_args_bad_value(&t);
            a->kv_cache_set = true;
        } else if (tool_sample_arg(&t, &a->dec, &rc)) { /* tools/common/tool_sample.c */
            if (rc) return rc;
        } else if (tool_args_flag(&t, "--json")) {
            a->json = true;
        } else if (tool_args_value(&t, "--draft")) {
            a->draft = t.value;
        } else if (tool_args_value(&t, "--draft-max")) {
            if (!tool_parse_int(t.value, 1, &a->draft_max)) return tool_args_bad_value(&t);
        } else if (tool_args_flag(&t, "--chat")) {
            a->chat = true;
        } else if (tool_args_value(&t, "--system")) {
            a->system = t.value;
        } else if (tool_args_value(&t, "--chat-template")) {
            a->chat_template = t.value;
        } else {
            return tool_args_unknown(&t);
        }
    }
    if (!a->model) return tool_bad_args("--model is required");
    if ((a->system || a->chat_template) && !a->chat)
        return tool_bad_args("--system and --chat-template go with --chat");
    if (a->chat && a->json && !a->prompt && !a->prompt_file)
        return tool_bad_args("--chat --json needs --prompt (interactive chat streams)");
    if (!a->chat && !a->prompt && !a->prompt_file)
        return tool_bad_args("--prompt TEXT or --prompt-file F is required");
    if (a->prompt && a->prompt_file) return tool_bad_args("--prompt and --prompt-file are exclusive");
    /* checks and sampling defaults shared with quant-distill; the seed from the clock */
    int rc2 = tool_sample_finish(&a->dec, true);
    if (rc2 == 0 && a->chat && a->dec.beams > 1) return tool_bad_args("--chat does not take --beams");
    if (rc2 == 0 && a->draft && (a->chat || a->dec.beams > 1))
        return tool_bad_args("--draft does not go with --chat or --beams");
    if (rc2 == 0 && a->draft && a->device != LQ_DEVICE_CPU)
        return tool_bad_args("--draft runs on the cpu only");
    return rc2;
}

/* ---- greedy and sampling ------------------------------------------------------------------------ */

typedef struct gen_ctx {
    const lq_tokenizer *tok;
    int32_t prev;
    bool stream;
    tool_out_state *out;
    tool_tok_log log;
    bool oom;
} gen_ctx;

static bool on_token(void *user, const lq_sample_info *t) {
    gen_ctx *g = user;
    char piece[256];
    size_t n = lq_tokenizer_decode_token(g->tok, g->prev, t->id, piece, sizeof piece);
    if (n > sizeof piece) n = sizeof piece; /* pieces are short; never overrun */
    g->prev = t->id;
    if (!tool_log_push(&g->log, t->id, t->logprob, t->logprob_processed, piece, n)) {
        g->oom = true;
        return false;
    }
    if (g->stream) {
        tool_out_write(g->out, piece, n);
        fflush(stdout); /* the point of streaming is to see each token as it comes */
        return !ferror(stdout);
    }
    return true;
}

static int run_sample(const run_args *a, const lq_model *m, lq_session *sess, tool_spec *spec,
                      lq_pool *pool, const lq_tokenizer *tok, const int32_t *ids, int n,
                      const char *prompt, size_t plen) {
    lq_sampler *smp = NULL;
    lq_status s = lq_sampler_create(&a->dec.sp, &smp);
    if (s != LQ_OK) return tool_fail(s);
    tool_out_state out = {0};
    gen_ctx g = {.tok = tok, .prev = ids[n - 1], .stream = !a->json, .out = &out};
    if (!a->json) { /* echo the prompt so the output reads as one text */
        tool_out_write(&out, prompt, plen);
        fflush(stdout);
    }
    int32_t stop[2] = {lq_tokenizer_eos(tok), lq_tokenizer_bos(tok)};
    /* llama2.c models end a story with BOS, HF models with EOS */
    lq_sample_gen_opts o = {.max_new = a->max_tokens, .stop_ids = stop, .n_stop = 2,
                            .vocab = lq_tokenizer_vocab_size(tok)};
    lq_sample_gen_result r;
    if (spec)
        s = tool_spec_generate(spec, m, pool, &a->dec.sp, ids, n, &o, on_token, &g, &r);
    else
        s = lq_sample_generate(m, sess, smp, ids, n, &o, on_token, &g, &r);
    lq_sampler_free(smp);
    int rc = 0;
    if (!a->json && out.bytes > 0 && out.last != '\n') tool_out_write(&out, "\n", 1);
    if (s == LQ_OK && g.oom) s = lq_fail(LQ_ERR_NOMEM, "out of memory for the generated text");
    if (s != LQ_OK) {
        fflush(stdout);
        rc = tool_fail(s);
        goto done;
    }
    double tps = r.decode_s > 0 ? (double)r.n_decode / r.decode_s : 0;
    double pps = r.prefill_s > 0 ? (double)r.n_prompt / r.prefill_s : 0;
    bool greedy = a->dec.sp.temperature == 0;
    if (a->json) {
        json_t *j = json_object();
        json_object_set_new(j, "mode", json_string(greedy ? "greedy" : "sample"));
        json_t *p = json_object();
        json_object_set_new(p, "temperature", tool_json_float(a->dec.sp.temperature));
        json_object_set_new(p, "top_k", json_integer(a->dec.sp.top_k));
        json_object_set_new(p, "top_p", tool_json_float(a->dec.sp.top_p));
        json_object_set_new(p, "min_p", tool_json_float(a->dec.sp.min_p));
        json_object_set_new(p, "repeat_penalty", tool_json_float(a->dec.sp.repeat_penalty));
        json_object_set_new(p, "repeat_last_n", json_integer(a->dec.sp.repeat_last_n));
        /* a string: JSON readers lose integers above 2^53 */
        char seed[32];
        snprintf(seed, sizeof seed, "%llu", (unsigned long long)a->dec.sp.seed);
        json_object_set_new(p, "seed", json_string(seed));
        json_object_set_new(j, "params", p);
        json_object_set_new(j, "prompt", tool_json_text(prompt, plen, NULL));
        json_object_set_new(j, "prompt_tokens", json_integer(n));
        json_object_set_new(j, "text", tool_json_text(g.log.text, g.log.len, NULL));
        json_object_set_new(j, "n_generated", json_integer(r.n_generated));
        json_object_set_new(j, "stop", json_string(tool_stop_reason(r.hit_stop, r.n_generated,
                                                               a->max_tokens)));
        json_object_set_new(j, "logprob_sum", json_real(tool_log_sum(&g.log)));
        json_object_set_new(j, "tokens", tool_log_json(&g.log, true));
        json_object_set_new(j, "tokens_per_second", json_real(tps));
        json_object_set_new(j, "prefill_tokens_per_second", json_real(pps));
        if (spec) tool_spec_json(spec, j);
        if (!tool_print_json(j)) {
            rc = tool_error(1, "cannot format the JSON output");
            goto done;
        }
    }
    if ((rc = tool_finish_stdout()) != 0) goto done;
    fprintf(stderr, "%lld tokens, %.2f tok/s (prefill %.2f tok/s)", (long long)r.n_generated, tps,
            pps);
    if (!greedy) fprintf(stderr, ", seed %llu", (unsigned long long)a->dec.sp.seed);
    fputc('\n', stderr);
    if (spec) tool_spec_print(spec, stderr);
done:
    tool_log_free(&g.log);
    return rc;
}

/* ---- main ------------------------------------------------------------------------------------------ */

int main(int argc, char **argv) {
    tool_init(TOOL, usage);
    run_args a;
    int prc = parse_args(argc, argv, &a);
    if (prc != 0) return prc < 0 ? 0 : prc;

    char *file_text = NULL;
    const char *prompt = a.prompt;
    size_t plen = 0;
    lq_status s;
    if (a.chat && !a.prompt && !a.prompt_file) {
        plen = 0; /* interactive: turns come from stdin */
    } else if (a.prompt_file) {
        if ((s = lq_text_read_file(a.prompt_file, &file_text, &plen)) != LQ_OK) return tool_fail(s);
        prompt = file_text;
    } else {
        plen = strlen(prompt);
    }

    int rc = 0;
    lq_model *m = NULL;
    lq_tokenizer *tok = NULL;
    lq_pool *pool = NULL;
    lq_session *sess = NULL;
    int32_t *ids = NULL;
    tool_spec spec = {0};
    if ((s = lq_model_load(a.model, &m)) != LQ_OK) { rc = tool_fail(s); goto done; }
    if ((s = lq_model_to_device(m, a.device)) != LQ_OK) { rc = tool_fail(s); goto done; }
    if (a.kv_cache_set && (s = lq_model_set_kv_cache(m, a.kv_cache)) != LQ_OK) { rc = tool_fail(s); goto done; }
    if ((s = lq_eval_load_tokenizer(m, a.model, a.tok_path, &tok)) != LQ_OK) { rc = tool_fail(s); goto done; }
    if (!(pool = lq_pool_create(a.threads))) {
        rc = tool_error(1, "cannot create a pool of %d threads", a.threads);
        goto done;
    }
    if (a.chat) {
        tool_chat_opts co = {.model_path = a.model, .tok_path = a.tok_path,
                             .template_arg = a.chat_template, .system = a.system,
                             .max_tokens = a.max_tokens, .sp = a.dec.sp, .json = a.json};
        rc = tool_chat_run(&co, m, tok, pool, prompt, plen);
        goto done;
    }
    bool add_bos = lq_tokenizer_bos(tok) >= 0 &&
                   (lq_tokenizer_add_bos_default(tok) || plen == 0);
    int64_t n = 0;
    s = lq_tokenizer_encode(tok, prompt, plen, add_bos, true, NULL, 0, &n);
    if (s != LQ_OK && s != LQ_ERR_INVALID_ARG) { rc = tool_fail(s); goto done; }
    if (!(ids = malloc((size_t)(n > 0 ? n : 1) * sizeof *ids))) {
        rc = tool_fail(lq_fail(LQ_ERR_NOMEM, "cannot allocate %lld prompt ids", (long long)n));
        goto done;
    }
    if ((s = lq_tokenizer_encode(tok, prompt, plen, add_bos, true, ids, n, &n)) != LQ_OK) {
        rc = tool_fail(s);
        goto done;
    }
    if (n == 0) {
        rc = tool_error(2, "the prompt is empty and the tokenizer has no BOS to start from");
        goto done;
    }
    int max_ctx = lq_model_config(m)->max_seq_len;
    if (n >= max_ctx) {
        rc = tool_error(2, "prompt of %lld tokens does not fit the context of %d", (long long)n, max_ctx);
        goto done;
    }
    if (a.dec.beams > 1 && a.max_tokens > 0) { /* 0 tokens: nothing to search, the plain path */
        rc = tool_beam_run(&a.dec, a.max_tokens, a.json, m, pool, tok, ids, (int)n, prompt, plen);
        goto done;
    }
    if (a.draft) { /* the speculative path makes its own sessions */
        if ((rc = tool_spec_load(&spec, a.model, m, tok, a.draft, a.tok_path, a.draft_max)) == 0)
            rc = run_sample(&a, m, NULL, &spec, pool, tok, ids, (int)n, prompt, plen);
        goto done;
    }
    int n_ctx = (int)n + a.max_tokens < max_ctx ? (int)n + a.max_tokens : max_ctx;
    if ((s = lq_session_create(m, n_ctx, pool, &sess)) != LQ_OK) { rc = tool_fail(s); goto done; }
    rc = run_sample(&a, m, sess, NULL, pool, tok, ids, (int)n, prompt, plen);
done:
    tool_spec_free(&spec);
    free(ids);
    lq_session_free(sess);
    lq_pool_free(pool);
    lq_tokenizer_free(tok);
    lq_model_free(m);
    free(file_text);
    return rc;
}
