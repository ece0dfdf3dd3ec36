/* mixed.h — the CUDA backend's mixed-precision operations
 * (src/backend/cuda/mixed.c) for its table in src/backend/cuda/host.c,
 * and what mixed.c needs of host.c's context. */
#ifndef BP_CUDA_MIXED_H
#define BP_CUDA_MIXED_H

#include <cublas_v2.h>

#include "backend/backend.h"
#include "backend/cuda/branch.h"
#include "backend/cuda/lt_plans.h"

/* host.c: the context's cuBLAS handle, and its device made current around
 * an operation (*previous and *switched for bp_cuda_ctx_leave, which gives
 * the caller its device back and returns st, or the restore's failure). */
cublasHandle_t bp_cuda_ctx_blas(void *ctx);
bp_status bp_cuda_ctx_enter(void *ctx, int *previous, int *switched);
bp_status bp_cuda_ctx_leave(int previous, int switched, bp_status st);
/* host.c, for the backward pass (branch.h): bp_cuda_ctx_enter, but the
 * main stream joins the weight-gradient branch only where an operation
 * reading rd and writing wr would race with its pending products; and,
 * for a weight gradient, the branch forked for a product reading rd and
 * writing wr, *blas its cuBLAS handle (on its stream). */
bp_status bp_cuda_ctx_enter_beside(void *ctx, const bp_range *rd, int n_rd, const bp_range *wr,
                                   int n_wr, int *previous, int *switched);
bp_status bp_cuda_ctx_enter_branch(void *ctx, const bp_range *rd, int n_rd, const bp_range *wr,
                                   int n_wr, int *previous, int *switched, cublasHandle_t *blas);
/* host.c: the context's cuBLASLt plans (lt_plans.h). */
bp_lt *bp_cuda_ctx_lt(void *ctx);

/* The device scratch of delta_half's bias-gradient parts
 * (kernels/launch_mixed.h), made with the context and kept in it: room for
 * the most parts of any batch up to max_batch times the widest layer, and a
 * zeroed ticket per 32 of its columns; none where one part always does. */
typedef struct bp_cuda_mixed_sums {
    float *parts;
    unsigned *tickets;
    size_t part_floats, ticket_count;
} bp_cuda_mixed_sums;

/* mixed.c: what cfg's network needs of it (0 and 0: nothing; a 32-true or
 * 64-true network, or batches of one part). */
void bp_cuda_mixed_sums_size(const bp_network_config *cfg, size_t *part_floats,
                             size_t *ticket_count);
/* host.c: the context's. */
const bp_cuda_mixed_sums *bp_cuda_ctx_mixed_sums(void *ctx);

/* The operations of backend.h's mixed-precision section. */
bp_status bp_cuda_gather_rows_half(void *ctx, int half, void *dst, const float *src,
                                   const int32_t *rows, int batch, int n);
bp_status bp_cuda_gather_epoch_half(void *ctx, int half, void *x_dst, const float *x_src, int n,
                                    void *y_dst, const void *y_src, size_t y_row_bytes,
                                    const int32_t *order, const int64_t *cursor, int batch);
bp_status bp_cuda_to_half(void *ctx, int half, const float *src, void *dst, size_t count,
                          const double *scale);
bp_status bp_cuda_gemm_half(void *ctx, int half, int trans_a, int trans_b, int m, int n, int k,
                            const void *a, int lda, const void *b, int ldb, double beta, void *c,
                            int c_half, int ldc);
bp_status bp_cuda_fill_rows_half(void *ctx, int half, const void *bias, void *z, int n, int batch);
bp_status bp_cuda_act_half(void *ctx, int half, bp_activation act, double slope, const void *z,
                           void *a, int n, int batch);
bp_status bp_cuda_delta_half(void *ctx, int half, bp_activation act, double slope, const void *z,
                             const void *a, void *d, float *db, int n, int batch);
bp_status bp_cuda_linear_relu_forward_half(void *ctx, int half, const void *w, const void *a_in,
                                           const void *bias, void *a_out, void *mask,
                                           int64_t mask_ld, int n_out, int batch, int n_in);
bp_status bp_cuda_linear_drelu_half(void *ctx, int half, const void *w, const void *d,
                                    const void *mask, int64_t mask_ld, void *d_prev, int n_in,
                                    int batch, int n_out);
bp_status bp_cuda_linear_bias_forward_half(void *ctx, int half, const void *w, const void *a_in,
                                           const float *bias, float *z, int n_out, int batch,
                                           int n_in);
bp_status bp_cuda_unscale(void *ctx, float *g, size_t count, const double *scale,
                          bp_step_scalars *scalars);
bp_status bp_cuda_scaler_update(void *ctx, bp_step_scalars *scalars);

#endif
