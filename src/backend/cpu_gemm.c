/*
 * cpu_gemm.c — the CPU backend's GEMMs in blocks (cpu_gemm.h).
 *
 * A product C (m x n) = op(A) op(B) is cut along its larger dimension of
 * C into a power of two of blocks, each at least BLOCK_MIN rows (or
 * columns) and BLOCK_WORK multiply-adds, their bounds multiples of
 * BLOCK_ALIGN (the BLAS kernels' unroll, a 64-byte line of float32): a
 * block of rows packs its part of op(A) and all of op(B), so blocks of at
 * least that size lose little to the packing they repeat, and smaller
 * products stay one call. A power of two of blocks shares evenly among
 * 1, 2, 4, ... threads. Each
 * block is C's block = alpha op(A)'s rows op(B) + beta C's block: the
 * same call the unblocked product would make on those elements, so with
 * a BLAS whose single-threaded result for an element does not depend on
 * where the element lies in C (the reference BLAS; OpenBLAS's blocked
 * kernels, checked by tests/test_cpu_threads.cpp) blocking changes no bit
 * either; with any BLAS, the same shape always gives the same blocks.
 */
#include "backend/cpu_gemm.h"

#include <cblas.h>

#include "bp_blas_features.h"

#define BLOCK_WORK ((int64_t)1 << 20)
#define BLOCK_MIN 64
#define BLOCK_ALIGN 16
#define MAX_BLOCKS 64

/* OpenBLAS's call, when the BLAS loaded at run time is OpenBLAS (a weak
 * reference: NULL with any other BLAS, which then runs as it is). */
#if defined(__GNUC__)
extern void openblas_set_num_threads(int num_threads) __attribute__((weak));
#define BP_OPENBLAS_THREADS openblas_set_num_threads
#else
#define BP_OPENBLAS_THREADS ((void (*)(int))0)
#endif

void bp_cpu_blas_single_thread(void)
{
    if (BP_OPENBLAS_THREADS != 0)
        BP_OPENBLAS_THREADS(1);
}

int bp_cpu_gemm_blocks(int m, int n, int k)
{
    int64_t work = (int64_t)m * n * k, dim = m >= n ? m : n;
    int64_t most = work / BLOCK_WORK, by_dim = dim / BLOCK_MIN;
    if (by_dim < most)
        most = by_dim;
    if (most > MAX_BLOCKS)
        most = MAX_BLOCKS;
    int blocks = 1;
    while (blocks * 2 <= most)
        blocks *= 2;
    return blocks;
}

/* The element types of a product: A, B and C float64, float32, or A and B
 * BF16 with C float32 (cblas_sbgemm). */
enum { KIND_F64, KIND_F32, KIND_BF16 };

/* A product and its blocks: along C's rows (by_rows) or columns. */
typedef struct gemm_job {
    bp_gemm_args g;
    int kind, blocks, by_rows;
} gemm_job;

static gemm_job make_job(int kind, const bp_gemm_args *g)
{
    gemm_job j = {*g, kind, bp_cpu_gemm_blocks(g->m, g->n, g->k), g->m >= g->n};
    return j;
}

static int dtype_kind(bp_dtype dt) { return dt == BP_F32 ? KIND_F32 : KIND_F64; }

static void gemm_call(const gemm_job *j, int m, int n, const char *a, const char *b, char *c)
{
    const bp_gemm_args *g = &j->g;
    enum CBLAS_TRANSPOSE ta = g->trans_a ? CblasTrans : CblasNoTrans;
    enum CBLAS_TRANSPOSE tb = g->trans_b ? CblasTrans : CblasNoTrans;
#ifdef BP_HAVE_SBGEMM
    if (j->kind == KIND_BF16) {
        cblas_sbgemm(CblasColMajor, ta, tb, m, n, g->k, (float)g->alpha, (const bfloat16 *)a,
                     g->lda, (const bfloat16 *)b, g->ldb, (float)g->beta, (float *)c, g->ldc);
        return;
    }
#endif
    if (j->kind == KIND_F32)
        cblas_sgemm(CblasColMajor, ta, tb, m, n, g->k, (float)g->alpha, (const float *)a, g->lda,
                    (const float *)b, g->ldb, (float)g->beta, (float *)c, g->ldc);
    else
        cblas_dgemm(CblasColMajor, ta, tb, m, n, g->k, g->alpha, (const double *)a, g->lda,
                    (const double *)b, g->ldb, g->beta, (double *)c, g->ldc);
}

