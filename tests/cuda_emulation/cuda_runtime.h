// cuda_runtime.h — a CPU stand-in for the few CUDA names that
// the kernels of kernels/*.cu use, so that its kernels and launch wrappers
// compile as plain C++ and run on any machine (tests/test_kernels_emulated.cpp).
//
// A launch runs every block of the grid in turn. In kernels that call
// __syncthreads() or the warp shuffles (__shfl_sync, __shfl_xor_sync,
// __shfl_down_sync) the threads of a block run together (real threads, or
// fibers with BP_EMU_FIBERS) sharing the block's __shared__ arrays
// (function statics), meeting at the barrier and, warp by warp (32 lanes),
// at the shuffles; other kernels run their threads one after another. A
// misused barrier or shuffle (a lane named in a shuffle's mask that exited
// or diverged) throws std::logic_error out of the launch. This checks the
// kernels' index arithmetic, grid-stride loops, reductions, barriers and
// shuffles against the CPU backend, and
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
#include <cstdio>
#include <cstring>
#include <exception>
#include <functional>
#include <memory>
#include <mutex>
#include <stdexcept>
#include <string>
#include <thread>
#include <type_traits>
#include <vector>

#include <ucontext.h>

// Kernels built against this stand-in may say so (kernels/kernel_util.cuh's
// BP_DECLARE_WORK).
#define BP_EMU_RUNTIME 1

#define __global__
#define __device__
#define __host__
#define __forceinline__ inline
#define __shared__ static

typedef int cudaError_t;
enum {
    cudaSuccess = 0,
    cudaErrorInvalidValue = 1,
    cudaErrorInvalidConfiguration = 9
}; // CUDA's values
typedef struct bp_emu_stream *cudaStream_t;

struct dim3 {
    unsigned x, y, z;
    dim3(unsigned x_ = 1, unsigned y_ = 1, unsigned z_ = 1) : x(x_), y(y_), z(z_) {}
};

inline thread_local dim3 threadIdx;
inline thread_local dim3 blockIdx;
inline dim3 blockDim;
inline dim3 gridDim;

// Where launches go. The emulated GPU of tests/cuda.cmake (fake_cuda.cpp)
// defines it: the launch joins the stream's queue and runs when the stream
// is waited for, and a stream of another device than the current one is an
// error (returned). Without it (the kernel test alone) launches run at once.
// The queued launch may run more than once (a replayed CUDA graph); release
// frees arg when the last reference to it goes.
extern "C" int bp_emu_enqueue(void *stream, void (*run)(void *), void (*release)(void *), void *arg)
    __attribute__((weak));

// The kernels that call __syncthreads() or a warp shuffle, registered by
// the test: their launches run each block's threads together (fibers in
// the emulated-GPU build, real threads otherwise). Every other launch runs
// its threads one after another, and a __syncthreads() or a shuffle there
// is an error, not ignored.
inline std::vector<const void *> &bp_emu_barrier_kernels()
{
    static std::vector<const void *> kernels;
    return kernels;
}

template <typename Kernel> void bp_emu_register_barrier_kernel(Kernel kernel)
{
    bp_emu_barrier_kernels().push_back(reinterpret_cast<const void *>(kernel));
}

// The work the next launch of this thread declares (kernels/kernel_util.cuh:
// BP_DECLARE_WORK), handed to the emulated GPU's work log with the launch.
struct bp_emu_declared {
    const char *name;
    double bytes, flops, tail_bytes;
    bool set;
};
inline thread_local bp_emu_declared bp_emu_next_declared{};
inline void bp_emu_declare_work(const char *name, double bytes, double flops, double tail_bytes)
{
    bp_emu_next_declared = bp_emu_declared{name, bytes, flops, tail_bytes, true};
}
extern "C" void bp_emu_describe_launch(const char *name, unsigned blocks, unsigned threads,
                                       double bytes, double flops, double tail_bytes, int declared)
    __attribute__((weak));

