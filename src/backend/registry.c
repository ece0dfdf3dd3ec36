/* registry.c — which backends this library was built with. */
#include "backend/backend.h"
#include "api/error.h"

bp_status bp_backend_lookup(bp_backend backend, const bp_backend_ops **out)
{
    switch (backend) {
    case BP_BACKEND_CPU: *out = &bp_cpu_backend_ops; return BP_OK;
    case BP_BACKEND_CUDA:
#ifdef BP_HAVE_CUDA
        *out = &bp_cuda_backend_ops;
        return BP_OK;
#else
        return bp_fail(BP_ERR_NOT_BUILT,
                       "the CUDA backend is not built into this library (configure with "
                       "the CUDA toolkit present and -DBP_CUDA=ON)");
#endif
    }
    return bp_fail(BP_ERR_INVALID_ARGUMENT, "unknown backend %d", (int)backend);
}

bp_status bp_backend_is_built(bp_backend backend, int *built)
{
    BP_CHECK_PTR("bp_backend_is_built", built);
    switch (backend) {
    case BP_BACKEND_CPU: *built = 1; return BP_OK;
    case BP_BACKEND_CUDA:
#ifdef BP_HAVE_CUDA
        *built = 1;
#else
        *built = 0;
#endif
        return BP_OK;
    }
    return bp_fail(BP_ERR_INVALID_ARGUMENT, "bp_backend_is_built: unknown backend %d", (int)backend);
}
