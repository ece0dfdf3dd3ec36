/*
 * mixed.c — the CUDA backend's mixed precision (bf16-mixed, 16-mixed):
 * the 16-bit products through cublasGemmEx (BF16 or FP16 A and B, C of the
 * same type or FP32, CUBLAS_COMPUTE_32F: float32 sums, scale type FP32,
 * combinations cuBLAS documents for cublasGemmEx), and the kernels of
 * kernels/mixed.cu, with the device scratch of delta_half's bias-gradient
 * parts sized here (host.c allocates it with the context). Each operation runs with the network's
 * device current, as every operation of src/backend/cuda/host.c does.
 */
#include <cublas_v2.h>
#include <cuda_runtime.h>

#include "bp_mixed.h"
#include "launch_mixed.h"
#include "api/error.h"
#include "backend/cuda/mixed.h"
#include "backend/cuda/status.h"

/* Runs `expr` (a bp_status) after `enter` (one of host.c's
 * bp_cuda_ctx_enter*, given &previous_ and &switched_), then gives the
 * caller its device back. MIXED_ON_DEVICE: after the weight-gradient
 * branch is joined; MIXED_BESIDE: an operation of the backward pass that
 * reads the ranges rd[] and writes wr[] (arrays), which joins the branch
 * only where it would race with it. */
#define MIXED_RUN(enter, expr)                                         \
    do {                                                               \
        int previous_ = 0, switched_ = 0;                              \
        bp_status mixed_status_ = (enter);                             \
        if (mixed_status_ == BP_OK)                                    \
            mixed_status_ = (expr);                                    \
        return bp_cuda_ctx_leave(previous_, switched_, mixed_status_); \
    } while (0)
#define MIXED_ON_DEVICE(ctx, expr) \
    MIXED_RUN(bp_cuda_ctx_enter((ctx), &previous_, &switched_), expr)
#define MIXED_BESIDE(ctx, rd, wr, expr)                                                        \
    MIXED_RUN(bp_cuda_ctx_enter_beside((ctx), rd, (int)(sizeof rd / sizeof *rd), wr,           \
                                       (int)(sizeof wr / sizeof *wr), &previous_, &switched_), \
              expr)

static cudaDataType half_type(int half) { return half == BP_HALF_F16 ? CUDA_R_16F : CUDA_R_16BF; }

/* Bytes of n 16-bit elements, or of n float32 ones; a NULL array none. */
static size_t half_bytes(const void *p, size_t n) { return p == NULL ? 0 : 2 * n; }
static size_t f32_bytes(const void *p, size_t n) { return p == NULL ? 0 : 4 * n; }

bp_status bp_cuda_gather_rows_half(void *ctx, int half, void *dst, const float *src,
                                   const int32_t *rows, int batch, int n)
{
    cudaStream_t s = bp_cuda_ctx_stream(ctx);
    MIXED_ON_DEVICE(ctx,
                    BP_CUDA_LAUNCH("gather_rows_half",
                                   bp_launch_gather_rows_half(s, half, dst, src, rows, batch, n)));
}

bp_status bp_cuda_gather_epoch_half(void *ctx, int half, void *x_dst, const float *x_src, int n,
                                    void *y_dst, const void *y_src, size_t y_row_bytes,
                                    const int32_t *order, const int64_t *cursor, int batch)
{
    cudaStream_t s = bp_cuda_ctx_stream(ctx);
    MIXED_ON_DEVICE(
        ctx, BP_CUDA_LAUNCH("gather_epoch_half",
                            bp_launch_gather_epoch_half(s, half, x_dst, x_src, n, y_dst, y_src,
                                                        y_row_bytes, order, cursor, batch)));
}

bp_status bp_cuda_to_half(void *ctx, int half, const float *src, void *dst, size_t count,
                          const double *scale)
{
    cudaStream_t s = bp_cuda_ctx_stream(ctx);
    MIXED_ON_DEVICE(ctx,
                    BP_CUDA_LAUNCH("to_half", bp_launch_to_half(s, half, src, dst, count, scale)));
}

