/* test_files.c - how inputs are opened and outputs written (lq_file.h, tool_outdir), and the
 * audit defects of issue 10 about them: 4 (SIGKILL leftovers), 14 (a FIFO input blocks every
 * tool), 17 (`--out ""` reported as "path too long"). */
#include <criterion/criterion.h>

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "libquant.h"
#include "lq_test_util.h"

/* ---- fsync, observed -------------------------------------------------------------------------- *
 * This executable's fsync replaces libc's for the statically linked library, so a test can see
 * which files and directories were synced (by inode) instead of trusting a comment. */

enum { MAX_SYNCS = 64 };
static ino_t g_synced[MAX_SYNCS];
static int g_n_synced;

int fsync(int fd) {
    struct stat sb;
    if (fstat(fd, &sb) == 0 && g_n_synced < MAX_SYNCS) g_synced[g_n_synced++] = sb.st_ino;
    return (int)syscall(SYS_fsync, fd);
}

static bool was_synced(const char *path) {
    struct stat sb;
    if (stat(path, &sb) != 0) return false;
    for (int i = 0; i < g_n_synced; i++)
        if (g_synced[i] == sb.st_ino) return true;
    return false;
}

static char g_dir[64];

static void setup(void) {
    snprintf(g_dir, sizeof g_dir, "/tmp/lq_files_XXXXXX");
    cr_assert_not_null(mkdtemp(g_dir));
    g_n_synced = 0;
}

static void teardown(void) {
    char cmd[128];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", g_dir);
    cr_expect_eq(system(cmd), 0);
}

TestSuite(files, .init = setup, .fini = teardown);

/* Entries of `dir` other than . and .. */
static int count_entries(const char *dir) {
    DIR *d = opendir(dir);
    cr_assert_not_null(d, "%s", dir);
    int n = 0;
    struct dirent *e;
    while ((e = readdir(d)))
        if (strcmp(e->d_name, ".") != 0 && strcmp(e->d_name, "..") != 0) n++;
    closedir(d);
    return n;
}

/* ---- durable writes ---------------------------------------------------------------------------- */

Test(files, write_all_syncs_the_file_and_its_directory) {
    char p[128];
    snprintf(p, sizeof p, "%s/a.json", g_dir);
    cr_assert_eq(lq_file_write_all(p, "{}\n", 3), LQ_OK, "%s", lq_last_error());
    char *t = lq_test_read_file(p, NULL);
    cr_expect_str_eq(t, "{}\n");
    free(t);
    cr_expect_eq(count_entries(g_dir), 1, "the temporary file is gone");
    cr_expect(was_synced(p), "the file's data was not fsynced before the rename");
    cr_expect(was_synced(g_dir), "the directory was not fsynced after the rename");
}

Test(files, replacing_keeps_the_old_file_until_commit) {
    char p[128];
    snprintf(p, sizeof p, "%s/config.json", g_dir);
    cr_assert_eq(lq_file_write_all(p, "old", 3), LQ_OK);
    lq_file_out f;
    cr_assert_eq(lq_file_begin(&f, p), LQ_OK, "%s", lq_last_error());
    cr_assert_eq(lq_file_write(&f, "new", 3), LQ_OK);
    char *t = lq_test_read_file(p, NULL);
    cr_expect_str_eq(t, "old", "readers see the old file until commit");
    free(t);
    cr_expect_eq(count_entries(g_dir), 2, "config.json and its .tmp.<pid>");
    lq_file_abort(&f);
    lq_file_abort(&f); /* twice is harmless */
    cr_expect_eq(count_entries(g_dir), 1);
    t = lq_test_read_file(p, NULL);
    cr_expect_str_eq(t, "old");
    free(t);
    cr_assert_eq(lq_file_begin(&f, p), LQ_OK);
    cr_assert_eq(lq_file_write(&f, "new", 3), LQ_OK);
    cr_assert_eq(lq_file_commit(&f), LQ_OK, "%s", lq_last_error());
    t = lq_test_read_file(p, NULL);
    cr_expect_str_eq(t, "new");
    free(t);
    cr_expect_eq(count_entries(g_dir), 1);
}

