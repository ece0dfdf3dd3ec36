/*
 * cupti_counters.c — bp_emu_counters_get on the real CUDA runtime, counted
 * with the CUPTI callback API, so that bench/step_profile.c (written
 * against the emulated GPU's counters, tests/cuda_emulation/emu_hooks.h)
 * runs unchanged on a GPU as step_profile_gpu (bench/README.md).
 *
 * What each counter counts here (on API entry):
 *   kernel_launches  driver-level kernel launches (cuLaunchKernel and its
 *                    variants: every kernel, the library's and cuBLAS's)
 *                    whose kernel name does not look like cuBLAS's
 *   blas_calls       the same for kernels named like cuBLAS's and cuBLASLt's
 *                    (blas_kernel: GEMMs, nvjet_*, split-K reductions,
 *                    epilogues): more than one per GEMM at times
 *   graph_launches   cudaGraphLaunch
 *   host_syncs       cuda*Synchronize, cudaMemcpy (blocking), cudaFree,
 *                    cudaFreeHost
 *   allocations      cudaMalloc*, cudaHostAlloc
 *   h2d_copies, d2h_copies   cudaMemcpy / cudaMemcpyAsync by their kind
 *   runtime_calls    every CUDA runtime API call
 * Kernels replayed inside a graph launch are not launched through the API
 * and are not counted (as the emulation counts only direct launches).
 * A program's counters need one place: a file-scope struct (this is a
 * benchmark program, not the library).
 */
#include <cupti.h>
#include <stdio.h>
#include <string.h>

#include "../tests/cuda_emulation/emu_hooks.h"

static bp_emu_counters counts;
static int subscribed;
static CUpti_SubscriberHandle subscriber;

static int starts_with(const char *s, const char *prefix)
{
    return s != NULL && strncmp(s, prefix, strlen(prefix)) == 0;
}

/* Names of cuBLAS's and cuBLASLt's kernels: GEMMs (gemm, Gemm, cutlass,
 * xmma, sm90_/sm80_ kernels, Hopper's nvjet_* ones), gemv, their split-K
 * reductions (splitKreduce_kernel) and cuBLASLt's epilogue kernels (in the
 * cublasLt namespace). */
static int blas_kernel(const char *name)
{
    static const char *const parts[] = {"gemm", "Gemm",   "cutlass", "xmma",  "cublas", "nvjet",
                                        "gemv", "splitK", "splitk",  "sm90_", "sm80_"};
    for (size_t i = 0; name != NULL && i < sizeof parts / sizeof parts[0]; i++)
        if (strstr(name, parts[i]) != NULL)
            return 1;
    return 0;
}

static void copy_kind(enum cudaMemcpyKind kind)
{
    if (kind == cudaMemcpyHostToDevice)
        counts.h2d_copies++;
    else if (kind == cudaMemcpyDeviceToHost)
        counts.d2h_copies++;
}

static void CUPTIAPI on_api(void *user, CUpti_CallbackDomain domain, CUpti_CallbackId cbid,
                            const void *data)
{
    (void)user;
    const CUpti_CallbackData *cb = data;
    if (cb->callbackSite != CUPTI_API_ENTER)
        return;
    const char *fn = cb->functionName;
    if (domain == CUPTI_CB_DOMAIN_DRIVER_API) {
        if (starts_with(fn, "cuLaunch") && strstr(fn, "HostFunc") == NULL) {
            if (blas_kernel(cb->symbolName))
                counts.blas_calls++;
            else
                counts.kernel_launches++;
        }
        return;
    }
    if (domain != CUPTI_CB_DOMAIN_RUNTIME_API)
        return;
    counts.runtime_calls++;
    if (starts_with(fn, "cudaGraphLaunch"))
        counts.graph_launches++;
    else if (strstr(fn, "Synchronize") != NULL || strcmp(fn, "cudaFree") == 0 ||
             strcmp(fn, "cudaFreeHost") == 0)
        counts.host_syncs++;
    else if (starts_with(fn, "cudaMalloc") || strcmp(fn, "cudaHostAlloc") == 0)
        counts.allocations++;
    switch (cbid) {
    case CUPTI_RUNTIME_TRACE_CBID_cudaMemcpy_v3020:
        counts.host_syncs++;
        copy_kind(((const cudaMemcpy_v3020_params *)cb->functionParams)->kind);
        break;
    case CUPTI_RUNTIME_TRACE_CBID_cudaMemcpy_ptds_v7000:
        counts.host_syncs++;
        copy_kind(((const cudaMemcpy_ptds_v7000_params *)cb->functionParams)->kind);
        break;
    case CUPTI_RUNTIME_TRACE_CBID_cudaMemcpyAsync_v3020:
        copy_kind(((const cudaMemcpyAsync_v3020_params *)cb->functionParams)->kind);
        break;
    case CUPTI_RUNTIME_TRACE_CBID_cudaMemcpyAsync_ptsz_v7000:
        copy_kind(((const cudaMemcpyAsync_ptsz_v7000_params *)cb->functionParams)->kind);
        break;
    default: break;
    }
}

/* Subscribes on the first call: counts are read as differences. */
static void subscribe(void)
{
    if (subscribed)
        return;
    subscribed = 1;
    CUptiResult r = cuptiSubscribe(&subscriber, (CUpti_CallbackFunc)on_api, NULL);
    if (r == CUPTI_SUCCESS)
        r = cuptiEnableDomain(1, subscriber, CUPTI_CB_DOMAIN_RUNTIME_API);
    if (r == CUPTI_SUCCESS)
        r = cuptiEnableDomain(1, subscriber, CUPTI_CB_DOMAIN_DRIVER_API);
    if (r != CUPTI_SUCCESS) {
        const char *why = NULL;
        cuptiGetResultString(r, &why);
        fprintf(stderr, "step_profile_gpu: CUPTI: %s (the counts below are 0)\n",
                why ? why : "error");
    }
}

void bp_emu_counters_get(bp_emu_counters *out)
{
    subscribe();
    *out = counts;
}

void bp_emu_counters_reset(void)
{
    subscribe();
    memset(&counts, 0, sizeof counts);
}

/* Not available on the real runtime. */
int bp_emu_inject_fault(void *stream)
{
    (void)stream;
    return 1; /* cudaErrorInvalidValue */
}

void bp_emu_clear_sticky_error(void) {}
