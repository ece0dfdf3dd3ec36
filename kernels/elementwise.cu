/*
 * elementwise.cu — the CUDA kernels of backprop: bias + activation, softmax,
 * output deltas and per-sample losses, Hadamard deltas, bias gradients, the
 * batch loss, the optimizer (step count, clipping scale, update) and row gathers, for float and double.
 *
 * Every formula comes from bp_math.h, the header the CPU backend's loops
 * call, so the GPU computes the CPU's arithmetic. Reductions are done in a
 * fixed order without atomics, so results repeat bit for bit run to run.
 */
#include "bp_math.h"
#include "launch.h"

namespace {

const int kThreads = 256;

/* Overloads that pick the _f or _d function of bp_math.h by type. */
__device__ __forceinline__ float act(int a, float z, float s) { return bp_act_f(a, z, s); }
__device__ __forceinline__ double act(int a, double z, double s) { return bp_act_d(a, z, s); }
__device__ __forceinline__ float hadamard(int a, float d, float z, float y, float s)
{
    return bp_hadamard_delta_f(a, d, z, y, s);
}
__device__ __forceinline__ double hadamard(int a, double d, double z, double y, double s)
{
    return bp_hadamard_delta_d(a, d, z, y, s);
}
__device__ __forceinline__ float softmax_row(const float *z, float *a, int n)
{
    return bp_softmax_row_f(z, a, n);
}
__device__ __forceinline__ double softmax_row(const double *z, double *a, int n)
{
    return bp_softmax_row_d(z, a, n);
}
__device__ __forceinline__ float output_row(int loss, int a, float s, const float *z,
                                            const float *y_a, const float *y, int32_t label,
                                            int n, float scale, float *d)
{
    return bp_output_delta_row_f(loss, a, s, z, y_a, y, label, n, scale, d);
}
__device__ __forceinline__ double output_row(int loss, int a, double s, const double *z,
                                             const double *y_a, const double *y, int32_t label,
                                             int n, double scale, double *d)
{
    return bp_output_delta_row_d(loss, a, s, z, y_a, y, label, n, scale, d);
}
__device__ __forceinline__ float optimizer_update(const bp_update_rule *r, const bp_update_step *s,
                                                  float w, float g, float *s1, float *s2,
                                                  float *s3)
{
    return bp_optimizer_update_f(r, s, w, g, s1, s2, s3);
}
__device__ __forceinline__ double optimizer_update(const bp_update_rule *r, const bp_update_step *s,
                                                   double w, double g, double *s1, double *s2,
                                                   double *s3)
{
    return bp_optimizer_update_d(r, s, w, g, s1, s2, s3);
}

/* The runtime's last-error state may still hold the error of an earlier,
 * already reported call (a failed cudaMalloc, say): clear it before a
 * launch, so that the cudaGetLastError() after the launch reports that
 * launch only. Sticky errors (a kernel fault) persist and are reported. */
void clear_stale_error() { (void)cudaGetLastError(); }

unsigned blocks_for(size_t count)
{
    size_t b = (count + kThreads - 1) / kThreads;
    if (b < 1)
        b = 1;
    return b > 65535u * 16u ? 65535u * 16u : (unsigned)b; /* grid-stride loops cover the rest */
}

template <typename T>
__global__ void bias_act_kernel(int a, T slope, const T *__restrict__ bias, T *__restrict__ z,
                                T *__restrict__ out, int n, size_t count)
{
    for (size_t i = blockIdx.x * (size_t)blockDim.x + threadIdx.x; i < count;
         i += (size_t)gridDim.x * blockDim.x) {
        T v = z[i] + bias[i % (size_t)n];
        z[i] = v;
        out[i] = act(a, v, slope);
    }
}

template <typename T>
__global__ void softmax_kernel(const T *__restrict__ z, T *__restrict__ a, int n, int batch)
{
    for (int b = blockIdx.x * blockDim.x + threadIdx.x; b < batch; b += gridDim.x * blockDim.x)
        softmax_row(z + (size_t)b * n, a + (size_t)b * n, n);
}

template <typename T>
__global__ void output_delta_kernel(int loss, int a, T slope, const T *__restrict__ z,
                                    const T *__restrict__ out, const T *__restrict__ y,
                                    const int32_t *__restrict__ labels, T *__restrict__ d,
                                    T *__restrict__ sample_loss, int n, int batch, T scale)
{
    for (int b = blockIdx.x * blockDim.x + threadIdx.x; b < batch; b += gridDim.x * blockDim.x) {
        size_t o = (size_t)b * n;
        sample_loss[b] = output_row(loss, a, slope, z + o, out + o, y ? y + o : nullptr,
                                    labels ? labels[b] : 0, n, scale, d + o);
    }
}

template <typename T>
__global__ void hadamard_kernel(int a, T slope, const T *__restrict__ z, const T *__restrict__ out,
                                T *__restrict__ d, size_t count)
{
    for (size_t i = blockIdx.x * (size_t)blockDim.x + threadIdx.x; i < count;
         i += (size_t)gridDim.x * blockDim.x)
        d[i] = hadamard(a, d[i], z[i], out[i], slope);
}

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

/* One block: each thread sums a fixed strided subset in order, then a fixed
 * tree in shared memory. Deterministic; accumulates in double. */
template <typename T>
__global__ void loss_mean_kernel(const T *__restrict__ sample_loss, int batch, double *out)
{
    __shared__ double part[kThreads];
    double s = 0.0;
    for (int b = threadIdx.x; b < batch; b += blockDim.x)
        s += (double)sample_loss[b];
    part[threadIdx.x] = s;
    __syncthreads();
    for (int half = blockDim.x / 2; half > 0; half /= 2) {
        if ((int)threadIdx.x < half)
            part[threadIdx.x] += part[threadIdx.x + half];
        __syncthreads();
    }
    if (threadIdx.x == 0)
        *out = part[0] / (double)batch;
}

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

/* Every parameter's update; the step's scalars come from the device. */
template <typename T>
__global__ void optimizer_update_kernel(bp_update_rule rule, const bp_step_scalars *scalars,
                                        T *__restrict__ w, const T *__restrict__ g,
                                        T *__restrict__ s1, T *__restrict__ s2,
                                        T *__restrict__ s3, size_t count)
{
    bp_update_step st = bp_update_prepare(&rule, scalars->lr, scalars->step, scalars->clip_scale,
                                          scalars->skip);
    if (st.skip)
        return;
    for (size_t i = blockIdx.x * (size_t)blockDim.x + threadIdx.x; i < count;
         i += (size_t)gridDim.x * blockDim.x)
        w[i] = optimizer_update(&rule, &st, w[i], g[i], s1 + i, s2 ? s2 + i : nullptr,
                                s3 ? s3 + i : nullptr);
}

/* Copies rows of `words` elements of type W (4-byte words when the row size
 * allows, bytes otherwise). */
template <typename W>
__global__ void gather_kernel(W *__restrict__ dst, const W *__restrict__ src,
                              const int32_t *__restrict__ rows, size_t words, size_t count)
{
    for (size_t i = blockIdx.x * (size_t)blockDim.x + threadIdx.x; i < count;
         i += (size_t)gridDim.x * blockDim.x) {
        size_t r = i / words, k = i % words;
        size_t from = rows ? (size_t)rows[r] : r;
        dst[i] = src[from * words + k];
    }
}

} // namespace

