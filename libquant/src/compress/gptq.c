/* gptq.c - GPTQ of one Linear: the Hessian accumulator and the column sweep (lq_gptq.h).
 *
 * The algorithm is llm-compressor 0.14's (modifiers/gptq/gptq_quantize.py quantize_weight and
 * helpers.py factorize_hessian / apply_activation_ordering), in double where it runs f32:
 *   - scales and zero points are the RTN ones of the ORIGINAL weight, per group (its
 *     memoryless min/max observer runs before the sweep): lq_quant_int_params, so a column that
 *     GPTQ leaves alone gets RTN's code;
 *   - activation order "weight" (alias "static"): columns sorted by descending diag(H) (dead
 *     ones last), each keeping its own group's scale (g_idx permuted with the columns);
 *   - dead columns (diag 0): H_ii = 1, the weight column zeroed;
 *   - H += damp * mean(diag H) * I; Cholesky; H^-1 (potri); its upper Cholesky factor U;
 *     llm-compressor falls back to RTN when the first Cholesky fails, we retry with damp x 10
 *     (up to 4 times) first;
 *   - sweep in blocks of block_size columns: per column q = fake_quantize(w), err = (w - q) / U_ii,
 *     the rest of the block w_j -= err U_ij at once, the columns after the block lazily, one
 *     update per block (Err1 @ U[block, rest]).
 * Every output row is swept on its own (the update of row r reads only row r and U), so rows are
 * split across the pool in fixed chunks and the bytes do not depend on the thread count. The
 * Hessian is summed over fixed tiles of H for the same reason.
 */
#include "libquant/lq_gptq.h"
#include "gptq_internal.h"

#include <math.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#ifdef LQ_HAVE_OPENBLAS
#include <cblas.h>
#endif
#ifdef LQ_HAVE_LAPACKE
#include <lapacke.h>
#endif

#define H_TILE 64          /* rows of H per accumulation task */
#define ROWS_PER_TASK 16   /* weight rows per sweep task */
#define MAX_RETRIES 4

/* ---- Hessian ---------------------------------------------------------------------------------- */

lq_status lq_gptq_hessian_init(lq_gptq_hessian *h, int64_t cols) {
    memset(h, 0, sizeof *h);
    h->cols = cols;
    h->h = calloc((size_t)(cols * cols), sizeof *h->h);
    return h->h ? LQ_OK : lq_fail(LQ_ERR_NOMEM, "gptq: out of memory for a %lld x %lld Hessian", (long long)cols,
                                  (long long)cols);
}

void lq_gptq_hessian_free(lq_gptq_hessian *h) {
    if (!h) return;
    free(h->h);
    h->h = NULL;
}

typedef struct hjob {
    double *h;
    const float *X;    /* n x cols */
    int64_t n, cols;
    lq_pool *pool;     /* its per-thread scratch holds a strip's f32 products */
    int failed;        /* a scratch allocation failed (set by any task) */
} hjob;

/* H[i0:i1, i0:cols] += 2 X[:, i0:i1]^T X[:, i0:cols] (the upper triangle and a bit more): the
 * chunk's products in f32, then added to the double total. */
static void hessian_tile(void *ctx, int64_t task, int tid) {
    hjob *j = ctx;
    const int64_t cols = j->cols, i0 = task * H_TILE, i1 = i0 + H_TILE < cols ? i0 + H_TILE : cols;
    const int64_t w = cols - i0;
    float *c = lq_pool_scratch(j->pool, tid, (size_t)((i1 - i0) * w) * sizeof *c);
    if (!c) {
        __atomic_store_n(&j->failed, 1, __ATOMIC_RELAXED);
        return;
    }
#ifdef LQ_HAVE_OPENBLAS
    cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, (int)(i1 - i0), (int)w, (int)j->n, 2.0f, j->X + i0,
                (int)cols, j->X + i0, (int)cols, 0.0f, c, (int)w);
#else
    memset(c, 0, (size_t)((i1 - i0) * w) * sizeof *c);
    for (int64_t t = 0; t < j->n; t++) {
        const float *x = j->X + t * cols + i0;
        for (int64_t a = 0; a < i1 - i0; a++) {
            const float xa = 2.0f * x[a];
            float *row = c + a * w;
            for (int64_t b = a; b < w; b++) row[b] += xa * x[b];
        }
    }
