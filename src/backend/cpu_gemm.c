/*
 * cpu_gemm.c — the CPU backend's GEMMs in blocks (cpu_gemm.h).
 *
 * A product C (m x n) = op(A) op(B) is cut along its larger dimension of
 * C into a power of two of blocks, each at least BLOCK_MIN rows (or
 * columns) and BLOCK_WORK multiply-adds, their bounds multiples of
 * BLOCK_ALIGN (the BLAS kernels' unroll, a 64-byte line of float32): a
 * block of rows packs its part of op(A) and all of op(B), so blocks of at
 * least that size lose little to the packing they repeat, and smaller
 * products stay one call. These are the shape's blocks, the same for any
 * thread count. Each block is C's block = alpha op(A)'s rows op(B) + beta
 * C's block: the same call the unblocked product would make on those
 * elements, so with a BLAS whose single-threaded result for an element
 * does not depend on where the element lies in C (the reference BLAS;
 * OpenBLAS's blocked kernels on the README network's shapes, checked by
 * tests/test_cpu_threads.cpp) blocking changes no bit either. A pool with
 * fewer threads than a shape's blocks runs it in one block a thread where
 * that was found to give the same bits (plans, below).
 */
#include "backend/cpu_gemm.h"

#include <cblas.h>
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "bp_blas_features.h"
#include "api/error.h"

#define BLOCK_WORK ((int64_t)1 << 20)
#define BLOCK_MIN 64
#define BLOCK_ALIGN BP_CPU_GEMM_ALIGN
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

static int plan_blocks(bp_cpu_pool *pool, int kind, const bp_gemm_args *g);

