/* test_gguf_blocks.c - the GGUF legacy block formats (Q8_0, Q4_0, Q4_1, Q5_0, Q5_1, IQ4_NL).
 *
 * External references: tests/fixtures/gguf_blocks/<type>.txt, made by
 * scripts/gguf_vectors/make_legacy_vectors.py with the PyPI gguf package's quantizers and
 * dequantizers (bit-exact with ggml's quantize_row_*_ref / dequantize_row_*), cross-checked with
 * ggml's own reference quantizer where the file says so (and IQ4_NL's quantize records come only
 * from it). Per record: quantize_ref's block bytes equal the expected bytes, dequant_ref and the
 * fast dequant give the expected floats bit for bit, and matvec_ref equals the double sum of the
 * expected floats times x. Also the worked examples of lq_blocks.h, the shape rule (whole blocks
 * only), the ggml type ids of every traits row, and multi-block rows. Fast vs ref at awkward
 * shapes, round trips and lq_matmul are in test_formats.c with the other formats.
 */
#include <criterion/criterion.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lq_blocks.h"
#include "lq_format.h"

#define MAX_RECORDS 64

typedef struct record {
    int quant;        /* 1: a Q record (input given), 0: a D record */
    float x[LQ_QK];   /* input (Q only) */
    uint8_t blk[34];  /* block bytes */
    float y[LQ_QK];   /* ggml's dequantized values */
} record;

static const struct {
    lq_wfmt fmt;
    const char *name;
    int gguf_type;
    size_t bytes;
    double bpw;
} k_types[] = {
    {LQ_WFMT_Q8_0, "q8_0", 8, 34, 8.5},  {LQ_WFMT_Q4_0, "q4_0", 2, 18, 4.5},
    {LQ_WFMT_Q4_1, "q4_1", 3, 20, 5.0},  {LQ_WFMT_Q5_0, "q5_0", 6, 22, 5.5},
    {LQ_WFMT_Q5_1, "q5_1", 7, 24, 6.0},  {LQ_WFMT_IQ4_NL, "iq4_nl", 20, 18, 4.5},
};
#define N_TYPES (sizeof k_types / sizeof k_types[0])

static float bits_f32(uint32_t u) {
    float f;
    memcpy(&f, &u, 4);
    return f;
}

/* n floats as 8-digit hex words at *p; advances p */
static void parse_floats(char **p, float *out, int n, const char *path, int line) {
    for (int i = 0; i < n; i++) {
        char *end;
        const unsigned long u = strtoul(*p, &end, 16);
        cr_assert(end != *p, "%s:%d: float %d missing", path, line, i);
        out[i] = bits_f32((uint32_t)u);
        *p = end;
    }
}

static void parse_bytes(char **p, uint8_t *out, size_t n, const char *path, int line) {
    while (**p == ' ') (*p)++;
    for (size_t i = 0; i < n; i++) {
        unsigned v;
        cr_assert(sscanf(*p + 2 * i, "%2x", &v) == 1, "%s:%d: byte %zu missing", path, line, i);
        out[i] = (uint8_t)v;
    }
    *p += 2 * n;
    cr_assert(**p == ' ' || **p == '\n' || **p == 0, "%s:%d: block is not %zu bytes", path, line, n);
}

static void skip_bar(char **p, const char *path, int line) {
    while (**p == ' ') (*p)++;
    cr_assert(**p == '|', "%s:%d: '|' expected", path, line);
    (*p)++;
}

/* Reads tests/fixtures/gguf_blocks/<name>.txt; returns the number of records. */
static int load(const char *name, size_t bytes, record *rec) {
    char path[512], buf[8192];
    snprintf(path, sizeof path, "%s/gguf_blocks/%s.txt", LQ_FIXTURES_DIR, name);
    FILE *f = fopen(path, "r");
    cr_assert_not_null(f, "%s: cannot open", path);
    int n = 0, line = 0;
    while (fgets(buf, sizeof buf, f)) {
        line++;
        if (buf[0] == '#' || buf[0] == '\n') continue;
        cr_assert(n < MAX_RECORDS, "%s: too many records", path);
        record *r = &rec[n++];
        memset(r, 0, sizeof *r);
        char *p = buf + 1;
        r->quant = buf[0] == 'Q';
        cr_assert(buf[0] == 'Q' || buf[0] == 'D', "%s:%d: record kind '%c'", path, line, buf[0]);
        if (r->quant) {
            parse_floats(&p, r->x, LQ_QK, path, line);
            skip_bar(&p, path, line);
        }
        parse_bytes(&p, r->blk, bytes, path, line);
        skip_bar(&p, path, line);
        parse_floats(&p, r->y, LQ_QK, path, line);
    }
    fclose(f);
    return n;
}