Test(files, failures_leave_nothing) {
    char p[128];
    snprintf(p, sizeof p, "%s/missing-dir/a.json", g_dir);
    cr_expect_eq(lq_file_write_all(p, "x", 1), LQ_ERR_IO);
    cr_expect(strstr(lq_last_error(), "missing-dir") != NULL, "%s", lq_last_error());
    cr_expect_eq(lq_file_write_all("", "x", 1), LQ_ERR_INVALID_ARG);
    /* the target is a directory: the rename fails, the temporary file is removed */
    snprintf(p, sizeof p, "%s/sub", g_dir);
    cr_assert_eq(mkdir(p, 0755), 0);
    char q[160];
    snprintf(q, sizeof q, "%s/x", p);
    cr_assert_eq(lq_file_write_all(q, "x", 1), LQ_OK);
    cr_expect_eq(lq_file_write_all(p, "x", 1), LQ_ERR_IO);
    cr_expect_eq(count_entries(g_dir), 1, "only sub/ is left");
}

/* The config.json writer every tool and driver shares (lq_config_json_save). */
Test(files, config_json_is_written_durably) {
    cr_assert_eq(lq_config_json_save(g_dir, "{\"a\": 1}"), LQ_OK, "%s", lq_last_error());
    char p[128];
    snprintf(p, sizeof p, "%s/config.json", g_dir);
    char *t = lq_test_read_file(p, NULL);
    cr_expect_str_eq(t, "{\"a\": 1}\n");
    free(t);
    cr_expect(was_synced(p));
    cr_expect(was_synced(g_dir));
    cr_expect_eq(count_entries(g_dir), 1);
}

/* The side files of an HF model (lq_checkpoint_copy_side_files, used by quant-ptq, quant-prune and
 * each recipe step): byte-identical copies of the model's own files, synced; a llama2.c file has
 * none. Reference: the shared TinyStories-656K directory's files. */
Test(files, side_files_are_copied_byte_for_byte) {
    char model[512];
    lq_test_shared("models/TinyStories-656K", model, sizeof model);
    cr_assert_eq(lq_checkpoint_copy_side_files(model, g_dir), LQ_OK, "%s", lq_last_error());
    const char *names[] = {"tokenizer.json", "tokenizer_config.json", "generation_config.json",
                           "special_tokens_map.json"};
    for (int i = 0; i < 4; i++) {
        char src[600], dst[128];
        snprintf(src, sizeof src, "%s/%s", model, names[i]);
        snprintf(dst, sizeof dst, "%s/%s", g_dir, names[i]);
        size_t ns = 0, nd = 0;
        char *a = lq_test_read_file(src, &ns), *b = lq_test_read_file(dst, &nd);
        cr_assert(a && b, "%s", names[i]);
        cr_expect(ns == nd && memcmp(a, b, ns) == 0, "%s differs from the model's", names[i]);
        cr_expect(was_synced(dst), "%s was not fsynced", names[i]);
        free(a);
        free(b);
    }
    cr_expect_eq(count_entries(g_dir), 4, "no config.json, weights or temporary files");
    char bin[512];
    lq_test_shared("models/stories260K/stories260K.bin", bin, sizeof bin);
    char sub[128];
    snprintf(sub, sizeof sub, "%s/sub", g_dir);
    cr_assert_eq(mkdir(sub, 0755), 0);
    cr_expect_eq(lq_checkpoint_copy_side_files(bin, sub), LQ_OK);
    cr_expect_eq(count_entries(sub), 0, "a llama2.c .bin has no side files");
}

/* ---- inputs (defect 14) --------------------------------------------------------------------------- */

