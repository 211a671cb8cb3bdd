/* ops_ref.c - scalar specs of the element-wise kernels (lq_ops.h).
 *
 * Plain loops in the order a reader expects. Reductions that the header does not pin to f32
 * (rmsnorm, dot) accumulate in double, so the spec is close to the exact value; softmax sums in
 * f32 as the header specifies. */
#include <math.h>

#include "lq_blocks.h"
#include "lq_ops.h"

void lq_rmsnorm_ref(float *out, const float *x, const float *weight, int64_t n, float eps) {
    double ss = 0.0;
    for (int64_t i = 0; i < n; i++) ss += (double)x[i] * (double)x[i];
    const float scale = (float)(1.0 / sqrt(ss / (double)(n > 0 ? n : 1) + (double)eps));
    for (int64_t i = 0; i < n; i++) out[i] = (x[i] * scale) * weight[i];
}

float lq_dot_f32_ref(const float *a, const float *b, int64_t n) {
    double s = 0.0;
    for (int64_t i = 0; i < n; i++) s += (double)a[i] * (double)b[i];
    return (float)s;
}

/* Not the double-precision dot: the order the fast twin keeps (ops_rows_avx2.c), so the rows of
 * attention have the same bits on every CPU. Eight lanes, lane l summing q[c] k[c] for c = l mod 8
 * with one FMA per term in column order (columns past n count as 0 * 0, as a masked load gives),
 * then ((l0+l1)+(l2+l3))+((l4+l5)+(l6+l7)), times scale. */
void lq_dot_f32_rows_ref(const float *q, const float *k, int64_t stride, int64_t rows, int64_t n, float scale,
                         float *out) {
    for (int64_t i = 0; i < rows; i++) {
        const float *kr = k + i * stride;
        float l[8] = {0};
        for (int64_t c = 0; c < (n + 7) / 8 * 8; c += 8)
            for (int j = 0; j < 8; j++)
                l[j] = c + j < n ? fmaf(q[c + j], kr[c + j], l[j]) : fmaf(0.0f, 0.0f, l[j]);
        out[i] = (((l[0] + l[1]) + (l[2] + l[3])) + ((l[4] + l[5]) + (l[6] + l[7]))) * scale;
    }
}

void lq_axpy_f32_ref(float *y, float a, const float *x, int64_t n) {
    for (int64_t i = 0; i < n; i++) y[i] += a * x[i];
}

void lq_softmax_ref(float *x, int64_t n) {
    if (n <= 0) return;
    float mx = x[0];
    for (int64_t i = 1; i < n; i++) if (x[i] > mx) mx = x[i];
    float sum = 0.0f;
    for (int64_t i = 0; i < n; i++) { x[i] = expf(x[i] - mx); sum += x[i]; }
    const float inv = 1.0f / sum;
    for (int64_t i = 0; i < n; i++) x[i] *= inv;
}

void lq_swiglu_ref(float *gate, const float *up, int64_t n) {
    for (int64_t i = 0; i < n; i++) {
        const float g = gate[i];
        gate[i] = (g / (1.0f + expf(-g))) * up[i];
    }
}

/* gelu_pytorch_tanh(g) * up in f32, as torch's GeluType::Tanh kernel writes it:
 * 0.5 g (1 + tanh(sqrt(2/pi) (g + 0.044715 g^3))). */
void lq_geglu_tanh_ref(float *gate, const float *up, int64_t n) {
    const float beta = (float)(M_SQRT2 * M_2_SQRTPI * 0.5), kappa = 0.044715f;
    for (int64_t i = 0; i < n; i++) {
        const float g = gate[i];
        gate[i] = 0.5f * g * (1.0f + tanhf(beta * (g + kappa * g * g * g))) * up[i];
    }
}

/* Angles are pos * inv_freq[i] in f32, as HF (freqs = t * inv_freq in float32) and llama2.c
 * compute them, so positions far out round the same way as the reference implementations. */
void lq_rope_ref(float *x, int head_dim, int pos, const float *inv_freq, int interleaved) {
    const int half = head_dim / 2;
    for (int i = 0; i < half; i++) {
        const float ang = (float)pos * inv_freq[i];
        const float c = cosf(ang), s = sinf(ang);
        const int i0 = interleaved ? 2 * i : i;
        const int i1 = interleaved ? 2 * i + 1 : i + half;
        const float a = x[i0], b = x[i1];
        x[i0] = a * c - b * s;
        x[i1] = a * s + b * c;
    }
}

void lq_rope_cos_sin(float *cs, int head_dim, int pos, const float *inv_freq) {
    for (int i = 0; i < head_dim / 2; i++) {
        const float ang = (float)pos * inv_freq[i];
        cs[2 * i] = cosf(ang);
        cs[2 * i + 1] = sinf(ang);
    }
}

/* The arithmetic of lq_rope_ref, in the same file (same flags: no FMA contraction here either). */
void lq_rope_apply(float *x, int head_dim, const float *cs, int interleaved) {
    const int half = head_dim / 2;
    for (int i = 0; i < half; i++) {
        const float c = cs[2 * i], s = cs[2 * i + 1];
        const int i0 = interleaved ? 2 * i : i;
        const int i1 = interleaved ? 2 * i + 1 : i + half;
        const float a = x[i0], b = x[i1];
        x[i0] = a * c - b * s;
        x[i1] = a * s + b * c;
    }
}

void lq_f16_to_f32_row_ref(const uint16_t *src, float *dst, int64_t n) {
    for (int64_t i = 0; i < n; i++) dst[i] = lq_f16_to_f32(src[i]);
}

void lq_bf16_to_f32_row_ref(const uint16_t *src, float *dst, int64_t n) {
    for (int64_t i = 0; i < n; i++) dst[i] = lq_bf16_to_f32(src[i]);
}

void lq_f32_to_f16_row_ref(const float *src, uint16_t *dst, int64_t n) {
    for (int64_t i = 0; i < n; i++) dst[i] = lq_f32_to_f16(src[i]);
}

void lq_f32_to_bf16_row_ref(const float *src, uint16_t *dst, int64_t n) {
    for (int64_t i = 0; i < n; i++) dst[i] = lq_f32_to_bf16(src[i]);
}
