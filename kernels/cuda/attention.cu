/* attention.cu - causal grouped-query attention over the device KV cache (f32).
 *
 * One block per (token, head), 4 warps. Warp w takes cache positions w, w+4, ... <= pos: its
 * lanes hold head_dim/32 elements of q and of the running output, compute q.k with a shuffle
 * reduction, and keep an online softmax (running max m, running sum l; the output is rescaled
 * by exp(m_old - m_new) whenever the max grows). The 4 partial (m, l, o) are merged through
 * shared memory at the end. No score buffer: any context length fits. The CPU computes the same
 * softmax (scores * scale, max-subtracted exp, f32 sum) in two passes, so the two
 * agree to f32 rounding of a few operations per score (test_cuda's tolerance). Decode with a
 * long context uses only n_heads blocks: splitting the context over blocks (flash-decoding) is
 * the next step where it matters. A sliding window starts each query's loop at p - window + 1.
 */
#include "lq_cuda_internal.cuh"

#define ATT_WARPS 4
#define ATT_MAX_PER_LANE 8 /* head_dim <= 256 */

template <int PL> /* elements per lane: head_dim <= 32 * PL */
__global__ void __launch_bounds__(ATT_WARPS * 32)
attention_kernel(float *__restrict__ out, const float *__restrict__ q, const float *__restrict__ kc,
                 const float *__restrict__ vc, int pos0, int n_heads, int n_kv_heads, int head_dim,
                 int window, float scale) {
    const int t = blockIdx.x / n_heads, h = blockIdx.x % n_heads;
    const int kvh = h / (n_heads / n_kv_heads);
    const int64_t q_dim = (int64_t)n_heads * head_dim, kv_dim = (int64_t)n_kv_heads * head_dim;
    const int p = pos0 + t;
    const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5;
    const int lo = window > 0 && p - window + 1 > 0 ? p - window + 1 : 0; /* sliding window */
    const float *qh = q + (size_t)t * q_dim + (size_t)h * head_dim;
    float qv[PL], o[PL];
#pragma unroll
    for (int j = 0; j < PL; j++) {
        const int d = lane + 32 * j;
        qv[j] = d < head_dim ? qh[d] : 0.0f;
        o[j] = 0.0f;
    }
    float m = -INFINITY, l = 0.0f;
    for (int i = lo + warp; i <= p; i += ATT_WARPS) {
        const float *k = kc + (size_t)i * kv_dim + (size_t)kvh * head_dim;
        const float *v = vc + (size_t)i * kv_dim + (size_t)kvh * head_dim;
        float dot = 0.0f;
#pragma unroll
        for (int j = 0; j < PL; j++) {
            const int d = lane + 32 * j;
            if (d < head_dim) dot = fmaf(qv[j], k[d], dot);
        }
#pragma unroll
        for (int s = 16; s > 0; s >>= 1) dot += __shfl_xor_sync(0xffffffffu, dot, s);
        const float sc = dot * scale;
        const float mn = sc > m ? sc : m;
        const float corr = expf(m - mn); /* m = -inf at first: exp(-inf) = 0 */
        const float e = expf(sc - mn);
        l = l * corr + e;
#pragma unroll
        for (int j = 0; j < PL; j++) {
            const int d = lane + 32 * j;
            o[j] = o[j] * corr + (d < head_dim ? e * v[d] : 0.0f);
        }
        m = mn;
    }
    __shared__ float sm[ATT_WARPS], sl[ATT_WARPS];
    __shared__ float so[ATT_WARPS][32 * ATT_MAX_PER_LANE];
    if (lane == 0) { sm[warp] = m; sl[warp] = l; }
#pragma unroll
    for (int j = 0; j < PL; j++) so[warp][lane + 32 * j] = o[j];
    __syncthreads();
    if (warp != 0) return;
    float M = -INFINITY;
    for (int w = 0; w < ATT_WARPS; w++) M = sm[w] > M ? sm[w] : M;
    float L = 0.0f, f[ATT_WARPS];
    for (int w = 0; w < ATT_WARPS; w++) {
        f[w] = sm[w] == -INFINITY ? 0.0f : expf(sm[w] - M); /* a warp with no position */
        L += sl[w] * f[w];
    }
    const float inv = 1.0f / L;
    float *oh = out + (size_t)t * q_dim + (size_t)h * head_dim;
#pragma unroll
    for (int j = 0; j < PL; j++) {
        const int d = lane + 32 * j;
        if (d >= head_dim) continue;
        float acc = 0.0f;
        for (int w = 0; w < ATT_WARPS; w++) acc += so[w][d] * f[w];
        oh[d] = acc * inv;
    }
}

int lq_cuda_attention(lq_cuda_ctx *ctx, float *out, const float *q, const float *kc,
                      const float *vc, int n_tok, int pos0, int n_heads, int n_kv_heads,
                      int head_dim, int window, float scale) {
    if (n_tok <= 0) return LQ_CUDA_OK;
    if (head_dim <= 0 || head_dim > 32 * ATT_MAX_PER_LANE || n_kv_heads <= 0 || n_heads % n_kv_heads ||
        window < 0)
        return lq_cuda_fail(LQ_CUDA_ERR_ARG, "attention: head_dim %d / heads %d / kv heads %d / window %d not supported",
                            head_dim, n_heads, n_kv_heads, window);
    const unsigned blocks = (unsigned)((int64_t)n_tok * n_heads);
#define ATT_LAUNCH(PL)                                                                                   \
    attention_kernel<PL><<<blocks, ATT_WARPS * 32, 0, ctx->stream>>>(out, q, kc, vc, pos0, n_heads,   \
                                                                     n_kv_heads, head_dim, window, scale)
    if (head_dim <= 32) ATT_LAUNCH(1);
    else if (head_dim <= 64) ATT_LAUNCH(2);
    else if (head_dim <= 128) ATT_LAUNCH(4);
    else ATT_LAUNCH(8);
#undef ATT_LAUNCH
    LQ_CU_LAUNCHED();
    return LQ_CUDA_OK;
}