Test(files, open_input_refuses_fifo_directory_and_device, .timeout = 20) {
    char p[128];
    snprintf(p, sizeof p, "%s/fifo", g_dir);
    cr_assert_eq(mkfifo(p, 0644), 0);
    int fd = 7;
    /* a blocking open of a FIFO with no writer would hang here until the timeout */
    cr_expect_eq(lq_file_open_input(p, &fd, NULL), LQ_ERR_IO);
    cr_expect(strstr(lq_last_error(), "not a regular file") != NULL, "%s", lq_last_error());
    cr_expect_eq(fd, -1);
    FILE *f = (FILE *)1;
    cr_expect_eq(lq_file_fopen_input(p, &f), LQ_ERR_IO);
    cr_expect_null(f);
    cr_expect_eq(lq_file_open_input(g_dir, &fd, NULL), LQ_ERR_IO);
    cr_expect(strstr(lq_last_error(), "a directory") != NULL, "%s", lq_last_error());
    cr_expect_eq(lq_file_open_input("/dev/null", &fd, NULL), LQ_ERR_IO);
    snprintf(p, sizeof p, "%s/none", g_dir);
    cr_expect_eq(lq_file_open_input(p, &fd, NULL), LQ_ERR_IO);
    cr_expect_eq(errno, ENOENT);
    snprintf(p, sizeof p, "%s/ok", g_dir);
    cr_assert_eq(lq_file_write_all(p, "12345", 5), LQ_OK);
    uint64_t size = 0;
    cr_assert_eq(lq_file_open_input(p, &fd, &size), LQ_OK, "%s", lq_last_error());
    cr_expect_eq(size, 5);
    char buf[8];
    cr_expect_eq(read(fd, buf, sizeof buf), 5);
    close(fd);
}

/* A model directory whose config.json (or a text file) is a FIFO: every tool must refuse it in one
 * line instead of blocking forever. `timeout` turns a hang into exit 124. */
Test(files, tools_refuse_a_fifo_input, .timeout = 120) {
    char model[128], dir[128], tok[512], p[256], args[1400], line[2200], err[2048];
    snprintf(model, sizeof model, "%s/m", g_dir);
    snprintf(args, sizeof args, "--shape stories260K-like --out '%s'", model);
    cr_assert_eq(lq_test_run_tool("quant-synth", args, g_dir, err, sizeof err), 0, "%s", err);
    lq_test_shared("models/stories260K/tok512.bin", tok, sizeof tok);
    /* the same model with a FIFO in place of config.json */
    snprintf(dir, sizeof dir, "%s/model", g_dir);
    cr_assert_eq(mkdir(dir, 0755), 0);
    char src[256];
    snprintf(src, sizeof src, "%s/model.safetensors", model);
    snprintf(p, sizeof p, "%s/model.safetensors", dir);
    cr_assert_eq(symlink(src, p), 0);
    snprintf(p, sizeof p, "%s/config.json", dir);
    cr_assert_eq(mkfifo(p, 0644), 0);
    const char *tools[][2] = {
        {"quant-info", "'%s'"},
        {"quant-ptq", "--model '%s' --scheme W8A16 --out '%s/q'"},
        {"quant-eval", "--model '%s' --file /dev/null --tokenizer /dev/null"},
    };
    for (int i = 0; i < 3; i++) {
        char tail[512], tool[1024];
        snprintf(tail, sizeof tail, tools[i][1], dir, g_dir);
        snprintf(line, sizeof line, "timeout 20 '%s' %s", lq_test_tool(tools[i][0], tool, sizeof tool), tail);
        char cmd[2400];
        snprintf(cmd, sizeof cmd, "%s >/dev/null 2>'%s/err.txt'", line, g_dir);
        int code = lq_test_exit_code(system(cmd));
        snprintf(p, sizeof p, "%s/err.txt", g_dir);
        char *e = lq_test_read_file(p, NULL);
        snprintf(err, sizeof err, "%s", e ? e : "");
        free(e);
        cr_expect_neq(code, 124, "%s blocked on the FIFO config.json", tools[i][0]);
        cr_expect(code != 0, "%s: exit 0", tools[i][0]);
        cr_expect(strstr(err, "config.json") && strstr(err, "not a regular file"), "%s: %s", tools[i][0], err);
    }
    /* a FIFO text file for quant-eval, with a real model */
    snprintf(p, sizeof p, "%s/text.fifo", g_dir);
    cr_assert_eq(mkfifo(p, 0644), 0);
    snprintf(args, sizeof args, "--model '%s' --tokenizer '%s' --file '%s'", model, tok, p);
    int code = lq_test_run_tool("quant-eval", args, g_dir, err, sizeof err);
    cr_expect_eq(code, 4, "exit %d: %s", code, err);
    cr_expect(strstr(err, "text.fifo") && strstr(err, "not a regular file"), "%s", err);
}

