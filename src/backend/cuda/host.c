/*
 * host.c — the CUDA backend's host side: device, stream, cuBLAS
 * handle, pinned staging, device memory, and the table of operations that
 * train.c runs. GEMMs go to cuBLAS with the column-major argument lists the
 * CPU backend passes to CBLAS; element-wise work goes to the kernels in kernels/;
 * a hidden ReLU layer's products and the output layer's in float32 training
 * steps go to cuBLASLt with their epilogues fused (lt_plans.c;
 * docs/design.md, section 2).
 *
 * Every CUDA, cuBLAS and cuBLASLt return code is checked and becomes a
 * status whose message names the failing call. Nothing here allocates
 * device memory or synchronises during a step, except download and sync,
 * which are meant to wait; the only host allocations are a cuBLASLt plan's
 * descriptors, once per product shape, kept for every later step, and the
 * pinned staging areas, at the first upload that needs them.
 */
#include <cublasLt.h>
#include <cublas_v2.h>
#include <cuda_runtime.h>
#include <stdlib.h>
#include <string.h>

#include "launch.h"
#include "backend/backend.h"
#include "backend/cuda/branch.h"
#include "backend/cuda/lt_plans.h"
#include "backend/cuda/mixed.h"
#include "backend/cuda/status.h"
#include "api/error.h"

/* cuBLAS workspace, set once so a step can be captured in a CUDA graph. */
#define WORKSPACE_BYTES ((size_t)32 << 20)

/* The pinned staging areas hold at most this much each: a larger upload
 * goes through them in chunks. */
#define STAGING_MIN ((size_t)64 << 10)
#define STAGING_MAX ((size_t)4 << 20)

typedef struct cuda_ctx {
    int device;
    cudaStream_t stream;
    int own_stream;
    cublasHandle_t blas;
    void *workspace;
    bp_math_mode math_mode;
    /* cuBLASLt for the fused products (lt_plans.c), sharing blas's workspace. */
    bp_lt lt;
    /* The weight gradients' side stream, its own handles and workspace
     * (branch.h). */
    bp_cuda_branch branch;
    /* The output layer's kernels' scratch (kernels/launch.h), on the device. */
    bp_kernel_scratch *scratch;
    /* delta_half's bias-gradient parts (mixed.h), on the device. */
    bp_cuda_mixed_sums sums;
    /* Two pinned staging areas of staging_bytes used in turn, allocated at
     * the first upload that needs them; staged[i] records when the copy out
     * of area i has finished, so it may be refilled. */
    unsigned char *staging[2];
    cudaEvent_t staged[2];
    size_t staging_bytes;
    int next;
} cuda_ctx;

cudaStream_t bp_cuda_ctx_stream(void *ctx) { return ((cuda_ctx *)ctx)->stream; }

/* Each operation makes the network's device current and afterwards gives
 * the calling thread back the device it had, so that a host application
 * that works on another GPU (or networks on several) never finds its
 * current device changed by the library. One cudaGetDevice per operation
 * when the device is already current. */
typedef struct device_guard {
    int previous;
    int switched;
} device_guard;

static bp_status enter_device(int device, device_guard *g)
{
    g->switched = 0;
    g->previous = device;
    BP_TRY(BP_CUDA_CHECK(cudaGetDevice(&g->previous)));
    if (g->previous != device) {
        BP_TRY(BP_CUDA_CHECK(cudaSetDevice(device)));
        g->switched = 1;
    }
    return BP_OK;
}

/* Restores the caller's device; returns st, or the restore's failure when
 * st was BP_OK. */
static bp_status leave_device(const device_guard *g, bp_status st)
{
    if (!g->switched)
        return st;
    cudaError_t err = cudaSetDevice(g->previous);
    if (err != cudaSuccess && st == BP_OK)
        return bp_cuda_status(err, "cudaSetDevice (giving the caller its device back)");
    return st;
}

/* The same for the calls that cannot fail (destroy, release): no status,
 * no message; they leave no error behind for a later call to find.
 * quiet_enter returns whether it switched. */
static int quiet_enter(int device, int *previous)
{
    if (cudaGetDevice(previous) != cudaSuccess || *previous == device)
        return 0;
    return cudaSetDevice(device) == cudaSuccess;
}

static void quiet_leave(int switched, int previous)
{
    if (switched)
        (void)cudaSetDevice(previous);
    (void)cudaGetLastError();
}

/* Every operation enters here (host.c's macros below, mixed.c's through
 * bp_cuda_ctx_enter*): its device made current (g, for leave_device), then
 * the weight-gradient branch (branch.h) joined, so that the operation sees
 * every earlier one's results (ENTER_JOIN); joined only where reading rd
 * and writing wr would race with its pending products (ENTER_BESIDE: the
 * backward pass's operations); or forked for a weight gradient that reads
 * rd and writes wr (ENTER_FORK). */
