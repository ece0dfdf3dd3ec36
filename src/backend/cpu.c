/*
 * cpu.c — the CPU backend: CBLAS GEMMs (column-major, the argument
 * lists the CUDA backend passes to cuBLAS) and plain loops over the
 * per-element formulas of kernels/bp_math.h. It is the reference the CUDA
 * backend is compared against.
 */
#include <cblas.h>
#include <stdlib.h>
#include <string.h>

#include "bp_math.h"
#include "step_protocol.h"
#include "backend/backend.h"
#include "backend/cpu_mixed.h"
#include "api/error.h"

/* bp_math.h codes activations and losses by the public enums' values
 * (it includes nothing of the library's): they must stay equal. */
_Static_assert(BP_M_IDENTITY == (int)BP_ACT_IDENTITY, "bp_math.h: identity code");
_Static_assert(BP_M_SIGMOID == (int)BP_ACT_SIGMOID, "bp_math.h: sigmoid code");
_Static_assert(BP_M_TANH == (int)BP_ACT_TANH, "bp_math.h: tanh code");
_Static_assert(BP_M_RELU == (int)BP_ACT_RELU, "bp_math.h: relu code");
_Static_assert(BP_M_LEAKY_RELU == (int)BP_ACT_LEAKY_RELU, "bp_math.h: leaky relu code");
_Static_assert(BP_M_MSE == (int)BP_LOSS_MSE, "bp_math.h: mse code");
_Static_assert(BP_M_CROSS_ENTROPY == (int)BP_LOSS_CROSS_ENTROPY, "bp_math.h: cross-entropy code");
_Static_assert(BP_M_BCE == (int)BP_LOSS_BCE, "bp_math.h: bce code");

/* The CPU backend's state: only the mixed precisions' scratch
 * (src/backend/cpu_mixed.c), NULL without them. */
typedef struct cpu_ctx {
    bp_cpu_mixed *mixed;
} cpu_ctx;

bp_cpu_mixed *bp_cpu_ctx_mixed(void *ctx) { return ((cpu_ctx *)ctx)->mixed; }

static bp_status cpu_ctx_create(const bp_network_config *cfg, size_t staging_bytes, void **ctx)
{
    (void)staging_bytes;
    cpu_ctx *c = calloc(1, sizeof *c);
    if (c == NULL)
        return bp_fail(BP_ERR_OUT_OF_MEMORY, "cpu backend: no memory for the context");
    bp_status st = bp_cpu_mixed_create(cfg, &c->mixed);
    if (st != BP_OK) {
        free(c);
        return st;
    }
    *ctx = c;
    return BP_OK;
}

static void cpu_ctx_destroy(void *ctx)
{
    bp_cpu_mixed_destroy(((cpu_ctx *)ctx)->mixed);
    free(ctx);
}

static bp_status cpu_alloc(void *ctx, size_t bytes, void **ptr)
{
    (void)ctx;
    /* 64-byte alignment for vector loads; aligned_alloc wants a multiple. */
    size_t rounded = (bytes + 63u) & ~(size_t)63u;
    if (rounded < bytes)
        return bp_fail(BP_ERR_OUT_OF_MEMORY, "cpu backend: allocation of %zu bytes overflows",
                       bytes);
    void *p = aligned_alloc(64, rounded);
    if (p == NULL)
        return bp_fail(BP_ERR_OUT_OF_MEMORY, "cpu backend: cannot allocate %zu bytes", bytes);
    memset(p, 0, rounded);
    *ptr = p;
    return BP_OK;
}

static void cpu_release(void *ctx, void *ptr)
{
    (void)ctx;
    free(ptr);
}

static bp_status cpu_memcpy(void *ctx, void *dst, const void *src, size_t bytes)
{
    (void)ctx;
    if (bytes)
        memmove(dst, src, bytes);
    return BP_OK;
}

static bp_status cpu_zero(void *ctx, void *dst, size_t bytes)
{
    (void)ctx;
    memset(dst, 0, bytes);
    return BP_OK;
}

static bp_status cpu_sync(void *ctx)
{
    (void)ctx;
    return BP_OK;
}

