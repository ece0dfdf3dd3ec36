// fake_cuda_internal.h — what fake_cuda.cpp lends the other fakes of the
// emulated GPU that are their own translation units (fake_cublaslt.cpp):
// its lock, its devices and allocations, and its streams, so that a library
// product is queued, captured and counted exactly like a cuBLAS GEMM.
// C++ only; not part of the emulation's C interface (emu_hooks.h).
#ifndef BP_FAKE_CUDA_INTERNAL_H
#define BP_FAKE_CUDA_INTERNAL_H

#include <cuda_runtime.h>

#include <cstddef>
#include <cstdint>
#include <functional>
#include <mutex>

#include "emu_hooks.h"

namespace bp_emu {

// The runtime's lock: hold it for the whole of a library call.
std::recursive_mutex &api_mutex();
// Whether a kernel fault has made the context unusable (the sticky error).
bool context_faulted();
// The calling thread's current device.
int this_thread_device();
// The device whose allocation holds [p, p + bytes), or -1.
int allocation_device(const void *p, size_t bytes);
// Queues a library product on stream (0: the current device's legacy
// stream) as cuBLAS does: recorded into the graph the stream captures, or
// queued and counted as a BLAS call. Returns cudaSuccess, or
// cudaErrorInvalidResourceHandle (not a live stream of the current device),
// or cudaErrorStreamCaptureImplicit (the legacy stream while capture
// forbids it; the capture is invalidated).
cudaError_t submit_product(cudaStream_t stream, std::function<void()> op);
// x rounded to `bits` mantissa bits (round to nearest even), as the TF32
// (10) and BF16 (7) compute types round their inputs.
float round_to_mantissa(float x, int bits);
// A 16-bit value (CUDA_R_16BF or CUDA_R_16F) as float32, and float32 rounded
// to the type, to nearest even (what the emulated cublasGemmEx uses).
float from_16bit(cudaDataType t, uint16_t h);
uint16_t to_16bit(cudaDataType t, float f);

// Runs the work queued on every stream (what a device synchronisation would).
void run_all_streams();
// The work log and record-only mode (fake_work_log.cpp, emu_hooks.h).
// Whether the device only records (runs nothing).
bool record_only();
// op as the device runs it: its description w appended to the open log,
// then op run unless the device only records.
std::function<void()> logged(const struct bp_emu_work &w, std::function<void()> op);
// The description cuda_runtime.h's launch left for this thread's next
// enqueued kernel ("an undeclared kernel" when none).
struct bp_emu_work take_launch_description();
// A product of m x n x k (math: BP_EMU_MATH_*), and a copy or memset.
struct bp_emu_work product(const char *name, int m, int n, int k, int math, size_t element_bytes);
struct bp_emu_work copy(const char *name, size_t bytes);
// The next operation this thread submits reads (write false) or writes
// [p, p + bytes) of device memory, for the race check (emu_hooks.h: races).
void note_access(const void *p, size_t bytes, bool write);
// Whether the operation this thread submits next is logged work (logged()
// marks it; the mark is taken, so cleared, here).
bool take_work_mark();
// The node the operation now running is, and the nodes it waits for
// (fake_cuda.cpp sets them around each node it runs; logged() copies them
// into the log).
void set_running_node(long long node, const long long *deps, int deps_count);

} // namespace bp_emu

// fake_cublaslt.cpp, for tests: from now on cublasLtMatmulAlgoGetHeuristic
// finds no algorithm (CUBLAS_STATUS_NOT_SUPPORTED) for this epilogue, as the
// library may for a configuration it does not support; 0 ends that.
extern "C" void bp_emu_cublaslt_refuse(uint32_t epilogue);
// fake_cublaslt.cpp, for tests: from now on cublasLtMatmul returns status
// (a cublasStatus_t) for this epilogue, after its argument checks, having
// queued nothing; 0 ends that.
extern "C" void bp_emu_cublaslt_fail_matmul(uint32_t epilogue, int status);

#endif
