/* absent.c — the device query when the CUDA backend is not built. */
#include "api/error.h"

bp_status bp_cuda_device_count(int *count)
{
    BP_CHECK_PTR("bp_cuda_device_count", count);
    *count = 0;
    return bp_fail(BP_ERR_NOT_BUILT, "the CUDA backend is not built into this library");
}

bp_status bp_cuda_device_info_sized(int ordinal, bp_device_info *out, size_t size)
{
    (void)size;
    BP_CHECK_PTR("bp_cuda_device_info", out);
    return bp_fail(BP_ERR_NOT_BUILT,
                   "bp_cuda_device_info(%d): the CUDA backend is not built into this library",
                   ordinal);
}
