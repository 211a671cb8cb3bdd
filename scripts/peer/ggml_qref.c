/* ggml_qref.c - ggml's own reference quantizer and dequantizer, as a command-line program, so
 * that test vectors for our GGUF block formats come from outside the project (issue 12).
 *
 * NOT part of libquant and never built by CMake or CI: scripts/peer/build_qref.sh compiles it
 * against a llama.cpp checkout (the llama-cpp-python sdist's vendor/llama.cpp) and links only
 * libggml-base (the type traits and the portable quantizers; no CPU backend, no SIMD).
 *
 *   ggml-qref quant   TYPE ROWS COLS IN.f32 OUT.blocks [OUT.deq.f32]
 *   ggml-qref dequant TYPE ROWS COLS IN.blocks OUT.f32
 *   ggml-qref quantw  TYPE ROWS COLS IN.f32 IMATRIX.f32 OUT.blocks
 *   ggml-qref types
 *
 * quantw: as quant, with an importance matrix: IMATRIX.f32 is COLS floats (llama-quantize's
 *   per-column mean squares), passed as ggml_quantize_chunk's imatrix, which is what
 *   llama-quantize --imatrix calls (quantize_row_<t>_impl with quant_weights; Q8_0 ignores it).
 *
 * quant: IN.f32 is ROWS*COLS little-endian float32, row-major. OUT.blocks gets what
 *   ggml_quantize_chunk(type, in, out, 0, ROWS, COLS, imatrix = NULL) writes: ROWS rows of
 *   COLS/blck_size blocks each, exactly the bytes llama-quantize (no imatrix) puts in a GGUF
 *   tensor of shape ne = {COLS, ROWS}. With imatrix NULL, ggml_quantize_chunk calls
 *   quantize_row_<t>_ref for Q4_0, Q4_1, Q5_0, Q5_1, Q8_0, Q2_K, Q3_K, Q4_K, Q5_K, Q6_K, and for
 *   IQ4_NL / IQ4_XS quantize_iq4_nl / quantize_iq4_xs, i.e. quantize_row_iq4_nl_impl(..., qw =
 *   NULL, ntry = 7) per block (the same function quantize_row_iq4_nl_ref / _xs_ref call).
 *   OUT.deq.f32 (optional) gets ggml_get_type_traits(type)->to_float (dequantize_row_<t>) of
 *   those blocks: ggml's reference dequantization, ROWS*COLS float32.
 * dequant: IN.blocks must be ROWS * ggml_row_size(TYPE, COLS) bytes; OUT.f32 gets to_float of it
 *   (for hand-made blocks: edge scales, NaN/Inf, extreme codes).
 * types: the accepted types with ggml's type id, block size (elements) and block bytes.
 *
 * TYPE is ggml's type name, case-insensitive: q8_0 q4_0 q4_1 q5_0 q5_1 q2_k q3_k q4_k q5_k q6_k
 * iq4_nl iq4_xs f16 bf16 (`ggml-qref types`); any other type is refused. Outputs are written to a temp
 * name and renamed. Errors: one line on stderr, exit 1 (bad data), 2 (bad arguments).
 */
#include "ggml.h"

#include <ctype.h>
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static void usage(FILE *f) {
    fprintf(f, "usage: ggml-qref quant   TYPE ROWS COLS IN.f32 OUT.blocks [OUT.deq.f32]\n"
               "       ggml-qref dequant TYPE ROWS COLS IN.blocks OUT.f32\n"
               "       ggml-qref quantw  TYPE ROWS COLS IN.f32 IMATRIX.f32 OUT.blocks\n"
               "       ggml-qref types\n"
               "quant: ggml_quantize_chunk(imatrix NULL) = quantize_row_<t>_ref (iq4: _impl, ntry 7);\n"
               "dequant: ggml_get_type_traits(t)->to_float = dequantize_row_<t>. Little-endian, row-major.\n");
}

