/* test_distill_resume.c - what a resumed or concurrent quant-distill must refuse (issue 10:
 * defects 1, 3, 9 and 12 of the hostile audit). Each test reproduces the audit's case; before
 * the fixes every one of them ran to "complete" (or, for 12, failed to inspect).
 *
 * References: the corpus itself (an edited cursor must not agree with it) and the process's own
 * pid (the lock message); nothing here compares numbers the code produced about itself. */
#include <criterion/criterion.h>

#include "libquant/lq_distill.h"
#include "lq_test_util.h"

#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static char g_dir[256], g_model[256], g_tok[256], g_corpus[256];

static void setup(void) {
    lq_test_shared("models/stories260K/stories260K.bin", g_model, sizeof g_model);
    lq_test_shared("models/stories260K/tok512.bin", g_tok, sizeof g_tok);
    lq_test_shared("data/tinystories_sample.txt", g_corpus, sizeof g_corpus);
    snprintf(g_dir, sizeof g_dir, "/tmp/test_distill_resume.XXXXXX");
    cr_assert(mkdtemp(g_dir) != NULL);
}

static void teardown(void) {
    char cmd[512];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", g_dir);
    cr_expect(system(cmd) == 0);
}

TestSuite(distill_hardening, .init = setup, .fini = teardown, .timeout = 120);

/* quant-distill on the shared corpus into `out` with `extra` options; stderr into err. */
static int distill(const char *out, const char *extra, char *err, size_t cap) {
    char args[1400];
    snprintf(args, sizeof args, "--model '%s' --tokenizer '%s' --file '%s' --out '%s' --k 8 "
             "--block-kib 1 --threads 1 %s", g_model, g_tok, g_corpus, out, extra);
    return lq_test_run_tool("quant-distill", args, g_dir, err, cap);
}

/* A run killed after `n` records: an unfinished dataset with an open (unsealed) shard. */
static void killed_run(const char *out, const char *mode, int n) {
    char extra[256], err[2048];
    snprintf(extra, sizeof extra, "%s --debug-stop-after %d", mode, n);
    cr_assert_neq(distill(out, extra, err, sizeof err), 0, "the run should die by SIGKILL");
    char m[400];
    snprintf(m, sizeof m, "%s/manifest.json", out);
    cr_assert(lq_test_exists(m), "a commit happened before the kill: %s", err);
}

static json_t *load_manifest(const char *out) {
    char m[400];
    snprintf(m, sizeof m, "%s/manifest.json", out);
    json_error_t e;
    json_t *j = json_load_file(m, 0, &e);
    cr_assert(j, "%s: %s", m, e.text);
    return j;
}

static void set_cursor(const char *out, const char *cursor) {
    json_t *j = load_manifest(out);
    json_object_set_new(j, "cursor", json_string(cursor));
    char m[400];
    snprintf(m, sizeof m, "%s/manifest.json", out);
    cr_assert_eq(json_dump_file(j, m, JSON_INDENT(2) | JSON_PRESERVE_ORDER), 0);
    json_decref(j);
}

/* ---- defect 1: a symlinked open shard --------------------------------------------------------- */

Test(distill_hardening, resume_refuses_a_symlinked_open_shard) {
    char out[300], shard[400], outside[300];
    snprintf(out, sizeof out, "%s/ds", g_dir);
    snprintf(shard, sizeof shard, "%s/shard-00000.lqd", out);
    snprintf(outside, sizeof outside, "%s/outside.lqd", g_dir);
    killed_run(out, "--ctx 40", 5);
    /* the open shard now points at a file outside the dataset */
    cr_assert_eq(rename(shard, outside), 0);
    cr_assert_eq(symlink(outside, shard), 0);
    size_t n0 = 0;
    char *before = lq_test_read_file(outside, &n0);
    char err[2048];
    int code = distill(out, "--ctx 40", err, sizeof err);
    cr_expect_neq(code, 0, "a resume through a symlinked shard must be refused");
    cr_expect(strstr(err, "shard-00000.lqd: is a symbolic link"), "%s", err);
    size_t n1 = 0;
    char *after = lq_test_read_file(outside, &n1);
    cr_expect(before && after && n0 == n1 && memcmp(before, after, n0) == 0,
              "the file the link points to is untouched (%zu -> %zu bytes)", n0, n1);
    free(before);
    free(after);
}

/* ---- defect 3: an edited cursor ----------------------------------------------------------------- */

