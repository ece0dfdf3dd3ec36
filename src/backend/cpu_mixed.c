/*
 * cpu_mixed.c — the CPU backend's mixed precision (bf16-mixed, 16-mixed):
 * loops over kernels/bp_mixed.h's conversions and bp_math.h's formulas,
 * rounding at the points the CUDA kernels (kernels/mixed.cu) round, and
 * the 16-bit products:
 *  - BF16 inputs: OpenBLAS's cblas_sbgemm (BF16 inputs, float32 sums and
 *    output) where the BLAS has it (BP_HAVE_SBGEMM, found at configure
 *    time);
 *  - FP16 inputs, and BF16 with a BLAS without sbgemm (the reference BLAS):
 *    cblas_sgemm on the inputs converted to float32 (exactly: every 16-bit
 *    value is a float32 value).
 * Both give the product's exact terms summed in float32; only the order of
 * the sums differs between BLAS libraries (and from cuBLAS). A 16-bit
 * output is the float32 result (plus beta times C) rounded once.
 *
 * Everything runs on the network's threads as src/backend/cpu.c does: the
 * products in blocks of C (src/backend/cpu_gemm.c), the loops in ranges
 * of elements, rows or columns cut by shape alone, every element by its
 * formula and a bias gradient's column summed in the order of
 * kernels/bp_mixed.h (bp_half_sum_rows: parts of the batch, each in row
 * order, then the parts), so results are bit-identical for every thread
 * count and to the GPU's.
 */
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#include "bp_blas_features.h"
#include "bp_mixed.h"
#include "api/error.h"
#include "backend/cpu_gemm.h"
#include "backend/cpu_mixed.h"
#include "backend/cpu_pool.h"

struct bp_cpu_mixed {
    size_t capacity; /* floats in each of a, b, c */
    float *a, *b, *c;
};

bp_status bp_cpu_mixed_create(const bp_network_config *cfg, bp_cpu_mixed **out)
{
    *out = NULL;
    if (cfg->precision != BP_PRECISION_BF16_MIXED && cfg->precision != BP_PRECISION_16_MIXED)
        return BP_OK;
    bp_cpu_mixed *m = calloc(1, sizeof *m);
    if (m == NULL)
        return bp_fail(BP_ERR_OUT_OF_MEMORY, "cpu backend: no memory for the mixed scratch");
    m->capacity = bp_cpu_gemm_largest_operand(cfg);
    m->a = malloc(m->capacity * sizeof(float));
    m->b = malloc(m->capacity * sizeof(float));
    m->c = malloc(m->capacity * sizeof(float));
    if (m->a == NULL || m->b == NULL || m->c == NULL) {
        bp_cpu_mixed_destroy(m);
        return bp_fail(BP_ERR_OUT_OF_MEMORY,
                       "cpu backend: no memory for 3 x %zu floats of mixed-precision scratch",
                       bp_cpu_gemm_largest_operand(cfg));
    }
    *out = m;
    return BP_OK;
}

void bp_cpu_mixed_destroy(bp_cpu_mixed *m)
{
    if (m == NULL)
        return;
    free(m->a);
    free(m->b);
    free(m->c);
    free(m);
}

/* One loop's arguments; each operation uses the fields it names. */
typedef struct half_job {
    int half, act, n, batch, scaled;
    float slope, scale;
    const void *src, *z, *a, *bias;
    void *dst, *d;
    float *db;
    const int32_t *rows;
    atomic_int found;
} half_job;

static void widen_range(void *arg, int64_t i0, int64_t i1)
{
    const half_job *j = arg;
    const uint16_t *src = j->src;
    float *dst = j->dst;
    for (int64_t i = i0; i < i1; i++)
        dst[i] = bp_half_to_f32(j->half, src[i]);
}

static void widen(bp_cpu_pool *pool, int half, const void *src, float *dst, size_t count)
{
    half_job j = {.half = half, .src = src, .dst = dst};
    bp_cpu_pool_for(pool, (int64_t)count, BP_CPU_GRAIN, 16, widen_range, &j);
}

/* dst[i] = half(src[i] * scale), or half(src[i]) when not scaled. */
static void narrow_range(void *arg, int64_t i0, int64_t i1)
{
    const half_job *j = arg;
    const float *src = j->src;
    uint16_t *dst = j->dst;
    for (int64_t i = i0; i < i1; i++)
        dst[i] = bp_half_from_f32(j->half, j->scaled ? src[i] * j->scale : src[i]);
}

static void narrow(bp_cpu_pool *pool, int half, const float *src, void *dst, size_t count,
                   const double *scale)
{
    half_job j = {.half = half, .src = src, .dst = dst, .scaled = scale != NULL};
    j.scale = scale != NULL ? (float)*scale : 1.0f;
    bp_cpu_pool_for(pool, (int64_t)count, BP_CPU_GRAIN, 16, narrow_range, &j);
}