enum { ENTER_JOIN, ENTER_BESIDE, ENTER_FORK };
static bp_status enter_op(cuda_ctx *c, int how, const bp_range *rd, int n_rd, const bp_range *wr,
                          int n_wr, device_guard *g)
{
    BP_TRY(enter_device(c->device, g));
    if (how == ENTER_FORK)
        return bp_cuda_branch_fork(&c->branch, c->stream, rd, n_rd, wr, n_wr);
    if (how == ENTER_BESIDE)
        return bp_cuda_branch_join_if(&c->branch, c->stream, rd, n_rd, wr, n_wr);
    return bp_cuda_branch_join(&c->branch, c->stream);
}

/* Runs `expr` (a bp_status) entered as `how` (enter_op), then gives the
 * caller its device back. ON_DEVICE: after the join; ON_DEVICE_BESIDE: for
 * an operation of the backward pass that reads the ranges rd[] and writes
 * wr[] (arrays); ON_BRANCH: a weight gradient, on the branch. */
#define ON_DEVICE_AS(c, how, rd, n_rd, wr, n_wr, expr)                                           \
    do {                                                                                         \
        device_guard guard_;                                                                     \
        bp_status on_device_status_ = enter_op((c), (how), (rd), (n_rd), (wr), (n_wr), &guard_); \
        if (on_device_status_ == BP_OK)                                                          \
            on_device_status_ = (expr);                                                          \
        return leave_device(&guard_, on_device_status_);                                         \
    } while (0)
#define ON_DEVICE(c, expr) ON_DEVICE_AS(c, ENTER_JOIN, NULL, 0, NULL, 0, expr)
#define ON_DEVICE_BESIDE(c, rd, wr, expr)                                \
    ON_DEVICE_AS(c, ENTER_BESIDE, rd, (int)(sizeof rd / sizeof *rd), wr, \
                 (int)(sizeof wr / sizeof *wr), expr)
#define ON_BRANCH(c, rd, wr, expr)                                     \
    ON_DEVICE_AS(c, ENTER_FORK, rd, (int)(sizeof rd / sizeof *rd), wr, \
                 (int)(sizeof wr / sizeof *wr), expr)

/* Bytes of n elements of dt. */
static size_t dt_bytes(bp_dtype dt, size_t n) { return n * (dt == BP_F64 ? 8 : 4); }

static bp_status alloc_on_device(cuda_ctx *c, size_t bytes, void **ptr);

static void cuda_ctx_destroy(void *p)
{
    cuda_ctx *c = p;
    if (c == NULL)
        return;
    int previous = c->device;
    int switched = quiet_enter(c->device, &previous);
    if (c->stream != NULL)
        cudaStreamSynchronize(c->stream);
    bp_cuda_branch_destroy(&c->branch);
    for (int i = 0; i < 2; i++) {
        if (c->staged[i] != NULL)
            cudaEventDestroy(c->staged[i]);
        if (c->staging[i] != NULL)
            cudaFreeHost(c->staging[i]);
    }
    bp_lt_destroy(&c->lt);
    if (c->scratch != NULL)
        cudaFree(c->scratch);
    if (c->sums.parts != NULL)
        cudaFree(c->sums.parts);
    if (c->sums.tickets != NULL)
        cudaFree(c->sums.tickets);
    if (c->blas != NULL)
        cublasDestroy(c->blas);
    if (c->workspace != NULL)
        cudaFree(c->workspace);
    if (c->own_stream && c->stream != NULL)
        cudaStreamDestroy(c->stream);
    free(c);
    quiet_leave(switched, previous);
}

/* delta_half's parts and tickets for cfg's network (mixed.c sizes them),
 * zero-filled like every allocation; none for most networks. */
static bp_status alloc_mixed_sums(cuda_ctx *c, const bp_network_config *cfg)
{
    size_t floats = 0, tickets = 0;
    bp_cuda_mixed_sums_size(cfg, &floats, &tickets);
    if (floats == 0)
        return BP_OK;
    BP_TRY(alloc_on_device(c, floats * sizeof(float), (void **)&c->sums.parts));
    BP_TRY(alloc_on_device(c, tickets * sizeof(unsigned), (void **)&c->sums.tickets));
    c->sums.part_floats = floats;
    c->sums.ticket_count = tickets;
    return BP_OK;
}

