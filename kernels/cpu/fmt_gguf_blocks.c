/* fmt_gguf_blocks.c - the scalar loops shared by every GGUF legacy block format (Q8_0, Q4_0,
 * Q4_1, Q5_0, Q5_1, IQ4_NL): a row is cols / 32 blocks, each decoded or encoded by its format's
 * codec (fmt_q8_0.c, fmt_q4.c, fmt_q5.c, fmt_iq4_nl.c), so each format states only what differs,
 * its block arithmetic.
 *
 * matvec spec: the f32 values the codec decodes (ggml's dequantize_row_* exactly) times x,
 * summed in double: the product the prefill path (dequantize, then sgemm) also computes. */
#include <math.h>

#include "kern_internal.h"
#include "lq_blocks.h"

void lq_blk_matvec_ref(const lq_blk_codec *k, const lq_weight *w, const float *x, float *y,
                       int64_t r0, int64_t r1) {
    const int64_t nb = w->cols / LQ_QK;
    float v[LQ_QK];
    for (int64_t r = r0; r < r1; r++) {
        const uint8_t *b = (const uint8_t *)w->data + (size_t)r * w->row_bytes;
        double s = 0.0;
        for (int64_t i = 0; i < nb; i++, b += k->bytes) {
            k->decode(b, v);
            for (int j = 0; j < LQ_QK; j++) s += (double)v[j] * (double)x[i * LQ_QK + j];
        }
        y[r - r0] = (float)s;
    }
}

void lq_blk_dequant_ref(const lq_blk_codec *k, const lq_weight *w, int64_t r0, int64_t r1, float *out) {
    const int64_t nb = w->cols / LQ_QK;
    for (int64_t r = r0; r < r1; r++) {
        const uint8_t *b = (const uint8_t *)w->data + (size_t)r * w->row_bytes;
        float *o = out + (size_t)(r - r0) * (size_t)w->cols;
        for (int64_t i = 0; i < nb; i++) k->decode(b + i * k->bytes, o + i * LQ_QK);
    }
}

void lq_blk_quantize_ref(const lq_blk_codec *k, const float *src, const float *col_weight, lq_weight *dst) {
    const int64_t nb = dst->cols / LQ_QK;
    dst->group_size = 0; /* the block size is the format's, not a parameter */
    for (int64_t r = 0; r < dst->rows; r++) {
        uint8_t *b = (uint8_t *)dst->data + (size_t)r * dst->row_bytes;
        const float *x = src + (size_t)r * (size_t)dst->cols;
        if (col_weight && k->encode_w) {
            float sum_x2 = 0; /* ggml: sum_x2 / n_per_row, over the row, in f32 */
            for (int64_t j = 0; j < dst->cols; j++) {
                const float sq = x[j] * x[j];
                sum_x2 += sq;
            }
            const float sigma2 = sum_x2 / (float)dst->cols;
            for (int64_t i = 0; i < nb; i++)
                k->encode_w(x + i * LQ_QK, col_weight + i * LQ_QK, sigma2, b + i * k->bytes);
        } else {
            for (int64_t i = 0; i < nb; i++) k->encode(x + i * LQ_QK, b + i * k->bytes);
        }
    }
}

void lq_blk_codes_absmax(const float *x, int half, uint8_t *hdr, uint8_t *u) {
    float amax = 0.0f, max = 0.0f;
    for (int j = 0; j < LQ_QK; j++) {
        const float a = fabsf(x[j]);
        if (amax < a) { /* strict: the first of equal magnitudes wins */
            amax = a;
            max = x[j];
        }
    }
    const float d = max / -(float)half;
    const float id = d != 0.0f ? 1.0f / d : 0.0f;
    const float off = (float)half + 0.5f; /* 8.5 or 16.5, exact */
    const int top = 2 * half - 1;
    lq_blk_put_f16(hdr, d);
    for (int j = 0; j < LQ_QK; j++) {
        const float s = x[j] * id; /* its own statement: no fused multiply-add, as in ggml */
        const int q = lq_ggml_ftoi8(s + off);
        u[j] = (uint8_t)(q < top ? q : top);
    }
}

void lq_blk_codes_minmax(const float *x, int qmax, uint8_t *hdr, uint8_t *u) {
    float min = 3.402823466e38f, max = -3.402823466e38f; /* FLT_MAX */
    for (int j = 0; j < LQ_QK; j++) {
        if (x[j] < min) min = x[j];
        if (x[j] > max) max = x[j];
    }
    const float d = (max - min) / (float)qmax;
    const float id = d != 0.0f ? 1.0f / d : 0.0f;
    lq_blk_put_f16(hdr, d);
    lq_blk_put_f16(hdr + 2, min);
    for (int j = 0; j < LQ_QK; j++) {
        const float s = (x[j] - min) * id;
        const int q = lq_ggml_ftoi8(s + 0.5f);
        u[j] = (uint8_t)(q < qmax ? q : qmax);
    }
}
