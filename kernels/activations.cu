/*
 * activations.cu — CUDA kernels of backprop: bias + activation (16-byte vectors where aligned),
 * and the Hadamard delta of the backward pass (16-byte vectors where aligned;
 * softmax: losses.cu), for float and double.
 *
 * Every formula comes from bp_math.h, the header the CPU backend's loops
 * call, so the GPU computes the CPU's arithmetic. Reductions run in a fixed
 * order without atomics, so results repeat bit for bit run to run.
 */
#include "kernel_util.cuh"

namespace {

/* Z[b, j] += bias[j]; A[b, j] = sigma(Z[b, j]), 16 bytes at a time: for rows
 * whose byte length is a multiple of 16 (n % (16 / sizeof(T)) == 0) and
 * 16-byte aligned arrays. The same arithmetic per element as below. */
template <typename T>
__global__ void bias_act_vec_kernel(int activation, T slope, const Vec16<T> *__restrict__ bias,
                                    Vec16<T> *__restrict__ z, Vec16<T> *__restrict__ a, int nv,
                                    int batch)
{
    const int k = 16 / sizeof(T);
    for (int b = blockIdx.y; b < batch; b += gridDim.y) {
        Vec16<T> *zr = z + (size_t)b * nv;
        Vec16<T> *ar = a + (size_t)b * nv;
        for (int j = blockIdx.x * blockDim.x + threadIdx.x; j < nv; j += gridDim.x * blockDim.x) {
            Vec16<T> zv = zr[j], bv = bias[j], av;
            for (int e = 0; e < k; e++) {
                zv.v[e] = zv.v[e] + bv.v[e];
                av.v[e] = bp_act(activation, zv.v[e], slope);
            }
            zr[j] = zv;
            ar[j] = av;
        }
    }
}

/* Z[b, j] += bias[j]; A[b, j] = sigma(Z[b, j]). Rows over grid y, columns
 * over grid x: no division per element. */
template <typename T>
__global__ void bias_act_kernel(int activation, T slope, const T *__restrict__ bias,
                                T *__restrict__ z, T *__restrict__ a, int n, int batch)
{
    for (int b = blockIdx.y; b < batch; b += gridDim.y) {
        T *zr = z + (size_t)b * n;
        T *ar = a + (size_t)b * n;
        for (int j = blockIdx.x * blockDim.x + threadIdx.x; j < n; j += gridDim.x * blockDim.x) {
            T v = zr[j] + bias[j];
            zr[j] = v;
            ar[j] = bp_act(activation, v, slope);
        }
    }
}

/* d[i] = d[i] * sigma'(z[i]), 16 bytes at a time over the first vcount
 * vectors (16-byte aligned arrays), and the count % (16 / sizeof(T)) reals
 * after them one by one (tail, from vcount * k on). The same arithmetic per
 * element as below. */
template <typename T>
__global__ void hadamard_vec_kernel(int activation, T slope, const Vec16<T> *__restrict__ z,
                                    const Vec16<T> *__restrict__ a, Vec16<T> *__restrict__ d,
                                    size_t vcount, size_t count)
{
    const int k = 16 / sizeof(T);
    size_t first = blockIdx.x * (size_t)blockDim.x + threadIdx.x;
    size_t stride = (size_t)gridDim.x * blockDim.x;
    for (size_t i = first; i < vcount; i += stride) {
        Vec16<T> zv = z[i], av = a[i], dv = d[i];
        for (int e = 0; e < k; e++)
            dv.v[e] = bp_hadamard_delta(activation, dv.v[e], zv.v[e], av.v[e], slope);
        d[i] = dv;
    }
    const T *zs = (const T *)z, *as = (const T *)a;
    T *ds = (T *)d;
    for (size_t i = vcount * k + first; i < count; i += stride)
        ds[i] = bp_hadamard_delta(activation, ds[i], zs[i], as[i], slope);
}

template <typename T>
__global__ void hadamard_kernel(int activation, T slope, const T *__restrict__ z,
                                const T *__restrict__ a, T *__restrict__ d, size_t count)
{
    for (size_t i = blockIdx.x * (size_t)blockDim.x + threadIdx.x; i < count;
         i += (size_t)gridDim.x * blockDim.x)
        d[i] = bp_hadamard_delta(activation, d[i], z[i], a[i], slope);
}

} // namespace