static bp_status cuda_ctx_create(const bp_network_config *cfg, size_t staging_bytes, void **out)
{
    int count = 0;
    cudaError_t why = cudaSuccess;
    BP_TRY(bp_cuda_count_devices(&count, &why));
    if (count == 0)
        return bp_cuda_no_device("bp_network_create", why);
    if (cfg->device >= count)
        return bp_fail(BP_ERR_INVALID_ARGUMENT, "CUDA device %d does not exist (%d device%s found)",
                       cfg->device, count, count == 1 ? "" : "s");
    cuda_ctx *c = calloc(1, sizeof *c);
    if (c == NULL)
        return bp_fail(BP_ERR_OUT_OF_MEMORY, "cuda backend: no host memory for the context");
    c->device = cfg->device;
    c->math_mode = cfg->math_mode;
    /* Staging areas of the step's largest upload, but at least 64 KiB (fewer
     * chunks for parameters) and at most STAGING_MAX. */
    c->staging_bytes = staging_bytes < STAGING_MIN   ? STAGING_MIN
                       : staging_bytes > STAGING_MAX ? STAGING_MAX
                                                     : staging_bytes;
    device_guard g;
    bp_status st = enter_device(c->device, &g);
    if (st != BP_OK) {
        free(c);
        return st;
    }
    if (cfg->cuda_stream != NULL) {
        c->stream = (cudaStream_t)cfg->cuda_stream;
#if CUDART_VERSION >= 12080
        /* A stream of another device would fail at the first launch with
         * "invalid resource handle"; say so now. */
        int stream_device = -1;
        st = BP_CUDA_CHECK(cudaStreamGetDevice(c->stream, &stream_device));
        if (st == BP_OK && stream_device != c->device)
            st = bp_fail(BP_ERR_INVALID_ARGUMENT,
                         "bp_network_create: cuda_stream belongs to CUDA device %d, not to device "
                         "%d where the network is to live (config field 'device')",
                         stream_device, c->device);
#endif
    } else {
        st = BP_CUDA_CHECK(cudaStreamCreateWithFlags(&c->stream, cudaStreamNonBlocking));
        c->own_stream = st == BP_OK;
    }
    if (st == BP_OK)
        st = BP_CUBLAS_CHECK(cublasCreate(&c->blas));
    if (st == BP_OK)
        st = BP_CUBLAS_CHECK(cublasSetStream(c->blas, c->stream));
    if (st == BP_OK)
        st = BP_CUDA_CHECK(cudaMalloc(&c->workspace, WORKSPACE_BYTES));
    if (st == BP_OK)
        st = BP_CUBLAS_CHECK(cublasSetWorkspace(c->blas, c->workspace, WORKSPACE_BYTES));
    if (st == BP_OK)
        st = bp_lt_create(&c->lt, c->stream, c->workspace, WORKSPACE_BYTES, c->math_mode);
    /* Exact FP32 unless a tensor-core mode was asked for (then per GEMM). */
    if (st == BP_OK)
        st = BP_CUBLAS_CHECK(cublasSetMathMode(c->blas, CUBLAS_DEFAULT_MATH));
    if (st == BP_OK)
        st = bp_cuda_branch_create(&c->branch, WORKSPACE_BYTES, c->math_mode);
    if (st == BP_OK)
        st = alloc_on_device(c, sizeof *c->scratch, (void **)&c->scratch);
    if (st == BP_OK)
        st = alloc_mixed_sums(c, cfg);
    if (st != BP_OK) {
        cuda_ctx_destroy(c);
        return leave_device(&g, st);
    }
    *out = c;
    return leave_device(&g, BP_OK);
}

static bp_status alloc_on_device(cuda_ctx *c, size_t bytes, void **ptr)
{
    void *d = NULL;
    cudaError_t err = cudaMalloc(&d, bytes);
    if (err != cudaSuccess) {
        size_t free_bytes = 0, total = 0;
        if (cudaMemGetInfo(&free_bytes, &total) != cudaSuccess)
            free_bytes = 0;
        (void)cudaGetLastError();
        return bp_fail(err == cudaErrorMemoryAllocation ? BP_ERR_OUT_OF_MEMORY : BP_ERR_CUDA,
                       "cudaMalloc of %zu bytes on CUDA device %d failed: %s (%s, code %d; "
                       "%zu bytes free)",
                       bytes, c->device, cudaGetErrorString(err), cudaGetErrorName(err), (int)err,
                       free_bytes);
    }
    bp_status st = BP_CUDA_CHECK(cudaMemsetAsync(d, 0, bytes, c->stream));
    if (st == BP_OK)
        st = BP_CUDA_CHECK(cudaStreamSynchronize(c->stream));
    if (st != BP_OK) {
        cudaFree(d);
        return st;
    }
    *ptr = d;
    return BP_OK;
}

static bp_status cuda_alloc(void *p, size_t bytes, void **ptr)
{
    cuda_ctx *c = p;
    ON_DEVICE(c, alloc_on_device(c, bytes, ptr));
}

static void cuda_release(void *p, void *ptr)
{
    cuda_ctx *c = p;
    int previous = c->device;
    int switched = quiet_enter(c->device, &previous);
    (void)bp_cuda_branch_join(&c->branch, c->stream);
    cudaStreamSynchronize(c->stream);
    cudaFree(ptr);
    quiet_leave(switched, previous);
}

/* The two staging areas, at the first upload (never inside a capture:
 * upload_on_device refuses that first). */
static bp_status staging_ready(cuda_ctx *c)
{
    for (int i = 0; i < 2; i++) {
        if (c->staging[i] != NULL)
            continue;
        BP_TRY(BP_CUDA_CHECK(
            cudaHostAlloc((void **)&c->staging[i], c->staging_bytes, cudaHostAllocDefault)));
        BP_TRY(BP_CUDA_CHECK(cudaEventCreateWithFlags(&c->staged[i], cudaEventDisableTiming)));
    }
    return BP_OK;
}

/* Up to staging_bytes through the next area. Waits only until the copy
 * out of this area (two chunks ago) is done, and only when it is not (a
 * query is not a wait): the device keeps computing earlier work meanwhile. */
