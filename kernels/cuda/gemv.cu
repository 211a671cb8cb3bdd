/* gemv.cu - decode: fused dequantize x activation for 1..8 tokens, one read of the weight.
 *
 * Napkin math: a decode GEMV reads every weight byte once and does ~2 flops per weight per
 * token, so it is bound by DRAM bandwidth (H100 SXM ~3.35 TB/s: a 2048x8192 W4A16 matrix,
 * 8 MiB + scales, takes ~2.6 us at full bandwidth). The kernel therefore (1) keeps each weight
 * in its packed format all the way to the registers, (2) loads 16 bytes per lane per step so a
 * warp moves 512 contiguous bytes per row and step, and (3) serves up to 8 tokens from one read.
 * The activations (cols floats per token) stay in L1/L2 and are loaded as float4 when aligned.
 *
 * Layout: one warp per row, 4 warps per block; lane l takes 16-byte chunks l, l+32, ... of the
 * row (rows are padded to 16 bytes on upload, padding never reaches a sum: chunks past cols are
 * skipped, and the tail chunk is read element by element). Each chunk's partial sum is formed
 * from the raw codes (integers or exactly widened floats), then scaled (W4A16: by its group's
 * scale when the chunk lies inside one group) and added to the lane's f32 accumulator; the 32
 * lanes are reduced with shuffles and the per-row scale (W8A16, FP8) is applied last, as the
 * _ref functions do.
 *
 * Integer codes are widened with the magic-number trick: as_float(0x4B000000 | u) = 2^23 + u
 * exactly for u < 2^23, so (2^23 + u) - (2^23 + bias) = u - bias is exact and costs one
 * logic op and one add (no int->float conversion instruction).
 */
#include <cuda_fp16.h>

#include "lq_cuda_internal.cuh"

#define GEMV_WARPS 4 /* rows per block */

/* ---- format decoders: one 32-bit word of the payload -> EPW raw values ------------------------
 * raw(c) is what the chunk sums multiply with x; value(c) = (raw(c) - bias) * chunk mul * row
 * scale. elem() is the whole dequantized value without the row scale, for tail chunks. */

__device__ __forceinline__ float magic(uint32_t u) { return __uint_as_float(0x4B000000u | u); }
#define MAGIC_BASE 8388608.0f /* 2^23 */

struct dec_f32 {
    static constexpr int EPW = 1;
    __device__ static void word(uint32_t u, float *o) { o[0] = __uint_as_float(u); }
    __device__ static float bias(const lq_cuda_weight &, int64_t, int64_t) { return 0.0f; }
    __device__ static float mul(const lq_cuda_weight &, int64_t, int64_t) { return 1.0f; }
    __device__ static bool uniform(const lq_cuda_weight &) { return true; }
    __device__ static float elem(const lq_cuda_weight &w, const uint8_t *row, int64_t, int64_t c) {
        (void)w;
        return ((const float *)row)[c];
    }
    __device__ static float row_scale(const lq_cuda_weight &, int64_t) { return 1.0f; }
};

struct dec_f16 {
    static constexpr int EPW = 2;
    __device__ static void word(uint32_t u, float *o) {
        /* __half2float is exact for every binary16 value, subnormals included. */
        o[0] = __half2float(__ushort_as_half((unsigned short)(u & 0xffffu)));
        o[1] = __half2float(__ushort_as_half((unsigned short)(u >> 16)));
    }
    __device__ static float bias(const lq_cuda_weight &, int64_t, int64_t) { return 0.0f; }
    __device__ static float mul(const lq_cuda_weight &, int64_t, int64_t) { return 1.0f; }
    __device__ static bool uniform(const lq_cuda_weight &) { return true; }
    __device__ static float elem(const lq_cuda_weight &, const uint8_t *row, int64_t, int64_t c) {
        return __half2float(__ushort_as_half(((const unsigned short *)row)[c]));
    }
    __device__ static float row_scale(const lq_cuda_weight &, int64_t) { return 1.0f; }
};

struct dec_bf16 {
    static constexpr int EPW = 2;
    __device__ static void word(uint32_t u, float *o) {
        o[0] = __uint_as_float(u << 16);
        o[1] = __uint_as_float(u & 0xffff0000u);
    }
    __device__ static float bias(const lq_cuda_weight &, int64_t, int64_t) { return 0.0f; }
    __device__ static float mul(const lq_cuda_weight &, int64_t, int64_t) { return 1.0f; }
    __device__ static bool uniform(const lq_cuda_weight &) { return true; }
    __device__ static float elem(const lq_cuda_weight &, const uint8_t *row, int64_t, int64_t c) {
        return lq_bf16_to_f32(((const uint16_t *)row)[c]);
    }
    __device__ static float row_scale(const lq_cuda_weight &, int64_t) { return 1.0f; }
};

