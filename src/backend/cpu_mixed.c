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
 */
#include <cblas.h>
#include <stdlib.h>
#include <string.h>

#include "bp_blas_features.h"
#include "bp_mixed.h"
#include "api/error.h"
#include "backend/cpu_mixed.h"

struct bp_cpu_mixed {
    size_t capacity; /* floats in each of a, b, c */
    float *a, *b, *c;
};

/* The largest operand of a step's products: a weight matrix, or a batch
 * of a layer's activations or deltas. */
static size_t largest_operand(const bp_network_config *cfg)
{
    size_t most = 1, B = (size_t)cfg->max_batch;
    for (int l = 1; l <= cfg->n_layers; l++) {
        size_t in = (size_t)cfg->sizes[l - 1], out = (size_t)cfg->sizes[l];
        size_t w = in * out, x = B * in, y = B * out;
        most = w > most ? w : most;
        most = x > most ? x : most;
        most = y > most ? y : most;
    }
    return most;
}

bp_status bp_cpu_mixed_create(const bp_network_config *cfg, bp_cpu_mixed **out)
{
    *out = NULL;
    if (cfg->precision != BP_PRECISION_BF16_MIXED && cfg->precision != BP_PRECISION_16_MIXED)
        return BP_OK;
    bp_cpu_mixed *m = calloc(1, sizeof *m);
    if (m == NULL)
        return bp_fail(BP_ERR_OUT_OF_MEMORY, "cpu backend: no memory for the mixed scratch");
    m->capacity = largest_operand(cfg);
    m->a = malloc(m->capacity * sizeof(float));
    m->b = malloc(m->capacity * sizeof(float));
    m->c = malloc(m->capacity * sizeof(float));
    if (m->a == NULL || m->b == NULL || m->c == NULL) {
        bp_cpu_mixed_destroy(m);
        return bp_fail(BP_ERR_OUT_OF_MEMORY,
                       "cpu backend: no memory for 3 x %zu floats of mixed-precision scratch",
                       largest_operand(cfg));
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

static void widen(int half, const uint16_t *src, float *dst, size_t count)
{
    for (size_t i = 0; i < count; i++)
        dst[i] = bp_half_to_f32(half, src[i]);
}

static void narrow(int half, const float *src, uint16_t *dst, size_t count)
{
    for (size_t i = 0; i < count; i++)
        dst[i] = bp_half_from_f32(half, src[i]);
}

bp_status bp_cpu_gather_rows_half(void *ctx, int half, void *dst, const float *src,
                                  const int32_t *rows, int batch, int n)
{
    (void)ctx;
    for (int i = 0; i < batch; i++) {
        const float *row = src + (size_t)(rows != NULL ? rows[i] : i) * (size_t)n;
        narrow(half, row, (uint16_t *)dst + (size_t)i * (size_t)n, (size_t)n);
    }
    return BP_OK;
}

bp_status bp_cpu_gather_epoch_half(void *ctx, int half, void *x_dst, const float *x_src, int n,
                                   void *y_dst, const void *y_src, size_t y_row_bytes,
                                   const int32_t *order, const int64_t *cursor, int batch)
{
    const int32_t *rows = order + *cursor;
    BP_TRY(bp_cpu_gather_rows_half(ctx, half, x_dst, x_src, rows, batch, n));
    for (int i = 0; y_dst != NULL && i < batch; i++)
        memcpy((char *)y_dst + (size_t)i * y_row_bytes,
               (const char *)y_src + (size_t)rows[i] * y_row_bytes, y_row_bytes);
    return BP_OK;
}

bp_status bp_cpu_to_half(void *ctx, int half, const float *src, void *dst, size_t count,
                         const double *scale)
{
    (void)ctx;
    uint16_t *out = dst;
    float s = scale != NULL ? (float)*scale : 1.0f;
    for (size_t i = 0; i < count; i++)
        out[i] = bp_half_from_f32(half, scale != NULL ? src[i] * s : src[i]);
    return BP_OK;
}

bp_status bp_cpu_gemm_half(void *ctx, int half, int trans_a, int trans_b, int m, int n, int k,
                           const void *a, int lda, const void *b, int ldb, double beta, void *c,
                           int c_half, int ldc)
{
    bp_cpu_mixed *mx = bp_cpu_ctx_mixed(ctx);
    size_t na = (size_t)lda * (size_t)(trans_a ? m : k);
    size_t nb = (size_t)ldb * (size_t)(trans_b ? k : n), nc = (size_t)ldc * (size_t)n;
    if (mx == NULL || na > mx->capacity || nb > mx->capacity || (c_half && nc > mx->capacity))
        return bp_fail(BP_ERR_INVALID_ARGUMENT,
                       "cpu backend: a 16-bit product (m %d, n %d, k %d) exceeds the scratch "
                       "made for the network",
                       m, n, k);
    enum CBLAS_TRANSPOSE ta = trans_a ? CblasTrans : CblasNoTrans;
    enum CBLAS_TRANSPOSE tb = trans_b ? CblasTrans : CblasNoTrans;
    float *cf = c_half ? mx->c : (float *)c;
    if (c_half && beta != 0.0)
        widen(half, c, cf, nc);
#ifdef BP_HAVE_SBGEMM
    if (half == BP_HALF_BF16) {
        cblas_sbgemm(CblasColMajor, ta, tb, m, n, k, 1.0f, (const bfloat16 *)a, lda,
                     (const bfloat16 *)b, ldb, (float)beta, cf, ldc);
    } else
#endif
    {
        widen(half, a, mx->a, na);
        widen(half, b, mx->b, nb);
        cblas_sgemm(CblasColMajor, ta, tb, m, n, k, 1.0f, mx->a, lda, mx->b, ldb, (float)beta, cf,
                    ldc);
    }
    if (c_half)
        narrow(half, cf, c, nc);
    return BP_OK;
}

bp_status bp_cpu_fill_rows_half(void *ctx, int half, const void *bias, void *z, int n, int batch)
{
    (void)ctx;
    (void)half;
    for (int b = 0; b < batch; b++)
        memcpy((uint16_t *)z + (size_t)b * (size_t)n, bias, (size_t)n * sizeof(uint16_t));
    return BP_OK;
}

bp_status bp_cpu_act_half(void *ctx, int half, bp_activation act, double slope, const void *z,
                          void *a, int n, int batch)
{
    (void)ctx;
    const uint16_t *zs = z;
    uint16_t *as = a;
    size_t count = (size_t)n * (size_t)batch;
    for (size_t i = 0; i < count; i++)
        as[i] = bp_half_from_f32(half,
                                 bp_act_f((int)act, bp_half_to_f32(half, zs[i]), (float)slope));
    return BP_OK;
}

bp_status bp_cpu_delta_half(void *ctx, int half, bp_activation act, double slope, const void *z,
                            const void *a, void *d, float *db, int n, int batch)
{
    (void)ctx;
    const uint16_t *zs = z, *as = a;
    uint16_t *ds = d;
    for (int j = 0; j < n; j++)
        db[j] = 0.0f;
    for (int b = 0; b < batch; b++) {
        size_t o = (size_t)b * (size_t)n;
        for (int j = 0; j < n; j++) {
            float v = bp_half_to_f32(half, ds[o + j]);
            if (act != BP_ACT_IDENTITY) {
                v = bp_hadamard_delta_f((int)act, v, bp_half_to_f32(half, zs[o + j]),
                                        bp_half_to_f32(half, as[o + j]), (float)slope);
                ds[o + j] = bp_half_from_f32(half, v);
                v = bp_half_to_f32(half, ds[o + j]);
            }
            db[j] += v;
        }
    }
    return BP_OK;
}

bp_status bp_cpu_unscale(void *ctx, float *g, size_t count, const double *scale,
                         bp_step_scalars *scalars)
{
    (void)ctx;
    float inv = bp_scaler_inverse(*scale);
    int found = 0;
    for (size_t i = 0; i < count; i++)
        g[i] = bp_scaler_unscale(g[i], inv, &found);
    if (found && scalars != NULL)
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
