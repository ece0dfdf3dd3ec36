// cuda_runtime.h — a CPU stand-in for the few CUDA names that
// the kernels of kernels/*.cu use, so that its kernels and launch wrappers
// compile as plain C++ and run on any machine (tests/test_kernels_emulated.cpp).
//
// A launch runs every block of the grid in turn. In kernels that call
// __syncthreads() the threads of a block run together (real threads, or
// fibers with BP_EMU_FIBERS) sharing the block's __shared__ arrays
// (function statics) and meeting at the barrier; other kernels run their
// threads one after another. This checks the kernels' index arithmetic,
// grid-stride loops, reductions and barriers against the CPU backend, and
// each launch's configuration against the GPU's limits (block size, grid
// size, dynamic shared memory: cudaErrorInvalidConfiguration, as CUDA); it
// says nothing about the GPU's speed or memory model. The source is
// rewritten at configure time (tests/cuda.cmake) so that
// `k<<<grid, block, shared_bytes, stream>>>(args)` becomes
// `bp_emu_launch(stream, k, grid, block, shared_bytes, args)`.
#pragma once

#include <algorithm>
#include <condition_variable>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <stdexcept>
#include <thread>
#include <vector>

#ifdef BP_EMU_FIBERS
#include <ucontext.h>
#endif

#define __global__
#define __device__
#define __host__
#define __forceinline__ inline
#define __shared__ static

typedef int cudaError_t;
enum { cudaSuccess = 0, cudaErrorInvalidConfiguration = 9 }; // CUDA's values
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
inline thread_local cudaError_t bp_emu_last_error = cudaSuccess;

// Where launches go. The emulated GPU of tests/cuda.cmake (fake_cuda.cpp)
// defines it: the launch joins the stream's queue and runs when the stream
// is waited for, and a stream of another device than the current one is an
// error (returned). Without it (the kernel test alone) launches run at once.
// The queued launch may run more than once (a replayed CUDA graph); release
// frees arg when the last reference to it goes.
extern "C" int bp_emu_enqueue(void *stream, void (*run)(void *), void (*release)(void *), void *arg)
    __attribute__((weak));

// The kernels that call __syncthreads(), registered by the test: their
// launches run each block's threads together (fibers in the emulated-GPU
// build, real threads otherwise). Every other launch runs its threads one
// after another, and a __syncthreads() there is an error, not ignored.
inline std::vector<const void *> &bp_emu_barrier_kernels()
{
    static std::vector<const void *> kernels;
    return kernels;
}

template <typename Kernel> void bp_emu_register_barrier_kernel(Kernel kernel)
{
    bp_emu_barrier_kernels().push_back(reinterpret_cast<const void *>(kernel));
}

#ifdef BP_EMU_FIBERS
// The threads of a block as fibers on the calling thread: each runs until
// its next __syncthreads() or its end, in turn, so every thread reaches a
// barrier before any passes it.
struct bp_emu_fibers {
    ucontext_t scheduler;
    std::vector<ucontext_t> threads;
    std::vector<std::unique_ptr<char[]>> stacks;
    std::vector<char> done;
    unsigned current = 0;
    std::function<void()> body;
    static constexpr size_t kStack = 128 * 1024;
};
inline thread_local bp_emu_fibers *bp_emu_fiber_state = nullptr;

inline void bp_emu_fiber_entry()
{
    bp_emu_fibers *f = bp_emu_fiber_state;
    f->body();
    f->done[f->current] = 1; // then uc_link returns to the scheduler
}
#endif

inline void __syncthreads()
{
    if (bp_emu_sequential)
        throw std::logic_error("a kernel called __syncthreads() but is not registered with "
                               "bp_emu_register_barrier_kernel (tests/cuda_emulation)");
#ifdef BP_EMU_FIBERS
    bp_emu_fibers *f = bp_emu_fiber_state;
    swapcontext(&f->threads[f->current], &f->scheduler);
#else
    bp_emu_current_barrier->wait();
#endif
}

inline cudaError_t cudaGetLastError()
{
    cudaError_t e = bp_emu_last_error;
    bp_emu_last_error = cudaSuccess;
    return e;
}