/* ---- output directories (defects 4 and 17) ---------------------------------------------------------- */

/* A pid that no longer runs: a child that has exited and been reaped. */
static long dead_pid(void) {
    pid_t pid = fork();
    cr_assert_neq(pid, -1);
    if (pid == 0) _exit(0);
    cr_assert_eq(waitpid(pid, NULL, 0), pid);
    return (long)pid;
}

static void make_dir_with(const char *dir, const char *file, const char *text) {
    cr_assert_eq(mkdir(dir, 0755), 0, "%s", dir);
    char p[512];
    snprintf(p, sizeof p, "%s/%s", dir, file);
    cr_assert_eq(lq_file_write_all(p, text, strlen(text)), LQ_OK);
}

/* Defect 4: SIGKILL leaves OUT.tmp.<pid> (and OUT.old.<pid>); the next run removes them. */
Test(files, next_run_removes_what_a_killed_run_left, .timeout = 120) {
    char out[128], tmp[192], old[192], live[192], args[1024], err[2048];
    snprintf(out, sizeof out, "%s/out", g_dir);
    long pid = dead_pid();
    snprintf(tmp, sizeof tmp, "%s.tmp.%ld", out, pid);
    snprintf(old, sizeof old, "%s.old.%ld", out, pid + 0); /* same dead run */
    make_dir_with(tmp, "model.safetensors.tmp.1", "partial");
    make_dir_with(out, "marker", "current output");
    make_dir_with(old, "marker", "previous output");
    /* a temp dir of a run that is still alive (this process) is never touched */
    snprintf(live, sizeof live, "%s.tmp.%ld", out, (long)getpid());
    make_dir_with(live, "x", "live");
    snprintf(args, sizeof args, "--shape stories260K-like --out '%s' --force", out);
    int code = lq_test_run_tool("quant-synth", args, g_dir, err, sizeof err);
    cr_expect_eq(code, 0, "exit %d: %s", code, err);
    cr_expect(!lq_test_exists(tmp), "%s is still there", tmp);
    cr_expect(!lq_test_exists(old), "%s is still there", old);
    cr_expect(lq_test_exists(live), "a live run's %s was removed", live);
    cr_expect(strstr(err, tmp) && strstr(err, "stale"), "not said: %s", err);
    char p[256];
    snprintf(p, sizeof p, "%s/config.json", out);
    cr_expect(lq_test_exists(p), "the new output is in place");
}

/* Defect 4: killed between the two renames of a --force commit (the fallback without
 * RENAME_EXCHANGE): OUT is missing, OUT.old.<pid> is the complete previous output and
 * OUT.tmp.<pid> the new one. The next run puts the old one back under its real name, so it is
 * then refused without --force like any existing output. */
Test(files, a_kill_between_the_renames_keeps_the_old_output, .timeout = 120) {
    char out[128], tmp[192], old[192], args[1024], err[2048], p[256];
    snprintf(out, sizeof out, "%s/out", g_dir);
    long pid = dead_pid();
    snprintf(tmp, sizeof tmp, "%s.tmp.%ld", out, pid);
    snprintf(old, sizeof old, "%s.old.%ld", out, pid);
    make_dir_with(old, "marker", "previous output");
    make_dir_with(tmp, "config.json", "{}");
    snprintf(args, sizeof args, "--shape stories260K-like --out '%s'", out);
    int code = lq_test_run_tool("quant-synth", args, g_dir, err, sizeof err);
    cr_expect_eq(code, 4, "exit %d (expected 4: the restored output exists): %s", code, err);
    snprintf(p, sizeof p, "%s/marker", out);
    char *t = lq_test_read_file(p, NULL);
    cr_expect(t && strcmp(t, "previous output") == 0, "%s not restored", out);
    free(t);
    cr_expect(!lq_test_exists(old) && !lq_test_exists(tmp), "leftovers remain");
    cr_expect(strstr(err, "restored"), "not said: %s", err);
}