static bp_status upload_chunk(cuda_ctx *c, void *dst, const void *src, size_t bytes)
{
    int i = c->next;
    c->next ^= 1;
    cudaError_t ready = cudaEventQuery(c->staged[i]);
    if (ready == cudaErrorNotReady)
        ready = cudaEventSynchronize(c->staged[i]);
    BP_TRY(bp_cuda_status(ready, "waiting for a staging area (cudaEventQuery/Synchronize)"));
    memcpy(c->staging[i], src, bytes);
    BP_TRY(BP_CUDA_CHECK(
        cudaMemcpyAsync(dst, c->staging[i], bytes, cudaMemcpyHostToDevice, c->stream)));
    return BP_CUDA_CHECK(cudaEventRecord(c->staged[i], c->stream));
}

/* Any size, in chunks of a staging area (bounded: a large network's
 * parameters or a data set never pin their own size of host memory). */
static bp_status upload_on_device(cuda_ctx *c, void *dst, const void *src, size_t bytes)
{
    /* A copy out of staging cannot be captured: the host's wait for the
     * staging area is illegal during capture, and a replay would copy
     * whatever the area then holds. Say so instead of failing obscurely. */
    enum cudaStreamCaptureStatus capture = cudaStreamCaptureStatusNone;
    BP_TRY(BP_CUDA_CHECK(cudaStreamIsCapturing(c->stream, &capture)));
    if (capture != cudaStreamCaptureStatusNone)
        return bp_fail(BP_ERR_INVALID_ARGUMENT,
                       "a host array (%zu bytes: inputs, targets or a row list) cannot be copied "
                       "to the device while its stream is captured into a CUDA graph (a replay "
                       "would not repeat the copy); upload the data to bp_buffers first and "
                       "train on them without a host row list",
                       bytes);
    BP_TRY(staging_ready(c));
    for (size_t done = 0; done < bytes;) {
        size_t chunk = bytes - done < c->staging_bytes ? bytes - done : c->staging_bytes;
        BP_TRY(upload_chunk(c, (char *)dst + done, (const char *)src + done, chunk));
        done += chunk;
    }
    return BP_OK;
}

static bp_status download_on_device(cuda_ctx *c, void *dst, const void *src, size_t bytes)
{
    BP_TRY(BP_CUDA_CHECK(cudaMemcpyAsync(dst, src, bytes, cudaMemcpyDeviceToHost, c->stream)));
    return BP_CUDA_CHECK(cudaStreamSynchronize(c->stream));
}

enum { TO_DEVICE, TO_HOST, ON_THE_DEVICE };

/* A copy of `bytes` (none: nothing to do) in the given direction, on the
 * context's device. */
static bp_status transfer(void *p, int kind, void *dst, const void *src, size_t bytes)
{
    cuda_ctx *c = p;
    if (bytes == 0)
        return BP_OK;
    ON_DEVICE(c, kind == TO_DEVICE ? upload_on_device(c, dst, src, bytes)
                 : kind == TO_HOST ? download_on_device(c, dst, src, bytes)
                                   : BP_CUDA_CHECK(cudaMemcpyAsync(
                                         dst, src, bytes, cudaMemcpyDeviceToDevice, c->stream)));
}

static bp_status cuda_upload(void *p, void *dst, const void *src, size_t bytes)
{
    return transfer(p, TO_DEVICE, dst, src, bytes);
}

static bp_status cuda_download(void *p, void *dst, const void *src, size_t bytes)
{
    return transfer(p, TO_HOST, dst, src, bytes);
}

static bp_status cuda_copy(void *p, void *dst, const void *src, size_t bytes)
{
    return transfer(p, ON_THE_DEVICE, dst, src, bytes);
}

static bp_status cuda_zero(void *p, void *dst, size_t bytes)
{
    cuda_ctx *c = p;
    ON_DEVICE(c, BP_CUDA_CHECK(cudaMemsetAsync(dst, 0, bytes, c->stream)));
}

static bp_status cuda_sync(void *p)
{
    cuda_ctx *c = p;
    ON_DEVICE(c, BP_CUDA_CHECK(cudaStreamSynchronize(c->stream)));
}

static bp_status gemm_on_device(cuda_ctx *c, cublasHandle_t h, bp_dtype dt, int trans_a,
                                int trans_b, int m, int n, int k, double alpha, const void *a,
                                int lda, const void *b, int ldb, double beta, void *cm, int ldc)
{
    cublasOperation_t ta = trans_a ? CUBLAS_OP_T : CUBLAS_OP_N;
    cublasOperation_t tb = trans_b ? CUBLAS_OP_T : CUBLAS_OP_N;
    if (dt == BP_F64)
        return BP_CUBLAS_CHECK(
            cublasDgemm(h, ta, tb, m, n, k, &alpha, a, lda, b, ldb, &beta, cm, ldc));
    float af = (float)alpha, bf = (float)beta;
    if (c->math_mode == BP_MATH_FP32)
        return BP_CUBLAS_CHECK(cublasSgemm(h, ta, tb, m, n, k, &af, a, lda, b, ldb, &bf, cm, ldc));
    cublasComputeType_t compute = c->math_mode == BP_MATH_TF32 ? CUBLAS_COMPUTE_32F_FAST_TF32
                                                               : CUBLAS_COMPUTE_32F_FAST_16BF;
    return BP_CUBLAS_CHECK(cublasGemmEx(h, ta, tb, m, n, k, &af, a, CUDA_R_32F, lda, b, CUDA_R_32F,
                                        ldb, &bf, cm, CUDA_R_32F, ldc, compute, CUBLAS_GEMM_DEFAULT));
}

