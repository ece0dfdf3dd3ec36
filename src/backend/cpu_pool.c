/*
 * cpu_pool.c — the fork-join pool of the CPU backend (cpu_pool.h).
 *
 * A run publishes its job under a new generation number; threads claim
 * tasks by advancing one atomic word that holds the generation and the
 * next task index (so a thread that wakes late can never claim a task of
 * a newer job as one of an older), and count finished tasks. The caller
 * claims tasks like any worker, then waits for the count. Idle workers
 * spin for a short while (the next operation of a training step comes
 * within microseconds) and then sleep on a condition variable, so a pool
 * costs nothing between steps and no thread spins while another works.
 */
#define _GNU_SOURCE
#include "backend/cpu_pool.h"

#include <errno.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "api/error.h"

#if defined(__x86_64__) || defined(__i386__)
#include <immintrin.h>
#define CPU_RELAX() _mm_pause()
#elif defined(__aarch64__)
#define CPU_RELAX() __asm__ __volatile__("yield")
#else
#define CPU_RELAX() ((void)0)
#endif

/* How long an idle worker spins before it sleeps, and how many spins of a
 * waiting caller between two sched_yield calls (a worker that was
 * descheduled mid-task gets the core back). */
#define IDLE_SPIN_NS 200000
#define WAIT_SPINS_PER_YIELD 2048

struct bp_cpu_pool {
    int threads;
    pid_t owner;
    pthread_t *workers;
    int started; /* workers running */
    void (*thread_init)(void);

    /* The job of the current generation, written before it is published
     * and read by a thread only once it has claimed one of its tasks. */
    bp_cpu_task fn;
    void *arg;
    uint32_t last_gen; /* the caller's count of runs, GEN_BITS bits */

    _Atomic uint64_t claim; /* generation, number of tasks, next task: CLAIM() */
    _Atomic uint32_t gen;   /* the published generation */
    _Atomic int64_t done;   /* tasks of the current generation finished */
    _Atomic int sleepers;
    _Atomic int quit;
    pthread_mutex_t mu;
    pthread_cond_t cv;

    bp_cpu_memo memo; /* the caller's: cpu_gemm.c's plans */
};

/* The claim word: GEN_BITS of generation, then TASK_BITS each of the
 * number of tasks and of the next task to claim. */
#define GEN_BITS 24
#define TASK_BITS 20
#define CLAIM(gen, n) ((uint64_t)(gen) << (2 * TASK_BITS) | (uint64_t)(n) << TASK_BITS)
#define CLAIM_GEN(c) ((uint32_t)((c) >> (2 * TASK_BITS)))
#define CLAIM_N(c) ((int64_t)((c) >> TASK_BITS & ((1u << TASK_BITS) - 1)))
#define CLAIM_NEXT(c) ((int64_t)((c) & ((1u << TASK_BITS) - 1)))

static int64_t now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

/* Claims and runs tasks of generation g until none is left. */
static void work(bp_cpu_pool *p, uint32_t g)
{
    uint64_t c = atomic_load_explicit(&p->claim, memory_order_acquire);
    for (;;) {
        if (CLAIM_GEN(c) != g || CLAIM_NEXT(c) >= CLAIM_N(c))
            return;
        if (!atomic_compare_exchange_weak_explicit(&p->claim, &c, c + 1, memory_order_acq_rel,
                                                   memory_order_acquire))
            continue; /* c reloaded */
        /* Task CLAIM_NEXT(c) of generation g is ours: the job stays until it is done. */
        p->fn(p->arg, CLAIM_NEXT(c));
        atomic_fetch_add_explicit(&p->done, 1, memory_order_release);
        c = atomic_load_explicit(&p->claim, memory_order_acquire);
    }
}

/* Waits for a generation other than seen (or quit): spins, then sleeps. */
static uint32_t wait_for_job(bp_cpu_pool *p, uint32_t seen)
{
    int64_t deadline = now_ns() + IDLE_SPIN_NS;
    for (unsigned i = 1;; i++) {
        uint32_t g = atomic_load_explicit(&p->gen, memory_order_acquire);
        if (g != seen || atomic_load_explicit(&p->quit, memory_order_relaxed))
            return g;
        CPU_RELAX();
        if (i % 256 == 0 && now_ns() > deadline)
            break;
    }
    pthread_mutex_lock(&p->mu);
    atomic_fetch_add(&p->sleepers, 1); /* sequentially consistent: see publish() */
    uint32_t g;
    while ((g = atomic_load(&p->gen)) == seen && !atomic_load(&p->quit))
        pthread_cond_wait(&p->cv, &p->mu);
    atomic_fetch_sub(&p->sleepers, 1);
    pthread_mutex_unlock(&p->mu);
    return g;
}

static void *worker_main(void *arg)
{
    bp_cpu_pool *p = arg;
    if (p->thread_init != NULL)
        p->thread_init();
    uint32_t seen = 0;
    for (;;) {
        seen = wait_for_job(p, seen);
        if (atomic_load_explicit(&p->quit, memory_order_acquire))
            return NULL;
        work(p, seen);
    }
}