#endif
    for (int64_t a = i0; a < i1; a++) {
        double *hr = j->h + a * cols + i0;
        const float *cr = c + (a - i0) * w;
        for (int64_t b = 0; b < w; b++) hr[b] += (double)cr[b];
    }
}

#ifdef LQ_HAVE_OPENBLAS
/* The pool splits the work; OpenBLAS threads inside a task would also make the summation order
 * depend on its thread count (matmul.c does the same). */
static pthread_once_t g_blas_once = PTHREAD_ONCE_INIT;
static void blas_single(void) { openblas_set_num_threads(1); }
void lq_gptq_blas_single(void) { pthread_once(&g_blas_once, blas_single); }
#else
void lq_gptq_blas_single(void) {}
#endif

#define H_CHUNK 512

lq_status lq_gptq_hessian_add(lq_gptq_hessian *h, const float *X, int64_t n, lq_pool *pool, const char *what) {
    const int64_t cols = h->cols;
    for (int64_t i = 0; i < n * cols; i++)
        if (!isfinite(X[i]))
            return lq_fail(LQ_ERR_FORMAT, "%s: NaN or Inf in the calibration activations (token %lld, column %lld)",
                           what, (long long)(i / cols), (long long)(i % cols));
    lq_gptq_blas_single();
    for (int64_t t0 = 0; t0 < n; t0 += H_CHUNK) {
        hjob j = {.h = h->h, .X = X + t0 * cols, .n = n - t0 < H_CHUNK ? n - t0 : H_CHUNK, .cols = cols,
                  .pool = pool};
        lq_pool_run(pool, hessian_tile, &j, (cols + H_TILE - 1) / H_TILE);
        if (j.failed) return lq_fail(LQ_ERR_NOMEM, "%s: out of memory for the Hessian", what);
    }
    h->n_tokens += n;
    return LQ_OK;
}

void lq_gptq_hessian_finish(lq_gptq_hessian *h) {
    const int64_t c = h->cols;
    for (int64_t a = 0; a < c; a++)
        for (int64_t b = 0; b < a; b++) h->h[a * c + b] = h->h[b * c + a];
}

/* ---- names ---------------------------------------------------------------------------------- */

const char *lq_gptq_actorder_name(lq_gptq_actorder a) {
    return a == LQ_GPTQ_ACTORDER_WEIGHT ? "weight" : a == LQ_GPTQ_ACTORDER_NONE ? "none" : "?";
}

bool lq_gptq_actorder_parse(const char *s, lq_gptq_actorder *out) {
    if (!s) return false;
    if (strcmp(s, "none") == 0) *out = LQ_GPTQ_ACTORDER_NONE;
    else if (strcmp(s, "weight") == 0 || strcmp(s, "static") == 0) *out = LQ_GPTQ_ACTORDER_WEIGHT;
    else return false;
    return true;
}

/* ---- factorization ---------------------------------------------------------------------------- */

#ifdef LQ_HAVE_LAPACKE
/* H (n x n, full, dampened) -> the upper Cholesky factor U of H^-1 (H^-1 = U^T U) in the upper
 * triangle, zeros below; false when a factorization fails. H is symmetric, so its row-major
 * bytes are also its column-major ones: LAPACK runs on them in place (a row-major call would
 * transpose each operand in and out, 2% of a GPTQ run). Every call names the column-major upper
 * triangle, i.e. the row-major lower one (diagonal included), so the row-major strict upper
 * triangle keeps H's original values until success: a failed attempt is undone from it
 * (restore_lower) without a full copy of H (512 MiB for an 8192-wide Linear). */
static bool inverse_cholesky(double *H, int64_t n) {
    const lapack_int m = (lapack_int)n;
    if (LAPACKE_dpotrf(LAPACK_COL_MAJOR, 'U', m, H, m) != 0) return false; /* lower: L, H = L L^T */
    if (LAPACKE_dpotri(LAPACK_COL_MAJOR, 'U', m, H, m) != 0) return false; /* lower: H^-1 */
    if (LAPACKE_dpotrf(LAPACK_COL_MAJOR, 'U', m, H, m) != 0) return false; /* lower: U^T */
    for (int64_t a = 0; a < n; a++)
        for (int64_t b = a + 1; b < n; b++) {
            H[a * n + b] = H[b * n + a];
            H[b * n + a] = 0.0;
        }
    return true;
}

