/*
 * branch.c — the weight-gradient branch of the CUDA backend (branch.h).
 *
 * A fork is an event recorded on the main stream that the branch waits
 * for; a join is an event recorded on the branch that the main stream
 * waits for. Both are legal inside a stream capture (the branch then joins
 * the capture, and host.c joins it back before the capture ends, which
 * cudaStreamEndCapture requires), and neither makes the host wait.
 */
#include "backend/cuda/branch.h"

#include <stdint.h>
#include <string.h>

#include "api/error.h"
#include "backend/cuda/status.h"

bp_status bp_cuda_branch_create(bp_cuda_branch *b, size_t workspace_bytes, bp_math_mode math_mode)
{
    memset(b, 0, sizeof *b);
    BP_TRY(BP_CUDA_CHECK(cudaStreamCreateWithFlags(&b->stream, cudaStreamNonBlocking)));
    BP_TRY(BP_CUDA_CHECK(cudaEventCreateWithFlags(&b->fork, cudaEventDisableTiming)));
    BP_TRY(BP_CUDA_CHECK(cudaEventCreateWithFlags(&b->join, cudaEventDisableTiming)));
    BP_TRY(BP_CUBLAS_CHECK(cublasCreate(&b->blas)));
    BP_TRY(BP_CUBLAS_CHECK(cublasSetStream(b->blas, b->stream)));
    BP_TRY(BP_CUDA_CHECK(cudaMalloc(&b->workspace, workspace_bytes)));
    BP_TRY(BP_CUBLAS_CHECK(cublasSetWorkspace(b->blas, b->workspace, workspace_bytes)));
    BP_TRY(BP_CUBLAS_CHECK(cublasSetMathMode(b->blas, CUBLAS_DEFAULT_MATH)));
    return bp_lt_create(&b->lt, b->stream, b->workspace, workspace_bytes, math_mode);
}

void bp_cuda_branch_destroy(bp_cuda_branch *b)
{
    if (b->stream != NULL)
        cudaStreamSynchronize(b->stream);
    bp_lt_destroy(&b->lt);
    if (b->blas != NULL)
        cublasDestroy(b->blas);
    if (b->workspace != NULL)
        cudaFree(b->workspace);
    if (b->fork != NULL)
        cudaEventDestroy(b->fork);
    if (b->join != NULL)
        cudaEventDestroy(b->join);
    if (b->stream != NULL)
        cudaStreamDestroy(b->stream);
    memset(b, 0, sizeof *b);
}

static int overlaps(const bp_range *x, const bp_range *y)
{
    uintptr_t a = (uintptr_t)x->p, b = (uintptr_t)y->p;
    return x->bytes > 0 && y->bytes > 0 && a < b + y->bytes && b < a + x->bytes;
}

static int any_overlap(const bp_range *xs, int nx, const bp_range *ys, int ny)
{
    for (int i = 0; i < nx; i++)
        for (int j = 0; j < ny; j++)
            if (overlaps(&xs[i], &ys[j]))
                return 1;
    return 0;
}

bp_status bp_cuda_branch_join(bp_cuda_branch *b, cudaStream_t main)
{
    if (!b->pending)
        return BP_OK;
    BP_TRY(BP_CUDA_CHECK(cudaEventRecord(b->join, b->stream)));
    BP_TRY(BP_CUDA_CHECK(cudaStreamWaitEvent(main, b->join, 0)));
    b->pending = 0;
    b->reads = b->writes = 0;
    return BP_OK;
}

bp_status bp_cuda_branch_join_if(bp_cuda_branch *b, cudaStream_t main, const bp_range *reads,
                                 int n_reads, const bp_range *writes, int n_writes)
{
    if (!b->pending)
        return BP_OK;
    if (any_overlap(writes, n_writes, b->read, b->reads) ||
        any_overlap(writes, n_writes, b->written, b->writes) ||
        any_overlap(reads, n_reads, b->written, b->writes))
        return bp_cuda_branch_join(b, main);
    return BP_OK;
}

bp_status bp_cuda_branch_fork(bp_cuda_branch *b, cudaStream_t main, const bp_range *reads,
                              int n_reads, const bp_range *writes, int n_writes)
{
    if (b->reads + n_reads > BP_BRANCH_RANGES || b->writes + n_writes > BP_BRANCH_RANGES)
        BP_TRY(bp_cuda_branch_join(b, main));
    BP_TRY(BP_CUDA_CHECK(cudaEventRecord(b->fork, main)));
    BP_TRY(BP_CUDA_CHECK(cudaStreamWaitEvent(b->stream, b->fork, 0)));
    memcpy(&b->read[b->reads], reads, (size_t)n_reads * sizeof *reads);
    memcpy(&b->written[b->writes], writes, (size_t)n_writes * sizeof *writes);
    b->reads += n_reads;
    b->writes += n_writes;
    b->pending = 1;
    return BP_OK;
}
