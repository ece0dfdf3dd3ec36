/* launcher.c — how many processes an MPI launcher started, read from its
 * environment before anything initialises MPI (backprop.h,
 * bp_comm_launcher_size), so that a program chooses between
 * bp_comm_create_world and a run alone without linking MPI itself. */
#include <limits.h>
#include <stdlib.h>

#include "api/error.h"
#include "backprop.h"

bp_status bp_comm_launcher_size(int *size)
{
    BP_CHECK_PTR("bp_comm_launcher_size", size);
    /* Open MPI, MPICH/Hydra and Intel MPI (PMI), MVAPICH, Slurm's srun with PMIx */
    const char *vars[] = {"OMPI_COMM_WORLD_SIZE", "PMI_SIZE", "MV2_COMM_WORLD_SIZE", "PMIX_SIZE"};
    *size = 0;
    for (size_t i = 0; i < sizeof vars / sizeof vars[0]; i++) {
        const char *v = getenv(vars[i]);
        if (v == NULL || v[0] == '\0')
            continue;
        char *end = NULL;
        long n = strtol(v, &end, 10);
        if (end == v || *end != '\0' || n < 1 || n > INT_MAX)
            return bp_fail(BP_ERR_INVALID_ARGUMENT,
                           "bp_comm_launcher_size: %s='%s' is not a number of processes", vars[i],
                           v);
        *size = (int)n;
        return BP_OK;
    }
    return BP_OK;
}
