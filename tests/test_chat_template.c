/* test_chat_template.c - lq_chat: family detection and rendering against transformers.
 *
 * tests/fixtures/chat/<name>.jinja are real models' templates; <name>.<conv>.txt the bytes
 * transformers' render_jinja_template (apply_chat_template) produced for them
 * (scripts/chat_fixtures/make_fixtures.py; provenance in tests/fixtures/chat/README.md). The
 * conversations and bos/eos texts below must equal the script's.
 */
#include <criterion/criterion.h>

#include "libquant/lq_chat.h"
#include "libquant/lq_tokenizer.h"
#include "lq_test_util.h"

#define CHAT_DIR LQ_FIXTURES_DIR "/chat"

static const lq_chat_msg CONV_SYS[] = {
    {"system", "You are a helpful assistant."},
    {"user", "Hello!"},
    {"assistant", "  Hi there. How can I help?  "},
    {"user", "What is the capital of France?"},
};
static const lq_chat_msg CONV_SINGLE[] = {{"user", "What is the capital of France?"}};
/* NBSP, ideographic space, line separator, em space, NEL: whitespace to str.strip() */
static const lq_chat_msg CONV_UNICODE[] = {
    {"user", "\u00a0Bonjour\u3000"},
    {"assistant", "\u2028 Salut !\u00a0\u2003"},
    {"user", "\u3000Paris ?\xc2\x85"},
};

typedef struct fixture {
    const char *name, *family, *bos, *eos, *end_of_turn;
} fixture;

static const fixture FIXTURES[] = {
    {"chatml_smollm2", "chatml", "<|im_start|>", "<|im_end|>", "<|im_end|>"},
    {"chatml_qwen25", "chatml", "", "<|im_end|>", "<|im_end|>"},
    {"gemma3", "gemma", "<bos>", "<eos>", "<end_of_turn>"},
    {"gemma2", "gemma", "<bos>", "<eos>", "<end_of_turn>"},
    {"llama3", "llama3", "<|begin_of_text|>", "<|eot_id|>", "<|eot_id|>"},
    {"llama31", "llama3.1", "<|begin_of_text|>", "<|eot_id|>", "<|eot_id|>"},
    {"llama2", "llama2-sys", "<s>", "</s>", "</s>"},
    {"llama2_plain", "llama2", "<s>", "</s>", "</s>"},
    {"mistral_v1", "mistral-v1", "<s>", "</s>", "</s>"},
    {"mistral_v3", "mistral-v3", "<s>", "</s>", "</s>"},
    {"mistral_v3_tekken", "mistral-v3-tekken", "<s>", "</s>", "</s>"},
    {"mistral_v7", "mistral-v7", "<s>", "</s>", "</s>"},
    {"phi3", "phi3", "<s>", "<|endoftext|>", "<|end|>"},
    {"zephyr", "zephyr", "<s>", "</s>", "</s>"},
};

static lq_chat_template *load_fixture(const fixture *f) {
    char path[512];
    snprintf(path, sizeof path, CHAT_DIR "/%s.jinja", f->name);
    char *tmpl = lq_test_read_file(path, NULL);
    cr_assert(tmpl, "cannot read %s", path);
    lq_chat_template *t = NULL;
    lq_status s = lq_chat_template_parse(tmpl, path, &t);
    cr_assert_eq(s, LQ_OK, "%s: %s", f->name, lq_last_error());
    free(tmpl);
    return t;
}

/* Render `conv` and compare with <name>.<conv_name>.txt; returns false when the fixture is absent
 * (the template refuses that conversation under transformers). */
static bool check_case(const fixture *f, lq_chat_template *t, const char *conv_name,
                       const lq_chat_msg *msgs, int n) {
    char path[512];
    snprintf(path, sizeof path, CHAT_DIR "/%s.%s.txt", f->name, conv_name);
    size_t want_len = 0;
    char *want = lq_test_read_file(path, &want_len);
    if (!want) return false;
    char *got = NULL;
    size_t got_len = 0;
    lq_status s = lq_chat_render(t, msgs, n, f->bos, f->eos, true, &got, &got_len);
    cr_assert_eq(s, LQ_OK, "%s.%s: %s", f->name, conv_name, lq_last_error());
    cr_expect(got_len == want_len && memcmp(got, want, want_len) == 0,
              "%s.%s:\n got: [%s]\nwant: [%s]", f->name, conv_name, got, want);
    free(got);
    free(want);
    return true;
}