// A kernel's pointer arguments, for the emulated runtime's race check
// (emu_hooks.h: races): the first element of each, written when it is not
// a pointer to const.
extern "C" void bp_emu_note_access(const void *p, int write) __attribute__((weak));
template <typename A> void bp_emu_note_arg(const A &) {}
template <typename T> void bp_emu_note_arg(T *const &p)
{
    if (bp_emu_note_access != nullptr)
        bp_emu_note_access(p, !std::is_const<T>::value);
}

inline thread_local bool bp_emu_sequential = false;
inline thread_local cudaError_t bp_emu_last_error = cudaSuccess;

// How the threads of a cooperative block (a kernel registered above) run:
// as fibers on the calling thread (the default of the emulated-GPU build,
// BP_EMU_FIBERS), or as real threads. A test may switch it to run the same
// kernels both ways.
#ifdef BP_EMU_FIBERS
inline bool bp_emu_use_fibers = true;
#else
inline bool bp_emu_use_fibers = false;
#endif

inline constexpr int warpSize = 32;

// The meeting points of one block's threads, shared by both ways of running
// them. A __syncthreads() is the block's barrier number bar_seq[t]: it opens
// when every thread that has not exited has arrived at it (exited threads
// count as arrived, as on the hardware). A warp shuffle is the thread's
// shuffle number shfl_seq[t]: it deposits its value in the slot of that
// number's parity and waits for every lane its mask names; the slots are
// double-buffered, since a lane deposits its next value only after every
// lane of its mask has deposited the current one. A lane named in a mask
// that has exited, or waits at a barrier the caller has not reached, or
// meets it with another mask, is an error (std::logic_error), as is reading
// a lane outside the mask or past the block's last thread. Lanes that meet
// must have executed the same number of shuffles since the block began
// (stricter than CUDA for kernels that mix masks; the kernels here use full
// masks).
struct bp_emu_block {
    enum { kRunning, kBarrier, kShuffle, kDone };
    unsigned threads = 0;
    std::vector<unsigned char> state;
    std::vector<unsigned> bar_seq, shfl_seq;
    std::vector<unsigned> mask[2];
    std::vector<uint64_t> value[2];
    unsigned done = 0;
    unsigned long long progress = 0; // arrivals, passages and exits (fibers' deadlock check)

    void reset(unsigned n)
    {
        threads = n;
        state.assign(n, kRunning);
        bar_seq.assign(n, 0);
        shfl_seq.assign(n, 0);
        for (int p = 0; p < 2; p++) {
            mask[p].assign(n, 0);
            value[p].assign(n, 0);
        }
        done = 0;
    }
    bool barrier_open(unsigned c) const
    {
        for (unsigned l = 0; l < threads; l++)
            if (state[l] != kDone && bar_seq[l] < c)
                return false;
        return true;
    }
    static std::logic_error error(unsigned t, const std::string &what)
    {
        return std::logic_error(
            "thread " + std::to_string(t) + " (warp " + std::to_string(t / warpSize) + ", lane " +
            std::to_string(t % warpSize) + "): " + what + " (tests/cuda_emulation/cuda_runtime.h)");
    }
    // Whether every lane of mask m has deposited thread t's shuffle number
    // k; throws where one never will.
    bool shuffle_ready(unsigned t, unsigned k, unsigned m) const
    {
        unsigned warp0 = t - t % warpSize;
        for (unsigned i = 0; i < (unsigned)warpSize; i++) {
            unsigned l = warp0 + i;
            if (!(m >> i & 1u) || l >= threads || l == t)
                continue; // lanes a partial last warp does not have are not threads
            if (shfl_seq[l] > k) {
                if (this->mask[k & 1][l] != m)
                    throw error(t, "a warp shuffle with mask " + hex(m) + " met lane " +
                                       std::to_string(i) + " shuffling with mask " +
                                       hex(this->mask[k & 1][l]));
                continue;
            }
            if (state[l] == kDone)
                throw error(t, "a warp shuffle with mask " + hex(m) + " names lane " +
                                   std::to_string(i) + ", which exited without shuffling");
            if (state[l] == kBarrier && !barrier_open(bar_seq[l]))
                throw error(t, "a warp shuffle with mask " + hex(m) + " names lane " +
                                   std::to_string(i) +
                                   ", which waits at __syncthreads() instead (divergence)");
            return false;
        }
        return true;
    }
    static std::string hex(unsigned m)
    {
        char s[16];
        std::snprintf(s, sizeof s, "0x%08x", m);
        return s;
    }
};