static void stop_workers(bp_cpu_pool *p)
{
    pthread_mutex_lock(&p->mu);
    atomic_store(&p->quit, 1);
    pthread_cond_broadcast(&p->cv);
    pthread_mutex_unlock(&p->mu);
    for (int i = 0; i < p->started; i++)
        pthread_join(p->workers[i], NULL);
    p->started = 0;
}

bp_status bp_cpu_pool_create(int threads, void (*thread_init)(void), bp_cpu_pool **out)
{
    *out = NULL;
    bp_cpu_pool *p = calloc(1, sizeof *p);
    if (p == NULL ||
        (threads > 1 && (p->workers = calloc((size_t)threads - 1, sizeof *p->workers)) == NULL)) {
        free(p);
        return bp_fail(BP_ERR_OUT_OF_MEMORY, "cpu backend: no memory for %d threads", threads);
    }
    p->threads = threads < 1 ? 1 : threads;
    p->owner = getpid();
    p->thread_init = thread_init;
    pthread_mutex_init(&p->mu, NULL);
    pthread_cond_init(&p->cv, NULL);
    /* Workers take no signals: they go to the caller's threads. */
    sigset_t all, old;
    sigfillset(&all);
    pthread_sigmask(SIG_BLOCK, &all, &old);
    int err = 0;
    while (p->started < p->threads - 1 &&
           (err = pthread_create(&p->workers[p->started], NULL, worker_main, p)) == 0)
        p->started++;
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    if (err != 0) {
        bp_cpu_pool_destroy(p);
        return bp_fail(BP_ERR_OUT_OF_MEMORY, "cpu backend: cannot start thread %d of %d: %s",
                       p->started + 2, threads, strerror(err));
    }
    *out = p;
    return BP_OK;
}

void bp_cpu_pool_destroy(bp_cpu_pool *pool)
{
    if (pool == NULL)
        return;
    if (getpid() == pool->owner)
        stop_workers(pool);
    pthread_cond_destroy(&pool->cv);
    pthread_mutex_destroy(&pool->mu);
    free(pool->memo.scratch);
    free(pool->workers);
    free(pool);
}

int bp_cpu_pool_threads(const bp_cpu_pool *pool) { return pool ? pool->threads : 1; }

bp_cpu_memo *bp_cpu_pool_memo(bp_cpu_pool *pool) { return pool ? &pool->memo : NULL; }

void bp_cpu_pool_run(bp_cpu_pool *pool, int64_t n, bp_cpu_task fn, void *arg)
{
    if (n <= 0)
        return;
    if (pool == NULL || pool->started == 0 || n == 1 || n >= (1 << TASK_BITS) ||
        getpid() != pool->owner) {
        for (int64_t i = 0; i < n; i++)
            fn(arg, i);
        return;
    }
    uint32_t g = (pool->last_gen + 1) & ((1u << GEN_BITS) - 1);
    if (g == 0) /* 0 is the workers' first "seen" */
        g = 1;
    pool->last_gen = g;
    pool->fn = fn;
    pool->arg = arg;
    atomic_store_explicit(&pool->done, 0, memory_order_relaxed);
    atomic_store_explicit(&pool->claim, CLAIM(g, n), memory_order_release);
    /* Publish, then look for sleepers (both sequentially consistent): a
     * worker that registered as a sleeper before this store is woken; one
     * that registers after it sees the new generation and does not sleep. */
    atomic_store(&pool->gen, g);
    if (atomic_load(&pool->sleepers) > 0) {
        pthread_mutex_lock(&pool->mu);
        pthread_cond_broadcast(&pool->cv);
        pthread_mutex_unlock(&pool->mu);
    }
    work(pool, g);
    for (unsigned i = 1; atomic_load_explicit(&pool->done, memory_order_acquire) < n; i++) {
        CPU_RELAX();
        if (i % WAIT_SPINS_PER_YIELD == 0)
            sched_yield();
    }
}

int64_t bp_cpu_tasks(int64_t n, int64_t grain, int64_t max_tasks)
{
    int64_t t = grain > 0 ? (n + grain - 1) / grain : 1;
    if (t > max_tasks)
        t = max_tasks;
    return t < 1 ? 1 : t;
}

int64_t bp_cpu_task_begin(int64_t n, int64_t tasks, int64_t i, int64_t align)
{
    if (i >= tasks)
        return n;
    int64_t b = n / tasks * i + n % tasks * i / tasks; /* floor(n * i / tasks), no overflow */
    return align > 1 ? b / align * align : b;
}

typedef struct range_job {
    int64_t n, tasks, align;
    bp_cpu_range fn;
    void *arg;
} range_job;

static void range_task(void *arg, int64_t i)
{
    const range_job *j = arg;
    int64_t begin = bp_cpu_task_begin(j->n, j->tasks, i, j->align);
    int64_t end = bp_cpu_task_begin(j->n, j->tasks, i + 1, j->align);
    if (end > begin)
        j->fn(j->arg, begin, end);
}

void bp_cpu_pool_for(bp_cpu_pool *pool, int64_t n, int64_t grain, int64_t align, bp_cpu_range fn,
                     void *arg)
{
    if (n <= 0)
        return;
    range_job j = {n, bp_cpu_tasks(n, grain, BP_CPU_MAX_TASKS), align, fn, arg};
    if (j.tasks == 1)
        fn(arg, 0, n);
    else
        bp_cpu_pool_run(pool, j.tasks, range_task, &j);
}
