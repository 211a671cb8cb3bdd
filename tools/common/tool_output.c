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

void tool_print_json_string(const char *s) {
    putchar('"');
    for (; *s; s++) {
        if (*s == '"' || *s == '\\') printf("\\%c", *s);
        else if ((unsigned char)*s < 0x20) printf("\\u%04x", *s);
        else putchar(*s);
    }
    putchar('"');
}