inline dim3 bp_emu_thread_index(unsigned t, dim3 block)
{
    return dim3(t % block.x, t / block.x % block.y, t / (block.x * block.y));
}

// Runs kernel over the grid, blocks one after another.
template <typename Kernel, typename... Args>
void bp_emu_run(Kernel kernel, dim3 grid, dim3 block, Args... args)
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
                        threadIdx = bp_emu_thread_index(t, block);
                        kernel(args...);
                    }
        bp_emu_sequential = false;
        return;
    }
#ifdef BP_EMU_FIBERS
    static thread_local bp_emu_fibers f;
    bp_emu_fiber_state = &f;
    f.threads.resize(threads);
    f.done.assign(threads, 0);
    while (f.stacks.size() < threads)
        f.stacks.emplace_back(new char[bp_emu_fibers::kStack]);
    f.body = [&] { kernel(args...); };
    for (unsigned bz = 0; bz < grid.z; bz++)
        for (unsigned by = 0; by < grid.y; by++)
            for (unsigned bx = 0; bx < grid.x; bx++) {
                blockIdx = dim3(bx, by, bz);
                for (unsigned t = 0; t < threads; t++) {
                    getcontext(&f.threads[t]);
                    f.threads[t].uc_stack.ss_sp = f.stacks[t].get();
                    f.threads[t].uc_stack.ss_size = bp_emu_fibers::kStack;
                    f.threads[t].uc_link = &f.scheduler;
                    makecontext(&f.threads[t], bp_emu_fiber_entry, 0);
                    f.done[t] = 0;
                }
                for (bool running = true; running;) {
                    running = false;
                    for (unsigned t = 0; t < threads; t++) {
                        if (f.done[t])
                            continue;
                        f.current = t;
                        threadIdx = bp_emu_thread_index(t, block);
                        swapcontext(&f.scheduler, &f.threads[t]);
                        running |= !f.done[t];
                    }
                }
            }
    bp_emu_fiber_state = nullptr;
#else
    bp_emu_barrier barrier(threads);
    bp_emu_current_barrier = &barrier;
    std::vector<std::thread> pool;
    pool.reserve(threads);
    for (unsigned t = 0; t < threads; t++) {
        pool.emplace_back([&, t] {
            threadIdx = bp_emu_thread_index(t, block);
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
#endif
}

// The launch limits of every GPU since compute capability 3.0: at most
// 1024 threads a block (x, y <= 1024, z <= 64), grid x < 2^31, y and z
// <= 65535, none zero; 48 KiB of dynamic shared memory without opting in
// (the kernels here do not opt in).
inline bool bp_emu_launch_config_ok(dim3 grid, dim3 block, size_t shared_bytes)
{
    unsigned long long threads = (unsigned long long)block.x * block.y * block.z;
    return grid.x >= 1 && grid.y >= 1 && grid.z >= 1 && block.x >= 1 && block.y >= 1 &&
           block.z >= 1 && threads <= 1024 && block.x <= 1024 && block.y <= 1024 && block.z <= 64 &&
           grid.x <= 2147483647u && grid.y <= 65535 && grid.z <= 65535 && shared_bytes <= 48 * 1024;
}

// A launch: k<<<grid, block, shared_bytes, stream>>>(args) after the rewrite.
template <typename Kernel, typename... Args>
void bp_emu_launch(cudaStream_t stream, Kernel kernel, dim3 grid, dim3 block, size_t shared_bytes,
                   Args... args)
{
    if (!bp_emu_launch_config_ok(grid, block, shared_bytes)) {
        bp_emu_last_error = cudaErrorInvalidConfiguration;
        return;
    }
    if (bp_emu_enqueue == nullptr) {
        bp_emu_run(kernel, grid, block, args...);
        return;
    }
    using Job = std::function<void()>;
    Job *job = new Job([=] { bp_emu_run(kernel, grid, block, args...); });
    int err = bp_emu_enqueue(
        stream, [](void *p) { (*static_cast<Job *>(p))(); },
        [](void *p) { delete static_cast<Job *>(p); }, job);
    if (err != 0) {
        delete job;
        bp_emu_last_error = err;
    }
}
