/*
 * launch_mixed.h — C launch wrappers of the mixed-precision kernels
 * (kernels/mixed.cu), as kernels/launch.h is for the others: each enqueues
 * one kernel on `stream` and returns the launch's cudaError_t. Parameters
 * are named and typed as in the mixed-precision section of the backend
 * table (src/backend/backend.h); `half` is BP_HALF_BF16 or BP_HALF_F16
 * (kernels/bp_mixed.h) and 16-bit arrays hold uint16_t. Usable from C.
 */
#ifndef BP_KERNELS_LAUNCH_MIXED_H
#define BP_KERNELS_LAUNCH_MIXED_H

#include <cuda_runtime.h>
#include <stddef.h>
#include <stdint.h>

#include "../include/backprop.h"
#include "step_scalars.h"

#ifdef __cplusplus
extern "C" {
#endif

cudaError_t bp_launch_gather_rows_half(cudaStream_t stream, int half, void *dst, const float *src,
                                       const int32_t *rows, int batch, int n);
cudaError_t bp_launch_gather_epoch_half(cudaStream_t stream, int half, void *x_dst,
                                        const float *x_src, int n, void *y_dst, const void *y_src,
                                        size_t y_row_bytes, const int32_t *order,
                                        const int64_t *cursor, int batch);
cudaError_t bp_launch_to_half(cudaStream_t stream, int half, const float *src, void *dst,
                              size_t count, const double *scale);
cudaError_t bp_launch_fill_rows_half(cudaStream_t stream, const void *bias, void *z, int n,
                                     int batch);
cudaError_t bp_launch_act_half(cudaStream_t stream, int half, bp_activation activation,
                               double slope, const void *z, void *a, int n, int batch);
/* delta_half: the batch's bias-gradient sums in bp_half_sum_parts(batch)
 * parts (kernels/bp_mixed.h). More than one part needs parts, room for
 * that many times n floats, and tickets, (n + 31) / 32 counters that are 0
 * (each launch leaves them at 0 again); one part uses neither (NULL). */
cudaError_t bp_launch_delta_half(cudaStream_t stream, int half, bp_activation activation,
                                 double slope, const void *z, const void *a, void *d, float *db,
                                 int n, int batch, float *parts, unsigned *tickets);
cudaError_t bp_launch_unscale(cudaStream_t stream, float *g, size_t count, const double *scale,
                              bp_step_scalars *scalars);
cudaError_t bp_launch_scaler_update(cudaStream_t stream, bp_step_scalars *scalars);

#ifdef __cplusplus
}
#endif

#endif