/* Block i: rows [lo, hi) of C (its part of op(A)), or columns (of op(B)). */
static void gemm_block(const gemm_job *j, int64_t i)
{
    const bp_gemm_args *g = &j->g;
    const char *a = g->a, *b = g->b;
    char *c = g->c;
    if (j->blocks == 1) {
        gemm_call(j, g->m, g->n, a, b, c);
        return;
    }
    /* bytes of an element of A and B, and of C */
    size_t es = j->kind == KIND_BF16 ? 2 : j->kind == KIND_F32 ? sizeof(float) : sizeof(double);
    size_t cs = j->kind == KIND_F64 ? sizeof(double) : sizeof(float);
    int64_t dim = j->by_rows ? g->m : g->n;
    int64_t lo = bp_cpu_task_begin(dim, j->blocks, i, BLOCK_ALIGN);
    int64_t hi = bp_cpu_task_begin(dim, j->blocks, i + 1, BLOCK_ALIGN);
    if (hi <= lo)
        return;
    if (j->by_rows) { /* op(A) rows lo..hi: A's rows (N) or columns (T) */
        size_t a_off = g->trans_a ? (size_t)lo * (size_t)g->lda : (size_t)lo;
        gemm_call(j, (int)(hi - lo), g->n, a + a_off * es, b, c + (size_t)lo * cs);
    } else { /* op(B) columns lo..hi: B's columns (N) or rows (T) */
        size_t b_off = g->trans_b ? (size_t)lo : (size_t)lo * (size_t)g->ldb;
        gemm_call(j, g->m, (int)(hi - lo), a, b + b_off * es, c + (size_t)lo * (size_t)g->ldc * cs);
    }
}

static void one_block(void *arg, int64_t i) { gemm_block(arg, i); }

/* Every product first sets the BLAS to one thread again: a program that
 * sets OpenBLAS's threads after the network was made (a command's thread
 * flag, another library) would otherwise make each block a threaded call,
 * with other rounding and the BLAS's threads spinning beside the pool's.
 * (About 40 ns a call with OpenBLAS 0.3.21.) */
void bp_cpu_gemm(bp_cpu_pool *pool, bp_dtype dt, const bp_gemm_args *g)
{
    bp_cpu_blas_single_thread();
    gemm_job j = make_job(dtype_kind(dt), g);
    bp_cpu_pool_run(pool, j.blocks, one_block, &j);
}

#ifdef BP_HAVE_SBGEMM
void bp_cpu_gemm_bf16(bp_cpu_pool *pool, const bp_gemm_args *g)
{
    bp_cpu_blas_single_thread();
    gemm_job j = make_job(KIND_BF16, g);
    bp_cpu_pool_run(pool, j.blocks, one_block, &j);
}
#endif

/* Task i: a block of the first product, then of the second. */
static void pair_block(void *arg, int64_t i)
{
    const gemm_job *j = arg;
    if (i < j[0].blocks)
        gemm_block(&j[0], i);
    else
        gemm_block(&j[1], i - j[0].blocks);
}

void bp_cpu_gemm2(bp_cpu_pool *pool, bp_dtype dt, const bp_gemm_args *first,
                  const bp_gemm_args *second)
{
    bp_cpu_blas_single_thread();
    gemm_job j[2] = {make_job(dtype_kind(dt), first), make_job(dtype_kind(dt), second)};
    bp_cpu_pool_run(pool, j[0].blocks + j[1].blocks, pair_block, j);
}