/* Defect 4, end to end: SIGKILL while writing, then the next run. */
Test(files, sigkill_leftovers_are_cleaned_by_the_next_run, .timeout = 300) {
    char tool[1024], out[128], part[256], tmpdir[192], args[1024], err[2048];
    lq_test_tool("quant-synth", tool, sizeof tool);
    snprintf(out, sizeof out, "%s/big", g_dir);
    pid_t pid = fork();
    cr_assert_neq(pid, -1);
    if (pid == 0) {
        int null = open("/dev/null", O_WRONLY);
        dup2(null, 1);
        dup2(null, 2);
        execl(tool, tool, "--shape", "stories110M", "--dtype", "f32", "--out", out, (char *)NULL);
        _exit(127);
    }
    snprintf(tmpdir, sizeof tmpdir, "%s.tmp.%ld", out, (long)pid);
    snprintf(part, sizeof part, "%s/model.safetensors.tmp.%ld", tmpdir, (long)pid);
    bool seen = false;
    for (int t = 0; t < 60000 && !seen; t += 5) {
        struct stat sb;
        if (stat(part, &sb) == 0 && sb.st_size > 0) seen = true;
        else {
            struct timespec ms = {0, 5000000};
            nanosleep(&ms, NULL);
        }
    }
    kill(pid, SIGKILL);
    waitpid(pid, NULL, 0);
    cr_assert(seen, "quant-synth never started writing");
    cr_assert(lq_test_exists(tmpdir), "SIGKILL left no %s (nothing to test)", tmpdir);
    snprintf(args, sizeof args, "--shape stories260K-like --out '%s'", out);
    int code = lq_test_run_tool("quant-synth", args, g_dir, err, sizeof err);
    cr_expect_eq(code, 0, "exit %d: %s", code, err);
    cr_expect(!lq_test_exists(tmpdir), "%s is still there", tmpdir);
    cr_expect(strstr(err, "removed stale"), "not said: %s", err);
}

/* Defect 17: an empty --out is named as empty, not as a path that is too long (or a directory
 * that cannot be created). */
Test(files, empty_out_is_called_empty, .timeout = 120) {
    char model[128], bin[512], tok[512], text[128], recipe[128], err[2048], args[1400];
    snprintf(model, sizeof model, "%s/m", g_dir);
    snprintf(args, sizeof args, "--shape stories260K-like --out '%s'", model);
    cr_assert_eq(lq_test_run_tool("quant-synth", args, g_dir, err, sizeof err), 0, "%s", err);
    lq_test_shared("models/stories260K/stories260K.bin", bin, sizeof bin);
    lq_test_shared("models/stories260K/tok512.bin", tok, sizeof tok);
    snprintf(text, sizeof text, "%s/t.txt", g_dir);
    cr_assert_eq(lq_file_write_all(text, "Once upon a time.\n", 18), LQ_OK);
    snprintf(recipe, sizeof recipe, "%s/r.yaml", g_dir);
    const char *yaml = "quant_stage:\n  quant_modifiers:\n    QuantizationModifier:\n"
                       "      scheme: W8A16\n      targets: [Linear]\n";
    cr_assert_eq(lq_file_write_all(recipe, yaml, strlen(yaml)), LQ_OK);
    const char *tools[] = {"quant-synth", "quant-convert", "quant-ptq", "quant-recipe", "quant-distill"};
    for (int i = 0; i < 5; i++) {
        if (i == 0) snprintf(args, sizeof args, "--shape stories260K-like --out ''");
        if (i == 1) snprintf(args, sizeof args, "--llama2c '%s' --tokenizer '%s' --out ''", bin, tok);
        if (i == 2) snprintf(args, sizeof args, "--model '%s' --scheme W8A16 --out ''", model);
        if (i == 3) snprintf(args, sizeof args, "run '%s' --model '%s' --out ''", recipe, model);
        if (i == 4) snprintf(args, sizeof args, "--model '%s' --tokenizer '%s' --file '%s' --out ''", model, tok, text);
        int code = lq_test_run_tool(tools[i], args, g_dir, err, sizeof err);
        cr_expect_eq(code, 2, "%s: exit %d: %s", tools[i], code, err);
        cr_expect(strstr(err, "empty") != NULL, "%s: %s", tools[i], err);
        cr_expect(strstr(err, "too long") == NULL, "%s: %s", tools[i], err);
    }
}