static int die(int code, const char *what, const char *path, const char *detail) {
    fprintf(stderr, "ggml-qref: error: %s (%s): %s\n", what, path ? path : "-", detail);
    return code;
}

/* The types this program is for (issue 12's GGUF block formats, plus f16 / bf16): every one of
 * them has a reference quantizer that ggml_quantize_chunk reaches with imatrix NULL. Other ggml
 * types are refused rather than trusted (some abort in ggml_quantize_chunk, some need an imatrix). */
static const enum ggml_type k_types[] = {
    GGML_TYPE_Q8_0, GGML_TYPE_Q4_0, GGML_TYPE_Q4_1, GGML_TYPE_Q5_0, GGML_TYPE_Q5_1,
    GGML_TYPE_Q2_K, GGML_TYPE_Q3_K, GGML_TYPE_Q4_K, GGML_TYPE_Q5_K, GGML_TYPE_Q6_K,
    GGML_TYPE_IQ4_NL, GGML_TYPE_IQ4_XS, GGML_TYPE_F16, GGML_TYPE_BF16,
};
#define N_TYPES (sizeof k_types / sizeof k_types[0])

static int type_of(const char *name, enum ggml_type *out) {
    for (size_t i = 0; i < N_TYPES; i++) {
        const char *a = ggml_type_name(k_types[i]), *b = name;
        while (*a && *b && tolower((unsigned char)*a) == tolower((unsigned char)*b)) a++, b++;
        if (!*a && !*b) { *out = k_types[i]; return 0; }
    }
    return -1;
}

static int parse_i64(const char *s, int64_t *out) {
    char *end;
    errno = 0;
    long long v = strtoll(s, &end, 10);
    if (errno || *end || end == s || v <= 0 || v > ((int64_t)1 << 40)) return -1;
    *out = v;
    return 0;
}

/* Read exactly want bytes of path (the whole file) into a fresh buffer. */
static void *read_exact(const char *path, size_t want, int *rc) {
    FILE *f = fopen(path, "rb");
    if (!f) { *rc = die(1, "cannot open input", path, strerror(errno)); return NULL; }
    if (fseek(f, 0, SEEK_END) != 0) { fclose(f); *rc = die(1, "cannot seek input", path, strerror(errno)); return NULL; }
    long size = ftell(f);
    rewind(f);
    if (size < 0 || (size_t)size != want) {
        char d[128];
        snprintf(d, sizeof d, "size %ld bytes, want %zu for the given TYPE ROWS COLS", size, want);
        fclose(f);
        *rc = die(1, "input has the wrong size", path, d);
        return NULL;
    }
    void *buf = malloc(want ? want : 1);
    if (!buf || fread(buf, 1, want, f) != want) {
        free(buf);
        fclose(f);
        *rc = die(1, "cannot read input", path, "short read or out of memory");
        return NULL;
    }
    fclose(f);
    return buf;
}

/* Write to path.tmp.<pid>, then rename: a reader never sees half a file. */
static int write_atomic(const char *path, const void *buf, size_t n) {
    char tmp[4096];
    if (snprintf(tmp, sizeof tmp, "%s.tmp.%ld", path, (long)getpid()) >= (int)sizeof tmp)
        return die(2, "output path too long", path, "over 4000 bytes");
    FILE *f = fopen(tmp, "wb");
    if (!f) return die(1, "cannot create output", tmp, strerror(errno));
    int bad = fwrite(buf, 1, n, f) != n;
    bad |= fclose(f) != 0;
    if (bad) { remove(tmp); return die(1, "cannot write output", tmp, strerror(errno)); }
    if (rename(tmp, path) != 0) { remove(tmp); return die(1, "cannot rename output", path, strerror(errno)); }
    return 0;
}

static int cmd_types(void) {
    printf("%-8s %4s %5s %5s\n", "type", "id", "blck", "bytes");
    for (size_t i = 0; i < N_TYPES; i++) {
        const struct ggml_type_traits *tr = ggml_get_type_traits(k_types[i]);
        printf("%-8s %4d %5lld %5zu\n", tr->type_name, (int)k_types[i], (long long)tr->blck_size, tr->type_size);
    }
    return 0;
}

