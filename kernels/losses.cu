/*
 * losses.cu — CUDA kernels of backprop: the output layer. Softmax, the
 * output delta and per-sample loss, the batch's loss and metrics (into the
 * device step scalars), and the whole output layer fused in one launch,
 * for float and double.
 *
 * A row of the output layer (one sample's n values) is the work of a group
 * of lanes: row_lanes(n) of them, the smallest power of two >= n up to a
 * warp (so a warp does 32 / g rows at once for small n, one row for
 * 17..1024 classes), and the whole block for wider rows. Each lane takes
 * the columns j = lane, lane + g, ... in order; the row's maximum, sums and
 * argmax are then combined by warp shuffles in a fixed butterfly (and for a
 * block, the warps' results in shared memory in warp order). The order of
 * every row reduction thus depends on n only, and every kernel here
 * computes a row the same way: the fused kernel gives the separate
 * kernels' bits. Against the CPU backend (bp_math.h's sequential row
 * loops) the sums of a row are associated differently: equal to rounding.
 * The per-element formulas are bp_math.h's.
 *
 * The batch's metrics and the fused output step run their rows over many
 * blocks; each block counts its correct predictions, and the block that
 * takes the last ticket (bp_kernel_scratch, kernels/launch.h: one atomic
 * increment, which decides who finishes, not the order of any sum)
 * finishes the batch: the per-sample losses summed in one fixed order,
 * the counts (whole numbers, exact in any order), the step's metrics
 * (kernels/step_protocol.h) and, when asked, the bias gradient in the CPU's
 * row order. Results repeat bit for bit run to run.
 */
#include "kernel_util.cuh"
#include "step_protocol.h"

