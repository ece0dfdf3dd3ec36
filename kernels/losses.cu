/*
 * losses.cu — CUDA kernels of backprop: the output delta and per-sample loss, the batch's loss and metrics
 * (into the device step scalars), and the whole output layer fused in one
 * launch, for float and double.
 *
 * Every formula comes from bp_math.h, the header the CPU backend's loops
 * call, so the GPU computes the CPU's arithmetic. Reductions run in a fixed
 * order without atomics, so results repeat bit for bit run to run.
 */
#include "kernel_util.cuh"

namespace {

template <typename T>
__global__ void output_delta_kernel(int loss, int activation, T slope, const T *__restrict__ z,
                                    const T *__restrict__ a, const T *__restrict__ y,
                                    const int32_t *__restrict__ labels, T *__restrict__ d,
                                    T *__restrict__ sample_loss, int n, int batch, T scale)
{
    for (int b = blockIdx.x * blockDim.x + threadIdx.x; b < batch; b += gridDim.x * blockDim.x) {
        size_t o = (size_t)b * n;
        sample_loss[b] = bp_output_delta_row(loss, activation, slope, z + o, a + o,
                                             y ? y + o : nullptr, labels ? labels[b] : 0, n, scale,
                                             d + o);
    }
}

/* The first index of the largest value of a row (the predicted class). */
template <typename T> __device__ int row_argmax(const T *a, int n)
{
    int best = 0;
    for (int j = 1; j < n; j++)
        if (a[j] > a[best])
            best = j;
    return best;
}

/* What thread 0 of a metrics block does with the batch's sums: the mean
 * loss, and for a training step the scalars (see step_metrics_kernel). */
__device__ void finish_metrics(double sum, double hits, int batch, double *loss,
                               bp_step_scalars *scalars, int64_t *cursor)
{
    *loss = sum / (double)batch;
    if (scalars == nullptr)
        return;
    int64_t step = scalars->steps_seen + 1;
    scalars->steps_seen = step;
    int finite = sum - sum == 0.0; /* false for NaN and infinities */
    scalars->skip = finite ? 0 : 1;
    if (finite) {
        scalars->loss_sum += sum;
        scalars->correct += hits;
        scalars->samples += (double)batch;
    } else if (scalars->bad_step == 0) {
        scalars->bad_step = step;
    }
    if (cursor != nullptr)
        *cursor += batch;
}

/* The batch's loss and metrics, one block: each thread sums a fixed
 * strided subset of the per-sample losses in order (in double) and counts
 * its correct predictions, then a fixed tree in shared memory (the same
 * order run to run). Thread 0 then writes the mean loss and, in
 * bp_step_scalars, adds the sums of a finite batch, counts the step, sets
 * skip for a non-finite one (recording the first such step), and moves
 * the epoch's row cursor on. */
template <typename T>
__global__ void step_metrics_kernel(const T *__restrict__ sample_loss, const T *__restrict__ a,
                                    const int32_t *__restrict__ labels, int n, int batch,
                                    double *loss, bp_step_scalars *scalars, int64_t *cursor)
{
    __shared__ double part[kThreads];
    __shared__ double hits[kThreads];
    double s = 0.0, c = 0.0;
    for (int b = threadIdx.x; b < batch; b += blockDim.x) {
        s += (double)sample_loss[b];
        if (labels != nullptr)
            c += row_argmax(a + (size_t)b * n, n) == labels[b] ? 1.0 : 0.0;
    }
    part[threadIdx.x] = s;
    hits[threadIdx.x] = c;
    __syncthreads();
    for (int half = blockDim.x / 2; half > 0; half /= 2) {
        if ((int)threadIdx.x < half) {
            part[threadIdx.x] += part[threadIdx.x + half];
            hits[threadIdx.x] += hits[threadIdx.x + half];
        }
        __syncthreads();
    }
    if (threadIdx.x == 0)
        finish_metrics(part[0], hits[0], batch, loss, scalars, cursor);
}

/* The whole output layer of a step in one launch, one block (for batches
 * whose output layer is small; train.c decides): per row, softmax (for
 * cross-entropy, with the same bp_math.h functions as the separate
 * kernels), the output delta and the sample's loss; then, all rows done,
 * the bias gradient of the output layer (each column summed over the batch
 * in row order, as the CPU does) and the batch's loss and metrics (the
 * same strided sums and tree as step_metrics_kernel, so the same bits). */
template <typename T>
__global__ void
output_step_kernel(int loss, int activation, T slope, const T *__restrict__ z, T *__restrict__ a,
                   const T *__restrict__ y, const int32_t *__restrict__ labels, T *__restrict__ d,
                   T *__restrict__ sample_loss, T *__restrict__ db, int n, int batch, T scale,
                   double *loss_out, bp_step_scalars *scalars, int64_t *cursor)
{
    __shared__ double part[kThreads];
    __shared__ double hits[kThreads];
    double s = 0.0, c = 0.0;
    for (int b = threadIdx.x; b < batch; b += blockDim.x) {
        size_t o = (size_t)b * n;
        if (loss == BP_M_CROSS_ENTROPY)
            bp_softmax_row(z + o, a + o, n);
        T l = bp_output_delta_row(loss, activation, slope, z + o, a + o, y ? y + o : nullptr,
                                  labels ? labels[b] : 0, n, scale, d + o);
        sample_loss[b] = l;
        s += (double)l;
        if (labels != nullptr)
            c += row_argmax(a + o, n) == labels[b] ? 1.0 : 0.0;
    }
    part[threadIdx.x] = s;
    hits[threadIdx.x] = c;
    __syncthreads();
    for (int j = threadIdx.x; j < n; j += blockDim.x) {
        T sum = (T)0;
        for (int b = 0; b < batch; b++)
            sum += d[(size_t)b * n + j];
        db[j] = sum;
    }
    for (int half = blockDim.x / 2; half > 0; half /= 2) {
        if ((int)threadIdx.x < half) {
            part[threadIdx.x] += part[threadIdx.x + half];
            hits[threadIdx.x] += hits[threadIdx.x + half];
        }
        __syncthreads();
    }
    if (threadIdx.x == 0)
        finish_metrics(part[0], hits[0], batch, loss_out, scalars, cursor);
}

} // namespace

