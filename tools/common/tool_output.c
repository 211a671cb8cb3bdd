/* tool_output.c - the shared steps of a model -> model tool (tool_output.h). */
#include "tool_output.h"

#include "tool_cli.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

int tool_output_start(tool_outdir *od, const char *out_dir, const char *model, bool force) {
    const char *inputs[] = {model, NULL};
    lq_status s = tool_outdir_check_inputs(out_dir, inputs);
    if (s != LQ_OK) return tool_fail_at("refusing to write into the input", out_dir, s);
    /* Before the output exists, so a typo in --model leaves nothing behind. */
    struct stat sb;
    if (stat(model, &sb) != 0)
        return tool_fail_at("cannot open model", model,
                            lq_fail(errno == ENOENT ? LQ_ERR_NOT_FOUND : LQ_ERR_IO, "%s", strerror(errno)));
    s = tool_outdir_begin(od, out_dir, force);
    if (s != LQ_OK) return tool_fail_at("cannot create output", out_dir, s);
    return 0;
}

lq_status tool_copy_file(const char *src, const char *dst) {
    int in;
    LQ_TRY(lq_file_open_input(src, &in, NULL));
    lq_file_out out;
    lq_status s = lq_file_begin(&out, dst);
    if (s != LQ_OK) {
        close(in);
        return s;
    }
    char buf[1 << 16];
    for (;;) {
        ssize_t n = read(in, buf, sizeof buf);
        if (n == 0) break;
        if (n < 0) {
            if (errno == EINTR) continue;
            s = lq_fail(LQ_ERR_IO, "%s: read failed: %s", src, strerror(errno));
            break;
        }
        if ((s = lq_file_write(&out, buf, (size_t)n)) != LQ_OK) break;
    }
    close(in);
    if (s != LQ_OK) {
        lq_file_abort(&out);
        return s;
    }
    return lq_file_commit(&out);
}

lq_status tool_output_copy_side_files(const tool_outdir *od, const char *model) {
    struct stat sb;
    if (stat(model, &sb) != 0 || !S_ISDIR(sb.st_mode)) return LQ_OK; /* a llama2.c .bin */
    static const char *const names[] = {"tokenizer.json", "tokenizer_config.json", "generation_config.json",
                                        "special_tokens_map.json"};
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++) {
        char src[PATH_MAX + 64], dst[PATH_MAX + 64];
        snprintf(src, sizeof src, "%s/%s", model, names[i]);
        if (stat(src, &sb) != 0) continue;
        LQ_TRY(tool_outdir_file(od, names[i], dst, sizeof dst));
        LQ_TRY(tool_copy_file(src, dst));
    }
    return LQ_OK;
}

void tool_print_json_string(const char *s) {
    putchar('"');
    for (; *s; s++) {
        if (*s == '"' || *s == '\\') printf("\\%c", *s);
        else if ((unsigned char)*s < 0x20) printf("\\u%04x", *s);
        else putchar(*s);
    }
    putchar('"');
}