/* A product's operands and result as device ranges (column-major: op(A)
 * m x k, op(B) k x n, C m x n). */
static void gemm_ranges(bp_dtype dt, int trans_a, int trans_b, int m, int n, int k, const void *a,
                        int lda, const void *b, int ldb, const void *cm, int ldc, bp_range rd[2],
                        bp_range wr[1])
{
    rd[0] = (bp_range){a, dt_bytes(dt, (size_t)lda * (size_t)(trans_a ? m : k))};
    rd[1] = (bp_range){b, dt_bytes(dt, (size_t)ldb * (size_t)(trans_b ? k : n))};
    wr[0] = (bp_range){cm, dt_bytes(dt, (size_t)ldc * (size_t)n)};
}

/* A weight gradient, dW = A D^T (backward_layers' gemm(N, T, ...) in
 * src/core/train.c), on the branch; every other product on the main
 * stream, joining the branch first where it would race with it. */
static bp_status cuda_gemm(void *p, bp_dtype dt, int trans_a, int trans_b, int m, int n, int k,
                           double alpha, const void *a, int lda, const void *b, int ldb,
                           double beta, void *cm, int ldc)
{
    cuda_ctx *c = p;
    bp_range rd[2], wr[1];
    gemm_ranges(dt, trans_a, trans_b, m, n, k, a, lda, b, ldb, cm, ldc, rd, wr);
    if (!trans_a && trans_b)
        ON_BRANCH(c, rd, wr,
                  gemm_on_device(c, c->branch.blas, dt, trans_a, trans_b, m, n, k, alpha, a, lda,
                                 b, ldb, beta, cm, ldc));
    ON_DEVICE_BESIDE(c, rd, wr,
                     gemm_on_device(c, c->blas, dt, trans_a, trans_b, m, n, k, alpha, a, lda, b,
                                    ldb, beta, cm, ldc));
}

static bp_status cuda_bias_act(void *p, bp_dtype dt, bp_activation act, double slope,
                               const void *bias, void *z, void *a, int n, int batch)
{
    cuda_ctx *c = p;
    ON_DEVICE(c, BP_CUDA_LAUNCH("bias_act", bp_launch_bias_act(c->stream, dt, act, slope, bias, z,
                                                               a, n, batch)));
}

static bp_status cuda_softmax(void *p, bp_dtype dt, const void *z, void *a, int n, int batch)
{
    cuda_ctx *c = p;
    ON_DEVICE(c, BP_CUDA_LAUNCH("softmax", bp_launch_softmax(c->stream, dt, z, a, n, batch)));
}

static bp_status cuda_output_delta(void *p, bp_dtype dt, bp_loss loss, bp_activation act,
                                   double slope, const void *z, const void *a, const void *y,
                                   const int32_t *labels, void *d, void *sample_loss, int n,
                                   int batch)
{
    cuda_ctx *c = p;
    ON_DEVICE(c, BP_CUDA_LAUNCH("output_delta",
                                bp_launch_output_delta(c->stream, dt, loss, act, slope, z, a, y,
                                                       labels, d, sample_loss, n, batch)));
}

static bp_status cuda_hadamard_delta(void *p, bp_dtype dt, bp_activation act, double slope,
                                     const void *z, const void *a, void *d, size_t count)
{
    cuda_ctx *c = p;
    bp_range rd[] = {{z, dt_bytes(dt, count)}, {a, dt_bytes(dt, count)}};
    bp_range wr[] = {{d, dt_bytes(dt, count)}};
    ON_DEVICE_BESIDE(
        c, rd, wr,
        BP_CUDA_LAUNCH("hadamard_delta",
                       bp_launch_hadamard_delta(c->stream, dt, act, slope, z, a, d, count)));
}

static bp_status cuda_bias_grad(void *p, bp_dtype dt, const void *d, void *db, int n, int batch)
{
    cuda_ctx *c = p;
    bp_range rd[] = {{d, dt_bytes(dt, (size_t)n * (size_t)batch)}};
    bp_range wr[] = {{db, dt_bytes(dt, (size_t)n)}};
    ON_DEVICE_BESIDE(
        c, rd, wr, BP_CUDA_LAUNCH("bias_grad", bp_launch_bias_grad(c->stream, dt, d, db, n, batch)));
}

static bp_status cuda_step_metrics(void *p, bp_dtype dt, const void *sample_loss, const void *a,
                                   const int32_t *labels, int n, int batch, double *loss,
                                   bp_step_scalars *scalars, int64_t *cursor)
{
    cuda_ctx *c = p;
    ON_DEVICE(c, BP_CUDA_LAUNCH("step_metrics",
                                bp_launch_step_metrics(c->stream, dt, sample_loss, a, labels, n,
                                                       batch, loss, scalars, cursor, c->scratch)));
}

