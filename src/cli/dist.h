/*
 * dist.h — `mpirun -np N backprop train`: the MPI world detected from the
 * launcher's environment, the network joined to it, each global batch
 * split across the ranks, and rank 0 alone printing and writing files.
 * Without a launcher (or with one rank) every call is a no-op and the
 * command trains alone.
 */
#ifndef BP_CLI_DIST_H
#define BP_CLI_DIST_H

#include "backprop.h"

typedef struct cli_dist {
    int active;      /* more than one rank: training is data-parallel */
    int rank, size;  /* 0 and 1 when alone */
    int local_rank;  /* rank among the ranks on this machine */
    int mpi_started; /* this command called MPI_Init */
    bp_comm *comm;
} cli_dist;

/* Detects a launcher's world of more than one rank and starts MPI. On
 * ranks other than 0 it silences standard output and clears the output
 * files (each pointer may be NULL) and sets *quiet: rank 0 alone prints,
 * logs, plots and saves. Returns 0, or prints an error and returns 1. */
int cli_dist_begin(cli_dist *d, int *quiet, const char **save, const char **log,
                   const char **plot);

/* Before the network is created: CUDA ranks take the GPU of their local
 * rank (among the devices this process sees). */
void cli_dist_configure(const cli_dist *d, bp_network_config *cfg);

/* After the network is created (and loaded): joins it to the world (its
 * parameters are checked to be identical on every rank) and prints, on
 * rank 0, how the work is split. Returns 0, or prints an error and 1. */
int cli_dist_join(cli_dist *d, bp_network *net, long global_batch, const char *device);

/* This rank's part [*lo, *hi) of a global batch of b samples. Returns 0
 * when b is too small to give every rank a sample (every rank then skips
 * the batch alike), else 1. */
int cli_dist_shard(const cli_dist *d, int b, int *lo, int *hi);

/* Prints, for `backprop info`, whether MPI and NCCL are built in and
 * their versions. */
void cli_dist_print_engines(void);

/* Frees the communicator (after the network) and finalises MPI. */
void cli_dist_end(cli_dist *d);

#endif
