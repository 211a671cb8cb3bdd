/* quant-run - greedy text generation, streamed to stdout token by token.
 *
 *   quant-run --model PATH [--tokenizer FILE] --prompt TEXT|--prompt-file F
 *             [--max-tokens N] [--threads N]
 */
#include "lq_eval.h"
#include "tool_cli.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define TOOL "quant-run"

static void usage(FILE *f) {
    fprintf(f,
            "usage: " TOOL " --model PATH [--tokenizer FILE] (--prompt TEXT | --prompt-file F)\n"
            "                 [--max-tokens N] [--threads N]\n"
            "\n"
            "Greedy generation: the prompt (BOS first when the tokenizer wants one) is run in one\n"
            "forward, then tokens are chosen by argmax and printed to stdout as they are decoded,\n"
            "until EOS or --max-tokens (default 256). Speed goes to stderr as\n"
            "\"N tokens, X tok/s (prefill Y tok/s)\".\n"
            "\n"
            "  --model PATH       Hugging Face directory or llama2.c .bin\n"
            "  --tokenizer FILE   tokenizer.bin (required for a .bin model), tokenizer.json or .gguf\n"
            "  --prompt TEXT      prompt text (may be empty: generation starts from BOS)\n"
            "  --prompt-file F    read the prompt from a file\n"
            "  --max-tokens N     most tokens to generate (default 256)\n"
            "  --threads N        worker threads (default: all CPUs)\n"
            "  --help             this text\n"
            "\n"
            "Exit codes: 0 ok, 2 bad arguments, 3 bad input file, 4 I/O, 1 other.\n");
}

/* What has gone to stdout so far: the text must end with a newline before the speed line goes
 * to stderr, or a terminal shows "...Lily.40 tokens, ..." on one line. */
typedef struct out_state {
    size_t bytes;
    char last;
} out_state;

static void out_write(out_state *o, const char *bytes, size_t len) {
    if (len == 0) return;
    fwrite(bytes, 1, len, stdout);
    o->bytes += len;
    o->last = bytes[len - 1];
}

static bool stream_token(void *user, int32_t id, const char *bytes, size_t len) {
    (void)id;
    out_write(user, bytes, len);
    fflush(stdout); /* the point of streaming is to see each token as it comes */
    return !ferror(stdout);
}

int main(int argc, char **argv) {
    tool_init(TOOL, usage);
    const char *model = NULL, *tok_path = NULL, *prompt = NULL, *prompt_file = NULL;
    int max_tokens = 256, threads = 0;
    tool_args a = tool_args_begin(argc, argv);
    while (tool_args_next(&a)) {
        if (tool_args_help(&a)) {
            usage(stdout);
            return 0;
        } else if (tool_args_value(&a, "--model")) {
            model = a.value;
        } else if (tool_args_value(&a, "--tokenizer")) {
            tok_path = a.value;
        } else if (tool_args_value(&a, "--prompt")) {
            prompt = a.value;
        } else if (tool_args_value(&a, "--prompt-file")) {
            prompt_file = a.value;
        } else if (tool_args_value(&a, "--max-tokens")) {
            if (!tool_parse_int(a.value, 0, &max_tokens)) return tool_args_bad_value(&a);
        } else if (tool_args_value(&a, "--threads")) {
            if (!tool_parse_int(a.value, 1, &threads)) return tool_args_bad_value(&a);
        } else {
            return tool_args_unknown(&a);
        }
    }
    if (!model) return tool_bad_args("--model is required");
    if (!prompt && !prompt_file) return tool_bad_args("--prompt TEXT or --prompt-file F is required");
    if (prompt && prompt_file) return tool_bad_args("--prompt and --prompt-file are exclusive");

    char *file_text = NULL;
    size_t plen = 0;
    lq_status s;
    if (prompt_file) {
        if ((s = lq_text_read_file(prompt_file, &file_text, &plen)) != LQ_OK) return tool_fail(s);
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
    if ((s = lq_model_load(model, &m)) != LQ_OK) { rc = tool_fail(s); goto done; }
    if ((s = lq_eval_load_tokenizer(m, model, tok_path, &tok)) != LQ_OK) { rc = tool_fail(s); goto done; }
    if (!(pool = lq_pool_create(threads))) {
        rc = tool_error(1, "cannot create a pool of %d threads", threads);
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
    int max_ctx = m->cfg.max_seq_len;
    if (n >= max_ctx) {
        rc = tool_error(2, "prompt of %lld tokens does not fit the context of %d", (long long)n, max_ctx);
        goto done;
    }
    int n_ctx = (int)n + max_tokens < max_ctx ? (int)n + max_tokens : max_ctx;
    if ((s = lq_session_create(m, n_ctx, pool, &sess)) != LQ_OK) { rc = tool_fail(s); goto done; }
    /* echo the prompt so the output reads as one text */
    out_state out = {0};
    out_write(&out, prompt, plen);
    fflush(stdout);
    lq_gen_result r;
    s = lq_eval_generate_greedy(m, sess, tok, ids, (int)n, max_tokens, stream_token, &out, &r);
    if (out.bytes > 0 && out.last != '\n') out_write(&out, "\n", 1);
    if (s != LQ_OK) {
        fflush(stdout);
        rc = tool_fail(s);
        goto done;
    }
    if ((rc = tool_finish_stdout()) != 0) goto done;
    double tps = r.decode_s > 0 ? (double)r.n_decode / r.decode_s : 0;
    double pps = r.prefill_s > 0 ? (double)r.n_prompt / r.prefill_s : 0;
    fprintf(stderr, "%lld tokens, %.2f tok/s (prefill %.2f tok/s)\n", (long long)r.n_generated,
            tps, pps);
done:
    free(ids);
    lq_session_free(sess);
    lq_pool_free(pool);
    lq_tokenizer_free(tok);
    lq_model_free(m);
    free(file_text);
    return rc;
}