static void expect_cursor_refused(const char *out, const char *mode) {
    json_t *j = load_manifest(out);
    char *before = json_dumps(j, JSON_COMPACT);
    json_decref(j);
    char err[2048];
    int code = distill(out, mode, err, sizeof err);
    cr_expect_eq(code, 3, "an edited cursor is a mismatch (exit 3), got %d: %s", code, err);
    cr_expect(strstr(err, "the resume cursor") && strstr(err, "does not match"), "%s", err);
    j = load_manifest(out);
    cr_expect(!json_is_true(json_object_get(j, "complete")), "the run was not finished");
    char *after = json_dumps(j, JSON_COMPACT);
    cr_expect_str_eq(after, before, "the manifest is untouched");
    json_decref(j);
    free(before);
    free(after);
}

Test(distill_hardening, resume_refuses_an_edited_chunk_cursor) {
    char out[300];
    snprintf(out, sizeof out, "%s/ds", g_dir);
    killed_run(out, "--ctx 40", 5);
    json_t *j = load_manifest(out);
    unsigned long long off = 0, k = 0;
    cr_assert_eq(sscanf(json_string_value(json_object_get(j, "cursor")), "c %llu %llu", &off, &k), 2);
    json_decref(j);
    char c[64];
    /* the audit's case: more tokens consumed than the segment holds (it skipped the rest) */
    snprintf(c, sizeof c, "c %llu %llu", off, k + 1000000);
    set_cursor(out, c);
    expect_cursor_refused(out, "--ctx 40");
    /* fewer consumed than the records hold: the next record would repeat tokens */
    snprintf(c, sizeof c, "c %llu %llu", off, k - 7);
    set_cursor(out, c);
    expect_cursor_refused(out, "--ctx 40");
    /* not a cursor at all (was silently read as a fresh start in per-line mode) */
    set_cursor(out, "c 0 12x");
    expect_cursor_refused(out, "--ctx 40");
    /* the true cursor resumes and finishes */
    snprintf(c, sizeof c, "c %llu %llu", off, k);
    set_cursor(out, c);
    char err[2048];
    cr_expect_eq(distill(out, "--ctx 40", err, sizeof err), 0, "%s", err);
}

Test(distill_hardening, resume_refuses_an_edited_unit_cursor) {
    char out[300];
    snprintf(out, sizeof out, "%s/ds", g_dir);
    killed_run(out, "--per-line --ctx 96", 5);
    json_t *j = load_manifest(out);
    unsigned long long off = 0;
    cr_assert_eq(sscanf(json_string_value(json_object_get(j, "cursor")), "u %llu", &off), 1);
    json_decref(j);
    /* the next line's end: a real unit boundary, but not where the committed records end */
    char *text = lq_test_read_file(g_corpus, NULL);
    cr_assert(text);
    const char *nl = strchr(text + off, '\n');
    cr_assert(nl && nl[1]);
    unsigned long long later = (unsigned long long)(nl + 1 - text);
    free(text);
    char c[64];
    snprintf(c, sizeof c, "u %llu", later);
    set_cursor(out, c);
    expect_cursor_refused(out, "--per-line --ctx 96");
    snprintf(c, sizeof c, "u %llu", off - 1);
    set_cursor(out, c);
    expect_cursor_refused(out, "--per-line --ctx 96");
    snprintf(c, sizeof c, "u %llu", off);
    set_cursor(out, c);
    char err[2048];
    cr_expect_eq(distill(out, "--per-line --ctx 96", err, sizeof err), 0, "%s", err);
}

/* ---- defect 9: two runs on one directory -------------------------------------------------------- */

Test(distill_hardening, directory_in_use_is_refused_with_the_pid) {
    char out[300], seq[300], want[128], err[2048];
    snprintf(out, sizeof out, "%s/ds", g_dir);
    snprintf(seq, sizeof seq, "%s/seq", g_dir);
    snprintf(want, sizeof want, "in use by pid %ld", (long)getpid());
    /* this process is the live run: a writer holds the directory */
    lq_distill_meta meta = {.vocab = 512, .k = 8, .n_ctx = 40, .logp_dtype = LQ_DTYPE_F32};
    lq_distill_writer *w = NULL;
    cr_assert_eq(lq_distill_writer_open(out, &meta, NULL, &w), LQ_OK, "%s", lq_last_error());
    int code = distill(out, "--ctx 40", err, sizeof err);
    cr_expect_eq(code, 4, "got %d: %s", code, err);
    cr_expect(strstr(err, want), "'%s' in: %s", want, err);
    lq_distill_writer_free(w);
    /* released: the directory is an ordinary (empty) output again */
    cr_expect_eq(distill(out, "--ctx 40", err, sizeof err), 0, "%s", err);
    char lock[400];
    snprintf(lock, sizeof lock, "%s/.lock", out);
    cr_expect(!lq_test_exists(lock), "the lock file goes with the writer");

    /* the sequences writer takes the same lock */
    lq_seq_writer *sw = NULL;
    cr_assert_eq(lq_seq_writer_open(seq, "{\"teacher_id\": \"x\"}", &sw), LQ_OK, "%s", lq_last_error());
    char args[1000];
    snprintf(args, sizeof args, "--model '%s' --tokenizer '%s' --prompt '' --sequences 1 "
             "--max-tokens 4 --out '%s'", g_model, g_tok, seq);
    code = lq_test_run_tool("quant-distill", args, g_dir, err, sizeof err);
    cr_expect_eq(code, 4, "got %d: %s", code, err);
    cr_expect(strstr(err, want), "'%s' in: %s", want, err);
    lq_seq_writer_free(sw);
}

