/*
 * cpu_pool.h — the CPU backend's threads: a fork-join pool that runs the
 * tasks of one operation on a network's threads and the caller's.
 *
 * Results never depend on the number of threads: an operation is cut into
 * tasks by its shape (src/backend/cpu.c, src/backend/cpu_gemm.c, whose
 * products take fewer blocks on fewer threads only where the bits agree),
 * each task writes what no other task of the operation writes, and a
 * reduction combines its tasks' partial results in task order afterwards.
 * Which thread runs which task varies from run to run; nothing else does.
 */
#ifndef BP_CPU_POOL_H
#define BP_CPU_POOL_H

#include <stddef.h>
#include <stdint.h>

#include "backprop.h"

#ifdef __cplusplus /* the tests call these */
extern "C" {
#endif

typedef struct bp_cpu_pool bp_cpu_pool;

/* The threads of a CPU backend context (src/backend/cpu.c): NULL (the
 * caller's thread alone) for a NULL context, as the kernel tests pass. */
bp_cpu_pool *bp_cpu_ctx_pool(void *ctx);

/* One task of an operation: task i of n. */
typedef void (*bp_cpu_task)(void *arg, int64_t task);

/* A pool of `threads` threads in all: the caller's and threads - 1
 * workers, started here. Each worker runs thread_init (may be NULL) once
 * when it starts, with every signal blocked. */
bp_status bp_cpu_pool_create(int threads, void (*thread_init)(void), bp_cpu_pool **out);
/* Stops and joins the workers. NULL is a no-op. */
void bp_cpu_pool_destroy(bp_cpu_pool *pool);
int bp_cpu_pool_threads(const bp_cpu_pool *pool); /* 1 for NULL */

/* What a pool remembers of the products it ran (src/backend/cpu_gemm.c:
 * the blocks of each shape met so far): up to BP_CPU_MEMO entries of a key
 * of BP_CPU_MEMO_KEY numbers and a value, and the scratch it tries a new
 * shape in (made with the network, freed with the pool), read and written
 * by the pool's caller only, between runs. NULL for a NULL pool. */
#define BP_CPU_MEMO 32
#define BP_CPU_MEMO_KEY 11
typedef struct bp_cpu_memo {
    int used;
    double key[BP_CPU_MEMO][BP_CPU_MEMO_KEY];
    int value[BP_CPU_MEMO];
    void *scratch;
    size_t scratch_bytes;
} bp_cpu_memo;
bp_cpu_memo *bp_cpu_pool_memo(bp_cpu_pool *pool);

/* Runs fn(arg, i) for every i < n, each once, on the pool's threads and
 * the caller's, and returns when all have returned; their writes are then
 * visible to the caller. n <= 0 runs nothing; a NULL pool, a pool of one
 * thread, n == 1, or a process forked from the pool's creator (which has
 * none of its workers) run every task on the caller's thread, in order. A task must
 * not call bp_cpu_pool_run on the same pool. */
void bp_cpu_pool_run(bp_cpu_pool *pool, int64_t n, bp_cpu_task fn, void *arg);

/* Elements per task of an element-wise loop (a multiple of 16: whole
 * 64-byte lines of float32): smaller loops run on the calling thread. */
#define BP_CPU_GRAIN 8192
/* Rows of `width` elements per task: about BP_CPU_GRAIN elements. */
static inline int64_t bp_cpu_rows_grain(int64_t width)
{
    return width >= BP_CPU_GRAIN ? 1 : BP_CPU_GRAIN / (width < 1 ? 1 : width);
}

/* fn(arg, begin, end) over [0, n) cut into bp_cpu_tasks(n, grain,
 * BP_CPU_MAX_TASKS) ranges whose bounds are multiples of align (but n),
 * run by bp_cpu_pool_run; one range is run directly. */
#define BP_CPU_MAX_TASKS 256
typedef void (*bp_cpu_range)(void *arg, int64_t begin, int64_t end);
void bp_cpu_pool_for(bp_cpu_pool *pool, int64_t n, int64_t grain, int64_t align, bp_cpu_range fn,
                     void *arg);

/* Tasks of about `grain` elements each for n elements (at least 1, at
 * most max_tasks; grain a multiple of 16 keeps every task but the last a
 * whole number of 64-byte lines of float32): a layout that depends only
 * on n. task_begin gives task i's first element. */
int64_t bp_cpu_tasks(int64_t n, int64_t grain, int64_t max_tasks);
int64_t bp_cpu_task_begin(int64_t n, int64_t tasks, int64_t i, int64_t align);

#ifdef __cplusplus
}
#endif

#endif
