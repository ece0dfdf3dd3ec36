/*
 * cpu_gemm.h — the CPU backend's GEMMs: each product cut into column or
 * row blocks of C, every block one single-threaded CBLAS call, the blocks
 * run on the network's threads (cpu_pool.h).
 *
 * Why (docs/design.md, section 5): a multi-threaded BLAS may round a
 * product differently with another thread count (OpenBLAS's threaded
 * driver cuts the k dimension differently from its single-threaded one),
 * so the BLAS always runs single-threaded, in the blocks of the product's
 * shape (m, n, k), the same whatever the number of threads; a pool with
 * fewer threads runs one block a thread only where the first product of
 * that shape showed it gives the same bits (cpu_gemm.c).
 */
#ifndef BP_CPU_GEMM_H
#define BP_CPU_GEMM_H

#include "backend/backend.h"
#include "backend/cpu_pool.h"

#ifdef __cplusplus /* the tests call these */
extern "C" {
#endif

/* C = alpha op(A) op(B) + beta C (column-major, trans 0 = N, 1 = T, of
 * dtype dt), on the pool's threads. */
void bp_cpu_gemm(bp_cpu_pool *pool, bp_dtype dt, const bp_gemm_args *g);
/* Two products that share no C, their blocks in one run of the pool
 * (each block the call bp_cpu_gemm makes for it). */
void bp_cpu_gemm2(bp_cpu_pool *pool, bp_dtype dt, const bp_gemm_args *first,
                  const bp_gemm_args *second);

/* Where blocks of C start: a multiple of this many rows (or columns). */
#define BP_CPU_GEMM_ALIGN 16

/* An epilogue of a product's block: rows [r0, r1) and columns [c0, c1) of
 * C, called on the thread that computed the block, right after it (the
 * block still in that core's cache); r0 and c0 multiples of
 * BP_CPU_GEMM_ALIGN. */
typedef void (*bp_cpu_epilogue)(void *arg, int r0, int r1, int c0, int c1);
/* bp_cpu_gemm (the same blocks, so the same bits), each block followed by
 * fn on it. Returns 1 when every block held all of C's columns (blocks of
 * rows, or one block), 0 when the blocks were columns. */
int bp_cpu_gemm_then(bp_cpu_pool *pool, bp_dtype dt, const bp_gemm_args *g, bp_cpu_epilogue fn,
                     void *arg);
/* bp_cpu_gemm2 with fn on each block of the second product; returns as
 * bp_cpu_gemm_then does for the second. */
int bp_cpu_gemm2_then(bp_cpu_pool *pool, bp_dtype dt, const bp_gemm_args *first,
                      const bp_gemm_args *second, bp_cpu_epilogue fn, void *arg);

/* C (float32) = alpha op(A) op(B) + beta C with A and B BF16 (uint16_t
 * elements), each block one cblas_sbgemm call: only where the BLAS has it
 * (BP_HAVE_SBGEMM, cmake/blas_features.cmake; src/backend/cpu_mixed.c). */
void bp_cpu_gemm_bf16(bp_cpu_pool *pool, const bp_gemm_args *g);

/* The blocks of a product's shape (1: one call). */
int bp_cpu_gemm_blocks(int m, int n, int k);
/* The blocks bp_cpu_gemm runs g in on pool: bp_cpu_gemm_blocks, or the
 * pool's thread count when that is fewer and gives the same bits (found,
 * at the first product of the shape, by computing made-up operands both
 * ways, and remembered by the pool). */
int bp_cpu_gemm_plan(bp_cpu_pool *pool, bp_dtype dt, const bp_gemm_args *g);
/* The scratch those tries use, made with the pool: four operands of
 * `elements` elements of element_bytes each (at most 16 MiB in all; without
 * it, or for a shape that does not fit, products keep their shape's
 * blocks). */
bp_status bp_cpu_gemm_reserve(bp_cpu_pool *pool, size_t elements, size_t element_bytes);
/* The largest operand of a network's step products (elements): a weight
 * matrix, or a max_batch of a layer's activations or deltas. */
size_t bp_cpu_gemm_largest_operand(const bp_network_config *cfg);

/* Makes the BLAS run single-threaded when called from this thread (every
 * thread of a pool runs it, the caller's when its network is created):
 * openblas_set_num_threads(1) when the BLAS loaded is OpenBLAS (in its
 * pthreads build this holds for the whole process; in its OpenMP build
 * it sets this thread's OpenMP thread count), nothing for another BLAS
 * (the reference BLAS is sequential). */
void bp_cpu_blas_single_thread(void);

#ifdef __cplusplus
}
#endif

#endif