/* The row-major strict lower triangle from the untouched strict upper one (the diagonal is
 * rewritten, dampened, at the start of every attempt). */
static void restore_lower(double *H, int64_t n) {
    for (int64_t a = 0; a < n; a++)
        for (int64_t b = 0; b < a; b++) H[a * n + b] = H[b * n + a];
}
#endif

/* Dampen, factorize and retry: H (n x n, permuted, dead columns fixed) becomes U. Shared with
 * SparseGPT (gptq_internal.h). */
lq_status lq_gptq_factorize(double *H, int64_t n, double damp, lq_gptq_linear_stat *st) {
#ifndef LQ_HAVE_LAPACKE
    (void)H; (void)n; (void)damp; (void)st;
    return lq_fail(LQ_ERR_UNSUPPORTED, "gptq: this build has no LAPACKE (the Cholesky factorizations)");
#else
    double *diag = malloc((size_t)n * sizeof *diag);
    if (!diag) return lq_fail(LQ_ERR_NOMEM, "gptq: out of memory for a %lld-column Hessian", (long long)n);
    double mean = 0.0;
    for (int64_t i = 0; i < n; i++) {
        diag[i] = H[i * n + i];
        mean += diag[i];
    }
    mean /= (double)n;
    st->retries = 0;
    st->rtn_fallback = false;
    for (;;) {
        for (int64_t i = 0; i < n; i++) H[i * n + i] = diag[i] + damp * mean;
        if (inverse_cholesky(H, n)) break;
        if (st->retries == MAX_RETRIES) {
            /* llm-compressor's answer to a Hessian that stays indefinite: U = I, i.e. RTN */
            memset(H, 0, (size_t)(n * n) * sizeof *H);
            for (int64_t i = 0; i < n; i++) H[i * n + i] = 1.0;
            st->rtn_fallback = true;
            break;
        }
        st->retries++;
        damp *= 10.0;
        restore_lower(H, n);
    }
    st->damp = damp;
    free(diag);
    return LQ_OK;
#endif
}

/* ---- the sweep ------------------------------------------------------------------------------- */

void lq_gptq_lazy_update(double *w, const double *E, int64_t ldE, const double *U, int64_t nr, int64_t cols,
                         int64_t i1, int64_t i2) {
    if (i2 >= cols || nr <= 0) return;
#ifdef LQ_HAVE_OPENBLAS
    lq_gptq_blas_single();
    cblas_dgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, (int)nr, (int)(cols - i2), (int)(i2 - i1), -1.0, E,
                (int)ldE, U + i1 * cols + i2, (int)cols, 1.0, w + i2, (int)cols);
#else
    for (int64_t k = 0; k < i2 - i1; k++) {
        const double *u = U + (i1 + k) * cols;
        for (int64_t r = 0; r < nr; r++) {
            const double e = E[r * ldE + k];
            double *wr = w + r * cols;
            for (int64_t j = i2; j < cols; j++) wr[j] -= e * u[j];
        }
    }
#endif
}

typedef struct sweep {
    const float *W;        /* rows x cols, original order */
    int64_t rows, cols, n_groups, block;
    const double *U;       /* cols x cols upper factor, permuted order */
    const int64_t *perm;   /* permuted position -> original column */
    const int64_t *gidx;   /* permuted position -> group */
    const bool *dead;      /* original column -> dead */
    int qmin, qmax;
    int8_t *codes;
    const float *scales, *zeros;
    double *loss;          /* per task */
    int nm_n, nm_m;        /* joint N:M pruning (nm_m > 0; identity column order) */
    int64_t *pruned;       /* per task */
} sweep;

/* N:M of the group at column g of row w: keep[q] = 0 for the nm_m - nm_n lowest w^2 / U_jj^2
 * (ties: lower column first), SparseGPT's rule (sparsegpt.c nm_group). */
static void nm_mask(const sweep *s, const double *w, int64_t g, uint8_t *keep) {
    struct { double v; int q; } k[64];
    for (int q = 0; q < s->nm_m; q++) {
        const double d = s->U[(g + q) * s->cols + g + q];
        k[q].v = w[g + q] * w[g + q] / (d * d);
        k[q].q = q;
        keep[q] = 1;
    }
    for (int a = 1; a < s->nm_m; a++) /* insertion sort: nm_m <= 64, stable */
        for (int b = a; b > 0 && k[b].v < k[b - 1].v; b--) {
            const double v = k[b].v;
            const int q = k[b].q;
            k[b] = k[b - 1];
            k[b - 1].v = v;
            k[b - 1].q = q;
        }
    for (int q = 0; q < s->nm_m - s->nm_n; q++) keep[k[q].q] = 0;
}

