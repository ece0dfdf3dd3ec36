/*
 * launch.h — C launch wrappers of the CUDA kernels (the kernels/ .cu files, one per family).
 *
 * Each wrapper enqueues one kernel on `stream` and returns the launch's
 * cudaError_t (cudaSuccess when enqueued). An error left in the runtime's
 * last-error state by an earlier call, already reported by that call, is
 * cleared first, so the result is this launch's own (or a sticky error of
 * the context). Parameters are named and typed as in the backend table
 * (src/backend/backend.h): z, a and d are z^l, a^l and delta^l as [batch, n]
 * row-major arrays of dtype reals. Usable from C.
 */
#ifndef BP_KERNELS_LAUNCH_H
#define BP_KERNELS_LAUNCH_H

#include <cuda_runtime.h>
#include <stddef.h>
#include <stdint.h>

#include "../include/backprop.h"
#include "step_scalars.h"
#include "bp_math.h"

#ifdef __cplusplus
extern "C" {
#endif

/* The number of partial sums of squares (the guard's blocks) for the
 * clipping norm of count gradients: one per 2048 elements, at most
 * BP_CLIP_PARTS; a function of count alone, so the result repeats. */
static inline int bp_clip_parts(size_t count)
{
    size_t per = 2048;
    size_t n = (count + per - 1) / per;
    return n < 1 ? 1 : n > BP_CLIP_PARTS ? BP_CLIP_PARTS : (int)n;
}

/* The kernels' own device scratch: one per stream that launches the output
 * layer's kernels (the CUDA backend's context allocates it, zero-filled, and
 * passes it to bp_launch_step_metrics and bp_launch_output_step). Those
 * kernels spread the batch's rows over up to BP_ROW_BLOCKS blocks; each
 * block leaves its count of correct predictions in hits[] and takes a
 * ticket; the block that takes the last ticket finishes the batch (the
 * loss in a fixed order, the metrics) and sets the ticket back to 0. */
#define BP_ROW_BLOCKS 1024
typedef struct bp_kernel_scratch {
    unsigned int ticket;
    unsigned int unused;
    double hits[BP_ROW_BLOCKS];
} bp_kernel_scratch;

cudaError_t bp_launch_bias_act(cudaStream_t stream, bp_dtype dtype, bp_activation activation,
                               double slope, const void *bias, void *z, void *a, int n, int batch);
cudaError_t bp_launch_softmax(cudaStream_t stream, bp_dtype dtype, const void *z, void *a, int n,
                              int batch);
cudaError_t bp_launch_output_delta(cudaStream_t stream, bp_dtype dtype, bp_loss loss,
                                   bp_activation activation, double slope, const void *z,
                                   const void *a, const void *y, const int32_t *labels, void *d,
                                   void *sample_loss, int n, int batch);
cudaError_t bp_launch_hadamard_delta(cudaStream_t stream, bp_dtype dtype, bp_activation activation,
                                     double slope, const void *z, const void *a, void *d,
                                     size_t count);
cudaError_t bp_launch_bias_grad(cudaStream_t stream, bp_dtype dtype, const void *d, void *db,
                                int n, int batch);
/* The batch's loss and metrics (backend.h: step_metrics). */
cudaError_t bp_launch_step_metrics(cudaStream_t stream, bp_dtype dtype, const void *sample_loss,
                                   const void *a, const int32_t *labels, int n, int batch,
                                   double *loss, bp_step_scalars *scalars, int64_t *cursor,
                                   bp_kernel_scratch *scratch);
/* The output layer's step in one kernel (backend.h: output_step; db NULL:
 * no bias gradient). */
cudaError_t bp_launch_output_step(cudaStream_t stream, bp_dtype dtype, bp_loss loss,
                                  bp_activation activation, double slope, const void *z, void *a,
                                  const void *y, const int32_t *labels, void *d, void *sample_loss,
                                  void *db, int n, int batch, double *loss_out,
                                  bp_step_scalars *scalars, int64_t *cursor,
                                  bp_kernel_scratch *scratch);
/* Hadamard delta and bias gradient of a hidden layer (backend.h: delta_bias_grad). */
cudaError_t bp_launch_delta_bias_grad(cudaStream_t stream, bp_dtype dtype,
                                      bp_activation activation, double slope, const void *z,
                                      const void *a, void *d, void *db, int n, int batch);
/* The gradient guard (backend.h: check_finite): scalars->skip = 1 (and
 * bad_step set) when any of g[0..count) is not finite; block 0 copies
 * scalars->step_next into scalars->step. clip_parts not NULL (clipping on):
 * also the partial sums of squares of g, bp_clip_parts(count) doubles. */
cudaError_t bp_launch_check_finite(cudaStream_t stream, bp_dtype dtype, const void *g,
                                   size_t count, double *clip_parts, bp_step_scalars *scalars);
/* The optimizer (backend.h: optimizer_update): one launch over all
 * parameters; with max_norm > 0 every block reduces the guard's
 * bp_clip_parts(count) partial sums to the clipping scale. */
cudaError_t bp_launch_optimizer_update(cudaStream_t stream, bp_dtype dtype,
                                       const bp_update_rule *rule, void *w, const void *g,
                                       void *s1, void *s2, void *s3, size_t count, double max_norm,
                                       const double *clip_parts, bp_step_scalars *scalars);
/* The same for a mixed network's float32 masters, also writing each updated
 * value's 16-bit copy (kernels/bp_mixed.h's format half) to w_half. */
cudaError_t bp_launch_optimizer_update_half(cudaStream_t stream, const bp_update_rule *rule,
                                            float *w, const float *g, float *s1, float *s2,
                                            float *s3, size_t count, double max_norm,
                                            const double *clip_parts, bp_step_scalars *scalars,
                                            int half, void *w_half);
cudaError_t bp_launch_gather_rows(cudaStream_t stream, void *dst, const void *src,
                                  const int32_t *rows, int batch, size_t row_bytes);
/* Rows order[*cursor + i], i < batch, of x and (when not NULL) targets. */
cudaError_t bp_launch_gather_epoch(cudaStream_t stream, void *x_dst, const void *x_src,
                                   size_t x_row_bytes, void *y_dst, const void *y_src,
                                   size_t y_row_bytes, const int32_t *order, const int64_t *cursor,
                                   int batch);

#ifdef __cplusplus
}
#endif

#endif
