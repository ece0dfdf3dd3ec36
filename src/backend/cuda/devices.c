/* devices.c — CUDA error statuses and the device query. */
#include <stdio.h>
#include <string.h>

#include "backend/cuda/status.h"
#include "api/error.h"
#include "api/struct_size.h"

bp_status bp_cuda_status(cudaError_t err, const char *call)
{
    if (err == cudaSuccess)
        return BP_OK;
    bp_status st = err == cudaErrorMemoryAllocation ? BP_ERR_OUT_OF_MEMORY : BP_ERR_CUDA;
    return bp_fail(st, "%s failed: %s (%s, code %d)", call, cudaGetErrorString(err),
                   cudaGetErrorName(err), (int)err);
}

bp_status bp_cublas_status(cublasStatus_t err, const char *call)
{
    if (err == CUBLAS_STATUS_SUCCESS)
        return BP_OK;
    /* A product that failed to execute because an earlier kernel faulted
     * (the context's sticky error, whichever stream ran it): the CUDA
     * error is the one to report. */
    if (err == CUBLAS_STATUS_EXECUTION_FAILED) {
        cudaError_t why = cudaGetLastError();
        if (why != cudaSuccess)
            return bp_cuda_status(why, call);
    }
    bp_status st = err == CUBLAS_STATUS_ALLOC_FAILED ? BP_ERR_OUT_OF_MEMORY : BP_ERR_CUBLAS;
    return bp_fail(st, "%s failed: %s (%s, code %d)", call, cublasGetStatusString(err),
                   cublasGetStatusName(err), (int)err);
}

bp_status bp_cuda_count_devices(int *count, cudaError_t *why)
{
    int n = 0;
    cudaError_t err = cudaGetDeviceCount(&n);
    if (why != NULL)
        *why = err;
    if (err == cudaSuccess) {
        *count = n;
        return BP_OK;
    }
    /* No device, no driver, or a driver that cannot start: no GPU here. */
    *count = 0;
    (void)cudaGetLastError(); /* clear it, so later calls do not report it again */
    if (err == cudaErrorNoDevice || err == cudaErrorInsufficientDriver ||
        err == cudaErrorInitializationError || err == cudaErrorNotSupported ||
        err == cudaErrorSystemNotReady || err == cudaErrorSystemDriverMismatch ||
        err == cudaErrorCompatNotSupportedOnDevice || err == cudaErrorUnknown ||
        err == cudaErrorDevicesUnavailable || err == cudaErrorStubLibrary)
        return BP_OK;
    return bp_cuda_status(err, "cudaGetDeviceCount");
}

/* What the user can do about the reason cudaGetDeviceCount gave. */
static const char *no_device_advice(cudaError_t why)
{
    switch (why) {
    case cudaSuccess:
        return "the NVIDIA driver sees no GPU (check nvidia-smi, and that CUDA_VISIBLE_DEVICES "
               "does not hide them)";
    case cudaErrorNoDevice:
        return "no NVIDIA GPU is visible to this process (check nvidia-smi, and that "
               "CUDA_VISIBLE_DEVICES does not hide them)";
    case cudaErrorInsufficientDriver:
        return "the NVIDIA driver is missing or older than this CUDA version needs (install or "
               "update the driver; nvidia-smi shows its version and the CUDA version it "
               "supports)";
    case cudaErrorStubLibrary:
        return "only the CUDA toolkit's stub of the driver library was found, not the driver "
               "(install the NVIDIA driver, or take the stubs directory out of "
               "LD_LIBRARY_PATH)";
    case cudaErrorSystemDriverMismatch:
        return "the NVIDIA driver's library and kernel module are of different versions "
               "(reboot after a driver update, or reinstall the driver)";
    case cudaErrorCompatNotSupportedOnDevice:
        return "the CUDA forward-compatibility package does not support this GPU (use a driver "
               "that supports this CUDA version natively)";
    case cudaErrorDevicesUnavailable:
        return "every GPU is busy in exclusive-process mode or unavailable (nvidia-smi shows "
               "which processes hold them)";
    case cudaErrorSystemNotReady:
        return "the GPU system is not ready (on NVSwitch machines, start nvidia-fabricmanager)";
    default:
        return "the NVIDIA driver could not be started (check that nvidia-smi works and that "
               "the nvidia kernel module is loaded)";
    }
}

bp_status bp_cuda_no_device(const char *who, cudaError_t why)
{
    if (why == cudaSuccess)
        return bp_fail(BP_ERR_NO_DEVICE, "%s: no CUDA device: %s", who, no_device_advice(why));
    return bp_fail(BP_ERR_NO_DEVICE,
                   "%s: no CUDA device: %s; cudaGetDeviceCount gave %s (%s); this program uses "
                   "CUDA %d.%d",
                   who, no_device_advice(why), cudaGetErrorName(why), cudaGetErrorString(why),
                   CUDART_VERSION / 1000, CUDART_VERSION % 1000 / 10);
}

bp_status bp_cuda_device_count(int *count)
{
    BP_CHECK_PTR("bp_cuda_device_count", count);
    return bp_cuda_count_devices(count, NULL);
}

bp_status bp_cuda_device_info_sized(int ordinal, bp_device_info *caller, size_t size)
{
    BP_CHECK_PTR("bp_cuda_device_info", caller);
    int n = 0;
    cudaError_t why = cudaSuccess;
    BP_TRY(bp_cuda_count_devices(&n, &why));
    if (n == 0)
        return bp_cuda_no_device("bp_cuda_device_info", why);
    if (ordinal < 0 || ordinal >= n)
        return bp_fail(BP_ERR_INVALID_ARGUMENT,
                       "bp_cuda_device_info: device %d is out of range (0..%d)", ordinal, n - 1);
    struct cudaDeviceProp prop;
    BP_TRY(BP_CUDA_CHECK(cudaGetDeviceProperties(&prop, ordinal)));
    bp_device_info info, *out = &info; /* filled, then the caller's fields of it */
    memset(out, 0, sizeof *out);
    out->ordinal = ordinal;
    snprintf(out->name, sizeof out->name, "%s", prop.name);
    out->total_memory = prop.totalGlobalMem;
    out->cc_major = prop.major;
    out->cc_minor = prop.minor;
    out->multiprocessors = prop.multiProcessorCount;
    int previous = 0;
    size_t free_bytes = 0, total = 0;
    if (cudaGetDevice(&previous) == cudaSuccess && cudaSetDevice(ordinal) == cudaSuccess &&
        cudaMemGetInfo(&free_bytes, &total) == cudaSuccess)
        out->free_memory = free_bytes;
    cudaSetDevice(previous);
    return bp_struct_fill("bp_cuda_device_info", caller, size, &info, sizeof info);
}
