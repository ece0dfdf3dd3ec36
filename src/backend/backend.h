/*
 * backend.h — the table of primitive operations a backend executes.
 *
 * The backpropagation algorithm (train.c) is written once against this
 * table. A backend knows nothing of layers, deltas or the order of a step:
 * it runs GEMMs with the column-major BLAS argument lists of docs/design.md,
 * element-wise maps from kernels/bp_math.h, reductions and copies. Where an
 * operation takes the device's step scalars, it applies the transition of
 * kernels/step_protocol.h that its comment names, and no other.
 *
 * Pointers named "device" point into memory from alloc (host memory on the
 * CPU backend). Operations are issued in order on the backend's stream; only
 * download and sync wait for them.
 */
#ifndef BP_BACKEND_H
#define BP_BACKEND_H

#include <stddef.h>
#include <stdint.h>

#include "bp_math.h"
#include "backprop.h"
#include "step_protocol.h"
#include "step_scalars.h"

/* One product's BLAS argument list (gemm's, below). */
typedef struct bp_gemm_args {
    int trans_a, trans_b, m, n, k;
    double alpha;
    const void *a;
    int lda;
    const void *b;
    int ldb;
    double beta;
    void *c;
    int ldc;
} bp_gemm_args;

typedef struct bp_backend_ops {
    const char *name;

    /* A context: device, BLAS handle, stream, staging memory. staging_bytes
     * is the largest single upload a training step will make. */
    bp_status (*ctx_create)(const bp_network_config *cfg, size_t staging_bytes, void **ctx);
    void (*ctx_destroy)(void *ctx);

    /* Zero-filled device memory. */
    bp_status (*alloc)(void *ctx, size_t bytes, void **ptr);
    void (*release)(void *ctx, void *ptr);

    /* Host -> device, any size, ordered after earlier work. Returns once
     * src may be reused; the copy may still be in flight on the stream (the
     * CUDA backend stages copies through two pinned areas of at most 4 MiB,
     * in chunks). */
    bp_status (*upload)(void *ctx, void *dst, const void *src, size_t bytes);
    /* Device -> host; waits for all earlier work and the copy. */
    bp_status (*download)(void *ctx, void *dst, const void *src, size_t bytes);
    /* Device -> device. */
    bp_status (*copy)(void *ctx, void *dst, const void *src, size_t bytes);
    bp_status (*zero)(void *ctx, void *dst, size_t bytes);
    /* Waits for all issued work. */
    bp_status (*sync)(void *ctx);

    /* C = alpha op(A) op(B) + beta C, column-major, trans 0 = N, 1 = T. */
    bp_status (*gemm)(void *ctx, bp_dtype dt, int trans_a, int trans_b, int m, int n, int k,
                      double alpha, const void *a, int lda, const void *b, int ldb, double beta,
                      void *c, int ldc);

    /* Z[b, j] += bias[j]; A[b, j] = sigma(Z[b, j]), for b < batch, j < n. */
    bp_status (*bias_act)(void *ctx, bp_dtype dt, bp_activation act, double slope,
                          const void *bias, void *z, void *a, int n, int batch);
    /* A row = softmax(Z row), per sample. */
    bp_status (*softmax)(void *ctx, bp_dtype dt, const void *z, void *a, int n, int batch);
    /* Per sample: D row and sample_loss[b] from bp_output_delta_row (scale
     * 1/batch). y: real targets [batch, n] or NULL; labels: int32 [batch]
     * or NULL. */
    bp_status (*output_delta)(void *ctx, bp_dtype dt, bp_loss loss, bp_activation act,
                              double slope, const void *z, const void *a, const void *y,
                              const int32_t *labels, void *d, void *sample_loss, int n, int batch);
    /* D[i] = D[i] * sigma'(Z[i]) for i < count (the Hadamard delta). */
    bp_status (*hadamard_delta)(void *ctx, bp_dtype dt, bp_activation act, double slope,
                                const void *z, const void *a, void *d, size_t count);
    /* db[j] = sum_b D[b, j], in a fixed order (deterministic, no atomics). */
    bp_status (*bias_grad)(void *ctx, bp_dtype dt, const void *d, void *db, int n, int batch);
    /* The batch's loss and metrics, on the device. *loss (a device double)
     * = (1/batch) sum_b sample_loss[b], in a fixed order. With scalars (a
     * device bp_step_scalars; NULL: the loss only): bp_step_count_batch
     * with that sum, the correct predictions (row b of a whose first
     * largest value is at labels[b], when labels is not NULL) and cursor
     * (a device int64, or NULL). */
    bp_status (*step_metrics)(void *ctx, bp_dtype dt, const void *sample_loss, const void *a,
                              const int32_t *labels, int n, int batch, double *loss,
                              bp_step_scalars *scalars, int64_t *cursor);
    /* The guard on gradients: bp_step_open_update, and bp_step_reject when
     * any of g[0..count) is NaN or infinite. clip_parts not NULL (clipping
     * on): also the partial sums of the squared gradients there (a
     * fixed-order reduction, no atomics; BP_CLIP_PARTS device doubles; the
     * CUDA backend uses bp_clip_parts(count) of them, the CPU backend one),
     * for optimizer_update. */
    bp_status (*check_finite)(void *ctx, bp_dtype dt, const void *g, size_t count,
                              double *clip_parts, bp_step_scalars *scalars);
    /* The optimizer, one operation that never waits for the host, after
     * check_finite: the clipping scale is bp_clip_scale of the sum of
     * check_finite's clip_parts when max_norm > 0 (the same fixed order
     * everywhere), else 1; bp_step_update_scalars and bp_step_close_update
     * with it; then, unless the step is skipped, bp_optimizer_update of
     * every parameter (kernels/bp_math.h). s1..s3 are the state buffers in
     * the parameters' layout (NULL when the rule does not use them). No
     * part of it reads what it writes. */
    bp_status (*optimizer_update)(void *ctx, bp_dtype dt, const bp_update_rule *rule, void *w,
                                  const void *g, void *s1, void *s2, void *s3, size_t count,
                                  double max_norm, const double *clip_parts,
                                  bp_step_scalars *scalars);
    /* dst row i = src row rows[i] (rows a device int32 array), or src row
     * i when rows is NULL, for i < batch; rows of row_bytes bytes. */
    bp_status (*gather_rows)(void *ctx, void *dst, const void *src, const int32_t *rows, int batch,
                             size_t row_bytes);
    /* The same for an epoch's order, in one operation for inputs and
     * targets: row i is order[*cursor + i] (order and cursor on the
     * device, so that a replayed graph takes the next rows). y_dst NULL:
     * inputs only. */
    bp_status (*gather_epoch)(void *ctx, void *x_dst, const void *x_src, size_t x_row_bytes,
                              void *y_dst, const void *y_src, size_t y_row_bytes,
                              const int32_t *order, const int64_t *cursor, int batch);

    /* ---- optional operations: NULL means train.c's generic sequence ---- */

    /* The output layer of a training step fused: for cross-entropy the
     * softmax of z into a first, then what output_delta, step_metrics and
     * (db not NULL) bias_grad(d, db) would do, in one operation (NULL:
     * those operations one by one). */
    bp_status (*output_step)(void *ctx, bp_dtype dt, bp_loss loss, bp_activation act, double slope,
                             const void *z, void *a, const void *y, const int32_t *labels, void *d,
                             void *sample_loss, void *db, int n, int batch, double *loss_out,
                             bp_step_scalars *scalars, int64_t *cursor);
    /* Two products in one operation, each exactly what gemm gives for its
     * arguments; neither reads or writes the other's C (NULL: gemm, then
     * gemm). train.c passes a layer's weight gradient and the delta below
     * it, so that threads share both. */
    bp_status (*gemm2)(void *ctx, bp_dtype dt, const bp_gemm_args *first,
                       const bp_gemm_args *second);
    /* hadamard_delta over [batch, n] then bias_grad(d, db), in one
     * operation (NULL: the two one after the other). */
    bp_status (*delta_bias_grad)(void *ctx, bp_dtype dt, bp_activation act, double slope,
                                 const void *z, const void *a, void *d, void *db, int n, int batch);

    /* Whole steps as graphs (NULL: every step runs its operations one by
     * one). graph_begin starts recording the operations issued next;
     * graph_end stops and returns a replayable graph (NULL and a status on
     * failure, the recording then discarded); graph_launch replays it in
     * stream order; graph_release frees it. */
    bp_status (*graph_begin)(void *ctx);
    bp_status (*graph_end)(void *ctx, void **graph);
    bp_status (*graph_launch)(void *ctx, void *graph);
    void (*graph_release)(void *ctx, void *graph);

    /* A hidden ReLU layer's products with their epilogues fused (float32
     * only; NULL: gemm + bias_act, gemm + delta_bias_grad). Every pointer
     * 16-byte aligned (train.c checks). mask is the layer's ReLU bit-mask:
     * a column-major bit matrix, mask_ld bits per sample (a multiple of 128,
     * >= the layer's width), written by the forward, read by the backward.
     * linear_relu_forward: a_out = relu(W a_in + bias), the product of
     * forward_layers' gemm(T, N, m=n_out, n=batch, k=n_in, W ld n_in, a_in
     * ld n_in, a_out ld n_out), mask bit set where W a_in + bias > 0; z is
     * not written. */
    bp_status (*linear_relu_forward)(void *ctx, bp_dtype dt, const void *w, const void *a_in,
                                     const void *bias, void *a_out, void *mask, int64_t mask_ld,
                                     int n_out, int batch, int n_in);
    /* linear_drelu_backward: d_prev = (W^T d) (.) mask, the product of
     * backward_layers' gemm(N, N, m=n_in, n=batch, k=n_out, W ld n_in, d ld
     * n_out, d_prev ld n_in), then db[i] = sum over the batch of d_prev[b, i]
     * (the mask that layer's forward wrote). Either returns
     * BP_ERR_UNSUPPORTED, having issued nothing, when it has no algorithm for
     * the shape: train.c then runs that product unfused. */
    bp_status (*linear_drelu_backward)(void *ctx, bp_dtype dt, const void *w, const void *d,
                                       const void *mask, int64_t mask_ld, void *d_prev, void *db,
                                       int n_in, int batch, int n_out);
    /* gemm2 for a layer below which the forward fused: the weight gradient
     * product `wgrad` (backward_layers' dW of the layer) and what
     * linear_drelu_backward does for the layer below, in one operation,
     * each exactly what those give (NULL or BP_ERR_UNSUPPORTED, having
     * issued nothing: gemm, then linear_drelu_backward). */
    bp_status (*wgrad_drelu_backward)(void *ctx, bp_dtype dt, const bp_gemm_args *wgrad,
                                      const void *w, const void *d, const void *mask,
                                      int64_t mask_ld, void *d_prev, void *db, int n_in, int batch,
                                      int n_out);
    /* The output layer's products with their epilogues fused (float32 only,
     * 16-byte aligned pointers; NULL or BP_ERR_UNSUPPORTED, having issued
     * nothing: the products unfused). linear_bias_forward: z = W a_in +
     * bias, the product of forward_layers' gemm (as linear_relu_forward,
     * without the ReLU and the mask). linear_wgrad_bgrad: the weight
     * gradient dW^T = a_in d^T, backward_layers' gemm(N, T, m=n_in, n=n_out,
     * k=batch, a_in ld n_in, d ld n_out, dw ld n_in), and db[j] = sum over
     * the batch of d[b, j]. */
    bp_status (*linear_bias_forward)(void *ctx, bp_dtype dt, const void *w, const void *a_in,
                                     const void *bias, void *z, int n_out, int batch, int n_in);
    bp_status (*linear_wgrad_bgrad)(void *ctx, bp_dtype dt, const void *a_in, const void *d,
                                    void *dw, void *db, int n_in, int batch, int n_out);

    /* ---- mixed precision (bf16-mixed, 16-mixed): NULL when the backend has
     * none, and such networks are then refused. half is BP_HALF_BF16 or
     * BP_HALF_F16 (kernels/bp_mixed.h), the format of every 16-bit array
     * (uint16_t elements); every rounding is bp_half_from_f32's. ---- */

    /* gather_rows for the input of a mixed network: dst row i (n 16-bit
     * values) = half(src row rows[i]) (n float32 values); rows NULL: row i. */
    bp_status (*gather_rows_half)(void *ctx, int half, void *dst, const float *src,
                                  const int32_t *rows, int batch, int n);
    /* gather_epoch with the input rows converted so (n float32 values to n
     * 16-bit ones); the targets copied as they are (y_dst NULL: none). */
    bp_status (*gather_epoch_half)(void *ctx, int half, void *x_dst, const float *x_src, int n,
                                   void *y_dst, const void *y_src, size_t y_row_bytes,
                                   const int32_t *order, const int64_t *cursor, int batch);
    /* dst[i] = half(src[i] * s) for i < count, s = (float)*scale (a device
     * double: 16-mixed's loss scale) or 1 when scale is NULL. */
    bp_status (*to_half)(void *ctx, int half, const float *src, void *dst, size_t count,
                         const double *scale);
    /* C = op(A) op(B) + beta C, column-major as gemm, A and B 16-bit, the
     * products summed in float32; C float32 (c_half 0) or 16-bit (c_half 1:
     * rounded once, from the float32 sum plus beta times C). */
    bp_status (*gemm_half)(void *ctx, int half, int trans_a, int trans_b, int m, int n, int k,
                           const void *a, int lda, const void *b, int ldb, double beta, void *c,
                           int c_half, int ldc);
    /* Z row b = bias, for b < batch (16-bit rows of n): the C that a gemm_half
     * with beta 1 adds the bias from, so that z = half(W a + b) rounds once. */
    bp_status (*fill_rows_half)(void *ctx, int half, const void *bias, void *z, int n, int batch);
    /* A[b, j] = half(sigma(Z[b, j])), sigma in float32 (bp_act_f). */
    bp_status (*act_half)(void *ctx, int half, bp_activation act, double slope, const void *z,
                          void *a, int n, int batch);
    /* D[b, j] = half(D[b, j] * sigma'(Z[b, j], A[b, j])) (bp_hadamard_delta_f;
     * identity leaves D as it is, and z, a may be NULL), then the float32
     * bias gradient db[j] = sum over b of D[b, j], in the order of
     * kernels/bp_mixed.h (bp_half_sum_rows: parts of the batch, each in row
     * order, then the parts' sums in order; one part up to 32 rows). */
    bp_status (*delta_half)(void *ctx, int half, bp_activation act, double slope, const void *z,
                            const void *a, void *d, float *db, int n, int batch);
    /* A hidden ReLU layer's products with their epilogues fused, as
     * linear_relu_forward and linear_drelu_backward but over the 16-bit
     * operands of gemm_half (NULL: the unfused sequence; BP_ERR_UNSUPPORTED,
     * having issued nothing, where the backend has no algorithm for the
     * shape). Every pointer 16-byte aligned (train.c checks).
     * linear_relu_forward_half: a_out = half(relu(W a_in + bias)), the
     * float32 sum plus the 16-bit bias rounded once (the values fill_rows_half,
     * gemm_half and act_half give: relu commutes with the rounding), the mask
     * bit set where the sum is > 0; z is not written.
     * linear_drelu_half: d_prev = half((W^T d) (.) mask), what gemm_half and
     * delta_half give for ReLU (but +0 where the mask is clear), without the
     * bias gradient: delta_half with BP_ACT_IDENTITY sums it. */
    bp_status (*linear_relu_forward_half)(void *ctx, int half, const void *w, const void *a_in,
                                          const void *bias, void *a_out, void *mask,
                                          int64_t mask_ld, int n_out, int batch, int n_in);
    bp_status (*linear_drelu_half)(void *ctx, int half, const void *w, const void *d,
                                   const void *mask, int64_t mask_ld, void *d_prev, int n_in,
                                   int batch, int n_out);
    /* The output layer's forward product with its bias, from 16-bit W and
     * a_in: z = W a_in + bias in float32 (bias and z float32), the value of
     * gemm_half (float32 C) then bias_act's z += b (NULL or
     * BP_ERR_UNSUPPORTED, having issued nothing: unfused). */
    bp_status (*linear_bias_forward_half)(void *ctx, int half, const void *w, const void *a_in,
                                          const float *bias, float *z, int n_out, int batch,
                                          int n_in);
    /* optimizer_update of a mixed network's float32 parameters that also
     * writes the 16-bit working copy, w_half[i] = half(w[i]) of each updated
     * value (nothing when the step is skipped: w is unchanged). NULL: the
     * working copy is made again (to_half) before the next forward pass. */
    bp_status (*optimizer_update_half)(void *ctx, const bp_update_rule *rule, float *w,
                                       const float *g, float *s1, float *s2, float *s3,
                                       size_t count, double max_norm, const double *clip_parts,
                                       bp_step_scalars *scalars, int half, void *w_half);
    /* 16-mixed: g[i] = bp_scaler_unscale(g[i], bp_scaler_inverse(*scale))
     * for i < count (float32 gradients); with scalars not NULL (a training
     * step) a value that is not finite sets scalars->skip. */
    bp_status (*unscale)(void *ctx, float *g, size_t count, const double *scale,
                         bp_step_scalars *scalars);
    /* 16-mixed, after optimizer_update: bp_scaler_update of loss_scale and
     * scale_tracker with found_inf = skip; a skipped step counts in
     * scaler_skips, and when its loss was finite and bad_step names this
     * step (steps_seen), bad_step is cleared: the scaler skipped it, no
     * error. One thread; nothing else reads the fields meanwhile. */
    bp_status (*scaler_update)(void *ctx, bp_step_scalars *scalars);
} bp_backend_ops;

/* The table of a backend: BP_ERR_NOT_BUILT (with a message) when it is not
 * compiled in. */
bp_status bp_backend_lookup(bp_backend backend, const bp_backend_ops **out);

extern const bp_backend_ops bp_cpu_backend_ops;
#ifdef BP_HAVE_CUDA
extern const bp_backend_ops bp_cuda_backend_ops;
#endif

#endif