int main(int argc, char **argv) {
    if (argc == 2 && !strcmp(argv[1], "types")) return cmd_types();
    if (argc >= 2 && (!strcmp(argv[1], "--help") || !strcmp(argv[1], "-h"))) { usage(stdout); return 0; }
    int quant = argc >= 2 && !strcmp(argv[1], "quant");
    int deq = argc >= 2 && !strcmp(argv[1], "dequant");
    int quantw = argc >= 2 && !strcmp(argv[1], "quantw");
    if (!((quant && (argc == 7 || argc == 8)) || (deq && argc == 7) || (quantw && argc == 8))) {
        usage(stderr);
        return 2;
    }

    enum ggml_type type;
    int64_t rows, cols;
    if (type_of(argv[2], &type) != 0) return die(2, "unknown ggml type", argv[2], "accepted: see `ggml-qref types`");
    if (parse_i64(argv[3], &rows) || parse_i64(argv[4], &cols))
        return die(2, "ROWS and COLS must be positive integers", argv[3], argv[4]);
    const struct ggml_type_traits *tr = ggml_get_type_traits(type);
    if (cols % tr->blck_size != 0) {
        char d[96];
        snprintf(d, sizeof d, "COLS %lld is not a multiple of the block size %lld", (long long)cols,
                 (long long)tr->blck_size);
        return die(2, "bad shape", tr->type_name, d);
    }

    const size_t nel = (size_t)rows * (size_t)cols;
    const size_t row_bytes = ggml_row_size(type, cols);
    const size_t qbytes = (size_t)rows * row_bytes;
    int rc = 0;
    void *blocks = NULL;
    float *f32 = NULL;

    if (quantw) {
        float *src = read_exact(argv[5], nel * sizeof(float), &rc);
        if (!src) return rc;
        float *imat = read_exact(argv[6], (size_t)cols * sizeof(float), &rc);
        if (!imat) { free(src); return rc; }
        blocks = malloc(qbytes);
        if (!blocks) { free(src); free(imat); return die(1, "out of memory", argv[7], "blocks"); }
        size_t got = ggml_quantize_chunk(type, src, blocks, 0, rows, cols, imat);
        free(src);
        free(imat);
        if (got != qbytes) { free(blocks); return die(1, "ggml_quantize_chunk size mismatch", argv[7], "internal"); }
        rc = write_atomic(argv[7], blocks, qbytes);
        free(blocks);
        ggml_quantize_free();
        return rc;
    }
    if (quant) {
        float *src = read_exact(argv[5], nel * sizeof(float), &rc);
        if (!src) return rc;
        blocks = malloc(qbytes);
        if (!blocks) { free(src); return die(1, "out of memory", argv[6], "blocks"); }
        size_t got = ggml_quantize_chunk(type, src, blocks, 0, rows, cols, NULL);
        free(src);
        if (got != qbytes) { free(blocks); return die(1, "ggml_quantize_chunk size mismatch", argv[6], "internal"); }
        rc = write_atomic(argv[6], blocks, qbytes);
        if (rc || argc == 7) { free(blocks); ggml_quantize_free(); return rc; }
    } else {
        blocks = read_exact(argv[5], qbytes, &rc);
        if (!blocks) return rc;
    }

    f32 = malloc(nel * sizeof(float));
    if (!f32) { free(blocks); return die(1, "out of memory", argv[argc - 1], "floats"); }
    for (int64_t r = 0; r < rows; r++)
        tr->to_float((const char *)blocks + (size_t)r * row_bytes, f32 + (size_t)r * cols, cols);
    rc = write_atomic(argv[argc - 1], f32, nel * sizeof(float));
    free(f32);
    free(blocks);
    ggml_quantize_free();
    return rc;
}