extern "C" {

cudaError_t bp_launch_output_delta(cudaStream_t stream, bp_dtype dtype, bp_loss loss,
                                   bp_activation activation, double slope, const void *z,
                                   const void *a, const void *y, const int32_t *labels, void *d,
                                   void *sample_loss, int n, int batch)
{
    clear_stale_error();
    if (dtype == BP_F32)
        output_delta_kernel<float><<<blocks_for(batch), kThreads, 0, stream>>>(
            (int)loss, (int)activation, (float)slope, (const float *)z, (const float *)a,
            (const float *)y, labels, (float *)d, (float *)sample_loss, n, batch,
            1.0f / (float)batch);
    else
        output_delta_kernel<double><<<blocks_for(batch), kThreads, 0, stream>>>(
            (int)loss, (int)activation, slope, (const double *)z, (const double *)a,
            (const double *)y, labels, (double *)d, (double *)sample_loss, n, batch,
            1.0 / (double)batch);
    return cudaGetLastError();
}

cudaError_t bp_launch_step_metrics(cudaStream_t stream, bp_dtype dtype, const void *sample_loss,
                                   const void *a, const int32_t *labels, int n, int batch,
                                   double *loss, bp_step_scalars *scalars, int64_t *cursor)
{
    clear_stale_error();
    if (dtype == BP_F32)
        step_metrics_kernel<float><<<1, kThreads, 0, stream>>>(
            (const float *)sample_loss, (const float *)a, labels, n, batch, loss, scalars, cursor);
    else
        step_metrics_kernel<double><<<1, kThreads, 0, stream>>>((const double *)sample_loss,
                                                                (const double *)a, labels, n,
                                                                batch, loss, scalars, cursor);
    return cudaGetLastError();
}

cudaError_t bp_launch_output_step(cudaStream_t stream, bp_dtype dtype, bp_loss loss,
                                  bp_activation activation, double slope, const void *z, void *a,
                                  const void *y, const int32_t *labels, void *d, void *sample_loss,
                                  void *db, int n, int batch, double *loss_out,
                                  bp_step_scalars *scalars, int64_t *cursor)
{
    clear_stale_error();
    if (dtype == BP_F32)
        output_step_kernel<float><<<1, kThreads, 0, stream>>>(
            (int)loss, (int)activation, (float)slope, (const float *)z, (float *)a,
            (const float *)y, labels, (float *)d, (float *)sample_loss, (float *)db, n, batch,
            1.0f / (float)batch, loss_out, scalars, cursor);
    else
        output_step_kernel<double><<<1, kThreads, 0, stream>>>(
            (int)loss, (int)activation, slope, (const double *)z, (double *)a, (const double *)y,
            labels, (double *)d, (double *)sample_loss, (double *)db, n, batch,
            1.0 / (double)batch, loss_out, scalars, cursor);
    return cudaGetLastError();
}

} // extern "C"
