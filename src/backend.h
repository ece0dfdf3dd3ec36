/*
 * backend.h — the table of primitive operations a backend executes.
 *
 * The backpropagation algorithm (train.c) is written once against this
 * table. A backend knows nothing of layers, deltas or the order of a step:
 * it runs GEMMs with the column-major BLAS argument lists of DESIGN.md,
 * element-wise maps from kernels/bp_math.h, reductions and copies.
 *
 * Pointers named "device" point into memory from alloc (host memory on the
 * CPU backend). Operations are issued in order on the backend's stream; only
 * download and sync wait for them.
 */
#ifndef BP_BACKEND_H
#define BP_BACKEND_H

#include <stddef.h>
#include <stdint.h>

#include "../kernels/bp_math.h"
#include "backprop.h"
#include "step_scalars.h"

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
     * CUDA backend stages copies of up to staging_bytes through pinned
     * memory and copies larger ones synchronously). */
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
    bp_status (*bias_act)(void *ctx, bp_dtype dt, int act, double slope, const void *bias,
                          void *z, void *a, int n, int batch);
    /* A row = softmax(Z row), per sample. */
    bp_status (*softmax)(void *ctx, bp_dtype dt, const void *z, void *a, int n, int batch);
    /* Per sample: D row and sample_loss[b] from bp_output_delta_row (scale
     * 1/batch). y: real targets [batch, n] or NULL; labels: int32 [batch]
     * or NULL. */
    bp_status (*output_delta)(void *ctx, bp_dtype dt, int loss, int act, double slope,
                              const void *z, const void *a, const void *y,
                              const int32_t *labels, void *d, void *sample_loss, int n,
                              int batch);
    /* D[i] = D[i] * sigma'(Z[i]) for i < count (the Hadamard delta). */
    bp_status (*hadamard_delta)(void *ctx, bp_dtype dt, int act, double slope, const void *z,
                                const void *a, void *d, size_t count);
    /* db[j] = sum_b D[b, j], in a fixed order (deterministic, no atomics). */
    bp_status (*bias_grad)(void *ctx, bp_dtype dt, const void *d, void *db, int n, int batch);
    /* *out (a device double) = (1/batch) sum_b sample_loss[b], in b order. */
    bp_status (*loss_mean)(void *ctx, bp_dtype dt, const void *sample_loss, int batch,
                           double *out);
    /* The optimizer (kernels/bp_math.h, optimizer section), in two
     * launches that never wait for the host. optimizer_prepare counts the
     * step (scalars->step += 1 unless scalars->skip is set) and writes
     * scalars->clip_scale: bp_clip_scale of the sum of the squared count
     * gradients g when max_norm > 0 (a fixed-order reduction, no atomics,
     * through `scratch`, BP_CLIP_PARTS device doubles), else 1. optimizer_update then applies bp_optimizer_update to every
     * parameter, reading lr, step (as t), clip_scale and skip from scalars;
     * s1..s3 are the state buffers in the parameters' layout (s2, s3 NULL
     * when the rule does not use them). */
    bp_status (*optimizer_prepare)(void *ctx, bp_dtype dt, const void *g, size_t count,
                                   double max_norm, double *scratch, bp_step_scalars *scalars);
    bp_status (*optimizer_update)(void *ctx, bp_dtype dt, const bp_update_rule *rule, void *w,
                                  const void *g, void *s1, void *s2, void *s3, size_t count,
                                  const bp_step_scalars *scalars);
    /* dst row i = src row rows[i] (rows a device int32 array), or src row
     * i when rows is NULL, for i < batch; rows of row_bytes bytes. */
    bp_status (*gather_rows)(void *ctx, void *dst, const void *src, const int32_t *rows,
                             int batch, size_t row_bytes);
} bp_backend_ops;

/* The table of a backend: BP_ERR_NOT_BUILT (with a message) when it is not
 * compiled in. */
bp_status bp_backend_lookup(bp_backend backend, const bp_backend_ops **out);

extern const bp_backend_ops bp_cpu_backend_ops;
#ifdef BP_HAVE_CUDA
extern const bp_backend_ops bp_cuda_backend_ops;
#endif

#endif