/* W8A16: byte = q + 128; raw = 2^23 + byte, bias 2^23 + 128 -> q exactly. */
struct dec_w8a16 {
    static constexpr int EPW = 4;
    __device__ static void word(uint32_t u, float *o) {
        o[0] = magic(u & 0xffu);
        o[1] = magic((u >> 8) & 0xffu);
        o[2] = magic((u >> 16) & 0xffu);
        o[3] = magic(u >> 24);
    }
    __device__ static float bias(const lq_cuda_weight &, int64_t, int64_t) { return MAGIC_BASE + 128.0f; }
    __device__ static float mul(const lq_cuda_weight &, int64_t, int64_t) { return 1.0f; }
    __device__ static bool uniform(const lq_cuda_weight &) { return true; }
    __device__ static float elem(const lq_cuda_weight &, const uint8_t *row, int64_t, int64_t c) {
        return (float)lq_int8p_get(row, c);
    }
    __device__ static float row_scale(const lq_cuda_weight &w, int64_t r) { return w.aux[0][r]; }
};

/* FP8 E4M3: the exact conversion of lq_blocks.h (a few integer ops per byte). */
struct dec_fp8 {
    static constexpr int EPW = 4;
    __device__ static void word(uint32_t u, float *o) {
        o[0] = lq_e4m3_to_f32((lq_e4m3)(u & 0xffu));
        o[1] = lq_e4m3_to_f32((lq_e4m3)((u >> 8) & 0xffu));
        o[2] = lq_e4m3_to_f32((lq_e4m3)((u >> 16) & 0xffu));
        o[3] = lq_e4m3_to_f32((lq_e4m3)(u >> 24));
    }
    __device__ static float bias(const lq_cuda_weight &, int64_t, int64_t) { return 0.0f; }
    __device__ static float mul(const lq_cuda_weight &, int64_t, int64_t) { return 1.0f; }
    __device__ static bool uniform(const lq_cuda_weight &) { return true; }
    __device__ static float elem(const lq_cuda_weight &, const uint8_t *row, int64_t, int64_t c) {
        return lq_e4m3_to_f32(row[c]);
    }
    __device__ static float row_scale(const lq_cuda_weight &w, int64_t r) { return w.aux[0][r]; }
};

/* W4A16: nibble u = q + 8 (element 2k low, 2k+1 high); value = (q - zero[g]) * scale[g]. A
 * 32-element chunk starts at a multiple of 32 columns, so it lies inside one group when the
 * group size is a multiple of 32 ("uniform"); otherwise every element takes the elem() path. */
struct dec_w4a16 {
    static constexpr int EPW = 8;
    __device__ static int64_t gsize(const lq_cuda_weight &w) {
        return (w.group_size > 0 && w.group_size < w.cols) ? w.group_size : w.cols;
    }
    __device__ static void word(uint32_t u, float *o) {
#pragma unroll
        for (int i = 0; i < 8; i++) o[i] = magic((u >> (4 * i)) & 0xfu);
    }
    __device__ static float bias(const lq_cuda_weight &w, int64_t r, int64_t c0) {
        const int64_t gs = gsize(w), ng = w.cols / gs;
        return MAGIC_BASE + 8.0f + (w.aux[1] ? w.aux[1][r * ng + c0 / gs] : 0.0f);
    }
    __device__ static float mul(const lq_cuda_weight &w, int64_t r, int64_t c0) {
        const int64_t gs = gsize(w), ng = w.cols / gs;
        return w.aux[0][r * ng + c0 / gs];
    }
    __device__ static bool uniform(const lq_cuda_weight &w) { return gsize(w) % 32 == 0; }
    __device__ static float elem(const lq_cuda_weight &w, const uint8_t *row, int64_t r, int64_t c) {
        const int64_t gs = gsize(w), ng = w.cols / gs, g = r * ng + c / gs;
        return ((float)lq_int4_get(row, c) - (w.aux[1] ? w.aux[1][g] : 0.0f)) * w.aux[0][g];
    }
    __device__ static float row_scale(const lq_cuda_weight &, int64_t) { return 1.0f; }
};