Test(chat_template, renders_like_transformers) {
    int checked = 0;
    for (size_t i = 0; i < sizeof FIXTURES / sizeof FIXTURES[0]; i++) {
        const fixture *f = &FIXTURES[i];
        lq_chat_template *t = load_fixture(f);
        cr_expect_str_eq(lq_chat_template_name(t), f->family, "%s detected as %s", f->name,
                         lq_chat_template_name(t));
        cr_expect_str_eq(lq_chat_template_end_of_turn(t, f->eos), f->end_of_turn, "%s", f->name);
        checked += check_case(f, t, "sys", CONV_SYS, 4);
        checked += check_case(f, t, "nosys", CONV_SYS + 1, 3);
        checked += check_case(f, t, "single", CONV_SINGLE, 1);
        checked += check_case(f, t, "unicode", CONV_UNICODE, 3);
        lq_chat_template_free(t);
    }
    /* every template x 4 conversations, less the two that transformers refuses */
    cr_expect_eq(checked, 4 * (int)(sizeof FIXTURES / sizeof FIXTURES[0]) - 2, "checked %d", checked);
}

Test(chat_template, default_system_prompt) {
    lq_chat_template *t = load_fixture(&FIXTURES[0]);
    cr_expect_str_eq(lq_chat_template_default_system(t),
                     "You are a helpful AI assistant named SmolLM, trained by Hugging Face");
    /* dropped (quant-run --system ''): the prompt SOURCES.md's SmolLM2 reference uses */
    lq_chat_template_drop_default_system(t);
    char *got = NULL;
    cr_assert_eq(lq_chat_render(t, CONV_SINGLE, 1, "<|im_start|>", "<|im_end|>", true, &got, NULL),
                 LQ_OK);
    cr_expect_str_eq(got, "<|im_start|>user\nWhat is the capital of France?<|im_end|>\n"
                          "<|im_start|>assistant\n");
    free(got);
    lq_chat_template_free(t);
}

Test(chat_template, names_select_a_family) {
    static const char *const names[] = {"chatml", "gemma", "llama3", "llama2", "mistral-v1",
                                        "mistral-v3", "mistral-v7", "mistral-v7-tekken", "phi3",
                                        "zephyr"};
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++) {
        lq_chat_template *t = NULL;
        cr_assert_eq(lq_chat_template_parse(names[i], NULL, &t), LQ_OK, "%s", names[i]);
        cr_expect_str_eq(lq_chat_template_name(t), names[i]);
        lq_chat_template_free(t);
    }
}

Test(chat_template, refuses_unknown_templates_by_their_start) {
    lq_chat_template *t = NULL;
    const char *tmpl = "{% for m in messages %}### {{ m['role'] }}: {{ m['content'] }}\n{% endfor %}";
    cr_assert_eq(lq_chat_template_parse(tmpl, "x/tokenizer_config.json", &t), LQ_ERR_UNSUPPORTED);
    cr_expect_null(t);
    const char *msg = lq_last_error();
    cr_expect(strstr(msg, "x/tokenizer_config.json: unknown chat template (starts \"{% for m in "
                          "messages %}### {{ m['role'] }}: {{ m['content'] ...\")"),
              "%s", msg);
    /* a family llama.cpp knows but this renderer does not: named */
    cr_assert_eq(lq_chat_template_parse("{{'<|im_start|>' + m + '<|im_sep|>'}}", NULL, &t),
                 LQ_ERR_UNSUPPORTED);
    cr_expect(strstr(lq_last_error(), "phi4"), "%s", lq_last_error());
    cr_assert_eq(lq_chat_template_parse("", NULL, &t), LQ_ERR_INVALID_ARG);
}

Test(chat_template, refuses_bad_roles) {
    lq_chat_template *t = NULL;
    cr_assert_eq(lq_chat_template_parse("chatml", NULL, &t), LQ_OK);
    char *out = NULL;
    lq_chat_msg tool[] = {{"user", "a"}, {"tool", "b"}};
    cr_expect_eq(lq_chat_render(t, tool, 2, "", "", true, &out, NULL), LQ_ERR_INVALID_ARG);
    cr_expect(strstr(lq_last_error(), "role 'tool'"), "%s", lq_last_error());
    lq_chat_msg late[] = {{"user", "a"}, {"system", "b"}};
    cr_expect_eq(lq_chat_render(t, late, 2, "", "", true, &out, NULL), LQ_ERR_INVALID_ARG);
    cr_expect_null(out);
    lq_chat_template_free(t);
}

/* The SmolLM2 GGUF's own template, read from the file, is the fixture; rendered without the
 * default system turn and encoded with specials it gives SOURCES.md's reference prompt ids. */
