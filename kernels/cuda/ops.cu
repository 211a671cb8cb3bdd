/* ops.cu - the element-wise steps of the forward pass: RMSNorm, RoPE, SwiGLU, residual and bias add.
 *
 * Each follows its CPU _ref (kernels/cpu/ops_ref.c) operation for operation: RMSNorm sums the
 * squares in double and applies (x * scale) * weight; RoPE uses f32 angles pos * inv_freq[i];
 * SwiGLU is (g / (1 + exp(-g))) * up. Differences left: the device's sinf/cosf/expf (<= 2 ulp,
 * CUDA programming guide, without fast-math) against glibc's, and nvcc contracting a*c - b*s
 * into an FMA (one rounding fewer). */
#include "lq_cuda_internal.cuh"

#define NORM_THREADS 256

__global__ void __launch_bounds__(NORM_THREADS)
rmsnorm_kernel(float *__restrict__ out, const float *__restrict__ x, const float *__restrict__ wt,
               int64_t dim, float eps) {
    const float *xr = x + (size_t)blockIdx.x * (size_t)dim;
    float *o = out + (size_t)blockIdx.x * (size_t)dim;
    __shared__ double red[NORM_THREADS / 32];
    double ss = 0.0;
    for (int64_t i = threadIdx.x; i < dim; i += NORM_THREADS) ss += (double)xr[i] * (double)xr[i];
    for (int o2 = 16; o2 > 0; o2 >>= 1) ss += __shfl_xor_sync(0xffffffffu, ss, o2);
    if ((threadIdx.x & 31) == 0) red[threadIdx.x >> 5] = ss;
    __syncthreads();
    double tot = 0.0;
    for (int i = 0; i < NORM_THREADS / 32; i++) tot += red[i];
    const float scale = (float)(1.0 / sqrt(tot / (double)(dim > 0 ? dim : 1) + (double)eps));
    for (int64_t i = threadIdx.x; i < dim; i += NORM_THREADS) o[i] = (xr[i] * scale) * wt[i];
}

int lq_cuda_rmsnorm(lq_cuda_ctx *ctx, float *out, const float *x, const float *weight,
                    int64_t n_rows, int64_t dim, float eps) {
    if (n_rows <= 0) return LQ_CUDA_OK;
    rmsnorm_kernel<<<(unsigned)n_rows, NORM_THREADS, 0, ctx->stream>>>(out, x, weight, dim, eps);
    LQ_CU_LAUNCHED();
    return LQ_CUDA_OK;
}

/* One thread per rotary pair (token, head, i < head_dim / 2). */
__global__ void rope_kernel(float *x, int n_tok, int64_t row_stride, int n_heads, int head_dim,
                            int pos0, const float *__restrict__ inv_freq, int interleaved) {
    const int half = head_dim / 2;
    const int64_t id = (int64_t)blockIdx.x * blockDim.x + threadIdx.x;
    const int64_t total = (int64_t)n_tok * n_heads * half;
    if (id >= total) return;
    const int i = (int)(id % half);
    const int h = (int)((id / half) % n_heads);
    const int t = (int)(id / ((int64_t)half * n_heads));
    float *v = x + (size_t)t * (size_t)row_stride + (size_t)h * (size_t)head_dim;
    const float ang = (float)(pos0 + t) * inv_freq[i];
    float s, c;
    sincosf(ang, &s, &c);
    const int i0 = interleaved ? 2 * i : i;
    const int i1 = interleaved ? 2 * i + 1 : i + half;
    const float a = v[i0], b = v[i1];
    v[i0] = a * c - b * s;
    v[i1] = a * s + b * c;
}

int lq_cuda_rope(lq_cuda_ctx *ctx, float *x, int n_tok, int64_t row_stride, int n_heads,
                 int head_dim, int pos0, const float *inv_freq, int interleaved) {
    const int64_t total = (int64_t)n_tok * n_heads * (head_dim / 2);
    if (total <= 0) return LQ_CUDA_OK;
    rope_kernel<<<lq_cuda_blocks(total, 256), 256, 0, ctx->stream>>>(x, n_tok, row_stride, n_heads,
                                                                      head_dim, pos0, inv_freq, interleaved);
    LQ_CU_LAUNCHED();
    return LQ_CUDA_OK;
}

__global__ void swiglu_kernel(float *__restrict__ gate, const float *__restrict__ up, int64_t n) {
    const int64_t i = (int64_t)blockIdx.x * blockDim.x + threadIdx.x;
    if (i >= n) return;
    const float g = gate[i];
    gate[i] = (g / (1.0f + expf(-g))) * up[i];
}

int lq_cuda_swiglu(lq_cuda_ctx *ctx, float *gate, const float *up, int64_t n) {
    if (n <= 0) return LQ_CUDA_OK;
    swiglu_kernel<<<lq_cuda_blocks(n, 256), 256, 0, ctx->stream>>>(gate, up, n);
    LQ_CU_LAUNCHED();
    return LQ_CUDA_OK;
}

__global__ void add_kernel(float *__restrict__ x, const float *__restrict__ y, int64_t n) {
    const int64_t i = (int64_t)blockIdx.x * blockDim.x + threadIdx.x;
    if (i < n) x[i] += y[i];
}

int lq_cuda_add(lq_cuda_ctx *ctx, float *x, const float *y, int64_t n) {
    if (n <= 0) return LQ_CUDA_OK;
    add_kernel<<<lq_cuda_blocks(n, 256), 256, 0, ctx->stream>>>(x, y, n);
    LQ_CU_LAUNCHED();
    return LQ_CUDA_OK;
}

/* y[t][i] += b[i]: the bias of a linear layer, every batch row. */
__global__ void add_bias_kernel(float *__restrict__ y, const float *__restrict__ b, int64_t rows,
                                int64_t cols) {
    const int64_t i = (int64_t)blockIdx.x * blockDim.x + threadIdx.x;
    if (i < rows * cols) y[i] += b[i % cols];
}

int lq_cuda_add_bias(lq_cuda_ctx *ctx, float *y, const float *b, int64_t rows, int64_t cols) {
    if (rows <= 0 || cols <= 0) return LQ_CUDA_OK;
    add_bias_kernel<<<lq_cuda_blocks(rows * cols, 256), 256, 0, ctx->stream>>>(y, b, rows, cols);
    LQ_CU_LAUNCHED();
    return LQ_CUDA_OK;
}
