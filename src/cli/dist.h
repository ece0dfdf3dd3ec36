/*
 * dist.h — `mpirun -np N backprop train` and `backprop train --device
 * cuda:0,1,..`: the MPI world detected from the launcher's environment (or
 * the GPUs listed), the network joined to it, each global batch split
 * across the ranks, and rank 0 alone printing and writing files. Without a
 * launcher or a list (or with one rank) every call is a no-op or the plain
 * step, and the command trains alone.
 */
#ifndef BP_CLI_DIST_H
#define BP_CLI_DIST_H

#include "backprop.h"

typedef struct cli_worker cli_worker;

typedef struct cli_dist {
    int active;      /* more than one rank: training is data-parallel */
    int rank, size;  /* 0 and 1 when alone */
    int local_rank;  /* rank among the ranks on this machine */
    int mpi_started; /* this command called MPI_Init */
    int failed;      /* this rank failed: the others were told, MPI is not finalised */
    bp_comm *comm;
    /* One process, several GPUs (--device cuda:0,1,.. or cuda:all): rank
     * k < size trains on devices[k]; rank 0 is the command's own network,
     * the others are driven by worker threads. */
    int multi;
    int devices[64];
    bp_comm **comms;
    cli_worker *workers; /* size - 1 of them */
} cli_dist;

/* The --device spec that chooses rank 0's device: "cuda:A" for a list
 * "cuda:A,B,.." or for "cuda:all", else spec itself. buf holds the result. */
const char *cli_dist_device_spec(const char *spec, char *buf, size_t size);

/* Detects a launcher's world of more than one rank, starts MPI and makes
 * the world's communicator for networks of backend (at once, so that a
 * rank failing later can tell the others); or a --device list of several
 * GPUs (device is the --device flag). On ranks other than 0 it silences
 * standard output, sets the n_outputs output paths to NULL (--save, --log,
 * --plot, --checkpoint) and sets *quiet: rank 0 alone prints and writes.
 * Returns 0, or prints an error and returns 1. */
int cli_dist_begin(cli_dist *d, const char *device, bp_backend backend, int *quiet,
                   const char **outputs[], int n_outputs);

/* Before the network is created: CUDA ranks take the GPU of their local
 * rank (among the devices this process sees). */
void cli_dist_configure(const cli_dist *d, bp_network_config *cfg);

/* After the network is created (and loaded): joins it to the world (its
 * parameters are checked to be identical on every rank) and prints, on
 * rank 0, how the work is split. With several GPUs in this process it
 * also creates the other devices' networks from cfg, with net's
 * parameters. Returns 0, or prints an error and 1. */
int cli_dist_join(cli_dist *d, bp_network *net, const bp_network_config *cfg, long global_batch,
                  const char *device);

/* Before joining: every rank must run with the same values (flags and
 * data, bp_comm_agree). Returns 0, or prints which value differs on which
 * ranks and returns 1. */
int cli_dist_agree(cli_dist *d, const bp_comm_value *values, int n);

/* This rank's run failed with status: the other ranks are told (their
 * collectives fail at once, bp_comm_abort), and cli_dist_end does not
 * wait for them in MPI_Finalize. */
void cli_dist_fail(cli_dist *d, int status);

/* One training step of the global batch rows[0..b): this rank's part of
 * it, or with several GPUs here every device's part, each on its thread.
 * x and y are the training set on net's device (the other devices get a
 * copy at the first step). Returns net's status (BP_OK also when the batch
 * is too small to give every rank a sample, and every rank skips it).
 * Every network steps with its own optimizer: net's as set, the other
 * GPUs' networks with opt (net's, with the epoch's learning rate). */
bp_status cli_dist_train_step(cli_dist *d, bp_network *net, const bp_buffer *x, const bp_buffer *y,
                              const int32_t *rows, int b, const bp_optimizer *opt, double *loss);

/* Prints, for `backprop info`, whether MPI and NCCL are built in and
 * their versions. */
void cli_dist_print_engines(void);

/* Frees the other devices' networks, the communicators (after the
 * command's network) and finalises MPI. */
void cli_dist_end(cli_dist *d);

#endif
