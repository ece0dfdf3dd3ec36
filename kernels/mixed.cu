/*
 * mixed.cu — CUDA kernels of the mixed precisions (bf16-mixed, 16-mixed):
 * the input rounded to 16 bits as it is gathered, the parameters' 16-bit
 * working copy, the bias rows a 16-bit product adds, a hidden layer's
 * activation and Hadamard delta with its float32 bias gradient, and
 * 16-mixed's loss scaling (unscaling with the guard, the scale's update).
 *
 * Every conversion and scaling rule comes from bp_mixed.h and every formula
 * from bp_math.h, the headers the CPU backend's loops call
 * (src/backend/cpu_mixed.c), so the GPU rounds to the CPU's bits. The bias
 * gradient sums each column in the order bp_mixed.h fixes (parts of the
 * batch in row order, then the parts in order), as the CPU does, over many
 * blocks, without atomics on the values.
 */
#include "bp_mixed.h"
#include "kernel_util.cuh"
#include "launch_mixed.h"

namespace {

/* dst row r = half(src row rows[r]) (rows NULL: row r), n values a row. */
__global__ void mixed_gather_kernel(int half, uint16_t *__restrict__ dst,
                                    const float *__restrict__ src,
                                    const int32_t *__restrict__ rows, int n, int batch)
{
    for (int r = blockIdx.y; r < batch; r += gridDim.y) {
        size_t from = rows ? (size_t)rows[r] : (size_t)r;
        for (int k = blockIdx.x * blockDim.x + threadIdx.x; k < n; k += gridDim.x * blockDim.x)
            dst[(size_t)r * n + k] = bp_half_from_f32(half, src[from * n + k]);
    }
}

/* The epoch's rows order[*cursor + r]: x converted (n values), the targets
 * copied in words of WY (y_words a row). */
template <typename WY>
__global__ void mixed_gather_epoch_kernel(int half, uint16_t *__restrict__ x_dst,
                                          const float *__restrict__ x_src, int n,
                                          WY *__restrict__ y_dst, const WY *__restrict__ y_src,
                                          size_t y_words, const int32_t *__restrict__ order,
                                          const int64_t *__restrict__ cursor, int batch)
{
    int64_t first = *cursor;
    size_t xn = (size_t)n;
    for (int r = blockIdx.y; r < batch; r += gridDim.y) {
        size_t from = (size_t)order[first + r];
        for (size_t k = blockIdx.x * (size_t)blockDim.x + threadIdx.x; k < xn + y_words;
             k += (size_t)gridDim.x * blockDim.x) {
            if (k < xn)
                x_dst[(size_t)r * xn + k] = bp_half_from_f32(half, x_src[from * xn + k]);
            else
                y_dst[(size_t)r * y_words + (k - xn)] = y_src[from * y_words + (k - xn)];
        }
    }
}

/* dst[i] = half(src[i] * s), s the device double *scale or 1. */
__global__ void mixed_to_half_kernel(int half, const float *__restrict__ src,
                                     uint16_t *__restrict__ dst, size_t count,
                                     const double *__restrict__ scale)
{
    float s = scale != nullptr ? (float)*scale : 1.0f;
    for (size_t i = blockIdx.x * (size_t)blockDim.x + threadIdx.x; i < count;
         i += (size_t)gridDim.x * blockDim.x)
        dst[i] = bp_half_from_f32(half, scale != nullptr ? src[i] * s : src[i]);
}

/* Z row r = bias. */
__global__ void mixed_fill_rows_kernel(const uint16_t *__restrict__ bias, uint16_t *__restrict__ z,
                                       int n, int batch)
{
    for (int r = blockIdx.y; r < batch; r += gridDim.y)
        for (int k = blockIdx.x * blockDim.x + threadIdx.x; k < n; k += gridDim.x * blockDim.x)
            z[(size_t)r * n + k] = bias[k];
}

/* A = half(sigma(Z)) element by element. */
__global__ void mixed_act_kernel(int half, int activation, float slope,
                                 const uint16_t *__restrict__ z, uint16_t *__restrict__ a,
                                 size_t count)
{
    for (size_t i = blockIdx.x * (size_t)blockDim.x + threadIdx.x; i < count;
         i += (size_t)gridDim.x * blockDim.x)
        a[i] = bp_half_from_f32(half, bp_act(activation, bp_half_to_f32(half, z[i]), slope));
}

/* Whether this block is the last of its column tile (the blocks of one
 * blockIdx.x) to finish, every thread of the block getting the answer: the
 * block's writes made visible, thread 0 takes a ticket of the tile; the
 * last ticket's block sets it back to 0 for the next launch on the stream
 * (the pattern of kernels/losses.cu's last_block). */
__device__ bool last_of_tile(unsigned *ticket)
{
    __shared__ bool last;
    __threadfence();
    __syncthreads();
    if (threadIdx.x == 0 && threadIdx.y == 0) {
        last = atomicAdd(ticket, 1u) == gridDim.y - 1;
        if (last)
            *ticket = 0;
    }
    __syncthreads();
    if (last)
        __threadfence();
    return last;
}

/* delta_half over a grid of column tiles (x: 32 columns, a warp's
 * coalesced row) by parts of the batch (y: blockDim.y parts a block): each
 * element made bp_half_delta_at, and thread (x, y) sums its column over its
 * part's rows in row order (bp_mixed.h: bp_half_sum_rows). One part
 * (Split false): that sum is db[j]. Several: the sums go to
 * parts[part * n + j], and the tile's last block adds them in part order.
 * Deterministic, no atomics on the values; the CPU's order exactly. */
template <bool Split>
__global__ void mixed_delta_kernel(int half, int activation, float slope,
                                   const uint16_t *__restrict__ z, const uint16_t *__restrict__ a,
                                   uint16_t *__restrict__ d, float *__restrict__ db, int n,
                                   int batch, float *parts, unsigned *tickets)
{
    int col = blockIdx.x * 32 + threadIdx.x, rows = bp_half_sum_rows(batch);
    int part = blockIdx.y * blockDim.y + threadIdx.y, n_parts = bp_half_sum_parts(batch);
    if (col < n && part < n_parts) {
        int first = part * rows, end = batch - first < rows ? batch : first + rows;
        float sum = 0.0f;
        for (int b = first; b < end; b++)
            sum += bp_half_delta_at(half, activation, slope, z, a, d, (size_t)b * n + col);
        if (Split)
            parts[(size_t)part * n + col] = sum;
        else
            db[col] = sum;
    }
    if (!Split || !last_of_tile(&tickets[blockIdx.x]) || threadIdx.y != 0 || col >= n)
        return;
    const volatile float *pv = parts;
    float total = pv[col];
    for (int k = 1; k < n_parts; k++)
        total += pv[(size_t)k * n + col];
    db[col] = total;
}

/* g *= 1/scale (GradScaler.unscale_); a value that is not finite sets
 * skip (every writer writes 1: no order matters). */
__global__ void mixed_unscale_kernel(float *__restrict__ g, size_t count,
                                     const double *__restrict__ scale,
                                     bp_step_scalars *__restrict__ scalars)
{
    float inv = bp_scaler_inverse(*scale);
    int found = 0;
    for (size_t i = blockIdx.x * (size_t)blockDim.x + threadIdx.x; i < count;
         i += (size_t)gridDim.x * blockDim.x)
        g[i] = bp_scaler_unscale(g[i], inv, &found);
    if (found && scalars != nullptr)
        scalars->skip = 1;
}

/* GradScaler.update, one thread (backend.h: scaler_update). */
__global__ void mixed_scaler_update_kernel(bp_step_scalars *s)
{
    if (blockIdx.x != 0 || threadIdx.x != 0)
        return;
    int found = s->skip != 0;
    bp_scaler_update(&s->loss_scale, &s->scale_tracker, found, &s->scaler_error);
    if (found) {
        s->scaler_skips += 1;
        if (s->bad_step == s->steps_seen && s->loss - s->loss == 0.0)
            s->bad_step = 0;
    }
}

} // namespace