static gemm_job make_job(bp_cpu_pool *pool, int kind, const bp_gemm_args *g)
{
    gemm_job j = {*g, kind, plan_blocks(pool, kind, g), g->m >= g->n};
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

/* The rows or columns of C that block i holds: [*lo, *hi) along the
 * blocks' dimension (rows by_rows, else columns). */
static void block_bounds(const gemm_job *j, int64_t i, int64_t *lo, int64_t *hi)
{
    int64_t dim = j->by_rows ? j->g.m : j->g.n;
    *lo = j->blocks == 1 ? 0 : bp_cpu_task_begin(dim, j->blocks, i, BLOCK_ALIGN);
    *hi = j->blocks == 1 ? dim : bp_cpu_task_begin(dim, j->blocks, i + 1, BLOCK_ALIGN);
}

/* A product's job with an epilogue on each block (fn NULL: none). */
typedef struct epilogue_job {
    gemm_job gemm;
    bp_cpu_epilogue fn;
    void *arg;
} epilogue_job;

/* Block i: rows [lo, hi) of C (its part of op(A)), or columns (of op(B)),
 * then the epilogue on them. */
static void gemm_block(const epilogue_job *e, int64_t i)
{
    const gemm_job *j = &e->gemm;
    const bp_gemm_args *g = &j->g;
    const char *a = g->a, *b = g->b;
    char *c = g->c;
    /* bytes of an element of A and B, and of C */
    size_t es = j->kind == KIND_BF16 ? 2 : j->kind == KIND_F32 ? sizeof(float) : sizeof(double);
    size_t cs = j->kind == KIND_F64 ? sizeof(double) : sizeof(float);
    int64_t lo, hi;
    block_bounds(j, i, &lo, &hi);
    if (hi <= lo)
        return;
    if (j->by_rows) { /* op(A) rows lo..hi: A's rows (N) or columns (T) */
        size_t a_off = g->trans_a ? (size_t)lo * (size_t)g->lda : (size_t)lo;
        gemm_call(j, (int)(hi - lo), g->n, a + a_off * es, b, c + (size_t)lo * cs);
    } else { /* op(B) columns lo..hi: B's columns (N) or rows (T) */
        size_t b_off = g->trans_b ? (size_t)lo : (size_t)lo * (size_t)g->ldb;
        gemm_call(j, g->m, (int)(hi - lo), a, b + b_off * es, c + (size_t)lo * (size_t)g->ldc * cs);
    }
    if (e->fn != NULL && j->by_rows)
        e->fn(e->arg, (int)lo, (int)hi, 0, g->n);
    else if (e->fn != NULL)
        e->fn(e->arg, 0, g->m, (int)lo, (int)hi);
}

static void one_block(void *arg, int64_t i) { gemm_block(arg, i); }

/* Whether every block of j holds all of C's columns (one block, or blocks
 * of rows): what bp_cpu_gemm_then and bp_cpu_gemm2_then return. */
static int holds_all_columns(const gemm_job *j) { return j->blocks == 1 || j->by_rows; }

/* Runs g's product in its planned blocks on the pool, fn on each block;
 * returns whether every block held all of C's columns. */
static int run_product(bp_cpu_pool *pool, int kind, const bp_gemm_args *g, bp_cpu_epilogue fn,
                       void *arg)
{
    bp_cpu_blas_single_thread();
    epilogue_job e = {make_job(pool, kind, g), fn, arg};
    bp_cpu_pool_run(pool, e.gemm.blocks, one_block, &e);
    return holds_all_columns(&e.gemm);
}

/* ---- plans: as few blocks as the pool has threads, where the bits agree ----
 *
 * Each block call packs the operand all blocks share again (the first
 * layer's input, 400 KB at batch 128, per row block of its forward
 * product), so on 2 threads the README's network trains 4 % faster (6 % at
 * batch 32) with 2 blocks a product than with its shape's 4 or 8
 * (bench/results/2026-12-07-cpu-ab-2core.txt). But where the blocks fall
 * can change a product's bits: OpenBLAS's dgemm gives an element other bits
 * for other block boundaries in some shapes (f64 300 x 77 x 301 in
 * tests/test_cpu_threads.cpp). So the first product of each shape on a
 * pool with fewer threads than its shape's blocks is computed once both
 * ways on made-up operands of that shape, in scratch the network made with
 * the pool for its largest operand (bp_cpu_gemm_reserve: a training step
 * allocates nothing); the pool remembers the answer, and the product runs in as many blocks as
 * threads only when the two gave the same bits. The BLAS's arithmetic does
 * not depend on the values it multiplies (it branches on shapes, alpha and
 * beta, which the key holds), so what held for the made-up operands holds
 * for every product of the shape: 1, 2 or 16 threads give the bits of the
 * shape's blocks. A shape whose operands do not fit the scratch (at most
 * PROBE_BYTES), and every shape once the pool's memory is full, keeps its
 * shape's blocks. */
#define PROBE_BYTES ((size_t)16 << 20)

/* Element i of the made-up operands: magnitudes from 2^-4 to 2^4, both
 * signs, no two neighbours alike (splitmix64). */
static double made_up(uint64_t i)
{
    uint64_t z = i * 0x9E3779B97F4A7C15ull + 0x632BE59BD9B4E019ull;
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull, z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    z ^= z >> 31;
    double v = (double)(z >> 11) * 0x1.0p-53 + 0.5; /* [0.5, 1.5) */
    return ldexp(z & 1 ? -v : v, (int)((z >> 1) % 9) - 4);
}

/* n elements of the kind's A and B type (or, c, of its C type) at p. */
static void fill_made_up(int kind, int c, void *p, size_t n, uint64_t seed)
{
    for (size_t i = 0; i < n; i++) {
        double v = made_up(seed + i);
        if (kind == KIND_F64) {
            ((double *)p)[i] = v;
        } else if (kind == KIND_F32 || c) {
            ((float *)p)[i] = (float)v;
        } else { /* BF16: a float's upper half */
            float f = (float)v;
            uint32_t bits;
            memcpy(&bits, &f, sizeof bits);
            ((uint16_t *)p)[i] = (uint16_t)(bits >> 16);
        }
    }
}

/* Whether g's product gives the same bits in `few` blocks as in `many`, on
 * made-up operands of its shape in the pool's scratch (0 when they do not
 * fit). */
static int same_bits(bp_cpu_pool *pool, int kind, const bp_gemm_args *g, int many, int few)
{
    bp_cpu_memo *memo = bp_cpu_pool_memo(pool);
    size_t es = kind == KIND_BF16 ? 2 : kind == KIND_F32 ? sizeof(float) : sizeof(double);
    size_t cs = kind == KIND_F64 ? sizeof(double) : sizeof(float);
    size_t na = (size_t)g->lda * (size_t)(g->trans_a ? g->m : g->k);
    size_t nb = (size_t)g->ldb * (size_t)(g->trans_b ? g->k : g->n);
    size_t nc = (size_t)g->ldc * (size_t)g->n;
    /* a, b, c1 and c2, each from a 64-byte line */
    size_t at_b = (na * es + 63) & ~(size_t)63, at_c1 = at_b + ((nb * es + 63) & ~(size_t)63);
    size_t at_c2 = at_c1 + ((nc * cs + 63) & ~(size_t)63);
    if (at_c2 + nc * cs > memo->scratch_bytes)
        return 0;
    char *a = memo->scratch, *b = a + at_b, *c1 = a + at_c1, *c2 = a + at_c2;
    fill_made_up(kind, 0, a, na, 1);
    fill_made_up(kind, 0, b, nb, 1 + na);
    fill_made_up(kind, 1, c1, nc, 1 + na + nb); /* what beta scales */
    memcpy(c2, c1, nc * cs);
    epilogue_job j = {{*g, kind, many, g->m >= g->n}, NULL, NULL};
    j.gemm.g.a = a, j.gemm.g.b = b, j.gemm.g.c = c1;
    bp_cpu_pool_run(pool, many, one_block, &j);
    j.gemm.g.c = c2, j.gemm.blocks = few;
    bp_cpu_pool_run(pool, few, one_block, &j);
    for (int col = 0; col < g->n; col++) {
        size_t o = (size_t)col * (size_t)g->ldc * cs;
        if (memcmp(c1 + o, c2 + o, (size_t)g->m * cs) != 0)
            return 0;
    }
    return 1;
}

/* The blocks g's product runs in on pool: its shape's, or as many as the
 * pool's threads where the pool has fewer and the bits agree (above). */
static int plan_blocks(bp_cpu_pool *pool, int kind, const bp_gemm_args *g)
{
    int many = bp_cpu_gemm_blocks(g->m, g->n, g->k), few = bp_cpu_pool_threads(pool);
    bp_cpu_memo *memo = bp_cpu_pool_memo(pool);
    if (few >= many || memo == NULL)
        return many;
    const double key[BP_CPU_MEMO_KEY] = {kind,   g->trans_a, g->trans_b, g->m,     g->n,   g->k,
                                         g->lda, g->ldb,     g->ldc,     g->alpha, g->beta};
    for (int i = 0; i < memo->used; i++)
        if (memcmp(memo->key[i], key, sizeof key) == 0)
            return memo->value[i];
    if (memo->used == BP_CPU_MEMO)
        return many;
    int blocks = same_bits(pool, kind, g, many, few) ? few : many;
    memcpy(memo->key[memo->used], key, sizeof key);
    memo->value[memo->used++] = blocks;
    return blocks;
}

size_t bp_cpu_gemm_largest_operand(const bp_network_config *cfg)
{
    size_t most = 1, B = (size_t)cfg->max_batch;
    for (int l = 1; l <= cfg->n_layers; l++) {
        size_t in = (size_t)cfg->sizes[l - 1], out = (size_t)cfg->sizes[l];
        size_t w = in * out, x = B * in, y = B * out;
        most = w > most ? w : most;
        most = x > most ? x : most;
        most = y > most ? y : most;
    }
    return most;
}

bp_status bp_cpu_gemm_reserve(bp_cpu_pool *pool, size_t elements, size_t element_bytes)
{
    bp_cpu_memo *memo = bp_cpu_pool_memo(pool);
    if (memo == NULL)
        return BP_OK;
    if (element_bytes == 0 || element_bytes > sizeof(double))
        element_bytes = sizeof(double);
    /* four operands, each from a 64-byte line, up to PROBE_BYTES */
    size_t bytes = elements <= PROBE_BYTES / element_bytes / 4
                       ? 4 * ((elements * element_bytes + 63) & ~(size_t)63)
                       : PROBE_BYTES;
    void *p = malloc(bytes);
    if (p == NULL)
        return bp_fail(BP_ERR_OUT_OF_MEMORY,
                       "cpu backend: no memory for %zu bytes of product-planning scratch", bytes);
    free(memo->scratch);
    memo->scratch = p, memo->scratch_bytes = bytes;
    return BP_OK;
}

int bp_cpu_gemm_plan(bp_cpu_pool *pool, bp_dtype dt, const bp_gemm_args *g)
{
    bp_cpu_blas_single_thread();
    return plan_blocks(pool, dtype_kind(dt), g);
}

/* Every product first sets the BLAS to one thread again: a program that
 * sets OpenBLAS's threads after the network was made (a command's thread
 * flag, another library) would otherwise make each block a threaded call,
 * with other rounding and the BLAS's threads spinning beside the pool's.
 * (About 40 ns a call with OpenBLAS 0.3.21.) */
void bp_cpu_gemm(bp_cpu_pool *pool, bp_dtype dt, const bp_gemm_args *g)
{
    run_product(pool, dtype_kind(dt), g, NULL, NULL);
}

#ifdef BP_HAVE_SBGEMM
void bp_cpu_gemm_bf16(bp_cpu_pool *pool, const bp_gemm_args *g)
{
    run_product(pool, KIND_BF16, g, NULL, NULL);
}
#endif

/* Task i: a block of the first product, then of the second. */
static void pair_block(void *arg, int64_t i)
{
    const epilogue_job *e = arg;
    if (i < e[0].gemm.blocks)
        gemm_block(&e[0], i);
    else
        gemm_block(&e[1], i - e[0].gemm.blocks);
}

void bp_cpu_gemm2(bp_cpu_pool *pool, bp_dtype dt, const bp_gemm_args *first,
                  const bp_gemm_args *second)
{
    bp_cpu_gemm2_then(pool, dt, first, second, NULL, NULL);
}

int bp_cpu_gemm2_then(bp_cpu_pool *pool, bp_dtype dt, const bp_gemm_args *first,
                      const bp_gemm_args *second, bp_cpu_epilogue fn, void *arg)
{
    bp_cpu_blas_single_thread();
    epilogue_job e[2] = {{make_job(pool, dtype_kind(dt), first), NULL, NULL},
                         {make_job(pool, dtype_kind(dt), second), fn, arg}};
    bp_cpu_pool_run(pool, e[0].gemm.blocks + e[1].gemm.blocks, pair_block, e);
    return holds_all_columns(&e[1].gemm);
}

int bp_cpu_gemm_then(bp_cpu_pool *pool, bp_dtype dt, const bp_gemm_args *g, bp_cpu_epilogue fn,
                     void *arg)
{
    return run_product(pool, dtype_kind(dt), g, fn, arg);
}