// The threads of a block as real threads, under one lock: a barrier waits
// on the block's condition, a shuffle on its warp's (so that a shuffle
// wakes its 32 lanes, not the block). An error in one thread aborts the
// others' waits; the launch then rethrows it.
struct bp_emu_thread_block {
    bp_emu_block b;
    std::mutex m;
    std::condition_variable cv, end_cv;
    std::unique_ptr<std::condition_variable[]> warp_cv;
    unsigned generation = 0;
    bool abort = false;
    std::exception_ptr error;
    explicit bp_emu_thread_block(unsigned threads)
        : warp_cv(new std::condition_variable[(threads + warpSize - 1) / warpSize])
    {
        b.reset(threads);
    }
    void notify_all()
    {
        cv.notify_all();
        end_cv.notify_all();
        for (unsigned w = 0; w < (b.threads + warpSize - 1) / warpSize; w++)
            warp_cv[w].notify_all();
    }
};
struct bp_emu_aborted {};
inline bp_emu_thread_block *bp_emu_current_block = nullptr;
inline thread_local unsigned bp_emu_tid = 0; // the thread's linear index in its block

// The threads of a block as fibers on the calling thread: each runs until
// it must wait (a barrier, a shuffle) or ends, in turn; a waiting fiber
// checks again when its turn comes. A full round in which no fiber gets on
// is a deadlock (an error).
struct bp_emu_fibers {
    ucontext_t scheduler;
    std::vector<ucontext_t> threads;
    std::vector<std::unique_ptr<char[]>> stacks;
    unsigned current = 0;
    std::function<void()> body;
    bp_emu_block b;
    std::exception_ptr error;
    static constexpr size_t kStack = 128 * 1024;
};
inline thread_local bp_emu_fibers *bp_emu_fiber_state = nullptr;

inline void bp_emu_fiber_entry()
{
    bp_emu_fibers *f = bp_emu_fiber_state;
    try {
        f->body();
    } catch (...) {
        if (!f->error)
            f->error = std::current_exception();
    }
    f->b.state[f->current] = bp_emu_block::kDone;
    f->b.done++;
    f->b.progress++; // then uc_link returns to the scheduler
}

// Runs update on the block's state, then waits until ready() (both under
// the block's lock in thread mode); shuffle: a warp's meeting, else the
// block's barrier.
template <typename Update, typename Ready>
void bp_emu_meet(bool shuffle, Update update, Ready ready)
{
    if (bp_emu_sequential)
        throw std::logic_error("a kernel called __syncthreads() or a warp shuffle but is not "
                               "registered with bp_emu_register_barrier_kernel "
                               "(tests/cuda_emulation)");
    if (bp_emu_fiber_state != nullptr) {
        bp_emu_fibers *f = bp_emu_fiber_state;
        update(f->b);
        f->b.progress++;
        while (!ready(f->b))
            swapcontext(&f->threads[f->current], &f->scheduler);
        f->b.progress++;
        return;
    }
    bp_emu_thread_block *tb = bp_emu_current_block;
    std::unique_lock<std::mutex> lock(tb->m);
    update(tb->b);
    std::condition_variable &warp = tb->warp_cv[bp_emu_tid / warpSize];
    warp.notify_all(); // the warp's shuffles see this thread arrive (or not)
    if (ready(tb->b)) {
        if (!shuffle)
            tb->cv.notify_all(); // the last thread at a barrier opens it
        return;
    }
    (shuffle ? warp : tb->cv).wait(lock, [&] {
        if (tb->abort)
            throw bp_emu_aborted();
        return ready(tb->b);
    });
}

// The grid's memory fence and an atomic increment, for the kernels' last-
// block tickets (kernels/losses.cu). The emulation runs a grid's blocks one
// after another, so the block that takes the last ticket is the last to run,
// as on a GPU it is the last to finish.
inline void __threadfence() { __atomic_thread_fence(__ATOMIC_SEQ_CST); }
inline unsigned atomicAdd(unsigned *address, unsigned value)
{
    return __atomic_fetch_add(address, value, __ATOMIC_SEQ_CST);
}