static void gather_half_range(void *arg, int64_t r0, int64_t r1)
{
    const half_job *j = arg;
    size_t n = (size_t)j->n;
    for (int64_t i = r0; i < r1; i++) {
        const float *row = (const float *)j->src + (size_t)(j->rows ? j->rows[i] : i) * n;
        uint16_t *out = (uint16_t *)j->dst + (size_t)i * n;
        for (size_t e = 0; e < n; e++)
            out[e] = bp_half_from_f32(j->half, row[e]);
    }
}

bp_status bp_cpu_gather_rows_half(void *ctx, int half, void *dst, const float *src,
                                  const int32_t *rows, int batch, int n)
{
    half_job j = {.half = half, .n = n, .src = src, .dst = dst, .rows = rows};
    bp_cpu_pool_for(bp_cpu_ctx_pool(ctx), batch, bp_cpu_rows_grain(n), 1, gather_half_range, &j);
    return BP_OK;
}

static void copy_rows_range(void *arg, int64_t r0, int64_t r1)
{
    const half_job *j = arg;
    size_t bytes = (size_t)j->n; /* a row's bytes */
    for (int64_t i = r0; i < r1; i++)
        memcpy((char *)j->dst + (size_t)i * bytes,
               (const char *)j->src + (size_t)j->rows[i] * bytes, bytes);
}

bp_status bp_cpu_gather_epoch_half(void *ctx, int half, void *x_dst, const float *x_src, int n,
                                   void *y_dst, const void *y_src, size_t y_row_bytes,
                                   const int32_t *order, const int64_t *cursor, int batch)
{
    const int32_t *rows = order + *cursor;
    BP_TRY(bp_cpu_gather_rows_half(ctx, half, x_dst, x_src, rows, batch, n));
    if (y_dst == NULL)
        return BP_OK;
    half_job j = {.n = (int)y_row_bytes, .src = y_src, .dst = y_dst, .rows = rows};
    int grain = (int)(BP_CPU_GRAIN * sizeof(float) / (y_row_bytes ? y_row_bytes : 1));
    bp_cpu_pool_for(bp_cpu_ctx_pool(ctx), batch, grain < 1 ? 1 : grain, 1, copy_rows_range, &j);
    return BP_OK;
}

bp_status bp_cpu_to_half(void *ctx, int half, const float *src, void *dst, size_t count,
                         const double *scale)
{
    narrow(bp_cpu_ctx_pool(ctx), half, src, dst, count, scale);
    return BP_OK;
}

bp_status bp_cpu_gemm_half(void *ctx, int half, int trans_a, int trans_b, int m, int n, int k,
                           const void *a, int lda, const void *b, int ldb, double beta, void *c,
                           int c_half, int ldc)
{
    bp_cpu_mixed *mx = bp_cpu_ctx_mixed(ctx);
    bp_cpu_pool *pool = bp_cpu_ctx_pool(ctx);
    size_t na = (size_t)lda * (size_t)(trans_a ? m : k);
    size_t nb = (size_t)ldb * (size_t)(trans_b ? k : n), nc = (size_t)ldc * (size_t)n;
    if (mx == NULL || na > mx->capacity || nb > mx->capacity || (c_half && nc > mx->capacity))
        return bp_fail(BP_ERR_INVALID_ARGUMENT,
                       "cpu backend: a 16-bit product (m %d, n %d, k %d) exceeds the scratch "
                       "made for the network",
                       m, n, k);
    float *cf = c_half ? mx->c : (float *)c;
    if (c_half && beta != 0.0)
        widen(pool, half, c, cf, nc);
    bp_gemm_args g = {trans_a, trans_b, m, n, k, 1.0, a, lda, b, ldb, beta, cf, ldc};
#ifdef BP_HAVE_SBGEMM
    if (half == BP_HALF_BF16) {
        bp_cpu_gemm_bf16(pool, &g);
    } else
#endif
    {
        widen(pool, half, a, mx->a, na);
        widen(pool, half, b, mx->b, nb);
        g.a = mx->a, g.b = mx->b;
        bp_cpu_gemm(pool, BP_F32, &g);
    }
    if (c_half)
        narrow(pool, half, cf, c, nc, NULL);
    return BP_OK;
}

static void fill_rows_range(void *arg, int64_t r0, int64_t r1)
{
    const half_job *j = arg;
    for (int64_t b = r0; b < r1; b++)
        memcpy((uint16_t *)j->dst + (size_t)b * (size_t)j->n, j->bias,
               (size_t)j->n * sizeof(uint16_t));
}

