/* cuda_util.h — CUDA and cuBLAS return codes as statuses (internal). */
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
 * driver; another status for other failures. */
bp_status bp_cuda_count_devices(int *count);

#endif
