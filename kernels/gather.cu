/*
 * gather.cu — CUDA kernels of backprop: rows of a data set gathered on the device: by a row list,
 * or the epoch's next rows by the device cursor, for float and double.
 *
 * Every formula comes from bp_math.h, the header the CPU backend's loops
 * call, so the GPU computes the CPU's arithmetic. Reductions run in a fixed
 * order without atomics, so results repeat bit for bit run to run.
 */
#include "kernel_util.cuh"

namespace {

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

} // namespace

extern "C" {

cudaError_t bp_launch_gather_rows(cudaStream_t stream, void *dst, const void *src,
                                  const int32_t *rows, int batch, size_t row_bytes)
{
    clear_stale_error();
    BP_DECLARE_WORK("gather_rows", 2.0 * batch * (double)row_bytes + 4.0 * batch, 0, 0);
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
    BP_DECLARE_WORK("gather_epoch",
                    2.0 * batch * (double)(x_row_bytes + y_row_bytes) + 4.0 * batch, 0, 0);
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
