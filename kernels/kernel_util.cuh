/*
 * kernel_util.cuh — what every family of kernels shares: the block size,
 * 16-byte vectors, the launch geometry, the launch-error rule and the
 * fixed-order block sum. Included
 * once per .cu file (the emulation in tests/cuda.cmake concatenates the
 * files, hence the guard).
 */
#ifndef BP_KERNEL_UTIL_CUH
#define BP_KERNEL_UTIL_CUH

#include "bp_math.h"
#include "launch.h"

/* The work of a launch, declared by its launcher just before it for the
 * cost model (bench/step_profile --model; bench/README.md): a name, the
 * bytes the kernel reads and writes in device memory, its floating-point
 * operations, and the bytes one block reads after all the others have
 * finished (a last block's tail; 0 for none). The emulated runtime
 * (tests/cuda_emulation/cuda_runtime.h) logs it with the launch; nvcc's
 * build ignores it. */
#ifdef BP_EMU_RUNTIME
#define BP_DECLARE_WORK(name, bytes, flops, tail_bytes) \
    bp_emu_declare_work(name, (double)(bytes), (double)(flops), (double)(tail_bytes))
#else /* a few host multiplications, for nothing */
inline void bp_declare_no_work(const char *, double, double, double) {}
#define BP_DECLARE_WORK(name, bytes, flops, tail_bytes) \
    bp_declare_no_work(name, (double)(bytes), (double)(flops), (double)(tail_bytes))
#endif

namespace {

const int kThreads = 256;

/* 16 bytes of reals, loaded and stored as one (a 128-bit access on the GPU)
 * where the data are 16-byte aligned. */
template <typename T> struct alignas(16) Vec16 {
    T v[16 / sizeof(T)];
};

typedef Vec16<uint32_t> Words16;

template <typename T> bool aligned16(const void *p) { return ((uintptr_t)p & 15u) == 0; }

/* The runtime's last-error state may still hold the error of an earlier,
 * already reported call (a failed cudaMalloc, say): clear it before a
 * launch, so that the cudaGetLastError() after the launch reports that
 * launch only. Sticky errors (a kernel fault) persist and are reported. */
inline void clear_stale_error() { (void)cudaGetLastError(); }

/* Blocks for a grid-stride loop over count elements (capped: the loops
 * cover the rest). */
inline unsigned blocks_for(size_t count)
{
    size_t b = (count + kThreads - 1) / kThreads;
    if (b < 1)
        b = 1;
    return b > 65535u * 16u ? 65535u * 16u : (unsigned)b;
}

/* A grid of rows (y, at most 65535, the loops cover the rest) by columns
 * (x) for [rows, cols] work. */
inline dim3 grid_for_rows(size_t cols, int rows)
{
    size_t bx = (cols + kThreads - 1) / kThreads;
    bx = bx < 1 ? 1 : bx > 4096 ? 4096 : bx;
    unsigned by = rows < 1 ? 1u : rows > 65535 ? 65535u : (unsigned)rows;
    return dim3((unsigned)bx, by, 1);
}

/* The sum of every thread's s over a one-dimensional block (blockDim.x a
 * power of two), by a fixed tree in the shared array sum (blockDim.x
 * doubles): the same bits on every run, and in every block given the same
 * values. Every thread of the block must call it; each gets the total. */
__device__ inline double block_tree_sum(double *sum, double s)
{
    sum[threadIdx.x] = s;
    __syncthreads();
    for (int half = blockDim.x / 2; half > 0; half /= 2) {
        if ((int)threadIdx.x < half)
            sum[threadIdx.x] += sum[threadIdx.x + half];
        __syncthreads();
    }
    return sum[0];
}

} // namespace

#endif
