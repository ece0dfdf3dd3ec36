/*
 * optimizers.cu — CUDA kernels of backprop: the optimizer: one update over all parameters
 * (SGD, Adam, AdamW), for float and double, which also counts the step and finishes the
 * clipping norm from the partial sums the gradient guard wrote (kernels/reductions.cu), so the
 * optimizer is one launch. The step's scalars are computed once per block, not once per
 * parameter, over a bounded grid.
 *
 * Every formula comes from bp_math.h, the header the CPU backend's loops
 * call, so the GPU computes the CPU's arithmetic. Reductions run in a fixed
 * order without atomics, so results repeat bit for bit run to run.
 */
#include "bp_mixed.h"
#include "kernel_util.cuh"
#include "step_protocol.h"

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

/* The update's per-step scalars (learning rate, t, bias corrections: two
 * pow, a sqrt and a divide) are computed once per block, by thread 0 into
 * shared memory, not per thread; with Clip every block first reduces the
 * guard's partial sums to the clipping scale (all threads: barriers). Block
 * 0 closes the step (kernels/step_protocol.h): the step count is
 * double-buffered (kernels/step_scalars.h), every block reads `step`
 * (which the guard copied from step_next), block 0 writes step_next, which
 * no block of this launch reads. A skipped step writes step_next = step
 * and nothing else. */
template <bool Clip>
__device__ void prepare_update(const bp_update_rule &rule, bp_step_scalars *scalars, double max_norm,
                               const double *__restrict__ part, int n_parts, bp_update_step *st)
{
    __shared__ double sum[kThreads];
    double scale = 1.0;
    if (Clip)
        scale = clip_scale_of_parts(sum, part, n_parts, max_norm);
    if (threadIdx.x == 0) {
        *st = bp_step_update_scalars(&rule, scalars, scale);
        if (blockIdx.x == 0)
            bp_step_close_update(scalars, bp_step_update_count(scalars), scale);
    }
    __syncthreads();
}

/* Every parameter's update (bp_optimizer_update): a grid-stride loop over
 * the parameters, 16 bytes of each array at a time where Vec (every array
 * 16-byte aligned, count a multiple of 16 bytes: the parameter buffer's
 * padded length, src/core/network.c), one real at a time otherwise. wh not
 * NULL (the mixed precisions): the updated value's 16-bit copy written
 * there too, bp_half_from_f32(half, w). */
template <typename T, bool Clip, bool Vec>
__global__ void optimizer_update_kernel(bp_update_rule rule, bp_step_scalars *scalars,
                                        T *__restrict__ w, const T *__restrict__ g,
                                        T *__restrict__ s1, T *__restrict__ s2, T *__restrict__ s3,
                                        size_t count, double max_norm,
                                        const double *__restrict__ part, int n_parts,
                                        uint16_t *__restrict__ wh, int half)
{
    __shared__ bp_update_step st;
    prepare_update<Clip>(rule, scalars, max_norm, part, n_parts, &st);
    if (st.skip)
        return;
    const int k = Vec ? (int)(16 / sizeof(T)) : 1;
    size_t units = count / (size_t)k;
    for (size_t u = blockIdx.x * (size_t)blockDim.x + threadIdx.x; u < units;
         u += (size_t)gridDim.x * blockDim.x) {
        if (!Vec) {
            w[u] = bp_optimizer_update(&rule, &st, w[u], g[u], s1 ? s1 + u : nullptr,
                                       s2 ? s2 + u : nullptr, s3 ? s3 + u : nullptr);
            if (wh != nullptr)
                wh[u] = bp_half_from_f32(half, (float)w[u]);
            continue;
        }
        Vec16<T> wv = ((Vec16<T> *)w)[u], gv = ((const Vec16<T> *)g)[u];
        Vec16<T> v1 = gv, v2 = gv, v3 = gv; /* (unused when the state is absent) */
        if (s1 != nullptr)
            v1 = ((Vec16<T> *)s1)[u];
        if (s2 != nullptr)
            v2 = ((Vec16<T> *)s2)[u];
        if (s3 != nullptr)
            v3 = ((Vec16<T> *)s3)[u];
        for (int e = 0; e < k; e++) { /* (scalars, so the vectors stay in registers) */
            T a1 = v1.v[e], a2 = v2.v[e], a3 = v3.v[e];
            wv.v[e] = bp_optimizer_update(&rule, &st, wv.v[e], gv.v[e], s1 ? &a1 : nullptr,
                                          s2 ? &a2 : nullptr, s3 ? &a3 : nullptr);
            v1.v[e] = a1, v2.v[e] = a2, v3.v[e] = a3;
        }
        ((Vec16<T> *)w)[u] = wv;
        if (wh != nullptr)
            for (int e = 0; e < k; e++)
                wh[u * (size_t)k + e] = bp_half_from_f32(half, (float)wv.v[e]);
        if (s1 != nullptr)
            ((Vec16<T> *)s1)[u] = v1;
        if (s2 != nullptr)
            ((Vec16<T> *)s2)[u] = v2;
        if (s3 != nullptr)
            ((Vec16<T> *)s3)[u] = v3;
    }
}

