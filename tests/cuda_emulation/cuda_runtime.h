// cuda_runtime.h — a CPU stand-in for the few CUDA names that
// kernels/elementwise.cu uses, so that its kernels and launch wrappers
// compile as plain C++ and run on any machine (tests/test_kernels_emulated.cpp).
//
// A launch runs every block of the grid in turn. In kernels that call
// __syncthreads() the threads of a block are real threads that share the
// block's __shared__ arrays (function statics) and meet at the barrier;
// other kernels run their threads one after another. This checks the kernels' index arithmetic,
// grid-stride loops, reductions and barriers against the CPU backend; it
// says nothing about the GPU's speed, memory model or launch limits. The
// source is rewritten at configure time (tests/cuda.cmake) so that
// `k<<<grid, block, 0, stream>>>(args)` becomes
// `bp_emu_launch(stream, k, grid, block, args)`.
#pragma once

#include <algorithm>
#include <condition_variable>
#include <cstddef>
#include <cstdint>
#include <mutex>
#include <stdexcept>
#include <thread>
#include <vector>

#define __global__
#define __device__
#define __host__
#define __forceinline__ inline
#define __shared__ static

typedef int cudaError_t;
enum { cudaSuccess = 0 };
typedef struct bp_emu_stream *cudaStream_t;

struct dim3 {
    unsigned x, y, z;
    dim3(unsigned x_ = 1, unsigned y_ = 1, unsigned z_ = 1) : x(x_), y(y_), z(z_) {}
};

inline thread_local dim3 threadIdx;
inline thread_local dim3 blockIdx;
inline dim3 blockDim;
inline dim3 gridDim;

// A reusable barrier for the threads of one block.
class bp_emu_barrier {
public:
    explicit bp_emu_barrier(unsigned n) : n_(n) {}
    void wait()
    {
        std::unique_lock<std::mutex> lock(m_);
        unsigned gen = generation_;
        if (++arrived_ == n_) {
            arrived_ = 0;
            generation_++;
            cv_.notify_all();
        } else {
            cv_.wait(lock, [&] { return gen != generation_; });
        }
    }

private:
    std::mutex m_;
    std::condition_variable cv_;
    unsigned n_, arrived_ = 0, generation_ = 0;
};

inline bp_emu_barrier *bp_emu_current_barrier = nullptr;
inline thread_local bool bp_emu_sequential = false;

// The kernels that call __syncthreads(), registered by the test: their
// launches run each block's threads as real threads. Every other launch runs
// its threads one after another on the calling thread (quick), and a
// __syncthreads() there is reported as an error instead of being ignored.
inline std::vector<const void *> &bp_emu_barrier_kernels()
{
    static std::vector<const void *> kernels;
    return kernels;
}

template <typename Kernel> void bp_emu_register_barrier_kernel(Kernel kernel)
{
    bp_emu_barrier_kernels().push_back(reinterpret_cast<const void *>(kernel));
}

inline void __syncthreads()
{
    if (bp_emu_sequential)
        throw std::logic_error("a kernel called __syncthreads() but is not registered with "
                               "bp_emu_register_barrier_kernel (tests/cuda_emulation)");
    bp_emu_current_barrier->wait();
}

inline cudaError_t cudaGetLastError() { return cudaSuccess; }

// Runs kernel over the grid, blocks one after another. A barrier kernel's
// block runs as block.x * block.y * block.z threads that all finish the
// block before any starts the next, so the __shared__ statics are the
// block's own.
template <typename Kernel, typename... Args>
void bp_emu_launch(cudaStream_t /* in order, on the calling thread */, Kernel kernel, dim3 grid,
                   dim3 block, Args... args)
{
    gridDim = grid;
    blockDim = block;
    const unsigned threads = block.x * block.y * block.z;
    const std::vector<const void *> &barrier_kernels = bp_emu_barrier_kernels();
    if (std::find(barrier_kernels.begin(), barrier_kernels.end(),
                  reinterpret_cast<const void *>(kernel)) == barrier_kernels.end()) {
        bp_emu_sequential = true;
        for (unsigned bz = 0; bz < grid.z; bz++)
            for (unsigned by = 0; by < grid.y; by++)
                for (unsigned bx = 0; bx < grid.x; bx++)
                    for (unsigned t = 0; t < threads; t++) {
                        blockIdx = dim3(bx, by, bz);
                        threadIdx = dim3(t % block.x, t / block.x % block.y, t / (block.x * block.y));
                        kernel(args...);
                    }
        bp_emu_sequential = false;
        return;
    }
    bp_emu_barrier barrier(threads);
    bp_emu_current_barrier = &barrier;
    std::vector<std::thread> pool;
    pool.reserve(threads);
    for (unsigned t = 0; t < threads; t++) {
        pool.emplace_back([&, t] {
            threadIdx = dim3(t % block.x, t / block.x % block.y, t / (block.x * block.y));
            for (unsigned bz = 0; bz < grid.z; bz++)
                for (unsigned by = 0; by < grid.y; by++)
                    for (unsigned bx = 0; bx < grid.x; bx++) {
                        blockIdx = dim3(bx, by, bz);
                        kernel(args...);
                        barrier.wait();
                    }
        });
    }
    for (std::thread &th : pool)
        th.join();
    bp_emu_current_barrier = nullptr;
}
