/* emu_hooks.h — what the emulated GPU (fake_cuda.cpp) offers beyond the CUDA
 * API: counters of the runtime and cuBLAS calls a program makes (for
 * bench/step_profile and the tests that assert them), and a way to make a
 * kernel fault, so that the sticky-error path can be tested. Usable from C.
 * Only the emulated-GPU build defines these. */
#ifndef BP_EMU_HOOKS_H
#define BP_EMU_HOOKS_H

#ifdef __cplusplus
extern "C" {
#endif

typedef struct bp_emu_counters {
    long long kernel_launches; /* kernels enqueued directly (not into a capture) */
    long long blas_calls;      /* cuBLAS / cuBLASLt products enqueued directly */
    long long graph_launches;  /* cudaGraphLaunch */
    long long host_syncs;      /* stream/device/event synchronise, blocking copies, cudaFree */
    long long allocations;     /* cudaMalloc, cudaHostAlloc */
    long long h2d_copies;      /* host-to-device copies enqueued directly */
    long long d2h_copies;      /* device-to-host copies */
    long long runtime_calls;   /* every CUDA runtime call, kernel launches included */
    long long captured_work;   /* kernels, products and copies recorded into graphs */
} bp_emu_counters;

void bp_emu_counters_get(bp_emu_counters *out);
void bp_emu_counters_reset(void);

/* Enqueues on stream a kernel that faults (an illegal address): when it
 * runs, the context gets the sticky error cudaErrorIllegalAddress, which
 * every later runtime call returns until bp_emu_clear_sticky_error (the
 * emulation's stand-in for a new process). Returns a cudaError_t. */
int bp_emu_inject_fault(void *stream);
void bp_emu_clear_sticky_error(void);

#ifdef __cplusplus
}
#endif

#endif