__device__ __forceinline__ float warp_sum(float v) {
#pragma unroll
    for (int o = 16; o > 0; o >>= 1) v += __shfl_xor_sync(0xffffffffu, v, o);
    return v;
}

/* Weights are read exactly once per launch: stream them past L1 (ld.global.nc, evict-first) so
 * the activations keep the cache. */
__device__ __forceinline__ uint4 load_stream(const uint4 *p) { return __ldcs(p); }

template <class D, int NT>
__global__ void __launch_bounds__(GEMV_WARPS * 32)
gemv_kernel(const lq_cuda_weight w, const float *__restrict__ X, float *__restrict__ Y) {
    constexpr int E = 4 * D::EPW; /* elements per 16-byte chunk */
    const int lane = threadIdx.x & 31;
    const int64_t r = (int64_t)blockIdx.x * GEMV_WARPS + (threadIdx.x >> 5);
    if (r >= w.rows) return;
    const int64_t cols = w.cols;
    const uint8_t *row = (const uint8_t *)w.data + (size_t)r * w.row_bytes;
    const int64_t nchunk = (cols + E - 1) / E;
    const bool vec = (cols % 4 == 0) && ((uintptr_t)X % 16 == 0) && (E % 4 == 0);
    const bool uni = D::uniform(w);
    float acc[NT];
#pragma unroll
    for (int t = 0; t < NT; t++) acc[t] = 0.0f;

    for (int64_t k = lane; k < nchunk; k += 32) {
        const int64_t c0 = k * E;
        if (uni && c0 + E <= cols) {
            const uint4 v = load_stream((const uint4 *)row + k);
            const uint32_t wd[4] = {v.x, v.y, v.z, v.w};
            float raw[E];
#pragma unroll
            for (int i = 0; i < 4; i++) D::word(wd[i], raw + i * D::EPW);
            const float b = D::bias(w, r, c0), m = D::mul(w, r, c0);
#pragma unroll
            for (int j = 0; j < E; j++) raw[j] -= b;
#pragma unroll
            for (int t = 0; t < NT; t++) {
                const float *x = X + (size_t)t * (size_t)cols + c0;
                float p = 0.0f;
                if (vec) {
#pragma unroll
                    for (int j = 0; j < E; j += 4) {
                        const float4 xv = __ldg((const float4 *)(x + j));
                        p = fmaf(raw[j], xv.x, p);
                        p = fmaf(raw[j + 1], xv.y, p);
                        p = fmaf(raw[j + 2], xv.z, p);
                        p = fmaf(raw[j + 3], xv.w, p);
                    }
                } else {
#pragma unroll
                    for (int j = 0; j < E; j++) p = fmaf(raw[j], __ldg(x + j), p);
                }
                acc[t] = fmaf(p, m, acc[t]);
            }
        } else {
            /* tail chunk, or a W4A16 group size that is not a multiple of 32 */
            const int64_t c1 = c0 + E < cols ? c0 + E : cols;
            for (int64_t c = c0; c < c1; c++) {
                const float v = D::elem(w, row, r, c);
#pragma unroll
                for (int t = 0; t < NT; t++) acc[t] = fmaf(v, __ldg(X + (size_t)t * (size_t)cols + c), acc[t]);
            }
        }
    }
    const float rs = D::row_scale(w, r);
#pragma unroll
    for (int t = 0; t < NT; t++) {
        const float s = warp_sum(acc[t]);
        if (lane == 0) Y[(size_t)t * (size_t)w.rows + r] = s * rs;
    }
}

template <class D, int NT>
static int launch(lq_cuda_ctx *ctx, const lq_cuda_weight *w, const float *dX, float *dY) {
    gemv_kernel<D, NT><<<lq_cuda_blocks(w->rows, GEMV_WARPS), GEMV_WARPS * 32, 0, ctx->stream>>>(*w, dX, dY);
    LQ_CU_LAUNCHED();
    return LQ_CUDA_OK;
}