extern "C" {

cudaError_t bp_launch_gather_rows_half(cudaStream_t stream, int half, void *dst, const float *src,
                                       const int32_t *rows, int batch, int n)
{
    clear_stale_error();
    BP_DECLARE_WORK("gather_rows_half", 6.0 * n * batch + 4.0 * batch, 0, 0);
    mixed_gather_kernel<<<grid_for_rows((size_t)n, batch), kThreads, 0, stream>>>(
        half, (uint16_t *)dst, src, rows, n, batch);
    return cudaGetLastError();
}

cudaError_t bp_launch_gather_epoch_half(cudaStream_t stream, int half, void *x_dst,
                                        const float *x_src, int n, void *y_dst, const void *y_src,
                                        size_t y_row_bytes, const int32_t *order,
                                        const int64_t *cursor, int batch)
{
    clear_stale_error();
    if (y_dst == NULL)
        y_row_bytes = 0;
    BP_DECLARE_WORK("gather_epoch_half",
                    batch * (6.0 * n + 2.0 * (double)y_row_bytes) + 4.0 * batch, 0, 0);
    if (y_row_bytes % 4 == 0) {
        size_t yw = y_row_bytes / 4;
        mixed_gather_epoch_kernel<uint32_t>
            <<<grid_for_rows((size_t)n + yw, batch), kThreads, 0, stream>>>(
                half, (uint16_t *)x_dst, x_src, n, (uint32_t *)y_dst, (const uint32_t *)y_src, yw,
                order, cursor, batch);
    } else {
        mixed_gather_epoch_kernel<unsigned char>
            <<<grid_for_rows((size_t)n + y_row_bytes, batch), kThreads, 0, stream>>>(
                half, (uint16_t *)x_dst, x_src, n, (unsigned char *)y_dst,
                (const unsigned char *)y_src, y_row_bytes, order, cursor, batch);
    }
    return cudaGetLastError();
}

cudaError_t bp_launch_to_half(cudaStream_t stream, int half, const float *src, void *dst,
                              size_t count, const double *scale)
{
    clear_stale_error();
    BP_DECLARE_WORK("to_half", 6.0 * (double)count, (double)count, 0);
    mixed_to_half_kernel<<<blocks_for(count), kThreads, 0, stream>>>(half, src, (uint16_t *)dst,
                                                                     count, scale);
    return cudaGetLastError();
}

cudaError_t bp_launch_fill_rows_half(cudaStream_t stream, const void *bias, void *z, int n, int batch)
{
    clear_stale_error();
    BP_DECLARE_WORK("fill_rows_half", 2.0 * n * batch + 2.0 * n, 0, 0);
    mixed_fill_rows_kernel<<<grid_for_rows((size_t)n, batch), kThreads, 0, stream>>>(
        (const uint16_t *)bias, (uint16_t *)z, n, batch);
    return cudaGetLastError();
}

cudaError_t bp_launch_act_half(cudaStream_t stream, int half, bp_activation activation,
                               double slope, const void *z, void *a, int n, int batch)
{
    clear_stale_error();
    size_t count = (size_t)n * (size_t)batch;
    BP_DECLARE_WORK("act_half", 4.0 * (double)count, 2.0 * (double)count, 0);
    mixed_act_kernel<<<blocks_for(count), kThreads, 0, stream>>>(
        half, (int)activation, (float)slope, (const uint16_t *)z, (uint16_t *)a, count);
    return cudaGetLastError();
}

cudaError_t bp_launch_delta_half(cudaStream_t stream, int half, bp_activation activation,
                                 double slope, const void *z, const void *a, void *d, float *db,
                                 int n, int batch, float *parts, unsigned *tickets)
{
    clear_stale_error();
    int n_parts = bp_half_sum_parts(batch);
    bool split = n_parts > 1;
    if (split && (parts == nullptr || tickets == nullptr))
        return cudaErrorInvalidValue;
    bool identity = activation == BP_ACT_IDENTITY;
    double nb = (double)n * batch;
    /* d read (and written, z and a read, unless identity), the parts'
     * sums and db written; the tile's last block: its columns' parts. */
    BP_DECLARE_WORK("delta_half",
                    (identity ? 2.0 : 8.0) * nb + 4.0 * n + (split ? 4.0 * n_parts * n : 0.0),
                    (identity ? 1.0 : 4.0) * nb, split ? 4.0 * 32 * (n_parts + 1) + 4.0 : 0.0);
    dim3 block(32, n_parts < 4 ? n_parts : 4);
    dim3 grid((unsigned)((n + 31) / 32), (unsigned)((n_parts + block.y - 1) / block.y));
    if (split)
        mixed_delta_kernel<true><<<grid, block, 0, stream>>>(
            half, (int)activation, (float)slope, (const uint16_t *)z, (const uint16_t *)a,
            (uint16_t *)d, db, n, batch, parts, tickets);
    else
        mixed_delta_kernel<false><<<grid, block, 0, stream>>>(
            half, (int)activation, (float)slope, (const uint16_t *)z, (const uint16_t *)a,
            (uint16_t *)d, db, n, batch, nullptr, nullptr);
    return cudaGetLastError();
}

cudaError_t bp_launch_unscale(cudaStream_t stream, float *g, size_t count, const double *scale,
                              bp_step_scalars *scalars)
{
    clear_stale_error();
    BP_DECLARE_WORK("unscale", 8.0 * (double)count, 2.0 * (double)count, 0);
    mixed_unscale_kernel<<<blocks_for(count), kThreads, 0, stream>>>(g, count, scale, scalars);
    return cudaGetLastError();
}

cudaError_t bp_launch_scaler_update(cudaStream_t stream, bp_step_scalars *scalars)
{
    clear_stale_error();
    BP_DECLARE_WORK("scaler_update", 2.0 * sizeof(bp_step_scalars), 8, 0);
    mixed_scaler_update_kernel<<<1, 1, 0, stream>>>(scalars);
    return cudaGetLastError();
}

} // extern "C"