static bp_status gemm_half_on_device(cublasHandle_t blas, int half, int trans_a, int trans_b,
                                     int m, int n, int k, const void *a, int lda, const void *b,
                                     int ldb, double beta, void *c, int c_half, int ldc)
{
    cublasOperation_t ta = trans_a ? CUBLAS_OP_T : CUBLAS_OP_N;
    cublasOperation_t tb = trans_b ? CUBLAS_OP_T : CUBLAS_OP_N;
    cudaDataType in = half_type(half), out = c_half ? in : CUDA_R_32F;
    float one = 1.0f, bf = (float)beta;
    return BP_CUBLAS_CHECK(cublasGemmEx(blas, ta, tb, m, n, k, &one, a, in, lda, b, in, ldb, &bf,
                                        c, out, ldc, CUBLAS_COMPUTE_32F, CUBLAS_GEMM_DEFAULT));
}

/* A weight gradient, dW = A D^T (backward_layers' gemm(N, T, ...) in
 * src/core/train.c, float32 C), on the weight-gradient branch, as the
 * float32 one (host.c's cuda_gemm); every other product on the main
 * stream, joining the branch first where it would race with it. */
bp_status bp_cuda_gemm_half(void *ctx, int half, int trans_a, int trans_b, int m, int n, int k,
                            const void *a, int lda, const void *b, int ldb, double beta, void *c,
                            int c_half, int ldc)
{
    bp_range rd[] = {{a, half_bytes(a, (size_t)lda * (size_t)(trans_a ? m : k))},
                     {b, half_bytes(b, (size_t)ldb * (size_t)(trans_b ? k : n))}};
    bp_range wr[] = {{c, (c_half ? half_bytes(c, 1) : f32_bytes(c, 1)) * (size_t)ldc * (size_t)n}};
    if (!trans_a && trans_b && !c_half) {
        cublasHandle_t blas = NULL; /* the branch's, set by the entry */
        MIXED_RUN(bp_cuda_ctx_enter_branch(ctx, rd, 2, wr, 1, &previous_, &switched_, &blas),
                  gemm_half_on_device(blas, half, trans_a, trans_b, m, n, k, a, lda, b, ldb, beta,
                                      c, c_half, ldc));
    }
    MIXED_BESIDE(ctx, rd, wr,
                 gemm_half_on_device(bp_cuda_ctx_blas(ctx), half, trans_a, trans_b, m, n, k, a,
                                     lda, b, ldb, beta, c, c_half, ldc));
}

bp_status bp_cuda_fill_rows_half(void *ctx, int half, const void *bias, void *z, int n, int batch)
{
    (void)half;
    cudaStream_t s = bp_cuda_ctx_stream(ctx);
    MIXED_ON_DEVICE(
        ctx, BP_CUDA_LAUNCH("fill_rows_half", bp_launch_fill_rows_half(s, bias, z, n, batch)));
}

bp_status bp_cuda_act_half(void *ctx, int half, bp_activation act, double slope, const void *z,
                           void *a, int n, int batch)
{
    cudaStream_t s = bp_cuda_ctx_stream(ctx);
    MIXED_ON_DEVICE(
        ctx, BP_CUDA_LAUNCH("act_half", bp_launch_act_half(s, half, act, slope, z, a, n, batch)));
}

void bp_cuda_mixed_sums_size(const bp_network_config *cfg, size_t *part_floats, size_t *ticket_count)
{
    *part_floats = 0;
    *ticket_count = 0;
    int n_parts = bp_half_sum_parts_max(cfg->max_batch);
    if ((cfg->precision != BP_PRECISION_BF16_MIXED && cfg->precision != BP_PRECISION_16_MIXED) ||
        n_parts == 1)
        return;
    size_t widest = 1;
    for (int l = 1; l <= cfg->n_layers; l++)
        widest = (size_t)cfg->sizes[l] > widest ? (size_t)cfg->sizes[l] : widest;
    *part_floats = (size_t)n_parts * widest;
    *ticket_count = (widest + 31) / 32;
}

static bp_status delta_half_on_device(void *ctx, int half, bp_activation act, double slope,
                                      const void *z, const void *a, void *d, float *db, int n,
                                      int batch)
{
    const bp_cuda_mixed_sums *sums = bp_cuda_ctx_mixed_sums(ctx);
    size_t n_parts = (size_t)bp_half_sum_parts(batch);
    if (n_parts > 1 &&
        (n_parts * (size_t)n > sums->part_floats || ((size_t)n + 31) / 32 > sums->ticket_count))
        return bp_fail(BP_ERR_INVALID_ARGUMENT,
                       "cuda backend: a bias gradient of %d columns over a batch of %d exceeds "
                       "the scratch made for the network (%zu floats)",
                       n, batch, sums->part_floats);
    return BP_CUDA_LAUNCH("delta_half",
                          bp_launch_delta_half(bp_cuda_ctx_stream(ctx), half, act, slope, z, a, d,
                                               db, n, batch, sums->parts, sums->tickets));
}

