/* w8a8.cu - W8A8 on the device: int8 weights x int8 activations quantized per token, int32 sums.
 *
 * Bit-identical to lq_matvec_w8a8_ref by construction: amax is a max (order-free, NaN ignored as
 * the CPU's max does), inv = 127 / amax and sx = amax / 127 are single IEEE divisions (nvcc's
 * default -prec-div=true), each code is one f32 multiply, the same two clamps (NaN -> -127) and
 * rintf (round half to even, as nearbyintf in the default rounding mode); the integer sum is
 * exact (int32 cannot overflow: lq_wfmt_sizes refuses cols > 131072) and y = ((float)acc * sx) *
 * scale[r] is two multiplies that nvcc cannot contract. Tolerance 0.
 *
 * Step 1 (quant_x_kernel, one block per token) writes the codes as int8 (cols rounded up to 16,
 * zero padded) plus sx into the context scratch; step 2 (w8a8_gemv_kernel, one warp per row)
 * reads 16 weight bytes per lane and multiplies 4 codes at a time with __dp4a.
 */
#include "lq_cuda_internal.cuh"

#define W8A8_WARPS 4
#define QX_THREADS 256

__device__ __forceinline__ int xcode(float x, float inv) {
    float v = x * inv;
    v = v > -127.0f ? v : -127.0f;
    v = v < 127.0f ? v : 127.0f;
    return (int)rintf(v);
}

__global__ void __launch_bounds__(QX_THREADS)
quant_x_kernel(const float *__restrict__ X, int64_t cols, int64_t xstride, int8_t *__restrict__ codes,
               float *__restrict__ sxs) {
    const int64_t t = blockIdx.x;
    const float *x = X + (size_t)t * (size_t)cols;
    __shared__ float red[QX_THREADS / 32];
    float m = 0.0f;
    for (int64_t c = threadIdx.x; c < cols; c += QX_THREADS) {
        const float a = fabsf(x[c]);
        m = a > m ? a : m; /* NaN compares false: ignored, as the CPU's loop */
    }
    for (int o = 16; o > 0; o >>= 1) {
        const float b = __shfl_xor_sync(0xffffffffu, m, o);
        m = b > m ? b : m;
    }
    if ((threadIdx.x & 31) == 0) red[threadIdx.x >> 5] = m;
    __syncthreads();
    float amax = 0.0f;
    for (int i = 0; i < QX_THREADS / 32; i++) amax = red[i] > amax ? red[i] : amax;
    const float inv = amax > 0.0f ? 127.0f / amax : 0.0f;
    int8_t *q = codes + (size_t)t * (size_t)xstride;
    for (int64_t c = threadIdx.x; c < xstride; c += QX_THREADS)
        q[c] = c < cols ? (int8_t)xcode(x[c], inv) : (int8_t)0;
    if (threadIdx.x == 0) sxs[t] = amax / 127.0f;
}

template <int NT>
__global__ void __launch_bounds__(W8A8_WARPS * 32)
w8a8_gemv_kernel(const lq_cuda_weight w, const int8_t *__restrict__ codes, int64_t xstride,
                 const float *__restrict__ sxs, float *__restrict__ Y, int64_t ystride) {
    const int lane = threadIdx.x & 31;
    const int64_t r = (int64_t)blockIdx.x * W8A8_WARPS + (threadIdx.x >> 5);
    if (r >= w.rows) return;
    const int4 *row = (const int4 *)((const int8_t *)w.data + (size_t)r * w.row_bytes);
    /* Weight bytes past cols are zero (upload padding) and the codes past cols are zero too, so
     * whole 16-byte chunks can be summed: 0 * anything adds nothing. */
    const int64_t nchunk = (w.cols + 15) / 16;
    int acc[NT];
#pragma unroll
    for (int t = 0; t < NT; t++) acc[t] = 0;
    for (int64_t k = lane; k < nchunk; k += 32) {
        const int4 v = __ldcs(row + k);
#pragma unroll
        for (int t = 0; t < NT; t++) {
            const int4 xq = __ldg((const int4 *)(codes + (size_t)t * (size_t)xstride) + k);
            acc[t] = __dp4a(v.x, xq.x, acc[t]);
            acc[t] = __dp4a(v.y, xq.y, acc[t]);
            acc[t] = __dp4a(v.z, xq.z, acc[t]);
            acc[t] = __dp4a(v.w, xq.w, acc[t]);
        }
    }
    const float s = w.aux[0][r];
#pragma unroll
    for (int t = 0; t < NT; t++) {
        int a = acc[t];
#pragma unroll
        for (int o = 16; o > 0; o >>= 1) a += __shfl_xor_sync(0xffffffffu, a, o);
        if (lane == 0) Y[(size_t)t * (size_t)ystride + r] = (float)a * sxs[t] * s;
    }
}

template <int NT>
static int launch(lq_cuda_ctx *ctx, const lq_cuda_weight *w, const int8_t *codes, int64_t xstride,
                  const float *sxs, float *dY) {
    w8a8_gemv_kernel<NT><<<lq_cuda_blocks(w->rows, W8A8_WARPS), W8A8_WARPS * 32, 0, ctx->stream>>>(
        *w, codes, xstride, sxs, dY, w->rows);
    LQ_CU_LAUNCHED();
    return LQ_CUDA_OK;
}

int lq_cuda_gemv_w8a8(lq_cuda_ctx *ctx, const lq_cuda_weight *w, const float *dX, int nt, float *dY) {
    if (nt < 1 || nt > LQ_CUDA_GEMV_MAX_BATCH)
        return lq_cuda_fail(LQ_CUDA_ERR_ARG, "w8a8 gemv: batch %d outside 1..%d", nt, LQ_CUDA_GEMV_MAX_BATCH);
    const int64_t xstride = (w->cols + 15) / 16 * 16;
    void *scr = NULL;
    LQ_TRY_CU(lq_cuda_scratch(ctx, (size_t)nt * (size_t)xstride + 16 * sizeof(float) * LQ_CUDA_GEMV_MAX_BATCH, &scr));
    int8_t *codes = (int8_t *)scr;
    /* sx after the codes, 16-byte aligned (xstride is a multiple of 16) */
    float *sxs = (float *)(codes + (size_t)nt * (size_t)xstride);
    quant_x_kernel<<<(unsigned)nt, QX_THREADS, 0, ctx->stream>>>(dX, w->cols, xstride, codes, sxs);
    LQ_CU_LAUNCHED();
    switch (nt) {
    case 1: return launch<1>(ctx, w, codes, xstride, sxs, dY);
    case 2: return launch<2>(ctx, w, codes, xstride, sxs, dY);
    case 3: return launch<3>(ctx, w, codes, xstride, sxs, dY);
    case 4: return launch<4>(ctx, w, codes, xstride, sxs, dY);
    case 5: return launch<5>(ctx, w, codes, xstride, sxs, dY);
    case 6: return launch<6>(ctx, w, codes, xstride, sxs, dY);
    case 7: return launch<7>(ctx, w, codes, xstride, sxs, dY);
    default: return launch<8>(ctx, w, codes, xstride, sxs, dY);
    }
}