/* At most this many blocks (about 8 of 256 threads per SM of an H100 or
 * H200): each computes the step's scalars once, and with clipping reduces
 * all the partial sums, so a bounded grid keeps that small next to the
 * update; the grid-stride loop covers the rest. */
const unsigned kUpdateBlocks = 1024;

template <typename T, bool Clip>
void launch_update_kernel(cudaStream_t stream, const bp_update_rule *rule, T *w, const T *g, T *s1,
                          T *s2, T *s3, size_t count, double max_norm, const double *part,
                          bp_step_scalars *scalars, uint16_t *wh, int half)
{
    /* float only: for double the 16-byte path buys little and costs a stack
     * frame (nvcc -Xptxas -v) */
    constexpr bool kVec = sizeof(T) == 4;
    const size_t k = 16 / sizeof(T);
    bool vec = kVec && count % k == 0 && aligned16<T>(w) && aligned16<T>(g) &&
               (s1 == nullptr || aligned16<T>(s1)) && (s2 == nullptr || aligned16<T>(s2)) &&
               (s3 == nullptr || aligned16<T>(s3));
    unsigned blocks = blocks_for(vec ? count / k : count);
    blocks = blocks > kUpdateBlocks ? kUpdateBlocks : blocks;
    int n_parts = Clip ? bp_clip_parts(count) : 0;
    if (vec)
        optimizer_update_kernel<T, Clip, kVec><<<blocks, kThreads, 0, stream>>>(
            *rule, scalars, w, g, s1, s2, s3, count, max_norm, part, n_parts, wh, half);
    else
        optimizer_update_kernel<T, Clip, false><<<blocks, kThreads, 0, stream>>>(
            *rule, scalars, w, g, s1, s2, s3, count, max_norm, part, n_parts, wh, half);
}

template <typename T>
cudaError_t launch_update(cudaStream_t stream, const bp_update_rule *rule, T *w, const T *g, T *s1,
                          T *s2, T *s3, size_t count, double max_norm, const double *part,
                          bp_step_scalars *scalars, uint16_t *wh = nullptr, int half = 0)
{
    if (max_norm > 0.0)
        launch_update_kernel<T, true>(stream, rule, w, g, s1, s2, s3, count, max_norm, part,
                                      scalars, wh, half);
    else
        launch_update_kernel<T, false>(stream, rule, w, g, s1, s2, s3, count, 0.0, part, scalars,
                                       wh, half);
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
    /* w, g, and each state buffer the rule keeps: read, and written but g */
    BP_DECLARE_WORK("optimizer_update",
                    (dtype == BP_F32 ? 4.0 : 8.0) * (double)count *
                        (3.0 + 2.0 * ((s1 != nullptr) + (s2 != nullptr) + (s3 != nullptr))),
                    12.0 * (double)count, 0);
    if (dtype == BP_F32)
        return launch_update<float>(stream, rule, (float *)w, (const float *)g, (float *)s1,
                                    (float *)s2, (float *)s3, count, max_norm, clip_parts, scalars);
    return launch_update<double>(stream, rule, (double *)w, (const double *)g, (double *)s1,
                                 (double *)s2, (double *)s3, count, max_norm, clip_parts, scalars);
}

cudaError_t bp_launch_optimizer_update_half(cudaStream_t stream, const bp_update_rule *rule,
                                            float *w, const float *g, float *s1, float *s2,
                                            float *s3, size_t count, double max_norm,
                                            const double *clip_parts, bp_step_scalars *scalars,
                                            int half, void *w_half)
{
    clear_stale_error();
    /* as bp_launch_optimizer_update's, and the 16-bit copy written */
    BP_DECLARE_WORK("optimizer_update",
                    4.0 * (double)count *
                            (3.0 + 2.0 * ((s1 != nullptr) + (s2 != nullptr) + (s3 != nullptr))) +
                        2.0 * (double)count,
                    12.0 * (double)count, 0);
    return launch_update<float>(stream, rule, w, g, s1, s2, s3, count, max_norm, clip_parts,
                                scalars, (uint16_t *)w_half, half);
}

} // extern "C"