static bp_status cpu_gemm(void *ctx, bp_dtype dt, int trans_a, int trans_b, int m, int n, int k,
                          double alpha, const void *a, int lda, const void *b, int ldb,
                          double beta, void *c, int ldc)
{
    (void)ctx;
    enum CBLAS_TRANSPOSE ta = trans_a ? CblasTrans : CblasNoTrans;
    enum CBLAS_TRANSPOSE tb = trans_b ? CblasTrans : CblasNoTrans;
    if (dt == BP_F32)
        cblas_sgemm(CblasColMajor, ta, tb, m, n, k, (float)alpha, (const float *)a, lda,
                    (const float *)b, ldb, (float)beta, (float *)c, ldc);
    else
        cblas_dgemm(CblasColMajor, ta, tb, m, n, k, alpha, (const double *)a, lda,
                    (const double *)b, ldb, beta, (double *)c, ldc);
    return BP_OK;
}

/* Each element-wise operation is written once as a macro over the real type
 * T and the bp_math.h suffix S, then instantiated for float and double. */
#define CPU_OPS(T, S)                                                                             \
    static void bias_act_##S(int act, T slope, const T *bias, T *z, T *a, int n, int batch)       \
    {                                                                                             \
        for (int b = 0; b < batch; b++) {                                                         \
            T *zr = z + (size_t)b * n, *ar = a + (size_t)b * n;                                   \
            for (int j = 0; j < n; j++) {                                                         \
                zr[j] += bias[j];                                                                 \
                ar[j] = bp_act_##S(act, zr[j], slope);                                            \
            }                                                                                     \
        }                                                                                         \
    }                                                                                             \
    static void softmax_##S(const T *z, T *a, int n, int batch)                                   \
    {                                                                                             \
        for (int b = 0; b < batch; b++)                                                           \
            (void)bp_softmax_row_##S(z + (size_t)b * n, a + (size_t)b * n, n);                    \
    }                                                                                             \
    static void output_delta_##S(int loss, int act, T slope, const T *z, const T *a, const T *y,  \
                                 const int32_t *labels, T *d, T *sample_loss, int n, int batch)   \
    {                                                                                             \
        T scale = (T)1 / (T)batch;                                                                \
        for (int b = 0; b < batch; b++) {                                                         \
            size_t o = (size_t)b * n;                                                             \
            sample_loss[b] = bp_output_delta_row_##S(loss, act, slope, z + o, a + o,              \
                                                     y ? y + o : NULL, labels ? labels[b] : 0, n, \
                                                     scale, d + o);                               \
        }                                                                                         \
    }                                                                                             \
    static void hadamard_##S(int act, T slope, const T *z, const T *a, T *d, size_t count)        \
    {                                                                                             \
        for (size_t i = 0; i < count; i++)                                                        \
            d[i] = bp_hadamard_delta_##S(act, d[i], z[i], a[i], slope);                           \
    }                                                                                             \
    static void bias_grad_##S(const T *d, T *db, int n, int batch)                                \
    {                                                                                             \
        for (int j = 0; j < n; j++)                                                               \
            db[j] = (T)0;                                                                         \
        for (int b = 0; b < batch; b++) {                                                         \
            const T *dr = d + (size_t)b * n;                                                      \
            for (int j = 0; j < n; j++)                                                           \
                db[j] += dr[j];                                                                   \
        }                                                                                         \
    }                                                                                             \
    /* The batch's loss sum (in b order) and correct predictions. */                              \
    static double loss_sum_##S(const T *sample_loss, const T *a, const int32_t *labels, int n,    \
                               int batch, double *correct)                                        \
    {                                                                                             \
        double sum = 0.0, hits = 0.0;                                                             \
        for (int b = 0; b < batch; b++) {                                                         \
            sum += (double)sample_loss[b];                                                        \
            if (labels != NULL) {                                                                 \
                const T *ar = a + (size_t)b * n;                                                  \
                int best = 0;                                                                     \
                for (int j = 1; j < n; j++)                                                       \
                    if (ar[j] > ar[best])                                                         \
                        best = j;                                                                 \
                hits += best == labels[b] ? 1.0 : 0.0;                                            \
            }                                                                                     \
        }                                                                                         \
        *correct = hits;                                                                          \
        return sum;                                                                               \
    }                                                                                             \
    static int all_finite_##S(const T *g, size_t count)                                           \
    {                                                                                             \
        for (size_t i = 0; i < count; i++)                                                        \
            if (!(g[i] - g[i] == (T)0))                                                           \
                return 0;                                                                         \
        return 1;                                                                                 \
    }                                                                                             \
    static double sum_squares_##S(const T *g, size_t count)                                       \
    {                                                                                             \
        double s = 0.0;                                                                           \
        for (size_t i = 0; i < count; i++)                                                        \
            s += (double)g[i] * (double)g[i];                                                     \
        return s;                                                                                 \
    }                                                                                             \
    static void optimizer_update_##S(const bp_update_rule *r, const bp_update_step *st, T *w,     \
                                     const T *g, T *s1, T *s2, T *s3, size_t count)               \
    {                                                                                             \
        for (size_t i = 0; i < count; i++)                                                        \
            w[i] = bp_optimizer_update_##S(r, st, w[i], g[i], s1 + i, s2 ? s2 + i : NULL,         \
                                           s3 ? s3 + i : NULL);                                   \
    }

