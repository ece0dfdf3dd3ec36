/*
 * reductions.cu — CUDA kernels of backprop: bias gradients (alone and fused with the Hadamard
 * delta) and the non-finite guard over the gradients, for float and double.
 *
 * Every formula comes from bp_math.h, the header the CPU backend's loops
 * call, so the GPU computes the CPU's arithmetic. Reductions run in a fixed
 * order without atomics, so results repeat bit for bit run to run.
 */
#include "kernel_util.cuh"

namespace {

/* The 32x32 block's column sums in a fixed tree: lane (x, y) holds its
 * share `sum` of column x; lane (x, 0) writes the column's total to *out
 * (none when out is null). Shared by the two bias-gradient kernels. */
template <typename T> __device__ void column_tree_sum(T sum, T *out)
{
    __shared__ T part[32][33];
    part[threadIdx.y][threadIdx.x] = sum;
    __syncthreads();
    for (int half = 16; half > 0; half /= 2) {
        if ((int)threadIdx.y < half)
            part[threadIdx.y][threadIdx.x] += part[threadIdx.y + half][threadIdx.x];
        __syncthreads();
    }
    if (threadIdx.y == 0 && out != nullptr)
        *out = part[0][threadIdx.x];
}

/* db[j] = sum over the batch of d[b, j]. A block covers 32 columns (one
 * warp reads 32 consecutive values of a row: coalesced) with 32 row lanes;
 * lane y sums rows y, y+32, ... in order, then the 32 lane sums are added
 * in a fixed tree. Deterministic, no atomics; the order differs from the
 * CPU's plain loop only by the association of the additions. */
template <typename T>
__global__ void bias_grad_kernel(const T *__restrict__ d, T *__restrict__ db, int n, int batch)
{
    int col = blockIdx.x * 32 + threadIdx.x;
    T sum = (T)0;
    if (col < n)
        for (int b = threadIdx.y; b < batch; b += 32)
            sum += d[(size_t)b * n + col];
    column_tree_sum(sum, col < n ? &db[col] : nullptr);
}

/* The Hadamard delta of a hidden layer and its bias gradient in one pass:
 * bias_grad_kernel's tiles, each element made d * sigma'(z) (written back)
 * before it is summed. The same values and order as the two kernels. */
template <typename T>
__global__ void delta_bias_grad_kernel(int activation, T slope, const T *__restrict__ z,
                                       const T *__restrict__ a, T *__restrict__ d,
                                       T *__restrict__ db, int n, int batch)
{
    int col = blockIdx.x * 32 + threadIdx.x;
    T sum = (T)0;
    if (col < n)
        for (int b = threadIdx.y; b < batch; b += 32) {
            size_t i = (size_t)b * n + col;
            T v = bp_hadamard_delta(activation, d[i], z[i], a[i], slope);
            d[i] = v;
            sum += v;
        }
    column_tree_sum(sum, col < n ? &db[col] : nullptr);
}

/* The non-finite guard on the gradients: any thread that sees a NaN or an
 * infinity sets skip and, if no step was recorded yet, records this one.
 * Every writer writes the same values, so the race is benign and the
 * result deterministic. Block 0 starts the step count of this step's
 * update: step = step_next (kernels/step_scalars.h; no block of this launch
 * reads either). Sum (clipping on): block b also writes part[b], the sum of
 * the squares of its fixed strided share in order, in double, then a fixed
 * tree; the update reduces the parts (kernels/optimizers.cu). */
template <bool Sum>
__device__ void finish_guard(double *sum, double s, bool finite, double *part,
                             bp_step_scalars *scalars)
{
    if (!finite) {
        scalars->skip = 1;
        if (scalars->bad_step == 0)
            scalars->bad_step = scalars->steps_seen;
    }
    if (!Sum)
        return;
    double total = block_tree_sum(sum, s);
    if (threadIdx.x == 0)
        part[blockIdx.x] = total;
}

/* The guard over count loads of V: T itself, or Vec16<T> (16 bytes of
 * reals at once where g is aligned); the same values in the same order
 * either way. */
template <typename T, typename V, bool Sum>
__global__ void check_finite_kernel(const V *__restrict__ g, size_t count, double *part,
                                    bp_step_scalars *scalars)
{
    __shared__ double sum[kThreads];
    if (blockIdx.x == 0 && threadIdx.x == 0)
        scalars->step = scalars->step_next;
    T acc = (T)0;
    double s = 0.0;
    for (size_t i = blockIdx.x * (size_t)blockDim.x + threadIdx.x; i < count;
         i += (size_t)gridDim.x * blockDim.x) {
        V v = g[i];
        const T *e = reinterpret_cast<const T *>(&v);
        for (int k = 0; k < (int)(sizeof(V) / sizeof(T)); k++) {
            acc += e[k] - e[k]; /* 0 for finite values, NaN otherwise */
            if (Sum)
                s += (double)e[k] * (double)e[k];
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
    if (count % k == 0 && aligned16<char>(g)) {
        size_t vcount = count / k;
        unsigned blocks = Sum ? (unsigned)bp_clip_parts(count) : blocks_for(vcount);
        typedef Vec16<T> V16; /* (the emulation's launch rewrite takes no nested <>) */
        check_finite_kernel<T, V16, Sum>
            <<<blocks, kThreads, 0, stream>>>((const Vec16<T> *)g, vcount, part, scalars);
    } else {
        unsigned blocks = Sum ? (unsigned)bp_clip_parts(count) : blocks_for(count);
        check_finite_kernel<T, T, Sum><<<blocks, kThreads, 0, stream>>>(g, count, part, scalars);
    }
    return cudaGetLastError();
}

} // namespace

extern "C" {

cudaError_t bp_launch_bias_grad(cudaStream_t stream, bp_dtype dtype, const void *d, void *db,
                                int n, int batch)
{
    clear_stale_error();
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
    if (dtype == BP_F32)
        return clip_parts != nullptr
                   ? launch_guard<float, true>(stream, (const float *)g, count, clip_parts, scalars)
                   : launch_guard<float, false>(stream, (const float *)g, count, nullptr, scalars);
    return clip_parts != nullptr
               ? launch_guard<double, true>(stream, (const double *)g, count, clip_parts, scalars)
               : launch_guard<double, false>(stream, (const double *)g, count, nullptr, scalars);
}

} // extern "C"
