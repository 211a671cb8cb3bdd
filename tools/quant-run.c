/* quant-run - greedy text generation, streamed to stdout token by token.
 *
 *   quant-run --model PATH [--tokenizer FILE] --prompt TEXT|--prompt-file F
 *             [--max-tokens N] [--threads N]
 */
#include "lq_eval.h"

#include <errno.h>
#include <limits.h>
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

static int bad_args(const char *fmt, const char *a) {
    fprintf(stderr, TOOL ": error: ");
    fprintf(stderr, fmt, a);
    fprintf(stderr, "\n");
    usage(stderr);
    return 2;
}

static int fail(lq_status s) {
    fprintf(stderr, TOOL ": error: %s\n", lq_last_error());
    return lq_status_exit_code(s);
}

static bool parse_int(const char *s, int min, int *out) {
    if (!s || !*s) return false;
    char *end;
    errno = 0;
    long v = strtol(s, &end, 10);
    if (*end || errno || v < min || v > INT_MAX) return false;
    *out = (int)v;
    return true;
}

static bool stream_token(void *user, int32_t id, const char *bytes, size_t len) {
    (void)user;
    (void)id;
    fwrite(bytes, 1, len, stdout);
    fflush(stdout); /* the point of streaming is to see each token as it comes */
    return !ferror(stdout);
}

int main(int argc, char **argv) {
    const char *model = NULL, *tok_path = NULL, *prompt = NULL, *prompt_file = NULL;
    int max_tokens = 256, threads = 0;
    for (int i = 1; i < argc; i++) {
        const char *o = argv[i];
        const char *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (strcmp(o, "--help") == 0 || strcmp(o, "-h") == 0) {
            usage(stdout);
            return 0;
        }
        bool takes_value = strcmp(o, "--model") == 0 || strcmp(o, "--tokenizer") == 0 ||
                           strcmp(o, "--prompt") == 0 || strcmp(o, "--prompt-file") == 0 ||
                           strcmp(o, "--max-tokens") == 0 || strcmp(o, "--threads") == 0;
        if (!takes_value) return bad_args("unknown argument '%s'", o);
        if (!v) return bad_args("option %s needs a value", o);
        i++;
        if (strcmp(o, "--model") == 0) model = v;
        else if (strcmp(o, "--tokenizer") == 0) tok_path = v;
        else if (strcmp(o, "--prompt") == 0) prompt = v;
        else if (strcmp(o, "--prompt-file") == 0) prompt_file = v;
        else if (strcmp(o, "--max-tokens") == 0) {
            if (!parse_int(v, 0, &max_tokens)) return bad_args("bad value for --max-tokens: '%s'", v);
        } else if (!parse_int(v, 1, &threads)) {
            return bad_args("bad value for --threads: '%s'", v);
        }
    }
    if (!model) return bad_args("%s", "--model is required");
    if (!prompt && !prompt_file) return bad_args("%s", "--prompt TEXT or --prompt-file F is required");
    if (prompt && prompt_file) return bad_args("%s", "--prompt and --prompt-file are exclusive");

    char *file_text = NULL;
    size_t plen = 0;
    lq_status s;
    if (prompt_file) {
        if ((s = lq_text_read_file(prompt_file, &file_text, &plen)) != LQ_OK) return fail(s);
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
    if ((s = lq_model_load(model, &m)) != LQ_OK) { rc = fail(s); goto done; }
    if ((s = lq_eval_load_tokenizer(m, model, tok_path, &tok)) != LQ_OK) { rc = fail(s); goto done; }
    if (!(pool = lq_pool_create(threads))) {
        fprintf(stderr, TOOL ": error: cannot create a pool of %d threads\n", threads);
        rc = 1;
        goto done;
    }
    bool add_bos = lq_tokenizer_bos(tok) >= 0 &&
                   (lq_tokenizer_add_bos_default(tok) || plen == 0);
    int64_t n = 0;
    s = lq_tokenizer_encode(tok, prompt, plen, add_bos, true, NULL, 0, &n);
    if (s != LQ_OK && s != LQ_ERR_INVALID_ARG) { rc = fail(s); goto done; }
    if (!(ids = malloc((size_t)(n > 0 ? n : 1) * sizeof *ids))) {
        rc = fail(lq_fail(LQ_ERR_NOMEM, "cannot allocate %lld prompt ids", (long long)n));
        goto done;
    }
    if ((s = lq_tokenizer_encode(tok, prompt, plen, add_bos, true, ids, n, &n)) != LQ_OK) {
        rc = fail(s);
        goto done;
    }
    if (n == 0) {
        fprintf(stderr, TOOL ": error: the prompt is empty and the tokenizer has no BOS to start from\n");
        rc = 2;
        goto done;
    }
    int max_ctx = m->cfg.max_seq_len;
    if (n >= max_ctx) {
        fprintf(stderr, TOOL ": error: prompt of %lld tokens does not fit the context of %d\n",
                (long long)n, max_ctx);
        rc = 2;
        goto done;
    }
    int n_ctx = (int)n + max_tokens < max_ctx ? (int)n + max_tokens : max_ctx;
    if ((s = lq_session_create(m, n_ctx, pool, &sess)) != LQ_OK) { rc = fail(s); goto done; }
    /* echo the prompt so the output reads as one text */
    fwrite(prompt, 1, plen, stdout);
    fflush(stdout);
    lq_gen_result r;
    s = lq_eval_generate_greedy(m, sess, tok, ids, (int)n, max_tokens, stream_token, NULL, &r);
    printf("\n");
    fflush(stdout);
    if (s != LQ_OK) { rc = fail(s); goto done; }
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
