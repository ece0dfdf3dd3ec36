/*
 * lt_plans.h — the CUDA backend's fused products through cuBLASLt
 * (lt_plans.c; docs/design.md, section 2): each kind of product with its
 * epilogue, planned once per shape and per alignment class of its bias
 * and aux vectors, and run on the backend's stream (internal).
 */
#ifndef BP_CUDA_LT_PLANS_H
#define BP_CUDA_LT_PLANS_H

#include <cublasLt.h>
#include <cuda_runtime.h>
#include <stddef.h>
#include <stdint.h>

#include "backprop.h"

#ifdef __cplusplus
extern "C" { /* (the tests read a plan's state) */
#endif

/* The products, with the column-major BLAS argument lists of train.c:
 *   RELU_AUX_BIAS  forward of a hidden ReLU layer, TRANSA = T, TRANSB = N:
 *                  D = relu(A^T B + bias) (m x n), the ReLU bit-mask in aux;
 *   BIAS           forward of the output layer, TRANSA = T, TRANSB = N:
 *                  D = A^T B + bias;
 *   DRELU_BGRAD    backward into a hidden ReLU layer, TRANSA = N, TRANSB = N:
 *                  D = (A B) (.) aux, bias[i] = sum over the columns of row i;
 *   BGRADB         a weight gradient, TRANSA = N, TRANSB = T: D = A B^T and
 *                  bias[j] = sum over k of B^T's column j (the bias gradient
 *                  of the layer whose delta is B).
 * and for the mixed precisions (kernels/bp_mixed.h's formats: A, B, D and
 * the bias 16-bit, float32 sums, D rounded once):
 *   RELU_AUX_BIAS_BF16, _F16  as RELU_AUX_BIAS: a^l = half(relu(W a + b));
 *   DRELU_BF16, _F16          as DRELU_BGRAD without the bias gradient
 *                             (which delta_half sums in the order of
 *                             bp_mixed.h): D = half((A B) (.) aux);
 *   BIAS_BF16_IN, _F16_IN     as BIAS from 16-bit A and B, D and the bias
 *                             float32: the output layer's z^L = W a + b.
 * Operands are packed (leading dimension = rows as stored). */
typedef enum bp_lt_kind {
    BP_LT_RELU_AUX_BIAS,
    BP_LT_BIAS,
    BP_LT_DRELU_BGRAD,
    BP_LT_BGRADB,
    BP_LT_RELU_AUX_BIAS_BF16,
    BP_LT_RELU_AUX_BIAS_F16,
    BP_LT_DRELU_BF16,
    BP_LT_DRELU_F16,
    BP_LT_BIAS_BF16_IN,
    BP_LT_BIAS_F16_IN,
    BP_LT_KINDS /* how many: lt_plans.c names each */
} bp_lt_kind;

/* A plan: the descriptors and the algorithm of one product (lt_plans.c). */
typedef struct bp_lt_plan bp_lt_plan;

/* What the plans need of the backend: its cuBLASLt handle, stream, the
 * cuBLAS workspace (both on the one stream, so never in use at the same
 * time), the math mode; and the plans made so far. */
typedef struct bp_lt {
    cublasLtHandle_t handle;
    cudaStream_t stream;
    void *workspace;
    size_t workspace_bytes;
    bp_math_mode math_mode;
    bp_lt_plan *plans; /* BP_LT_PLANS of them */
    int next_plan;     /* the slot a new plan takes when all are used */
} bp_lt;

/* The cuBLASLt handle and an empty plan cache. */
bp_status bp_lt_create(bp_lt *lt, cudaStream_t stream, void *workspace, size_t workspace_bytes,
                       bp_math_mode math_mode);
void bp_lt_destroy(bp_lt *lt);

/* D = the product of `kind` (m x n, inner dimension k) with its epilogue,
 * float32 sums, on the stream. BP_ERR_UNSUPPORTED, having issued nothing,
 * when cuBLASLt has no algorithm for it or refuses the call (any status
 * but success, remembered for the plan: the caller then runs the product
 * unfused, now and in later steps); another status for other failures. */
bp_status bp_lt_matmul(bp_lt *lt, bp_lt_kind kind, int m, int n, int k, const void *a,
                       const void *b, void *d, const void *bias, const void *aux, int64_t aux_ld);

/* For tests: the plan of such a product, if made: 0 none yet, 1 cuBLASLt
 * offered an algorithm and runs it, 2 it refused (the product runs unfused). */
int bp_lt_plan_state(const bp_lt *lt, bp_lt_kind kind, int m, int n, int k, const void *bias,
                     const void *aux);
/* The same for a CUDA network's backend context (host.c; kind a bp_lt_kind). */
int bp_cuda_lt_plan_state(void *ctx, int kind, int m, int n, int k, const void *bias,
                          const void *aux);

#ifdef __cplusplus
}
#endif

#endif