extern "C" {

cudaError_t bp_launch_bias_act(cudaStream_t stream, bp_dtype dtype, bp_activation activation,
                               double slope, const void *bias, void *z, void *a, int n, int batch)
{
    clear_stale_error();
    BP_DECLARE_WORK("bias_act", (dtype == BP_F32 ? 4.0 : 8.0) * (3.0 * n * batch + n),
                    2.0 * n * batch, 0);
    size_t k = dtype == BP_F32 ? 4 : 2; /* reals per 16 bytes */
    if (n % k == 0 && aligned16<char>(bias) && aligned16<char>(z) && aligned16<char>(a)) {
        int nv = (int)(n / k);
        dim3 grid = grid_for_rows((size_t)nv, batch);
        if (dtype == BP_F32)
            bias_act_vec_kernel<float><<<grid, kThreads, 0, stream>>>(
                (int)activation, (float)slope, (const Vec16<float> *)bias, (Vec16<float> *)z,
                (Vec16<float> *)a, nv, batch);
        else
            bias_act_vec_kernel<double>
                <<<grid, kThreads, 0, stream>>>((int)activation, slope, (const Vec16<double> *)bias,
                                                (Vec16<double> *)z, (Vec16<double> *)a, nv, batch);
        return cudaGetLastError();
    }
    dim3 grid = grid_for_rows((size_t)n, batch);
    if (dtype == BP_F32)
        bias_act_kernel<float><<<grid, kThreads, 0, stream>>>(
            (int)activation, (float)slope, (const float *)bias, (float *)z, (float *)a, n, batch);
    else
        bias_act_kernel<double><<<grid, kThreads, 0, stream>>>(
            (int)activation, slope, (const double *)bias, (double *)z, (double *)a, n, batch);
    return cudaGetLastError();
}

cudaError_t bp_launch_hadamard_delta(cudaStream_t stream, bp_dtype dtype, bp_activation activation,
                                     double slope, const void *z, const void *a, void *d,
                                     size_t count)
{
    clear_stale_error();
    BP_DECLARE_WORK("hadamard_delta", (dtype == BP_F32 ? 4.0 : 8.0) * 4.0 * (double)count,
                    2.0 * (double)count, 0);
    size_t k = dtype == BP_F32 ? 4 : 2; /* reals per 16 bytes */
    if (aligned16<char>(z) && aligned16<char>(a) && aligned16<char>(d)) {
        size_t vcount = count / k;
        unsigned blocks = blocks_for(vcount > 0 ? vcount : count);
        if (dtype == BP_F32)
            hadamard_vec_kernel<float><<<blocks, kThreads, 0, stream>>>(
                (int)activation, (float)slope, (const Vec16<float> *)z, (const Vec16<float> *)a,
                (Vec16<float> *)d, vcount, count);
        else
            hadamard_vec_kernel<double><<<blocks, kThreads, 0, stream>>>(
                (int)activation, slope, (const Vec16<double> *)z, (const Vec16<double> *)a,
                (Vec16<double> *)d, vcount, count);
        return cudaGetLastError();
    }
    if (dtype == BP_F32)
        hadamard_kernel<float><<<blocks_for(count), kThreads, 0, stream>>>(
            (int)activation, (float)slope, (const float *)z, (const float *)a, (float *)d, count);
    else
        hadamard_kernel<double><<<blocks_for(count), kThreads, 0, stream>>>(
            (int)activation, slope, (const double *)z, (const double *)a, (double *)d, count);
    return cudaGetLastError();
}

} // extern "C"