/* Beside the branch: it reads and writes the layer's delta and writes its
 * bias gradient, which the branch's products of the layer above neither
 * read nor write (its scratch is the main stream's alone). */
bp_status bp_cuda_delta_half(void *ctx, int half, bp_activation act, double slope, const void *z,
                             const void *a, void *d, float *db, int n, int batch)
{
    size_t count = (size_t)n * (size_t)batch;
    bp_range rd[] = {{z, half_bytes(z, count)}, {a, half_bytes(a, count)}, {d, half_bytes(d, count)}};
    bp_range wr[] = {{d, half_bytes(d, count)}, {db, f32_bytes(db, (size_t)n)}};
    MIXED_BESIDE(ctx, rd, wr, delta_half_on_device(ctx, half, act, slope, z, a, d, db, n, batch));
}

/* The fused products of the mixed precisions (cuBLASLt epilogues over
 * 16-bit operands, lt_plans.c): BP_ERR_UNSUPPORTED, having issued nothing,
 * where cuBLASLt offers no algorithm; train.c then runs them unfused. */
bp_status bp_cuda_linear_relu_forward_half(void *ctx, int half, const void *w, const void *a_in,
                                           const void *bias, void *a_out, void *mask,
                                           int64_t mask_ld, int n_out, int batch, int n_in)
{
    bp_lt_kind kind = half == BP_HALF_F16 ? BP_LT_RELU_AUX_BIAS_F16 : BP_LT_RELU_AUX_BIAS_BF16;
    MIXED_ON_DEVICE(ctx, bp_lt_matmul(bp_cuda_ctx_lt(ctx), kind, n_out, batch, n_in, w, a_in,
                                      a_out, bias, mask, mask_ld));
}

bp_status bp_cuda_linear_drelu_half(void *ctx, int half, const void *w, const void *d,
                                    const void *mask, int64_t mask_ld, void *d_prev, int n_in,
                                    int batch, int n_out)
{
    bp_lt_kind kind = half == BP_HALF_F16 ? BP_LT_DRELU_F16 : BP_LT_DRELU_BF16;
    /* Beside the branch: it writes the delta of the layer below. */
    bp_range rd[] = {{w, half_bytes(w, (size_t)n_in * (size_t)n_out)},
                     {d, half_bytes(d, (size_t)n_out * (size_t)batch)},
                     {mask, (size_t)mask_ld / 8 * (size_t)batch}};
    bp_range wr[] = {{d_prev, half_bytes(d_prev, (size_t)n_in * (size_t)batch)}};
    MIXED_BESIDE(ctx, rd, wr,
                 bp_lt_matmul(bp_cuda_ctx_lt(ctx), kind, n_in, batch, n_out, w, d, d_prev, NULL,
                              mask, mask_ld));
}

bp_status bp_cuda_linear_bias_forward_half(void *ctx, int half, const void *w, const void *a_in,
                                           const float *bias, float *z, int n_out, int batch,
                                           int n_in)
{
    bp_lt_kind kind = half == BP_HALF_F16 ? BP_LT_BIAS_F16_IN : BP_LT_BIAS_BF16_IN;
    MIXED_ON_DEVICE(ctx, bp_lt_matmul(bp_cuda_ctx_lt(ctx), kind, n_out, batch, n_in, w, a_in, z,
                                      bias, NULL, 0));
}

bp_status bp_cuda_unscale(void *ctx, float *g, size_t count, const double *scale,
                          bp_step_scalars *scalars)
{
    cudaStream_t s = bp_cuda_ctx_stream(ctx);
    MIXED_ON_DEVICE(ctx, BP_CUDA_LAUNCH("unscale", bp_launch_unscale(s, g, count, scale, scalars)));
}

bp_status bp_cuda_scaler_update(void *ctx, bp_step_scalars *scalars)
{
    cudaStream_t s = bp_cuda_ctx_stream(ctx);
    MIXED_ON_DEVICE(ctx, BP_CUDA_LAUNCH("scaler_update", bp_launch_scaler_update(s, scalars)));
}