static bp_status cuda_check_finite(void *p, bp_dtype dt, const void *g, size_t count,
                                   double *clip_parts, bp_step_scalars *scalars)
{
    cuda_ctx *c = p;
    ON_DEVICE(c, BP_CUDA_LAUNCH("check_finite", bp_launch_check_finite(c->stream, dt, g, count,
                                                                       clip_parts, scalars)));
}

static bp_status cuda_optimizer_update(void *p, bp_dtype dt, const bp_update_rule *rule, void *w,
                                       const void *g, void *s1, void *s2, void *s3, size_t count,
                                       double max_norm, const double *clip_parts,
                                       bp_step_scalars *scalars)
{
    cuda_ctx *c = p;
    ON_DEVICE(c, BP_CUDA_LAUNCH("optimizer_update",
                                bp_launch_optimizer_update(c->stream, dt, rule, w, g, s1, s2, s3,
                                                           count, max_norm, clip_parts, scalars)));
}

static bp_status cuda_optimizer_update_half(void *p, const bp_update_rule *rule, float *w,
                                            const float *g, float *s1, float *s2, float *s3,
                                            size_t count, double max_norm, const double *clip_parts,
                                            bp_step_scalars *scalars, int half, void *w_half)
{
    cuda_ctx *c = p;
    ON_DEVICE(c, BP_CUDA_LAUNCH("optimizer_update",
                                bp_launch_optimizer_update_half(c->stream, rule, w, g, s1, s2, s3,
                                                                count, max_norm, clip_parts,
                                                                scalars, half, w_half)));
}

static bp_status gather_on_device(cuda_ctx *c, void *dst, const void *src, const int32_t *rows,
                                  int batch, size_t row_bytes)
{
    if (rows == NULL)
        return BP_CUDA_CHECK(cudaMemcpyAsync(dst, src, (size_t)batch * row_bytes,
                                             cudaMemcpyDeviceToDevice, c->stream));
    return BP_CUDA_LAUNCH("gather_rows",
                          bp_launch_gather_rows(c->stream, dst, src, rows, batch, row_bytes));
}

static bp_status cuda_gather_rows(void *p, void *dst, const void *src, const int32_t *rows,
                                  int batch, size_t row_bytes)
{
    cuda_ctx *c = p;
    ON_DEVICE(c, gather_on_device(c, dst, src, rows, batch, row_bytes));
}

static bp_status cuda_gather_epoch(void *p, void *x_dst, const void *x_src, size_t x_row_bytes,
                                   void *y_dst, const void *y_src, size_t y_row_bytes,
                                   const int32_t *order, const int64_t *cursor, int batch)
{
    cuda_ctx *c = p;
    ON_DEVICE(c, BP_CUDA_LAUNCH("gather_epoch",
                                bp_launch_gather_epoch(c->stream, x_dst, x_src, x_row_bytes, y_dst,
                                                       y_src, y_row_bytes, order, cursor, batch)));
}

static bp_status cuda_output_step(void *p, bp_dtype dt, bp_loss loss, bp_activation act,
                                  double slope, const void *z, void *a, const void *y,
                                  const int32_t *labels, void *d, void *sample_loss, void *db,
                                  int n, int batch, double *loss_out, bp_step_scalars *scalars,
                                  int64_t *cursor)
{
    cuda_ctx *c = p;
    ON_DEVICE(c, BP_CUDA_LAUNCH("output_step",
                                bp_launch_output_step(c->stream, dt, loss, act, slope, z, a, y,
                                                      labels, d, sample_loss, db, n, batch,
                                                      loss_out, scalars, cursor, c->scratch)));
}

static bp_status cuda_delta_bias_grad(void *p, bp_dtype dt, bp_activation act, double slope,
                                      const void *z, const void *a, void *d, void *db, int n,
                                      int batch)
{
    cuda_ctx *c = p;
    size_t count = (size_t)n * (size_t)batch;
    bp_range rd[] = {{z, dt_bytes(dt, count)}, {a, dt_bytes(dt, count)}};
    bp_range wr[] = {{d, dt_bytes(dt, count)}, {db, dt_bytes(dt, (size_t)n)}};
    ON_DEVICE_BESIDE(
        c, rd, wr,
        BP_CUDA_LAUNCH("delta_bias_grad", bp_launch_delta_bias_grad(c->stream, dt, act, slope, z,
                                                                    a, d, db, n, batch)));
}

/* ---- fused products (cuBLASLt epilogues, lt_plans.c) ------------------- */

/* The products of train.c's argument lists with their epilogues (backend.h):
 * float32 only; BP_ERR_UNSUPPORTED, having issued nothing, when cuBLASLt
 * offers no algorithm or refuses the call: train.c then runs the product
 * unfused. */
static bp_status fused_unsupported(bp_dtype dt)
{
    return dt == BP_F32 ? BP_OK : bp_fail(BP_ERR_UNSUPPORTED, "fused epilogues are float32 only");
}

static bp_status fused(cuda_ctx *c, bp_dtype dt, bp_lt_kind kind, int m, int n, int k, const void *a,
                       const void *b, void *d, const void *bias, const void *aux, int64_t aux_ld)
{
    BP_TRY(fused_unsupported(dt));
    ON_DEVICE(c, bp_lt_matmul(&c->lt, kind, m, n, k, a, b, d, bias, aux, aux_ld));
}