static void sweep_task(void *ctx, int64_t task, int tid) {
    (void)tid;
    const sweep *s = ctx;
    const int64_t cols = s->cols, B = s->block;
    const int64_t r0 = task * ROWS_PER_TASK, r1 = r0 + ROWS_PER_TASK < s->rows ? r0 + ROWS_PER_TASK : s->rows;
    const int64_t nr = r1 - r0;
    double *w = malloc((size_t)(nr * cols) * sizeof *w);
    double *E = malloc((size_t)(nr * B) * sizeof *E);
    if (!w || !E) { /* reported by the caller: loss NaN */
        s->loss[task] = NAN;
        free(w);
        free(E);
        return;
    }
    for (int64_t r = 0; r < nr; r++)
        for (int64_t p = 0; p < cols; p++) {
            const int64_t c = s->perm[p];
            w[r * cols + p] = s->dead[c] ? 0.0 : (double)s->W[(r0 + r) * cols + c];
        }
    double loss = 0.0;
    int64_t pruned = 0;
    uint8_t keep[64];
    for (int64_t i1 = 0; i1 < cols; i1 += B) {
        const int64_t i2 = i1 + B < cols ? i1 + B : cols;
        for (int64_t r = 0; r < nr; r++) {
            double *wr = w + r * cols, *er = E + r * B;
            const float *sc = s->scales + (r0 + r) * s->n_groups, *zp = s->zeros + (r0 + r) * s->n_groups;
            for (int64_t i = i1; i < i2; i++) {
                const float scale = sc[s->gidx[i]], zero = zp[s->gidx[i]];
                if (s->nm_m > 0 && i % s->nm_m == 0) nm_mask(s, wr, i, keep);
                const bool nm_cut = s->nm_m > 0 && !keep[i % s->nm_m];
                /* a weight that is 0 in the input (a pruned model's) stays 0: the error
                 * feedback would otherwise move it, and 2:4 kernels need the pattern exact */
                const bool cut = nm_cut || s->W[(r0 + r) * cols + s->perm[i]] == 0.0f;
                pruned += nm_cut;
                const int code = lq_quant_int_code(cut ? 0.0f : (float)wr[i], scale, zero, s->qmin, s->qmax);
                /* fake_quantize's dequantization, in f32 as compressed-tensors computes it */
                const double q = (double)(((float)code - zero) * scale);
                const double *u = s->U + i * cols;
                const double err = (wr[i] - q) / u[i];
                s->codes[(r0 + r) * cols + s->perm[i]] = (int8_t)code;
                er[i - i1] = err;
                loss += err * err;
                for (int64_t j = i + 1; j < i2; j++) wr[j] -= err * u[j];
            }
        }
        /* lazy batch: the columns after the block get the block's errors at once */
        lq_gptq_lazy_update(w, E, B, s->U, nr, cols, i1, i2);
    }
    s->loss[task] = loss / 2.0;
    s->pruned[task] = pruned;
    free(w);
    free(E);
}

/* Column order: by descending diag(H), ties by index (torch.argsort is not stable; ties are
 * exact equalities, in practice only dead columns). */
typedef struct col_key {
    double d;
    int64_t i;
} col_key;

static int cmp_desc(const void *a, const void *b) {
    const col_key *x = a, *y = b;
    if (x->d != y->d) return x->d > y->d ? -1 : 1;
    return (x->i > y->i) - (x->i < y->i);
}

static void order_columns(const double *H, int64_t n, lq_gptq_actorder a, int64_t *perm) {
    for (int64_t i = 0; i < n; i++) perm[i] = i;
    if (a != LQ_GPTQ_ACTORDER_WEIGHT) return;
    col_key *k = malloc((size_t)n * sizeof *k);
    if (!k) return; /* identity order: still a valid GPTQ */
    for (int64_t i = 0; i < n; i++) k[i] = (col_key){H[i * n + i], i};
    qsort(k, (size_t)n, sizeof *k, cmp_desc);
    for (int64_t i = 0; i < n; i++) perm[i] = k[i].i;
    free(k);
}

