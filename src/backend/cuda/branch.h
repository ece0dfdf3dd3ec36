/*
 * branch.h — the CUDA backend's side stream (branch.c): a layer's weight
 * gradient dW = A D^T runs on a branch forked from the network's stream, so
 * that it overlaps the products and kernels that go on computing the deltas
 * below it (docs/design.md, section 2, "The weight-gradient branch"). The
 * branch has its own cuBLAS handle, cuBLASLt plans and workspace (a handle
 * or a workspace is never used by two streams at once), allocated with the
 * network. The main stream joins the branch before any operation that reads
 * what the branch writes or writes what it reads; host.c joins before every
 * operation but the few of the backward pass that it checks (internal).
 */
#ifndef BP_CUDA_BRANCH_H
#define BP_CUDA_BRANCH_H

#include <cublas_v2.h>
#include <cuda_runtime.h>
#include <stddef.h>

#include "backend/cuda/lt_plans.h"
#include "backprop.h"

/* The device ranges the branch's pending products read and write. */
enum { BP_BRANCH_RANGES = 24 };

typedef struct bp_range {
    const void *p;
    size_t bytes;
} bp_range;

typedef struct bp_cuda_branch {
    cudaStream_t stream;
    cublasHandle_t blas;
    void *workspace;
    bp_lt lt;
    cudaEvent_t fork, join; /* recorded on the main stream / on the branch */
    /* Work issued on the branch since the main stream last joined it, and
     * the ranges that work reads and writes. */
    int pending;
    int reads, writes;
    bp_range read[BP_BRANCH_RANGES], written[BP_BRANCH_RANGES];
} bp_cuda_branch;

/* The branch of a network on the current device: a stream, a cuBLAS
 * handle on it with a workspace of workspace_bytes, cuBLASLt plans for it
 * in math_mode, two events. On failure *b is left for bp_cuda_branch_destroy. */
bp_status bp_cuda_branch_create(bp_cuda_branch *b, size_t workspace_bytes, bp_math_mode math_mode);
/* Waits for the branch and frees it (the device current). */
void bp_cuda_branch_destroy(bp_cuda_branch *b);

/* Before a product on the branch that reads `reads` and writes `writes`:
 * the branch waits for everything issued so far on main (an event, no
 * host wait), and the ranges are remembered until the next join. A
 * product whose ranges no longer fit joins the branch first. */
bp_status bp_cuda_branch_fork(bp_cuda_branch *b, cudaStream_t main, const bp_range *reads,
                              int n_reads, const bp_range *writes, int n_writes);
/* main waits for everything issued on the branch (nothing when nothing is
 * pending). CUDA graphs need it before their capture ends. */
bp_status bp_cuda_branch_join(bp_cuda_branch *b, cudaStream_t main);
/* Joins only when an operation on main reading `reads` and writing
 * `writes` would race with the branch's pending work: a write over what
 * the branch reads or writes, a read of what it writes. */
bp_status bp_cuda_branch_join_if(bp_cuda_branch *b, cudaStream_t main, const bp_range *reads,
                                 int n_reads, const bp_range *writes, int n_writes);

#endif