CPU_OPS(float, f)
CPU_OPS(double, d)

static bp_status cpu_bias_act(void *ctx, bp_dtype dt, bp_activation act, double slope,
                              const void *bias, void *z, void *a, int n, int batch)
{
    (void)ctx;
    if (dt == BP_F32)
        bias_act_f(act, (float)slope, bias, z, a, n, batch);
    else
        bias_act_d(act, slope, bias, z, a, n, batch);
    return BP_OK;
}

static bp_status cpu_softmax(void *ctx, bp_dtype dt, const void *z, void *a, int n, int batch)
{
    (void)ctx;
    if (dt == BP_F32)
        softmax_f(z, a, n, batch);
    else
        softmax_d(z, a, n, batch);
    return BP_OK;
}

static bp_status cpu_output_delta(void *ctx, bp_dtype dt, bp_loss loss, bp_activation act,
                                  double slope, const void *z, const void *a, const void *y,
                                  const int32_t *labels, void *d, void *sample_loss, int n,
                                  int batch)
{
    (void)ctx;
    if (dt == BP_F32)
        output_delta_f(loss, act, (float)slope, z, a, y, labels, d, sample_loss, n, batch);
    else
        output_delta_d(loss, act, slope, z, a, y, labels, d, sample_loss, n, batch);
    return BP_OK;
}

static bp_status cpu_hadamard_delta(void *ctx, bp_dtype dt, bp_activation act, double slope,
                                    const void *z, const void *a, void *d, size_t count)
{
    (void)ctx;
    if (dt == BP_F32)
        hadamard_f(act, (float)slope, z, a, d, count);
    else
        hadamard_d(act, slope, z, a, d, count);
    return BP_OK;
}

static bp_status cpu_bias_grad(void *ctx, bp_dtype dt, const void *d, void *db, int n, int batch)
{
    (void)ctx;
    if (dt == BP_F32)
        bias_grad_f(d, db, n, batch);
    else
        bias_grad_d(d, db, n, batch);
    return BP_OK;
}

static bp_status cpu_step_metrics(void *ctx, bp_dtype dt, const void *sample_loss, const void *a,
                                  const int32_t *labels, int n, int batch, double *loss,
                                  bp_step_scalars *scalars, int64_t *cursor)
{
    (void)ctx;
    double correct = 0.0;
    double sum = dt == BP_F32 ? loss_sum_f(sample_loss, a, labels, n, batch, &correct)
                              : loss_sum_d(sample_loss, a, labels, n, batch, &correct);
    *loss = sum / (double)batch;
    if (scalars != NULL)
        bp_step_count_batch(scalars, sum, correct, batch, cursor);
    return BP_OK;
}