static bp_status cuda_linear_relu_forward(void *p, bp_dtype dt, const void *w, const void *a_in,
                                          const void *bias, void *a_out, void *mask,
                                          int64_t mask_ld, int n_out, int batch, int n_in)
{
    return fused(p, dt, BP_LT_RELU_AUX_BIAS, n_out, batch, n_in, w, a_in, a_out, bias, mask,
                 mask_ld);
}

/* Beside the branch: it writes d_prev and db of the layer below, which the
 * branch's weight gradient of this layer neither reads nor writes. */
static bp_status cuda_linear_drelu_backward(void *p, bp_dtype dt, const void *w, const void *d,
                                            const void *mask, int64_t mask_ld, void *d_prev,
                                            void *db, int n_in, int batch, int n_out)
{
    cuda_ctx *c = p;
    BP_TRY(fused_unsupported(dt));
    bp_range rd[] = {{w, dt_bytes(dt, (size_t)n_in * (size_t)n_out)},
                     {d, dt_bytes(dt, (size_t)n_out * (size_t)batch)},
                     {mask, (size_t)mask_ld / 8 * (size_t)batch}};
    bp_range wr[] = {{d_prev, dt_bytes(dt, (size_t)n_in * (size_t)batch)},
                     {db, dt_bytes(dt, (size_t)n_in)}};
    ON_DEVICE_BESIDE(c, rd, wr,
                     bp_lt_matmul(&c->lt, BP_LT_DRELU_BGRAD, n_in, batch, n_out, w, d, d_prev, db,
                                  mask, mask_ld));
}

static bp_status cuda_linear_bias_forward(void *p, bp_dtype dt, const void *w, const void *a_in,
                                          const void *bias, void *z, int n_out, int batch, int n_in)
{
    return fused(p, dt, BP_LT_BIAS, n_out, batch, n_in, w, a_in, z, bias, NULL, 0);
}

/* A weight gradient with its bias gradient: on the branch, with the
 * branch's own cuBLASLt plans and workspace. BP_ERR_UNSUPPORTED (no
 * algorithm) having issued nothing but the fork, which orders nothing. */
static bp_status cuda_linear_wgrad_bgrad(void *p, bp_dtype dt, const void *a_in, const void *d,
                                         void *dw, void *db, int n_in, int batch, int n_out)
{
    cuda_ctx *c = p;
    BP_TRY(fused_unsupported(dt));
    bp_range rd[] = {{a_in, dt_bytes(BP_F32, (size_t)n_in * (size_t)batch)},
                     {d, dt_bytes(BP_F32, (size_t)n_out * (size_t)batch)}};
    bp_range wr[] = {{dw, dt_bytes(BP_F32, (size_t)n_in * (size_t)n_out)},
                     {db, dt_bytes(BP_F32, (size_t)n_out)}};
    ON_BRANCH(
        c, rd, wr,
        bp_lt_matmul(&c->branch.lt, BP_LT_BGRADB, n_in, n_out, batch, a_in, d, dw, db, NULL, 0));
}

/* For tests (backend/cuda/lt_plans.h): the state of a product's plan (a
 * weight gradient's in the branch's plans). */
int bp_cuda_lt_plan_state(void *p, int kind, int m, int n, int k, const void *bias, const void *aux)
{
    cuda_ctx *c = p;
    const bp_lt *lt = kind == BP_LT_BGRADB ? &c->branch.lt : &c->lt;
    return bp_lt_plan_state(lt, (bp_lt_kind)kind, m, n, k, bias, aux);
}

/* ---- whole steps as CUDA graphs ---------------------------------------- */

/* Thread-local mode: this thread may make no unsafe call while it records
 * (the emulated runtime enforces the same rules), other threads may. */
static bp_status cuda_graph_begin(void *p)
{
    cuda_ctx *c = p;
    ON_DEVICE(c, BP_CUDA_CHECK(cudaStreamBeginCapture(c->stream, cudaStreamCaptureModeThreadLocal)));
}

static bp_status graph_end_on_device(cuda_ctx *c, void **out)
{
    cudaGraph_t graph = NULL;
    *out = NULL;
    BP_TRY(BP_CUDA_CHECK(cudaStreamEndCapture(c->stream, &graph)));
    cudaGraphExec_t exec = NULL;
    bp_status st = BP_CUDA_CHECK(cudaGraphInstantiate(&exec, graph, 0));
    cudaGraphDestroy(graph);
    if (st == BP_OK)
        *out = exec;
    return st;
}

static bp_status cuda_graph_end(void *p, void **graph)
{
    cuda_ctx *c = p;
    ON_DEVICE(c, graph_end_on_device(c, graph));
}

static bp_status cuda_graph_launch(void *p, void *graph)
{
    cuda_ctx *c = p;
    ON_DEVICE(c, BP_CUDA_CHECK(cudaGraphLaunch((cudaGraphExec_t)graph, c->stream)));
}

static void cuda_graph_release(void *p, void *graph)
{
    cuda_ctx *c = p;
    int previous = c->device;
    int switched = quiet_enter(c->device, &previous);
    if (graph != NULL)
        cudaGraphExecDestroy((cudaGraphExec_t)graph);
    quiet_leave(switched, previous);
}