template <class D>
static int gemv(lq_cuda_ctx *ctx, const lq_cuda_weight *w, const float *dX, int nt, float *dY) {
    switch (nt) { /* one instantiation per batch size: the accumulators stay in registers */
    case 1: return launch<D, 1>(ctx, w, dX, dY);
    case 2: return launch<D, 2>(ctx, w, dX, dY);
    case 3: return launch<D, 3>(ctx, w, dX, dY);
    case 4: return launch<D, 4>(ctx, w, dX, dY);
    case 5: return launch<D, 5>(ctx, w, dX, dY);
    case 6: return launch<D, 6>(ctx, w, dX, dY);
    case 7: return launch<D, 7>(ctx, w, dX, dY);
    case 8: return launch<D, 8>(ctx, w, dX, dY);
    default: return lq_cuda_fail(LQ_CUDA_ERR_ARG, "gemv: batch %d outside 1..%d", nt, LQ_CUDA_GEMV_MAX_BATCH);
    }
}

int lq_cuda_gemv_f32(lq_cuda_ctx *c, const lq_cuda_weight *w, const float *x, int nt, float *y) { return gemv<dec_f32>(c, w, x, nt, y); }
int lq_cuda_gemv_f16(lq_cuda_ctx *c, const lq_cuda_weight *w, const float *x, int nt, float *y) { return gemv<dec_f16>(c, w, x, nt, y); }
int lq_cuda_gemv_bf16(lq_cuda_ctx *c, const lq_cuda_weight *w, const float *x, int nt, float *y) { return gemv<dec_bf16>(c, w, x, nt, y); }
int lq_cuda_gemv_w8a16(lq_cuda_ctx *c, const lq_cuda_weight *w, const float *x, int nt, float *y) { return gemv<dec_w8a16>(c, w, x, nt, y); }
int lq_cuda_gemv_w4a16(lq_cuda_ctx *c, const lq_cuda_weight *w, const float *x, int nt, float *y) { return gemv<dec_w4a16>(c, w, x, nt, y); }
int lq_cuda_gemv_fp8(lq_cuda_ctx *c, const lq_cuda_weight *w, const float *x, int nt, float *y) { return gemv<dec_fp8>(c, w, x, nt, y); }

/* ---- dequantize rows to f32 (embedding lookup, GEMM tiles) ------------------------------------ */

template <class D>
__global__ void dequant_kernel(const lq_cuda_weight w, const int32_t *__restrict__ rows, int64_t r0,
                               float *__restrict__ out) {
    const int64_t i = blockIdx.y;
    const int64_t c = (int64_t)blockIdx.x * blockDim.x + threadIdx.x;
    if (c >= w.cols) return;
    const int64_t r = rows ? (int64_t)rows[i] : r0 + i;
    const uint8_t *row = (const uint8_t *)w.data + (size_t)r * w.row_bytes;
    out[(size_t)i * (size_t)w.cols + c] = D::elem(w, row, r, c) * D::row_scale(w, r);
}

template <class D>
static int dequant(lq_cuda_ctx *ctx, const lq_cuda_weight *w, const int32_t *d_rows, int64_t r0,
                   int64_t n, float *dOut) {
    if (n <= 0) return LQ_CUDA_OK;
    if (n > 65535) /* gridDim.y limit; callers tile larger ranges */
        return lq_cuda_fail(LQ_CUDA_ERR_ARG, "dequant: %lld rows in one call (max 65535)", (long long)n);
    dim3 grid(lq_cuda_blocks(w->cols, 256), (unsigned)n);
    dequant_kernel<D><<<grid, 256, 0, ctx->stream>>>(*w, d_rows, r0, dOut);
    LQ_CU_LAUNCHED();
    return LQ_CUDA_OK;
}

#define DEQ(name, D)                                                                              \
    int lq_cuda_dequant_##name(lq_cuda_ctx *c, const lq_cuda_weight *w, const int32_t *rows,     \
                               int64_t r0, int64_t n, float *o) { return dequant<D>(c, w, rows, r0, n, o); }
DEQ(f32, dec_f32)
DEQ(f16, dec_f16)
DEQ(bf16, dec_bf16)
DEQ(w8a16, dec_w8a16)
DEQ(w4a16, dec_w4a16)
DEQ(fp8, dec_fp8)

/* W8A8 weights alone: q * scale[r] (what lq_dequant_w8a8_ref gives). */
struct dec_w8a8 {
    __device__ static float elem(const lq_cuda_weight &, const uint8_t *row, int64_t, int64_t c) {
        return (float)(int8_t)row[c];
    }
    __device__ static float row_scale(const lq_cuda_weight &w, int64_t r) { return w.aux[0][r]; }
};
DEQ(w8a8, dec_w8a8)