static void expect_floats_eq(const float *got, const float *want, int n, const char *what, int rec) {
    for (int i = 0; i < n; i++)
        cr_assert(memcmp(&got[i], &want[i], 4) == 0, "%s record %d element %d: %.9g (%08x), want %.9g",
                  what, rec, i, got[i], *(const uint32_t *)&got[i], want[i]);
}

/* ---- pinned vectors ------------------------------------------------------------------------ */

Test(gguf_blocks, pinned_vectors) {
    record rec[MAX_RECORDS];
    for (size_t t = 0; t < N_TYPES; t++) {
        const lq_wfmt_traits *tr = lq_wfmt_get(k_types[t].fmt);
        const size_t bb = k_types[t].bytes;
        const int n = load(k_types[t].name, bb, rec);
        cr_assert(n >= 8, "%s: only %d records", k_types[t].name, n);
        int nq = 0;
        for (int i = 0; i < n; i++) {
            const record *r = &rec[i];
            uint8_t blk[34];
            lq_weight w = {.fmt = k_types[t].fmt, .rows = 1, .cols = LQ_QK, .data = blk, .row_bytes = bb};
            if (r->quant) {
                nq++;
                memset(blk, 0xA5, sizeof blk);
                tr->quantize_ref(r->x, &(lq_quant_params){0}, &w);
                for (size_t k = 0; k < bb; k++)
                    cr_assert_eq(blk[k], r->blk[k], "%s record %d: byte %zu is %02X, want %02X",
                                 tr->name, i, k, blk[k], r->blk[k]);
            }
            memcpy(blk, r->blk, bb);
            float y[LQ_QK], yf[LQ_QK], x[LQ_QK], mv;
            tr->dequant_ref(&w, 0, 1, y);
            expect_floats_eq(y, r->y, LQ_QK, tr->name, i);
            tr->dequant(&w, 0, 1, yf);
            expect_floats_eq(yf, r->y, LQ_QK, tr->name, i);
            double s = 0;
            for (int j = 0; j < LQ_QK; j++) {
                x[j] = (float)((j * 7) % 11 - 5) * 0.375f;
                s += (double)r->y[j] * x[j];
            }
            tr->matvec_ref(&w, x, &mv, 0, 1);
            cr_assert(mv == (float)s || (isnan(mv) && isnan(s)), "%s record %d: matvec_ref %.9g, want %.9g",
                      tr->name, i, mv, (float)s);
        }
        /* IQ4_NL quantize records need ggml's own quantizer (gguf-py has none) */
        cr_assert(nq > 0 || k_types[t].fmt == LQ_WFMT_IQ4_NL, "%s: no quantize records", tr->name);
    }
}

/* The Q records of a file as rows of several blocks: a row quantizes block by block. */
Test(gguf_blocks, multi_block_rows) {
    record rec[MAX_RECORDS];
    for (size_t t = 0; t < N_TYPES; t++) {
        const lq_wfmt_traits *tr = lq_wfmt_get(k_types[t].fmt);
        const size_t bb = k_types[t].bytes;
        const int n = load(k_types[t].name, bb, rec);
        int idx[MAX_RECORDS], nq = 0;
        for (int i = 0; i < n; i++)
            if (rec[i].quant) idx[nq++] = i;
        if (nq < 6) continue;
        const int64_t rows = 2, cols = 3 * LQ_QK; /* 2 rows x 3 blocks */
        float src[2 * 3 * LQ_QK], out[2 * 3 * LQ_QK];
        uint8_t data[2 * 3 * 34];
        for (int b = 0; b < 6; b++) memcpy(src + b * LQ_QK, rec[idx[b]].x, sizeof rec[0].x);
        size_t rb;
        cr_assert(lq_wfmt_sizes(k_types[t].fmt, rows, cols, NULL, &rb, NULL, NULL));
        cr_assert_eq(rb, 3 * bb);
        lq_weight w = {.fmt = k_types[t].fmt, .rows = rows, .cols = cols, .data = data, .row_bytes = rb};
        tr->quantize_ref(src, &(lq_quant_params){.group_size = 128, .asym = 1}, &w);
        for (int b = 0; b < 6; b++)
            cr_assert_eq(memcmp(data + b * bb, rec[idx[b]].blk, bb), 0, "%s block %d", tr->name, b);
        tr->dequant_ref(&w, 0, rows, out);
        for (int b = 0; b < 6; b++) expect_floats_eq(out + b * LQ_QK, rec[idx[b]].y, LQ_QK, tr->name, idx[b]);
        tr->dequant(&w, 1, 2, out); /* the second row alone */
        for (int b = 3; b < 6; b++)
            expect_floats_eq(out + (b - 3) * LQ_QK, rec[idx[b]].y, LQ_QK, tr->name, idx[b]);
    }
}

/* ---- the worked examples of lq_blocks.h (hand-derived from ggml's formulas) ----------------- */