/* ---- for the backend's other files (mixed.c) ---------------------------- */

cublasHandle_t bp_cuda_ctx_blas(void *ctx) { return ((cuda_ctx *)ctx)->blas; }

const bp_cuda_mixed_sums *bp_cuda_ctx_mixed_sums(void *ctx) { return &((cuda_ctx *)ctx)->sums; }

bp_lt *bp_cuda_ctx_lt(void *ctx) { return &((cuda_ctx *)ctx)->lt; }

/* mixed.c's operations (mixed.h) enter as host.c's do (enter_op), and
 * leave through bp_cuda_ctx_leave. */
static bp_status enter_mixed(void *ctx, int how, const bp_range *rd, int n_rd, const bp_range *wr,
                             int n_wr, int *previous, int *switched)
{
    device_guard g;
    bp_status st = enter_op(ctx, how, rd, n_rd, wr, n_wr, &g);
    *previous = g.previous;
    *switched = g.switched;
    return st;
}

bp_status bp_cuda_ctx_enter(void *ctx, int *previous, int *switched)
{
    return enter_mixed(ctx, ENTER_JOIN, NULL, 0, NULL, 0, previous, switched);
}

bp_status bp_cuda_ctx_enter_beside(void *ctx, const bp_range *rd, int n_rd, const bp_range *wr,
                                   int n_wr, int *previous, int *switched)
{
    return enter_mixed(ctx, ENTER_BESIDE, rd, n_rd, wr, n_wr, previous, switched);
}

bp_status bp_cuda_ctx_enter_branch(void *ctx, const bp_range *rd, int n_rd, const bp_range *wr,
                                   int n_wr, int *previous, int *switched, cublasHandle_t *blas)
{
    *blas = ((cuda_ctx *)ctx)->branch.blas;
    return enter_mixed(ctx, ENTER_FORK, rd, n_rd, wr, n_wr, previous, switched);
}

/* For src/parallel/nccl.c (status.h): `other` waits for the weight
 * gradients issued on the branch so far (an event, no host wait). */
bp_status bp_cuda_ctx_branch_before(void *ctx, cudaStream_t other)
{
    cuda_ctx *c = ctx;
    if (!c->branch.pending)
        return BP_OK;
    BP_TRY(BP_CUDA_CHECK(cudaEventRecord(c->branch.join, c->branch.stream)));
    return BP_CUDA_CHECK(cudaStreamWaitEvent(other, c->branch.join, 0));
}

/* For src/parallel/nccl.c (status.h): the main stream joins the branch. */
bp_status bp_cuda_ctx_join(void *ctx)
{
    cuda_ctx *c = ctx;
    return bp_cuda_branch_join(&c->branch, c->stream);
}

bp_status bp_cuda_ctx_leave(int previous, int switched, bp_status st)
{
    device_guard g = {previous, switched};
    return leave_device(&g, st);
}

const bp_backend_ops bp_cuda_backend_ops = {
    .name = "cuda",
    .ctx_create = cuda_ctx_create,
    .ctx_destroy = cuda_ctx_destroy,
    .alloc = cuda_alloc,
    .release = cuda_release,
    .upload = cuda_upload,
    .download = cuda_download,
    .copy = cuda_copy,
    .zero = cuda_zero,
    .sync = cuda_sync,
    .gemm = cuda_gemm,
    .bias_act = cuda_bias_act,
    .softmax = cuda_softmax,
    .output_delta = cuda_output_delta,
    .hadamard_delta = cuda_hadamard_delta,
    .bias_grad = cuda_bias_grad,
    .step_metrics = cuda_step_metrics,
    .check_finite = cuda_check_finite,
    .optimizer_update = cuda_optimizer_update,
    .gather_rows = cuda_gather_rows,
    .gather_epoch = cuda_gather_epoch,
    .output_step = cuda_output_step,
    .delta_bias_grad = cuda_delta_bias_grad,
    .graph_begin = cuda_graph_begin,
    .graph_end = cuda_graph_end,
    .graph_launch = cuda_graph_launch,
    .graph_release = cuda_graph_release,
    .linear_relu_forward = cuda_linear_relu_forward,
    .linear_drelu_backward = cuda_linear_drelu_backward,
    .linear_bias_forward = cuda_linear_bias_forward,
    .linear_wgrad_bgrad = cuda_linear_wgrad_bgrad,
    /* mixed precision (mixed.c) */
    .gather_rows_half = bp_cuda_gather_rows_half,
    .gather_epoch_half = bp_cuda_gather_epoch_half,
    .to_half = bp_cuda_to_half,
    .gemm_half = bp_cuda_gemm_half,
    .fill_rows_half = bp_cuda_fill_rows_half,
    .act_half = bp_cuda_act_half,
    .delta_half = bp_cuda_delta_half,
    .linear_relu_forward_half = bp_cuda_linear_relu_forward_half,
    .linear_drelu_half = bp_cuda_linear_drelu_half,
    .linear_bias_forward_half = bp_cuda_linear_bias_forward_half,
    .optimizer_update_half = cuda_optimizer_update_half,
    .unscale = bp_cuda_unscale,
    .scaler_update = bp_cuda_scaler_update,
};