extern "C" {

cudaError_t bp_launch_bias_act(cudaStream_t stream, int dtype, int a, double slope,
                               const void *bias, void *z, void *out, int n, int batch)
{
    clear_stale_error();
    size_t count = (size_t)n * (size_t)batch;
    if (dtype == 0)
        bias_act_kernel<float><<<blocks_for(count), kThreads, 0, stream>>>(
            a, (float)slope, (const float *)bias, (float *)z, (float *)out, n, count);
    else
        bias_act_kernel<double><<<blocks_for(count), kThreads, 0, stream>>>(
            a, slope, (const double *)bias, (double *)z, (double *)out, n, count);
    return cudaGetLastError();
}

cudaError_t bp_launch_softmax(cudaStream_t stream, int dtype, const void *z, void *a, int n,
                              int batch)
{
    clear_stale_error();
    if (dtype == 0)
        softmax_kernel<float><<<blocks_for(batch), kThreads, 0, stream>>>((const float *)z,
                                                                         (float *)a, n, batch);
    else
        softmax_kernel<double><<<blocks_for(batch), kThreads, 0, stream>>>((const double *)z,
                                                                          (double *)a, n, batch);
    return cudaGetLastError();
}

cudaError_t bp_launch_output_delta(cudaStream_t stream, int dtype, int loss, int a, double slope,
                                   const void *z, const void *out, const void *y,
                                   const int32_t *labels, void *d, void *sample_loss, int n,
                                   int batch)
{
    clear_stale_error();
    if (dtype == 0)
        output_delta_kernel<float><<<blocks_for(batch), kThreads, 0, stream>>>(
            loss, a, (float)slope, (const float *)z, (const float *)out, (const float *)y, labels,
            (float *)d, (float *)sample_loss, n, batch, 1.0f / (float)batch);
    else
        output_delta_kernel<double><<<blocks_for(batch), kThreads, 0, stream>>>(
            loss, a, slope, (const double *)z, (const double *)out, (const double *)y, labels,
            (double *)d, (double *)sample_loss, n, batch, 1.0 / (double)batch);
    return cudaGetLastError();
}

cudaError_t bp_launch_hadamard_delta(cudaStream_t stream, int dtype, int a, double slope,
                                     const void *z, const void *out, void *d, size_t count)
{
    clear_stale_error();
    if (dtype == 0)
        hadamard_kernel<float><<<blocks_for(count), kThreads, 0, stream>>>(
            a, (float)slope, (const float *)z, (const float *)out, (float *)d, count);
    else
        hadamard_kernel<double><<<blocks_for(count), kThreads, 0, stream>>>(
            a, slope, (const double *)z, (const double *)out, (double *)d, count);
    return cudaGetLastError();
}

cudaError_t bp_launch_bias_grad(cudaStream_t stream, int dtype, const void *d, void *db, int n,
                                int batch)
{
    clear_stale_error();
    dim3 block(32, 32);
    unsigned grid = (unsigned)((n + 31) / 32);
    if (dtype == 0)
        bias_grad_kernel<float><<<grid, block, 0, stream>>>((const float *)d, (float *)db, n, batch);
    else
        bias_grad_kernel<double><<<grid, block, 0, stream>>>((const double *)d, (double *)db, n,
                                                             batch);
    return cudaGetLastError();
}

cudaError_t bp_launch_loss_mean(cudaStream_t stream, int dtype, const void *sample_loss, int batch,
                                double *out)
{
    clear_stale_error();
    if (dtype == 0)
        loss_mean_kernel<float><<<1, kThreads, 0, stream>>>((const float *)sample_loss, batch, out);
    else
        loss_mean_kernel<double><<<1, kThreads, 0, stream>>>((const double *)sample_loss, batch,
                                                            out);
    return cudaGetLastError();
}

/* Blocks of the clipping norm's first stage: one per 8 * kThreads
 * elements, at most BP_CLIP_PARTS (a function of count alone). */
static int clip_parts(size_t count)
{
    size_t per = (size_t)kThreads * 8;
    size_t n = (count + per - 1) / per;
    return n < 1 ? 1 : n > BP_CLIP_PARTS ? BP_CLIP_PARTS : (int)n;
}

cudaError_t bp_launch_optimizer_prepare(cudaStream_t stream, int dtype, const void *g, size_t count,
                                        double max_norm, double *scratch,
                                        bp_step_scalars *scalars)
{
    clear_stale_error();
    int parts = 0;
    if (max_norm > 0.0) {
        parts = clip_parts(count);
        if (dtype == 0)
            clip_partial_kernel<float><<<parts, kThreads, 0, stream>>>((const float *)g, count,
                                                                       scratch);
        else
            clip_partial_kernel<double><<<parts, kThreads, 0, stream>>>((const double *)g, count,
                                                                        scratch);
        cudaError_t err = cudaGetLastError();
        if (err != cudaSuccess)
            return err;
    }
    optimizer_prepare_kernel<double><<<1, kThreads, 0, stream>>>(scratch, parts, max_norm,
                                                                 scalars);
    return cudaGetLastError();
}

cudaError_t bp_launch_optimizer_update(cudaStream_t stream, int dtype, const bp_update_rule *rule,
                                       void *w, const void *g, void *s1, void *s2, void *s3,
                                       size_t count, const bp_step_scalars *scalars)
{
    clear_stale_error();
    if (dtype == 0)
        optimizer_update_kernel<float><<<blocks_for(count), kThreads, 0, stream>>>(
            *rule, scalars, (float *)w, (const float *)g, (float *)s1, (float *)s2, (float *)s3,
            count);
    else
        optimizer_update_kernel<double><<<blocks_for(count), kThreads, 0, stream>>>(
            *rule, scalars, (double *)w, (const double *)g, (double *)s1, (double *)s2,
            (double *)s3, count);
    return cudaGetLastError();
}

cudaError_t bp_launch_gather_rows(cudaStream_t stream, void *dst, const void *src,
                                  const int32_t *rows, int batch, size_t row_bytes)
{
    clear_stale_error();
    if (row_bytes % 4 == 0) {
        size_t words = row_bytes / 4, count = words * (size_t)batch;
        gather_kernel<uint32_t><<<blocks_for(count), kThreads, 0, stream>>>(
            (uint32_t *)dst, (const uint32_t *)src, rows, words, count);
    } else {
        size_t count = row_bytes * (size_t)batch;
        gather_kernel<unsigned char><<<blocks_for(count), kThreads, 0, stream>>>(
            (unsigned char *)dst, (const unsigned char *)src, rows, row_bytes, count);
    }
    return cudaGetLastError();
}

} // extern "C"