bp_status bp_cpu_fill_rows_half(void *ctx, int half, const void *bias, void *z, int n, int batch)
{
    half_job j = {.half = half, .n = n, .bias = bias, .dst = z};
    bp_cpu_pool_for(bp_cpu_ctx_pool(ctx), batch, bp_cpu_rows_grain(n), 1, fill_rows_range, &j);
    return BP_OK;
}

static void act_range(void *arg, int64_t i0, int64_t i1)
{
    const half_job *j = arg;
    const uint16_t *zs = j->z;
    uint16_t *as = j->dst;
    for (int64_t i = i0; i < i1; i++)
        as[i] = bp_half_from_f32(j->half,
                                 bp_act_f(j->act, bp_half_to_f32(j->half, zs[i]), j->slope));
}

bp_status bp_cpu_act_half(void *ctx, int half, bp_activation act, double slope, const void *z,
                          void *a, int n, int batch)
{
    half_job j = {.half = half, .act = (int)act, .slope = (float)slope, .z = z, .dst = a};
    int64_t count = (int64_t)n * batch;
    bp_cpu_pool_for(bp_cpu_ctx_pool(ctx), count, BP_CPU_GRAIN, 16, act_range, &j);
    return BP_OK;
}

/* Columns c0..c1, up to DELTA_STRIP at a time: the delta of every row
 * (bp_half_delta_at), and each column's bias gradient in the order
 * kernels/bp_mixed.h fixes and kernels/mixed.cu follows: each part's
 * bp_half_sum_rows(batch) rows summed in row order from +0.0f, then the
 * parts' sums added in part order. */
#define DELTA_STRIP 256
static void delta_cols(void *arg, int64_t c0, int64_t c1)
{
    const half_job *j = arg;
    size_t n = (size_t)j->n;
    int rows = bp_half_sum_rows(j->batch);
    float part[DELTA_STRIP];
    for (int64_t s0 = c0; s0 < c1; s0 += DELTA_STRIP) {
        int64_t w = c1 - s0 < DELTA_STRIP ? c1 - s0 : DELTA_STRIP;
        for (int first = 0; first == 0 || first < j->batch; first += rows) {
            int end = j->batch - first < rows ? j->batch : first + rows;
            for (int64_t c = 0; c < w; c++)
                part[c] = 0.0f;
            for (int b = first; b < end; b++)
                for (int64_t c = 0; c < w; c++)
                    part[c] += bp_half_delta_at(j->half, j->act, j->slope, j->z, j->a, j->d,
                                                (size_t)b * n + (size_t)(s0 + c));
            for (int64_t c = 0; c < w; c++)
                j->db[s0 + c] = first == 0 ? part[c] : j->db[s0 + c] + part[c];
        }
    }
}

bp_status bp_cpu_delta_half(void *ctx, int half, bp_activation act, double slope, const void *z,
                            const void *a, void *d, float *db, int n, int batch)
{
    half_job j = {.half = half, .act = (int)act, .n = n, .batch = batch, .slope = (float)slope};
    j.z = z, j.a = a, j.d = d, j.db = db;
    int64_t cols = BP_CPU_GRAIN / (batch < 1 ? 1 : batch);
    bp_cpu_pool_for(bp_cpu_ctx_pool(ctx), n, cols < 16 ? 16 : cols, 16, delta_cols, &j);
    return BP_OK;
}

static void unscale_range(void *arg, int64_t i0, int64_t i1)
{
    half_job *j = arg;
    float *g = j->dst;
    int found = 0;
    for (int64_t i = i0; i < i1; i++)
        g[i] = bp_scaler_unscale(g[i], j->scale, &found);
    if (found)
        atomic_store_explicit(&j->found, 1, memory_order_relaxed);
}

bp_status bp_cpu_unscale(void *ctx, float *g, size_t count, const double *scale,
                         bp_step_scalars *scalars)
{
    half_job j = {.dst = g, .scale = bp_scaler_inverse(*scale)};
    atomic_init(&j.found, 0);
    bp_cpu_pool_for(bp_cpu_ctx_pool(ctx), (int64_t)count, BP_CPU_GRAIN, 16, unscale_range, &j);
    if (atomic_load(&j.found) && scalars != NULL)
        scalars->skip = 1;
    return BP_OK;
}

bp_status bp_cpu_scaler_update(void *ctx, bp_step_scalars *s)
{
    (void)ctx;
    int found = s->skip != 0;
    bp_scaler_update(&s->loss_scale, &s->scale_tracker, found, &s->scaler_error);
    if (found) {
        s->scaler_skips++;
        if (s->bad_step == s->steps_seen && s->loss - s->loss == 0.0)
            s->bad_step = 0;
    }
    return BP_OK;
}