/* ---- defect 12: --inspect on a --sequences dataset ------------------------------------------- */

Test(distill_hardening, inspect_reads_a_sequences_dataset) {
    char seq[300], args[1000], err[2048];
    snprintf(seq, sizeof seq, "%s/seq", g_dir);
    snprintf(args, sizeof args, "--model '%s' --tokenizer '%s' --prompt '' --sequences 2 --max-tokens 6 "
             "--temperature 0.8 --seed 3 --out '%s'", g_model, g_tok, seq);
    cr_assert_eq(lq_test_run_tool("quant-distill", args, g_dir, err, sizeof err), 0, "%s", err);
    /* the reference: the second line of sequences.jsonl itself */
    char path[400];
    snprintf(path, sizeof path, "%s/sequences.jsonl", seq);
    char *jsonl = lq_test_read_file(path, NULL);
    cr_assert(jsonl);
    char *second = strchr(jsonl, '\n') + 1;
    *strchr(second, '\n') = 0;
    json_t *want = json_loads(second, 0, NULL);
    cr_assert(want);
    snprintf(args, sizeof args, "--inspect '%s' --record 1 --json", seq);
    cr_assert_eq(lq_test_run_tool("quant-distill", args, g_dir, err, sizeof err), 0, "%s", err);
    snprintf(path, sizeof path, "%s/stdout.txt", g_dir);
    json_error_t e;
    json_t *got = json_load_file(path, 0, &e);
    cr_assert(got, "inspect --json: %s", e.text);
    cr_expect_eq(json_integer_value(json_object_get(got, "records")), 2);
    cr_expect(json_is_true(json_object_get(got, "complete")));
    cr_expect_str_eq(json_string_value(json_object_get(json_object_get(got, "settings"), "mode")), "sample");
    cr_expect(json_equal(json_object_get(got, "record"), want), "record 1 is the file's second line");
    json_decref(got);
    json_decref(want);
    free(jsonl);
    /* text: the summary and the record's text */
    snprintf(args, sizeof args, "--inspect '%s'", seq);
    cr_assert_eq(lq_test_run_tool("quant-distill", args, g_dir, err, sizeof err), 0, "%s", err);
    char *out = lq_test_read_file(path, NULL);
    cr_expect(out && strstr(out, "sequences: 2 records (complete)"), "%s", out ? out : "");
    free(out);
    snprintf(args, sizeof args, "--inspect '%s' --record 2", seq);
    cr_expect_eq(lq_test_run_tool("quant-distill", args, g_dir, err, sizeof err), 2, "%s", err);
    cr_expect(strstr(err, "record 2 out of range (2 records)"), "%s", err);
}

/* Every distill manifest is read through lq_file_fopen_input (lqd_load_json): a FIFO in place
 * of manifest.json is refused, not read. lq_seq_is_dataset / lq_seq_open opened it with
 * json_load_file, which blocks on a FIFO with no writer: quant-distill --inspect hung. */
Test(distill_hardening, fifo_manifest_is_refused_not_read) {
    char m[400];
    snprintf(m, sizeof m, "%s/manifest.json", g_dir);
    cr_assert_eq(mkfifo(m, 0644), 0);
    cr_expect(!lq_seq_is_dataset(g_dir));
    lq_seq_reader *r = NULL;
    cr_expect_neq(lq_seq_open(g_dir, &r), LQ_OK);
    cr_expect(r == NULL);
    cr_expect(strstr(lq_last_error(), "not a regular file"), "%s", lq_last_error());
    lq_distill_reader *dr = NULL;
    cr_expect_neq(lq_distill_open(g_dir, &dr), LQ_OK);
    cr_expect(strstr(lq_last_error(), "not a regular file"), "%s", lq_last_error());
}
