/*
 * optimizers.cu — CUDA kernels of backprop: the optimizer: the clipping norm (two fixed-order
 * stages), the step count and one update over all parameters (SGD, Adam, AdamW), for float and
 * double.
 *
 * Every formula comes from bp_math.h, the header the CPU backend's loops
 * call, so the GPU computes the CPU's arithmetic. Reductions run in a fixed
 * order without atomics, so results repeat bit for bit run to run.
 */
#include "kernel_util.cuh"

namespace {

/* The clipping norm, stage 1: block b sums the squares of its fixed
 * strided share of g in order, in double, then a fixed tree; part[b]. */
template <typename T>
__global__ void clip_partial_kernel(const T *__restrict__ g, size_t count, double *part)
{
    __shared__ double sum[kThreads];
    double s = 0.0;
    for (size_t i = blockIdx.x * (size_t)blockDim.x + threadIdx.x; i < count;
         i += (size_t)gridDim.x * blockDim.x) {
        double v = (double)g[i];
        s += v * v;
    }
    sum[threadIdx.x] = s;
    __syncthreads();
    for (int half = blockDim.x / 2; half > 0; half /= 2) {
        if ((int)threadIdx.x < half)
            sum[threadIdx.x] += sum[threadIdx.x + half];
        __syncthreads();
    }
    if (threadIdx.x == 0)
        part[blockIdx.x] = sum[0];
}

/* Stage 2, one block: the n_parts partial sums in a fixed order; counts the
 * step (unless the guard set skip) and writes the clipping scale (1 when
 * n_parts is 0: clipping off). Deterministic: no atomics, and the number of
 * parts depends on count only. */
template <typename P>
__global__ void optimizer_prepare_kernel(const P *__restrict__ part, int n_parts, double max_norm,
                                         bp_step_scalars *scalars)
{
    __shared__ P sum[kThreads];
    P s = 0.0;
    for (int i = threadIdx.x; i < n_parts; i += blockDim.x)
        s += part[i];
    sum[threadIdx.x] = s;
    __syncthreads();
    for (int half = blockDim.x / 2; half > 0; half /= 2) {
        if ((int)threadIdx.x < half)
            sum[threadIdx.x] += sum[threadIdx.x + half];
        __syncthreads();
    }
    if (threadIdx.x == 0) {
        if (!scalars->skip)
            scalars->step += 1;
        scalars->clip_scale = n_parts > 0 ? bp_clip_scale(sum[0], max_norm) : 1.0;
    }
}

/* Every parameter's update (bp_optimizer_update); the step's scalars (lr,
 * t, clipping scale, the guard's skip) come from the device. */
template <typename T>
__global__ void optimizer_update_kernel(bp_update_rule rule, const bp_step_scalars *scalars,
                                        T *__restrict__ w, const T *__restrict__ g,
                                        T *__restrict__ s1, T *__restrict__ s2, T *__restrict__ s3,
                                        size_t count)
{
    bp_update_step st = bp_update_prepare(&rule, scalars->lr, scalars->step, scalars->clip_scale,
                                          scalars->skip);
    if (st.skip)
        return;
    for (size_t i = blockIdx.x * (size_t)blockDim.x + threadIdx.x; i < count;
         i += (size_t)gridDim.x * blockDim.x)
        w[i] = bp_optimizer_update(&rule, &st, w[i], g[i], s1 + i, s2 ? s2 + i : nullptr,
                                   s3 ? s3 + i : nullptr);
}

} // namespace

extern "C" {

/* Blocks of the clipping norm's first stage: one per 8 * kThreads
 * elements, at most BP_CLIP_PARTS (a function of count alone). */
static int clip_parts(size_t count)
{
    size_t per = (size_t)kThreads * 8;
    size_t n = (count + per - 1) / per;
    return n < 1 ? 1 : n > BP_CLIP_PARTS ? BP_CLIP_PARTS : (int)n;
}

cudaError_t bp_launch_optimizer_prepare(cudaStream_t stream, bp_dtype dtype, const void *g,
                                        size_t count, double max_norm, double *scratch,
                                        bp_step_scalars *scalars)
{
    clear_stale_error();
    int parts = 0;
    if (max_norm > 0.0) {
        parts = clip_parts(count);
        if (dtype == BP_F32)
            clip_partial_kernel<float>
                <<<parts, kThreads, 0, stream>>>((const float *)g, count, scratch);
        else
            clip_partial_kernel<double>
                <<<parts, kThreads, 0, stream>>>((const double *)g, count, scratch);
        cudaError_t err = cudaGetLastError();
        if (err != cudaSuccess)
            return err;
    }
    optimizer_prepare_kernel<double><<<1, kThreads, 0, stream>>>(scratch, parts, max_norm, scalars);
    return cudaGetLastError();
}

cudaError_t bp_launch_optimizer_update(cudaStream_t stream, bp_dtype dtype,
                                       const bp_update_rule *rule, void *w, const void *g,
                                       void *s1, void *s2, void *s3, size_t count,
                                       const bp_step_scalars *scalars)
{
    clear_stale_error();
    if (dtype == BP_F32)
        optimizer_update_kernel<float><<<blocks_for(count), kThreads, 0, stream>>>(
            *rule, scalars, (float *)w, (const float *)g, (float *)s1, (float *)s2, (float *)s3,
            count);
    else
        optimizer_update_kernel<double><<<blocks_for(count), kThreads, 0, stream>>>(
            *rule, scalars, (double *)w, (const double *)g, (double *)s1, (double *)s2,
            (double *)s3, count);
    return cudaGetLastError();
}

} // extern "C"