namespace {

/* Rows wider than this are done by a block each: a warp would give each
 * lane more than 32 columns per pass (three passes for softmax + loss),
 * and a batch of 128 such rows only 16 blocks of warps for a GPU of 132
 * SMs; a block per row spreads a wide row over 8 warps and the batch over
 * the SMs. */
const int kWideRow = 1024;
const unsigned kFullMask = 0xffffffffu;

/* The lanes that share a row of n values (see above). */
__host__ __device__ inline int row_lanes(int n)
{
    if (n > kWideRow)
        return kThreads;
    int g = 1;
    while (g < n && g < 32)
        g *= 2;
    return g;
}

/* Blocks of kThreads for the rows of a [batch, n] array (at most
 * BP_ROW_BLOCKS, one partial count each in the scratch: the kernels' row
 * loops cover the rest). */
inline unsigned blocks_for_rows(int n, int batch)
{
    int g = row_lanes(n);
    size_t rows_per_block = g > 32 ? 1 : (size_t)kThreads / g;
    unsigned blocks = blocks_for(((size_t)batch + rows_per_block - 1) / rows_per_block * kThreads);
    return blocks > BP_ROW_BLOCKS ? BP_ROW_BLOCKS : blocks;
}

__device__ inline float row_exp(float x) { return expf(x); }
__device__ inline double row_exp(double x) { return exp(x); }
__device__ inline float row_log1p(float x) { return log1pf(x); }
__device__ inline double row_log1p(double x) { return log1p(x); }

template <typename T> struct MaxOp {
    __device__ T operator()(T v, T w) const { return w > v ? w : v; }
};
template <typename T> struct SumOp {
    __device__ T operator()(T v, T w) const { return v + w; }
};

/* v combined over the g lanes of a row: a butterfly of warp shuffles
 * (every lane ends with the same value: the operations are commutative),
 * for a block then the warps' values in warp order. Every lane of the
 * warp (the block for g > 32) must call it. */
template <typename T, typename Op> __device__ T row_reduce(T v, int g, Op op)
{
    for (int o = (g < 32 ? g : 32) / 2; o > 0; o /= 2)
        v = op(v, __shfl_xor_sync(kFullMask, v, o));
    if (g <= 32)
        return v;
    __shared__ T warp_part[kThreads / 32];
    if (threadIdx.x % 32 == 0)
        warp_part[threadIdx.x / 32] = v;
    __syncthreads();
    v = warp_part[0];
    for (int w = 1; w < (int)blockDim.x / 32; w++)
        v = op(v, warp_part[w]);
    __syncthreads(); /* warp_part is used again by the next call */
    return v;
}

/* The first index of the largest value (the predicted class), as the CPU's
 * loop finds it: best = 0, then j wherever a[j] > a[best]. That is the
 * first index of the largest value that is not NaN, or 0 when a[0] is NaN.
 * A lane's candidate (v, j): j = -1 none yet, j = -2 "a[0] is NaN". */
template <typename T> __device__ void argmax_take(T &v, int &j, T w, int k)
{
    if (j == -2 || k == -1)
        return;
    if (k == -2 || j == -1 || w > v || (!(v > w) && k < j)) {
        v = w;
        j = k;
    }
}

template <typename T> __device__ void argmax_see(T &v, int &j, T w, int k)
{
    if (w != w)
        argmax_take(v, j, w, k == 0 ? -2 : -1);
    else
        argmax_take(v, j, w, k);
}

template <typename T> __device__ int row_argmax_reduce(T v, int j, int g)
{
    for (int o = (g < 32 ? g : 32) / 2; o > 0; o /= 2) {
        T w = __shfl_xor_sync(kFullMask, v, o);
        int k = __shfl_xor_sync(kFullMask, j, o);
        argmax_take(v, j, w, k);
    }
    if (g > 32) {
        __shared__ T part_v[kThreads / 32];
        __shared__ int part_j[kThreads / 32];
        if (threadIdx.x % 32 == 0) {
            part_v[threadIdx.x / 32] = v;
            part_j[threadIdx.x / 32] = j;
        }
        __syncthreads();
        v = part_v[0];
        j = part_j[0];
        for (int w = 1; w < (int)blockDim.x / 32; w++)
            argmax_take(v, j, part_v[w], part_j[w]);
        __syncthreads();
    }
    return j < 0 ? 0 : j;
}

/* The predicted class of row a[0..n) (group-wide). */
template <typename T> __device__ int row_argmax(const T *a, int n, int lane, int g, bool active)
{
    T v = (T)0;
    int j = -1;
    if (active)
        for (int k = lane; k < n; k += g)
            argmax_see(v, j, a[k], k);
    return row_argmax_reduce(v, j, g);
}

/* The rows of [batch, n] work, in groups of row_lanes(n) lanes: calls
 * fn(b, lane, g, active) for each row of this thread's group. Lanes past
 * the batch call it with active false: they take part in their warp's
 * shuffles, but touch nothing. The loop is uniform over a warp (a block
 * for wide rows), as the shuffles and barriers need. */
template <typename Fn> __device__ void for_each_row(int n, int batch, Fn fn)
{
    int g = row_lanes(n);
    if (g > 32) {
        for (int b = blockIdx.x; b < batch; b += gridDim.x)
            fn(b, (int)threadIdx.x, g, true);
        return;
    }
    int per_warp = 32 / g, lane32 = (int)threadIdx.x % 32;
    long long warp = ((long long)blockIdx.x * blockDim.x + threadIdx.x) / 32;
    long long step = (long long)gridDim.x * blockDim.x / 32 * per_warp;
    for (long long base = warp * per_warp; base < batch; base += step) {
        int b = (int)base + lane32 / g;
        fn(b, lane32 % g, g, b < batch);
    }
}

/* Maximum and sum of exp(z_j - max) of row z[0..n): the log-sum-exp's
 * parts, as bp_logsumexp_row but associated by lanes. */
template <typename T> struct RowLse {
    T m, sum;
};
template <typename T> __device__ RowLse<T> row_lse(const T *z, int n, int lane, int g, bool active)
{
    T m = -(T)INFINITY;
    if (active)
        for (int j = lane; j < n; j += g)
            m = z[j] > m ? z[j] : m;
    m = row_reduce(m, g, MaxOp<T>());
    T s = (T)0;
    if (active)
        for (int j = lane; j < n; j += g)
            s += row_exp(z[j] - m);
    s = row_reduce(s, g, SumOp<T>());
    return RowLse<T>{m, s};
}

/* One row of the output layer, group-wide (bp_output_delta_row's formulas):
 * for cross-entropy with softmax true, first a = softmax(z) (written),
 * the log-sum-exp computed once for both; the delta d; returns the
 * sample's loss (unscaled; every lane). With best not NULL, *best is the
 * row's predicted class (from a). An out-of-range label gives NaN delta
 * and loss. */
template <typename T>
__device__ T row_output(int loss, int activation, T slope, const T *z, T *a, bool softmax,
                        const T *y, int32_t label, int n, T scale, T *d, int lane, int g,
                        bool active, int *best)
{
    T v = (T)0;
    int j_best = -1;
    T l = (T)0;
    if (loss == BP_M_CROSS_ENTROPY) {
        RowLse<T> r = row_lse(z, n, lane, g, active);
        T inv = (T)1 / r.sum;
        bool bad = label < 0 || label >= n;
        T nan = (T)0 / (T)0;
        if (active)
            for (int j = lane; j < n; j += g) {
                T aj;
                if (softmax) {
                    aj = row_exp(z[j] - r.m) * inv;
                    a[j] = aj;
                } else {
                    aj = a[j];
                }
                d[j] = bad ? nan : (aj - (j == label ? (T)1 : (T)0)) * scale;
                argmax_see(v, j_best, aj, j);
            }
        l = bad || !active ? nan : row_log1p(r.sum - (T)1) + r.m - z[label];
    } else {
        if (active)
            for (int j = lane; j < n; j += g) {
                T aj = a[j];
                if (loss == BP_M_BCE) {
                    l += bp_bce_logit(z[j], y[j]);
                    d[j] = (aj - y[j]) * scale;
                } else {
                    T e = aj - y[j];
                    l += (T)0.5 * e * e;
                    d[j] = e * scale * bp_act_deriv(activation, z[j], aj, slope);
                }
                argmax_see(v, j_best, aj, j);
            }
        l = row_reduce(l, g, SumOp<T>());
    }
    if (best != nullptr)
        *best = row_argmax_reduce(v, j_best, g);
    return l;
}

template <typename T>
__global__ void softmax_kernel(const T *__restrict__ z, T *__restrict__ a, int n, int batch)
{
    for_each_row(n, batch, [&](int b, int lane, int g, bool active) {
        size_t o = (size_t)b * n;
        RowLse<T> r = row_lse(z + o, n, lane, g, active);
        T inv = (T)1 / r.sum;
        if (active)
            for (int j = lane; j < n; j += g)
                a[o + j] = row_exp(z[o + j] - r.m) * inv;
    });
}

template <typename T>
__global__ void output_delta_kernel(int loss, int activation, T slope, const T *__restrict__ z,
                                    const T *__restrict__ a, const T *__restrict__ y,
                                    const int32_t *__restrict__ labels, T *__restrict__ d,
                                    T *__restrict__ sample_loss, int n, int batch, T scale)
{
    for_each_row(n, batch, [&](int b, int lane, int g, bool active) {
        size_t o = (size_t)b * n;
        int32_t label = labels != nullptr && active ? labels[b] : 0;
        T l = row_output(loss, activation, slope, z + o, const_cast<T *>(a + o), false,
                         y != nullptr ? y + o : nullptr, label, n, scale, d + o, lane, g, active,
                         (int *)nullptr);
        if (active && lane == 0)
            sample_loss[b] = l;
    });
}

/* The batch's sums in one block, from each thread's partial loss s and
 * count c: a fixed tree in shared memory (the same order run to run);
 * thread 0 then writes the mean loss and, for a training step, counts the
 * batch (bp_step_count_batch: the sums of a finite batch, skip for a
 * non-finite one, the epoch's cursor). */
__device__ void reduce_metrics(double s, double c, int batch, double *loss,
                               bp_step_scalars *scalars, int64_t *cursor)
{
    __shared__ double part[kThreads];
    __shared__ double hits[kThreads];
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
    if (threadIdx.x != 0)
        return;
    *loss = part[0] / (double)batch;
    if (scalars != nullptr)
        bp_step_count_batch(scalars, part[0], hits[0], batch, cursor);
}

/* Whether this block is the grid's last to finish (every thread of the
 * block gets the answer): the block's writes made visible, thread 0 takes
 * a ticket; the last ticket's block sets the ticket back to 0 for the next
 * launch on the stream. */
__device__ bool last_block(bp_kernel_scratch *scratch)
{
    __shared__ bool last;
    __threadfence();
    __syncthreads();
    if (threadIdx.x == 0) {
        last = atomicAdd(&scratch->ticket, 1u) == gridDim.x - 1;
        if (last)
            scratch->ticket = 0;
    }
    __syncthreads();
    if (last)
        __threadfence();
    return last;
}

/* The end of the rows' kernels, every thread: the block's count c of
 * correct predictions into the scratch; then the last block finishes the
 * batch: with db, the bias gradient (each column of d summed over the batch
 * in row order, as the CPU does); the per-sample losses summed as one
 * block always has (each thread a fixed strided share in order, then
 * reduce_metrics's tree), and the blocks' counts. */
template <typename T>
__device__ void finish_batch(double c, const T *sample_loss, const T *d, T *db, int n, int batch,
                             double *loss, bp_step_scalars *scalars, int64_t *cursor,
                             bp_kernel_scratch *scratch)
{
    __shared__ double sum[kThreads];
    double block_hits = block_tree_sum(sum, c);
    if (threadIdx.x == 0)
        scratch->hits[blockIdx.x] = block_hits;
    if (!last_block(scratch))
        return;
    const volatile T *dv = d, *lv = sample_loss;
    const volatile double *hv = scratch->hits;
    for (int j = threadIdx.x; db != nullptr && j < n; j += blockDim.x) {
        T col = (T)0;
        for (int b = 0; b < batch; b++)
            col += dv[(size_t)b * n + j];
        db[j] = col;
    }
    double s = 0.0, h = 0.0;
    for (int b = threadIdx.x; b < batch; b += blockDim.x)
        s += (double)lv[b];
    for (int i = threadIdx.x; i < (int)gridDim.x; i += blockDim.x)
        h += hv[i];
    reduce_metrics(s, h, batch, loss, scalars, cursor);
}

/* The batch's loss and metrics: the rows' predicted classes (row_argmax,
 * when there are labels) over many blocks, each thread counting its rows'
 * hits; then finish_batch. */
template <typename T>
__global__ void step_metrics_kernel(const T *__restrict__ sample_loss, const T *__restrict__ a,
                                    const int32_t *__restrict__ labels, int n, int batch,
                                    double *loss, bp_step_scalars *scalars, int64_t *cursor,
                                    bp_kernel_scratch *scratch)
{
    double c = 0.0;
    if (labels != nullptr)
        for_each_row(n, batch, [&](int b, int lane, int g, bool active) {
            int best = row_argmax(a + (size_t)b * n, n, lane, g, active);
            if (active && lane == 0)
                c += best == labels[b] ? 1.0 : 0.0;
        });
    finish_batch<T>(c, sample_loss, nullptr, nullptr, n, batch, loss, scalars, cursor, scratch);
}

/* The whole output layer of a step in one launch: the rows as the separate
 * kernels do them (row_output: softmax for cross-entropy with its
 * log-sum-exp computed once per row, the output delta, the sample's loss
 * and predicted class) over many blocks; then finish_batch: the batch's
 * loss and metrics as step_metrics_kernel computes them (so the same
 * bits), and with db the output layer's bias gradient in the CPU's row
 * order. */
template <typename T>
__global__ void output_step_kernel(int loss, int activation, T slope, const T *__restrict__ z,
                                   T *__restrict__ a, const T *__restrict__ y,
                                   const int32_t *__restrict__ labels, T *__restrict__ d,
                                   T *__restrict__ sample_loss, T *__restrict__ db, int n,
                                   int batch, T scale, double *loss_out, bp_step_scalars *scalars,
                                   int64_t *cursor, bp_kernel_scratch *scratch)
{
    double c = 0.0;
    for_each_row(n, batch, [&](int b, int lane, int g, bool active) {
        size_t o = (size_t)b * n;
        int32_t label = labels != nullptr && active ? labels[b] : 0;
        int best = 0;
        T l = row_output(loss, activation, slope, z + o, a + o, loss == BP_M_CROSS_ENTROPY,
                         y != nullptr ? y + o : nullptr, label, n, scale, d + o, lane, g, active,
                         labels != nullptr ? &best : (int *)nullptr);
        if (active && lane == 0) {
            sample_loss[b] = l;
            if (labels != nullptr)
                c += best == label ? 1.0 : 0.0;
        }
    });
    finish_batch<T>(c, sample_loss, d, db, n, batch, loss_out, scalars, cursor, scratch);
}

} // namespace