static void decode(lq_wfmt f, const uint8_t *blk, float *out) {
    lq_weight w = {.fmt = f, .rows = 1, .cols = LQ_QK, .data = blk, .row_bytes = 64};
    lq_wfmt_get(f)->dequant_ref(&w, 0, 1, out);
}

Test(gguf_blocks, worked_examples) {
    float y[LQ_QK];
    uint8_t q8[34] = {0x00, 0x3C, 0x01, 0xFF, 0x80, 0x00};
    decode(LQ_WFMT_Q8_0, q8, y);
    cr_assert(y[0] == 1.0f && y[1] == -1.0f && y[2] == -128.0f && y[3] == 0.0f);
    uint8_t q4[18] = {0x00, 0x40, 0x98, 0x0F};
    decode(LQ_WFMT_Q4_0, q4, y);
    cr_assert(y[0] == 0.0f && y[16] == 2.0f && y[1] == 14.0f && y[17] == -16.0f);
    uint8_t q41[20] = {0x00, 0x38, 0x00, 0xBC, 0x21};
    decode(LQ_WFMT_Q4_1, q41, y);
    cr_assert(y[0] == -0.5f && y[16] == 0.0f && y[1] == -1.0f);
    uint8_t q5[22] = {0x00, 0x3C, 0x01, 0x00, 0x01, 0x00};
    decode(LQ_WFMT_Q5_0, q5, y);
    cr_assert(y[0] == 0.0f && y[16] == 0.0f && y[1] == -16.0f && y[17] == -16.0f);
    uint8_t iq[18] = {0x00, 0x3C, 0x80};
    decode(LQ_WFMT_IQ4_NL, iq, y);
    cr_assert(y[0] == -127.0f && y[16] == 1.0f && y[1] == -127.0f);
}

/* ---- table rows ------------------------------------------------------------------------------ */

Test(gguf_blocks, rows_and_sizes) {
    for (size_t t = 0; t < N_TYPES; t++) {
        const lq_wfmt_traits *tr = lq_wfmt_get(k_types[t].fmt);
        cr_assert_str_eq(tr->name, k_types[t].name);
        cr_assert_eq(tr->gguf_type, k_types[t].gguf_type);
        cr_assert_eq(lq_wfmt_from_gguf_type(k_types[t].gguf_type), k_types[t].fmt);
        cr_assert_float_eq(tr->bits_per_weight, k_types[t].bpw, 0.0);
        cr_assert_float_eq(tr->bits_per_weight, 8.0 * (double)k_types[t].bytes / LQ_QK, 0.0);
        size_t rb = 0;
        int64_t a0 = -1, a1 = -1;
        cr_assert(lq_wfmt_sizes(k_types[t].fmt, 5, 576, NULL, &rb, &a0, &a1));
        cr_assert(rb == 18 * k_types[t].bytes && a0 == 0 && a1 == 0);
        const int64_t bad[] = {1, 16, 31, 33, 48, 577};
        for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
            cr_assert_eq(lq_wfmt_sizes(k_types[t].fmt, 5, bad[i], NULL, &rb, &a0, &a1), 0,
                         "%s must refuse %lld columns", tr->name, (long long)bad[i]);
    }
    /* ggml's ids of the float rows; the compressed-tensors rows have none */
    cr_assert_eq(lq_wfmt_from_gguf_type(0), LQ_WFMT_F32);
    cr_assert_eq(lq_wfmt_from_gguf_type(1), LQ_WFMT_F16);
    cr_assert_eq(lq_wfmt_from_gguf_type(30), LQ_WFMT_BF16);
    cr_assert_eq(lq_wfmt_get(LQ_WFMT_W8A16)->gguf_type, -1);
    cr_assert_eq(lq_wfmt_get(LQ_WFMT_W4A16)->gguf_type, -1);
    cr_assert_eq(lq_wfmt_get(LQ_WFMT_FP8_E4M3)->gguf_type, -1);
    cr_assert_eq(lq_wfmt_get(LQ_WFMT_W8A8)->gguf_type, -1);
    cr_assert_eq(lq_wfmt_from_gguf_type(-1), LQ_WFMT_COUNT);
    cr_assert_eq(lq_wfmt_from_gguf_type(4), LQ_WFMT_COUNT); /* Q4_2: removed from ggml */
    cr_assert_eq(lq_wfmt_from_gguf_type(1000), LQ_WFMT_COUNT);
    /* no two rows share a type id */
    for (int f = 0; f < LQ_WFMT_COUNT; f++) {
        const int g = lq_wfmt_get((lq_wfmt)f)->gguf_type;
        if (g >= 0) cr_assert_eq(lq_wfmt_from_gguf_type(g), (lq_wfmt)f, "type %d: two rows", g);
    }
}
