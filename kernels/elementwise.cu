/*
 * elementwise.cu — the CUDA kernels of backprop: bias + activation, softmax,
 * output deltas and per-sample losses, Hadamard deltas, bias gradients, the
 * batch's loss and metrics, the non-finite guard, the optimizer (step
 * count, clipping scale, update) and row gathers, for float and double.
 *
 * Every formula comes from bp_math.h, the header the CPU backend's loops
 * call, so the GPU computes the CPU's arithmetic. Reductions are done in a
 * fixed order without atomics, so results repeat bit for bit run to run.
 */
#include "bp_math.h"
#include "launch.h"

namespace {

const int kThreads = 256;

/* 16 bytes of reals, loaded and stored as one (a 128-bit access on the GPU)
 * where the data are 16-byte aligned. */
template <typename T> struct alignas(16) Vec16 {
    T v[16 / sizeof(T)];
};

typedef Vec16<uint32_t> Words16;

template <typename T> bool aligned16(const void *p) { return ((uintptr_t)p & 15u) == 0; }

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

template <typename T>
__global__ void softmax_kernel(const T *__restrict__ z, T *__restrict__ a, int n, int batch)
{
    for (int b = blockIdx.x * blockDim.x + threadIdx.x; b < batch; b += gridDim.x * blockDim.x)
        bp_softmax_row(z + (size_t)b * n, a + (size_t)b * n, n);
}

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

template <typename T>
__global__ void hadamard_kernel(int activation, T slope, const T *__restrict__ z,
                                const T *__restrict__ a, T *__restrict__ d, size_t count)
{
    for (size_t i = blockIdx.x * (size_t)blockDim.x + threadIdx.x; i < count;
         i += (size_t)gridDim.x * blockDim.x)
        d[i] = bp_hadamard_delta(activation, d[i], z[i], a[i], slope);
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

/* Copies rows of `words` elements of type W (4-byte words when the row size
 * allows, bytes otherwise): rows over grid y, words over grid x. */
template <typename W>
__global__ void gather_kernel(W *__restrict__ dst, const W *__restrict__ src,
                              const int32_t *__restrict__ rows, size_t words, int batch)
{
    for (int r = blockIdx.y; r < batch; r += gridDim.y) {
        size_t from = rows ? (size_t)rows[r] : (size_t)r;
        for (size_t k = blockIdx.x * (size_t)blockDim.x + threadIdx.x; k < words;
             k += (size_t)gridDim.x * blockDim.x)
            dst[(size_t)r * words + k] = src[from * words + k];
    }
}

/* The epoch's rows order[*cursor + r] of x and targets in one launch, in
 * words of WX and WY (16 bytes for the inputs' rows where they allow). */
template <typename WX, typename WY>
__global__ void gather_epoch_kernel(WX *__restrict__ x_dst, const WX *__restrict__ x_src,
                                    size_t x_words, WY *__restrict__ y_dst,
                                    const WY *__restrict__ y_src, size_t y_words,
                                    const int32_t *__restrict__ order,
                                    const int64_t *__restrict__ cursor, int batch)
{
    int64_t first = *cursor;
    for (int r = blockIdx.y; r < batch; r += gridDim.y) {
        size_t from = (size_t)order[first + r];
        for (size_t k = blockIdx.x * (size_t)blockDim.x + threadIdx.x; k < x_words + y_words;
             k += (size_t)gridDim.x * blockDim.x) {
            if (k < x_words)
                x_dst[(size_t)r * x_words + k] = x_src[from * x_words + k];
            else
                y_dst[(size_t)r * y_words + (k - x_words)] = y_src[from * y_words + (k - x_words)];
        }
    }
}

/* The runtime's last-error state may still hold the error of an earlier,
 * already reported call (a failed cudaMalloc, say): clear it before a
 * launch, so that the cudaGetLastError() after the launch reports that
 * launch only. Sticky errors (a kernel fault) persist and are reported. */
void clear_stale_error() { (void)cudaGetLastError(); }

/* Blocks for a grid-stride loop over count elements (capped: the loops
 * cover the rest). */
unsigned blocks_for(size_t count)
{
    size_t b = (count + kThreads - 1) / kThreads;
    if (b < 1)
        b = 1;
    return b > 65535u * 16u ? 65535u * 16u : (unsigned)b;
}

/* A grid of rows (y, at most 65535, the loops cover the rest) by columns
 * (x) for [rows, cols] work. */
dim3 grid_for_rows(size_t cols, int rows)
{
    size_t bx = (cols + kThreads - 1) / kThreads;
    bx = bx < 1 ? 1 : bx > 4096 ? 4096 : bx;
    unsigned by = rows < 1 ? 1u : rows > 65535 ? 65535u : (unsigned)rows;
    return dim3((unsigned)bx, by, 1);
}

} // namespace

extern "C" {

cudaError_t bp_launch_bias_act(cudaStream_t stream, bp_dtype dtype, bp_activation activation,
                               double slope, const void *bias, void *z, void *a, int n, int batch)
{
    clear_stale_error();
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

cudaError_t bp_launch_softmax(cudaStream_t stream, bp_dtype dtype, const void *z, void *a, int n,
                              int batch)
{
    clear_stale_error();
    if (dtype == BP_F32)
        softmax_kernel<float>
            <<<blocks_for(batch), kThreads, 0, stream>>>((const float *)z, (float *)a, n, batch);
    else
        softmax_kernel<double>
            <<<blocks_for(batch), kThreads, 0, stream>>>((const double *)z, (double *)a, n, batch);
    return cudaGetLastError();
}

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

cudaError_t bp_launch_hadamard_delta(cudaStream_t stream, bp_dtype dtype, bp_activation activation,
                                     double slope, const void *z, const void *a, void *d,
                                     size_t count)
{
    clear_stale_error();
    if (dtype == BP_F32)
        hadamard_kernel<float><<<blocks_for(count), kThreads, 0, stream>>>(
            (int)activation, (float)slope, (const float *)z, (const float *)a, (float *)d, count);
    else
        hadamard_kernel<double><<<blocks_for(count), kThreads, 0, stream>>>(
            (int)activation, slope, (const double *)z, (const double *)a, (double *)d, count);
    return cudaGetLastError();
}

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

cudaError_t bp_launch_gather_rows(cudaStream_t stream, void *dst, const void *src,
                                  const int32_t *rows, int batch, size_t row_bytes)
{
    clear_stale_error();
    if (row_bytes % 4 == 0) {
        size_t words = row_bytes / 4;
        gather_kernel<uint32_t><<<grid_for_rows(words, batch), kThreads, 0, stream>>>(
            (uint32_t *)dst, (const uint32_t *)src, rows, words, batch);
    } else {
        gather_kernel<unsigned char><<<grid_for_rows(row_bytes, batch), kThreads, 0, stream>>>(
            (unsigned char *)dst, (const unsigned char *)src, rows, row_bytes, batch);
    }
    return cudaGetLastError();
}

cudaError_t bp_launch_gather_epoch(cudaStream_t stream, void *x_dst, const void *x_src,
                                   size_t x_row_bytes, void *y_dst, const void *y_src,
                                   size_t y_row_bytes, const int32_t *order, const int64_t *cursor,
                                   int batch)
{
    clear_stale_error();
    if (y_dst == NULL)
        y_row_bytes = 0;
    if (x_row_bytes % 16 == 0 && y_row_bytes % 4 == 0 && aligned16<char>(x_dst) &&
        aligned16<char>(x_src)) {
        size_t xw = x_row_bytes / 16, yw = y_row_bytes / 4;
        dim3 grid = grid_for_rows(xw + yw, batch);
        gather_epoch_kernel<Words16, uint32_t><<<grid, kThreads, 0, stream>>>(
            (Words16 *)x_dst, (const Words16 *)x_src, xw, (uint32_t *)y_dst,
            (const uint32_t *)y_src, yw, order, cursor, batch);
    } else if (x_row_bytes % 4 == 0 && y_row_bytes % 4 == 0) {
        size_t xw = x_row_bytes / 4, yw = y_row_bytes / 4;
        dim3 grid = grid_for_rows(xw + yw, batch);
        gather_epoch_kernel<uint32_t, uint32_t><<<grid, kThreads, 0, stream>>>(
            (uint32_t *)x_dst, (const uint32_t *)x_src, xw, (uint32_t *)y_dst,
            (const uint32_t *)y_src, yw, order, cursor, batch);
    } else {
        dim3 grid = grid_for_rows(x_row_bytes + y_row_bytes, batch);
        gather_epoch_kernel<unsigned char, unsigned char><<<grid, kThreads, 0, stream>>>(
            (unsigned char *)x_dst, (const unsigned char *)x_src, x_row_bytes,
            (unsigned char *)y_dst, (const unsigned char *)y_src, y_row_bytes, order, cursor, batch);
    }
    return cudaGetLastError();
}

} // extern "C"
