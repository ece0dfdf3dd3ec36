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

/* db[j] = sum over the batch of d[b, j]. A block covers 32 columns (one
 * warp reads 32 consecutive values of a row: coalesced) with 32 row lanes;
 * lane y sums rows y, y+32, ... in order, then the 32 lane sums are added
 * in a fixed tree. Deterministic, no atomics; the order differs from the
 * CPU's plain loop only by the association of the additions. */
template <typename T>
__global__ void bias_grad_kernel(const T *__restrict__ d, T *__restrict__ db, int n, int batch)
{
    __shared__ T part[32][33];
    int col = blockIdx.x * 32 + threadIdx.x;
    T sum = (T)0;
    if (col < n)
        for (int b = threadIdx.y; b < batch; b += 32)
            sum += d[(size_t)b * n + col];
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

/* The Hadamard delta of a hidden layer and its bias gradient in one pass:
 * bias_grad_kernel's tiles, each element made d * sigma'(z) (written back)
 * before it is summed. The same values and order as the two kernels. */
template <typename T>
__global__ void delta_bias_grad_kernel(int activation, T slope, const T *__restrict__ z,
                                       const T *__restrict__ a, T *__restrict__ d,
                                       T *__restrict__ db, int n, int batch)
{
    __shared__ T part[32][33];
    int col = blockIdx.x * 32 + threadIdx.x;
    T sum = (T)0;
    if (col < n)
        for (int b = threadIdx.y; b < batch; b += 32) {
            size_t i = (size_t)b * n + col;
            T v = bp_hadamard_delta(activation, d[i], z[i], a[i], slope);
            d[i] = v;
            sum += v;
        }
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

/* The non-finite guard on the gradients: any thread that sees a NaN or an
 * infinity sets skip and, if no step was recorded yet, records this one.
 * Every writer writes the same values, so the race is benign and the
 * result deterministic. */
template <typename T>
__global__ void check_finite_vec_kernel(const Vec16<T> *__restrict__ g, size_t vcount,
                                        bp_step_scalars *scalars)
{
    for (size_t i = blockIdx.x * (size_t)blockDim.x + threadIdx.x; i < vcount;
         i += (size_t)gridDim.x * blockDim.x) {
        Vec16<T> v = g[i];
        T acc = (T)0;
        for (int e = 0; e < (int)(16 / sizeof(T)); e++)
            acc += v.v[e] - v.v[e]; /* 0 for finite values, NaN otherwise */
        if (!(acc == (T)0)) {
            scalars->skip = 1;
            if (scalars->bad_step == 0)
                scalars->bad_step = scalars->steps_seen;
            return;
        }
    }
}

template <typename T>
__global__ void check_finite_kernel(const T *__restrict__ g, size_t count, bp_step_scalars *scalars)
{
    for (size_t i = blockIdx.x * (size_t)blockDim.x + threadIdx.x; i < count;
         i += (size_t)gridDim.x * blockDim.x) {
        T v = g[i];
        if (!(v - v == (T)0)) {
            scalars->skip = 1;
            if (scalars->bad_step == 0)
                scalars->bad_step = scalars->steps_seen;
            return;
        }
    }
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
                                   size_t count, bp_step_scalars *scalars)
{
    clear_stale_error();
    size_t k = dtype == BP_F32 ? 4 : 2; /* reals per 16 bytes */
    if (count % k == 0 && aligned16<char>(g)) {
        size_t vcount = count / k;
        if (dtype == BP_F32)
            check_finite_vec_kernel<float><<<blocks_for(vcount), kThreads, 0, stream>>>(
                (const Vec16<float> *)g, vcount, scalars);
        else
            check_finite_vec_kernel<double><<<blocks_for(vcount), kThreads, 0, stream>>>(
                (const Vec16<double> *)g, vcount, scalars);
        return cudaGetLastError();
    }
    if (dtype == BP_F32)
        check_finite_kernel<float>
            <<<blocks_for(count), kThreads, 0, stream>>>((const float *)g, count, scalars);
    else
        check_finite_kernel<double>
            <<<blocks_for(count), kThreads, 0, stream>>>((const double *)g, count, scalars);
    return cudaGetLastError();
}

} // extern "C"
