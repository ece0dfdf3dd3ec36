/* status.h — CUDA and cuBLAS return codes as statuses (internal). */
#ifndef BP_CUDA_UTIL_H
#define BP_CUDA_UTIL_H

#include <cublas_v2.h>
#include <cuda_runtime.h>

#include "backprop.h"

/* BP_OK, or a status whose message names the call and the error. */
bp_status bp_cuda_status(cudaError_t err, const char *call);
bp_status bp_cublas_status(cublasStatus_t err, const char *call);

#define BP_CUDA_CHECK(call) bp_cuda_status((call), #call)
#define BP_CUBLAS_CHECK(call) bp_cublas_status((call), #call)
#define BP_CUDA_LAUNCH(kernel, err) bp_cuda_status((err), "launching the " kernel " kernel")

/* Number of usable devices: BP_OK with 0 when there is no device or no
 * driver, and then *why (when not NULL) is the error cudaGetDeviceCount
 * gave (cudaSuccess when it reported zero devices); another status for
 * other failures. */
bp_status bp_cuda_count_devices(int *count, cudaError_t *why);

/* BP_ERR_NO_DEVICE with a message that says "no CUDA device", who asked
 * and what the runtime said (why from bp_cuda_count_devices). */
bp_status bp_cuda_no_device(const char *who, cudaError_t why);

/* The stream a CUDA network's work runs on (its backend context), for the
 * data-parallel engine (src/parallel/nccl.c) to order collectives against. */
cudaStream_t bp_cuda_ctx_stream(void *ctx);
/* `other` waits for the weight gradients the network issued on its side
 * stream (src/backend/cuda/branch.h), for an all-reduce of them. */
bp_status bp_cuda_ctx_branch_before(void *ctx, cudaStream_t other);
/* The network's stream waits for its side stream, before the host waits
 * for the network's stream. */
bp_status bp_cuda_ctx_join(void *ctx);

#endif