static bp_status cpu_check_finite(void *ctx, bp_dtype dt, const void *g, size_t count,
                                  double *clip_parts, bp_step_scalars *scalars)
{
    (void)ctx;
    bp_step_open_update(scalars);
    int ok = dt == BP_F32 ? all_finite_f(g, count) : all_finite_d(g, count);
    if (!ok)
        bp_step_reject(scalars);
    /* One partial sum: the whole sum of squares, in order. */
    if (clip_parts != NULL)
        clip_parts[0] = dt == BP_F32 ? sum_squares_f(g, count) : sum_squares_d(g, count);
    return BP_OK;
}

static bp_status cpu_optimizer_update(void *ctx, bp_dtype dt, const bp_update_rule *rule, void *w,
                                      const void *g, void *s1, void *s2, void *s3, size_t count,
                                      double max_norm, const double *clip_parts,
                                      bp_step_scalars *scalars)
{
    (void)ctx;
    double scale = max_norm > 0.0 ? bp_clip_scale(clip_parts[0], max_norm) : 1.0;
    bp_update_step st = bp_step_update_scalars(rule, scalars, scale);
    bp_step_close_update(scalars, bp_step_update_count(scalars), scale);
    if (st.skip)
        return BP_OK;
    if (dt == BP_F32)
        optimizer_update_f(rule, &st, w, g, s1, s2, s3, count);
    else
        optimizer_update_d(rule, &st, w, g, s1, s2, s3, count);
    return BP_OK;
}

static bp_status cpu_gather_rows(void *ctx, void *dst, const void *src, const int32_t *rows,
                                 int batch, size_t row_bytes)
{
    (void)ctx;
    if (rows == NULL) {
        memmove(dst, src, (size_t)batch * row_bytes);
        return BP_OK;
    }
    for (int i = 0; i < batch; i++)
        memcpy((char *)dst + (size_t)i * row_bytes,
               (const char *)src + (size_t)rows[i] * row_bytes, row_bytes);
    return BP_OK;
}

static bp_status cpu_gather_epoch(void *ctx, void *x_dst, const void *x_src, size_t x_row_bytes,
                                  void *y_dst, const void *y_src, size_t y_row_bytes,
                                  const int32_t *order, const int64_t *cursor, int batch)
{
    const int32_t *rows = order + *cursor;
    BP_TRY(cpu_gather_rows(ctx, x_dst, x_src, rows, batch, x_row_bytes));
    if (y_dst != NULL)
        BP_TRY(cpu_gather_rows(ctx, y_dst, y_src, rows, batch, y_row_bytes));
    return BP_OK;
}

const bp_backend_ops bp_cpu_backend_ops = {
    .name = "cpu",
    .ctx_create = cpu_ctx_create,
    .ctx_destroy = cpu_ctx_destroy,
    .alloc = cpu_alloc,
    .release = cpu_release,
    .upload = cpu_memcpy,
    .download = cpu_memcpy,
    .copy = cpu_memcpy,
    .zero = cpu_zero,
    .sync = cpu_sync,
    .gemm = cpu_gemm,
    .bias_act = cpu_bias_act,
    .softmax = cpu_softmax,
    .output_delta = cpu_output_delta,
    .hadamard_delta = cpu_hadamard_delta,
    .bias_grad = cpu_bias_grad,
    .step_metrics = cpu_step_metrics,
    .check_finite = cpu_check_finite,
    .optimizer_update = cpu_optimizer_update,
    .gather_rows = cpu_gather_rows,
    .gather_epoch = cpu_gather_epoch,
    /* no graphs: train.c runs every step eagerly */
    /* mixed precision (cpu_mixed.c) */
    .gather_rows_half = bp_cpu_gather_rows_half,
    .gather_epoch_half = bp_cpu_gather_epoch_half,
    .to_half = bp_cpu_to_half,
    .gemm_half = bp_cpu_gemm_half,
    .fill_rows_half = bp_cpu_fill_rows_half,
    .act_half = bp_cpu_act_half,
    .delta_half = bp_cpu_delta_half,
    .unscale = bp_cpu_unscale,
    .scaler_update = bp_cpu_scaler_update,
};