lq_status lq_gptq_quantize_linear(const float *W, int64_t rows, int64_t cols, const double *H, const lq_gptq_params *p,
                                  int8_t *codes, float *scales, float *zeros, lq_gptq_linear_stat *stat) {
    memset(stat, 0, sizeof *stat);
    if (p->bits < 2 || p->bits > 8)
        return lq_fail(LQ_ERR_INVALID_ARG, "gptq: %d bits (2..8)", p->bits);
    const int64_t gs = p->group_size > 0 ? p->group_size : cols;
    if (cols % gs != 0)
        return lq_fail(LQ_ERR_INVALID_ARG, "gptq: group size %lld does not divide %lld columns", (long long)gs,
                       (long long)cols);
    const int64_t ng = cols / gs, B = p->block_size > 0 ? p->block_size : 128;
    if (p->nm_m > 0 && (p->nm_n < 0 || p->nm_n > p->nm_m || p->nm_m > 64 || cols % p->nm_m != 0 ||
                        B % p->nm_m != 0 || p->actorder != LQ_GPTQ_ACTORDER_NONE))
        return lq_fail(LQ_ERR_INVALID_ARG, "gptq: joint N:M %d:%d needs 0 <= N <= M <= 64, M dividing the %lld "
                       "columns and the block size %lld, and no activation order", p->nm_n, p->nm_m,
                       (long long)cols, (long long)B);
    const int qmin = -(1 << (p->bits - 1)), qmax = (1 << (p->bits - 1)) - 1;
    /* RTN's scales of the original weight, before anything is zeroed (the observer's timing) */
    lq_quant_params qp = {.group_size = (int32_t)gs, .asym = p->asym, .scale_dtype = p->scale_dtype};
    for (int64_t r = 0; r < rows; r++)
        for (int64_t g = 0; g < ng; g++)
            lq_quant_int_params(W + r * cols + g * gs, NULL, gs, p->bits, p->asym, &qp, &scales[r * ng + g],
                                &zeros[r * ng + g]);
    int64_t *perm = malloc((size_t)cols * sizeof *perm), *gidx = malloc((size_t)cols * sizeof *gidx);
    bool *dead = calloc((size_t)cols, sizeof *dead);
    double *Hp = malloc((size_t)(cols * cols) * sizeof *Hp);
    int64_t n_tasks = (rows + ROWS_PER_TASK - 1) / ROWS_PER_TASK;
    double *loss = calloc((size_t)n_tasks, sizeof *loss);
    int64_t *pruned = calloc((size_t)n_tasks, sizeof *pruned);
    lq_status st = LQ_OK;
    if (!perm || !gidx || !dead || !Hp || !loss || !pruned) {
        st = lq_fail(LQ_ERR_NOMEM, "gptq: out of memory for a %lld x %lld Linear", (long long)rows, (long long)cols);
        goto done;
    }
    order_columns(H, cols, p->actorder, perm);
    for (int64_t a = 0; a < cols; a++) {
        gidx[a] = perm[a] / gs;
        for (int64_t b = 0; b < cols; b++) Hp[a * cols + b] = H[perm[a] * cols + perm[b]];
    }
    for (int64_t a = 0; a < cols; a++)
        if (Hp[a * cols + a] == 0.0) {
            Hp[a * cols + a] = 1.0;
            dead[perm[a]] = true;
            stat->dead_cols++;
        }
    if ((st = lq_gptq_factorize(Hp, cols, p->damp > 0.0 ? p->damp : 0.01, stat)) != LQ_OK) goto done;
    sweep s = {.W = W, .rows = rows, .cols = cols, .n_groups = ng, .block = B, .U = Hp, .perm = perm, .gidx = gidx,
               .dead = dead, .qmin = qmin, .qmax = qmax, .codes = codes, .scales = scales, .zeros = zeros,
               .loss = loss, .nm_n = p->nm_n, .nm_m = p->nm_m, .pruned = pruned};
    lq_pool_run(p->pool, sweep_task, &s, n_tasks);
    for (int64_t t = 0; t < n_tasks; t++) stat->loss += loss[t], stat->pruned += pruned[t];
    if (isnan(stat->loss)) st = lq_fail(LQ_ERR_NOMEM, "gptq: out of memory in the sweep");
done:
    free(perm);
    free(gidx);
    free(dead);
    free(Hp);
    free(loss);
    free(pruned);
    return st;
}
