/*
 * launch.h — C launch wrappers of the CUDA kernels (kernels/elementwise.cu).
 *
 * Each wrapper enqueues one kernel on `stream` for float (dtype 0) or
 * double (dtype 1) data and returns the launch's cudaError_t
 * (cudaSuccess when enqueued). An error left in the runtime's last-error
 * state by an earlier call, already reported by that call, is cleared
 * first, so the result is this launch's own (or a sticky error of the
 * context). Arguments are as in src/backend.h. Usable from C.
 */
#ifndef BP_KERNELS_LAUNCH_H
#define BP_KERNELS_LAUNCH_H

#include <cuda_runtime.h>
#include <stddef.h>
#include <stdint.h>

#include "../src/step_scalars.h"
#include "bp_math.h"

#ifdef __cplusplus
extern "C" {
#endif

cudaError_t bp_launch_bias_act(cudaStream_t stream, int dtype, int act, double slope,
                               const void *bias, void *z, void *a, int n, int batch);
cudaError_t bp_launch_softmax(cudaStream_t stream, int dtype, const void *z, void *a, int n,
                              int batch);
cudaError_t bp_launch_output_delta(cudaStream_t stream, int dtype, int loss, int act, double slope,
                                   const void *z, const void *a, const void *y,
                                   const int32_t *labels, void *d, void *sample_loss, int n,
                                   int batch);
cudaError_t bp_launch_hadamard_delta(cudaStream_t stream, int dtype, int act, double slope,
                                     const void *z, const void *a, void *d, size_t count);
cudaError_t bp_launch_bias_grad(cudaStream_t stream, int dtype, const void *d, void *db, int n,
                                int batch);
cudaError_t bp_launch_loss_mean(cudaStream_t stream, int dtype, const void *sample_loss, int batch,
                                double *out);
/* The optimizer (src/backend.h: optimizer_prepare, optimizer_update):
 * with clipping, one launch of partial sums of squares into scratch
 * (BP_CLIP_PARTS doubles); one single-block launch for the step count and
 * clipping scale; one launch over all parameters for the update. */
cudaError_t bp_launch_optimizer_prepare(cudaStream_t stream, int dtype, const void *g, size_t count,
                                        double max_norm, double *scratch,
                                        bp_step_scalars *scalars);
cudaError_t bp_launch_optimizer_update(cudaStream_t stream, int dtype, const bp_update_rule *rule,
                                       void *w, const void *g, void *s1, void *s2, void *s3,
                                       size_t count, const bp_step_scalars *scalars);
cudaError_t bp_launch_gather_rows(cudaStream_t stream, void *dst, const void *src,
                                  const int32_t *rows, int batch, size_t row_bytes);

#ifdef __cplusplus
}
#endif

#endif
