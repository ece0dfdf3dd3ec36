/*
 * optimizers.cu — CUDA kernels of backprop: the optimizer: one update over all parameters
 * (SGD, Adam, AdamW), for float and double, which also counts the step and finishes the
 * clipping norm from the partial sums the gradient guard wrote (kernels/reductions.cu), so the
 * optimizer is one launch.
 *
 * Every formula comes from bp_math.h, the header the CPU backend's loops
 * call, so the GPU computes the CPU's arithmetic. Reductions run in a fixed
 * order without atomics, so results repeat bit for bit run to run.
 */
#include "kernel_util.cuh"

namespace {

/* The clipping scale from the guard's partial sums of squares (n_parts
 * doubles, check_finite's blocks in order): each thread sums a fixed
 * strided share in order, then a fixed tree in shared memory. Every block
 * of the update runs this on the same values with the same block size, so
 * every block computes the same bits: deterministic, no atomics, and no
 * launch of its own. */
__device__ double clip_scale_of_parts(double *sum, const double *__restrict__ part, int n_parts,
                                      double max_norm)
{
    double s = 0.0;
    for (int i = threadIdx.x; i < n_parts; i += blockDim.x)
        s += part[i];
    return bp_clip_scale(block_tree_sum(sum, s), max_norm);
}

/* Every parameter's update (bp_optimizer_update); the step's scalars (lr,
 * t, the guard's skip) come from the device. The step count is
 * double-buffered (kernels/step_scalars.h): every block reads `step` (which
 * the guard copied from step_next), block 0 writes step_next, which no
 * block of this launch reads. Clip: the scale comes from the guard's
 * partial sums (n_parts of them). A skipped step writes step_next = step
 * and nothing else. */
template <typename T, bool Clip>
__global__ void optimizer_update_kernel(bp_update_rule rule, bp_step_scalars *scalars,
                                        T *__restrict__ w, const T *__restrict__ g,
                                        T *__restrict__ s1, T *__restrict__ s2, T *__restrict__ s3,
                                        size_t count, double max_norm,
                                        const double *__restrict__ part, int n_parts)
{
    int64_t skip = scalars->skip;
    int64_t t = bp_update_number(scalars->step, skip);
    double lr = scalars->lr;
    __shared__ double sum[kThreads];
    double scale = 1.0;
    if (Clip)
        scale = clip_scale_of_parts(sum, part, n_parts, max_norm); /* all threads: barriers */
    if (blockIdx.x == 0 && threadIdx.x == 0) {
        scalars->step_next = t;
        scalars->clip_scale = scale;
    }
    bp_update_step st = bp_update_prepare(&rule, lr, t, scale, skip);
    if (st.skip)
        return;
    for (size_t i = blockIdx.x * (size_t)blockDim.x + threadIdx.x; i < count;
         i += (size_t)gridDim.x * blockDim.x)
        w[i] = bp_optimizer_update(&rule, &st, w[i], g[i], s1 + i, s2 ? s2 + i : nullptr,
                                   s3 ? s3 + i : nullptr);
}

/* With clipping every block reads all the partial sums: a grid-stride
 * loop over at most this many blocks keeps that small next to the update. */
const unsigned kClipUpdateBlocks = 4096;

template <typename T>
cudaError_t launch_update(cudaStream_t stream, const bp_update_rule *rule, T *w, const T *g, T *s1,
                          T *s2, T *s3, size_t count, double max_norm, const double *part,
                          bp_step_scalars *scalars)
{
    unsigned blocks = blocks_for(count);
    if (max_norm > 0.0) {
        if (blocks > kClipUpdateBlocks)
            blocks = kClipUpdateBlocks;
        optimizer_update_kernel<T, true><<<blocks, kThreads, 0, stream>>>(
            *rule, scalars, w, g, s1, s2, s3, count, max_norm, part, bp_clip_parts(count));
    } else {
        optimizer_update_kernel<T, false><<<blocks, kThreads, 0, stream>>>(
            *rule, scalars, w, g, s1, s2, s3, count, 0.0, part, 0);
    }
    return cudaGetLastError();
}

} // namespace

extern "C" {

cudaError_t bp_launch_optimizer_update(cudaStream_t stream, bp_dtype dtype,
                                       const bp_update_rule *rule, void *w, const void *g,
                                       void *s1, void *s2, void *s3, size_t count, double max_norm,
                                       const double *clip_parts, bp_step_scalars *scalars)
{
    clear_stale_error();
    if (dtype == BP_F32)
        return launch_update<float>(stream, rule, (float *)w, (const float *)g, (float *)s1,
                                    (float *)s2, (float *)s3, count, max_norm, clip_parts, scalars);
    return launch_update<double>(stream, rule, (double *)w, (const double *)g, (double *)s1,
                                 (double *)s2, (double *)s3, count, max_norm, clip_parts, scalars);
}

} // extern "C"