Test(chat_template, smollm2_gguf_prompt_ids) {
    char gguf[1024];
    lq_test_shared("models/SmolLM2-135M-Instruct-Q4_1/SmolLM2-135M-Instruct.Q4_1.gguf", gguf,
                   sizeof gguf);
    if (!lq_test_exists(gguf)) cr_skip_test("%s is absent", gguf);
    char *tmpl = NULL;
    cr_assert_eq(lq_chat_template_read(gguf, NULL, &tmpl), LQ_OK, "%s", lq_last_error());
    char *want = lq_test_read_file(CHAT_DIR "/chatml_smollm2.jinja", NULL);
    cr_assert(want);
    cr_expect_str_eq(tmpl, want);
    free(want);
    lq_chat_template *t = NULL;
    cr_assert_eq(lq_chat_template_parse(tmpl, gguf, &t), LQ_OK);
    free(tmpl);
    lq_chat_template_drop_default_system(t);
    lq_tokenizer *tok = NULL;
    cr_assert_eq(lq_tokenizer_load_gguf(gguf, &tok), LQ_OK, "%s", lq_last_error());
    const char *bos = lq_tokenizer_piece(tok, lq_tokenizer_bos(tok));
    const char *eos = lq_tokenizer_piece(tok, lq_tokenizer_eos(tok));
    char *text = NULL;
    size_t len = 0;
    cr_assert_eq(lq_chat_render(t, CONV_SINGLE, 1, bos, eos, true, &text, &len), LQ_OK);
    int32_t ids[64];
    int64_t n = 0;
    cr_assert_eq(lq_tokenizer_encode(tok, text, len, false, true, ids, 64, &n), LQ_OK);
    static const int32_t ref[] = {1, 4093, 198, 1780, 314, 260, 3575, 282, 4649, 47, 2, 198, 1,
                                  520, 9531, 198};
    cr_assert_eq(n, 16, "%lld ids", (long long)n);
    for (int i = 0; i < 16; i++) cr_expect_eq(ids[i], ref[i], "id %d: %d != %d", i, ids[i], ref[i]);
    /* the end-of-turn text is one special token: what generation stops at */
    const char *eot = lq_chat_template_end_of_turn(t, eos);
    cr_assert_eq(lq_tokenizer_encode(tok, eot, strlen(eot), false, true, ids, 64, &n), LQ_OK);
    cr_expect(n == 1 && ids[0] == 2, "<|im_end|> -> %lld ids, first %d", (long long)n, ids[0]);
    free(text);
    lq_tokenizer_free(tok);
    lq_chat_template_free(t);
}

Test(chat_template, reads_tokenizer_config) {
    char dir[1024];
    lq_test_shared("models/TinyStories-656K", dir, sizeof dir);
    char *tmpl = NULL;
    /* this model ships no chat template: a one-line error naming the file */
    cr_expect_eq(lq_chat_template_read(dir, NULL, &tmpl), LQ_ERR_NOT_FOUND);
    cr_expect(strstr(lq_last_error(), "tokenizer_config.json: no chat_template"), "%s",
              lq_last_error());
    cr_expect_null(tmpl);
}

static void write_file(const char *path, const char *text) {
    FILE *f = fopen(path, "w");
    cr_assert(f, "%s", path);
    fputs(text, f);
    fclose(f);
}

/* tokenizer_config.json: a string, or a list whose "default" entry is the template (big
 * integers such as model_max_length are fine); chat_template.jinja wins over it. */
Test(chat_template, reads_hf_directories) {
    const char *dir = "/tmp/lq_test_chat_template_dir";
    cr_assert_eq(system("rm -rf /tmp/lq_test_chat_template_dir && mkdir -p "
                        "/tmp/lq_test_chat_template_dir"), 0);
    write_file("/tmp/lq_test_chat_template_dir/tokenizer_config.json",
               "{\"model_max_length\": 1000000000000000019884624838656, \"chat_template\": "
               "[{\"name\": \"tool_use\", \"template\": \"T\"}, {\"name\": \"default\", "
               "\"template\": \"{{ '<|im_start|>' }}\\n\"}]}");
    char *t = NULL;
    cr_assert_eq(lq_chat_template_read(dir, NULL, &t), LQ_OK, "%s", lq_last_error());
    cr_expect_str_eq(t, "{{ '<|im_start|>' }}\n");
    free(t);
    write_file("/tmp/lq_test_chat_template_dir/chat_template.jinja", "<start_of_turn>");
    cr_assert_eq(lq_chat_template_read(dir, NULL, &t), LQ_OK, "%s", lq_last_error());
    cr_expect_str_eq(t, "<start_of_turn>");
    free(t);
    cr_assert_eq(system("rm -f /tmp/lq_test_chat_template_dir/chat_template.jinja"), 0);
    write_file("/tmp/lq_test_chat_template_dir/tokenizer_config.json", "{\"chat_template\": 3}");
    cr_expect_eq(lq_chat_template_read(dir, NULL, &t), LQ_ERR_FORMAT);
    cr_expect(strstr(lq_last_error(), "tokenizer_config.json: chat_template is neither"), "%s",
              lq_last_error());
}
