/* launcher.c — how many processes an MPI launcher started, read from its
 * environment before anything initialises MPI (backprop.h,
 * bp_comm_launcher_size, bp_comm_launcher_rank), so that a program chooses between
 * bp_comm_create_world and a run alone without linking MPI itself. */
#include <limits.h>
#include <stdlib.h>

#include "api/error.h"
#include "backprop.h"

/* The first of vars the launcher set, as a number in [min, INT_MAX]; *out
 * keeps its value when none is set. */
static bp_status launcher_value(const char *fn, const char *const *vars, size_t n, long min,
                                const char *what, int *out)
{
    for (size_t i = 0; i < n; i++) {
        const char *v = getenv(vars[i]);
        if (v == NULL || v[0] == '\0')
            continue;
        char *end = NULL;
        long x = strtol(v, &end, 10);
        if (end == v || *end != '\0' || x < min || x > INT_MAX)
            return bp_fail(BP_ERR_INVALID_ARGUMENT, "%s: %s='%s' is not %s", fn, vars[i], v, what);
        *out = (int)x;
        return BP_OK;
    }
    return BP_OK;
}

/* Open MPI, MPICH/Hydra and Intel MPI (PMI), MVAPICH, Slurm's srun with PMIx */
bp_status bp_comm_launcher_size(int *size)
{
    BP_CHECK_PTR("bp_comm_launcher_size", size);
    static const char *const vars[] = {"OMPI_COMM_WORLD_SIZE", "PMI_SIZE", "MV2_COMM_WORLD_SIZE",
                                       "PMIX_SIZE"};
    *size = 0;
    return launcher_value("bp_comm_launcher_size", vars, sizeof vars / sizeof vars[0], 1,
                          "a number of processes", size);
}

bp_status bp_comm_launcher_rank(int *rank)
{
    BP_CHECK_PTR("bp_comm_launcher_rank", rank);
    static const char *const vars[] = {"OMPI_COMM_WORLD_RANK", "PMI_RANK", "MV2_COMM_WORLD_RANK",
                                       "PMIX_RANK"};
    *rank = 0;
    return launcher_value("bp_comm_launcher_rank", vars, sizeof vars / sizeof vars[0], 0, "a rank",
                          rank);
}