inline void __syncthreads()
{
    unsigned t = bp_emu_tid, c = 0;
    bp_emu_meet(
        false,
        [&](bp_emu_block &b) {
            c = ++b.bar_seq[t];
            b.state[t] = bp_emu_block::kBarrier;
        },
        [&](bp_emu_block &b) {
            if (!b.barrier_open(c))
                return false;
            b.state[t] = bp_emu_block::kRunning;
            return true;
        });
}

// The warp shuffles (CUDA's semantics, width segments included): src is
// the lane read, or -1 for the caller's own value.
template <typename T> T bp_emu_shfl(unsigned mask, T var, int src)
{
    static_assert(sizeof(T) <= sizeof(uint64_t), "a shuffle moves at most 8 bytes");
    unsigned t = bp_emu_tid, lane = t % warpSize, k = 0;
    if (!bp_emu_sequential) {
        unsigned threads = bp_emu_fiber_state ? bp_emu_fiber_state->b.threads
                                              : bp_emu_current_block->b.threads;
        if (!(mask >> lane & 1u))
            throw bp_emu_block::error(t, "a warp shuffle with mask " + bp_emu_block::hex(mask) +
                                             " that does not name the calling lane");
        if (src >= 0 && !(mask >> src & 1u))
            throw bp_emu_block::error(t, "a warp shuffle reads lane " + std::to_string(src) +
                                             ", which its mask " + bp_emu_block::hex(mask) +
                                             " does not name");
        if (src >= 0 && t - lane + (unsigned)src >= threads)
            throw bp_emu_block::error(t, "a warp shuffle reads lane " + std::to_string(src) +
                                             ", which the block's last warp does not have");
    }
    uint64_t bits = 0, got = 0;
    std::memcpy(&bits, &var, sizeof(T));
    bp_emu_meet(
        true,
        [&](bp_emu_block &b) {
            k = b.shfl_seq[t]++;
            b.value[k & 1][t] = bits;
            b.mask[k & 1][t] = mask;
            b.state[t] = bp_emu_block::kShuffle;
        },
        [&](bp_emu_block &b) {
            if (!b.shuffle_ready(t, k, mask))
                return false;
            got = src < 0 ? bits : b.value[k & 1][t - lane + (unsigned)src];
            b.state[t] = bp_emu_block::kRunning;
            return true;
        });
    T out;
    std::memcpy(&out, &got, sizeof(T));
    return out;
}

template <typename T> T __shfl_sync(unsigned mask, T var, int src_lane, int width = warpSize)
{
    int lane = (int)(bp_emu_tid % warpSize);
    return bp_emu_shfl(mask, var, lane / width * width + src_lane % width);
}

template <typename T> T __shfl_xor_sync(unsigned mask, T var, int lane_mask, int width = warpSize)
{
    int lane = (int)(bp_emu_tid % warpSize), src = lane ^ lane_mask;
    // A lane of a later width segment is not read: the caller keeps its value.
    return bp_emu_shfl(mask, var, src / width > lane / width ? -1 : src);
}