extern "C" {

cudaError_t bp_launch_softmax(cudaStream_t stream, bp_dtype dtype, const void *z, void *a, int n,
                              int batch)
{
    clear_stale_error();
    BP_DECLARE_WORK("softmax", (dtype == BP_F32 ? 4.0 : 8.0) * 2.0 * n * batch, 4.0 * n * batch, 0);
    unsigned blocks = blocks_for_rows(n, batch);
    if (dtype == BP_F32)
        softmax_kernel<float>
            <<<blocks, kThreads, 0, stream>>>((const float *)z, (float *)a, n, batch);
    else
        softmax_kernel<double>
            <<<blocks, kThreads, 0, stream>>>((const double *)z, (double *)a, n, batch);
    return cudaGetLastError();
}

cudaError_t bp_launch_output_delta(cudaStream_t stream, bp_dtype dtype, bp_loss loss,
                                   bp_activation activation, double slope, const void *z,
                                   const void *a, const void *y, const int32_t *labels, void *d,
                                   void *sample_loss, int n, int batch)
{
    clear_stale_error();
    BP_DECLARE_WORK("output_delta",
                    (dtype == BP_F32 ? 4.0 : 8.0) * ((y != nullptr ? 4.0 : 3.0) * n * batch + batch),
                    6.0 * n * batch, 0);
    unsigned blocks = blocks_for_rows(n, batch);
    if (dtype == BP_F32)
        output_delta_kernel<float><<<blocks, kThreads, 0, stream>>>(
            (int)loss, (int)activation, (float)slope, (const float *)z, (const float *)a,
            (const float *)y, labels, (float *)d, (float *)sample_loss, n, batch,
            1.0f / (float)batch);
    else
        output_delta_kernel<double><<<blocks, kThreads, 0, stream>>>(
            (int)loss, (int)activation, slope, (const double *)z, (const double *)a,
            (const double *)y, labels, (double *)d, (double *)sample_loss, n, batch,
            1.0 / (double)batch);
    return cudaGetLastError();
}

cudaError_t bp_launch_step_metrics(cudaStream_t stream, bp_dtype dtype, const void *sample_loss,
                                   const void *a, const int32_t *labels, int n, int batch,
                                   double *loss, bp_step_scalars *scalars, int64_t *cursor,
                                   bp_kernel_scratch *scratch)
{
    clear_stale_error();
    double es = dtype == BP_F32 ? 4.0 : 8.0;
    unsigned blocks = labels != nullptr ? blocks_for_rows(n, batch) : 1;
    BP_DECLARE_WORK("step_metrics", es * (labels != nullptr ? (double)n * batch : 0.0) + 4.0 * batch,
                    2.0 * n * batch, es * batch + 8.0 * blocks);
    if (dtype == BP_F32)
        step_metrics_kernel<float>
            <<<blocks, kThreads, 0, stream>>>((const float *)sample_loss, (const float *)a, labels,
                                              n, batch, loss, scalars, cursor, scratch);
    else
        step_metrics_kernel<double>
            <<<blocks, kThreads, 0, stream>>>((const double *)sample_loss, (const double *)a,
                                              labels, n, batch, loss, scalars, cursor, scratch);
    return cudaGetLastError();
}

cudaError_t bp_launch_output_step(cudaStream_t stream, bp_dtype dtype, bp_loss loss,
                                  bp_activation activation, double slope, const void *z, void *a,
                                  const void *y, const int32_t *labels, void *d, void *sample_loss,
                                  void *db, int n, int batch, double *loss_out,
                                  bp_step_scalars *scalars, int64_t *cursor,
                                  bp_kernel_scratch *scratch)
{
    clear_stale_error();
    double es = dtype == BP_F32 ? 4.0 : 8.0, nb = (double)n * batch;
    unsigned blocks = blocks_for_rows(n, batch);
    /* z (and y) read, a (softmax) and d written, a sample loss per row; the
     * last block: the sample losses, the counts, the bias gradient's d */
    BP_DECLARE_WORK("output_step",
                    es * (nb * (y != nullptr ? 3.0 : 2.0) +
                          (loss == BP_LOSS_CROSS_ENTROPY ? nb : 0.0) + batch) +
                        4.0 * batch,
                    8.0 * nb, es * (batch + (db != nullptr ? nb : 0.0)) + 8.0 * blocks);
    if (dtype == BP_F32)
        output_step_kernel<float><<<blocks, kThreads, 0, stream>>>(
            (int)loss, (int)activation, (float)slope, (const float *)z, (float *)a,
            (const float *)y, labels, (float *)d, (float *)sample_loss, (float *)db, n, batch,
            1.0f / (float)batch, loss_out, scalars, cursor, scratch);
    else
        output_step_kernel<double><<<blocks, kThreads, 0, stream>>>(
            (int)loss, (int)activation, slope, (const double *)z, (double *)a, (const double *)y,
            labels, (double *)d, (double *)sample_loss, (double *)db, n, batch,
            1.0 / (double)batch, loss_out, scalars, cursor, scratch);
    return cudaGetLastError();
}

} // extern "C"
