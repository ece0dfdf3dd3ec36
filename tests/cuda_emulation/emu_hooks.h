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
    long long pinned_bytes;    /* pinned host memory alive now (not a count of calls) */
    /* Races: work on one stream that touched memory another stream's
     * earlier work wrote (or wrote memory it touched) with no event, host
     * wait or stream order between them. Products and copies touch their
     * whole operands, kernels the first element of each pointer argument
     * (written when the pointer is not to const); a replayed graph is
     * checked when it is captured. The first few are described on stderr. */
    long long races;
} bp_emu_counters;

void bp_emu_counters_get(bp_emu_counters *out);
void bp_emu_counters_reset(void);

/* Enqueues on stream a kernel that faults (an illegal address): when it
 * runs, the context gets the sticky error cudaErrorIllegalAddress, which
 * every later runtime call returns until bp_emu_clear_sticky_error (the
 * emulation's stand-in for a new process). Returns a cudaError_t. */
int bp_emu_inject_fault(void *stream);
void bp_emu_clear_sticky_error(void);

/* ---- the work log, for the cost model (bench/step_profile --model) ----
 * While a log is open, every piece of work the device runs is appended in
 * the order it runs (eagerly or in a replayed graph): each kernel launch
 * with its grid, its block and the work its launcher declared (kernels/
 * kernel_util.cuh: BP_DECLARE_WORK), each cuBLAS / cuBLASLt product with its
 * shape and math, each copy and memset with its bytes. */
enum { BP_EMU_WORK_KERNEL = 1, BP_EMU_WORK_GEMM = 2, BP_EMU_WORK_COPY = 3 };
enum { BP_EMU_MAX_DEPS = 8 };
enum { BP_EMU_MATH_FP32 = 0, BP_EMU_MATH_TF32 = 1, BP_EMU_MATH_BF16 = 2, BP_EMU_MATH_FP64 = 3 };
typedef struct bp_emu_work {
    int kind;
    char name[56];     /* the launcher's declared name; the BLAS call (and epilogue) */
    unsigned blocks;   /* kernels: blocks in the grid */
    unsigned threads;  /* kernels: threads per block */
    double bytes;      /* device memory read + written (kernels: as declared) */
    double flops;      /* floating-point operations (GEMMs: 2 m n k) */
    double tail_bytes; /* kernels: bytes one block reads after all others finished */
    int m, n, k, math; /* products: the shape, BP_EMU_MATH_* */
    int declared;      /* kernels: 1 when the launcher declared its work */
    /* Its place in the device's dependency graph: every piece of work is a
     * node (numbered in the order it was issued; a replayed graph's nodes
     * anew at each launch); deps are the nodes it waits for, by stream order
     * and by events (cudaStreamWaitEvent), as recorded by the stream or the
     * capture that issued it. deps_count -1: more than fit in deps (after
     * every earlier node). */
    long long node;
    int deps_count;
    long long deps[BP_EMU_MAX_DEPS];
} bp_emu_work;

/* Record-only: from now on the device runs nothing; work is only counted
 * and logged (memory is reserved but not filled, copies and kernels do not
 * move data), so that the shape of a step far too large to execute here is
 * seen in seconds. 0 runs work again (what the memory then holds is
 * undefined). */
void bp_emu_set_record_only(int on);
/* Runs (or records) what the streams hold, then opens a new, empty log
 * (closing the last one). */
void bp_emu_work_log_open(void);
/* Runs (or records) what the streams hold, closes the log, copies at most
 * max entries into out (out may be NULL) and returns how many were logged. */
size_t bp_emu_work_log_close(bp_emu_work *out, size_t max);

#ifdef __cplusplus
}
#endif

#endif
