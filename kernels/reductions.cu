/*
 * reductions.cu — CUDA kernels of backprop: bias gradients (alone and fused with the Hadamard
 * delta) and the non-finite guard over the gradients, for float and double.
 *
 * Every formula comes from bp_math.h, the header the CPU backend's loops
 * call, so the GPU computes the CPU's arithmetic. Reductions run in a fixed
 * order without atomics, so results repeat bit for bit run to run.
 */
#include "kernel_util.cuh"
#include "step_protocol.h"

namespace {

/* The sums over the batch of a [batch, n] array's columns, 32 of them per
 * block (from column blockIdx.x * 32): value(i) is element i (row-major),
 * and column j's sum goes to db[j]. One warp reads 32 consecutive values of
 * a row (coalesced); row lane y sums rows y, y + 32, ... in order, then the
 * 32 lane sums are added in a fixed tree. Deterministic, no atomics; the
 * order differs from the CPU's plain loop only by the association of the
 * additions. Every thread of the 32 x 32 block calls it. */
template <typename T, typename Value>
__device__ void column_tree_sum(int n, int batch, T *__restrict__ db, Value value)
{
    __shared__ T part[32][33];
    int col = blockIdx.x * 32 + threadIdx.x;
    T sum = (T)0;
    if (col < n)
        for (int b = threadIdx.y; b < batch; b += 32)
            sum += value((size_t)b * n + col);
    part[threadIdx.y][threadIdx.x] = sum;
    __syncthreads();
    for (int half = 16; half > 0; half /= 2) {
        if ((int)threadIdx.y < half)
            part[threadIdx.y][threadIdx.x] += part[threadIdx.y + half][threadIdx.x];
        __syncthreads();
    }
    if (threadIdx.y == 0 && col < n)
        db[col] = part[0][threadIdx.x];
}

/* db[j] = sum over the batch of d[b, j] (column_tree_sum). */
template <typename T>
__global__ void bias_grad_kernel(const T *__restrict__ d, T *__restrict__ db, int n, int batch)
{
    column_tree_sum(n, batch, db, [&](size_t i) { return d[i]; });
}

/* The Hadamard delta of a hidden layer and its bias gradient in one pass:
 * bias_grad_kernel's tiles, each element made d * sigma'(z) (written back)
 * before it is summed. The same values and order as the two kernels. */
template <typename T>
__global__ void delta_bias_grad_kernel(int activation, T slope, const T *__restrict__ z,
                                       const T *__restrict__ a, T *__restrict__ d,
                                       T *__restrict__ db, int n, int batch)
{
    column_tree_sum(n, batch, db, [&](size_t i) {
        T v = bp_hadamard_delta(activation, d[i], z[i], a[i], slope);
        d[i] = v;
        return v;
    });
}

/* The non-finite guard on the gradients: any thread that sees a NaN or an
 * infinity rejects the step (bp_step_reject: every writer writes the same
 * values, so the race is benign and the result deterministic). Block 0
 * opens the update (bp_step_open_update: step = step_next; no block of
 * this launch reads either; kernels/step_protocol.h). Sum (clipping on):
 * block b also writes part[b], the sum of the squares of its fixed strided
 * share in order, in double, then a fixed tree; the update reduces the
 * parts (kernels/optimizers.cu). */
template <bool Sum>
__device__ void finish_guard(double *sum, double s, bool finite, double *part,
                             bp_step_scalars *scalars)
{
    if (!finite)
        bp_step_reject(scalars);
    if (!Sum)
        return;
    double total = block_tree_sum(sum, s);
    if (threadIdx.x == 0)
        part[blockIdx.x] = total;
}

/* The guard over count reals of g: 16 bytes at a time where Vec (g 16-byte
 * aligned, count a multiple of 16 bytes), one real at a time otherwise; a
 * thread's values in order. */
template <typename T, bool Sum, bool Vec>
__global__ void check_finite_kernel(const T *__restrict__ g, size_t count, double *part,
                                    bp_step_scalars *scalars)
{
    __shared__ double sum[kThreads];
    if (blockIdx.x == 0 && threadIdx.x == 0)
        bp_step_open_update(scalars);
    const int k = Vec ? (int)(16 / sizeof(T)) : 1;
    T acc = (T)0;
    double s = 0.0;
    for (size_t u = blockIdx.x * (size_t)blockDim.x + threadIdx.x; u < count / k;
         u += (size_t)gridDim.x * blockDim.x) {
        Vec16<T> v;
        if (Vec)
            v = ((const Vec16<T> *)g)[u];
        else
            v.v[0] = g[u];
        for (int e = 0; e < k; e++) {
            acc += v.v[e] - v.v[e]; /* 0 for finite values, NaN otherwise */
            if (Sum)
                s += (double)v.v[e] * (double)v.v[e];
        }
    }
    finish_guard<Sum>(sum, s, acc == (T)0, part, scalars);
}

/* The guard's launch: vectorised where g allows; with clipping, exactly
 * bp_clip_parts(count) blocks (a function of count alone). */
template <typename T, bool Sum>
cudaError_t launch_guard(cudaStream_t stream, const T *g, size_t count, double *part,
                         bp_step_scalars *scalars)
{
    size_t k = 16 / sizeof(T); /* reals per 16 bytes */
    bool vec = count % k == 0 && aligned16<char>(g);
    unsigned blocks = Sum ? (unsigned)bp_clip_parts(count) : blocks_for(vec ? count / k : count);
    if (vec)
        check_finite_kernel<T, Sum, true><<<blocks, kThreads, 0, stream>>>(g, count, part, scalars);
    else
        check_finite_kernel<T, Sum, false><<<blocks, kThreads, 0, stream>>>(g, count, part, scalars);
    return cudaGetLastError();
}

} // namespace