template <typename T>
T __shfl_down_sync(unsigned mask, T var, unsigned delta, int width = warpSize)
{
    int lane = (int)(bp_emu_tid % warpSize);
    int src = lane % width + (int)delta >= width ? -1 : lane + (int)delta;
    return bp_emu_shfl(mask, var, src);
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
                        bp_emu_tid = t;
                        kernel(args...);
                    }
        bp_emu_sequential = false;
        return;
    }
    if (bp_emu_use_fibers) {
        static thread_local bp_emu_fibers f;
        bp_emu_fiber_state = &f;
        f.threads.resize(threads);
        while (f.stacks.size() < threads)
            f.stacks.emplace_back(new char[bp_emu_fibers::kStack]);
        f.body = [&] { kernel(args...); };
        f.error = nullptr;
        for (unsigned bz = 0; bz < grid.z && !f.error; bz++)
            for (unsigned by = 0; by < grid.y && !f.error; by++)
                for (unsigned bx = 0; bx < grid.x && !f.error; bx++) {
                    blockIdx = dim3(bx, by, bz);
                    f.b.reset(threads);
                    for (unsigned t = 0; t < threads; t++) {
                        getcontext(&f.threads[t]);
                        f.threads[t].uc_stack.ss_sp = f.stacks[t].get();
                        f.threads[t].uc_stack.ss_size = bp_emu_fibers::kStack;
                        f.threads[t].uc_link = &f.scheduler;
                        makecontext(&f.threads[t], bp_emu_fiber_entry, 0);
                    }
                    while (f.b.done < threads && !f.error) {
                        unsigned long long before = f.b.progress;
                        for (unsigned t = 0; t < threads && !f.error; t++) {
                            if (f.b.state[t] == bp_emu_block::kDone)
                                continue;
                            f.current = t;
                            bp_emu_tid = t;
                            threadIdx = bp_emu_thread_index(t, block);
                            swapcontext(&f.scheduler, &f.threads[t]);
                        }
                        if (f.b.progress == before && !f.error)
                            f.error = std::make_exception_ptr(std::logic_error(
                                "the threads of a block wait for each other for ever (a "
                                "deadlock at __syncthreads() or a warp shuffle) "
                                "(tests/cuda_emulation/cuda_runtime.h)"));
                    }
                }
        bp_emu_fiber_state = nullptr;
        f.body = nullptr;
        if (f.error)
            std::rethrow_exception(f.error);
        return;
    }
    bp_emu_thread_block tb(threads);
    bp_emu_current_block = &tb;
    std::vector<std::thread> pool;
    pool.reserve(threads);
    for (unsigned t = 0; t < threads; t++) {
        pool.emplace_back([&, t] {
            threadIdx = bp_emu_thread_index(t, block);
            bp_emu_tid = t;
            try {
                for (unsigned bz = 0; bz < grid.z; bz++)
                    for (unsigned by = 0; by < grid.y; by++)
                        for (unsigned bx = 0; bx < grid.x; bx++) {
                            blockIdx = dim3(bx, by, bz);
                            kernel(args...);
                            // The block's end: the last thread starts the next block.
                            std::unique_lock<std::mutex> lock(tb.m);
                            tb.b.state[t] = bp_emu_block::kDone;
                            unsigned gen = tb.generation;
                            if (++tb.b.done == threads) {
                                tb.b.reset(threads);
                                tb.generation++;
                                tb.end_cv.notify_all();
                            } else {
                                // Shuffles naming it fail; barriers no longer wait for it.
                                tb.warp_cv[t / warpSize].notify_all();
                                tb.cv.notify_all();
                            }
                            tb.end_cv.wait(lock, [&] {
                                if (tb.abort)
                                    throw bp_emu_aborted();
                                return tb.generation != gen;
                            });
                        }
            } catch (const bp_emu_aborted &) {
            } catch (...) {
                std::lock_guard<std::mutex> lock(tb.m);
                if (!tb.error)
                    tb.error = std::current_exception();
                tb.abort = true;
                tb.notify_all();
            }
        });
    }
    for (std::thread &th : pool)
        th.join();
    bp_emu_current_block = nullptr;
    if (tb.error)
        std::rethrow_exception(tb.error);
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
    bp_emu_declared declared = bp_emu_next_declared;
    bp_emu_next_declared.set = false;
    if (!bp_emu_launch_config_ok(grid, block, shared_bytes)) {
        bp_emu_last_error = cudaErrorInvalidConfiguration;
        return;
    }
    if (bp_emu_describe_launch != nullptr)
        bp_emu_describe_launch(declared.set ? declared.name : "an undeclared kernel",
                               grid.x * grid.y * grid.z, block.x * block.y * block.z,
                               declared.bytes, declared.flops, declared.tail_bytes, declared.set);
    if (bp_emu_enqueue == nullptr) {
        bp_emu_run(kernel, grid, block, args...);
        return;
    }
    (bp_emu_note_arg(args), ...);
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
