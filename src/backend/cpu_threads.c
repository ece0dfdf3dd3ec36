/*
 * cpu_threads.c — how many threads a CPU network runs on when its config
 * leaves it to the library (threads = 0): bp_cpu_thread_count.
 *
 * The processors this process may run on (its affinity mask: taskset,
 * cgroup cpusets, an MPI launcher's binding), shared with the other ranks
 * a launcher started on this node: min(affinity, online processors / local
 * ranks), at least 1. A launcher that binds each rank to its own cores
 * gives a mask of those cores; one that does not gives every rank the
 * whole node, which the local rank count then divides.
 */
#define _GNU_SOURCE
#include <sched.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "api/error.h"

#define MAX_AUTO_THREADS 256

/* A positive decimal integer, or 0. */
static long positive(const char *s)
{
    if (s == NULL || *s < '0' || *s > '9')
        return 0;
    char *end = NULL;
    long v = strtol(s, &end, 10);
    return v > 0 ? v : 0;
}

/* Slurm's compressed per-node task counts ("4", "2(x3),1"): the count of
 * node `node` (0-based), or 0. */
static long slurm_node_tasks(const char *list, long node)
{
    const char *p = list;
    while (p != NULL && *p != '\0') {
        char *end = NULL;
        long tasks = strtol(p, &end, 10), repeat = 1;
        if (end == p || tasks <= 0)
            return 0;
        if (strncmp(end, "(x", 2) == 0) {
            repeat = strtol(end + 2, &end, 10);
            if (repeat <= 0 || *end != ')')
                return 0;
            end++;
        }
        if (node < repeat)
            return tasks;
        node -= repeat;
        p = *end == ',' ? end + 1 : NULL;
    }
    return 0;
}

/* Ranks on this node, as an MPI launcher or srun announces them; 1 when
 * none does: Open MPI, MPICH/Hydra and Intel MPI, MVAPICH2, then Slurm's
 * srun (the step's tasks on this node). */
static long local_ranks(void)
{
    const char *vars[] = {"OMPI_COMM_WORLD_LOCAL_SIZE", "MPI_LOCALNRANKS",
                          "MV2_COMM_WORLD_LOCAL_SIZE"};
    for (size_t i = 0; i < sizeof vars / sizeof vars[0]; i++) {
        long n = positive(getenv(vars[i]));
        if (n > 0)
            return n;
    }
    const char *slurm = getenv("SLURM_STEP_TASKS_PER_NODE");
    if (slurm != NULL) {
        long n = slurm_node_tasks(slurm, positive(getenv("SLURM_NODEID")));
        if (n > 0)
            return n;
    }
    return 1;
}

/* The processors in this process's affinity mask, or 0 if unknown. */
static long affinity_cpus(void)
{
    for (int size = 1024; size <= (1 << 16); size *= 4) {
        cpu_set_t *set = CPU_ALLOC((size_t)size);
        if (set == NULL)
            return 0;
        size_t bytes = CPU_ALLOC_SIZE((size_t)size);
        CPU_ZERO_S(bytes, set);
        int ok = sched_getaffinity(0, bytes, set) == 0;
        long n = ok ? CPU_COUNT_S(bytes, set) : 0;
        CPU_FREE(set);
        if (ok)
            return n;
    }
    return 0;
}

bp_status bp_cpu_thread_count(int *threads)
{
    BP_CHECK_PTR("bp_cpu_thread_count", threads);
    long online = sysconf(_SC_NPROCESSORS_ONLN), mask = affinity_cpus();
    if (online < 1)
        online = 1;
    long n = online / local_ranks();
    if (mask > 0 && mask < n)
        n = mask;
    if (n > MAX_AUTO_THREADS)
        n = MAX_AUTO_THREADS;
    *threads = n < 1 ? 1 : (int)n;
    return BP_OK;
}