extern "C" {

cudaError_t bp_launch_bias_grad(cudaStream_t stream, bp_dtype dtype, const void *d, void *db,
                                int n, int batch)
{
    clear_stale_error();
    BP_DECLARE_WORK("bias_grad", (dtype == BP_F32 ? 4.0 : 8.0) * ((double)n * batch + n),
                    (double)n * batch, 0);
    dim3 block(32, 32);
    unsigned grid = (unsigned)((n + 31) / 32);
    if (dtype == BP_F32)
        bias_grad_kernel<float><<<grid, block, 0, stream>>>((const float *)d, (float *)db, n, batch);
    else
        bias_grad_kernel<double>
            <<<grid, block, 0, stream>>>((const double *)d, (double *)db, n, batch);
    return cudaGetLastError();
}

cudaError_t bp_launch_delta_bias_grad(cudaStream_t stream, bp_dtype dtype,
                                      bp_activation activation, double slope, const void *z,
                                      const void *a, void *d, void *db, int n, int batch)
{
    clear_stale_error();
    BP_DECLARE_WORK("delta_bias_grad", (dtype == BP_F32 ? 4.0 : 8.0) * (4.0 * n * batch + n),
                    3.0 * n * batch, 0);
    dim3 block(32, 32);
    unsigned grid = (unsigned)((n + 31) / 32);
    if (dtype == BP_F32)
        delta_bias_grad_kernel<float>
            <<<grid, block, 0, stream>>>((int)activation, (float)slope, (const float *)z,
                                         (const float *)a, (float *)d, (float *)db, n, batch);
    else
        delta_bias_grad_kernel<double>
            <<<grid, block, 0, stream>>>((int)activation, slope, (const double *)z,
                                         (const double *)a, (double *)d, (double *)db, n, batch);
    return cudaGetLastError();
}

cudaError_t bp_launch_check_finite(cudaStream_t stream, bp_dtype dtype, const void *g,
                                   size_t count, double *clip_parts, bp_step_scalars *scalars)
{
    clear_stale_error();
    BP_DECLARE_WORK("check_finite", (dtype == BP_F32 ? 4.0 : 8.0) * (double)count,
                    (clip_parts ? 4.0 : 2.0) * (double)count, 0);
    if (dtype == BP_F32)
        return clip_parts != nullptr
                   ? launch_guard<float, true>(stream, (const float *)g, count, clip_parts, scalars)
                   : launch_guard<float, false>(stream, (const float *)g, count, nullptr, scalars);
    return clip_parts != nullptr
               ? launch_guard<double, true>(stream, (const double *)g, count, clip_parts, scalars)
               : launch_guard<double, false>(stream, (const double *)g, count, nullptr, scalars);
}

} // extern "C"
